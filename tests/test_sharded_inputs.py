"""A dataset written as several files (Hugging Face shards, a Spark job's ``part-*`` folder) is read as one table.

``data.train: exports/`` (a folder) or ``data.test: data/test-*.parquet`` (a glob pattern) read every shard in name
order; each record keeps its own file and line for the quarantine; the lineage names the input as configured, with a
SHA-256 over its shards; a folder or pattern that gives nothing, or files of two formats, is a one-line error.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import working_in
from loop_data import tickets
from tuneline.config import build_config
from tuneline.tasks.load import load_data

LEARN = ["tokenize.max_length=32", "train.epochs=2", "train.batch_size=32", "evaluate.zero_shot_baseline=false",
         "gate.min_metric=0.0", "train.precision=fp32"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spark_folder(folder: Path, frame: pd.DataFrame, parts: int) -> list[Path]:
    """``frame`` as a Spark job writes it: ``part-0000N-<id>.csv`` files, a ``_SUCCESS`` marker, hidden ``.crc``
    checksums, and a README someone added."""
    folder.mkdir(parents=True)
    written = []
    for number in range(parts):
        path = folder / f"part-{number:05d}-6c1f.c000.csv"
        frame.iloc[number::parts].to_csv(path, index=False)
        (folder / f".{path.name}.crc").write_bytes(b"crc\x00\x01")
        written.append(path)
    (folder / "_SUCCESS").write_text("")
    (folder / "README.md").write_text("# tickets export\n\nlabel,text\n")
    return written


def test_a_spark_folder_and_a_parquet_pattern_train_as_one_table_traced_to_each_shard(tmp_path, tiny_bert):
    from tuneline.flows.train import train_flow

    train = tickets({"billing": 40, "shipping": 40, "technical": 40}, seed=3)
    parts = spark_folder(tmp_path / "exports", train, 3)
    broken = parts[1].read_text().splitlines()
    broken[4] = broken[4].rsplit(",", 1)[0] + ","  # the fifth line of the second shard loses its label
    parts[1].write_text("\n".join(broken) + "\n")
    (tmp_path / "hub").mkdir()
    test = tickets({"billing": 10, "shipping": 10, "technical": 10}, seed=4)
    for number in range(2):
        test.iloc[number::2].to_parquet(tmp_path / "hub" / f"test-{number:05d}-of-00002.parquet", index=False)
    (tmp_path / "hub" / "train-00000-of-00001.parquet").write_bytes(b"not this split's")  # the pattern leaves it

    config = build_config({"task": "classification",
                           "data": {"train": str(tmp_path / "exports"), "test": str(tmp_path / "hub" / "test-*.parquet"),
                                    "text_column": "text", "label_column": "label"},
                           "model": {"base": str(tiny_bert)}, "tracking": {"registered_model": "sharded"}}, LEARN)
    with working_in(tmp_path):
        summary = train_flow(config)

    assert summary.records_read == 120 + 30
    assert summary.split_rows["test"] == 30 and sum(summary.split_rows.values()) == 149
    quarantine = pd.read_csv(summary.quarantine_file)
    [bad] = quarantine.to_dict("records")
    assert (bad["source_file"], bad["source_line"], bad["rule"]) == (str(parts[1]), 5, "not_nullable"), bad

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    tags = client.get_run(summary.run_id).data.tags
    assert tags["data.source.train.path"] == str(tmp_path / "exports")
    assert tags["data.source.train.files"] == "3"
    assert tags["data.source.train.records"] == "120" and tags["data.source.train.malformed"] == "0"
    expected = hashlib.sha256("".join(f"{p.name}\t{sha256(p)}\n" for p in parts).encode()).hexdigest()
    assert tags["data.source.train.sha256"] == expected
    assert json.loads(tags["data.source.train.file_sha256"]) == {p.name: sha256(p)[:16] for p in parts}
    shards = sorted((tmp_path / "hub").glob("test-*.parquet"))
    assert tags["data.source.test.path"] == str(tmp_path / "hub" / "test-*.parquet")
    assert tags["data.source.test.files"] == "2" and tags["data.source.test.records"] == "30"
    assert "data.source.train.files" in tags and shards[0].name in tags["data.source.test.file_sha256"]


def test_conll_shards_are_one_table_with_sentences_numbered_per_file(tmp_path):
    folder = tmp_path / "ner"
    folder.mkdir()
    (folder / "part-a.conll").write_text("EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n")
    (folder / "part-b.conll").write_text("BRUSSELS B-LOC\n1996-08-22 O\n")
    (folder / "notes.md").write_text("two shards\n")
    config = build_config({"task": "token_classification", "data": {"train": str(folder)}}, [])
    loaded = load_data.fn(config)
    frame = loaded.frames["train"]
    assert [list(t) for t in frame["tokens"]] == [["EU", "rejects"], ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]]
    assert list(zip(frame["source_file"].astype(str), frame["source_row"])) == [
        (str(folder / "part-a.conll"), 1), (str(folder / "part-a.conll"), 2), (str(folder / "part-b.conll"), 1)]
    assert [(s.path.name, s.records, s.given) for s in loaded.sources] == [
        ("part-a.conll", 2, folder), ("part-b.conll", 1, folder)]


def test_compact_shards_keep_one_categorical_source_column(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    frame = tickets({"billing": 30, "shipping": 30}, seed=5)
    frame.iloc[:30].to_csv(folder / "a.csv", index=False)
    frame.iloc[30:].to_csv(folder / "b.csv", index=False)
    loaded = load_data.fn(build_config({"task": "classification", "data": {"train": str(folder)}}, []))
    train = loaded.frames["train"]
    assert len(train) == 60 and list(train.index) == list(range(60))
    assert list(train["text"]) == list(frame["text"])
    if isinstance(train["source_file"].dtype, pd.CategoricalDtype):
        assert set(train["source_file"].cat.categories) == {str(folder / "a.csv"), str(folder / "b.csv")}
    assert train["source_file"].astype(str).value_counts().to_dict() == {str(folder / "a.csv"): 30,
                                                                         str(folder / "b.csv"): 30}


def test_empty_and_header_only_shards_are_no_records_not_a_failure(tmp_path):
    """A Spark task that got no rows writes an empty part file (0 bytes, or only the header): the folder failed
    whole ("part-00002.csv is empty (0 bytes)"). The shards hold no records, and only all of them empty is an error."""
    frame = tickets({"billing": 20, "shipping": 20}, seed=7)
    written = spark_folder(tmp_path / "export", frame, 2)
    (tmp_path / "export" / "part-00002-6c1f.c000.csv").write_bytes(b"")
    (tmp_path / "export" / "part-00003-6c1f.c000.csv").write_text("text,label\n")
    (tmp_path / "export" / "part-00004-6c1f.c000.csv").write_text("\n \n")
    loaded = load_data.fn(build_config({"task": "classification", "data": {"train": str(tmp_path / "export")}}, []))
    assert len(loaded.frames["train"]) == 40
    assert sorted(loaded.frames["train"]["text"]) == sorted(frame["text"])
    records = {s.path.name: s.records for s in loaded.sources}
    assert records == {written[0].name: 20, written[1].name: 20, "part-00002-6c1f.c000.csv": 0,
                       "part-00003-6c1f.c000.csv": 0, "part-00004-6c1f.c000.csv": 0}
    only_empty = tmp_path / "nothing"
    only_empty.mkdir()
    (only_empty / "part-0.csv").write_bytes(b"")
    (only_empty / "part-1.csv").write_text("text,label\n")
    from tuneline.readers import DataLoadError

    with pytest.raises(DataLoadError, match=r"data.train \(.*nothing\) holds no records: all 2 of its files are "
                                            r"empty; e.g. input file .*part-0.csv is empty \(0 bytes\)"):
        load_data.fn(build_config({"task": "classification", "data": {"train": str(only_empty)}}, []))


@pytest.mark.parametrize("layout, expected", [
    ("pattern", "data.train is the pattern {root}/data/train-*.csv, which matches no file"),
    ("notes", "data.train is the folder {root}/data, which holds no data file tuneline can read for this task "
              "(csv, tsv, jsonl, parquet, xlsx): it holds README.md, notes.txt"),
    ("nested", "data.train is the folder {root}/data, which holds no data file tuneline can read for this task "
               "(csv, tsv, jsonl, parquet, xlsx): it holds day=1/, day=2/; for files in its subfolders give a "
               "pattern such as {root}/data/**/*.csv"),
    ("mixed", "data.train is the folder {root}/data, which gives files of 2 formats (csv, jsonl: a.csv, b.jsonl); "
              "one table is read from one format: give a pattern that picks one, such as {root}/data/*.csv"),
])
def test_a_folder_or_pattern_that_gives_no_table_is_one_line_naming_the_key(tmp_path, layout, expected):
    data = tmp_path / "data"
    data.mkdir()
    rows = "text,label\nmy card was charged twice,billing\n"
    if layout == "notes":
        (data / "README.md").write_text("# data\n")
        (data / "notes.txt").write_text("to do\n")
    elif layout == "nested":
        for day in (1, 2):
            (data / f"day={day}").mkdir()
            (data / f"day={day}" / "part-0.csv").write_text(rows)
    elif layout == "mixed":
        (data / "a.csv").write_text(rows)
        (data / "b.jsonl").write_text(json.dumps({"text": "where is my parcel", "label": "shipping"}) + "\n")
    train = data / "train-*.csv" if layout == "pattern" else data
    (tmp_path / "tuneline.yaml").write_text(yaml.safe_dump({"task": "classification", "data": {"train": str(train)}}))
    done = subprocess.run([sys.executable, "-m", "tuneline.cli", "validate", "--config", "tuneline.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"tuneline: {expected.format(root=tmp_path)}"), done.stderr


def test_a_pattern_reaches_into_subfolders_with_two_stars(tmp_path):
    data = tmp_path / "data"
    for day in (2, 1):
        (data / f"day={day}").mkdir(parents=True)
        (data / f"day={day}" / "part-0.csv").write_text(f"text,label\nmessage of day {day},billing\n"
                                                       f"another of day {day},shipping\n")
    loaded = load_data.fn(build_config({"task": "classification",
                                        "data": {"train": str(data / "**" / "*.csv")}}, []))
    assert list(loaded.frames["train"]["text"]) == ["message of day 1", "another of day 1",
                                                    "message of day 2", "another of day 2"]


def test_the_loop_versions_sharded_base_data_and_says_when_a_shard_is_added_or_removed(tmp_path, tiny_bert, caplog):
    """The retraining loop's data version 1 is the base data, shards and all; after it the loop trains on stored
    versions, so a shard added to (or removed from) the folder later is not read, and every run says so."""
    from tuneline.flows.retrain import retrain_flow

    base = tickets({"billing": 40, "shipping": 40, "technical": 40}, seed=6)
    parts = spark_folder(tmp_path / "base", base, 2)
    (tmp_path / "landing").mkdir()
    config = build_config({"task": "classification", "data": {"path": str(tmp_path / "base")},
                           "model": {"base": str(tiny_bert)}, "tracking": {"registered_model": "sharded-loop"},
                           "retrain": {"landing": str(tmp_path / "landing")}}, LEARN)
    with working_in(tmp_path):
        first = retrain_flow(config, trigger="test")
        assert first.status == "retrained" and first.run is not None
        assert first.run.records_read == 120
        recorded = json.loads(next((tmp_path).rglob("base-files.json")).read_text())
        assert sorted(recorded) == [str(p) for p in parts]
        added = tmp_path / "base" / "part-00002-6c1f.c000.csv"
        tickets({"billing": 5}, seed=7).to_csv(added, index=False)
        parts[0].unlink()
        caplog.clear()
        assert retrain_flow(config, trigger="test").status == "skipped"
    assert f"{added} was added to the base data's files since they became data version 1" in caplog.text
    assert f"{parts[0]} is gone since it became data version 1" in caplog.text
    assert str(parts[1]) not in caplog.text
