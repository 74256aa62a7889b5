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
import pyarrow as pa
import pyarrow.compute as pc
from pandas.arrays import ArrowStringArray

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
    if suffixes and suffixes[-1] in (".xlsx", ".xlsm", ".xls", ".ods", ".numbers"):
        raise DataLoadError(f"{path} is a spreadsheet workbook, which tuneline does not read: save the sheet as "
                            "CSV UTF-8 (Excel: File > Save As > 'CSV UTF-8') and point data.train (or the landing "
                            "folder) at the .csv")
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


#: byte-order marks that name their encoding whatever data.encoding says (UTF-32 first: its LE mark starts with
#: UTF-16's); a UTF-8 mark is skipped by the readers under any ASCII-compatible encoding
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def bom_encoding(path: Path, configured: str) -> str:
    """The encoding a UTF-16 or UTF-32 byte-order mark names, else ``configured``: Excel's "Unicode text" and
    PowerShell write UTF-16 with a mark, which decoded as UTF-8 (or latin-1) is an error (or text full of NULs)."""
    try:
        with Path(path).open("rb") as handle:
            start = handle.read(4)
    except OSError:
        return configured  # the reader's own file checks say what is wrong
    return next((name for mark, name in _BOMS if start.startswith(mark)), configured)


#: delimiters a ".csv" file is written with besides the comma (Excel in locales with a decimal comma writes ";")
_OTHER_DELIMITERS = (";", "\t", "|")


#: Excel's first line naming the delimiter (``sep=;``), written before the header by some exports
_EXCEL_SEPARATOR_LINE = re.compile(r"sep=(.)\s*")


def csv_layout(path: Path, encoding: str) -> tuple[str, int]:
    """The delimiter of a CSV file and how many lines come before its header.

    The comma, unless the first line holds no comma outside quotes but splits into several fields at one of ``;``,
    tab or ``|`` (the most frequent of them); an Excel ``sep=X`` first line names the delimiter and is skipped.
    """
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(1 << 16)
    except OSError:
        return ",", 0
    try:
        text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    except LookupError:
        return ",", 0  # an unknown encoding: the reader's own check names it
    lines = text.splitlines()
    if lines and (declared := _EXCEL_SEPARATOR_LINE.fullmatch(lines[0])):
        return declared.group(1), 1
    first = next((line for line in lines if line.strip()), "")
    fields = lambda delimiter: next(csv.reader([first], delimiter=delimiter), [])  # noqa: E731
    if len(fields(",")) > 1:
        return ",", 0
    candidates = [(len(fields(d)), d) for d in _OTHER_DELIMITERS]
    count, delimiter = max(candidates)
    return (delimiter if count > 1 else ","), 0


def sniff_delimiter(path: Path, encoding: str) -> str:
    """The delimiter :func:`csv_layout` finds."""
    return csv_layout(path, encoding)[0]


def _named(names: list[str]) -> list[str]:
    """Header names with each empty one named by its 0-based position (``unnamed_3``): the empty columns a
    spreadsheet export leaves after the data (``text,label,,``) are then ignored like any other extra column."""
    return [name or f"unnamed_{i}" for i, name in enumerate(names)]


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
               on_decode_error: DecodePolicy = "error", compact: bool = False) -> ReadResult:
    """Read a csv, tsv, jsonl or parquet file into a :class:`ReadResult` (see the module docstring).

    ``compact=True``: the columns of a CSV/TSV file come back as pandas ``str`` columns (Arrow-backed, a missing
    value is NaN) instead of object columns of Python strings and None: the same values in a fraction of the memory,
    for files of millions of records. JSONL and Parquet frames are object columns either way (their values need not
    be strings).
    """
    path = Path(path)
    encoding = bom_encoding(path, encoding)
    if fmt in ("csv", "tsv"):
        return _read_delimited(path, fmt, encoding, header, on_decode_error, compact)
    if fmt == "jsonl":
        return _read_jsonl(path, encoding, on_decode_error)
    if fmt == "parquet":
        return _read_parquet(path)
    raise DataLoadError(f"format {fmt!r} of {path} is not a table format; set data.format to csv, tsv, jsonl or "
                        "parquet")


def _read_delimited(path: Path, fmt: str, encoding: str, header: bool, on_decode_error: DecodePolicy,
                    compact: bool = False) -> ReadResult:
    """The block reader where the file allows it (:func:`_read_delimited_fast`), else the careful one: the same
    records, record and line numbers, values and malformed records either way (the tests compare the two)."""
    delimiter, skip = csv_layout(path, encoding) if fmt == "csv" else (None, 0)
    if delimiter not in (None, ",") or skip:  # the block reader splits at commas only: the careful one reads these
        from tuneline.common import task_logger  # prefect: imported only where a run logs

        task_logger().info("%s: reading it as %r-separated (%s)", path, delimiter,
                           "its first line says so" if skip else "its first line has no comma")
        result = _read_delimited_careful(path, fmt, encoding, header, on_decode_error,
                                         dialect={"delimiter": delimiter}, skip_lines=skip)
        return _with_string_columns(result) if compact else result
    result = _read_delimited_fast(path, fmt, encoding, on_decode_error) if header else None
    if result is None:
        result = _read_delimited_careful(path, fmt, encoding, header, on_decode_error)
        return _with_string_columns(result) if compact else result
    return result if compact else _with_object_columns(result)


def _process_spans(lines: list[str], spans: list[_Span], expected: int, count_hint: str, dialect: dict,
                   bad_lines: set[int], encoding: str, number_offset: int = 0, line_offset: int = 0) -> tuple:
    """Judge each record span the careful way: (rows, record numbers, 1-based lines, malformed, continuation).

    ``lines`` are the physical lines the spans index; numbers and lines are shifted by ``number_offset`` and
    ``line_offset`` (the records and lines before ``lines[0]`` in the file). The stack keeps the file's order:
    re-read lines are pushed on top, so record numbers follow the file.
    """
    rows: list[list[str]] = []
    row_numbers: list[int] = []
    row_lines: list[int] = []
    malformed: list[dict] = []
    continuation = 0  # non-blank lines that legitimately continue a record (a quoted newline)
    pending = list(reversed(spans))
    while pending:
        span = pending.pop()
        number = number_offset + len(rows) + len(malformed) + 1
        line, multi_line = line_offset + span.start + 1, span.end > span.start
        raw = "".join(lines[span.start:span.end + 1])
        if span.error is not None or (multi_line and _swallowed_lines(lines, span, expected, dialect)):
            last = line_offset + span.end + 1
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
                                        _not_decodable_detail(line_offset + undecodable[0], encoding)))
        elif len(span.fields) != expected:
            malformed.append(_malformed(number, line, "record_has_wrong_field_count", raw,
                                        f"{len(span.fields)} fields, {count_hint}"))
        else:
            rows.append(span.fields)
            row_numbers.append(number)
            row_lines.append(line)
    return rows, row_numbers, row_lines, malformed, continuation


def _read_delimited_careful(path: Path, fmt: str, encoding: str, header: bool,
                            on_decode_error: DecodePolicy, dialect: dict | None = None,
                            skip_lines: int = 0) -> ReadResult:
    """Every line of the file in memory as Python strings, every record through :func:`_process_spans`: handles
    anything (undecodable lines, header: false) at a few microseconds and a few hundred bytes per record."""
    lines, bad_lines = _read_lines(path, encoding, on_decode_error)
    dialect = dialect or _dialect(fmt)
    _raise_csv_field_limit()
    spans = _parse(lines, min(skip_lines, len(lines)), len(lines), dialect)
    if header:
        head, body = spans[0], spans[1:]
        if head.error is not None or (head.end > head.start and _swallowed_lines(lines, head, 0, dialect)):
            raise DataLoadError(f"{path}: the header (line {head.start + 1}) has broken quoting"
                                f"{': ' + head.error if head.error else ''}; fix the header line")
        if any(i in bad_lines for i in range(head.start, head.end + 1)):
            raise DataLoadError(f"{path}: the header (line {head.start + 1}) is not valid {encoding}; set "
                                "data.encoding to the file's encoding (e.g. latin-1)")
        names = _named([name.strip() for name in head.fields or []])
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
        first_data_line = min(skip_lines, len(lines))
        count_hint = f"most records have {expected}"

    rows, row_numbers, row_lines, malformed, continuation = _process_spans(
        lines, body, expected, count_hint, dialect, bad_lines, encoding)
    values = list(zip(*rows)) if rows else [() for _ in names]
    columns = {name: [v if v != "" else None for v in column] for name, column in zip(names, values)}
    frame = _object_frame(columns, row_numbers, row_lines)
    records_seen = _nonblank(lines, first_data_line, len(lines)) - continuation
    return ReadResult(frame=frame, malformed=malformed, records_seen=records_seen)


# --------------------------------------------------------------------------------------------------------------
# CSV / TSV at scale: blocks of lines, vectorised where the csv module would see one record per line


#: Bytes per block of the fast reader (whole lines; a record running past a block's end is carried to the next).
FAST_BLOCK_BYTES = 16 << 20
#: Codecs in which bytes 0x0A and 0x0D are always the line breaks \n and \r (the fast reader splits bytes there).
_FAST_CODECS = frozenset({"utf-8", "ascii", "iso8859-1", "cp1252"})
#: Exactly what ``str.strip()`` removes (a line of only these is blank, no record).
_WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
#: A regular expression (RE2, for ``pyarrow.compute``) matching a string of only such characters.
WHITESPACE_ONLY = "^[" + "".join(f"\\x{{{ord(c):x}}}" for c in _WHITESPACE) + "]*$"
#: A line that no record can start or end with: read after a line, it tells whether that line's record is complete.
_SENTINEL_FIELD = "\x1ftuneline-resync\x1f"
_SENTINEL = _SENTINEL_FIELD + "\n"
#: An RFC 4180 line: each field unquoted without quotes, or quoted with inner quotes doubled. The csv module ends
#: such a line's record at its end; its fields are still taken from the csv module.
_QUOTED_FIELD = r'(?:[^",]*|"(?:[^"]|"")*")'
_WELL_QUOTED_LINE = f"^{_QUOTED_FIELD}(?:,{_QUOTED_FIELD})*$"


def _string_series(values: pa.ChunkedArray) -> pd.Series:
    """A pandas ``str`` column over Arrow strings, without a copy (missing values read as NaN)."""
    return pd.Series(ArrowStringArray(values, dtype=pd.StringDtype("pyarrow", na_value=np.nan)), copy=False)


def _with_string_columns(result: ReadResult) -> ReadResult:
    """The careful reader's object columns as compact ``str`` columns (None becomes a missing value)."""
    frame = result.frame
    data = {name: (frame[name] if name in PROVENANCE_COLUMNS else
                   _string_series(pa.chunked_array([pa.array(frame[name].tolist(), type=pa.large_string())])))
            for name in frame.columns}
    return ReadResult(frame=pd.DataFrame(data), malformed=result.malformed, records_seen=result.records_seen)


def _with_object_columns(result: ReadResult) -> ReadResult:
    """Compact ``str`` columns as the object columns of Python strings and None the careful reader returns."""
    frame = result.frame
    data = {name: (frame[name] if name in PROVENANCE_COLUMNS else
                   pd.Series(frame[name].array.__arrow_array__().to_pylist(), dtype=object))
            for name in frame.columns}
    return ReadResult(frame=pd.DataFrame(data), malformed=result.malformed, records_seen=result.records_seen)


def _byte_blocks(handle, size: int):
    """The file in blocks of whole lines (each ends after a \\n, the last one maybe not)."""
    rest = b""
    while chunk := handle.read(size):
        data = rest + chunk if rest else chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # no line break yet: read on
            rest = data
            continue
        rest = data[cut:]
        yield data[:cut]
    if rest:
        yield rest


def _split_lines(data: bytes) -> tuple[pa.LargeStringArray, np.ndarray]:
    """UTF-8 bytes as an Arrow array of their physical lines, endings kept, split as ``io.StringIO(newline="")``
    splits (after \\n, \\r\\n or a lone \\r), and the lines' byte offsets (one more than lines)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if not len(buf):
        return pa.array([], type=pa.large_string()), np.zeros(1, dtype=np.int64)
    breaks = np.flatnonzero(buf == 10) + 1
    returns = np.flatnonzero(buf == 13)
    if len(returns):
        following = returns + 1
        lone = returns[(following >= len(buf)) | (buf[np.minimum(following, len(buf) - 1)] != 10)]
        breaks = np.union1d(breaks, lone + 1)
    if not len(breaks) or breaks[-1] != len(buf):
        breaks = np.append(breaks, len(buf))
    offsets = np.concatenate(([0], breaks)).astype(np.int64)
    lines = pa.LargeStringArray.from_buffers(len(breaks), pa.py_buffer(offsets), pa.py_buffer(data))
    return lines, offsets


def _single_line_fields(line: str, dialect: dict) -> list[str] | None:
    """The fields of ``line`` when the csv module reads it as one whole record, else None (it would continue on
    the next line, or it is a csv error)."""
    try:
        rows = list(csv.reader([line, _SENTINEL], **dialect))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 2 and rows[1] == [_SENTINEL_FIELD] else None


def _first_span(lines: list[str], start: int, dialect: dict) -> _Span:
    """The record that starts at ``lines[start]``, as :func:`_parse` would find it."""
    reader = csv.reader((lines[i] for i in range(start, len(lines))), **dialect)
    try:
        fields, error = next(reader), None
    except csv.Error as exc:
        fields, error = None, str(exc)
    return _Span(start, start + max(reader.line_num, 1) - 1, fields, error)


@dataclass
class _Block:
    """What one block of lines held: good rows (columns, numbers, lines), malformed records, counts."""

    columns: list[pa.Array]
    numbers: np.ndarray
    lines: np.ndarray
    malformed: list[dict]
    records: int
    records_seen: int


def _read_block(lines: pa.LargeStringArray, *, last: bool, expected: int, count_hint: str, fmt: str,
                dialect: dict, number_offset: int, line_offset: int, encoding: str) -> tuple[_Block, int]:
    """Read the records of one block of physical lines; the block and how many lines it used (fewer than all when
    its last record runs on into the next block, which then starts with the unused lines).

    Lines that start at a record boundary and cannot continue a record (no quote character in a CSV line, any TSV
    line) are split at the delimiter by Arrow; lines with quotes are read by the csv module, one line each where
    the line is one whole record; a record of several lines (a quoted newline, an unclosed quote) or a csv error
    is judged by :func:`_process_spans`, the careful reader's own code, on exactly the lines the csv module gives
    it. Each such record starts where the previous one ended, so this is the careful reader's result.
    """
    n = len(lines)
    content = pc.utf8_rtrim(lines, characters="\r\n")
    blank = pc.match_substring_regex(content, WHITESPACE_ONLY).to_numpy(zero_copy_only=False)
    limit = csv.field_size_limit()
    special = np.zeros(n, dtype=bool)
    if fmt == "csv":
        special |= pc.match_substring(content, '"').to_numpy(zero_copy_only=False)
    long = (pc.greater_equal(pc.utf8_length(content), limit).to_numpy(zero_copy_only=False)
            if limit < 2**31 - 1 else np.zeros(n, dtype=bool))
    special = (special | long) & ~blank

    split = pc.split_pattern(content, "\t" if fmt == "tsv" else ",")  # right for every line but the special ones
    counts = pc.list_value_length(split).to_numpy(zero_copy_only=False).astype(np.int64)

    # Lines with quotes (or too long for the csv module's field limit): whole single-line records, or not.
    special_fields: dict[int, list[str]] = {}
    special_index = np.flatnonzero(special)
    if len(special_index):
        well = np.zeros(len(special_index), dtype=bool)
        if fmt == "csv":
            well = (pc.match_substring_regex(content.take(special_index), _WELL_QUOTED_LINE)
                    .to_numpy(zero_copy_only=False) & ~long[special_index])
        if well.any():
            texts = content.take(special_index[well]).to_pylist()
            try:
                parsed = list(csv.reader(texts, **dialect))
            except csv.Error:
                parsed = []
            if len(parsed) == len(texts):
                special_fields.update(zip(special_index[well].tolist(), parsed))
            else:
                well[:] = False
        others = special_index[~well].tolist()
        if others:
            for i, text in zip(others, lines.take(others).to_pylist()):
                fields = _single_line_fields(text, dialect)
                if fields is not None:
                    special_fields[i] = fields

    # Records of several lines, or csv errors: the careful reader's judgement of exactly those lines.
    islands: list[tuple[int, int, tuple]] = []  # (first line, last line, _process_spans result)
    used = n
    starts = [i for i in special_index.tolist() if i not in special_fields]
    if starts:
        py_lines = lines.to_pylist() + ([] if last else [_SENTINEL])
        covered = 0
        for start in starts:
            if start < covered:
                continue
            span = _first_span(py_lines, start, dialect)
            if span.end >= n:  # runs on past the block (into the sentinel): read it with the next block
                used = start
                break
            islands.append((start, span.end, _process_spans(py_lines, [span], expected, count_hint, dialect,
                                                            set(), encoding, line_offset=line_offset)))
            covered = span.end + 1
    for i, fields in special_fields.items():
        counts[i] = len(fields)

    in_island = np.zeros(n, dtype=bool)
    for first, end, _ in islands:
        in_island[first:end + 1] = True
    in_range = np.arange(n) < used
    record = ~blank & ~in_island & in_range
    good = record & (counts == expected)
    bad = record & (counts != expected)

    # Record numbers in file order: single-line records one each, an island its own count at its first line.
    record_index = np.flatnonzero(record)
    island_first = np.array([first for first, _, _ in islands], dtype=np.int64)
    island_counts = np.array([len(r[0]) + len(r[3]) for _, _, r in islands], dtype=np.int64)
    island_before = np.concatenate(([0], np.cumsum(island_counts)))
    number_of = np.zeros(n, dtype=np.int64)
    number_of[record_index] = (number_offset + np.arange(1, len(record_index) + 1)
                               + island_before[np.searchsorted(island_first, record_index)])
    island_base = [number_offset + int(np.searchsorted(record_index, first)) + int(island_before[j])
                   for j, (first, _, _) in enumerate(islands)]

    # Good rows: Arrow's split lines, the csv module's lines, the islands' rows; then in record order.
    simple_good = good & ~special
    good_simple_lines = np.flatnonzero(simple_good)
    from_split = split.filter(pa.array(simple_good))
    special_good = [i for i in special_fields if good[i]]
    island_rows = [(base + number, line, fields)
                   for base, (_, _, result) in zip(island_base, islands)
                   for fields, number, line in zip(result[0], result[1], result[2])]
    numbers = np.concatenate((number_of[good_simple_lines], number_of[np.array(special_good, dtype=np.int64)],
                              np.array([r[0] for r in island_rows], dtype=np.int64)))
    row_lines = np.concatenate((line_offset + good_simple_lines + 1,
                                line_offset + np.array(special_good, dtype=np.int64) + 1,
                                np.array([r[1] for r in island_rows], dtype=np.int64)))
    order = np.argsort(numbers, kind="stable")
    columns = []
    for j in range(expected):
        parts = [pc.list_element(from_split, j).cast(pa.large_string())] if len(from_split) else []
        python = [special_fields[i][j] for i in special_good] + [r[2][j] for r in island_rows]
        if python:
            parts.append(pa.array(python, type=pa.large_string()))
        column = pa.concat_arrays(parts) if parts else pa.array([], type=pa.large_string())
        if len(special_good) or island_rows:
            column = column.take(pa.array(order))
        column = pc.if_else(pc.equal(column, ""), pa.scalar(None, type=pa.large_string()), column)
        columns.append(column)

    malformed = []
    bad_index = np.flatnonzero(bad)
    for i, text in zip(bad_index.tolist(), lines.take(bad_index).to_pylist()):
        malformed.append(_malformed(int(number_of[i]), line_offset + i + 1, "record_has_wrong_field_count", text,
                                    f"{int(counts[i])} fields, {count_hint}"))
    continuation = 0
    for base, (first, end, result) in zip(island_base, islands):
        continuation += result[4]
        malformed.extend({**row, "source_row": base + row["source_row"]} for row in result[3])
    malformed.sort(key=lambda m: m["source_row"])
    records = len(record_index) + int(island_counts.sum())
    nonblank = int((~blank[:used]).sum())
    block = _Block(columns=columns, numbers=numbers[order], lines=row_lines[order], malformed=malformed,
                   records=records, records_seen=nonblank - continuation)
    return block, used


def _fast_header(lines: pa.LargeStringArray, dialect: dict, path: Path) -> tuple[list[str], int] | None:
    """The column names and the first line after the header, when the header is a plain, usable one."""
    head_lines = lines.slice(0, min(len(lines), 256)).to_pylist()
    spans = _parse(head_lines + [_SENTINEL], 0, len(head_lines) + 1, dialect)
    head = spans[0] if spans else None
    if head is None or head.end >= len(head_lines) or head.error is not None:
        return None
    if head.end > head.start and _swallowed_lines(head_lines, head, 0, dialect):
        return None
    names = _named([name.strip() for name in head.fields or []])
    try:
        _check_names(path, names, "the header")
    except DataLoadError:
        return None
    return names, head.end + 1


def _read_delimited_fast(path: Path, fmt: str, encoding: str, on_decode_error: DecodePolicy) -> ReadResult | None:
    """A CSV/TSV file with a header, read in blocks of :data:`FAST_BLOCK_BYTES` into Arrow string columns; None when
    the careful reader must do it (an encoding whose bytes are not split at line breaks this way, bytes that do not
    decode, an unusable header or file: the careful reader then says exactly what is wrong).

    Memory is the columns' own (a few bytes per value beyond the text) plus one block; the csv module sees only
    lines with quotes, and the careful reader's code only records of several lines and csv errors.
    """
    if on_decode_error not in ("error", "quarantine"):
        return None
    try:
        _check_file(path)
        codec = codecs.lookup(encoding)
    except (DataLoadError, LookupError):
        return None
    if codec.name not in _FAST_CODECS:
        return None
    dialect = _dialect(fmt)
    _raise_csv_field_limit()
    names: list[str] | None = None
    count_hint = ""
    blocks: list[_Block] = []
    carry = b""
    line_offset = number_offset = records_seen = 0
    try:
        with path.open("rb") as handle:
            stream = _byte_blocks(handle, FAST_BLOCK_BYTES)
            current, first = next(stream, None), True
            while current is not None:
                following = next(stream, None)
                data = current
                if first and data.startswith(codecs.BOM_UTF8):  # as _read_lines: never part of a column name
                    data = data[len(codecs.BOM_UTF8):]
                    if codec.name == "utf-8" and data.startswith(codecs.BOM_UTF8):  # its removeprefix("\ufeff")
                        data = data[len(codecs.BOM_UTF8):]
                try:
                    text = data.decode(codec.name)
                except UnicodeDecodeError:
                    return None
                utf8 = data if codec.name in ("utf-8", "ascii") else text.encode("utf-8")
                del text
                if carry:
                    utf8 = carry + utf8
                lines, offsets = _split_lines(utf8)
                start = 0
                if names is None:
                    header = _fast_header(lines, dialect, path)
                    if header is None:
                        return None
                    names, start = header
                    count_hint = f"header has {len(names)}"
                block, used = _read_block(lines.slice(start) if start else lines, last=following is None,
                                          expected=len(names), count_hint=count_hint, fmt=fmt, dialect=dialect,
                                          number_offset=number_offset, line_offset=line_offset + start,
                                          encoding=encoding)
                blocks.append(block)
                number_offset += block.records
                records_seen += block.records_seen
                consumed = start + used
                carry = utf8[int(offsets[consumed]):] if consumed < len(lines) else b""
                line_offset += consumed
                current, first = following, False
    except OSError:
        return None
    if names is None or number_offset == 0 or carry:
        return None  # no data records (the careful reader says so) or a reader bug: never lose rows
    data = {}
    for j, name in enumerate(names):  # one chunk per column (a take on many chunks concatenates them first)
        parts = [block.columns[j] for block in blocks]
        for block in blocks:
            block.columns[j] = None  # each block's part is freed as soon as the column holds it
        data[name] = _string_series(pa.chunked_array([pa.concat_arrays(parts) if parts else
                                                      pa.array([], type=pa.large_string())]))
        del parts
    data["source_row"] = pd.Series(np.concatenate([b.numbers for b in blocks]).astype(np.int64), copy=False)
    data["source_line"] = pd.Series(np.concatenate([b.lines for b in blocks]).astype(np.int64), copy=False)
    malformed = [m for b in blocks for m in b.malformed]
    return ReadResult(frame=pd.DataFrame(data, copy=False), malformed=malformed, records_seen=records_seen)


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
    encoding = bom_encoding(path, encoding)
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
