"""The training curves reach MLflow without the training waiting for MLflow: a real ``mlflow server`` is stopped
between two Trainer logs and started again on the same port and store before training ends (fault injection)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from mlflow import MlflowClient
from transformers import TrainerControl, TrainerState, TrainingArguments

from tuneline.live_curves import MlflowCurvesCallback
from tuneline.tracking import RunContext


def _log(callback: MlflowCurvesCallback, args, step: int, loss: float) -> float:
    """One Trainer log through the callback; the seconds the training thread spent in it."""
    state = TrainerState()
    state.global_step = step
    started = time.perf_counter()
    callback.on_log(args, state, TrainerControl(), logs={"loss": loss, "learning_rate": 1e-5, "epoch": step / 10})
    return time.perf_counter() - started


def test_an_mlflow_restart_mid_training_neither_stalls_the_training_nor_loses_a_point(tmp_path, monkeypatch, caplog):
    from services import MlflowServer

    # a failed write retries for about 14 s here (2 + 4 + 8); MLflow's default is about two minutes
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "2")
    store = f"sqlite:///{tmp_path / 'store.db'}"
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    server = MlflowServer(store, tmp_path / "artifacts", tmp_path / "server.log", mlflow_bin).start()
    restarted = None
    try:
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        experiment = client.create_experiment("curves")
        run = client.create_run(experiment)
        context = RunContext(run_id=run.info.run_id, experiment_id=experiment, tracking_uri=server.url,
                             run_dir=tmp_path / "run")
        callback = MlflowCurvesCallback(context)
        args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True)
        _log(callback, args, 1, 0.9)
        callback._writer.join()
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train.loss")] == [1]

        server.stop()
        with caplog.at_level(logging.INFO, logger="tuneline"):
            waits = [_log(callback, args, step, 0.9 - step / 100) for step in (2, 3, 4)]
            callback._writer.join()  # the write of step 2 gives up after its retries, in the background
            waits.append(_log(callback, args, 5, 0.85))  # says so, and tries again with every point held
        # a training step that waited for the client's retries would have taken seconds each time
        assert max(waits) < 1.0, waits
        before_restart_ms = int(time.time() * 1000)
        restarted = MlflowServer(store, tmp_path / "artifacts", tmp_path / "server2.log", mlflow_bin,
                                 port=server.port).start()
        with caplog.at_level(logging.INFO, logger="tuneline"):
            callback.on_train_end(args, TrainerState(), TrainerControl())
        history = client.get_metric_history(run.info.run_id, "train.loss")
        assert sorted((m.step, round(m.value, 4)) for m in history) == [
            (1, 0.9), (2, 0.88), (3, 0.87), (4, 0.86), (5, 0.85)]
        # each held point keeps the time the Trainer logged it, not the time the restarted server took it
        assert all(m.timestamp < before_restart_ms for m in history), [(m.step, m.timestamp) for m in history]
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train.learning_rate")) == [1, 2, 3,
                                                                                                          4, 5]
        said = [r.getMessage() for r in caplog.records if "training curves" in r.getMessage()]
        assert len([m for m in said if "did not take" in m]) == 1, said
        assert "Connection refused" in said[0] or "Max retries" in said[0], said
    finally:
        server.stop()
        if restarted is not None:
            restarted.stop()
