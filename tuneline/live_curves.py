"""Training curves logged to MLflow while the Trainer runs, without the Trainer ever waiting for MLflow.

The curves were logged from the training loop itself, one ``log_batch`` per Trainer log. An MLflow server that
stopped answering mid-training (a restart for an upgrade, a network blip, the database behind it failing over)
then held the optimizer steps behind the client's HTTP retries, about two minutes per call, and the exception after
the last retry ended a training that had nothing wrong with it: an hour of a retraining lost to a 30-second
restart. Here the writes go to one background thread: a point it cannot write is held, written with the next one
once the server answers again, and at the latest when training ends, so no point is lost while the process lives.
Each point keeps the time the Trainer logged it, and the points held through an outage go in one request.
A server still down when training ends is the run's own error (its closing writes and registration need it): said
once, in one line, by the run.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from transformers import TrainerCallback

from tuneline.common import task_logger
from tuneline.tracking import MAX_METRICS_PER_BATCH, RunContext, log_metric_batch, metric_points


def curve_metrics(logs: dict[str, Any]) -> dict[str, float]:
    """A Trainer log as MLflow metric names: ``loss`` → ``train.loss``, ``eval_macro_f1`` → ``val.macro_f1``."""
    return {f"train.{k}" if not k.startswith("eval_") else f"val.{k[5:]}": v
            for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class MlflowCurvesCallback(TrainerCallback):
    """Every Trainer log (loss, learning rate, eval metrics) becomes an MLflow metric at its global step, written
    by a background thread (one write at a time, in order); see the module's docstring for why."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self._held: list[Any] = []  # MLflow metric points not written yet, oldest first
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._failure: BaseException | None = None  # the last write's error, until a write succeeds
        self._said_down = False

    def on_log(self, args, state, control, logs=None, **kwargs):
        points = metric_points(curve_metrics(logs or {}), state.global_step, int(time.time() * 1000))
        if points:
            with self._lock:
                self._held.extend(points)
        if self._writer is None or not self._writer.is_alive():
            self._report()
            # a daemon: a Ctrl-C or a crash ends the process without waiting out a write's retries
            self._writer = threading.Thread(target=self._write_held, name="tuneline-curves", daemon=True)
            self._writer.start()

    def on_train_end(self, args, state, control, **kwargs):
        """Wait for the write in flight, then write what is still held from here (raising if MLflow is down)."""
        if self._writer is not None:
            self._writer.join()
        self._report()
        self._write_held(raise_errors=True)

    def _write_held(self, raise_errors: bool = False) -> None:
        with self._lock:
            points, self._held = self._held, []
        written = 0
        try:
            while written < len(points):
                chunk = points[written:written + MAX_METRICS_PER_BATCH]
                log_metric_batch(self.run, chunk)
                written += len(chunk)
        except BaseException as error:
            with self._lock:
                self._held[:0] = points[written:]  # back in front, in order: the next write starts with them
            self._failure = error
            if raise_errors:
                raise
            return
        self._failure = None

    def _report(self) -> None:
        """Say once per outage that the curves are held, and when they are written again (from the training
        thread: the run's log is there)."""
        if self._failure is None and self._said_down:
            self._said_down = False
            task_logger().info("MLflow takes the training curves again; the points held meanwhile are written")
        elif self._failure is not None and not self._said_down:
            self._said_down = True
            reason = str(self._failure).strip().splitlines()[0][:200] if str(self._failure).strip() else \
                type(self._failure).__name__
            task_logger().warning("MLflow did not take the training curves (%s); training goes on, and the points are "
                                  "held and written when the server answers again, at the latest when training ends",
                                  reason)
