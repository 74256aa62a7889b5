"""No urllib3 "Retrying (...)" lines in tuneline's output when the MLflow server is away mid-training (operator QA: a
server restart printed one per attempt); the one line tuneline's curves writer says about it is enough."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from transformers import TrainerState

from tuneline.live_curves import MlflowCurvesCallback
from tuneline.tracking import RunContext


def port_where_nothing_listens() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_server_away_mid_training_is_one_tuneline_line_and_no_urllib3_retries(tmp_path: Path, caplog, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    caplog.set_level(logging.DEBUG)
    run = RunContext("0" * 32, "0", f"http://127.0.0.1:{port_where_nothing_listens()}", tmp_path)
    curves, state = MlflowCurvesCallback(run), TrainerState()
    for step in (1, 2, 3):
        state.global_step = step
        curves.on_log(None, state, None, logs={"loss": 1.0 / step})
        curves._writer.join(60)
    lines = [(record.name, record.levelno, record.getMessage()) for record in caplog.records]
    assert not [line for line in lines if line[2].startswith("Retrying (")], lines
    assert [line[2] for line in lines if line[1] >= logging.WARNING] == [
        line[2] for line in lines if line[2].startswith("MLflow did not take the training curves (")], lines
    assert len([line for line in lines if line[2].startswith("MLflow did not take the training curves")]) == 1
