"""A CSV record with more fields than the header said only "3 fields, header has 2". The likely cause is a value
holding the delimiter without quotes: a multi-label list (``t c 1,anger,sadness`` under ``text,labels``), or a text
(``fine, thanks,pos``). The detail, and the run's error that quotes it, now say so with the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests_support import run_config
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import DataValidationError, validate_data

LABEL_CAUSE = ("a label list joined with ',' must be in double quotes (\"anger,sadness\"), or joined with another "
               "separator set as data.label_separator (e.g. '|'); a text holding ',' must be quoted too")
TEXT_CAUSE = "a text holding ',' must be in double quotes (\"fine, thanks\"), as spreadsheet programs and pandas' " \
             "to_csv write it"
EMOTIONS = ["joy", "anger,sadness", "fear", "anger,sadness"]


def write(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text(header + "\n" + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def validated(config, tmp_path: Path):
    return validate_data.fn(load_data.fn(config), config, tmp_path / "run")


def test_unquoted_label_lists_say_to_quote_them_or_change_the_label_separator(tmp_path: Path):
    train = write(tmp_path / "train.csv", "text,labels", [f"t c {i},{EMOTIONS[i % 4]}" for i in range(40)])
    quoted = [f'v c {i},"{EMOTIONS[i % 4]}"' for i in range(8)]
    files = {"train": train, "validation": write(tmp_path / "val.csv", "text,labels", quoted),
             "test": write(tmp_path / "test.csv", "text,labels", [line.replace("v", "x", 1) for line in quoted])}
    config = run_config("multilabel_classification", **files, text_column="text", label_column="labels")
    with pytest.raises(DataValidationError) as raised:
        validated(config, tmp_path)
    assert f"e.g. {train} line 3: 3 fields, header has 2; {LABEL_CAUSE}." in str(raised.value)


def test_a_few_unquoted_label_lists_are_quarantined_with_the_cause(tmp_path: Path):
    lines = [f't c {i},"{EMOTIONS[i % 4]}"' for i in range(60)]
    lines[6] = "t c 6,anger,fear"
    config = run_config("multilabel_classification", path=write(tmp_path / "d.csv", "text,labels", lines),
                        label_column="labels")
    result = validated(config, tmp_path)
    rows = result.quarantine[result.quarantine["rule"] == "record_has_wrong_field_count"]
    assert rows[["source_row", "source_line", "detail"]].values.tolist() == [
        [7, 8, f"3 fields, header has 2; {LABEL_CAUSE}"]]


def test_another_label_separator_points_at_the_text(tmp_path: Path):
    lines = [f't c {i},{EMOTIONS[i % 4].replace(",", "|")}' for i in range(60)]
    lines[6] = "t c 6, with a comma,joy"
    config = run_config("multilabel_classification", "data.label_separator=|",
                        path=write(tmp_path / "d.csv", "text,labels", lines), label_column="labels")
    rows = validated(config, tmp_path).quarantine
    assert rows[["source_row", "source_line", "rule", "detail"]].values.tolist() == [
        [7, 8, "record_has_wrong_field_count", f"3 fields, header has 2; {TEXT_CAUSE}"]]


def test_a_classification_text_with_an_unquoted_comma_says_to_quote_it(tmp_path: Path):
    lines = [f"text number {i},{('pos', 'neg')[i % 2]}" for i in range(60)]
    lines[2] = "fine, thanks,pos"
    lines[9] = 'a "quoted, one",neg'  # quotes that do not open the field are no quoting
    result = validated(run_config("classification", path=write(tmp_path / "d.csv", "text,label", lines)), tmp_path)
    details = result.quarantine[["source_row", "source_line", "detail"]].values.tolist()
    assert details == [[3, 4, f"3 fields, header has 2; {TEXT_CAUSE}"],
                       [10, 11, f"3 fields, header has 2; {TEXT_CAUSE}"]]


def test_a_cause_the_reader_found_is_kept_alone_and_tsv_gets_no_quoting_advice(tmp_path: Path):
    lines = [f"text number {i},{('pos', 'neg')[i % 2]}" for i in range(60)]
    lines[2] = "text number 2,pos,"  # a stray comma at the end: the reader's own, surer cause
    result = validated(run_config("classification", path=write(tmp_path / "d.csv", "text,label", lines)), tmp_path)
    assert result.quarantine["detail"].tolist() == ["3 fields, header has 2; the line ends with a stray ',': remove it"]
    tsv = [f"text number {i}\t{('pos', 'neg')[i % 2]}" for i in range(60)]
    tsv[2] = "text\tnumber 2\tpos"
    result = validated(run_config("classification", path=write(tmp_path / "d.tsv", "text\tlabel", tsv)), tmp_path)
    assert result.quarantine["detail"].tolist() == ["3 fields, header has 2"]


def test_one_hot_files_name_the_text_cause(tmp_path: Path):
    lines = [f"text {i},{i % 2},{1 - i % 2}" for i in range(60)]
    lines[3] = "text 3, with a comma,1,0"
    config = run_config("multilabel_classification", path=write(tmp_path / "d.csv", "text,joy,anger", lines),
                        label_columns=["joy", "anger"])
    rows = validated(config, tmp_path).quarantine
    assert rows[["source_row", "source_line", "detail"]].values.tolist() == [
        [4, 5, f"4 fields, header has 3; {TEXT_CAUSE}"]]
