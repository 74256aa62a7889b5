"""The data contract for token-classification (NER) sentences.

Rows reach the schema as sentences: ``tokens`` and ``tags`` (lists), ``text`` (the tokens joined by spaces) and the
provenance columns ``source_file``/``source_row``. Each check's name is the ``rule`` a quarantined sentence cites;
:func:`first_problem` gives the 1-based token position and what is wrong there for the quarantine's ``detail``, using
the same per-sentence helpers as the checks, so the two never disagree.

Rules: tokens and tags are lists of strings of equal length; no token is empty or whitespace; every tag is in the
frozen label set; the tags are valid IOB2 (an ``I-X`` continues a ``B-X`` or ``I-X``; IOB1 files can be converted
before validation with ``data.iob1_to_iob2``); a validation/test sentence must not also be a training sentence.
"""

from __future__ import annotations

import re
import unicodedata

from collections.abc import Callable, Iterable

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tuneline.schemas.common import invisible_kind, not_in_train, nothing_visible, with_checks

OUTSIDE = "O"


def split_tag(tag: str) -> tuple[str, str | None]:
    """``"B-PER"`` → ``("B", "PER")``, ``"O"`` → ``("O", None)``; anything else → ``("?", None)``."""
    if tag == OUTSIDE:
        return OUTSIDE, None
    prefix, sep, kind = tag.partition("-")
    if sep and prefix in ("B", "I") and kind:
        return prefix, kind
    return "?", None


def is_string_list(value: object, allow_empty: bool = False) -> bool:
    return isinstance(value, list) and (allow_empty or len(value) > 0) and all(isinstance(v, str) for v in value)


def iob2_violations(tags: list[str]) -> list[tuple[int, str]]:
    """(0-based position, message) for every ``I-X`` that does not continue an entity of type X."""
    problems = []
    previous: tuple[str, str | None] = (OUTSIDE, None)
    for position, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        if prefix == "I" and (previous[0] not in ("B", "I") or previous[1] != kind):
            after = tags[position - 1] if position else "the sentence start"
            problems.append((position, f"{tag} follows {after}; in IOB2 an entity starts with B-{kind} "
                                       "(set data.iob1_to_iob2=true if the file is IOB1)"))
        previous = (prefix, kind)
    return problems


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """IOB1 marks only entities that touch a same-type entity with B-; IOB2 starts every entity with B-."""
    out = []
    previous: tuple[str, str | None] = (OUTSIDE, None)
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "I" and (previous[0] not in ("B", "I") or previous[1] != kind):
            tag = f"B-{kind}"
            prefix = "B"
        out.append(tag)
        previous = (prefix, kind)
    return out


def labels_from_tags(tag_lists: Iterable[object]) -> list[str]:
    """The label set implied by the IOB2 tags seen: 'O' first, then B-X and I-X for every entity type X, sorted.

    I-X is included even for a type only ever seen as one-word entities, so the model can still predict (and
    ``tokenize.label_all_subwords`` can still label) its continuations. Tags that are not IOB2 add nothing: they
    fail ``tag_in_label_set`` instead of becoming classes.
    """
    kinds = {kind for tags in tag_lists if is_string_list(tags, allow_empty=True)
             for prefix, kind in map(split_tag, tags) if kind is not None}
    return [OUTSIDE] + [f"{prefix}-{kind}" for kind in sorted(kinds) for prefix in ("B", "I")]


def _token_problems(tokens: object) -> list[tuple[int, str]]:
    if not is_string_list(tokens):
        return []
    return [(i, f"token {t!r} is empty or whitespace" if not t.strip() else
             f"token {t!r} has no visible character (only {invisible_kind(t)}), which the tokenizer reads as "
             "nothing, dropping its tag: remove the token and its tag, or fix it"
             if nothing_visible(t) else
             f"token {t!r} is only combining marks (an accent or an emoji's variation selector written apart from "
             "its letter or symbol), which an uncased tokenizer reads as nothing, dropping its tag: join it to the "
             "token before it, or remove the token and its tag")
            for i, t in enumerate(tokens) if nothing_visible(t) or only_marks(t)]


def only_marks(token: str) -> bool:
    """Whether ``token`` is combining marks alone (with invisible characters): ``"\u0301"``, ``"\ufe0f"``. MiniLM's
    uncased tokenizer strips accents and made no subword of such a token, so its tag was dropped silently (the
    emoji selector of ``❤️`` split from its heart, an accent from a decomposed ``José``)."""
    return any(unicodedata.category(c).startswith("M") for c in token) and all(
        c.isspace() or unicodedata.category(c)[0] == "M" or unicodedata.category(c) in ("Cc", "Cf") for c in token)


def _label_problems(tags: object, allowed: frozenset[str]) -> list[tuple[int, str]]:
    if not is_string_list(tags, allow_empty=True):
        return []
    return [(i, _label_problem(tags, i, allowed)) for i, t in enumerate(tags) if t not in allowed]


def _label_problem(tags: list[str], i: int, allowed: frozenset[str]) -> str:
    """Why ``tags[i]`` is no tag of the set, and the fix that applies to it:

    * an E-/L- tag that ends no entity (after ``O`` or another type) is what data.bioes_to_iob2 leaves as written,
      so the fix is the tag before it; "set data.bioes_to_iob2=true" was said first, also where it was set (QA);
    * another IOBES/BILOU tag: data.bioes_to_iob2 reads the file as IOB2;
    * a type without its prefix (``ORG`` where ``B-ORG`` is a tag) is the IO scheme in some sentences: "set
      data.labels" would have made ``ORG`` a class of its own (QA)."""
    tag = tags[i]
    if _BIOES_PREFIX.match(tag):
        kind = tag[2:]
        before = tags[i - 1] if i else "O"
        if tag[0].upper() in "EL" and not (before[:2].upper() in ("B-", "I-") and before[2:] == kind):
            return (f"tag {tag!r} ends an entity that no tag began (the tag before it is {before!r}): make the "
                    f"entity's first tag B-{kind} (S-/B- in IOBES) and the ones after it I-{kind}; a file in IOBES/"
                    "BILOU tags is read as IOB2 with data.bioes_to_iob2=true")
        return (f"tag {tag!r} is an IOBES/BILOU tag (S-, E-, U- or L-): set data.bioes_to_iob2=true to read the file "
                "as IOB2")
    if "-" not in tag and tag != "O" and (f"B-{tag}" in allowed or f"I-{tag}" in allowed):
        return (f"tag {tag!r} has no B-/I- prefix, but {tag} is an entity type of the set (the IO scheme in this "
                f"sentence): write the first word of each entity as B-{tag} and the words after it as I-{tag} "
                "(IOB2)")
    return (f"tag {tag!r} is not in the label set {sorted(allowed)} (IOB2 tags look like B-PER, I-PER, O; "
            f"set data.labels to change the set)")


#: the prefixes IOBES (S- single, E- end) and BILOU (U- unit, L- last) add to B-/I-
_BIOES_PREFIX = re.compile(r"[SEUL]-\S", re.IGNORECASE)


def bioes_to_iob2(tags: list[str]) -> list[str]:
    """IOBES/BILOU tags as IOB2: a single-token entity (S-X, U-X) starts with B-X, an entity's last token (E-X, L-X)
    continues it with I-X; B-, I- and O stay. An E-X/L-X that ends no entity (after O, or after another type) is
    left as written, for the contract to name: read as I-X, it was reported as "I-X follows O ... set
    data.iob1_to_iob2=true", a tag the file does not hold and the wrong fix (dirty-data QA)."""
    out: list[str] = []
    previous = ("O", "")
    for tag in tags:
        if _BIOES_PREFIX.match(tag):
            kind = tag[2:]
            if tag[0] in "SUsu":
                tag = "B-" + kind
            elif previous[0] in ("B", "I") and previous[1] == kind.casefold():
                tag = "I-" + kind
        out.append(tag)
        prefix, _, kind = tag.partition("-")
        previous = (prefix.upper(), kind.casefold())
    return out


def _lengths_differ(row: pd.Series) -> bool:
    return (is_string_list(row["tokens"]) and is_string_list(row["tags"], allow_empty=True)
            and len(row["tokens"]) != len(row["tags"]))


class TokenSentences(pa.DataFrameModel):
    """Rules that need no run context (the label set and train sentences are added by :func:`token_schema`).

    ``tokens`` and ``tags`` are nullable only so that a missing list (``"tags": null``, or no such field in a JSONL
    record) is reported by the list rules below, with their detail, instead of pandera's bare ``not_nullable``: those
    two rules therefore see missing values (``ignore_na=False``; pandera skips them in a check by default, and a
    sentence without tags would pass the contract and break every later step that iterates its tags). The other
    rules skip whatever is not a list of strings, which the list rules already reject. ``text`` is None exactly when
    the tokens are unusable.
    """

    tokens: Series[object] = pa.Field(nullable=True)
    tags: Series[object] = pa.Field(nullable=True)
    text: Series[object] = pa.Field(nullable=True)
    source_file: Series[str]
    source_row: Series[int]

    @pa.check("tokens", name="tokens_are_list_of_strings", ignore_na=False)
    def tokens_are_list_of_strings(cls, tokens: Series[object]) -> Series[bool]:
        return tokens.map(is_string_list).astype(bool)

    @pa.check("tags", name="tags_are_list_of_strings", ignore_na=False)
    def tags_are_list_of_strings(cls, tags: Series[object]) -> Series[bool]:
        return tags.map(is_string_list).astype(bool)

    @pa.check("tokens", name="no_empty_tokens")
    def no_empty_tokens(cls, tokens: Series[object]) -> Series[bool]:
        return tokens.map(lambda t: not _token_problems(t)).astype(bool)

    @pa.check("tags", name="valid_iob2")
    def valid_iob2(cls, tags: Series[object]) -> Series[bool]:
        return tags.map(lambda t: not is_string_list(t) or not iob2_violations(t)).astype(bool)

    @pa.dataframe_check(name="tokens_and_tags_same_length")
    def tokens_and_tags_same_length(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df.apply(_lengths_differ, axis=1).astype(bool)

    class Config:
        strict = False
        coerce = False


def token_schema(labels: Iterable[str], train_texts: Iterable[str] | None = None) -> pa.DataFrameSchema:
    """The full contract for one split: static rules, the frozen label set, and for validation/test no train text."""
    schema = TokenSentences.to_schema()
    allowed = frozenset(labels)
    in_label_set = pa.Check(lambda tags: tags.map(lambda t: not _label_problems(t, allowed)).astype(bool),
                            name="tag_in_label_set")
    schema = with_checks(schema, "tags", in_label_set)
    if train_texts is not None:
        schema = with_checks(schema, "text", not_in_train(train_texts, "sentence_not_in_train"))
    return schema


def _describe(problems: list[tuple[int, str]], tokens: object, first_line: int | None = None) -> str:
    position, message = problems[0]
    token = tokens[position] if is_string_list(tokens) and position < len(tokens) else None
    shown = [repr(token)] if token is not None else []
    if first_line:  # a CoNLL sentence: one line a token (dirty-data QA: "line 1: token 3" sent the user to line 1)
        shown.append(f"line {first_line + position}")
    where = f"token {position + 1}" + (f" ({', '.join(shown)})" if shown else "")
    more = f" (+{len(problems) - 1} more in this sentence)" if len(problems) > 1 else ""
    return f"{where}: {message}{more}"


def _not_a_list(field: str, value: object, named: str | None = None) -> str:
    """What a list rule says about ``value``: a missing list (null, or no such field in the record) in those words,
    since ``got None`` would not tell the user that the record lacks the field. ``named``: the field's name in the
    file where it is not ``field`` (``data.tokens_column: words``): the record lacks ``words``, not ``tokens``."""
    if value is None or (isinstance(value, float) and value != value):
        if named:
            return (f"{field} are missing (null, or no {named!r} field in the record): a sentence needs a {field} "
                    "list")
        return f"{field} are missing (null, or no {field} field in the record): a sentence needs a {field} list"
    return f"{field} {'(' + repr(named) + ') ' if named else ''}must be a non-empty list of strings, got {value!r:.200}"


def first_problem(rule: str, tokens: object, tags: object, labels: Iterable[str],
                  names: dict[str, str] | None = None, first_line: int | None = None) -> str | None:
    """Where in the sentence ``rule`` breaks (1-based token position) and why, for the quarantine's ``detail``.
    ``names``: the file's name of the tokens and tags fields where the config names them otherwise.
    ``first_line``: the line of the sentence's first token where each token has a line of its own (CoNLL), so the
    detail names the line of the token at fault as well."""
    names = names or {}
    describers: dict[str, Callable[[], str | None]] = {
        "tokens_are_list_of_strings": lambda: _not_a_list("tokens", tokens, names.get("tokens")),
        "tags_are_list_of_strings": lambda: _not_a_list("tags", tags, names.get("tags")),
        "no_empty_tokens": lambda: _describe(_token_problems(tokens), tokens, first_line),
        "valid_iob2": lambda: _describe(iob2_violations(tags), tokens, first_line),
        "tag_in_label_set": lambda: _describe(_label_problems(tags, frozenset(labels)), tokens, first_line),
        "tokens_and_tags_same_length": lambda: f"{len(tokens)} tokens but {len(tags)} tags",
        "sentence_not_in_train": lambda: "the same sentence is in the training split (test/validation leakage)",
    }
    describe = describers.get(rule)
    try:
        return describe() if describe else None
    except (IndexError, TypeError):
        return None
