"""The quarantine names the line a person opens the file at, not only the record number.

A record's number (``source_row``) and its line differ once a file has a header, blank lines, or quoted cells that
hold line breaks; a CoNLL file numbers sentences, not lines. ``quarantine.csv`` said only ``source_row``, and the
error over ``data.max_bad_fraction`` said "e.g. train.csv row 5" of a record on line 9: every rule's rows, whichever
step set them aside (the reader, the kind's label parsing, the contract), now carry ``source_line`` too."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests_support import run_config
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import DataValidationError, validate_data

# line 1 the header; record 1 over lines 2-3; a blank line 5 (no record); record 3 on line 6 has three fields (the
# reader's rule); record 4 on line 7 a label outside the set (the contract's); record 6 on lines 9-10 an empty text
CSV = ('text,label\n"first text,\nwritten over two lines",pos\nsecond text,neg\n\nthird,text,pos\n'
       'fourth text,maybe\nfifth text,pos\n" \n ",neg\nsixth text,neg\n')


def quarantine_of(tmp_path: Path, body: str, *overrides: str, name: str = "train.csv", task: str = "classification",
                  **data) -> tuple[pd.DataFrame, Path]:
    path = tmp_path / name
    path.write_text(body)
    config = run_config(task, "data.max_bad_fraction=0.9", *overrides, path=str(path), **data)
    result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    written = pd.read_csv(result.quarantine_path)
    return written, path


def test_every_quarantined_record_names_its_physical_line(tmp_path: Path):
    written, path = quarantine_of(tmp_path, CSV, labels=["pos", "neg"])
    by_rule = {rule: (int(row), int(line)) for rule, row, line in
               written[["rule", "source_row", "source_line"]].itertuples(index=False)}
    assert list(written.columns[:4]) == ["split", "source_file", "source_row", "source_line"]
    assert by_rule["record_has_wrong_field_count"] == (3, 6)  # the reader's rule (a blank line is no record)
    assert by_rule["label_in_label_set"] == (4, 7)  # the contract's rule
    assert by_rule["text_is_non_empty_string"] == (6, 9)  # a quoted cell of only spaces and a line break


def test_the_error_over_the_limit_names_the_line(tmp_path: Path):
    body = "text,label\n" + "".join(f"text {i},{'pos' if i % 2 else 'neg'}\n\n" for i in range(6)) + "odd one,maybe\n"
    path = tmp_path / "train.csv"
    path.write_text(body)
    config = run_config("classification", "data.max_bad_fraction=0.01", path=str(path), labels=["pos", "neg"])
    with pytest.raises(DataValidationError) as raised:
        validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert f"e.g. {path} line 14:" in str(raised.value)  # record 7, after six blank lines


def test_a_conll_sentence_is_named_by_the_line_of_its_first_token(tmp_path: Path):
    sentence = "John B-PER\nlives O\nin O\nParis B-LOC\n. O\n\n"
    body = ("-DOCSTART- -X- -X- O\n\n" + sentence + sentence.replace("John", "Jim")
            + "Mary B-PER\nwent O\nto O\nRome X-LOC\n\n" + "Bob B-PER\n. O\n\n")
    written, path = quarantine_of(tmp_path, body, name="train.conll", task="token_classification",
                                  labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    # the third sentence (the -DOCSTART- line is none) starts on line 15
    assert written[["source_row", "source_line", "rule"]].values.tolist() == [[3, 15, "tag_in_label_set"]]


def test_a_format_without_lines_leaves_the_column_empty(tmp_path: Path):
    frame = pd.DataFrame({"text": ["a text", "another text", "a third", "the fourth"],
                          "label": ["pos", "neg", "maybe", "pos"]})
    path = tmp_path / "train.parquet"
    frame.to_parquet(path)
    config = run_config("classification", "data.max_bad_fraction=0.9", path=str(path), labels=["pos", "neg"])
    result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    written = pd.read_csv(result.quarantine_path)
    assert written[["source_row", "rule"]].values.tolist() == [[3, "label_in_label_set"]]
    assert written["source_line"].isna().all()
