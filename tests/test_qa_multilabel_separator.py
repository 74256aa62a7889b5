"""A few multi-label cells joined with another separator than data.label_separator, in a file that mostly joins
with the configured one, are quarantined by row: they are no reason to switch separators. The error said to set
data.label_separator: ';' for one ``1;2`` cell among many ``1,3`` cells, and with ';' set it said to set ','."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests_support import run_config
from tuneline.kinds.classification import LabelSetError
from tuneline.kinds.multilabel_classification import _check_separator, _check_separator_known
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import DataValidationError, validate_data

TASK = "multilabel_classification"
NAMES = ["joy", "anger", "fear", "sadness"]


def write_ids(path: Path, cells: list[str]) -> Path:
    path.write_text("".join(f"comment {i} lorem ipsum\t{cell}\n" for i, cell in enumerate(cells)))
    return path


def id_cells(count: int) -> list[str]:
    return [",".join(str(x) for x in sorted({i % 4, (i * 3) % 4})) for i in range(count)]


def test_one_cell_joined_with_semicolons_among_comma_cells_is_quarantined_not_a_separator_error(tmp_path: Path):
    cells = id_cells(60)
    cells[1] = "1;2"
    data = write_ids(tmp_path / "train.tsv", cells)
    names = tmp_path / "labels.txt"
    names.write_text("\n".join(NAMES) + "\n")
    config = run_config(TASK, "data.header=false", path=data, text_column="0", label_column="1",
                        label_names=str(names))
    result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert result.labels == NAMES
    quarantined = result.quarantine[["source_row", "rule"]].values.tolist()
    assert quarantined == [[2, "label_in_label_set"]]
    assert sum(map(len, result.frames.values())) == 59
    assert "['1;2']" in result.quarantine["detail"].iloc[0]


def test_a_file_joined_with_semicolons_only_still_names_the_separator(tmp_path: Path):
    data = write_ids(tmp_path / "train.tsv", [cell.replace(",", ";") for cell in id_cells(60)])
    names = tmp_path / "labels.txt"
    names.write_text("\n".join(NAMES) + "\n")
    config = run_config(TASK, "data.header=false", path=data, text_column="0", label_column="1",
                        label_names=str(names))
    with pytest.raises(DataValidationError, match=r"set data\.label_separator: ';'"):
        validate_data.fn(load_data.fn(config), config, tmp_path / "run")


def test_the_separator_checks_weigh_the_configured_separator_s_cells():
    known = {"0", "1", "2", "3"}
    with pytest.raises(LabelSetError, match="set data.label_separator: ';'"):
        _check_separator_known(["1;2", "0;3"], ",", known)            # no cell joined with ','
    _check_separator_known(["1;2", "0;3"], ",", known, joined_here=30)  # 2 stray cells among 30 joined with ','
    seen = ["joy", "anger", "fear", "sadness"] * 10 + ["joy;fear", "anger;sadness"]
    with pytest.raises(LabelSetError, match="set data.label_separator: ';'"):
        _check_separator(seen, ",")
    _check_separator(seen, ",", joined_here=20)


def named_cells(count: int) -> list[str]:
    return [",".join(sorted({NAMES[i % 4], NAMES[(i * 3 + 1) % 4]})) for i in range(count)]


def test_a_few_cells_joined_otherwise_are_named_by_line_and_the_advice_keeps_the_separator(tmp_path: Path):
    """Named labels inferred from train (QA): 'anger|fear' in 3 rows of a comma file was a rare label; the error
    said to set data.label_separator to the other one (which then broke every comma row) and named no row."""
    cells = named_cells(60)
    for row in (4, 9, 30):
        cells[row] = cells[row].replace(",", "|")
    data = write_ids(tmp_path / "train.tsv", cells)
    config = run_config(TASK, "data.header=false", path=data, text_column="0", label_column="1")
    with pytest.raises(DataValidationError) as raised:
        validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    said = str(raised.value)
    assert "joined by '|', where the other rows join theirs by data.label_separator (','): join those rows' " \
           "labels by ','" in said
    assert "set data.label_separator" not in said
    lines = {f"line {row + 1}" for row in (4, 9, 30)}  # no header: row N of the file is line N + 1
    named = said.split("(first rows: ", 1)[1]
    assert {line for line in lines if line in named} == lines and str(data) in named


def test_a_rare_label_of_a_label_set_is_named_with_its_file_and_line(tmp_path: Path):
    cells = named_cells(60)
    cells[7] += ",bananas"
    data = write_ids(tmp_path / "train.tsv", cells)
    config = run_config(TASK, "data.header=false", path=data, text_column="0", label_column="1")
    with pytest.raises(DataValidationError, match=rf"\(first rows: 'bananas' at {data} line 8\)"):
        validate_data.fn(load_data.fn(config), config, tmp_path / "run")
