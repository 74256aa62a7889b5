"""What the contracts let through must be safe for every later step: missing lists and texts in each kind.

A value the contract accepts reaches the label counts, the encoders and the reports; a column the contract marks
nullable lets pandera skip missing values in its checks. These tests feed each kind the missing values a JSONL
record can hold (``null``, or no such field) and check they are quarantined under a named rule, the rest kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests_support import run_config
from tuneline.kinds import KINDS
from tuneline.schemas.multilabel_classification import multilabel_schema
from tuneline.tasks.load import QUARANTINE_COLUMNS, LoadedData
from tuneline.tasks.validate import apply_schema, validate_data


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def validated(kind: str, path: Path, folder: Path, **data):
    config = run_config(kind, path=path, max_bad_fraction=0.2, **data)
    read = KINDS[kind].read(path, "jsonl", config.data)
    loaded = LoadedData(frames={"all": read.frame}, sources=[],
                        malformed=pd.DataFrame(read.malformed, columns=QUARANTINE_COLUMNS))
    return validate_data.fn(loaded, config, folder)


def test_multilabel_null_label_list_is_rejected_by_the_contract():
    frame = pd.DataFrame({"text": pd.Series(["a", "b", "c"], dtype=object),
                          "label": pd.Series([["x"], None, float("nan")], dtype=object),
                          "source_file": "f.jsonl", "source_row": [1, 2, 3]})
    clean, quarantine = apply_schema(frame, multilabel_schema(["x", "y"]), "train")
    assert clean["source_row"].tolist() == [1]
    assert sorted(zip(quarantine["source_row"], quarantine["rule"])) == [(2, "not_nullable"), (3, "not_nullable")]
    assert KINDS["multilabel_classification"].label_distribution(frame) == {"x": 1}


def test_multilabel_jsonl_null_or_absent_labels_are_quarantined_as_missing(tmp_path):
    """A null or absent label list is a missing value, not the empty list (no label): quarantined as such also where
    ``data.allow_empty_labels`` keeps rows without a label (tests/test_qa_s48_multilabel.py)."""
    records = [{"text": f"text {i}", "label": ["x", "y"][: 1 + i % 2]} for i in range(40)]
    records += [{"text": "null labels", "label": None}, {"text": "no label field"}]
    result = validated("multilabel_classification", write_jsonl(tmp_path / "m.jsonl", records), tmp_path)
    q = result.quarantine
    assert sorted(zip(q["source_row"], q["rule"])) == [(41, "not_nullable"), (42, "not_nullable")]
    assert len(result.frames["all"]) == 40
    assert KINDS["multilabel_classification"].label_distribution(result.frames["all"]) == {"x": 40, "y": 20}


def test_classification_jsonl_null_or_absent_text_and_label_are_quarantined(tmp_path):
    records = [{"text": f"text {i}", "label": ["neg", "pos"][i % 2]} for i in range(40)]
    records += [{"text": None, "label": "pos"}, {"label": "neg"}, {"text": "no label"}, {"text": "null", "label": None}]
    result = validated("classification", write_jsonl(tmp_path / "c.jsonl", records), tmp_path)
    q = result.quarantine
    assert sorted(zip(q["source_row"], q["rule"], q["column"], q["detail"])) == [
        (41, "not_nullable", "text", "the text is missing (an empty cell, or null)"),
        (42, "not_nullable", "text", "the text is missing (an empty cell, or null)"),
        (43, "not_nullable", "label", "the label is missing (an empty cell, or null)"),
        (44, "not_nullable", "label", "the label is missing (an empty cell, or null)")]
    assert KINDS["classification"].label_distribution(result.frames["all"]) == {"neg": 20, "pos": 20}


def test_the_zero_shot_baseline_warns_when_label_names_hold_no_word(tiny_bert, caplog):
    """Labels 0..27 were embedded as digits: the zero-shot "before" number was chance (0.028 macro-F1 against 0.183
    with the emotions' names), without a hint that data.label_descriptions exists."""
    import logging

    from tuneline.kinds import kind_of
    from tuneline.tasks.split import DataSplits

    test = pd.DataFrame({"text": ["great film", "awful film", "fine", "bad"], "label": ["1", "0", "1", "0"]})
    splits = DataSplits(train=test, validation=test, test=test, labels=["0", "1"])
    config = run_config("classification", f"model.base={tiny_bert}", "tokenize.max_length=16", path="/x.csv")
    with caplog.at_level(logging.WARNING, logger="tuneline"):
        baseline = kind_of(config).zero_shot_baseline(splits, config)
    assert len(baseline.predictions) == 4
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "2 label name(s) hold no word ('0', '1'): give them data.label_descriptions" in warned[0]
    caplog.clear()
    described = run_config("classification", f"model.base={tiny_bert}", "tokenize.max_length=16", path="/x.csv",
                           label_descriptions={"0": "a negative review", "1": "a positive review"})
    with caplog.at_level(logging.WARNING, logger="tuneline"):
        kind_of(described).zero_shot_baseline(splits, described)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_columns_named_by_position_in_a_file_read_with_its_header_advise_header_false(tmp_path):
    """A file without a header row (GoEmotions) read with the header on, the config naming its columns "0" and
    "1": the error advised setting data.text_column "to the right name", a Reddit comment among the names offered
    (dirty-data QA, D3)."""
    import pytest

    from tuneline.readers import DataLoadError

    path = tmp_path / "train.tsv"
    path.write_text("My favourite food is anything I didn't have to cook myself.\t27\teebbqej\nGreat.\t1\tx2\n",
                    encoding="utf-8")
    config = run_config("classification", path=path, text_column="0", label_column="1")
    with pytest.raises(DataLoadError) as info:
        KINDS["classification"].read(path, "tsv", config.data)
    assert str(info.value).endswith("data.text_column names a column by its position, as in a file without a header "
                                    "row: set data.header: false"), info.value
    headless = run_config("classification", path=path, text_column="0", label_column="1", header=False)
    assert KINDS["classification"].read(path, "tsv", headless.data).frame["text"].tolist()[1] == "Great."


def test_texts_that_are_missing_value_markers_are_counted_in_a_warning():
    """`nan`, `None`, `NULL`, `#N/A` as texts (an export's empty cells) were trained on as words without a word,
    while the same values are refused as labels (dirty-data QA, D10)."""
    import logging

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("tuneline").addHandler(handler)
    try:
        frame = pd.DataFrame({"text": ["good film", "nan", " NULL ", "#N/A", "nan", "None of it worked", None],
                              "text_pair": ["x", "N/A", "y", "z", "w", "v", "u"], "label": ["a"] * 7})
        config = run_config("pair_classification", path="p.csv")
        prepared = KINDS["pair_classification"].prepare({"all": frame}, config.data, source=" in p.csv")
    finally:
        logging.getLogger("tuneline").removeHandler(handler)
    assert prepared["all"]["text"].tolist()[1] == "nan"  # kept: a short answer "None" can be a real text
    assert records == ["5 text(s) in p.csv are only a missing-value marker ('nan' 2, 'NULL' 1, '#N/A' 1, 'N/A' 1), "
                       "what an export writes for an empty cell: they are kept as texts; blank those cells to have "
                       "them quarantined as texts missing"], records
