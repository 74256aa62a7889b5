"""One file given as both data.validation and data.test (a corpus that has only a dev set) is read once per split,
so its quarantined records are too: the per-file limit counted them twice against the file's records once ("10 of 5
records ... (200.0%)"), and one bad record stopped a file that the limit allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests_support import run_config
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import DataValidationError, validate_data


def write(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("text,label\n" + "".join(f"{text},{label}\n" for text, label in rows))
    return path


def test_one_bad_record_of_a_file_used_as_validation_and_test_is_measured_once_per_split(tmp_path: Path):
    train = write(tmp_path / "train.csv", [(f"train text {i}", ("pos", "neg")[i % 2]) for i in range(40)])
    dev_rows = [(f"dev text {i}", ("pos", "neg")[i % 2]) for i in range(29)] + [("dev text odd", "maybe")]
    dev = write(tmp_path / "dev.csv", dev_rows)
    config = run_config("classification", train=train, validation=dev, test=dev)
    result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")  # 2 of 60 reads: 3.3%, under 5%
    assert sorted(result.quarantine["split"]) == ["test", "validation"]
    assert set(result.quarantine["rule"]) == {"label_in_label_set"}
    assert len(result.frames["validation"]) == len(result.frames["test"]) == 29


def test_the_limit_message_counts_the_file_s_records_in_every_split(tmp_path: Path):
    train = write(tmp_path / "train.csv", [(f"train text {i}", ("pos", "neg")[i % 2]) for i in range(40)])
    dev = write(tmp_path / "dev.csv", [(f"dev text {i}", ("pos", "neg")[i % 2]) for i in range(8)]
                + [("dev odd", "maybe"), ("dev odd 2", "unsure")])
    config = run_config("classification", train=train, validation=dev, test=dev)
    with pytest.raises(DataValidationError, match=r"4 of 20 records of .*dev\.csv \(20\.0%\)"):
        validate_data.fn(load_data.fn(config), config, tmp_path / "run")
