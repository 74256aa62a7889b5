"""The tags every registered model version carries: what it scored, on which data, from which base and run."""

from __future__ import annotations

from tuneline.config import TunelineConfig
from tuneline.runtime import redact
from tuneline.tasks.lineage import SplitLineage
from tuneline.tasks.tracking import RunContext


def version_tags(config: TunelineConfig, lineage: dict[str, SplitLineage], test_metrics: dict[str, float],
                 run: RunContext) -> dict[str, str]:
    tags = {f"metric.test.{name}": f"{value:.6f}" for name, value in test_metrics.items()}
    tags.update({f"data.{name}.hash": item.content_hash for name, item in lineage.items()})
    tags.update({"task": config.task, "base_model": redact(config.model.base), "strategy": config.model.strategy,
                 "primary_metric": config.primary_metric, "run_id": run.run_id})
    return tags
