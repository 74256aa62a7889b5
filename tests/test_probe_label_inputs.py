"""Multi-label label columns the probe found mis-read or unexplained: multi-hot vectors (read as the classes "0" and
"1"), label objects and nested lists (ending in "the label set [] has 0 label(s)"), two configured labels that share
a spelling key (folded into one), and a label names file with a header line (every id shifted by one)."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pandas as pd
import pytest

from tests_support import run_config
from tuneline.kinds import KINDS
from tuneline.kinds.label_spellings import spelling_map
from tuneline.readers import DataLoadError
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import DataValidationError, validate_data

TASK = "multilabel_classification"
KIND = KINDS[TASK]
EMOTIONS = [f"emotion_{i}" for i in range(28)]  # GoEmotions' 28 labels, by id


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def validated(tmp_path: Path, *overrides: str, **data):
    config = run_config(TASK, *overrides, **data)
    return validate_data.fn(load_data.fn(config), config, tmp_path / "run")


def id_sets(count: int, width: int = 28, seed: int = 0) -> list[list[int]]:
    """One or two label ids a row, every id in several rows."""
    rng = random.Random(seed)
    return [sorted({i % width, *rng.sample(range(width), rng.choice([0, 1]))}) for i in range(count)]


def vector(ids: list[int], width: int = 28, one: object = 1, zero: object = 0) -> list[object]:
    return [one if i in ids else zero for i in range(width)]


# --- multi-hot vectors ------------------------------------------------------------------------------------------

def test_multi_hot_vectors_are_read_as_label_ids_named_by_label_names(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture):
    """``{"labels": [0, 0, 1, ...]}`` (Hugging Face datasets, MultiLabelBinarizer) was read as the classes "0" and
    "1", without a word; position i is label id i, named by data.label_names like a written id."""
    sets = id_sets(140)
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": f"text {i}", "labels": vector(ids)}
                                                  for i, ids in enumerate(sets)])
    names = tmp_path / "labels.txt"
    names.write_text("\n".join(EMOTIONS) + "\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="tuneline"):
        result = validated(tmp_path, train=path, label_column="labels", label_names=str(names))
    assert result.labels == EMOTIONS
    assert result.quarantine.empty
    train = result.frames["train"].sort_values("source_row")
    assert train["label"].tolist() == [sorted(EMOTIONS[i] for i in ids) for ids in sets]
    said = [r.getMessage() for r in caplog.records if "multi-hot" in r.getMessage()]
    assert len(said) == 1 and "'labels'" in said[0] and "28 positions" in said[0]


@pytest.mark.parametrize("one, zero", [(True, False), (1.0, 0.0)], ids=["booleans", "floats"])
def test_multi_hot_vectors_of_booleans_or_floats_read_as_ids(tmp_path: Path, one: object, zero: object):
    sets = [[0, 2], [1], [3], [2, 3]]
    path = write_jsonl(tmp_path / "v.jsonl", [{"text": f"t{i}", "labels": vector(ids, 4, one, zero)}
                                              for i, ids in enumerate(sets)])
    frame = KIND.read(path, "jsonl", run_config(TASK, path=path, label_column="labels",
                                                label_names=EMOTIONS[:4]).data).frame
    assert frame["label"].tolist() == [sorted(EMOTIONS[i] for i in ids) for ids in sets]


def test_an_all_zero_multi_hot_vector_is_a_row_without_labels(tmp_path: Path):
    sets = id_sets(60, 4) + [[], []]
    path = write_jsonl(tmp_path / "v.jsonl", [{"text": f"t{i}", "labels": vector(ids, 4)}
                                              for i, ids in enumerate(sets)])
    common = dict(train=path, label_column="labels", label_names=EMOTIONS[:4])
    strict = validated(tmp_path, "data.max_bad_fraction=0.5", **common)
    assert strict.quarantine["rule"].tolist() == ["at_least_one_label"] * 2
    assert strict.quarantine["source_row"].tolist() == [61, 62]
    lenient = validated(tmp_path, "data.allow_empty_labels=true", **common)
    assert lenient.quarantine.empty and lenient.frames["train"]["label"].map(len).eq(0).sum() == 2


def test_a_multi_hot_vector_of_another_length_is_quarantined_naming_both_lengths(tmp_path: Path):
    records = [{"text": f"t{i}", "labels": vector(ids)} for i, ids in enumerate(id_sets(140))]
    records[9]["labels"] = records[9]["labels"][:27]
    path = write_jsonl(tmp_path / "v.jsonl", records)
    result = validated(tmp_path, train=path, label_column="labels", label_names=EMOTIONS)
    assert result.labels == EMOTIONS
    bad = result.quarantine
    assert bad["source_row"].tolist() == [10] and bad["rule"].tolist() == ["multi_hot_vector_length"]
    assert "27 positions" in bad["detail"].iloc[0] and "have 28" in bad["detail"].iloc[0]
    assert len(result.frames["train"]) == 139


def test_multi_hot_vectors_longer_than_the_label_names_are_an_error_naming_the_row(tmp_path: Path):
    path = write_jsonl(tmp_path / "v.jsonl", [{"text": f"t{i}", "labels": vector(ids)}
                                              for i, ids in enumerate(id_sets(40))])
    config = run_config(TASK, train=path, label_column="labels", label_names=EMOTIONS[:27])
    with pytest.raises(DataLoadError, match=r"v\.jsonl: row 1: .*multi-hot vectors of 28 positions.*"
                                            r"data\.label_names has 27 names"):
        load_data.fn(config)


def test_lists_of_the_ids_zero_and_one_stay_ids(tmp_path: Path):
    """Two labels written as ids (``[0]``, ``[1]``, ``[0, 1]``) are no multi-hot vectors."""
    sets = [[0], [1], [0, 1], [1, 0]]
    path = write_jsonl(tmp_path / "ids.jsonl", [{"text": f"t{i}", "labels": ids} for i, ids in enumerate(sets)])
    frame = KIND.read(path, "jsonl", run_config(TASK, path=path, label_column="labels",
                                                label_names=["joy", "anger"]).data).frame
    assert frame["label"].tolist() == [["joy"], ["anger"], ["anger", "joy"], ["anger", "joy"]]


# --- label objects and nested lists ------------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [
    lambda names: {name: 1 for name in names},
    lambda names: {name: name in names for name in ["joy", "anger", "fear"]},
], ids=["name_to_1", "name_to_true_false"])
def test_an_object_of_label_flags_reads_as_the_labels_it_flags(tmp_path: Path, flags):
    sets = [["joy"], ["anger"], ["fear"], ["anger", "joy"], ["fear", "joy"]] * 8
    path = write_jsonl(tmp_path / "o.jsonl", [{"text": f"t{i}", "labels": flags(names)}
                                              for i, names in enumerate(sets)])
    result = validated(tmp_path, train=path, label_column="labels")
    assert result.labels == ["anger", "fear", "joy"] and result.quarantine.empty
    assert result.frames["train"].sort_values("source_row")["label"].tolist() == [sorted(s) for s in sets]


@pytest.mark.parametrize("value, says", [
    ({"joy": 0.8}, "labels is an object"),
    ({"name": "joy"}, "labels is an object"),
    ([["joy"]], "labels is a list of lists"),
], ids=["scores", "record", "nested"])
def test_labels_no_list_can_be_read_from_say_why_per_record(tmp_path: Path, value: object, says: str):
    """Every record such: the run ended in "the label set [] has 0 label(s)" with no word on the records."""
    path = write_jsonl(tmp_path / "x.jsonl", [{"text": f"t{i}", "labels": value} for i in range(30)])
    with pytest.raises(DataValidationError) as error:
        validated(tmp_path, train=path, label_column="labels")
    message = str(error.value)
    assert "30 of 30 records could not be read" in message and "x.jsonl line 1:" in message
    assert says in message and "write" in message and "\n" not in message


def test_a_few_unreadable_label_records_are_quarantined_with_their_reason(tmp_path: Path):
    records = [{"text": f"t{i}", "labels": [["joy", "anger", "fear"][i % 3]]} for i in range(30)]
    records += [{"text": "scored", "labels": {"joy": 0.8}}, {"text": "nested", "labels": [["joy"]]}]
    path = write_jsonl(tmp_path / "x.jsonl", records)
    result = validated(tmp_path, "data.max_bad_fraction=0.1", train=path, label_column="labels")
    bad = result.quarantine.set_index("source_row")
    assert sorted(bad.index) == [31, 32] and set(bad["rule"]) == {"labels_are_list_of_strings"}
    assert "labels is an object" in bad.loc[31, "detail"]
    assert "one flat list" in bad.loc[32, "detail"]


# --- configured labels and the spelling merge ---------------------------------------------------------------------

def test_two_configured_labels_sharing_a_spelling_key_are_never_merged(tmp_path: Path):
    """``02134`` and ``2134`` (a postcode and a code) are both in data.labels: each stays its own class."""
    frames = {"train": pd.DataFrame({"label": [["02134"], ["2134"], ["2134"], ["Joy"], ["joy"], ["joy"]]})}
    assert spelling_map(frames, "label", ["02134", "2134", "joy"], ["train"]) == {"Joy": "joy"}
    assert spelling_map(frames, "label", None, ["train"]) == {"02134": "2134", "Joy": "joy"}

    path = write_jsonl(tmp_path / "codes.jsonl", [{"text": f"t{i}", "labels": ["02134" if i % 2 else "2134"]}
                                                  for i in range(40)])
    result = validated(tmp_path, train=path, label_column="labels", labels=["02134", "2134"])
    assert result.labels == ["02134", "2134"] and result.quarantine.empty
    assert result.frames["train"].sort_values("source_row")["label"].tolist() == \
        [["2134"], ["02134"]] * 20


# --- a label names file with a header line ------------------------------------------------------------------------

@pytest.mark.parametrize("header", ["label", "Labels", "name", "NAMES", "emotion", "class", "category"])
def test_a_label_names_file_starting_with_a_header_is_refused(tmp_path: Path, header: str):
    names = tmp_path / "labels.txt"
    names.write_text("\n".join([header, "joy", "anger", "fear"]) + "\n", encoding="utf-8")
    path = write_jsonl(tmp_path / "ids.jsonl", [{"text": f"t{i}", "labels": [i % 3]} for i in range(60)])
    config = run_config(TASK, train=path, label_column="labels", label_names=str(names))
    with pytest.raises(DataLoadError) as error:
        load_data.fn(config)
    message = str(error.value)
    assert message.startswith(str(names)) and f"{header!r} looks like a header" in message
    assert "remove the first line" in message and "\n" not in message


def test_a_header_before_multi_hot_positions_is_refused_too(tmp_path: Path):
    names = tmp_path / "labels.txt"
    names.write_text("\n".join(["emotion", *EMOTIONS]) + "\n", encoding="utf-8")
    path = write_jsonl(tmp_path / "v.jsonl", [{"text": f"t{i}", "labels": vector(ids)}
                                              for i, ids in enumerate(id_sets(40))])
    with pytest.raises(DataLoadError, match="'emotion' looks like a header.*remove the first line"):
        load_data.fn(run_config(TASK, train=path, label_column="labels", label_names=str(names)))


def test_a_first_name_that_is_also_a_header_word_is_kept_when_every_id_needs_it(tmp_path: Path):
    """``label`` may be a class: with the ids 0..3 all in the data, the file has no line too many."""
    names = tmp_path / "labels.txt"
    names.write_text("label\njoy\nanger\nfear\n", encoding="utf-8")
    path = write_jsonl(tmp_path / "ids.jsonl", [{"text": f"t{i}", "labels": [i % 4]} for i in range(60)])
    result = validated(tmp_path, train=path, label_column="labels", label_names=str(names))
    assert result.labels == ["label", "joy", "anger", "fear"]
