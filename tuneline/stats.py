"""Paired significance tests and confidence intervals for the promotion gate and the reports.

The gate compares a candidate with the champion *on the same test rows*. Comparing two point estimates (``0.913``
vs ``0.905``) says nothing about whether the gap is larger than the noise of a finite test set, and treating the
two scores as independent samples wastes the pairing: most rows are answered identically by both models and carry
no information about which is better. The functions here use the pairing:

* :func:`mcnemar` for a per-row right/wrong metric (accuracy): only the discordant rows count.
* :func:`paired_bootstrap` for any metric, including ones that are not a mean over rows (macro-F1): resample row
  indices once and score *both* models on the same resample, so the row-to-row correlation is kept.
* :func:`bootstrap_interval` for the uncertainty of one reported metric ("test accuracy 0.91 [0.89, 0.93]").
* :func:`macro_f1_from_labels`: a vectorised macro-F1, fast enough to be evaluated a thousand times inside a
  bootstrap (``sklearn.metrics.f1_score`` costs milliseconds per call in input validation alone).

numpy and scipy only, so the module can be imported by the gate without pulling in the ML stack; scipy.stats is
imported where a p-value or a quantile is computed (it costs every ``tuneline`` process 1.3 s at import otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

#: Below this many discordant pairs the chi-square approximation is poor, so McNemar's test is done exactly (a
#: binomial test on the discordant pairs). 25 is the usual rule of thumb (e.g. Fagerland et al. 2013).
EXACT_DISCORDANT_LIMIT = 25

_TEST_LABELS = {"mcnemar": "McNemar", "paired_bootstrap": "paired bootstrap"}


@dataclass(frozen=True)
class PairedComparison:
    """The outcome of a paired candidate-vs-champion comparison on the same ``n`` items.

    ``difference`` is always *candidate minus champion* on all items, so a positive value means the candidate is
    better for a higher-is-better metric; ``ci_low``/``ci_high`` bound that difference at ``confidence``, and
    ``p_value`` is two-sided against "no difference".
    """

    test: str  # "mcnemar" or "paired_bootstrap"
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    confidence: float

    def sentence(self, metric: str) -> str:
        """One line for gate reasons and run tags, e.g.
        ``accuracy +0.0123 (95% CI +0.0040 to +0.0210, McNemar p=0.004, n=872)``.

        Signs are always printed so a reader sees the direction without knowing the convention; p-values below
        0.001 are written ``p<0.001`` because more digits would claim a precision the test set does not have.
        """
        label = _TEST_LABELS.get(self.test, self.test)
        level = f"{round(self.confidence * 100, 6):g}"
        p_text = "p<0.001" if self.p_value < 0.001 else f"p={self.p_value:.3f}"
        # The interval and the test are computed differently (McNemar: an adjusted Wald interval beside an exact or
        # continuity-corrected test), so at the margin one can exclude 0 while the other is not significant: a gate
        # sentence read "95% CI +0.0011 to +0.0390, McNemar p=0.055" without a word on which one decided (QA).
        excludes_zero = self.ci_low > 0 or self.ci_high < 0
        disagree = (excludes_zero != (self.p_value < 1 - self.confidence)) and self.ci_low != self.ci_high
        return (f"{metric} {self.difference:+.4f} ({level}% CI {self.ci_low:+.4f} to {self.ci_high:+.4f}, "
                f"{label} {p_text}, n={self.n}"
                + ("; at this margin the interval and the test disagree: the test's p decides" if disagree else "")
                + ")")


def mcnemar(candidate_correct: Sequence[bool], champion_correct: Sequence[bool],
            confidence: float = 0.95) -> PairedComparison:
    """McNemar's test for two models' per-row correctness on the same rows.

    Only discordant rows matter: ``b`` rows where the candidate is right and the champion wrong, ``c`` the reverse.
    Under H0 (equal accuracy) each discordant row is a fair coin, so:

    * ``b + c < 25``: the exact two-sided binomial test, ``p = min(1, 2 * P(X <= min(b, c)))`` with
      ``X ~ Binomial(b + c, 1/2)`` (identical to ``scipy.stats.binomtest(b, b + c).pvalue``), because the
      chi-square approximation is anti-conservative on few discordant pairs;
    * otherwise the chi-square test with Edwards' continuity correction, ``(|b - c| - 1)^2 / (b + c)`` on one
      degree of freedom, with ``|b - c| - 1`` floored at 0 so that ``b == c`` gives exactly ``p = 1``.

    ``difference = (b - c) / n``, which is exactly candidate accuracy minus champion accuracy.

    The interval is the Agresti-Min (2005) adjusted Wald interval for a difference of paired proportions: add 1/2
    to each of the four cells before the Wald formula. The plain Wald interval collapses to zero width (and claims
    certainty) when discordant pairs are few or all one-sided; the adjustment gives close to nominal coverage at
    no cost. With no discordant pair at all the two models are indistinguishable on these rows, and the interval
    is reported as ``[0, 0]``, which is also what a paired bootstrap gives. The interval is clipped to
    ``[-1, 1]``.

    Raises ``ValueError`` for empty or unequal-length inputs, values other than booleans / 0 / 1 (class labels
    passed by mistake would otherwise be silently cast to booleans), and a confidence outside (0, 1).
    """
    _check_confidence(confidence)
    candidate = _as_correctness(candidate_correct, "candidate_correct")
    champion = _as_correctness(champion_correct, "champion_correct")
    if candidate.shape != champion.shape:
        raise ValueError(f"candidate_correct and champion_correct must pair the same rows: got {candidate.size} "
                         f"and {champion.size} items")
    n = int(candidate.size)
    if n == 0:
        raise ValueError("cannot compare models on zero paired items: the test set is empty")

    b = int(np.count_nonzero(candidate & ~champion))
    c = int(np.count_nonzero(~candidate & champion))
    discordant = b + c
    difference = (b - c) / n

    if discordant == 0:
        return PairedComparison("mcnemar", 0.0, 0.0, 0.0, 1.0, n, confidence)

    if discordant < EXACT_DISCORDANT_LIMIT:
        from scipy.stats import binom

        p_value = 2.0 * float(binom.cdf(min(b, c), discordant, 0.5))
    else:
        statistic = max(abs(b - c) - 1, 0) ** 2 / discordant
        from scipy.stats import chi2

        p_value = float(chi2.sf(statistic, df=1))
    p_value = min(1.0, p_value)

    # Agresti-Min: half a pseudo-count in each of the four cells (two of which are the discordant ones).
    n_adj = n + 2.0
    b_adj, c_adj = b + 0.5, c + 0.5
    centre = (b_adj - c_adj) / n_adj
    variance = ((b_adj + c_adj) / n_adj - centre**2) / n_adj
    half_width = _z(confidence) * math.sqrt(max(variance, 0.0))
    ci_low = max(-1.0, centre - half_width)
    ci_high = min(1.0, centre + half_width)
    return PairedComparison("mcnemar", difference, ci_low, ci_high, p_value, n, confidence)


def paired_bootstrap(score: Callable[[np.ndarray], tuple[float, float]], n: int, *, resamples: int = 1000,
                     seed: int = 0, confidence: float = 0.95) -> PairedComparison:
    """Paired bootstrap of ``candidate metric - champion metric`` for any metric.

    ``score(indices)`` must return ``(candidate_metric, champion_metric)`` computed on the items at ``indices``
    (an int array that may contain repeats). It is called once with ``np.arange(n)`` for the observed difference,
    then once per resample with ``n`` indices drawn with replacement; both models are always scored on the *same*
    resample, which is what makes the comparison paired. Keep ``score`` vectorised (index precomputed arrays, count
    with ``np.bincount`` as :func:`macro_f1_from_labels` does): it runs ``resamples + 1`` times. Indices are drawn
    one resample at a time, so memory stays O(n) however many resamples are asked for.

    * Interval: the percentile interval of the resampled differences (quantiles ``(1 - confidence) / 2`` and
      ``(1 + confidence) / 2``).
    * p-value: by inverting the percentile interval, ``p = min(1, 2 * min(#(d* <= 0) + 1, #(d* >= 0) + 1) /
      (resamples + 1))``, i.e. about the smallest ``alpha`` for which the ``1 - alpha`` percentile interval
      excludes 0. This keeps the p-value and the interval consistent (``p < 1 - confidence`` exactly when the
      interval is clear of 0, up to resampling granularity), unlike the shift method, which can disagree with the
      reported interval on skewed metrics. The ``+ 1`` (Davison & Hinkley) counts the observed data as one
      resample, so the p-value is never 0: the smallest reachable value is ``2 / (resamples + 1)``, and a gate
      using ``alpha`` needs ``resamples`` comfortably above ``2 / alpha``.

    Deterministic for a fixed ``seed`` (numpy ``default_rng``). Raises ``ValueError`` for ``n < 1``,
    ``resamples < 1``, a confidence outside (0, 1), or a non-finite score.
    """
    _check_confidence(confidence)
    _check_n(n)
    _check_resamples(resamples)

    observed = _pair(score(np.arange(n)), "observed")
    differences = np.empty(resamples, dtype=float)
    for i, indices in enumerate(_resample_indices(n, resamples, seed)):
        candidate, champion = _pair(score(indices), f"resample {i}")
        differences[i] = candidate - champion

    ci_low, ci_high = _percentile_interval(differences, confidence)
    at_most_zero = int(np.count_nonzero(differences <= 0.0))
    at_least_zero = int(np.count_nonzero(differences >= 0.0))
    p_value = min(1.0, 2.0 * (min(at_most_zero, at_least_zero) + 1) / (resamples + 1))
    return PairedComparison("paired_bootstrap", observed[0] - observed[1], ci_low, ci_high, p_value, n, confidence)


def bootstrap_interval(score: Callable[[np.ndarray], float], n: int, *, resamples: int = 1000, seed: int = 0,
                       confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of one metric, for reports ("test accuracy 0.91 [0.89, 0.93]").

    ``score(indices)`` returns the metric on the items at ``indices`` (with repeats). The same seed draws the same
    resamples as :func:`paired_bootstrap`, so a report's per-model intervals and its paired comparison rest on the
    same resampled test sets. The percentile interval is used rather than a normal one because metrics near 0 or
    1 (and F1) have skewed sampling distributions, and it never leaves the metric's range.

    Raises ``ValueError`` for ``n < 1``, ``resamples < 1``, a confidence outside (0, 1), or a non-finite score.
    """
    _check_confidence(confidence)
    _check_n(n)
    _check_resamples(resamples)

    values = np.empty(resamples, dtype=float)
    for i, indices in enumerate(_resample_indices(n, resamples, seed)):
        values[i] = _finite(score(indices), f"resample {i}")
    return _percentile_interval(values, confidence)


def macro_f1_from_labels(gold: np.ndarray, predicted: np.ndarray, n_labels: int) -> float:
    """Macro-F1 over labels ``0 .. n_labels - 1`` from integer label arrays, vectorised with one ``np.bincount``.

    Matches ``sklearn.metrics.f1_score(gold, predicted, average="macro", labels=range(n_labels),
    zero_division=0)``: every label counts in the average, and a label that is neither in ``gold`` nor predicted
    scores 0 (so the metric does not jump when a bootstrap resample happens to miss a rare class). Per label,
    ``F1 = 2 TP / (2 TP + FP + FN)``, which equals the harmonic mean of precision and recall whenever it is
    defined. Cheap enough (one pass, no validation beyond range checks) to sit inside a 1000-resample bootstrap.
    """
    if n_labels < 1:
        raise ValueError(f"n_labels must be at least 1, got {n_labels}")
    gold = np.asarray(gold)
    predicted = np.asarray(predicted)
    if gold.shape != predicted.shape or gold.ndim != 1:
        raise ValueError(f"gold and predicted must be 1-D arrays of the same length, got shapes {gold.shape} and "
                         f"{predicted.shape}")
    if gold.size == 0:
        raise ValueError("cannot compute macro-F1 on zero items")
    for name, values in (("gold", gold), ("predicted", predicted)):
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"{name} must hold integer label ids, got dtype {values.dtype}")
        if values.min() < 0 or values.max() >= n_labels:
            raise ValueError(f"{name} holds label ids outside 0..{n_labels - 1}")

    confusion = np.bincount(gold * n_labels + predicted, minlength=n_labels * n_labels).reshape(n_labels, n_labels)
    true_positive = np.diag(confusion).astype(float)
    # 2TP + FP + FN = (TP + FN) + (TP + FP) = gold count + predicted count of the label
    denominator = confusion.sum(axis=1) + confusion.sum(axis=0)
    f1 = np.divide(2.0 * true_positive, denominator, out=np.zeros(n_labels), where=denominator > 0)
    return float(f1.mean())


# --- helpers -------------------------------------------------------------------------------------------------------


def _resample_indices(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of each bootstrap resample, one array at a time (O(n) memory), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        yield rng.integers(0, n, size=n)


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2.0))


def _as_correctness(values: Sequence[bool], name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one right/wrong flag per row), got shape {array.shape}")
    if array.dtype != bool:
        if array.size and not (np.issubdtype(array.dtype, np.number) and np.isin(array, (0, 1)).all()):
            raise ValueError(f"{name} must hold booleans or 0/1 (per-row correctness), not labels or scores")
        array = array.astype(bool)
    return array


def _pair(result: tuple[float, float], where: str) -> tuple[float, float]:
    try:
        candidate, champion = result
    except (TypeError, ValueError):
        raise ValueError(f"score must return (candidate_metric, champion_metric); got {result!r} for the {where} "
                         "indices") from None
    return _finite(candidate, where), _finite(champion, where)


def _finite(value: float, where: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"score returned a non-finite value ({number}) for the {where} indices")
    return number


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")


def _check_n(n: int) -> None:
    if n < 1:
        raise ValueError(f"cannot bootstrap zero items (n={n}): the test set is empty")


def _check_resamples(resamples: int) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
