"""The gate's paired test against the best baseline said "not significant at 0.05: too few test rows to tell this
model from one that learned nothing" whatever the outcome: a multi-label model scoring micro-F1 0.125 against the
label prior's 0.286 on 100 rows (p=0.002, the whole interval below zero) was reported as "not significant", and a
pair model predicting exactly what the majority baseline predicts (p=1.000) was blamed on the test size. Now a
significantly worse model is called so, and no gain is no gain; "too few test rows" is kept for a gain the test
cannot confirm."""

from __future__ import annotations

from tuneline.tasks.gate import decide_promotion
from tuneline.stats import mcnemar


def outcome(candidate_right: list[bool], baseline_right: list[bool], score: float, baseline: float):
    versus = mcnemar(candidate_right, baseline_right)
    return versus, decide_promotion("accuracy", score, None, 0.0, 0.01, ("label_prior", baseline), 0.01,
                                    baseline_comparison=versus, require_significant_gain_over_baseline=True)


def test_a_model_significantly_below_the_baseline_is_not_called_not_significant():
    # 100 rows: the baseline right on 80, the model on 40 (every row the model gets right, the baseline does too)
    versus, decision = outcome([True] * 40 + [False] * 60, [True] * 80 + [False] * 20, 0.40, 0.80)
    assert versus.p_value < 0.05 and versus.difference < 0
    sentence = next(r for r in decision.reasons if r.startswith("paired test vs baseline label_prior"))
    assert "not significant" not in sentence and "too few test rows" not in sentence
    assert sentence.endswith("significant at 0.05: really worse than a model that learned nothing")
    assert decision.promote is False and sentence in decision.failed


def test_no_gain_at_all_is_not_blamed_on_the_test_size():
    same = [True] * 30 + [False] * 30
    versus, decision = outcome(same, same, 0.5, 0.5)
    sentence = next(r for r in decision.reasons if r.startswith("paired test vs baseline label_prior"))
    assert versus.difference == 0
    assert sentence.endswith("not significant at 0.05: no gain over a model that learned nothing")


def test_a_small_gain_the_test_cannot_confirm_still_names_the_test_size():
    versus, decision = outcome([True] * 5 + [False] * 3, [True] * 4 + [False] * 4, 0.625, 0.5)
    sentence = next(r for r in decision.reasons if r.startswith("paired test vs baseline label_prior"))
    assert sentence.endswith("not significant at 0.05: too few test rows to tell this model from one that learned "
                             "nothing")


def test_the_chance_baselines_paired_test_names_the_shuffle_it_compares_with():
    """Chance's score is the mean of 8 shuffles, its paired test one shuffle's answers: "macro_f1 0.3480 < best
    baseline chance 0.3406 + ...; paired test vs baseline chance: macro_f1 +0.0000" read as a contradiction
    (dirty-data QA, D5). The shuffle's own score is said beside it."""
    same = [True] * 30 + [False] * 30
    versus = mcnemar(same, same)
    decision = decide_promotion("accuracy", 0.5, None, 0.0, 0.01, ("chance", 0.4931), 0.01,
                                baseline_comparison=versus, require_significant_gain_over_baseline=False)
    sentence = next(r for r in decision.reasons if r.startswith("paired test vs baseline chance"))
    assert sentence.startswith("paired test vs baseline chance (its shuffle nearest their mean, accuracy 0.5000): "
                               "accuracy +0.0000"), sentence
