"""seqeval entity metrics (strict IOB2) checked against values computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from transformers import EvalPrediction

from tuneline.kinds import KINDS
from tuneline.kinds.token_classification import decode_label_ids, per_type_report, seqeval_scores

NER = KINDS["token_classification"]


def token_classification_metrics(labels):
    return NER.trainer_metrics(labels)


def score_tagger_output(output, test):
    return NER.score_output(output, test, ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])

GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
PRED = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]


def test_entity_scores_by_hand():
    # gold entities PER(0-1), LOC(3), ORG(0); predicted PER(0-1), ORG(0), LOC(s2:1): 2 of 3 right either way.
    scores = seqeval_scores(GOLD, PRED)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["accuracy"] == pytest.approx(4 / 6)  # 6 words, 4 tags right


def test_strict_mode_boundaries_and_ill_formed_chunks():
    # a cut-short entity is wrong, not half right
    assert seqeval_scores([["B-PER", "I-PER"]], [["B-PER", "O"]])["f1_strict"] == 0.0
    # I-PER I-PER is no well-formed IOB2 entity: strict mode finds nothing (lenient conlleval would score 1.0)
    strict = seqeval_scores([["B-PER", "I-PER", "O"]], [["I-PER", "I-PER", "O"]])
    assert strict["f1_strict"] == 0.0 and strict["recall_strict"] == 0.0
    assert strict["accuracy"] == pytest.approx(2 / 3)
    # the wrong type with the right span is wrong
    assert seqeval_scores([["B-PER"]], [["B-ORG"]])["f1_strict"] == 0.0


def test_all_o_has_zero_f1_and_high_accuracy():
    gold = [["B-PER", "O", "O", "O"], ["O", "O", "B-LOC", "O"]]
    scores = seqeval_scores(gold, [["O"] * 4, ["O"] * 4])
    assert scores["f1"] == 0.0 and scores["precision"] == 0.0 and scores["recall"] == 0.0
    assert scores["accuracy"] == pytest.approx(6 / 8)


def test_per_type_report_by_hand():
    report = per_type_report(GOLD, PRED)
    assert report["PER"]["f1-score"] == 1.0 and report["PER"]["support"] == 1
    assert report["ORG"]["f1-score"] == 1.0
    assert report["LOC"]["precision"] == 0.0 and report["LOC"]["recall"] == 0.0 and report["LOC"]["support"] == 1
    assert report["micro avg"]["f1-score"] == pytest.approx(2 / 3)


def test_trainer_metrics_drop_ignored_positions():
    labels = ["O", "B-PER", "I-PER", "B-LOC"]
    # row 0: [CLS] b-per i-per(ignored continuation) o b-loc [SEP]; row 1 is padding after 2 real words
    label_ids = np.array([[-100, 1, -100, 0, 3, -100], [-100, 1, 0, -100, -100, -100]])
    predicted = np.array([[3, 1, 3, 0, 0, 2], [0, 1, 1, 3, 3, 3]])  # junk at ignored positions must not count
    logits = np.eye(4)[predicted] * 5.0
    gold, pred = decode_label_ids(predicted, label_ids, labels)
    assert gold == [["B-PER", "O", "B-LOC"], ["B-PER", "O"]]
    assert pred == [["B-PER", "O", "O"], ["B-PER", "B-PER"]]
    metrics = token_classification_metrics(labels)(EvalPrediction(predictions=logits, label_ids=label_ids))
    # gold: PER, LOC, PER; predicted: PER, PER, PER(s2 w1) -> 2 correct of 3 predicted, 2 of 3 gold
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == pytest.approx(3 / 5)


def test_score_tagger_output_reads_the_pyfunc_frame():
    test = pd.DataFrame({"tokens": [["John", "Smith", "works"], ["Paris"]], "tags": [["B-PER", "I-PER", "O"],
                                                                                     ["B-LOC"]]})
    output = pd.DataFrame({"tags": [["B-PER", "I-PER", "O"], ["O"]]})
    scores = score_tagger_output(output, test)
    assert scores["precision"] == 1.0 and scores["recall"] == 0.5
    assert scores["f1"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 test rows"):
        score_tagger_output(output.iloc[:1], test)


# --- f1 is conlleval's (issue 9); strict IOB2 stays available as f1_strict ----------------------------------------

def conlleval_chunks(tags: list[str]) -> set[tuple[str, int, int]]:
    """A transcription of conlleval.pl's startOfChunk/endOfChunk for IOB tags: an I-X after O or after another
    type starts a chunk (the lenient reading published CoNLL-2003 scores use)."""
    chunks, start, kind = set(), None, None
    previous_tag, previous_kind = "O", ""
    for position, tag in enumerate([*tags, "O"]):
        prefix, _, current = tag.partition("-")
        ends = previous_tag != "O" and (prefix in ("B", "O") or current != previous_kind)
        starts = prefix == "B" or (prefix == "I" and (previous_tag == "O" or current != previous_kind))
        if ends and start is not None:
            chunks.add((kind, start, position - 1))
            start = None
        if starts:
            start, kind = position, current
        previous_tag, previous_kind = prefix, current
    return chunks


def conlleval_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    found = correct = present = 0
    for sentence, (g, p) in enumerate(zip(gold, predicted)):
        gold_chunks, predicted_chunks = conlleval_chunks(g), conlleval_chunks(p)
        present, found = present + len(gold_chunks), found + len(predicted_chunks)
        correct += len(gold_chunks & predicted_chunks)
    precision = correct / found if found else 0.0
    recall = correct / present if present else 0.0
    return {"precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0}


def test_f1_matches_conlleval_on_ill_formed_i_starts():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["I-ORG", "O"], ["O", "B-MISC", "I-MISC", "I-MISC"]]
    predicted = [["I-PER", "I-PER", "O", "I-LOC"], ["B-ORG", "O"], ["O", "I-MISC", "I-MISC", "B-MISC"]]
    # conlleval by hand: gold PER(0-1) LOC(3) | ORG(0) | MISC(1-3); predicted PER(0-1) LOC(3) | ORG(0) |
    # MISC(1-2) MISC(3): 3 of 5 predicted right, 3 of 4 gold found
    scores = seqeval_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(3 / 5, abs=5e-5)
    assert scores["recall"] == pytest.approx(3 / 4, abs=5e-5)
    assert round(scores["f1"], 4) == round(2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4), 4) == 0.6667
    assert scores == pytest.approx({**scores, **conlleval_scores(gold, predicted)}, abs=5e-5)
    # strict IOB2 drops the I- starts on both sides: gold PER LOC MISC, predicted ORG: nothing matches
    assert scores["f1_strict"] == 0.0


def test_f1_equals_conlleval_on_random_tag_sequences():
    import random

    rng = random.Random(7)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(300)]
    predicted = [[t if rng.random() < 0.7 else rng.choice(tags) for t in g] for g in gold]
    ours, reference = seqeval_scores(gold, predicted), conlleval_scores(gold, predicted)
    for name in ("precision", "recall", "f1"):
        assert round(ours[name], 4) == round(reference[name], 4)
    assert ours["f1_strict"] != pytest.approx(ours["f1"])  # the two modes really differ on such data
