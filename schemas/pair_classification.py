"""The data contract for sentence-pair rows.

Rows reach the schema with canonical columns ``text``, ``text_pair``, ``label`` and ``key`` (the pair's identity,
built by the reader: both stripped texts, sorted when the relation is symmetric, None when either text is unusable)
plus ``source_file``/``source_row``. Duplicates and leakage are judged on ``key``, so with ``data.symmetric`` a
reversed pair is the same example. Each check's name is the ``rule`` a quarantined row cites.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tuneline.schemas.common import conflicting_labels, non_empty_string, not_in_train, with_checks


def _usable_key(df: pd.DataFrame) -> pd.Series:
    """The key of rows whose two texts are usable; missing elsewhere (the text rules reject those rows on their own:
    they must not also be reported as duplicates of each other)."""
    usable = non_empty_string(df["text"]) & non_empty_string(df["text_pair"]) & non_empty_string(df["key"])
    return df["key"].where(usable, None).astype("string")


class PairRows(pa.DataFrameModel):
    """Rules that need no run-specific context (label set and train keys are added by :func:`pair_schema`)."""

    text: Series[object] = pa.Field(nullable=False)
    text_pair: Series[object] = pa.Field(nullable=False)
    label: Series[object] = pa.Field(nullable=False)
    key: Series[object] = pa.Field(nullable=True)
    source_file: Series[str]
    source_row: Series[int]

    @pa.check("text", name="text_is_non_empty_string")
    def text_isnon_empty_string(cls, text: Series[object]) -> Series[bool]:
        return non_empty_string(text)

    @pa.check("text_pair", name="text_pair_is_non_empty_string")
    def text_pair_isnon_empty_string(cls, text_pair: Series[object]) -> Series[bool]:
        return non_empty_string(text_pair)

    @pa.dataframe_check(name="no_conflicting_label_duplicates")
    def no_conflicting_label_duplicates(cls, df: pd.DataFrame) -> Series[bool]:
        """The same pair (case and runs of whitespace aside) with two different labels is label noise: every copy
        is rejected, none is guessed."""
        return pd.Series(~conflicting_labels(_usable_key(df), df["label"]), index=df.index)

    @pa.dataframe_check(name="no_exact_duplicates")
    def no_exact_duplicates(cls, df: pd.DataFrame) -> Series[bool]:
        """Repeated (pair, label) rows inflate their weight; the first copy is kept, the rest rejected."""
        key = _usable_key(df)
        return ~(pd.DataFrame({"k": key, "l": df["label"].astype("string")}).duplicated(keep="first") & key.notna())

    class Config:
        strict = False
        coerce = False


def pair_schema(labels: Iterable[str], train_keys: Iterable[str] | None = None) -> pa.DataFrameSchema:
    """The full contract for one split: the static rules plus the frozen label set and, for validation/test, no
    pair that is also in train."""
    schema = PairRows.to_schema()
    allowed = frozenset(labels)
    schema = with_checks(schema, "label",
                         pa.Check(lambda label: label.isin(allowed), name="label_in_label_set", ignore_na=True))
    if train_keys is not None:
        schema = with_checks(schema, "key", not_in_train(train_keys, "pair_not_in_train"))
    return schema
