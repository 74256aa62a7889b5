"""Compressed inputs (``train.csv.gz``, ``dev.tsv.bz2``, ``batch.jsonl.xz``) are read as the file inside them.

Datasets are shipped compressed and pandas reads them as they are; tuneline refused them with a command to
decompress. Now every reader (training's load, batch prediction, the retraining loop's batches, ``tuneline data
relabel``) reads them, and everything the user sees (quarantine rows, errors, lines) names the file they gave, not a
temporary copy, which is deleted afterwards."""

from __future__ import annotations

import bz2
import gzip
import lzma
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from tests_support import run_config
from tuneline.compressed import compression_of, inner_name, readable
from tuneline.readers import DataLoadError, check_file
from tuneline.tasks.load import load_data
from tuneline.tasks.predict_batch import read_prediction_inputs
from tuneline.tasks.validate import validate_data

# a header, a record over two lines, a blank line, a record of three fields (line 6), a label outside the set (line 7)
CSV = ('text,label\n"first text,\nwritten over two lines",pos\nsecond text,neg\n\nthird,text,pos\n'
       'fourth text,maybe\nfifth text,pos\nsixth text,neg\n')
WRITERS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}


def unpacked_folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("tuneline-unpacked-*")}


def quarantine(tmp_path: Path, path: Path) -> tuple[pd.DataFrame, object]:
    config = run_config("classification", "data.max_bad_fraction=0.9", path=str(path), labels=["pos", "neg"])
    loaded = load_data.fn(config)
    result = validate_data.fn(loaded, config, tmp_path / f"run-{path.name}")
    return pd.read_csv(result.quarantine_path), loaded


@pytest.mark.parametrize("suffix", sorted(WRITERS))
def test_a_compressed_csv_reads_as_the_csv_inside_and_names_the_file_given(tmp_path: Path, suffix: str):
    plain = tmp_path / "plain" / "train.csv"
    plain.parent.mkdir()
    plain.write_text(CSV)
    packed = tmp_path / f"train.csv{suffix}"
    packed.write_bytes(WRITERS[suffix](CSV.encode()))
    before = unpacked_folders()

    expected, plain_loaded = quarantine(tmp_path, plain)
    written, loaded = quarantine(tmp_path, packed)

    frame, plain_frame = loaded.frames["all"], plain_loaded.frames["all"]
    assert frame["text"].tolist() == plain_frame["text"].tolist()
    assert frame["text"].iloc[0] == "first text,\nwritten over two lines"
    assert set(frame["source_file"].astype(str)) == {str(packed)}  # not the temporary copy
    columns = ["source_row", "source_line", "rule"]
    assert written[columns].values.tolist() == expected[columns].values.tolist()
    assert {tuple(x) for x in written[["rule", "source_line"]].values.tolist()} >= {
        ("record_has_wrong_field_count", 6), ("label_in_label_set", 7)}
    assert set(written["source_file"]) == {str(packed)}
    assert loaded.sources[0].path == packed and loaded.sources[0].records == 6
    assert unpacked_folders() == before  # the copy is gone


def test_a_csv_named_file_that_is_really_gzip_is_read(tmp_path: Path):
    path = tmp_path / "train.csv"
    path.write_bytes(gzip.compress(CSV.encode()))
    check_file(path)  # no "decompress it" refusal
    written, loaded = quarantine(tmp_path, path)
    assert len(loaded.frames["all"]) + len(written[written["rule"] == "record_has_wrong_field_count"]) == 6


def test_an_error_inside_names_the_compressed_file_and_a_damaged_one_says_so(tmp_path: Path):
    path = tmp_path / "train.csv.gz"
    path.write_bytes(gzip.compress(b"sentence,sentiment\nfine,pos\n"))
    config = run_config("classification", path=str(path), labels=["pos", "neg"])
    with pytest.raises(DataLoadError) as raised:
        load_data.fn(config)
    message = str(raised.value)
    assert str(path) in message and "tuneline-unpacked" not in message and "'text'" in message

    whole = gzip.compress(CSV.encode() * 50)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataLoadError, match=r"cut\.csv\.gz is gzip-compressed but is damaged or cut short"):
        load_data.fn(run_config("classification", path=str(cut), labels=["pos", "neg"]))

    empty = tmp_path / "empty.csv.gz"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(DataLoadError, match=r"empty\.csv\.gz is gzip-compressed and holds nothing"):
        load_data.fn(run_config("classification", path=str(empty), labels=["pos", "neg"]))


def test_a_compressed_conll_file_trains_ner_rows_with_their_lines(tmp_path: Path):
    sentence = "John B-PER\nlives O\nin O\nParis B-LOC\n. O\n\n"
    body = "-DOCSTART- -X- -X- O\n\n" + sentence + "Mary B-PER\nwent O\nto O\nRome X-LOC\n\n"
    path = tmp_path / "train.txt.gz"
    path.write_bytes(gzip.compress(body.encode()))
    config = run_config("token_classification", "data.max_bad_fraction=0.9", path=str(path),
                        labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    loaded = load_data.fn(config)
    result = validate_data.fn(loaded, config, tmp_path / "run")
    written = pd.read_csv(result.quarantine_path)
    assert list(loaded.frames["all"]["tokens"].iloc[0]) == ["John", "lives", "in", "Paris", "."]
    assert written[["source_file", "source_line", "rule"]].values.tolist() == [[str(path), 9, "tag_in_label_set"]]


def test_batch_prediction_reads_a_compressed_input(tmp_path: Path):
    path = tmp_path / "to_score.jsonl.xz"
    path.write_bytes(lzma.compress(b'{"text": "great film"}\n{"text": "dull"}\n{"text": ""}\n'))
    with pytest.raises(Exception) as raised:  # the empty text is refused, by its line, naming the .xz file
        read_prediction_inputs.fn(path, "classification")
    assert f"input file {path}: the record on line 3 has no value in column 'text'" in str(raised.value)
    path.write_bytes(lzma.compress(b'{"text": "great film"}\n{"text": "dull"}\n'))
    inputs = read_prediction_inputs.fn(path, "classification")
    assert inputs.frame["text"].tolist() == ["great film", "dull"] and inputs.lines == [1, 2]
    assert inputs.path == path


def test_names_and_detection():
    assert inner_name(Path("a/train.csv.gz")) == "train.csv"
    assert inner_name(Path("dev.TSV.BZ2")) == "dev.TSV"
    assert inner_name(Path("train.csv")) == "train.csv"


def test_an_uncompressed_file_is_read_in_place(tmp_path: Path):
    path = tmp_path / "train.csv"
    path.write_text(CSV)
    assert compression_of(path) is None
    with readable(path) as source:
        assert source == path
