"""Checks that every task's contract adds the same way (run-specific context on top of the static rules).

Text rules on an Arrow-backed ``str`` column (what the loader makes of a large CSV/TSV file) run vectorised: the
duplicate rules compare rows by their key hashes (:func:`tuneline.common.key_hashes`, one salted SHA-256 per row,
shared with the split), confirming every hash match on the texts themselves; the leakage rule compares folded texts
in Arrow. Both give the same answer as the plain versions on object columns, whatever the table's size.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc

from tuneline.common import DEFAULT_KEY_SALT, arrow_strings, key_text, remembered_key_salt
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
#: differs from a train row only so would inflate the test score). The split hashes the stripped text but keeps such
#: near twins of one file in one split (:func:`tuneline.tasks.split.keep_near_twins_together`).
_SPACE_RUN = "[\t\n\v\f\r ]+"


def leak_form(text: str) -> str:
    """The form the leakage rule compares (plain-Python twin of :func:`_fold`)."""
    import re

    return re.sub(_SPACE_RUN, " ", text.strip()).lower()


def _fold(strings: pa_arrow.Array) -> pa_arrow.Array:
    """:func:`leak_form` of every string of an Arrow array, vectorised (nulls stay null). The regex replacement runs
    only on the strings that need it (a tab, a line break, two spaces): on all of them it was 4x the rest."""
    strings = pc.utf8_trim_whitespace(strings)
    needs = pc.fill_null(pc.match_substring_regex(strings, _NEEDS_COLLAPSE), False)
    if pc.any(needs).as_py():
        strings = pc.replace_with_mask(strings, needs,
                                       pc.replace_substring_regex(strings.filter(needs), _SPACE_RUN, " "))
    return pc.utf8_lower(strings)


_NEEDS_COLLAPSE = "[\t\n\v\f\r]|  "


def fold_strings(strings: pa_arrow.Array) -> pa_arrow.Array:
    """:func:`leak_form` of every string of an Arrow array (nulls stay null): what the split groups near twins by."""
    return _fold(strings)


def near_twin_groups(keys: pd.Series) -> np.ndarray:
    """A group number per row: rows whose keys differ only in case and runs of whitespace (the leakage rule's
    :func:`~tuneline.schemas.common.leak_form`: ``"Great film"`` and ``" GREAT  film"``) share one; -1 for a missing
    key. Rows are grouped by a 64-bit hash of the folded key (pandas' SipHash), computed a slice at a time, so ten
    million rows hold a few arrays of integers, not a folded copy of every text: two different texts share a hash
    with a chance of about n²/2⁶⁵ (10⁻⁵ for ten million rows), and then only share a split."""
    column = arrow_strings(keys)
    if column is None:
        folded = keys.map(lambda k: None if k is None or (isinstance(k, float) and np.isnan(k))
                          else leak_form(key_text(k)))
        return pd.factorize(folded, use_na_sentinel=True)[0].astype(np.int64)
    hashes = np.empty(len(column), dtype=np.uint64)
    missing = np.zeros(len(column), dtype=bool)
    position = 0
    for chunk in column.chunks:
        for start in range(0, len(chunk), 1 << 16):
            part = chunk.slice(start, 1 << 16)
            values = fold_strings(part).to_numpy(zero_copy_only=False)
            absent = part.is_null().to_numpy(zero_copy_only=False)
            if absent.any():
                values[absent] = ""
                missing[position:position + len(values)] = absent
            hashes[position:position + len(values)] = pd.util.hash_array(values.astype(object, copy=False),
                                                                          categorize=False)
            position += len(values)
    groups = np.unique(hashes, return_inverse=True)[1].astype(np.int64, copy=False).reshape(-1)
    groups[missing] = -1
    return groups


def conflicting_in_groups(groups: np.ndarray, labels: pd.Series) -> np.ndarray:
    """Where a row's group (-1: none) holds two or more distinct labels (missing labels count for none): the rows of
    one example written with different labels."""
    codes = pd.factorize(labels.astype("string") if labels.dtype == object else labels)[0].astype(np.int64)
    present = (groups >= 0) & (codes >= 0)
    width = int(codes.max(initial=0)) + 1
    pairs = pd.unique(groups[present].astype(np.int64) * width + codes[present])  # distinct (group, label), hashed
    labels_per_group = np.bincount(pairs // width, minlength=int(groups.max(initial=-1)) + 1)
    result = np.zeros(len(groups), dtype=bool)
    result[present] = labels_per_group[groups[present]] > 1
    return result


def conflicting_labels(keys: pd.Series, labels: pd.Series, unusable: np.ndarray | None = None) -> np.ndarray:
    """Rows whose key, case and runs of whitespace aside (:func:`leak_form`, as the leakage rule, the split's near
    twins, the loop's check against earlier data and ``data relabel`` compare), also occurs under another label.
    Missing keys and the rows marked ``unusable`` (blank texts: the text rules reject those) take part in none.

    Why folded: ``Great movie`` labelled pos and ``great  movie`` labelled neg are one input to an uncased model and
    one example everywhere else in tuneline; keyed on the stripped text they were kept and trained on as two (QA).
    Groups come from a 64-bit hash (:func:`near_twin_groups`); the rows it flags are checked again on their folded
    texts, so a hash collision between two different texts flags nothing."""
    missing = keys.isna().to_numpy() | (unusable if unusable is not None else False)
    groups = near_twin_groups(keys)
    groups[missing] = -1
    flagged = np.flatnonzero(conflicting_in_groups(groups, labels))
    if not len(flagged):
        return np.zeros(len(keys), dtype=bool)
    if arrow_strings(keys) is not None:  # many flagged rows (a file of few texts): folded in Arrow, not one by one
        folded = _fold(pa_arrow.array(take_strings(arrow_strings(keys), flagged), type=pa_arrow.string()))
        exact = pd.factorize(folded.to_numpy(zero_copy_only=False))[0].astype(np.int64)
    else:
        exact = pd.factorize(pd.Series([leak_form(key_text(k)) for k in keys.iloc[flagged]]))[0].astype(np.int64)
    result = np.zeros(len(keys), dtype=bool)
    result[flagged] = conflicting_in_groups(exact, labels.iloc[flagged].reset_index(drop=True))
    return result


#: train rows folded and looked up per slice: a slice's folded copy is all the extra memory the rule holds
_TRAIN_SLICE = 1 << 20


def in_train(text: pd.Series, train: pd.Series) -> np.ndarray:
    """Where the text, in :func:`leak_form`, also occurs in train (missing values: False), for two Arrow-backed
    string columns, by exact comparison in Arrow: the distinct folded texts are the lookup set, and train is folded
    and looked up a slice at a time, so neither side is copied whole (ten million train rows: seconds, no Python
    strings)."""
    folded = _fold(arrow_strings(text).combine_chunks())
    distinct = pc.unique(folded.drop_null())
    found = np.zeros(len(distinct), dtype=bool)
    if len(distinct):
        for chunk in arrow_strings(train).chunks:
            for start in range(0, len(chunk), _TRAIN_SLICE):
                part = _fold(chunk.slice(start, _TRAIN_SLICE))
                lookup = distinct if part.type == distinct.type else distinct.cast(part.type)
                found[pc.index_in(part, value_set=lookup).drop_null().to_numpy(zero_copy_only=False)] = True
    leaked = distinct.filter(pa_arrow.array(found))
    hit = pc.fill_null(pc.is_in(folded, value_set=leaked), False).to_numpy(zero_copy_only=False)
    return hit & text.notna().to_numpy()


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


#: A string (RE2, for ``pyarrow.compute``) of nothing a reader sees: whitespace (``\p{Z}``, with the control
#: characters ``\p{Cc}`` that ``str.isspace`` also takes), format characters (``\p{Cf}``: a zero-width space or
#: joiner, a soft hyphen, a byte-order mark), private-use characters (``\p{Co}``) and U+FFFD, the replacement
#: character a decoder leaves for bytes it could not read. A BERT tokenizer drops them all, so the model reads such a
#: text (or NER word) as nothing: an entity tagged on it was never learnt, silently. The registered models refuse
#: such an input (``tuneline.pyfunc.text_classifier.invisible_only``, the same set), so validation quarantines it too.
NOTHING_VISIBLE = r"^[\p{Z}\p{Cc}\p{Cf}\p{Co}\x{FFFD}]*$"

#: the categories of :data:`NOTHING_VISIBLE` for one Python string (whitespace aside)
_INVISIBLE = ("Cc", "Cf", "Co")


def nothing_visible(text: str) -> bool:
    """Whether ``text`` holds nothing a reader sees: only whitespace and invisible (control, format, private-use)
    characters or U+FFFD, or nothing at all (:data:`NOTHING_VISIBLE` for one Python string)."""
    return all(c.isspace() or c == "\ufffd" or unicodedata.category(c) in _INVISIBLE for c in text)


def invisible_kind(text: str) -> str:
    """What the invisible characters of ``text`` are, for a quarantine detail: a U+FFFD says the file was decoded
    with the wrong encoding, which a user fixes in another place than a zero-width space."""
    if "\ufffd" in text:
        return ("U+FFFD, the replacement character a decoder leaves for bytes it could not read: was the file "
                "written in another encoding? (data.encoding)")
    if any(unicodedata.category(c) == "Co" for c in text):
        return "private-use characters, which no font shows and no tokenizer knows"
    return "zero-width spaces, format or control characters"


def non_empty_string(values: pd.Series) -> pd.Series:
    """True where a value is a string with something a reader sees: the text rule of every text kind. A text of only
    invisible characters (a ``"\u200b"`` pasted from a web page) is no example: the model learnt a label for no
    text, and the gate's and drift's scoring through the registered model refused the test row."""
    column = arrow_strings(values)
    if column is not None:
        blank = pc.fill_null(pc.match_substring_regex(column, NOTHING_VISIBLE), False).to_numpy(zero_copy_only=False)
        return pd.Series(values.notna().to_numpy() & ~blank, index=values.index)
    return values.map(lambda value: isinstance(value, str) and not nothing_visible(value))
