"""One-hot multi-label files (GoEmotions' raw CSVs, Kaggle's Jigsaw toxic comments): one 0/1 column per label and
no label column, read with ``data.label_columns`` into the kind's label lists. Before, tuneline said to set
data.label_column, and doing so with one of the 0/1 columns silently trained two classes "0" and "1"."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from conftest import working_in
from tests_support import run_config
from tuneline.cli import main
from tuneline.config import ConfigError, build_config
from tuneline.readers import DataLoadError
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import validate_data

TASK = "multilabel_classification"
#: the label columns in the order the label set must keep (not sorted)
EMOTIONS = ["joy", "anger", "fear"]
KEYWORDS = {"joy": ["love", "great", "fun"], "anger": ["hate", "awful", "bad"], "fear": ["crash", "error", "bug"]}
FILLER = ["the", "my", "it", "is", "was", "and", "why", "please"]


def one_hot_rows(count: int, seed: int = 0) -> list[dict]:
    """GoEmotions' raw layout: text, a comment id, then one 0/1 column per emotion (a keyword per label present)."""
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < count:
        chosen = rng.sample(EMOTIONS, rng.choice([1, 1, 2]))
        words = [rng.choice(KEYWORDS[label]) for label in chosen] + rng.sample(FILLER, 2)
        rng.shuffle(words)
        text = " ".join(words)
        if text not in seen:
            seen.add(text)
            rows.append({"text": text, "id": f"c{len(rows)}", **{label: int(label in chosen) for label in EMOTIONS}})
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).astype(object).to_csv(path, index=False)
    return path


def validated(tmp_path: Path, *overrides: str, **data):
    config = run_config(TASK, *overrides, **data)
    return validate_data.fn(load_data.fn(config), config, tmp_path / "run")


def test_one_hot_columns_read_as_the_names_of_the_columns_holding_1(tmp_path):
    rows = one_hot_rows(40)
    rows[0].update(joy="1.0", anger="0.0", fear="0")  # a spreadsheet's floats, and true/false, are 0/1 too
    rows[1].update(joy="true", anger="FALSE", fear="True")
    path = write_csv(tmp_path / "goemotions_1.csv", rows)
    result = validated(tmp_path, "data.label_columns=[joy, anger, fear]", path=path)
    assert result.labels == EMOTIONS  # the columns' order, as data.labels would give it
    assert result.quarantine.empty
    read = {text: labels for split in result.frames.values() for text, labels in zip(split["text"], split["label"])}
    assert len(read) == 40
    for row in rows[2:]:
        assert read[row["text"]] == sorted(label for label in EMOTIONS if row[label] == 1)
    assert read[rows[0]["text"]] == ["joy"] and read[rows[1]["text"]] == ["fear", "joy"]


def test_label_columns_override_is_a_yaml_list_that_show_config_prints(tmp_path, capsys):
    config_file = tmp_path / "ml.yaml"
    config_file.write_text(yaml.safe_dump({"task": TASK, "data": {"path": "d.csv"}}))
    assert main(["show-config", "-c", str(config_file), "--set", "data.label_columns=[joy, anger, fear]"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["label_columns"] == EMOTIONS


def test_a_cell_that_is_not_0_or_1_is_quarantined_naming_its_column_and_value(tmp_path):
    rows = one_hot_rows(40)
    rows[5]["anger"] = "yes"
    rows[7]["fear"] = None  # an empty cell is a lost value, never a silent 0
    path = write_csv(tmp_path / "onehot.csv", rows)
    result = validated(tmp_path, "data.max_bad_fraction=0.5", path=path, label_columns=EMOTIONS)
    quarantine = result.quarantine.set_index("source_row")
    assert quarantine["rule"].to_dict() == {6: "one_hot_label_is_0_or_1", 8: "one_hot_label_is_missing"}
    assert quarantine["column"].to_dict() == {6: "anger", 8: "fear"}
    assert "'anger'" in quarantine.loc[6, "detail"] and "'yes'" in quarantine.loc[6, "detail"]
    assert "'fear'" in quarantine.loc[8, "detail"] and "empty" in quarantine.loc[8, "detail"]
    assert sum(len(frame) for frame in result.frames.values()) == 38


def test_label_columns_missing_from_the_file_are_one_error_naming_them(tmp_path):
    path = write_csv(tmp_path / "onehot.csv", one_hot_rows(20))
    config = run_config(TASK, path=path, label_columns=["joy", "sadness", "surprise"])
    with pytest.raises(DataLoadError) as info:
        load_data.fn(config)
    message = str(info.value)
    assert "\n" not in message and "['sadness', 'surprise']" in message and "'fear'" in message  # the file's


def test_label_columns_and_another_label_column_are_a_config_error():
    with pytest.raises(ConfigError, match="label_column.*and data.label_columns are both set"):
        build_config({"task": TASK, "data": {"path": "d.csv", "label_column": "tags", "label_columns": EMOTIONS}})
    with pytest.raises(ConfigError, match="text_column.*is one of data.label_columns"):
        build_config({"task": TASK, "data": {"path": "d.csv", "text_column": "joy", "label_columns": EMOTIONS}})


def test_a_one_hot_file_without_label_columns_names_its_0_1_columns_to_set(tmp_path):
    path = write_csv(tmp_path / "goemotions_1.csv", one_hot_rows(20))
    with pytest.raises(DataLoadError) as info:
        load_data.fn(run_config(TASK, path=path, label_column="labels"))
    assert str(info.value) == (f"{path} has no column 'labels'; its columns joy, anger, fear (3 of them) hold only "
                               "0/1, as one-hot label columns do: set data.label_columns: [joy, anger, fear]")
    rows = one_hot_rows(20)
    rows[3]["anger"] = "yes"  # one stray cell: the hint had left the column out, and following it dropped the label
    stray = write_csv(tmp_path / "stray.csv", rows)
    with pytest.raises(DataLoadError) as info:
        load_data.fn(run_config(TASK, path=stray, label_column="labels"))
    assert str(info.value) == (f"{stray} has no column 'labels'; its columns joy, fear hold only 0/1, as one-hot "
                               "label columns do, and so does anger but for its line 5 ('yes'): fix those cells to 0 "
                               "or 1, then set data.label_columns: [joy, anger, fear]")


def test_one_of_several_0_1_columns_as_the_label_column_warns_to_set_label_columns(tmp_path, caplog):
    path = write_csv(tmp_path / "onehot.csv", one_hot_rows(40))
    with caplog.at_level(logging.WARNING, logger="tuneline"):
        validated(tmp_path, path=path, label_column="joy")
    warnings = [r.getMessage() for r in caplog.records if "indicator column" in r.getMessage()]
    assert len(warnings) == 1 and "data.label_columns: [joy, anger, fear]" in warnings[0]


MODEL = "one-hot-emotions"


def test_trained_model_predicts_the_label_columns_names(tmp_path, tiny_bert):
    from tuneline.flows.train import train_flow

    path = write_csv(tmp_path / "emotions.csv", one_hot_rows(160))
    config = build_config({
        "task": TASK,
        "data": {"path": str(path), "label_columns": EMOTIONS},
        "model": {"base": str(tiny_bert)},
        "tokenize": {"max_length": 16},
        "train": {"epochs": 2, "learning_rate": 2e-3, "batch_size": 16, "precision": "fp32"},
        "evaluate": {"zero_shot_baseline": False},
        "tracking": {"experiment": "one-hot-test", "registered_model": MODEL},
    })
    with working_in(tmp_path):
        summary = train_flow(config)
    assert summary.labels == EMOTIONS
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{summary.version}")
    output = model.predict(["i love it, great fun", "why the crash and error"])
    for labels, scores in zip(output["labels"], output["scores"]):
        assert set(scores) == set(EMOTIONS) and set(labels) <= set(EMOTIONS)


@pytest.mark.parametrize("allow_empty", [False, True])
def test_rows_whose_only_1s_are_in_columns_left_out_of_label_columns_are_quarantined_naming_them(tmp_path, caplog,
                                                                                              allow_empty):
    """A 0/1 column left out of data.label_columns is no label: its 1s were dropped without a word, a row tagged
    only by it was quarantined as "the row has no label", or with allow_empty_labels trained as a text without any
    label (exploratory QA). Now a warning names the columns and such rows are quarantined, saying where their 1s are."""
    rows = one_hot_rows(40)
    for row in rows:
        row["surprise"] = 0
    rows[3].update(joy=0, anger=0, fear=0, surprise=1)  # only the left-out label
    rows[4].update(joy=1, anger=0, fear=0, surprise=1)  # a listed label too: kept, with that one
    rows[5].update(joy=0, anger=0, fear=0)  # no label anywhere: the allow_empty_labels row
    path = write_csv(tmp_path / "onehot.csv", rows)
    with caplog.at_level(logging.WARNING):
        result = validated(tmp_path, "data.max_bad_fraction=0.5", f"data.allow_empty_labels={allow_empty}",
                           path=path, label_columns=EMOTIONS)
    quarantine = result.quarantine.set_index("source_row")
    expected = {4: "label_in_unlisted_column", **({} if allow_empty else {6: "at_least_one_label"})}
    assert quarantine["rule"].to_dict() == expected
    assert quarantine.loc[4, "detail"] == ("the row's only 1s are in column(s) surprise, which data.label_columns "
                                           "does not list; add them to data.label_columns, or drop the row")
    read = {text: labels for split in result.frames.values() for text, labels in zip(split["text"], split["label"])}
    assert read[rows[4]["text"]] == ["joy"] and rows[3]["text"] not in read
    assert (rows[5]["text"] in read) is allow_empty
    warned = [r.getMessage() for r in caplog.records if "not in data.label_columns" in r.getMessage()]
    assert warned == [f"{path}: its 0/1 column(s) surprise (1) are not in data.label_columns, so their 1s (in 2 "
                      "rows) are not read as labels, and the 1 row(s) whose only 1s are there are quarantined "
                      "(label_in_unlisted_column): add the column(s) to data.label_columns to train those labels, "
                      "or drop them from the file if they are no labels"]


def test_label_column_null_on_the_command_line_switches_a_config_to_label_columns(tmp_path, capsys):
    """A config naming ``label_column: emotions`` could not be switched to one-hot columns with --set: null was
    "Input should be a valid string", and without it the error said both were set (exploratory QA)."""
    config_file = tmp_path / "ml.yaml"
    config_file.write_text(yaml.safe_dump({"task": TASK, "data": {"path": "d.csv", "label_column": "emotions"}}))
    with pytest.raises(ConfigError, match=r"keep only one \(remove data.label_column from the config, or give --set "
                                          r"data.label_column=null\)"):
        build_config({"task": TASK, "data": {"path": "d.csv", "label_column": "emotions", "label_columns": EMOTIONS}})
    assert main(["show-config", "-c", str(config_file), "--set", "data.label_column=null",
                 "--set", "data.label_columns=[joy, anger, fear]"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)["data"]
    assert data["label_columns"] == EMOTIONS and data["label_column"] == "label"
