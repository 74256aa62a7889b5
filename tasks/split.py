"""Split: deterministic, hash-based, stratified train/validation/test assignment.

A row's split depends only on a salted hash of its own text, never on the other rows. That is what makes retraining
safe: when new rows land, no old row ever moves between train and test, so test metrics of successive models stay
comparable and no test text leaks into a later training set. Identical texts always share a split.

Stratification: the hash is uniform within every label, so each class is split in the configured fractions (in
expectation, to within sampling noise for small classes). Exact per-class counts would require looking at the other
rows, which would break the guarantee above; classes whose hash leaves a split empty are reported in the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tuneline.errors import UserError
from tuneline.common import pipeline_task, sha256_text, task_logger
from tuneline.config import SplitConfig

SPLITS = ("train", "validation", "test")


class SplitError(UserError):
    """A split has no rows; the message says whether data or fractions are to blame."""


@dataclass
class DataSplits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    labels: list[str]

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        return [("train", self.train), ("validation", self.validation), ("test", self.test)]


def split_key(text: str) -> str:
    """What identifies a row for splitting: the stripped text (tokens joined by spaces for NER)."""
    return " ".join(text) if isinstance(text, (list, tuple, np.ndarray)) else str(text).strip()


def hash_unit(keys: pd.Series, salt: str) -> np.ndarray:
    """Map each key to a stable number in [0, 1) from its salted SHA-256."""
    return np.array([int(sha256_text(salt, split_key(k))[:15], 16) / 16**15 for k in keys], dtype=np.float64)


def assign_splits(keys: pd.Series, config: SplitConfig) -> np.ndarray:
    """``test`` below test_fraction, ``validation`` in the next validation_fraction, ``train`` above."""
    unit = hash_unit(keys, config.salt)
    return np.where(unit < config.test_fraction, "test",
                    np.where(unit < config.test_fraction + config.validation_fraction, "validation", "train"))


def carve(frame: pd.DataFrame, key_column: str, config: SplitConfig, roles: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """Split ``frame`` by hash; roles not asked for fall back to train (e.g. carve only validation from train)."""
    assigned = assign_splits(frame[key_column], config)
    assigned = np.where(np.isin(assigned, roles), assigned, "train")
    return {role: frame[assigned == role].reset_index(drop=True) for role in SPLITS}


@pipeline_task(name="split-data")
def split_data(frames: dict[str, pd.DataFrame], labels: list[str], config: SplitConfig,
               key_column: str = "text", label_column: str | None = "label",
               count_labels: Callable[[pd.DataFrame], dict[str, int]] | None = None,
               kind: str | None = None) -> DataSplits:
    """Use explicit splits as given; split a single file by hash; carve a missing validation/test split from train.

    With ``kind``, the kind's key column and label distribution are used; otherwise ``key_column`` and
    ``count_labels`` (default: the values of ``label_column``) say how to key rows and find labels a split lacks.
    """
    log = task_logger()
    if kind is not None:
        from tuneline.kinds import kind_of

        key_column, count_labels = kind_of(kind).key_column, kind_of(kind).label_distribution
    if "all" in frames:
        parts = carve(frames["all"], key_column, config, ("validation", "test"))
    else:
        missing = tuple(role for role in ("validation", "test") if role not in frames)
        parts = carve(frames["train"], key_column, config, missing) if missing else {"train": frames["train"]}
        for role in ("validation", "test"):
            if role in frames:
                parts[role] = frames[role].reset_index(drop=True)
        if missing:
            log.info("no %s file given: carved from train by hash", " or ".join(missing))
    splits = DataSplits(train=parts["train"], validation=parts["validation"], test=parts["test"], labels=labels)
    if count_labels is None and label_column is not None:
        count_labels = lambda f: {str(k): int(v) for k, v in f[label_column].value_counts().items()}  # noqa: E731
    for name, frame in splits.items():
        if frame.empty and name in frames:
            raise SplitError(f"the {name} split is empty: the {name} file (data.{name}) has no usable rows left "
                             "after validation, all of its records were quarantined (broken, duplicated, or also in "
                             "train); see the quarantine file for each record's rule")
        if frame.empty:
            raise SplitError(f"the {name} split is empty; give more data or change data.split fractions")
        if count_labels is not None:
            absent = sorted(set(labels) - set(count_labels(frame)))
            if absent:
                log.warning("the %s split has no rows of label(s) %s", name, absent)
    log.info("split: train=%d validation=%d test=%d", len(splits.train), len(splits.validation), len(splits.test))
    return splits
