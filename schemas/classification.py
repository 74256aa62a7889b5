"""The data contract for text classification rows.

Rows reach the schema with canonical columns ``text`` and ``label`` (the loader renames the configured ones) plus the
provenance columns ``source_file`` and ``source_row``. Each check has a stable name: it is the ``rule`` a quarantined
row cites.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tuneline.schemas.common import non_empty_string, not_in_train, with_checks


def _normalised(text: pd.Series) -> pd.Series:
    return text.astype("string").str.strip()


def _duplicate_key(text: pd.Series) -> pd.Series:
    """The stripped text of usable rows; missing for non-strings and blank strings, which the text rule rejects on
    its own (they must not also be reported as duplicates of each other)."""
    key = _normalised(text.where(text.map(lambda v: isinstance(v, str)), None))
    return key.where((key.str.len() > 0).fillna(False).astype(bool))


class ClassificationRows(pa.DataFrameModel):
    """Rules that need no run-specific context (label set and train texts are added by :func:`classification_schema`)."""

    text: Series[object] = pa.Field(nullable=False)
    label: Series[object] = pa.Field(nullable=False)
    source_file: Series[str]
    source_row: Series[int]

    @pa.check("text", name="text_is_non_empty_string")
    def text_is_non_empty_string(cls, text: Series[object]) -> Series[bool]:
        return non_empty_string(text)

    @pa.dataframe_check(name="no_conflicting_label_duplicates")
    def no_conflicting_label_duplicates(cls, df: pd.DataFrame) -> Series[bool]:
        """The same text with two different labels is label noise: every copy is rejected, none is guessed."""
        key = _duplicate_key(df["text"])
        labels_per_text = df.groupby(key, dropna=True)["label"].transform("nunique")
        return ~(labels_per_text.fillna(1) > 1)

    @pa.dataframe_check(name="no_exact_duplicates")
    def no_exact_duplicates(cls, df: pd.DataFrame) -> Series[bool]:
        """Repeated (text, label) pairs inflate their weight; the first copy is kept, the rest rejected."""
        key = _duplicate_key(df["text"])
        return ~(pd.DataFrame({"t": key, "l": df["label"].astype("string")}).duplicated(keep="first") & key.notna())

    class Config:
        strict = False
        coerce = False


def classification_schema(labels: Iterable[str], train_texts: Iterable[str] | None = None) -> pa.DataFrameSchema:
    """The full contract for one split: the static rules plus the frozen label set and, for test, no train texts."""
    schema = ClassificationRows.to_schema()
    allowed = frozenset(labels)
    schema = with_checks(schema, "label",
                         pa.Check(lambda label: label.isin(allowed), name="label_in_label_set", ignore_na=True))
    if train_texts is not None:
        schema = with_checks(schema, "text", not_in_train(train_texts, "text_not_in_train"))
    return schema
