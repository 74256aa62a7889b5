"""What a probe of ``tuneline predict --input`` found: inputs that predict wrote wrongly or read as text.

* An input column that batch prediction writes a value of its own under (``predicted_label`` beside a gold
  ``label``; ``predicted_score``, ``predicted_labels``, ``predicted_entities``; ``model_name``) came out twice in a
  CSV, overwritten by the prediction in JSONL (the input's value lost), and as pyarrow's "Duplicate column names
  found" for Parquet, after the whole model had run. It is refused up front, naming the file and the column(s).
* A text of only invisible characters (zero-width spaces) was predicted on, with a confident label, although it
  reads as empty and the tokenizer drops every character of it; a NER word list that was empty or held an empty word
  was tagged. Both are refused naming the file's line, as an empty text already was.

Every kind is a tiny random head on the conftest BERT, logged and registered by tuneline's own register task into a
SQLite store (the path a training run takes), and predicted by the real command.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from tuneline.cli import main
from tuneline.errors import UserError
from tuneline.kinds import KINDS
from tuneline.tasks.predict_batch import clashing_columns, prediction_columns, read_prediction_inputs
from tuneline.tasks.register import register_model
from tuneline.tracking import RunContext
from tests_support import store_client

TEXTS = ["where is my parcel", "please reset my password"]
#: kind → (registered name, head, labels)
MODELS = {"classification": ("probe-intents", "AutoModelForSequenceClassification", ["billing", "delivery"]),
          "pair_classification": ("probe-pairs", "AutoModelForSequenceClassification", ["0", "1"]),
          "multilabel_classification": ("probe-topics", "AutoModelForSequenceClassification", ["billing", "delivery"]),
          "token_classification": ("probe-ner", "AutoModelForTokenClassification", ["O", "B-PER", "I-PER"])}


def save_head(base: Path, folder: Path, head: str, labels: list[str]) -> Path:
    """A randomly initialised ``head`` on the tiny BERT, saved as tuneline saves a trained model."""
    import torch
    import transformers

    torch.manual_seed(0)
    model = getattr(transformers, head).from_pretrained(
        base, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)})
    model.config.tuneline_max_length = 32
    model.save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return folder


@contextmanager
def store_of_heads(folder: Path, tiny_bert: Path, heads: dict[str, tuple[str, str, list[str], dict[str, str]]]
                   ) -> Iterator[str]:
    """A SQLite store in ``folder`` with one version per kind (``kind -> (name, head, labels, tags)``), tagged with
    its task and ``tags`` and aliased ``challenger`` as a training run registers it; MLflow's URIs restored after."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = store_client(uri)
    experiment = client.create_experiment(folder.name, artifact_location=(folder / "artifacts").as_uri())
    try:
        for kind, (name, head, labels, tags) in heads.items():
            model_dir = save_head(tiny_bert, folder / name, head, labels)
            run = client.create_run(experiment)
            context = RunContext(run_id=run.info.run_id, experiment_id=experiment, tracking_uri=uri,
                                 run_dir=folder / run.info.run_id)
            register_model.fn(model_dir, kind, name, context, {"task": kind, **tags})
        yield uri
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])


def load_challenger(uri: str, name: str) -> mlflow.pyfunc.PyFuncModel:
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.pyfunc.load_model(f"models:/{name}@challenger")


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_bert) -> Iterator[str]:
    """A SQLite store with one version of each kind, tagged with its task and aliased ``challenger`` as a training
    run registers it."""
    heads = {kind: (name, head, labels, {}) for kind, (name, head, labels) in MODELS.items()}
    with store_of_heads(tmp_path_factory.mktemp("predict-probe"), tiny_bert, heads) as uri:
        yield uri


def registered(uri: str, kind: str) -> mlflow.pyfunc.PyFuncModel:
    return load_challenger(uri, MODELS[kind][0])


def predict(uri: str, kind: str, source: Path, output: Path | None = None) -> int:
    """``tuneline predict -m NAME@challenger --input SOURCE [--output OUTPUT]``, its exit status."""
    return main(["predict", "-m", f"{MODELS[kind][0]}@challenger", "--tracking-uri", uri, "--input", str(source),
                 *(["--output", str(output)] if output is not None else [])])


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


# --- 1. input columns the output writes under -------------------------------------------------------------------

#: kind → (input rows, the clashing column(s) in file order, as the message names them)
CLASHES = {
    "classification": ([{"text": t, "label": "billing", "predicted_label": "delivery"} for t in TEXTS],
                       "'predicted_label'"),
    "pair_classification": ([{"text": t, "text_pair": t, "score": 1, "predicted_score": 2} for t in TEXTS],
                            "'predicted_score'"),
    "multilabel_classification": ([{"text": t, "predicted_labels": "x", "model_name": "mine"} for t in TEXTS],
                                  "'predicted_labels', 'model_name'"),
    "token_classification": ([{"tokens": t.split(), "predicted_entities": [], "predicted_tags": "O"} for t in TEXTS],
                             "'predicted_entities', 'predicted_tags'"),
}


@pytest.mark.parametrize("kind", list(CLASHES))
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_an_input_column_the_output_writes_under_is_refused_naming_file_and_column(store, tmp_path, capsys, kind,
                                                                                     suffix):
    """CSV got the column twice, JSONL lost the input's value, Parquet failed after the model had run."""
    rows, named = CLASHES[kind]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    output = tmp_path / f"out{suffix}"
    assert predict(store, kind, source, output) == 1
    err = capsys.readouterr().err
    assert f"tuneline: input file {source} already has column(s) {named}, which batch prediction writes itself" in err
    assert "rename or drop" in err and "Traceback" not in err and "Duplicate column" not in err
    assert len([line for line in err.splitlines() if line.startswith("tuneline:")]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # no output, no temporary file


def test_the_clash_is_found_when_the_file_is_read_before_any_model_is_loaded(tmp_path):
    """``read_prediction_inputs`` never loads a model: the refusal costs no model load and no prediction. The CSV
    the probe used (a gold ``label`` and a ``predicted_label``) and the stdout form of predict are refused alike."""
    source = tmp_path / "gold.csv"
    pd.DataFrame({"text": TEXTS, "label": ["a", "b"], "predicted_label": ["a", "a"]}).to_csv(source, index=False)
    with pytest.raises(UserError, match=rf"^input file {source} already has column\(s\) 'predicted_label', which "
                                        r"batch prediction writes itself \('predicted_label' holds the model's "
                                        r"'label' where the file has its own\); rename or drop it$"):
        read_prediction_inputs.fn(source, "classification")
    both = tmp_path / "both.csv"
    pd.DataFrame({"text": TEXTS, "model_version": ["1", "1"], "predicted_scores": ["", ""]}).to_csv(both, index=False)
    with pytest.raises(UserError, match=r"column\(s\) 'model_version', 'predicted_scores', .*rename or drop them$"):
        read_prediction_inputs.fn(both, "classification")


def test_the_stdout_form_refuses_a_clash_too(store, tmp_path, capsys):
    """``predict --input`` without ``--output`` printed ``{**input, **prediction}``: the input's ``predicted_label``
    was replaced by the prediction."""
    source = tmp_path / "gold.csv"
    pd.DataFrame({"text": TEXTS, "label": ["a", "b"], "predicted_label": ["a", "a"]}).to_csv(source, index=False)
    assert predict(store, "classification", source) == 1
    captured = capsys.readouterr()
    assert "already has column(s) 'predicted_label'" in captured.err and not captured.out.strip()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_columns_named_like_the_predictions_keep_their_values_beside_predicted_ones(store, tmp_path, capsys, suffix):
    """A gold ``label`` (and a ``score`` of the file's own) is no clash: the predictions go to ``predicted_label``
    and ``predicted_score``, the input's values stay, in every output format."""
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": t, "label": "gold", "score": 5} for t in TEXTS])
    output = tmp_path / f"out{suffix}"
    assert predict(store, "classification", source, output) == 0
    written = {".csv": lambda p: pd.read_csv(p, dtype={"model_version": str}),
               ".jsonl": lambda p: pd.read_json(p, lines=True, dtype={"model_version": str}),
               ".parquet": pd.read_parquet}[suffix](output)
    assert list(written.columns) == ["text", "label", "score", "predicted_label", "predicted_score", "scores",
                                     "model_name", "model_version"]
    expected = registered(store, "classification").predict(TEXTS)
    assert list(written["label"]) == ["gold", "gold"] and [int(s) for s in written["score"]] == [5, 5]
    assert list(written["predicted_label"]) == list(expected["label"])
    assert list(written["predicted_score"]) == pytest.approx(list(expected["score"]), abs=1e-6)


@pytest.mark.parametrize("kind, example", [
    ("classification", TEXTS),
    ("pair_classification", pd.DataFrame({"text": TEXTS, "text_pair": TEXTS})),
    ("multilabel_classification", TEXTS),
    ("token_classification", [t.split() for t in TEXTS]),
])
def test_each_kinds_prediction_columns_are_what_its_registered_model_returns(store, kind, example):
    """The clash check reads the pyfunc file's ``OUTPUT_COLUMNS``: they must be the columns a registered model of
    that kind actually returns."""
    assert list(registered(store, kind).predict(example).columns) == list(prediction_columns(KINDS[kind]))
    module = importlib.import_module(f"tuneline.pyfunc.{Path(KINDS[kind].pyfunc_file).stem}")
    assert prediction_columns(KINDS[kind]) == module.OUTPUT_COLUMNS


def test_an_echoed_model_column_is_no_clash():
    """NER returns ``text`` and ``tokens`` as well: the one the file gave the model is dropped from the output, so a
    ``predicted_tokens`` column in a file of ``tokens`` is kept, while in a file of raw ``text`` it is refused."""
    ner = KINDS["token_classification"]
    assert clashing_columns(ner, ["tokens"], ["tokens", "predicted_tokens", "predicted_text"]) == ["predicted_text"]
    assert clashing_columns(ner, ["text"], ["text", "predicted_tokens", "predicted_text"]) == ["predicted_tokens"]


# --- 2. texts and word lists that are no input --------------------------------------------------------------------

@pytest.mark.parametrize("invisible", ["\u200b", "\u200b\u200c\u200d", " \ufeff\u2060 ", "\u00ad"])
def test_a_text_of_only_invisible_characters_is_refused_naming_its_line(store, tmp_path, capsys, invisible):
    """It was predicted on (a label and a score for what reads as an empty cell), while an empty text is refused."""
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": ["r0", "r1", "r2"], "text": [TEXTS[0], invisible, TEXTS[1]]}).to_csv(source, index=False)
    says = f"input file {source}: the record on line 3 has no visible text in column 'text'"
    with pytest.raises(UserError, match=rf"^{says} \(only invisible characters: .*\); every row needs some text"):
        read_prediction_inputs.fn(source, "classification")
    output = tmp_path / "out.jsonl"
    assert predict(store, "classification", source, output) == 1
    assert says in capsys.readouterr().err and not output.exists()
    assert predict(store, "classification", source) == 1  # and printed to stdout: the same refusal, nothing printed
    captured = capsys.readouterr()
    assert says in captured.err and not captured.out.strip()


def test_an_invisible_second_text_and_raw_ner_text_are_refused_too(tmp_path):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"text": TEXTS[0], "text_pair": "\u200b"}])
    with pytest.raises(UserError, match=r"line 1 has no visible text in column 'text_pair'"):
        read_prediction_inputs.fn(pairs, "pair_classification")
    raw = write_jsonl(tmp_path / "raw.jsonl", [{"text": "John lives"}, {"text": "\u2060"}])
    with pytest.raises(UserError, match=r"line 2 has no visible text in column 'text'"):
        read_prediction_inputs.fn(raw, "token_classification")


def test_an_empty_text_keeps_its_message_and_visible_text_with_invisible_characters_is_predicted(store, tmp_path,
                                                                                                   capsys):
    """The existing policy for an empty cell is unchanged; a zero-width character inside a real text is no reason
    to refuse it (training keeps such a text, and so does the model)."""
    empty = write_jsonl(tmp_path / "empty.jsonl", [{"text": TEXTS[0]}, {"text": "  "}])
    with pytest.raises(UserError, match=r"line 2 has no value in column 'text' \(empty or only spaces\)"):
        read_prediction_inputs.fn(empty, "classification")
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [{"text": "where\u200b is my parcel"}])
    output = tmp_path / "out.jsonl"
    assert predict(store, "classification", mixed, output) == 0
    row = json.loads(output.read_text())
    assert row["label"] == registered(store, "classification").predict(["where\u200b is my parcel"])["label"][0]


@pytest.mark.parametrize("tokens, what", [
    ([], "an empty word list"),
    (["John", ""], r"an empty word at position 1 \(''\)"),
    (["John", "  "], r"an empty word at position 1 \('  '\)"),
    (["John", "\u200b"], r"an empty word at position 1 \('\\u200b'; invisible characters alone are no word\)"),
])
def test_an_empty_ner_word_list_or_word_is_refused_naming_its_line(store, tmp_path, capsys, tokens, what):
    """Training quarantines such sentences (``no_empty_tokens``); predict tagged them ('O' for the empty word, an
    empty row for the empty list, which reads as "no entities")."""
    source = write_jsonl(tmp_path / "in.jsonl", [{"tokens": ["John", "Smith"]}, {"tokens": tokens}])
    says = rf"input file {source}: the record on line 2 has {what} in column 'tokens'"
    with pytest.raises(UserError, match=rf"^{says}; every row needs at least one word"):
        read_prediction_inputs.fn(source, "token_classification")
    output = tmp_path / "tags.jsonl"
    assert predict(store, "token_classification", source, output) == 1
    err = capsys.readouterr().err
    assert "the record on line 2 has" in err and "in column 'tokens'" in err and not output.exists()


# --- 4. plain text and CoNLL input files ---------------------------------------------------------------------------

def test_a_text_file_of_one_text_a_line_is_predicted_line_by_line(store, tmp_path, capsys):
    """A .txt file (what `cut -f2` or a hand-written list gives) was refused as "conll, which cannot hold the rows of
    a classification model"; each line is a text, and the answers line up with the lines."""
    source = tmp_path / "texts.txt"
    source.write_text("\ufeff" + "\n".join(TEXTS) + "\n\n")
    output = tmp_path / "out.csv"
    assert predict(store, "classification", source, output) == 0
    written = pd.read_csv(output)
    assert written["text"].tolist() == TEXTS
    expected = registered(store, "classification").predict(TEXTS)
    assert written["label"].tolist() == expected["label"].tolist()
    capsys.readouterr()
    source.write_text(f"{TEXTS[0]}\n\n{TEXTS[1]}\n")  # a blank line between texts would shift every later answer
    assert predict(store, "classification", source, output) == 1
    assert f"input file {source}: line 2 is blank between texts" in capsys.readouterr().err


def test_a_table_read_as_lines_is_refused_at_its_header(tmp_path):
    """``--format lines`` on a CSV predicted its header ``text,label`` as a text and every record's label as part
    of its text, without a word; a header naming the model's column on line 1 is refused, saying what to give."""
    table = tmp_path / "reviews.csv"
    table.write_text("text,label\ngreat film,pos\ndull,neg\n")
    with pytest.raises(UserError, match=r"reviews.csv: line 1 \('text,label'\) is a header naming the column 'text'.*"
                                        r"other fields of every line.*give --format csv or tsv"):
        read_prediction_inputs.fn(table, "classification", input_format="lines")
    assert read_prediction_inputs.fn(table, "classification").frame["text"].tolist() == ["great film", "dull"]
    single = tmp_path / "texts.txt"  # a one-column export: its header alone
    single.write_text("Sentence\ngreat film\n")
    with pytest.raises(UserError, match="line 1 .* naming the column 'sentence'"):
        read_prediction_inputs.fn(single, "classification", trained_columns=(("text", "sentence"),))
    single.write_text("the text was great, really\ntext messages, mostly\n")  # texts that merely hold the word
    assert len(read_prediction_inputs.fn(single, "classification").frame) == 2


def test_an_ner_conll_file_of_words_is_tagged_per_sentence_and_keeps_its_gold_tags(store, tmp_path, capsys):
    sentences = [["John", "Smith", "visited", "Paris"], ["He", "left", "."]]
    words_only = tmp_path / "words.txt"
    words_only.write_text("-DOCSTART-\n\n" + "\n\n".join("\n".join(s) for s in sentences) + "\n")
    output = tmp_path / "tagged.jsonl"
    assert predict(store, "token_classification", words_only, output) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["tokens"] for row in rows] == sentences
    expected = registered(store, "token_classification").predict(sentences)
    assert [row["tags"] for row in rows] == [list(tags) for tags in expected["tags"]]
    assert all(len(row["tags"]) == len(row["tokens"]) for row in rows)

    gold = tmp_path / "gold.conll"  # a test file with its tags: they stay beside the predicted ones
    gold.write_text("John B-PER\nSmith I-PER\nvisited O\nParis O\n\nHe O\nleft O\n. O\n")
    assert predict(store, "token_classification", gold, output) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert rows[0]["tags"] == ["B-PER", "I-PER", "O", "O"]
    assert [row["predicted_tags"] for row in rows] == [list(tags) for tags in expected["tags"]]

    pos = tmp_path / "pos.conll"  # words and part-of-speech tags: no gold, the predictions are the tags
    pos.write_text("John NNP\nSmith NNP\nvisited VBD\nParis NNP\n\nHe PRP\nleft VBD\n. .\n")
    assert predict(store, "token_classification", pos, output) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["tags"] for row in rows] == [list(tags) for tags in expected["tags"]]
    assert rows[0]["input_tags"] == ["NNP", "NNP", "VBD", "NNP"] and "predicted_tags" not in rows[0]

    # chunk tags (CoNLL-2000, CoNLL-2003's third column) look like entity tags but name types the model has no tag
    # for: no gold either (they were kept as gold 'tags', the model's answer moved to 'predicted_tags')
    chunks = tmp_path / "chunks.conll"
    chunks.write_text("John B-NP\nSmith I-NP\nvisited B-VP\nParis B-NP\n\nHe B-NP\nleft B-VP\n. O\n")
    assert predict(store, "token_classification", chunks, output) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["tags"] for row in rows] == [list(tags) for tags in expected["tags"]]
    assert rows[0]["input_tags"] == ["B-NP", "I-NP", "B-VP", "B-NP"] and "predicted_tags" not in rows[0]


def test_chunk_tags_are_told_from_gold_entity_tags_by_the_models_own_types():
    from tuneline.tasks.predict_batch import foreign_entity_tags

    model = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    assert foreign_entity_tags([["B-NP", "I-NP", "O"], ["B-VP"]], model) == ["NP", "VP"]
    assert foreign_entity_tags([["B-PER", "O"], ["b-loc"]], model) == []       # gold, in any spelling
    assert foreign_entity_tags([["B-PER", "B-MISC"], ["O"]], model) == []       # a few unknown types: still gold
    assert foreign_entity_tags([["B-NP"]], None) == []                          # the model does not say: as before
    assert foreign_entity_tags([["O", "O"]], model) == []


def test_a_text_file_for_ner_without_sentence_breaks_is_one_text_a_line_and_format_overrides(store, tmp_path):
    from tuneline.tasks.predict_batch import read_prediction_inputs

    lines = tmp_path / "texts.txt"
    lines.write_text("John Smith visited Paris\nHe left\n")
    read = read_prediction_inputs.fn(lines, "token_classification")
    assert read.frame["text"].tolist() == ["John Smith visited Paris", "He left"]
    one_sentence = tmp_path / "one-sentence.txt"  # one word a line and no blank line: one text a line, unless told
    one_sentence.write_text("John\nSmith\nleft\n")
    assert read_prediction_inputs.fn(one_sentence, "token_classification").frame["text"].tolist() == [
        "John", "Smith", "left"]
    as_conll = read_prediction_inputs.fn(one_sentence, "token_classification", input_format="conll")
    assert as_conll.frame["tokens"].tolist() == [["John", "Smith", "left"]]
    with pytest.raises(UserError, match="is read as lines, which cannot hold the rows of a pair_classification"):
        read_prediction_inputs.fn(lines, "pair_classification")


@pytest.mark.parametrize("content", ["Export of 2026-12-01\ntext,label\ngreat movie,pos\nawful plot,neg\n",
                                     "Export of 2026-12-01,,\nid,text,label\n1,great movie,pos\n2,awful plot,neg\n",
                                     # a blank line under the title (README QA: said "line 2 is blank ... remove it")
                                     "Export of 2026-12-01\n\ntext,label\ngreat movie,pos\nawful plot,neg\n"])
def test_a_title_line_above_the_header_is_named_with_the_line_that_holds_the_columns(tmp_path, content):
    """A spreadsheet export's title above the header: predict said the records were unreadable, or that there was
    no 'text' column, and nothing about the line below that names it."""
    from tuneline.tasks.predict_batch import read_prediction_inputs

    source = tmp_path / "export.csv"
    source.write_text(content)
    header = 3 if "\n\n" in content else 2
    with pytest.raises(UserError, match=rf"line {header} names the columns 'text': the header is read from line 1, "
                                        rf"so give --skip-lines {header - 1} \(or delete the {header - 1} line\(s\) "
                                        rf"above line {header}\)"):
        read_prediction_inputs.fn(source, "classification")
    skipped = read_prediction_inputs.fn(source, "classification", skip_lines=header - 1)  # as the message says
    assert skipped.frame["text"].tolist() == ["great movie", "awful plot"]
    assert skipped.lines == [header + 1, header + 2]


@pytest.mark.parametrize("content", ["text\ngood movie\nnice one\ntext\nbad film\n",
                                     "text,label\ngood movie,pos\nnice one,pos\ntext,label\nbad film,neg\n"])
def test_a_header_repeated_below_the_records_is_named_as_a_line_to_delete_not_a_title(tmp_path, content):
    """Files joined with ``cat`` repeat their header. QA: predict blamed the top of the file ("give --skip-lines 3"),
    and following that advice silently dropped the records above the repeated header."""
    from tuneline.tasks.predict_batch import read_prediction_inputs

    source = tmp_path / "joined.csv"
    source.write_text(content)
    with pytest.raises(UserError) as refused:
        read_prediction_inputs.fn(source, "classification")
    assert str(refused.value) == (f"input file {source}: line 4 repeats the header of line 1 (files joined with cat "
                                  "repeat theirs): delete line 4, then every row gets a prediction")
    source.write_text(content.replace("\ntext\n", "\n").replace("\ntext,label\n", "\n"))  # as it says
    assert read_prediction_inputs.fn(source, "classification").frame["text"].tolist() == [
        "good movie", "nice one", "bad film"]


def test_skip_lines_reads_an_export_below_its_title_end_to_end(store, tmp_path, capsys):
    """``--skip-lines N``: the title lines of an export skipped, in the batch path (``-o``) and the printed one; a
    blank line between records is still found below them; a format with no header refuses it."""
    source = tmp_path / "export.csv"
    source.write_text("Tickets export\nrun 2026-12-01\ntext,id\n" + "".join(f"{t},{i}\n" for i, t in enumerate(TEXTS)))
    output = tmp_path / "out.csv"
    assert predict(store, "classification", source, output) == 1
    assert "give --skip-lines 2" in capsys.readouterr().err
    args = ["predict", "-m", f"{MODELS['classification'][0]}@challenger", "--tracking-uri", store, "--input",
            str(source), "--skip-lines", "2"]
    assert main([*args, "--output", str(output)]) == 0
    written = pd.read_csv(output)
    assert written["text"].tolist() == TEXTS and written["id"].tolist() == list(range(len(TEXTS)))
    assert written["label"].tolist() == registered(store, "classification").predict(TEXTS)["label"].tolist()
    capsys.readouterr()
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert all(text in printed for text in TEXTS) and "Tickets export" not in printed
    source.write_text("Tickets export\ntext\n" + TEXTS[0] + "\n\n" + TEXTS[1] + "\n")
    assert main([*args[:-1], "1", "--output", str(output)]) == 1
    assert "line 4 is blank" in capsys.readouterr().err
    # a blank line under the title, above the header, is no gap between records: the header's line is named
    source.write_text("Tickets export\n\ntext\n" + "".join(f"{t}\n" for t in TEXTS))
    for printed_or_written in ([], ["--output", str(output)]):
        assert main([*args[:-2], *printed_or_written]) == 1
        err = capsys.readouterr().err
        assert "line 3 names the columns 'text'" in err and "give --skip-lines 2" in err, err
    lines = tmp_path / "texts.txt"
    lines.write_text("\n".join(TEXTS) + "\n")
    assert main([*args[:5], "--input", str(lines), "--skip-lines", "1"]) == 1
    assert "--skip-lines is for CSV, TSV and XLSX input" in capsys.readouterr().err


def test_a_long_value_in_a_message_is_cut_before_it_is_quoted():
    """`{value!r:.60}` cut the quoted form: an unclosed quote or half an escape read as broken data."""
    from tuneline.errors import excerpt

    long = "caf\u00e9 au lait\t" * 20
    shown = excerpt(long)
    assert shown.startswith("'caf\u00e9 au lait\\t") and shown.endswith("'…") and len(shown) <= 60
    assert excerpt("short") == "'short'" and excerpt(42) == "42"
    assert excerpt(["word"] * 40, 30).endswith("…") and len(excerpt(["word"] * 40, 30)) == 30


def test_a_word_list_in_a_text_column_is_quoted_whole_or_cut_cleanly(tmp_path):
    from tuneline.tasks.predict_batch import read_prediction_inputs

    source = write_jsonl(tmp_path / "rows.jsonl", [{"text": ["a", "list", "of", "many", "words"] * 20}])
    with pytest.raises(UserError) as refused:
        read_prediction_inputs.fn(source, "classification")
    message = str(refused.value)
    assert "on line 1 has ['a', 'list'," in message and "…" in message and "', 'wo in" not in message


def test_input_files_predict_cannot_name_say_what_to_give_predict_not_the_training_config(tmp_path):
    """The readers' advice names the training config (data.format, data.encoding); predict has --format and
    --encoding."""
    from tuneline.tasks.predict_batch import read_prediction_inputs

    unnamed = tmp_path / "rows.dat"
    unnamed.write_text("text\nhello\n")
    with pytest.raises(UserError, match=r"cannot tell the format of input file .*rows\.dat from its name; give "
                                        r"--format \(csv, tsv, jsonl, parquet, xlsx, conll, lines"):
        read_prediction_inputs.fn(unnamed, "classification")
    assert read_prediction_inputs.fn(unnamed, "classification", input_format="csv").frame["text"].tolist() == [
        "hello"]
    workbook = tmp_path / "rows.xls"  # legacy Excel: not read (.xlsx is)
    workbook.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(UserError, match=r"spreadsheet workbook in a format tuneline does not read \(it reads \.xlsx\)"):
        read_prediction_inputs.fn(workbook, "classification")
    broken = tmp_path / "rows.xlsx"
    broken.write_bytes(b"PK\x03\x04")
    with pytest.raises(UserError, match=r"cannot read .*rows\.xlsx as an Excel workbook"):
        read_prediction_inputs.fn(broken, "classification")
    latin = tmp_path / "texts.txt"
    latin.write_bytes("caf\u00e9 cr\u00e8me\nna\u00efve\n".encode("cp1252"))
    with pytest.raises(UserError) as refused:
        read_prediction_inputs.fn(latin, "classification")
    assert "--encoding" in str(refused.value) and "data.encoding" not in str(refused.value)
    assert read_prediction_inputs.fn(latin, "classification", encoding="cp1252").frame["text"].tolist() == [
        "caf\u00e9 cr\u00e8me", "na\u00efve"]


def test_a_text_of_only_invisible_characters_is_refused_from_arguments_and_stdin_too(store, capsys, monkeypatch):
    """--input refused it; the same text as an argument or a stdin line was answered with a label."""
    import io

    model = ["predict", "-m", f"{MODELS['classification'][0]}@challenger", "--tracking-uri", store]
    assert main([*model, "fine", "\u200b"]) == 1
    assert "text 2 on the command line has no visible text (only invisible characters: '\\u200b')" in \
        capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("good\n\u200b\u200d\n"))
    assert main(model) == 1
    assert "text 2 on stdin has no visible text" in capsys.readouterr().err


def test_a_conll_file_mixing_tagged_and_untagged_words_names_the_sentence_and_no_training_key(tmp_path):
    from tuneline.tasks.predict_batch import read_prediction_inputs

    mixed = tmp_path / "mixed.conll"
    mixed.write_text("John B-PER\nlives O\n\nTom\nleft\n\nMary B-PER\n")
    with pytest.raises(UserError) as refused:
        read_prediction_inputs.fn(mixed, "token_classification")
    message = str(refused.value)
    assert "first at the sentence starting at line 4 (conll_line_has_no_tag_column: in this sentence, line 4 ('Tom') has 1 field(s)" \
        in message and "data.conll_tag_column" not in message
    assert "with its tag after it on every line or on none" in message


def test_stdin_lines_are_cut_and_decoded_as_an_input_file_is(monkeypatch):
    """Read from stdin, a lone \\r inside a line (a cell "a\\rb" that pandas writes unquoted) split it into two
    inputs, every later prediction one line off; UTF-8 under --encoding latin-1 read as 'cafÃ©' without a word; a
    DOS end-of-file mark was an input. ``--input`` files did all three right."""
    import io

    from tuneline.cli import _stdin_lines

    def stdin(data: bytes) -> None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))

    stdin(b"first parcel lost\rsecond half\ncharged twice\r\nthird\n\x1a")
    assert _stdin_lines("utf-8") == ["first parcel lost second half", "charged twice", "third"]
    stdin("café parcel\nrésumé bill\n".encode("utf-8"))
    with pytest.raises(UserError, match=r"^stdin is UTF-8, not latin-1 .*: leave --encoding out"):
        _stdin_lines("latin-1")
    stdin(b"caf\xe9 parcel\n" + "résumé bill\n".encode("utf-8"))  # a cp1252 stream with a UTF-8 line pasted in
    assert _stdin_lines("cp1252") == ["café parcel", "résumé bill"]


def test_a_read_error_of_predict_names_predict_options_not_the_training_config(tmp_path):
    """predict takes no config, yet a header-only file was told "set data.header: false" and a broken Parquet file
    "set data.format"."""
    header_only = tmp_path / "hdr.csv"
    header_only.write_text("text\n")
    with pytest.raises(UserError, match=r"has a header \(line 1\) but no data records; give a file with at least one "
                                        r"record below the header$"):
        read_prediction_inputs.fn(header_only, "classification")
    broken = tmp_path / "bad.parquet"
    broken.write_bytes(b"PAR1garbagePAR1")
    with pytest.raises(UserError) as refused:
        read_prediction_inputs.fn(broken, "classification")
    assert str(refused.value).endswith("check the file or give --format") and "data." not in str(refused.value)


def test_a_headerless_file_for_a_model_trained_without_headers_is_read_by_position(tmp_path):
    """A model trained on GoEmotions' layout (``data.header: false``, columns named '0', '1', ...) and its own dev
    file given to predict: "the file has 'Is this in New Orleans?? ...', '27', 'edgurhb'" and "rename the column",
    though the file has no header to rename (loop QA); then "put a header line above the records" (data QA): the
    file is now read as the training data was, by position."""
    dev = tmp_path / "dev5.tsv"
    dev.write_text("Is this in New Orleans??\t27\tedgurhb\nI love it\t0\teeu1x\n")
    inputs = read_prediction_inputs.fn(dev, "multilabel_classification", trained_columns=(("text", "0"),))
    assert inputs.frame["text"].tolist() == ["Is this in New Orleans??", "I love it"]
    assert inputs.frame["1"].tolist() == ["27", "0"] and inputs.lines == [1, 2]
    assert inputs.file_names == {"text": "0"}
