"""``tuneline promote`` refuses a version that could not be served: its model files gone, or another task's model.

Operator QA: each was made champion with exit 0; an endpoint following the alias then kept serving the old
champion while ``champion`` named the new one, and only a later ``tuneline doctor`` noticed the missing files.
Real MLflow (a SQLite store), real logged pyfunc models, the real CLI.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pytest
from mlflow.tracking import MlflowClient

from tuneline.cli import main

NAME = "promote-unservable"


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # noqa: ANN001 - MLflow's signature
        return ["pos"] * len(model_input)


def register(client: MlflowClient, task: str) -> tuple[str, Path]:
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant())
    version = client.create_model_version(NAME, info.model_uri, run_id=info.run_id, tags={"task": task})
    return str(version.version), Path(client.get_model_version_download_uri(NAME, version.version)
                                      .removeprefix("file://"))


@pytest.fixture
def store(workdir) -> Iterator[tuple[str, MlflowClient]]:
    """A SQLite store in the test's folder holding the registered model NAME (no version yet): its URI and client."""
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.create_registered_model(NAME)
        yield uri, client
    finally:
        mlflow.set_tracking_uri(None)


def test_promote_refuses_a_version_whose_files_are_gone_or_of_another_task(store, workdir, capsys):
    uri, client = store
    first, _ = register(client, "classification")
    second, files = register(client, "classification")
    tagger, _ = register(client, "token_classification")
    promote = ["promote", NAME, "--tracking-uri", uri, "--reason", "qa"]
    assert main([*promote[:2], first, *promote[2:]]) == 0
    capsys.readouterr()

    shutil.move(files, workdir / "away")
    assert main([*promote[:2], second, *promote[2:]]) == 1
    err = capsys.readouterr().err
    source = client.get_model_version(NAME, second).source
    assert err == (f"tuneline: the model files of {NAME} v{second} are missing from the artifact store (nothing at "
                   f"{source}): restore them from a backup, or make another version champion (tuneline promote "
                   f"{NAME} VERSION --reason ...)\n")
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == first  # nothing moved

    assert main([*promote[:2], tagger, *promote[2:]]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tuneline: {NAME} v{tagger} is a 'token_classification' model and the champion "
                          f"v{first} a 'classification' one: one registered model serves one kind"), err
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == first

    shutil.move(workdir / "away", files)  # restored: promoted as any other
    assert main([*promote[:2], second, *promote[2:]]) == 0
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == second


def test_doctor_leaves_a_version_registered_outside_any_run_alone(store, workdir, capsys):
    """Named "run  MISSING, gate never finished" (no run id between the two spaces), and ``--fix`` tagged it
    orphaned: someone's own version made unpromotable (operator QA)."""
    uri, client = store
    _, files = register(client, "classification")
    own = client.create_model_version(NAME, str(files), tags={"task": "classification"})  # no run
    for fix in ([], ["--fix"]):
        assert main(["doctor", "-m", NAME, "--tracking-uri", uri, "--work-dir", str(workdir / "w"), *fix]) == 0
        out = capsys.readouterr().out
        assert f"{NAME} v{own.version}:" not in out and "MISSING" not in out, out
    assert "tuneline.status" not in (client.get_model_version(NAME, own.version).tags or {})
