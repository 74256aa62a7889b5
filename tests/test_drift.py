"""Drift checks of the retraining loop (tuneline/drift.py): each test pins one behaviour and fails without it."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from tests_support import run_config
from tuneline import drift
from tuneline.drift import (DriftCheck, DriftReport, check_drift, label_shift, text_length_shift, unknown_token_rate,
                            unknown_token_share, unseen_labels)
from tuneline.tasks.drift import admit_labels

PROBS = {"billing": 0.5, "shipping": 0.3, "technical": 0.15, "account": 0.05}


def sample_counts(probs: dict[str, float], n: int, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, list(probs.values()))
    return {label: int(c) for label, c in zip(probs, counts)}


def sample_lengths(n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """Integer text lengths (characters), log-normal like real text lengths, so with ties as real lengths have."""
    rng = np.random.default_rng(seed)
    return np.round(rng.lognormal(mean=3.6, sigma=0.5, size=n) * scale).astype(int)


@pytest.fixture(scope="module")
def minilm_tokenizer():
    from transformers import AutoTokenizer

    from tuneline.runtime import resolve_base_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model("minilm"))
    assert tokenizer.is_fast
    return tokenizer


# --- label shift ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("on_drift", ["warn", "stop"])
def test_label_shift_detected_on_a_shifted_batch(on_drift):
    reference = {"negative": 5000, "positive": 5000}
    batch = {"negative": 800, "positive": 200}  # 50/50 -> 80/20, 1,000 rows
    check = label_shift(reference, batch, alpha=0.01, on_drift=on_drift)
    assert check.name == "label_shift"
    assert check.status == on_drift
    assert check.p_value is not None and check.p_value < 0.01
    assert check.statistic > 300  # chi-square of this table is 327.0 (Yates-corrected, 1 df)
    assert check.threshold == 0.01
    # the sentence carries the numbers: statistic, p, the row counts and the largest share change
    assert "chi-square" in check.sentence and "1,000 new" in check.sentence and "10,000 reference" in check.sentence
    assert "'negative' 50.0% -> 80.0% (+30.0 points)" in check.sentence
    assert check.sentence.endswith(f": {on_drift}.")


def test_label_shift_not_flagged_on_resamples_of_the_same_distribution():
    reference = sample_counts(PROBS, 10_000, seed=1000)
    false_alarms = []
    p_values = []
    for seed in range(20):
        check = label_shift(reference, sample_counts(PROBS, 1_000, seed=seed), alpha=0.01)
        p_values.append(check.p_value)
        if check.status != "ok":
            false_alarms.append((seed, check.sentence))
    assert len(false_alarms) <= 1, false_alarms
    # a test that is "never flagged" because it always skips or returns p=1 would pass the line above: it must test
    assert all(p is not None for p in p_values)
    assert 0.05 < float(np.median(p_values)) < 0.95


def test_label_shift_minimum_sample_guard_skips_a_tiny_batch_and_says_why():
    reference = {"negative": 5000, "positive": 5000}
    batch = {"negative": 50}  # an extreme shift, but only 50 rows
    check = label_shift(reference, batch, alpha=0.01, min_rows=200)
    assert check.status == "skipped"
    assert check.p_value is None
    assert "skipped" in check.sentence and "50 labeled rows" in check.sentence and "200" in check.sentence
    assert "noise" in check.sentence
    # the guard counts batch_rows when given (sentences for token classification, not their many tags)
    tags = {"O": 4000, "B-PER": 500, "I-PER": 300}
    assert label_shift({"O": 40000, "B-PER": 5000, "I-PER": 3000}, tags, batch_rows=120).status == "skipped"
    assert label_shift({"O": 40000, "B-PER": 5000, "I-PER": 3000}, tags).status != "skipped"
    # an empty batch or reference is skipped too, whatever min_rows says (no division by zero)
    assert label_shift(reference, {}, min_rows=0).status == "skipped"
    assert label_shift(reference, {"a": 0}, batch_rows=500).status == "skipped"
    assert label_shift({}, {"a": 300}, min_rows=0).status == "skipped"


def test_label_shift_merges_sparse_labels_so_a_few_rows_do_not_decide_the_test():
    reference = {"a": 5000, "b": 5000}
    batch = {"a": 500, "b": 498, "c": 2}  # 'c': 2 rows, expected count 0.18: unmerged, chi-square gives p ~ 5e-5
    check = label_shift(reference, batch, alpha=0.01)
    assert check.status == "ok", check.sentence
    # 'c' is merged, and 'b' with it, because an "other" of 2 rows would still be too sparse to test
    assert "2 labels ('c', 'b') merged into other" in check.sentence, check.sentence
    # the merge keeps the test honest, it does not blunt it: a real shift among the same labels is still found
    assert label_shift(reference, {"a": 650, "b": 348, "c": 2}, alpha=0.01).status == "warn"


def _multilabel_rows(n: int, seed: int, sets: list[tuple[str, ...]], probs: list[float]) -> tuple[dict, int]:
    """Label counts of ``n`` rows, each carrying one of ``sets`` (several labels, always together)."""
    counts: dict[str, int] = {}
    for index, times in enumerate(np.random.default_rng(seed).multinomial(n, probs)):
        for label in sets[index]:
            counts[label] = counts.get(label, 0) + int(times)
    return counts, n


def test_multilabel_label_shift_counts_each_row_once_and_says_rows():
    """Loop QA: for multi-label batches the test counted label occurrences as rows ("250 new vs 654 reference rows"
    for 600 rows): a row of three labels weighed as three observations, so resamples of the very same rows were
    called a shift. Per label, rows with and without it (Bonferroni), it holds its level."""
    sets, probs = [("joy", "love", "admiration"), ("anger", "disgust", "annoyance"), ("neutral",)], [0.4, 0.4, 0.2]
    reference, ref_rows = _multilabel_rows(600, 0, sets, probs)
    flagged = {True: 0, False: 0}
    for seed in range(1, 401):
        batch, rows = _multilabel_rows(250, seed, sets, probs)
        for per_row in (True, False):
            check = label_shift(reference, batch, batch_rows=rows, reference_rows=ref_rows, per_row=per_row,
                                alpha=0.01)
            flagged[per_row] += check.status == "warn"
    assert flagged[True] <= 4, flagged  # at most alpha (1% of 400): Bonferroni is conservative
    assert flagged[False] >= 8, flagged  # counting labels as rows: 2.75% here, over the level it promises

    batch, rows = _multilabel_rows(250, 7, sets, [0.1, 0.1, 0.8])  # mostly neutral now
    check = label_shift(reference, batch, batch_rows=rows, reference_rows=ref_rows, per_row=True)
    assert check.status == "warn" and check.p_value < 1e-6
    assert "over 250 new vs 600 reference rows (" in check.sentence and "for 'neutral'" in check.sentence
    assert "share of rows: 'neutral'" in check.sentence, check.sentence
    few = label_shift(reference, {"joy": 150}, batch_rows=150, reference_rows=ref_rows, per_row=True)
    assert few.status == "skipped"  # the batch's rows, not its labels, meet min_rows


def test_label_shift_names_labels_and_rows_apart_where_they_differ():
    """NER counts tags per token: the sentence said "rows" for tokens."""
    check = label_shift({"O": 40000, "B-PER": 5000, "I-PER": 3000}, {"O": 4000, "B-PER": 500, "I-PER": 300},
                        batch_rows=300, reference_rows=3000)
    assert "over 4,800 new vs 48,000 reference labels (300 vs 3,000 rows)" in check.sentence, check.sentence
    assert label_shift({"O": 40000, "B-PER": 5000}, {"O": 4000, "B-PER": 500}, batch_rows=300,
                       reference_rows=150).status == "skipped"  # the reference's rows meet min_rows


def test_label_shift_rejects_bad_inputs():
    with pytest.raises(ValueError, match="alpha"):
        label_shift({"a": 1}, {"a": 1}, alpha=0)
    with pytest.raises(ValueError, match="non-negative whole counts"):
        label_shift({"a": -3}, {"a": 1})
    with pytest.raises(ValueError, match="on_drift"):
        label_shift({"a": 1}, {"a": 1}, on_drift="error")


# --- text length ---------------------------------------------------------------------------------------------------


def test_text_length_shift_detects_longer_texts():
    check = text_length_shift(sample_lengths(5000, seed=1), sample_lengths(1000, seed=2, scale=1.25), alpha=0.01,
                              on_drift="stop")
    assert check.status == "stop"
    assert check.p_value < 0.01
    assert "KS D=" in check.sentence and "median length" in check.sentence
    assert "(+2" in check.sentence  # the median grew by about 25%


def test_text_length_shift_not_flagged_on_the_same_distribution():
    reference = sample_lengths(5000, seed=1)
    statuses = [text_length_shift(reference, sample_lengths(1000, seed=100 + s), alpha=0.01) for s in range(20)]
    false_alarms = [c.sentence for c in statuses if c.status != "ok"]
    assert len(false_alarms) <= 1, false_alarms
    assert all(c.p_value is not None for c in statuses)


def test_text_length_shift_guard():
    check = text_length_shift(sample_lengths(5000, seed=1), [2000] * 50, min_rows=200)
    assert check.status == "skipped" and "50 texts" in check.sentence and "200" in check.sentence


def test_text_length_shift_runs_on_small_batches_without_more_false_alarms():
    """The KS test's own minimum is 30 texts (the label test's is 200): a batch of 60 ID numbers (2 words against a
    median of about 40) is flagged, and same-distribution batches are not."""
    reference = sample_lengths(5000, seed=1)
    checks = [text_length_shift(reference, sample_lengths(40, seed=300 + s)) for s in range(50)]
    assert all(c.p_value is not None for c in checks)  # run, not skipped, at the default minimum
    assert sum(c.status != "ok" for c in checks) <= 2, [c.sentence for c in checks if c.status != "ok"]
    assert text_length_shift(reference, [2.0] * 60).status == "warn"
    assert text_length_shift(reference, [2.0] * 29).status == "skipped"
    labels = {"reference_labels": {"a": 500}, "batch_labels": {"a": 60}}
    ids = {**labels, "reference_lengths": reference, "batch_lengths": [2.0] * 60}
    assert check_drift(**ids)["text_length_shift"].status == "warn"
    assert check_drift(**ids, thresholds={"min_length_rows": 100})["text_length_shift"].status == "skipped"
    assert check_drift(**{**ids, "batch_lengths": [2.0] * 20}, min_rows=20)["text_length_shift"].status == "warn"
    # under min_rows (the label test's 200), a significant but moderate shift is one source's lengths, not flagged
    # (30 CoNLL sentences of one document were "shifted" 68% of the time); from min_rows on, the test alone decides
    shorter = sample_lengths(150, seed=7, scale=0.75)
    moderate = check_drift(**{**ids, "batch_lengths": shorter})["text_length_shift"]
    assert moderate.status == "ok" and moderate.p_value < 0.01 and 0.2 < moderate.statistic < 0.6, moderate.sentence
    assert "significant at alpha=0.01 but not large: a batch under 200 texts is flagged from D=0.6" in \
        moderate.sentence
    assert check_drift(**{**ids, "batch_lengths": shorter}, min_rows=100)["text_length_shift"].status == "warn"


# --- unknown tokens ------------------------------------------------------------------------------------------------

ENGLISH = [
    "Where is my parcel? It was supposed to arrive on Monday.",
    "I was charged twice for the same invoice, please refund one payment.",
    "The app crashes every time I open the settings page.",
    "How do I reset the password of my account?",
    "The courier left the package at the wrong address.",
]
UNREADABLE = [  # Amharic (Ge'ez script) and emoji: not in MiniLM's uncased WordPiece vocabulary
    "ሰላም ለዓለም እንዴት ነህ ዛሬ",
    "ጥቅሌ የት ነው ያለው እባክህ ንገረኝ",
    "🦄🧨🫠 🥲🥲 🫶🏽",
    "የይለፍ ቃሌን እንዴት እቀይራለሁ 🙏",
]


def test_unknown_token_rate_goes_up_on_a_script_the_tokenizer_cannot_read(minilm_tokenizer):
    reference_rate = unknown_token_share(ENGLISH * 40, minilm_tokenizer)
    assert reference_rate is not None and reference_rate < 0.01

    english_batch = unknown_token_rate(ENGLISH * 10, minilm_tokenizer, reference_rate=reference_rate)
    assert english_batch.status == "ok"
    assert english_batch.statistic <= reference_rate + 0.02

    mixed = ENGLISH * 5 + UNREADABLE * 5
    check = unknown_token_rate(mixed, minilm_tokenizer, reference_rate=reference_rate, max_increase=0.02,
                               on_drift="stop", batch_size=7)  # several batches, so the batched count is exercised
    assert check.status == "stop", check.sentence
    assert check.statistic > 0.2
    assert check.threshold == pytest.approx(reference_rate + 0.02)
    assert "[UNK]" in check.sentence and "45 new texts" in check.sentence
    # the batched count is the plain count
    ids = [minilm_tokenizer(text, add_special_tokens=False)["input_ids"] for text in mixed]
    expected = sum(i == minilm_tokenizer.unk_token_id for row in ids for i in row) / sum(len(row) for row in ids)
    assert check.statistic == pytest.approx(expected)


def test_unknown_token_rate_without_reference_is_skipped(minilm_tokenizer):
    check = unknown_token_rate(UNREADABLE, minilm_tokenizer, reference_rate=None)
    assert check.status == "skipped" and check.statistic > 0.5 and "no reference rate" in check.sentence


# --- unseen labels -------------------------------------------------------------------------------------------------


def test_unseen_label_stops_without_growth_and_warns_naming_it_with_growth():
    known = {"billing", "shipping"}
    batch = {"billing": 300, "shipping": 250, "refunds": 40}
    stop = unseen_labels(known, batch, allow_growth=False)
    assert stop.status == "stop" and stop.statistic == 1
    assert "'refunds' (40 in the batch)" in stop.sentence
    grow = unseen_labels(known, batch, allow_growth=True)
    assert grow.status == "warn" and "'refunds'" in grow.sentence and "grow" in grow.sentence
    assert unseen_labels(known, {"billing": 3, "refunds": 0}, allow_growth=False).status == "ok"
    types = unseen_labels({"PER", "LOC"}, {"PER": 10, "PRODUCT": 2}, allow_growth=False, what="entity type")
    assert types.status == "stop" and "entity type" in types.sentence and "'PRODUCT'" in types.sentence


# --- the report ----------------------------------------------------------------------------------------------------


def test_check_drift_report_frame_and_png(tmp_path, minilm_tokenizer):
    reference_labels = {"negative": 5000, "positive": 5000}
    batch_labels = {"negative": 800, "positive": 190, "neutral": 10}
    reference_lengths = sample_lengths(3000, seed=1)
    batch_lengths = sample_lengths(1000, seed=2, scale=1.3)
    report = check_drift(reference_labels=reference_labels, batch_labels=batch_labels,
                         reference_lengths=reference_lengths, batch_lengths=batch_lengths,
                         batch_texts=ENGLISH * 10, tokenizer=minilm_tokenizer, reference_texts=ENGLISH * 20,
                         allow_growth=True, thresholds={"alpha": 0.001, "min_rows": 100},
                         on_drift={"label_shift": "stop"},
                         champion=drift.ChampionAgreement("3", "accuracy", reference=0.91, batch=0.52, rows=400,
                                                          reference_rows=800, reference_chance=0.5))
    assert [c.name for c in report.checks] == list(drift.CHECKS)
    assert [c.status for c in report.checks] == ["stop", "warn", "ok", "warn", "stop"]
    assert report.status == "stop"
    assert report["label_shift"].threshold == 0.001

    frame = report.to_frame()
    assert list(frame.columns) == ["name", "status", "statistic", "p_value", "threshold", "sentence"]
    assert list(frame["status"]) == ["stop", "warn", "ok", "warn", "stop"]
    assert frame["p_value"].isna().tolist() == [False, False, True, True, True]
    csv = tmp_path / "drift.csv"
    frame.to_csv(csv, index=False)
    assert pd.read_csv(csv).shape == (5, 6)
    assert report.to_dict()["status"] == "stop"

    png = report.plot(tmp_path / "report" / "drift.png", reference_lengths, batch_lengths, reference_labels,
                      batch_labels)
    assert png.is_file() and png.stat().st_size > 5000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_champion_agreement_stops_on_labels_the_champion_disagrees_with_and_says_why_when_it_cannot_tell():
    def check(agreement, **settings):
        return drift.champion_agreement(agreement, **{"max_drop": 0.5, "min_rows": 30, **settings})

    def agreement(reference, batch, *, reference_chance=0.5, high=None, rows=300, metric="accuracy"):
        return drift.ChampionAgreement("4", metric, reference=reference, batch=batch, rows=rows, reference_rows=872,
                                       reference_chance=reference_chance, batch_high=high)

    # SST-2 as measured in test_real_minilm_sst2: 0.794 on dev, 0.497 on 300 shuffled rows (0.863 unshuffled)
    shuffled = agreement(0.794, 0.497, high=0.543)
    stopped = check(shuffled)
    assert stopped.status == "stop" and stopped.statistic == pytest.approx(1 - (0.497 - 0.5) / 0.294)
    assert "champion v4" in stopped.sentence and "accuracy 0.497 on this batch's labels (300 rows) and 0.794 on " \
        "its earlier test rows (872; 0.500 with their labels shuffled: chance)" in stopped.sentence
    assert "take away all of its skill over chance (they score at chance or below), over max_champion_drop " \
        "50.0%" in stopped.sentence  # not "101.0%" of it
    assert stopped.sentence.endswith("or the champion does not carry over to these texts (texts unlike its test "
                                     "rows); look at the batch before a model learns it: stop.")
    # the remedy (requeue, then --set drift.on_label_disagreement=warn) is the stopped run's to say, with the names
    assert "land it again" not in stopped.sentence
    part = check(agreement(0.794, 0.60, high=0.64))
    assert part.status == "stop" and "take away 66.0% of its skill over chance (at least 52.4% within the " \
        "batch's sampling noise)" in part.sentence
    assert check(shuffled, on_drift="warn").status == "warn"
    alike = agreement(0.794, 0.70, high=0.74)
    assert check(alike).status == "ok" and "within max_champion_drop" in check(alike).sentence
    assert check(alike, max_drop=0.1).status == "stop"  # the threshold is the config's
    better = agreement(0.794, 0.863, high=0.90)
    assert check(better).status == "ok"  # a batch easier than the test rows is no warning sign
    assert "take away none of its skill over chance, within" in check(better).sentence

    # a weak binary champion: shuffled labels take a quarter of its score (0.65 -> 0.50), which a limit on the score
    # let through, but all of its skill over chance
    weak = agreement(0.65, 0.50, high=0.55)
    assert check(weak).status == "stop" and check(weak).statistic == pytest.approx(1.0)
    # NER as measured on a MiniLM champion (entity F1 0.429 on its test rows, 0.060 with each sentence's tags
    # rotated): clean batches of 100 sentences of the next documents scored 0.261, 0.432 and 0.308 (a drop of 39% of
    # the score for the first, which a 25% limit on the score stopped); tags slipped by one word 0.012, entity types
    # of another scheme 0.042
    def ner(batch, high):
        return agreement(0.429, batch, reference_chance=0.060, high=high, rows=100, metric="f1")

    assert check(ner(0.261, 0.330)).status == "ok"
    assert check(ner(0.308, 0.380)).status == "ok"
    assert check(ner(0.012, 0.030)).status == "stop"
    assert check(ner(0.042, 0.070)).status == "stop"
    # a noisy batch is judged at the upper end of its interval: the same point estimate with a narrow one stops
    assert check(ner(0.200, 0.230)).status == "stop" and check(ner(0.200, 0.260)).status == "ok"
    # a batch of one class is right where the champion is right, whatever a shuffle of it would score (itself)
    assert check(agreement(1.0, 1.0, reference_chance=0.33, high=1.0, rows=90)).status == "ok"
    # micro-F1 of a multi-label champion is lower, and so is its chance level
    multilabel = agreement(0.40, 0.12, reference_chance=0.06, high=0.15, metric="micro_f1")
    assert check(multilabel).status == "stop"

    assert check(None).status == "skipped" and "no champion yet" in check(None).sentence
    few = agreement(0.93, 0.10, rows=12)
    assert check(few).status == "skipped" and "12 batch rows" in check(few).sentence
    assert check(few, min_rows=10).status == "stop"
    chance_level = agreement(0.52, 0.30, reference_chance=0.53)
    assert check(chance_level).status == "skipped"
    assert "no better than chance, so it cannot tell right labels from wrong ones" in check(chance_level).sentence
    # one class everywhere: chance is its score to within rounding, on either side (loop QA: "a gain of 7.3e16%")
    for rounding in (5.55e-17, -5.55e-17):
        flat = agreement(0.2924, 0.333, reference_chance=0.2924 + rounding, metric="micro_f1")
        assert check(flat).status == "skipped" and "cannot tell" in check(flat).sentence
    # a champion barely over chance, within its own sampling noise (loop QA: 60 SST-2 rows, 0.537 against chance
    # 0.498 on 300 rows, rejected a clean batch as taking away "206.9%" of its skill)
    barely = drift.ChampionAgreement("2", "accuracy", reference=0.537, batch=0.457, rows=300, reference_rows=300,
                                     reference_chance=0.498, batch_high=0.50, reference_low=0.49)
    skipped = check(barely)
    assert skipped.status == "skipped" and "(as little as 0.490 within its sampling noise)" in skipped.sentence
    assert skipped.sentence.endswith("the batch's labels are not checked until a stronger champion is promoted.")
    clear = drift.ChampionAgreement("2", "accuracy", reference=0.707, batch=0.453, rows=300, reference_rows=300,
                                    reference_chance=0.501, batch_high=0.50, reference_low=0.66)
    assert check(clear).status == "stop"
    broken = drift.ChampionAgreement("4", "accuracy", error="OSError: no such file")
    assert check(broken).status == "skipped" and "OSError: no such file" in check(broken).sentence
    with pytest.raises(ValueError, match="on_drift"):
        drift.check_drift(reference_labels={"a": 1}, batch_labels={"a": 1}, on_label_disagreement="ignore")


def test_ner_agreement_is_f1_per_sentence_so_a_batch_without_entities_can_agree():
    """Micro F1 is 0 when the labels hold no entity: a clean batch of sentences without entities was rejected as
    wrong labels by a champion that agreed with 130 of its 150 sentences (loop QA)."""
    from tuneline.kinds import kind_of

    ner = kind_of("token_classification")
    none = [["O", "O", "O"]] * 10
    found = [["O", "B-PER", "O"]] * 2 + [["O", "O", "O"]] * 8
    every = list(range(10))
    assert ner.subset_score(none, found, [], "f1")(every) == 0.0  # the micro F1: no entity in the labels
    assert ner.agreement_scorer(none, found, [])(every) == pytest.approx(0.8)  # 8 of 10 sentences agree
    # labels whose entities were lost disagree wherever the champion finds one
    found_everywhere = [["B-LOC", "O", "B-PER"]] * 10
    assert ner.agreement_scorer(none, found_everywhere, [])(every) == 0.0
    # a sentence with entities: its own F1 (one of two entities found, one extra: 2 * 1 / (2 + 2))
    gold, predicted = [["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "B-ORG", "O"]]
    assert ner.agreement_scorer(gold, predicted, [])([0]) == pytest.approx(0.5)
    assert ner.agreement_name == "F1 per sentence"


def test_the_chance_level_of_each_kind_takes_the_labels_off_their_rows():
    import numpy as np

    from tuneline.kinds import kind_of

    rng = np.random.default_rng(0)
    labels = [str(i % 3) for i in range(300)]
    shuffled = kind_of("classification").shuffled_gold(labels, rng)
    assert sorted(shuffled) == sorted(labels) and sum(a == b for a, b in zip(labels, shuffled)) < 150

    sentences = [["B-PER", "I-PER", "O", "O", "B-LOC"], ["O", "B-ORG"], ["B-MISC"], ["O"] * 7 + ["B-LOC"]] * 25
    rotated = kind_of("token_classification").shuffled_gold(sentences, rng)
    assert [len(t) for t in rotated] == [len(t) for t in sentences]  # each sentence keeps its length and its tags
    assert all(sorted(a) == sorted(b) for a, b in zip(rotated, sentences))
    moved = [a != b for a, b in zip(rotated, sentences) if len(set(b)) > 1]
    assert all(moved)  # a rotation by 1 to n - 1 never leaves tags of two kinds where they were
    assert rotated[2] == ["B-MISC"]  # a one-word sentence cannot move


def test_check_drift_defaults_and_configuration():
    same = check_drift(reference_labels={"a": 5000, "b": 5000}, batch_labels={"a": 510, "b": 490})
    assert [c.status for c in same.checks] == ["ok", "skipped", "skipped", "ok", "skipped"]
    assert same.status == "skipped"  # a skipped check is not an "ok": nothing was shown for it
    assert "no reference_lengths" in same["text_length_shift"].sentence

    unseen = check_drift(reference_labels={"a": 5000, "b": 5000}, batch_labels={"a": 500, "b": 480, "c": 20})
    assert unseen["unseen_labels"].status == "stop" and unseen.status == "stop"

    shifted = {"a": 800, "b": 200}
    assert check_drift(reference_labels={"a": 500, "b": 500}, batch_labels=shifted)["label_shift"].status == "warn"
    assert check_drift(reference_labels={"a": 500, "b": 500}, batch_labels=shifted,
                       on_drift="stop")["label_shift"].status == "stop"
    # keyword thresholds override the dict, which overrides the defaults
    tiny = check_drift(reference_labels={"a": 500, "b": 500}, batch_labels=shifted, thresholds={"min_rows": 5000})
    assert tiny["label_shift"].status == "skipped"
    assert check_drift(reference_labels={"a": 500, "b": 500}, batch_labels=shifted, thresholds={"min_rows": 5000},
                       min_rows=100)["label_shift"].status == "warn"

    with pytest.raises(ValueError, match="unknown drift threshold.*'alfa'"):
        check_drift(reference_labels={"a": 1}, batch_labels={"a": 1}, alfa=0.05)
    with pytest.raises(ValueError, match="allow_growth"):
        check_drift(reference_labels={"a": 1}, batch_labels={"a": 1}, on_drift={"unseen_labels": "warn"})


def test_report_status_is_the_worst_check():
    def check(status):
        return DriftCheck("x", 0.0, None, 0.0, status, "x")

    assert DriftReport([check("ok"), check("ok")]).status == "ok"
    assert DriftReport([check("ok"), check("skipped")]).status == "skipped"
    assert DriftReport([check("skipped"), check("warn"), check("ok")]).status == "warn"
    assert DriftReport([check("warn"), check("stop"), check("ok")]).status == "stop"
    with pytest.raises(ValueError, match="status"):
        check("fine")


def test_p_value_text():
    assert drift._p_text(0.0342) == "p=0.034"
    assert drift._p_text(1.2e-8) == "p=1e-8"
    assert drift._p_text(0.0) == "p<1e-300"


def test_a_label_set_in_the_config_that_the_loop_does_not_use_is_named_in_a_warning(tmp_path, caplog):
    """A person edits data.labels mid-loop (a class added, one renamed): the loop keeps the label set of its data
    version, and said nothing, so the config read as if it had decided."""
    changed = run_config("classification", path=str(tmp_path / "base.csv"),
                         labels=["billing", "shipping", "refunds"])
    with caplog.at_level(logging.WARNING):
        decision = admit_labels.fn([], ["billing", "shipping", "technical"], changed, None, None)
    assert decision.labels == ["billing", "shipping", "technical"]
    assert ("data.labels in the config (['billing', 'shipping', 'refunds']) is not the label set of the loop's current "
            "data version (['billing', 'shipping', 'technical'])") in caplog.text
    assert decision.ignored.startswith("data.labels in the config")
    caplog.clear()
    reordered = run_config("classification", path=str(tmp_path / "base.csv"),
                           labels=["technical", "billing", "shipping"])  # the order is the model's class ids
    with caplog.at_level(logging.WARNING):
        admit_labels.fn([], ["billing", "shipping", "technical"], reordered, None, None)
    assert "is not the label order (the model's class ids) of the loop's current data version" in caplog.text
    caplog.clear()
    same = run_config("classification", path=str(tmp_path / "base.csv"), labels=["billing", "shipping", "technical"])
    with caplog.at_level(logging.WARNING):
        assert admit_labels.fn([], ["billing", "shipping", "technical"], same, None, None).ignored is None
    assert "data.labels" not in caplog.text
