"""Text classification (sentiment, topic, intent): one text, one label out of 2..N.

Everything specific to this kind is here: its config keys, how a table becomes canonical ``text``/``label`` rows,
the label policy, the encoder, the metrics (accuracy, macro/weighted F1: one function for validation, test and the
champion), the baselines (majority class; zero-shot cosine to label names with the base model) and the report
(per-class table, confusion matrix, test predictions). The pair and multi-label kinds subclass it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from tuneline.errors import UserError, excerpt
from tuneline.config import DataConfig, TunelineConfig
from tuneline.kinds.base import Evaluation, ReadRecords, TaskKind
from tuneline.long_texts import cut_long_texts
from tuneline.readers import (DataLoadError, bom_encoding, csv_layout, header_line_below, normalize_label,
                              read_table)

#: Roles whose labels define the label set when none is configured.
LABEL_SOURCE_ROLES = ("train", "all")


class LabelSetError(UserError):
    """The label set cannot be used as configured or inferred; the message names the labels and what to set.

    ``labels``: the label values the error is about, as the rows hold them, so that the validation can name the
    file and line of their first rows (a stray ``neutral`` among 10,000 rows is otherwise found by grepping)."""

    def __init__(self, message: str, labels: Iterable[Any] = ()) -> None:
        super().__init__(message)
        self.labels = tuple(labels)


class ClassificationData(DataConfig):
    text_column: str = "text"
    label_column: str = "label"
    header: bool = Field(True, description="CSV/TSV: the first line names the columns. false: columns are named "
                                           "by 0-based position ('0', '1', ...).")
    skip_lines: int = Field(0, ge=0, description="CSV/TSV: lines before the header that are no part of the table "
                                                  "(an export's title or notes); they are not records.")
    tsv_quotes: Literal["auto", "keep"] = Field(
        "auto", description="TSV files are read without quote processing. auto: a column whose every value is "
                            "wrapped in double quotes (R, pandas QUOTE_ALL) is read without them, and one where only "
                            "some are (with doubled quotes inside) is warned about; keep: every value as written, no "
                            "warning (GLUE and GoEmotions files, whose quotes are text).")
    sheet: str | None = Field(None, description="Excel workbooks: the name of the sheet holding the records (the "
                                                "first sheet by default).")
    min_examples_per_label: int = Field(
        5, ge=1, description="An inferred label seen fewer times in train is an error (a stray typo must not "
                             "become a class); configure data.labels to accept it.")
    merge_label_spellings: bool = Field(
        True, description="Labels that differ only in case, Unicode form or the separators -, _ and space are one "
                          "class, written as in data.labels or as most often in train (logged); false keeps every "
                          "spelling a class of its own.")

    def column_keys(self) -> dict[str, str]:
        """The configured input columns by key (each must be a different column); kinds with more text columns add
        theirs."""
        return {"text_column": self.text_column, "label_column": self.label_column}

    @field_validator("sheet", mode="before")
    @classmethod
    def _sheet_name_as_text(cls, value: Any) -> Any:
        """``sheet: 2024`` is a sheet's name that YAML read as a number."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _distinct_columns(self) -> "ClassificationData":
        """Two keys naming one column would feed the model its own label (or one text twice) and train a model that
        looks perfect and has learned nothing: a config error naming both keys, not a run."""
        problem = same_column(self.column_keys())
        if problem is not None:
            key, other, column = problem
            raise ValueError(f"{key}: names the same column as data.{other} ({column!r}); "
                             f"{_why_distinct(key, other)}: set data.{key} to another column")
        return self


def same_column(columns: dict[str, str]) -> tuple[str, str, str] | None:
    """The first (key, earlier key, column) where two configured keys name one column; None when all differ. The
    label key is never the one blamed: it is the column users get right, the text keys the ones copied from another
    config."""
    seen: dict[str, str] = {}
    ordered = sorted(columns.items(), key=lambda item: item[0] != "label_column")  # the label first: never blamed
    for key, column in ordered:
        if column in seen:
            return key, seen[column], column
        seen[column] = key
    return None


def _why_distinct(key: str, other: str) -> str:
    if "label_column" in (key, other):
        return "the model would be given the label as its input"
    return "the model would be given one text twice"


class ClassificationConfig(TunelineConfig):
    METRICS: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1", "weighted_f1")
    DEFAULT_METRIC: ClassVar[str] = "macro_f1"

    task: Literal["classification"] = "classification"
    data: ClassificationData


def with_nested_fields(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """``frame`` with a column for each dotted name the records hold as nested objects: ``data.text`` is the
    ``text`` field of each record's ``data`` object, as Label Studio and other annotation tools export records
    (``{"data": {"text": ...}}``). Such a name was refused, with advice about a CSV header (dirty-data QA). A record
    without the nested field gives a missing value, which the contract quarantines; a column whose name holds the
    dot itself is read as it is."""
    added = {}
    for name in names:
        head, _, rest = name.partition(".")
        if not rest or name in frame.columns or head not in frame.columns:
            continue
        values = frame[head]
        if not any(isinstance(v, dict) for v in values):
            continue

        def walk(value: Any, keys: list[str] = rest.split(".")) -> Any:  # noqa: ANN401 - a JSON value
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            return value

        added[name] = pd.Series([walk(v) for v in values], index=frame.index, dtype=object)
    return frame.assign(**added) if added else frame


def matched_columns(frame: pd.DataFrame, wanted: dict[str, str]) -> dict[str, str]:
    """``wanted`` with each name the file lacks replaced by the one column that differs from it only in case,
    surrounding spaces and invisible characters (a header ``Text , Label`` for ``text`` and ``label``; a zero-width
    space or a NUL a broken export left in ``\u200btext``, which printed looked exactly like ``text``); a name with
    no such column, or with two, stays as it is (for :func:`columns_or_error` to report)."""
    matched = dict(wanted)
    for key, column in wanted.items():
        if column in frame.columns:
            continue
        same = same_apart_from_case(frame.columns, column)
        if len(same) == 1:
            matched[key] = same[0]
    return matched


def same_apart_from_case(columns: Any, column: str) -> list[str]:
    """The names among ``columns`` that differ from ``column`` only in case, surrounding spaces, invisible
    characters and Unicode form (the one fold :func:`matched_columns` and :func:`columns_or_error` share): a header
    ``téxte`` (decomposed, as macOS tools can write it) printed exactly like the ``téxte`` a config names, and
    was not found (dirty-data QA)."""
    import unicodedata

    from tuneline.kinds.label_spellings import visible

    def fold(name: str) -> str:
        return unicodedata.normalize("NFC", visible(name)).strip().casefold()

    want = fold(column)
    return [c for c in columns if isinstance(c, str) and fold(c) == want]


def columns_or_error(frame: pd.DataFrame, path: Path, wanted: dict[str, str], fmt: str | None = None,
                     data: ClassificationData | None = None) -> None:
    """Every configured column must exist; the error lists the file's columns and the key to set, or where a CSV/TSV
    file's header really is when a line further down names the columns (an export's title line above it)."""
    for key, column in wanted.items():
        if column not in frame.columns:
            found = [c for c in frame.columns if c not in ("source_row", "source_line")]
            same = same_apart_from_case(found, column)
            if len(same) > 1:  # matched_columns takes one, not two: "no column 'text'" beside 'Text' and 'TEXT'
                raise DataLoadError(f"{path} has {len(same)} columns named {column!r} apart from case and spaces "
                                    f"({', '.join(map(repr, same))}), and {key} could mean any of them: rename all but "
                                    f"one, or set {key} to one of them exactly as written")
            below = (header_line_below(path, fmt, data.encoding, wanted.values(), data.skip_lines)
                     if fmt in ("csv", "tsv", "xlsx") and data is not None and data.header else None)
            if below is not None:
                raise DataLoadError(f"{path} has no column {column!r} in its header (line {data.skip_lines + 1}), "
                                    f"but line {below} names the configured columns: set data.skip_lines: "
                                    f"{below - 1} to read the file from that line")
            unread = [c for c in found if c not in set(wanted.values())]
            if not unread:  # every column is another setting's: no name to set would find it (pair QA, D8)
                raise DataLoadError(f"{path} has no column {column!r} (its columns: {found}, each read for another "
                                    f"setting): the file lacks the column {key} names; add it")
            shown = ", ".join(map(repr, unread[:5])) + (f" and {len(unread) - 5} more" if len(unread) > 5 else "")
            read_with_header = data is None or getattr(data, "header", True)
            if read_with_header and column.strip().isdigit():  # "0", "1" name columns of a file without a header
                raise DataLoadError(f"{path} has no column {column!r} (its columns, read from its first line: "
                                    f"{found}); {key} names a column by its position, as in a file without a "
                                    "header row: set data.header: false")
            headless = "; or data.header: false for a file without a header row" if read_with_header and not any(
                c.isdigit() for c in map(str, found)) else ""
            raise DataLoadError(f"{path} has no column {column!r} (its columns: {found}); set {key} to the right "
                                f"name (of the columns no other setting reads: {shown}{headless})")


def as_objects(series: pd.Series) -> pd.Series:
    """Missing values become None; everything else keeps its Python type (the schema judges it)."""
    return series.astype(object).where(series.notna(), None)


def _arrow_strings(values: pd.Series) -> Any:
    from tuneline.common import arrow_strings

    return arrow_strings(values)


def _compact(values: Any) -> bool:
    """A compact column of the CSV/TSV loader: Arrow-backed strings, or categorical labels."""
    return isinstance(values, pd.Series) and (isinstance(values.dtype, pd.CategoricalDtype)
                                              or _arrow_strings(values) is not None)


def normalized_labels(values: pd.Series, source_rows: pd.Series,
                      malformed: list[dict]) -> tuple[pd.Series, pd.Series]:
    """Labels as names (``1``, ``1.0``, `` 1`` → ``"1"``); values that cannot be one label go to ``malformed``.

    Returns the labels and a mask of the rows to keep. A compact ``str`` column (strings or missing, never a value
    that cannot be a label) is normalised once per distinct value and becomes a categorical column (a byte per row
    for a handful of labels; the split task hands on ``str`` columns). The mask is ``bool`` even with no rows (a
    file whose every record was malformed at read): an empty ``object`` Series is taken by ``frame[mask]`` as a
    list of column names, which left the pair kind a frame without columns (``KeyError: 'text'``).
    """
    if _arrow_strings(values) is not None:
        codes, distinct = pd.factorize(values)
        names = [normalize_label(value)[0] for value in distinct]
        categories = sorted({name for name in names if name is not None})
        position = {name: i for i, name in enumerate(categories)}
        recode = np.array([position[name] if name is not None else -1 for name in names] + [-1], dtype=np.int64)
        labels = pd.Categorical.from_codes(recode[codes].astype(np.int16 if len(categories) > 127 else np.int8),
                                           pd.Index(categories, dtype="str"))
        return pd.Series(labels, index=values.index), pd.Series(True, index=values.index)
    labels, keep = [], []
    for value, row in zip(values, source_rows):
        label, rule = normalize_label(value)
        if rule:
            malformed.append({"source_row": int(row), "rule": rule, "value": repr(value)[:500],
                              "detail": "Infinity is no label name (an overflow or a placeholder of the export); "
                                        "write the row's label" if rule == "label_is_infinite" else
                                        "a single-label column needs one label name per row"})
        labels.append(label)
        keep.append(rule is None)
    return pd.Series(labels, index=values.index, dtype=object), pd.Series(keep, index=values.index, dtype=bool)


def label_set_text(labels: list[str], shown: int = 20) -> str:
    """The label set for a message: the whole list, or its first ``shown`` labels and how many there are."""
    if len(labels) <= shown:
        return str(list(labels))
    return "[" + ", ".join(map(repr, labels[:shown])) + f", ...] ({len(labels)} labels)"


#: Where a quarantined record came from: (split, source_file, source_row).
RecordKey = tuple[str, str, int]


def values_at_rows(rows: pd.DataFrame, frames: dict[str, pd.DataFrame], column: str) -> dict[RecordKey, Any]:
    """``column``'s value of each quarantine row (split, source_file, source_row) in the frames it came from. Only
    the frames' rows with a wanted row number are looked at, so a few bad rows in ten million cost one ``isin``."""
    found: dict[RecordKey, Any] = {}
    for split, group in rows.groupby("split", sort=False):
        frame = frames.get(split)
        if frame is None or column not in frame.columns:
            continue
        hit = frame["source_row"].isin(set(int(r) for r in group["source_row"])).to_numpy()
        part = frame.loc[hit, ["source_file", "source_row", column]]
        for file, row, value in zip(part["source_file"].astype(str), part["source_row"], part[column]):
            found[(str(split), file, int(row))] = value
    return found


def present_labels(gold: list[Any], predicted: list[Any], labels: list[str]) -> list[str]:
    """The labels (in label-set order) that occur in ``gold``: what macro averages run over.

    Not gold or predictions (sklearn's default): then the set depended on the model's own mistakes, so two stray
    predictions of a label the test rows lack added an F1 of 0 to the mean (macro-F1 0.94 became 0.63 at the same
    accuracy), and the gate compared champion and candidate over different label sets. A wrong prediction of such a
    label still costs its row's gold label its recall. ``predicted`` is kept for the callers' symmetry."""
    seen = set(gold)
    return [label for label in labels if label in seen] or list(labels)


def label_ids(values: list[Any], labels: list[str]) -> np.ndarray:
    """Each value's position in ``labels``; an out-of-set value (never expected) gets ``len(labels)``."""
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index.get(v, len(labels)) for v in values])


def per_class_f1(gold_ids: np.ndarray, pred_ids: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """F1 and support of each label from label ids, with ``np.bincount``: what the bootstrap's subset scores of the
    single-label kinds reduce (fast enough for 1,000 resamples of a large test set)."""
    n = n_labels + 1  # the out-of-set slot
    hits = np.bincount(gold_ids[gold_ids == pred_ids], minlength=n)[:n_labels]
    support = np.bincount(gold_ids, minlength=n)[:n_labels]
    denominator = support + np.bincount(pred_ids, minlength=n)[:n_labels]
    return np.divide(2 * hits, denominator, out=np.zeros(n_labels), where=denominator > 0), support


#: at most this many rare labels are named in the error (the rest are counted)
RARE_LABELS_SHOWN = 10


def frequent_labels(values: list[Any], minimum: int, separator: str | None = None, joined_here: int = 0) -> list[str]:
    """Sorted labels seen in train; an error naming the rare ones when any is below ``minimum``. ``separator``: the
    multi-label kind's ``data.label_separator`` (a joined label then means another separator, not another kind);
    ``joined_here``: the cells that separator split into several labels. When those outnumber the rows joined
    otherwise, the advice is to fix those rows: switching the separator, as it said before, broke every other row
    (and the next run said to switch back)."""
    if _compact(values):  # count per distinct value
        counts = Counter({v: int(n) for v, n in values.value_counts(dropna=True).items()
                          if n and isinstance(v, str) and v.strip()})
    else:
        counts = Counter(v for v in values if isinstance(v, str) and v.strip())
    refuse_missing_value_markers(counts)
    rare = {label: n for label, n in counts.items() if n < minimum}
    if rare:
        ordered = sorted(rare.items(), key=lambda x: (x[1], str(x[0])))
        shown = ", ".join(f"{excerpt(str(label), 42)} ({n})" for label, n in ordered[:RARE_LABELS_SHOWN])
        if len(ordered) > RARE_LABELS_SHOWN:
            shown += f" and {len(ordered) - RARE_LABELS_SHOWN:,} more"
        # thousands of one-off "labels" are texts: the columns are the wrong way round (or the wrong one)
        swapped = (len(counts) > 50 and len(rare) > len(counts) / 2
                   and sum(counts.values()) < 2 * len(counts))
        hint = (f"; the label column holds {len(counts):,} distinct values, most of them seen once: is it the text "
                "column? check data.text_column and data.label_column (or the file's header)") if swapped else ""
        if not hint and (joined := _joined_labels(list(rare), counts)):
            other = next((s for s in (",", "|", ";") if s in joined), "another separator")
            joined_otherwise = sum(n for label, n in rare.items() if other in label)
            if separator is None:
                hint = (f"; labels such as {joined!r} are several labels of one row: for multi-label data set task: "
                        "multilabel_classification")
            elif joined_here >= joined_otherwise:
                hint = (f"; labels such as {joined!r} are several labels joined by {other!r}, where the other rows "
                        f"join theirs by data.label_separator ({separator!r}): join those rows' labels by "
                        f"{separator!r}")
            else:
                hint = (f"; labels such as {joined!r} are several labels joined by {other!r}, not by "
                        f"data.label_separator ({separator!r}): set data.label_separator: {other!r}")
        raise LabelSetError(f"label(s) {shown} occur fewer than data.min_examples_per_label={minimum} times in the "
                            "training data: fix those rows, or list the real classes in data.labels (rows with other "
                            f"labels are then quarantined){hint}", labels=[label for label, _ in ordered])
    return natural_order(counts)


def refuse_labels_of_copies(frame: pd.DataFrame, labels: list[str], minimum: int) -> None:
    """Refuse a label with enough rows but fewer than ``minimum`` distinct texts: its copies are dropped as
    duplicates, so it reached the split with one or two rows and the error said it had "no rows in the train split:
    give it more rows" of a label the file holds six times. Only labels with few rows are looked at (a label of
    ``20 * minimum`` rows or more cannot fall under it unless almost all are copies, which the duplicate budget
    reports), so a big file is not deduplicated here."""
    if minimum <= 1 or not len(frame):
        return
    counts = frame["label"].value_counts(dropna=True)
    few = [label for label in labels if 0 < counts.get(label, 0) < 20 * minimum]
    if not few:
        return
    rows = frame[frame["label"].isin(few)]
    distinct = rows.assign(key=rows["text"].astype(str).str.strip()).drop_duplicates(["key", "label"])
    distinct_counts = distinct["label"].value_counts()
    short = {label: (int(counts[label]), int(distinct_counts.get(label, 0))) for label in few
             if distinct_counts.get(label, 0) < minimum}
    if short:
        shown = ", ".join(f"{excerpt(str(label), 42)} ({n} rows, {d} distinct text{'s' * (d != 1)})"
                          for label, (n, d) in list(short.items())[:RARE_LABELS_SHOWN])
        raise LabelSetError(f"label(s) {shown} have fewer than data.min_examples_per_label={minimum} distinct texts: "
                            "their other rows are copies, dropped as duplicates; add distinct examples, or list the "
                            "real classes in data.labels (rows with other labels are then quarantined)", labels=short)


def natural_order(labels: Any) -> list[str]:
    """Labels sorted as text, except that labels which are all whole numbers sort as numbers (0, 1, 2, ..., 10, not
    0, 1, 10, 11, ..., 2), so the model's class ids are the data's own where the data counts from 0."""
    labels = list(labels)
    if labels and all(re.fullmatch(r"-?\d{1,18}", str(label)) for label in labels):
        return sorted(labels, key=lambda label: (int(label), str(label)))
    return sorted(labels)


def unlabeled_mark_note(frames: dict[str, pd.DataFrame], labels: list[str],
                        label_column: str = "label") -> str | None:
    """The warning for an inferred label set of class ids 0..k plus ``-1``, None for any other set.

    Hugging Face ``datasets`` writes a row without a label as ``-1`` (every row of a GLUE test split). Parquet and
    ``save_to_disk`` files declare their ``ClassLabel`` and read ``-1`` as missing (``readers._class_name``); a
    ``Dataset.to_json`` export declares nothing, so its unlabeled rows became a class ``-1`` that the model learned,
    and nothing said so. ``-1`` can be a real class (sentiment -1/0/1), so the rows are kept and
    the warning names both ways out; ``data.labels`` settles it (the caller warns only for an inferred set).
    ``label_column``: the file's name of the label column, for the filter the warning shows."""
    if "-1" not in labels:
        return None
    ids = [label for label in labels if label != "-1"]
    if len(ids) < 2 or set(ids) != {str(i) for i in range(len(ids))}:
        return None
    counts: Counter = Counter()
    for frame in frames.values():
        if "label" in frame.columns and "source_file" in frame.columns:
            hit = (frame["label"] == "-1").to_numpy(dtype=bool)
            counts.update(Counter(frame["source_file"].astype(str).to_numpy()[hit]))
    if not counts:
        return None
    files = (", ".join(f"{file} ({n:,})" for file, n in counts.most_common()) if len(counts) > 1
             else next(iter(counts)))
    ids_text = ", ".join(ids)
    return (f"{sum(counts.values()):,} row(s) of {files} have the label -1 beside the class ids {ids_text}: "
            "Hugging Face datasets marks a row with no label -1 (a GLUE test split's), and here -1 is learned as a "
            "class of its own. To drop those rows, filter them out of the file (e.g. dataset.filter(lambda row: "
            f"row[{label_column!r}] != -1) before to_json) or set data.labels: [{ids_text}] (they are then "
            f"quarantined, counted against data.max_bad_fraction); if -1 is a class, set data.labels: [-1, {ids_text}]")


#: How R (``NA``), pandas (``nan``, ``None``), Excel (``#N/A``, and its formula errors such as ``#REF!``) and SQL
#: dumps (``NULL``; MySQL's ``SELECT INTO OUTFILE`` and PostgreSQL's ``COPY`` write ``\N``) write a missing value.
#: Read as text they became classes that a model then learned to predict: an inferred label set refuses them.
MISSING_VALUE_MARKERS = frozenset({"na", "n/a", "nan", "none", "null", "#n/a", "nil", "<na>", "\\n",
                                   "#ref!", "#value!", "#div/0!", "#name?", "#null!", "#num!", "#spill!", "#calc!",
                                   "#getting_data"})


def refuse_missing_value_markers(counts: Counter) -> None:
    """An error naming each inferred label that is a missing-value marker (``data.labels`` may still list one)."""
    markers = {label: n for label, n in counts.items() if str(label).strip().casefold() in MISSING_VALUE_MARKERS}
    if markers:
        shown = ", ".join(f"{label!r} ({n} row{'' if n == 1 else 's'})" for label, n in sorted(markers.items()))
        raise LabelSetError(f"label(s) {shown} in the training data are how R, pandas, Excel or SQL write a missing "
                            "value (or a formula error), not classes: leave those label cells empty in the file (such rows are then "
                            "quarantined as missing labels), or list every real class in data.labels (and that "
                            "value too if it is one)", labels=sorted(markers))


def _joined_labels(rare: list[str], counts: Counter) -> str | None:
    """A rare label that joins labels seen on their own (``'2,7'`` beside rows labelled ``2`` and ``7``), when at least
    half of the rare labels are such: multi-label data read by the single-label kind (``task:`` left out)."""
    joined = []
    for label in rare:
        for separator in (",", "|", ";"):
            parts = [part.strip() for part in label.split(separator)]
            if len(parts) >= 2 and all(counts.get(part, 0) > counts[label] for part in parts):
                joined.append(label)
                break
    return joined[0] if joined and len(joined) >= len(rare) / 2 else None


def checked_label_set(labels: list[str], frames: dict[str, pd.DataFrame], column: str,
                      label_names: bool = False, configured_by: str = "data.labels") -> list[str]:
    """At least two labels, and every configured label present in train (else it could never be learned). The
    error names the labels train holds, and its advice names only keys of the config's task kind: ``label_names``
    for a kind with data.label_names (multi-label); a single-label kind reads a label as written, so class ids
    (a Hugging Face export's ``"label": 0``) under named data.labels get their own advice. ``configured_by``: the
    key the labels came from (a multi-label set is data.label_names' lines, or data.label_columns, unless data.labels
    lists it): the error told a user with no data.labels to leave labels out of it."""
    if len(labels) < 2:
        one_tag = (f"; to tag texts with {labels[0]!r} or not, train task: classification on two labels (such as "
                   f"{labels[0]!r} and 'not_{labels[0]}', rows with no label written as the second)"
                   if label_names and len(labels) == 1 else "")
        raise LabelSetError(f"the label set {labels} has {len(labels)} label(s); a classifier needs at least 2: "
                            f"check data.label_column or data.labels{one_tag}")
    source = next((frames[r] for r in LABEL_SOURCE_ROLES if r in frames), None)
    if source is not None and len(source):
        if _compact(source[column]):
            seen = set(source[column].dropna().unique())
        else:
            seen = {v for value in source[column] for v in (value if isinstance(value, list) else [value])}
        absent = [label for label in labels if label not in seen]
        if absent:
            held = sorted((str(v) for v in seen), key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
            shown = ", ".join(repr(v) for v in held[:10]) + (f", ... ({len(held)} in all)" if len(held) > 10 else "")
            if label_names:
                advice = ("; where labels are ids, do not delete lines from data.label_names, whose line numbers are "
                          "the ids: list the labels to learn in data.labels instead")
            elif held and all(v.isdigit() for v in held):
                advice = ("; these are class ids, and this task reads a label as the name written in the file: leave "
                          "data.labels out, so the classes are named '0', '1', ..., or write the names into the "
                          "label column")
            else:
                advice = ""
            from tuneline.kinds.label_spellings import spelling_key

            # configured labels are classes as written, each kept apart (``02134`` and ``2134``), so a second
            # spelling of one class (``[positive, negative, Positive]``) has no rows: say that is the likely cause
            twins = [f"{label!r} and {other!r}" for label in absent for other in labels
                     if other != label and other not in absent and spelling_key(other) == spelling_key(label)]
            if twins:
                advice += (f"; {', '.join(twins)} are one label written two ways unless they are two classes: list "
                           "each label once")
            remedy = ("list the labels to learn in data.labels" if configured_by == "data.label_names"
                      else f"leave them out of {configured_by}")
            if configured_by == "data.label_names":
                advice = advice.replace("; where labels are ids, do not delete lines from data.label_names, whose line "
                                        "numbers are the ids: list the labels to learn in data.labels instead",
                                        "; do not delete lines from data.label_names where labels are ids: its line "
                                        "numbers are the ids")
            raise LabelSetError(f"configured label(s) {absent} never occur in the training data, so the model cannot "
                                f"learn them: add training rows, or {remedy} (train holds {shown}{advice})")
    return labels


#: a wrong-field-count detail the reader gave no cause of: ``3 fields, header has 2`` (``most records have 2``)
_BARE_FIELD_COUNT = re.compile(r"(\d+) fields, (?:header has|most records have) (\d+)")


def delimiter_hint(delimiter: str) -> str:
    """Why a CSV record has more fields than the header, most likely: a text holding the delimiter, unquoted."""
    return (f"a text holding {delimiter!r} must be in double quotes (\"fine{delimiter} thanks\"), as spreadsheet "
            "programs and pandas' to_csv write it")


def with_delimiter_hints(malformed: list[dict], path: Path, fmt: str, data: Any, hint: Any) -> list[dict]:
    """``malformed`` with the likely cause added to each CSV record that has more fields than the header and no
    cause yet (``3 fields, header has 2`` alone said what, not why): ``hint(delimiter)``. A
    cause the reader found (a stray delimiter at the line's end, R's row names) is surer and kept alone. TSV files
    are read without quoting, so quotes are no advice there."""
    if fmt != "csv" or not any(record.get("rule") == "record_has_wrong_field_count" for record in malformed):
        return malformed
    delimiter = csv_layout(path, bom_encoding(path, data.encoding), data.skip_lines)[0]
    cause = hint(delimiter)
    hinted = []
    for record in malformed:
        match = _BARE_FIELD_COUNT.fullmatch(str(record.get("detail") or ""))
        if record.get("rule") == "record_has_wrong_field_count" and match and int(match[1]) > int(match[2]):
            record = {**record, "detail": f"{record['detail']}; {cause}"}  # the line: the quarantine's source_line
        hinted.append(record)
    return hinted


def _no_text_detail(value: Any, title: str = "the text") -> str:
    """Why a text cell is no text: a JSON number or boolean (``{"text": 12345}``), an object or list, or blank; the
    rule name alone read as "empty" for a number. ``title``: how to name the column (``the second text ('#2
    String')``)."""
    from tuneline.schemas.common import invisible_kind

    if isinstance(value, (bool, np.bool_)):
        return f"{title} is the boolean {value}, not a string: write the text in quotes"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return (f"{title} is the number {excerpt(value)}, not a string: if it is a text, store it as one (in JSON "
                f"in quotes, \"{value}\"; in Parquet a string column)")
    if isinstance(value, (dict, list, tuple, np.ndarray)):
        return f"{title} is a JSON object or list, not a string: write one text per row"
    if isinstance(value, str) and value.strip():
        return (f"{title} has only invisible characters ({excerpt(value, 40)}: {invisible_kind(value)}): give the "
                "row a text, or drop it")
    return f"{title} is empty or only spaces"


#: what exports write for an empty cell: pandas' ``astype(str)`` (``nan``, ``None``, ``<NA>``), SQL (``NULL``),
#: spreadsheets (``#N/A``, ``N/A``)
MISSING_VALUE_TEXTS = frozenset({"nan", "none", "null", "na", "n/a", "#n/a", "<na>", "nat", "nil", "#null!"})


def warn_missing_value_texts(frames: dict[str, pd.DataFrame], columns: list[str], source: str = "") -> int:
    """Warn (once, with the count of each) about texts that are only a missing-value marker: the same values are
    refused as labels, while as texts they were trained on as the words "nan" and "None" without a word (dirty-data
    QA). Kept, not quarantined: a short answer "None" can be a real text. Returns how many there are."""
    found: Counter = Counter()
    for frame in frames.values():
        for column in columns:
            if column not in frame.columns:
                continue
            try:  # only short strings are looked at: a pass over lengths, not a casefold of 10 million texts
                values = frame[column]
                short = values[(values.str.len() <= 12).fillna(False).to_numpy(dtype=bool)]
            except AttributeError:  # not a column of strings (the contract says so)
                continue
            folded = short.str.strip().str.casefold()
            found.update(str(v).strip() for v in short[folded.isin(MISSING_VALUE_TEXTS).fillna(False)
                                                      .to_numpy(dtype=bool)])
    if found:
        from tuneline.common import task_logger

        task_logger().warning(
            "%d text(s)%s are only a missing-value marker (%s), what an export writes for an empty cell: they are "
            "kept as texts; blank those cells to have them quarantined as texts missing", sum(found.values()), source,
            ", ".join(f"{value!r} {count}" for value, count in found.most_common(5)))
    return sum(found.values())


def without_conflicting_spellings(raw: pd.DataFrame, used: list[str], malformed: list[dict]) -> pd.DataFrame:
    """``raw`` (a JSONL file's records) without those that write a used key a second time in another case or with
    spaces (``"label": "neg", "Label": "pos"``) with another value: keys are matched that way, so the record names
    its label twice, as ``record_has_duplicate_key`` sets aside for one spelling; reading the configured spelling
    alone dropped the other value without a word. Each goes to ``malformed``; the same value twice is no conflict."""
    keys = {column: _spelling_key(column) for column in raw.columns if column not in ("source_row", "source_line")}
    conflict = np.zeros(len(raw), dtype=bool)
    details: dict[int, str] = {}
    for column in dict.fromkeys(used):
        for other in (c for c, key in keys.items() if key == keys.get(column) and c != column):
            mine, theirs = raw[column].to_numpy(dtype=object), raw[other].to_numpy(dtype=object)
            for i in np.flatnonzero([a is not None and b is not None and a != b for a, b in zip(mine, theirs)]):
                if not conflict[i]:
                    conflict[i] = True
                    details[i] = (f"key {column!r} is written twice in one object, also as {other!r}, with other "
                                  f"values ({excerpt(mine[i], 30)}, {excerpt(theirs[i], 30)}); keys are read "
                                  "whatever their case or spaces, so a record has one value per key: keep one")
    for i in np.flatnonzero(conflict):
        value = raw[used[0]].iloc[i]
        malformed.append({"source_row": int(raw["source_row"].iloc[i]), "source_line": int(raw["source_line"].iloc[i]),
                          "rule": "record_has_duplicate_key", "value": value if isinstance(value, str) else repr(value),
                          "detail": details[i]})
    return raw[~conflict].reset_index(drop=True) if conflict.any() else raw


def _spelling_key(name: str) -> str:
    return str(name).strip().casefold()


class ClassificationKind(TaskKind):
    name = "classification"
    config_model = ClassificationConfig
    formats = ("csv", "tsv", "jsonl", "parquet", "xlsx")
    head = "AutoModelForSequenceClassification"
    peft_task_type = "SEQ_CLS"
    pyfunc_file = "text_classifier.py"
    input_example = ["an example text", "a second, longer example text for the signature"]
    lineage_columns = ("text", "label")
    target_column = "label"
    train_needs_every_label = True

    def signature(self) -> Any:
        """One unnamed input column of type ``Any``, not ``string``: a string column makes MLflow's scoring server
        cast every value to text while it parses the request, so ``{"inputs": ["fine", null]}`` reached the model as
        ``"None"`` and came back with a confident label. An ``Any`` column hands the values over as sent, and the
        model refuses a missing, empty or non-text value by its position (HTTP 400). Unnamed, so a str, a list, a
        Series and a one-column DataFrame all arrive as that column (see the pyfunc)."""
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema
        from mlflow.types.schema import AnyType

        return ModelSignature(inputs=Schema([ColSpec(AnyType())]))

    # --- data -------------------------------------------------------------------------------------------------
    def prepare(self, frames: dict[str, pd.DataFrame], data: ClassificationData,
                quiet: bool = False, source: str = "") -> dict[str, pd.DataFrame]:
        """Fold labels written several ways into one spelling (:mod:`tuneline.kinds.label_spellings`); say how many
        texts are an export's missing-value markers (:func:`warn_missing_value_texts`)."""
        from tuneline.common import task_logger
        from tuneline.kinds import label_spellings

        if not quiet:
            warn_missing_value_texts(frames, [c for c in ("text", "text_pair") if c != self.target_column], source)
        if not getattr(data, "merge_label_spellings", True):
            return frames

        mapping = label_spellings.spelling_map(frames, self.target_column, data.labels, LABEL_SOURCE_ROLES)
        if not quiet and (apart := label_spellings.kept_apart(frames, self.target_column, mapping)):
            task_logger().warning("%s%s", apart, source)  # quoted/punctuated spellings with no bare class to join
        if not mapping:
            return frames
        if not quiet:
            task_logger().warning("labels written several ways are one class each%s: %s "
                                  "(data.merge_label_spellings: false keeps them apart)", source,
                                  label_spellings.describe(mapping, frames, self.target_column))
        return {role: frame.assign(**{self.target_column: label_spellings.apply_spelling_map(
                    frame[self.target_column], mapping)}) if self.target_column in frame.columns else frame
                for role, frame in frames.items()}

    def read_canonical(self, path: Path, fmt: str, data: ClassificationData,
                       text_columns: dict[str, str],
                       compact: bool = False) -> tuple[pd.DataFrame, list[dict], int, np.ndarray]:
        """Read a table and rename the configured text columns; labels are left raw for the kind to parse. Returns
        the frame, the unusable records, the records seen and each record's line (``ReadResult.record_lines``).

        ``compact``: a CSV/TSV file's columns stay compact ``str`` columns and ``source_file`` is categorical (one
        copy of the path, not one per row): what keeps ten million rows within a few GB.
        """
        if fmt not in self.formats:
            guessed = (f" ({Path(path).suffix} files are read as {fmt} unless data.format says otherwise; a "
                       "spreadsheet's 'Unicode text' export is tab-separated: data.format: tsv)"
                       if data.format == "auto" else "")
            raise DataLoadError(f"{path}: format {fmt!r} cannot hold {self.name} rows{guessed}; set data.format to "
                                f"one of {', '.join(self.formats)}")
        result = read_table(path, fmt, encoding=data.encoding, header=data.header,
                            on_decode_error=data.on_decode_error, compact=compact, skip_lines=data.skip_lines,
                            tsv_quotes=data.tsv_quotes, sheet=data.sheet)
        raw = result.frame
        if fmt in ("jsonl", "json"):
            raw = with_nested_fields(raw, [*text_columns.values(), data.label_column])
        wanted = matched_columns(raw, {**{f"data.{k}": v for k, v in text_columns.items()},
                                       "data.label_column": data.label_column})
        columns_or_error(raw, path, wanted, fmt, data)
        clash = same_column({key.removeprefix("data."): column for key, column in wanted.items()})
        if clash is not None:  # distinct names in the config that match one header (``Label`` and ``label ``)
            key, other, column = clash
            raise DataLoadError(f"{path}: data.{key} and data.{other} both read the column {column!r}; "
                                f"{_why_distinct(key, other)}: set data.{key} to another column")
        text_columns = {k: wanted[f"data.{k}"] for k in text_columns}
        label_column = wanted["data.label_column"]
        malformed = list(result.malformed)
        if fmt == "jsonl":
            raw = without_conflicting_spellings(raw, [*text_columns.values(), label_column], malformed)

        def canonical(series: pd.Series) -> pd.Series:
            return series if compact and _arrow_strings(series) is not None else as_objects(series)

        frame = pd.DataFrame({name: canonical(raw[column]) for name, column in
                              {"text": text_columns["text_column"],
                               **{k.removesuffix("_column"): v for k, v in text_columns.items()
                                  if k != "text_column"}}.items()}, copy=False)
        frame["label"] = canonical(raw[label_column])
        frame["source_file"] = (pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), [str(path)])
                                if compact else str(path))
        frame["source_row"] = raw["source_row"].astype("int64")
        return frame, with_delimiter_hints(malformed, path, fmt, data, self.delimiter_hint(data)), \
            result.records_seen, result.record_lines()

    def delimiter_hint(self, data: ClassificationData) -> Any:
        """``delimiter → the likely cause`` of a CSV record with more fields than the header (see
        :func:`with_delimiter_hints`)."""
        return delimiter_hint

    def read(self, path: Path, fmt: str, data: ClassificationData) -> ReadRecords:
        frame, malformed, seen, lines = self.read_canonical(path, fmt, data, {"text_column": data.text_column},
                                                            compact=fmt in ("csv", "tsv"))
        labels, keep = normalized_labels(frame["label"], frame["source_row"], malformed)
        frame = frame.assign(label=labels)
        if not keep.all():
            frame = frame[keep].reset_index(drop=True)
        return ReadRecords(frame=frame[["text", "label", "source_file", "source_row"]], malformed=malformed,
                           records_seen=seen, source_lines=lines)

    def label_set(self, frames: dict[str, pd.DataFrame], data: ClassificationData,
                  primary_metric: str | None = None) -> list[str]:
        if data.labels:
            labels = list(dict.fromkeys(str(label) for label in data.labels))
        else:
            source = next((frames[r] for r in LABEL_SOURCE_ROLES if r in frames), None)
            values = source["label"] if source is not None else []
            labels = frequent_labels(values if _compact(values) else list(values),
                                     data.min_examples_per_label)
            if source is not None:
                refuse_labels_of_copies(source, labels, data.min_examples_per_label)
            if (note := unlabeled_mark_note(frames, labels, data.label_column)) is not None:
                from tuneline.common import task_logger

                task_logger().warning("%s", note)
        return checked_label_set(labels, frames, "label")

    def schema(self, labels: list[str], train_keys: list[str] | None, data: ClassificationData):
        from tuneline.schemas.classification import classification_schema

        return classification_schema(labels, train_keys)

    #: how a detail speaks of a canonical column (the pair kind's ``text_pair`` is "the second text")
    column_titles: dict[str, str] = {}

    def column_title(self, column: str, names: dict[str, str] | None = None) -> str:
        """``the text ('sentence')``: the column as details name it, with the file's name when it has another."""
        title = self.column_titles.get(column, column)
        named = (names or {}).get(column)
        if named:
            return f"the {title} ({named!r})"
        return f"the {title}" + (f" ({column})" if title != column else "")

    def describe_failures(self, quarantine: pd.DataFrame, frames: dict[str, pd.DataFrame],
                          labels: list[str], names: dict[str, str] | None = None, **context: Any) -> pd.DataFrame:
        """``value`` shows the text of every rejected row, so a label rule says in ``detail`` which label broke it:
        ``label_in_label_set`` names the label and the label set (a stray ``Positive!`` must be visible without
        opening the file), a missing value names its column."""
        if quarantine.empty:
            return quarantine
        rules, columns = quarantine["rule"].to_numpy(), quarantine["column"].to_numpy()
        unknown = rules == "label_in_label_set"
        missing = rules == "not_nullable"
        no_text = rules == "text_is_non_empty_string"
        if not (unknown.any() or missing.any() or no_text.any()):
            return quarantine
        found = values_at_rows(quarantine[unknown], frames, self.target_column) if unknown.any() else {}
        texts = values_at_rows(quarantine[no_text], frames, "text") if no_text.any() else {}
        shown = label_set_text(labels)
        details = quarantine["detail"].to_numpy(dtype=object, copy=True)
        keys = zip(quarantine["split"], quarantine["source_file"].astype(str), quarantine["source_row"])
        for i, (split, file, row) in enumerate(keys):
            if no_text[i]:
                details[i] = _no_text_detail(texts.get((str(split), file, int(row))),
                                             self.column_title("text", names))
            if not unknown[i]:
                continue
            value = found.get((str(split), file, int(row)))
            details[i] = (f"label {excerpt(value, 200)} is not in the label set {shown}: fix the row, or add the label "
                          "to data.labels if it is a class")
        for i in np.flatnonzero(missing):
            details[i] = f"{self.column_title(columns[i], names)} is missing (an empty cell, or null)"
        return quarantine.assign(detail=details)

    # --- model ------------------------------------------------------------------------------------------------
    def encoder(self, tokenizer: Any, max_length: int, label2id: dict[str, int], config: TunelineConfig,
                model_inputs: dict[str, Any]):
        from functools import partial

        return partial(encode_texts, tokenizer=tokenizer, max_length=max_length, label2id=label2id), \
            ["text", "label"]

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    # --- metrics ----------------------------------------------------------------------------------------------
    def score(self, gold: list[str], predicted: list[str], labels: list[str]) -> dict[str, float]:
        """Accuracy plus macro/weighted F1 over the labels that occur in gold (:func:`present_labels`).

        A class that is in gold but never predicted counts as F1 0; a class of the label set that the rows do not
        hold says nothing about this model on these rows and is left out, predicted or not (its wrong predictions
        already cost the gold labels' recall). Averaging over the whole label set instead scored a perfect model
        0.709 on a test split that held 39 of its 55 classes."""
        from sklearn.metrics import accuracy_score, f1_score

        present = present_labels(gold, predicted, labels)
        return {
            "accuracy": float(accuracy_score(gold, predicted)),
            "macro_f1": float(f1_score(gold, predicted, labels=present, average="macro", zero_division=0)),
            "weighted_f1": float(f1_score(gold, predicted, labels=present, average="weighted", zero_division=0)),
        }

    def per_class_scores(self, gold: list[str], predicted: list[str], labels: list[str]) -> dict[str, float]:
        """F1 of every label that occurs in ``gold`` (one-vs-rest)."""
        from sklearn.metrics import f1_score

        present = [label for label in labels if label in set(gold)]
        values = f1_score(gold, predicted, labels=present, average=None, zero_division=0) if present else []
        return {label: float(v) for label, v in zip(present, values)}

    def decode_logits(self, logits: Any, label_ids: Any, labels: list[str]) -> tuple[list[str], list[str]]:
        predicted = np.asarray(logits).argmax(axis=-1)
        return [labels[i] for i in np.asarray(label_ids)], [labels[i] for i in predicted]

    per_row_metrics = ("accuracy",)

    def subset_score(self, gold: list[str], predicted: list[str], labels: list[str], metric: str):
        """The same numbers as :meth:`score`, from per-class counts with ``np.bincount`` (fast enough for a
        1,000-resample bootstrap on a large test set)."""
        if metric not in ("accuracy", "macro_f1", "weighted_f1"):
            # a kind with metrics of its own scores them itself: this once scored a pair model's f1_positive as
            # weighted F1, so its interval and the gate's comparison were of another number than the one reported
            raise ValueError(f"no subset score for metric {metric!r} of {self.name}")
        gold_ids, pred_ids = label_ids(gold, labels), label_ids(predicted, labels)
        present = np.isin(np.arange(len(labels)), gold_ids)

        def score(indices: Any) -> float:
            g, p = gold_ids[indices], pred_ids[indices]
            if metric == "accuracy":
                return float(np.mean(g == p))
            f1, support = per_class_f1(g, p, len(labels))
            if metric == "macro_f1":  # over the labels present in all rows (fixed, so resamples stay comparable)
                return float(f1[present].mean()) if present.any() else 0.0
            return float((f1 * support).sum() / support.sum()) if support.sum() else 0.0  # weighted_f1

        return score

    # --- evaluation and serving ---------------------------------------------------------------------------------
    def model_input(self, frame: pd.DataFrame) -> Any:
        return frame["text"].tolist()

    def predictions_from_output(self, output: pd.DataFrame) -> tuple[list[Any], list[Any] | None]:
        return list(output["label"]), [float(s) for s in output["score"]]

    def baselines(self, splits: Any, config: TunelineConfig) -> list[Evaluation]:
        out = [self.majority_baseline(splits)]
        if config.evaluate.zero_shot_baseline:
            out.append(self.zero_shot_baseline(splits, config))
        return out

    def majority_baseline(self, splits: Any) -> Evaluation:
        """Always predict train's most frequent label (ties: the first in label order)."""
        labels = splits.labels
        counts = splits.train["label"].value_counts()
        top = max(labels, key=lambda label: (counts.get(label, 0), -labels.index(label)))
        predicted = [top] * len(splits.test)
        return Evaluation("majority", self.score(self.gold(splits.test), predicted, labels), predicted)

    def zero_shot_baseline(self, splits: Any, config: TunelineConfig) -> Evaluation:
        """Nearest label embedding (cosine) to each text embedding, with the untouched base model."""
        from tuneline.common import task_logger
        from tuneline.embeddings import Embedder

        labels = splits.labels
        embedder = Embedder.for_config(config)
        descriptions = config.data.label_descriptions
        opaque = [label for label in labels if label not in descriptions and not any(c.isalpha() for c in label)]
        if opaque:  # '0', '17': the baseline would embed digits, and the gate's "before" number is chance
            task_logger().warning(
                "the zero-shot baseline compares each text with its label's name, and %d label name(s) hold no word "
                "(%s): give them data.label_descriptions (e.g. %s: a sentence saying what the class means), or the "
                "zero-shot number is chance", len(opaque), ", ".join(repr(v) for v in opaque[:5])
                + (", ..." if len(opaque) > 5 else ""), opaque[0])
        label_vectors = embedder.embed([descriptions.get(label, label.replace("_", " ")) for label in labels])
        text_vectors = embedder.embed(splits.test["text"].tolist())
        similarity = text_vectors @ label_vectors.T
        predicted = [labels[i] for i in similarity.argmax(axis=1)]
        return Evaluation("zero_shot", self.score(self.gold(splits.test), predicted, labels), predicted,
                          similarity.max(axis=1).tolist())

    def report_artifacts(self, fine_tuned: Evaluation, test: pd.DataFrame, labels: list[str],
                         folder: Path) -> dict[str, float]:
        import json

        from sklearn.metrics import classification_report, confusion_matrix

        from tuneline.reporting import plot_confusion_matrix

        gold = self.gold(test)
        scored = present_labels(gold, fine_tuned.predictions, labels)  # its "macro avg" is the reported macro_f1
        report = classification_report(gold, fine_tuned.predictions, labels=scored, output_dict=True,
                                       zero_division=0)
        (folder / "per_class_report.json").write_text(json.dumps(report, indent=2))
        counts = confusion_matrix(gold, fine_tuned.predictions, labels=labels)  # every count; the plot caps labels
        pd.DataFrame(counts, index=pd.Index(labels, name="gold"), columns=labels).to_csv(folder / "confusion_matrix.csv")
        plot_confusion_matrix(gold, fine_tuned.predictions, labels, folder / "confusion_matrix.png")
        columns = [c for c in ("source_file", "source_row", "text", "text_pair", "label") if c in test.columns]
        test[columns].assign(predicted=fine_tuned.predictions, score=fine_tuned.scores).to_csv(
            folder / "test_predictions.csv", index=False)
        return {f"{label}.f1": float(report[label]["f1-score"]) for label in scored}  # no 0.0 for a label not tested


def encode_texts(batch: dict[str, list], tokenizer: Any, max_length: int, label2id: dict[str, int],
                 pair: list[str] | None = None, truncation: str | bool = True) -> dict[str, list]:
    """Tokenize (never pad: the collator pads per batch), truncate to ``max_length`` and flag truncated rows.

    The fast tokenizer keeps what truncation cut off in each encoding's ``overflowing``, so truncation is counted
    without asking for overflow rows (which would add one row per ``max_length`` tokens of a very long text).
    """
    texts = batch["text"] if pair is not None else cut_long_texts(batch["text"], tokenizer, max_length)
    enc = tokenizer(texts, pair, truncation=truncation, max_length=max_length)
    out = {key: list(values) for key, values in enc.items()}
    out["labels"] = [label2id[label] for label in batch["label"]]
    out["truncated"] = [bool(encoding.overflowing) for encoding in enc.encodings]
    return out
