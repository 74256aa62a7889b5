"""The watcher: landing folder → batch ledger → Prefect events (tuneline.events, flows/watch.py, `tuneline watch`).

Events are captured with Prefect's own test harness (``asserting_events_worker``: the events worker with an
``AssertingEventsClient`` that keeps what it is sent); the ledger is a real SQLite file and batches are real files.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prefect.events.clients import AssertingEventsClient
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.testing.fixtures import asserting_events_worker  # noqa: F401 - Prefect's fixture, used by name

from tuneline.cli import main
from tuneline.config import ConfigError, build_config
from tuneline.demo import demo_config_dict
from tuneline.events import (
    BATCH_LANDED,
    BATCHES_PENDING,
    announce_at_start,
    announce_pending,
    announce_stranded,
    open_ledger,
    scan_and_announce,
    watch,
)
from tuneline.ledger import DUPLICATE, LANDED

MODEL = "watched-intents"
CSV = "text,intent\nwhere is my parcel,shipping\nreset my password,account\n"


@pytest.fixture
def config(tmp_path):
    (tmp_path / "landing").mkdir()
    return build_config(demo_config_dict(tmp_path / "tickets.csv"), [
        f"retrain.landing={tmp_path / 'landing'}", f"tracking.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"tracking.registered_model={MODEL}", "retrain.watch_interval_s=60"])


def land(config, name: str, body: str = CSV, marker: bool = True) -> Path:
    path = Path(config.retrain.landing) / name
    path.write_text(body)
    if marker:
        path.with_name(name + ".done").touch()
    return path


def emitted(worker, name: str) -> list:
    """The events named ``name`` that Prefect's asserting events client has received so far."""
    worker.wait_until_empty()  # everything sent has reached the client
    client = getattr(worker, "_client", None)  # the worker starts its client in its own thread, when it can
    assert client is None or isinstance(client, AssertingEventsClient)
    return [e for e in getattr(client, "events", []) if e.event == name]  # nothing sent yet: nothing received


def test_each_complete_batch_is_recorded_and_announced_once(config, asserting_events_worker):
    a = land(config, "batch-01.csv")
    land(config, "batch-02.csv", CSV + "my card was charged twice,billing\n")

    recorded = scan_and_announce(config)

    assert [(b.name, b.state) for b in recorded] == [("batch-01.csv", LANDED), ("batch-02.csv", LANDED)]
    events = emitted(asserting_events_worker, BATCH_LANDED)
    assert len(events) == 2
    first = events[0]
    assert first.resource.id == f"tuneline.batch.{recorded[0].content_hash}"
    assert first.resource.name == "batch-01.csv"
    assert first.resource["tuneline.model"] == MODEL
    assert first.payload == {"path": str(a.absolute()), "content_hash": recorded[0].content_hash, "format": "csv",
                             "size_bytes": len(CSV)}

    assert scan_and_announce(config) == []  # scanning again records and announces nothing
    assert len(emitted(asserting_events_worker, BATCH_LANDED)) == 2


def test_a_restarted_watcher_does_not_announce_again(config, asserting_events_worker):
    land(config, "batch-01.csv")
    lines: list[str] = []
    watch(config, once=True, echo=lines.append)  # first watcher
    watch(config, once=True, echo=lines.append)  # restarted: the batch is in the ledger, announced minutes ago

    assert len(lines) == 2 and lines[0].startswith("landed    batch-01.csv")
    # --once says why it announced nothing (it printed nothing at all: operator QA)
    assert lines[1] == ("nothing to announce: batch-01.csv landed under 60 s ago and its tuneline.batch.landed wakes "
                        "a run that takes every free batch (batch-01.csv)")
    assert len(emitted(asserting_events_worker, BATCH_LANDED)) == 1
    assert emitted(asserting_events_worker, BATCHES_PENDING) == []  # recorded within the interval: not stranded


def test_partial_files_without_their_marker_are_ignored_until_marked(config, asserting_events_worker):
    partial = land(config, "batch-03.csv", marker=False)
    land(config, "batch-04.csv.part", marker=True)  # a temporary name is never a batch, marker or not

    assert scan_and_announce(config) == []
    assert emitted(asserting_events_worker, BATCH_LANDED) == []

    partial.with_name("batch-03.csv.done").touch()
    assert [b.name for b in scan_and_announce(config)] == ["batch-03.csv"]
    assert [e.resource.name for e in emitted(asserting_events_worker, BATCH_LANDED)] == ["batch-03.csv"]


def test_a_duplicate_copy_is_recorded_but_not_announced(config, asserting_events_worker):
    land(config, "batch-05.csv")
    scan_and_announce(config)
    land(config, "batch-05-copy.csv")  # the same bytes under another name

    recorded = scan_and_announce(config)

    assert [(b.name, b.state) for b in recorded] == [("batch-05-copy.csv", DUPLICATE)]
    assert [e.resource.name for e in emitted(asserting_events_worker, BATCH_LANDED)] == ["batch-05.csv"]


def test_pending_announces_unclaimed_batches_once_all_are_older_than_one_interval(config, asserting_events_worker):
    land(config, "batch-06.csv")
    land(config, "batch-07.csv", CSV + "the app crashes,technical\n")
    with open_ledger(config) as ledger:  # a watcher that died after recording, before announcing
        stranded = ledger.scan(config.retrain.landing)
    now = datetime.now(timezone.utc)

    assert announce_pending(config, now=now + timedelta(seconds=30)) == []  # younger than the 60 s interval
    pending = announce_pending(config, now=now + timedelta(seconds=61))

    assert [b.name for b in pending] == ["batch-06.csv", "batch-07.csv"]
    [event] = emitted(asserting_events_worker, BATCHES_PENDING)
    assert event.resource.id == f"tuneline.model.{MODEL}" and event.resource["tuneline.model"] == MODEL
    assert event.payload["count"] == 2
    assert [b["content_hash"] for b in event.payload["batches"]] == [b.content_hash for b in stranded]
    assert emitted(asserting_events_worker, BATCH_LANDED) == []  # never announced as landed twice


def test_pending_names_only_free_batches_and_waits_for_a_fresh_one(config, asserting_events_worker):
    land(config, "batch-08.csv")
    with open_ledger(config) as ledger:
        ledger.scan(config.retrain.landing)
        ledger.claim("run-1")  # a run holds it: not pending
    later = datetime.now(timezone.utc) + timedelta(seconds=120)
    assert announce_pending(config, now=later) == []

    land(config, "batch-09.csv", CSV + "the app crashes,technical\n")
    with open_ledger(config) as ledger:
        ledger.scan(config.retrain.landing)
    just_after = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert announce_pending(config, now=just_after) == []  # recorded within the interval
    assert [b.name for b in announce_pending(config, now=later)] == ["batch-09.csv"]


def test_a_watcher_checks_for_pending_batches_on_its_first_scan_only(config, asserting_events_worker):
    config.retrain.watch_interval_s = 0.01
    land(config, "batch-10.csv")
    with open_ledger(config) as ledger:
        ledger.scan(config.retrain.landing)  # recorded, never announced
    time.sleep(0.05)  # older than one (0.01 s) interval
    lines: list[str] = []
    scans = iter(range(3))

    def sleep(_seconds: float) -> None:
        time.sleep(0.05)
        if next(scans) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        watch(config, echo=lines.append, sleep=sleep)

    assert len(emitted(asserting_events_worker, BATCHES_PENDING)) == 1  # three scans, one pending event
    assert [line.split()[0] for line in lines] == ["pending"]


def test_a_batch_whose_woken_run_failed_before_claiming_is_announced_again_with_a_back_off(
        config, asserting_events_worker, tmp_path, monkeypatch):
    """Fault injection: the retraining run a batch woke fails before it claims anything (its MLflow server does not
    answer). The batch stays landed; the stranded rule announces it again, once it and the failed run's end are
    retrain.reannounce_after_s old, and not while a retraining run is queued."""
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    from tuneline.flows.retrain import retrain_flow

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    config.tracking.tracking_uri = f"http://127.0.0.1:{closed_port()}"  # nothing listens there
    config.ledger.url = f"sqlite:///{tmp_path / 'ledger.db'}"
    land(config, "batch-30.csv")
    assert [b.name for b in scan_and_announce(config)] == ["batch-30.csv"]
    with pytest.raises(Exception):
        retrain_flow(config, trigger="event")
    with open_ledger(config) as ledger:
        assert [b.name for b in ledger.batches(LANDED)] == ["batch-30.csv"]  # not claimed, not lost

    wait = timedelta(seconds=config.retrain.reannounce_after_s)
    now = datetime.now(timezone.utc)
    assert announce_stranded(config, now=now + wait / 2) == []  # the batch and the failed run too recent
    assert emitted(asserting_events_worker, BATCHES_PENDING) == []
    with get_client(sync_client=True) as client:  # a retraining run waiting in the queue will claim it
        queued = client.create_flow_run(retrain_flow, parameters={"config": config.model_dump(mode="json")},
                                        state=Scheduled())
        try:
            assert announce_stranded(config, now=now + wait * 2) == []
        finally:
            client.delete_flow_run(queued.id)
        # a cron deployment's future runs are SCHEDULED too: they kept the rule from ever announcing, so a killed
        # run's or a requeued batch waited for the next tick (a day, for a nightly cron; operator QA)
        tomorrow = client.create_flow_run(retrain_flow, parameters={"config": config.model_dump(mode="json")},
                                          state=Scheduled(scheduled_time=now + timedelta(days=1)))
        try:
            assert [b.name for b in announce_stranded(config, now=now + wait * 2)] == ["batch-30.csv"]
        finally:
            client.delete_flow_run(tomorrow.id)
    [event] = emitted(asserting_events_worker, BATCHES_PENDING)
    assert event.payload["rule"] == "stranded" and event.payload["batches"][0]["path"].endswith("batch-30.csv")
    assert event.resource["tuneline.model"] == MODEL


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ctrl_c_during_a_scan_ends_the_watcher_when_that_scan_is_done(config, asserting_events_worker):
    """The CLI's Ctrl-C handler sets ``stop`` (a KeyboardInterrupt raised inside a Prefect client call can be lost):
    the scan in progress still records and announces its batch, and the hour-long wait that follows never starts."""
    config.retrain.watch_interval_s = 3600
    land(config, "batch-11.csv")
    stop = threading.Event()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        stop.set()  # Ctrl-C arrives while the first scan is announcing

    started = time.monotonic()
    watch(config, echo=echo, stop=stop)

    assert time.monotonic() - started < 120  # not 3600
    assert [line.split()[:2] for line in lines] == [["landed", "batch-11.csv"]]
    assert len(emitted(asserting_events_worker, BATCH_LANDED)) == 1


def test_a_missing_landing_folder_names_the_key_to_set(config, tmp_path):
    config.retrain.landing = None
    with pytest.raises(ConfigError, match=r"^retrain.landing is not set"):
        scan_and_announce(config)
    config.retrain.landing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match=r"^retrain.landing: the landing folder .*nowhere does not exist"):
        scan_and_announce(config)


def test_watch_flow_scans_once_and_returns_what_it_announced(config, asserting_events_worker):
    from tuneline.flows.watch import watch_flow

    path = land(config, "batch-11.csv")
    assert watch_flow(config) == [str(path.absolute())]
    assert watch_flow(config) == []
    assert [e.resource.name for e in emitted(asserting_events_worker, BATCH_LANDED)] == ["batch-11.csv"]


def test_watch_command_without_a_prefect_api_says_how_to_start_one(config, tmp_path, capsys):
    import yaml

    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        code = main(["watch", "--config", str(tmp_path / "cfg.yaml"), "--once"])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("tuneline: no Prefect API to announce batches to")
    assert "prefect server start" in err and "PREFECT_API_URL" in err


def test_serve_command_without_a_prefect_api_says_how_to_start_one(config, tmp_path, capsys):
    """Without PREFECT_API_URL, `tuneline serve` served the loop on a private throwaway API that no watcher, worker
    or UI could reach: the deployments' events and schedules went nowhere."""
    import yaml

    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        code = main(["serve", "--config", str(tmp_path / "cfg.yaml")])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith("tuneline: no Prefect API to serve the loop's deployments on")
    assert "prefect server start" in err and "PREFECT_API_URL" in err


def test_a_batch_held_by_a_killed_run_whose_lease_ran_out_is_announced_again(config, asserting_events_worker,
                                                                            tmp_path):
    """A killed run's batches go free when its lease runs out, but no event wakes a run to take them over: the
    stranded rule names them too."""
    config.ledger.url = f"sqlite:///{tmp_path / 'ledger-lease.db'}"
    config.ledger.lease_s = 1
    land(config, "batch-31.csv")
    with open_ledger(config) as ledger:
        ledger.scan(config.retrain.landing)
    from tuneline.ledger import Ledger, ledger_url_for

    with Ledger(ledger_url_for(config.ledger.url, ""), MODEL, lease_s=1) as ledger:
        assert [b.name for b in ledger.claim("killed-run")] == ["batch-31.csv"]
    later = datetime.now(timezone.utc) + timedelta(seconds=2 * config.retrain.reannounce_after_s)
    assert announce_stranded(config, now=later) == []  # the lease is still live
    time.sleep(1.5)
    assert [b.name for b in announce_stranded(config, now=later)] == ["batch-31.csv"]
    assert emitted(asserting_events_worker, BATCHES_PENDING)[-1].payload["rule"] == "stranded"


def test_validated_batches_waiting_for_min_new_rows_are_not_stranded(config, asserting_events_worker, tmp_path):
    """Batches a run validated and held back for ``retrain.min_new_rows`` were announced again with a WARNING at
    every ``reannounce_after_s``, each announcement starting a run that only waited again (loop QA). Once they
    bring enough rows (a lower minimum), they are announced."""
    config.ledger.url = f"sqlite:///{tmp_path / 'ledger-waiting.db'}"
    land(config, "batch-40.csv")
    from tuneline.ledger import Ledger, ledger_url_for

    with Ledger(ledger_url_for(config.ledger.url, ""), MODEL) as ledger:
        ledger.scan(config.retrain.landing)
        [batch] = ledger.claim("waiting-run")
        ledger.mark_validated("waiting-run", batch.content_hash, 12, 0)
        ledger.release("waiting-run")
    later = datetime.now(timezone.utc) + timedelta(seconds=2 * config.retrain.reannounce_after_s)
    config.retrain.min_new_rows = 50
    assert announce_stranded(config, now=later) == []
    assert announce_at_start(config, now=later) == ([], (
        "nothing to announce: batch-40.csv is validated and waiting for retrain.min_new_rows=50 (12 row(s) so far); "
        "the next batch to land wakes a run that takes them all"))
    config.retrain.min_new_rows = 12
    assert [b.name for b in announce_stranded(config, now=later)] == ["batch-40.csv"]
