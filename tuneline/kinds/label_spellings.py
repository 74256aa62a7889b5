"""One class, one name: labels written several ways (``Positive``, ``positive``, ``POSITIVE``, ``very_good`` and
``Very Good``) are folded into one spelling before the label set is inferred or checked.

Without it every spelling became its own class: a model trained to tell ``Positive`` from ``positive``, or the rarer
spelling quarantined as an unknown label in a later batch. Two labels are the same class when they differ only in
case, Unicode compatibility form (a no-break space, full-width letters) or the separators ``-``, ``_`` and spaces
between two words (``-1`` and ``1`` stay two labels), and a whole number however it is written (``1.0``, ``01``, ``+1``
and ``+01.00`` are ``1``, ``-0`` is ``0``; ``1.50`` is ``1.5``: what a spreadsheet, a pandas column that once held a missing value or a
hand-typed file writes; :func:`tuneline.readers.normalize_label` already folds those written with a fraction,
``1.0``). A zero-padded code written one way only (``007``) keeps its spelling: folding happens between spellings.
The spelling kept is the configured one (``data.labels``), else the one written most often in the training data.
``data.merge_label_spellings: false`` keeps every spelling apart.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal

import numpy as np
import pandas as pd

from tuneline.readers import canonical_integer

#: separators BETWEEN two word characters: ``very_good`` is ``very good``, but ``-1`` stays apart from ``1``
_SEPARATORS = re.compile(r"(?<=\w)[\s_\-]+(?=\w)")

#: a decimal fraction as a spreadsheet may write it: ``1.50``, ``+1.5``, ``01.5``, ``.5``
_DECIMAL = re.compile(r"[+-]?\d*\.\d+")


def canonical_decimal(text: str) -> str | None:
    """``1.50``, ``+1.5`` and ``01.5`` → ``1.5``, ``.5`` → ``0.5``; else None. Whole numbers are
    :func:`tuneline.readers.canonical_integer`'s: without this, ``01`` and ``1`` were one class but ``1.5`` and
    ``1.50`` (a spreadsheet's fixed two decimals beside a hand-typed value) two."""
    if not _DECIMAL.fullmatch(text):
        return None
    return format(Decimal(text).normalize(), "f")


def visible(label: str) -> str:
    """``label`` without invisible characters (Unicode's format and control characters: a zero-width space or
    joiner, a soft hyphen, a byte-order mark, a NUL), which a copy from a web page or a broken export leaves in a
    label: ``"pos\u200b"`` printed looks exactly like ``"pos"``."""
    if label.isprintable():
        return label
    return "".join(c for c in label if c.isspace() or unicodedata.category(c) not in ("Cf", "Cc"))


def spelling_key(label: str) -> str:
    """What two spellings of one label have in common: ``"Very_Good "`` and ``"very good"`` → ``"very good"``;
    ``"1.0"``, ``"01"``, ``"+1"`` and ``"1"`` → ``"1"`` (a whole number is its canonical integer, as the readers
    make it), ``"1.50"`` and ``"1.5"`` → ``"1.5"``; ``"pos\u200b"`` → ``"pos"`` (invisible characters do not count)."""
    key = _SEPARATORS.sub(" ", unicodedata.normalize("NFKC", visible(label)).casefold().strip())
    return canonical_integer(key) or canonical_decimal(key) or key


def _has_invisible(label: str) -> bool:
    return visible(label) != label


def _counts(values: pd.Series) -> Counter:
    """How often each label is written in a label column: categorical, scalar strings or lists of strings."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return Counter({str(k): int(n) for k, n in values.value_counts(dropna=True).items() if n})
    counts: Counter = Counter()
    for value in values:
        for item in (value if isinstance(value, (list, tuple)) else [value]):
            if isinstance(item, str):
                counts[item] += 1
    return counts


def _written(frames: dict[str, pd.DataFrame], column: str, source_roles: Iterable[str]) -> tuple[Counter, Counter]:
    """How often each spelling is written in all frames together, and in the first source role present (train)."""
    per_frame = {role: _counts(frame[column]) for role, frame in frames.items() if column in frame.columns}
    everywhere: Counter = Counter()
    for counts in per_frame.values():
        everywhere.update(counts)
    return everywhere, next((per_frame[r] for r in source_roles if r in per_frame), Counter())


def spelling_map(frames: dict[str, pd.DataFrame], column: str, configured: Iterable[str] | None,
                 source_roles: Iterable[str]) -> dict[str, str]:
    """Each spelling that is not its class's chosen one → the chosen one (empty when every class has one spelling).

    The chosen spelling: the configured label with that key, else the most frequent spelling in the first source
    role present (train), else in all frames together; ties go to the spelling with the fewest capitals, then the
    first in sorted order (GoEmotions' 'embarrassment' beside as many 'EMBARRASSMENT' stays lower case).
    Configured labels that share a key (``02134`` and ``2134`` in ``data.labels``) are each a class of their own:
    neither is folded into the other, and a third spelling of that key is left as written (the contract names it),
    since which of the two it means is no spelling question (``2134\u200b`` is still ``2134``).
    """
    everywhere, source = _written(frames, column, source_roles)
    by_key: dict[str, set[str]] = {}
    for spelling in everywhere:
        by_key.setdefault(spelling_key(spelling), set()).add(spelling)
    configured_by_key: dict[str, set[str]] = {}
    for label in configured or []:
        configured_by_key.setdefault(spelling_key(label), set()).add(label)
    mapping: dict[str, str] = {}
    for key, spellings in by_key.items():
        own = configured_by_key.get(key, set())
        if len(own) > 1:  # only an invisible character apart from one of them is that one
            mapping.update({s: visible(s) for s in spellings if s not in own and visible(s) in own})
            continue
        if not own and len(spellings) == 1 and not _has_invisible(next(iter(spellings))):
            continue
        target = next(iter(own)) if own else visible(min(spellings, key=lambda s: (
            _has_invisible(s), -source.get(s, 0), -everywhere[s], sum(c.isupper() for c in s), s)))
        mapping.update({s: target for s in spellings if s != target})
    return mapping


def apply_spelling_map(values: pd.Series, mapping: dict[str, str], sequences: bool = False) -> pd.Series:
    """``values`` with every spelling in ``mapping`` replaced; a categorical column stays categorical (its codes
    remapped once per category, not per row). A list is a set of labels (a label merged into one already there
    appears once), or with ``sequences`` one tag per token (every position kept)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        old = [str(c) for c in values.cat.categories]
        categories = sorted({mapping.get(c, c) for c in old})
        position = {c: i for i, c in enumerate(categories)}
        recode = np.array([position[mapping.get(c, c)] for c in old] + [-1], dtype=np.int64)
        codes = recode[values.cat.codes.to_numpy().astype(np.int64)]  # -1 (missing) indexes the trailing -1
        dtype = np.int16 if len(categories) > 127 else np.int8
        return pd.Series(pd.Categorical.from_codes(codes.astype(dtype), pd.Index(categories, dtype="str")),
                         index=values.index, name=values.name)

    def one(value):
        if isinstance(value, list):
            mapped = [mapping.get(v, v) if isinstance(v, str) else v for v in value]
            return mapped if sequences else list(dict.fromkeys(mapped))
        return mapping.get(value, value) if isinstance(value, str) else value

    return values.map(one).astype(object)


def describe(mapping: dict[str, str], frames: dict[str, pd.DataFrame], column: str, unit: str = "rows") -> str:
    """``'POSITIVE' (20 rows), 'positive' (50 rows) → 'Positive'; ...`` for the log."""
    counts = _written(frames, column, ())[0]
    targets: dict[str, list[str]] = {}
    for spelling, target in sorted(mapping.items()):
        targets.setdefault(target, []).append(spelling)
    return "; ".join(", ".join(f"{s!r} ({counts[s]} {unit})" for s in spellings) + f" → {target!r}"
                     for target, spellings in sorted(targets.items()))


_TAG = re.compile(r"(?i)\s*([BI])[-_](.+?)\s*")


def tag_spelling_map(frames: dict[str, pd.DataFrame], column: str, configured: Iterable[str] | None,
                     source_roles: Iterable[str]) -> dict[str, str]:
    """IOB tags written several ways → one spelling: ``o`` (and ``0``, a zero) → ``O``, ``b-per``/``B_PER`` →
    ``B-PER``; an entity type takes the spelling of a configured tag, else the one written most often in train (as
    :func:`spelling_map`)."""
    everywhere, source = _written(frames, column, source_roles)
    in_source: Counter = Counter()  # entity type as written → tokens in train, and in all splits
    in_all: Counter = Counter()
    parsed: dict[str, tuple[str, str] | None] = {}
    for tag in everywhere:
        match = _TAG.fullmatch(visible(tag))
        parsed[tag] = (match.group(1).upper(), match.group(2)) if match else None
    by_key: dict[str, set[str]] = {}
    for tag, parts in parsed.items():
        if parts is not None:
            by_key.setdefault(spelling_key(parts[1]), set()).add(parts[1])
            in_source[parts[1]] += source.get(tag, 0)
            in_all[parts[1]] += everywhere[tag]
    chosen: dict[str, str] = {}
    for label in configured or []:
        match = _TAG.fullmatch(label)
        if match:
            chosen.setdefault(spelling_key(match.group(2)), match.group(2))
    for key, spellings in by_key.items():
        chosen.setdefault(key, visible(min(spellings, key=lambda t: (  # as spelling_map
            _has_invisible(t), -in_source[t], -in_all[t], t))))
    # a zero for the letter O (a hand-typed or OCR'd file): no IOB scheme has a tag "0", so beside B-/I- tags it
    # can only mean outside, unless the configured label set names it
    outside = {"O"} if "0" in (configured or []) or not by_key else {"O", "0"}
    mapping: dict[str, str] = {}
    for tag, parts in parsed.items():
        target = "O" if visible(tag).strip().upper() in outside else (
            f"{parts[0]}-{chosen[spelling_key(parts[1])]}" if parts is not None else tag)
        if target != tag:
            mapping[tag] = target
    return mapping
