"""What a second exploratory QA of ``tuneline serve-model`` found, each pinned on the app the command serves.

* A model name that is not Latin-1 made every answer (``/ping`` too) a 500: header values are Latin-1.
* ``params`` the model does not declare were dropped by MLflow with a log line only, and answered 200.
* JSON nested 1,500 deep was a text/plain 500 (RecursionError) without the version headers.
* A chunked body over ``--max-request-mb`` was read whole before the 413.
* A key given twice in one JSON object was read as its last value, without a word.
* Half of a UTF-16 surrogate pair failed as "'utf-8' codec can't encode character", naming no input.
* Wrong shapes for the one-text kinds got MLflow's or pandas' words; a gzip body a UnicodeDecodeError.
* An extra key beside ``text`` was ignored or refused depending on the key order of the JSON object.
* serve-model's start-up mistakes (a name MLflow refuses, a port out of range, a host that is no address, a SQLite
  store that does not exist) printed an internal error's hint, or created an empty database.
* ``--follow`` warned at every interval while its alias was removed.
* 413 and 415 answers said ``"error_code": "BAD_REQUEST"``.

The models are tiny random heads on the conftest BERT, registered by tuneline's own register task and loaded back
from the registry (see ``test_serving_inputs.py``); requests go to MLflow's scoring app wrapped by
``serving_app.served``, in-process, or to it under a real uvicorn server where the wire matters.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from test_serving_inputs import register_every_kind, store  # noqa: F401 - store is a fixture

TEXTS = ["where is my parcel", "please reset my password"]
ONE_TEXT_SHAPE = ('send each input as a text, e.g. {"inputs": ["a text", "another text"]}, or every one as an '
                  'object with "text", e.g. {"inputs": [{"text": "a text"}]}')


@pytest.fixture(scope="module")
def models(store, tiny_bert, tmp_path_factory):  # noqa: F811 - the fixture imported above
    """One registered version of each kind, by task."""
    return register_every_kind(store, tiny_bert, tmp_path_factory, "qa2")


@pytest.fixture
def client(models, monkeypatch):
    """``client(task, **served_options)``: ``tuneline serve-model``'s app for that kind's model (a TestClient)."""
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    from tuneline.serving_app import served

    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")  # scoring_server.init sets it in os.environ

    def make(task: str, name: str = "probe", **options):
        return TestClient(served(scoring_server.init(models[task].model), name, "3", task, **options),
                          raise_server_exceptions=False)

    return make


def refused(answer, status: int = 400) -> str:
    """The message of a refusal, after checking its status, its shape and the version headers."""
    assert answer.status_code == status, answer.text
    assert answer.headers["X-Model-Version"] == "3" and answer.headers["X-Model-Name"] == "probe"
    assert set(answer.json()) == {"error_code", "message"}, answer.json()
    return answer.json()["message"]


def labels(answer) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [row["label"] for row in answer.json()["predictions"]]


# --- 1. a model name that is not Latin-1 -------------------------------------------------------------------------

def test_a_name_that_is_not_printable_ascii_is_percent_encoded_in_the_header(client):
    name = "qa 名前 ü%#1"  # MLflow registers it
    app = client("classification", name=name)
    for answer in (app.get("/ping"), app.post("/invocations", json={"inputs": TEXTS})):
        assert answer.status_code == 200, answer.text  # each was a 500 (UnicodeEncodeError: 'latin-1' codec)
        assert answer.headers["X-Model-Name"] == "qa%20%E5%90%8D%E5%89%8D%20%C3%BC%25%231"
        assert unquote(answer.headers["X-Model-Name"]) == name and answer.headers["X-Model-Version"] == "3"
    assert app.get("/model").json() == {"name": name, "version": "3", "task": "classification"}  # the exact name
    assert client("classification", name="intents v2 (a/b)").get("/ping").headers["X-Model-Name"] == \
        "intents v2 (a/b)"  # printable ASCII goes as it is


# --- 2. params the model does not declare ------------------------------------------------------------------------

def test_params_the_model_does_not_declare_are_a_400_naming_them(client, models):
    app = client("classification")
    assert refused(app.post("/invocations", json={"inputs": ["x"], "params": {"threshold": 0.99}})) == (
        "params 'threshold' is not declared by this model (this model declares no params): leave it out (MLflow "
        "would ignore it without a word)")
    assert refused(app.post("/invocations", json={"inputs": ["x"], "params": {"batch_size": 0, "top_k": 2}})) == (
        "params 'batch_size', 'top_k' are not declared by this model (this model declares no params): leave them "
        "out (MLflow would ignore it without a word)")
    assert refused(app.post("/invocations", json={"inputs": ["x"], "params": [1]})).startswith(
        "params is [1], not a JSON object (this model declares no params): send params as an object")
    assert len(labels(app.post("/invocations", json={"inputs": ["x"], "params": {}}))) == 1
    # a declared name passes (to MLflow, which applies it)
    declaring = client("classification", params=("batch_size",))
    assert len(labels(declaring.post("/invocations", json={"inputs": ["x"], "params": {"batch_size": 8}}))) == 1
    assert "(this model takes only 'batch_size')" in refused(
        declaring.post("/invocations", json={"inputs": ["x"], "params": {"threshold": 1}}))
    from tuneline.serving_app import declared_params

    assert declared_params(models["classification"].model) == ()  # what serve-model passes: tuneline declares none


# --- 3. deeply nested JSON ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1500, 40])
def test_deeply_nested_json_is_a_400_not_a_500(client, depth):
    """1,500 levels (3 KB) raised a RecursionError in the JSON parser: a text/plain 500 with no version header."""
    body = b'{"inputs": ' + b"[" * depth + b"1" + b"]" * depth + b"}"
    for task in ("classification", "token_classification"):
        assert refused(client(task).post("/invocations", content=body, headers={
            "Content-Type": "application/json"})).startswith(
            "the JSON is nested too deeply (more than 32 levels of lists and objects); send a list of inputs, e.g. ")


# --- 4. a chunked body over the limit ----------------------------------------------------------------------------

@pytest.fixture
def live_server(models, monkeypatch) -> Iterator[tuple[str, int]]:
    """The served classifier under a real uvicorn server (max 0.01 MB) on a free port, stopped afterwards."""
    import uvicorn
    from mlflow.pyfunc import scoring_server

    from tuneline.serving_app import served

    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    app = served(scoring_server.init(models["classification"].model), "probe", "3", "classification",
                 max_request_mb=0.01)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def chunked_request(address: tuple[str, int], chunks: list[bytes], end: bool) -> bytes:
    """POST /invocations with a chunked body (no Content-Length); the final empty chunk only when ``end``. What the
    server answers within 10 s (b"" if nothing)."""
    with socket.create_connection(address, timeout=10) as connection:
        connection.sendall(b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for chunk in chunks:
                if select.select([connection], [], [], 0.1)[0]:
                    break  # the server answered early (a 413): stop sending, as a client watching its socket does
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                if end:
                    connection.sendall(b"0\r\n\r\n")
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server closed after its answer while we were still sending; the answer is read below
        answer = b""
        try:
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                data = connection.recv(65536)
                if not data:
                    break
                answer += data
        except (TimeoutError, ConnectionResetError):
            pass
        return answer


def test_a_chunked_body_over_the_limit_is_refused_once_the_limit_is_read(live_server):
    """The body is counted as it comes: the 413 is sent while the client is still sending (the old reading waited
    for the whole body, so this request, whose body never ends, got no answer at all)."""
    piece = b'"where is my parcel where is my parcel where is my parcel", ' * 40  # about 2.4 KB
    answer = chunked_request(live_server, [b'{"inputs": ['] + [piece] * 8, end=False)  # 19 KB of 10 KB allowed
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert b"x-model-version: 3" in head.lower()
    assert json.loads(body) == {"error_code": "REQUEST_ENTITY_TOO_LARGE", "message": (
        "the request body is more than this endpoint takes (0.01 MB, serve-model --max-request-mb): send the "
        "inputs in smaller batches")}
    small = chunked_request(live_server, [b'{"inputs": ', b'["where is my parcel"]}'], end=True)
    assert small.startswith(b"HTTP/1.1 200 ") and b'"label"' in small, small[:300]  # the cached body reaches MLflow


def test_413_and_415_carry_error_codes_of_their_status(client):
    app = client("classification", max_request_mb=0.001)
    too_large = app.post("/invocations", json={"inputs": ["where is my parcel"] * 100})
    assert too_large.status_code == 413 and too_large.json()["error_code"] == "REQUEST_ENTITY_TOO_LARGE"
    wrong_type = app.post("/invocations", content="a text", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415 and wrong_type.json()["error_code"] == "UNSUPPORTED_MEDIA_TYPE"


# --- 5. a key given twice ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    (b'{"inputs": ["a"], "inputs": ["b", "c"]}',
     "the request repeats the key 'inputs' in one JSON object (its keys: ['inputs', 'inputs']); only the last value "
     "would be read: send each key once"),
    (b'{"inputs": [{"text": "a", "text": "b"}]}',
     "the request repeats the key 'text' in one JSON object (its keys: ['text', 'text']); only the last value would "
     "be read: send each key once"),
])
def test_a_key_given_twice_is_a_400_naming_it(client, body, message):
    app = client("classification")
    assert refused(app.post("/invocations", content=body, headers={"Content-Type": "application/json"})) == message


# --- 6. half of a surrogate pair ---------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["classification", "token_classification", "pair_classification"])
def test_half_of_a_surrogate_pair_is_a_400_naming_the_input(client, task):
    body = (b'{"inputs": [["ok", "fine"], ["ok", "\\ud83d"]]}' if task == "pair_classification"
            else b'{"inputs": ["ok", "\\ud83d"]}')
    message = refused(client(task).post("/invocations", content=body, headers={"Content-Type": "application/json"}))
    assert message == ("input 1 holds half of a UTF-16 surrogate pair ('\\ud83d'), no character: send the whole "
                       'character (both halves, e.g. "\\ud83d\\ude00" for an emoji) or the character itself in UTF-8')
    whole = client(task).post("/invocations", content=body.replace(b"\\ud83d", b"\\ud83d\\ude00"),
                              headers={"Content-Type": "application/json"})
    assert whole.status_code == 200, whole.text  # both halves: one emoji, a text


# --- 7. wrong shapes for a one-text model ------------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    ({"inputs": [{"text": "a"}, "b"]},
     f"input 1 is a text but input 0 is an object: one request takes one shape; {ONE_TEXT_SHAPE}"),
    ({"inputs": [{"text": "a"}, {"sentence": "b"}]}, f"input 1 has no 'text' (its keys: ['sentence']); {ONE_TEXT_SHAPE}"),
    ({"inputs": [{}]}, f"input 0 has no 'text' (it is an empty object); {ONE_TEXT_SHAPE}"),
    ({"dataframe_records": [{}]}, "record 0 of dataframe_records has no 'text' (it is an empty object); every "
                                  'record needs \'text\', e.g. {"dataframe_records": [{"text": "a text"}]}'),
    ({"dataframe_split": {"columns": ["text", "text"], "data": [["a", "b"]]}},
     "dataframe_split names the column 'text' twice; name each column once, e.g. {\"dataframe_split\": "
     '{"columns": ["text"], "data": [["a text"]]}}'),
    ({"inputs": {"text": ["a", "b"]}},
     f"inputs is an object of columns (['text']), which MLflow cannot read for this model; {ONE_TEXT_SHAPE}"),
])
@pytest.mark.parametrize("task", ["classification", "multilabel_classification"])
def test_a_wrong_shape_for_a_one_text_model_is_a_400_naming_the_input_and_the_shape(client, task, body, message):
    assert refused(client(task).post("/invocations", json=body)) == message


def test_a_compressed_body_is_a_415_that_says_to_send_it_uncompressed(client):
    import gzip

    answer = client("classification").post("/invocations", content=gzip.compress(json.dumps({"inputs": TEXTS})
                                                                                   .encode()),
                                           headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert refused(answer, 415) == ("Content-Encoding gzip is not accepted: send the body uncompressed (no "
                                    "Content-Encoding header), as application/json or Parquet")
    assert answer.json()["error_code"] == "UNSUPPORTED_MEDIA_TYPE"


# --- 8. extra keys, in any order ---------------------------------------------------------------------------------

def test_extra_keys_are_ignored_in_any_order(client, models):
    """JSON objects are unordered: ``{"text", "id"}`` was answered and ``{"id", "text"}`` refused."""
    app = client("classification")
    expected = models["classification"].model.predict(TEXTS)["label"].tolist()
    for body in ({"inputs": [{"text": t, "id": i} for i, t in enumerate(TEXTS)]},
                 {"inputs": [{"id": i, "text": t} for i, t in enumerate(TEXTS)]},
                 {"instances": [{"id": i, "text": t, "lang": "en"} for i, t in enumerate(TEXTS)]},
                 {"dataframe_records": [{"id": i, "text": t} for i, t in enumerate(TEXTS)]},
                 {"dataframe_split": {"columns": ["id", "text"], "data": [[i, t] for i, t in enumerate(TEXTS)]}}):
        assert labels(app.post("/invocations", json=body)) == expected, body
    pairs = [["where is my parcel", "it has not arrived"], ["reset my password", "refund the charge"]]
    expected = models["pair_classification"].model.predict(pd.DataFrame(pairs, columns=["text", "text_pair"]))
    pair_app = client("pair_classification")
    for body in ({"dataframe_records": [{"id": i, "text": a, "text_pair": b} for i, (a, b) in enumerate(pairs)]},
                 {"inputs": [{"text_pair": b, "id": i, "text": a} for i, (a, b) in enumerate(pairs)]},
                 {"dataframe_split": {"columns": ["text_pair", "id", "text"],
                                      "data": [[b, i, a] for i, (a, b) in enumerate(pairs)]}}):
        answer = pair_app.post("/invocations", json=body)
        assert labels(answer) == expected["label"].tolist(), body
        assert [row["score"] for row in answer.json()["predictions"]] == pytest.approx(expected["score"].tolist())


# --- 9, 10. serve-model's start-up mistakes ----------------------------------------------------------------------

def test_a_name_mlflow_refuses_is_one_line_without_the_internal_error_hint(store, capsys):  # noqa: F811
    from tuneline.cli import main

    assert main(["serve-model", "qa cls/../x", "--tracking-uri", store[0]]) == 1
    assert capsys.readouterr().err == (
        "tuneline: cannot serve 'qa cls/../x': Invalid model name 'qa cls/../x'. Names cannot contain '/' or ':'. "
        "(give the NAME a model is registered under)\n")


def test_a_port_out_of_range_is_refused_by_argparse(store, capsys):  # noqa: F811
    from tuneline.cli import main

    uri = store[0]
    for port in ("99999", "-1", "0"):
        with pytest.raises(SystemExit) as stopped:
            main(["serve-model", "m", "--port", port, "--tracking-uri", uri])
        assert stopped.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"tuneline serve-model: error: argument --port/-p: {port} is not a port number: give one from 1 to 65535")


def test_a_sqlite_store_that_does_not_exist_is_named_and_not_created(capsys, tmp_path):
    from tuneline.cli import main

    missing = tmp_path / "none.db"
    assert main(["serve-model", "m", "--tracking-uri", f"sqlite:///{missing}"]) == 1
    assert capsys.readouterr().err == (
        f"tuneline: the MLflow store sqlite:///{missing} has no database file ({missing} does not exist): point "
        "--tracking-uri (or $MLFLOW_TRACKING_URI) at the store the model is registered in\n")
    assert not missing.exists()  # MLflow's client created an empty database there


def test_a_host_that_is_no_address_of_this_machine_says_so(capsys):
    from tuneline.errors import UserError
    from tuneline.serving import require_free_port

    for host in ("256.1.1.1", "192.0.2.1"):  # no address at all; an address of another machine (TEST-NET-1)
        with pytest.raises(UserError) as caught:
            require_free_port(host, 5001)
        assert str(caught.value).startswith(f"cannot listen on {host}:5001 (")
        assert str(caught.value).endswith(f"--host {host} is not an address of this machine: give one of its "
                                          "addresses, 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)")
        assert "another server" not in str(caught.value)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(UserError, match="another server is using it: pick another --port"):
            require_free_port("127.0.0.1", busy.getsockname()[1])


# --- 11. --follow when the alias is removed ----------------------------------------------------------------------

def test_following_a_removed_alias_says_so_once_and_once_when_it_is_back(models, store, caplog, tmp_path):  # noqa: F811
    from tuneline.serving_app import FollowingApp

    name = "qa2-classification"
    registry = MlflowClient(tracking_uri=store[0], registry_uri=store[0])
    registry.set_registered_model_alias(name, "challenger", "1")
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    following = FollowingApp(object(), name, "challenger", "1", "classification", 0.1, tmp_path)
    try:
        registry.delete_registered_model_alias(name, "challenger")
        time.sleep(1.5)  # about 15 reads of the alias
        registry.set_registered_model_alias(name, "challenger", "1")
        time.sleep(1.0)
    finally:
        following._stopped.set()
    lines = [record.getMessage() for record in caplog.records if record.name == "uvicorn.error"]
    assert [line for line in lines if "challenger" in line] == [
        f"{name}@challenger was removed (Registered model alias challenger not found.); still serving version 1, "
        "and reading the alias every 0.1 s: the log says so when it is back",
        f"{name}@challenger is back: it points at version 1 (serving version 1)"], lines


# --- 12. the NER answer's keys are documented --------------------------------------------------------------------

def test_every_key_of_an_ner_answer_is_documented(client):
    from tuneline.pyfunc import token_tagger

    answer = client("token_classification").post("/invocations", json={"inputs": ["John Smith lives in Paris"]})
    assert answer.status_code == 200, answer.text
    rows = answer.json()["predictions"]
    keys = set(rows[0]) | {key for row in rows for entity in row["entities"] for key in entity}
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    serving = readme[readme.index("## Serving over HTTP"):readme.index("## Speed")]
    for key in keys | {"type", "text", "start", "end", "score", "first_word", "last_word"}:
        assert f"``{key}``" in token_tagger.__doc__, key
        assert f"`{key}`" in serving, key
