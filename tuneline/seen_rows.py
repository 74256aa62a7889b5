"""Which test rows a registered version trained on: so the gate never scores a champion on its own training rows.

The gate scores the champion on the candidate's test rows. Those are rows the candidate never saw; but after a change
of split (``data.split.salt``, other train/test files) or of the data, many of them can be rows the *champion*
trained on, and it then scores as if it had learned them (metrics QA: 144 of 199 test rows were champion training
rows; the champion won 0.83 to 0.82 overall and lost 0.81 to 0.86 on the 55 rows it had not seen). Each training run
logs the hashes of its train and validation rows' example keys (:data:`ARTIFACT`, 8 bytes a row); the gate reads the
champion's and compares on the test rows it did not see.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: the run artifact that holds the hashes (uint64, ``np.save``) of the rows the model trained or selected on
ARTIFACT_DIR = "lineage"
ARTIFACT_NAME = "seen_keys.npy"
SALT = "tuneline-seen-rows"
#: more rows than this are not recorded (80 MB of hashes at this size; a CPU fine-tune never gets here)
MAX_ROWS = 5_000_000


def key_hashes_of(frame: pd.DataFrame, key_column: str) -> np.ndarray:
    """Each row's example key (case and runs of whitespace folded, as the loop's and the leakage rule's), hashed."""
    from tuneline.common import key_hashes
    from tuneline.tasks.split import example_key

    if key_column not in frame.columns or not len(frame):
        return np.zeros(0, dtype=np.uint64)
    return np.asarray(key_hashes(frame[key_column].map(example_key), SALT))


def write_seen_keys(frames: list[pd.DataFrame], key_column: str, folder: Path) -> Path | None:
    """The hashes of ``frames``' rows (train and validation) as ``folder/seen_keys.npy``; None when too many."""
    rows = sum(len(f) for f in frames)
    if rows > MAX_ROWS:
        return None
    hashes = np.unique(np.concatenate([key_hashes_of(f, key_column) for f in frames] or [np.zeros(0, np.uint64)]))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ARTIFACT_NAME
    np.save(path, hashes)
    return path


def seen_by_version(name: str, version: str, test: pd.DataFrame, key_column: str) -> np.ndarray | None:
    """A boolean per test row: whether registered ``name`` version ``version`` trained (or selected) on it. None when
    the version's run recorded no hashes (trained before they were recorded, or too big) or they cannot be read."""
    from mlflow.artifacts import download_artifacts
    from mlflow.tracking import MlflowClient

    try:
        run_id = MlflowClient().get_model_version(name, str(version)).run_id
        if not run_id:
            return None
        with tempfile.TemporaryDirectory(prefix="tuneline-seen-") as folder:
            path = download_artifacts(run_id=run_id, artifact_path=f"{ARTIFACT_DIR}/{ARTIFACT_NAME}", dst_path=folder)
            seen = np.load(path)
    except Exception:  # noqa: BLE001 - an older version without the record: nothing to compare, as before
        return None
    return np.isin(key_hashes_of(test, key_column), seen)


def subset(values: list[Any], keep: np.ndarray) -> list[Any]:
    return [v for v, k in zip(values, keep) if k]
