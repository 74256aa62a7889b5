"""One file given as both data.validation and data.test (or two copies of it) read without a word: the model is chosen
on validation (early stopping, the best checkpoint, multi-label thresholds), so its test score on those same rows is
optimistic. It is a run warning now (once, in the summary's warnings), not an error: a corpus that has only a dev set
is commonly scored so, and the leakage rule is about records the model trained on (train), which it still enforces."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests_support import run_config, write_rows
from tuneline.run_warnings import collected_warnings
from tuneline.tasks.load import load_data
from tuneline.tasks.split import SplitError, split_data
from tuneline.tasks.validate import validate_data

ADVICE = ("the model is chosen on validation (early stopping, the best checkpoint, multi-label thresholds), so its "
          "test score on the same rows is optimistic; give a test file of its own, or leave data.test out to carve a "
          "test split from train (data.split.test_fraction)")


def rows(prefix: str, count: int) -> list[tuple[str, str]]:
    return [(f"{prefix} text {i}", ("pos", "neg")[i % 2]) for i in range(count)]


def test_the_same_file_as_validation_and_test_is_warned_about_once(tmp_path: Path):
    train = write_rows(tmp_path / "train.csv", rows("train", 40))
    dev = write_rows(tmp_path / "dev.csv", rows("dev", 10))
    config = run_config("classification", train=train, validation=dev, test=tmp_path / "." / "dev.csv")
    with collected_warnings() as warned:
        loaded = load_data.fn(config)
    assert warned == [f"data.validation and data.test are the same file ({tmp_path / 'dev.csv'}): {ADVICE}"]
    result = validate_data.fn(loaded, config, tmp_path / "run")  # still validated: a warning, not an error
    assert len(result.frames["validation"]) == len(result.frames["test"]) == 10


def test_two_copies_of_one_file_are_warned_about_too(tmp_path: Path):
    train = write_rows(tmp_path / "train.csv", rows("train", 40))
    dev = write_rows(tmp_path / "dev.csv", rows("dev", 10))
    copy = tmp_path / "test.csv"
    shutil.copyfile(dev, copy)
    with collected_warnings() as warned:
        load_data.fn(run_config("classification", train=train, validation=dev, test=copy))
    assert warned == [f"data.validation and data.test are copies of one file ({dev}, {copy}: the same SHA-256): "
                      f"{ADVICE}"]


def test_distinct_files_give_no_warning(tmp_path: Path):
    files = {role: write_rows(tmp_path / f"{role}.csv", rows(role, count))
             for role, count in (("train", 40), ("validation", 10), ("test", 10))}
    with collected_warnings() as warned:
        load_data.fn(run_config("classification", **files))
    assert warned == []


def test_train_given_as_test_is_still_refused_by_the_leakage_rule(tmp_path: Path):
    train = write_rows(tmp_path / "train.csv", rows("train", 40))
    dev = write_rows(tmp_path / "dev.csv", rows("dev", 10))
    config = run_config("classification", "data.max_duplicate_fraction=1.0", train=train, validation=dev, test=train)
    result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert set(result.quarantine[result.quarantine["split"] == "test"]["rule"]) == {"text_not_in_train"}
    with pytest.raises(SplitError, match=r"the test split is empty: .*also in train: is it the training file\?\); "
                                         rf"see the quarantine file \({result.quarantine_path}\)"):
        split_data.fn(result.frames, result.labels, config.data.split, kind="classification",
                      quarantine_path=result.quarantine_path)
