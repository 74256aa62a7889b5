"""Multi-label text classification (ticket tagging, moderation, emotions): zero, one or several labels per text.

It is text classification with a set of labels per row instead of one, so it subclasses
:class:`~tuneline.kinds.classification.ClassificationKind` and changes what a set changes:

* the canonical ``label`` is a sorted, de-duplicated list of label names, read from a JSONL/Parquet list or a
  delimited string (``2,7``); ids become names through ``data.label_names`` (GoEmotions' ``labels.txt``);
* the head is trained with BCE-with-logits (``problem_type="multi_label_classification"``) on multi-hot floats, and
  every label is an independent yes/no;
* the decision threshold is not assumed to be 0.5: :meth:`MultilabelKind.calibrate` fits it on validation (one
  global cut, or one per label) and stores it in the model folder, so the served model applies it;
* metrics are micro/macro/samples F1 and subset accuracy, from one function (:func:`matrix_scores`);
* the baselines are the label prior and zero-shot label-name similarity, each with a threshold fitted on train.
"""

from __future__ import annotations

import ast
import io
import json
import numbers
import re
import tokenize
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from tuneline.config import TunelineConfig
from tuneline.errors import bytes_shown, excerpt
from tuneline.kinds.base import Evaluation, ReadRecords
from tuneline.long_texts import cut_long_texts
from tuneline.kinds.classification import (
    LABEL_SOURCE_ROLES, ClassificationData, ClassificationKind, LabelSetError, as_objects, checked_label_set,
    columns_or_error, delimiter_hint, frequent_labels, matched_columns, with_delimiter_hints)
from tuneline.readers import VALUE_LIMIT, DataLoadError, bom_encoding, file_bytes, normalize_label

#: Rows of train embedded to fit the zero-shot baseline's threshold (enough for one number, bounded in time).
ZERO_SHOT_FIT_ROWS = 2000


class MultilabelData(ClassificationData):
    label_separator: str = Field(",", min_length=1, description="Splits a delimited label string (CSV/TSV) such "
                                                               "as '2,7' into labels.")
    label_names: list[str] | Path | None = Field(
        None, description="Label names by id: a list, or a file with one name a line (line number = id, from 0). "
                          "Ids in the data are mapped to these names; they are also the label set unless "
                          "data.labels is given.")
    label_values: Literal["auto", "ids", "names"] = Field(
        "auto", description="With data.label_names: what the data's labels are. ids: numbers counting the names from "
                            "0; names: the names themselves; auto: a number that is no name is an id, and names "
                            "that are themselves numbers (1, 2, 3, ...) make the data's numbers an error that asks "
                            "for ids or names.")
    allow_empty_labels: bool = Field(False, description="Keep rows with no label (else they are quarantined).")
    threshold: Literal["global", "per_label"] = Field(
        "global", description="Decision threshold fitted on validation: one for all labels, or one per label.")
    label_columns: list[str] | None = Field(
        None, description="One-hot files (GoEmotions' raw CSVs, Jigsaw): one 0/1 column per label, named by the "
                          "label; a row's labels are the columns holding 1. Replaces data.label_column; the label "
                          "set is these columns in this order.")

    @field_validator("label_column", mode="before")
    @classmethod
    def _null_label_column_is_the_default(cls, value: Any) -> Any:
        """``--set data.label_column=null`` leaves the key at its default: the one way, from the command line, to
        switch a config that names a label column to ``data.label_columns`` (it was "Input should be a valid
        string")."""
        return cls.model_fields["label_column"].default if value is None else value

    @field_validator("label_columns", mode="before")
    @classmethod
    def _column_numbers_as_text(cls, value: Any) -> Any:
        """``label_columns: [2, 3]`` names columns of a file read with ``header: false`` ("0", "1", ...)."""
        return [str(v) if type(v) is int else v for v in value] if isinstance(value, list) else value

    @field_validator("label_columns")
    @classmethod
    def _several_distinct_columns(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        repeated = sorted(name for name, n in Counter(value).items() if n > 1)
        if repeated or any(not name.strip() for name in value):
            raise ValueError(f"label columns must be unique and non-blank (repeated: {repeated})")
        if len(value) < 2:
            raise ValueError("give at least 2 label columns: a single 0/1 column is one yes/no label, trained with "
                             "task: classification and data.label_column")
        return value

    @model_validator(mode="after")
    def _one_way_to_read_labels(self) -> "MultilabelData":
        """``label_columns`` reads the labels from 0/1 columns named by the labels: a label column of lists (a
        non-default ``label_column``) or ids to name (``label_names``) beside it would say two things at once."""
        if not self.label_columns:
            return self
        if self.label_column != type(self).model_fields["label_column"].default:
            raise ValueError(f"data.label_column ({self.label_column!r}) and data.label_columns are both set: a "
                             "file has one column of label lists, or one 0/1 column per label; keep only one (remove "
                             "data.label_column from the config, or give --set data.label_column=null)")
        if self.label_names is not None:
            raise ValueError("data.label_names maps label ids to names, and data.label_columns names every label by "
                             "its column: leave out data.label_names")
        if self.text_column in self.label_columns:
            raise ValueError(f"data.text_column ({self.text_column!r}) is one of data.label_columns: the model would "
                             "be given a label as its input")
        return self

    @model_validator(mode="after")
    def _label_values_need_names(self) -> "MultilabelData":
        """``label_values`` says how the data's labels map to ``label_names``; without the names it says nothing,
        and a user who set it believes ids are being mapped."""
        if self.label_values != "auto" and self.label_names is None:
            raise ValueError(f"data.label_values: {self.label_values} says how labels map to data.label_names, "
                             "which is not set: give the names (a list, or a file with one name a line), or leave "
                             "data.label_values out")
        return self

    def column_keys(self) -> dict[str, str]:
        """Without ``label_columns``, the text and label column; with them only the text column: no one file
        column holds the canonical ``label`` (the label columns' names are the labels)."""
        if self.label_columns:
            return {"text_column": self.text_column}
        return super().column_keys()

    @field_validator("label_names")
    @classmethod
    def _unique_names(cls, value: list[str] | Path | None) -> list[str] | Path | None:
        if isinstance(value, list):
            repeated = sorted(name for name, n in Counter(value).items() if n > 1)
            if repeated or any(not name.strip() for name in value):
                raise ValueError(f"label names must be unique and non-blank (repeated: {repeated})")
        return value

    def path_fields(self) -> list[str]:
        """A ``label_names`` file is resolved against the config file like the data files; a list is left alone."""
        return [*super().path_fields(), *(["label_names"] if isinstance(self.label_names, Path) else [])]


class MultilabelConfig(TunelineConfig):
    METRICS: ClassVar[tuple[str, ...]] = ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy")
    DEFAULT_METRIC: ClassVar[str] = "micro_f1"

    task: Literal["multilabel_classification"] = "multilabel_classification"
    data: MultilabelData


# --- reading -----------------------------------------------------------------------------------------------------

def read_label_names(data: MultilabelData) -> list[str] | None:
    """``data.label_names`` as a list (a file: one name a line, line number = id; trailing blank lines ignored)."""
    names = data.label_names
    if names is None or isinstance(names, list):
        return [name.strip() for name in names] if names else None
    path = Path(names)
    lines = names_file_lines(path, getattr(data, "encoding", None) or "utf-8", "label", "data.label_names")
    return _names_by_written_id(path, lines) or [line.strip() for line in lines]


def names_file_lines(path: Path, encoding: str, noun: str, setting: str) -> list[str]:
    """The lines of a file of class names, one ``noun`` a line (line number = id; trailing blank lines dropped),
    refused in one line when it is missing, or has a blank line, a repeated name, or no line: every later id would
    otherwise name the wrong class. Shared by ``data.label_names`` and NER's ``data.tag_names``."""
    if not path.is_file():
        raise DataLoadError(f"{noun} names file {path} does not exist; check {setting} (paths in a config file are "
                            "relative to the file, paths given with --set to the folder you run in)")
    lines = _label_names_lines(path, encoding)
    lines = _json_names(path, lines, noun) or lines
    while lines and not lines[-1].strip():
        lines.pop()
    blank = [i + 1 for i, line in enumerate(lines) if not line.strip()]
    repeated = sorted(name for name, n in Counter(line.strip() for line in lines).items() if n > 1)
    if blank or repeated or not lines:
        raise DataLoadError(f"{path}: a {noun} names file needs one unique {noun} per line (line number = id); "
                            f"blank lines {blank[:5]}, repeated {noun}s {repeated[:5]}")
    return lines


def _json_names(path: Path, lines: list[str], noun: str) -> list[str] | None:
    """The names of a file that is one JSON value: a list of names (``json.dump(features.names)``, what a Hugging
    Face ``ClassLabel`` gives) or an id → name object (a model config's ``id2label``); None for a file of lines.
    Read by line, such a file was one name, ``["O", "B-PER", ...]``, and every id past 0 was out of range."""
    text = "\n".join(lines).strip()
    if not text.startswith(("[", "{")):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None  # a name that starts with a bracket, one a line
    if isinstance(value, dict) and all(isinstance(k, str) and k.strip().isdigit() for k in value):
        ids = sorted(int(k) for k in value)
        if ids != list(range(len(ids))):
            raise DataLoadError(f"{path} is a JSON object of ids to {noun} names whose ids are not 0..{len(ids) - 1}, "
                                "each once; write every id from 0 up")
        value = [value[next(k for k in value if int(k) == i)] for i in ids]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise DataLoadError(f"{path} is JSON but not a list of {noun} names (nor an object of ids to names): write "
                            f"[\"name 0\", \"name 1\", ...], or one {noun} name a line (line number = id)")
    return list(value)


#: ``27<TAB>neutral`` / ``27,neutral``: a label names line that writes its id
_ID_AND_NAME = re.compile(r"\s*(\d+)\s*[\t,]\s*(\S.*?)\s*")


def _names_by_written_id(path: Path, lines: list[str]) -> list[str] | None:
    """The names of a file whose every line is ``ID<TAB>NAME`` (or ``ID,NAME``), ordered by the written ids; None
    for a file of plain names. Read by line number, such a file had ``27<TAB>neutral`` for a label name, and a file
    whose lines were not in id order gave every row other labels, without a word. A file that mixes the forms (a
    header line, a stray tab) is refused, naming the line."""
    matches = [_ID_AND_NAME.fullmatch(line) for line in lines]
    if not any(matches):
        if any("\t" in line for line in lines):
            first = next(i for i, line in enumerate(lines) if "\t" in line) + 1
            raise DataLoadError(f"{path}: line {first} ({lines[first - 1].strip()!r}) holds a tab: a label names "
                                "file has one name per line (line number = id), or ID<TAB>NAME on every line")
        return None
    if not all(matches):
        first = next(i for i, match in enumerate(matches) if match is None) + 1
        raise DataLoadError(f"{path}: line {first} ({lines[first - 1].strip()!r}) is not ID<TAB>NAME like line "
                            f"{next(i for i, match in enumerate(matches) if match) + 1}: write every line as "
                            "ID<TAB>NAME (a header line too is in the way), or one plain name per line")
    by_id = {int(match.group(1)): match.group(2) for match in matches}
    if sorted(by_id) != list(range(len(lines))):
        missing = sorted(set(range(len(lines))) - set(by_id))[:5]
        raise DataLoadError(f"{path}: the written ids must be 0..{len(lines) - 1}, each once (label ids count from "
                            f"0); missing {missing}, repeated or out of range: "
                            f"{sorted(i for i in by_id if i >= len(lines))[:5] or 'a repeated id'}")
    names = [by_id[i] for i in range(len(lines))]
    repeated = sorted(name for name, n in Counter(names).items() if n > 1)
    if repeated:
        raise DataLoadError(f"{path}: a label names file needs unique names; repeated {repeated[:5]}")
    return names


def _label_names_lines(path: Path, configured: str) -> list[str]:
    """The lines of a label names file decoded as ``configured`` (``data.encoding``), a byte-order mark winning:
    Notepad's "Unicode" writes UTF-16 with a mark, and a UnicodeDecodeError read to the user as a tuneline bug."""
    encoding = bom_encoding(path, configured)
    codec, raw, skipped = file_bytes(path, encoding, "label names file")
    raw = raw[skipped:]
    try:
        text = raw.decode(codec.name)
    except UnicodeDecodeError as error:
        line = raw[:error.start].decode(codec.name, errors="replace").count("\n") + 1
        raise DataLoadError(
            f"{path}: line {line}: {bytes_shown(raw[error.start:error.end])} "
            f"{'is' if error.end - error.start == 1 else 'are'} not valid {encoding} "
            f"({error.reason}); the label names file is read with data.encoding ({configured}): save it in that "
            "encoding (e.g. as UTF-8), or set data.encoding to the encoding of both the data and this file (e.g. "
            "cp1252)") from None
    return text.removeprefix("\ufeff").splitlines()


#: the bracket that closes each bracket a list-like label cell opens with
_CLOSING = {"[": "]", "(": ")", "{": "}"}

#: values a Python literal in a label list may have (booleans and None pass, for the contract to reject by rule)
_LITERAL_TYPES = (str, bytes, int, float, bool, type(None))


def _looks_listed(text: str) -> bool:
    """A cell that opens with ``[``, ``(`` or ``{`` and ends with the matching bracket: meant as a list, so it is
    read as one or rejected, never taken for a label name such as ``('anger'``."""
    return len(text) >= 2 and _CLOSING.get(text[0]) == text[-1]


def _tokens(text: str) -> list[tokenize.TokenInfo] | None:
    """Python's tokens of ``text`` less the layout ones (NL, NEWLINE, ENDMARKER); None when it does not tokenize."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, ValueError):
        return None
    return [token for token in tokens if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER)]


def _python_literals(text: str) -> list[Any] | None:
    """The items of a Python list, tuple or set of literals (``['a', 'b']``, ``('a', 'b')``, ``{'a'}``), each one
    literal token: ``'a' 'b'`` is Python's implicit concatenation, one string ``'ab'`` that no label list means."""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not isinstance(tree.body, (ast.List, ast.Tuple, ast.Set)):
        return None
    items = []
    for element in tree.body.elts:
        if not isinstance(element, ast.Constant) or not isinstance(element.value, _LITERAL_TYPES):
            return None
        tokens = _tokens(f"({ast.get_source_segment(text, element) or ''})")
        if tokens is None or len(tokens) != 3 or tokens[1].type not in (tokenize.STRING, tokenize.NUMBER):
            return None
        items.append(element.value)
    return items


def _numpy_repr(text: str) -> list[Any] | None:
    """The items of numpy's repr of a 1-d array, apart by whitespace: ``['anger' 'fear']``, ``[2 7]``, ``[2. 7.]``
    (what pandas writes to CSV for an array cell)."""
    tokens = _tokens(text) if text.startswith("[") else None
    if not tokens or len(tokens) < 2 or tokens[0].string != "[" or tokens[-1].string != "]":
        return None
    items = []
    for token in tokens[1:-1]:
        if token.type not in (tokenize.STRING, tokenize.NUMBER):
            return None
        try:
            item = ast.literal_eval(token.string)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
        if not isinstance(item, (str, bytes, int, float)):  # 2j
            return None
        items.append(item)
    return items


#: characters an unquoted Postgres array item is not read with: quotes, backslashes and brackets mean a Python set
#: or dict (``{'a', b}``, ``{'a': 1}``) or a nested array, none of them a list of label names; an apostrophe inside
#: a word (``{it's,fear}``, as Postgres writes it) is no quote
_NOT_UNQUOTED = set("\"\\{}[]")


def _postgres_array(text: str) -> list[Any] | None:
    """The items of a Postgres array literal: ``{a,b}``, ``{"a b",c}`` (double quotes, backslash escapes inside),
    ``{}``; an unquoted NULL is a missing item (the contract rejects it). None for anything else."""
    if not (text.startswith("{") and text.endswith("}")):
        return None
    inner, items, i = text[1:-1], [], 0
    if not inner.strip():
        return []
    while True:
        while i < len(inner) and inner[i].isspace():
            i += 1
        if i < len(inner) and inner[i] == '"':
            chars, i = [], i + 1
            while i < len(inner) and inner[i] != '"':
                if inner[i] == "\\" and i + 1 < len(inner):
                    i += 1
                chars.append(inner[i])
                i += 1
            if i >= len(inner):
                return None  # an unterminated quote
            items.append("".join(chars))
            i += 1
            while i < len(inner) and inner[i].isspace():
                i += 1
        else:
            end = inner.find(",", i)
            end = len(inner) if end < 0 else end
            item = inner[i:end].strip()
            if not item or set(item) & _NOT_UNQUOTED or item.startswith("'") or item.endswith("'"):
                return None
            items.append(None if item.upper() == "NULL" else item)
            i = end
        if i >= len(inner):
            return items
        if inner[i] != ",":
            return None
        i += 1


def _listed(value: str) -> object:
    """A string that spells a list as the list of its items, else ``value`` unchanged.

    Read are JSON (``["a", "b"]``); a Python list, tuple or set of literals (``['a', 'b']``, ``('a', 'b')``: pandas
    writes list and tuple cells so to CSV); numpy's repr, items apart by whitespace (``['a' 'b']``, ``[2 7]``: pandas
    writes an array cell so); a Postgres array (``{a,b}``, ``{"a b",c}``). Adjacent strings are never joined as
    Python's implicit concatenation does: ``['a' 'b']`` is two labels, not the label ``ab``.
    """
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, list):
        return parsed
    for parse in (_python_literals, _numpy_repr, _postgres_array):
        items = parse(value)
        if items is not None:
            return items
    return value


def _is_index(label: str, count: int) -> bool:
    """Whether ``label`` is an id below ``count``: ASCII digits only (``"²"`` and ``"١"`` are digits to
    :meth:`str.isdigit` and :meth:`str.isdecimal`, and ``int("²")`` fails)."""
    return label.isascii() and label.isdecimal() and int(label) < count


def parse_labels(value: object, separator: str, names: list[str] | None,
                 label_values: str = "auto") -> object:
    """One row's labels as a sorted, unique list of names, or ``value`` unchanged when it is no list of labels.

    Accepts a list (JSONL, Parquet), a delimited string (``"2,7"``), a string spelling a list (see :func:`_listed`),
    a single number or name; missing or blank means no label (``[]``), which the contract judges. A string in
    matching brackets that spells no list is returned unchanged, so the contract quarantines it
    (``labels_are_list_of_strings``) instead of it becoming a label such as ``('anger'``. Numeric ids map to
    ``names`` when given (as ``label_values`` says: :func:`named`); an id or name outside them is kept as it is, so
    the contract quarantines it naming the label.
    """
    if isinstance(value, (tuple, np.ndarray)):
        value = list(value)
    if isinstance(value, str):
        text = value.strip()
        if _looks_listed(text):
            listed = _listed(text)
            if not isinstance(listed, list):
                return value
            value = listed
        else:
            value = [piece for piece in text.split(separator) if piece.strip()]
    if not isinstance(value, list):
        label, rule = normalize_label(value)
        if rule:
            return value
        value = [] if label is None else [label]
    parsed = []
    for item in value:
        label, rule = normalize_label(item)
        if rule or label is None:
            return value  # a nested list, a boolean, a blank or missing item: no list of labels
        parsed.append(label)
    return sorted(set(named(parsed, names, label_values)))


def named(labels: list[str], names: list[str] | None, label_values: str = "auto") -> list[str]:
    """``labels`` with the ids among them replaced by their names (``data.label_values``): ``ids`` maps every number
    below ``len(names)``; ``names`` maps none; ``auto`` maps a number that is no name (whether the names leave that
    open is :func:`refuse_ids_or_names`' question, asked of the whole file first)."""
    if not names or label_values == "names":
        return labels
    if label_values == "ids":
        return [names[int(label)] if _is_index(label, len(names)) else label for label in labels]
    known = set(names)
    return [names[int(label)] if label not in known and _is_index(label, len(names)) else label for label in labels]


def _is_number(label: str) -> bool:
    """ASCII digits only: what :func:`_is_index` can read as an id."""
    return label.isascii() and label.isdecimal()


def refuse_ids_or_names(labels: Iterable[tuple[str, int]], names: list[str], path: Path) -> None:
    """A DataLoadError when names that are themselves numbers (``labels.txt`` of ``1 2 3 4``) leave the data's numbers
    open: ``1`` is the name ``1``, or the id 1 (the second line, the name ``2``). Read label by label, ``0`` (no name)
    became the name ``1`` while ``1`` stayed ``1``: two readings in one file, and the last name looked absent from
    train. ``labels`` are ``(label, row)`` pairs of one file, before any mapping.

    Names of which some are numbers that are also ids of other names: every number the two readings take apart
    (``0``: only an id; ``4``: only a name; ``1``: both) is refused, whichever reading the file would fit: a file
    that only writes ``1``-``3`` fits both, and a guess per file could read train and test two ways. Numbers that
    are no ids of other names (``10 20 30``): only a file mixing a number that can only be an id with one that can
    only be a name. ``data.label_values`` settles it either way."""
    numbers = [name for name in names if _is_number(name)]
    if not numbers:
        return
    known = set(names)
    ids_of_others = any(int(name) < len(names) and names[int(name)] != name for name in numbers)
    both = only_id = only_name = None
    for label, row in labels:
        if not _is_number(label):
            continue
        as_id = names[int(label)] if int(label) < len(names) else None
        as_name = label if label in known else None
        if as_id == as_name:
            continue
        if as_id is not None and as_name is not None:
            both = both or (label, row)
        elif as_id is not None:
            only_id = only_id or (label, row)
        else:
            only_name = only_name or (label, row)
    if ids_of_others:
        first = both or only_id or only_name
    else:
        first = only_id if only_id and only_name else None
    if first is None:
        return
    label, row = first
    if first is both:
        reading = (f"is the name {label!r} or the id {label} (the name {names[int(label)]!r}, line {int(label) + 1} of "
                   "the names)")
    elif first is only_id:
        reading = (f"is no name but the id {label} (the name {names[int(label)]!r}, line {int(label) + 1} of the "
                   "names)")
        if only_name and not ids_of_others:
            reading += f", and row {only_name[1]}: {only_name[0]!r} is a name but no id"
    else:
        reading = f"is a name but no id (the ids are 0-{len(names) - 1})"
    shown = ", ".join(map(repr, numbers[:4])) + (", ..." if len(numbers) > 4 else "")
    raise DataLoadError(f"{path}: row {row}: label {label!r} {reading}; data.label_names holds numbers ({shown}), so "
                        "a number in the data can be an id or a name: set data.label_values: ids (numbers count "
                        "the names from 0) or data.label_values: names (numbers are the names)")


#: separators a label list is written with besides the configured one
_OTHER_SEPARATORS = ("|", ";", ",", "/", "\t", " ")

#: separators that also join the parts of one name: a path (``billing/refund``, ``billing/invoice``) or a place
#: (``Portland, OR``) keeps a shared part in the same place, while list items move; a space joins words
#: (``very positive``, ``very negative``), so a shared word says nothing
_IN_NAMES = {",": "same place", "/": "same place", " ": "always"}


def _setting(separator: str) -> str:
    """``separator`` as a YAML value to paste (``'|'``; a tab as ``"\\t"``, which single quotes would not escape)."""
    return repr(separator) if separator.isprintable() else json.dumps(separator)


def _pieces_recur(joined: list[str], separator: str) -> bool:
    """Whether a piece recurs in two different labels split at ``separator`` (``joy|anger`` and ``anger|fear``
    share ``anger``): lists joined with another separator, even where no label is ever seen alone."""
    kind = _IN_NAMES.get(separator)
    if kind == "always":
        return False
    owners: dict[str, set[str]] = {}
    places: dict[str, set[int]] = {}
    for label in joined:
        pieces = [piece.strip() for piece in label.split(separator) if piece.strip()]
        if len(pieces) < 2:
            continue
        for place, piece in enumerate(pieces):
            owners.setdefault(piece, set()).add(label)
            places.setdefault(piece, set()).add(place)
    return any(len(labels) >= 2 and (kind != "same place" or len(places[piece]) >= 2)
               for piece, labels in owners.items())


def _check_separator(seen: list[str], separator: str, joined_here: int = 0) -> None:
    """A LabelSetError when the inferred labels look like lists joined with another separator (``a|b`` read with
    ``,``): each such combination would silently become a class of its own. They do when every piece of the joined
    labels is also seen alone, or when pieces recur across joined labels (see :func:`_pieces_recur`).

    ``joined_here``: the cells ``separator`` itself split into two or more labels. A file that mostly joins with it
    and has a few cells joined otherwise (``joy;fear`` among hundreds of ``joy,anger``) is no file of the other
    separator: switching to it, as the error said, broke every other multi-label cell (and the error then said to
    switch back); those few cells are left to the rare-label and label-set rules, which name them."""
    distinct = set(seen)
    for other in _OTHER_SEPARATORS:
        if other == separator:
            continue
        joined = [label for label in distinct if other in label]
        if len(joined) < 2 or sum(other in label for label in seen) <= joined_here:
            continue
        parts = {part.strip() for label in joined for part in label.split(other) if part.strip()}
        # every piece of a joined label is itself a label seen alone: a list, not a name like "C++/C#"
        if parts <= distinct or _pieces_recur(joined, other):
            from tuneline.kinds.classification import LabelSetError

            shown = ", ".join(repr(label) for label in sorted(joined)[:3])
            raise LabelSetError(f"labels such as {shown} look like several labels joined with {other!r}, but "
                                f"data.label_separator is {separator!r}: set data.label_separator: "
                                f"{_setting(other)} (or list the real labels in data.labels)")


def _check_separator_known(unknown: list[str], separator: str, known: set[str], joined_here: int = 0) -> None:
    """A LabelSetError when labels outside a configured set (``data.labels`` / ``data.label_names``) are known
    labels or ids joined with another separator (``8|20`` read with ``,``): otherwise every multi-label row is
    quarantined as "not in the label set" and the message points at the label names, not the separator.

    ``joined_here``: the cells ``separator`` itself split into two or more labels; when it joins at least as many
    as the other one, the few other cells (``1;2`` among ``1,3`` rows) are quarantined by row, not made a reason to
    switch separators (which broke every other multi-label row and then asked to switch back)."""
    for other in _OTHER_SEPARATORS:
        if other == separator:
            continue
        cells = [label for label in unknown if other in label
                 and len(parts := [p.strip() for p in label.split(other) if p.strip()]) >= 2
                 and all(part in known for part in parts)]
        joined = sorted(set(cells))
        if joined and len(cells) > joined_here:
            from tuneline.kinds.classification import LabelSetError

            shown = ", ".join(repr(label) for label in joined[:3])
            raise LabelSetError(f"labels such as {shown} are several known labels joined with {other!r}, but "
                                f"data.label_separator is {separator!r}: set data.label_separator: "
                                f"{_setting(other)}")


def _cells_joined(source: pd.DataFrame | None, known: set[str] | None = None) -> int:
    """The train cells read as two or more labels (of ``known``, where given): those data.label_separator joined."""
    if source is None:
        return 0
    return sum(isinstance(row, list) and len(row) >= 2
               and (known is None or all(isinstance(label, str) and label in known for label in row))
               for row in source["label"])


def looks_like_one_indicator_column(rows: Any) -> bool:
    """Whether the label lists are a single 0/1 column read as labels: every row with a label has exactly one, and
    the labels are exactly ``0`` and ``1`` (a one-hot ``toxic`` column given as data.label_column)."""
    lists = [row for row in rows if isinstance(row, list) and row]
    return bool(lists) and all(len(row) == 1 and isinstance(row[0], str) for row in lists) \
        and {row[0] for row in lists} == {"0", "1"}


def _warn_indicator_column(rows: Any, column: str, one_hot: list[str] | None = None) -> None:
    """Warn when the label column looks like one 0/1 indicator column: it would train two classes "0" and "1".
    ``one_hot``: the file's 0/1 columns when the label column is one of several, which the warning names for
    ``data.label_columns``."""
    if looks_like_one_indicator_column(rows):
        from tuneline.common import task_logger

        fix = (f"the file has {len(one_hot)} such 0/1 columns ({_listed_columns(one_hot)}): read them as one "
               f"label each with data.label_columns: [{_listed_columns(one_hot)}]" if one_hot else
               "turn one indicator column per label into such a column, or set data.label_columns to the 0/1 "
               "columns (one per label)")
        task_logger().warning(
            "every label in data.label_column %r is 0 or 1, one per row: this looks like one 0/1 indicator column, "
            "which multi-label would train as two classes '0' and '1'. Multi-label data gives all of a text's labels "
            "in one column: a list (JSONL/Parquet, or [\"toxic\", \"insult\"] in a CSV cell) or a delimited string "
            "such as toxic,insult (data.label_separator); %s; or use task: classification for a single yes/no label",
            column, fix)


def _warn_unnamed_ids(labels: list[str], column: str) -> None:
    """Warn when every inferred label is a whole number (three or more of them, ``0 ... 27``): ids exported without
    their names (a Hugging Face dataset's ``labels: [3, 27]``) trained and reported as classes "3" and "27", and the
    registered model answered numbers, with no word that names were available to give."""
    if len(labels) < 3 or not all(label.isdigit() for label in labels):
        return
    from tuneline.common import task_logger

    shown = ", ".join(sorted(labels, key=int)[:4]) + (", ..." if len(labels) > 4 else "")
    task_logger().warning(
        "every label in data.label_column %r is a whole number (%s; %d labels): they are trained and reported as the "
        "names %s; if they are class ids, name them with data.label_names (the names in id order, or a file of one "
        "name a line, line number = id)", column, shown, len(labels), shown)


#: first lines of a label names file that name the column instead of being label 0 (compared case-insensitively)
_HEADER_WORDS = frozenset({"label", "labels", "name", "names", "label_name", "label_names", "emotion", "emotions",
                           "class", "classes", "category", "categories", "tag", "tags"})


def _refuse_columns_without_a_one(train: pd.DataFrame | None, columns: list[str]) -> None:
    """A LabelSetError naming the ``data.label_columns`` that hold no 1 in train: as a configured label that never
    occurs, such a label could not be learned (said in terms of the columns, not of data.labels)."""
    if train is None or not len(train):
        return
    seen = {label for row in train["label"] if isinstance(row, list) for label in row}
    absent = [column for column in columns if column not in seen]
    if absent:
        raise LabelSetError(f"label column(s) {absent} hold no 1 in the training data, so the model cannot learn "
                            "those labels: add training rows that have them, or leave the columns out of "
                            "data.label_columns")


def _refuse_header_line(data: MultilabelData, names: list[str] | None, largest_id: int | None) -> None:
    """A DataLoadError when the label names file starts with a header (``label``, ``emotion``, ...) that shifts
    every id by one: its first line is such a word and it has exactly one line more than the ids in the data need
    (largest id + 2). Read as it is, id 0 became the class ``label`` and the last name "never occurred"."""
    if names is None or isinstance(data.label_names, list) or largest_id is None:
        return
    if names[0].strip().casefold() in _HEADER_WORDS and len(names) == largest_id + 2:
        raise DataLoadError(f"{data.label_names}: its first line {names[0]!r} looks like a header, not the name of "
                            f"label 0: the file has {len(names)} lines and the largest label id in the data is "
                            f"{largest_id}, so id 0 would be {names[0]!r} and every other id the name meant for the "
                            "id before it; remove the first line (line number = id, from 0)")


def _largest_id(values: list[Any], separator: str) -> int | None:
    """The largest label id (a label of ASCII digits) in a raw label column, None when it holds none."""
    ids = [int(label) for value in values if isinstance(parsed := parse_labels(value, separator, None), list)
           for label in parsed if isinstance(label, str) and label.isascii() and label.isdecimal()]
    return max(ids) if ids else None


def _items(value: object) -> list[Any] | None:
    """A label value as the list of its items: a list, tuple or array (JSONL, Parquet) or a cell that spells one
    (``[0, 1, 0]``, numpy's ``[0 1 0]``); None for anything else."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    if isinstance(value, str) and _looks_listed(value.strip()):
        listed = _listed(value.strip())
        return listed if isinstance(listed, list) else None
    return None


def _is_bit(item: object) -> bool:
    """0 or 1 as a multi-hot position or an indicator holds it: an integer, a boolean, or a float 0.0/1.0."""
    return isinstance(item, (bool, np.bool_)) or (
        isinstance(item, numbers.Real) and not isinstance(item, (str, bytes)) and item in (0, 1))


def multi_hot_width(values: list[Any], names_count: int | None = None) -> int | None:
    """The length of the multi-hot vectors a label column holds, or None when it holds no such vectors.

    Hugging Face datasets and sklearn's ``MultiLabelBinarizer`` write a text's labels as one 0/1 per label, position
    = label id (``[0, 0, 1, 0, ...]``); read as label ids, every row had the labels ``0`` and ``1``. A column is such
    vectors when every value (but missing ones and ``[]``) is a list of 0/1 (integers, booleans, 0.0/1.0), the most
    common length is at least 2, and the lists cannot be sets of ids: one repeats a value (``[0, 0, 1]``) or holds
    booleans. That most common length is the width; rows of another length are the caller's to reject, except for
    width 2, which must be every row's (``[0, 1]`` beside ``[1]`` and one ``[1, 1]`` are more likely ids).

    A column of only ``[1, 0]`` and ``[0, 1]`` (two labels, one a row: a test file without a row of both or of none,
    Keras' ``to_categorical``) is vectors too, unless ``names_count`` (data.label_names) says there are other than
    two labels: read as ids, every row had both labels, the vectors' positions lost without a word.
    """
    lengths: Counter = Counter()
    could_be_ids = True
    for value in values:
        items = _items(value)
        if items is None:
            if isinstance(value, dict) or normalize_label(value) != (None, None):
                return None
            continue  # missing
        if not all(_is_bit(item) for item in items):
            return None
        if items:
            lengths[len(items)] += 1
            could_be_ids = could_be_ids and len({int(item) for item in items}) == len(items) \
                and not any(isinstance(item, (bool, np.bool_)) for item in items)
    if not lengths or (could_be_ids and (set(lengths) != {2} or names_count not in (None, 2))):
        return None
    width = lengths.most_common(1)[0][0]
    return width if width > 2 or (width == 2 and len(lengths) == 1) else None


def _labels_of_object(value: dict) -> list[str] | None:
    """The keys of ``{"joy": 1, "anger": 0}`` / ``{"joy": true}`` whose value is 1 or true (a label name → applies
    mapping), None for an object of anything else."""
    if all(isinstance(key, str) and _is_bit(flag) for key, flag in value.items()):
        return [key for key, flag in value.items() if flag]
    return None


def _shown(value: object) -> str:
    """A label value for the quarantine's value column (JSON where it can be, at most VALUE_LIMIT characters)."""
    try:
        text = json.dumps(list(value) if isinstance(value, (tuple, np.ndarray)) else value, ensure_ascii=False,
                          default=lambda item: item.item() if isinstance(item, np.generic) else str(item))
    except (TypeError, ValueError):
        text = repr(value)
    return text[:VALUE_LIMIT]


def _unreadable(value: object, width: int | None) -> tuple[str, str] | None:
    """``(rule, detail)`` for a label value that is read as no label list, None for one that is."""
    if width is not None:
        items = _items(value)
        if items and len(items) != width:
            return ("multi_hot_vector_length",
                    f"labels is a multi-hot vector of {len(items)} positions, the other rows of this file have "
                    f"{width}; write one 0/1 per label in every row")
        return None
    if isinstance(value, dict) and _labels_of_object(value) is None:
        return ("labels_are_list_of_strings",
                f"labels is an object ({_shown(value):.120}), not a list; write a list of the label names that apply "
                "([\"joy\", \"anger\"]), or an object of label name: true/false (or 1/0)")
    if isinstance(value, (list, tuple, np.ndarray)) and any(
            isinstance(item, (list, tuple, dict, np.ndarray)) for item in value):
        return ("labels_are_list_of_strings",
                f"labels is a list of lists or objects ({_shown(value):.120}); write one flat list of the label names "
                "that apply ([\"joy\", \"anger\"])")
    return None


def read_label_column(values: list[Any], rows: list[int], path: Path, data: MultilabelData,
                      names: list[str] | None, fmt: str = "csv") -> tuple[list[Any], list[dict]]:
    """The label column of one file as label lists (see :func:`parse_labels`) for the rows kept, and the
    quarantine records of the rows that are read as none.

    Multi-hot vectors (:func:`multi_hot_width`) become their ids, position i → id ``i``, mapped through
    ``data.label_names`` as written ids are (an all-zero vector is a row with no label); an object of label name →
    1/0 or true/false is the names it flags. An object of anything else, a list of lists and a vector of another
    length are quarantined with a detail that says what to write.

    Ids map to names as ``data.label_values`` says, decided for the whole file (:func:`refuse_ids_or_names`), not
    label by label; a vector's positions are ids whatever the names look like (position 1 of names ``1 2 3`` is
    ``2``, though ``1`` is a name too). With ``label_values: ids``, a number past the last name is quarantined by
    row: it would otherwise be taken for a name that is a number.

    In a JSONL or Parquet file (``fmt``) a null or absent label is passed on as None, for the contract to quarantine
    as missing (``not_nullable``): it was read as ``[]``, kept as a row with no label under
    ``data.allow_empty_labels`` (QA); an empty CSV/TSV cell is the empty delimited string, no label.
    """
    width = multi_hot_width(values, len(names) if names is not None else None)
    if names and names[0].strip().casefold() in _HEADER_WORDS:
        _refuse_header_line(data, names, width - 1 if width else _largest_id(values, data.label_separator))
    if width is not None:
        if names is not None and len(names) != width:
            first = next(row for value, row in zip(values, rows) if (items := _items(value)) and len(items) == width)
            raise DataLoadError(f"{path}: row {first}: data.label_column {data.label_column!r} holds multi-hot "
                                f"vectors of {width} positions (one 0/1 per label id), but data.label_names has "
                                f"{len(names)} names: give one name per position")
        from tuneline.common import task_logger

        task_logger().info("%s: data.label_column %r read as multi-hot vectors of %d positions (one 0/1 per label, "
                           "as Hugging Face datasets and sklearn's MultiLabelBinarizer write them): position i is "
                           "label id i%s", path, data.label_column, width,
                           ", named by data.label_names" if names is not None else "")
    parsed: list[tuple[object, int, object, bool]] = []  # (labels, row, value as written, from a vector's positions)
    malformed = []
    for value, row in zip(values, rows):
        reason = _unreadable(value, width)
        if reason is not None:
            malformed.append({"source_row": int(row), "rule": reason[0], "column": data.label_column,
                              "value": _shown(value), "detail": reason[1]})
        elif fmt in _TYPED_FORMATS and _is_missing(value):
            parsed.append((None, int(row), value, False))  # not written: the contract's not_nullable, never []
        elif width is not None and (items := _items(value)):
            ids = [i for i, bit in enumerate(items) if bit]
            labels = sorted({names[i] for i in ids}) if names else parse_labels([str(i) for i in ids], "", None)
            parsed.append((labels, int(row), value, True))
        else:
            labels = parse_labels(_labels_of_object(value) if isinstance(value, dict) else value,
                                  data.label_separator, None)
            parsed.append((labels, int(row), value, False))
    if not names:
        return [labels for labels, *_ in parsed], malformed
    written = [(labels, row) for labels, row, _, vector in parsed if not vector and _is_label_list(labels)]
    if data.label_values == "auto":
        refuse_ids_or_names(((label, row) for labels, row in written for label in labels), names, path)
    # a number past the last name is no id; with ``auto`` it is no name either unless the names hold it: read as a
    # label of its own it became a class "99" (GoEmotions has ids 0-27), grown into the head by the loop (QA)
    known = set(names) if data.label_values == "auto" else set()
    beyond = {row: past for labels, row in written
              if (past := [label for label in labels if _is_number(label) and not _is_index(label, len(names))
                           and label not in known])} if data.label_values in ("ids", "auto") else {}
    counted = ("as data.label_values: ids counts them" if data.label_values == "ids" else
               "a number that is no name is read as an id")
    if beyond:
        malformed += [{"source_row": row, "rule": "label_id_in_range", "column": data.label_column,
                       "value": _shown(value),
                       "detail": f"label id(s) {beyond[row]} are past the last of the {len(names)} names in "
                                 f"data.label_names (ids 0-{len(names) - 1}, {counted})"}
                      for _, row, value, vector in parsed if not vector and row in beyond]
        parsed = [item for item in parsed if item[3] or item[1] not in beyond]
    return [sorted(set(named(labels, names, data.label_values))) if not vector and _is_label_list(labels)
            else labels for labels, _, _, vector in parsed], malformed


def _is_label_list(labels: object) -> bool:
    """Whether :func:`parse_labels` read ``labels`` as a list of label names: it hands back a value it cannot read
    unchanged, and that may be a list too (``[true]``, ``[null, 1]``), which mapped to ``data.label_names`` crashed
    on its boolean or null (QA); left as it is, the contract quarantines it as ``labels_are_list_of_strings``."""
    return isinstance(labels, list) and all(isinstance(label, str) for label in labels)


#: formats whose label value is typed: ``[]`` is written for "no label" there, so a null or an absent key is a label
#: not written (a CSV/TSV/Excel cell holds a delimited string, and its empty cell is the empty list)
_TYPED_FORMATS = ("jsonl", "parquet")


def _is_missing(value: object) -> bool:
    """A value not written (None, NaN, pd.NA: a JSON null or an absent key); ``""`` and ``[]`` are written."""
    return not isinstance(value, str) and normalize_label(value) == (None, None)


# --- one-hot label columns ----------------------------------------------------------------------------------------

#: how many column names a message lists before "..."
SHOWN_COLUMNS = 6

#: the canonical frame's attribute naming the file's 0/1 columns, set by the reader when ``data.label_column`` is one
#: of several (label_set's warning then names them all for ``data.label_columns``)
ONE_HOT_COLUMNS_ATTR = "tuneline_one_hot_columns"

#: codes of :func:`one_hot_codes` for a cell that is no 0 or 1
_MISSING, _NOT_A_BIT = -1, -2


def one_hot_bit(value: object) -> int:
    """A one-hot cell as 1 or 0 (1/0, 1.0/0.0, true/false, written or typed), :data:`_MISSING` for an empty one
    (never taken for 0: a blank in a one-hot export is a lost value, not a "no") and :data:`_NOT_A_BIT` else."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, str) and value.strip().casefold() in ("true", "false"):
        return int(value.strip().casefold() == "true")
    label, rule = normalize_label(value)
    if rule is None and label is None:
        return _MISSING
    return int(label) if label in ("0", "1") else _NOT_A_BIT


def one_hot_codes(values: pd.Series) -> np.ndarray:
    """:func:`one_hot_bit` of every value, computed once per distinct value (a column holds two or three)."""
    try:
        codes, distinct = pd.factorize(values, use_na_sentinel=True)
    except TypeError:  # a list or object cell (JSONL) is unhashable
        return np.array([one_hot_bit(value) for value in values], dtype=np.int8)
    table = np.array([one_hot_bit(value) for value in distinct] + [_MISSING], dtype=np.int8)
    return table[codes]  # code -1 (missing) picks the last entry


def zero_one_columns(raw: pd.DataFrame, skip: set[str], booleans: bool = False) -> list[str]:
    """The columns of a file whose every value (missing ones aside) is the number 0 or 1, in file order: what
    one-hot label columns look like. True/false columns are left out unless ``booleans``: GoEmotions'
    ``example_very_unclear`` is one, and no label to suggest for ``data.label_columns``; but its trues flag a row
    as its 1s do, which :func:`_labels_only_in_unlisted_columns` must see (QA: a row whose only flag was a ``True``
    there was kept as one with no label, the same row written ``1`` was quarantined)."""
    found = []
    for column in raw.columns:
        if column in skip or column in ("source_row", "source_line"):
            continue
        try:
            distinct = pd.unique(raw[column].dropna())
        except TypeError:
            continue
        if booleans:  # 1/0, 1.0/0.0, true/false (typed, or written in any case: TRUE, False), as one_hot_bit reads
            if len(distinct) and all(one_hot_bit(value) in (0, 1) for value in distinct):
                found.append(str(column))
            continue
        bits = [normalize_label(value) for value in distinct if not isinstance(value, (bool, np.bool_))]
        if len(bits) == len(distinct) and bits and all(label in ("0", "1") for label, _ in bits):
            found.append(str(column))
    return found


def _listed_columns(columns: list[str]) -> str:
    """``a, b, c, d, e, f, ...`` (at most :data:`SHOWN_COLUMNS` names)."""
    return ", ".join(columns[:SHOWN_COLUMNS]) + (", ..." if len(columns) > SHOWN_COLUMNS else "")


def _read_table(path: Path, fmt: str, data: MultilabelData) -> Any:
    """The file as the reader reads every table (:func:`tuneline.readers.read_table`): a ReadResult."""
    from tuneline.readers import read_table

    return read_table(path, fmt, encoding=data.encoding, header=data.header, on_decode_error=data.on_decode_error,
                      skip_lines=data.skip_lines, tsv_quotes=data.tsv_quotes, sheet=data.sheet)


def one_hot_hint(path: Path, fmt: str, data: MultilabelData) -> str | None:
    """The message for a file without ``data.label_column`` that has two or more 0/1 columns (a one-hot file read
    without ``data.label_columns``: following "set data.label_column" trained one of them as labels "0" and "1");
    None for any other file."""
    try:
        raw = _read_table(path, fmt, data).frame
    except DataLoadError:
        return None
    if matched_columns(raw, {"label": data.label_column})["label"] in raw.columns:
        return None
    text = matched_columns(raw, {"text": data.text_column})["text"]
    columns = zero_one_columns(raw, {text})
    nearly = nearly_zero_one_columns(raw, {text, *columns})
    if not columns or len(columns) + len(nearly) < 2:
        return None
    if nearly:  # following the hint without them dropped those labels silently (exploratory QA)
        strays = ", ".join(f"{column} but for its line {line} ({excerpt(value, 30)})" for column, (line, value)
                           in nearly.items())
        everything = [str(c) for c in raw.columns if c in set(columns) | set(nearly)]
        return (f"{path} has no column {data.label_column!r}; its columns {_listed_columns(columns)} hold only 0/1, "
                f"as one-hot label columns do, and so does {strays}: fix those cells to 0 or 1, then set "
                f"data.label_columns: [{_listed_columns(everything)}]")
    return (f"{path} has no column {data.label_column!r}; its columns {_listed_columns(columns)} ({len(columns)} "
            f"of them) hold only 0/1, as one-hot label columns do: set data.label_columns: "
            f"[{_listed_columns(columns)}]")


def nearly_zero_one_columns(raw: pd.DataFrame, skip: set[str], share: float = 0.9) -> dict[str, tuple[int, Any]]:
    """The columns (not in ``skip``) of which at least ``share`` of the values, missing ones aside, are the number 0
    or 1 but not all: a one-hot label column with a stray cell (``yes``, ``x``, ``2``). Each with the line of its
    first stray cell and that value, so the message can point at it."""
    found: dict[str, tuple[int, Any]] = {}
    for column in raw.columns:
        if column in skip or column in ("source_row", "source_line"):
            continue
        values = raw[column].dropna()
        if values.empty:
            continue
        try:
            ok = values.map(lambda v: not isinstance(v, (bool, np.bool_)) and normalize_label(v)[0] in ("0", "1"))
        except TypeError:
            continue
        if share <= ok.mean() < 1.0:
            first = ok.index[~ok.to_numpy(dtype=bool)][0]
            line = raw["source_line"].get(first, first + 1) if "source_line" in raw.columns else first + 1
            found[str(column)] = (int(line), values[first])
    return found


def indicator_and_other_columns(path: Path, fmt: str, data: MultilabelData) -> list[str]:
    """The file's 0/1 columns, ``data.label_column`` among them, when it is one of several; else ``[]``."""
    raw = _read_table(path, fmt, data).frame
    text = matched_columns(raw, {"text": data.text_column})["text"]
    columns = zero_one_columns(raw, {text})
    return columns if len(columns) >= 2 else []


def read_one_hot(path: Path, fmt: str, data: MultilabelData) -> ReadRecords:
    """A file of one 0/1 column per label (``data.label_columns``) as canonical rows: each row's labels are the
    names of its columns holding 1. A row with a cell that is no 0/1 (``yes``, ``2``) or an empty one is quarantined
    (``one_hot_label_is_0_or_1``, ``one_hot_label_is_missing``) naming the column and the value."""
    result = _read_table(path, fmt, data)
    raw = result.frame
    text = matched_columns(raw, {"data.text_column": data.text_column})
    columns_or_error(raw, path, text, fmt, data)
    found = matched_columns(raw, {label: label for label in data.label_columns})
    missing = [label for label, column in found.items() if column not in raw.columns]
    if missing:
        shown = [c for c in raw.columns if c not in ("source_row", "source_line")]
        raise DataLoadError(f"{path} has no column(s) {missing} of data.label_columns (its columns: {shown})")
    read = [text["data.text_column"], *found.values()]
    if len(set(read)) < len(read):  # names that differ only in case or spaces matching one header
        raise DataLoadError(f"{path}: data.text_column and data.label_columns name the column(s) "
                            f"{sorted(c for c, n in Counter(read).items() if n > 1)} twice; name each column once")
    codes = np.column_stack([one_hot_codes(raw[column]) for column in found.values()])
    names, columns = list(found), list(found.values())
    bad = (codes < 0).any(axis=1)
    malformed = with_delimiter_hints([*result.malformed], path, fmt, data, delimiter_hint)
    for i in np.flatnonzero(bad):
        j, *more = np.flatnonzero(codes[i] < 0)
        value = raw[columns[j]].iloc[i]
        missing_cell = codes[i, j] == _MISSING
        detail = (f"one-hot label column {columns[j]!r} is empty; write 0 or 1 (an empty cell is not read as 0)"
                  if missing_cell else f"one-hot label column {columns[j]!r} holds {excerpt(value)}, not 0 or 1 "
                                       "(nor true/false)")
        if more:
            detail += f"; this row's other cells that are no 0/1: {_listed_columns([columns[k] for k in more])}"
        malformed.append({"source_row": int(raw["source_row"].iloc[i]), "column": columns[j],
                          "rule": "one_hot_label_is_missing" if missing_cell else "one_hot_label_is_0_or_1",
                          "value": None if missing_cell else _shown(value), "detail": detail})
    bad |= _labels_only_in_unlisted_columns(raw, path, text["data.text_column"], columns, codes, bad, data, malformed)
    keep = ~bad
    frame = pd.DataFrame({"text": as_objects(raw[text["data.text_column"]][keep]).reset_index(drop=True)})
    frame["label"] = pd.Series([sorted(names[j] for j in np.flatnonzero(row == 1)) for row in codes[keep]],
                               dtype=object)
    frame["source_file"] = str(path)
    frame["source_row"] = raw["source_row"][keep].astype("int64").reset_index(drop=True)
    return ReadRecords(frame=frame, malformed=malformed, records_seen=result.records_seen,
                       source_lines=result.record_lines())


def _labels_only_in_unlisted_columns(raw: pd.DataFrame, path: Path, text: str, columns: list[str],
                                     codes: np.ndarray, bad: np.ndarray, data: MultilabelData,
                                     malformed: list[dict]) -> np.ndarray:
    """The rows (a mask) whose only 1s are in 0/1 columns that ``data.label_columns`` leaves out, each added to
    ``malformed`` as ``label_in_unlisted_column``, after one warning that names those columns.

    A column left out of the list is no label, and its 1s were dropped without a word: a row tagged only
    ``embarrassment`` was quarantined as "the row has no label", or, with ``data.allow_empty_labels``, trained as a
    text with no emotion at all (exploratory QA; a JSON-list file quarantines the same rows as
    ``label_in_label_set``). With ``allow_empty_labels`` such rows are quarantined too: their label is unknown to
    this label set, not absent. A 0/1 column that is no label at all (a flag) is named by the warning, to drop."""
    others = zero_one_columns(raw, {text, *columns}, booleans=True)
    if not others:
        return np.zeros(len(raw), dtype=bool)
    ones = np.column_stack([one_hot_codes(raw[column]) == 1 for column in others])
    holding = [column for j, column in enumerate(others) if ones[:, j].any()]
    if not holding:
        return np.zeros(len(raw), dtype=bool)
    only_there = ones.any(axis=1) & ~(codes == 1).any(axis=1) & ~bad
    from tuneline.common import task_logger

    task_logger().warning(
        "%s: its 0/1 column(s) %s (%d) are not in data.label_columns, so their 1s (in %d rows) are not read as "
        "labels, and the %d row(s) whose only 1s are there are quarantined (label_in_unlisted_column): add the "
        "column(s) to data.label_columns to train those labels, or drop them from the file if they are no labels",
        path, _listed_columns(holding), len(holding), int(ones.any(axis=1).sum()), int(only_there.sum()))
    for i in np.flatnonzero(only_there):
        held = [others[j] for j in np.flatnonzero(ones[i])]
        malformed.append({"source_row": int(raw["source_row"].iloc[i]), "column": held[0],
                          "rule": "label_in_unlisted_column", "value": None,
                          "detail": f"the row's only 1s are in column(s) {_listed_columns(held)}, which "
                                    "data.label_columns does not list; add them to data.label_columns, or drop the "
                                    "row"})
    return only_there


def multi_hot(rows: list[Any], labels: list[str]) -> np.ndarray:
    """Rows of label lists as a 0/1 matrix over ``labels`` (labels outside the set are ignored)."""
    index = {label: j for j, label in enumerate(labels)}
    out = np.zeros((len(rows), len(labels)), dtype=np.int8)
    for i, row in enumerate(rows):
        for label in row if isinstance(row, (list, tuple, np.ndarray)) else []:
            if label in index:
                out[i, index[label]] = 1
    return out


# --- metrics: one function for validation, test, champion, calibration and baselines -----------------------------

def matrix_scores(gold: np.ndarray, predicted: np.ndarray, present: np.ndarray | None = None) -> dict[str, float]:
    """Micro/macro/samples F1 and subset accuracy of two 0/1 matrices (rows: texts, columns: labels).

    Computed with numpy (equal to sklearn's ``f1_score(..., zero_division=0)`` for micro and macro; tested) because
    threshold fitting evaluates it hundreds of times. The macro mean runs over the labels that occur in gold
    (``present``, when given, fixes that set: the bootstrap passes the full test set's), as in the single-label
    kind: a label the rows do not hold says nothing about the model on them (counting it as F1 0 scored a perfect
    model 0.5 on a test split holding half of the labels), and a set that also took the predicted labels moved with
    the model's own mistakes, so two models were averaged over different labels. A row with no gold and no predicted label has
    samples-F1 1 (it is exactly right; sklearn would count 0, which punishes correct abstentions where empty rows
    are allowed).
    """
    gold, predicted = np.asarray(gold, dtype=bool), np.asarray(predicted, dtype=bool)
    tp = (gold & predicted).sum(axis=0).astype(np.float64)
    fp = (~gold & predicted).sum(axis=0).astype(np.float64)
    fn = (gold & ~predicted).sum(axis=0).astype(np.float64)
    denominator = 2 * tp + fp + fn
    per_label = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    present = gold.any(axis=0) if present is None else np.asarray(present, dtype=bool)
    micro_den = denominator.sum()
    row_tp = (gold & predicted).sum(axis=1)
    row_den = gold.sum(axis=1) + predicted.sum(axis=1)
    per_row = np.divide(2 * row_tp, row_den, out=np.ones(len(gold), dtype=np.float64), where=row_den > 0)
    return {
        "micro_f1": float(2 * tp.sum() / micro_den) if micro_den else 0.0,
        "macro_f1": float(per_label[present].mean()) if present.any() else 0.0,
        "samples_f1": float(per_row.mean()) if len(per_row) else 0.0,
        "subset_accuracy": float((gold == predicted).all(axis=1).mean()) if len(gold) else 0.0,
    }


#: predicted labels per text over gold's at which the fitted thresholds are named in a warning
MANY_LABELS_RATIO = 3.0


def warn_many_labels(gold: np.ndarray, predicted: np.ndarray, metric: str, per_label: bool) -> bool:
    """Warn (True) when the fitted thresholds predict several times as many labels per text as the validation rows
    carry: the cut that maximises macro-F1 of a label the model ranks badly is "always": its F1 2p/(1+p) beats any
    cut that finds few of its rows, so per-label cuts for macro-F1 predicted 27.1 labels per GoEmotions text, against
    1.22 (metrics QA): right by the metric, useless to a reader of the predictions."""
    from tuneline.common import task_logger

    said, found = float(gold.sum(axis=1).mean()) if len(gold) else 0.0, float(predicted.sum(axis=1).mean()) \
        if len(predicted) else 0.0
    if not len(gold) or found <= max(MANY_LABELS_RATIO * said, said + 1.0):
        return False
    # only what would change something: the defaults (micro_f1, global) were advised to a run that used them (QA)
    advice = ([] if metric == "micro_f1" else ["gate.primary_metric: micro_f1"]) + \
        (["data.threshold: global"] if per_label else []) + ["more training (train.epochs, train.max_steps)"]
    task_logger().warning(
        "the %s thresholds fitted for %s predict %.1f labels per validation text, where the rows carry %.2f: the "
        "model ranks some labels too badly to cut them anywhere but low; consider %s",
        "per-label" if per_label else "global", metric, found, said,
        ", ".join(advice[:-1]) + (" or " if len(advice) > 1 else "") + advice[-1])
    return True


def fit_thresholds(proba: np.ndarray, gold: np.ndarray, metric: str, per_label: bool = False) -> np.ndarray:
    """One threshold per column (all equal for a global fit) that maximises the kind's ``metric`` on these rows.

    Global: the cut over every distinct probability (a quantile grid on big splits) that maximises ``metric``.
    Per label: starting from the global cut, each label's cut in turn is moved to the value that maximises the same
    ``metric`` with the other labels' cuts fixed, and only when that strictly improves it (one pass of coordinate
    ascent). For macro-F1 that is each label's own best F1; for micro-F1 it also weighs the false positives a loose
    cut on a rare, badly ranked label would add, so such a label keeps the global cut instead of overfitting the few
    validation positives it has.
    """
    from tuneline.embeddings import best_threshold

    proba, gold = np.asarray(proba), np.asarray(gold, dtype=bool)
    objective = lambda g, p: matrix_scores(g, p)[metric]  # noqa: E731
    overall = best_threshold(proba, gold, objective)
    thresholds = np.full(proba.shape[1], overall, dtype=np.float64)
    if not per_label or not len(proba):
        return thresholds
    predicted = proba >= overall
    best_value = objective(gold, predicted)
    for j in range(proba.shape[1]):
        candidates = np.unique(proba[:, j])
        if len(candidates) > 256:
            candidates = np.unique(np.quantile(proba[:, j], np.linspace(0, 1, 257)))
        keep = predicted[:, j].copy()
        for i, threshold in enumerate(candidates):
            predicted[:, j] = proba[:, j] >= threshold
            value = objective(gold, predicted)
            if value > best_value + 1e-12:  # the cut in the middle of the gap below it predicts the same here
                middle = (candidates[i - 1] + threshold) / 2 if i > 0 else threshold
                best_value, thresholds[j], keep = value, float(middle), predicted[:, j].copy()
        predicted[:, j] = keep
    return thresholds


# --- the kind ----------------------------------------------------------------------------------------------------

class MultilabelKind(ClassificationKind):
    name = "multilabel_classification"
    agreement_metric = "micro_f1"  # micro: a batch of some classes only moves it no more than its rows do
    config_model = MultilabelConfig
    problem_type = "multi_label_classification"
    pyfunc_file = "multilabel_classifier.py"
    labels_per_row_any = True

    # --- data -------------------------------------------------------------------------------------------------
    def read(self, path: Path, fmt: str, data: MultilabelData) -> ReadRecords:
        """The canonical rows of one file: its label column parsed (:func:`read_label_column`), or its one-hot
        ``data.label_columns`` turned into the same label lists (:func:`read_one_hot`), so that everything after
        reading sees one layout."""
        if data.label_columns:
            return read_one_hot(path, fmt, data)
        try:
            frame, malformed, seen, lines = self.read_canonical(path, fmt, data, {"text_column": data.text_column})
        except DataLoadError as error:
            hint = one_hot_hint(path, fmt, data) if f"no column {data.label_column!r}" in str(error) else None
            if hint is None:
                raise
            raise DataLoadError(hint) from None
        labels, unreadable = read_label_column(frame["label"].tolist(), frame["source_row"].tolist(), path, data,
                                               read_label_names(data), fmt)
        if unreadable:
            unreadable_rows = {record["source_row"] for record in unreadable}
            frame = frame[~frame["source_row"].isin(unreadable_rows)].reset_index(drop=True)
        frame["label"] = pd.Series(labels, index=frame.index, dtype=object)
        frame = frame[["text", "label", "source_file", "source_row"]]
        if looks_like_one_indicator_column(labels):  # a one-hot file read by one of its columns
            frame.attrs[ONE_HOT_COLUMNS_ATTR] = indicator_and_other_columns(path, fmt, data)
        return ReadRecords(frame=frame, malformed=[*malformed, *unreadable], records_seen=seen, source_lines=lines)

    def delimiter_hint(self, data: MultilabelData) -> Any:
        """Label lists joined with the file's own delimiter (``t c 1,anger,sadness`` under ``text,labels``) are the
        likelier cause of extra fields: every multi-label row breaks, and the bare field count said nothing of
        quoting or data.label_separator. A text holding it is named too."""
        def hint(delimiter: str) -> str:
            if data.label_separator != delimiter:
                return delimiter_hint(delimiter)
            other = "'|'" if delimiter != "|" else "';'"
            return (f"a label list joined with {delimiter!r} must be in double quotes (\"anger{delimiter}sadness\"), "
                    f"or joined with another separator set as data.label_separator (e.g. {other}); a text holding "
                    f"{delimiter!r} must be quoted too")
        return hint

    def prepare(self, frames: dict[str, pd.DataFrame], data: MultilabelData,
                quiet: bool = False, source: str = "") -> dict[str, pd.DataFrame]:
        """Fold label spellings as the single-label kind does, with ``data.label_names`` as the configured spellings
        when ``data.labels`` is not given: ``Joy``/``JOY`` in the data are the ``joy`` of GoEmotions' labels.txt
        (without it the most frequent spelling won, and every label_names entry looked absent from train)."""
        if not data.labels and (data.label_columns or data.label_names is not None):
            data = data.model_copy(update={"labels": data.label_columns or read_label_names(data)})
        return super().prepare(frames, data, quiet, source)

    def label_set(self, frames: dict[str, pd.DataFrame], data: MultilabelData,
                  primary_metric: str | None = None) -> list[str]:
        """``data.labels``, else ``data.label_columns`` or ``data.label_names``, else the labels seen in train often
        enough (sorted)."""
        names = read_label_names(data)
        source = next((frames[r] for r in LABEL_SOURCE_ROLES if r in frames), None)
        if source is not None and not data.label_columns:
            _warn_indicator_column(source["label"], data.label_column, source.attrs.get(ONE_HOT_COLUMNS_ATTR))
        if data.label_columns:  # data.labels too where a retraining run fixes the set it keeps
            labels = list(dict.fromkeys(str(label) for label in data.labels or data.label_columns))
            if not data.labels:
                _refuse_columns_without_a_one(source, labels)
        elif data.labels or names is not None:
            labels = list(dict.fromkeys(str(label) for label in data.labels)) if data.labels else names
            # '8|20' read with ',' is no label of the set: say which separator to set, not "not in the label set"
            known = set(labels) | set(names or []) | {str(i) for i in range(len(names or []))}
            _check_separator_known([label for row in (source["label"] if source is not None else [])
                                    if isinstance(row, list) for label in row
                                    if isinstance(label, str) and label not in known],
                                   data.label_separator, known, _cells_joined(source, known))
        else:
            seen = [label for row in (source["label"] if source is not None else [])
                    if isinstance(row, list) for label in row if isinstance(label, str)]
            joined_here = _cells_joined(source)
            _check_separator(seen, data.label_separator, joined_here)
            labels = frequent_labels(seen, data.min_examples_per_label, data.label_separator, joined_here)
            _warn_unnamed_ids(labels, data.label_column)
        # rows that are no label list yet (the contract rejects them later) must not break the presence check
        usable = {role: frame.assign(label=[v if isinstance(v, list) and all(isinstance(x, str) for x in v) else []
                                            for v in frame["label"]])
                  for role, frame in frames.items() if role in LABEL_SOURCE_ROLES}
        configured_by = ("data.labels" if data.labels else "data.label_columns" if data.label_columns
                         else "data.label_names")
        return checked_label_set(labels, usable, "label", label_names=True, configured_by=configured_by)

    def schema(self, labels: list[str], train_keys: list[str] | None, data: MultilabelData):
        from tuneline.schemas.multilabel_classification import multilabel_schema

        return multilabel_schema(labels, train_keys, data.allow_empty_labels)

    def describe_failures(self, quarantine: pd.DataFrame, frames: dict[str, pd.DataFrame],
                          labels: list[str], names: dict[str, str] | None = None, **context: Any) -> pd.DataFrame:
        """Name the unknown labels of ``label_in_label_set`` rows, and say what the other label rules want."""
        from tuneline.schemas.multilabel_classification import unknown_labels

        if quarantine.empty:
            return quarantine
        lookup = {(role, f, r): value for role, frame in frames.items()
                  for f, r, value in zip(frame["source_file"], frame["source_row"], frame["label"])}

        def detail(split: str, file: str, row: int, rule: str, current: object, column: object) -> object:
            value = lookup.get((split, file, row))
            if rule == "not_nullable":  # an empty text cell had no detail at all (loop QA)
                return f"{self.column_title(str(column), names)} is missing (an empty cell, or null)"
            if rule == "label_in_label_set":
                return (f"label(s) {unknown_labels(value, labels)} not in the label set ({len(labels)} labels); "
                        "check data.label_names / data.labels")
            if rule == "at_least_one_label":
                return "the row has no label; set data.allow_empty_labels: true to keep rows without labels"
            if rule == "labels_are_list_of_strings" and isinstance(value, str) and _looks_listed(value.strip()):
                return (f"labels {excerpt(value, 200)} are in brackets but spell no list of label names; write them "
                        "as a JSON list [\"a\", \"b\"], a Python or numpy list ['a', 'b'] / ['a' 'b'], a Postgres "
                        "array {a,b} or a delimited string a,b (data.label_separator)")
            if rule == "labels_are_list_of_strings":
                return f"labels {excerpt(value, 200)} are not a list of label names or a delimited string"
            return current

        details = [detail(*key) for key in zip(quarantine["split"], quarantine["source_file"],
                                               quarantine["source_row"], quarantine["rule"], quarantine["detail"],
                                               quarantine["column"])]
        return quarantine.assign(detail=details)

    def label_distribution(self, frame: pd.DataFrame) -> dict[str, int]:
        counts = Counter(label for row in frame["label"] if isinstance(row, list) for label in row)
        return {str(k): int(v) for k, v in sorted(counts.items())}

    # --- model ------------------------------------------------------------------------------------------------
    def encoder(self, tokenizer: Any, max_length: int, label2id: dict[str, int], config: TunelineConfig,
                model_inputs: dict[str, Any]):
        from functools import partial

        return partial(encode_multi_hot, tokenizer=tokenizer, max_length=max_length, label2id=label2id), \
            ["text", "label"]

    def encoder_settings(self, config: TunelineConfig) -> dict[str, Any]:
        return {"labels": "multi_hot_float"}

    # --- metrics ----------------------------------------------------------------------------------------------
    def score(self, gold: list[list[str]], predicted: list[list[str]], labels: list[str]) -> dict[str, float]:
        """The kind's metrics over the full label set (see :func:`matrix_scores`)."""
        return matrix_scores(multi_hot(gold, labels), multi_hot(predicted, labels))

    def per_class_scores(self, gold: list[list[str]], predicted: list[list[str]], labels: list[str]
                         ) -> dict[str, float]:
        """F1 of every label that occurs in ``gold`` (its own column of the multi-hot matrices)."""
        g, p = multi_hot(gold, labels), multi_hot(predicted, labels)
        out: dict[str, float] = {}
        for j, label in enumerate(labels):
            support = int(g[:, j].sum())
            if support:
                hits = int((g[:, j] & p[:, j]).sum()) if g.dtype == bool else int((g[:, j] * p[:, j]).sum())
                out[label] = 2 * hits / (support + int(p[:, j].sum()))
        return out

    def decode_logits(self, logits: Any, label_ids: Any, labels: list[str]) -> tuple[list[list[str]], list[list[str]]]:
        """Training-time validation: sigmoid > 0.5 (the calibrated threshold is fitted after training)."""
        chosen = np.asarray(logits, dtype=np.float64) > 0.0  # sigmoid(x) > 0.5  <=>  x > 0
        gold = np.asarray(label_ids) > 0.5
        as_names = lambda matrix: [[labels[j] for j in np.flatnonzero(row)] for row in matrix]  # noqa: E731
        return as_names(gold), as_names(chosen)

    def trainer_metrics(self, labels: list[str]) -> Any:
        """Validation during training: each metric at the global cut that is best for it on these rows, as
        calibration chooses the cut after training (:func:`fit_thresholds`).

        At the fixed 0.5 of :meth:`decode_logits` a model that already ranks the labels well but is not yet
        confident predicts no label: micro-F1 was 0 at every evaluation of a GoEmotions run while the loss fell
        from 0.53 to 0.19, so early stopping ended it at a tie of zeros and the best checkpoint was chosen among
        them. ``eval_threshold`` is the cut the primary metric's selection saw (micro-F1's)."""

        def compute(prediction: Any) -> dict[str, float]:
            logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
            proba = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))
            gold = np.asarray(prediction.label_ids) > 0.5
            out: dict[str, float] = {}
            for metric in self.metrics:
                cut = fit_thresholds(proba, gold, metric)[0]
                out[metric] = matrix_scores(gold, proba >= cut)[metric]
                if metric == "micro_f1":
                    out["threshold"] = float(cut)
            return out

        return compute

    #: A row is right only when its whole label set is: the gate compares subset accuracy with McNemar's test.
    per_row_metrics = ("subset_accuracy",)

    def subset_score(self, gold: list[list[str]], predicted: list[list[str]], labels: list[str], metric: str):
        """The same numbers as :meth:`score` on resampled rows, from multi-hot matrices built once (the bootstrap
        calls it a thousand times)."""
        gold_matrix, predicted_matrix = multi_hot(gold, labels), multi_hot(predicted, labels)
        present = gold_matrix.any(axis=0)  # fixed over all rows, so resamples stay comparable

        def score(indices: Any) -> float:
            return matrix_scores(gold_matrix[indices], predicted_matrix[indices], present)[metric]

        return score

    # --- calibration ------------------------------------------------------------------------------------------
    def calibrate(self, model_dir: Path, splits: Any, config: TunelineConfig, run: Any) -> dict[str, Any]:
        """Fit the decision threshold(s) on validation through the serving code; store them in ``config.json``."""
        predictor = self.load_predictor(model_dir)
        labels = list(predictor.labels)
        proba = predictor.predict_proba(splits.validation["text"].tolist(), batch_size=config.evaluate.batch_size)
        gold = multi_hot(self.gold(splits.validation), labels)
        per_label = config.data.threshold == "per_label"
        thresholds = fit_thresholds(proba, gold, config.primary_metric, per_label)
        stored: float | dict[str, float] = dict(zip(labels, map(float, thresholds))) if per_label \
            else float(thresholds[0])
        store_thresholds(Path(model_dir), stored)
        if run is not None:
            folder = Path(run.run_dir) / "evaluation"
            folder.mkdir(parents=True, exist_ok=True)
            plot_threshold_curve(proba, gold, thresholds, folder / "threshold_curve.png")
        fitted = matrix_scores(gold, proba >= thresholds[None, :])
        warn_many_labels(gold, proba >= thresholds[None, :], config.primary_metric, per_label)
        summary: dict[str, Any] = {f"validation.{config.primary_metric}": fitted[config.primary_metric]}
        if per_label:
            return {"threshold.min": float(thresholds.min()), "threshold.max": float(thresholds.max()),
                    "threshold.mean": float(thresholds.mean()), **summary, "thresholds": stored}
        return {"threshold": float(thresholds[0]), **summary}

    # --- evaluation and serving ---------------------------------------------------------------------------------
    def predictions_from_output(self, output: pd.DataFrame) -> tuple[list[Any], list[Any] | None]:
        return [sorted(labels) for labels in output["labels"]], list(output["scores"])

    def baselines(self, splits: Any, config: TunelineConfig) -> list[Evaluation]:
        out = [self.label_prior_baseline(splits, config)]
        if config.evaluate.zero_shot_baseline:
            out.append(self.zero_shot_baseline(splits, config))
        return out

    def label_prior_baseline(self, splits: Any, config: TunelineConfig) -> Evaluation:
        """Every text gets the labels whose training frequency clears a cut fitted on train (usually none, or the
        dominant label such as ``neutral``): what a model that ignores the text can do."""
        labels = splits.labels
        train_gold = multi_hot(self.gold(splits.train), labels)
        prior = train_gold.mean(axis=0)
        cut = fit_thresholds(np.tile(prior, (len(train_gold), 1)), train_gold, config.primary_metric)[0]
        predicted_row = [label for label, p in zip(labels, prior) if p >= cut]
        predicted = [list(predicted_row) for _ in range(len(splits.test))]
        return Evaluation("label_prior", self.score(self.gold(splits.test), predicted, labels), predicted)

    def zero_shot_baseline(self, splits: Any, config: TunelineConfig) -> Evaluation:
        """Cosine of text to label-name embeddings (untouched base model), one global cut fitted on train rows."""
        from tuneline.embeddings import Embedder

        labels = splits.labels
        embed = Embedder.for_config(config).embed
        descriptions = config.data.label_descriptions
        label_vectors = embed([descriptions.get(label, label.replace("_", " ")) for label in labels])
        fit_rows = splits.train.sample(n=min(len(splits.train), ZERO_SHOT_FIT_ROWS), random_state=0)
        fit_similarity = embed(fit_rows["text"].tolist()) @ label_vectors.T
        cut = fit_thresholds(fit_similarity, multi_hot(self.gold(fit_rows), labels), config.primary_metric)[0]
        similarity = embed(splits.test["text"].tolist()) @ label_vectors.T
        predicted = [[labels[j] for j in np.flatnonzero(row >= cut)] for row in similarity]
        return Evaluation("zero_shot", self.score(self.gold(splits.test), predicted, labels), predicted,
                          [dict(zip(labels, map(float, row))) for row in similarity])

    def report_artifacts(self, fine_tuned: Evaluation, test: pd.DataFrame, labels: list[str],
                         folder: Path) -> dict[str, float]:
        """per_label_report.json, label_cooccurrence.png, test_predictions.jsonl; per-label F1 and the label
        cardinality (mean labels per text, gold vs predicted) to log."""
        gold, predicted = multi_hot(self.gold(test), labels), multi_hot(fine_tuned.predictions, labels)
        report = per_label_report(gold, predicted, labels)
        (folder / "per_label_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
        plot_cooccurrence(gold, predicted, labels, folder / "label_cooccurrence.png")
        scores = fine_tuned.scores or [None] * len(test)
        with (folder / "test_predictions.jsonl").open("w", encoding="utf-8") as handle:
            for row, labels_out, all_scores in zip(test.itertuples(index=False), fine_tuned.predictions, scores):
                record = {"source_file": row.source_file, "source_row": int(row.source_row), "text": row.text,
                          "label": list(row.label), "predicted": list(labels_out),
                          "label_scores": {k: all_scores[k] for k in labels_out} if all_scores else None}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        cardinality = report["label_cardinality"]
        return {"label_cardinality.gold": cardinality["gold"], "label_cardinality.predicted": cardinality["predicted"],
                **{f"{label}.f1": float(report["labels"][label]["f1"]) for j, label in enumerate(labels)
                   if gold[:, j].any()}}  # no 0.0 logged for a label the test rows do not hold


def encode_multi_hot(batch: dict[str, list], tokenizer: Any, max_length: int,
                     label2id: dict[str, int]) -> dict[str, list]:
    """Tokenize (never pad), flag truncated rows, and give ``labels`` as multi-hot FLOATS (BCE-with-logits needs
    float targets of the logits' shape)."""
    enc = tokenizer(cut_long_texts(batch["text"], tokenizer, max_length), truncation=True, max_length=max_length)
    out = {key: list(values) for key, values in enc.items()}
    width = len(label2id)
    rows = []
    for labels in batch["label"]:
        row = [0.0] * width
        for label in labels or []:
            row[label2id[label]] = 1.0
        rows.append(row)
    out["labels"] = rows
    out["truncated"] = [bool(encoding.overflowing) for encoding in enc.encodings]
    return out


def per_label_report(gold: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Precision, recall, F1 and support per label, the averages, and label cardinality (gold vs predicted)."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=range(len(labels)),
                                                                     average=None, zero_division=0)
    return {
        "labels": {label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s),
                           "predicted": int(predicted[:, j].sum())}
                   for j, (label, p, r, f, s) in enumerate(zip(labels, precision, recall, f1, support))},
        "averages": matrix_scores(gold, predicted),
        "label_cardinality": {"gold": float(gold.sum(axis=1).mean()) if len(gold) else 0.0,
                              "predicted": float(predicted.sum(axis=1).mean()) if len(predicted) else 0.0},
        "rows": int(len(gold)),
    }


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_cooccurrence(gold: np.ndarray, predicted: np.ndarray, labels: list[str], path: Path) -> Path:
    """Side-by-side heat-maps of how often two labels share a text (diagonal: label counts), gold vs predicted: a
    model that never predicts a frequent pair, or invents one, shows up at a glance."""
    plt = _pyplot()
    size = min(14.0, max(4.0, 0.32 * len(labels) + 2.5))  # bounded: the figure's memory grows with its area
    named = len(labels) <= 60  # more names than fit at 7 points in 14 inches: the ticks go unnamed
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    for ax, matrix, title in ((axes[0], gold, "gold"), (axes[1], predicted, "predicted")):
        counts = matrix.astype(np.int64).T @ matrix.astype(np.int64)
        image = ax.imshow(np.log1p(counts), cmap="viridis")
        ax.set_title(f"label co-occurrence, {title} (test; log scale)")
        if named:
            ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
            ax.set_yticks(range(len(labels)), labels, fontsize=7)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="log(1 + texts)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_threshold_curve(proba: np.ndarray, gold: np.ndarray, chosen: np.ndarray, path: Path) -> Path:
    """Micro/macro/samples F1 on validation against one global threshold, with the fitted threshold(s) marked."""
    plt = _pyplot()
    grid = np.linspace(0.01, 0.99, 99)
    curves = [matrix_scores(gold, proba >= t) for t in grid]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for metric in ("micro_f1", "macro_f1", "samples_f1"):
        ax.plot(grid, [c[metric] for c in curves], label=metric)
    if np.allclose(chosen, chosen[0]):
        ax.axvline(float(chosen[0]), color="black", linestyle="--", label=f"fitted {float(chosen[0]):.3f}")
    else:
        ax.plot(chosen, np.zeros_like(chosen), "|", color="black", markersize=14, label="per-label thresholds")
    ax.set_xlabel("threshold (predict a label when its probability >= threshold)")
    ax.set_ylabel("F1 on validation")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="best", fontsize=8)
    ax.set_title("Threshold curve (validation)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def store_thresholds(model_dir: Path, thresholds: float | dict[str, float]) -> None:
    """Write the fitted threshold(s) into the saved model's ``config.json`` (``tuneline_thresholds``), where the
    pyfunc reads them: the registered model then serves with exactly the cut that was evaluated."""
    path = model_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tuneline_thresholds"] = thresholds
    path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
