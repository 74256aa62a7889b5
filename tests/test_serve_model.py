"""``tuneline serve-model``: the HTTP endpoint answers exactly what the registered model answers in-process.

Tiny random heads on the conftest BERT are registered with tuneline's own register task in a SQLite store (a
classifier in two versions with different weights, and a NER tagger). The endpoint is the real command, started as
a subprocess on a free 127.0.0.1 port and always stopped by a finalizer; requests use MLflow's JSON formats, and
every answer is compared with ``mlflow.pyfunc.load_model("models:/NAME/VERSION").predict`` on the same inputs
(labels and tags exact, scores to 1e-6). The rollout rule is pinned too: an endpoint serving ``@champion`` keeps
its version while it runs, and serves the promoted one after a restart.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tuneline.serving import wait_until_serving
from tuneline.tasks.register import register_model
from tuneline.tracking import RunContext
from tests_support import store_client

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["billing", "delivery", "account"]
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TEXTS = ["where is my parcel", "please reset my password", "refund the charge twice", "the app crash on login"]
SENTENCES = ["John Smith lives in Berlin .", "Paris"]
LONG = ["john", "smith", "visited", "berlin", ".", "acme", "corp", "works", "in", "paris"] * 4  # several windows
WORD_LISTS = [["John", "Smith", "lives", "in", "Berlin"], ["Paris"], LONG]
START_TIMEOUT_S = 120


@dataclass(frozen=True)
class Store:
    uri: str
    folder: Path


def save_random_head(base: Path, folder: Path, head: str, labels: list[str], max_length: int, seed: int) -> Path:
    """A head on the tiny BERT, initialised from ``seed`` and saved as tuneline saves a trained model."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model = getattr(transformers, head).from_pretrained(
        base, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)})
    model.config.tuneline_max_length = max_length
    model.save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_bert) -> Iterator[Store]:
    """``serve-intents`` v1 (champion) and v2 (other weights), ``serve-ner`` v1 (champion)."""
    folder = tmp_path_factory.mktemp("serve-model")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = store_client(uri)
    experiment = client.create_experiment("serve-model", artifact_location=(folder / "artifacts").as_uri())
    models = [("serve-intents", "classification", "AutoModelForSequenceClassification", CLASSES, 32, 0),
              ("serve-intents", "classification", "AutoModelForSequenceClassification", CLASSES, 32, 1),
              ("serve-ner", "token_classification", "AutoModelForTokenClassification", TAGS, 10, 0)]
    try:
        for i, (name, kind, head, labels, max_length, seed) in enumerate(models):
            model_dir = save_random_head(tiny_bert, folder / f"model-{i}", head, labels, max_length, seed)
            run = client.create_run(experiment)
            context = RunContext(run_id=run.info.run_id, experiment_id=experiment, tracking_uri=uri,
                                 run_dir=folder / run.info.run_id)
            version = register_model.fn(model_dir, kind, name, context, {"task": kind}).version
            # as its gate would leave it (gate.decision is the gate's last tag): promotable
            client.set_model_version_tag(name, version, "tuneline.status", "gated")
            client.set_model_version_tag(name, version, "gate.decision", "kept_champion")
        client.set_registered_model_alias("serve-intents", "champion", "1")
        client.set_registered_model_alias("serve-ner", "champion", "1")
        yield Store(uri=uri, folder=folder)
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])


def registered_predictions(store: Store, name: str, version: str, model_input: Any) -> pd.DataFrame:
    mlflow.set_registry_uri(store.uri)
    return mlflow.pyfunc.load_model(f"models:/{name}/{version}").predict(model_input)


# --- the endpoint as a subprocess --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Endpoint:
    url: str
    process: subprocess.Popen
    log: Path

    def served_line(self) -> str:
        return next(line for line in self.log.read_text(errors="replace").splitlines() if line.startswith("serving "))

    def post(self, body: bytes | dict, content_type: str = "application/json") -> tuple[int, Any]:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        request = urllib.request.Request(f"{self.url}/invocations", data=data, method="POST",
                                         headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")


def stop(process: subprocess.Popen) -> int:
    """SIGTERM, as a service manager stops it; SIGKILL only if it hangs (its server then gets SIGTERM from the
    kernel: serve-model sets PR_SET_PDEATHSIG on it)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def start(store: Store, name: str, *options: str, tmpdir: Path | None = None) -> Endpoint:
    """``tuneline serve-model NAME OPTIONS`` on a free port, its output to a log file; not waited for. ``tmpdir``:
    its temporary folder (where the served copy of the model is downloaded)."""
    port = free_port()
    log = store.folder / f"serve-{name}-{port}.log"
    command = [sys.executable, "-m", "tuneline.cli", "serve-model", name, *options, "--port", str(port),
               "--tracking-uri", store.uri]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=store.folder,
                                   env={**os.environ, "TMPDIR": str(tmpdir)} if tmpdir else None)
    return Endpoint(url=f"http://127.0.0.1:{port}", process=process, log=log)


def wait_ready(endpoint: Endpoint) -> Endpoint:
    try:
        wait_until_serving(endpoint.url, START_TIMEOUT_S, endpoint.process)
    except RuntimeError as error:
        pytest.fail(f"{error}; its log:\n{endpoint.log.read_text(errors='replace')[-3000:]}")
    return endpoint


@contextmanager
def serving(store: Store, name: str, *options: str, tmpdir: Path | None = None) -> Iterator[Endpoint]:
    """An endpoint that answers /ping, stopped whatever happens."""
    endpoint = start(store, name, *options, tmpdir=tmpdir)
    try:
        yield wait_ready(endpoint)
    finally:
        stop(endpoint.process)


@pytest.fixture(scope="module")
def endpoints(store) -> Iterator[dict[str, Endpoint]]:
    """The classifier's (default alias: champion) and the tagger's endpoints, started side by side (each spends
    its start-up importing torch and loading the model) and stopped at the end of the module."""
    started: dict[str, Endpoint] = {}
    try:
        started["intents"] = start(store, "serve-intents", "--max-request-mb", "1")
        started["ner"] = start(store, "serve-ner", "--alias", "champion")
        yield {key: wait_ready(endpoint) for key, endpoint in started.items()}
    finally:
        for endpoint in started.values():
            stop(endpoint.process)


@pytest.fixture(scope="module")
def intents(endpoints) -> Endpoint:
    return endpoints["intents"]


@pytest.fixture(scope="module")
def ner(endpoints) -> Endpoint:
    return endpoints["ner"]


# --- comparison --------------------------------------------------------------------------------------------------

def assert_same(served: Any, expected: Any, where: str = "") -> None:
    """JSON from the endpoint against the in-process value: strings, ints and structure exact, floats to 1e-6."""
    if isinstance(expected, dict):
        assert isinstance(served, dict) and list(served) == list(expected), where
        for key in expected:
            assert_same(served[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple, np.ndarray)):
        assert isinstance(served, list) and len(served) == len(expected), where
        for i, (a, b) in enumerate(zip(served, expected)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, (float, np.floating)):
        assert served == pytest.approx(float(expected), abs=1e-6), where
    elif isinstance(expected, np.integer):
        assert served == int(expected), where
    else:
        assert served == expected, where


def assert_answers_like(response: tuple[int, Any], expected: pd.DataFrame) -> None:
    status, body = response
    assert status == 200, body
    assert_same(body["predictions"], expected.to_dict(orient="records"), "predictions")


# --- tests -------------------------------------------------------------------------------------------------------

def test_classifier_endpoint_answers_like_the_registered_model(store, intents):
    assert intents.served_line().startswith("serving serve-intents version 1 (classification; asked for "
                                            "models:/serve-intents@champion)")
    expected = registered_predictions(store, "serve-intents", "1", TEXTS)
    assert set(expected["label"]) <= set(CLASSES)
    assert_answers_like(intents.post({"inputs": TEXTS}), expected)
    split = {"dataframe_split": {"columns": ["text"], "data": [[text] for text in TEXTS]}}
    assert_answers_like(intents.post(split), registered_predictions(store, "serve-intents", "1",
                                                                    pd.DataFrame({"text": TEXTS})))
    assert_answers_like(intents.post({"inputs": TEXTS[:1]}), expected.iloc[:1])


def test_ner_endpoint_tags_word_lists_and_texts_like_the_registered_model(store, ner):
    assert ner.served_line().startswith("serving serve-ner version 1 (token_classification;")
    expected = registered_predictions(store, "serve-ner", "1", WORD_LISTS)
    assert [len(tags) for tags in expected["tags"]] == [len(words) for words in WORD_LISTS]  # one tag per word
    assert_answers_like(ner.post({"inputs": WORD_LISTS}), expected)
    assert_answers_like(ner.post({"inputs": SENTENCES}), registered_predictions(store, "serve-ner", "1", SENTENCES))


@pytest.mark.parametrize("endpoint, body, content_type, says", [
    ("intents", b"{not json", "application/json", "valid JSON"),
    ("intents", {"texts": TEXTS}, "application/json", "input fields"),
    ("intents", b"where is my parcel", "text/plain", "content types"),
    ("ner", {"inputs": [["John", 3]]}, "application/json", "word"),
    ("ner", {"dataframe_split": {"columns": ["tokens"], "data": [[["Paris"]]]}}, "application/json", "'inputs'"),
    # each answered with a confident label before (a null was parsed as the text "None", an id column cut from a
    # frame as the texts); a nested list [["a", "b"]] still becomes its first word in MLflow's parser, not caught
    ("intents", {"inputs": ["where is my parcel", ""]}, "application/json", "input 1 is an empty text"),
    ("intents", {"inputs": ["where is my parcel", None]}, "application/json", "input 1 is null"),
    ("ner", {"inputs": ["John lives in Paris", None]}, "application/json", "input 1 is missing"),
    ("ner", {"inputs": ["  "]}, "application/json", "input 0 is an empty text"),
    # a frame without a text column (an "id, text" frame is answered on its texts: the columns are taken by name)
    ("intents", {"dataframe_split": {"columns": ["id"], "data": [["7"]]}}, "application/json", "column named 'id'"),
    ("intents", {"inputs": ["fine"], "params": {"threshold": 0.99}}, "application/json",
     "params 'threshold' is not declared by this model"),
])
def test_malformed_request_is_a_4xx_with_a_message(request, endpoint, body, content_type, says):
    served = request.getfixturevalue(endpoint)
    status, answer = served.post(body, content_type)
    assert 400 <= status < 500, (status, answer)
    message = answer["message"] if isinstance(answer, dict) else answer
    assert says in message
    assert served.post({"inputs": ["Paris"]})[0] == 200  # and the endpoint keeps serving


def test_a_request_over_max_request_mb_is_a_413_and_the_endpoint_keeps_serving(intents, ner):
    """``--max-request-mb 1`` reaches every worker of the real endpoint; the default (16 MB) serves the tagger."""
    status, answer = intents.post({"inputs": ["where is my parcel, it has not arrived"] * 30_000})  # about 1.2 MB
    assert status == 413 and answer["message"].startswith("the request body is 1.2 MB, more than this endpoint "
                                                          "takes (1 MB, serve-model --max-request-mb)"), answer
    assert intents.post({"inputs": TEXTS})[0] == 200
    status, answer = ner.post({"inputs": ["John lives in Paris"] * 60_000})  # about 1.4 MB: under the default
    assert status == 200 and len(answer["predictions"]) == 60_000


def served_version(endpoint: Endpoint, body: dict) -> tuple[int, str, str]:
    """The status of a POST and the model name and version headers it came back with."""
    request = urllib.request.Request(f"{endpoint.url}/invocations", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, headers = response.status, response.headers
    except urllib.error.HTTPError as error:
        status, headers = error.code, error.headers
    return status, headers.get("X-Model-Name"), headers.get("X-Model-Version")


def model_info(endpoint: Endpoint) -> dict:
    with urllib.request.urlopen(f"{endpoint.url}/model", timeout=30) as response:
        return json.loads(response.read())


def test_extra_columns_are_ignored_in_any_order_by_the_real_endpoint(store, intents):
    """The served app takes the ``text`` column by name before MLflow sees the request (it kept the first)."""
    expected = registered_predictions(store, "serve-intents", "1", TEXTS)
    assert_answers_like(intents.post({"dataframe_split": {"columns": ["id", "text"], "data": [
        [i, text] for i, text in enumerate(TEXTS)]}}), expected)
    assert_answers_like(intents.post({"inputs": [{"id": i, "text": text} for i, text in enumerate(TEXTS)]}), expected)


def test_every_answer_names_the_version_that_gave_it(intents, ner):
    """A client or a canary check reads which version answered, from the answer itself (headers) or ``/model``."""
    assert served_version(intents, {"inputs": TEXTS}) == (200, "serve-intents", "1")
    assert served_version(intents, {"inputs": [None]}) == (400, "serve-intents", "1")  # refusals too
    assert served_version(ner, {"inputs": SENTENCES}) == (200, "serve-ner", "1")
    assert model_info(intents) == {"name": "serve-intents", "version": "1", "task": "classification"}
    assert model_info(ner) == {"name": "serve-ner", "version": "1", "task": "token_classification"}


def test_unknown_model_alias_or_version_is_one_line_naming_what_exists(store, capsys):
    from tuneline.cli import main

    cases = [(["no-such-model"], "no registered model 'no-such-model'"),
             (["serve-intents", "--alias", "nightly"], "has no alias 'nightly' (its aliases: "),
             (["serve-intents", "--version", "9"], "has no version 9")]
    for arguments, says in cases:
        assert main(["serve-model", *arguments, "--tracking-uri", store.uri, "--port", str(free_port())]) == 1
        err = capsys.readouterr().err
        assert err.startswith("tuneline: ") and says in err and err.count("\n") == 1, err
    assert "champion -> v1" in err


def test_busy_port_is_refused_before_anything_starts(store, capsys):
    from tuneline.cli import main

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve-model", "serve-intents", "--tracking-uri", store.uri, "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err


def test_endpoint_serving_champion_picks_up_a_promotion_on_restart(store, intents, capsys, tmp_path):
    """The rollout rule: a running endpoint keeps the version it resolved at start; a restart serves the new one."""
    from tuneline.cli import main

    before = registered_predictions(store, "serve-intents", "1", TEXTS)
    after = registered_predictions(store, "serve-intents", "2", TEXTS)
    assert list(before["score"]) != pytest.approx(list(after["score"]), abs=1e-6)  # the versions are told apart
    assert main(["promote", "serve-intents", "2", "--reason", "serving test", "--tracking-uri", store.uri]) == 0
    try:
        assert_answers_like(intents.post({"inputs": TEXTS}), before)  # still v1 until restarted
        with serving(store, "serve-intents", "--alias", "champion", tmpdir=tmp_path) as restarted:
            assert [path.name[:15] for path in tmp_path.iterdir()] == ["tuneline-serve-"]  # the served copy
            assert restarted.served_line().startswith("serving serve-intents version 2 ")
            assert_answers_like(restarted.post({"inputs": TEXTS}), after)
            assert served_version(restarted, {"inputs": TEXTS}) == (200, "serve-intents", "2")
            assert model_info(intents)["version"] == "1"  # the endpoint that was not restarted says so
        assert restarted.process.returncode == 0  # SIGTERM stops it cleanly ...
        assert list(tmp_path.iterdir()) == []  # ... removes the copy ...
        with pytest.raises(OSError):  # ... and nothing listens on its port any more
            socket.create_connection(("127.0.0.1", int(restarted.url.rsplit(":", 1)[1])), timeout=2).close()
    finally:
        MlflowClient(tracking_uri=store.uri, registry_uri=store.uri).set_registered_model_alias(
            "serve-intents", "champion", "1")
    capsys.readouterr()


def answer_and_version(endpoint: Endpoint, body: dict) -> tuple[int, str | None, Any]:
    """One POST: its status, the version its headers name, and its JSON body."""
    request = urllib.request.Request(f"{endpoint.url}/invocations", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get("X-Model-Version"), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("X-Model-Version"), error.read().decode(errors="replace")


def wait_for_version(endpoint: Endpoint, version: str, timeout_s: float = 90.0) -> float:
    """Seconds until ``GET /model`` names ``version``; fails with the server's log after ``timeout_s``."""
    import time

    start = time.monotonic()
    while model_info(endpoint)["version"] != version:
        if time.monotonic() - start > timeout_s:
            pytest.fail(f"still not serving version {version}; log:\n{endpoint.log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return time.monotonic() - start


def test_endpoint_following_the_alias_switches_on_promotion_and_rollback_without_refusing_a_request(store, tmp_path):
    """``--follow``: a promotion and a rollback are served without a restart; while the new version loads beside
    the old one, requests keep being answered (none refused), each by the version its headers name (its answers are
    that version's)."""
    import threading

    from tuneline.cli import main

    expected = {version: registered_predictions(store, "serve-intents", version, TEXTS).to_dict(orient="records")
                for version in ("1", "2")}
    answers: list[tuple[int, str | None, Any]] = []
    done = threading.Event()

    def keep_asking(endpoint: Endpoint) -> None:
        while not done.is_set():
            answers.append(answer_and_version(endpoint, {"inputs": TEXTS}))

    try:
        with serving(store, "serve-intents", "--follow", "1", tmpdir=tmp_path) as endpoint:
            assert "following serve-intents@champion: read every 1 s" in endpoint.log.read_text()
            assert model_info(endpoint)["version"] == "1"
            client = threading.Thread(target=keep_asking, args=(endpoint,))
            client.start()
            try:
                assert main(["promote", "serve-intents", "2", "--reason", "follow test",
                             "--tracking-uri", store.uri]) == 0
                wait_for_version(endpoint, "2")
                assert main(["rollback", "serve-intents", "--tracking-uri", store.uri]) == 0
                wait_for_version(endpoint, "1")
            finally:
                done.set()
                client.join()
            log = endpoint.log.read_text(errors="replace")
        assert "serve-intents@champion moved: serving version 2 (was version 1)" in log
        assert "serve-intents@champion moved: serving version 1 (was version 2)" in log
        assert [status for status, _, _ in answers if status != 200] == []
        assert {version for _, version, _ in answers} == {"1", "2"}  # asked before, during and after both moves
        for _, version, body in answers:
            assert_same(body["predictions"], expected[version], f"an answer naming version {version}")
        assert list(tmp_path.iterdir()) == []  # every downloaded version is removed when the server stops
    finally:
        MlflowClient(tracking_uri=store.uri, registry_uri=store.uri).set_registered_model_alias(
            "serve-intents", "champion", "1")


def test_follow_is_refused_with_a_version(store, capsys):
    from tuneline.cli import main

    assert main(["serve-model", "serve-intents", "--version", "2", "--follow", "--tracking-uri", store.uri]) == 2
    assert "--follow follows an alias" in capsys.readouterr().err


def test_load_benchmark_smoke_run_has_no_errors_and_every_field(store, tmp_path):
    """benchmarks/serve_load.py in smoke mode on this module's tiny classifier (it starts and stops its own
    endpoint; its --tiny mode, which also registers a model, is the same path after the registration)."""
    output = tmp_path / "serve_load.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "serve_load.py"), "--model", "serve-intents",
                           "--version", "1", "--tracking-uri", store.uri, "--requests", "50", "--clients", "4",
                           "--warmup", "4", "--output", str(output)],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["errors"] == 0 and result["requests"] == 50 and result["status_counts"] == {"200": 50}
    assert result["load"]["clients"] == 4
    assert set(result["latency_ms"]) >= {"p50", "p95", "p99"}
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p95"] <= result["latency_ms"]["p99"]
    assert result["throughput_rps"] > 0 and result["machine"]["cpu_count"] >= 1
    assert result["model"]["name"] == "serve-intents" and result["model"]["version"] == "1"
    assert result["model"]["served_log_line"].startswith("serving serve-intents version 1 ")
