"""Report: "before vs after" on the test rows plus the kind's own artifacts, written and logged to MLflow.

Shared by every kind: ``before_vs_after.json``/``.md`` and the metrics ``test.<m>`` (fine-tuned) and
``baseline.<name>.<m>``. The kind adds its per-class (or per-type, per-label) tables, plots and test predictions,
and the per-class metrics it returns are logged as ``test.<label>.<metric>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tuneline.common import pipeline_task, task_logger
from tuneline.config import TunelineConfig
from tuneline.kinds import Evaluation, kind_of
from tuneline.reporting import comparison_markdown
from tuneline.stats import bootstrap_interval
from tuneline.tracking import RunContext, log_artifact, log_metrics, safe_metric_keys


@dataclass
class ReportFiles:
    folder: Path
    comparison: dict[str, dict[str, float]]


@pipeline_task(name="report-evaluation")
def report_evaluation(fine_tuned: Evaluation, baselines: list[Evaluation], test: pd.DataFrame, labels: list[str],
                      config: TunelineConfig, folder: Path, run: RunContext | None = None) -> ReportFiles:
    """Write and log every evaluation artifact of a run."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kind = kind_of(config)
    per_label = kind.report_artifacts(fine_tuned, test, labels, folder)
    comparison = {e.name: e.metrics for e in [fine_tuned, *baselines]}
    metric = config.primary_metric
    low, high = bootstrap_interval(kind.subset_score(kind.gold(test), fine_tuned.predictions, labels, metric),
                                   len(test), resamples=config.gate.bootstrap_resamples)
    interval = {"metric": metric, "value": fine_tuned.metrics[metric], "ci_low": low, "ci_high": high,
                "confidence": 0.95, "method": "percentile bootstrap over test rows"}
    (folder / "before_vs_after.json").write_text(json.dumps({**comparison, "fine_tuned_interval": interval},
                                                            indent=2))
    (folder / "before_vs_after.md").write_text(
        comparison_markdown(comparison) + f"\nfine_tuned {metric}: {interval['value']:.4f} "
        f"(95% bootstrap interval {low:.4f} to {high:.4f}, {len(test)} test rows)\n")
    if run is not None:
        flat: dict[str, float] = {}
        for name, values in comparison.items():
            prefix = "test" if name == "fine_tuned" else f"baseline.{name}"
            flat.update({f"{prefix}.{k}": v for k, v in values.items()})
        keys = safe_metric_keys(list(per_label), prefix="test.")
        renamed = {name: key for name, key in keys.items() if key != name}
        if renamed:  # label names MLflow rejects as metric keys: logged under a safe key, the mapping kept
            (folder / "metric_key_mapping.json").write_text(json.dumps(renamed, indent=2, ensure_ascii=False))
        flat.update({f"test.{keys[name]}": value for name, value in per_label.items()})
        flat.update({f"test.{metric}.ci_low": low, f"test.{metric}.ci_high": high})
        log_metrics(run, flat)
        for path in sorted(folder.iterdir()):
            log_artifact(run, path, "evaluation")
    task_logger().info("before vs after (test):\n%s", comparison_markdown(comparison))
    return ReportFiles(folder=folder, comparison=comparison)
