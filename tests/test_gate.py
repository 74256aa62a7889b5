"""The gate rule (pure): who becomes champion, and why."""

from __future__ import annotations

import pytest

from tuneline.tasks.gate import ChampionScore, decide_promotion
from tests_support import store_client


def decide(candidate, champion=None, min_metric=0.7, tolerance=0.01):
    return decide_promotion("macro_f1", candidate, champion, min_metric, tolerance)


def test_first_model_over_min_is_promoted():
    decision = decide(0.82)
    assert decision.promote is True
    assert decision.champion is None
    assert decision.reasons[0] == "macro_f1 0.8200 >= min_metric 0.7000"
    assert "no champion yet" in decision.reasons[1]


def test_first_model_under_min_is_rejected():
    decision = decide(0.65)
    assert decision.promote is False
    assert decision.reasons[0] == "macro_f1 0.6500 < min_metric 0.7000"


def test_first_model_exactly_at_min_is_promoted():
    assert decide(0.7).promote is True


def test_better_than_champion_is_promoted():
    decision = decide(0.90, ChampionScore(version="3", metric=0.85))
    assert decision.promote is True
    assert decision.reasons[1] == "macro_f1 0.9000 >= champion v3 0.8500 - tolerance 0.0100 = 0.8400"


def test_worse_than_champion_beyond_tolerance_keeps_champion():
    decision = decide(0.80, ChampionScore(version="2", metric=0.85))
    assert decision.promote is False
    assert decision.reasons[0].startswith("macro_f1 0.8000 >=")  # the minimum itself passed
    assert decision.reasons[1] == "macro_f1 0.8000 < champion v2 0.8500 - tolerance 0.0100 = 0.8400"


def test_a_refusal_names_what_failed_first():
    """A refusal's line began with the checks it passed ("not promoted - macro_f1 0.1265 >= min_metric 0.0000; ..."),
    as if those had refused it."""
    decision = decide_promotion("macro_f1", 0.80, ChampionScore(version="2", metric=0.85), 0.7, 0.01,
                                best_baseline=("zero_shot", 0.52), min_gain_over_baseline=0.01)
    assert decision.promote is False
    assert decision.failed == ["macro_f1 0.8000 < champion v2 0.8500 - tolerance 0.0100 = 0.8400"]
    assert decision.explained() == (
        "macro_f1 0.8000 < champion v2 0.8500 - tolerance 0.0100 = 0.8400 (also checked: macro_f1 0.8000 >= "
        "min_metric 0.7000; macro_f1 0.8000 >= best baseline zero_shot 0.5200 + min_gain_over_baseline 0.0100)")
    promoted = decide(0.90, ChampionScore(version="3", metric=0.85))
    assert promoted.failed == [] and promoted.explained() == "; ".join(promoted.reasons)
    unscorable = decide(0.95, ChampionScore(version="5", metric=None, error="RuntimeError: broken"))
    assert unscorable.explained().startswith("champion v5 could not be scored")


def test_worse_by_exactly_the_tolerance_is_promoted():
    decision = decide(0.82, ChampionScore(version="1", metric=0.83), tolerance=0.01)
    assert decision.promote is True
    assert "0.8200 >= champion v1 0.8300" in decision.reasons[1]
    # 0.8 - 0.1 is 0.7000000000000001 in floating point; the gate must still treat 0.7 as on the edge.
    assert 0.8 - 0.1 > 0.7
    edge = decide(0.7, ChampionScore(version="1", metric=0.8), min_metric=0.5, tolerance=0.1)
    assert edge.promote is True
    assert "= 0.7000" in edge.reasons[1]


def test_worse_by_less_than_the_tolerance_is_promoted():
    assert decide(0.845, ChampionScore(version="1", metric=0.85), tolerance=0.01).promote is True


def test_worse_by_just_over_the_tolerance_is_not_promoted():
    assert decide(0.8399, ChampionScore(version="1", metric=0.85), tolerance=0.01).promote is False


def test_under_min_even_if_better_than_champion_is_rejected():
    decision = decide(0.6, ChampionScore(version="4", metric=0.5))
    assert decision.promote is False
    assert decision.reasons[0] == "macro_f1 0.6000 < min_metric 0.7000"
    assert "0.6000 >= champion v4 0.5000" in decision.reasons[1]


def test_unscorable_champion_is_not_replaced():
    champion = ChampionScore(version="5", metric=None, error="RuntimeError: broken model")
    decision = decide(0.95, champion)
    assert decision.promote is False
    assert decision.champion is champion
    assert "champion v5 could not be scored" in decision.reasons[1]
    assert "RuntimeError: broken model" in decision.reasons[1]
    assert decision.reasons[0] == "macro_f1 0.9500 >= min_metric 0.7000"


# --- issue 10: beat the baselines, no slide, significance --------------------------------------------------------

def test_a_model_no_better_than_its_majority_baseline_is_never_promoted():
    # the LoRA run that learned nothing: accuracy 0.5092, exactly the majority baseline, over min_metric 0.5
    decision = decide_promotion("accuracy", 0.5092, None, 0.5, 0.0, best_baseline=("majority", 0.5092),
                                min_gain_over_baseline=0.01)
    assert decision.promote is False
    assert decision.reasons[0] == "accuracy 0.5092 >= min_metric 0.5000"
    assert decision.reasons[1].startswith("accuracy 0.5092 < best baseline majority 0.5092 + min_gain_over_baseline")
    beats = decide_promotion("accuracy", 0.80, None, 0.5, 0.0, best_baseline=("zero_shot", 0.67),
                             min_gain_over_baseline=0.01)
    assert beats.promote is True and "best baseline zero_shot 0.6700" in beats.reasons[1]


def test_tolerance_cannot_slide_below_the_best_ever_promoted():
    champion = ChampionScore(version="7", metric=0.845)  # already slid once from a best of 0.86
    first = decide(0.84, champion, tolerance=0.01)
    assert first.promote is True  # without a record of the best, within tolerance of the champion
    slid = decide_promotion("macro_f1", 0.84, champion, 0.7, 0.01, best_ever=0.86)
    assert slid.promote is False
    assert "0.8400 < best ever promoted 0.8600 - tolerance 0.0100" in slid.reasons[-1]
    better = decide_promotion("macro_f1", 0.87, champion, 0.7, 0.01, best_ever=0.86)
    assert better.promote is True  # an improvement is never held back by the floor


def test_require_significant_gain_uses_the_paired_test():
    from tuneline.stats import mcnemar

    champion = ChampionScore(version="2", metric=0.80)
    small = mcnemar([True] * 81 + [False] * 19, [True] * 80 + [False] * 20)  # one more right answer of 100
    kept = decide_promotion("accuracy", 0.81, champion, 0.5, 0.0, comparison=small, require_significant_gain=True)
    assert kept.promote is False
    assert "McNemar" in kept.reasons[-2] and "not significant at 0.05" in kept.reasons[-2]
    assert decide_promotion("accuracy", 0.81, champion, 0.5, 0.0, comparison=small).promote is True
    big = mcnemar([True] * 100, [True] * 70 + [False] * 30)
    promoted = decide_promotion("accuracy", 1.0, champion, 0.5, 0.0, comparison=big, require_significant_gain=True)
    assert promoted.promote is True and "significant at 0.05: a real gain" in promoted.reasons[-1]
    worse = decide_promotion("accuracy", 0.70, ChampionScore(version="2", metric=1.0), 0.5, 0.0,
                             comparison=mcnemar([True] * 70 + [False] * 30, [True] * 100))
    assert worse.promote is False and "significant at 0.05: really worse" in worse.reasons[-1]


def test_forgetting_bounds_refuse_a_model_that_forgot_overall_or_in_one_class():
    from tuneline.tasks.forgetting import Forgetting

    champion = ChampionScore(version="3", metric=0.80)
    kept = Forgetting(metric="macro_f1", champion_version="3", rows=100, champion=0.80, candidate=0.79,
                      per_class={"a": (0.9, 0.88), "b": (0.7, 0.69)})
    forgot_one = Forgetting(metric="macro_f1", champion_version="3", rows=100, champion=0.80, candidate=0.79,
                            per_class={"a": (0.9, 0.60), "b": (0.7, 0.99)})
    forgot_all = Forgetting(metric="macro_f1", champion_version="3", rows=100, champion=0.80, candidate=0.70)
    rule = dict(min_metric=0.5, tolerance=0.05, max_forgetting=0.02, max_class_forgetting=0.10)
    assert decide_promotion("macro_f1", 0.82, champion, forgetting=kept, **rule).promote is True
    one = decide_promotion("macro_f1", 0.82, champion, forgetting=forgot_one, **rule)
    assert one.promote is False and "a F1 dropped 0.3000 > max_class_forgetting 0.1000" in one.reasons[-1]
    every = decide_promotion("macro_f1", 0.82, champion, forgetting=forgot_all, **rule)
    assert every.promote is False and "a drop of 0.1000 > max_forgetting 0.0200" in every.reasons[-1]


def test_an_mlflow_error_reading_the_champion_fails_instead_of_meaning_no_champion(tmp_path):
    import pytest
    from mlflow.tracking import MlflowClient

    from tuneline.tasks.gate import champion_version

    fresh = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'fresh.db'}",
                         registry_uri=f"sqlite:///{tmp_path / 'fresh.db'}")
    assert champion_version(fresh, "never-registered") is None  # no such model: really no champion
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException):  # any other registry error (here: an invalid name) is raised
        champion_version(fresh, "")
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database" * 100)
    with pytest.raises(Exception) as error:  # the store cannot be read: raised, never "no champion"
        champion_version(MlflowClient(tracking_uri=f"sqlite:///{broken}", registry_uri=f"sqlite:///{broken}"),
                         "any-model")
    assert "not a database" in str(error.value) or "file is not a database" in repr(error.value)


def test_the_best_ever_floor_holds_only_on_the_test_rows_it_was_measured_on(tmp_path):
    import pandas as pd

    from tuneline.kinds import kind_of
    from tuneline.tasks.gate import BEST_TAG, BEST_TEST_TAG, _best_ever, test_rows_hash

    kind = kind_of("classification")
    rows = pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", "y", "x"]})
    same = test_rows_hash(rows.iloc[::-1], kind)  # the same rows in another order
    grown = test_rows_hash(pd.concat([rows, pd.DataFrame({"text": ["d"], "label": ["y"]})]), kind)
    assert same == test_rows_hash(rows, kind) and grown != same
    uri = f"sqlite:///{tmp_path / 'gate.db'}"
    client = store_client(uri)
    client.create_registered_model("m")
    assert _best_ever(client, "m", "macro_f1", same) is None
    client.set_registered_model_tag("m", BEST_TAG.format(metric="macro_f1"), "0.870800")
    assert _best_ever(client, "m", "macro_f1", same) == 0.8708  # a record from before the rows were tagged
    client.set_registered_model_tag("m", BEST_TEST_TAG.format(metric="macro_f1"), same)
    assert _best_ever(client, "m", "macro_f1", same) == 0.8708
    assert _best_ever(client, "m", "macro_f1", grown) is None  # measured on other rows: no floor for these


def test_a_gain_on_the_earlier_rows_is_said_as_a_gain_not_a_negative_drop():
    from tuneline.tasks.forgetting import Forgetting

    gained = Forgetting(metric="macro_f1", champion_version="3", rows=50, champion=0.70, candidate=0.747)
    decision = decide_promotion("macro_f1", 0.8, ChampionScore(version="3", metric=0.78), 0.5, 0.05,
                                forgetting=gained, max_forgetting=0.02, max_class_forgetting=0.1)
    assert decision.promote is True
    assert "0.7000 (champion v3) -> 0.7470, no drop (a gain of 0.0470), within max_forgetting 0.0200" in " ".join(
        decision.reasons) and "-0.0470" not in " ".join(decision.reasons)
    same = Forgetting(metric="macro_f1", champion_version="3", rows=50, champion=0.70, candidate=0.70)
    decision = decide_promotion("macro_f1", 0.8, ChampionScore(version="3", metric=0.78), 0.5, 0.05,
                                forgetting=same, max_forgetting=0.02, max_class_forgetting=0.1)
    assert "no drop (a gain of 0.0000)" in " ".join(decision.reasons)  # was "a gain of -0.0000"
    risen = Forgetting(metric="macro_f1", champion_version="3", rows=50, champion=0.70, candidate=0.75,
                       per_class={"a": (0.60, 0.65), "b": (0.80, 0.85)})
    decision = decide_promotion("macro_f1", 0.8, ChampionScore(version="3", metric=0.78), 0.5, 0.05,
                                forgetting=risen, max_forgetting=0.02, max_class_forgetting=0.1)
    assert ("no class dropped on the earlier test rows (every class's F1 held or rose) within max_class_forgetting "
            "0.1000") in " ".join(decision.reasons)  # was "F1 dropped -0.0500", then "a F1 rose 0.0500"


def test_macro_f1_averages_the_classes_present_in_gold():
    """A perfect model on a test split holding 3 of 5 classes scored 0.6 when absent classes counted as F1 0; the
    bootstrap's subset score gives the same number as the score (fixed over resamples). A class the rows lack is not
    averaged in because the model predicted it: two stray guesses of one took a third off macro-F1 at the same
    accuracy, and champion and candidate were averaged over different classes (metrics QA)."""
    import numpy as np

    from tuneline.kinds import kind_of

    kind = kind_of("classification")
    labels = ["a", "b", "c", "d", "e"]
    gold = ["a", "b", "c"] * 10
    perfect = kind.score(gold, gold, labels)
    assert perfect["macro_f1"] == 1.0 and perfect["weighted_f1"] == 1.0
    # a wrong guess of an absent class costs the gold class its recall ('c': 9 of 10), as any wrong guess does
    guessed = gold[:-1] + ["d"]
    scored = kind.score(gold, guessed, labels)["macro_f1"]
    assert scored == pytest.approx((1 + 1 + 2 * 9 / 19) / 3)
    assert kind.score(gold, gold[:-1] + ["a"], labels)["accuracy"] == kind.score(gold, guessed, labels)["accuracy"]
    everything = np.arange(len(gold))
    assert kind.subset_score(gold, guessed, labels, "macro_f1")(everything) == pytest.approx(scored)
    assert kind.subset_score(gold, gold, labels, "macro_f1")(everything) == 1.0


def test_a_gain_over_the_baseline_too_small_to_tell_is_named_and_refused_on_request():
    """8 test rows: macro-F1 0.619 against zero-shot 0.500 (one row) promoted a model that had learned nothing."""
    from tuneline.stats import mcnemar

    gold = [True] * 8
    candidate, baseline = [True] * 5 + [False] * 3, [True] * 4 + [False] * 4  # one row apart
    versus = mcnemar([c == g for c, g in zip(candidate, gold)], [b == g for b, g in zip(baseline, gold)])
    kept = decide_promotion("accuracy", 0.625, None, 0.0, 0.01, ("zero_shot", 0.5), 0.01,
                            baseline_comparison=versus)
    assert kept.promote is True and "paired test vs baseline zero_shot" in kept.reasons[2]
    assert "not significant at 0.05: too few test rows to tell this model from one that learned nothing" \
        in kept.reasons[2]
    refused = decide_promotion("accuracy", 0.625, None, 0.0, 0.01, ("zero_shot", 0.5), 0.01,
                               baseline_comparison=versus, require_significant_gain_over_baseline=True)
    assert refused.promote is False and refused.failed == [kept.reasons[2]]
    clear = mcnemar([True] * 60, [True] * 30 + [False] * 30)
    assert decide_promotion("accuracy", 1.0, None, 0.0, 0.01, ("majority", 0.5), 0.01, baseline_comparison=clear,
                            require_significant_gain_over_baseline=True).promote is True


def test_a_label_the_set_grew_by_that_the_candidate_never_predicts_is_named():
    """Label growth added 'cancellation' (3 test rows); the retrained version never predicted it and was promoted,
    its gate sentence silent on the class (operator QA). Classification, multi-label and NER entity types."""
    from tuneline.tasks.gate import ChampionScore, unlearned_labels

    champion = ChampionScore(version="7", metric=0.9, labels=["billing", "shipping"])
    labels = ["billing", "cancellation", "shipping"]
    gold = ["billing", "cancellation", "shipping", "cancellation"]
    assert unlearned_labels(champion, labels, gold, ["billing", "billing", "shipping", "shipping"]) == ["cancellation"]
    assert unlearned_labels(champion, labels, gold, ["billing", "cancellation", "shipping", "billing"]) == []
    assert unlearned_labels(champion, labels, ["billing", "shipping"], ["billing", "shipping"]) == []  # not tested
    assert unlearned_labels(ChampionScore(version="7", metric=0.9), labels, gold, gold[:1] * 4) == []  # unknown
    multi = [["billing"], ["cancellation", "billing"]]
    assert unlearned_labels(champion, labels, multi, [["billing"], ["billing"]]) == ["cancellation"]
    ner_champion = ChampionScore(version="2", metric=0.8, labels=["O", "B-PER", "I-PER"])
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    gold_tags = [["B-PER", "O", "B-LOC", "I-LOC"]]
    assert unlearned_labels(ner_champion, tags, gold_tags, [["B-PER", "O", "O", "O"]]) == ["LOC"]
    assert unlearned_labels(ner_champion, tags, gold_tags, [["B-PER", "O", "I-LOC", "O"]]) == []


def test_the_not_significant_warning_is_only_for_a_version_the_gate_promotes():
    """It was logged before the gate's other checks, saying "promoted all the same" of a version then refused for
    min_metric (operator QA)."""
    from tuneline.config import GateConfig
    from tuneline.stats import mcnemar
    from tuneline.tasks.gate import promoted_without_significant_gain

    gold = [True] * 8
    versus = mcnemar([c == g for c, g in zip([True] * 5 + [False] * 3, gold)],
                     [b == g for b, g in zip([True] * 4 + [False] * 4, gold)])
    gate = GateConfig(require_significant_gain_over_baseline=False)
    promoted = decide_promotion("accuracy", 0.625, None, 0.0, 0.01, ("zero_shot", 0.5), 0.01,
                                baseline_comparison=versus)
    refused = decide_promotion("accuracy", 0.625, None, 0.7, 0.01, ("zero_shot", 0.5), 0.01,
                               baseline_comparison=versus)
    assert promoted.promote and not refused.promote
    assert promoted_without_significant_gain(refused, versus, "zero_shot", "accuracy", gate) is None
    assert promoted_without_significant_gain(promoted, versus, "zero_shot", "accuracy", gate) == (
        f"gate: promoted, though not significantly better than the zero_shot baseline on these 8 test rows "
        f"({versus.sentence('accuracy')}): the test set is too small to tell this model from one that learned "
        "nothing (gate.require_significant_gain_over_baseline is false)")
    strict = GateConfig(require_significant_gain_over_baseline=True)
    assert promoted_without_significant_gain(promoted, versus, "zero_shot", "accuracy", strict) is None
