"""Continual retraining: start from the champion's weights and train on the new rows plus a replay of earlier ones.

Replay is what keeps a continually trained model from forgetting: ``retrain.replay_ratio`` earlier training rows per
new training row, sampled per label in proportion to the earlier label distribution (stratified; for kinds whose
rows carry several labels or tags, a plain seeded sample). Validation is all validation rows, earlier and new, so
early stopping sees forgetting too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tuneline.common import pipeline_task, task_logger
from tuneline.config import TunelineConfig
from tuneline.tasks.split import DataSplits
from tuneline.tracking import RunContext, log_metrics, set_tags


def replay_sample(earlier: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """``size`` earlier rows, stratified by ``label`` when it holds one label per row."""
    if size <= 0 or earlier.empty:
        return earlier.iloc[0:0]
    if size >= len(earlier):
        return earlier
    rng = np.random.default_rng(seed)
    single = "label" in earlier.columns and earlier["label"].map(lambda v: isinstance(v, str)).all()
    if not single:
        return earlier.iloc[np.sort(rng.choice(len(earlier), size=size, replace=False))]
    shares = earlier["label"].value_counts(normalize=True)
    quotas = (shares * size).round().astype(int).clip(lower=1)
    picked = []
    for label, quota in quotas.items():
        rows = np.flatnonzero(earlier["label"].to_numpy() == label)
        picked.extend(rng.choice(rows, size=min(quota, len(rows)), replace=False))
    return earlier.iloc[np.sort(np.array(picked[: max(size, len(quotas))]))]


@pipeline_task(name="continual-splits")
def continual_splits(splits: DataSplits, new_parts: list[str], config: TunelineConfig, run: RunContext) -> DataSplits:
    """Train on the new train rows plus the replay sample; validate and test on everything."""
    is_new = splits.train["part"].isin(new_parts)
    new_train, earlier = splits.train[is_new], splits.train[~is_new]
    replay = replay_sample(earlier, int(round(config.retrain.replay_ratio * len(new_train))), config.train.seed)
    train = pd.concat([new_train, replay], ignore_index=True)
    if train.empty:
        raise ValueError("continual retraining found no new training rows")
    task_logger().info("continual: %d new train rows + %d replayed of %d earlier (replay_ratio %.2f)", len(new_train),
                       len(replay), len(earlier), config.retrain.replay_ratio)
    log_metrics(run, {"retrain.new_train_rows": len(new_train), "retrain.replay_rows": len(replay)})
    set_tags(run, {"retrain.strategy": "continual"})
    return DataSplits(train=train, validation=splits.validation, test=splits.test, labels=splits.labels)


@pipeline_task(name="download-champion")
def champion_weights(registered_name: str, version: str, run: RunContext) -> Path:
    """The champion's saved transformers model folder (the pyfunc's ``model`` artifact), downloaded once."""
    import mlflow.artifacts

    target = run.run_dir / "champion"
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{registered_name}/{version}",
                                                     dst_path=str(target)))
    found = [p.parent for p in local.rglob("config.json") if (p.parent / "model.safetensors").is_file()]
    if not found:
        raise FileNotFoundError(f"models:/{registered_name}/{version} holds no transformers model folder")
    task_logger().info("continual: starting from champion v%s (%s)", version, found[0])
    return found[0]
