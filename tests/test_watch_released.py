"""`tuneline watch --once` and the batches a killed run held (operator QA).

After `tuneline doctor -c loop.yaml --fix` released a killed run's batch (``validated``, no lease), `watch --once`
announced nothing and printed nothing: the pending rule read only ``landed`` batches, and the batch waited eleven
minutes for the stranded rule. Now a free batch no queued run will take is announced at once, `--once` says why when
it announces nothing, and doctor says how its released batches are retrained.

Real processes (a run that claims and is killed with SIGKILL), a real SQLite ledger and MLflow store, the real CLI
and a real Prefect API (the session's test harness); events are captured with Prefect's asserting events worker.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import yaml
from prefect.testing.fixtures import asserting_events_worker  # noqa: F401 - Prefect's fixture, used by name

from test_events_watch import emitted
from tuneline.cli import main
from tuneline.config import load_config
from tuneline.events import BATCHES_PENDING, watch
from tuneline.ledger import Ledger, default_ledger_url
from tests_support import store_client

MODEL = "released-tickets"


def write_loop(root: Path) -> tuple[Path, str]:
    """The loop's config (``loop.yaml``) and its MLflow store's URI; one complete 5-row batch ``b12.csv`` landed."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    landing = root / "landing"
    landing.mkdir()
    pd.DataFrame({"text": [f"ticket {i}" for i in range(5)], "label": ["a", "b", "a", "b", "a"]}).to_csv(
        landing / "b12.csv", index=False)
    (landing / "b12.csv.done").touch()
    config = root / "loop.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"path": str(root / "base.csv")}, "work_dir": str(root / "w"),
        "tracking": {"tracking_uri": uri, "registered_model": MODEL}, "retrain": {"landing": str(landing)}}))
    return config, uri


def validate_and_wait(root: Path, uri: str, ready: Path) -> subprocess.Popen:
    """A process that opens an MLflow run (with its process tag), claims every landed batch, validates them and
    waits: a retraining run killed after validation, as the operator's was."""
    code = textwrap.dedent(f"""
        import pathlib, time
        from mlflow.tracking import MlflowClient
        from tuneline.ledger import Ledger, default_ledger_url
        from tuneline.run_process import PROCESS_TAG, process_tag
        client = MlflowClient(tracking_uri={uri!r}, registry_uri={uri!r})
        experiment = client.create_experiment("released", artifact_location={(root / 'art').as_uri()!r})
        run = client.create_run(experiment, tags={{PROCESS_TAG: process_tag()}})
        with Ledger(default_ledger_url({uri!r}), {MODEL!r}, lease_s=3600) as ledger:
            ledger.scan({str(root / 'landing')!r})
            for batch in ledger.claim(run.info.run_id):
                ledger.mark_validated(run.info.run_id, batch.content_hash, 5, 0)
        pathlib.Path({str(ready)!r}).write_text(run.info.run_id)
        time.sleep(600)
    """)
    return subprocess.Popen([sys.executable, "-c", code], cwd=root)


def killed_holder(root: Path, uri: str) -> str:
    """Run :func:`validate_and_wait` until it holds the batch, then SIGKILL it; its MLflow run id."""
    ready = root / "claimed"
    holder = validate_and_wait(root, uri, ready)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.exists(), "the holder did not claim"
    finally:
        holder.kill()
        holder.wait()
    return ready.read_text()


def test_watch_once_announces_a_batch_doctor_released_at_once(tmp_path, capsys, asserting_events_worker):
    config, uri = write_loop(tmp_path)
    run_id = killed_holder(tmp_path, uri)
    store_client(uri).create_registered_model(MODEL)

    assert main(["watch", "-c", str(config), "--once"]) == 0  # held under the dead run's live lease: says so
    said = capsys.readouterr().out.splitlines()
    assert said[-1].startswith(f"nothing to announce: 0 free batches; b12.csv held by run {run_id} until ")
    assert said[-1].endswith("UTC (a killed run's: `tuneline doctor -c CONFIG --fix` releases them)")

    assert main(["doctor", "-c", str(config), "--fix"]) == 0
    report = capsys.readouterr().out
    assert (f"run {run_id} holds b12.csv under a lease until " in report and "is gone: released, run closed KILLED; "
            f"run `tuneline watch -c {config} --once` to retrain on them now" in report)
    # "now" waited 271 s for the killed run's slot of the Prefect limit, which only Prefect's lease frees (loop QA)
    assert ("the retraining run waits for the killed run's Prefect concurrency slot until Prefect's lease on it runs "
            "out (up to 5 minutes after the kill)") in report
    with Ledger(default_ledger_url(uri), MODEL) as ledger:
        assert [(b.name, b.state) for b in ledger.free_batches()] == [("b12.csv", "validated")]

    assert main(["watch", "-c", str(config), "--once"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[1:] == ["pending   1 free batch(es) no retraining run is queued for (b12.csv): announced "
                        f"{BATCHES_PENDING}"]
    [event] = emitted(asserting_events_worker, BATCHES_PENDING)
    assert event.resource["tuneline.model"] == MODEL and event.payload["batches"][0]["path"].endswith("b12.csv")


def test_watch_once_says_why_a_free_batch_is_not_announced_while_a_retraining_run_is_queued(
        tmp_path, asserting_events_worker):
    """A queued run claims every free batch when it starts: no second run is queued for it, and --once says so. A
    running one claimed when it started (or was killed and still shows Running): it does not stop the announcement."""
    from prefect.client.orchestration import get_client
    from prefect.states import Running, Scheduled

    from tuneline.flows.retrain import retrain_flow

    config, uri = write_loop(tmp_path)
    loop = load_config(config)
    with Ledger(default_ledger_url(uri), MODEL) as ledger:
        ledger.scan(loop.retrain.landing)
        ledger.claim("failed-run")
        ledger.release("failed-run")  # a run that failed after validating nothing: the batch is landed and free
    time.sleep(1.1)
    lines: list[str] = []
    parameters = {"config": loop.model_dump(mode="json")}
    with get_client(sync_client=True) as client:
        queued = client.create_flow_run(retrain_flow, parameters=parameters, state=Scheduled())
        try:
            watch(loop, interval_s=1, once=True, echo=lines.append)
        finally:
            client.delete_flow_run(queued.id)
        assert lines == [f"nothing to announce: b12.csv is free but retraining run {queued.name} (Scheduled) is "
                         "queued; it takes every free batch when it starts"]
        assert emitted(asserting_events_worker, BATCHES_PENDING) == []

        running = client.create_flow_run(retrain_flow, parameters=parameters, state=Running())
        try:
            watch(loop, interval_s=1, once=True, echo=lines.append)
        finally:
            client.delete_flow_run(running.id)
    assert lines[1].startswith("pending   1 free batch(es) no retraining run is queued for (b12.csv)")
    assert len(emitted(asserting_events_worker, BATCHES_PENDING)) == 1


def test_a_retraining_run_nothing_starts_is_named_with_the_way_out(tmp_path, asserting_events_worker):
    """A run queued but Late for hours (``tuneline serve`` stopped; or created before the deployments moved to a
    work pool, which no worker takes) counted as queued, so neither rule announced the free batches, and the watcher
    said nothing of it: the loop stopped without a word (operator QA). Both rules still leave it to the operator (one
    more announcement queues one more run nothing starts), but they now name the run, how late it is and the fix;
    the long-running watcher says it once, not at every scan."""
    import threading
    from contextlib import suppress
    from datetime import datetime, timedelta, timezone

    from prefect.client.orchestration import get_client
    from prefect.states import Late, Scheduled

    from tuneline.flows.retrain import retrain_flow

    config, uri = write_loop(tmp_path)
    loop = load_config(config)
    with Ledger(default_ledger_url(uri), MODEL) as ledger:
        ledger.scan(loop.retrain.landing)
    parameters = {"config": loop.model_dump(mode="json")}
    overdue = datetime.now(timezone.utc) - timedelta(hours=2, seconds=30)
    lines: list[str] = []

    def scan(times: int) -> None:
        """The long-running watcher, stopped after ``times`` scans."""
        stop, scans = threading.Event(), iter(range(times - 1))
        watch(loop, interval_s=1, echo=lines.append, stop=stop,
              sleep=lambda _s: next(scans, None) is None and stop.set())

    with get_client(sync_client=True) as client:
        late = client.create_flow_run(retrain_flow, parameters=parameters, state=Late(scheduled_time=overdue))
        created = [late]
        try:
            time.sleep(1.1)
            watch(loop, interval_s=1, once=True, echo=lines.append)
            scan(4)
            # a run due a minute ago is not stuck: nothing is said of it
            client.delete_flow_run(late.id)
            quiet = len(lines)
            created.append(client.create_flow_run(retrain_flow, parameters=parameters, state=Scheduled(
                scheduled_time=datetime.now(timezone.utc) - timedelta(minutes=1))))
            scan(3)
        finally:
            for run in created:
                with suppress(Exception):  # the late one is deleted above
                    client.delete_flow_run(run.id)
    way_out = (", but nothing has started it: start what serves its deployment (`tuneline serve`, or a worker of its "
               f"work pool), or cancel it (`prefect flow-run cancel {late.id}`) and the batches are announced again "
               "600 s later")
    assert lines[0] == (f"nothing to announce: b12.csv is free but retraining run {late.name} (Late for 2 h 00 min) "
                        f"is queued; it takes every free batch when it starts{way_out}")
    assert lines[1:quiet] == [f"waiting   b12.csv is free and retraining run {late.name} (Late for 2 h 00 min) is "
                              f"queued{way_out}"]  # once in four scans
    assert lines[quiet:] == []
    assert emitted(asserting_events_worker, BATCHES_PENDING) == []


def test_watch_once_names_a_batch_waiting_for_its_marker(tmp_path, capsys):
    """A producer that forgot its ``.done`` marker read "nothing to announce: 0 free batches", as if nothing had
    landed (operator QA); ``retrain`` named such files already, ``watch --once`` now does too."""
    config, _ = write_loop(tmp_path)
    (tmp_path / "landing" / "b12.csv.done").unlink()
    assert main(["watch", "-c", str(config), "--once"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "nothing to announce: 0 free batches; not complete, so not read yet: b12.csv (no b12.csv.done beside it) (a "
        "producer writes the data first, then its marker)")


def test_a_running_run_waiting_for_its_slot_counts_as_queued(tmp_path, asserting_events_worker):
    """Prod-stack QA: beside a Running retraining run that waited for its model's slot (another run held it),
    `watch --once` announced the free batch as one "no retraining run is queued for", and the extra run it woke
    found nothing to do. A run waiting for the slot has claimed nothing yet and takes every free batch when it gets
    the slot: it wears a tag while it waits, and the watcher counts it as queued."""
    import threading

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    from tuneline.locking import WAITING_FOR_SLOT_TAG, prefect_api_url, retraining_slot

    assert prefect_api_url() is not None  # the session's Prefect API: the slot is Prefect's concurrency limit
    config, uri = write_loop(tmp_path)
    loop = load_config(config)
    with Ledger(default_ledger_url(uri), MODEL) as ledger:
        ledger.scan(loop.retrain.landing)
        ledger.claim("failed-run")
        ledger.release("failed-run")
    time.sleep(1.1)
    held, release, tags_inside, errors, run_ids = threading.Event(), threading.Event(), [], [], []

    def holder() -> None:
        with retraining_slot(MODEL, timeout_s=60):
            held.set()
            release.wait(90)

    @flow(name="tuneline-retrain")
    def waiting_run() -> None:
        from prefect.runtime import flow_run

        run_ids.append(flow_run.id)
        with retraining_slot(MODEL, timeout_s=90):
            with get_client(sync_client=True) as client:
                tags_inside.extend(client.read_flow_run(flow_run.id).tags)

    def run_flow() -> None:
        try:
            waiting_run()
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    first = threading.Thread(target=holder)
    first.start()
    assert held.wait(60)
    second = threading.Thread(target=run_flow)
    second.start()
    lines: list[str] = []
    try:
        tagged = FlowRunFilter(tags=FlowRunFilterTags(all_=[WAITING_FOR_SLOT_TAG]))
        deadline = time.monotonic() + 60
        with get_client(sync_client=True) as client:
            while not (waiting := client.read_flow_runs(flow_run_filter=tagged)) and time.monotonic() < deadline:
                time.sleep(0.3)
        assert waiting, "the waiting run was not tagged"
        watch(loop, interval_s=1, once=True, echo=lines.append)
    finally:
        release.set()
        first.join(90)
        second.join(90)
        with get_client(sync_client=True) as client:
            still_tagged = client.read_flow_runs(flow_run_filter=tagged)
            for run_id in run_ids:  # a finished tuneline-retrain run would hold back the stranded rule of later tests
                client.delete_flow_run(run_id)
    assert not errors
    assert lines == [f"nothing to announce: b12.csv is free but retraining run {waiting[0].name} is running and "
                     f"waiting for its slot (another run of {MODEL} holds it); it takes every free batch when it "
                     "gets the slot"]
    assert emitted(asserting_events_worker, BATCHES_PENDING) == []
    assert WAITING_FOR_SLOT_TAG not in tags_inside  # taken off once it holds the slot
    assert still_tagged == []
