"""Relabel: correct the labels of rows already in the retraining loop's data, as a new data version.

The loop only appends: a batch row that repeats an example already in the data with another label is quarantined
(``conflicts_with_earlier_label``) and the earlier label kept, and the base data (data version 1) could not be
corrected at all: the only way out was to start the loop over under another registered model. A relabelling takes a
file of rows with their right labels, finds each row's example in the current version (by the same key as the
duplicate and leakage checks: the text, case and runs of whitespace aside), and commits a version in which those rows
carry the new labels. Every row keeps its split and its provenance (``source_file``, ``source_row``, the batch it
came with); the parts that hold corrected rows are written anew (parts are immutable), the others are shared; earlier
versions keep the old labels, so the models trained on them stay reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tuneline.dataset_store import DataVersion, DatasetStore
from tuneline.errors import UserError, excerpt
from tuneline.tasks.split import example_key

#: rows of a relabelling file shown in an error (the rest counted)
SHOWN = 3


@dataclass(frozen=True)
class Relabelled:
    version: DataVersion
    changed: int          # rows of the data whose label changed
    unchanged: int        # rows of the file whose example already had that label
    splits: dict[str, int]  # changed rows per split


def _is_list(value: Any) -> bool:
    """An NER tag list or multi-label set (parquet gives numpy arrays), not one label."""
    return isinstance(value, (list, tuple)) or hasattr(value, "tolist")


def _label_text(value: Any, per_word: bool = True) -> str:
    """A label as comparable text: an NER tag list in word order, a multi-label set in sorted order (``refund|billing``
    is ``billing|refund``)."""
    value = value.tolist() if hasattr(value, "tolist") else value
    return str(value if per_word or not isinstance(value, (list, tuple)) else sorted(map(str, value)))


#: contract rules a relabelling file answers itself: one example given two labels (or twice the same) is
#: :func:`relabel_rows`'s to name, and a label outside the set is refused there with the set listed
_ANSWERED_BY_RELABEL = frozenset({"no_exact_duplicates", "no_conflicting_label_duplicates", "label_in_label_set",
                                  "tag_in_label_set"})


def where_in(rows: Any, source_lines: Any) -> Any:
    """``line L`` of each record number in ``rows`` where the reader knew the record's line (``ReadRecords.
    source_lines``), else ``row N``: a person opens the file at a line, and the two differ after a header, blank
    lines or quoted line breaks."""
    def one(row: Any) -> str:
        row = int(row)
        if source_lines is not None and 1 <= row <= len(source_lines) and source_lines[row - 1] > 0:
            return f"line {int(source_lines[row - 1])}"
        return f"row {row}"
    return one(rows) if not isinstance(rows, list) else [one(row) for row in rows]


def refuse_broken_rows(corrections: pd.DataFrame, labels: list[str], config: Any, path: Path,
                       source_lines: Any = None) -> None:
    """Refuse, naming the file's rows, a correction the kind's contract would quarantine in a batch: a row without
    a label (an empty cell), an empty text, a multi-label row left with no label, tags that are not IOB2.

    A relabelling replaces labels in the data as they are, so it must meet the contract every row of the data met
    when it came in: a ``text,label`` row with the label cell left empty was committed as a label of NaN, and the
    next retraining failed on (or trained with) a row of no class. ``config``: the loop's config with the data
    version's label set, as ``corrections`` was prepared with it."""
    from tuneline.tasks.load import QUARANTINE_COLUMNS
    from tuneline.tasks.validate import apply_contract

    _clean, quarantine = apply_contract({"all": corrections}, labels, pd.DataFrame(columns=QUARANTINE_COLUMNS),
                                        config)
    broken = quarantine[~quarantine["rule"].isin(_ANSWERED_BY_RELABEL)]
    if broken.empty:
        return
    first = broken.iloc[0]
    detail = first["detail"] if isinstance(first["detail"], str) and first["detail"] else (
        f"column {first['column']}" if isinstance(first["column"], str) else "")
    count = broken["source_row"].nunique()
    where = where_in(first["source_row"], source_lines)
    raise UserError(f"{path}: {count} row(s) break the data contract, first at {where} "
                    f"({first['rule']}" + (f": {detail}" if detail else "") + "); fix them, so that no row of the "
                    "data is given a label it could never have landed with")


def relabel_rows(store: DatasetStore, parent: DataVersion, corrections: pd.DataFrame, kind: Any, path: Path,
                 actor: str, note: str, source_lines: Any = None) -> Relabelled:
    """Commit the version of ``parent`` in which every example of ``corrections`` (the kind's frame, read from
    ``path``) carries its label there. Refused, naming the file's lines, when a row is not in the data, a label is
    not in the version's label set, one example is given two labels, or nothing would change."""
    key, target = kind.key_column, kind.target_column
    keys = corrections[key].map(example_key)
    rows = where_in(corrections["source_row"].tolist() if "source_row" in corrections.columns
                    else list(range(1, len(keys) + 1)), source_lines)

    def listed(positions: list[int]) -> str:
        shown = "; ".join(f"{rows[i]} ({excerpt(corrections[key].iloc[i], 50)})" for i in positions[:SHOWN])
        return shown + (f"; and {len(positions) - SHOWN} more" if len(positions) > SHOWN else "")

    known = set(parent.labels)
    unknown = sorted({label for label in kind.label_distribution(corrections) if label not in known})
    if unknown:
        raise UserError(f"{path}: label(s) {unknown} are not in the label set of data version {parent.number} "
                        f"({', '.join(parent.labels)}); a relabelling moves rows between the labels the model has "
                        "(a new label comes with a batch and drift.allow_label_growth)")
    wanted: dict[str, Any] = {}
    clashing: list[int] = []
    per_word = kind.labels_per_word
    for position, (k, label) in enumerate(zip(keys, corrections[target])):
        if k in wanted and _label_text(wanted[k], per_word) != _label_text(label, per_word):
            clashing.append(position)
        wanted.setdefault(k, label)
    if clashing:
        raise UserError(f"{path} gives one example two labels: {listed(clashing)}; keep one row per example")

    found: set[str] = set()
    replacing: dict[str, str] = {}
    changed, splits, changed_keys = 0, {}, set()
    for part in parent.parts:
        frame = store.read_part(part).drop(columns=["part"])
        part_keys = frame[key].map(example_key)
        hit = part_keys.isin(wanted.keys()).to_numpy()
        if not hit.any():
            continue
        found.update(part_keys[hit])
        values = list(frame[target])
        moved = 0
        for row in hit.nonzero()[0]:
            new = wanted[part_keys.iloc[row]]
            if per_word and _is_list(values[row]):
                old_len, new_len = len(values[row]), len(new)
                if old_len != new_len:
                    raise UserError(f"{path}: the example {excerpt(frame[key].iloc[row], 50)} has {old_len} "
                                    f"labels in the data (one per word) and {new_len} in the file; give one per word")
            if _label_text(values[row], per_word) != _label_text(new, per_word):
                values[row] = list(new) if _is_list(new) else new
                moved += 1
                changed_keys.add(part_keys.iloc[row])
                split = str(frame["split"].iloc[row])
                splits[split] = splits.get(split, 0) + 1
        if moved:
            replacing[part] = store.write_part(frame.assign(**{target: values}))
            changed += moved
    missing = [i for i, k in enumerate(keys) if k not in found]
    if missing:
        raise UserError(f"{path}: {len(missing)} row(s) are not in data version {parent.number} of "
                        f"{store.model!r}: {listed(missing)}; a relabelling corrects rows already in the data: "
                        "new rows, and rows quarantined when their file was read (a copy with another label, say: "
                        "see its quarantine.csv), land as a batch with the label they should have")
    if not changed:
        raise UserError(f"{path}: every row already has that label in data version {parent.number}; nothing to "
                        "change")
    version = store.commit(parent, [], list(parent.labels), actor, note, replacing=replacing)
    return Relabelled(version=version, changed=changed, unchanged=len(wanted) - len(changed_keys), splits=splits)
