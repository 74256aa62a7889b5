"""A Hugging Face ``datasets`` export of a classification set writes class ids (``{"sentence": ..., "label": 0}``);
a user who then lists the class names in ``data.labels`` was told the names "never occur" and, as the only lead,
"do not delete lines from data.label_names": a key that classification does not have (the config refuses it). Now
the message says what train holds and, where those are ids, that a single-label task reads labels as written.
Multi-label keeps its data.label_names advice."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tuneline.cli import main


def write_export(path: Path, rows: int = 60) -> Path:
    """A JSONL file as ``Dataset.to_json`` writes one: text, integer class id, index."""
    words = ("dreadful film", "lovely film")
    path.write_text("".join(json.dumps({"sentence": f"a {words[i % 2]} number {i}", "label": i % 2, "idx": i}) + "\n"
                            for i in range(rows)))
    return path


def test_named_labels_over_class_ids_name_what_train_holds_and_no_key_of_another_kind(tmp_path: Path, capsys):
    config = tmp_path / "hf.yaml"
    config.write_text(yaml.safe_dump({"task": "classification", "work_dir": str(tmp_path / "out"),
                                      "data": {"path": str(write_export(tmp_path / "hf.jsonl")),
                                               "text_column": "sentence", "labels": ["negative", "positive"]},
                                      "tracking": {"registered_model": "hf-ids"}}))
    assert main(["validate", "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("tuneline: configured label(s) ['negative', 'positive'] never occur")
    assert "train holds '0', '1'; these are class ids" in err
    assert "leave data.labels out" in err
    assert "label_names" not in err  # no key of classification: the config refuses it


def test_multilabel_keeps_its_label_names_advice(tmp_path: Path, capsys):
    train = tmp_path / "train.tsv"
    train.write_text("".join(f"comment {i} here\t{'joy' if i % 2 else 'anger'}\n" for i in range(40)))
    config = tmp_path / "ml.yaml"
    config.write_text(yaml.safe_dump({"task": "multilabel_classification", "work_dir": str(tmp_path / "out"),
                                      "data": {"path": str(train), "header": False, "text_column": "0",
                                               "label_column": "1", "labels": ["anger", "joy", "fear"]},
                                      "tracking": {"registered_model": "ml-ids"}}))
    assert main(["validate", "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert "['fear'] never occur" in err and "train holds 'anger', 'joy'" in err
    assert "do not delete lines from data.label_names" in err


def test_multilabel_label_names_never_seen_are_told_to_be_listed_in_data_labels(tmp_path: Path, capsys):
    """Labels read from data.label_names (no data.labels set): the error said "leave them out of data.labels", a key
    the user never wrote; deleting the name's line instead shifts every id after it."""
    train = tmp_path / "train.tsv"
    train.write_text("".join(f"comment {i} here\t{i % 2}\n" for i in range(40)))
    names = tmp_path / "labels.txt"
    names.write_text("anger\njoy\nfear\n")
    config = tmp_path / "ml.yaml"
    config.write_text(yaml.safe_dump({"task": "multilabel_classification", "work_dir": str(tmp_path / "out"),
                                      "data": {"path": str(train), "header": False, "text_column": "0",
                                               "label_column": "1", "label_names": str(names)},
                                      "tracking": {"registered_model": "ml-names"}}))
    assert main(["validate", "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert "['fear'] never occur in the training data" in err and "train holds 'anger', 'joy'" in err
    assert "add training rows, or list the labels to learn in data.labels" in err
    assert "leave them out of data.labels" not in err
    assert "do not delete lines from data.label_names where labels are ids: its line numbers are the ids" in err
