"""Multi-hot vectors of two labels with one label a row (``[1, 0]``, ``[0, 1]``: a test file without a row of both
or none, Keras' to_categorical) were read as the ids 0 and 1, so every row silently had both labels, while the train
file beside it (which had a ``[1, 1]`` row) was read as vectors."""

from __future__ import annotations

import json
from pathlib import Path

from tests_support import run_config
from tuneline.kinds import KINDS
from tuneline.kinds.multilabel_classification import multi_hot_width
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import validate_data

TASK = "multilabel_classification"
KIND = KINDS[TASK]


def write_jsonl(path: Path, prefix: str, vectors: list[list[int]]) -> Path:
    path.write_text("".join(json.dumps({"text": f"{prefix} comment {i}", "labels": v}) + "\n"
                            for i, v in enumerate(vectors)), encoding="utf-8")
    return path


def test_a_test_file_of_one_label_a_row_vectors_is_read_as_vectors_like_train(tmp_path: Path):
    mixed = [[1, 0], [0, 1], [1, 1]]
    train = write_jsonl(tmp_path / "train.jsonl", "t", [mixed[i % 3] for i in range(60)])
    validation = write_jsonl(tmp_path / "val.jsonl", "v", [mixed[i % 3] for i in range(9)])
    test = write_jsonl(tmp_path / "test.jsonl", "x", [[[1, 0], [0, 1]][i % 2] for i in range(8)])
    config = run_config(TASK, train=train, validation=validation, test=test, label_column="labels",
                        label_names=["toxic", "obscene"])
    result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert result.labels == ["toxic", "obscene"]
    assert result.frames["test"]["label"].tolist() == [["toxic"], ["obscene"]] * 4
    assert result.frames["train"]["label"].tolist()[:3] == [["toxic"], ["obscene"], ["obscene", "toxic"]]


def test_one_label_a_row_vectors_without_label_names_are_positions():
    assert multi_hot_width([[1, 0], [0, 1], [0, 1]]) == 2
    assert multi_hot_width([[1, 0], [0, 1]], names_count=2) == 2


def test_id_lists_of_zero_and_one_stay_ids_where_the_names_are_not_two_or_lengths_differ():
    assert multi_hot_width([[0, 1], [0, 1]], names_count=28) is None  # ids 0 and 1 of 28 labels
    assert multi_hot_width([[0], [1], [0, 1], [1, 0]]) is None        # a row of one id: ids


def test_reading_one_file_of_one_label_a_row_vectors(tmp_path: Path):
    path = write_jsonl(tmp_path / "x.jsonl", "x", [[1, 0], [0, 1], [0, 1]])
    frame = KIND.read(path, "jsonl", run_config(TASK, path=path, label_column="labels",
                                                label_names=["joy", "anger"]).data).frame
    assert frame["label"].tolist() == [["joy"], ["anger"], ["anger"]]
