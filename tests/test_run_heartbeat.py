"""Liveness across hosts: an open run beats a heartbeat (``tuneline.heartbeat``), so a reader on another machine
can tell a run killed there (its version orphaned) from one still at work. Before, such a run stayed "pending" for
ever: its process tag names a host where the pid means nothing here."""

from __future__ import annotations

import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from tests_support import run_config, store_client
from tuneline import run_process
from tuneline.registry import STATUS, find_orphans, find_pending, neutralise_orphans
from tuneline.run_process import (
    ALIVE,
    GONE,
    HEARTBEAT_STALE_S,
    HEARTBEAT_TAG,
    PROCESS_TAG,
    UNKNOWN,
    liveness,
    process_tag,
)
from tuneline.tracking import tracked_run

ELSEWHERE = "worker-7.example:4242:1700000000.00"


def test_a_process_on_another_host_is_told_by_its_heartbeat():
    now = 2_000_000_000.0
    assert liveness(ELSEWHERE, None, now) == UNKNOWN            # a run from before the heartbeat: cannot be told
    assert liveness(ELSEWHERE, "not a time", now) == UNKNOWN
    assert liveness(ELSEWHERE, str(now - 30), now) == ALIVE
    assert liveness(ELSEWHERE, str(now - HEARTBEAT_STALE_S - 1), now) == GONE
    assert liveness(process_tag(), str(now - 10 * HEARTBEAT_STALE_S), now) == ALIVE  # this host: the pid decides


def test_an_open_run_beats_until_it_closes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(run_process, "HEARTBEAT_EVERY_S", 0.2)
    with tracked_run(run_config("classification", path=tmp_path / "d.csv")) as run:
        client = MlflowClient()
        first = later = float(client.get_run(run.run_id).data.tags[HEARTBEAT_TAG])
        deadline = time.monotonic() + 15  # a beat every 0.2 s; the deadline only bounds a loaded machine
        while later == first and time.monotonic() < deadline:
            time.sleep(0.3)
            later = float(client.get_run(run.run_id).data.tags[HEARTBEAT_TAG])
        assert later > first and abs(later - time.time()) < 5
    assert not [t for t in threading.enumerate() if t.name == f"tuneline-heartbeat-{run.run_id[:8]}"]
    closed = float(client.get_run(run.run_id).data.tags[HEARTBEAT_TAG])
    time.sleep(0.5)
    assert float(client.get_run(run.run_id).data.tags[HEARTBEAT_TAG]) == closed


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store_client(uri)
    return client, client.create_experiment("elsewhere")


def register_from(client: MlflowClient, experiment: str, name: str, heartbeat: float | None) -> tuple[str, str]:
    """A RUNNING run on another host (its heartbeat at ``heartbeat``) that registered a version and has not gated it."""
    tags = {PROCESS_TAG: ELSEWHERE, **({HEARTBEAT_TAG: f"{heartbeat:.1f}"} if heartbeat is not None else {})}
    run = client.create_run(experiment, tags=tags)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return run.info.run_id, str(version.version)


def test_a_version_left_by_a_run_whose_heartbeat_stopped_on_another_host_is_an_orphan(store):
    client, experiment = store
    silent_run, silent = register_from(client, experiment, "m", time.time() - HEARTBEAT_STALE_S - 60)
    beating_run, beating = register_from(client, experiment, "m", time.time() - 20)
    old_run, old = register_from(client, experiment, "m", None)  # from before the heartbeat existed

    [orphan] = find_orphans(client, "m")
    assert (orphan.version, orphan.run_id) == (silent, silent_run)
    assert orphan.run_status == "RUNNING, but its process worker-7.example:4242 is gone"
    pending = {p.version: p.liveness for p in find_pending(client, "m")}
    assert pending == {beating: ALIVE, old: UNKNOWN}

    neutralise_orphans(client, "m")
    assert client.get_model_version("m", silent).tags[STATUS] == "orphaned"
    assert client.get_run(silent_run).info.status == "KILLED"
    assert client.get_run(beating_run).info.status == "RUNNING" and client.get_run(old_run).info.status == "RUNNING"
    assert STATUS not in client.get_model_version("m", beating).tags


class FlakyStore:
    """Fault injection: the real MLflow client, whose writes fail while ``down`` is set (a tracking server
    restarting); every attempt to write is counted."""

    def __init__(self, client: MlflowClient) -> None:
        self.client, self.down, self.attempts = client, threading.Event(), 0

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.attempts += 1
        if self.down.is_set():
            raise ConnectionError("tracking server unreachable")
        self.client.set_tag(run_id, key, value)


def test_a_heartbeat_that_could_not_be_written_is_tried_again_soon_not_at_the_next_beat(store):
    """After an outage longer than HEARTBEAT_STALE_S every other host reads the run as gone until its heartbeat is
    written again; before, the next try waited a whole beat (60 s), now a failed one is retried every few seconds
    and the beat goes back to its pace once it passes."""
    client, experiment = store
    run_id = client.create_run(experiment, tags={PROCESS_TAG: ELSEWHERE}).info.run_id
    flaky = FlakyStore(client)
    with run_process.Heartbeat(flaky, run_id, every_s=0.5, retry_s=0.05):
        flaky.down.set()
        deadline = time.monotonic() + 15
        while flaky.attempts < 2 and time.monotonic() < deadline:  # the first beat after the write on opening failed
            time.sleep(0.02)
        failed = flaky.attempts
        time.sleep(1.0)
        assert flaky.attempts - failed >= 6  # retried every 0.05 s; at the beat's pace it would be 2
        flaky.down.clear()
        back = time.time()
        deadline = time.monotonic() + 15
        while float(client.get_run(run_id).data.tags[HEARTBEAT_TAG]) < back and time.monotonic() < deadline:
            time.sleep(0.02)
        assert float(client.get_run(run_id).data.tags[HEARTBEAT_TAG]) >= back - 0.1
        steady = flaky.attempts
        time.sleep(1.2)
        assert flaky.attempts - steady <= 4  # back to a beat every 0.5 s, not retrying
