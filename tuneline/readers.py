"""Robust readers for dirty, real-world labeled-data files (plain functions; the load task wraps them).

Why this exists: real files arrive with byte-order marks, the wrong encoding, a CSV quote that is opened and never
closed (which silently swallows every following line into one field), tabs inside TSV text, fields longer than the
csv module's default limit, and CoNLL lines with a stray extra column. A reader that "mostly works" turns such files
into fewer, wrong records without saying so. These readers instead guarantee:

- every record they see is either in ``frame`` or in ``malformed`` (with rule, line and a hint), and
  ``len(frame) + len(malformed) == records_seen``, where ``records_seen`` is counted from the physical lines, not
  from however the parser happened to group them;
- every record keeps ``source_row`` (record number) and ``source_line`` (physical line where it starts), so a
  rejected row can be found in the user's file;
- a file that cannot be used at all raises :class:`DataLoadError` with a one-line message that names the file (and
  line/byte where known) and what to change; never a bare ``UnicodeDecodeError``, ``csv.Error`` or traceback;
- files are only ever read.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import numbers
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from tuneline.errors import UserError

DecodePolicy = Literal["error", "quarantine"]
PROVENANCE_COLUMNS = ("source_row", "source_line")
VALUE_LIMIT = 500
DOCSTART = "-DOCSTART-"

# Undecodable bytes are replaced by this lone surrogate while we find their lines: a strict decoder never produces
# a lone surrogate, so its presence marks exactly the lines that did not decode. Shown to users as U+FFFD.
_MARK = "\udcff"
_MARK_HANDLER = "tuneline.readers.mark"
codecs.register_error(_MARK_HANDLER, lambda error: (_MARK, error.end))


def _raise_csv_field_limit() -> None:
    """Fields longer than csv's default 131072 characters are legitimate (long documents): allow them.

    Called on every read because the limit is process-wide and other code may lower it again."""
    limit = 2**31 - 1
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:  # a platform whose C long is 32 bits
            limit //= 2


class DataLoadError(UserError):
    """An input file cannot be used as configured; the one-line message names the file (and line/byte where known)
    and what to change."""


@dataclass
class ReadResult:
    """Good records (``frame``), unusable records (``malformed``) and how many records the file holds."""

    frame: pd.DataFrame
    malformed: list[dict] = field(default_factory=list)
    records_seen: int = 0


def detect_format(path: Path, configured: str) -> str:
    """``configured`` unless it is "auto"; then the format named by the file's suffixes."""
    if configured != "auto":
        return configured
    suffixes = [s.lower() for s in Path(path).suffixes]
    for suffix, fmt in ((".tsv", "tsv"), (".csv", "csv"), (".jsonl", "jsonl"), (".json", "jsonl"),
                        (".parquet", "parquet"), (".pq", "parquet"), (".conll", "conll"), (".txt", "conll")):
        if suffix in suffixes:
            return fmt
    raise DataLoadError(f"cannot tell the format of {path} from its name; set data.format "
                        "(csv, tsv, jsonl, parquet or conll)")


# --------------------------------------------------------------------------------------------------------------
# normalize_label


_INTEGRAL_TEXT = re.compile(r"([+-]?\d+)\.0*")


def normalize_label(value: object) -> tuple[str | None, str | None]:
    """A label as a class name: ``(label, None)``, or ``(None, rule)`` for a value that cannot be one.

    Labels are names, so 1, 1.0, "1", " 1" and "1.0" (pandas writes integer columns with a missing value as floats)
    are all the class "1", whichever format the file came in. Missing values (None, NaN, "", whitespace) give
    ``(None, None)``: whether a missing label is allowed is the data contract's decision, not the reader's.
    """
    if value is None:
        return None, None
    if isinstance(value, (bool, np.bool_)):
        return None, "label_is_boolean"  # True/False as a class is almost always a parsing accident
    if isinstance(value, (list, tuple, dict, set, frozenset, np.ndarray)):
        return None, "label_is_not_a_single_value"
    if isinstance(value, numbers.Integral):
        return str(int(value)), None
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return None, None
        if number.is_integer():
            return str(int(number)), None
        return str(value), None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    try:
        if pd.isna(value):  # pd.NA, pd.NaT
            return None, None
    except (TypeError, ValueError):
        pass
    text = str(value).strip()
    if not text:
        return None, None
    integral = _INTEGRAL_TEXT.fullmatch(text)
    return (str(int(integral.group(1))) if integral else text), None


# --------------------------------------------------------------------------------------------------------------
# Files and text


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataLoadError(f"input file {path} does not exist; check the path in data "
                            "(paths in a config file are relative to the file)")
    if path.is_dir():
        raise DataLoadError(f"input path {path} is a folder; give a file, not a folder")
    if not path.is_file():
        raise DataLoadError(f"input path {path} is not a regular file; give a data file")
    if path.stat().st_size == 0:
        raise DataLoadError(f"input file {path} is empty (0 bytes); give a file with records")


def _read_lines(path: Path, encoding: str, on_decode_error: DecodePolicy) -> tuple[list[str], set[int]]:
    """The file's physical lines (endings kept; split at \\n, \\r\\n or \\r only) and the 0-based indexes of the
    lines that did not decode (always empty with on_decode_error="error", which raises instead)."""
    if on_decode_error not in ("error", "quarantine"):
        raise DataLoadError(f"on_decode_error must be 'error' or 'quarantine', not {on_decode_error!r} "
                            "(data.on_decode_error)")
    _check_file(path)
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise DataLoadError(f"unknown encoding {encoding!r} for {path}; set data.encoding to a codec name such as "
                            "utf-8, latin-1 or cp1252") from None
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataLoadError(f"cannot read input file {path}: {error.strerror or error}") from None
    skipped = 0
    if data.startswith(codecs.BOM_UTF8) and not codec.name.startswith(("utf-16", "utf-32")):
        skipped = len(codecs.BOM_UTF8)  # a UTF-8 BOM must never become part of the first column name or token
    body = data[skipped:]
    bad: set[int] = set()
    try:
        text = body.decode(codec.name)
        lines = io.StringIO(text.removeprefix("\ufeff"), newline="").readlines()
    except UnicodeDecodeError as error:
        text = body.decode(codec.name, _MARK_HANDLER)
        lines = io.StringIO(text.removeprefix("\ufeff"), newline="").readlines()
        bad = {index for index, line in enumerate(lines) if _MARK in line}
        if on_decode_error == "error":
            first = min(bad) + 1 if bad else 1
            raise DataLoadError(
                f"{path}: line {first}, byte offset {error.start + skipped}: bytes "
                f"{body[error.start:error.end].hex(' ')} are not valid {encoding} ({error.reason}); set data.encoding "
                "to the file's encoding (e.g. latin-1 or cp1252), or data.on_decode_error: quarantine to set the "
                "lines that do not decode aside") from None
    if not any(line.strip() for line in lines):
        raise DataLoadError(f"input file {path} is empty (only whitespace); give a file with records")
    return lines, bad


def _shown(text: str) -> str:
    """A value for the quarantine: no line ending, undecodable bytes as U+FFFD, at most VALUE_LIMIT characters."""
    return text.rstrip("\r\n").replace(_MARK, "\ufffd")[:VALUE_LIMIT]


def _malformed(row: int, line: int, rule: str, value: str, detail: str) -> dict:
    return {"source_row": row, "source_line": line, "rule": rule, "value": _shown(value), "detail": detail}


def _not_decodable_detail(line_index: int, encoding: str) -> str:
    return (f"line {line_index + 1} is not valid {encoding}; set data.encoding to the file's encoding "
            "(e.g. latin-1) to read it")


def _object_frame(columns: dict[str, list], rows: list[int], lines: list[int]) -> pd.DataFrame:
    """Object columns keep Python values and None (pandas would infer str/float dtypes and turn None into NaN)."""
    data: dict[str, object] = {name: pd.Series(values, dtype=object) for name, values in columns.items()}
    data["source_row"] = pd.Series(rows, dtype="int64")
    data["source_line"] = pd.Series(lines, dtype="int64")
    return pd.DataFrame(data)


def _check_names(path: Path, names: list[str], where: str) -> None:
    """Column names must be unique and must not collide with the provenance columns the reader adds."""
    counts = Counter(names)
    duplicates = [name for name, count in counts.items() if count > 1]
    if duplicates:
        raise DataLoadError(f"{path}: {where} has duplicate column names {duplicates}; give every column a "
                            "unique name")
    reserved = [name for name in PROVENANCE_COLUMNS if name in counts]
    if reserved:
        raise DataLoadError(f"{path}: {where} has a column named {reserved[0]!r}, which the loader adds itself; "
                            "rename that column")


# --------------------------------------------------------------------------------------------------------------
# CSV / TSV


class _Span(NamedTuple):
    """One record as the csv parser grouped it: 0-based first/last physical line, fields or a csv error."""

    start: int
    end: int
    fields: list[str] | None
    error: str | None


def _dialect(fmt: str) -> dict:
    # GLUE TSV: no quote processing, quotes are text. CSV: RFC 4180 (quoted fields may hold commas and newlines).
    return {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {"delimiter": ","}


def _parse(lines: list[str], lo: int, hi: int, dialect: dict) -> list[_Span]:
    """Parse lines[lo:hi] into records with their line spans; blank lines are no records; a csv.Error is kept as a
    span with its message (the reader resumes at the next line) instead of ending the read."""
    spans: list[_Span] = []
    reader = csv.reader(lines[lo:hi], **dialect)
    done = 0  # lines consumed so far
    while True:
        try:
            fields = next(reader)
            error = None
        except StopIteration:
            break
        except csv.Error as exc:
            fields, error = None, str(exc)
        if reader.line_num == done:  # defensive: no progress means nothing left
            break
        start, end = lo + done, lo + reader.line_num - 1
        done = reader.line_num
        if error is None and (not fields or (start == end and not lines[start].strip())):
            continue  # a blank or whitespace-only line is no record
        spans.append(_Span(start, end, fields, error))
    return spans


def _parses_as_record(line: str, expected: int, dialect: dict) -> bool:
    """Whether one line on its own is a complete, strictly quoted record with the expected field count."""
    try:
        rows = list(csv.reader([line], strict=True, **dialect))
    except csv.Error:
        return False
    return len(rows) == 1 and len(rows[0]) == expected


def _swallowed_lines(lines: list[str], span: _Span, expected: int, dialect: dict) -> bool:
    """Whether a multi-line record is an unclosed quote that swallowed lines rather than a legit quoted newline.

    Evidence of damage: the block is not valid RFC 4180 (the quote closes mid-field or never), or a line strictly
    inside the block is by itself a complete record with the expected field count (a properly quoted newline
    inside a text field does not normally produce such lines).
    """
    block = lines[span.start:span.end + 1]
    try:
        if len(list(csv.reader(block, strict=True, **dialect))) != 1:
            return True
    except csv.Error:
        return True
    return any(line.strip() and _parses_as_record(line, expected, dialect) for line in block[1:-1])


def _nonblank(lines: list[str], lo: int, hi: int) -> int:
    return sum(1 for line in lines[lo:hi] if line.strip())


def read_table(path: Path, fmt: str, *, encoding: str = "utf-8", header: bool = True,
               on_decode_error: DecodePolicy = "error") -> ReadResult:
    """Read a csv, tsv, jsonl or parquet file into a :class:`ReadResult` (see the module docstring)."""
    path = Path(path)
    if fmt in ("csv", "tsv"):
        return _read_delimited(path, fmt, encoding, header, on_decode_error)
    if fmt == "jsonl":
        return _read_jsonl(path, encoding, on_decode_error)
    if fmt == "parquet":
        return _read_parquet(path)
    raise DataLoadError(f"format {fmt!r} of {path} is not a table format; set data.format to csv, tsv, jsonl or "
                        "parquet")


def _read_delimited(path: Path, fmt: str, encoding: str, header: bool, on_decode_error: DecodePolicy) -> ReadResult:
    lines, bad_lines = _read_lines(path, encoding, on_decode_error)
    dialect = _dialect(fmt)
    _raise_csv_field_limit()
    spans = _parse(lines, 0, len(lines), dialect)
    if header:
        head, body = spans[0], spans[1:]
        if head.error is not None or (head.end > head.start and _swallowed_lines(lines, head, 0, dialect)):
            raise DataLoadError(f"{path}: the header (line {head.start + 1}) has broken quoting"
                                f"{': ' + head.error if head.error else ''}; fix the header line")
        if any(i in bad_lines for i in range(head.start, head.end + 1)):
            raise DataLoadError(f"{path}: the header (line {head.start + 1}) is not valid {encoding}; set "
                                "data.encoding to the file's encoding (e.g. latin-1)")
        names = [name.strip() for name in head.fields or []]
        _check_names(path, names, f"the header (line {head.start + 1})")
        if not body:
            raise DataLoadError(f"input file {path} has a header (line {head.start + 1}) but no data records; "
                                "give a file with records, or set data.header: false if that line is data")
        expected, first_data_line = len(names), head.end + 1
        count_hint = f"header has {expected}"
    else:
        body = spans
        counts = Counter(len(span.fields) for span in spans if span.fields is not None)
        expected = counts.most_common(1)[0][0] if counts else 0
        names = [str(i) for i in range(expected)]
        first_data_line = 0
        count_hint = f"most records have {expected}"

    # The stack keeps the file's order: re-read lines are pushed on top, so record numbers follow the file.
    rows: list[list[str]] = []
    row_numbers: list[int] = []
    row_lines: list[int] = []
    malformed: list[dict] = []
    continuation = 0  # non-blank lines that legitimately continue a record (a quoted newline)
    pending = list(reversed(body))
    while pending:
        span = pending.pop()
        number, line, multi_line = len(rows) + len(malformed) + 1, span.start + 1, span.end > span.start
        raw = "".join(lines[span.start:span.end + 1])
        if span.error is not None or (multi_line and _swallowed_lines(lines, span, expected, dialect)):
            last = span.end + 1
            if span.error is not None:
                rule = "record_is_not_parseable"
                detail = f"lines {line}-{last}: {span.error}; fix the quoting of line {line}"
            else:
                rule = "unbalanced_quote"
                detail = (f"lines {line}-{last}: a quote opened on line {line} is not closed properly, so lines "
                          f"{line}-{last} were parsed as one record (lines {line + 1}-{last} were re-read on their "
                          'own); close the quote, or double a quote inside a quoted field ("")')
            malformed.append(_malformed(number, line, rule, lines[span.start], detail))
            if multi_line:  # the swallowed lines are records in their own right: read them again
                pending.extend(reversed(_parse(lines, span.start + 1, span.end + 1, dialect)))
            continue
        if multi_line:
            continuation += _nonblank(lines, span.start + 1, span.end + 1)
        undecodable = [i for i in range(span.start, span.end + 1) if i in bad_lines] if bad_lines else []
        if undecodable:
            malformed.append(_malformed(number, line, "record_not_decodable", raw,
                                        _not_decodable_detail(undecodable[0], encoding)))
        elif len(span.fields) != expected:
            malformed.append(_malformed(number, line, "record_has_wrong_field_count", raw,
                                        f"{len(span.fields)} fields, {count_hint}"))
        else:
            rows.append(span.fields)
            row_numbers.append(number)
            row_lines.append(line)

    values = list(zip(*rows)) if rows else [() for _ in names]
    columns = {name: [v if v != "" else None for v in column] for name, column in zip(names, values)}
    frame = _object_frame(columns, row_numbers, row_lines)
    records_seen = _nonblank(lines, first_data_line, len(lines)) - continuation
    return ReadResult(frame=frame, malformed=malformed, records_seen=records_seen)


# --------------------------------------------------------------------------------------------------------------
# JSONL and Parquet


def _read_jsonl(path: Path, encoding: str, on_decode_error: DecodePolicy) -> ReadResult:
    """One JSON object per line. ``source_row`` is the line number (as the load task has always reported it)."""
    lines, bad_lines = _read_lines(path, encoding, on_decode_error)
    records: list[tuple[int, dict]] = []
    malformed: list[dict] = []
    seen = 0
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        seen += 1
        number = index + 1
        if index in bad_lines:
            malformed.append(_malformed(number, number, "record_not_decodable", line,
                                        _not_decodable_detail(index, encoding)))
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as error:
            malformed.append(_malformed(number, number, "record_is_not_json", line, str(error)))
            continue
        if not isinstance(obj, dict):
            malformed.append(_malformed(number, number, "record_is_not_an_object", line,
                                        "each JSONL line must be an object"))
            continue
        records.append((number, obj))
    names = list(dict.fromkeys(key for _, obj in records for key in obj))
    _check_names(path, names, "a JSONL record")
    columns = {name: [obj.get(name) for _, obj in records] for name in names}
    numbers_ = [number for number, _ in records]
    return ReadResult(frame=_object_frame(columns, numbers_, numbers_), malformed=malformed, records_seen=seen)


def _read_parquet(path: Path) -> ReadResult:
    import pyarrow.parquet as pq

    _check_file(path)
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several types (ArrowInvalid, OSError...) for a bad file
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataLoadError(f"cannot read {path} as parquet ({message}); check the file or set data.format") \
            from None
    names = [str(name) for name in table.column_names]
    _check_names(path, names, "the parquet schema")
    if table.num_rows == 0:
        raise DataLoadError(f"input file {path} is a parquet file with no rows; give a file with records")
    columns = {name: table.column(i).to_pylist() for i, name in enumerate(names)}  # Python values, None if missing
    numbers_ = list(range(1, table.num_rows + 1))
    return ReadResult(frame=_object_frame(columns, numbers_, numbers_), malformed=[], records_seen=table.num_rows)


# --------------------------------------------------------------------------------------------------------------
# CoNLL


def read_conll(path: Path, tag_column: int = -1, *, encoding: str = "utf-8",
               on_decode_error: DecodePolicy = "error") -> ReadResult:
    """Read a CoNLL column file into one row per sentence: ``tokens``, ``tags``, ``source_row`` (sentence number),
    ``source_line`` (line of its first token).

    Token is the first whitespace-separated field, the tag is field ``tag_column``; blank or whitespace-only lines
    end a sentence; ``-DOCSTART-`` lines are document markers, skipped. The file's field count is the most common
    one among its lines: a line with another count (``New York B-LOC`` in a 2-column file) would silently lose a
    word or shift a tag, so its whole sentence is malformed rather than half-read.
    """
    path = Path(path)
    lines, bad_lines = _read_lines(path, encoding, on_decode_error)
    sentences: list[list[tuple[int, list[str]]]] = []
    sentence: list[tuple[int, list[str]]] = []
    for index, line in enumerate(lines):
        fields = line.split()
        if not fields or fields[0] == DOCSTART:
            if sentence:
                sentences.append(sentence)
            sentence = []
            continue
        sentence.append((index, fields))
    if sentence:
        sentences.append(sentence)
    if not sentences:
        raise DataLoadError(f"input file {path} has no sentences (only blank and {DOCSTART} lines); "
                            "give a CoNLL file with token lines")
    expected = Counter(len(fields) for s in sentences for _, fields in s).most_common(1)[0][0]

    records: list[dict] = []
    malformed: list[dict] = []
    for number, sentence in enumerate(sentences, start=1):
        first_line = sentence[0][0] + 1
        tokens = [fields[0] for _, fields in sentence]
        value = " ".join(tokens)
        undecodable = [index for index, _ in sentence if index in bad_lines] if bad_lines else []
        short = [(index, fields) for index, fields in sentence
                 if len(fields) < 2 or not -len(fields) <= tag_column < len(fields)]
        odd = [(index, fields) for index, fields in sentence if len(fields) != expected]
        if undecodable:
            malformed.append(_malformed(number, first_line, "record_not_decodable", value,
                                        _not_decodable_detail(undecodable[0], encoding)))
        elif short:
            index, fields = short[0]
            malformed.append(_malformed(number, first_line, "conll_line_has_no_tag_column", value,
                                        f"line {index + 1}: {' '.join(fields)!r} has {len(fields)} field(s); the tag "
                                        f"is read from column {tag_column} (data.conll_tag_column)"))
        elif odd:
            index, fields = odd[0]
            malformed.append(_malformed(number, first_line, "conll_line_has_wrong_field_count", value,
                                        f"line {index + 1}: {' '.join(fields)!r} has {len(fields)} fields, expected "
                                        f"{expected} (the count of most lines in the file); a token must not "
                                        "contain spaces"))
        else:
            records.append({"tokens": tokens, "tags": [fields[tag_column] for _, fields in sentence],
                            "source_row": number, "source_line": first_line})
    frame = _object_frame({"tokens": [r["tokens"] for r in records], "tags": [r["tags"] for r in records]},
                          [r["source_row"] for r in records], [r["source_line"] for r in records])
    return ReadResult(frame=frame, malformed=malformed, records_seen=len(sentences))
