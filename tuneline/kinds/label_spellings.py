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

A whole number written with a decimal comma (a European spreadsheet's semicolon-separated export: ``1,0``, ``2,00``,
``-1,0``) is that number too. Only digits, a comma and one, two or four and more zeros are: ``1,5`` is no whole
number, and ``1,000`` or ``1,2`` may be a thousands separator or a list of two labels, so each stays as written.

A label decorated with a matching pair of surrounding quotes (``'neg'``, ``"neg"``, backticks, typographic quotes)
or trailing punctuation (``neg.``, ``neg,``, ``neg!``, ``neg;``; not ``?``, which marks a doubt: ``spam?``) folds into
the bare label, but ONLY where the bare
label is a class already: written in the data in some spelling (``Neg`` will do), or named in ``data.labels``.
Such a decoration is a typing or quoting slip where the bare class exists beside it, but it may be part of the name
(``U.S.``, ``Yahoo!``, ``'t Hooft``) where it does not, so a label never loses it on its own, and the bare spelling is
always the one kept (``U.S.`` beside ``U.S`` is ``U.S``). ``+`` and ``#`` are no punctuation here (``C++`` and ``C#``
beside ``C`` are three classes). The merge is reported with the other spellings (``'neg.' (8 rows) → 'neg'``).
Decorated spellings of a class that is never written bare (``'neg'`` and ``"neg"`` only) are left apart:
:func:`kept_apart` words a warning, for the kind to log, that names them and says what to do.
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
#: between words: spaces, underscores and dashes, the typographic ones too (Word and Excel autocorrect ``non-toxic``
#: to ``non–toxic``; NFKC keeps the en dash), so ``non-toxic`` and ``non–toxic`` are one label (dirty-data QA)
_SEPARATORS = re.compile(r"(?<=\w)[\s_\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d]+(?=\w)")

#: a decimal fraction as a spreadsheet may write it: ``1.50``, ``+1.5``, ``01.5``, ``.5``
_DECIMAL = re.compile(r"[+-]?\d*\.\d+")

#: a whole number written with a decimal comma: ``1,0``, ``-2,00``, ``3,0000``; not ``1,000`` (three digits after the
#: comma read as a thousands separator as often as a fraction), ``1,5`` or ``1,2``
_COMMA_INTEGER = re.compile(r"([+-]?\d+),(?:0{1,2}|0{4,})")

#: matching pairs of quotes a label may be wrapped in (an export that quoted a field twice, a hand-typed file)
_QUOTES = (('"', '"'), ("'", "'"), ("`", "`"), ("\u201c", "\u201d"), ("\u2018", "\u2019"), ("\u00ab", "\u00bb"),
           ("\u201e", "\u201c"))

#: trailing punctuation a label may be typed with (``neg.``, ``neg,``); not ``+`` or ``#`` (``C++``, ``C#``), and
#: not ``?``: it marks an annotator's doubt (``spam?``) or is part of a class's name (``question?`` beside
#: ``question``, 32 and 40 rows in QA, merged into one class), not a typing slip
_TRAILING = ".,;:!"


def canonical_comma_integer(text: str) -> str | None:
    """``1,0``, ``+1,00`` → ``1``; ``-0,0`` → ``0``; else None (``1,5``, ``1,000``, ``1,2``): a whole number as a
    European spreadsheet writes it, the decimal-comma form of :func:`tuneline.readers.canonical_integer`'s ``1.0``."""
    match = _COMMA_INTEGER.fullmatch(text)
    return canonical_integer(match.group(1)) if match else None


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
    ``"1.0"``, ``"1,0"``, ``"01"``, ``"+1"`` and ``"1"`` → ``"1"`` (a whole number is its canonical integer, as the
    readers make it; :func:`canonical_comma_integer` for a decimal comma), ``"1.50"`` and ``"1.5"`` → ``"1.5"``;
    ``"pos\u200b"`` → ``"pos"`` (invisible characters do not count)."""
    key = _SEPARATORS.sub(" ", unicodedata.normalize("NFKC", visible(label)).casefold().strip())
    return canonical_integer(key) or canonical_comma_integer(key) or canonical_decimal(key) or key


def undecorated(text: str) -> str:
    """``text`` without a matching pair of surrounding quotes and without trailing punctuation, as often as they are
    there: ``"'neg'"``, ``"neg."`` and ``"'neg.'"`` → ``"neg"``; ``"C++"`` and ``"..."`` stay (nothing would be left
    of ``...``)."""
    while True:
        stripped = text.strip()
        for opening, closing in _QUOTES:
            if len(stripped) > 2 and stripped[0] == opening and stripped[-1] == closing:
                stripped = stripped[1:-1].strip()
                break
        else:
            stripped = stripped.rstrip(_TRAILING).rstrip()
        if not stripped or stripped == text:
            return text
        text = stripped


def bare_key(label: str) -> str:
    """The :func:`spelling_key` of ``label`` without quotes or trailing punctuation (:func:`undecorated`):
    ``"'Neg'"`` and ``"neg."`` → ``"neg"``, ``"1,"`` → ``"1"``, ``"U.S."`` → ``"u.s"``."""
    key = spelling_key(label)
    bare = undecorated(key)
    return key if bare == key else spelling_key(bare)


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
    decorated = _decorated(by_key, configured_by_key)
    joining: dict[str, set[str]] = {}  # bare key → the decorated spellings that fold into its class
    for key, bare in decorated.items():
        joining.setdefault(bare, set()).update(by_key[key])
    # a column that writes some whole number plainly holds numbers: each decimal-comma whole number in it is that
    # number, also where the plain spelling of its own value is missing ("1,0" beside "1" folded, "0,0" beside no
    # "0" stayed a class "0,0": one column, two readings of one notation)
    numeric = any(canonical_integer(visible(s).strip()) is not None for s in everywhere)
    mapping: dict[str, str] = {}
    for key in sorted(by_key.keys() - decorated.keys() | joining.keys()):
        spellings, own, extra = by_key.get(key, set()), configured_by_key.get(key, set()), joining.get(key, set())
        if len(own) > 1:  # only an invisible character apart from one of them is that one
            mapping.update({s: visible(s) for s in spellings if s not in own and visible(s) in own})
            continue
        if numeric and not own and any(canonical_comma_integer(visible(s).strip()) for s in spellings):
            mapping.update({s: key for s in spellings | extra if s != key})  # the number's canonical spelling
            continue
        if not own and not extra and len(spellings) == 1 and not _has_invisible(next(iter(spellings))):
            continue
        # the target is a bare spelling: a decorated one only ever joins a class written (or configured) bare
        target = next(iter(own)) if own else visible(min(spellings, key=lambda s: (
            _has_invisible(s), -source.get(s, 0), -everywhere[s], sum(c.isupper() for c in s), s)))
        mapping.update({s: target for s in spellings | extra if s != target})
    return mapping


def _decorated(by_key: dict[str, set[str]], configured_by_key: dict[str, set[str]]) -> dict[str, str]:
    """Each key of a decorated class (``'neg'``, ``neg.``) → the bare key of the class it folds into: one written
    in the data (``by_key``) or configured as exactly one label. A configured key is a class of its own (a
    ``data.labels`` that names ``neg.`` keeps it), and so is a decorated key whose bare class is nowhere."""
    folds: dict[str, str] = {}
    for key in by_key:
        bare = bare_key(key)
        if bare == key or key in configured_by_key:
            continue
        if len(configured_by_key.get(bare, ())) == 1 or (bare in by_key and bare not in configured_by_key):
            folds[key] = bare
    return folds


def kept_apart(frames: dict[str, pd.DataFrame], column: str, mapping: dict[str, str], unit: str = "rows") -> str:
    """A warning for labels left apart after ``mapping`` (:func:`spelling_map`) that differ only by quotes or
    trailing punctuation, since their bare spelling is no class (``'neg'`` and ``"neg"``, no ``neg``): a class the
    data names several ways that no rule may merge on its own. Empty when there are none."""
    counts = _written(frames, column, ())[0]
    classes = {mapping.get(s, s) for s in counts}
    by_bare: dict[str, set[str]] = {}
    for label in classes:
        by_bare.setdefault(bare_key(label), set()).add(label)
    groups = [sorted(labels) for bare, labels in by_bare.items()
              if len(labels) > 1 and any(spelling_key(label) != bare for label in labels)]
    if not groups:
        return ""
    total = Counter()
    for spelling, n in counts.items():
        total[mapping.get(spelling, spelling)] += n
    named = "; ".join(", ".join(f"{label!r} ({total[label]} {unit})" for label in group) for group in sorted(groups))
    return (f"labels that differ only by quotes or trailing punctuation are kept apart as separate classes: {named}; "
            "if each group is one class, correct those labels in the file or list the bare label in data.labels "
            "(its decorated spellings then fold into it)")


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

    def alike(spelling: str, target: str) -> bool:
        """Whether the two print alike (``café`` composed and decomposed, a zero-width space inside): shown with
        escapes then, as the log had said ``'café' → 'café'``."""
        nfc = unicodedata.normalize
        return not spelling.isprintable() or nfc("NFC", visible(spelling)) == nfc("NFC", visible(target))

    parts = []
    for target, spellings in sorted(targets.items()):
        escaped = any(alike(spelling, target) for spelling in spellings)
        shown = ascii if escaped else repr
        parts.append(", ".join(f"{shown(s)} ({counts[s]} {unit})" for s in spellings) + f" → {shown(target)}")
    return "; ".join(parts)


_TAG = re.compile(r"(?i)\s*([BI])[-_:.](.+?)\s*")
#: the prefix written after the type (``PER-B``, ``LOC_I``), as some annotation tools export it
_SUFFIX_TAG = re.compile(r"(?i)\s*(.+?)[-_:.]([BI])\s*")


def _parse_tag(tag: str) -> tuple[str, str] | None:
    """``(B or I, entity type)`` of a tag written ``B-PER``, ``b_per``, ``B:PER``, ``B.PER`` or ``PER-B``; else None."""
    if match := _TAG.fullmatch(tag):
        return match.group(1).upper(), match.group(2)
    if match := _SUFFIX_TAG.fullmatch(tag):
        return match.group(2).upper(), match.group(1)
    return None


def tag_spelling_map(frames: dict[str, pd.DataFrame], column: str, configured: Iterable[str] | None,
                     source_roles: Iterable[str]) -> dict[str, str]:
    """IOB tags written several ways → one spelling: ``o`` (and ``0``, a zero) → ``O``, ``b-per``/``B_PER``/``B:PER``
    and ``PER-B`` (the prefix after the type) → ``B-PER``; an entity type takes the spelling of a configured tag, else the one written most often in train (as
    :func:`spelling_map`)."""
    everywhere, source = _written(frames, column, source_roles)
    in_source: Counter = Counter()  # entity type as written → tokens in train, and in all splits
    in_all: Counter = Counter()
    parsed: dict[str, tuple[str, str] | None] = {}
    for tag in everywhere:
        parsed[tag] = _parse_tag(visible(tag))
    by_key: dict[str, set[str]] = {}
    for tag, parts in parsed.items():
        if parts is not None:
            by_key.setdefault(spelling_key(parts[1]), set()).add(parts[1])
            in_source[parts[1]] += source.get(tag, 0)
            in_all[parts[1]] += everywhere[tag]
    chosen: dict[str, str] = {}
    for label in configured or []:
        if parts := _parse_tag(label):
            chosen.setdefault(spelling_key(parts[1]), parts[1])
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
