"""A run stays RUNNING until its flow ends, even after a step made it MLflow's active run for a while."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests_support import run_config, store_client
from tuneline.runtime import default_artifact_location
from tuneline.tracking import active_run, tracked_run


def test_a_step_using_the_active_run_does_not_finish_it(workdir):
    config = run_config("classification", "tracking.experiment=status-test", path="unused.csv")
    uri = f"sqlite:///{workdir / 'store' / 'mlflow.db'}"
    (workdir / "store").mkdir()
    config.tracking.tracking_uri = uri
    client = store_client(uri)
    with tracked_run(config) as run:
        with active_run(run):
            mlflow.log_param("inside", "yes")
        # registration happens here in the flows: a concurrent run must not take this run for a dead one
        assert client.get_run(run.run_id).info.status == "RUNNING"
    assert client.get_run(run.run_id).info.status == "FINISHED"
    # the SQLite store's artifacts live beside its database, not in the folder the process started in
    experiment = client.get_experiment_by_name("status-test")
    assert experiment.artifact_location == (workdir / "store" / "mlartifacts").as_uri()
    assert default_artifact_location(uri) == experiment.artifact_location


def test_leaving_the_active_run_never_writes_a_finished_status_a_kill_could_leave_behind(workdir, monkeypatch):
    """Every status write to the store while a step uses the active run, recorded as the real store makes it. Leaving
    ``mlflow.start_run()``'s block wrote FINISHED and then RUNNING back: a process killed between the two (the loop's
    kill -9 test hit it once) left a run at work that read as finished, out of every liveness check. Now leaving
    writes RUNNING, once."""
    from mlflow.entities import RunStatus
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    written: list[str] = []
    real = SqlAlchemyStore.update_run_info

    def recording(self, run_id, run_status, end_time, run_name):
        written.append(RunStatus.to_string(run_status))
        return real(self, run_id, run_status, end_time, run_name)

    config = run_config("classification", "tracking.experiment=status-writes", path="unused.csv")
    config.tracking.tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    with tracked_run(config) as run:
        monkeypatch.setattr(SqlAlchemyStore, "update_run_info", recording)
        with active_run(run):
            mlflow.log_param("inside", "yes")
        assert written and set(written) == {"RUNNING"}, written  # resuming it, leaving it: RUNNING each time
        monkeypatch.undo()
    assert MlflowClient(tracking_uri=config.tracking.tracking_uri).get_run(run.run_id).info.status == "FINISHED"


def test_a_new_local_store_is_created_without_mlflows_table_notes(tmp_path, capfd):
    """A first run printed MLflow's "Creating initial MLflow database tables..." and "Updating database tables":
    nothing for the user to act on, and the run's own line names the store."""
    from tuneline.tracking import configure_mlflow

    store = tmp_path / "fresh.db"
    config = run_config("classification", f"tracking.tracking_uri=sqlite:///{store}", path=tmp_path / "x.csv")
    capfd.readouterr()
    client, experiment_id = configure_mlflow(config)
    printed = "".join(capfd.readouterr())
    assert store.is_file() and client.get_experiment(experiment_id).name == config.tracking.experiment
    assert "database tables" not in printed, printed


def test_ctrl_c_during_metric_writes_ends_the_run_killed_at_once(workdir):
    """Fault injection: a real SIGINT (Ctrl-C, default handler) at a random moment of a loop of metric writes to a
    SQLite store, as a training's logging is interrupted. One landing inside a write left its connection holding the
    write lock, so closing the run waited out SQLite's 20 s busy timeout and failed with "database is locked" in
    place of the interrupt (CI saw it: exit 1, not 130 with the resume hint; this loop without the fix: once in 6-20
    interrupts, or the pool's cleanup raised "Cannot operate on a closed database"). With the collector off, as the
    commands keep it for long stretches, nothing would free that connection. Every run must end KILLED within
    seconds, by a KeyboardInterrupt. The heap is frozen as a flow run freezes it (tuneline.heap.frozen_heap): the
    fix's collection then walks what the run made, not the million objects this test process imported (about 1 s a
    trial here, 0.05 s in a flow)."""
    import gc
    import os
    import random
    import signal
    import threading
    import time

    from tuneline.heap import frozen_heap
    from tuneline.tracking import log_metrics

    config = run_config("classification", "tracking.experiment=interrupted-writes", path="unused.csv")
    config.tracking.tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=config.tracking.tracking_uri)
    rng = random.Random(7)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    collecting = gc.isenabled()
    gc.disable()
    try:
        with frozen_heap():
            for trial in range(40):
                started = time.monotonic()
                with pytest.raises(KeyboardInterrupt):
                    with tracked_run(config) as run:
                        threading.Timer(rng.uniform(0.001, 0.03), os.kill, (os.getpid(), signal.SIGINT)).start()
                        for step in range(10**9):
                            log_metrics(run, {"loss": 1.0 / (step + 1)}, step=step)
                ended = client.get_run(run.run_id)
                ending = (ended.info.status, ended.data.tags.get("tuneline.error"))
                assert ending == ("KILLED", "KeyboardInterrupt"), trial
                assert time.monotonic() - started < 10, f"trial {trial}: {time.monotonic() - started:.0f} s"
    finally:
        signal.signal(signal.SIGINT, previous)
        if collecting:
            gc.enable()


def test_a_second_signal_during_the_interrupted_runs_cleanup_waits_for_the_run_to_be_closed(workdir, monkeypatch):
    """Fault injection: one stop often sends two signals. A terminal's Ctrl-C reaches ``tuneline serve``'s process
    group, so the served run gets SIGINT; Prefect's runner, stopping, then sends the run SIGTERM (which Prefect turns
    into a ``TerminationSignal`` exception). A real SIGTERM delivered inside the run's cleanup, at its first step,
    cut the cleanup short: the run stayed RUNNING in MLflow (CI: tests/test_serve_interrupt.py, both variants). The
    cleanup must finish first, the held signal then take effect, and a second Ctrl-C still force its way."""
    import gc
    import os
    import signal

    from tuneline import tracking

    class Terminated(BaseException):
        """What Prefect's engine raises for SIGTERM."""

    def terminate(_signum: int, _frame: object) -> None:
        raise Terminated

    config = run_config("classification", "tracking.experiment=two-signals", path="unused.csv")
    config.tracking.tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=config.tracking.tracking_uri)
    real_collect = gc.collect
    sent: list[int] = []

    def collect_under_fire(*args: object) -> int:  # the cleanup's first step, where the runner's SIGTERM landed
        sent.append(signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        return real_collect(*args)

    previous = {n: signal.signal(n, h) for n, h in ((signal.SIGTERM, terminate),
                                                    (signal.SIGINT, signal.default_int_handler))}
    try:
        monkeypatch.setattr(tracking.gc, "collect", collect_under_fire)
        with pytest.raises(Terminated) as stopped:
            with tracked_run(config) as run:
                raise KeyboardInterrupt
        assert sent == [signal.SIGTERM]
        assert isinstance(stopped.value.__context__, KeyboardInterrupt)  # the held SIGTERM took effect after
        ended = client.get_run(run.run_id)
        assert (ended.info.status, ended.data.tags.get("tuneline.error")) == ("KILLED", "KeyboardInterrupt")

        def ctrl_c_twice(*args: object) -> int:  # a user pressing Ctrl-C again, twice, while it cleans up
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            return real_collect(*args)

        monkeypatch.setattr(tracking.gc, "collect", ctrl_c_twice)
        with pytest.raises(KeyboardInterrupt):
            with tracked_run(config) as forced:
                raise RuntimeError("training failed")
        assert client.get_run(forced.run_id).info.status == "RUNNING"  # forced out before closing: doctor --fix
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def test_an_unreachable_mlflow_server_is_said_at_once_and_ends_in_one_line(monkeypatch, caplog):
    """MLflow down when a run starts: the run retried for 8 minutes with only urllib3's "Retrying" lines, then
    failed with a raw MlflowException and its traceback (operator QA). It now warns at once and fails with one line
    a user can act on (no traceback: a UserError)."""
    import logging
    import socket

    import pytest

    from tuneline.config import build_config
    from tuneline.errors import UserError
    from tuneline.tracking import MlflowUnreachable, tracked_run

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    config = build_config({"data": {"path": "d.csv"}, "tracking": {"tracking_uri": f"http://127.0.0.1:{port}"}})
    with caplog.at_level(logging.WARNING), pytest.raises(MlflowUnreachable) as raised:
        with tracked_run(config):
            pass
    assert isinstance(raised.value, UserError)
    assert str(raised.value).startswith(f"the MLflow server at http://127.0.0.1:{port} did not answer for ")
    assert "start it (or wait for it to come back), or fix tracking.tracking_uri" in str(raised.value)
    assert f"the MLflow server at http://127.0.0.1:{port} does not answer (ConnectionError)" in caplog.text


def test_a_retraining_run_says_at_once_that_its_mlflow_server_does_not_answer(tmp_path, monkeypatch, caplog,
                                                                                tiny_bert):
    """`tuneline retrain` against an MLflow server that was down printed nothing for 4 minutes: its first MLflow
    request (taking over a dead run's batches) came before the check, and MLflow retried it quietly (loop QA). The
    warning now comes first, once."""
    import logging
    import socket

    import pytest

    from conftest import working_in
    from loop_data import land, tickets
    from tuneline.config import build_config
    from tuneline.flows.retrain import retrain_flow

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    tickets({"billing": 20, "shipping": 20}, seed=0).to_csv(tmp_path / "base.csv", index=False)
    land(tmp_path / "landing", "b1.csv", tickets({"billing": 10, "shipping": 10}, seed=1))
    config = build_config({"data": {"path": str(tmp_path / "base.csv")}, "model": {"base": str(tiny_bert)},
                           "tracking": {"tracking_uri": f"http://127.0.0.1:{port}", "registered_model": "down"},
                           "ledger": {"url": f"sqlite:///{tmp_path / 'ledger.db'}"},
                           "retrain": {"landing": str(tmp_path / "landing")}})
    with working_in(tmp_path), caplog.at_level(logging.INFO), pytest.raises(Exception):
        retrain_flow(config, trigger="test")
    said = [r for r in caplog.records if "does not answer (ConnectionError)" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in said]
    scanned = next(i for i, r in enumerate(caplog.records) if r.name == "tuneline.ledger")
    assert caplog.records.index(said[0]) < scanned, "the warning came after the run's work began"


def test_a_run_says_once_that_the_mlflow_server_went_away_while_its_client_retries(monkeypatch):
    """Prod-stack QA: the MLflow server stopped as a run on a worker finished training, and the run's log said
    nothing for two minutes while MLflow's client retried its closing writes (urllib3's "Retrying" lines are kept
    out of the output). Inside a run, the first retry of an outage is now one warning naming the server and how long
    the client retries; the retries after it, and those of the next request, say nothing more."""
    import logging
    import socket

    from prefect import flow

    from tuneline import common

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")  # sleeps 2 s before the second retry
    [retries] = [f for f in logging.getLogger("urllib3.connectionpool").filters if isinstance(f, common._NoRetryLines)]
    monkeypatch.setattr(retries, "said_at", None)  # another test's outage, under SERVER_AWAY_EVERY_S ago
    said: list[str] = []

    class Said(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    @flow(name="server-goes-away")
    def closing_writes() -> int:
        mlflow.set_tracking_uri(f"http://127.0.0.1:{port}")  # as a tuneline run sets it (tracked_run)
        client = MlflowClient()
        failed = 0
        for _ in range(2):
            try:
                client.search_experiments()
            except Exception:  # noqa: BLE001 - the request's own error, after its retries
                failed += 1
        return failed

    handler, previous = Said(level=logging.WARNING), mlflow.get_tracking_uri()
    loggers = [logging.getLogger("prefect.flow_runs"), logging.getLogger("urllib3.connectionpool")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        assert closing_writes() == 2
        monkeypatch.setattr(retries, "said_at", None)
        try:  # outside a run: nothing said (serve-model --follow says its own line)
            MlflowClient(tracking_uri=f"http://127.0.0.1:{port}").search_experiments()
        except Exception:  # noqa: BLE001
            pass
    finally:
        mlflow.set_tracking_uri(previous)
        for logger in loggers:
            logger.removeHandler(handler)
    assert said == [f"the MLflow server at http://127.0.0.1:{port} does not answer (connection refused); its client "
                    "retries the request for up to about 2 s (MLFLOW_HTTP_REQUEST_MAX_RETRIES, "
                    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR), and the run goes on if it answers by then"]
