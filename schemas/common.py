"""Checks that every task's contract adds the same way (run-specific context on top of the static rules).

Text rules on an Arrow-backed ``str`` column (what the loader makes of a large CSV/TSV file) run vectorised and
compare rows by their key hashes (:func:`tuneline.common.key_hashes`, one salted SHA-256 per row, shared with the
split), confirming every hash match on the texts themselves, so they give the same answer as the plain versions on
object columns, whatever the table's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc

from tuneline.common import DEFAULT_KEY_SALT, arrow_strings, key_hashes, remembered_key_salt
from tuneline.readers import WHITESPACE_ONLY


def with_checks(schema: pa.DataFrameSchema, column: str, *checks: pa.Check) -> pa.DataFrameSchema:
    """``schema`` with ``checks`` appended to the column's own (``update_column`` would replace them)."""
    return schema.update_column(column, checks=[*schema.columns[column].checks, *checks])


class TrainKeys(Sequence):
    """The train split's keys for the leakage rule: a sequence of ``str(key)`` as before, which also hands the rule
    the column itself, so that millions of train texts are compared by hash instead of copied into a set."""

    def __init__(self, keys: pd.Series) -> None:
        self.keys = keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [str(k) for k in self.keys.iloc[index]]
        return str(self.keys.iloc[index])

    def __iter__(self) -> Iterator[str]:
        return (str(k) for k in self.keys)


def key_salt(*columns: pd.Series) -> str:
    """A salt some of ``columns`` already have key hashes for (the split's, when the validation task hashed them),
    else the default."""
    return next((salt for column in columns if (salt := remembered_key_salt(column))), DEFAULT_KEY_SALT)


def take_strings(column: pa_arrow.ChunkedArray, positions: np.ndarray) -> list:
    """The values at (ascending) ``positions`` of a chunked Arrow column, taken chunk by chunk (a take on the whole
    chunked column first concatenates it into one more copy)."""
    positions = np.asarray(positions, dtype=np.int64)
    bounds = np.cumsum([0] + [len(chunk) for chunk in column.chunks])
    which = np.searchsorted(bounds, positions, side="right") - 1
    values: list = []
    for k, start in zip(*np.unique(which, return_index=True)):
        end = np.searchsorted(which, k, side="right")
        local = pa_arrow.array(positions[start:end] - bounds[k], type=pa_arrow.int64())
        values.extend(column.chunk(int(k)).take(local).to_pylist())
    return values


def stripped(values: pd.Series, positions: np.ndarray) -> list:
    """``str(value).strip()`` of the values at (ascending) ``positions`` (None where missing)."""
    return [None if v is None else str(v).strip() for v in take_strings(arrow_strings(values), positions)]


def blank_strings(values: pd.Series) -> np.ndarray:
    """Where an Arrow-backed string column holds only what ``str.strip()`` removes (missing values: False)."""
    column = arrow_strings(values)
    return pc.fill_null(pc.match_substring_regex(column, WHITESPACE_ONLY), False).to_numpy(zero_copy_only=False)


#: What the leakage rule compares: the text with its ends stripped, every run of ASCII whitespace made one space,
#: lower-cased. "The film is great ." in test and "the film is  great ." in train are one example (a test row that
#: differs from a train row only so would inflate the test score); the split and the duplicate rule still key rows
#: by their stripped text, so adding this rule moved no row between splits.
_SPACE_RUN = "[\t\n\v\f\r ]+"


def leak_form(text: str) -> str:
    """The form the leakage rule compares (plain-Python twin of :func:`_folded`)."""
    import re

    return re.sub(_SPACE_RUN, " ", text.strip()).lower()


def _folded(values: pd.Series) -> pd.Series:
    """:func:`leak_form` of every value of an Arrow-backed string column, vectorised, as an Arrow-backed Series."""
    column = arrow_strings(values)
    folded = pc.utf8_lower(pc.replace_substring_regex(pc.utf8_trim_whitespace(column), _SPACE_RUN, " "))
    return pd.Series(pd.arrays.ArrowStringArray(folded), index=values.index)


_FOLDED_TRAIN: dict[tuple[int, str], tuple[object, pd.Series, np.ndarray]] = {}


def _folded_train(train: pd.Series, salt: str) -> tuple[pd.Series, np.ndarray]:
    """Train's folded texts and their key hashes, computed once per train column (validation and test both ask)."""
    import weakref

    column = arrow_strings(train)
    entry = _FOLDED_TRAIN.get((id(column), salt))
    if entry is not None and entry[0]() is column:
        return entry[1], entry[2]
    folded = _folded(train)
    hashes = key_hashes(folded, salt)
    _FOLDED_TRAIN.clear()  # one train table at a time: a run validates against one
    _FOLDED_TRAIN[(id(column), salt)] = (weakref.ref(column), folded, hashes)
    return folded, hashes


def in_train(text: pd.Series, train: pd.Series) -> np.ndarray:
    """Where the text, in :func:`leak_form`, also occurs in train (missing values: False), for two Arrow-backed
    string columns: key hashes of the folded texts first, then every hash match confirmed on the folded texts."""
    salt = key_salt(text, train)
    folded_text = _folded(text)
    folded_train, train_hashes = _folded_train(train, salt)
    text_hashes = key_hashes(folded_text, salt)
    hit = pd.Series(text_hashes).isin(train_hashes).to_numpy() & text.notna().to_numpy()
    if hit.any():
        positions = np.flatnonzero(hit)
        candidates = np.flatnonzero(pd.Series(train_hashes).isin(text_hashes[positions]).to_numpy())
        seen = set(stripped(folded_train, candidates))
        hit[positions] = [t in seen for t in stripped(folded_text, positions)]
    return hit


def not_in_train(train_texts: Iterable[str], name: str) -> pa.Check:
    """Reject rows whose text also occurs in train, ignoring case and runs of spaces (:func:`leak_form`): a leaked
    text would inflate validation/test metrics."""
    if isinstance(train_texts, TrainKeys):
        train, seen = train_texts.keys, None

        def check(text: pd.Series) -> pd.Series:
            nonlocal seen
            if arrow_strings(text) is not None and arrow_strings(train) is not None:
                return pd.Series(~in_train(text, train), index=text.index)
            if seen is None:
                seen = frozenset(leak_form(str(t)) for t in train_texts)
            return ~_leak_forms(text).isin(seen).fillna(False).astype(bool)

        # Missing values pass here either way (not_nullable reports them); checking them in place spares pandera a
        # copy of the column without them, whose key hashes nobody has.
        return pa.Check(check, name=name, ignore_na=False)
    seen = frozenset(leak_form(str(t)) for t in train_texts)
    return pa.Check(lambda text: ~_leak_forms(text).isin(seen).fillna(False).astype(bool), name=name, ignore_na=True)


def _leak_forms(text: pd.Series) -> pd.Series:
    """:func:`leak_form` of each value of an object/str column (missing stays missing)."""
    return text.astype("string").str.strip().str.replace(_SPACE_RUN, " ", regex=True).str.lower()


def non_empty_string(values: pd.Series) -> pd.Series:
    """True where a value is a string with something other than whitespace: the text rule of every text kind."""
    if arrow_strings(values) is not None:
        return pd.Series(values.notna().to_numpy() & ~blank_strings(values), index=values.index)
    is_str = values.map(lambda value: isinstance(value, str))
    return is_str & (values.where(is_str, "").astype("string").str.strip().str.len() > 0)
