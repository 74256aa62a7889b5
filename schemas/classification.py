"""The data contract for text classification rows.

Rows reach the schema with canonical columns ``text`` and ``label`` (the loader renames the configured ones) plus the
provenance columns ``source_file`` and ``source_row``. Each check has a stable name: it is the ``rule`` a quarantined
row cites.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tuneline.common import arrow_strings, key_hashes
from tuneline.schemas.common import (blank_strings, conflicting_labels, key_salt, non_empty_string, not_in_train,
                                      stripped, with_checks)


def _normalised(text: pd.Series) -> pd.Series:
    return text.astype("string").str.strip()


def _duplicate_key(text: pd.Series) -> pd.Series:
    """The stripped text of usable rows; missing for non-strings and blank strings, which the text rule rejects on
    its own (they must not also be reported as duplicates of each other)."""
    key = _normalised(text.where(text.map(lambda v: isinstance(v, str)), None))
    return key.where((key.str.len() > 0).fillna(False).astype(bool))


def _conflicting_labels(df: pd.DataFrame) -> pd.Series:
    """The rows of a text written with two or more labels, case and runs of whitespace aside
    (:func:`~tuneline.schemas.common.conflicting_labels`)."""
    text = df["text"]
    if arrow_strings(text) is not None:  # compact column: folded and hashed a slice at a time, no copy of it
        unusable = np.ones(len(df), dtype=bool)
        unusable[_usable_positions(text)] = False
        return pd.Series(conflicting_labels(text, df["label"], unusable), index=df.index)
    return pd.Series(conflicting_labels(_duplicate_key(text), df["label"]), index=df.index)


def _exact_duplicates(df: pd.DataFrame) -> pd.Series:
    key = _duplicate_key(df["text"])
    return pd.DataFrame({"t": key, "l": df["label"].astype("string")}).duplicated(keep="first") & key.notna()


def _usable_positions(text: pd.Series) -> np.ndarray:
    """Positions of the rows of an Arrow-backed text column that :func:`_duplicate_key` keys (strings with more than
    whitespace)."""
    return np.flatnonzero(text.notna().to_numpy() & ~blank_strings(text))


def _same_texts(text: pd.Series, positions: np.ndarray, groups: list[np.ndarray]) -> bool:
    """Whether the rows at ``positions`` that share a group (key hash, ...) share one stripped text too: a hash
    match is only taken for a text match once the texts say so."""
    if not len(positions):
        return True
    check = pd.DataFrame({f"g{i}": g for i, g in enumerate(groups)} | {"t": stripped(text, positions)})
    return bool((check.groupby([f"g{i}" for i in range(len(groups))])["t"].nunique() <= 1).all())


def _label_codes(label: pd.Series, as_strings: bool) -> np.ndarray:
    """One code per distinct label (-1: missing): the values themselves, or their ``astype("string")`` form."""
    if isinstance(label.dtype, pd.CategoricalDtype) and label.cat.categories.map(type).isin([str]).all():
        return label.cat.codes.to_numpy()  # distinct string categories: the same grouping either way
    if arrow_strings(label) is not None:
        return pd.factorize(label)[0]
    return pd.factorize(label.astype("string") if as_strings else label.to_numpy())[0]


def _per_label(codes: np.ndarray) -> list[np.ndarray]:
    """The positions of each label code, a label at a time (a few labels: a hash table per label stays small)."""
    present = np.flatnonzero(np.bincount(codes.astype(np.int64) + 1)) - 1
    return [np.flatnonzero(codes == code) for code in present]


def _exact_duplicates_by_hash(df: pd.DataFrame) -> pd.Series:
    """:func:`_exact_duplicates` on an Arrow-backed text column: repeated key hashes under one label."""
    text = df["text"]
    hashes = key_hashes(text, key_salt(text))
    usable = _usable_positions(text)
    codes = _label_codes(df["label"], as_strings=True)[usable]  # a missing label is one value, as in duplicated()
    later = np.zeros(len(usable), dtype=bool)  # a copy of an earlier row
    repeated = np.zeros(len(usable), dtype=bool)  # any row of a repeated (hash, label)
    for where in _per_label(codes):
        keys = pd.Series(hashes[usable[where]])
        later[where] = keys.duplicated(keep="first").to_numpy()
        repeated[where] = keys.duplicated(keep=False).to_numpy()
    check = usable[repeated]
    if not _same_texts(text, check, [hashes[check], codes[repeated]]):
        return _exact_duplicates(df)  # two texts share a hash prefix: decide on the texts themselves
    result = np.zeros(len(df), dtype=bool)
    result[usable[later]] = True
    return pd.Series(result, index=df.index)


class ClassificationRows(pa.DataFrameModel):
    """Rules that need no run-specific context (label set and train texts are added by :func:`classification_schema`).

    The columns' dtypes are not pinned: the loader gives object columns of Python values, or for a CSV/TSV file
    compact ``str`` columns (and a categorical ``source_file``); the rules below judge every value either way.
    """

    text: Series[Any] = pa.Field(nullable=False)
    label: Series[Any] = pa.Field(nullable=False)
    source_file: Series[Any]
    source_row: Series[int]

    # ignore_na=False: missing texts pass here (not_nullable reports them) without pandera copying the column
    @pa.check("text", name="text_is_non_empty_string", ignore_na=False)
    def text_is_non_empty_string(cls, text: Series[object]) -> Series[bool]:
        return non_empty_string(text) | text.isna()

    @pa.dataframe_check(name="no_conflicting_label_duplicates")
    def no_conflicting_label_duplicates(cls, df: pd.DataFrame) -> Series[bool]:
        """The same text (case and runs of whitespace aside) with two different labels is label noise: every copy is
        rejected, none is guessed."""
        return ~_conflicting_labels(df)

    @pa.dataframe_check(name="no_exact_duplicates")
    def no_exact_duplicates(cls, df: pd.DataFrame) -> Series[bool]:
        """Repeated (text, label) pairs inflate their weight; the first copy is kept, the rest rejected."""
        if arrow_strings(df["text"]) is not None:
            return ~_exact_duplicates_by_hash(df)
        return ~_exact_duplicates(df)

    class Config:
        strict = False
        coerce = False


def classification_schema(labels: Iterable[str], train_texts: Iterable[str] | None = None) -> pa.DataFrameSchema:
    """The full contract for one split: the static rules plus the frozen label set and, for test, no train texts."""
    schema = ClassificationRows.to_schema()
    allowed = frozenset(labels)
    schema = with_checks(schema, "label", pa.Check(lambda label: label.isin(allowed) | label.isna(),
                                                   name="label_in_label_set", ignore_na=False))
    if train_texts is not None:
        schema = with_checks(schema, "text", not_in_train(train_texts, "text_not_in_train"))
    return schema
