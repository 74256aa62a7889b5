"""What a QA session of ``tuneline predict`` with users' own files found (2026-12-05).

1. A ``.txt`` of texts, a few words a line with blank lines between them, for an NER model was read as CoNLL: the
   first word of each line was the token, the others its "tags". ``Angela Merkel`` came out as the sentence
   ``Angela``, and 3 texts as 2 rows, with exit status 0.
2. A model trained on files without a header row (``data.header: false``, its columns registered by position)
   could not read such a file at predict time: the first record was taken for the header.

Every model is a tiny random head on the conftest BERT, registered by tuneline's own register task with the version
tags a training run gives it, and predicted by the real command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from test_predict_probe import load_challenger, store_of_heads
from tuneline.cli import main
from tuneline.readers import has_sentence_breaks

#: kind → (registered name, head, labels, the training data's column names: by position, as data.header: false
#: registers them)
MODELS = {"classification": ("qa4-noheader", "AutoModelForSequenceClassification", ["neg", "pos"], {"text": "0"}),
          "pair_classification": ("qa4-pairs", "AutoModelForSequenceClassification", ["0", "1"],
                                  {"text": "1", "text_pair": "2"}),
          "token_classification": ("qa4-ner", "AutoModelForTokenClassification",
                                   ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], {})}


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_bert) -> Iterator[str]:
    heads = {kind: (name, head, labels, {f"column.{column}": given for column, given in columns.items()})
             for kind, (name, head, labels, columns) in MODELS.items()}
    with store_of_heads(tmp_path_factory.mktemp("predict-qa4"), tiny_bert, heads) as uri:
        yield uri


def registered(uri: str, kind: str) -> mlflow.pyfunc.PyFuncModel:
    return load_challenger(uri, MODELS[kind][0])


def predict(uri: str, kind: str, source: Path, output: Path) -> int:
    return main(["predict", "-m", f"{MODELS[kind][0]}@challenger", "--tracking-uri", uri, "--input", str(source),
                 "--output", str(output)])


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- 1. texts between blank lines are no CoNLL file -----------------------------------------------------------------

@pytest.mark.parametrize("content, conll", [
    ("Angela Merkel\nJohn Smith\n\nParis London\n", False),
    ("EU rejects German call\nPeter Blackburn\n\nBRUSSELS 1996-08-22\n", False),
    ("John B-PER\nSmith I-PER\n\nParis B-LOC\n", True),  # gold tags
    ("John NNP B-NP\nSmith NNP I-NP\n\nHe PRP B-NP\n", True),  # part-of-speech and chunk tags
    ("john b-per\nsmith i-per\n\nparis b-loc\n", True),  # lower-case entity tags
    ("-DOCSTART- -X- -X- O\n\nJohn NNP B-NP B-PER\n\nParis NNP B-NP B-LOC\n", True),
    ("John\nSmith\n\nParis\n", True),  # a word a line
])
def test_a_text_file_with_blank_lines_is_conll_only_when_the_fields_after_the_word_are_tags(tmp_path, content,
                                                                                             conll):
    source = tmp_path / "input.txt"
    source.write_text(content)
    assert has_sentence_breaks(source) is conll


def test_texts_between_blank_lines_are_refused_for_the_blank_line_not_tagged_by_their_first_words(store, tmp_path,
                                                                                                    capsys):
    source = tmp_path / "texts.txt"
    source.write_text("Angela Merkel\nJohn Smith\n\nParis London\n")
    output = tmp_path / "out.jsonl"
    assert predict(store, "token_classification", source, output) == 1
    err = capsys.readouterr().err
    assert err == (f"tuneline: input file {source}: line 3 is blank between texts; each line is one text and gets one "
                   "prediction, in order: remove the line or write a text on it\n"), err
    assert not output.exists()
    source.write_text("Angela Merkel\nJohn Smith\nParis London\n")
    assert predict(store, "token_classification", source, output) == 0
    written = rows(output)
    assert [row["text"] for row in written] == ["Angela Merkel", "John Smith", "Paris London"]
    expected = registered(store, "token_classification").predict(["Angela Merkel", "John Smith", "Paris London"])
    assert [row["tags"] for row in written] == [list(tags) for tags in expected["tags"]]
    assert all("input_tags" not in row for row in written)


# --- 2. a file without a header row, for a model trained on such files ----------------------------------------------

def test_a_file_without_a_header_row_is_read_by_position_for_a_model_trained_without_one(store, tmp_path):
    texts = ["a great movie", "awful, really awful", "0"]  # a text "0" at the text column's position: no header
    expected = registered(store, "classification").predict(texts)["label"].tolist()
    source = tmp_path / "batch.tsv"
    source.write_text("".join(f"{text}\t{n}\tid{n}\n" for n, text in enumerate(texts)))
    output = tmp_path / "out.jsonl"
    assert predict(store, "classification", source, output) == 0
    written = rows(output)
    assert [row["0"] for row in written] == texts
    assert [row["label"] for row in written] == expected
    assert [row["1"] for row in written] == ["0", "1", "2"]
    for header in ("text\tgold\tid\n", "0\t1\t2\n"):  # a header naming the model's column, or the numbered one
        source.write_text(header + "".join(f"{text}\t{n}\tid{n}\n" for n, text in enumerate(texts)))
        assert predict(store, "classification", source, output) == 0
        assert [row["label"] for row in rows(output)] == expected


def test_a_header_naming_other_columns_is_no_record_for_a_model_trained_without_one(store, tmp_path, capsys):
    """``comment,id`` above the texts, for a model trained on files without a header row: its first line was read
    as a record, and the header got a prediction of its own, one row more than the file holds (QA)."""
    source = tmp_path / "batch.csv"
    source.write_text("comment,id\nI love this,1\nnot my thing at all,2\n")
    output = tmp_path / "out.jsonl"
    assert predict(store, "classification", source, output) == 1
    said = capsys.readouterr().err
    assert f"input file {source} has no column 'text'" in said and "the file has 'comment', 'id'" in said
    assert not output.exists()


def test_a_pair_file_without_a_header_row_is_read_by_the_positions_of_both_texts(store, tmp_path):
    pairs = [["1", "He left.", "He went away."], ["0", "It rains.", "The cat sleeps."]]
    expected = registered(store, "pair_classification").predict(
        [[first, second] for _label, first, second in pairs])["label"].tolist()
    source = tmp_path / "pairs.csv"
    source.write_text("".join(",".join(pair) + "\n" for pair in pairs))
    output = tmp_path / "out.jsonl"
    assert predict(store, "pair_classification", source, output) == 0
    written = rows(output)
    assert [(row["1"], row["2"]) for row in written] == [(first, second) for _label, first, second in pairs]
    assert [row["label"] for row in written] == expected


# --- 3. what predict prints besides its answer --------------------------------------------------------------------

def test_predict_names_a_folder_as_a_folder_and_prints_no_prefect_server_guide(store, tmp_path):
    """``--input`` a folder said "does not exist (or is not a file)" of a folder that exists; and every predict
    printed Prefect's "See https://www.prefect.io/docs/... for more information on running a dedicated Prefect
    server." on stderr."""
    command = [sys.executable, "-m", "tuneline.cli", "predict", "-m", f"{MODELS['classification'][0]}@challenger",
               "--tracking-uri", store]
    done = subprocess.run([*command, "--input", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (f"tuneline: input path {tmp_path} is a folder; give one file to predict "
                                            "(--input, or the predict-batch deployment's input_path)"), done.stderr
    source = tmp_path / "texts.csv"
    source.write_text("text\na great movie\n")
    done = subprocess.run([*command, "--input", str(source), "--output", str(tmp_path / "out.jsonl")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Starting temporary server on http://127.0.0.1:" in done.stderr  # what Prefect does, in one line
    assert "prefect.io/docs" not in done.stderr and "dedicated Prefect server" not in done.stderr, done.stderr
    assert len(rows(tmp_path / "out.jsonl")) == 1
