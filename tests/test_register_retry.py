"""Registration is safe to repeat: a retry after a lost answer completes the version it created, never a second one.

The model is a tiny random classification head on the conftest BERT, registered by ``register_model`` itself into a
SQLite store in a temporary folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    RESOURCE_EXHAUSTED,
    TEMPORARILY_UNAVAILABLE,
)
from mlflow.tracking import MlflowClient

from tuneline.errors import UserError
from tuneline.tasks import register
from tuneline.tasks.register import register_model, transient
from tuneline.tracking import RunContext
from tests_support import store_client

MODEL = "retry-intents"
LABELS = ["billing", "shipping", "account"]


@pytest.fixture(scope="module")
def model_dir(tiny_bert, tmp_path_factory) -> Path:
    """A random head saved as tuneline saves a trained classifier (tokenizer, id2label, tuneline_max_length)."""
    import torch
    import transformers

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("retry-model")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)})
    model.config.tuneline_max_length = 32
    model.save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(folder)
    return folder


@pytest.fixture
def store(tmp_path) -> Iterator[tuple[MlflowClient, str, Path]]:
    """A SQLite MLflow store (tracking and registry) with its artifacts in the test's folder."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)  # as a flow's tracked_run does: log_model registers through the global URIs
    mlflow.set_registry_uri(uri)
    client = store_client(uri)
    experiment = client.create_experiment("retry", artifact_location=(tmp_path / "artifacts").as_uri())
    try:
        yield client, experiment, tmp_path
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])


def new_run(store: tuple[MlflowClient, str, Path]) -> RunContext:
    client, experiment, folder = store
    run = client.create_run(experiment)
    return RunContext(run_id=run.info.run_id, experiment_id=experiment, tracking_uri=client.tracking_uri,
                      run_dir=folder / run.info.run_id)


def assert_one_completed_version(client: MlflowClient, run: RunContext) -> str:
    [version] = client.search_model_versions(f"name = '{MODEL}'")
    assert version.run_id == run.run_id
    assert version.tags["tuneline.status"] == "registered" and version.tags["task"] == "classification"
    assert {k: str(v) for k, v in client.get_registered_model(MODEL).aliases.items()} == {
        "challenger": str(version.version)}
    return str(version.version)


def test_registering_the_same_run_twice_yields_one_version(store, model_dir):
    client = store[0]
    run = new_run(store)
    first = register_model.fn(model_dir, "classification", MODEL, run, {"task": "classification"}, {"accuracy": 0.5})
    again = register_model.fn(model_dir, "classification", MODEL, run, {"task": "classification"}, {"accuracy": 0.5})
    assert again == first
    assert assert_one_completed_version(client, run) == first.version == "1"
    # the test metrics were logged once, by the first call (the second found the version completed)
    [logged] = client.search_logged_models(experiment_ids=[run.experiment_id])
    assert [m.key for m in logged.metrics] == ["test.accuracy"]


def test_a_lost_answer_is_retried_by_prefect_and_completes_the_version_it_created(store, model_dir, monkeypatch):
    """The registry creates the version, then the answer is lost: Prefect retries the task, which finds the version
    of its run and completes it (tags, challenger) instead of registering a second one."""
    client = store[0]
    created = []
    create = MlflowClient._create_model_version

    def created_then_lost(self, *args, **kwargs):  # noqa: ANN001, ANN202
        version = create(self, *args, **kwargs)
        created.append(str(version.version))
        if len(created) == 1:
            raise MlflowException("connection reset by peer (after the version was created)",
                                  error_code=TEMPORARILY_UNAVAILABLE)
        return version

    monkeypatch.setattr(MlflowClient, "_create_model_version", created_then_lost)
    run = new_run(store)
    registered = register_model.with_options(retry_delay_seconds=0)(
        model_dir, "classification", MODEL, run, {"task": "classification"}, {"accuracy": 0.5})
    assert created == ["1"]  # the retry did not create another version
    assert assert_one_completed_version(client, run) == registered.version == "1"
    [logged] = client.search_logged_models(experiment_ids=[run.experiment_id])  # the retry logged the metrics
    assert [m.key for m in logged.metrics] == ["test.accuracy"]


def test_a_refusal_is_not_retried(store, model_dir, monkeypatch):
    calls = []

    def refused(*_args, **_kwargs):  # noqa: ANN202
        calls.append(1)
        raise MlflowException("registered model name is invalid", error_code=INVALID_PARAMETER_VALUE)

    monkeypatch.setattr(register, "neutralise_orphans", refused)
    with pytest.raises(MlflowException, match="is invalid"):
        register_model.with_options(retry_delay_seconds=0)(model_dir, "classification", MODEL, new_run(store), {})
    assert len(calls) == 1


@pytest.mark.parametrize(("error", "retried"), [
    (MlflowException("database is locked", error_code=TEMPORARILY_UNAVAILABLE), True),  # SQLite busy: 503
    (MlflowException("API request to /api/2.0/mlflow/... failed", error_code=INTERNAL_ERROR), True),  # 500
    (MlflowException("too many requests", error_code=RESOURCE_EXHAUSTED), True),  # 429
    (ConnectionResetError("connection reset by peer"), True),
    (TimeoutError("read timed out"), True),
    (MlflowException("bad name", error_code=INVALID_PARAMETER_VALUE), False),
    (MlflowException("no such model", error_code=RESOURCE_DOES_NOT_EXIST), False),
    (UserError("fix your config"), False),
    (KeyError("metric"), False),
])
def test_only_errors_that_may_pass_on_a_second_try_are_transient(error, retried):
    assert transient(error) is retried
