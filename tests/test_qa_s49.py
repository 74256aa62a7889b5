"""Dirty-data fixes of 2026-12-06 (second session): each test is a file a real tool writes, read through the real
readers or ``tuneline validate``."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
import yaml

from tuneline import readers
from tuneline.cli import main
from tuneline.readers import read_table


def r_write_csv(path, rows, sep=","):
    """What R's ``write.csv(df, row.names = FALSE)`` writes: every name and string quoted, numbers bare, a missing
    value a bare ``NA``; ``write.csv2`` the same with ``;``."""
    def cell(value):
        if value is None:
            return "NA"
        return str(value) if isinstance(value, int) else '"' + str(value).replace('"', '""') + '"'
    lines = [sep.join(f'"{name}"' for name in rows[0])]
    lines += [sep.join(cell(value) for value in row) for row in rows[1:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("sep", [",", ";"])
@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
def test_a_bare_na_in_r_write_csv_is_missing_and_a_quoted_na_is_text(tmp_path, monkeypatch, sep, compact,
                                                                       block_bytes):
    """In R's ``write.csv`` a missing value is a bare ``NA`` and the text "NA" is ``"NA"``. The csv module drops the
    quotes that tell them apart: the bare NA text was kept as the text "NA" (trained on), and a bare NA label stopped
    the run as a missing-value spelling the user had to blank out by hand."""
    monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", block_bytes)
    rows = [("text", "label", "score")] + [(f"review {i}", "pos" if i % 2 else "neg", i) for i in range(30)]
    rows[3] = (None, "neg", None)        # bare NA text and score: missing
    rows[5] = ("review 4", None, 4)      # bare NA label: missing
    rows[7] = ("NA", "neg", 6)           # the text "NA", quoted: kept
    rows[9] = ("multi\nline, cell", "neg", None)  # a quoted line break before a bare NA in the last column
    rows[11] = ("review 10", "NA", 10)   # a quoted label "NA": as written (the label rules judge it)
    path = tmp_path / "r.csv"
    r_write_csv(path, rows, sep)
    frame = read_table(path, "csv", compact=compact).frame

    def values(column):
        return [None if pd.isna(v) else v for v in frame[column]]
    assert values("text")[2] is None and values("text")[6] == "NA"
    assert values("label")[4] is None and values("label")[10] == "NA"
    assert values("text")[8] == "multi\nline, cell" and values("score")[8] is None
    assert values("score")[:4] == ["0", "1", None, "3"]
    assert sum(v is None for v in values("text")) == 1 and sum(v is None for v in values("label")) == 1


def test_a_bare_na_after_an_excel_sep_line_is_missing_too(tmp_path):
    path = tmp_path / "sep.csv"
    rows = [("text", "label")] + [(f"review {i}", "pos" if i % 2 else "neg") for i in range(12)]
    rows[2] = (None, "pos")
    r_write_csv(path, rows, ";")
    path.write_text("sep=;\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    frame = read_table(path, "csv").frame
    assert frame["text"].tolist()[:3] == ["review 0", None, "review 2"]


def test_na_stays_text_where_the_header_is_not_quoted(tmp_path):
    """Only a file that quotes its header (R, pandas QUOTE_ALL / QUOTE_NONNUMERIC) tells a missing NA from the text:
    elsewhere ``NA`` is left as written, for the label rules to judge."""
    path = tmp_path / "plain.csv"
    path.write_text('text,label\nNA,pos\n"quoted",NA\n', encoding="utf-8")
    frame = read_table(path, "csv").frame
    assert frame["text"].tolist() == ["NA", "quoted"] and frame["label"].tolist() == ["pos", "NA"]


def test_pandas_quote_all_writes_a_text_na_quoted_and_keeps_it(tmp_path):
    path = tmp_path / "pandas.csv"
    pd.DataFrame({"text": ["NA", "fine film", None], "label": ["neg", "pos", "pos"]}).to_csv(
        path, index=False, quoting=csv.QUOTE_ALL)
    frame = read_table(path, "csv").frame
    assert frame["text"].tolist() == ["NA", "fine film", None]


def test_validate_quarantines_the_bare_na_rows_of_an_r_file_as_missing(tmp_path, capsys):
    rows = [("text", "label")] + [(f"{'good' if i % 2 else 'bad'} film {i}", "pos" if i % 2 else "neg")
                                  for i in range(40)]
    rows[4] = (None, "neg")
    rows[6] = ("bad film 5", None)
    rows[8] = ("NA", "neg")
    path = tmp_path / "r.csv"
    r_write_csv(path, rows)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"path": str(path), "label_column": "label", "labels": None},
                                      "work_dir": str(tmp_path / "out")}))
    assert main(["validate", "-c", str(config), "--out", str(tmp_path / "q")]) == 0
    out = capsys.readouterr().out
    assert f"{path}: read 40, kept 38, quarantined 2 (not_nullable 2)" in out
    quarantine = pd.read_csv(tmp_path / "q" / "quarantine.csv")
    assert sorted(zip(quarantine["source_line"], quarantine["column"])) == [(5, "text"), (7, "label")]
