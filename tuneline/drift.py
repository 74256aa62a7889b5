"""Drift checks of the retraining loop: is a new labeled batch like the data the model was trained on?

Before a batch is trained on, it is compared with the *reference* data (the training data so far). Four checks,
each one :class:`DriftCheck` with its statistic, threshold, status and one plain sentence with the numbers:

* :func:`label_shift`: chi-square test of homogeneity of the label counts (``scipy.stats.chi2_contingency`` on the
  2 x K table reference/batch x label), with a minimum-sample guard (a batch of 50 rows proves nothing either way,
  so the check is ``"skipped"`` and says so) and sparse labels (expected count below ``min_expected`` in either row)
  merged into one ``other`` group before testing, because the chi-square approximation is poor on tiny expected
  counts and a handful of rows of a rare label would otherwise decide the test. The sentence also gives the
  largest absolute change in label share, which is what a reader acts on (a p-value says only "not noise").
* :func:`text_length_shift`: two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``) of the text lengths,
  plus the change of the median. Lengths are integers, so there are ties; the KS p-value is then conservative
  (it flags less, never more, than ``alpha`` on same-distribution data).
* :func:`unknown_token_rate`: the share of tokens that are the tokenizer's unknown token, against the reference
  share. A batch in a script the tokenizer cannot read (Amharic, emoji for an uncased BERT vocabulary) is mostly
  ``[UNK]``: the model cannot learn from it, whatever its labels.
* :func:`unseen_labels`: labels (or entity types: the caller passes types) never seen in the reference data. A
  clear ``"stop"`` unless the label set may grow, then ``"warn"`` naming them (the head grows, and the run says so).
* :func:`champion_agreement`: how well the champion's answers agree with the batch's labels (the kind's
  ``agreement_metric``: accuracy, or a micro F1) against how well they agree with the earlier test rows, both above
  *chance*: its answers on the earlier test rows scored against their labels shuffled among the rows (for NER, each
  sentence's tags rotated). Chance is the earlier rows', not the batch's: a batch of one class is left as it is by
  any shuffle, so its own "chance" is its score and says nothing. The three tests above look at texts and label
  counts only, so a batch whose labels were shuffled by an exporter passes all of them; trained on, its test rows
  lower every model's score alike and the gate may promote the result. The statistic is the share of the champion's
  skill over chance that the batch's labels take away; over ``max_champion_drop``, even at the upper end of the
  batch score's bootstrap interval, it says the labels are wrong or their meaning changed: either way a person
  should look before a model learns it. Why above chance: a weak binary champion (accuracy 0.65) loses only a
  quarter of its score on shuffled labels (0.65 to 0.50) but all of its skill. Why the interval: a batch of 100 NER
  sentences is a few news documents, and one clean batch's F1 varies from 0.26 to 0.43 with the same champion
  (measured), while labels misaligned by a token or of another scheme fall to near 0.

:func:`check_drift` runs all five with thresholds from a flat dict and/or keyword arguments, with ``on_drift``
(``"warn"`` or ``"stop"``, for all checks or per check) deciding what a detected shift means.
:class:`DriftReport` collects them: its ``status`` is the worst check's, ``to_frame()`` is the table, ``plot()`` the
table with a length histogram and a label-share bar chart (PNG, matplotlib Agg).

The module depends on no task kind: the caller passes each kind's ``label_distribution(frame)`` results, the texts,
the lengths and a tokenizer. Counts are whatever the kind counts: rows for single-label kinds, label occurrences for
multi-label, tags for token classification. Tags within a sentence are not independent, so for token
classification pass ``batch_rows`` (sentences) for the guard, and read the chi-square p-value as optimistic.
numpy and pandas only at import (scipy.stats where a test runs); matplotlib is imported by :meth:`DriftReport.plot`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

Status = Literal["ok", "warn", "stop", "skipped"]
OnDrift = Literal["warn", "stop"]

#: Check names, in report order.
CHECKS = ("label_shift", "text_length_shift", "unknown_token_rate", "unseen_labels", "champion_agreement")

#: Worst-of order: a skipped check is worse than ``ok`` (nothing was shown) and better than a detected shift.
_SEVERITY = {"ok": 0, "skipped": 1, "warn": 2, "stop": 3}

#: Thresholds :func:`check_drift` accepts (flat, so they map one-to-one onto config keys), with their defaults.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "alpha": 0.01,                # significance level of the label-shift and text-length tests
    "min_rows": 200,              # minimum batch (and reference) rows before the label-shift test is run at all
    "min_length_rows": 30,        # the same for the text-length test (exact KS: valid on small batches)
    "min_expected": 5,            # label groups with a smaller expected count are merged into "other"
    "max_unknown_increase": 0.02,  # allowed increase of the unknown-token share (absolute, 0.02 = 2 points)
    "max_champion_drop": 0.5,     # allowed loss of the champion's skill over chance on the batch, as a share
    "min_agreement_rows": 30,     # minimum batch rows (with labels the champion knows) to compare its score on
}

#: how far above chance a champion's earlier score must be (at the low end of its interval) to judge labels by it:
#: the chance level is a mean of shuffles, and a champion that predicts one class everywhere scores chance to within
#: floating-point rounding (5e-17), on either side (loop QA: "a gain of 72788356972476304.0%")
SKILL_TOLERANCE = 1e-9

#: Name of the merged group of sparse labels (parenthesised so that it cannot collide with a real label name).
OTHER = "(other)"


@dataclass(frozen=True)
class DriftCheck:
    """One check's outcome. ``statistic`` is the test statistic (chi-square, KS D) or the measured value (unknown
    share, number of unseen labels); ``threshold`` what it was held against (alpha for tests); ``p_value`` is
    ``None`` for checks that are not tests."""

    name: str
    statistic: float
    p_value: float | None
    threshold: float
    status: Status
    sentence: str

    def __post_init__(self) -> None:
        if self.status not in _SEVERITY:
            raise ValueError(f"drift check {self.name!r}: status must be one of {sorted(_SEVERITY)}, "
                             f"got {self.status!r}")


@dataclass(frozen=True)
class ChampionAgreement:
    """The champion's score (``metric``: the kind's ``agreement_metric``) on a batch's labels and on the earlier
    test rows, and on the earlier rows with their labels shuffled (``reference_chance``: the mean over a few
    shuffles).

    ``rows`` counts the batch rows scored: those whose labels the champion knows (a label the set grows by is
    always "wrong" for it, and says nothing about the other labels). ``batch_high`` is the upper end of the batch
    score's bootstrap interval (its sampling noise; None: taken as ``batch``), ``reference_low`` the lower end of
    the earlier score's (None: taken as ``reference``). ``error`` when it could not be scored."""

    version: str
    metric: str
    reference: float = float("nan")
    batch: float = float("nan")
    rows: int = 0
    reference_rows: int = 0
    error: str | None = None
    reference_chance: float = 0.0
    batch_high: float | None = None
    reference_low: float | None = None


@dataclass(frozen=True)
class DriftReport:
    """All checks of one batch. ``status`` is the worst check's (``ok`` < ``skipped`` < ``warn`` < ``stop``)."""

    checks: list[DriftCheck] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.checks:
            return "skipped"
        return max((check.status for check in self.checks), key=_SEVERITY.__getitem__)

    def __getitem__(self, name: str) -> DriftCheck:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no drift check named {name!r}; the report has {[c.name for c in self.checks]}")

    def summary(self) -> str:
        """One line per check: its sentence (which ends with its status)."""
        return "\n".join(check.sentence for check in self.checks)

    def to_frame(self) -> pd.DataFrame:
        """The table: one row per check (name, status, statistic, p_value, threshold, sentence)."""
        columns = ["name", "status", "statistic", "p_value", "threshold", "sentence"]
        rows = [{"name": c.name, "status": c.status, "statistic": c.statistic,
                 "p_value": np.nan if c.p_value is None else c.p_value, "threshold": c.threshold,
                 "sentence": c.sentence} for c in self.checks]
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the overall status and every check (for an MLflow ``log_dict``)."""
        return {"status": self.status,
                "checks": [{"name": c.name, "status": c.status, "statistic": _json_float(c.statistic),
                            "p_value": None if c.p_value is None else _json_float(c.p_value),
                            "threshold": _json_float(c.threshold), "sentence": c.sentence} for c in self.checks]}

    def plot(self, path: Path, reference_lengths: Sequence[float] | None = None,
             batch_lengths: Sequence[float] | None = None, reference_labels: Mapping[str, int] | None = None,
             batch_labels: Mapping[str, int] | None = None, *, max_labels: int = 20) -> Path:
        """Write a PNG: the checks table on top, below it the text-length histograms (reference vs batch, as
        densities on shared bins) and the label shares side by side (the ``max_labels`` labels with the largest
        share in either, the rest summed as ``(other)``). A panel without data says so instead of failing."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path)
        fig = plt.figure(figsize=(13, 8.5))
        grid = fig.add_gridspec(2, 2, height_ratios=[1.0, 2.2], hspace=0.35, wspace=0.25)
        table_ax = fig.add_subplot(grid[0, :])
        lengths_ax = fig.add_subplot(grid[1, 0])
        labels_ax = fig.add_subplot(grid[1, 1])

        table_ax.axis("off")
        cells = [[c.name, c.status, _short(c.statistic), "" if c.p_value is None else _p_text(c.p_value),
                  _short(c.threshold)] for c in self.checks] or [["(no checks)", "", "", "", ""]]
        table = table_ax.table(cellText=cells, colLabels=["check", "status", "statistic", "p", "threshold"],
                               loc="center", cellLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(10)
        table.scale(1.0, 1.4)
        colours = {"ok": "#d9f2d9", "skipped": "#eeeeee", "warn": "#fff2cc", "stop": "#f8cbcb"}
        for row, check in enumerate(self.checks, start=1):
            table[row, 1].set_facecolor(colours[check.status])
        table_ax.set_title(f"Drift report: {self.status}", fontsize=13, fontweight="bold")

        _plot_lengths(lengths_ax, reference_lengths, batch_lengths)
        _plot_labels(labels_ax, reference_labels, batch_labels, max_labels)

        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        return path


# --- the checks ----------------------------------------------------------------------------------------------------


def label_shift(reference: Mapping[str, int], batch: Mapping[str, int], *, alpha: float = 0.01,
                min_rows: int = 200, min_expected: float = 5, batch_rows: int | None = None,
                reference_rows: int | None = None, per_row: bool = False, min_effect: float = 0.0,
                on_drift: OnDrift = "warn") -> DriftCheck:
    """Chi-square test of homogeneity: are the batch's label counts drawn from the reference's distribution?

    * Minimum-sample guard: with fewer than ``min_rows`` batch rows (``batch_rows`` when given, e.g. sentences for
      token classification; else the sum of the batch counts) or reference rows, the check is ``"skipped"``: a
      test on so few rows cannot tell a shift from noise, and a skipped check says so instead of a false "ok".
    * Labels whose expected count is below ``min_expected`` in either row of the table are merged into one
      ``(other)`` group; if that group is itself still too small, the smallest remaining label joins it, until
      every group is large enough. With fewer than two groups left there is nothing to test (``"skipped"``).
      New labels are tested here only through their share; that they are *new* is :func:`unseen_labels`' job.
    * ``p < alpha`` gives ``on_drift`` (``"warn"`` or ``"stop"``), otherwise ``"ok"``. For a 2 x 2 table scipy's
      Yates continuity correction applies (conservative).

    * ``per_row`` (multi-label: a row carries any number of labels): each label's share of *rows* is tested on its
      own, a 2 x 2 table of rows with and without it, and the smallest p is Bonferroni-corrected for the labels
      tested. One chi-square over label occurrences counted a row of three labels as three observations: the
      reference looked larger than its rows and p came out too small (loop QA). With ``min_effect``, a label flags
      the batch only if its share of rows also moved by a large effect: Cohen's h (the difference of the shares'
      arcsine square roots, doubled; 0.8 is Cohen's "large"). NER batches are a few news documents, whose entity mix
      differs from the corpus' by nature (the test alone flagged 83% of 200-sentence slices of CoNLL-2003 against its
      own first half), while a type whose tags were lost falls to no sentence (h 0.89 for MISC's 18.5%) and a batch
      with no tags at all moves the share of sentences without an entity from 19% to 100% (h 2.2). Why h and not
      points: 23 points is a type gone at a 23% share but a document's ordinary mix at 50%.

    The sentence gives chi-square, degrees of freedom, p, the row counts (``reference_rows``, ``batch_rows``: rows
    where they differ from the labels counted, as a sentence's tags or a multi-label row's labels do), how many
    labels were merged, and the largest absolute change in label share (over the original, unmerged labels).
    """
    _check_alpha(alpha)
    _check_on_drift(on_drift)
    ref = _counts(reference, "reference")
    new = _counts(batch, "batch")
    n_ref, n_new = sum(ref.values()), sum(new.values())
    rows = n_new if batch_rows is None else int(batch_rows)
    ref_rows = n_ref if reference_rows is None else int(reference_rows)
    if rows < 0 or ref_rows < 0:
        raise ValueError(f"batch_rows and reference_rows must be non-negative, got {batch_rows}, {reference_rows}")
    name = "label_shift"

    if rows < min_rows or n_new == 0:
        if n_new == 0:
            rows = 0
        return DriftCheck(name, float("nan"), None, alpha, "skipped",
                          f"label shift: skipped, the batch has {rows:,} labeled rows, fewer than the {min_rows:,} a "
                          f"chi-square test needs to tell a shift from noise (min_rows).")
    if ref_rows < min_rows or n_ref == 0:
        return DriftCheck(name, float("nan"), None, alpha, "skipped",
                          f"label shift: skipped, the reference data has {ref_rows:,} labeled rows, fewer than the "
                          f"{min_rows:,} a chi-square test needs (min_rows).")
    if per_row:
        return _label_presence_shift(ref, new, ref_rows, rows, alpha=alpha, min_expected=min_expected,
                                     min_effect=min_effect, on_drift=on_drift)

    over = (f"{n_new:,} new vs {n_ref:,} reference rows" if (rows, ref_rows) == (n_new, n_ref) else
            f"{n_new:,} new vs {n_ref:,} reference labels ({rows:,} vs {ref_rows:,} rows)")
    change_text = _largest_share_change(ref, new, n_ref, n_new)
    groups, table, merged = _merge_sparse(ref, new, min_expected)
    if len(groups) < 2:
        return DriftCheck(name, float("nan"), None, alpha, "skipped",
                          f"label shift: skipped, fewer than two label groups have an expected count of at least "
                          f"{min_expected:g} over {over}, so there is no distribution to compare; {change_text}.")

    from scipy.stats import chi2_contingency  # here, not at import: scipy.stats costs a process 1.3 s

    statistic, p_value, dof, _ = chi2_contingency(table)
    statistic, p_value = float(statistic), float(p_value)
    status: Status = on_drift if p_value < alpha else "ok"
    named = ", ".join(repr(label) for label in merged[:5]) + (f" and {len(merged) - 5} more" if len(merged) > 5 else "")
    merged_text = (f", {len(merged)} label{'s' if len(merged) != 1 else ''} ({named}) merged into other to keep "
                   f"every expected count at least {min_expected:g}" if merged else "")
    verdict = "shift detected" if status != "ok" else "no significant shift"
    return DriftCheck(name, statistic, p_value, alpha, status,
                      f"label shift: chi-square {statistic:.1f} ({int(dof)} df), {_p_text(p_value)} over "
                      f"{over}{merged_text}; {change_text}; {verdict} at alpha={alpha:g}: {status}.")


def _label_presence_shift(ref: dict[str, int], new: dict[str, int], ref_rows: int, rows: int, *, alpha: float,
                          min_expected: float, on_drift: OnDrift, min_effect: float = 0.0) -> DriftCheck:
    """:func:`label_shift` for rows of any number of labels: per label, rows with it against rows without it,
    reference against batch; the smallest p times the labels tested (Bonferroni). A label whose 2 x 2 table has an
    expected count under ``min_expected`` is not tested (too few rows to tell)."""
    from scipy.stats import chi2_contingency
    from scipy.stats.contingency import expected_freq

    name = "label_shift"
    change_text = _largest_share_change(ref, new, ref_rows, rows).replace("label share", "share of rows")
    over = f"{rows:,} new vs {ref_rows:,} reference rows ({sum(new.values()):,} vs {sum(ref.values()):,} labels)"
    tested: dict[str, tuple[float, float]] = {}
    for label in sorted(set(ref) | set(new)):
        with_ref, with_new = min(ref.get(label, 0), ref_rows), min(new.get(label, 0), rows)
        table = np.array([[with_ref, ref_rows - with_ref], [with_new, rows - with_new]], dtype=float)
        if (expected_freq(table) < min_expected).any():
            continue
        statistic, p_value, _, _ = chi2_contingency(table)
        tested[label] = (float(statistic), float(p_value))
    if not tested:
        return DriftCheck(name, float("nan"), None, alpha, "skipped",
                          f"label shift: skipped, no label has an expected count of at least {min_expected:g} in "
                          f"rows with and without it over {over}, so there is nothing to compare; {change_text}.")
    def effect(lab: str) -> float:  # Cohen's h of the label's share of rows, reference to batch
        before, after = min(ref.get(lab, 0), ref_rows) / ref_rows, min(new.get(lab, 0), rows) / rows
        return abs(2 * math.asin(math.sqrt(after)) - 2 * math.asin(math.sqrt(before)))

    large = [lab for lab in tested if effect(lab) >= min_effect]
    label = min(large or tested, key=lambda lab: (tested[lab][1], -tested[lab][0], lab))
    statistic, p_value = tested[label][0], min(1.0, tested[label][1] * len(tested))
    status: Status = on_drift if p_value < alpha and label in large else "ok"
    verdict = ("shift detected" if status != "ok" else "no significant shift") + f" at alpha={alpha:g}"
    if status == "ok" and p_value < alpha:
        verdict = (f"significant at alpha={alpha:g} but no share moved by a large effect (Cohen's h at least "
                   f"{min_effect:g}; largest {max(map(effect, tested)):.2f}), as one source's mix may differ")
    return DriftCheck(name, statistic, p_value, alpha, status,
                      f"label shift: per label, rows with it vs without; largest chi-square {statistic:.1f} (1 df) "
                      f"for {label!r}, {_p_text(p_value)} after Bonferroni over {len(tested)} labels, over {over}; "
                      f"{change_text}; {verdict}: {status}.")


#: a batch under ``large_below`` texts is flagged only when its lengths and the reference's barely overlap: KS D of
#: at least this (and ``p < alpha``). Measured on the shared data (halves of each train file, 200-300 draws): a
#: contiguous slice of 30 CoNLL-2003 sentences (one or two documents: sports tables, then prose) reaches D 0.34 in
#: the median and 0.61 at the 99th percentile, and was flagged 68% of the time by the test alone; slices of SST-2,
#: MRPC and GoEmotions stay under 0.30. A batch of ID numbers in place of sentences is at D 1.0.
LARGE_LENGTH_SHIFT = 0.6


def text_length_shift(reference_lengths: Sequence[float], batch_lengths: Sequence[float], *, alpha: float = 0.01,
                      min_rows: int = 30, large_below: int = 0, on_drift: OnDrift = "warn") -> DriftCheck:
    """Two-sample Kolmogorov-Smirnov test of text lengths (characters, words or tokens: the caller decides, the
    same unit for both), plus the change of the median. Fewer than ``min_rows`` batch or reference lengths:
    ``"skipped"``. ``p < alpha`` gives ``on_drift``; with fewer than ``large_below`` batch lengths, only where the
    shift is also large (D of at least :data:`LARGE_LENGTH_SHIFT`).

    Its own minimum, lower than the label test's: a batch of 60 ID numbers under the text headers (3 tokens against
    25) passed every check when the length test waited for 200 rows (pair QA, D1). Why the effect size below the
    label test's minimum: the KS p-value is exact on small samples, but a small batch is one source, a document or
    a day, and documents differ in length (a batch of 30 CoNLL sentences of one sports table is "shifted" against
    the whole news corpus): a warning for each would teach users to skip the drift lines."""
    _check_alpha(alpha)
    _check_on_drift(on_drift)
    ref = _lengths(reference_lengths, "reference_lengths")
    new = _lengths(batch_lengths, "batch_lengths")
    name = "text_length_shift"
    if new.size < min_rows:
        return DriftCheck(name, float("nan"), None, alpha, "skipped",
                          f"text length shift: skipped, the batch has {new.size:,} texts, fewer than the "
                          f"{min_rows:,} the KS test is run on (min_length_rows).")
    if ref.size < min_rows:
        return DriftCheck(name, float("nan"), None, alpha, "skipped",
                          f"text length shift: skipped, the reference data has {ref.size:,} texts, fewer than the "
                          f"{min_rows:,} the KS test is run on (min_length_rows).")
    from scipy.stats import ks_2samp

    result = ks_2samp(ref, new)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    small = new.size < large_below
    status: Status = on_drift if p_value < alpha and (not small or statistic >= LARGE_LENGTH_SHIFT) else "ok"
    median_ref, median_new = float(np.median(ref)), float(np.median(new))
    relative = f" ({(median_new - median_ref) / median_ref:+.0%})" if median_ref > 0 else ""
    verdict = "shift detected" if status != "ok" else "no significant shift"
    verdict += f" at alpha={alpha:g}"
    if small and status == "ok" and p_value < alpha:
        verdict = (f"significant at alpha={alpha:g} but not large: a batch under {large_below:,} texts is flagged "
                   f"from D={LARGE_LENGTH_SHIFT:g}, as one source's lengths may differ from the whole data's")
    return DriftCheck(name, statistic, p_value, alpha, status,
                      f"text length shift: KS D={statistic:.3f}, {_p_text(p_value)} over {new.size:,} new vs "
                      f"{ref.size:,} reference texts; median length {median_ref:g} -> {median_new:g}{relative}; "
                      f"{verdict}: {status}.")


#: The characters of each text the unknown-token rate reads (about 4,000 tokens, 30 times what the model reads)
UNKNOWN_RATE_CHARS = 20_000


def count_unknown_tokens(texts: Iterable[str | Sequence[str]], tokenizer: Any, *,
                         batch_size: int = 1024) -> tuple[int, int]:
    """``(unknown tokens, all tokens)`` over ``texts``, tokenized in batches without special tokens and without
    truncation or padding (the whole text counts, nothing else, up to its first :data:`UNKNOWN_RATE_CHARS`
    characters: a text of megabytes took seconds here, for a rate its first pages already tell). A text given as a
    list of words (token classification) is joined with spaces. A fast tokenizer encodes each batch in Rust."""
    unk_id = getattr(tokenizer, "unk_token_id", None)
    if unk_id is None:
        raise ValueError(f"the tokenizer {type(tokenizer).__name__} has no unknown token (unk_token_id is None): "
                         "the unknown-token rate is undefined for it (byte-level tokenizers never produce one)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    unknown = total = 0
    for chunk in _chunks(texts, batch_size):
        # Through the tokenizer's own call, never its backend directly: a tokenizer.json may carry padding and
        # truncation settings (MiniLM's pads to 128), which the backend would apply and the pads would count.
        chunk = [text[:UNKNOWN_RATE_CHARS] if isinstance(text, str) else text for text in chunk]
        id_lists = tokenizer(chunk, add_special_tokens=False, truncation=False, padding=False,
                             verbose=False)["input_ids"]  # verbose: no "longer than the maximum" warning
        for ids in id_lists:
            total += len(ids)
            unknown += sum(1 for token in ids if token == unk_id)
    return unknown, total


def unknown_token_share(texts: Iterable[str | Sequence[str]], tokenizer: Any, *,
                        batch_size: int = 1024) -> float | None:
    """The share of tokens that are the unknown token (``None`` when the texts have no tokens at all): compute it
    once on the reference texts and pass it to :func:`unknown_token_rate` as ``reference_rate``."""
    unknown, total = count_unknown_tokens(texts, tokenizer, batch_size=batch_size)
    return unknown / total if total else None


def unknown_token_rate(texts: Iterable[str | Sequence[str]], tokenizer: Any, *, reference_rate: float | None,
                       max_increase: float = 0.02, batch_size: int = 1024, on_drift: OnDrift = "warn") -> DriftCheck:
    """Share of the batch's tokens that are the tokenizer's unknown token, against ``reference_rate``: more than
    ``reference_rate + max_increase`` (absolute: 0.02 is two percentage points) gives ``on_drift``. Without a
    reference rate (or with a batch of no tokens) the check is ``"skipped"``, the batch's rate still reported."""
    _check_on_drift(on_drift)
    if not max_increase >= 0:
        raise ValueError(f"max_increase must be a non-negative share, got {max_increase}")
    if reference_rate is not None and not 0.0 <= reference_rate <= 1.0:
        raise ValueError(f"reference_rate must be a share between 0 and 1, got {reference_rate}")
    texts = list(texts)
    unknown, total = count_unknown_tokens(texts, tokenizer, batch_size=batch_size)
    unk = getattr(tokenizer, "unk_token", None) or "unknown"
    name = "unknown_token_rate"
    if total == 0:
        threshold = float("nan") if reference_rate is None else reference_rate + max_increase
        return DriftCheck(name, float("nan"), None, threshold, "skipped",
                          f"unknown-token rate: skipped, the batch's {len(texts):,} texts have no tokens.")
    rate = unknown / total
    measured = f"{_pct(rate)} of {total:,} tokens in {len(texts):,} new texts are {unk}"
    if reference_rate is None:
        return DriftCheck(name, rate, None, float("nan"), "skipped",
                          f"unknown-token rate: skipped, {measured}, but there is no reference rate to compare "
                          "with.")
    threshold = reference_rate + max_increase
    status: Status = on_drift if rate > threshold else "ok"
    verdict = "above" if status != "ok" else "within"
    return DriftCheck(name, rate, None, threshold, status,
                      f"unknown-token rate: {measured} vs {_pct(reference_rate)} in the reference "
                      f"({(rate - reference_rate) * 100:+.1f} points, {verdict} the allowed "
                      f"+{max_increase * 100:.1f}): {status}.")


def unseen_labels(reference_labels: Iterable[str], batch: Mapping[str, int], *, allow_growth: bool,
                  what: str = "label") -> DriftCheck:
    """Labels of the batch (with a count above zero) that the reference never had. Any: ``"stop"``, unless
    ``allow_growth`` (the label set may grow), then ``"warn"`` naming them. ``what`` names the thing in the
    sentence (``"entity type"`` when the caller passes types). The statistic is the number of unseen labels."""
    known = {str(label) for label in reference_labels}
    new = _counts(batch, "batch")
    unseen = sorted((label for label, count in new.items() if count > 0 and label not in known),
                    key=lambda label: (-new[label], label))
    name = "unseen_labels"
    if not unseen:
        return DriftCheck(name, 0.0, None, 0.0, "ok",
                          f"unseen {what}s: none, every {what} of the batch is among the {len(known):,} known: ok.")
    plural = f"{what}s" if len(unseen) != 1 else what
    listed = ", ".join(f"{label!r} ({new[label]:,} in the batch)" for label in unseen[:20])
    if len(unseen) > 20:
        listed += f" and {len(unseen) - 20} more"
    if allow_growth:
        return DriftCheck(name, float(len(unseen)), None, 0.0, "warn",
                          f"unseen {what}s: {len(unseen)} {plural} never seen in the reference data: {listed}; the "
                          f"{what} set may grow (allow_growth), so the head grows to include them: warn.")
    return DriftCheck(name, float(len(unseen)), None, 0.0, "stop",
                      f"unseen {what}s: {len(unseen)} {plural} never seen in the reference data: {listed}; the "
                      f"{what} set is fixed, so the batch cannot be used (allow the {what} set to grow, or fix the "
                      f"batch): stop.")


def champion_agreement(agreement: ChampionAgreement | None, *, max_drop: float, min_rows: int,
                       on_drift: OnDrift = "stop") -> DriftCheck:
    """The champion's skill over chance on the batch's labels against its skill over chance on its earlier test
    rows (see the module's docstring). ``statistic``: the share of that skill the batch takes away (1 - batch skill /
    earlier skill; negative when the batch is easier). Not a fixed-sample test: it stops when even the upper end of
    the batch score's interval (``batch_high``) loses more than ``max_drop`` of the skill, with a minimum number of
    rows. Skipped without a champion, when it could not be scored, on too few rows, or when the champion scores no
    better than chance on its own test rows (it cannot tell right labels from wrong ones)."""
    name = "champion_agreement"
    if agreement is None:
        return DriftCheck(name, float("nan"), None, max_drop, "skipped",
                          "labels vs champion: skipped, there is no champion yet to compare the labels with.")
    who = f"champion v{agreement.version}"
    if agreement.error is not None:
        return DriftCheck(name, float("nan"), None, max_drop, "skipped",
                          f"labels vs {who}: skipped, it could not be scored ({agreement.error}).")
    if agreement.rows < min_rows or agreement.reference_rows == 0:
        return DriftCheck(name, float("nan"), None, max_drop, "skipped",
                          f"labels vs {who}: skipped, {agreement.rows} batch rows with labels it knows "
                          f"(min_agreement_rows {int(min_rows)})"
                          + ("" if agreement.reference_rows else " and no earlier test row") + ".")
    metric = agreement.metric
    chance = agreement.reference_chance
    skill = agreement.reference - chance
    low = agreement.reference if agreement.reference_low is None else min(agreement.reference_low,
                                                                          agreement.reference)
    if low - chance <= SKILL_TOLERANCE:
        noise = f" (as little as {low:.3f} within its sampling noise)" if low < agreement.reference else ""
        return DriftCheck(name, float("nan"), None, max_drop, "skipped",
                          f"labels vs {who}: skipped, it scores {metric} {agreement.reference:.3f} on its earlier "
                          f"test rows ({agreement.reference_rows}){noise} and {chance:.3f} with their labels shuffled: "
                          "no better than chance, so it cannot tell right labels from wrong ones; the batch's labels "
                          "are not checked until a stronger champion is promoted.")
    high = agreement.batch if agreement.batch_high is None else max(agreement.batch_high, agreement.batch)
    lost = 1.0 - (agreement.batch - chance) / skill
    lost_at_least = 1.0 - (high - chance) / skill
    said = (f"labels vs {who}: it scores {metric} {agreement.batch:.3f} on this batch's labels ({agreement.rows} rows) "
            f"and {agreement.reference:.3f} on its earlier test rows ({agreement.reference_rows}; {chance:.3f} with "
            f"their labels shuffled: chance), so the batch's labels ")
    if lost >= 1.0:
        said += "take away all of its skill over chance (they score at chance or below)"
    elif lost > 0:
        said += f"take away {_pct(lost)} of its skill over chance"
        if high > agreement.batch:
            said += (f" (at least {_pct(lost_at_least)} within the batch's sampling noise)" if lost_at_least > 0
                     else " (none at the upper end of the batch's sampling noise)")
    else:
        said += "take away none of its skill over chance"
    if lost_at_least <= max_drop:
        return DriftCheck(name, lost, None, max_drop, "ok", said + f", within max_champion_drop {_pct(max_drop)}: ok.")
    return DriftCheck(name, lost, None, max_drop, on_drift,
                      said + f", over max_champion_drop {_pct(max_drop)}: the labels may be wrong (shuffled, "
                      f"shifted by a column or a token, another label scheme, lost) or their meaning changed, or "
                      f"the champion does not carry over to these texts (texts unlike its test rows); look at the "
                      f"batch before a model learns it: {on_drift}.")


def check_drift(*, reference_labels: Mapping[str, int], batch_labels: Mapping[str, int],
                reference_lengths: Sequence[float] | None = None, batch_lengths: Sequence[float] | None = None,
                batch_texts: Iterable[str | Sequence[str]] | None = None, tokenizer: Any = None,
                reference_unknown_rate: float | None = None,
                reference_texts: Iterable[str | Sequence[str]] | None = None,
                known_labels: Iterable[str] | None = None, batch_types: Mapping[str, int] | None = None,
                what: str = "label", allow_growth: bool = False, batch_rows: int | None = None,
                reference_rows: int | None = None, per_row: bool = False, min_effect: float = 0.0,
                thresholds: Mapping[str, float] | None = None,
                on_drift: OnDrift | Mapping[str, OnDrift] = "warn", champion: ChampionAgreement | None = None,
                on_label_disagreement: OnDrift = "stop", **threshold_kwargs: float) -> DriftReport:
    """Run the five checks on one batch and collect them in a :class:`DriftReport` (always five rows, in
    :data:`CHECKS` order; a check without its inputs is ``"skipped"`` with a sentence saying which is missing).

    * ``reference_labels`` / ``batch_labels``: the kind's ``label_distribution`` of the reference and the batch.
    * ``reference_lengths`` / ``batch_lengths``: one length per text, same unit for both.
    * ``batch_texts`` + ``tokenizer``: for the unknown-token rate, against ``reference_unknown_rate`` or, when that
      is not given, the rate measured on ``reference_texts``.
    * Unseen labels: ``known_labels`` (default: the labels counted in ``reference_labels``) against
      ``batch_types`` (default: ``batch_labels``); pass entity types for token classification, with
      ``what="entity type"``. This check stops unless ``allow_growth``, whatever ``on_drift`` says.
    * Thresholds: :data:`DEFAULT_THRESHOLDS`, overridden by ``thresholds`` (a flat dict, e.g. from a config
      section), overridden by keyword arguments (``alpha=0.001``). An unknown key is an error naming it.
    * ``on_drift``: what a detected shift means, ``"warn"`` or ``"stop"``, for every statistical check, or a dict
      per check name (missing names: ``"warn"``).
    * ``champion``: the champion's scores for :func:`champion_agreement` (skipped when None);
      ``on_label_disagreement`` is what a drop over ``max_champion_drop`` means.
    """
    settings = dict(DEFAULT_THRESHOLDS)
    for source in (thresholds or {}, threshold_kwargs):
        unknown = sorted(set(source) - set(DEFAULT_THRESHOLDS))
        if unknown:
            raise ValueError(f"unknown drift threshold(s) {', '.join(map(repr, unknown))}: the thresholds are "
                             f"{', '.join(DEFAULT_THRESHOLDS)}")
        settings.update(source)
    actions = _actions(on_drift)
    alpha, min_rows = float(settings["alpha"]), int(settings["min_rows"])

    checks = [label_shift(reference_labels, batch_labels, alpha=alpha, min_rows=min_rows,
                          min_expected=float(settings["min_expected"]), batch_rows=batch_rows,
                          reference_rows=reference_rows, per_row=per_row, min_effect=min_effect,
                          on_drift=actions["label_shift"])]

    if reference_lengths is None or batch_lengths is None:
        missing = "reference_lengths" if reference_lengths is None else "batch_lengths"
        checks.append(DriftCheck("text_length_shift", float("nan"), None, alpha, "skipped",
                                 f"text length shift: skipped, no {missing} were given."))
    else:
        checks.append(text_length_shift(reference_lengths, batch_lengths, alpha=alpha,
                                        min_rows=min(int(settings["min_length_rows"]), min_rows),  # lowered both
                                        large_below=min_rows,
                                        on_drift=actions["text_length_shift"]))

    max_increase = float(settings["max_unknown_increase"])
    if batch_texts is None or tokenizer is None:
        missing = "batch_texts" if batch_texts is None else "tokenizer"
        checks.append(DriftCheck("unknown_token_rate", float("nan"), None, float("nan"), "skipped",
                                 f"unknown-token rate: skipped, no {missing} was given."))
    else:
        reference_rate = reference_unknown_rate
        if reference_rate is None and reference_texts is not None:
            reference_rate = unknown_token_share(reference_texts, tokenizer)
        checks.append(unknown_token_rate(batch_texts, tokenizer, reference_rate=reference_rate,
                                         max_increase=max_increase, on_drift=actions["unknown_token_rate"]))

    known = set(known_labels) if known_labels is not None else {
        str(label) for label, count in reference_labels.items() if count > 0}
    checks.append(unseen_labels(known, batch_types if batch_types is not None else batch_labels,
                                allow_growth=allow_growth, what=what))
    _check_on_drift(on_label_disagreement)
    checks.append(champion_agreement(champion, max_drop=float(settings["max_champion_drop"]),
                                     min_rows=int(settings["min_agreement_rows"]), on_drift=on_label_disagreement))
    return DriftReport(checks)


# --- helpers -------------------------------------------------------------------------------------------------------


def _merge_sparse(reference: dict[str, int], batch: dict[str, int],
                  min_expected: float) -> tuple[list[str], np.ndarray, list[str]]:
    """Label groups, the 2 x K table (reference row, batch row) and the labels merged into :data:`OTHER`.

    A column's smallest expected count is ``column total * smallest row total / N``; columns below
    ``min_expected`` are merged into ``OTHER``; an ``OTHER`` that is still too small takes the smallest remaining
    column. Every round removes at least one column (or creates ``OTHER``), so the loop ends."""
    labels = sorted(label for label in set(reference) | set(batch) if reference.get(label, 0) + batch.get(label, 0))
    groups: list[str] = list(labels)
    table = np.array([[reference.get(label, 0) for label in labels],
                      [batch.get(label, 0) for label in labels]], dtype=float)
    merged: list[str] = []
    while len(groups) >= 2:
        row_totals = table.sum(axis=1)
        smallest_expected = table.sum(axis=0) * row_totals.min() / row_totals.sum()
        sparse = [i for i, value in enumerate(smallest_expected) if value < min_expected]
        if not sparse:
            break
        if OTHER in groups and sparse == [groups.index(OTHER)]:
            candidates = [i for i in range(len(groups)) if groups[i] != OTHER]
            sparse = sparse + [min(candidates, key=lambda i: (table[:, i].sum(), groups[i]))]
        merged.extend(groups[i] for i in sparse if groups[i] != OTHER)
        other_column = table[:, sparse].sum(axis=1, keepdims=True)
        keep = [i for i in range(len(groups)) if i not in sparse]
        groups = [groups[i] for i in keep] + [OTHER]
        table = np.hstack([table[:, keep], other_column])
    return groups, table, merged


def _largest_share_change(reference: dict[str, int], batch: dict[str, int], n_ref: int, n_new: int) -> str:
    labels = sorted(set(reference) | set(batch))
    changes = {label: (reference.get(label, 0) / n_ref, batch.get(label, 0) / n_new) for label in labels}
    label = max(labels, key=lambda lab: (abs(changes[lab][1] - changes[lab][0]), lab))
    before, after = changes[label]
    return (f"largest change in label share: {label!r} {_pct(before)} -> {_pct(after)} "
            f"({(after - before) * 100:+.1f} points)")


def _counts(distribution: Mapping[str, int], what: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label, count in distribution.items():
        value = float(count)
        if not math.isfinite(value) or value < 0 or value != int(value):
            raise ValueError(f"the {what} label distribution must hold non-negative whole counts; {label!r} has "
                             f"{count!r}")
        counts[str(label)] = counts.get(str(label), 0) + int(value)
    return counts


def _lengths(values: Sequence[float], what: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{what} must be one length per text (one-dimensional), got shape {array.shape}")
    if array.size and not np.isfinite(array).all():
        raise ValueError(f"{what} holds missing or non-finite lengths")
    if array.size and array.min() < 0:
        raise ValueError(f"{what} holds negative lengths")
    return array


def _chunks(texts: Iterable[str | Sequence[str]], size: int):
    chunk: list[str] = []
    for text in texts:
        chunk.append(text if isinstance(text, str) else " ".join(map(str, text)))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _actions(on_drift: OnDrift | Mapping[str, OnDrift]) -> dict[str, OnDrift]:
    statistical = ("label_shift", "text_length_shift", "unknown_token_rate")
    if isinstance(on_drift, str):
        _check_on_drift(on_drift)
        return {name: on_drift for name in statistical}
    unknown = sorted(set(on_drift) - set(statistical))
    if unknown:
        hint = (" (unseen labels always stop unless allow_growth is set)" if "unseen_labels" in unknown else "")
        raise ValueError(f"on_drift names unknown or fixed check(s) {', '.join(map(repr, unknown))}{hint}: it may "
                         f"set {', '.join(statistical)}")
    actions: dict[str, OnDrift] = {}
    for name in statistical:
        actions[name] = on_drift.get(name, "warn")
        _check_on_drift(actions[name])
    return actions


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha}")


def _check_on_drift(on_drift: str) -> None:
    if on_drift not in ("warn", "stop"):
        raise ValueError(f"on_drift must be 'warn' or 'stop', got {on_drift!r}")


def _p_text(p: float) -> str:
    """``p=0.034``; below 0.001 in powers of ten, ``p=1e-8`` (a drift p-value that small is worth its exponent)."""
    if p >= 0.001:
        return f"p={p:.3f}"
    if p <= 0.0:
        return "p<1e-300"
    mantissa, exponent = f"{p:.0e}".split("e")
    return f"p={mantissa}e{int(exponent)}"


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def _short(value: float) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _plot_lengths(ax: Any, reference: Sequence[float] | None, batch: Sequence[float] | None) -> None:
    ax.set_title("Text length (density)")
    if reference is None or batch is None or not len(reference) or not len(batch):
        ax.text(0.5, 0.5, "no lengths given", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    ref, new = _lengths(reference, "reference_lengths"), _lengths(batch, "batch_lengths")
    combined = np.concatenate([ref, new])
    upper = float(np.quantile(combined, 0.995))
    low = float(combined.min())
    edges = np.histogram_bin_edges(combined[combined <= upper], bins="auto", range=(low, max(upper, low + 1)))
    if edges.size > 51:
        edges = np.linspace(low, max(upper, low + 1), 51)
    ax.hist(np.clip(ref, None, upper), bins=edges, density=True, alpha=0.55, label=f"reference (n={ref.size:,})")
    ax.hist(np.clip(new, None, upper), bins=edges, density=True, alpha=0.55, label=f"batch (n={new.size:,})")
    ax.set_xlabel("length")
    ax.legend()


def _plot_labels(ax: Any, reference: Mapping[str, int] | None, batch: Mapping[str, int] | None,
                 max_labels: int) -> None:
    ax.set_title("Label share")
    if reference is None or batch is None:
        ax.text(0.5, 0.5, "no label counts given", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    ref, new = _counts(reference, "reference"), _counts(batch, "batch")
    n_ref, n_new = sum(ref.values()) or 1, sum(new.values()) or 1
    labels = sorted(set(ref) | set(new))
    shares = {label: (ref.get(label, 0) / n_ref, new.get(label, 0) / n_new) for label in labels}
    shown = sorted(labels, key=lambda label: -max(shares[label]))[:max_labels]
    rest = [label for label in labels if label not in shown]
    shown = sorted(shown)
    ref_shares = [shares[label][0] for label in shown]
    new_shares = [shares[label][1] for label in shown]
    if rest:
        shown.append(OTHER)
        ref_shares.append(sum(shares[label][0] for label in rest))
        new_shares.append(sum(shares[label][1] for label in rest))
    x = np.arange(len(shown))
    ax.bar(x - 0.2, ref_shares, width=0.4, label="reference")
    ax.bar(x + 0.2, new_shares, width=0.4, label="batch")
    ax.set_xticks(x, shown, rotation=45 if len(shown) > 5 else 0, ha="right" if len(shown) > 5 else "center")
    ax.set_ylabel("share")
    ax.legend()
