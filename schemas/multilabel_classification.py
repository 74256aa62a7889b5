"""The data contract for multi-label classification rows.

Rows reach the schema with canonical columns ``text`` and ``label`` (a list of label names: the reader has split
delimited strings, mapped ids to names, sorted and de-duplicated) plus ``source_file`` and ``source_row``. A value
the reader could not turn into such a list is passed through unchanged, so that this contract rejects it under a
named rule instead of the reader guessing. Each check's name is the ``rule`` a quarantined row cites.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tuneline.schemas.classification import _duplicate_key
from tuneline.schemas.common import conflicting_labels, non_empty_string, not_in_train, with_checks


def is_label_list(value: object) -> bool:
    """A list whose every item is a non-blank string (an empty list is a list: ``at_least_one_label`` judges it)."""
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def label_key(value: object) -> tuple[str, ...] | None:
    """The label list as a sorted tuple, comparable and hashable; None for a value that is no label list."""
    return tuple(sorted(set(value))) if is_label_list(value) else None


def label_set_text(value: object) -> str | None:
    """The label list as one comparable string (:func:`label_key` joined); None for a value that is no label list."""
    return "\x1f".join(key) if (key := label_key(value)) is not None else None


class MultilabelRows(pa.DataFrameModel):
    """Rules that need no run-specific context (label set, empty-list policy and train texts are added by
    :func:`multilabel_schema`)."""

    text: Series[object] = pa.Field(nullable=False)
    label: Series[object] = pa.Field(nullable=False)
    source_file: Series[str]
    source_row: Series[int]

    @pa.check("text", name="text_is_non_empty_string")
    def text_is_non_empty_string(cls, text: Series[object]) -> Series[bool]:
        return non_empty_string(text)

    @pa.check("label", name="labels_are_list_of_strings")
    def labels_are_list_of_strings(cls, label: Series[object]) -> Series[bool]:
        return label.map(is_label_list).astype(bool)

    @pa.dataframe_check(name="no_conflicting_label_duplicates")
    def no_conflicting_label_duplicates(cls, df: pd.DataFrame) -> Series[bool]:
        """The same text (case and runs of whitespace aside) with two different label sets is label noise: every copy is rejected, none is guessed."""
        labels = df["label"].map(label_set_text)
        return pd.Series(~conflicting_labels(_duplicate_key(df["text"]), labels), index=df.index)

    @pa.dataframe_check(name="no_exact_duplicates")
    def no_exact_duplicates(cls, df: pd.DataFrame) -> Series[bool]:
        """Repeated (text, label set) pairs inflate their weight; the first copy is kept, the rest rejected."""
        key = _duplicate_key(df["text"])
        labels = df["label"].map(label_set_text)
        return ~(pd.DataFrame({"t": key, "l": labels.astype("string")}).duplicated(keep="first") & key.notna())

    class Config:
        strict = False
        coerce = False


def _labels_in(allowed: frozenset[str]) -> pa.Check:
    """Every label of a list is in the frozen label set (a value that is no label list is judged by its own rule)."""
    return pa.Check(lambda label: label.map(lambda v: not is_label_list(v) or set(v) <= allowed).astype(bool),
                    name="label_in_label_set", ignore_na=True)


def _not_empty() -> pa.Check:
    return pa.Check(lambda label: label.map(lambda v: not isinstance(v, list) or len(v) > 0).astype(bool),
                    name="at_least_one_label", ignore_na=True)


def multilabel_schema(labels: Iterable[str], train_texts: Iterable[str] | None = None,
                      allow_empty_labels: bool = False) -> pa.DataFrameSchema:
    """The full contract for one split: the static rules plus the frozen label set, the empty-list policy and, for
    validation/test, no train texts."""
    schema = MultilabelRows.to_schema()
    checks = [_labels_in(frozenset(labels))] + ([] if allow_empty_labels else [_not_empty()])
    schema = with_checks(schema, "label", *checks)
    if train_texts is not None:
        schema = with_checks(schema, "text", not_in_train(train_texts, "text_not_in_train"))
    return schema


def unknown_labels(value: object, labels: Iterable[str]) -> list[str]:
    """The labels of a row that are not in the label set (for the quarantine's detail)."""
    allowed = set(labels)
    return sorted(v for v in value if v not in allowed) if is_label_list(value) else []
