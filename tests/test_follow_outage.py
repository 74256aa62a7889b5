"""``serve-model --follow`` through a registry outage: a real ``mlflow server`` stopped mid-follow and started again.

Operator QA: with the server stopped for 105 s the follower's log had no line, as MLflow's client retried the read
of the alias for about 4 minutes before raising. Now the follower says so within about one interval, once per
outage, and once when it can read the alias again, serving its version all along.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from services import MlflowServer

NAME, ALIAS, INTERVAL_S = "follow-outage", "champion", 1.0


@pytest.fixture
def server(tmp_path: Path, monkeypatch) -> Iterator[MlflowServer]:
    """A real tracking server on a SQLite store, with version 1 of NAME under ALIAS; the follower's registry."""
    running = MlflowServer(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts", tmp_path / "server.log",
                           Path(sys.executable).parent / "mlflow").start()
    try:
        client = MlflowClient(tracking_uri=running.url, registry_uri=running.url)
        run = client.create_run(client.create_experiment("follow-outage"))
        client.create_registered_model(NAME)
        version = client.create_model_version(NAME, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                                              tags={"task": "classification"})
        client.set_registered_model_alias(NAME, ALIAS, version.version)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", running.url)
        monkeypatch.setenv("MLFLOW_REGISTRY_URI", running.url)
        # as serve-model sets them: an earlier test in this worker may have left MLflow's globals on its own store,
        # and they win over the environment (CI: the follower read another test's SQLite store)
        saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(running.url)
        mlflow.set_registry_uri(running.url)
        try:
            yield running
        finally:
            mlflow.set_tracking_uri(saved[0])
            mlflow.set_registry_uri(saved[1])
    finally:
        running.stop()


def follower_lines(caplog) -> list[tuple[float, str]]:
    return [(record.created, record.getMessage()) for record in caplog.records
            if record.name == "uvicorn.error" and NAME in record.getMessage()]


def test_an_outage_is_logged_within_an_interval_once_and_once_when_it_ends(server, caplog, tmp_path):
    from tuneline.serving_app import FollowingApp

    caplog.set_level(logging.INFO, logger="uvicorn.error")
    following = FollowingApp(object(), NAME, ALIAS, "1", "classification", INTERVAL_S, tmp_path)
    try:
        time.sleep(2.5 * INTERVAL_S)  # reads that succeed: nothing to say
        assert follower_lines(caplog) == []
        stopped_at = time.time()
        server.stop()
        time.sleep(5 * INTERVAL_S)  # about 5 reads of a registry that does not answer
        down = follower_lines(caplog)
        assert [line for _, line in down] == [
            f"cannot read {NAME}@{ALIAS} ({server.url}: connection refused); still serving version 1, retrying every "
            "1 s: the log says so when it can read it again"], down
        assert down[0][0] - stopped_at < 2 * INTERVAL_S + 1.0, "said late"
        server.start()  # the same port and store
        deadline = time.time() + 30
        while len(follower_lines(caplog)) < 2 and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(2 * INTERVAL_S)
    finally:
        following._stopped.set()
    assert [line for _, line in follower_lines(caplog)][1:] == [
        f"{NAME}@{ALIAS} can be read again: it points at version 1 (serving version 1)"]
    assert following.version == "1"
