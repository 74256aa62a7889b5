"""Excel workbooks (.xlsx) are read as the table on their first sheet, for every kind of table data.

Labeled text often lives in a spreadsheet, and tuneline refused a workbook with "export it as CSV UTF-8", the step
where encodings, delimiters and quoting go wrong. The cells come typed: a label 1 is stored as the float 1.0 and must
read as ``1``, a date as its ISO text, a boolean as ``true``; gaps between rows are no records; the quarantine names
the sheet's row numbers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from tests_support import run_config
from tuneline.errors import UserError
from tuneline.readers import DataLoadError, read_table
from tuneline.tasks.load import load_data
from tuneline.tasks.predict_batch import read_prediction_inputs
from tuneline.tasks.validate import validate_data
from tuneline.workbooks import cell_text


def workbook(path: Path, *sheets: list[list]) -> Path:
    book = openpyxl.Workbook()
    for number, rows in enumerate(sheets):
        sheet = book.active if number == 0 else book.create_sheet(f"sheet{number + 1}")
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def test_a_classification_sheet_trains_with_typed_cells_read_as_text_and_rows_named(tmp_path: Path):
    rows = [["Text", "Label", None, "notes"]]  # a header in another case, an unnamed column, a column not used
    for i in range(12):
        rows.append([f"ticket number {i} about {'billing' if i % 2 else 'delivery'}", float(i % 2), None, "ok"])
    rows[4] = [None, None, None, None]  # an empty row: no record
    rows.append(["  ", 1.0, None, None])  # no text: quarantined by the contract, on its row
    rows.append(["a ticket with a label out of the set", 7, None, None])
    path = workbook(tmp_path / "tickets.xlsx", rows, [["other sheet"], ["ignored"]])
    config = run_config("classification", "data.max_bad_fraction=0.5", path=str(path), labels=["0", "1"])
    loaded = load_data.fn(config)
    frame = loaded.frames["all"]
    assert len(frame) == 13 and loaded.sources[0].records == 13
    assert frame["label"].iloc[0] == "0" and set(frame["label"]) == {"0", "1", "7"}  # 1.0 read as "1", not "1.0"
    assert frame["text"].iloc[0] == "ticket number 0 about delivery"
    result = validate_data.fn(loaded, config, tmp_path / "run")
    quarantine = pd.read_csv(result.quarantine_path)
    assert sorted(zip(quarantine["rule"], quarantine["source_line"])) == [
        ("label_in_label_set", 15), ("text_is_non_empty_string", 14)]  # the sheet's row numbers
    assert set(quarantine["source_file"]) == {str(path)}


def test_pair_and_multilabel_sheets_and_the_header_options(tmp_path: Path):
    pairs = workbook(tmp_path / "pairs.xlsx", [["Quarterly report", None], ["text", "text_pair", "label"],
                                               *[[f"first {i}", f"second {i}", i % 2] for i in range(10)]])
    config = run_config("pair_classification", "data.skip_lines=1", path=str(pairs))
    frame = load_data.fn(config).frames["all"]
    assert frame[["text", "text_pair", "label"]].iloc[3].tolist() == ["first 3", "second 3", "1"]

    multi = workbook(tmp_path / "multi.xlsx", [["text", "label"],
                                               *[[f"text {i}", "joy;anger" if i % 2 else "joy"] for i in range(10)]])
    config = run_config("multilabel_classification", "data.label_separator=;", path=str(multi))
    frame = load_data.fn(config).frames["all"]
    assert [sorted(labels) for labels in frame["label"].iloc[:2]] == [["joy"], ["anger", "joy"]]

    titled = workbook(tmp_path / "titled.xlsx", [["Quarterly report"], [None], ["text", "text_pair", "label"],
                                                 *[[f"first {i}", f"second {i}", i % 2] for i in range(10)]])
    with pytest.raises(DataLoadError, match=r"has no column 'text' in its header \(line 1\), but line 3 names the "
                                            r"configured columns: set data.skip_lines: 2"):
        load_data.fn(run_config("pair_classification", path=str(titled)))

    headless = workbook(tmp_path / "headless.xlsx", [["good film", "pos"], ["bad film", "neg"]])
    result = read_table(headless, "xlsx", header=False)
    assert result.frame[["0", "1", "source_line"]].values.tolist() == [["good film", "pos", 1], ["bad film", "neg", 2]]


def test_batch_prediction_reads_a_sheet_and_a_broken_workbook_says_so(tmp_path: Path):
    path = workbook(tmp_path / "to_score.xlsx", [["text"], ["great film"], ["dull"], [20261204], [None]])
    inputs = read_prediction_inputs.fn(path, "classification")
    assert inputs.frame["text"].tolist() == ["great film", "dull", "20261204"] and inputs.lines == [2, 3, 4]

    gap = workbook(tmp_path / "gap.xlsx", [["Report"], ["text"], ["great film"], [None], ["dull"]])
    with pytest.raises(UserError, match=r"gap\.xlsx: row 4 of its first sheet is empty between records"):
        read_prediction_inputs.fn(gap, "classification", skip_lines=1)  # a title row above the header, skipped
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(path.read_bytes()[:300])  # cut off: a zip without its directory
    with pytest.raises(DataLoadError, match=r"^cannot read .*broken\.xlsx as an Excel workbook \(.*\); open and "
                                            r"save it again"):
        read_table(broken, "xlsx")
    empty = workbook(tmp_path / "empty.xlsx", [])
    with pytest.raises(DataLoadError, match=r"empty\.xlsx has no values on its first sheet"):
        read_table(empty, "xlsx")
    header_only = workbook(tmp_path / "header.xlsx", [["text", "label"]])
    with pytest.raises(DataLoadError, match=r"has a header \(row 1 of sheet 'Sheet'\) but no data records"):
        read_table(header_only, "xlsx")


@pytest.mark.parametrize("value, text", [
    (1.0, "1"), (-3.0, "-3"), (0.25, "0.25"), (7, "7"), (True, "true"), (False, "false"), (None, None),
    ("  padded ", "  padded "), (dt.datetime(2026, 12, 4), "2026-12-04"),
    (dt.datetime(2026, 12, 4, 9, 30), "2026-12-04 09:30:00"), (dt.date(2026, 1, 2), "2026-01-02")])
def test_cells_read_as_the_text_a_csv_export_holds(value, text):
    assert cell_text(value) == text


def test_records_on_another_sheet_are_named_and_read_with_data_sheet(tmp_path: Path):
    """A workbook whose first sheet is notes said "has a header but no data records" without naming the sheet that
    held them, and no setting could pick it (exploratory QA)."""
    rows = [["text", "label"]] + [[f"review {i}", ["pos", "neg"][i % 2]] for i in range(40)]
    path = workbook(tmp_path / "labels.xlsx", [["notes"]], rows)
    with pytest.raises(DataLoadError, match=r"has a header \(row 1 of sheet 'Sheet'\) but no data records; the "
                                            r"workbook's sheet 'sheet2' holds rows: set data.sheet to the one with "
                                            r"the records"):
        load_data.fn(run_config("classification", path=path))
    loaded = load_data.fn(run_config("classification", path=path, sheet="sheet2"))
    assert len(loaded.frames["all"]) == 40 and loaded.frames["all"]["text"].iloc[0] == "review 0"
    with pytest.raises(DataLoadError, match=r"has no sheet 'Data' \(data.sheet\); its sheets: \['Sheet', 'sheet2'\]"):
        load_data.fn(run_config("classification", path=path, sheet="Data"))
    assert run_config("classification", path=path, sheet=2024).data.sheet == "2024"  # a name YAML read as a number


def test_formula_cells_without_a_saved_value_are_named(tmp_path: Path, caplog):
    """openpyxl (and other libraries) write formulas without computing them: the cells read as empty, and the
    quarantine could only say "the text is missing (an empty cell, or null)". A warning names the cells and the fix."""
    rows = [["text", "label"]] + [[f"ticket number {i} about billing", "a" if i % 2 else "b"] for i in range(10)]
    rows += [["=A2&\" again\"", "a"], ["=UPPER(A3)", "b"]]
    path = workbook(tmp_path / "formulas.xlsx", rows)
    config = run_config("classification", "data.max_bad_fraction=0.5", path=str(path))
    with caplog.at_level("WARNING"):
        loaded = load_data.fn(config)
    assert loaded.frames["all"]["text"].isna().sum() == 2
    said = [r.getMessage() for r in caplog.records if "formula cell" in r.getMessage()]
    assert said == [f"{path}: 2 formula cell(s) of sheet 'Sheet' have no saved value, so they read as empty (A12, "
                    "A13): the workbook was written by a program that does not compute formulas; open and save it in "
                    "Excel or LibreOffice, or write the values instead of formulas"]
    caplog.clear()
    plain = workbook(tmp_path / "plain.xlsx", rows[:11] + [[None, "a"]])  # an empty cell that is no formula
    with caplog.at_level("WARNING"):
        load_data.fn(run_config("classification", "data.max_bad_fraction=0.5", path=str(plain)))
    assert not [r for r in caplog.records if "formula cell" in r.getMessage()]
