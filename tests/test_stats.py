"""tuneline.stats: the paired tests the gate relies on, pinned against scipy, sklearn and textbook formulas."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.stats import binomtest, norm
from sklearn.metrics import f1_score

from tuneline.stats import (
    PairedComparison,
    bootstrap_interval,
    macro_f1_from_labels,
    mcnemar,
    paired_bootstrap,
)


def table(b: int, c: int, both_right: int, both_wrong: int) -> tuple[list[bool], list[bool]]:
    """Per-row correctness for a 2x2 paired table: b = candidate right only, c = champion right only."""
    candidate = [True] * b + [False] * c + [True] * both_right + [False] * both_wrong
    champion = [False] * b + [True] * c + [True] * both_right + [False] * both_wrong
    return candidate, champion


def accuracy_pair(candidate_correct, champion_correct):
    candidate = np.asarray(candidate_correct, dtype=float)
    champion = np.asarray(champion_correct, dtype=float)
    return lambda indices: (candidate[indices].mean(), champion[indices].mean())


# --- PairedComparison ----------------------------------------------------------------------------------------------


def test_sentence_format_is_pinned():
    result = PairedComparison(test="mcnemar", difference=0.0123, ci_low=0.004, ci_high=0.021, p_value=0.004, n=872,
                              confidence=0.95)
    assert result.sentence("accuracy") == "accuracy +0.0123 (95% CI +0.0040 to +0.0210, McNemar p=0.004, n=872)"


def test_sentence_names_bootstrap_signs_negatives_and_floors_tiny_p():
    result = PairedComparison(test="paired_bootstrap", difference=-0.05, ci_low=-0.08, ci_high=-0.02,
                              p_value=0.0002, n=500, confidence=0.9)
    assert result.sentence("macro_f1") == ("macro_f1 -0.0500 (90% CI -0.0800 to -0.0200, paired bootstrap p<0.001, "
                                           "n=500)")


def test_paired_comparison_is_frozen():
    result = mcnemar([True, False], [True, False])
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.p_value = 0.0  # type: ignore[misc]


# --- mcnemar -------------------------------------------------------------------------------------------------------


def test_mcnemar_empty_input_is_an_error():
    with pytest.raises(ValueError, match="zero paired items"):
        mcnemar([], [])


def test_mcnemar_rejects_unpaired_or_non_boolean_input():
    with pytest.raises(ValueError, match="same rows"):
        mcnemar([True, False, True], [True, False])
    with pytest.raises(ValueError, match="booleans or 0/1"):
        mcnemar([0, 1, 2], [1, 1, 0])  # class labels passed instead of correctness
    with pytest.raises(ValueError, match="confidence"):
        mcnemar([True], [True], confidence=1.0)


def test_mcnemar_accepts_zero_one_integers_like_booleans():
    assert mcnemar([1, 0, 1, 1], [0, 0, 1, 0]) == mcnemar([True, False, True, True], [False, False, True, False])


def test_mcnemar_identical_predictions_mean_no_difference():
    correct = [True] * 70 + [False] * 30
    result = mcnemar(correct, correct)
    assert (result.difference, result.ci_low, result.ci_high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert result.n == 100 and result.test == "mcnemar" and result.confidence == 0.95


def test_mcnemar_candidate_fixing_30_of_100_rows_is_significant():
    candidate, champion = table(b=30, c=0, both_right=70, both_wrong=0)  # right everywhere; champion wrong on 30
    result = mcnemar(candidate, champion)
    assert result.difference == pytest.approx(0.30)
    assert result.p_value < 0.001
    assert 0.0 < result.ci_low < result.difference < result.ci_high <= 1.0


def test_mcnemar_tiny_difference_on_few_rows_is_not_significant():
    candidate, champion = table(b=2, c=1, both_right=15, both_wrong=2)  # +1 row out of 20
    result = mcnemar(candidate, champion)
    assert result.difference == pytest.approx(0.05)
    assert result.p_value > 0.05
    assert result.ci_low < 0.0 < result.ci_high


def test_mcnemar_exact_branch_matches_scipy_binomtest():
    candidate, champion = table(b=7, c=1, both_right=30, both_wrong=12)  # 8 discordant pairs: exact test
    result = mcnemar(candidate, champion)
    assert result.p_value == pytest.approx(binomtest(7, 8, 0.5).pvalue, rel=1e-12)
    # by hand: 2 * P(X <= 1), X ~ Binomial(8, 1/2) = 2 * (1 + 8) / 256
    assert result.p_value == pytest.approx(18 / 256, rel=1e-12)
    assert result.difference == pytest.approx(6 / 50)


def test_mcnemar_exact_branch_is_used_up_to_24_discordant_pairs():
    candidate, champion = table(b=17, c=7, both_right=60, both_wrong=16)  # 24 discordant pairs
    assert mcnemar(candidate, champion).p_value == pytest.approx(binomtest(17, 24, 0.5).pvalue, rel=1e-12)


def test_mcnemar_chi_square_branch_matches_textbook_formula():
    b, c = 40, 20  # 60 discordant pairs: chi-square with continuity correction
    candidate, champion = table(b=b, c=c, both_right=400, both_wrong=40)
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    expected = math.erfc(math.sqrt(statistic / 2))  # chi-square(1) survival function
    result = mcnemar(candidate, champion)
    assert result.p_value == pytest.approx(expected, rel=1e-9)
    assert result.difference == pytest.approx((b - c) / 500)


def test_mcnemar_chi_square_branch_starts_at_25_discordant_pairs():
    b, c = 18, 7
    candidate, champion = table(b=b, c=c, both_right=60, both_wrong=15)
    expected = math.erfc(math.sqrt((abs(b - c) - 1) ** 2 / (b + c) / 2))
    assert mcnemar(candidate, champion).p_value == pytest.approx(expected, rel=1e-9)


def test_mcnemar_balanced_discordance_gives_p_one():
    candidate, champion = table(b=15, c=15, both_right=60, both_wrong=10)  # correction must not overshoot
    result = mcnemar(candidate, champion)
    assert result.p_value == 1.0
    assert result.difference == 0.0
    assert result.ci_low < 0.0 < result.ci_high


def test_mcnemar_difference_is_the_accuracy_difference_and_swapping_negates_it():
    rng = np.random.default_rng(3)
    candidate = rng.random(300) < 0.8
    champion = rng.random(300) < 0.7
    forward = mcnemar(candidate, champion)
    backward = mcnemar(champion, candidate)
    assert forward.difference == pytest.approx(candidate.mean() - champion.mean())
    assert backward.difference == pytest.approx(-forward.difference)
    assert (backward.ci_low, backward.ci_high) == pytest.approx((-forward.ci_high, -forward.ci_low))
    assert backward.p_value == pytest.approx(forward.p_value)


def test_mcnemar_interval_is_agresti_min_adjusted_wald():
    b, c, n = 12, 5, 200
    candidate, champion = table(b=b, c=c, both_right=150, both_wrong=33)
    centre = (b - c) / (n + 2)
    p12, p21 = (b + 0.5) / (n + 2), (c + 0.5) / (n + 2)
    half = norm.ppf(0.975) * math.sqrt((p12 + p21 - (p12 - p21) ** 2) / (n + 2))
    result = mcnemar(candidate, champion)
    assert (result.ci_low, result.ci_high) == pytest.approx((centre - half, centre + half), rel=1e-12)


@pytest.mark.parametrize(("n", "p_b", "p_c"), [(150, 0.06, 0.02), (50, 0.08, 0.02)])
def test_mcnemar_interval_has_close_to_nominal_coverage(n, p_b, p_c):
    # 2000 simulated test sets with known discordance rates: the 95% interval must cover the true difference about
    # 95% of the time. On the small table the plain Wald interval falls short (about 0.91), which is why the
    # Agresti-Min pseudo-counts are there.
    rng = np.random.default_rng(11)
    true_difference = p_b - p_c
    counts = rng.multinomial(n, [p_b, p_c, 1 - p_b - p_c], size=2000)
    covered = wald_covered = 0
    for b, c, rest in counts:
        result = mcnemar(*table(b=int(b), c=int(c), both_right=int(rest), both_wrong=0))
        covered += result.ci_low <= true_difference <= result.ci_high
        d = (b - c) / n
        half = 1.96 * math.sqrt(max((b + c) / n - d * d, 0.0) / n)
        wald_covered += d - half <= true_difference <= d + half
    assert 0.93 <= covered / len(counts) <= 0.975
    if n == 50:
        assert wald_covered / len(counts) < 0.92


def test_mcnemar_and_paired_bootstrap_agree_on_accuracy():
    rng = np.random.default_rng(5)
    candidate = rng.random(2000) < 0.86
    champion = np.where(rng.random(2000) < 0.9, candidate, ~candidate)  # correlated, as real models are
    exact = mcnemar(candidate, champion)
    boot = paired_bootstrap(accuracy_pair(candidate, champion), 2000, resamples=2000, seed=1)
    assert boot.difference == pytest.approx(exact.difference)
    assert boot.ci_low == pytest.approx(exact.ci_low, abs=0.004)
    assert boot.ci_high == pytest.approx(exact.ci_high, abs=0.004)


# --- paired_bootstrap ----------------------------------------------------------------------------------------------


def test_paired_bootstrap_empty_input_is_an_error():
    with pytest.raises(ValueError, match="zero items"):
        paired_bootstrap(lambda indices: (0.0, 0.0), 0)


def test_paired_bootstrap_rejects_bad_arguments_and_scores():
    score = accuracy_pair([True, False], [False, False])
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap(score, 2, resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(score, 2, confidence=0.0)
    with pytest.raises(ValueError, match="non-finite"):
        paired_bootstrap(lambda indices: (float("nan"), 0.5), 2)
    with pytest.raises(ValueError, match=r"\(candidate_metric, champion_metric\)"):
        paired_bootstrap(lambda indices: 0.5, 2)  # type: ignore[arg-type, return-value]


def test_paired_bootstrap_identical_models_mean_no_difference():
    correct = np.array([True] * 70 + [False] * 30)
    result = paired_bootstrap(accuracy_pair(correct, correct), 100, resamples=200)
    assert (result.difference, result.ci_low, result.ci_high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert result.test == "paired_bootstrap" and result.n == 100


def test_paired_bootstrap_candidate_fixing_30_of_100_rows_is_significant():
    candidate, champion = table(b=30, c=0, both_right=70, both_wrong=0)
    result = paired_bootstrap(accuracy_pair(candidate, champion), 100, resamples=2000)
    assert result.difference == pytest.approx(0.30)
    assert result.p_value < 0.001  # the floor 2 / (resamples + 1) is 0.001 only at 1999 resamples
    assert result.p_value == pytest.approx(2 / 2001)
    assert 0.0 < result.ci_low < result.difference < result.ci_high


def test_paired_bootstrap_tiny_difference_on_few_rows_is_not_significant():
    candidate, champion = table(b=2, c=1, both_right=15, both_wrong=2)
    result = paired_bootstrap(accuracy_pair(candidate, champion), 20)
    assert result.difference == pytest.approx(0.05)
    assert result.p_value > 0.05
    assert result.ci_low <= 0.0 <= result.ci_high


def test_paired_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(2)
    candidate, champion = rng.random(400) < 0.8, rng.random(400) < 0.75
    score = accuracy_pair(candidate, champion)
    first = paired_bootstrap(score, 400, resamples=300, seed=42)
    assert paired_bootstrap(score, 400, resamples=300, seed=42) == first
    assert paired_bootstrap(score, 400, resamples=300, seed=43) != first


def test_paired_bootstrap_scores_all_rows_then_same_size_resamples():
    calls: list[np.ndarray] = []

    def score(indices: np.ndarray) -> tuple[float, float]:
        calls.append(indices.copy())
        return 0.5, 0.5

    paired_bootstrap(score, 50, resamples=20)
    assert len(calls) == 21
    np.testing.assert_array_equal(calls[0], np.arange(50))
    assert all(call.shape == (50,) and call.min() >= 0 and call.max() < 50 for call in calls[1:])
    assert any(len(np.unique(call)) < 50 for call in calls[1:])  # drawn with replacement


def test_paired_bootstrap_with_vectorised_macro_f1():
    # the gate's default use: macro-F1 from label ids, 1000 resamples of 5000 rows (kept efficient, not timed)
    rng = np.random.default_rng(7)
    n, k = 5000, 4
    gold = rng.integers(0, k, n)
    candidate = np.where(rng.random(n) < 0.80, gold, rng.integers(0, k, n))
    champion = np.where(rng.random(n) < 0.60, gold, rng.integers(0, k, n))

    def score(indices: np.ndarray) -> tuple[float, float]:
        g = gold[indices]
        return macro_f1_from_labels(g, candidate[indices], k), macro_f1_from_labels(g, champion[indices], k)

    result = paired_bootstrap(score, n, resamples=1000, seed=0)
    assert result.difference == pytest.approx(f1_score(gold, candidate, average="macro")
                                              - f1_score(gold, champion, average="macro"))
    assert 0.0 < result.ci_low < result.difference < result.ci_high
    assert result.p_value == pytest.approx(2 / 1001)


# --- bootstrap_interval --------------------------------------------------------------------------------------------


def test_bootstrap_interval_of_accuracy_covers_the_true_value():
    rng = np.random.default_rng(0)
    correct = rng.random(2000) < 0.8  # true accuracy 0.8
    low, high = bootstrap_interval(lambda indices: correct[indices].mean(), 2000)
    assert low < 0.8 < high
    assert low < correct.mean() < high
    # width close to the normal approximation 2 * 1.96 * sqrt(p(1-p)/n)
    assert high - low == pytest.approx(2 * 1.96 * math.sqrt(0.8 * 0.2 / 2000), rel=0.15)


def test_bootstrap_interval_is_deterministic_and_validates():
    correct = np.random.default_rng(1).random(300) < 0.9
    score = lambda indices: correct[indices].mean()  # noqa: E731
    assert bootstrap_interval(score, 300, seed=5) == bootstrap_interval(score, 300, seed=5)
    with pytest.raises(ValueError, match="zero items"):
        bootstrap_interval(score, 0)
    with pytest.raises(ValueError, match="non-finite"):
        bootstrap_interval(lambda indices: float("inf"), 3)


# --- macro_f1_from_labels ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_f1_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n_labels = 6
    gold = rng.integers(0, 4, 300)  # labels 4 and 5 never occur in gold ...
    predicted = np.where(rng.random(300) < 0.6, gold, rng.integers(0, 5, 300))  # ... 5 is never predicted either
    expected = f1_score(gold, predicted, average="macro", labels=range(n_labels), zero_division=0)
    assert macro_f1_from_labels(gold, predicted, n_labels) == pytest.approx(expected, abs=1e-12)


def test_macro_f1_edge_cases():
    assert macro_f1_from_labels(np.array([0, 1, 2]), np.array([0, 1, 2]), 3) == 1.0
    assert macro_f1_from_labels(np.array([0, 0]), np.array([1, 1]), 2) == 0.0
    with pytest.raises(ValueError, match="zero items"):
        macro_f1_from_labels(np.array([], dtype=int), np.array([], dtype=int), 2)
    with pytest.raises(ValueError, match="outside"):
        macro_f1_from_labels(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="same length"):
        macro_f1_from_labels(np.array([0, 1]), np.array([0]), 2)


def test_a_sentence_says_which_one_decides_when_the_interval_and_the_test_disagree():
    """Five rows fixed, none broken, of 872: the adjusted Wald interval excludes 0 while the exact test's p is 0.062.
    The gate's sentence showed both without a word on which one decided."""
    candidate, champion = table(b=5, c=0, both_right=600, both_wrong=267)
    result = mcnemar(candidate, champion)
    assert result.ci_low > 0 and result.p_value > 0.05
    assert result.sentence("accuracy") == (
        "accuracy +0.0057 (95% CI +0.0002 to +0.0112, McNemar p=0.062, n=872; at this margin the interval and the "
        "test disagree: the test's p decides)")
    clear = mcnemar(*table(b=40, c=10, both_right=600, both_wrong=222))
    assert clear.p_value < 0.05 and clear.ci_low > 0 and "disagree" not in clear.sentence("accuracy")
    unclear = mcnemar(*table(b=3, c=2, both_right=600, both_wrong=267))
    assert unclear.p_value > 0.05 and unclear.ci_low < 0 and "disagree" not in unclear.sentence("accuracy")
