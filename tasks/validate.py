"""Validate: run the pandera contract on every split, quarantine what breaks it, stop when too much does.

The quarantine is built from pandera's own failure cases (column, check, index), one row per broken rule, joined to
the record's file and row number. Nothing is dropped silently: every record is either in a clean split or in the
quarantine file, which is written (and logged to MLflow) before the threshold is checked, so a failed run still
shows why it failed.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pandera.pandas as pa

from tuneline.errors import UserError, excerpt
from tuneline.common import (arrow_strings, forget_key_hashes, key_hashes, pipeline_task, remember_key_hashes,
                             remembered_key_hashes, remembered_key_salts, task_logger)
from tuneline.tasks.load import release_unused_memory
from tuneline.tasks.split import plain_labels, select_rows
from tuneline.config import TunelineConfig
from tuneline.kinds import kind_of
from tuneline.kinds.base import file_column_names
from tuneline.kinds.classification import LABEL_SOURCE_ROLES, LabelSetError
from tuneline.schemas.common import TrainKeys
from tuneline.tasks.load import QUARANTINE_COLUMNS, LoadedData
from tuneline.tracking import RunContext, log_artifact, log_metrics


class DataValidationError(UserError):
    """Too many records broke the data contract; the message names the top reasons and the quarantine file."""


__all__ = ["DataValidationError", "LabelSetError", "ValidatedData", "apply_schema", "infer_labels",
           "validate_data", "validate_frames"]


@dataclass
class ValidatedData:
    frames: dict[str, pd.DataFrame]
    labels: list[str]
    quarantine: pd.DataFrame
    quarantine_path: Path
    total_records: int

    @property
    def rejected_records(self) -> int:
        return count_rejected(self.quarantine)

    @property
    def duplicate_records(self) -> int:
        return split_duplicates(self.quarantine)[1]

    @property
    def rejected_fraction(self) -> float:
        return self.rejected_records / self.total_records if self.total_records else 0.0


def count_rejected(quarantine: pd.DataFrame) -> int:
    return int(quarantine[["split", "source_file", "source_row"]].drop_duplicates().shape[0])


def failure_cases_to_quarantine(frame: pd.DataFrame, failures: pd.DataFrame, split: str,
                                value_column: str = "text") -> pd.DataFrame:
    """One quarantine row per (record, rule) from pandera's failure cases; dataframe-level checks name no column."""
    failures = failures[failures["index"].notna()].copy()
    failures["index"] = failures["index"].astype(int)
    failures = failures.drop_duplicates(subset=["index", "check"])
    positions = failures["index"].to_numpy()
    dataframe_level = failures["schema_context"].eq("DataFrameSchema").to_numpy()
    return pd.DataFrame({
        "split": split,
        "source_file": _values_at(frame["source_file"], positions),
        "source_row": _values_at(frame["source_row"], positions),
        "rule": failures["check"].astype(str).to_numpy(),
        "column": pd.Series(failures["column"].to_numpy(), dtype=object).where(~dataframe_level, None).to_numpy(),
        "value": [str(v)[:500] if not _missing(v) else None for v in _values_at(frame[value_column], positions)],
        "detail": None,
    }, columns=QUARANTINE_COLUMNS)


def _values_at(values: pd.Series, positions: np.ndarray) -> np.ndarray:
    """``values`` at ``positions`` (the frame has a fresh RangeIndex), without a copy of the whole column."""
    return values.take(positions).to_numpy()


def _missing(value: object) -> bool:
    """None or NaN (a compact ``str`` column's missing value), never ambiguous for lists."""
    return value is None or (isinstance(value, float) and value != value)


def keep_rows(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows where ``keep`` is True, renumbered; the key hashes remembered for its string columns carried along
    (the split task then hashes nothing again)."""
    kept = select_rows(frame, keep)
    for column in frame.columns:
        if isinstance(kept[column].dtype, pd.CategoricalDtype):  # no category without a row (e.g. a quarantined
            kept[column] = kept[column].cat.remove_unused_categories()  # label): value counts stay as they were
        if arrow_strings(frame[column]) is not None:
            for salt in remembered_key_salts(frame[column]):
                remember_key_hashes(kept[column], salt, remembered_key_hashes(frame[column], salt)[keep])
    return kept


def apply_schema(frame: pd.DataFrame, schema: pa.DataFrameSchema, split: str,
                 value_column: str = "text") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate lazily; return (clean rows, quarantine rows)."""
    frame = frame.reset_index(drop=True)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        release_unused_memory()  # the checks' temporaries, before the clean copy is made
        quarantine = failure_cases_to_quarantine(frame, errors.failure_cases, split, value_column)
        keep = np.ones(len(frame), dtype=bool)
        keep[errors.failure_cases["index"].dropna().astype(int).to_numpy()] = False
        return keep_rows(frame, keep), quarantine
    return frame, pd.DataFrame(columns=QUARANTINE_COLUMNS)


def infer_labels(frames: dict[str, pd.DataFrame], configured: list[str] | None) -> list[str]:
    """The classification label set: configured, else the labels seen in train (sorted, frozen for the run)."""
    from tuneline.kinds.classification import ClassificationData

    data = ClassificationData(path=Path("-"), labels=configured, min_examples_per_label=1)
    try:
        return kind_of("classification").label_set(frames, data)
    except LabelSetError as error:
        raise DataValidationError(str(error)) from None


def with_source_lines(quarantine: pd.DataFrame, lines: dict[str, np.ndarray]) -> pd.DataFrame:
    """The quarantine with ``source_line`` filled in from the reader's line of each record (``LoadedData.
    source_lines``): the contract's rules and the kinds see records by number only, and a record's number is not
    the line an editor opens at once a file has a header, blank or comment lines, or quoted cells with line breaks."""
    quarantine = quarantine.reindex(columns=QUARANTINE_COLUMNS)
    line = np.array(pd.to_numeric(quarantine["source_line"], errors="coerce"), dtype=float)  # a writable copy
    if len(quarantine) and lines:
        files = quarantine["source_file"].astype(str).to_numpy()
        rows = np.array(pd.to_numeric(quarantine["source_row"], errors="coerce"), dtype=float)
        for name, known in lines.items():
            at = np.flatnonzero((files == name) & np.isnan(line) & (rows >= 1) & (rows <= len(known)))
            found = known[rows[at].astype(np.int64) - 1].astype(float)
            line[at] = np.where(found > 0, found, np.nan)
    return quarantine.assign(source_line=pd.array(np.where(line > 0, line, np.nan), dtype="Int64"))


def place_in_file(record: pd.Series) -> str:
    """``line L`` where the record's line is known (what an editor shows), else ``row N``."""
    line = record.get("source_line")
    if line is not None and not pd.isna(line) and int(line) > 0:
        return f"line {int(line)}"
    return f"row {record['source_row']}"


def where_in_file(record: pd.Series) -> str:
    """``FILE line L`` (or ``FILE row N``: :func:`place_in_file`)."""
    return f"{record['source_file']} {place_in_file(record)}"


#: rows named per label in a label-set error
FIRST_ROWS_SHOWN = 3


def first_rows_of(error: LabelSetError, frames: dict[str, pd.DataFrame], kind: Any,
                  source_lines: dict[str, np.ndarray] | None, data: Any = None) -> str:
    """`` (first rows: 'neutral' at all.csv line 12; 'NA' at all.csv line 2, line 22, line 42)`` for the labels a
    label-set error is about, from the split the labels were inferred from; a row whose labels are a list (a label
    set) is one of a label's rows when the list holds it. Empty where the error names no labels (NER's tags). The
    error stops the check before any record is judged, so no quarantine lists those rows: without this a stray
    label among thousands of rows was found by grepping (QA)."""
    source = next((frames[role] for role in LABEL_SOURCE_ROLES if role in frames), None)
    target = kind.target_column
    if not error.labels or source is None or target not in source.columns or not len(source):
        return ""
    values = source[target]
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    listed = values.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).to_numpy()

    def places_of(label: Any) -> list[tuple[str, str]]:
        """(file, ``line L``) of the label's first rows; a kind whose rows hold labels inside them says where
        (NER: a token's own line)."""
        if hasattr(kind, "label_places"):
            return kind.label_places(label, source, data, source_lines, FIRST_ROWS_SHOWN)
        holds = (np.array([label in list(v) if is_list else v == label for v, is_list in zip(values, listed)],
                          dtype=bool) if listed.any() else values.to_numpy() == label)
        rows = source[holds].head(FIRST_ROWS_SHOWN)
        rows = with_source_lines(rows[["source_file", "source_row"]].assign(split=None), source_lines or {})
        return [(str(row["source_file"]), place_in_file(row)) for _, row in rows.iterrows()]

    parts = []
    for label in error.labels[:FIRST_ROWS_SHOWN]:
        if places := places_of(label):  # "FILE line 12, line 40": each file named once
            shown = [place if i and file == places[i - 1][0] else f"{file} {place}"
                     for i, (file, place) in enumerate(places)]
            parts.append(f"{excerpt(str(label), 42)} at {', '.join(shown)}")
    return f" (first rows: {'; '.join(parts)})" if parts else ""


def write_quarantine(quarantine: pd.DataFrame, run_dir: Path, run: RunContext | None) -> Path:
    path = Path(run_dir) / "quarantine.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    quarantine.sort_values(["split", "source_file", "source_row", "rule"]).to_csv(path, index=False)
    if run is not None:
        log_artifact(run, path, "data")
    return path


#: A test or validation record that is a copy of a training one (also in another case or spacing): set aside so
#: that the model is not scored on what it trained on, but nothing is wrong with it.
LEAKAGE_RULES = frozenset({"text_not_in_train", "pair_not_in_train", "sentence_not_in_train"})
#: Rules that mark a copy of a good record, not a broken one (a repeat in one file, a training record in the test
#: file): budgeted on their own (``data.max_duplicate_fraction``), not as broken records. CoNLL-2003's validation
#: file repeats 196 of its 3,250 sentences from train ("Attendance : 10,000 ."), over the 5% broken-record budget.
DUPLICATE_RULES = frozenset({"no_exact_duplicates"}) | LEAKAGE_RULES
#: the rules whose record has a twin elsewhere in the data (:func:`describe_copies` names it)
COPY_RULES = DUPLICATE_RULES | {"no_conflicting_label_duplicates"}


def _raise_over_limit(quarantine: pd.DataFrame, broken: int, total: int, max_bad_fraction: float, path: Path,
                      where: str) -> None:
    _, duplicates = split_duplicates(quarantine)
    reasons = Counter(r for r in quarantine["rule"] if r not in DUPLICATE_RULES)
    top = ", ".join(f"{rule} ({n})" for rule, n in reasons.most_common(5))
    copies = (f" (besides {duplicates} cop{'y' if duplicates == 1 else 'ies'} of {_copied_what(quarantine)}, "
              "dropped and not counted here)") if duplicates else ""
    raise DataValidationError(
        f"{broken} of {total} records{where} ({broken / total:.1%}) broke the data contract{copies}, more than "
        f"data.max_bad_fraction={max_bad_fraction:.1%}. Top reasons: {top}{_example(quarantine, reasons)}. "
        f"Every rejected record, with its file, row and rule, is in {path}.")


def _copied_what(quarantine: pd.DataFrame) -> str:
    """What the dropped copies copy: earlier records of their file, training records (leakage), or both."""
    rules = set(quarantine["rule"]) & DUPLICATE_RULES
    kinds = (["earlier records"] if "no_exact_duplicates" in rules else []) + \
        (["training records (test/validation leakage)"] if rules & LEAKAGE_RULES else [])
    return " or ".join(kinds) or "earlier records"


def split_duplicates(quarantine: pd.DataFrame) -> tuple[int, int]:
    """(broken records, duplicate copies): a record counts as a duplicate only when every rule it broke is one."""
    keys = ["split", "source_file", "source_row"]
    if quarantine.empty:
        return 0, 0
    broke_a_rule = (~quarantine["rule"].isin(DUPLICATE_RULES)).groupby([quarantine[k] for k in keys]).any()
    return int(broke_a_rule.sum()), int((~broke_a_rule).sum())


def _example(quarantine: pd.DataFrame, reasons: Counter) -> str:
    """``; e.g. FILE row N: DETAIL`` for the first record of the top reason: its detail often names the fix
    (``set data.iob1_to_iob2=true``, ``the line ends with a stray ','``) that a rule name alone does not."""
    if not reasons or "detail" not in quarantine.columns:
        return ""
    top_rule = reasons.most_common(1)[0][0]
    rows = quarantine[(quarantine["rule"] == top_rule) & quarantine["detail"].map(lambda d: isinstance(d, str) and bool(d))]
    if rows.empty:
        return ""
    first = rows.iloc[0]
    detail = str(first["detail"])
    return f"; e.g. {where_in_file(first)}: {detail[:300]}"


def enforce_bad_fraction(quarantine: pd.DataFrame, total: int, max_bad_fraction: float, path: Path,
                         run: RunContext | None, max_duplicate_fraction: float = 1.0,
                         records_per_file: dict[str, int] | None = None) -> None:
    """Record the rejection counts; raise with the top reasons when broken records, or duplicate copies, are over
    their own limit (a duplicate-heavy but otherwise clean dataset trains by default: copies are dropped, counted).
    ``records_per_file``: the limit holds for each file too, as a small test file can lose most of its rows while
    the whole stays under it (20 of 30 test rows, 3% of 630 records); one broken record alone never stops a file.
    A repeated header (files joined with ``cat``) is quarantined to be seen but is no record: neither broken nor
    counted (dirty-data QA: 100 exported shards joined would be 99 broken "records" of 1,099, over the 5% default)."""
    by_rule = Counter(quarantine["rule"]) if len(quarantine) else Counter()
    if by_rule["repeated_header"]:
        headers = quarantine["rule"].eq("repeated_header").to_numpy()
        per_file = Counter(quarantine.loc[headers, "source_file"].astype(str))
        total -= int(headers.sum())
        records_per_file = {name: n - per_file[name] for name, n in (records_per_file or {}).items()}
        quarantine = quarantine[~headers]
    files = records_per_file if records_per_file and len(records_per_file) > 1 else {}  # one file: the total's check
    for name, records in files.items():
        in_file = quarantine[quarantine["source_file"].astype(str) == name] if len(quarantine) else quarantine
        broken_here, copies_here = split_duplicates(in_file)
        if broken_here > 1 and records and broken_here / records > max_bad_fraction:
            _raise_over_limit(in_file, broken_here, records, max_bad_fraction, path, f" of {name}")
        if copies_here > 1 and records and copies_here / records > max_duplicate_fraction:
            _raise_over_copies(in_file, copies_here, records, max_duplicate_fraction, path, f" of {name}")
    broken, duplicates = split_duplicates(quarantine)
    fraction = broken / total if total else 0.0
    duplicate_fraction = duplicates / total if total else 0.0
    if run is not None:
        # rejected = broken + copies (each over the records read); the limit (max_bad_fraction) reads the broken
        log_metrics(run, {"data.rejected_records": broken + duplicates,
                          "data.rejected_fraction": (broken + duplicates) / total if total else 0.0,
                          "data.broken_fraction": fraction, "data.duplicate_fraction": duplicate_fraction,
                          "data.broken_records": broken, "data.duplicate_records": duplicates,
                          **{f"data.rejected.{re.sub(r'[^A-Za-z0-9_.-]+', '_', rule)}": n
                             for rule, n in by_rule.items()}})
    if fraction > max_bad_fraction:
        _raise_over_limit(quarantine, broken, total, max_bad_fraction, path, "")
    if duplicate_fraction > max_duplicate_fraction:
        _raise_over_copies(quarantine, duplicates, total, max_duplicate_fraction, path, "")


def _raise_over_copies(quarantine: pd.DataFrame, copies: int, total: int, max_duplicate_fraction: float, path: Path,
                       where: str) -> None:
    exact = int(quarantine["rule"].eq("no_exact_duplicates").sum())
    leaked = int(quarantine["rule"].isin(LEAKAGE_RULES).sum())
    what = []
    if exact:
        what.append(f"{exact} exact cop{'y' if exact == 1 else 'ies'} of an earlier record (the first copy of each "
                    "is kept)")
    if leaked:
        what.append(f"{leaked} test/validation record(s) also in the training data (a test set that repeats train "
                    "measures memory, not the model: check how the files were split)")
    raise DataValidationError(
        f"{copies} of {total} records{where} ({copies / total:.1%}) are copies, more than "
        f"data.max_duplicate_fraction={max_duplicate_fraction:.1%}: {'; '.join(what)}. Raise the limit if that is "
        f"expected; every dropped copy is listed in {path}.")


def validate_frames(frames: dict[str, pd.DataFrame], labels: list[str],
                    schema_for: Callable[[list[str], list[str] | None], pa.DataFrameSchema],
                    value_column: str = "text", key_column: str = "text") -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Validate train (or the single file) first, then validation/test against train's texts (no leakage)."""
    clean: dict[str, pd.DataFrame] = {}
    quarantined: list[pd.DataFrame] = []
    ordered = sorted(frames, key=lambda role: role not in LABEL_SOURCE_ROLES)
    for role in ordered:
        train_keys = None
        if role in ("validation", "test") and "train" in clean:
            train_keys = TrainKeys(clean["train"][key_column])  # str(key) of each row, compared by hash at scale
        ok, bad = apply_schema(frames[role], schema_for(labels, train_keys), role, value_column)
        clean[role] = ok
        quarantined.append(bad)
    non_empty = [q for q in quarantined if len(q)]
    quarantine = pd.concat(non_empty, ignore_index=True) if non_empty else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    return clean, quarantine


#: at most this many rows in all frames for :func:`describe_copies` to name each copy's twin (it keys every row)
NAME_TWINS_UP_TO_ROWS = 500_000


def describe_copies(quarantine: pd.DataFrame, frames: dict[str, pd.DataFrame], kind: Any,
                    source_lines: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """The ``detail`` of the copy rules, which had none: an exact repeat, a text written with two labels, a test
    record that is in train (whose rule name, ``text_not_in_train``, read as the opposite of the problem). Each says
    what happened and what to do, and names its twin's file and line where the data is small enough to key every
    row (:data:`NAME_TWINS_UP_TO_ROWS`). A detail the kind gave (a pair's second text) follows in brackets."""
    rules = quarantine["rule"] if len(quarantine) else pd.Series(dtype=object)
    todo = rules.isin(COPY_RULES).to_numpy()
    if not todo.any():
        return quarantine
    from tuneline.schemas.common import leak_form
    from tuneline.tasks.split import split_key

    target, key_column = kind.target_column, kind.key_column
    # one pass over the rows: each row's two folds (as the duplicate rules and as the leakage rule compare), and
    # every row under each of its folds
    twins: dict[tuple[str, str], list[tuple[str, str, int, Any]]] = {}  # (fold, key) -> [(split, file, row, label)]
    by_row: dict[tuple[str, str, int], tuple[str, str, Any]] = {}  # (split, file, row) -> (same, leak, label)
    if sum(len(f) for f in frames.values()) <= NAME_TWINS_UP_TO_ROWS:
        for split, frame in frames.items():
            if key_column not in frame.columns:
                continue
            labels = frame[target] if target in frame.columns else [None] * len(frame)
            for key, file, row, label in zip(frame[key_column], frame["source_file"].astype(str),
                                             frame["source_row"], labels):
                if key is None or isinstance(key, float) and np.isnan(key):
                    continue
                same = split_key(key)
                leak = leak_form(same)  # the loop's example_key: the split key, case and spacing folded
                record = (split, file, int(row), label)
                by_row[record[:3]] = (same, leak, label)
                twins.setdefault(("same", same), []).append(record)
                twins.setdefault(("leak", leak), []).append(record)

    def where(file: str, row: int) -> str:
        known = (source_lines or {}).get(file)
        line = int(known[row - 1]) if known is not None and 1 <= row <= len(known) and known[row - 1] > 0 else None
        return f"{Path(file).name} line {line}" if line else f"{Path(file).name} record {row}"

    def shown(label: Any) -> str:
        return excerpt(label if not isinstance(label, (list, tuple, np.ndarray)) else list(label), 60)

    details = quarantine["detail"].to_numpy(dtype=object, copy=True)
    for i in np.flatnonzero(todo):
        record = quarantine.iloc[i]
        rule, split, file, row = record["rule"], str(record["split"]), str(record["source_file"]), record["source_row"]
        same, leak, label = by_row.get((split, file, int(row)), (None, None, None)) if pd.notna(row) else \
            (None, None, None)
        # conflicts and leaks fold case and spacing (schemas.common.conflicting_labels, not_in_train); copies do not
        fold = ("same", same) if rule == "no_exact_duplicates" else ("leak", leak)
        found = [t for t in twins.get(fold, []) if (t[1], t[2]) != (file, int(row))] if same is not None else []
        if rule == "no_exact_duplicates":
            twin = next((t for t in found if t[0] == split), None)
            details[i] = (f"a copy of {where(twin[1], twin[2]) if twin else 'an earlier record'} (same text and "
                          "label): the first copy is kept, the others set aside so the example does not count twice")
        elif rule == "no_conflicting_label_duplicates":
            twin = next((t for t in found if t[0] == split and str(t[3]) != str(label)), None)
            aside = " (case and spacing aside)" if twin and by_row[twin[:3]][0] != same else ""
            details[i] = ((f"the same text as {where(twin[1], twin[2])}{aside}, labelled {shown(twin[3])} there and "
                           f"{shown(label)} here" if twin else "the same text written with another label elsewhere")
                          + ": every copy is set aside, as nothing tells which label is right; fix the wrong one")
        else:  # a validation or test record that is in train
            twin = next((t for t in found if t[0] == "train"), None)
            details[i] = (f"this {split} record is also in the training data"
                          f"{f' ({where(twin[1], twin[2])})' if twin else ''} (case and spacing aside): a score on "
                          "records the model trained on overstates it, so the training copy is kept and this one set "
                          "aside")
        given = quarantine["detail"].iloc[i]
        if isinstance(given, str) and given:  # a kind's own context (a pair's second text): kept after it
            details[i] = f"{details[i]} ({given})"
    return quarantine.assign(detail=details)


def _without_copies_of_conflicts(quarantine: pd.DataFrame) -> pd.DataFrame:
    """The quarantine without the ``no_exact_duplicates`` entries of records that conflict too: a conflict sets every
    copy aside, so the copy rule's "the first copy is kept" contradicted it (GoEmotions: a line set aside as a copy
    of a line that was itself set aside), and the rules' counts added up to more records than were quarantined
    (README QA)."""
    if not len(quarantine) or "no_conflicting_label_duplicates" not in set(quarantine["rule"]):
        return quarantine
    where = ["split", "source_file", "source_row"]
    keys = pd.MultiIndex.from_frame(quarantine[where].astype(str))
    conflicting = keys[(quarantine["rule"] == "no_conflicting_label_duplicates").to_numpy()]
    redundant = (quarantine["rule"] == "no_exact_duplicates").to_numpy() & keys.isin(conflicting)
    return quarantine[~redundant].reset_index(drop=True) if redundant.any() else quarantine


def apply_contract(frames: dict[str, pd.DataFrame], labels: list[str], malformed: pd.DataFrame,
                   config: TunelineConfig, source_lines: dict[str, np.ndarray] | None = None
                   ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The kind's contract on prepared frames: the clean frames, and one quarantine of the records that broke a rule
    (with the kind's details) plus the ``malformed`` ones the reader could not parse. ``source_lines``: the
    reader's line of each record, for details that name another record."""
    kind = kind_of(config)
    clean, quarantine = validate_frames(frames, labels, lambda ls, keys: kind.schema(ls, keys, config.data),
                                        kind.value_column, kind.key_column)
    names = file_column_names(config.data)
    quarantine = kind.describe_failures(quarantine, {r: f.reset_index(drop=True) for r, f in frames.items()}, labels,
                                        names, data=config.data, source_lines=source_lines)
    quarantine = describe_copies(_without_copies_of_conflicts(quarantine), frames, kind, source_lines)
    if len(quarantine) and names:  # the file's names, not the frames' own
        quarantine["column"] = quarantine["column"].map(lambda column: names.get(column, column))
    quarantine = pd.concat([q for q in (malformed, quarantine) if len(q)] or [quarantine],
                           ignore_index=True)[QUARANTINE_COLUMNS]
    return clean, quarantine


@pipeline_task(name="validate-data")
def validate_data(loaded: LoadedData, config: TunelineConfig, run_dir: Path,
                  run: RunContext | None = None) -> ValidatedData:
    """Apply the kind's contract to every split; write the quarantine; fail when over ``max_bad_fraction``."""
    log = task_logger()
    kind = kind_of(config)
    frames = kind.prepare(loaded.frames, config.data)
    try:
        labels = kind.label_set(frames, config.data, primary_metric=config.primary_metric)
    except LabelSetError as error:
        malformed = with_source_lines(loaded.malformed, loaded.source_lines)
        # the label set was inferred without the records the reader could not parse: when they are most of the
        # data, they are the cause ("the label set [] has 0 labels" when every row had a stray trailing comma)
        if len(malformed) and count_rejected(malformed) > config.data.max_bad_fraction * max(loaded.total_records, 1):
            path = write_quarantine(malformed, run_dir, run)
            reasons = ", ".join(f"{rule} ({n})" for rule, n in Counter(malformed["rule"]).most_common(3))
            first = malformed.iloc[0]
            example = f"; e.g. {where_in_file(first)}: {first['detail']}" \
                if isinstance(first.get("detail"), str) else ""
            raise DataValidationError(
                f"{count_rejected(malformed)} of {loaded.total_records} records could not be read ({reasons}"
                f"{example}); every one is in {path}. With the rest: {error}") from None
        raise DataValidationError(f"{error}{first_rows_of(error, frames, kind, loaded.source_lines, config.data)}"
                                  ) from None
    for frame in frames.values():  # one salted hash per row, shared by the duplicate, leakage and split rules
        if kind.key_column in frame.columns and arrow_strings(frame[kind.key_column]) is not None:
            key_hashes(frame[kind.key_column], config.data.split.salt)
    clean, quarantine = apply_contract(frames, labels, loaded.malformed, config, loaded.source_lines)
    quarantine = with_source_lines(quarantine, loaded.source_lines)
    for role, frame in clean.items():  # the loader's categorical labels go on as plain str labels
        target = kind.target_column
        if target in frame.columns and isinstance(frame[target].dtype, pd.CategoricalDtype):
            clean[role] = frame.assign(**{target: plain_labels(frame[target])})
    kept = {id(arrow_strings(f[kind.key_column])) for f in clean.values() if kind.key_column in f.columns}
    for frame in frames.values():  # the clean frames carry their own hashes on to the split
        if kind.key_column in frame.columns and id(arrow_strings(frame[kind.key_column])) not in kept:
            forget_key_hashes(frame[kind.key_column])
    release_unused_memory()
    path = write_quarantine(quarantine, run_dir, run)
    log.info("validated %d records: %d rejected (quarantine: %s); %d labels", loaded.total_records,
             count_rejected(quarantine), path, len(labels))
    records_per_file: Counter = Counter()
    for source in loaded.sources:  # one file given as two splits (validation and test) is counted for each
        records_per_file[str(source.path)] += source.records
    enforce_bad_fraction(quarantine, loaded.total_records, config.data.max_bad_fraction, path, run,
                         config.data.max_duplicate_fraction, dict(records_per_file))
    return ValidatedData(frames=clean, labels=labels, quarantine=quarantine, quarantine_path=path,
                         total_records=loaded.total_records)
