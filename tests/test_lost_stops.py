"""A stop whose exception is lost on the way still stops the run.

Loop QA: a SIGTERM landing inside an MLflow write on SQLite was replaced by the "database is locked" error that
SQLAlchemy raised while handling it; the registration task retried that error as transient, the run went on and
``tuneline retrain`` ended with 0 (about 1 stop in 8). These tests land the signal exactly there, as the fault would.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE
from prefect import flow

from tuneline.common import pipeline_task
from tuneline.interrupts import Terminated, interrupt_in, terminate_as_interrupt


def cut_write() -> None:
    """What a SIGTERM inside a SQLite write does: the handler's exception, replaced by the one its cleanup raises."""
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs here
        raise AssertionError("the SIGTERM handler did not raise")
    except BaseException:
        raise MlflowException("(sqlite3.OperationalError) database is locked", error_code=TEMPORARILY_UNAVAILABLE)


@pytest.fixture
def sigterm_raises():
    """SIGTERM raises in the main thread, as under ``tuneline train`` / ``retrain`` (Prefect re-sends the signal under
    this handler once its flow run is cleaned up; under pytest's default it would end the test process)."""
    before = signal.getsignal(signal.SIGTERM)
    terminate_as_interrupt()
    yield
    signal.signal(signal.SIGTERM, before)


def test_the_interrupt_in_an_errors_chain_is_found():
    try:
        try:
            raise Terminated("signal 15")
        except BaseException:
            raise RuntimeError("database is locked")
    except RuntimeError as error:
        replaced = error
    assert isinstance(interrupt_in(replaced), Terminated)
    assert interrupt_in(RuntimeError("a plain error")) is None
    looped = RuntimeError("a")
    looped.__context__ = ValueError("b")
    looped.__context__.__context__ = looped
    assert interrupt_in(looped) is None  # a cycle ends the walk


def then_after(first: object, calls: list[str]) -> None:
    """Run a flow of ``first`` (a pipeline task) and then a task that notes ``after`` in ``calls``."""

    @pipeline_task(name="after")
    def after() -> None:
        calls.append("after")

    @flow(name="then-after")
    def run() -> None:
        first()
        after()

    run()


def test_an_error_raised_while_handling_a_sigterm_stops_the_flow_and_is_not_retried(sigterm_raises):
    calls: list[str] = []

    @pipeline_task(name="write", retries=2, retry_delay_seconds=0, retry_condition_fn=lambda *_: True)
    def write() -> None:
        calls.append("write")
        cut_write()

    with pytest.raises(KeyboardInterrupt) as stopped:  # Terminated, or Prefect's own stop of the flow run
        then_after(write, calls)
    assert stopped.type is Terminated
    assert calls == ["write"]  # tried once, the flow ended there


def test_a_stop_swallowed_with_its_replacing_error_is_raised_at_the_tasks_end(sigterm_raises):
    """Code that catches the replacing error as any other (a best-effort hint, a cleanup) lost the stop with it."""
    calls: list[str] = []

    @pipeline_task(name="best-effort")
    def best_effort() -> str:
        try:
            cut_write()
        except Exception:  # noqa: BLE001 - what best-effort code does with an error
            pass
        calls.append("went on")
        return "done"

    with pytest.raises(Terminated):
        then_after(best_effort, calls)
    assert calls == ["went on"]


def test_without_a_signal_the_task_and_its_errors_are_untouched(sigterm_raises):
    @pipeline_task(name="fails")
    def fails() -> None:
        raise MlflowException("database is locked", error_code=TEMPORARILY_UNAVAILABLE)

    @pipeline_task(name="works")
    def works() -> int:
        return 7

    @flow(name="no-signal")
    def run() -> int:
        value = works()
        try:
            fails()
        except MlflowException:
            return value
        return -1

    assert run() == 7


def test_a_command_that_swallowed_a_stop_and_ended_with_0_ends_as_terminated(monkeypatch, capsys):
    """The last guard, after the tasks' edges: ``tuneline retrain`` ending with 0 although a SIGTERM reached it."""
    from tuneline import cli, cli_loop

    def retrain_that_swallows(args, config_for) -> int:  # noqa: ANN001 - cli_loop.run's signature
        try:
            cut_write()
        except MlflowException:
            pass
        print("retrained")
        return 0

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli_loop, "run", retrain_that_swallows)
    try:
        code = cli.main(["retrain", "-c", "loop.yaml"])
    finally:
        signal.signal(signal.SIGTERM, before)
    out, err = capsys.readouterr()
    assert code == 143, err
    assert out == "retrained\n"
    assert err == "tuneline: terminated (SIGTERM) as it was finishing; what it printed above was done\n"
    monkeypatch.setattr(cli_loop, "run", lambda args, config_for: 0)
    try:
        assert cli.main(["retrain", "-c", "loop.yaml"]) == 0  # the stop of the run before is not this run's
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_command_whose_error_replaced_a_stop_ends_as_stopped(monkeypatch, capsys):
    from tuneline import cli, cli_loop

    def retrain_cut(args, config_for) -> int:  # noqa: ANN001 - cli_loop.run's signature
        cut_write()
        return 0

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli_loop, "run", retrain_cut)
    try:
        code = cli.main(["retrain", "-c", "loop.yaml"])
    finally:
        signal.signal(signal.SIGTERM, before)
    err = capsys.readouterr().err
    assert code == 143
    assert err.startswith("tuneline: terminated (SIGTERM); any batches it had claimed were given back"), err
    assert "database is locked" not in err


def test_a_run_whose_error_replaced_a_stop_is_closed_killed_not_failed(workdir, sigterm_raises):
    """FAILED reads as a broken run an operator must look at; a stop is KILLED, as a Ctrl-C's is."""
    from tests_support import run_config, store_client
    from tuneline.tracking import tracked_run

    config = run_config("classification", "tracking.experiment=cut-run", path="unused.csv")
    config.tracking.tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    with pytest.raises(MlflowException):
        with tracked_run(config) as run:
            cut_write()
    assert store_client(config.tracking.tracking_uri).get_run(run.run_id).info.status == "KILLED"
