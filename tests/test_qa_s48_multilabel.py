"""QA s48, multi-label: a label list holding a boolean or null with data.label_names crashed validation; a JSONL null
or absent label list was read as ``[]`` (kept as a row with no label under allow_empty_labels); and a true/false
column left out of data.label_columns went unseen where the same column written 1/0 was warned about."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from test_multilabel_dirty import EMOTIONS, label_sets, validated
from test_multilabel_label_columns import EMOTIONS as COLUMNS, one_hot_rows, write_csv


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def kept(result) -> dict[str, object]:
    """Text → label list of every row the validation kept, whatever split it went to."""
    return {text: labels for frame in result.frames.values() for text, labels in zip(frame["text"], frame["label"])}


@pytest.mark.parametrize("label_values", ["auto", "ids"])
@pytest.mark.parametrize("items", [[True], [None, 1], [2, False]])
def test_boolean_or_null_items_mapped_through_label_names_are_quarantined_not_a_crash(tmp_path, items, label_values):
    """``[true]`` or ``[null, 1]`` with data.label_names: parse_labels hands such a list back unchanged, and mapping
    it to names crashed (AttributeError: 'bool' object has no attribute 'isascii'). It is quarantined by rule, as it
    is without label_names."""
    sets = label_sets(40)
    records = [{"text": f"row {i} " + " ".join(labels), "labels": [EMOTIONS.index(label) for label in labels]}
               for i, labels in enumerate(sets)]
    path = write_jsonl(tmp_path / "ids.jsonl", [*records, {"text": "the bad one", "labels": items}])
    result = validated(tmp_path, "data.max_bad_fraction=0.5", f"data.label_values={label_values}", path=path,
                       label_column="labels", label_names=EMOTIONS)
    [(row, rule, detail)] = zip(result.quarantine["source_row"], result.quarantine["rule"],
                                result.quarantine["detail"])
    assert (row, rule) == (41, "labels_are_list_of_strings")
    assert detail == f"labels {items!r} are not a list of label names or a delimited string"
    read = kept(result)
    assert "the bad one" not in read and len(read) == 40
    assert all(read[record["text"]] == sorted(labels) for record, labels in zip(records, sets))


@pytest.mark.parametrize("allow_empty", [False, True])
def test_null_or_absent_labels_in_jsonl_are_quarantined_as_missing_not_read_as_no_label(tmp_path, allow_empty):
    """``"labels": null`` and a record without the key were read as ``[]``: with allow_empty_labels they were
    trained as negatives of every label. A label not written is missing (``not_nullable``, as a missing text is);
    ``[]`` stays "no label"."""
    records = [{"text": f"row {i}", "labels": labels} for i, labels in enumerate(label_sets(40))]
    records += [{"text": "null labels", "labels": None}, {"text": "no labels key"}, {"text": "empty list", "labels": []}]
    path = write_jsonl(tmp_path / "m.jsonl", records)
    result = validated(tmp_path, "data.max_bad_fraction=0.5", f"data.allow_empty_labels={allow_empty}", path=path,
                       label_column="labels")
    missing = "the label ('labels') is missing (an empty cell, or null)"
    expected = [(41, "not_nullable", "labels", missing), (42, "not_nullable", "labels", missing)]
    if not allow_empty:
        expected.append((43, "at_least_one_label", "labels",
                         "the row has no label; set data.allow_empty_labels: true to keep rows without labels"))
    q = result.quarantine
    assert sorted(zip(q["source_row"], q["rule"], q["column"], q["detail"])) == expected
    read = kept(result)
    assert "null labels" not in read and "no labels key" not in read
    assert ("empty list" in read) is allow_empty and read.get("empty list", []) == []


def test_null_label_lists_in_parquet_are_missing_too(tmp_path):
    """Parquet holds typed lists as JSONL does: a null list is no ``[]``."""
    rows = [{"text": f"row {i}", "labels": labels} for i, labels in enumerate(label_sets(40))]
    path = tmp_path / "m.parquet"
    pd.DataFrame([*rows, {"text": "null labels", "labels": None}, {"text": "empty list", "labels": []}]).to_parquet(path)
    result = validated(tmp_path, "data.max_bad_fraction=0.5", "data.allow_empty_labels=true", path=path,
                       label_column="labels")
    assert list(zip(result.quarantine["source_row"], result.quarantine["rule"])) == [(41, "not_nullable")]
    read = kept(result)
    assert "null labels" not in read and read["empty list"] == []


@pytest.mark.parametrize("flags", [(1, 0), (True, False), ("TRUE", "FALSE"), ("true", "false")],
                         ids=["1-0", "python-bool", "TRUE-FALSE", "true-false"])
def test_a_true_false_column_left_out_of_label_columns_is_treated_as_its_1_0_spelling(tmp_path, caplog, flags):
    """GoEmotions' raw CSVs write ``example_very_unclear`` as True/False (pandas' booleans): such a column outside
    data.label_columns went unseen, so a row flagged only there was kept as one with no label, where the same column
    written 1/0 was warned about and the row quarantined as ``label_in_unlisted_column``."""
    yes, no = flags
    rows = one_hot_rows(40)
    for row in rows:
        row["example_very_unclear"] = no
    rows[3].update(joy=0, anger=0, fear=0, example_very_unclear=yes)  # flagged only there
    rows[4].update(joy=1, anger=0, fear=0, example_very_unclear=yes)  # a listed label too: kept with it
    rows[5].update(joy=0, anger=0, fear=0)  # no flag anywhere: kept as a row with no label
    path = write_csv(tmp_path / "raw.csv", rows)
    with caplog.at_level(logging.WARNING):
        result = validated(tmp_path, "data.max_bad_fraction=0.5", "data.allow_empty_labels=true", path=path,
                           label_columns=COLUMNS)
    q = result.quarantine
    assert list(zip(q["source_row"], q["rule"], q["column"], q["detail"])) == [
        (4, "label_in_unlisted_column", "example_very_unclear",
         "the row's only 1s are in column(s) example_very_unclear, which data.label_columns does not list; add them "
         "to data.label_columns, or drop the row")]
    read = kept(result)
    assert rows[3]["text"] not in read and read[rows[4]["text"]] == ["joy"] and read[rows[5]["text"]] == []
    warned = [r.getMessage() for r in caplog.records if "not in data.label_columns" in r.getMessage()]
    assert len(warned) == 1 and "example_very_unclear (1)" in warned[0] and "(in 2 rows)" in warned[0]
