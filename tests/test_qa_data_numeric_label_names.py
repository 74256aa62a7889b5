"""Label names that are themselves numbers (a ``labels.txt`` of ``1 2 3 4``) leave a multi-label cell's numbers open:
``1`` is the name ``1``, or the id 1 (the second line, the name ``2``). Each label was read on its own: ``0`` (no name)
became the name ``1`` while ``1`` stayed ``1``, two readings in one file, and the run then stopped on "configured
label '4' never occurs" instead of saying what was ambiguous. Now such a file is refused in one line that says to
set data.label_values (ids or names), and either setting reads every row one way.

Classification and pair classification map no ids: data.label_names is no key of theirs, and labels are read as
written, so ``0`` beside data.labels [1, 2, 3, 4] is a quarantined row, never the label ``1``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests_support import run_config, write_rows
from tuneline.cli import main
from tuneline.config import ConfigError
from tuneline.readers import DataLoadError
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import validate_data

TASK = "multilabel_classification"
ID_CELLS = ["0", "1,3", "2", "1,3"]  # 0-based ids into labels.txt
NAME_CELLS = ["1", "2,4", "3", "2,4"]  # the same rows written as the names


def write_tsv(path: Path, cells: list[str], rows: int) -> Path:
    path.write_text("".join(f"{path.stem} comment {i} lorem ipsum\t{cells[i % len(cells)]}\n" for i in range(rows)))
    return path


def numeric_case(tmp_path: Path, cells: list[str], *overrides: str, names: str = "1\n2\n3\n4\n",
                 train_cells: list[str] | None = None):
    """Train (40 rows), validation and test (8 each) of ``cells`` in turn; train of ``train_cells`` where given."""
    (tmp_path / "labels.txt").write_text(names)
    files = {role: write_tsv(tmp_path / f"{role}.tsv", train_cells if role == "train" and train_cells else cells,
                             count) for role, count in (("train", 40), ("validation", 8), ("test", 8))}
    return run_config(TASK, "data.header=false", *overrides, **files, text_column="0", label_column="1",
                      label_names=str(tmp_path / "labels.txt"))


def validated(config, tmp_path: Path):
    return validate_data.fn(load_data.fn(config), config, tmp_path / "run")


def test_numbers_that_are_names_and_ids_are_refused_naming_the_setting(tmp_path: Path):
    config = numeric_case(tmp_path, ID_CELLS)
    with pytest.raises(DataLoadError) as raised:
        load_data.fn(config)
    message = str(raised.value)
    assert message == (f"{tmp_path / 'train.tsv'}: row 2: label '1' is the name '1' or the id 1 (the name '2', line 2 "
                       "of the names); data.label_names holds numbers ('1', '2', '3', '4'), so a number in the data "
                       "can be an id or a name: set data.label_values: ids (numbers count the names from 0) or "
                       "data.label_values: names (numbers are the names)")


def test_a_file_of_names_only_is_refused_too_so_train_and_test_cannot_be_read_two_ways(tmp_path: Path):
    """``2,4`` fits only the names (4 is no id of 4 names), but ``1`` and ``3`` fit both; a guess per file would read
    a test file of only ``1``-``3`` rows as ids while train was read as names."""
    with pytest.raises(DataLoadError, match=r"row 1: label '1' is the name '1' or the id 1 .*set data\.label_values"):
        load_data.fn(numeric_case(tmp_path, NAME_CELLS))
    with pytest.raises(DataLoadError, match=r"row 1: label '4' is a name but no id \(the ids are 0-3\)"):
        load_data.fn(numeric_case(tmp_path, ["4"]))


def test_label_values_ids_reads_every_number_as_a_line_of_the_names(tmp_path: Path):
    result = validated(numeric_case(tmp_path, ID_CELLS, "data.label_values=ids"), tmp_path)
    assert result.labels == ["1", "2", "3", "4"]
    assert result.frames["train"]["label"].tolist()[:4] == [["1"], ["2", "4"], ["3"], ["2", "4"]]
    assert result.frames["test"]["label"].tolist()[:4] == [["1"], ["2", "4"], ["3"], ["2", "4"]]
    assert result.quarantine.empty


def test_label_values_names_reads_the_numbers_as_written(tmp_path: Path):
    result = validated(numeric_case(tmp_path, NAME_CELLS, "data.label_values=names"), tmp_path)
    assert result.frames["train"]["label"].tolist()[:4] == [["1"], ["2", "4"], ["3"], ["2", "4"]]
    cells = NAME_CELLS * 10
    cells[5] = "0"  # no name: quarantined, never the name '1'
    config = numeric_case(tmp_path, NAME_CELLS, "data.label_values=names", train_cells=cells)
    result = validated(config, tmp_path)
    rows = result.quarantine[result.quarantine["split"] == "train"]
    assert rows[["source_row", "rule"]].values.tolist() == [[6, "label_in_label_set"]]
    assert "label(s) ['0'] not in the label set" in rows["detail"].iloc[0]


def test_with_label_values_ids_a_number_past_the_last_name_is_quarantined_not_taken_for_that_name(tmp_path: Path):
    cells = ID_CELLS * 10
    cells[7] = "1,4"  # 4 is a name, but no id of 4 names
    result = validated(numeric_case(tmp_path, ID_CELLS, "data.label_values=ids", train_cells=cells), tmp_path)
    rows = result.quarantine[result.quarantine["split"] == "train"]
    assert rows[["source_row", "rule"]].values.tolist() == [[8, "label_id_in_range"]]
    assert rows["detail"].iloc[0] == ("label id(s) ['4'] are past the last of the 4 names in data.label_names (ids "
                                      "0-3, as data.label_values: ids counts them)")
    assert len(result.frames["train"]) == 39


def test_numbers_that_are_no_ids_of_other_names_stay_unambiguous(tmp_path: Path):
    """Names 10, 20, 30: ``1`` can only be an id and ``20`` only a name, so a file of either reads as before; a file
    mixing the two is refused (was it ids with a stray name, or the reverse?)."""
    result = validated(numeric_case(tmp_path, ["0", "1,2", "2"], names="10\n20\n30\n"), tmp_path)
    assert result.frames["train"]["label"].tolist()[:3] == [["10"], ["20", "30"], ["30"]]
    result = validated(numeric_case(tmp_path, ["10", "20,30", "30"], names="10\n20\n30\n"), tmp_path)
    assert result.frames["train"]["label"].tolist()[:3] == [["10"], ["20", "30"], ["30"]]
    with pytest.raises(DataLoadError, match=r"row 1: label '1' is no name but the id 1 \(the name '20', line 2 of the "
                                            r"names\), and row 2: '30' is a name but no id; .*data\.label_values"):
        load_data.fn(numeric_case(tmp_path, ["1", "30"], names="10\n20\n30\n"))


def test_names_that_are_their_own_ids_read_the_same_either_way(tmp_path: Path):
    result = validated(numeric_case(tmp_path, ["0", "1,2", "2"], names="0\n1\n2\n"), tmp_path)
    assert result.labels == ["0", "1", "2"]
    assert result.frames["train"]["label"].tolist()[:3] == [["0"], ["1", "2"], ["2"]]


def test_vector_positions_are_ids_even_where_the_names_are_numbers(tmp_path: Path):
    """Position 1 of names ``1 2 3`` is the name ``2``: mapping the position's text as a cell's was the name ``1``."""
    vectors = [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    paths = {}
    for role, rows in (("train", 30), ("validation", 6), ("test", 6)):
        paths[role] = tmp_path / f"{role}.jsonl"
        paths[role].write_text("".join(json.dumps({"text": f"{role} {i}", "labels": vectors[i % 3]}) + "\n"
                                       for i in range(rows)))
    config = run_config(TASK, **paths, label_column="labels", label_names=["1", "2", "3"])
    result = validated(config, tmp_path)
    assert result.frames["train"]["label"].tolist()[:3] == [["1"], ["2", "3"], ["3"]]


def test_label_values_without_label_names_is_a_config_error():
    with pytest.raises(ConfigError, match=r"data\.label_values: ids says how labels map to data\.label_names, which "
                                          r"is not set"):
        run_config(TASK, "data.label_values=ids", path="d.tsv")


@pytest.mark.parametrize("task", ["classification", "pair_classification"])
def test_single_label_kinds_have_no_label_names_to_map(task: str):
    with pytest.raises(ConfigError, match=rf"data\.label_names: unknown key for task '{task}' \(a key of task "
                                          r"'multilabel_classification'"):
        run_config(task, path="d.csv", label_names="labels.txt")


def test_classification_reads_numbers_as_written_beside_numeric_labels(tmp_path: Path):
    rows = [(f"text number {i}", str(1 + i % 4)) for i in range(40)]
    rows[9] = ("text number 9", "0")
    config = run_config("classification", "data.labels=[1, 2, 3, 4]", path=write_rows(tmp_path / "d.csv", rows))
    result = validated(config, tmp_path)
    assert result.labels == ["1", "2", "3", "4"]
    assert result.quarantine[["source_row", "rule"]].values.tolist() == [[10, "label_in_label_set"]]
    assert sorted(set().union(*(set(map(str, f["label"])) for f in result.frames.values()))) == ["1", "2", "3", "4"]


def test_the_validate_command_says_it_in_one_line(tmp_path: Path, capsys):
    numeric_case(tmp_path, ID_CELLS)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"task": TASK, "work_dir": str(tmp_path / "out"), "data": {
        "train": "train.tsv", "validation": "validation.tsv", "test": "test.tsv", "header": False,
        "text_column": "0", "label_column": "1", "label_names": "labels.txt"}}))
    assert main(["validate", "-c", str(config)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"tuneline: {tmp_path / 'train.tsv'}: row 2: label '1' is the name '1' or the id 1")
    assert main(["validate", "-c", str(config), "--set", "data.label_values=ids"]) == 0
    assert "labels (4): 1, 2, 3, 4" in capsys.readouterr().out


def test_with_word_names_a_number_past_the_last_name_is_quarantined_not_a_new_label(tmp_path: Path):
    """GoEmotions' labels.txt (words, ids 0-27) and the default label_values auto: id 99 was read as a label named
    "99", and the retraining loop with label growth put a class "99" into the registered model's head (QA)."""
    cells = ID_CELLS * 10
    cells[7] = "1,99"
    names = "joy\nanger\nfear\nlove\n"
    result = validated(numeric_case(tmp_path, ID_CELLS, names=names, train_cells=cells), tmp_path)
    rows = result.quarantine[result.quarantine["split"] == "train"]
    assert rows[["source_row", "rule"]].values.tolist() == [[8, "label_id_in_range"]]
    assert rows["detail"].iloc[0] == ("label id(s) ['99'] are past the last of the 4 names in data.label_names (ids "
                                      "0-3, a number that is no name is read as an id)")
    assert sorted(result.labels) == ["anger", "fear", "joy", "love"] and len(result.frames["train"]) == 39
