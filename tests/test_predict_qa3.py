"""What two exploratory QA sessions of ``tuneline predict`` with users' own files found.

1. A gold column spelled ``Label`` (or `` LABEL ``) was no clash: the output had ``Label`` and ``label``, and training
   on it with ``label_column: label`` (headers read case- and space-insensitively) took the PREDICTION as gold.
2. The training data's column names (``review``) were matched exactly: ``Review`` was refused.
3. A title line above a header spelled as the training data did was not found (no ``--skip-lines N``).
4. A missing value was reported under the model's column name (``text_pair``), not the file's (``question2``).
5. A CoNLL file named ``.tsv`` for an NER model said "line 10 is blank" or "duplicate column names ['-X-']".
6. Chunk tags in a CoNLL input came out as ``tags`` on stdout but as ``input_tags`` with ``-o``.
7. A Parquet file pandas wrote with a non-default index leaked ``__index_level_0__`` into the output.

Every model is a tiny random head on the conftest BERT, registered by tuneline's own register task with the version
tags a training run gives it (``column.*``: the training data's column names), and predicted by the real command.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from test_predict_probe import load_challenger, store_of_heads
from tuneline.cli import main
from tuneline.errors import UserError
from tuneline.tasks.predict_batch import clashing_columns, read_prediction_inputs

TEXTS = ["where is my parcel", "please reset my password"]
#: kind → (registered name, head, labels, the training data's column names)
MODELS = {"classification": ("qa3-reviews", "AutoModelForSequenceClassification", ["neg", "pos"],
                             {"text": "review"}),
          "pair_classification": ("qa3-qqp", "AutoModelForSequenceClassification", ["0", "1"],
                                  {"text": "question1", "text_pair": "question2"}),
          "token_classification": ("qa3-ner", "AutoModelForTokenClassification",
                                   ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], {})}
TRAINED = {kind: tuple(sorted(columns.items())) for kind, (_, _, _, columns) in MODELS.items()}


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_bert) -> Iterator[str]:
    """A SQLite store with one version of each kind, tagged with its task and training column names, aliased
    ``challenger`` as a training run registers it."""
    heads = {kind: (name, head, labels, {f"column.{column}": given for column, given in columns.items()})
             for kind, (name, head, labels, columns) in MODELS.items()}
    with store_of_heads(tmp_path_factory.mktemp("predict-qa3"), tiny_bert, heads) as uri:
        yield uri


def registered(uri: str, kind: str) -> mlflow.pyfunc.PyFuncModel:
    return load_challenger(uri, MODELS[kind][0])


def predict(uri: str, kind: str, source: Path, output: Path | None = None, *options: str) -> int:
    """``tuneline predict -m NAME@challenger --input SOURCE [--output OUTPUT] [OPTIONS]``, its exit status."""
    return main(["predict", "-m", f"{MODELS[kind][0]}@challenger", "--tracking-uri", uri, "--input", str(source),
                 *(["--output", str(output)] if output is not None else []), *options])


def printed_rows(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


# --- 1. a prediction column named like an input column in another spelling ----------------------------------------

@pytest.mark.parametrize("gold, suffix", [("Label", ".csv"), ("LABEL", ".csv"), (" label ", ".jsonl")])
def test_a_gold_column_in_another_spelling_keeps_its_values_and_the_prediction_is_predicted_label(store, tmp_path,
                                                                                                  capsys, gold,
                                                                                                  suffix):
    """Training reads `Label` as its `label` column: the output's own `label` beside it was read as the gold. (A CSV
    header's spaces are stripped by the reader; a JSONL key keeps them.)"""
    source = tmp_path / f"gold{suffix}"
    frame = pd.DataFrame({"Text": TEXTS, gold: ["pos", "neg"]})
    if suffix == ".csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_json(source, orient="records", lines=True)
    expected = registered(store, "classification").predict(TEXTS)["label"].tolist()
    output = tmp_path / "out.csv"
    assert predict(store, "classification", source, output) == 0
    written = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert list(written.columns) == ["Text", gold, "predicted_label", "score", "scores", "model_name",
                                     "model_version"]
    assert written[gold].tolist() == ["pos", "neg"] and written["predicted_label"].tolist() == expected
    capsys.readouterr()
    assert predict(store, "classification", source) == 0  # printed: the same names
    rows = printed_rows(capsys)
    assert [row[gold] for row in rows] == ["pos", "neg"] and [row["predicted_label"] for row in rows] == expected
    assert all("label" not in row for row in rows)


def test_a_reserved_column_in_another_spelling_is_refused_before_the_model_loads(tmp_path):
    source = tmp_path / "again.csv"
    pd.DataFrame({"text": TEXTS, "Predicted_Label": ["a", "b"], "Model_Version": ["1", "1"]}).to_csv(source,
                                                                                                     index=False)
    with pytest.raises(UserError, match=r"already has column\(s\) 'Predicted_Label', 'Model_Version', which batch "
                                        r"prediction writes itself \('Predicted_Label' holds the model's 'label' "
                                        r"where the file has its own; 'Model_Version' names the model"):
        read_prediction_inputs.fn(source, "classification")
    from tuneline.kinds import KINDS

    assert clashing_columns(KINDS["classification"], ["text"], ["text", " PREDICTED_score", "label"]) == [
        " PREDICTED_score"]


# --- 2. and 3. the training data's names, in any spelling, and below a title ----------------------------------------

def test_the_training_datas_column_name_is_matched_in_any_spelling(store, tmp_path):
    source = tmp_path / "reviews.csv"
    source.write_text("Review,n\ngreat fun,1\nawful plot,2\n")
    read = read_prediction_inputs.fn(source, "classification", trained_columns=TRAINED["classification"])
    assert read.frame["text"].tolist() == ["great fun", "awful plot"] and read.file_names == {"text": "Review"}
    output = tmp_path / "out.jsonl"
    assert predict(store, "classification", source, output) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    expected = registered(store, "classification").predict(["great fun", "awful plot"])["label"].tolist()
    assert [row["Review"] for row in rows] == ["great fun", "awful plot"] and "text" not in rows[0]
    assert [row["label"] for row in rows] == expected and [row["n"] for row in rows] == ["1", "2"]


@pytest.mark.parametrize("header", ["review,n", "REVIEW,n"])
def test_a_title_above_a_header_of_the_training_datas_names_is_named_with_skip_lines(tmp_path, header):
    source = tmp_path / "export.csv"
    source.write_text(f"My export 2026\n{header}\ngreat fun,1\n")
    with pytest.raises(UserError, match=r"line 2 names the columns 'review': the header is read from line 1, so give "
                                        r"--skip-lines 1 \(or delete the 1 line\(s\) above line 2\)"):
        read_prediction_inputs.fn(source, "classification", trained_columns=TRAINED["classification"])
    read = read_prediction_inputs.fn(source, "classification", trained_columns=TRAINED["classification"],
                                     skip_lines=1)
    assert read.frame["text"].tolist() == ["great fun"]


def test_a_workbook_title_above_the_training_datas_names_is_named_with_skip_lines(tmp_path):
    pytest.importorskip("openpyxl")
    source = tmp_path / "export.xlsx"
    pd.DataFrame([["My export 2026", None], ["Question1", "question2"], ["is it", "is it not"]]).to_excel(
        source, index=False, header=False)
    with pytest.raises(UserError, match=r"has no column 'text', .*; line 2 names the columns 'question1', "
                                        r"'question2': .* give --skip-lines 1"):
        read_prediction_inputs.fn(source, "pair_classification", trained_columns=TRAINED["pair_classification"])
    read = read_prediction_inputs.fn(source, "pair_classification", trained_columns=TRAINED["pair_classification"],
                                     skip_lines=1)
    assert read.frame[["text", "text_pair"]].values.tolist() == [["is it", "is it not"]]


# --- 4. a missing value named by the file's column --------------------------------------------------------------

def test_a_missing_value_is_named_by_the_files_own_column(store, tmp_path, capsys):
    qqp = tmp_path / "qqp.tsv"
    qqp.write_text("id\tquestion1\tquestion2\n1\tis it\tis it not\n2\twhy\t \n")
    assert predict(store, "pair_classification", qqp, tmp_path / "out.csv") == 1
    err = capsys.readouterr().err
    assert (f"tuneline: input file {qqp}: the record on line 3 has no value in column 'question2' (empty or only "
            "spaces); every row needs one (fill it or drop the row)") in err and "Traceback" not in err
    both = tmp_path / "both.tsv"  # the first empty record by line, and how many: line 4 was named, then line 3
    both.write_text("id\tquestion1\tquestion2\n1\tis it\tis it not\n2\tonly left\t \n3\t\tonly right\n4\ta\t\n")
    with pytest.raises(UserError, match=r"the record on line 3 has no value in column 'question2' \(empty or only "
                                        r"spaces\) \(3 records lack one; the others are on lines 4, 5\); every row"):
        read_prediction_inputs.fn(both, "pair_classification", trained_columns=TRAINED["pair_classification"])
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("Text,n\ngreat,1\n\u200b,2\n")
    with pytest.raises(UserError, match=r"line 3 has no visible text in column 'Text' \(only invisible"):
        read_prediction_inputs.fn(reviews, "classification")


# --- 5. a CoNLL file named .tsv ---------------------------------------------------------------------------------

CONLL_2003 = ("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n"
              "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\nBRUSSELS NNP B-NP B-LOC\n")


@pytest.mark.parametrize("content", [
    CONLL_2003.replace(" ", "\t"),
    "John\tB-PER\nSmith\tI-PER\nleft\tO\n\nHe\tO\nleft\tO\n.\tO\n\nParis\tB-LOC\n",
    "-DOCSTART-\tO\n\nEU\tB-ORG\nrejects\tO\n\nPeter\tB-PER\nBlackburn\tI-PER\n"])
def test_a_conll_file_named_tsv_for_a_tagger_says_to_give_format_conll(store, tmp_path, capsys, content):
    source = tmp_path / "eng.testb.tsv"
    source.write_text(content)
    assert predict(store, "token_classification", source, tmp_path / "out.jsonl") == 1
    err = capsys.readouterr().err
    assert f"tuneline: input file {source} reads as a CoNLL file (a word a line, a blank line between sentences), " \
           f"not a table: line 1 (" in err, err
    assert "give --format conll to tag its words" in err and "Traceback" not in err
    assert "remove the line or fill it" not in err and "duplicate" not in err
    if content.startswith("-DOCSTART-\t-X-"):
        assert err == (f"tuneline: input file {source} reads as a CoNLL file (a word a line, a blank line between "
                       "sentences), not a table: line 1 ('-DOCSTART-\\t-X-\\t-X-\\tO') names no column a "
                       "token_classification model reads ('tokens', 'text') and line 2 is blank between sentences; "
                       "give --format conll to tag its words\n")
    assert predict(store, "token_classification", source, tmp_path / "out.jsonl", "--format", "conll") == 0


def test_a_tsv_table_for_a_tagger_is_still_read_as_a_table(tmp_path):
    source = tmp_path / "texts.tsv"
    source.write_text("text\tid\nJohn Smith left\t1\nHe left\t2\n")
    assert read_prediction_inputs.fn(source, "token_classification").frame["text"].tolist() == [
        "John Smith left", "He left"]
    missing = tmp_path / "no-text.tsv"  # no CoNLL layout (no blank line between groups): the column message stays
    missing.write_text("sentence\tid\nJohn Smith left\t1\n")
    with pytest.raises(UserError, match="has no column 'tokens'"):
        read_prediction_inputs.fn(missing, "token_classification")


# --- 6. chunk tags: one layout with and without -o ----------------------------------------------------------------

def test_chunk_tags_are_input_tags_printed_as_written(store, tmp_path, capsys):
    chunks = tmp_path / "chunks.conll"
    chunks.write_text("John NNP B-NP\nSmith NNP I-NP\nvisited VBD B-VP\nParis NNP B-NP\n\nHe PRP B-NP\nleft VBD B-VP\n")
    expected = [list(tags) for tags in registered(store, "token_classification").predict(
        [["John", "Smith", "visited", "Paris"], ["He", "left"]])["tags"]]
    output = tmp_path / "out.jsonl"
    assert predict(store, "token_classification", chunks, output) == 0
    written = [json.loads(line) for line in output.read_text().splitlines()]
    capsys.readouterr()
    assert predict(store, "token_classification", chunks) == 0
    printed = printed_rows(capsys)
    for rows in (written, printed):
        assert [row["input_tags"] for row in rows] == [["B-NP", "I-NP", "B-VP", "B-NP"], ["B-NP", "B-VP"]]
        assert [row["tags"] for row in rows] == expected and "predicted_tags" not in rows[0]
    assert [list(row) for row in printed] == [[c for c in row if c not in ("model_name", "model_version")]
                                              for row in written]


# --- 7. pandas' index in a Parquet file -------------------------------------------------------------------------

def test_pandas_index_column_of_a_parquet_file_is_no_input_column(store, tmp_path, capsys):
    source = tmp_path / "filtered.parquet"
    frame = pd.DataFrame({"text": [TEXTS[0], "drop me", *TEXTS[1:], "track my order"], "id": [0, 1, 2, 3]})
    kept = frame[frame["id"] != 1]  # a filtered frame: its index (0, 2, 3), no range, is stored as a column
    kept.to_parquet(source)
    import pyarrow.parquet as pq

    assert "__index_level_0__" in pq.read_schema(source).names  # what pyarrow (and tuneline's reader) sees
    read = read_prediction_inputs.fn(source, "classification")
    assert list(read.frame.columns) == ["text", "id"]
    output = tmp_path / "out.parquet"
    assert predict(store, "classification", source, output) == 0
    written = pd.read_parquet(output)
    assert list(written.columns) == ["text", "id", "label", "score", "scores", "model_name", "model_version"]
    assert written["text"].tolist() == kept["text"].tolist() and written["id"].tolist() == [0, 2, 3]
    capsys.readouterr()
    assert predict(store, "classification", source) == 0
    assert all("__index_level_0__" not in row for row in printed_rows(capsys))
