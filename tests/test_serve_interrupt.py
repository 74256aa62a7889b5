"""``tuneline serve`` stopped while a served retraining trains: its batches and its MLflow run are given back.

The loop's promise for a stopped run is that nothing waits on it: the batches it claimed are free for the next run
at once, and its MLflow run does not read as a retraining still at work. A lease that runs out (``ledger.lease_s``,
10 minutes) frees a killed run's batches anyway; a Ctrl-C, which the run sees, must not need that.

Fault injection against the real stack: a Prefect server, ``tuneline serve``, a landed batch announced by
``tuneline watch --once``; once the run trains (its task started, its batch held, MLflow shows it RUNNING), a SIGINT
to ``serve``'s process group (what a terminal's Ctrl-C sends), or a SIGTERM to ``serve`` alone (``docker stop``, a
supervisor): Prefect's runner then cancels the flow run, whose process gets SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from loop_data import land, tickets
from test_prefect_server import (LABELS, MODEL, SERVE_START_S, base_env, prefect_server, start, tail, wait_for,
                                 write_config)

pytestmark = pytest.mark.integration

__all__ = ["start"]  # the fixture, imported for this module's test


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_stopping_serve_mid_training_frees_the_batches_and_closes_the_mlflow_run(tmp_path, tiny_bert, start, how):
    from mlflow.tracking import MlflowClient

    from tuneline.ledger import Ledger

    env = base_env(tmp_path)
    api, server = prefect_server(start, tmp_path, env)
    config = write_config(tmp_path, tiny_bert)
    raw = yaml.safe_load(config.read_text())
    raw["train"].update(max_steps=100_000, eval_steps=100_000)  # trains until stopped
    config.write_text(yaml.safe_dump(raw))
    client_env = {**env, "PREFECT_API_URL": api, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    serve = start("tuneline-serve", [sys.executable, "-m", "tuneline.cli", "serve", "--config", str(config)],
                  client_env)
    wait_for("serve's deployments", lambda: "being served" in tail(serve[1]), SERVE_START_S, server, serve)
    land(tmp_path / "landing", "batch-01.csv", tickets({label: 10 for label in LABELS}, 1))
    watched = subprocess.run([sys.executable, "-m", "tuneline.cli", "watch", "--config", str(config), "--once"],
                             cwd=tmp_path, env=client_env, capture_output=True, text=True, timeout=120)
    assert watched.returncode == 0, watched.stderr[-3000:]

    ledger_url = f"sqlite:///{tmp_path / 'tuneline-ledger.db'}"
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow = MlflowClient(tracking_uri=store, registry_uri=store)

    def claimed() -> list:
        if not (tmp_path / "tuneline-ledger.db").is_file():
            return []
        with Ledger(ledger_url, MODEL) as ledger:
            return [b for b in ledger.batches() if b.claimed_by]

    def training() -> object:
        held = claimed()
        if not held or "Task run 'train-model" not in tail(serve[1], 20_000):
            return None
        run = mlflow.get_run(held[0].claimed_by)
        return run if run.info.status == "RUNNING" else None

    run = wait_for("a retraining that holds the batch and runs in MLflow", training, 240, server, serve, every_s=1)
    run_id = run.info.run_id
    if how == "ctrl-c":
        os.killpg(serve[0].pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole foreground process group
    else:
        serve[0].send_signal(signal.SIGTERM)  # docker stop, kill PID: serve alone
    try:
        serve[0].wait(90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve did not stop within 90 s of Ctrl-C:\n{tail(serve[1])}")

    with Ledger(ledger_url, MODEL) as ledger:
        [batch] = [b for b in ledger.batches() if b.name == "batch-01.csv"]
    assert batch.claimed_by is None and batch.lease_expires_at is None, (batch, tail(serve[1]))
    assert batch.state != "used"
    status = mlflow.get_run(run_id).info.status
    assert status in ("KILLED", "FAILED"), (status, tail(serve[1]))
    # the console says what happened without a stack: Ctrl-C printed Prefect's "Engine execution interrupted by base
    # exception" with about 60 lines of traceback (the flow's on_running hook quiets the served run's console)
    log = tail(serve[1], 200_000)
    assert "aborted by" in log and "Traceback" not in log, log[-6000:]
