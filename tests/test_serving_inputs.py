"""Every documented input form through a REGISTERED model, loaded the normal way (MLflow schema enforcement on).

The models are tiny random heads on the conftest BERT, logged and registered by ``register_model`` itself (the
code path a training run uses) into a SQLite store, then loaded back with
``mlflow.pyfunc.load_model("models:/<name>/<version>")``. What is checked is the shape of the answers (one row per
input, in order; one tag per word) and that equivalent forms give the same answers; the random weights make the
labels themselves meaningless.

The regression: a list of word lists (``[["John", "Smith", "lives", "in", "Berlin"], ["Paris"]]``) came back with a
tag for each FIRST word only, because MLflow's column-based schema enforcement turned the lists into a one-word-per-
column table and cut it to the signature's single column.
"""

from __future__ import annotations

import json
import subprocess
import sys
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from tuneline.tasks.register import register_model
from tuneline.tracking import RunContext
from tests_support import store_client

CLASSES = ["billing", "delivery", "account"]
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
#: Each kind's transformers head and labels, for a registered version of every kind
HEADS = {"classification": ("AutoModelForSequenceClassification", CLASSES),
         "multilabel_classification": ("AutoModelForSequenceClassification", CLASSES),
         "pair_classification": ("AutoModelForSequenceClassification", ["0", "1"]),
         "token_classification": ("AutoModelForTokenClassification", TAGS)}
TEXTS = ["where is my parcel", "please reset my password", "refund the charge twice"]
SENTENCES = ["John Smith lives in Berlin .", "Paris"]
WORD_LISTS = [["John", "Smith", "lives", "in", "Berlin"], ["Paris"]]  # the regression, verbatim
#: 40 words: longer than the input example (12 words) and than one window of the max_length-10 model below, so the
#: served model must tag it in several windows; plus a one-word and a two-word list in the same (ragged) call.
LONG = ["john", "smith", "visited", "berlin", ".", "acme", "corp", "works", "in", "paris"] * 4
RAGGED = [LONG, ["Paris"], ["John", "Smith"]]


@dataclass(frozen=True)
class Served:
    uri: str
    model: Any  # mlflow.pyfunc.PyFuncModel


def save_head(base: Path, folder: Path, head: str, labels: list[str], max_length: int) -> Path:
    """A randomly initialised ``head`` on the tiny BERT, saved as tuneline saves a trained model (with its
    tokenizer, ``id2label`` and ``tuneline_max_length``)."""
    import torch
    import transformers

    torch.manual_seed(0)
    model = getattr(transformers, head).from_pretrained(
        base, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)})
    model.config.tuneline_max_length = max_length
    model.save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[tuple[str, str, Path]]:
    """A SQLite MLflow store (tracking and registry) with its artifacts in a temporary folder."""
    folder = tmp_path_factory.mktemp("serving-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = store_client(uri)
    experiment = client.create_experiment("serving-inputs", artifact_location=(folder / "artifacts").as_uri())
    try:
        yield uri, experiment, folder
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])


def register(store: tuple[str, str, Path], model_dir: Path, kind: str, name: str) -> Served:
    """Log + register through tuneline's own register task, then load the version back from the registry."""
    uri, experiment, folder = store
    client = store_client(uri)
    run = client.create_run(experiment)
    context = RunContext(run_id=run.info.run_id, experiment_id=experiment, tracking_uri=uri,
                         run_dir=folder / run.info.run_id)
    version = register_model.fn(model_dir, kind, name, context, {"task": kind})
    return Served(uri=version.uri, model=mlflow.pyfunc.load_model(f"models:/{name}/{version.version}"))


def register_every_kind(store: tuple[str, str, Path], tiny_bert: Path, tmp_path_factory, prefix: str
                        ) -> dict[str, Served]:
    """One registered version of each kind (:data:`HEADS`), by task, named ``<prefix>-<task>``."""
    return {task: register(store, save_head(tiny_bert, tmp_path_factory.mktemp(task), head, labels, max_length=32),
                           task, f"{prefix}-{task}")
            for task, (head, labels) in HEADS.items()}


@pytest.fixture(scope="module")
def classifier(store, tiny_bert, tmp_path_factory) -> Served:
    folder = save_head(tiny_bert, tmp_path_factory.mktemp("classifier"), "AutoModelForSequenceClassification",
                       CLASSES, max_length=32)
    return register(store, folder, "classification", "serving-classifier")


@pytest.fixture(scope="module")
def tagger(store, tiny_bert, tmp_path_factory) -> Served:
    folder = save_head(tiny_bert, tmp_path_factory.mktemp("tagger"), "AutoModelForTokenClassification", TAGS,
                       max_length=10)
    return register(store, folder, "token_classification", "serving-tagger")


def input_schema(uri: str) -> list[dict]:
    signature = mlflow.models.get_model_info(uri).signature
    assert signature is not None, "a registered model must carry a signature (MLflow enforces it when serving)"
    return signature.inputs.to_dict()


# --- classification ----------------------------------------------------------------------------------------------

def assert_same_classification(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a["label"]) == list(b["label"])
    assert list(a["score"]) == pytest.approx(list(b["score"]), abs=1e-5)
    for x, y in zip(a["scores"], b["scores"]):
        assert x.keys() == y.keys() and list(x.values()) == pytest.approx(list(y.values()), abs=1e-5)


def test_classifier_signature_is_one_unnamed_any_column(classifier):
    """One unnamed column: MLflow's column enforcement then turns a str, a list of str, a Series and a one-column
    DataFrame alike into that column (a NAMED column would drop the unnamed ones, see the pyfunc). Of type Any: a
    string column makes the scoring server cast a JSON null to the text "None" (checked below)."""
    assert input_schema(classifier.uri) == [{"type": "any", "required": True}]


@pytest.mark.parametrize("payload, says", [
    ({"inputs": ["where is my parcel", None]}, "input 1 is missing"),      # was classified as the text "None"
    ({"instances": [None]}, "input 0 is missing"),
    ({"dataframe_split": {"columns": ["text"], "data": [["fine"], [None]]}}, "input 1 is missing"),
    ({"dataframe_split": {"columns": ["id", "text"], "data": [["17", "where is my parcel"]]}},
     "column named 'id'"),                                                # was classified as the text "17"
    ({"inputs": [{"id": 17}]}, "column named 'id'"),
    ({"inputs": [True]}, "not a text"),
    # a JSON object's values reach the model as 0-d arrays: these were classified as "" and "True"
    ({"inputs": [{"text": "fine"}, {"text": ""}]}, "input 1 is an empty text"),
    ({"inputs": [{"text": True}]}, "not a text"),
])
def test_classifier_refuses_requests_that_mlflow_would_turn_into_other_texts(classifier, payload, says):
    """The request as the scoring server parses it (``mlflow models serve`` runs exactly this), then the model:
    every one of these was answered with a confident label before."""
    import json

    from mlflow.pyfunc.scoring_server import _parse_json_data

    model = classifier.model
    parsed = _parse_json_data(json.dumps(payload), model.metadata, model.metadata.get_input_schema())
    with pytest.raises(MlflowException, match=says) as caught:
        model.predict(parsed.data)
    assert caught.value.get_http_status_code() == 400


@pytest.fixture(scope="module")
def multilabel(store, tiny_bert, tmp_path_factory) -> Served:
    folder = save_head(tiny_bert, tmp_path_factory.mktemp("multilabel"), "AutoModelForSequenceClassification",
                       CLASSES, max_length=32)
    return register(store, folder, "multilabel_classification", "serving-multilabel")


@pytest.mark.parametrize("payload, says", [
    ({"inputs": [{"text": "fine"}, {"text": ""}]}, "input 1 is an empty text"),
    ({"inputs": [{"text": True}]}, "not a text"),
    ({"inputs": ["fine", None]}, "input 1 is missing"),
])
def test_multilabel_classifier_refuses_the_same_requests(multilabel, payload, says):
    """The multi-label pyfunc keeps its own copy of the input checks (each pyfunc file is self-contained)."""
    import json

    from mlflow.pyfunc.scoring_server import _parse_json_data

    model = multilabel.model
    parsed = _parse_json_data(json.dumps(payload), model.metadata, model.metadata.get_input_schema())
    with pytest.raises(MlflowException, match=says) as caught:
        model.predict(parsed.data)
    assert caught.value.get_http_status_code() == 400
    assert len(model.predict([{"text": "fine"}])) == 1  # the object form itself is answered


def test_classifier_accepts_every_documented_form(classifier):
    model = classifier.model
    as_list = model.predict(TEXTS)
    assert list(as_list.columns) == ["label", "score", "scores"]
    assert len(as_list) == len(TEXTS)
    assert set(as_list["label"]) <= set(CLASSES)
    assert all(set(scores) == set(CLASSES) for scores in as_list["scores"])
    assert_same_classification(model.predict(pd.DataFrame({"text": TEXTS})), as_list)
    assert_same_classification(model.predict(pd.Series(TEXTS)), as_list)
    assert_same_classification(model.predict(pd.Series(TEXTS, name="text")), as_list)
    assert_same_classification(model.predict(pd.DataFrame({"text": TEXTS, "id": [1, 2, 3]})), as_list)
    with pytest.raises(MlflowException, match="column named 'sentence'"):  # maybe an id column cut from a frame
        model.predict(pd.Series(TEXTS, name="sentence"))
    one = model.predict(TEXTS[1])
    assert len(one) == 1
    assert_same_classification(one, as_list.iloc[[1]].reset_index(drop=True))


# --- named-entity recognition ------------------------------------------------------------------------------------

def assert_same_tagging(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns) == ["text", "tokens", "tags", "entities"]
    assert [list(t) for t in a["tokens"]] == [list(t) for t in b["tokens"]]
    assert [list(t) for t in a["tags"]] == [list(t) for t in b["tags"]]
    assert list(a["text"]) == list(b["text"])


def assert_one_tag_per_word(out: pd.DataFrame, word_lists: list[list[str]]) -> None:
    """One output row per input, in input order, each with exactly one tag per word of that input."""
    assert len(out) == len(word_lists)
    assert [list(t) for t in out["tokens"]] == word_lists
    assert [len(tags) for tags in out["tags"]] == [len(words) for words in word_lists]
    assert all(set(tags) <= set(TAGS) for tags in out["tags"])


def test_tagger_signature_comes_from_the_predict_type_hint(tagger):
    """``list[str | list[str]]``: a list of inputs, each a text or a list of words. MLflow records such a signature
    as coming from the type hint, and then hands the input to the model unchanged instead of making a table of it."""
    assert input_schema(tagger.uri) == [{"type": "any", "required": True}]
    assert mlflow.models.Model.load(tagger.uri).to_dict()["is_signature_from_type_hint"] is True


def test_tagger_tags_every_word_of_a_list_of_word_lists(tagger):
    """The regression: this returned ``tags`` of length 1 for both rows (each first word only)."""
    out = tagger.model.predict(WORD_LISTS)
    assert_one_tag_per_word(out, WORD_LISTS)
    assert list(out["text"]) == ["John Smith lives in Berlin", "Paris"]
    assert_same_tagging(tagger.model.predict(pd.DataFrame({"tokens": WORD_LISTS})), out)


def test_tagger_word_lists_longer_and_shorter_than_the_example_in_one_ragged_call(tagger):
    out = tagger.model.predict(RAGGED)
    assert_one_tag_per_word(out, RAGGED)
    assert_same_tagging(tagger.model.predict(pd.DataFrame({"tokens": RAGGED})), out)
    # each row is tagged as if it were alone (batching and padding change nothing)
    for words, tags in zip(RAGGED, out["tags"]):
        assert list(tagger.model.predict([words]).iloc[0]["tags"]) == list(tags)


def test_tagger_accepts_raw_text_in_every_documented_form(tagger):
    model = tagger.model
    as_list = model.predict(SENTENCES)
    assert_one_tag_per_word(as_list, [["John", "Smith", "lives", "in", "Berlin", "."], ["Paris"]])
    assert list(as_list["text"]) == SENTENCES
    assert_same_tagging(model.predict(pd.DataFrame({"text": SENTENCES})), as_list)
    assert_same_tagging(model.predict(pd.Series(SENTENCES)), as_list)
    assert_same_tagging(model.predict(SENTENCES[0]), as_list.iloc[[0]].reset_index(drop=True))
    long_text = " ".join(LONG)
    assert_one_tag_per_word(model.predict(long_text), [LONG])
    # raw text and the same words pre-split are tagged alike
    assert [list(t) for t in model.predict([long_text])["tags"]] == [list(t) for t in model.predict([LONG])["tags"]]


def test_tagger_entities_point_into_each_text(tagger):
    out = tagger.model.predict(SENTENCES + WORD_LISTS)
    assert len(out) == 4
    for text, entities in zip(out["text"], out["entities"]):
        assert all(text[e["start"]:e["end"]] == e["text"] for e in entities)


@pytest.mark.parametrize("bad", [42, [["John", 3]], [None, 7], [2.5]])
def test_tagger_rejects_what_its_signature_does_not_allow(tagger, bad):
    """Schema enforcement stays on: anything but texts and lists of words is refused with MLflow's
    invalid-parameter error (an HTTP 400 from a serving endpoint), never guessed at."""
    with pytest.raises(MlflowException, match="text|word"):
        tagger.model.predict(bad)


def test_registering_prints_none_of_mlflows_type_hint_notes(store, tiny_bert, tmp_path, capfd, caplog):
    """MLflow notes each registration's type hints it cannot use ("Union type hint is inferred as AnyType",
    "Decorate your function ...") and that it runs the input example: nothing a user can act on, so not shown."""
    folder = save_head(tiny_bert, tmp_path / "tagger", "AutoModelForTokenClassification", TAGS, max_length=10)
    capfd.readouterr()
    uri, experiment, runs = store
    with caplog.at_level(logging.INFO), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # the first creates the registered model, the second adds a version to it
            run = store_client(uri).create_run(experiment)
            context = RunContext(run_id=run.info.run_id, experiment_id=experiment, tracking_uri=uri,
                                 run_dir=runs / run.info.run_id)
            version = register_model.fn(folder, "token_classification", "quiet-tagger", context, {"task": "ner"})
    printed = "".join(capfd.readouterr()) + caplog.text + "".join(str(w.message) for w in caught)
    assert input_schema(version.uri) and version.version == "2"  # the signature tuneline sets is still there
    for note in ("type hint", "Decorate your function", "Running the predict function", "Validating input example",
                 "Successfully registered model", "Created version", "already exists"):
        assert note not in printed, printed[-2000:]
    assert "registered quiet-tagger version 2" in caplog.text  # tuneline's own line still is


def test_loading_a_registered_model_prints_no_type_hint_note(classifier, store):
    """MLflow warns "Add type hints to the `predict` method" at each load of a PythonModel without them (every
    evaluation, gate and prediction): tuneline's classifiers take no hint on purpose, and say so to MLflow."""
    uri = store[0]
    load = (f"import mlflow; mlflow.set_tracking_uri({uri!r}); mlflow.set_registry_uri({uri!r}); "
            f"print(mlflow.pyfunc.load_model({classifier.uri!r}).predict(['a text'])['label'][0])")
    done = subprocess.run([sys.executable, "-W", "always", "-c", load], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() in CLASSES
    assert "type hint" not in done.stderr, done.stderr[-2000:]


# --- sentence pairs, through MLflow's scoring app -----------------------------------------------------------------

PAIRS = [["where is my parcel", "my parcel has not arrived"], ["reset my password", "refund the charge"]]


@pytest.fixture(scope="module")
def pair(store, tiny_bert, tmp_path_factory) -> Served:
    folder = save_head(tiny_bert, tmp_path_factory.mktemp("pair"), "AutoModelForSequenceClassification", ["0", "1"],
                       max_length=32)
    return register(store, folder, "pair_classification", "serving-pair")


@pytest.fixture
def scoring_app(pair, monkeypatch):
    """The FastAPI app ``mlflow models serve`` runs (``tuneline serve-model`` serves the same app), in-process.
    ``init`` marks the process as a serving environment in ``os.environ``; monkeypatch puts it back afterwards."""
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    return TestClient(scoring_server.init(pair.model))


def records(texts: list[list[str]]) -> list[dict[str, str]]:
    return [{"text": t, "text_pair": p} for t, p in texts]


@pytest.mark.parametrize("rows", [PAIRS, PAIRS[:1]], ids=["two pairs", "one pair"])
@pytest.mark.parametrize("form", ["inputs lists", "inputs objects", "instances", "dataframe_records",
                                  "dataframe_split"])
def test_pair_endpoint_answers_every_documented_form_like_the_registered_model(pair, scoring_app, form, rows):
    """One pair sent as a list of one ``{"text", "text_pair"}`` object was a 400 ("iteration over a 0-d array"):
    the scoring server hands each value of a JSON object to the model as a 0-d numpy array."""
    body = {"inputs lists": {"inputs": rows},
            "inputs objects": {"inputs": records(rows)},
            "instances": {"instances": rows},
            "dataframe_records": {"dataframe_records": records(rows)},
            "dataframe_split": {"dataframe_split": {"columns": ["text", "text_pair"], "data": rows}}}[form]
    answer = scoring_app.post("/invocations", json=body)
    assert answer.status_code == 200, answer.text
    predictions = pd.DataFrame(answer.json()["predictions"])
    expected = pair.model.predict(pd.DataFrame(rows, columns=["text", "text_pair"]))
    assert len(predictions) == len(rows)
    assert_same_classification(predictions, expected)


@pytest.mark.parametrize("body, says", [
    ({"inputs": [["where is my parcel", None]]}, "missing text at row 0 of 'text_pair'"),
    ({"inputs": [{"text": "where is my parcel", "text_pair": ""}]}, "empty text at row 0 of 'text_pair'"),
    ({"inputs": [["where is my parcel"]]}, "missing inputs"),
    # MLflow's parser refuses a dict of columns for a signature of unnamed inputs (README: send lists or records)
    ({"inputs": {"text": ["a"], "text_pair": ["b"]}}, "un-named"),
])
def test_pair_endpoint_refuses_incomplete_pairs_with_a_400(scoring_app, body, says):
    answer = scoring_app.post("/invocations", json=body)
    assert answer.status_code == 400, answer.text
    assert says in answer.json()["message"]


def test_serve_model_cuts_client_errors_to_what_to_fix(pair, monkeypatch):
    """MLflow's scoring app answered a refusal with "Failed to predict data '<the whole request>'. Error: ..." (104 KB
    for a batch of 2,000 texts with one null, the useful line last) and a text/csv request with the server's stack
    trace. `tuneline serve-model` answers the model's own one line, without either."""
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    from tuneline.serving_app import served

    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    client = TestClient(served(scoring_server.init(pair.model), "serving-pair", "7", "pair_classification"))
    batch = [["where is my parcel", "my parcel has not arrived"]] * 2000
    batch[1500] = ["where is my parcel", None]
    raw = TestClient(scoring_server.init(pair.model)).post("/invocations", json={"inputs": batch})
    assert raw.status_code == 400 and len(raw.text) > 50_000  # MLflow's own answer echoes the request
    answer = client.post("/invocations", json={"inputs": batch})
    assert answer.status_code == 400 and answer.headers["X-Model-Version"] == "7"
    assert answer.json()["message"] == ("predict got a missing text at row 1500 of 'text_pair'; every pair needs "
                                         "two texts"), answer.text[:500]
    assert "stack_trace" not in answer.json() and len(answer.text) < 500
    csv = client.post("/invocations", content="text,text_pair\na,b\n", headers={"Content-Type": "text/csv"})
    assert "stack_trace" not in csv.json() and "Traceback" not in csv.text and csv.headers["X-Model-Name"]
    # a body that is no JSON was echoed whole after MLflow's parse error ("Input: b'...'": 120 KB for 80 KB)
    broken = client.post("/invocations", content=b'{"inputs": [' + b'"where is my parcel", ' * 4000,
                         headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and len(broken.text) < 1000, broken.text[:300]
    assert "valid JSON" in broken.json()["message"]
    ok = client.post("/invocations", json={"inputs": PAIRS})
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 2


# --- what `tuneline serve-model` answers a request it cannot take (the served app, in-process) ------------------

def served_client(served_model: Served, task: str) -> Any:
    """``tuneline serve-model``'s app for ``served_model``: MLflow's scoring app wrapped by :func:`served`."""
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    from tuneline.serving_app import served

    return TestClient(served(scoring_server.init(served_model.model), "probe", "3", task),
                      raise_server_exceptions=False)


@pytest.mark.parametrize("kind, body, says", [
    ("classification", {"inputs": []}, "send at least one text, e.g. {\"inputs\": [\"a text\""),
    ("classification", {"dataframe_split": {"columns": ["text"], "data": []}}, "send at least one text"),
    ("multilabel_classification", {"instances": []}, "send at least one text"),
    ("pair_classification", {"inputs": []}, "send at least one pair of texts, e.g. {\"inputs\": [[\"first text\""),
    ("pair_classification", {"dataframe_records": []}, "send at least one pair of texts"),
])
def test_a_request_without_inputs_is_a_400_that_says_to_send_one(classifier, multilabel, pair, monkeypatch, kind, body,
                                                                 says):
    """``{"inputs": []}`` got MLflow's own words on schema enforcement (the NER pyfunc alone said what to send)."""
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    model = {"classification": classifier, "multilabel_classification": multilabel, "pair_classification": pair}[kind]
    client = served_client(model, kind)
    answer = client.post("/invocations", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"].startswith("predict got no inputs; ") and says in answer.json()["message"]
    ok = client.post("/invocations", json={"inputs": [["a", "b"]] if kind == "pair_classification" else ["a text"]})
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 1, ok.text


@pytest.mark.parametrize("body, says", [
    ({"inputs": []}, "predict got no inputs; send at least one text or word list"),
    ({"inputs": [[]]}, "input 0 has no words (an empty word list or text); every input needs at least one word"),
    ({"inputs": [["John", ""]]}, "input 0: word 1 is '', an empty word; every word needs some text"),
    ({"inputs": [["Paris"], ["John", "  "]]}, "input 1: word 1 is '  ', an empty word"),
    ({"inputs": ["John lives in Paris", []]}, "input 1 has no words"),
    # a zero-width space alone: tagged 'O' here while `tuneline predict --input` refused the same row (serving QA)
    ({"inputs": [["Angela", "\u200b"]]},
     "input 0: word 1 is '\\u200b', an empty word; invisible characters alone are no word"),
    # MLflow's "Failed to enforce the model input schema (...): All arrays must be of the same length" (serving QA)
    ({"inputs": {"foo": ["a", "b"], "bar": ["c"]}},
     "inputs is an object of columns of different lengths ({'foo': 2, 'bar': 1}); send a list of texts or word "
     'lists, e.g. {"inputs": ["John lives in Paris", ["John", "Smith"]]}'),
])
def test_tagger_endpoint_refuses_empty_inputs_word_lists_and_words_with_a_400(tagger, monkeypatch, body, says):
    """Each was answered 200: no predictions, an empty row (read as "no entities"), or an 'O' for a word that is
    not there. Training quarantines such sentences (``no_empty_tokens``)."""
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    client = served_client(tagger, "token_classification")
    answer = client.post("/invocations", json=body)
    assert answer.status_code == 400, answer.text
    assert says in answer.json()["message"] and answer.headers["X-Model-Version"] == "3"
    ok = client.post("/invocations", json={"inputs": WORD_LISTS + SENTENCES[:1]})  # valid requests are unchanged
    assert ok.status_code == 200, ok.text
    expected = tagger.model.predict(WORD_LISTS + SENTENCES[:1])
    assert [p["tags"] for p in ok.json()["predictions"]] == [list(t) for t in expected["tags"]]


@pytest.mark.parametrize("body, says", [
    ({"inputs": [["where is my parcel", "please reset my password"]]},
     "input 0 is a list (['where is my parcel', 'please reset my password']), not a text"),
    ({"inputs": ["fine", ["where is my parcel"]]}, "input 1 is a list (['where is my parcel']), not a text"),
    ({"instances": [["where is my parcel", "please reset my password"]]}, "input 0 is a list"),
])
def test_one_text_endpoints_refuse_a_list_where_a_text_goes(classifier, multilabel, monkeypatch, body, says):
    """A batch wrapped in one list too many reached the model as a table of one row and a column per text, cut to
    its first column: one label, for the first text alone, with a 200. Both one-text kinds refuse it with a 400."""
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    for served_model, task in ((classifier, "classification"), (multilabel, "multilabel_classification")):
        client = served_client(served_model, task)
        answer = client.post("/invocations", json=body)
        assert answer.status_code == 400, answer.text
        assert says in answer.json()["message"] and 'send one string per input, e.g. {"inputs": [' in \
            answer.json()["message"]
        ok = client.post("/invocations", json={"inputs": TEXTS})  # a flat list is answered as before
        assert ok.status_code == 200 and len(ok.json()["predictions"]) == len(TEXTS)


def test_tagger_in_process_refuses_the_same_inputs(tagger):
    """``load_model(...).predict`` is the same pyfunc: MLflow's invalid-parameter error (HTTP 400), never a row."""
    for bad, says in (([], "no inputs"), ([[]], "empty word list"), ([["John", ""]], "word 1 is ''")):
        with pytest.raises(MlflowException, match=says) as caught:
            tagger.model.predict(bad)
        assert caught.value.get_http_status_code() == 400


@pytest.mark.parametrize("content_type, body, status, says", [
    # MLflow parsed it with the signature's column types and answered 400 "Failed to get pandas types as some of
    # the inputs types are not DataType.", which read as if the CSV were broken: no tuneline model takes CSV
    ("text/csv", "text\nwhere is my parcel\n", 415,
     "Content-Type text/csv is not accepted (MLflow cannot read this model's inputs from CSV); accepted content "
     'types: application/json, application/vnd.apache.parquet; send e.g. {"inputs": ["a text", "another text"]} '
     "as application/json"),
    ("text/plain", "where is my parcel", 415, "Content-Type text/plain is not accepted; accepted content types: "
                                               "application/json, application/vnd.apache.parquet"),
    (None, '{"inputs": ["where is my parcel"]}', 415,  # was a 500 (MLflow: None.split)
     "the request has no Content-Type header; accepted content types: application/json"),
])
def test_classifier_endpoint_names_the_content_types_it_accepts(classifier, monkeypatch, content_type, body,
                                                                 status, says):
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    client = served_client(classifier, "classification")
    answer = client.post("/invocations", content=body,
                         headers={"Content-Type": content_type} if content_type else {})
    assert answer.status_code == status, answer.text
    assert answer.json()["message"] == says if content_type == "text/csv" else says in answer.json()["message"]
    assert answer.headers["X-Model-Name"] == "probe" and "stack_trace" not in answer.json()


def test_classifier_endpoint_still_answers_json_and_parquet(classifier, monkeypatch):
    """The accepted types are answered as before: JSON (with or without a charset) and a Parquet frame."""
    import io

    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    client = served_client(classifier, "classification")
    expected = classifier.model.predict(TEXTS)
    for content_type in ("application/json", "application/json; charset=utf-8"):
        answer = client.post("/invocations", content=json.dumps({"inputs": TEXTS}),
                             headers={"Content-Type": content_type})
        assert answer.status_code == 200, answer.text
        assert_same_classification(pd.DataFrame(answer.json()["predictions"]), expected)
    parquet = io.BytesIO()
    pd.DataFrame({"text": TEXTS}).to_parquet(parquet)
    answer = client.post("/invocations", content=parquet.getvalue(),
                         headers={"Content-Type": "application/vnd.apache.parquet"})
    assert answer.status_code == 200, answer.text
    assert_same_classification(pd.DataFrame(answer.json()["predictions"]), expected)


def test_a_field_the_endpoint_does_not_read_is_a_400_naming_it(classifier, monkeypatch):
    """``{"inputs": [...], "threshold": 0.9}`` (or a misspelled ``"param"``) was answered 200 as if the setting had
    been applied: MLflow's scoring server reads its input field and ``params`` and drops every other key."""
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    client = served_client(classifier, "classification")
    answer = client.post("/invocations", json={"inputs": ["where is my parcel"], "param": {"x": 1}})
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"].startswith("the request has a field this endpoint does not read: 'param' (did "
                                               "you mean 'params'?); send only 'inputs' (and 'params')")
    answer = client.post("/invocations", json={"inputs": ["where is my parcel"], "threshold": 0.9, "debug": True})
    assert answer.status_code == 400 and "'threshold', 'debug'" in answer.json()["message"], answer.text
    ok = client.post("/invocations", json={"inputs": ["where is my parcel"], "params": {}})
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 1, ok.text


def test_a_request_over_the_size_limit_is_a_413_before_it_is_parsed(classifier, monkeypatch):
    """No limit held a worker and its memory on one client's mistaken upload; the limit is checked on the declared
    length and, for a chunked body, on the bytes read."""
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    from tuneline.serving_app import served

    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    client = TestClient(served(scoring_server.init(classifier.model), "probe", "3", "classification",
                               max_request_mb=0.01), raise_server_exceptions=False)
    big = {"inputs": ["where is my parcel " * 20] * 40}  # about 15 KB
    answer = client.post("/invocations", json=big)
    assert answer.status_code == 413 and answer.headers["X-Model-Version"] == "3", answer.text
    assert answer.json()["message"].startswith("the request body is 0.0 MB, more than this endpoint takes (0.01 MB, "
                                               "serve-model --max-request-mb): send the inputs in smaller batches")

    def chunks():
        yield b'{"inputs": ['
        for _ in range(40):
            yield b'"where is my parcel where is my parcel where is my parcel where is my parcel where is my", ' * 4
        yield b'"last"]}'

    chunked = client.post("/invocations", content=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413, chunked.text
    small = client.post("/invocations", json={"inputs": ["where is my parcel"]})
    assert small.status_code == 200, small.text
