"""Load: CSV/TSV/JSONL/Parquet readers, provenance, malformed records, hashes and clear errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import shared_data
from tests_support import run_config
from tuneline.tasks.load import DataLoadError, detect_format, load_data


def load(path: Path, **data) -> object:
    return load_data.fn(run_config("classification", path=path, **data))


def test_csv_with_quoted_commas_and_quotes(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('text,label\n'
                    '"Hello, world",pos\n'
                    '"She said ""hi"", then left",neg\n'
                    'plain text,pos\n', encoding="utf-8")
    loaded = load(path)
    frame = loaded.frames["all"]
    assert frame["text"].tolist() == ["Hello, world", 'She said "hi", then left', "plain text"]
    assert frame["label"].tolist() == ["pos", "neg", "pos"]
    assert frame["source_row"].tolist() == [1, 2, 3]
    assert set(frame["source_file"]) == {str(path)}
    assert loaded.malformed.empty


def test_tsv_keeps_quotes_verbatim(tmp_path):
    sentences = ['" the time machine " is a movie that has no interest in itself .',
                 "it 's a \"charming\" and often affecting journey .",
                 'an "unfinished quote keeps going',
                 "'single quoted' text and `` glue quotes ''"]
    path = tmp_path / "dev.tsv"
    path.write_text("sentence\tlabel\n" + "".join(f"{s}\t{i % 2}\n" for i, s in enumerate(sentences)),
                    encoding="utf-8")
    loaded = load(path, text_column="sentence")
    frame = loaded.frames["all"]
    assert frame["text"].tolist() == sentences
    assert frame["label"].tolist() == ["0", "1", "0", "1"]
    assert loaded.malformed.empty


def test_tsv_extra_tab_is_a_malformed_record(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("sentence\tlabel\n"
                    "good film\t1\n"
                    "bad\tfilm\t0\n"
                    "fun movie\t1\n", encoding="utf-8")
    loaded = load(path, text_column="sentence")
    assert loaded.frames["all"]["text"].tolist() == ["good film", "fun movie"]
    assert loaded.frames["all"]["source_row"].tolist() == [1, 3]
    malformed = loaded.malformed
    assert len(malformed) == 1
    row = malformed.iloc[0]
    assert row["rule"] == "record_has_wrong_field_count"
    assert row["source_row"] == 2
    assert row["split"] == "all"
    assert row["source_file"] == str(path)
    assert row["value"] == "bad\tfilm\t0"
    assert loaded.total_records == 3
    assert loaded.sources[0].records == 3


def test_jsonl_int_labels_become_names_and_bad_lines_are_quarantined(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"text": "good film", "label": 1}) + "\n"
                    + "{not json\n"
                    + "\n"
                    + json.dumps({"text": "bad film", "label": 0}) + "\n"
                    + json.dumps(["a", "list"]) + "\n"
                    + json.dumps({"text": 42, "label": 1}) + "\n", encoding="utf-8")
    loaded = load(path)
    frame = loaded.frames["all"]
    assert frame["text"].tolist() == ["good film", "bad film", 42]  # the schema judges the int, not the loader
    assert frame["label"].tolist() == ["1", "0", "1"]
    assert frame["source_row"].tolist() == [1, 4, 6]  # line numbers
    rules = dict(zip(loaded.malformed["source_row"], loaded.malformed["rule"]))
    assert rules == {2: "record_is_not_json", 5: "record_is_not_an_object"}


def test_jsonl_float_labels_from_missing_values_stay_names(tmp_path):
    # One missing label makes pandas turn the column into floats; 1.0 must still be the class "1".
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [{"text": "a", "label": 1}, {"text": "b", "label": None},
                                                        {"text": "c", "label": 0}]) + "\n")
    frame = load(path).frames["all"]
    labels = frame["label"].tolist()
    assert labels[0] == "1" and labels[2] == "0"
    assert pd.isna(labels[1])  # missing stays missing (the schema rejects it), never the string "nan"


def test_parquet(tmp_path):
    path = tmp_path / "data.parquet"
    pd.DataFrame({"review": ["good film", "bad film"], "sentiment": [1, 0], "extra": [0.1, 0.2]}).to_parquet(path)
    frame = load(path, text_column="review", label_column="sentiment").frames["all"]
    assert frame["text"].tolist() == ["good film", "bad film"]
    assert frame["label"].tolist() == ["1", "0"]
    assert frame["source_row"].tolist() == [1, 2]
    assert list(frame.columns) == ["text", "label", "source_file", "source_row"]


def test_configurable_column_names_csv(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text("id,body,intent\n1,where is my parcel,shipping\n2,reset my password,account\n")
    frame = load(path, text_column="body", label_column="intent").frames["all"]
    assert frame["text"].tolist() == ["where is my parcel", "reset my password"]
    assert frame["label"].tolist() == ["shipping", "account"]


def test_missing_column_names_it_and_the_available_ones(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text("id,body,intent\n1,where is my parcel,shipping\n")
    with pytest.raises(DataLoadError) as info:
        load(path, text_column="body", label_column="label")
    message = str(info.value)
    assert "'label'" in message
    assert "['id', 'body', 'intent']" in message
    assert "data.label_column" in message


def test_unknown_extension_asks_for_data_format(tmp_path):
    path = tmp_path / "data.xls"
    path.write_text("whatever")
    with pytest.raises(DataLoadError, match="spreadsheet workbook.*save it as .xlsx.*CSV UTF-8"):  # legacy Excel
        load(path)
    broken = tmp_path / "data.xlsx"  # read as a workbook, which it is not
    broken.write_text("whatever")
    with pytest.raises(DataLoadError, match=r"cannot read .*data\.xlsx as an Excel workbook"):
        load(broken)
    unknown = tmp_path / "data.dat"
    unknown.write_text("whatever")
    with pytest.raises(DataLoadError, match="set data.format"):
        load(unknown)
    # With data.format set, the same file name is read as configured.
    path.write_text("text,label\nhello,a\n")
    assert detect_format(path, "csv") == "csv"
    assert load(path, format="csv").frames["all"]["text"].tolist() == ["hello"]


def test_missing_file_is_a_load_error(tmp_path):
    with pytest.raises(DataLoadError, match="does not exist"):
        load(tmp_path / "nope.csv")


def test_sha256_of_every_input_is_recorded(tmp_path):
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    train.write_text("text,label\ngood,pos\nbad,neg\n")
    test.write_text("text,label\nfine,pos\n")
    loaded = load_data.fn(run_config("classification", train=train, test=test))
    hashes = {s.role: s.sha256 for s in loaded.sources}
    assert hashes == {"train": hashlib.sha256(train.read_bytes()).hexdigest(),
                      "test": hashlib.sha256(test.read_bytes()).hexdigest()}
    assert {s.role: s.records for s in loaded.sources} == {"train": 2, "test": 1}
    assert {s.role: s.path for s in loaded.sources} == {"train": train, "test": test}


@pytest.mark.shared_data
def test_real_sst2_dev_loads_verbatim():
    path = shared_data("sst2") / "dev.tsv"
    loaded = load(path, text_column="sentence")
    frame = loaded.frames["all"]
    assert len(frame) == 872
    assert loaded.malformed.empty
    assert set(frame["label"]) == {"0", "1"}
    raw = [line.split("\t")[0] for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    assert frame["text"].tolist() == raw  # every sentence exactly as in the file
    quoted = [s for s in raw if '"' in s or "``" in s or "''" in s]
    assert quoted, "SST-2 dev has GLUE-quoted sentences"
    assert set(quoted) <= set(frame["text"])
    with_double_quote = [s for s in raw if '"' in s]
    assert set(with_double_quote) <= set(frame["text"])
