"""Files written by Hugging Face ``datasets`` read as the dataset means them: class ids as their names.

``datasets`` stores labels as ids and their names in the file's schema (``ClassLabel``). Read as stored, SST-2's model
learned the classes "0" and "1", and CoNLL-2003's ``ner_tags`` ids needed data.tag_names typed in by hand (and were
not found at all: the field is ``ner_tags``, not ``tags``). ``save_to_disk`` folders (Arrow shards beside
``dataset_info.json`` and ``state.json``) and Feather files are read as Parquet files are; a DatasetDict folder is one
line saying which folder each split key takes. The files are written by the real ``datasets`` library.
"""

from __future__ import annotations

import subprocess
import sys

import datasets
import pandas as pd
import pytest
import yaml

from tests_support import run_config
from tuneline.tasks.load import load_data

NER_NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def sst2_like(rows: int = 30) -> datasets.Dataset:
    labels = [i % 2 for i in range(rows)]
    labels[-1] = -1  # datasets' "no label", as GLUE's test splits carry
    return datasets.Dataset.from_dict(
        {"sentence": [f"review number {i} was {'great' if i % 2 else 'dull'}" for i in range(rows)], "label": labels,
         "idx": list(range(rows))},
        features=datasets.Features({"sentence": datasets.Value("string"),
                                    "label": datasets.ClassLabel(names=["negative", "positive"]),
                                    "idx": datasets.Value("int32")}))


def conll_like() -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {"tokens": [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]],
         "ner_tags": [[3, 0, 7, 0], [1, 2], [5, 0]], "pos_tags": [[22, 42, 16, 21], [22, 22], [22, 11]]},
        features=datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                    "ner_tags": datasets.Sequence(datasets.ClassLabel(names=NER_NAMES)),
                                    "pos_tags": datasets.Sequence(datasets.Value("int32"))}))


def test_a_parquet_export_reads_class_ids_as_their_names_and_minus_one_as_no_label(tmp_path):
    path = tmp_path / "train-00000-of-00001.parquet"
    sst2_like().to_parquet(str(path))
    loaded = load_data.fn(run_config("classification", "data.text_column=sentence", train=path))
    frame = loaded.frames["train"]
    assert list(frame["label"][:4]) == ["negative", "positive", "negative", "positive"]
    assert frame["label"].iloc[-1] is None or pd.isna(frame["label"].iloc[-1])  # -1: missing, for the contract


@pytest.mark.parametrize("written", ["parquet", "save_to_disk"])
def test_ner_from_datasets_reads_ner_tags_as_tag_names_without_configuration(tmp_path, written):
    if written == "parquet":
        path = tmp_path / "conll.parquet"
        conll_like().to_parquet(str(path))
    else:
        path = tmp_path / "conll"
        conll_like().save_to_disk(str(path))  # data-00000-of-00001.arrow, dataset_info.json, state.json
    loaded = load_data.fn(run_config("token_classification", train=path))
    frame = loaded.frames["train"]
    assert [list(t) for t in frame["tags"]] == [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER"], ["B-LOC", "O"]]
    assert [list(t) for t in frame["tokens"]][0] == ["EU", "rejects", "German", "call"]
    if written == "save_to_disk":
        assert [s.path.name for s in loaded.sources] == ["data-00000-of-00001.arrow"]


def test_multilabel_lists_of_class_ids_read_as_names(tmp_path):
    names = ["admiration", "amusement", "anger", "neutral"]
    data = datasets.Dataset.from_dict(
        {"text": [f"comment {i}" for i in range(12)], "labels": [[i % 4] if i % 3 else [0, 1] for i in range(12)]},
        features=datasets.Features({"text": datasets.Value("string"),
                                    "labels": datasets.Sequence(datasets.ClassLabel(names=names))}))
    path = tmp_path / "emotions"
    data.save_to_disk(str(path))
    loaded = load_data.fn(run_config("multilabel_classification", "data.label_column=labels", train=path))
    frame = loaded.frames["train"]
    assert [sorted(v) for v in frame["label"][:3]] == [["admiration", "amusement"], ["amusement"], ["anger"]]


def test_a_feather_file_is_read_as_a_table(tmp_path):
    path = tmp_path / "tickets.feather"
    pd.DataFrame({"text": [f"message {i}" for i in range(6)], "label": ["a", "b"] * 3}).to_feather(path)
    loaded = load_data.fn(run_config("classification", train=path))
    assert list(loaded.frames["train"]["label"]) == ["a", "b"] * 3
    assert list(loaded.frames["train"]["text"])[:2] == ["message 0", "message 1"]


def test_a_dataset_dict_folder_is_one_line_naming_each_splits_folder(tmp_path):
    datasets.DatasetDict({"train": sst2_like(), "validation": sst2_like(8), "test": sst2_like(8)}).save_to_disk(
        str(tmp_path / "sst2"))
    (tmp_path / "tuneline.yaml").write_text(yaml.safe_dump({"task": "classification",
                                                            "data": {"path": "sst2", "text_column": "sentence"}}))
    done = subprocess.run([sys.executable, "-m", "tuneline.cli", "validate", "--config", "tuneline.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    root = tmp_path / "sst2"
    assert done.stderr.strip().splitlines() == [
        f"tuneline: data.path is the folder {root}, a Hugging Face DatasetDict with the splits test, train, "
        f"validation: point each split's key at its folder (data.test: {root / 'test'}, data.train: "
        f"{root / 'train'}, data.validation: {root / 'validation'}; leave data.path out)"]
