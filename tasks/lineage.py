"""Lineage: what data, exactly, trained and tested this model.

Each split is logged as an MLflow dataset input (name, digest, schema, profile, source) and summarised in run tags
(content hash, row count, label distribution). The input files' SHA-256 are tagged too, so a model version can be
traced back to the bytes it was trained on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import mlflow
import mlflow.data
import pandas as pd

from tuneline.common import pipeline_task, task_logger
from tuneline.kinds import TaskKind, kind_of
from tuneline.tasks.load import SourceFile, role_sources
from tuneline.tasks.split import DataSplits
from tuneline.tracking import RunContext, active_run, log_metrics, set_tags


@dataclass(frozen=True)
class SplitLineage:
    name: str
    content_hash: str
    rows: int
    label_distribution: dict[str, int]


def content_hash(frame: pd.DataFrame, columns: list[str]) -> str:
    """SHA-256 of the split's rows (in order) over the given columns; independent of pandas' internals."""
    digest = hashlib.sha256()
    for row in frame[columns].itertuples(index=False, name=None):
        digest.update(json.dumps([list(v) if not isinstance(v, (str, int, float, type(None))) else v for v in row],
                                 ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


@pipeline_task(name="log-lineage")
def log_lineage(splits: DataSplits, sources: list[SourceFile], run: RunContext,
                kind: TaskKind | str = "classification") -> dict[str, SplitLineage]:
    """Log each split as an MLflow dataset input plus hash/rows/distribution tags; return the lineage per split."""
    log = task_logger()
    kind = kind_of(kind) if isinstance(kind, str) else kind
    columns = list(kind.lineage_columns)
    lineage: dict[str, SplitLineage] = {}
    tags: dict[str, str] = {}
    by_role = role_sources(sources)  # a folder or pattern of shards is one input, as configured
    for role, source in by_role.items():
        tags[f"data.source.{role}.path"] = str(source.path)
        tags[f"data.source.{role}.sha256"] = source.sha256
        tags[f"data.source.{role}.records"] = str(source.records)
        tags[f"data.source.{role}.malformed"] = str(source.malformed)
        if source.files > 1 or source.path != next(s.path for s in sources if s.role == role):
            tags[f"data.source.{role}.files"] = str(source.files)
            tags[f"data.source.{role}.file_sha256"] = json.dumps(
                {str(s.path.name): s.sha256[:16] for s in sources if s.role == role})[:5000]
    with active_run(run):
        for name, frame in splits.items():
            item = SplitLineage(name=name, content_hash=content_hash(frame, columns), rows=len(frame),
                                label_distribution=kind.label_distribution(frame))
            lineage[name] = item
            tags[f"data.{name}.hash"] = item.content_hash
            tags[f"data.{name}.rows"] = str(item.rows)
            tags[f"data.{name}.label_distribution"] = json.dumps(item.label_distribution)
            source = next((s for s in by_role.values() if s.role in (name, "all")), None)
            dataset = mlflow.data.from_pandas(
                frame[[*columns, "source_file", "source_row"]], source=str(source.path) if source else None,
                name=f"{name}", targets=kind.target_column, digest=item.content_hash[:20])
            mlflow.log_input(dataset, context=name)
    set_tags(run, tags)
    log_metrics(run, {f"data.{n}.rows": item.rows for n, item in lineage.items()})
    log.info("lineage: %s", ", ".join(f"{n} {i.rows} rows #{i.content_hash[:10]}" for n, i in lineage.items()))
    return lineage


@pipeline_task(name="record-seen-rows")
def record_seen_rows(splits: DataSplits, run: RunContext, kind: TaskKind | str = "classification") -> None:
    """Log the hashes of the train and validation rows' example keys (:mod:`tuneline.seen_rows`): a later gate that
    scores this version as the champion leaves out the test rows it trained on. The retraining flow passes the whole
    data version, not a continual run's subset: a continued model inherits what its champion trained on."""
    from tuneline.seen_rows import ARTIFACT_DIR, write_seen_keys
    from tuneline.tracking import log_artifact

    kind = kind_of(kind) if isinstance(kind, str) else kind
    path = write_seen_keys([splits.train, splits.validation], kind.key_column, run.run_dir / ARTIFACT_DIR)
    if path is None:
        task_logger().info("training rows not recorded for the gate (over %s rows)", "5,000,000")
        return
    log_artifact(run, path, ARTIFACT_DIR)
