"""Split: deterministic, hash-based, stratified train/validation/test assignment.

A row's split depends on a salted hash of its own text, never on the other rows, with one exception: texts that
differ only in case and runs of whitespace (near twins) in the same file share a split, the one of their group's
member nearest to train. That is what makes retraining safe: when new rows land, no old row ever moves between train
and test (the retraining loop quarantines a batch row whose near twin is already in the data, so a stored row never
needs to move), test metrics of successive models stay comparable, and no test text leaks into a later training set.
Identical texts always share a split.

Stratification: the hash is uniform within every label, so each class is split in the configured fractions (in
expectation, to within sampling noise for small classes). Exact per-class counts would require looking at the other
rows, which would break the guarantee above; classes whose hash leaves a split empty are reported in the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tuneline.errors import UserError
from tuneline.common import arrow_strings, key_hashes, key_text, pipeline_task, task_logger
from tuneline.config import SplitConfig
from tuneline.schemas.common import near_twin_groups
from tuneline.tasks.load import release_unused_memory

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
    return key_text(text)


def example_key(text: object) -> str:
    """What makes two rows one example for the retraining loop's check against earlier data: the split key folded
    as the leakage rule folds it (case, runs of whitespace), so a batch row that is an earlier row written in
    capitals is that row again, not a new example that could hash into train beside its twin in test."""
    from tuneline.schemas.common import leak_form

    return leak_form(key_text(text))


def hash_unit(keys: pd.Series, salt: str) -> np.ndarray:
    """Map each key to a stable number in [0, 1) from its salted SHA-256: the first 15 hex digits of
    ``sha256_text(salt, split_key(key))`` over 16**15, exactly (the top 60 of the digest's first 64 bits, scaled by
    a power of two). The hashes are :func:`~tuneline.common.key_hashes`: computed once per row and salt, so a
    column the validation already hashed with the split's salt is not hashed again."""
    return (key_hashes(keys, salt) >> np.uint64(4)).astype(np.float64) / float(16**15)


def split_codes(keys: pd.Series, config: SplitConfig) -> np.ndarray:
    """Each key's split as an index into :data:`SPLITS` (0 train, 1 validation, 2 test)."""
    unit = hash_unit(keys, config.salt)
    codes = np.zeros(len(unit), dtype=np.int8)
    codes[unit < config.test_fraction + config.validation_fraction] = 1
    codes[unit < config.test_fraction] = 2
    return codes


def assign_splits(keys: pd.Series, config: SplitConfig) -> np.ndarray:
    """``test`` below test_fraction, ``validation`` in the next validation_fraction, ``train`` above; near twins
    together (:func:`keep_near_twins_together`)."""
    return np.array(SPLITS)[keep_near_twins_together(keys, split_codes(keys, config))]


def _filter_strings(column, mask: np.ndarray, rows: int = 1 << 20):
    """The values of a chunked Arrow string column where ``mask`` is True, a million rows at a time: Arrow's
    filter grows its output buffer by doubling, so one filter of ten million texts briefly holds two copies."""
    import pyarrow as pa

    parts, position = [], 0
    for chunk in column.chunks:
        for start in range(0, len(chunk), rows):
            piece = chunk.slice(start, rows)
            kept = piece.filter(pa.array(mask[position:position + len(piece)]))
            position += len(piece)
            if len(kept):
                parts.append(kept)
    return pa.chunked_array(parts or [pa.array([], type=column.type)], type=column.type)


def select_rows(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """``frame[mask].reset_index(drop=True)``, its Arrow string columns filtered a slice at a time (pandas would
    take them, which first concatenates a chunked column into one more copy of it)."""
    from pandas.arrays import ArrowStringArray

    mask = np.asarray(mask, dtype=bool)
    arrow = {c: arrow_strings(frame[c]) for c in frame.columns}
    plain = [c for c, column in arrow.items() if column is None]
    rest = frame[plain][mask].reset_index(drop=True)
    data = {c: rest[c] if arrow[c] is None else
            pd.Series(ArrowStringArray(_filter_strings(arrow[c], mask), dtype=frame[c].dtype), copy=False)
            for c in frame.columns}
    return pd.DataFrame(data, copy=False)


def keep_near_twins_together(keys: pd.Series, codes: np.ndarray) -> np.ndarray:
    """``codes`` with every group of near twins (:func:`near_twin_groups`) in one split: train if any of them hashed
    to train, else validation if any did, else test (codes are 0 train, 1 validation, 2 test: the group's least).

    Why: each row's split is the hash of its own stripped text, so ``"Great film"`` and ``" GREAT  film"`` in one file
    landed in train and test independently, and the test score counted the model's memory of a training row (26 of
    60 such pairs in one probe). A row without a near twin keeps its own hash's split."""
    if not len(codes):
        return codes
    groups = near_twin_groups(keys)
    present = groups >= 0
    least = np.full(int(groups.max(initial=-1)) + 1, len(SPLITS), dtype=np.int8)
    np.minimum.at(least, groups[present], codes[present])
    together = codes.copy()
    together[present] = least[groups[present]]
    moved = int((together != codes).sum())
    if moved:
        task_logger().info("split: %d row(s) joined a near twin's split (the same text but for case and spaces) so "
                           "that no test or validation text is also a training text", moved)
    return together


def carve(frame: pd.DataFrame, key_column: str, config: SplitConfig, roles: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """Split ``frame`` by hash, near twins together; roles not asked for fall back to train (e.g. carve only
    validation from train)."""
    codes = split_codes(frame[key_column], config)
    codes[~np.isin(codes, [SPLITS.index(role) for role in roles])] = 0
    codes = keep_near_twins_together(frame[key_column], codes)
    return {role: select_rows(frame, codes == index) for index, role in enumerate(SPLITS)}


def plain_labels(labels: pd.Series) -> pd.Series:
    """A categorical column of string labels as a ``str`` column (missing stays missing), built in Arrow: pandas'
    astype would make a Python string object per row on the way."""
    import pyarrow as pa
    from pandas.arrays import ArrowStringArray

    categories = list(labels.cat.categories)
    if not all(isinstance(c, str) for c in categories):
        return labels.astype(object).where(labels.notna(), None)
    codes = labels.cat.codes.to_numpy()
    values = pa.array(categories, type=pa.large_string()).take(pa.array(codes, mask=codes < 0))
    return pd.Series(ArrowStringArray(pa.chunked_array([values]), dtype=pd.StringDtype("pyarrow", na_value=np.nan)),
                     index=labels.index, copy=False)


def _train_lacks_labels(absent: list[str], splits: DataSplits, count_labels: Callable[[pd.DataFrame], dict[str, int]],
                        carved: bool) -> str:
    """The error for labels with no train rows: where their rows are, and the two ways out."""
    elsewhere = {name: count_labels(frame) for name, frame in splits.items() if name != "train"}
    shown = ", ".join(repr(label) for label in absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
    where = "; ".join(f"{label!r}: " + ", ".join(f"{counts[label]} in {name}" for name, counts in elsewhere.items()
                                                  if counts.get(label)) for label in absent[:5]
                      if any(counts.get(label) for counts in elsewhere.values()))
    fix = ("give it more rows (the hash split sent all of its rows to validation/test; another data.split.salt "
           "splits every row anew)" if carved else "add train rows of it")
    return (f"label(s) {shown} have no rows in the train split, so the model could never predict them"
            + (f" ({where})" if where else "") + f": {fix}, or drop its rows (and, if data.labels lists the labels, "
            "leave it out there)")


@pipeline_task(name="split-data")
def split_data(frames: dict[str, pd.DataFrame], labels: list[str], config: SplitConfig,
               key_column: str = "text", label_column: str | None = "label",
               count_labels: Callable[[pd.DataFrame], dict[str, int]] | None = None,
               kind: str | None = None, quarantine_path: Path | str | None = None) -> DataSplits:
    """Use explicit splits as given; split a single file by hash; carve a missing validation/test split from train.

    With ``kind``, the kind's key column and label distribution are used; otherwise ``key_column`` and
    ``count_labels`` (default: the values of ``label_column``) say how to key rows and find labels a split lacks.
    ``quarantine_path``: the validation's quarantine file, named where a given split file lost every record to it.
    """
    log = task_logger()
    from tuneline.kinds import kind_of

    needs_every_label = False
    if kind is not None:
        key_column, count_labels = kind_of(kind).key_column, kind_of(kind).label_distribution
        needs_every_label = kind_of(kind).train_needs_every_label
    carved = "all" in frames or not {"validation", "test"} <= set(frames)  # train gave rows to other splits
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
    target = kind_of(kind).target_column if kind is not None else label_column
    for name, part in parts.items():  # categorical labels (the loader's) go on as plain str labels
        if target in part.columns and isinstance(part[target].dtype, pd.CategoricalDtype):
            parts[name] = part.assign(**{target: plain_labels(part[target])})
    splits = DataSplits(train=parts["train"], validation=parts["validation"], test=parts["test"], labels=labels)
    if count_labels is None and label_column is not None:
        count_labels = lambda f: {str(k): int(v) for k, v in f[label_column].value_counts().items()}  # noqa: E731
    for name, frame in splits.items():
        if frame.empty and name in frames:
            where = f" ({quarantine_path})" if quarantine_path else ""
            raise SplitError(f"the {name} split is empty: the {name} file (data.{name}) has no usable rows left "
                             "after validation, all of its records were quarantined (broken, duplicated, or also in "
                             f"train: is it the training file?); see the quarantine file{where} for each record's "
                             "rule")
        if frame.empty:
            raise SplitError(f"the {name} split is empty; give more data or change data.split fractions")
    # emptiness first (its message names the real cause), then labels the model could never learn
    for name, frame in splits.items():
        if count_labels is not None:
            absent = sorted(set(labels) - set(count_labels(frame)))
            if absent and name == "train" and needs_every_label:
                raise SplitError(_train_lacks_labels(absent, splits, count_labels, carved))
            iob = all(label == "O" or label[:2] in ("B-", "I-") for label in labels)
            if absent and iob:  # NER: an I- tag no mention needs (every PER a one-word name) is no missing class
                types = sorted({t[2:] for t in labels if t != "O"} - {t[2:] for t in count_labels(frame) if t != "O"})
                if types:
                    log.warning("the %s split has no mention of entity type(s) %s", name, types)
            elif absent:
                log.warning("the %s split has no rows of label(s) %s", name, absent)
    log.info("split: train=%d validation=%d test=%d", len(splits.train), len(splits.validation), len(splits.test))
    release_unused_memory()
    return splits
