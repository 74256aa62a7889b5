"""Sentence-pair classification: tokenization, reader, contract, zero-shot threshold, config, flow, real MRPC."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from conftest import shared_data, working_in
from tuneline.config import ConfigError, build_config
from tuneline.embeddings import best_threshold
from tuneline.kinds import KINDS
from tuneline.kinds.classification import ClassificationKind, LabelSetError
from tuneline.kinds.pair_classification import (
    KEY_SEPARATOR,
    PAIR_COLUMNS,
    PairData,
    ThresholdEvaluation,
    binary_scores,
    encode_pairs,
    pair_key,
    pair_keys,
    pair_similarity,
    threshold_objective,
)
from tuneline.pyfunc.pair_classifier import pairs_from_input
from tuneline.schemas.common import leak_form
from tuneline.tasks.split import DataSplits
from tuneline.tasks.validate import apply_schema, validate_frames
from tests_support import store_client

KIND = KINDS["pair_classification"]
LABELS = ["0", "1"]


def pair_config(*overrides: str, **data):
    data = {"path": "pairs.csv", **data}
    return build_config({"task": "pair_classification", "data": data}, list(overrides))


def pair_frame(rows: list[tuple[object, object, object]], symmetric: bool, source: str = "pairs.csv") -> pd.DataFrame:
    """Rows as the reader makes them: text, text_pair, label (objects), the key, provenance (1-based rows)."""
    texts = pd.Series([r[0] for r in rows], dtype=object)
    pairs = pd.Series([r[1] for r in rows], dtype=object)
    return pd.DataFrame({"text": texts, "text_pair": pairs, "label": pd.Series([r[2] for r in rows], dtype=object),
                         "key": pair_keys(texts, pairs, symmetric), "source_file": source,
                         "source_row": pd.Series(range(1, len(rows) + 1), dtype="int64")})[PAIR_COLUMNS]


def rejected(quarantine: pd.DataFrame) -> set[tuple[int, str]]:
    return {(int(r), str(rule)) for r, rule in zip(quarantine["source_row"], quarantine["rule"])}


def check(rows, symmetric: bool, train_keys=None, split="train"):
    return apply_schema(pair_frame(rows, symmetric), KIND.schema(LABELS, train_keys, None), split)


# --- tokenization -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert)


def segments(tokenizer, input_ids: list[int], type_ids: list[int]) -> tuple[int, int]:
    """Content tokens of the first and second segment ([CLS]/[SEP] excluded)."""
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id}
    first = sum(1 for i, t in zip(input_ids, type_ids) if t == 0 and i not in special)
    second = sum(1 for i, t in zip(input_ids, type_ids) if t == 1 and i not in special)
    return first, second


def test_pair_is_encoded_as_two_segments(tokenizer):
    batch = {"text": ["my parcel is not", "reset my password"], "text_pair": ["where is my box", "change email"],
             "label": ["1", "0"]}
    out = encode_pairs(batch, tokenizer, 32, {"0": 0, "1": 1}, "longest_first")
    assert out["labels"] == [1, 0] and out["truncated"] == [False, False]
    for ids, types in zip(out["input_ids"], out["token_type_ids"]):
        assert ids[0] == tokenizer.cls_token_id and ids.count(tokenizer.sep_token_id) == 2
        first_sep = ids.index(tokenizer.sep_token_id)
        assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)  # 0s through [SEP], then 1s
    assert segments(tokenizer, out["input_ids"][0], out["token_type_ids"][0]) == (4, 4)


def test_longest_first_cuts_the_longer_text(tokenizer):
    short, long = "my parcel", " ".join(["delivery"] * 60)
    batch = {"text": [short, long, " ".join(["bill"] * 40)], "text_pair": [long, short, " ".join(["box"] * 20)],
             "label": ["1", "1", "0"]}
    out = encode_pairs(batch, tokenizer, 32, {"0": 0, "1": 1}, "longest_first")
    assert out["truncated"] == [True, True, True]
    assert all(len(ids) == 32 for ids in out["input_ids"])
    lengths = [segments(tokenizer, ids, types) for ids, types in zip(out["input_ids"], out["token_type_ids"])]
    assert lengths[0] == (2, 27)  # 32 - [CLS] - 2 x [SEP] = 29 content tokens: the short text is kept whole
    assert lengths[1] == (27, 2)
    first, second = lengths[2]  # both too long: cut token by token from the longer until they meet
    assert first + second == 29 and abs(first - second) <= 1 and second < 20


def test_only_second_keeps_the_first_text_and_falls_back_when_it_cannot(tokenizer):
    query, document = " ".join(["password"] * 10), " ".join(["email"] * 60)
    out = encode_pairs({"text": [query, document], "text_pair": [document, query], "label": ["1", "0"]}, tokenizer,
                       32, {"0": 0, "1": 1}, "only_second")
    lengths = [segments(tokenizer, ids, types) for ids, types in zip(out["input_ids"], out["token_type_ids"])]
    assert lengths[0] == (10, 19)
    # the second row's first text alone exceeds max_length: longest_first for that row instead of an error
    assert lengths[1] == (19, 10) and out["truncated"] == [True, True] and out["labels"] == [1, 0]
    assert KIND.encoder_settings(pair_config("tokenize.truncation=only_second")) == {"truncation": "only_second"}


# --- reader -----------------------------------------------------------------------------------------------------------


def test_reader_reads_a_glue_tsv_with_bom_and_raw_quotes(tmp_path):
    path = tmp_path / "dev.tsv"
    lines = ["\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String",
             '1\t11\t12\tHe said " the pie business " does not fit .\t" The pie business does not fit our plan .',
             "0\t13\t14\tShares rose 5 % .\tShares fell on Monday .",
             "1.0\t15\t16\tB comes second .\tA comes first ."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = PairData(path=path, text_column="#1 String", text_pair_column="#2 String", label_column="Quality",
                    symmetric=True)
    read = KIND.read(path, "tsv", data)
    frame = read.frame
    assert read.records_seen == 3 and read.malformed == [] and list(frame.columns) == PAIR_COLUMNS
    assert frame["text"][0] == 'He said " the pie business " does not fit .'  # quotes verbatim, no quote processing
    assert frame["text_pair"][0] == '" The pie business does not fit our plan .'
    assert list(frame["label"]) == ["1", "0", "1"]
    assert list(frame["source_row"]) == [1, 2, 3] and set(frame["source_file"]) == {str(path)}
    assert frame["key"][2] == f"A comes first .{KEY_SEPARATOR}B comes second ."  # symmetric: sorted
    ordered = KIND.read(path, "tsv", data.model_copy(update={"symmetric": False})).frame
    assert ordered["key"][2] == f"B comes second .{KEY_SEPARATOR}A comes first ."

    with pytest.raises(Exception, match="#2 Strin.*text_pair_column"):
        KIND.read(path, "tsv", data.model_copy(update={"text_pair_column": "#2 Strin"}))


def test_a_missing_column_names_the_columns_it_could_be_or_says_the_file_lacks_it(tmp_path):
    """A file without its second-sentence column was advised to set data.text_pair_column "to the right name", when
    every column it had was another setting's (pair QA, D8): no name would have found it."""
    from tuneline.readers import DataLoadError

    path = tmp_path / "b.tsv"
    path.write_text("Quality\t#1 ID\t#2 ID\t#1 String\n1\t11\t12\tShares rose .\n", encoding="utf-8")
    data = PairData(path=path, text_column="#1 String", text_pair_column="#2 String", label_column="Quality")
    with pytest.raises(DataLoadError) as info:
        KIND.read(path, "tsv", data)
    assert str(info.value).endswith("set data.text_pair_column to the right name (of the columns no other setting "
                                    "reads: '#1 ID', '#2 ID'; or data.header: false for a file without a header row)"), info.value
    path.write_text("Quality\t#1 String\n1\tShares rose .\n", encoding="utf-8")
    with pytest.raises(DataLoadError) as info:
        KIND.read(path, "tsv", data)
    assert str(info.value) == (f"{path} has no column '#2 String' (its columns: ['Quality', '#1 String'], each read "
                               "for another setting): the file lacks the column data.text_pair_column names; add it")


def test_pair_key_is_stripped_ordered_or_sorted_and_unambiguous():
    assert pair_key(" b ", "a", symmetric=True) == pair_key("a", "b ", symmetric=True)
    assert pair_key("b", "a", symmetric=False) != pair_key("a", "b", symmetric=False)
    # a separator inside a text cannot make two different pairs share a key
    assert pair_key(f"x{KEY_SEPARATOR}y", "z", False) != pair_key("x", f"y{KEY_SEPARATOR}z", False)
    assert pair_key("", "a", True) is None and pair_key(None, "a", True) is None
    # sorted as the leakage rule folds: 'Zebra' sorted before 'apple' as written, 'zebra' after it, so a test pair
    # that was a train pair with one text in capitals got another key order and passed the leakage check
    assert leak_form(pair_key("Zebra crossing", "apple pie", True)) == leak_form(pair_key("zebra crossing",
                                                                                          "apple pie", True))


# --- contract ---------------------------------------------------------------------------------------------------------


def test_reversed_pair_is_a_duplicate_only_when_symmetric():
    rows = [("the cat sat", "a cat was sitting", "1"), ("a cat was sitting", "the cat sat", "1"),
            ("stocks rose", "stocks fell", "0")]
    clean, quarantine = check(rows, symmetric=True)
    assert rejected(quarantine) == {(2, "no_exact_duplicates")} and len(clean) == 2
    clean, quarantine = check(rows, symmetric=False)
    assert quarantine.empty and len(clean) == 3


def test_reversed_pair_with_another_label_rejects_both_copies_when_symmetric():
    rows = [("the cat sat", "a cat was sitting", "1"), ("a cat was sitting", "the cat sat", "0"), ("x", "y", "0")]
    clean, quarantine = check(rows, symmetric=True)
    assert rejected(quarantine) == {(1, "no_conflicting_label_duplicates"), (2, "no_conflicting_label_duplicates")}
    assert list(clean["source_row"]) == [3]


def test_texts_and_labels_are_checked_and_bad_texts_are_not_duplicates_of_each_other():
    rows = [("", "b", "1"), ("", "b", "1"), ("a", "   ", "0"), ("a", None, "0"), ("c", "d", "2"), ("e", "f", None),
            ("g", "h", "1")]
    clean, quarantine = check(rows, symmetric=True)
    assert rejected(quarantine) == {(1, "text_is_non_empty_string"), (2, "text_is_non_empty_string"),
                                    (3, "text_pair_is_non_empty_string"), (4, "not_nullable"),
                                    (5, "label_in_label_set"), (6, "not_nullable")}
    assert list(clean["source_row"]) == [7]
    # the blank second text says why, as a blank first text does (it showed "text_pair:    " and no reason)
    frame = pair_frame(rows, True)
    described = KIND.describe_failures(quarantine, {"train": frame}, LABELS)
    [said] = described.loc[described["rule"] == "text_pair_is_non_empty_string", "detail"]
    assert said == "the second text (text_pair) is empty or only spaces; text_pair: '   '"


@pytest.mark.parametrize("symmetric", [True, False])
def test_test_pair_in_train_is_leakage_reversed_too_when_symmetric(symmetric):
    train = pair_frame([("the cat sat", "a cat was sitting", "1"), ("stocks rose", "stocks fell", "0")], symmetric,
                       "train.csv")
    test = pair_frame([(" the cat sat ", "a cat was sitting", "1"),    # the same pair: always leakage
                       ("stocks fell", "stocks rose", "0"),            # reversed: leakage only when symmetric
                       ("rain today", "it will rain", "1")], symmetric, "test.csv")
    clean, quarantine = validate_frames({"train": train, "test": test}, LABELS,
                                        lambda labels, keys: KIND.schema(labels, keys, None), "text", "key")
    expected = {(1, "pair_not_in_train")} | ({(2, "pair_not_in_train")} if symmetric else set())
    assert rejected(quarantine) == expected and set(quarantine["split"]) == {"test"}
    assert len(clean["train"]) == 2 and len(clean["test"]) == 3 - len(expected)


def test_quarantine_detail_shows_the_second_text():
    frame = pair_frame([("a", "b", "1"), ("b", "a", "1")], symmetric=True)
    _, quarantine = apply_schema(frame, KIND.schema(LABELS, None, None), "train")
    described = KIND.describe_failures(quarantine, {"train": frame}, LABELS)
    assert list(described["value"]) == ["b"] and list(described["detail"]) == ["text_pair: a"]


# --- labels and metrics -----------------------------------------------------------------------------------------------


def test_positive_label_is_placed_where_score_reads_it():
    train = pair_frame([(f"a{i}", f"b{i}", label) for i in range(6) for label in ("dup", "not_dup")], True)
    frames = {"train": train}
    # "dup" sorts first, but "not_dup" negates it: the positive class is "dup", never the second label by the alphabet
    assert KIND.label_set(frames, PairData(path=Path("-"))) == ["not_dup", "dup"]
    assert KIND.label_set(frames, PairData(path=Path("-"), positive_label="not_dup")) == ["dup", "not_dup"]
    with pytest.raises(LabelSetError, match="positive_label='yes'"):
        KIND.label_set(frames, PairData(path=Path("-"), positive_label="yes"))
    # the configured label written another way than the data writes it is the same class, as labels fold
    assert KIND.label_set(frames, PairData(path=Path("-"), positive_label="Not-Dup")) == ["dup", "not_dup"]
    nli = pair_frame([(f"a{i}", f"b{i}", label) for i in range(6) for label in ("0", "1", "2")], False)
    assert KIND.label_set({"train": nli}, PairData(path=Path("-"), positive_label="2")) == ["0", "2", "1"]

    gold = ["dup", "dup", "not_dup", "not_dup", "dup"]
    predicted = ["dup", "not_dup", "not_dup", "dup", "dup"]
    metrics = KIND.score(gold, predicted, ["not_dup", "dup"])
    assert set(metrics) == set(KIND.metrics)
    from sklearn.metrics import f1_score

    assert metrics["f1_positive"] == pytest.approx(f1_score(gold, predicted, pos_label="dup"))
    assert metrics["accuracy"] == pytest.approx(0.6)


def test_binary_scores_match_the_kind_score():
    rng = np.random.default_rng(0)
    positive, predicted = rng.random(200) < 0.7, rng.random(200) < 0.5
    names = lambda mask: ["1" if m else "0" for m in mask]  # noqa: E731
    assert binary_scores(positive, predicted) == pytest.approx(KIND.score(names(positive), names(predicted), LABELS))


def test_subset_score_is_score_on_the_resampled_rows_for_every_pair_metric():
    """The report's interval and the gate's paired comparison use subset_score: for f1_positive it was weighted F1
    (classification's fallback), so a +0.11 gain in the reported metric was compared as -0.03."""
    rng = np.random.default_rng(3)
    gold = ["1" if g else "0" for g in rng.random(120) < 0.68]
    predicted = ["1" if p else "0" for p in rng.random(120) < 0.6]
    for indices in (np.arange(120), rng.integers(0, 120, size=120)):
        expected = KIND.score([gold[i] for i in indices], [predicted[i] for i in indices], LABELS)
        assert set(expected) == {"accuracy", "macro_f1", "f1_positive"}
        for metric, value in expected.items():
            assert KIND.subset_score(gold, predicted, LABELS, metric)(indices) == pytest.approx(value)
    assert KIND.subset_score(gold, predicted, LABELS, "f1_positive")(np.arange(120)) != pytest.approx(
        ClassificationKind().subset_score(gold, predicted, LABELS, "weighted_f1")(np.arange(120)))
    with pytest.raises(ValueError, match="no subset score for metric 'f1_positive' of classification"):
        ClassificationKind().subset_score(gold, predicted, LABELS, "f1_positive")


def test_positive_label_written_as_a_number_is_the_label_text():
    assert pair_config("data.positive_label=1").data.positive_label == "1"  # was "Input should be a valid string"
    assert pair_config(positive_label=1).data.positive_label == "1"  # YAML's unquoted 1


def test_best_threshold_finds_the_known_cut_for_each_objective():
    # similarities of 9 train pairs: two clear positives on top, two more positives among the negatives below
    scores = np.array([0.05, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.80, 0.90])
    positive = np.array([False, False, True, False, True, False, False, True, True])
    # a cut in (0.6, 0.8]: 7 of 9 right (the best accuracy), F1 of the positives 4/6, macro F1 0.75 (the best); the
    # middle of that range, not its edge at the lowest positive's score
    assert best_threshold(scores, positive, threshold_objective("accuracy")) == pytest.approx(0.70)
    assert best_threshold(scores, positive, threshold_objective("macro_f1")) == pytest.approx(0.70)
    # a cut in (0.1, 0.2] catches every positive for 3 false alarms: F1 8/11 beats 4/6, though only 6 of 9 are right
    assert best_threshold(scores, positive, threshold_objective("f1_positive")) == pytest.approx(0.15)
    # separable scores: the middle of the gap between the highest negative and the lowest positive
    assert best_threshold(np.array([0.1, 0.6245, 0.6946, 0.9]), np.array([False, False, True, True]),
                          threshold_objective("macro_f1")) == pytest.approx((0.6245 + 0.6946) / 2)
    with pytest.raises(ValueError, match="weighted_f1"):
        threshold_objective("weighted_f1")


def test_best_threshold_on_a_quantile_grid_still_reaches_the_best_value():
    """Over 512 distinct scores the cuts are a quantile grid; the middle of two grid points let a negative through
    that the best grid cut kept out (separable scores scored 0.995, metrics QA). The cut is now in the gap among the
    scores themselves."""
    rng = np.random.default_rng(0)
    positive = rng.random(1000) < 0.2
    scores = 1 / (1 + np.exp(-(np.where(positive, -0.5, -2.0) + rng.uniform(-0.4, 0.4, 1000))))
    grid = np.quantile(scores, np.linspace(0, 1, 513))  # these scores' grid has no point in their gap
    assert not ((grid > scores[~positive].max()) & (grid <= scores[positive].min())).any()
    for metric in ("f1_positive", "macro_f1", "accuracy"):
        cut = best_threshold(scores, positive, threshold_objective(metric))
        assert scores[~positive].max() < cut <= scores[positive].min(), metric


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1", "f1_positive"])
def test_best_threshold_is_the_exact_optimum_on_random_scores(metric):
    rng = np.random.default_rng(1)
    positive = rng.random(300) < 0.65
    scores = np.where(positive, rng.normal(0.6, 0.15, 300), rng.normal(0.4, 0.15, 300))
    objective = threshold_objective(metric)
    found = objective(positive, scores >= best_threshold(scores, positive, objective))
    from sklearn.metrics import accuracy_score, f1_score

    def oracle(predicted):
        if metric == "accuracy":
            return accuracy_score(positive, predicted)
        if metric == "macro_f1":
            return f1_score(positive, predicted, average="macro", zero_division=0)
        return f1_score(positive, predicted, zero_division=0)

    assert found == pytest.approx(max(oracle(scores >= t) for t in np.unique(scores)))


def pair_splits() -> DataSplits:
    def frame(offset: int, n: int) -> pd.DataFrame:
        rows = [(f"my parcel {i}", f"the parcel {i}", "1") if i % 2 else (f"my password {i}", f"a delivery {i}", "0")
                for i in range(offset, offset + n)]
        return pair_frame(rows, True)

    return DataSplits(train=frame(0, 40), validation=frame(100, 6), test=frame(200, 10), labels=LABELS)


def test_zero_shot_baseline_runs_on_the_base_model(tiny_bert):
    config = pair_config(f"model.base={tiny_bert}", "tokenize.max_length=32", "gate.primary_metric=accuracy")
    baseline = KIND.zero_shot_baseline(pair_splits(), config)
    assert isinstance(baseline, ThresholdEvaluation) and baseline.name == "zero_shot"
    assert -1.0 <= baseline.threshold <= 1.0
    assert set(baseline.metrics) == {"accuracy", "macro_f1", "f1_positive"}
    assert len(baseline.predictions) == 10 and set(baseline.predictions) <= set(LABELS)
    assert [p == "1" for p in baseline.predictions] == [s >= baseline.threshold for s in baseline.scores]
    names = [b.name for b in KIND.baselines(pair_splits(), config)]
    assert names == ["majority", "zero_shot"]


def test_zero_shot_baseline_is_skipped_for_more_than_two_labels(caplog):
    splits = pair_splits()
    splits.labels = ["0", "1", "2"]
    config = pair_config("model.base=/nonexistent", 'data.labels=["0", "1", "2"]')  # never loaded
    with caplog.at_level("INFO", logger="tuneline"):
        assert KIND.zero_shot_baseline(splits, config) is None
    assert [b.name for b in KIND.baselines(splits, config)] == ["majority"]


# --- config -----------------------------------------------------------------------------------------------------------


def test_config_defaults_and_metric_choice():
    config = pair_config()
    assert config.primary_metric == "f1_positive" and config.tokenize.truncation == "longest_first"
    assert config.data.text_pair_column == "text_pair" and config.data.symmetric is False
    assert pair_config("gate.primary_metric=macro_f1").primary_metric == "macro_f1"
    with pytest.raises(ConfigError, match="gate.primary_metric: 'f1'.*accuracy, macro_f1, f1_positive"):
        pair_config("gate.primary_metric=f1")
    with pytest.raises(ConfigError, match="truncation"):
        pair_config("tokenize.truncation=do_not_truncate")


def test_example_config_points_at_mrpc():
    from tuneline.config import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "examples" / "mrpc.yaml")
    assert config.task == "pair_classification" and config.primary_metric == "f1_positive"
    assert config.data.symmetric and config.data.text_pair_column == "#2 String"
    assert config.data.train.name == "train.tsv" and config.data.train.parent.name == "mrpc"


# --- serving input ----------------------------------------------------------------------------------------------------


def test_pyfunc_accepts_frames_lists_and_dicts():
    expected = (["a", "c"], ["b", "d"])
    assert pairs_from_input(pd.DataFrame({"text_pair": ["b", "d"], "text": ["a", "c"]})) == expected
    assert pairs_from_input([["a", "b"], ("c", "d")]) == expected
    assert pairs_from_input({"text": ["a", "c"], "text_pair": ["b", "d"]}) == expected
    assert pairs_from_input(pd.DataFrame({"text": [["a", "c"]], "text_pair": [["b", "d"]]})) == expected  # MLflow's
    assert pairs_from_input([{"text": "a", "text_pair": "b"}, {"text": "c", "text_pair": "d"}]) == expected
    with pytest.raises(ValueError, match=r"\[\[text, pair\]\]"):
        pairs_from_input(["a", "b"])
    with pytest.raises(ValueError, match="must line up"):
        pairs_from_input({"text": ["a", "c"], "text_pair": ["b"]})
    with pytest.raises(ValueError, match="missing text"):
        pairs_from_input([["a", None]])
    # list cells in a frame of several rows were flattened: 3 predictions for 2 rows, the pairs shifted
    with pytest.raises(ValueError):
        pairs_from_input(pd.DataFrame({"text": [["a", "b"], ["c"]], "text_pair": [["d"], ["e", "f"]]}))


# --- end to end -------------------------------------------------------------------------------------------------------

MODEL = "flow-test-pairs"
TOPICS = ["invoice", "parcel", "password", "laptop"]
UNRELATED = ["movie", "film", "paris", "london", "berlin"]
FILLERS = ["my", "the", "please", "help", "need", "can", "you", "why", "is", "not", "it", "at", "on", "a", "an", "your",
           "was", "to", "for", "of", "in", "and", "or", "i", "me"]


def make_pairs(n: int, seed: int, avoid: set[tuple[str, str]] = frozenset()) -> list[list[str]]:
    """Pairs "<filler> <word>" that a tiny random BERT learns in a few epochs: label 1 when both texts name the same
    topic, 0 when one of them (either, at random) names an unrelated word instead. Neither text alone tells the
    label; every pair is unique, in either order, and none is in ``avoid``."""
    rng = random.Random(seed)
    rows: list[list[str]] = []
    seen = set(avoid)
    while len(rows) < n:
        topic = rng.choice(TOPICS)
        same = rng.random() < 0.5
        words = [topic, topic] if same else rng.sample([topic, rng.choice(UNRELATED)], 2)
        text, pair = (f"{rng.choice(FILLERS)} {word}" for word in words)
        if (text, pair) in seen or (pair, text) in seen:
            continue
        seen.add((text, pair))
        rows.append([text, pair, "1" if same else "0"])
    return rows


def write_pair_csv(path: Path, n: int = 360, seed: int = 3) -> tuple[Path, list[list[str]]]:
    """:func:`make_pairs`, plus a reversed copy of one pair (an exact duplicate of a symmetric pair) and a reversed
    copy of another with the other label (a conflict: both copies are rejected)."""
    rows = make_pairs(n, seed)
    planted = [[rows[0][1], rows[0][0], rows[0][2]],                                 # row n+1: duplicate
               [rows[1][1], rows[1][0], "0" if rows[1][2] == "1" else "1"]]          # row n+2: conflicts with row 2
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "candidate", "same"])
        writer.writerows(rows + planted)
    return path, rows


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory, tiny_bert):
    folder = tmp_path_factory.mktemp("pair-flow")
    with working_in(folder):
        data, rows = write_pair_csv(folder / "data" / "pairs.csv")
        config = build_config({
            "task": "pair_classification",
            "data": {"path": str(data), "text_column": "question", "text_pair_column": "candidate",
                     "label_column": "same", "symmetric": True},
            "model": {"base": str(tiny_bert)},
            "tokenize": {"max_length": 32},
            "train": {"epochs": 10, "learning_rate": 2e-3, "batch_size": 32, "early_stopping_patience": 4,
                      "precision": "fp32"},
            "evaluate": {"zero_shot_baseline": True},
            "tracking": {"experiment": "pair-flow-test", "registered_model": MODEL},
            "gate": {"min_metric": 0.5},
        })
        from tuneline.flows.train import train_flow

        summary = train_flow(config)
    return folder, config, summary, rows


def test_pair_flow_registers_a_champion_with_pair_metrics(pair_run):
    folder, config, summary, rows = pair_run
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    client = MlflowClient()
    run = client.get_run(summary.run_id)
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert {"test.accuracy", "test.macro_f1", "test.f1_positive", "test.0.f1", "test.1.f1"} <= set(metrics)
    assert {"baseline.majority.f1_positive", "baseline.zero_shot.accuracy", "baseline.zero_shot.macro_f1",
            "baseline.zero_shot.f1_positive"} <= set(metrics)
    assert metrics["test.f1_positive"] >= 0.8 and metrics["test.accuracy"] > metrics["baseline.majority.accuracy"]
    version = client.get_model_version(MODEL, summary.version)
    assert sorted(version.aliases) == ["challenger", "champion"]
    assert version.tags["gate.metric"] == "f1_positive" and version.tags["gate.decision"] == "promoted"

    quarantine = pd.read_csv(summary.quarantine_file)
    found = {(int(r), rule) for r, rule in zip(quarantine["source_row"], quarantine["rule"])}
    n = len(rows)
    assert found == {(n + 1, "no_exact_duplicates"), (2, "no_conflicting_label_duplicates"),
                     (n + 2, "no_conflicting_label_duplicates")}
    # what each copy is, then the pair's second text (the value column shows the first), by its column's name
    assert set(quarantine["detail"].str.contains(r"\(candidate: .*\)$")) == {True}
    assert quarantine.loc[quarantine["rule"] == "no_exact_duplicates", "detail"].str.startswith("a copy of ").all()
    predictions = pd.read_csv(Path(summary.run_dir) / "evaluation" / "test_predictions.csv")
    assert {"text", "text_pair", "label", "predicted", "score"} <= set(predictions.columns)
    assert summary.labels == ["0", "1"] and summary.primary_metric == "f1_positive"


def test_registered_pair_model_predicts_from_frames_and_lists(pair_run):
    folder, config, summary, rows = pair_run
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{summary.version}")
    assert [spec.to_dict() for spec in model.metadata.get_input_schema().inputs] == [
        {"type": "any", "required": True}] * 2  # Any: a null second text stays null (refused), not "None"
    fresh = make_pairs(7, seed=11, avoid={(row[0], row[1]) for row in rows})  # never seen in training
    texts, pairs, expected = ([row[k] for row in fresh] for k in range(3))
    from_frame = model.predict(pd.DataFrame({"text": texts, "text_pair": pairs}))  # more rows than the example
    assert list(from_frame.columns) == ["label", "score", "scores"] and len(from_frame) == 7
    assert list(from_frame["label"]) == expected
    assert all(0.5 <= s <= 1.0 for s in from_frame["score"])
    assert sum(from_frame["scores"][0].values()) == pytest.approx(1.0, abs=1e-4)
    one = model.predict(pd.DataFrame({"text": [texts[0]], "text_pair": [pairs[0]]}))  # fewer rows than the example
    assert list(one["label"]) == expected[:1] and one["score"][0] == pytest.approx(from_frame["score"][0], abs=1e-5)
    long = " ".join(["the"] * 200)  # far longer than the example and than max_length: cut longest_first, not refused
    cut = model.predict(pd.DataFrame({"text": [f"{texts[1]} {long}", texts[2]],
                                      "text_pair": [pairs[1], f"{pairs[2]} {long}"]}))
    assert len(cut) == 2 and set(cut["label"]) <= {"0", "1"}
    from_dict = model.predict({"text": texts, "text_pair": pairs})
    assert list(from_dict["label"]) == expected
    # a list of [text, pair] lists, through MLflow's own predict (schema enforcement on)
    from_list = model.predict([[t, p] for t, p in zip(texts, pairs)])
    assert list(from_list["label"]) == expected
    assert from_list["score"].tolist() == pytest.approx(from_frame["score"].tolist(), abs=1e-5)
    # an id column first would be cut off with the pair's second text (MLflow keeps a frame's first two columns)
    with pytest.raises(MlflowException, match=r"\['id', 'text'\]; pass 'text' and 'text_pair' columns"):
        model.predict(pd.DataFrame({"id": range(7), "text": texts, "text_pair": pairs}))
    with pytest.raises(MlflowException, match="missing text at row 0 of 'text_pair'"):
        model.predict([[texts[0], None]])


def test_a_file_with_the_training_datas_column_names_is_predicted_as_it_is(pair_run, tmp_path, capsys):
    """The pair model was trained on ``question``/``candidate`` columns; predict --input on a file laid out the same
    way was refused ("has no column 'text'") until the file was renamed to the model's own names."""
    from tuneline.cli import main

    folder, config, summary, rows = pair_run
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    tags = store_client(uri).get_model_version(MODEL, summary.version).tags
    assert (tags["column.text"], tags["column.text_pair"]) == ("question", "candidate")
    fresh = make_pairs(5, seed=12, avoid={(row[0], row[1]) for row in rows})
    source, output = tmp_path / "to-score.csv", tmp_path / "scored.csv"
    pd.DataFrame({"id": range(5), "question": [r[0] for r in fresh], "candidate": [r[1] for r in fresh]}).to_csv(
        source, index=False)
    assert main(["predict", "-m", f"{MODEL}/{summary.version}", "--tracking-uri", uri, "--input", str(source),
                 "--output", str(output)]) == 0
    scored = pd.read_csv(output, dtype=str)
    assert scored["label"].tolist() == [r[2] for r in fresh] and scored["question"].tolist() == [r[0] for r in fresh]
    capsys.readouterr()
    assert main(["predict", "-m", f"{MODEL}/{summary.version}", "--tracking-uri", uri, "--input", str(source)]) == 0
    printed = capsys.readouterr().out
    assert all(r[2] in printed for r in fresh) and "question" in printed
    pd.DataFrame({"#1 String": ["a"], "candidate": ["b"]}).to_csv(source, index=False)
    assert main(["predict", "-m", f"{MODEL}/{summary.version}", "--tracking-uri", uri, "--input", str(source)]) == 1
    assert ("has no column 'text', which a pair_classification model reads (it needs 'text', 'text_pair'; or, as its "
            "training data named them, 'question', 'candidate'; the file has '#1 String', 'candidate')"
            in capsys.readouterr().err)


# --- real data --------------------------------------------------------------------------------------------------------

MRPC_TRAIN_ROWS = 800


@pytest.mark.slow
@pytest.mark.shared_data
def test_minilm_on_mrpc_beats_the_majority_baseline(workdir):
    mrpc = shared_data("mrpc")
    lines = (mrpc / "train.tsv").read_text(encoding="utf-8").splitlines()
    subset = workdir / "mrpc-train-slice.tsv"
    subset.write_text("\n".join(lines[: MRPC_TRAIN_ROWS + 1]) + "\n", encoding="utf-8")  # keeps the BOM header
    config = build_config({
        "task": "pair_classification",
        "data": {"train": str(subset), "test": str(mrpc / "dev.tsv"), "text_column": "#1 String",
                 "text_pair_column": "#2 String", "label_column": "Quality", "labels": ["0", "1"],
                 "symmetric": True},
        "model": {"base": "minilm"},
        "tokenize": {"max_length": 64},
        "train": {"epochs": 1, "batch_size": 16, "learning_rate": 1e-4, "logging_steps": 10},
        "evaluate": {"zero_shot_baseline": False},  # covered with the tiny BERT above; costs 2,400 embeddings here
        "tracking": {"experiment": "mrpc-real", "registered_model": "mrpc-minilm"},
        "gate": {"primary_metric": "f1_positive", "min_metric": 0.5},
    })
    from tuneline.flows.train import train_flow

    summary = train_flow(config)
    after, majority = summary.comparison["fine_tuned"], summary.comparison["majority"]
    print(f"MRPC dev: fine-tuned accuracy {after['accuracy']:.4f} F1 {after['f1_positive']:.4f}; "
          f"majority accuracy {majority['accuracy']:.4f} F1 {majority['f1_positive']:.4f}")
    # measured here (45 steps over 714 train pairs, 86 carved for validation; bf16 on CPU, so runs differ a little):
    # fine-tuned accuracy 0.696-0.711, F1 0.811-0.824; majority 0.684 / 0.812. So short a run barely moves off
    # "always paraphrase" (the zero-shot cosine baseline scores 0.735 / 0.829): the assertion is only that it does.
    assert majority["accuracy"] == pytest.approx(279 / 408, abs=1e-4)  # dev: 279 paraphrases of 408
    assert after["accuracy"] > majority["accuracy"]
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    run = MlflowClient().get_run(summary.run_id)
    assert int(run.data.tags["data.test.rows"]) == 408  # the dev pairs are all kept: none leaks from train


# --- the positive class: never the second label by the alphabet ----------------------------------------------------


@pytest.mark.parametrize("labels, positive", [
    (["0", "1"], "1"), (["-1", "1"], "1"), (["false", "true"], "true"), (["No", "Yes"], "Yes"),
    (["negative", "positive"], "positive"),
    (["duplicate", "not_duplicate"], "duplicate"), (["match", "no_match"], "match"), (["Match", "No-Match"], "Match"),
    (["entailment", "not_entailment"], "entailment"), (["non duplicate", "duplicate"], "duplicate"),
    (["related", "unrelated"], "related"), (["irrelevant", "relevant"], "relevant"),
    (["dissimilar", "similar"], "similar"),
    (["different", "same"], None), (["a", "b"], None), (["e", "none"], None), (["1", "2"], None),
    (["0", "1", "2"], None), (["contradiction", "entailment", "neutral"], None),
])
def test_default_positive_comes_from_the_names_or_not_at_all(labels, positive):
    from tuneline.kinds.pair_classification import default_positive, resolve_positive

    assert default_positive(labels)[0] == positive
    assert resolve_positive(labels, None) == positive


def test_the_chosen_positive_class_is_logged(caplog):
    train = pair_frame([(f"a{i}", f"b{i}", label) for i in range(6) for label in ("match", "no_match")], False)
    with caplog.at_level("INFO", logger="tuneline"):
        assert KIND.label_set({"train": train}, PairData(path=Path("-"))) == ["no_match", "match"]
    lines = [r.getMessage() for r in caplog.records if "positive class" in r.getMessage()]
    assert lines == ["positive class 'match' ('no_match' negates it): f1_positive is its F1; set "
                     "data.positive_label to choose another"]


def nli_frame() -> pd.DataFrame:
    labels = ("contradiction", "entailment", "neutral")
    return pair_frame([(f"a{i} {label}", f"b{i}", label) for i in range(6) for label in labels], False)


def test_no_positive_class_with_an_f1_positive_gate_is_one_line_error(tmp_path):
    from tuneline.tasks.load import QUARANTINE_COLUMNS, LoadedData
    from tuneline.tasks.validate import DataValidationError, validate_data

    loaded = LoadedData(frames={"train": nli_frame()}, sources=[], malformed=pd.DataFrame(columns=QUARANTINE_COLUMNS))
    with pytest.raises(DataValidationError) as info:
        validate_data.fn(loaded, pair_config(), tmp_path)
    assert str(info.value) == (
        "gate.primary_metric is f1_positive, but the pair labels ['contradiction', 'entailment', 'neutral'] have no "
        "positive class (3 labels have no single positive class): set data.positive_label to one of them, or "
        "gate.primary_metric to macro_f1 or accuracy")
    ambiguous = pair_frame([(f"a{i} {label}", f"b{i}", label) for i in range(6) for label in ("same", "different")],
                           True)
    loaded.frames = {"train": ambiguous}
    with pytest.raises(DataValidationError, match=r"\['different', 'same'\] have no positive class \(the names do "
                                                  r"not say which one is positive\)"):
        validate_data.fn(loaded, pair_config(), tmp_path)
    # another gate metric needs no positive class: the labels stay sorted, and that is said once
    result = validate_data.fn(loaded, pair_config("gate.primary_metric=macro_f1"), tmp_path)
    assert result.labels == ["different", "same"]
    result = validate_data.fn(loaded, pair_config("data.positive_label=same"), tmp_path)
    assert result.labels == ["different", "same"]


def test_macro_gate_keeps_nli_labels_sorted_and_reports_no_f1_positive(caplog):
    """The labels stay sorted, and no class is taken for the positive one: f1_positive was the F1 of 'entailment',
    second by the alphabet (test_pair_qa.py has the whole run)."""
    config = pair_config("gate.primary_metric=macro_f1")
    with caplog.at_level("INFO", logger="tuneline"):
        labels = KIND.label_set({"train": nli_frame()}, config.data, primary_metric=config.primary_metric)
    assert labels == ["contradiction", "entailment", "neutral"]
    assert not [r for r in caplog.records if "positive" in r.getMessage()]  # the tokenizer says it, once per run
    assert set(KIND.score(["entailment", "neutral"], ["entailment", "entailment"], labels)) == {"accuracy",
                                                                                                "macro_f1"}


# --- columns ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, message", [
    ({"text_pair_column": "label"}, r"data\.text_pair_column: names the same column as data\.label_column "
                                    r"\('label'\); the model would be given the label as its input: set "
                                    r"data\.text_pair_column to another column"),
    ({"text_pair_column": "q", "label_column": "q"}, r"data\.text_pair_column: names the same column as "
                                                     r"data\.label_column \('q'\)"),
    ({"text_column": "q", "text_pair_column": "q"}, r"data\.text_pair_column: names the same column as "
                                                    r"data\.text_column \('q'\); the model would be given one text "
                                                    r"twice"),
])
def test_text_pair_column_must_differ_from_the_label_and_text_columns(data, message):
    with pytest.raises(ConfigError, match=message):
        pair_config(**data)


def test_text_pair_column_matching_the_label_header_is_a_data_error(tmp_path):
    from tuneline.readers import DataLoadError

    path = tmp_path / "pairs.csv"
    path.write_text("question,candidate,same\na,b,1\n", encoding="utf-8")
    data = PairData(path=path, text_column="question", text_pair_column=" Same", label_column="same")
    with pytest.raises(DataLoadError, match=r"data\.text_pair_column and data\.label_column both read the column "
                                            r"'same'"):
        KIND.read(path, "csv", data)


# --- rows the contract must reject -----------------------------------------------------------------------------------


def test_null_or_absent_text_pair_and_unknown_labels_are_quarantined_with_details(tmp_path):
    import json

    from tuneline.tasks.load import QUARANTINE_COLUMNS, LoadedData
    from tuneline.tasks.validate import validate_data

    records = [{"text": f"first {i}", "text_pair": f"second {i}", "label": i % 2} for i in range(40)]
    records += [{"text": "x", "text_pair": None, "label": 1}, {"text": "y", "label": 0},
                {"text": "z", "text_pair": "zz", "label": "maybe"}]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    config = pair_config(f"data.path={path}", 'data.labels=["0", "1"]', "data.max_bad_fraction=0.1")
    read = KIND.read(path, "jsonl", config.data)
    loaded = LoadedData(frames={"all": read.frame}, sources=[], malformed=pd.DataFrame(columns=QUARANTINE_COLUMNS))
    result = validate_data.fn(loaded, config, tmp_path)
    q = result.quarantine
    assert sorted(zip(q["source_row"], q["rule"], q["column"], q["value"], q["detail"])) == [
        (41, "not_nullable", "text_pair", "x", "the second text (text_pair) is missing (an empty cell, or null)"),
        (42, "not_nullable", "text_pair", "y", "the second text (text_pair) is missing (an empty cell, or null)"),
        (43, "label_in_label_set", "label", "z",
         "label 'maybe' is not in the label set ['0', '1']: fix the row, or add the label to data.labels if it is a "
         "class; text_pair: zz")]
    assert len(result.frames["all"]) == 40
    assert KIND.label_distribution(result.frames["all"]) == {"0": 20, "1": 20}


def test_quarantine_details_name_the_columns_as_the_file_names_them(tmp_path):
    """MRPC's columns are ``#1 String`` and ``#2 String``; the quarantine's ``column`` said so, but its ``detail``
    said "the text_pair is missing" and "text_pair: She came." (dirty-data QA): names the user never wrote."""
    from tuneline.tasks.load import QUARANTINE_COLUMNS, LoadedData
    from tuneline.tasks.validate import validate_data

    rows = [("1", f"first {i}.", f"second {i}.") for i in range(40)] + [("0", "He left.", ""), ("1", "", "She came."),
                                                                         ("1", "Rain.", "   ")]
    path = tmp_path / "mrpc.tsv"
    path.write_text("Quality\t#1 String\t#2 String\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    config = pair_config(f"data.path={path}", 'data.labels=["0", "1"]', "data.max_bad_fraction=0.1",
                         "data.text_column=#1 String", "data.text_pair_column=#2 String", "data.label_column=Quality")
    read = KIND.read(path, "tsv", config.data)
    loaded = LoadedData(frames={"all": read.frame}, sources=[], malformed=pd.DataFrame(columns=QUARANTINE_COLUMNS))
    q = validate_data.fn(loaded, config, tmp_path).quarantine
    assert sorted(zip(q["source_row"], q["column"], q["detail"])) == [
        (41, "#2 String", "the second text ('#2 String') is missing (an empty cell, or null)"),
        (42, "#1 String", "the first text ('#1 String') is missing (an empty cell, or null); #2 String: She came."),
        (43, "#2 String", "the second text ('#2 String') is empty or only spaces; #2 String: '   '")]


def test_zero_shot_baseline_without_a_positive_class_predicts_the_more_similar_label_above_the_cut(tiny_bert):
    """``alike`` sorts first; the baseline used to predict the second name, ``other``, for similar pairs."""
    splits = pair_splits()
    names = {"1": "alike", "0": "other"}
    for name in ("train", "validation", "test"):
        frame = getattr(splits, name)
        setattr(splits, name, frame.assign(label=frame["label"].map(names)))
    splits.labels = ["alike", "other"]
    config = pair_config(f"model.base={tiny_bert}", "tokenize.max_length=32", "gate.primary_metric=accuracy")
    baseline = KIND.zero_shot_baseline(splits, config)
    from tuneline.embeddings import Embedder

    train = splits.train
    means = pd.Series(pair_similarity(Embedder.for_config(config), train)).groupby(train["label"].to_numpy()).mean()
    above = means.idxmax()
    below = "other" if above == "alike" else "alike"
    assert [p == above for p in baseline.predictions] == [s >= baseline.threshold for s in baseline.scores]
    assert set(baseline.predictions) <= {above, below}


def test_a_minority_positive_class_gets_the_all_positive_baseline_under_f1_positive():
    """With the positive class the minority, the majority baseline says 'negative' everywhere and scores F1 0: a
    model that only learned to say 'positive' (F1 0.46 at 30% positives) beat every "before" number and was
    promoted (metrics QA). The all-positive baseline is that model, so the gate's margin is over it."""
    splits = pair_splits()
    minority = splits.train["label"].map({"0": "0", "1": "0"})
    splits.train = splits.train.assign(label=minority.where(splits.train.index % 4 != 1, "1"))  # 25% positive
    config = pair_config("gate.primary_metric=f1_positive", "evaluate.zero_shot_baseline=false")
    majority, always = KIND.baselines(splits, config)
    assert (majority.name, majority.metrics["f1_positive"]) == ("majority", 0.0)
    assert always.name == "all_positive" and always.predictions == ["1"] * len(splits.test)
    share = (splits.test["label"] == "1").mean()
    assert always.metrics["f1_positive"] == pytest.approx(2 * share / (1 + share)) and share > 0
    # not when the positive class is the majority (the majority baseline is that model) or the gate reads another
    # metric
    mostly_positive = pair_splits()
    mostly_positive.train = mostly_positive.train.assign(label=lambda f: f["label"].where(f.index % 4 == 0, "1"))
    assert [b.name for b in KIND.baselines(mostly_positive, config)] == ["majority"]
    assert [b.name for b in KIND.baselines(splits, pair_config("gate.primary_metric=accuracy",
                                                                 "evaluate.zero_shot_baseline=false"))] == ["majority"]


def test_pair_macro_f1_averages_the_labels_the_test_rows_hold():
    """An NLI test split without one of its three classes was averaged with an F1 of 0 for it (classification and
    multi-label average the labels the rows hold); the bootstrap's subset score gives the same number."""
    labels = ["contradiction", "entailment", "neutral"]
    gold = ["entailment", "neutral"] * 5
    assert KIND.score(gold, gold, labels)["macro_f1"] == 1.0
    assert KIND.subset_score(gold, gold, labels, "macro_f1")(np.arange(10)) == 1.0
    wrong = gold[:-1] + ["contradiction"]  # one 'neutral' called 'contradiction'
    expected = (1.0 + 2 * 4 / 9) / 2
    assert KIND.score(gold, wrong, labels)["macro_f1"] == pytest.approx(expected)
    assert KIND.subset_score(gold, wrong, labels, "macro_f1")(np.arange(10)) == pytest.approx(expected)


def test_a_pair_written_in_another_case_or_spacing_with_another_label_is_a_conflict():
    """QA: an MRPC pair copied with both sentences lower-cased and the other label was kept beside the original."""
    rows = [("The cat sat .", "A cat was sitting .", "1"), ("the cat sat .", "a cat  was sitting .", "0"),
            ("Stocks rose", "Stocks fell", "0"), ("stocks rose", "STOCKS FELL", "0")]
    clean, quarantine = check(rows, symmetric=False)
    assert rejected(quarantine) == {(1, "no_conflicting_label_duplicates"), (2, "no_conflicting_label_duplicates")}
    assert list(clean["source_row"]) == [3, 4]
