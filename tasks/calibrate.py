"""Calibrate: settings a kind fits on the validation split after training (a decision threshold, say).

They are stored inside the saved model folder, so the registered pyfunc applies exactly what was fitted and the test
evaluation (which runs after this step) measures the model as it will be served. Kinds with nothing to fit return {}.
"""

from __future__ import annotations

from typing import Any

from tuneline.common import pipeline_task, task_logger
from tuneline.config import TunelineConfig
from tuneline.kinds import kind_of
from tuneline.tasks.split import DataSplits
from tuneline.tasks.train import TrainedModel
from tuneline.tracking import RunContext, log_metrics


@pipeline_task(name="calibrate-model")
def calibrate_model(trained: TrainedModel, splits: DataSplits, config: TunelineConfig,
                    run: RunContext | None = None) -> dict[str, Any]:
    """Let the kind fit its post-training settings on validation; log the numeric ones."""
    fitted = kind_of(config).calibrate(trained.model_dir, splits, config, run)
    numeric = {f"calibration.{k}": float(v) for k, v in fitted.items() if isinstance(v, (int, float))}
    if run is not None and numeric:
        log_metrics(run, numeric)
    if fitted:
        shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fitted.items()
                          if not isinstance(v, (dict, list, tuple)))
        nested = [k for k, v in fitted.items() if isinstance(v, (dict, list, tuple))]
        if len(shown) > 300:  # per-label thresholds of many labels: the summary, not every number
            shown = shown[:300].rsplit(", ", 1)[0] + f", ... ({len(fitted)} settings)"
        task_logger().info("calibrated on validation: %s%s", shown or "", (("; " if shown else "") + ", ".join(
            f"{k} (per label, in the model's config)" for k in nested)) if nested else "")
    return fitted
