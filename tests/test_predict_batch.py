"""Batch prediction: one resolved version for every row, the input's rows in order, and an all-or-nothing file.

A tiny classifier and a tiny NER tagger are trained and registered once for the module (a few steps: the numbers
do not matter here, only that the file holds exactly what the registered pyfunc says for the same rows).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from conftest import working_in
from kind_examples import EXAMPLES
from tuneline.config import build_config
from tuneline.errors import UserError
from tuneline.flows.predict import batch_predict_flow
from tuneline.flows.train import train_flow
from tuneline.tasks import predict_batch
from tuneline.tasks.predict_batch import BatchPrediction, read_prediction_inputs
from tests_support import store_client

TEXTS = ["where is my parcel", "reset my password please", "my invoice is wrong", "the app crash on login",
         "refund my payment", "delivery box arrived damaged", "change my email address", "help me sign in",
         "the dashboard is slow", "why was my card charge twice", "track my order"]


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_bert) -> tuple[Path, str]:
    """One SQLite store holding a classifier (``pb-intents``) and a NER tagger (``pb-ner``), one version each."""
    folder = tmp_path_factory.mktemp("predict-batch")
    with working_in(folder):
        for task, name in (("classification", "pb-intents"), ("token_classification", "pb-ner")):
            example = EXAMPLES[task]
            raw = {"task": task, "data": example.write(folder / "data" / task)}
            train_flow(build_config(raw, [f"model.base={tiny_bert}", f"tracking.registered_model={name}",
                                          "tracking.experiment=predict-batch", "train.precision=fp32",
                                          "evaluate.zero_shot_baseline=false", *example.overrides,
                                          "train.epochs=1", "train.max_steps=3", "train.eval_steps=3"]))
    return folder, f"sqlite:///{folder / 'mlflow.db'}"


def registered_predictions(uri: str, model_uri: str, model_input, chunk_rows: int | None = None) -> pd.DataFrame:
    """What the registered pyfunc says in-process for these rows: the reference every output row must match.

    ``chunk_rows``: predict in chunks of that many rows, as the compared batch job does (its ``batch_size``), so
    both pad the same batches; in other batches a score may differ in its last bits (padding changes the order of
    float sums)."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(model_uri)
    if not chunk_rows:
        return model.predict(model_input)
    return pd.concat([model.predict(model_input[start:start + chunk_rows])
                      for start in range(0, len(model_input), chunk_rows)], ignore_index=True)


def version_of(uri: str, name: str, alias: str) -> str:
    return str(store_client(uri).get_model_version_by_alias(name, alias).version)


def write_csv(path: Path, texts: list[str]) -> Path:
    pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts}).to_csv(path, index=False)
    return path


def test_csv_rows_come_back_in_order_with_the_registered_models_predictions(store, tmp_path):
    folder, uri = store
    source = write_csv(tmp_path / "in.csv", TEXTS)
    done = batch_predict_flow("models:/pb-intents@challenger", str(source), str(tmp_path / "out" / "pred.csv"),
                              tracking_uri=uri, batch_size=4)
    version = version_of(uri, "pb-intents", "challenger")
    assert done == BatchPrediction(str(tmp_path / "out" / "pred.csv"), len(TEXTS), "pb-intents", version)
    out = pd.read_csv(done.output_path, dtype={"model_version": str})
    assert list(out.columns) == ["id", "text", "label", "score", "scores", "model_name", "model_version"]
    assert list(out["id"]) == [f"r{i}" for i in range(len(TEXTS))] and list(out["text"]) == TEXTS
    assert set(out["model_name"]) == {"pb-intents"} and set(out["model_version"]) == {version}
    expected = registered_predictions(uri, f"models:/pb-intents/{version}", TEXTS, chunk_rows=4)
    assert list(out["label"]) == list(expected["label"])
    assert list(out["score"]) == pytest.approx(list(expected["score"]), abs=1e-9)
    assert [json.loads(s) for s in out["scores"]] == [pytest.approx(s, abs=1e-9) for s in expected["scores"]]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pred.csv"]  # no temporary file left


def test_jsonl_input_to_jsonl_and_parquet_outputs_holds_the_same_rows(store, tmp_path):
    folder, uri = store
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(TEXTS)))
    version = version_of(uri, "pb-intents", "challenger")
    as_jsonl = batch_predict_flow(f"pb-intents/{version}", str(source), str(tmp_path / "pred.jsonl"),
                                  tracking_uri=uri, batch_size=5)
    rows = [json.loads(line) for line in Path(as_jsonl.output_path).read_text().splitlines()]
    assert [(r["text"], r["n"]) for r in rows] == [(t, i) for i, t in enumerate(TEXTS)]
    assert all(r["model_name"] == "pb-intents" and r["model_version"] == version for r in rows)
    expected = registered_predictions(uri, f"models:/pb-intents/{version}", TEXTS, chunk_rows=5)
    assert [r["label"] for r in rows] == list(expected["label"])
    assert [r["score"] for r in rows] == list(expected["score"])  # JSON keeps every digit
    # the tasks alone, without Prefect, write the same rows as Parquet
    resolved = predict_batch.resolve_model_version.fn(f"models:/pb-intents/{version}", uri)
    inputs = predict_batch.read_prediction_inputs.fn(source, resolved.task)
    as_parquet = predict_batch.predict_to_file.fn(resolved, inputs, tmp_path / "pred.parquet", batch_size=1000)
    table = pd.read_parquet(as_parquet.output_path)
    assert list(table["label"]) == list(expected["label"]) and list(table["n"]) == list(range(len(TEXTS)))
    assert set(table["model_version"]) == {version}


def test_alias_moved_midway_changes_no_row(store, tmp_path, monkeypatch):
    """The alias is read once: a promotion while the job runs does not mix two versions in one file."""
    folder, uri = store
    client = store_client(uri)
    first = client.get_model_version("pb-intents", version_of(uri, "pb-intents", "challenger"))
    client.set_registered_model_alias("pb-intents", "batch-test", first.version)
    second = client.create_model_version("pb-intents", first.source, first.run_id, tags=first.tags)
    write = predict_batch._TableWriter.write

    def move_alias_after_first_chunk(self, frame):
        write(self, frame)
        client.set_registered_model_alias("pb-intents", "batch-test", second.version)

    monkeypatch.setattr(predict_batch._TableWriter, "write", move_alias_after_first_chunk)
    done = batch_predict_flow("models:/pb-intents@batch-test", str(write_csv(tmp_path / "in.csv", TEXTS)),
                              str(tmp_path / "pred.csv"), tracking_uri=uri, batch_size=3)
    assert version_of(uri, "pb-intents", "batch-test") == str(second.version)  # it did move, after chunk 1
    out = pd.read_csv(done.output_path, dtype={"model_version": str})
    assert len(out) == len(TEXTS) and set(out["model_version"]) == {str(first.version)}


def test_unknown_alias_is_a_user_error_naming_it(store, tmp_path):
    folder, uri = store
    with pytest.raises(UserError, match=r"'pb-intents' has no alias 'nightly' \(its aliases: .*challenger"):
        batch_predict_flow("models:/pb-intents@nightly", str(write_csv(tmp_path / "in.csv", TEXTS)),
                           str(tmp_path / "pred.csv"), tracking_uri=uri)
    with pytest.raises(UserError, match="no registered model 'no-such-model'"):
        predict_batch.resolve_model_version.fn("no-such-model@champion", uri)
    assert not (tmp_path / "pred.csv").exists()


def test_missing_column_is_a_user_error_naming_column_and_file(store, tmp_path):
    folder, uri = store
    source = tmp_path / "questions.csv"
    pd.DataFrame({"question": TEXTS}).to_csv(source, index=False)
    with pytest.raises(UserError, match=rf"input file {source} has no column 'text'.*'question'"):
        batch_predict_flow("models:/pb-intents@challenger", str(source), str(tmp_path / "pred.csv"),
                           tracking_uri=uri)
    missing = tmp_path / "absent.csv"
    with pytest.raises(UserError, match=rf"input file {missing} does not exist"):
        predict_batch.read_prediction_inputs.fn(missing, "classification")


@pytest.mark.parametrize("name, content, line", [
    ("one-column.csv", "text\nfirst question\n\n   \nsecond question\n", 3),  # 5 lines in, "wrote 3 rows"
    ("quoted.csv", 'text,id\n"a",1\n"",""\n   ,\n"b",4\n', 3),
    ("tabs.tsv", "text\tid\na\t1\n\t\nb\t3\n", 3),
])
def test_a_blank_line_between_input_records_is_refused_not_dropped(tmp_path, name, content, line):
    """A blank line is no record (a training file's rule): predictions then dropped it and the output no longer
    lined up with the input by position. Blank lines at the end, and a blank line inside a quoted cell, are fine."""
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError, match=rf"input file {path}: line {line} is blank \(or holds only empty fields\) "
                                        "between records"):
        read_prediction_inputs.fn(path, "classification")
    fine = tmp_path / "fine.csv"
    fine.write_text('text\n"a cell\n\nover three lines"\nsecond\n\n\n')
    assert read_prediction_inputs.fn(fine, "classification").frame["text"].tolist() == [
        "a cell\n\nover three lines", "second"]


def test_failure_after_the_first_chunk_leaves_no_partial_file(store, tmp_path, monkeypatch):
    """Fault injection: the writer fails on chunk 2; the output path keeps its previous content, nothing else."""
    folder, uri = store
    output = tmp_path / "pred.jsonl"
    output.write_text("yesterday's predictions\n")
    write, calls = predict_batch._TableWriter.write, []

    def fail_on_second_chunk(self, frame):
        calls.append(len(frame))
        if len(calls) == 2:
            raise OSError("disk full")
        write(self, frame)

    monkeypatch.setattr(predict_batch._TableWriter, "write", fail_on_second_chunk)
    with pytest.raises(OSError, match="disk full"):
        batch_predict_flow("models:/pb-intents@challenger", str(write_csv(tmp_path / "in.csv", TEXTS)),
                           str(output), tracking_uri=uri, batch_size=4)
    assert calls == [4, 4]
    assert output.read_text() == "yesterday's predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "pred.jsonl"]


def test_ner_rows_get_tags_and_a_rejected_record_midway_writes_nothing(store, tmp_path):
    folder, uri = store
    words = [["John", "Smith", "visited", "Paris"], ["Acme", "Corp", "is", "in", "London"], ["Berlin"]]
    source = tmp_path / "sentences.jsonl"
    source.write_text("".join(json.dumps({"doc": i, "tokens": w}) + "\n" for i, w in enumerate(words)))
    done = batch_predict_flow("models:/pb-ner@challenger", str(source), str(tmp_path / "tags.jsonl"),
                              tracking_uri=uri, batch_size=2)
    rows = [json.loads(line) for line in Path(done.output_path).read_text().splitlines()]
    expected = registered_predictions(uri, f"models:/pb-ner/{done.model_version}", pd.DataFrame({"tokens": words}))
    assert [r["tokens"] for r in rows] == words and [r["doc"] for r in rows] == [0, 1, 2]
    assert [r["tags"] for r in rows] == [list(t) for t in expected["tags"]]
    assert [len(r["tags"]) for r in rows] == [len(w) for w in words]
    assert {"text", "entities"} <= set(rows[0]) and rows[0]["model_version"] == done.model_version

    bad = tmp_path / "bad.jsonl"  # line 3, in the second chunk, holds a number where a word must be
    bad.write_text("".join(json.dumps({"tokens": w}) + "\n" for w in [words[0], words[1], ["Paris", 7]]))
    with pytest.raises(UserError, match=rf"refused the record on line 3 of {bad}: .*word 1 is int"):
        batch_predict_flow("models:/pb-ner@challenger", str(bad), str(tmp_path / "bad-tags.jsonl"),
                           tracking_uri=uri, batch_size=2)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".bad-tags", "bad-tags"))]


def test_ner_rows_of_raw_text_from_a_csv_are_tagged_as_their_words(store, tmp_path, capsys):
    """The NER model splits raw text itself, so a CSV with a ``Text`` column is an input too (it was refused: CSV
    "cannot hold" NER rows, and a JSONL ``text`` column "needs 'tokens'")."""
    from tuneline.cli import main

    folder, uri = store
    texts = ["John Smith visited Paris", "Acme Corp is in London"]
    source = tmp_path / "raw.csv"
    pd.DataFrame({"id": [1, 2], "Text": texts}).to_csv(source, index=False)
    done = batch_predict_flow("models:/pb-ner@challenger", str(source), str(tmp_path / "raw.jsonl"), tracking_uri=uri)
    rows = [json.loads(line) for line in Path(done.output_path).read_text().splitlines()]
    as_words = registered_predictions(uri, f"models:/pb-ner/{done.model_version}",
                                      pd.DataFrame({"tokens": [t.split() for t in texts]}))
    assert [r["tags"] for r in rows] == [list(t) for t in as_words["tags"]] and [r["id"] for r in rows] == ["1", "2"]
    assert main(["predict", "-m", "models:/pb-ner@challenger", "--tracking-uri", uri, "--input", str(source)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [p["tags"] for p in printed] == [r["tags"] for r in rows]
    pd.DataFrame({"sentence": texts}).to_csv(source, index=False)
    with pytest.raises(UserError, match="it needs 'tokens', or 'text' of raw text"):
        read_prediction_inputs.fn(source, "token_classification")


def test_predict_command_with_output_writes_the_file_and_prints_the_counts(store, tmp_path, capsys):
    from tuneline.cli import main

    folder, uri = store
    source, output = write_csv(tmp_path / "in.csv", TEXTS[:3]), tmp_path / "pred.parquet"
    assert main(["predict", "-m", "models:/pb-intents@challenger", "--tracking-uri", uri, "--input", str(source),
                 "--output", str(output), "--batch-size", "2"]) == 0
    version = version_of(uri, "pb-intents", "challenger")
    assert f"wrote 3 rows predicted by pb-intents version {version} to {output}" in capsys.readouterr().out
    assert list(pd.read_parquet(output)["text"]) == TEXTS[:3]
    assert main(["predict", "-m", "models:/pb-intents@challenger", "--output", str(output)]) == 2  # usage
    assert "give it with --input FILE" in capsys.readouterr().err


def test_a_tsv_output_reads_back_as_written_and_a_cell_it_cannot_hold_is_refused_first(store, tmp_path):
    """TSV output was written with CSV quoting (a text with quotes came out wrapped, its quotes doubled), which
    tuneline's own TSV reader (no quote processing, as GLUE writes TSV) read back with the quotes doubled."""
    from tuneline.readers import read_table

    _, uri = store
    texts = ['she said "refund my payment"', "track my order", '"where is my parcel"']
    source = write_csv(tmp_path / "quoted.csv", texts)
    done = batch_predict_flow("models:/pb-intents@challenger", str(source), str(tmp_path / "out.tsv"), tracking_uri=uri)
    back = read_table(Path(done.output_path), "tsv")
    assert back.frame["text"].tolist() == texts and not back.malformed
    assert back.frame["id"].tolist() == ["r0", "r1", "r2"] and set(back.frame["model_version"]) == {done.model_version}
    write_csv(source, ["one line", "two\nlines"])
    with pytest.raises(UserError, match=r"column 'text' on line 3 holds a tab or a line break, which a TSV cell "
                                        r"cannot hold; write the output as .csv, .jsonl or .parquet"):
        batch_predict_flow("models:/pb-intents@challenger", str(source), str(tmp_path / "out2.tsv"), tracking_uri=uri)
    assert not (tmp_path / "out2.tsv").exists()


def test_prediction_deployment_runs_on_demand_with_parameters_at_run_time():
    from tuneline.config import ConfigError
    from tuneline.deployments.predict import prediction_deployment

    deployment = prediction_deployment(tracking_uri="sqlite:///registry.db")
    assert deployment.name == "predict-batch" and deployment.flow_name == "tuneline-predict-batch"
    assert deployment.tags == ["tuneline", "predict"] and not deployment.schedules
    assert deployment.parameters == {"tracking_uri": "sqlite:///registry.db"}
    assert sorted(deployment._parameter_openapi_schema.required) == ["input_path", "model", "output_path"]
    with pytest.raises(ConfigError, match="credentials"):
        prediction_deployment(tracking_uri="https://user:secret@mlflow.example.com")


def test_predict_command_reads_the_models_column_not_the_files_first_one(store, tmp_path, capsys):
    from tuneline.cli import main

    _, uri = store
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": ["r0", "r1"], " Text": TEXTS[:2]}).to_csv(source, index=False)  # header as users write it
    assert main(["predict", "-m", "models:/pb-intents@challenger", "--tracking-uri", uri, "--input", str(source)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [row["Text"] for row in printed] == TEXTS[:2] and [row["id"] for row in printed] == ["r0", "r1"]
    assert "text" not in printed[0]  # the file's columns come back under its own names
    expected = batch_predict_flow("models:/pb-intents@challenger", str(write_csv(tmp_path / "same.csv", TEXTS[:2])),
                                  str(tmp_path / "same.jsonl"), tracking_uri=uri)
    assert [row["label"] for row in printed] == list(pd.read_json(expected.output_path, lines=True)["label"])
    pd.DataFrame({"id": ["r0"], "sentence": TEXTS[:1]}).to_csv(source, index=False)
    assert main(["predict", "-m", "models:/pb-intents@challenger", "--tracking-uri", uri, "--input", str(source)]) == 1
    assert "has no column 'text'" in capsys.readouterr().err


# --- what a new user's prediction inputs got wrong (a probe of predict, serve-model and the pyfuncs) ----------------

def test_a_gold_label_column_never_hides_the_prediction_and_blank_stdin_lines_cannot_shift_rows(
        store, tmp_path, capsys, monkeypatch):
    """`predict --input` printed the file's own `label` column where the prediction belonged; blank stdin lines
    were dropped, so output line N no longer answered input line N."""
    import io

    from tuneline.cli import main

    _, uri = store
    source = tmp_path / "gold.csv"
    pd.DataFrame({"id": ["r0", "r1"], "text": TEXTS[:2], "label": ["gold-a", "gold-b"]}).to_csv(source, index=False)
    assert main(["predict", "-m", "models:/pb-intents@challenger", "--tracking-uri", uri, "--input", str(source)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    reference = registered_predictions(uri, "models:/pb-intents@challenger", TEXTS[:2])
    assert [p["label"] for p in printed] == ["gold-a", "gold-b"]
    assert [p["predicted_label"] for p in printed] == list(reference["label"])
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{TEXTS[0]}\n\n{TEXTS[1]}\n"))
    assert main(["predict", "-m", "models:/pb-intents@challenger", "--tracking-uri", uri]) == 1
    assert "stdin line 2 is blank" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{TEXTS[0]}\n{TEXTS[1]}\n\n"))  # trailing blank lines are fine
    assert main(["predict", "-m", "models:/pb-intents@challenger", "--tracking-uri", uri]) == 0
    assert len([line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]) == 2
    # a blank argument was the model's "input 1 is an empty text", counted from 0 as an HTTP list is
    assert main(["predict", "-m", "models:/pb-intents@challenger", "--tracking-uri", uri, TEXTS[0], " "]) == 1
    err = capsys.readouterr().err
    assert "text 2 of 2 on the command line is empty" in err and "Traceback" not in err


def test_inputs_that_would_be_garbled_are_refused(store, tmp_path, capsys):
    """A CSV `tokens` column of JSON text was tagged character by character; a NER frame with other named columns
    was read as one word per column; bytes were predicted on the text "b'...'"."""
    from tuneline.cli import main

    _, uri = store
    source = tmp_path / "tokens.csv"
    source.write_text('id,tokens\n1,"[""Angela"", ""Merkel""]"\n')
    assert main(["predict", "-m", "models:/pb-ner@challenger", "--tracking-uri", uri, "--input", str(source)]) == 1
    assert "a CSV/TSV cannot hold word lists: give a 'text' column of raw text, or JSONL" in capsys.readouterr().err
    with pytest.raises(mlflow.exceptions.MlflowException, match=r"columns \['id', 'sentence'\]; pass a 'text'"):
        registered_predictions(uri, "models:/pb-ner@challenger",
                               pd.DataFrame({"id": ["a1"], "sentence": ["Angela Merkel visited Paris ."]}))
    flags = tmp_path / "flags.jsonl"  # a boolean among texts: "input 1 is True", counted from 0, no file or line
    flags.write_text('{"text": "where is my parcel"}\n{"text": true}\n{"text": {"en": "refund"}}\n')
    assert main(["predict", "-m", "models:/pb-intents@challenger", "--tracking-uri", uri, "--input", str(flags)]) == 1
    assert (f"input file {flags}: the record on line 2 has True in column 'text', which must hold one text per row"
            in capsys.readouterr().err)
    as_bytes = registered_predictions(uri, "models:/pb-intents@challenger", pd.Series([TEXTS[0].encode()]))
    assert list(as_bytes["label"]) == list(registered_predictions(uri, "models:/pb-intents@challenger",
                                                                  [TEXTS[0]])["label"])


def test_predict_in_a_folder_without_a_store_creates_nothing(store, tmp_path, monkeypatch, capsys):
    from tuneline.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["predict", "-m", "models:/pb-intents@challenger", "hello"]) == 1
    assert "no MLflow store at" in capsys.readouterr().err and not (tmp_path / "mlflow.db").exists()


def test_a_bare_name_at_alias_works_and_an_unwritable_output_is_refused_before_any_work(store, tmp_path, capsys):
    """`predict -m NAME@champion` (as serve-model takes it) said "No such artifact"; `-o` into a missing folder
    failed only after the model loaded, with Prefect's tracebacks."""
    from tuneline.cli import main

    _, uri = store
    assert main(["predict", "-m", "pb-intents@challenger", "--tracking-uri", uri, TEXTS[0]]) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert line["label"] == registered_predictions(uri, "models:/pb-intents@challenger", [TEXTS[0]])["label"][0]
    source = write_csv(tmp_path / "in.csv", TEXTS[:2])
    for output, says, code in ((tmp_path / "no" / "such" / "p.csv", "does not exist; create the folder", 1),
                               (source / "p.csv", "is a file, not a folder", 1),
                               (tmp_path / "p.txt", "must end in", 2)):  # the extension: a usage error
        assert main(["predict", "-m", "pb-intents@challenger", "--tracking-uri", uri, "--input", str(source),
                     "--output", str(output)]) == code
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    # a bare name, no alias: it said "No such artifact: 'pb-intents'"
    assert main(["predict", "-m", "pb-intents", "--tracking-uri", uri, TEXTS[0]]) == 1
    err = capsys.readouterr().err
    assert "-m pb-intents: no folder of that name here; a registered model is named with its alias or version: " \
           "-m pb-intents@champion or -m pb-intents/3" in err


def test_predictions_carry_the_index_of_the_frame_they_answer(store):
    """`frame["label"] = model.predict(frame)["label"]` on a filtered or shuffled frame gave NaN or other rows'
    labels: the output had a fresh RangeIndex."""
    _, uri = store
    frame = pd.DataFrame({"text": TEXTS[:4]}, index=[30, 10, 20, 40])
    out = registered_predictions(uri, "models:/pb-intents@challenger", frame)
    assert list(out.index) == [30, 10, 20, 40]
    alone = [registered_predictions(uri, "models:/pb-intents@challenger", [t])["label"][0] for t in TEXTS[:4]]
    frame["label"] = out["label"]
    assert list(frame["label"]) == alone
    # (the NER model's input goes through MLflow's type-hint path, which hands it over as a list: no index to keep)
    assert list(registered_predictions(uri, "models:/pb-intents@challenger", TEXTS[:2]).index) == [0, 1]


@pytest.mark.parametrize("content, message", [
    # a blank text reached the model, which refused "input 1" (a row position the user had to turn into a line)
    ('id,text\nr0,where is my parcel\nr1,"   "\nr2,\n',
     r"the record on line 3 has no value in column 'text' \(empty or only spaces\)"),
    # a one-column file split by an unquoted comma
    ("text\nfine film\ngood, really good\n",
     r"first at line 3 \(record_has_wrong_field_count: 2 fields, header has 1\); a text holding the delimiter must "
     r"be quoted"),
])
def test_a_record_that_is_no_text_is_named_by_its_file_line(tmp_path, content, message):
    source = tmp_path / "in.csv"
    source.write_text(content)
    with pytest.raises(UserError, match=message):
        read_prediction_inputs.fn(source, "classification")


def test_an_input_file_in_another_encoding_is_read_with_encoding_and_named_without_it(store, tmp_path, capsys):
    """Spreadsheet exports are often cp1252/latin-1: predict had no way to read them, and its error told the user to
    set data.encoding, a training config key that predict does not read."""
    from tuneline.cli import main

    _, uri = store
    texts = ["café refund please", "où est mon colis"]
    source = tmp_path / "latin.csv"
    source.write_bytes(("id,text\n" + "".join(f"r{i},{t}\n" for i, t in enumerate(texts))).encode("latin-1"))
    with pytest.raises(UserError, match=r"line 2, .*not valid utf-8.*; give the file's encoding with --encoding") as error:
        read_prediction_inputs.fn(source, "classification")
    assert "data.encoding" not in str(error.value) and "quarantine" not in str(error.value)
    assert read_prediction_inputs.fn(source, "classification", "latin-1").frame["text"].tolist() == texts
    output = tmp_path / "pred.jsonl"
    assert main(["predict", "-m", "pb-intents@challenger", "--tracking-uri", uri, "--input", str(source),
                 "--encoding", "latin-1", "--output", str(output)]) == 0
    written = pd.read_json(output, lines=True)
    assert written["text"].tolist() == texts
    assert written["label"].tolist() == list(registered_predictions(uri, "models:/pb-intents@challenger", texts)["label"])
    assert main(["predict", "-m", "pb-intents@challenger", "--tracking-uri", uri, "--input", str(source),
                 "--encoding", "latin-1"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [p["text"] for p in printed] == texts
    assert main(["predict", "-m", "pb-intents@challenger", "--tracking-uri", uri, "--input", str(source)]) == 1
    assert "--encoding" in capsys.readouterr().err


def test_an_unreadable_record_is_advised_with_predicts_own_option(tmp_path):
    """An Excel TSV with a multi-line cell: the refusal advised "or as CSV (data.format: csv)", a training config
    key that predict does not read; its option is --format (dirty-data QA, D4)."""
    path = tmp_path / "in.tsv"
    path.write_bytes("text\tsentiment\r\ncafé au lait\tpositive\r\n\"multi\r\nline\"\tnegative\r\n"
                     .encode("utf-16"))
    with pytest.raises(UserError) as info:
        read_prediction_inputs.fn(path, "classification", input_format="tsv")
    assert "--format csv" in str(info.value) and "data.format" not in str(info.value), info.value
    read = read_prediction_inputs.fn(path, "classification", input_format="csv")
    assert read.frame["text"].tolist()[-1] == "multi\r\nline"
