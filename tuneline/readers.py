"""Robust readers for dirty, real-world labeled-data files (plain functions; the load task wraps them).

Why this exists: real files arrive with byte-order marks, the wrong encoding, a CSV quote that is opened and never
closed (which silently swallows every following line into one field), tabs inside TSV text, fields longer than the
csv module's default limit, CoNLL lines with a stray extra column, files joined with their header lines, and TSV
saved by Excel or R (quoted cells, line breaks inside cells). A reader that "mostly works" turns such files
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

import bisect
import codecs
import csv
import functools
import io
import json
import logging
import math
import numbers
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.arrays import ArrowStringArray

from tuneline.config import DataConfig
from tuneline.errors import UserError, bytes_shown, excerpt

DecodePolicy = Literal["error", "quarantine"]
PROVENANCE_COLUMNS = ("source_row", "source_line")
VALUE_LIMIT = 500
DOCSTART = "-DOCSTART-"

# Undecodable bytes are replaced by this lone surrogate while we find their lines: a strict decoder never produces
# a lone surrogate, so its presence marks exactly the lines that did not decode. Shown to users as U+FFFD.
_MARK = "\udcff"
_MARK_HANDLER = "tuneline.readers.mark"
#: A lone \r inside a line of a file whose lines end in \n or \r\n, as the careful CSV reader gets it: whether it is
#: a character of a cell (read as a space) or the end of a record (mixed line ends) is decided with the field counts
#: (:func:`_lone_cr_line_ends`). Another lone surrogate, for the same reason as :data:`_MARK`.
_LONE_CR = "\udc0d"
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


@functools.cache
def _setting_advice() -> re.Pattern:
    """Where a reader's message turns to the data.* setting to change: ``; ... data.<a real setting>``, the names
    taken from the data config of every kind, so that a file named in the message (/in/data.csv) is not one."""
    import tuneline.kinds  # noqa: F401  (imported here: the kinds import this module; their configs extend DataConfig)

    names, todo = set(), [DataConfig]
    while todo:
        cls = todo.pop()
        names.update(cls.model_fields)
        todo.extend(cls.__subclasses__())
    alternatives = "|".join(sorted(names, key=len, reverse=True))
    return re.compile(rf";\s+(?=[^;]*(?<![\w/\\.-])data\.(?:{alternatives})(?![.\w]))")


def split_setting_advice(message: str) -> tuple[str, str | None]:
    """A reader's message as (what is wrong, its advice on the ``data.*`` setting to change, or None). Callers
    that are not the training config's reader (a landed batch, ``predict --input``) say the advice their own way.
    The advice starts at the first ``; ... data.x`` outside parentheses (one inside would leave a '(' unclosed)."""
    cut = next((m for m in _setting_advice().finditer(message)
                if message.count("(", 0, m.start()) == message.count(")", 0, m.start())), None)
    return (message[:cut.start()], message[cut.end():]) if cut else (message, None)


class DataLoadError(UserError):
    """An input file cannot be used as configured; the one-line message names the file (and line/byte where known)
    and what to change."""


class EmptyInput(DataLoadError):
    """The file holds no records at all (0 bytes, blank lines only, a header alone, an empty JSON array): an error
    for a file given on its own, but a shard of a folder or pattern may be empty (a Spark task that got no rows
    writes an empty ``part-*`` file) and is then read as no records (:func:`tuneline.tasks.load.load_data`)."""


@dataclass
class ReadResult:
    """Good records (``frame``), unusable records (``malformed``) and how many records the file holds."""

    frame: pd.DataFrame
    malformed: list[dict] = field(default_factory=list)
    records_seen: int = 0
    #: whether ``source_line`` is a line of a text file (a Parquet file has rows only: its "line" is the row)
    has_lines: bool = True

    def record_lines(self) -> np.ndarray | None:
        """The physical line where each record starts, by record number (``lines[source_row - 1]``; 0 where not
        known): kept beside the kinds' frames so a quarantine row, whichever step set it aside, names the line a
        person opens the file at, not only the record number (they differ after a header, blank lines, comment
        lines or a quoted cell with line breaks)."""
        if not self.has_lines:
            return None
        lines = np.zeros(self.records_seen, dtype=np.int32)  # 40 MB for ten million records
        if "source_line" in self.frame.columns and len(self.frame):
            rows = self.frame["source_row"].to_numpy(dtype=np.int64)
            inside = (rows >= 1) & (rows <= len(lines))
            lines[rows[inside] - 1] = self.frame["source_line"].to_numpy(dtype=np.int64)[inside]
        for record in self.malformed:
            row, line = record.get("source_row"), record.get("source_line")
            if isinstance(row, (int, np.integer)) and isinstance(line, (int, np.integer)) and 1 <= row <= len(lines):
                lines[row - 1] = line
        return lines


def detect_format(path: Path, configured: str) -> str:
    """``configured`` unless it is "auto"; then the format named by the file's suffixes."""
    if configured != "auto":
        return configured
    suffixes = [s.lower() for s in Path(path).suffixes]
    for suffix, fmt in ((".tsv", "tsv"), (".csv", "csv"), (".jsonl", "jsonl"), (".json", "jsonl"),
                        (".parquet", "parquet"), (".pq", "parquet"), (".arrow", "parquet"), (".feather", "parquet"),
                        (".conll", "conll"), (".txt", "conll"),
                        (".xlsx", "xlsx"), (".xlsm", "xlsx")):
        if suffix in suffixes:
            return fmt
    if suffixes and suffixes[-1] in (".xls", ".ods", ".numbers"):
        raise DataLoadError(f"{path} is a spreadsheet workbook in a format tuneline does not read (it reads .xlsx): "
                            "save it as .xlsx, or the sheet as CSV UTF-8 (Excel: File > Save As > 'CSV UTF-8'), and "
                            "point data.train (or the landing folder) at that file")
    raise DataLoadError(f"cannot tell the format of {path} from its name; set data.format "
                        "(csv, tsv, jsonl, parquet, xlsx or conll)")


# --------------------------------------------------------------------------------------------------------------
# normalize_label


#: a whole number however it is written: a sign, leading zeros, a zero fraction (``+01.00``, ``-0``, ``1.``)
_INTEGRAL_TEXT = re.compile(r"[+-]?\d+(?:\.0*)?")


def canonical_integer(text: str) -> str | None:
    """The canonical spelling of a whole number written as ``text`` (``01``, ``+1``, ``1.0`` → ``1``; ``-0``,
    ``00`` → ``0``; ``-1`` stays ``-1``), else None: spreadsheets, pandas float columns and hand-typed files write
    one class several ways, and each way must not become a class of its own."""
    if not _INTEGRAL_TEXT.fullmatch(text):
        return None
    try:
        return str(int(text.split(".", 1)[0]))
    except ValueError:  # more digits than int() converts: no label of any classifier
        return None


def normalize_label(value: object) -> tuple[str | None, str | None]:
    """A label as a class name: ``(label, None)``, or ``(None, rule)`` for a value that cannot be one.

    Labels are names, so 1, 1.0, "1", " 1" and "1.0" (pandas writes integer columns with a missing value as floats)
    are all the class "1", whichever format the file came in; so is "+01.00". "01", "+1" and "007" stay as written
    (a zero-padded code is a name), and fold with "1" in the label-spelling step only where both are written.
    Missing values (None, NaN, "", whitespace) give
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
        if math.isinf(number):  # JSON's Infinity (Python's json reads it): an overflow or a placeholder, no class
            return None, "label_is_infinite"
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
    # a written-out fraction of zeros is a float column's or a spreadsheet's number (``1.0``, ``+01.00``); codes
    # like ``007`` or ``+1`` stay as written here, and fold with ``7`` or ``1`` only where both spellings occur
    # (tuneline.kinds.label_spellings picks the one written most often)
    return (canonical_integer(text) if "." in text else None) or text, None


# --------------------------------------------------------------------------------------------------------------
# Files and text


def check_file(path: Path) -> None:
    """A one-line DataLoadError for a path that is no readable, non-empty file, or one compressed in a way tuneline
    does not read (:mod:`tuneline.compressed` reads gzip, bzip2 and xz). Whatever its format: a Parquet file is one
    here (the load task checks every input before its format is known); a text reader's own check refuses one named
    as text."""
    from tuneline.compressed import compression_of

    _check_file(path, text=False, compressed=path.is_file() and compression_of(path) is not None,
                workbook=path.suffix.lower() in WORKBOOK_SUFFIXES)


def _check_file(path: Path, text: bool = True, compressed: bool = False, workbook: bool = False) -> None:
    """``text=False`` for a Parquet file: its own magic bytes (``PAR1``) are then no error. ``compressed``: the file
    is compressed in a way :func:`tuneline.compressed.readable` reads, so its content is not judged here.
    ``workbook``: an .xlsx workbook (a zip archive) is no error."""
    if not path.exists():
        raise DataLoadError(f"input file {path} does not exist; check the path in data (paths in a config file "
                            "are relative to the file, paths given with --set to the folder you run in)")
    if path.is_dir():
        raise DataLoadError(f"input path {path} is a folder; give a file, not a folder")
    if not path.is_file():
        raise DataLoadError(f"input path {path} is not a regular file; give a data file")
    if path.stat().st_size == 0:
        raise EmptyInput(f"input file {path} is empty (0 bytes); give a file with records")
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
            magic = head[:16]
            if magic.startswith(_PARQUET_MAGIC) and path.stat().st_size >= 8:
                handle.seek(-len(_PARQUET_MAGIC), io.SEEK_END)
                magic = magic if handle.read(len(_PARQUET_MAGIC)) == _PARQUET_MAGIC else b""
    except OSError:
        return  # the reader's own read says what is wrong
    if compressed:
        from tuneline.compressed import compression_of

        try:
            with compression_of(path)[1](path) as inner:
                _refuse_tar(path, inner.read(512))
        except (OSError, EOFError, ValueError, TypeError):
            pass  # a damaged archive: the reader's own read says what is wrong
        return
    _refuse_tar(path, head)
    # read as text each is "byte 0x8b is not valid utf-8 ...; set data.encoding": true, and no help (the advice
    # leads to a garbled read under latin-1)
    for start, tool, keep, stream, suffix in COMPRESSED_MAGIC:
        if magic.startswith(start):
            command = (f"{keep} {path}" if path.suffix.lower() == suffix else
                       f"{stream} {path} > {path.with_name(f'{path.stem}-unpacked{path.suffix}')}")
            extra = " (or pip install zstandard, and tuneline reads it as it is)" if tool == "zstd" else ""
            raise DataLoadError(f"input file {path} is {tool}-compressed; decompress it ({command}){extra} and point "
                                "data at the uncompressed file")
    if magic.startswith(_ZIP_MAGIC) and not workbook:
        raise DataLoadError(f"input file {path} looks like an Excel workbook (.xlsx) or a zip archive, not text: "
                            "name it .xlsx (tuneline reads its first sheet), or export it as CSV (Excel: File > Save "
                            "As > 'CSV UTF-8'), or unzip it, and point data at that file")
    if magic.startswith(_OLE2_MAGIC):
        raise DataLoadError(f"input file {path} looks like a legacy Excel workbook (.xls), not text: export it as "
                            "CSV (Excel: File > Save As > 'CSV UTF-8') and point data at the .csv")
    if text and magic.startswith(_PARQUET_MAGIC):
        raise DataLoadError(f"input file {path} is a Parquet file, not text; set data.format: parquet or rename it "
                            ".parquet")
    if _HTML_START.match(head):  # read as CSV it was "no column 'text' (its columns: ['<!DOCTYPE html>'])"
        raise DataLoadError(f"input file {path} is an HTML page (a web page saved, or the error page of a failed "
                            "download), not a data file: download the file itself (on GitHub, its 'Raw' link) and "
                            "give that file")


def _refuse_tar(path: Path, head: bytes) -> None:
    """A tar archive (``train.csv.tar.gz``, a Spark output folder packed whole) read as text was one CSV with the
    tar header glued to its first line and each later file's header a data row, or an error naming garbage columns
    (dirty-data QA): named as what it is. A tar header holds ``ustar`` at byte 257."""
    if len(head) >= 262 and head[257:262] == b"ustar":
        raise DataLoadError(f"input file {path} is a tar archive, not text: extract it (tar -xf {path}) and point "
                            "data at the file inside, or at the folder of several (its shards are read as one file)")


#: the first bytes of every gzip file (``.gz``, and a ``.csv`` that is really a ``.csv.gz``)
_GZIP_MAGIC = b"\x1f\x8b"
#: compressed files by their first bytes: (magic, tool, command that keeps the file, command that writes to
#: stdout, the suffix the first command needs); bzip2's magic includes its block header, so no text starts so
COMPRESSED_MAGIC = ((_GZIP_MAGIC, "gzip", "gunzip -k", "gunzip -c", ".gz"),
                     *((b"BZh" + bytes([level]) + b"1AY&SY", "bzip2", "bunzip2 -k", "bunzip2 -c", ".bz2")
                       for level in b"123456789"),
                     (b"\xfd7zXZ\x00", "xz", "unxz -k", "xz -dc", ".xz"),
                     (b"\x28\xb5\x2f\xfd", "zstd", "zstd -d", "zstd -dc", ".zst"))
#: the names of the workbooks tuneline reads (:mod:`tuneline.workbooks`)
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
#: a zip archive's first bytes: an .xlsx (or .docx, .ods) workbook is one
_ZIP_MAGIC = b"PK\x03\x04"
#: an OLE2 compound file's first bytes: a legacy Excel .xls workbook (or .doc)
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0"
#: a Parquet file starts and ends with these bytes
_PARQUET_MAGIC = b"PAR1"
#: how an HTML page begins (after a byte-order mark, white space and comments): a doctype or an <html> element
_HTML_START = re.compile(rb"(?:\xef\xbb\xbf)?(?:\s|<!--.*?-->)*<(?:!doctype\s+html|html[\s>])",
                         re.IGNORECASE | re.DOTALL)


def _utf16_without_mark(head: bytes) -> str | None:
    """``utf-16-le``/``-be`` (or ``utf-32-le``/``-be``) when ``head`` is mostly-ASCII text in that encoding written
    without a byte-order mark (bcp, some database exports), else None.

    Such text read as UTF-8 or latin-1 is characters with a NUL between each (columns named ``t\\x00e\\x00x...``):
    its high bytes are zero at every other (every fourth) position and almost never at the others, a pattern no
    text file in an 8-bit encoding has (text holds no NULs).
    """
    size = len(head) - len(head) % 4
    if size < 8:
        return None
    data = np.frombuffer(head[:size], dtype=np.uint8).reshape(-1, 4) == 0
    share = data.mean(axis=0)  # share of NUL bytes at each position modulo 4
    if share[1:].min() >= 0.6 and share[0] <= 0.05:
        return "utf-32-le"
    if share[:3].min() >= 0.6 and share[3] <= 0.05:
        return "utf-32-be"
    even, odd = (share[0] + share[2]) / 2, (share[1] + share[3]) / 2
    if odd >= 0.6 and even <= 0.05:
        return "utf-16-le"
    if even >= 0.6 and odd <= 0.05:
        return "utf-16-be"
    return None


def _check_not_utf16(path: Path, head: bytes, codec: codecs.CodecInfo) -> None:
    """A one-line error for UTF-16/32 text without a byte-order mark read under an 8-bit or UTF-8 encoding."""
    if codec.name.startswith(("utf-16", "utf-32")):
        return
    named = _utf16_without_mark(head)
    if named is not None:
        raise DataLoadError(f"{path} looks like {named.upper()} text without a byte-order mark (a NUL byte between "
                            f"the characters), not {codec.name}; set data.encoding: {named}")


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


def csv_layout(path: Path, encoding: str, skip_lines: int = 0) -> tuple[str, int]:
    """The delimiter of a CSV file and how many lines come before its header.

    The delimiter of ``,``, ``;``, tab and ``|`` that splits the header (the first line after ``skip_lines``) into as
    many fields as it splits most of the records after it (the comma first): a semicolon file whose header quotes a
    name holding a comma (``"text";"label, final"``) is read at ``;``. Where none does (a one-column file, a ragged
    one), the comma, unless the header holds no comma outside quotes but splits at one of the others (the most
    fields). An Excel ``sep=X`` first line names the delimiter and is skipped.
    """
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(_LAYOUT_BYTES)
    except OSError:
        return ",", skip_lines
    try:
        text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    except LookupError:
        return ",", skip_lines  # an unknown encoding: the reader's own check names it
    lines = text.splitlines()
    if len(head) == _LAYOUT_BYTES:
        lines = lines[:-1]  # the read may have cut the last line
    else:
        lines = _without_eof_mark(text).splitlines()  # a DOS end-of-file mark is no record of a small file
    lines = lines[skip_lines:]
    if not skip_lines and lines and (declared := _EXCEL_SEPARATOR_LINE.fullmatch(lines[0])):
        return declared.group(1), 1
    sample = [line for line in lines if line.strip()][:_LAYOUT_RECORDS]
    consistent = [delimiter for delimiter in (",", *_OTHER_DELIMITERS) if _splits_consistently(sample, delimiter)]
    if consistent:
        return consistent[0] if consistent[0] == "," else max(
            consistent, key=lambda d: len(next(csv.reader(sample[:1], delimiter=d)))), skip_lines
    first = sample[0] if sample else ""
    fields = lambda delimiter: next(csv.reader([first], delimiter=delimiter), [])  # noqa: E731
    if len(fields(",")) > 1:
        return ",", skip_lines
    count, delimiter = max((len(fields(d)), d) for d in _OTHER_DELIMITERS)
    return (delimiter if count > 1 else ","), skip_lines


#: how much of a file :func:`csv_layout` reads, and how many of its first records it compares
_LAYOUT_BYTES = 1 << 16
_LAYOUT_RECORDS = 50


def _splits_consistently(sample: list[str], delimiter: str) -> bool:
    """Whether ``delimiter`` splits the header (``sample[0]``) into more than one field, and at least 4 in 5 of the
    records after it into as many (records, not lines: a quoted cell may hold a line break)."""
    try:
        counts = [len(row) for row in csv.reader(sample, delimiter=delimiter)]
    except csv.Error:
        return False
    if len(counts) < 2 or counts[0] < 2:
        return False
    body = counts[1:]
    return body.count(counts[0]) * 5 >= len(body) * 4


def header_line_below(path: Path, fmt: str, encoding: str, names: Iterable[str], skip_lines: int = 0,
                      from_header: bool = False) -> int | None:
    """The 1-based number of the first of a CSV/TSV file's lines after its header line (among the first
    :data:`_LAYOUT_RECORDS`) whose fields include every one of ``names`` (case and surrounding spaces aside): where a
    file's header really is when an export wrote a title or notes above it. None when no such line.
    ``from_header``: the header line itself is looked at first (CSV/TSV only), so that a caller can tell a header
    below a title from a header repeated further down (files joined with ``cat``)."""
    wanted = {str(name).strip().casefold() for name in names}
    if fmt == "xlsx":
        from tuneline.workbooks import header_row_below

        return None if from_header else header_row_below(path, wanted, skip_lines)
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(_LAYOUT_BYTES)
        text = head.decode(bom_encoding(path, encoding), errors="replace").lstrip("\ufeff")
    except (OSError, LookupError):
        return None
    # a CSV's delimiter is sniffed from its first line, which here is the title: the header below may use another
    # (a semicolon export with a title line above it is a common European Excel file)
    sniffed = csv_layout(path, encoding, skip_lines)[0]
    delimiters = list(dict.fromkeys((sniffed, ",", *_OTHER_DELIMITERS))) if fmt == "csv" else ["\t"]
    lines = text.splitlines()[:_LAYOUT_RECORDS]
    first = skip_lines if from_header else skip_lines + 1
    for number, line in enumerate(lines[first:], start=first + 1):
        for delimiter in delimiters:
            fields = next(csv.reader([line], delimiter=delimiter), [])
            if wanted <= {field.strip().casefold() for field in fields}:
                return number
    return None


def sniff_delimiter(path: Path, encoding: str) -> str:
    """The delimiter :func:`csv_layout` finds."""
    return csv_layout(path, encoding)[0]


def _named(names: list[str]) -> list[str]:
    """Header names with each empty one named by its 0-based position (``unnamed_3``): the empty columns a
    spreadsheet export leaves after the data (``text,label,,``) are then ignored like any other extra column."""
    return [name or f"unnamed_{i}" for i, name in enumerate(names)]


#: how much of a file's start :func:`_utf16_without_mark` looks at
_SNIFF_BYTES = 4096


def file_bytes(path: Path, encoding: str, what: str = "input file") -> tuple[codecs.CodecInfo, bytes, int]:
    """The codec ``encoding`` names, the file's bytes, and how many of them a UTF-8 byte-order mark takes (0 under
    UTF-16/32, which decode their own mark): a mark must never become part of the first name or token. An unknown
    codec or an unreadable file is one line naming ``what`` and the file."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise DataLoadError(f"unknown encoding {encoding!r} for {path}; set data.encoding to a codec name such as "
                            "utf-8, latin-1 or cp1252") from None
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataLoadError(f"cannot read {what} {path}: {error.strerror or error}") from None
    utf8_mark = data.startswith(codecs.BOM_UTF8) and not codec.name.startswith(("utf-16", "utf-32"))
    return codec, data, len(codecs.BOM_UTF8) if utf8_mark else 0


def _first_line_end(text: str) -> str:
    """The line break the file's lines end with (``\r`` or ``\n``): the one that ends the file, as most files end
    with a line end; else the first one outside a double-quoted field, what ends a header (or a first row whose
    quoted cell may hold a break of the other kind)."""
    if text[-1:] in ("\r", "\n"):
        return text[-1]
    quoted = False
    for match in re.finditer(r'["\r\n]', text):
        if match.group() == '"':
            quoted = not quoted
        elif not quoted:
            return match.group()
    found = re.search(r"[\r\n]", text)
    return found.group() if found else "\n"


def _physical_lines(text: str, lone_cr: str = " ") -> list[str]:
    """``text``'s lines, endings kept: split at \\n and \\r\\n; at a lone \\r only in a file without any \\n (the
    old Mac line end). Elsewhere a lone \\r is a character inside a line, read as a space: pandas' ``to_csv`` writes
    a cell ``a\\rb`` unquoted, and split there, the record's first half was quarantined as ragged while its second
    half (``b,negative``) was kept as a training row of its own, every later record numbered one off.

    A file whose lines end in a lone \r but whose cells hold a \n or two (an old Mac export of a cell with a line
    break) is the old Mac case too, read the other way round: its \n is the character inside a line, read as a
    space. Split at the \n, the whole file had been one line and its header a row of garbage column names.

    ``lone_cr``: what a lone \r inside a line becomes (:data:`_LONE_CR` for the reader that judges it by the
    field counts)."""
    if "\n" not in text:
        return io.StringIO(text, newline="").readlines()
    crlf = text.count("\r\n")
    # which line end the file uses is what ends its first line (a header holds no line break): counting them took an
    # LF file whose cells hold two lone \r each for an old Mac one, and read it as one line (dirty-data QA)
    if not crlf and _first_line_end(text) == "\r":
        return io.StringIO(text.replace("\n", " "), newline="").readlines()
    lines = io.StringIO(text, newline="\n").readlines()
    if text.count("\r") == text.count("\r\n"):
        return lines
    return [(line[:-2].replace("\r", lone_cr) + "\r\n") if line.endswith("\r\n") else line.replace("\r", lone_cr)
            for line in lines]


#: a DOS end-of-file mark (Ctrl-Z, 0x1A) ending a file, whitespace after it: old Windows tools end exports with one,
#: and read as data it was a record of its own, set aside as malformed (or made ``predict`` refuse the file)
_EOF_MARK = r"\x1a[\x1a \t\r\n\f\v]*\Z"
_EOF_MARK_TEXT = re.compile(_EOF_MARK)
_EOF_MARK_BYTES = re.compile(_EOF_MARK.encode())


def _without_eof_mark(text: str) -> str:
    """``text`` without a DOS end-of-file mark ending it (:data:`_EOF_MARK`); a 0x1A anywhere else is data."""
    return _EOF_MARK_TEXT.sub("", text) if "\x1a" in text[-4096:] else text


def _end_before_eof_mark(handle) -> int | None:
    """The byte count of the open binary file ``handle`` without a DOS end-of-file mark ending it (None when none
    does), so that the block reader stops where :func:`_without_eof_mark` has the careful reader stop. Its read
    position is left at the start."""
    size = handle.seek(0, io.SEEK_END)
    handle.seek(max(0, size - 4096))
    tail = handle.read()
    handle.seek(0)
    found = _EOF_MARK_BYTES.search(tail)
    return size - (len(tail) - found.start()) if found else None


def _read_lines(path: Path, encoding: str, on_decode_error: DecodePolicy,
                lone_cr: str = " ") -> tuple[list[str], set[int]]:
    # lone_cr: " " (a lone \r inside a line read as a space, said once: _lone_cr_as_spaces) or _LONE_CR (the caller
    # judges each one)
    """The file's physical lines (:func:`_physical_lines`: endings kept; split at \\n and \\r\\n, at a lone \\r only
    in a file without \\n; a DOS end-of-file mark ending it dropped, :func:`_without_eof_mark`) and the 0-based
    indexes of the lines that did not decode (always empty with on_decode_error="error", which raises instead)."""
    if on_decode_error not in ("error", "quarantine"):
        raise DataLoadError(f"on_decode_error must be 'error' or 'quarantine', not {on_decode_error!r} "
                            "(data.on_decode_error)")
    _check_file(path)
    codec, data, skipped = file_bytes(path, encoding)
    _check_not_utf16(path, data[:_SNIFF_BYTES], codec)
    body = data[skipped:]
    _check_not_utf8(path, body, codec, encoding)
    codec = _latin1_as_cp1252(path, body, codec)
    bad: set[int] = set()
    try:
        text = _decode_mixed(path, body, codec) if _is_8bit(codec) else body.decode(codec.name)
        lines = _physical_lines(_without_eof_mark(text.removeprefix("\ufeff")), _LONE_CR)
    except UnicodeDecodeError as error:
        text = body.decode(codec.name, _MARK_HANDLER)
        lines = _physical_lines(_without_eof_mark(text.removeprefix("\ufeff")), _LONE_CR)
        bad = {index for index, line in enumerate(lines) if _MARK in line}
        if on_decode_error == "error":
            first = min(bad) + 1 if bad else 1
            raise DataLoadError(
                f"{path}: line {first}, byte offset {error.start + skipped}: "
                f"{bytes_shown(body[error.start:error.end])} {'is' if error.end - error.start == 1 else 'are'} not "
                f"valid {encoding} ({error.reason}); set data.encoding "
                "to the file's encoding (e.g. cp1252, or latin-1), or data.on_decode_error: quarantine to set the "
                "lines that do not decode aside") from None
    if not any(line.strip() for line in lines):
        raise EmptyInput(f"input file {path} is empty (only whitespace); give a file with records")
    if lone_cr == " ":
        lines = _lone_cr_as_spaces(path, lines)
    return lines, bad


def _lone_cr_as_spaces(path: Path, lines: list[str]) -> list[str]:
    """``lines`` with each lone \r inside a line (:data:`_LONE_CR`) read as a space, said once with the first such
    line: in a one-column file (texts to predict on, a CoNLL file) nothing tells a \r inside a text from a line end
    of a file joined from an old Mac one, and read as a space, two lines became one text with no word (predict QA:
    3 predictions for 4 records, exit 0)."""
    marked = [i for i, line in enumerate(lines) if _LONE_CR in line]
    if not marked:
        return lines
    from tuneline.common import task_logger  # prefect: imported only where a run logs

    task_logger().warning(
        "%s: %d line(s) hold a lone carriage return (\\r), read as a space inside the line (first: line %d); where it "
        "ends a line (a file joined from an old Mac one), convert the line ends first (e.g. mac2unix) so that each "
        "line is read on its own", path, len(marked), marked[0] + 1)
    return [line.replace(_LONE_CR, " ") for line in lines]


#: a UTF-8 multi-byte character: a lead byte and its continuation bytes (two to four bytes)
_UTF8_CHARACTER = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _decode_mixed(path: Path, body: bytes, codec: codecs.CodecInfo) -> str:
    """``body`` decoded with an 8-bit ``codec``, except its lines that are UTF-8: those are decoded as UTF-8.

    A file of one encoding with lines pasted from another (a cp1252 export with a UTF-8 line appended by a script)
    read those lines as ``naÃ¯ve plot dÃ©jÃ  vu`` without a word, or stopped at a byte cp1252 lacks (``9d`` of a
    UTF-8 quotation mark) with advice to set data.encoding, which was set. A line of non-ASCII bytes that decodes as
    UTF-8 and holds a multi-byte character is UTF-8 beyond doubt (cp1252 text would need pairs such as ``Ã©`` to
    look so); the run logs how many lines were read so. Raises UnicodeDecodeError as ``bytes.decode`` does, for a
    line that is neither."""
    if body.isascii() or not _UTF8_CHARACTER.search(body):
        return body.decode(codec.name)
    parts, utf8_lines = [], []
    for number, line in enumerate(body.splitlines(keepends=True), 1):
        if not line.isascii() and _UTF8_CHARACTER.search(line):
            try:
                parts.append(line.decode("utf-8"))
                utf8_lines.append(number)
                continue
            except UnicodeDecodeError:
                pass
        parts.append(line.decode(codec.name))
    if utf8_lines:
        from tuneline.common import task_logger  # prefect: imported only where a run logs

        task_logger().warning("%s: %d line(s) are UTF-8 in a file read as %s (first: line %d); read them as UTF-8",
                              path, len(utf8_lines), codec.name, utf8_lines[0])
    return "".join(parts)


#: bytes that latin-1 decodes as C1 control characters, which no text holds: cp1252's curly quotes, dashes, € and …
_C1_BYTES = re.compile(rb"[\x80-\x9f]")


def _latin1_as_cp1252(path: Path, body: bytes, codec: codecs.CodecInfo) -> codecs.CodecInfo:
    """cp1252 for a file configured as latin-1 that holds bytes 0x80-0x9F and decodes as cp1252, else ``codec``.

    Latin-1 reads those bytes as invisible control characters, which the tokenizer drops: ``“`` and ``”``
    vanished and ``€5`` trained as ``5``, without a word (dirty-data QA). Such a file is a Windows export:
    web browsers read every page labelled latin-1 as cp1252 for this reason (the WHATWG Encoding Standard). Said in
    the log, once per file."""
    if codec.name != "iso8859-1" or not _C1_BYTES.search(body):
        return codec
    try:
        body.decode("cp1252")
    except UnicodeDecodeError:
        return codec  # bytes cp1252 leaves undefined (0x81, 0x8d, ...): not a cp1252 file either
    from tuneline.common import task_logger  # prefect: imported only where a run logs

    first = body.count(b"\n", 0, _C1_BYTES.search(body).start()) + 1
    task_logger().warning("%s: read as cp1252, not latin-1: it holds %d byte(s) that latin-1 reads as invisible "
                          "control characters and cp1252 as quotes, dashes or € (first on line %d); set "
                          "data.encoding: cp1252 to say so", path, len(_C1_BYTES.findall(body)), first)
    return codecs.lookup("cp1252")


def _is_8bit(codec: codecs.CodecInfo) -> bool:
    """Whether ``codec`` maps every byte to one character (latin-1, cp1252, iso-8859-*): it decodes any bytes,
    UTF-8's multi-byte characters too, as wrong text without an error."""
    return codec.name.startswith(("iso8859-", "cp125", "latin")) or codec.name in ("mac-roman", "koi8-r", "koi8-u")


def _check_not_utf8(path: Path, data: bytes, codec: codecs.CodecInfo, encoding: str, line_offset: int = 0) -> None:
    """A one-line error for a UTF-8 file (with non-ASCII characters) read under an 8-bit ``data.encoding``: it
    would read as ``cafÃ©``, without any error. The setting applies to every file of a config, so one cp1252 file
    among UTF-8 ones makes it wrong for the others. Cheap: only under an 8-bit encoding, only for non-ASCII bytes
    (``bytes.isascii`` and one strict UTF-8 decode); ``line_offset``: lines before ``data`` in the file."""
    if not _is_8bit(codec) or data.isascii():
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return  # not UTF-8: the configured encoding is the file's, as far as can be told
    at = re.search(rb"[\x80-\xff]", data).start()
    char = data[at:at + 4].decode("utf-8", errors="ignore")[:1]
    shown = char.encode("utf-8").decode(codec.name, errors="replace")
    line = line_offset + data.count(b"\n", 0, at) + 1
    raise DataLoadError(f"{path} is UTF-8, not {encoding} (line {line}: {char!r} would read as {shown!r}); "
                        "data.encoding applies to every file of the config: convert the other file(s) to UTF-8 "
                        f"(e.g. iconv -f {encoding} -t utf-8) and remove data.encoding, or, if every file is UTF-8, "
                        "just remove it")


def _shown(text: str) -> str:
    """A value for the quarantine: no line ending, undecodable bytes as U+FFFD, at most VALUE_LIMIT characters."""
    return text.rstrip("\r\n").replace(_MARK, "\ufffd")[:VALUE_LIMIT]


def _malformed(row: int, line: int, rule: str, value: str, detail: str) -> dict:
    return {"source_row": row, "source_line": line, "rule": rule, "value": _shown(value), "detail": detail}


def _not_decodable_detail(line_index: int, encoding: str) -> str:
    return (f"line {line_index + 1} is not valid {encoding}; set data.encoding to the file's encoding "
            "(e.g. cp1252 or latin-1) to read it")


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


#: a field exactly as Excel (or R's write.table, pandas with QUOTE_ALL) quotes it: wrapped in ``"``, every ``"``
#: inside doubled
_EXCEL_QUOTED = r'^"(?:[^"]|"")*"$'


#: a field as R's ``write.table`` quotes it (``qmethod = "escape"``, its default): wrapped in ``"``, every ``"``
#: inside escaped with a backslash
_R_QUOTED = r'^"(?:[^"\\]|\\.)*"$'


def _unquoted(field: str) -> str:
    """``field`` without the pair of quotes Excel wraps it in and with each doubled quote inside undoubled (Excel
    writes the cell ``say "hi"`` as ``"say ""hi""`` followed by a closing quote); else ``field`` as it is."""
    return field[1:-1].replace('""', '"') if re.fullmatch(_EXCEL_QUOTED, field) else field


def _header_names(fields: list[str], dialect: dict) -> list[str]:
    """Column names from the header's fields: trimmed, unquoted in a TSV file (a header ``"text"<TAB>"label"`` names
    the columns ``text`` and ``label``, never ``"text"``: TSV is read without quote processing), empty ones named
    by :func:`_named`. A data line that gives the same names repeats the header (:func:`_repeats_header`)."""
    names = [field.strip() for field in fields]
    if dialect.get("quoting") == csv.QUOTE_NONE:
        names = [_unquoted(name).strip() for name in names]
    return _named(names)


class _Header(NamedTuple):
    """The header's column names and 1-based line, for telling a data line that repeats it; ``keys``: the names as
    compared (:func:`_name_key`), ``pieces``: their longest quote-free pieces, the block reader's cheap filter."""

    names: list[str]
    line: int
    keys: list[str]
    pieces: tuple[str, ...]


#: ASCII letters to lower case, as Arrow's ``ascii_lower`` does it (the block reader filters lines with that)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _name_key(name: str) -> str:
    """A header name as a repeated header line is compared with it: without a UTF-8 byte-order mark (the start of
    a file joined on with ``cat``; a quoted name behind one is unquoted, as the csv module leaves the quotes there)
    and in lower case (ASCII letters: an export that writes ``Text,Label``)."""
    name = name.strip()
    if name.startswith("\ufeff"):
        name = _unquoted(name.lstrip("\ufeff").strip()).strip()
    return name.translate(_ASCII_LOWER)


def _repeat_check(names: list[str], line: int) -> _Header | None:
    """The header a data line must not repeat; None when none of its names is written (``,,``): a data line of
    empty fields would "repeat" it."""
    if _header_probe(names) is None:
        return None
    keys = [_name_key(name) for name in names]
    pieces = tuple(dict.fromkeys(max(key.split('"'), key=len) for key in keys))
    return _Header(names, line, keys, ("",) if "" in pieces else pieces)


def _header_probe(names: list[str]) -> int | None:
    """A column whose header name is written (not an ``unnamed_`` default): a line repeating the header (or a
    permutation of it) holds a header name in that field, so one of :attr:`_Header.pieces` (ASCII lower case)."""
    return next((j for j, name in enumerate(names) if name != f"unnamed_{j}"), None)


def _header_order(fields: list[str], header: _Header | None, dialect: dict) -> list[int] | None:
    """Whether a data record's fields, normalised as the header's are, are the header's names (:func:`_name_key`):
    the header line of another file, where files were joined with their headers (``cat a.csv b.csv``). None if
    not; else where each header column is in the record: ``[0, 1, ...]`` for the header itself, another order for
    the header of a file with its columns in another order (``label,text``)."""
    if header is None or len(fields) != len(header.names):
        return None
    probe = fields[_header_probe(header.names)].translate(_ASCII_LOWER)
    if not any(piece in probe for piece in header.pieces):
        return None
    keys = [_name_key(name) for name in _header_names(fields, dialect)]
    if keys == header.keys:
        return list(range(len(keys)))
    if len(set(keys)) == len(keys) and sorted(keys) == sorted(header.keys):
        position = {key: i for i, key in enumerate(keys)}
        return [position[key] for key in header.keys]
    return None


def _repeats_header(fields: list[str], header: _Header | None, dialect: dict) -> bool:
    """Whether a data record is a header line (:func:`_header_order`), in the header's column order or not."""
    return _header_order(fields, header, dialect) is not None


def _repeated_header(number: int, line: int, value: str, header: _Header, order: list[int] | None = None) -> dict:
    """The quarantine entry of a repeated header line; ``order`` (:func:`_header_order`) says whether its columns
    are in another order, and so are the records after it (read in that order)."""
    if order is None or order == sorted(order):
        return _malformed(number, line, "repeated_header", value,
                          f"line {line} repeats the header (line {header.line}), as where files are joined with "
                          "their headers; it is no record: remove it (join files without their header lines)")
    names = ",".join(header.names[j] for j in sorted(range(len(order)), key=order.__getitem__))
    return _malformed(number, line, "repeated_header", value,
                      f"line {line} repeats the header (line {header.line}) with its columns in another order "
                      f"({names}), as where files with different column orders are joined; it is no record, and the "
                      "records after it are read in its column order: remove it, or join files whose columns are in "
                      "one order")


class _CarefulOnly(Exception):
    """The block reader met what only the careful reader reads right (a header in another column order, after
    which records are read in that order): :func:`_read_delimited_fast` gives the file to it."""


#: An Excel cell with a line break in a TSV file: the line's last field opens a quote that it does not close, and a
#: later line's first field closes it. TSV is read one record per line without quotes, so each line would be read
#: (or half-read) as a record of its own. RE2 and Python syntax alike (the block reader matches with Arrow).
_OPENS_CELL = r'(?:^|\t)"(?:[^"]|"")*$'
_CLOSES_CELL = r'^(?:[^"]|"")*"(?:\t|$)'
#: the most lines one such cell is looked for over
_CELL_LINES = 1000


def _quoted_cells(lines: list[str] | _LazyLines, openers: list[int], closers: list[int], expected: int,
                  last: bool = True) -> tuple[list[tuple[int, int]], int | None]:
    """The (first, last) line indexes of each cell spanning lines in ``lines`` (sorted ``openers`` and ``closers``:
    indexes of the lines matching :data:`_OPENS_CELL` and :data:`_CLOSES_CELL`), and the first opener whose closing
    line may lie past the end of ``lines`` when they are not the ``last`` lines of the file (else None).

    A span counts only when its lines, read with Excel's quoting, are exactly one record of ``expected`` fields:
    a GLUE sentence that merely starts with a quote (``" the time machine " is a movie .``) is no opener, and one
    that opens a quote it never closes finds no closer making such a record.
    """
    spans: list[tuple[int, int]] = []
    covered = 0
    for first in openers:
        if first < covered:
            continue
        at = bisect.bisect_right(closers, first)
        if at == len(closers):
            if not last and len(lines) - first <= _CELL_LINES:
                return spans, first
            continue
        end = closers[at]
        if end - first > _CELL_LINES:
            continue
        try:
            rows = list(csv.reader(lines[first:end + 1], delimiter="\t", strict=True))
        except csv.Error:
            continue
        if len(rows) == 1 and len(rows[0]) == expected:
            spans.append((first, end))
            covered = end + 1
    return spans, None


def _cell_detail(first: int, end: int) -> str:
    """The quarantine detail of the record whose cell spans 1-based lines ``first``-``end``."""
    return (f"lines {first}-{end}: a quoted cell seems to span lines (a line break inside a cell, as Excel writes "
            "it); TSV is read one record per line, without quotes: save the file without line breaks in cells, or "
            "as CSV (data.format: csv)")


@functools.cache
def _empty_fields(delimiter: str, quoted: bool, re2: bool = False) -> str:
    """A regular expression for a line (its ending removed) of only empty fields: whitespace between delimiters,
    or, where quotes are read (CSV), a field of quoted whitespace (``"",""``). Python syntax, or RE2 for Arrow.

    Such a line is what a spreadsheet writes for an empty row (Excel leaves ``,,,`` or ``;;`` lines after the data);
    it is no record, as a blank line is none (and a line that is whitespace only is such a line too)."""
    escape = (lambda c: f"\\x{{{ord(c):x}}}") if re2 else re.escape  # noqa: E731
    space = "[" + "".join(escape(c) for c in _WHITESPACE) + "]*"
    one = f'(?:{space}|"{space}")' if quoted else space
    return f"^{one}(?:{escape(delimiter)}{one})*$"


@functools.cache
def _empty_fields_pattern(delimiter: str, quoted: bool) -> re.Pattern:
    return re.compile(_empty_fields(delimiter, quoted))


def _named_columns(names: list[str]) -> int:
    """How many columns up to the last one the header names (not an ``unnamed_`` default): a record may stop after
    them. Excel writes the empty columns after the data as trailing delimiters on the first 16 rows only (header
    ``text,label,,``, rows ``a,pos,,`` then ``b,neg``): the rows after those had been quarantined as ragged although
    all they lack is empty, unnamed columns."""
    return max((j + 1 for j, name in enumerate(names) if name != f"unnamed_{j}"), default=len(names))


def _no_record(line: str, dialect: dict) -> bool:
    """Whether a physical line holds no record: blank, or only empty fields (:func:`_empty_fields`). Both readers
    skip such lines and do not count them in ``records_seen``."""
    content = line.rstrip("\r\n")
    stripped = content.strip()
    if not stripped:
        return True
    delimiter = dialect.get("delimiter", ",")
    quoted = dialect.get("quoting") != csv.QUOTE_NONE
    if stripped[0] != delimiter and not (quoted and stripped[0] == '"'):
        return False
    return _empty_fields_pattern(delimiter, quoted).fullmatch(content) is not None


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
        if error is None and (not fields or (start == end and _no_record(lines[start], dialect))):
            continue  # a blank line, or one of only empty fields (``,,,``), is no record
        spans.append(_Span(start, end, fields, error))
    return spans


BACKSLASH_DETAIL = ("line {line}: a quote inside a quoted field is escaped with a backslash (\\\"), as Spark and "
                    "MySQL export it, where CSV doubles it (\"\"), so the field would be read cut or garbled; "
                    "re-export the file with doubled quotes (\"\")")
BACKSLASH_HINT = ('; the line holds \\": if the file escapes quotes with a backslash (Spark, MySQL), re-export it '
                  'with doubled quotes ("")')


@functools.cache
def _quoted_backslash(delimiter: str) -> re.Pattern:
    """A field that opens a quote and holds ``\\"`` before any lone quote closes it."""
    return re.compile(f'(?:^|{re.escape(delimiter)})"(?:[^"]|"")*?\\\\"')


def _escaped_with_backslash(block: list[str], dialect: dict, expected: int | None = None) -> bool:
    """Whether the lines of one record escape a quote inside a quoted field with a backslash (``"he said \\"hi\\""``,
    the default of Spark and MySQL exports): they then read as one strict record with ``escapechar="\\"``, and
    RFC 4180's strict reading refuses them or reads them otherwise (the lenient one silently garbles the text, or
    splits it into too many fields).

    A record that RFC 4180's strict reading takes as it is, with the ``expected`` field count, is not escaped: R's
    ``write.csv`` and Excel double quotes, and a field ending in a backslash (``"C:\\temp\\","pos"``) is theirs."""
    if dialect.get("quoting") == csv.QUOTE_NONE or not any('\\"' in line for line in block):
        return False
    if not _quoted_backslash(dialect.get("delimiter", ",")).search("".join(block)):
        return False
    try:
        escaped = list(csv.reader(block, strict=True, escapechar="\\", doublequote=False, **dialect))
    except csv.Error:
        return False
    if len(escaped) != 1:
        return False
    try:
        plain = list(csv.reader(block, strict=True, **dialect))
    except csv.Error:
        return True
    if expected is not None and len(plain) == 1 and len(plain[0]) == expected:
        return False
    return plain != escaped


def stray_quote_field(text: str, dialect: dict) -> int | None:
    """The number (1-based) of the first field of ``text``, one record's raw lines, that opens a quote which closes
    before the field ends (``"Best" movie ever,pos``: what ``f.write(f"{text},{label}")`` writes for a text that
    starts with a quote); None when there is none, or for TSV (no quote processing).

    The csv module reads such a field without its quotes (``Best movie ever``), and pandas does the same: the text
    trained on is not the text written, with no sign of it. A quote that never closes is left to the other rules."""
    if dialect.get("quoting") == csv.QUOTE_NONE:
        return None
    quote, delimiter = dialect.get("quotechar", '"'), dialect.get("delimiter", ",")
    i, n, field, at_start = 0, len(text), 1, True
    while i < n:
        char = text[i]
        if at_start and char == quote:
            i += 1
            while i < n and not (text[i] == quote and text[i + 1:i + 2] != quote):
                i += 2 if text[i] == quote else 1  # a doubled quote is one quote inside the field
            if i >= n:
                return None
            i += 1  # past the closing quote
            if i < n and text[i] not in (delimiter, "\r", "\n"):
                return field
            at_start = False
            continue
        if char == delimiter:
            field += 1
        at_start = char == delimiter
        i += 1
    return None


def stray_quote_detail(text: str, field: int, delimiter: str = ",") -> str:
    """What is wrong with the field, and this very field written right (it had shown one fixed example about a
    movie, whatever the field held)."""
    raw = _raw_field(text.rstrip("\r\n"), field, delimiter)
    fixed = '"' + raw.replace('"', '""') + '"'
    return (f"field {field} opens a quote that closes before the field ends ({excerpt(raw, 50)}), so it would be "
            f"read without its quotes: write the whole field in quotes with each quote inside doubled "
            f"({fixed if len(fixed) <= 60 else fixed[:57] + '...'}), as spreadsheet programs and "
            "pandas write it")


def _raw_field(text: str, field: int, delimiter: str, quote: str = '"') -> str:
    """The ``field``-th field (1-based) of a line as written, quotes and all: a quoted part is skipped whole, so a
    delimiter inside it does not end the field."""
    i, n, number, start = 0, len(text), 1, 0
    while i < n:
        if i == start and text[i] == quote:
            i += 1
            while i < n and not (text[i] == quote and text[i + 1:i + 2] != quote):
                i += 2 if text[i] == quote else 1
            i += 1
            continue
        if text[i] == delimiter:
            if number == field:
                return text[start:i]
            number, start = number + 1, i + 1
        i += 1
    return text[start:] if number == field else text


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
    return any(not _no_record(line, dialect) and _parses_as_record(line, expected, dialect) for line in block[1:-1])


def _nonblank(lines: list[str], lo: int, hi: int, dialect: dict) -> int:
    """How many of lines[lo:hi] are no blank line nor one of empty fields (:func:`_no_record`)."""
    return sum(1 for line in lines[lo:hi] if not _no_record(line, dialect))


def read_table(path: Path, fmt: str, *, encoding: str = "utf-8", header: bool = True,
               on_decode_error: DecodePolicy = "error", compact: bool = False, skip_lines: int = 0,
               tsv_quotes: str = "auto", sheet: str | None = None) -> ReadResult:
    """Read a csv, tsv, jsonl or parquet file into a :class:`ReadResult` (see the module docstring).

    ``compact=True``: the columns of a CSV/TSV file come back as pandas ``str`` columns (Arrow-backed, a missing
    value is NaN) instead of object columns of Python strings and None: the same values in a fraction of the memory,
    for files of millions of records. JSONL and Parquet frames are object columns either way (their values need not
    be strings).

    ``skip_lines``: CSV/TSV lines before the header (or the first record) that are no part of the table, such as
    an export's title line; they are not records.

    ``tsv_quotes``: ``auto`` reads a TSV column whose every value is wrapped in double quotes without them
    (:func:`_unwrapped_quotes`); ``keep`` keeps every value as written.

    ``sheet``: an Excel workbook's sheet to read (its name); the first by default.
    """
    path = Path(path)
    encoding = bom_encoding(path, encoding)
    if fmt in ("csv", "tsv"):
        result = _read_delimited(path, fmt, encoding, header, on_decode_error, compact, skip_lines)
        if not header:
            _refuse_numbered_header(path, result)
        if fmt == "csv" and header:
            return _bare_na_missing(path, result, encoding, on_decode_error, skip_lines)
        return _unwrapped_quotes(path, result) if fmt == "tsv" and tsv_quotes == "auto" else result
    if fmt == "jsonl":
        return _read_jsonl(path, encoding, on_decode_error)
    if fmt == "parquet":
        return _read_parquet(path)
    if fmt == "xlsx":
        from tuneline.workbooks import read_workbook

        return read_workbook(path, header=header, skip_lines=skip_lines, sheet=sheet)
    raise DataLoadError(f"format {fmt!r} of {path} is not a table format; set data.format to csv, tsv, jsonl, "
                        "parquet or xlsx")


def _record_text(lines: list[str], index: int, most: int = 1000) -> str:
    """The record starting at physical line ``index`` as written, without its last line end: its lines up to the
    first that closes every quote opened (a quoted cell may hold line breaks)."""
    quotes, end = 0, index
    while end < len(lines) and end < index + most:
        quotes += lines[end].count('"')
        end += 1
        if quotes % 2 == 0:
            break
    return "".join(lines[index:end]).rstrip("\r\n")


def _bare_na_missing(path: Path, result: ReadResult, encoding: str, on_decode_error: DecodePolicy,
                     skip_lines: int) -> ReadResult:
    """A bare ``NA`` in a CSV file whose header names are all quoted, read as a missing value.

    R's ``write.csv`` quotes every name and every string and writes a missing value as a bare ``NA``; pandas with
    ``QUOTE_ALL`` or ``QUOTE_NONNUMERIC`` quotes a text "NA" too. So in such a file ``NA`` and ``"NA"`` differ: the
    first is missing, the second the text. The csv module drops the quotes that tell them apart, so the text "NA"
    had been trained on, and an ``NA`` label refused as a missing-value spelling. The lines of the records holding
    ``NA`` are read again as written (only when the header is quoted and some value is ``NA``).
    """
    frame = result.frame
    columns = [name for name in frame.columns if name not in PROVENANCE_COLUMNS]
    if "source_line" not in frame.columns or not len(frame) or not columns:
        return result
    delimiter, skip = csv_layout(path, encoding, skip_lines)  # skip: also an Excel ``sep=;`` line
    delimiter = delimiter or ","
    sample = head_sample(path, encoding, skip)  # first: most files stop here, before a pass over every column
    if not sample or not re.fullmatch(f'"[^"]*"(?:{re.escape(delimiter)}"[^"]*")*', sample[0].strip()):
        return result
    masks = {name: (frame[name] == "NA").fillna(False).to_numpy(dtype=bool) for name in columns}
    if not any(mask.any() for mask in masks.values()):
        return result
    lines, _ = _read_lines(path, encoding, on_decode_error)
    source_lines = frame["source_line"].to_numpy(dtype=np.int64)
    changed: dict[str, pd.Series] = {}
    bare = 0
    for position, name in enumerate(columns, start=1):
        rows = np.flatnonzero(masks[name])
        missing = np.zeros(len(frame), dtype=bool)
        for row in rows:
            index = int(source_lines[row]) - 1
            if 0 <= index < len(lines) and _raw_field(_record_text(lines, index), position,
                                                      delimiter).strip() == "NA":
                missing[row] = True
        if missing.any():
            bare += int(missing.sum())
            changed[name] = frame[name].where(~missing, None)
    if not changed:
        return result
    from tuneline.common import task_logger  # prefect: imported only where a run logs

    task_logger().info('%s: %d bare NA value(s) in a file whose header is quoted (as R\'s write.csv writes it): '
                       'read as missing values; a quoted "NA" stays the text NA', path, bare)
    data = {name: changed.get(name, frame[name]) for name in frame.columns}
    return ReadResult(frame=pd.DataFrame(data), malformed=result.malformed, records_seen=result.records_seen,
                      has_lines=result.has_lines)


def _refuse_numbered_header(path: Path, result: ReadResult) -> None:
    """A file read without a header (``data.header: false``) whose first record is ``0, 1, 2``, the header pandas
    writes for unnamed columns (``to_csv`` of a frame read with ``header=None``): it was trained on as a text "0"
    with the label of id 1 (loop QA)."""
    columns = [c for c in result.frame.columns if c not in PROVENANCE_COLUMNS]
    if len(columns) < 2 or not len(result.frame):
        return
    first = [result.frame[c].iloc[0] for c in columns]
    if [str(v).strip() if isinstance(v, str) else None for v in first] != [str(i) for i in range(len(columns))]:
        return
    line = int(result.frame["source_line"].iloc[0]) if "source_line" in result.frame else 1
    raise DataLoadError(f"{path}: line {line} ({', '.join(first)}) names the columns by their numbers, as pandas "
                        "writes a header for unnamed columns, and it would be read as a record since the file is read "
                        "without a header; delete that line (or write the file with header=False), or set "
                        "data.header: true (the columns keep the same names)")


def _read_delimited(path: Path, fmt: str, encoding: str, header: bool, on_decode_error: DecodePolicy,
                    compact: bool = False, skip_lines: int = 0) -> ReadResult:
    """The block reader where the file allows it (:func:`_read_delimited_fast`), else the careful one: the same
    records, record and line numbers, values and malformed records either way (the tests compare the two)."""
    if fmt == "tsv" and header:
        _check_tab_separated(path, encoding, skip_lines)
    delimiter, skip = csv_layout(path, encoding, skip_lines) if fmt == "csv" else (None, skip_lines)
    if delimiter is not None and _spaced_before_quotes(path, encoding, skip, delimiter):
        from tuneline.common import task_logger

        task_logger().info('%s: its fields are quoted after a space (%s "..."): reading them without that space',
                           path, delimiter)
        result = _read_delimited_careful(path, fmt, encoding, header, on_decode_error,
                                         dialect={"delimiter": delimiter, "skipinitialspace": True}, skip_lines=skip)
        return _with_string_columns(result) if compact else result
    if delimiter not in (None, ",") or skip:  # the block reader splits at commas only: the careful one reads these
        if delimiter not in (None, ","):
            from tuneline.common import task_logger  # prefect: imported only where a run logs

            task_logger().info("%s: reading it as %r-separated (%s)", path, delimiter,
                               "its first line says so" if skip > skip_lines else
                               "its header and records split into as many fields at it")
        dialect = {"delimiter": delimiter} if delimiter is not None else None
        result = _read_delimited_careful(path, fmt, encoding, header, on_decode_error, dialect=dialect,
                                         skip_lines=skip)
        return _with_string_columns(result) if compact else result
    result = _read_delimited_fast(path, fmt, encoding, on_decode_error) if header else None
    if result is None:
        result = _read_delimited_careful(path, fmt, encoding, header, on_decode_error)
        return _with_string_columns(result) if compact else result
    return result if compact else _with_object_columns(result)


def _spaced_before_quotes(path: Path, encoding: str, skip_lines: int, delimiter: str) -> bool:
    """Whether the CSV file writes a space between a delimiter and a quoted field (``"text", "label"``, as a hand
    written file or some exporters do): RFC 4180 reads such a field with its space and its quotes as text, so the
    header named a column ``"label"`` (quotes included) and, told to use that name, every label was read as
    ``"positive"``, quotes and all (exploratory QA). True when its first lines have such a field and none with text
    between the delimiter and an opening quote other than spaces."""
    sample = head_sample(path, encoding, skip_lines)
    if not sample or not any(f'{delimiter} "' in line for line in sample):
        return False
    spaced = quoted = 0
    try:
        for fields in csv.reader(sample, delimiter=delimiter):
            for field in fields[1:]:
                stripped = field.lstrip(" ")
                if stripped != field and len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
                    spaced += 1
                elif field.startswith('"'):
                    quoted += 1
    except csv.Error:  # the reader's own pass says what is wrong with the file
        return False
    return spaced > 0 and spaced >= quoted


#: how :func:`_check_tab_separated` names the delimiters of a file read as TSV that holds no tab
_DELIMITER_NAMES = {",": "commas", ";": "semicolons", "|": "'|'"}


def head_sample(path: Path, encoding: str, skip_lines: int = 0) -> list[str] | None:
    """The first non-blank lines (at most :data:`_LAYOUT_RECORDS`) of the file's first :data:`_LAYOUT_BYTES`, after
    ``skip_lines``, that the layout checks look at; None when it cannot be read or decoded. The read may have cut
    the last line (left out); a DOS end-of-file mark is no record of a small file."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(_LAYOUT_BYTES)
        text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    except (OSError, LookupError):
        return None
    lines = text.splitlines()[:-1] if len(head) == _LAYOUT_BYTES else _without_eof_mark(text).splitlines()
    return [line for line in lines[skip_lines:] if line.strip()][:_LAYOUT_RECORDS]


def _check_tab_separated(path: Path, encoding: str, skip_lines: int = 0) -> None:
    """A one-line error for a file read as TSV (named .tsv, or data.format: tsv) whose first lines hold no tab and
    split at a comma (or ``;``, ``|``) into as many fields each, header and records alike
    (:func:`_splits_consistently`): a CSV file. Read as TSV each line is one field, and the error about the missing
    column (``its columns: ['text,label']``) named no fix. A one-column TSV file whose texts hold commas has a header
    without one."""
    sample = head_sample(path, encoding, skip_lines)  # None: the reader's own checks say what is wrong
    if not sample or any("\t" in line for line in sample):
        return
    delimiter = next((d for d in (",", ";", "|") if _splits_consistently(sample, d)), None)
    if delimiter is None:
        return
    fields = [field.strip() for field in next(csv.reader(sample[:1], delimiter=delimiter))]
    raise DataLoadError(f"{path} is read as TSV (tab-separated), but its lines hold no tab and split at "
                        f"{_DELIMITER_NAMES[delimiter]} into {len(fields)} fields (header: {', '.join(fields[:5])}"
                        f"{', ...' if len(fields) > 5 else ''}): it is CSV; set data.format: csv (or name the file "
                        ".csv)")


def _unwrapped_quotes(path: Path, result: ReadResult) -> ReadResult:
    """A TSV file's columns whose every value is wrapped in double quotes (Excel-style, :data:`_EXCEL_QUOTED`), read
    without them: R's write.table and pandas with QUOTE_ALL write ``"great film"<TAB>"pos"``, whose labels must be
    ``pos``, not ``"pos"``. R escapes a quote inside with a backslash (``"he said \\"hi\\""``) and leaves its
    missing values bare (``NA``): such values, and a column of them beside the quoted ones, had kept every quote.

    Per column, not per value: TSV is read without quote processing because GLUE-style files have quotes as text,
    and a sentence that is one quotation (``" hello there "``) looks like a quoted cell. A column where only some
    values are so wrapped (Excel quotes a cell only when it holds a quote, tab or line break) keeps its values as
    written, with a warning saying how to have them read as quoted cells when one of them doubles a quote inside
    (Excel's mark; a sentence that is one quotation doubles none).
    """
    frame = result.frame
    changed: dict[str, pd.Series] = {}
    for name in frame.columns:
        if name in PROVENANCE_COLUMNS:
            continue
        series = frame[name]
        compact = series.dtype != object
        values = (series.array.__arrow_array__() if compact else
                  pa.array(series.tolist(), type=pa.large_string()))
        excel = pc.match_substring_regex(values, _EXCEL_QUOTED)
        r_style = pc.and_not(pc.match_substring_regex(values, _R_QUOTED), excel)
        wrapped = (pc.sum(excel).as_py() or 0) + (pc.sum(r_style).as_py() or 0)
        present = len(values) - values.null_count
        if not wrapped:
            continue
        from tuneline.common import task_logger  # prefect: imported only where a run logs

        r_missing = pc.equal(values, "NA")
        r_na = wrapped < present and wrapped + (pc.sum(r_missing).as_py() or 0) == present
        if r_na:
            present = wrapped  # R's NA, the one value write.table leaves unquoted: a missing value
        if wrapped < present:
            doubled = pc.sum(pc.and_(excel, pc.match_substring(pc.utf8_slice_codeunits(values, 1, -1), '""'))
                             ).as_py() or 0
            if not doubled:  # quotations as text (GLUE's MRPC: '" We 're just dealing with ... . "'), no Excel cell:
                continue     # read as CSV they would lose their quotes
            task_logger().warning(
                "%s: %d of %d values of column %r are wrapped in double quotes (as Excel writes a cell holding a "
                "quote, tab or line break); a TSV file is read without quote processing, so they keep the quotes: "
                "save the file as CSV (data.format: csv) to have them read as quoted cells, or set "
                "data.tsv_quotes: keep if the quotes are text", path, wrapped, present, name)
            continue
        task_logger().info("%s: every value of column %r is wrapped in double quotes; reading them without those "
                           "quotes (as Excel or R wrote them)", path, name)
        inner = pc.utf8_slice_codeunits(values, 1, -1)
        inner = pc.if_else(r_style, pc.replace_substring(inner, '\\"', '"'), pc.replace_substring(inner, '""', '"'))
        empty = pc.equal(inner, "")
        inner = pc.if_else(pc.or_(empty, pc.fill_null(r_missing, False)) if r_na else empty,
                           pa.scalar(None, type=inner.type), inner)
        if compact:
            chunked = inner if isinstance(inner, pa.ChunkedArray) else pa.chunked_array([inner])
            changed[name] = _string_series(chunked)
        else:
            changed[name] = pd.Series(inner.to_pylist(), dtype=object)
    if not changed:
        return result
    data = {name: changed.get(name, frame[name]) for name in frame.columns}
    return ReadResult(frame=pd.DataFrame(data), malformed=result.malformed, records_seen=result.records_seen)


def _quoted_record_fields(raw: str) -> int | None:
    """How many fields the tab-separated line ``raw`` has when read with Excel's quoting; None if it does not parse
    as one record that way."""
    try:
        rows = list(csv.reader([raw.rstrip("\r\n")], delimiter="\t", strict=True))
    except csv.Error:
        return None
    return len(rows[0]) if len(rows) == 1 else None


def _field_count_detail(count: int, expected: int, count_hint: str, raw: str, dialect: dict) -> str:
    """``3 fields, header has 2``, plus the likely fix when the extra field is an empty one at the end of the line
    (an export that ends every line with the delimiter)."""
    detail = f"{count} fields, {count_hint}"
    delimiter = dialect.get("delimiter", ",")
    if re.match(r"\s*(#|//)", raw):  # "# exported by tool v1": said as ragged only, the user looked for a comma (QA)
        return detail + ("; it looks like a comment line, and data files hold no comments: remove it (a text that "
                         "starts with '#' is read as a text when its record has the header's fields)")
    if count < expected and dialect.get("quoting") != csv.QUOTE_NONE and raw.count('"') % 2 \
            and raw.lstrip().startswith('"'):  # the file's last record: nothing after it to swallow (QA)
        detail += ("; its quote is opened and never closed, so the rest of the line was read as one field: close "
                   "it, or double a quote inside a quoted text (\"\")")
    pieces = [piece.strip() for piece in raw.rstrip("\r\n").split(delimiter)]
    if count > expected and dialect.get("quoting") != csv.QUOTE_NONE and raw.count('"') % 2 \
            and any(len(piece) > 1 and piece.endswith('"') and not piece.startswith('"') for piece in pieces):
        # 'a text, cut ."' with its opening quote lost: the generic "must be in double quotes" sent the user
        # looking for an unquoted comma (QA)
        detail += ("; a quote closes a text that no quote opens: add the missing opening quote at that text's "
                   "start (or remove the stray quote)")
    if count > expected and raw.rstrip("\r\n").endswith(delimiter):
        detail += f"; the line ends with a stray {'tab' if delimiter == chr(9) else repr(delimiter)}: remove it"
    if '\\"' in raw and dialect.get("quoting") != csv.QUOTE_NONE:
        detail += BACKSLASH_HINT
    if count > expected and delimiter == "\t" and dialect.get("quoting") == csv.QUOTE_NONE and '"' in raw \
            and _quoted_record_fields(raw) == expected:
        detail += ("; read with quotes, as Excel writes a cell holding a tab, the line has the header's fields: a "
                   "TSV file is read without quotes: set data.format: csv, which reads quoted cells (and finds the tab)")
    if count == expected + 1 and re.match(r'\s*"?\d+"?' + re.escape(delimiter), raw):
        detail += ("; the first field is a number and the header names one column less: a column of row names "
                   "without a header cell, as R's write.table writes it: write with row.names = FALSE")
    return detail


def _process_spans(lines: list[str], spans: list[_Span], expected: int, count_hint: str, dialect: dict,
                   bad_lines: set[int], encoding: str, number_offset: int = 0, line_offset: int = 0,
                   header: _Header | None = None, cells: dict[int, tuple[int, str]] | None = None,
                   reorder: bool = True, named: int | None = None) -> tuple:
    """Judge each record span the careful way: (rows, record numbers, 1-based lines, malformed, continuation).

    ``lines`` are the physical lines the spans index; numbers and lines are shifted by ``number_offset`` and
    ``line_offset`` (the records and lines before ``lines[0]`` in the file). The stack keeps the file's order:
    re-read lines are pushed on top, so record numbers follow the file. A record that repeats ``header`` is
    malformed, and so is each record in ``cells`` (first line's index → last line's index and detail: a TSV cell
    spanning lines, :func:`_quoted_cells`): one record, its other lines no records (dirty-data QA: a line each made
    20 such rows of a 500-row sheet 40 of 520 records, over the bad fraction that 20 of 500 is not).
    After a header in another column order the records are read in its order (``reorder=False``: the block reader,
    which cannot, is told so by :class:`_CarefulOnly`). A record short only of unnamed columns after the ``named``
    first ones is padded with empty fields (:func:`_named_columns`).
    """
    rows: list[list[str]] = []
    row_numbers: list[int] = []
    row_lines: list[int] = []
    malformed: list[dict] = []
    continuation = 0  # non-blank lines that legitimately continue a record (a quoted newline)
    order: list[int] | None = None  # the column order of the last repeated header, if not the header's
    pending = list(reversed(spans))
    cell_end = -1  # the last line of the TSV cell spanning lines being passed over
    while pending:
        span = pending.pop()
        number = number_offset + len(rows) + len(malformed) + 1
        line, multi_line = line_offset + span.start + 1, span.end > span.start
        raw = "".join(lines[span.start:span.end + 1])
        if span.start <= cell_end:
            continuation += _nonblank(lines, span.start, span.end + 1, dialect)
            continue
        if cells and span.start in cells:
            cell_end, detail = cells[span.start]
            cell = "\n".join(text.rstrip("\r\n") for text in lines[span.start:cell_end + 1])
            malformed.append(_malformed(number, line, "quoted_cell_spans_lines", cell, detail))
            continue
        if span.error is not None or (multi_line and _swallowed_lines(lines, span, expected, dialect)):
            last = line_offset + span.end + 1
            if _escaped_with_backslash([lines[span.start]], dialect):  # a quote \" read as opened: lines run on
                rule, detail = "quote_escaped_with_backslash", BACKSLASH_DETAIL.format(line=line)
            elif span.error is not None:
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
            continuation += _nonblank(lines, span.start + 1, span.end + 1, dialect)
        undecodable = [i for i in range(span.start, span.end + 1) if i in bad_lines] if bad_lines else []
        if undecodable:
            malformed.append(_malformed(number, line, "record_not_decodable", raw,
                                        _not_decodable_detail(line_offset + undecodable[0], encoding)))
        elif '\\"' in raw and _escaped_with_backslash(lines[span.start:span.end + 1], dialect, expected):
            malformed.append(_malformed(number, line, "quote_escaped_with_backslash", raw,
                                        BACKSLASH_DETAIL.format(line=line)))
        elif '"' in raw and (stray := stray_quote_field(raw, dialect)) is not None:
            malformed.append(_malformed(number, line, "field_has_stray_quote", raw,
                                        stray_quote_detail(raw, stray, dialect.get("delimiter", ","))))
        elif len(span.fields) != expected and not (named is not None and named <= len(span.fields) < expected):
            malformed.append(_malformed(number, line, "record_has_wrong_field_count", raw,
                                        _field_count_detail(len(span.fields), expected, count_hint, raw, dialect)))
        elif (found := _header_order(fields := span.fields + [""] * (expected - len(span.fields)), header,
                                     dialect)) is not None:
            malformed.append(_repeated_header(number, line, raw, header, found))
            order = None if found == sorted(found) else found
            if order is not None and not reorder:
                raise _CarefulOnly
        else:
            rows.append(fields if order is None else [fields[i] for i in order])
            row_numbers.append(number)
            row_lines.append(line)
    return rows, row_numbers, row_lines, malformed, continuation


def _field_count(text: str, dialect: dict) -> int:
    """How many fields one line without its line end splits into (an unbalanced quote: as the csv module reads it)."""
    try:
        return len(next(csv.reader([text], **dialect), []))
    except csv.Error:
        return -1


def _lone_lf(line: str) -> bool:
    return line.endswith("\n") and not line.endswith("\r\n")


def _rejoin_lone_lf_cells(lines: list[str], first: int, expected: int, dialect: dict, bad_lines: set[int]) -> int:
    """In a file whose lines end in \\r\\n, rejoin a record that a lone \\n inside an unquoted cell split (SQL Server
    Management Studio and other Windows exports write a cell's line break unquoted): the joined record takes the
    first line's place, the \\n read as a space (as a lone \\r is, :func:`_physical_lines`), and the lines it took in
    are left blank, so every later record keeps its line number. How many records were rejoined.

    Split there, the record's first half was quarantined as ragged and its second half kept as a training row of its
    own (dirty-data QA). Only where the evidence is plain: \\r\\n is the file's line end (more lines end in it than
    in a lone \\n, or as many and the first; in a file of \\n lines a short line is a ragged record), the line ends
    in a lone \\n, has fewer fields than ``expected`` and no unbalanced quote (the csv module joins a quoted cell's
    lines itself), and the lines joined give exactly ``expected`` fields. Anything else is left as it was, for the
    rules to judge. A joined line that did not decode makes the record undecodable (``bad_lines``).
    """
    ends = Counter("crlf" if line.endswith("\r\n") else "lf" for line in lines if line.endswith("\n"))
    if not ends["lf"] or ends["crlf"] < ends["lf"] or (ends["crlf"] == ends["lf"] and _lone_lf(lines[0])):
        return 0
    quoted = dialect.get("quoting") != csv.QUOTE_NONE
    rejoined = 0
    i = first
    while i < len(lines):
        line = lines[i]
        if not _lone_lf(line) or (quoted and line.count('"') % 2) or not line.strip() \
                or _field_count(line[:-1], dialect) >= expected:
            i += 1
            continue
        joined, j, count = line[:-1], i, 0  # count: the fields of ``joined`` once it took a line in
        while j + 1 < len(lines) and _lone_lf(lines[j]) and count < expected:
            candidate = joined + " " + lines[j + 1].rstrip("\r\n")
            fields = _field_count(candidate, dialect)
            if (quoted and candidate.count('"') % 2) or fields > expected:
                break
            joined, j, count = candidate, j + 1, fields
        if j > i and count == expected:
            lines[i] = joined + lines[j][len(lines[j].rstrip("\r\n")):]
            for k in range(i + 1, j + 1):
                lines[k] = ""
                if k in bad_lines:
                    bad_lines.add(i)
            rejoined += 1
        i = j + 1
    return rejoined


def _lone_cr_line_ends(path: Path, lines: list[str], first: int, header: bool, dialect: dict,
                       bad_lines: set[int]) -> tuple[list[str], set[int], int]:
    """``lines`` with each lone \r (:data:`_LONE_CR`) that ends a record made a line end, the others spaces; the
    lines' indexes that did not decode, moved with them; and how many line ends were found so.

    A file whose lines end in \n or \r\n with some in a lone \r (files joined from an old Mac export and a Unix
    one, an editor that saved some lines so): read as a space, each such \r glued two or more records into one line,
    quarantined together as "5 fields, header has 2; a text holding ',' must be in double quotes", good rows with it
    (dirty-data QA: 267 records read of 400, 133 set aside). A lone \r inside a cell (pandas writes ``a\rb``
    unquoted) stays a space. Which is which, from the field counts: a line is cut after a piece once the text up to
    it, with no quote left open, has the record's field count (the header's, or the header line's own before its
    first \r; without a header the most common count); a line that holds no two such records is left whole.
    One field a record tells nothing (a text or a \r inside it), so a one-column file is left as it was."""
    marked = {i for i, line in enumerate(lines) if _LONE_CR in line}  # a set: looked up once a line
    if not marked:
        return lines, bad_lines, 0
    if header:
        head = next((i for i in range(first, len(lines)) if lines[i].strip()), None)
        expected = _field_count(lines[head].split(_LONE_CR)[0].rstrip("\r\n"), dialect) if head is not None else 0
    else:
        counts = Counter(_field_count(piece.rstrip("\r\n"), dialect)
                         for line in lines[first:] for piece in line.split(_LONE_CR) if piece.strip())
        expected = counts.most_common(1)[0][0] if counts else 0
    quoted = dialect.get("quoting") != csv.QUOTE_NONE
    out: list[str] = []
    moved: set[int] = set()
    found = 0
    for i, line in enumerate(lines):
        records = _records_at_lone_cr(line, expected, dialect, quoted) if i in marked and expected > 1 else None
        if records is None or i < first:
            records = [line]
        found += len(records) - 1
        if i in bad_lines:
            moved.update(range(len(out), len(out) + len(records)))
        out.extend(records)
    return _lone_cr_as_spaces(path, out), moved, found


def _records_at_lone_cr(line: str, expected: int, dialect: dict, quoted: bool) -> list[str] | None:
    """``line`` cut at the lone \r's that end a record (:func:`_lone_cr_line_ends`): after a piece once the text up
    to it, no quote left open, has ``expected`` fields, or more (a broken record, a line of its own for the rules to
    judge); each piece but the last ending in \r, the rest after the last cut a line of its own. None when that
    finds no whole record or no cut: the line is then judged whole."""
    pieces = line.split(_LONE_CR)
    ending = pieces[-1][len(pieces[-1].rstrip("\r\n")):]
    pieces[-1] = pieces[-1].rstrip("\r\n")
    records: list[str] = []
    whole = 0
    current: str | None = None
    for piece in pieces:
        current = piece if current is None else current + " " + piece
        if quoted and current.count('"') % 2:
            continue
        count = _field_count(current, dialect)
        if count >= expected or not current.strip():
            records.append(current)
            whole += count == expected
            current = None
    if current is not None:
        records.append(current)
    if not whole or len(records) < 2:
        return None
    return [record + "\r" for record in records[:-1]] + [records[-1] + ending]


def _read_delimited_careful(path: Path, fmt: str, encoding: str, header: bool,
                            on_decode_error: DecodePolicy, dialect: dict | None = None,
                            skip_lines: int = 0) -> ReadResult:
    """Every line of the file in memory as Python strings, every record through :func:`_process_spans`: handles
    anything (undecodable lines, header: false) at a few microseconds and a few hundred bytes per record."""
    lines, bad_lines = _read_lines(path, encoding, on_decode_error, lone_cr=_LONE_CR)
    lines = [line[1:] if line.startswith("\ufeff") else line for line in lines]  # cat-joined files' marks
    dialect = dialect or _dialect(fmt)
    _raise_csv_field_limit()
    lines, bad_lines, cut = _lone_cr_line_ends(path, lines, min(skip_lines, len(lines)), header, dialect, bad_lines)
    if cut:
        from tuneline.common import task_logger  # prefect: imported only where a run logs

        task_logger().info("%s: %d line(s) end in a lone \\r (\\r\\n or \\n elsewhere): read as line ends; the line "
                           "numbers given count them, as an editor does", path, cut)
    spans = _parse(lines, min(skip_lines, len(lines)), len(lines), dialect)
    if not spans:  # every line is blank or of empty fields (a sep= line aside)
        raise EmptyInput(f"input file {path} holds no records (only blank lines and lines of empty fields such as "
                            f"{dialect.get('delimiter', ',') * 3!r}); give a file with records")
    if header:
        head, body = spans[0], spans[1:]
        if head.error is not None or (head.end > head.start and _swallowed_lines(lines, head, 0, dialect)):
            raise DataLoadError(f"{path}: the header (line {head.start + 1}) has broken quoting"
                                f"{': ' + head.error if head.error else ''}; fix the header line")
        if any(i in bad_lines for i in range(head.start, head.end + 1)):
            raise DataLoadError(f"{path}: the header (line {head.start + 1}) is not valid {encoding}; set "
                                "data.encoding to the file's encoding (e.g. cp1252 or latin-1)")
        names = _header_names(head.fields or [], dialect)
        _check_names(path, names, f"the header (line {head.start + 1})")
        if not body:
            raise EmptyInput(f"input file {path} has a header (line {head.start + 1}) but no data records; "
                                "give a file with records, or set data.header: false if that line is data")
        expected, first_data_line = len(names), head.end + 1
        count_hint = f"header has {expected}"
        repeated = _repeat_check(names, head.start + 1)
    else:
        body = spans
        counts = Counter(len(span.fields) for span in spans if span.fields is not None)
        expected = counts.most_common(1)[0][0] if counts else 0
        names = [str(i) for i in range(expected)]
        first_data_line = min(skip_lines, len(lines))
        count_hint = f"most records have {expected}"
        repeated = None
    if rejoined := _rejoin_lone_lf_cells(lines, first_data_line, expected, dialect, bad_lines):
        from tuneline.common import task_logger  # prefect: imported only where a run logs

        task_logger().info("%s: %d record(s) hold a line break (\\n) inside an unquoted cell of a file whose lines end "
                           "in \\r\\n: read as one record each, the break as a space", path, rejoined)
        body = _parse(lines, first_data_line, len(lines), dialect)
    cells: dict[int, tuple[int, str]] = {}
    if dialect.get("quoting") == csv.QUOTE_NONE:  # TSV: a cell with a line break (Excel's quoting)
        quoted = range(first_data_line, len(lines))
        openers = [i for i in quoted if '"' in lines[i] and re.search(_OPENS_CELL, lines[i].rstrip("\r\n"))]
        closers = [i for i in quoted if '"' in lines[i] and re.search(_CLOSES_CELL, lines[i].rstrip("\r\n"))]
        for first, end in _quoted_cells(lines, openers, closers, expected)[0]:
            cells[first] = (end, _cell_detail(first + 1, end + 1))

    rows, row_numbers, row_lines, malformed, continuation = _process_spans(
        lines, body, expected, count_hint, dialect, bad_lines, encoding, header=repeated, cells=cells,
        named=_named_columns(names) if header else None)
    values = list(zip(*rows)) if rows else [() for _ in names]
    columns = {name: [v if v != "" else None for v in column] for name, column in zip(names, values)}
    frame = _object_frame(columns, row_numbers, row_lines)
    records_seen = _nonblank(lines, first_data_line, len(lines), dialect) - continuation
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


def _byte_blocks(handle, size: int, end: int | None = None):
    """The file (its first ``end`` bytes, where given) in blocks of whole lines (each ends after a \\n, the last one
    maybe not)."""
    rest = b""
    while chunk := handle.read(size if end is None else min(size, end - handle.tell())):
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


def _without_marks(lines: pa.LargeStringArray) -> pa.LargeStringArray:
    """``lines`` without a UTF-8 byte-order mark starting any of them, as the careful reader reads them: where files
    were joined with ``cat`` after their header lines were cut, each one's mark starts a data line, and would stay in
    its first field (a label ``\\ufeffpos``). Offsets into the block's bytes are unaffected (only values change)."""
    if not pc.any(pc.starts_with(lines, "\ufeff")).as_py():
        return lines
    return pc.replace_substring_regex(lines, "^\ufeff", "", max_replacements=1)


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


class _LazyLines:
    """An Arrow array of lines sliced as a list of Python strings (only the few slices looked at are converted)."""

    def __init__(self, lines: pa.LargeStringArray) -> None:
        self._lines = lines

    def __len__(self) -> int:
        return len(self._lines)

    def __getitem__(self, index: slice) -> list[str]:
        start, stop, _ = index.indices(len(self._lines))
        return self._lines.slice(start, max(stop - start, 0)).to_pylist()


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
                dialect: dict, number_offset: int, line_offset: int, encoding: str,
                header: _Header | None = None, named: int | None = None) -> tuple[_Block, int]:
    """Read the records of one block of physical lines; the block and how many lines it used (fewer than all when
    its last record runs on into the next block, which then starts with the unused lines).

    Lines that start at a record boundary and cannot continue a record (no quote character in a CSV line, any TSV
    line) are split at the delimiter by Arrow; lines with quotes are read by the csv module, one line each where
    the line is one whole record; a record of several lines (a quoted newline, an unclosed quote) or a csv error
    is judged by :func:`_process_spans`, the careful reader's own code, on exactly the lines the csv module gives
    it. Each such record starts where the previous one ended, so this is the careful reader's result. So are the
    TSV cells spanning lines (:func:`_quoted_cells` on the lines Arrow finds opening or closing one) and the records
    repeating ``header`` (an exact comparison of the lines holding the header's name in its field).
    """
    n = len(lines)
    content = pc.utf8_rtrim(lines, characters="\r\n")
    # blank lines and lines of only empty fields (``,,,``): no records (_no_record); whitespace-only lines match too
    blank = pc.match_substring_regex(content, _empty_fields(dialect.get("delimiter", ","),
                                                            dialect.get("quoting") != csv.QUOTE_NONE, re2=True))
    blank = blank.to_numpy(zero_copy_only=False)
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
            special_content = content.take(special_index)
            well = (pc.match_substring_regex(special_content, _WELL_QUOTED_LINE).to_numpy(zero_copy_only=False)
                    & ~pc.match_substring(special_content, '\\"').to_numpy(zero_copy_only=False)  # see below
                    & ~long[special_index])
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
                if fmt == "csv" and ('\\"' in text or stray_quote_field(text, dialect) is not None):
                    continue  # maybe a quote escaped with a backslash, or a stray one: judged by _process_spans
                fields = _single_line_fields(text, dialect)
                if fields is not None:
                    special_fields[i] = fields

    # TSV cells spanning lines: one malformed record each, its other lines no record; one that may close in the
    # next block waits for it.
    used = n
    in_cell = np.zeros(n, dtype=bool)
    cell_rest = np.zeros(n, dtype=bool)  # a cell's lines after its first
    cell_details: dict[int, tuple[int, str]] = {}
    quoted = np.flatnonzero(pc.match_substring(content, '"').to_numpy(zero_copy_only=False)) if fmt == "tsv" else []
    if len(quoted):
        quoted_content = content.take(pa.array(quoted))
        openers = quoted[pc.match_substring_regex(quoted_content, _OPENS_CELL).to_numpy(zero_copy_only=False)]
        if len(openers):
            closers = quoted[pc.match_substring_regex(quoted_content, _CLOSES_CELL).to_numpy(zero_copy_only=False)]
            spans_, deferred = _quoted_cells(_LazyLines(lines), openers.tolist(), closers.tolist(), expected, last)
            if deferred is not None:
                used = deferred
            for first, end in spans_:
                in_cell[first:end + 1] = True
                cell_rest[first + 1:end + 1] = True
                cell_details[first] = (end, _cell_detail(line_offset + first + 1, line_offset + end + 1))
        in_cell &= ~blank
        cell_rest &= ~blank

    # Records of several lines, or csv errors: the careful reader's judgement of exactly those lines.
    islands: list[tuple[int, int, tuple]] = []  # (first line, last line, _process_spans result)
    starts = [i for i in special_index.tolist() if i not in special_fields and i < used and not in_cell[i]]
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
                                                            set(), encoding, line_offset=line_offset,
                                                            header=header, reorder=False, named=named)))
            covered = span.end + 1
    for i, fields in special_fields.items():
        counts[i] = len(fields)

    in_island = np.zeros(n, dtype=bool)
    for first, end, _ in islands:
        in_island[first:end + 1] = True
    in_range = np.arange(n) < used
    record = ~blank & ~in_island & in_range & ~cell_rest
    cell = record & in_cell
    good = record & ~cell & (counts == expected)
    bad = record & ~cell & (counts != expected)
    if named is not None and named < expected and (bad & (counts >= named)).any():
        raise _CarefulOnly  # a record short only of unnamed columns (_named_columns): the careful reader pads it
    repeated = np.zeros(n, dtype=bool)
    orders: dict[int, list[int]] = {}
    if header is not None and good.any():
        column = _header_probe(header.names)
        candidates = np.flatnonzero(good)
        simple = candidates[~special[candidates]]
        if len(simple):  # the field holds a header name's piece, ASCII letters in lower case (_header_order)
            field_ = pc.ascii_lower(pc.list_element(split.take(pa.array(simple)), column))
            named = functools.reduce(pc.or_, (pc.match_substring(field_, piece) for piece in header.pieces))
            simple = simple[named.to_numpy(zero_copy_only=False)]
        for i, fields_ in zip(simple.tolist(), split.take(pa.array(simple, type=pa.int64())).to_pylist()):
            if (found := _header_order(fields_, header, dialect)) is not None:
                orders[i] = found
        for i in candidates[special[candidates]].tolist():
            if (found := _header_order(special_fields[i], header, dialect)) is not None:
                orders[i] = found
        if any(found != sorted(found) for found in orders.values()):
            raise _CarefulOnly  # the records after it are in its order: the careful reader reads them so
        repeated[list(orders)] = True
        good &= ~repeated

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
                                    _field_count_detail(int(counts[i]), expected, count_hint, text, dialect)))
    repeated_index = np.flatnonzero(repeated)
    for i, text in zip(repeated_index.tolist(), lines.take(repeated_index).to_pylist()):
        malformed.append(_repeated_header(int(number_of[i]), line_offset + i + 1, text, header, orders[i]))
    for i in np.flatnonzero(cell).tolist():
        end, detail = cell_details[i]
        text = "\n".join(line.rstrip("\r\n") for line in lines.slice(i, end + 1 - i).to_pylist())
        malformed.append(_malformed(int(number_of[i]), line_offset + i + 1, "quoted_cell_spans_lines", text, detail))
    continuation = int(cell_rest[:used].sum())  # a TSV cell's lines after its first: no record
    for base, (first, end, result) in zip(island_base, islands):
        continuation += result[4]
        malformed.extend({**row, "source_row": base + row["source_row"]} for row in result[3])
    malformed.sort(key=lambda m: m["source_row"])
    records = len(record_index) + int(island_counts.sum())
    nonblank = int((~blank[:used]).sum())
    block = _Block(columns=columns, numbers=numbers[order], lines=row_lines[order], malformed=malformed,
                   records=records, records_seen=nonblank - continuation)
    return block, used


def _fast_header(lines: pa.LargeStringArray, dialect: dict, path: Path) -> tuple[list[str], int, int] | None:
    """The column names, the first line after the header and the header's 1-based line, when the header is a plain,
    usable one."""
    head_lines = lines.slice(0, min(len(lines), 256)).to_pylist()
    spans = _parse(head_lines + [_SENTINEL], 0, len(head_lines) + 1, dialect)
    head = spans[0] if spans else None
    if head is None or head.end >= len(head_lines) or head.error is not None:
        return None
    if head.end > head.start and _swallowed_lines(head_lines, head, 0, dialect):
        return None
    names = _header_names(head.fields or [], dialect)
    try:
        _check_names(path, names, "the header")
    except DataLoadError:
        return None
    return names, head.end + 1, head.start + 1


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
        with path.open("rb") as handle:
            _check_not_utf16(path, handle.read(_SNIFF_BYTES), codec)
            end = _end_before_eof_mark(handle)
    except (DataLoadError, LookupError, OSError):
        return None
    if codec.name not in _FAST_CODECS:
        return None
    dialect = _dialect(fmt)
    _raise_csv_field_limit()
    names: list[str] | None = None
    repeated: _Header | None = None
    count_hint = ""
    blocks: list[_Block] = []
    carry = b""
    line_offset = number_offset = records_seen = 0
    maybe_utf8, utf8_seen, utf8_characters = _is_8bit(codec), False, False
    ends_seen: set[str] = set()
    try:
        with path.open("rb") as handle:
            stream = _byte_blocks(handle, FAST_BLOCK_BYTES, end)
            current, first = next(stream, None), True
            while current is not None:
                following = next(stream, None)
                data = current
                if first and data.startswith(codecs.BOM_UTF8):  # as _read_lines: never part of a column name
                    data = data[len(codecs.BOM_UTF8):]
                    if codec.name == "utf-8" and data.startswith(codecs.BOM_UTF8):  # its removeprefix("\ufeff")
                        data = data[len(codecs.BOM_UTF8):]
                if codec.name == "iso8859-1" and _C1_BYTES.search(data):
                    return None  # perhaps cp1252 (_latin1_as_cp1252): the careful reader decides for the whole file
                try:
                    text = data.decode(codec.name)
                except UnicodeDecodeError:
                    return None
                if maybe_utf8 and not data.isascii():  # _check_not_utf8 on the whole file, a block at a time
                    try:
                        data.decode("utf-8")
                        utf8_seen = True
                    except UnicodeDecodeError:
                        maybe_utf8 = False
                if _is_8bit(codec) and not data.isascii() and _UTF8_CHARACTER.search(data):
                    utf8_characters = True
                if utf8_characters and not maybe_utf8:
                    return None  # UTF-8 lines in an 8-bit file (see _decode_mixed): the careful reader reads them
                utf8 = data if codec.name in ("utf-8", "ascii") else text.encode("utf-8")
                del text
                if carry:
                    utf8 = carry + utf8
                # a lone \r anywhere (an old Mac file, or one inside a line: see _physical_lines, which decides
                # which from the whole file): the careful reader reads it. A \r ending a block that is not the last
                # may be half of a \r\n: it is carried into the next block and judged there.
                trailing = 1 if following is not None and utf8.endswith(b"\r") else 0
                crlf = utf8.count(b"\r\n")
                if utf8.count(b"\r") - trailing != crlf:
                    return None
                # lines ending in \r\n and in a lone \n in one file: whether a lone \n splits a cell is decided
                # from the whole file (_rejoin_lone_lf_cells): the careful reader reads it
                ends_seen |= {"crlf"} if crlf else set()
                ends_seen |= {"lf"} if utf8.count(b"\n") > crlf else set()
                if len(ends_seen) == 2:
                    return None
                lines, offsets = _split_lines(utf8)
                lines = _without_marks(lines)
                start = 0
                if names is None:
                    header = _fast_header(lines, dialect, path)
                    if header is None:
                        return None
                    names, start, header_line = header
                    count_hint = f"header has {len(names)}"
                    repeated = _repeat_check(names, header_line)
                block, used = _read_block(lines.slice(start) if start else lines, last=following is None,
                                          expected=len(names), count_hint=count_hint, fmt=fmt, dialect=dialect,
                                          number_offset=number_offset, line_offset=line_offset + start,
                                          encoding=encoding, header=repeated, named=_named_columns(names))
                blocks.append(block)
                number_offset += block.records
                records_seen += block.records_seen
                consumed = start + used
                carry = utf8[int(offsets[consumed]):] if consumed < len(lines) else b""
                line_offset += consumed
                current, first = following, False
    except (OSError, _CarefulOnly):
        return None
    if names is None or number_offset == 0 or carry or (maybe_utf8 and utf8_seen):
        # no data records, or UTF-8 under an 8-bit encoding (the careful reader says so), or a reader bug: never
        # lose rows
        return None
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


class _DuplicateKey(Exception):
    """A JSON object that names a key twice (raised by :data:`_JSON_DECODER`; not a ValueError, which is bad JSON)."""

    def __init__(self, key: str, values: list) -> None:
        super().__init__(key)
        self.key, self.values = key, values


def _object_without_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """An object's pairs as a dict, or :class:`_DuplicateKey`: ``json.loads`` silently keeps a key's last value, so
    ``{"label": "pos", "label": "neg"}`` would be read as "neg" with no sign the file says both."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        key = next(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
        raise _DuplicateKey(key, [value for name, value in pairs if name == key])
    return obj


#: one decoder for every line (``json.loads`` with a hook builds a new decoder per call, twice as slow)
_JSON_DECODER = json.JSONDecoder(object_pairs_hook=_object_without_duplicate_keys)
#: a JSON escape of a UTF-16 surrogate: the only way a lone surrogate gets into a value read from a file (strict
#: decoders never produce one; undecodable lines are set aside before parsing)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(value: object, where: str = "") -> str | None:
    """Which string of a parsed JSON value holds a lone surrogate, and which one (``field 'text' holds \\ud83d``,
    ``field 'tokens'[3] holds ...``), else None. A surrogate pair in JSON (``\\ud83d\\ude00``) is one character
    once parsed; half of one (a tweet cut mid-emoji) is no character: it cannot be written as UTF-8 and crashes
    whatever hashes or tokenizes the text later, far from the file."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        return f"field {where} holds \\u{ord(found.group()):04x}" if found else None
    if isinstance(value, list):
        return next((hit for i, item in enumerate(value) if (hit := _lone_surrogate(item, f"{where}[{i}]"))), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if found := _SURROGATE.search(key):
                return f"a key {ascii(key)}{' of ' + where if where else ''} holds \\u{ord(found.group()):04x}"
            if hit := _lone_surrogate(item, f"{where}[{key!r}]" if where else repr(key)):
                return hit
    return None


def _json_error_detail(error: json.JSONDecodeError, text: str) -> str:
    """json's message, placed in the record's one line: ``Expecting ',' delimiter at column 48``. A record that ends
    before its JSON does (a line cut short by a crashed writer, a missing closing ``}``) is said to be that: json
    reported it as an "Invalid control character at at column 48" (the line's own line break inside the unterminated
    string, and json's message ends in "at" already) or a missing delimiter, naming no fix."""
    content = text.removeprefix("\ufeff").rstrip("\r\n")
    if error.pos >= len(content.rstrip()) or error.msg.startswith("Unterminated string"):
        return (f"the record ends at column {len(content) + 1} before its JSON does (a line cut short, or a missing "
                "closing quote, ] or }): write the whole record on its line")
    message = error.msg.removesuffix(" at")
    return f"{message} at column {error.pos + 1}"


def _read_jsonl(path: Path, encoding: str, on_decode_error: DecodePolicy) -> ReadResult:
    """One JSON object per line. ``source_row`` is the line number (as the load task has always reported it); in the
    other layouts below, the record's number (``source_line`` its first line).

    A line that is no JSON object, an object naming a key twice or holding a lone surrogate is malformed; a UTF-8
    byte-order mark starting a line (where ``cat`` joined files that begin with one) is skipped.

    Two other JSON layouts are read too, each record named by the line it starts on: one JSON array of objects
    (``[{...}, {...}]``, what ``json.dump`` of a list and pandas' ``to_json(orient="records")`` write), and objects
    written one after another over several lines each (``json.dump(record, indent=2)`` per record)."""
    lines, bad_lines = _read_lines(path, encoding, on_decode_error)
    array = _json_array_values(path, lines)
    if array is not None:
        records, record_lines, malformed, seen = _json_records(
            ((row, line, text) for row, (line, text) in enumerate(array, 1)), bad_lines, encoding,
            "element of the array")
    else:
        numbered = ((index + 1, index + 1, line) for index, line in enumerate(lines) if line.strip())
        records, record_lines, malformed, seen = _json_records(numbered, bad_lines, encoding, "JSONL line")
        if not records and malformed and not any(m["rule"] in _OBJECT_RULES for m in malformed):
            spanning = _spanning_objects(lines)  # no line is a JSON object (the rest are objects set aside)
            if spanning is None:
                _check_some_object(path, lines, malformed, seen)
            else:
                records, record_lines, malformed, seen = _json_records(
                    ((row, line, text) for row, (line, text) in enumerate(spanning, 1)), bad_lines, encoding,
                    "JSON value")
    if array == []:
        raise EmptyInput(f"input file {path} holds an empty JSON array ([]): no records; give a file with records")
    if array and not records and all(text.startswith("[") for _, text in array):
        raise DataLoadError(f"{path} is a JSON array of arrays (as pandas' df.to_json(orient='values') writes): "
                            "rows without column names; write the records one per line with their names "
                            f"(df.to_json('{Path(path).stem}.jsonl', orient='records', lines=True))")
    if seen == 1 and len(records) == 1:
        _check_not_wrapped(path, records[0][1])
    names = list(dict.fromkeys(key for _, obj in records for key in obj))
    spellings = _key_spellings(path, records, names)
    if spellings:
        records = [(number, {spellings.get(key, key): value for key, value in obj.items()}) for number, obj in records]
        names = list(dict.fromkeys(spellings.get(name, name) for name in names))
    _check_names(path, names, "a JSONL record")
    columns = {name: _booleans_as_labels([obj.get(name) for _, obj in records]) for name in names}
    return ReadResult(frame=_object_frame(columns, [row for row, _ in records], record_lines), malformed=malformed,
                      records_seen=seen)


def _key_spellings(path: Path, records: list[tuple[int, dict]], names: list[str]) -> dict[str, str]:
    """Each JSONL key that other records write in another case or with spaces around it (``Text`` on some rows,
    ``text`` on others), mapped to the one spelling all are read as: else each spelling is a column of its own, and
    the rows without the configured one are set aside as missing their text. Names are compared as a CSV header's
    are matched to the configured columns (case and surrounding spaces aside); the spelling read is the lower-case
    one where a record writes it (the names configs give), else the most common. A key written two ways in one
    object is ambiguous: its spellings stay columns of their own (the config's exact name is read)."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.strip().casefold(), []).append(name)
    spellings: dict[str, str] = {}
    for key, group in groups.items():
        if len(group) < 2 or any(sum(name in obj for name in group) > 1 for _, obj in records):
            continue
        counts = Counter(name for _, obj in records for name in group if name in obj)
        target = key if key in group else max(group, key=counts.__getitem__)
        spellings.update((name, target) for name in group if name != target)
    if spellings:
        from tuneline.common import task_logger  # prefect: imported only where a run logs

        task_logger().info("%s: keys that differ only in case or spaces read as one: %s", path,
                           ", ".join(f"{name!r} as {target!r}" for name, target in spellings.items()))
    return spellings


def _booleans_as_labels(values: list) -> list:
    """A JSONL key whose every value is ``true`` or ``false`` (``"is_spam": true``, missing ones aside) as the labels
    ``"true"`` and ``"false"``, as a Parquet bool column reads: the exporter wrote a boolean field on purpose. A
    boolean among other values stays one (:func:`normalize_label` calls it a parsing accident).

    So does a key whose values are booleans and the strings ``"true"``/``"false"`` (any case) mixed, as two writers
    of one file emit them: half of such a file had been quarantined as ``label_is_boolean``."""
    present = [value for value in values if value is not None]
    if not present or not any(isinstance(value, bool) for value in present) or not all(
            isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false"))
            for value in present):
        return values
    return _boolean_labels(values)


def _boolean_labels(values: list) -> list:
    """Booleans as the labels ``"true"``/``"false"``, other values (missing ones, strings) kept (a JSONL boolean
    field, a Parquet bool column)."""
    return [("true" if value else "false") if isinstance(value, bool) else value for value in values]


#: what makes a line an object that is still no record (the lines with only these rules are JSON objects)
_OBJECT_RULES = ("record_has_duplicate_key", "record_has_lone_surrogate")


def _check_some_object(path: Path, lines: list[str], malformed: list[dict], seen: int) -> None:
    """A one-line error for a JSONL file none of whose lines is a JSON object (each ends with a comma, Python dicts
    written with ``str()``, a CSV file named .jsonl): else the file reads as no record and no column, and the
    message about the missing text column names no fix."""
    first = next((m for m in malformed if m["rule"] in ("record_is_not_json", "record_is_not_an_object")), None)
    if first is None:
        return  # only undecodable lines: the decode quarantine says so
    number = first["source_line"]
    line = lines[number - 1].removeprefix("\ufeff").strip()
    if first["rule"] == "record_is_not_an_object":
        problem = "it is JSON, but no object"
    else:  # "Expecting value at column 5" (the reader's detail)
        problem = first["detail"]
    raise DataLoadError(f"none of the {seen} line{'s' if seen != 1 else ''} of {path} is a JSON object; line "
                        f"{number}: {problem}"
                        f"{_json_lines_hint(line, number)}")


def _json_lines_hint(line: str, number: int) -> str:
    """What a line that is no JSON object most likely is, and what to change (for :func:`_check_some_object`)."""
    import ast

    if line.endswith(","):
        try:
            if isinstance(json.loads(line[:-1]), dict):
                return ("; each line ends with a comma: JSON Lines has no separator between records, remove the "
                        "comma at the end of each line")
        except (ValueError, RecursionError):
            pass
    if re.search(r",\s*[}\]]", line):
        return "; a comma stands before a closing } or ]: JSON allows no trailing comma, remove it"
    try:
        python = ast.literal_eval(line) if len(line) < 100_000 else None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        python = None
    if isinstance(python, dict):
        return ("; the lines are Python dicts (single quotes, True/None), not JSON: write each record with "
                "json.dumps(record), not str(record)")
    if not line.startswith(("{", "[")):
        for delimiter, fmt in ((",", "csv"), ("\t", "tsv"), (";", "csv")):
            fields = next(csv.reader([line], delimiter=delimiter), [])
            if len(fields) > 1 and all(field.strip() for field in fields):
                return (f"; line {number} looks like a {fmt.upper()} header ({', '.join(fields[:5])}): the file is "
                        f"{fmt.upper()}, not JSON Lines: set data.format: {fmt} (or name it .{fmt})")
    return "; each line must be one JSON object ({...}), as json.dumps(record) writes it"


def _check_not_wrapped(path: Path, obj: dict) -> None:
    """A one-line error for a file that is one JSON object holding the records under a key (``{"data": [{...},
    ...]}``, as some dataset exports and APIs write): read as it is, it is a single record without the columns. An
    object with a string value at its top level is taken for a record (a text whose spans are objects) and read."""
    if any(isinstance(value, str) for value in obj.values()):
        return
    fix = f"write the records one per line (df.to_json('{Path(path).stem}.jsonl', orient='records', lines=True))"
    if obj and all(isinstance(value, dict) and value for value in obj.values()):
        raise DataLoadError(f"{path} is one JSON object of objects ({', '.join(map(repr, list(obj)[:3]))}"
                            f"{', ...' if len(obj) > 3 else ''}), as pandas' df.to_json() writes by default "
                            f"(orient='columns' or 'index'), not records: {fix}")
    if {"columns", "data"} <= set(obj) and isinstance(obj["data"], list):
        raise DataLoadError(f"{path} is one JSON object of 'columns' and 'data', as pandas' "
                            f"df.to_json(orient='split') writes, not records: {fix}")
    for key, value in obj.items():
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            raise DataLoadError(f"{path} is one JSON object whose key {key!r} holds {len(value):,} record{'s' if len(value) != 1 else ''} "
                                f"([{{...}}, ...]); tuneline reads a record per object: write them one per line "
                                f"(e.g. jq -c '.[{json.dumps(key)}][]' {path} > {Path(path).stem}-lines.jsonl) and "
                                "point data at that file")


def _json_records(items: Iterable[tuple[int, int, str]], bad_lines: set[int], encoding: str,
                  what: str) -> tuple[list[tuple[int, dict]], list[int], list[dict], int]:
    """Each ``(record number, line, text)`` of ``items`` judged as one record: the objects (with their record
    number), each one's line, the malformed records and the count seen. ``what`` names a record in the detail of
    one that is no object ("JSONL line"). In a JSONL file a record's number is its line; in an array on one line
    (pandas' ``to_json``) many records share a line, and the number tells them apart."""
    records: list[tuple[int, dict]] = []
    lines: list[int] = []
    malformed: list[dict] = []
    seen = 0
    for row, number, text in items:
        seen += 1
        if bad_lines and _MARK in text:
            malformed.append(_malformed(row, number, "record_not_decodable", text,
                                        _not_decodable_detail(number - 1, encoding)))
            continue
        try:
            obj = _JSON_DECODER.decode(text.removeprefix("\ufeff"))
        except _DuplicateKey as duplicate:
            values = ", ".join(_shown(json.dumps(v, ensure_ascii=False))[:40] for v in duplicate.values)
            malformed.append(_malformed(row, number, "record_has_duplicate_key", text,
                                        f"key {duplicate.key!r} appears {len(duplicate.values)} times in one object "
                                        f"({values}); a record has one value per key: write the key once, with the "
                                        "right value"))
            continue
        except (ValueError, RecursionError) as error:
            # json's "line 2 column 1 (char 40)" counts lines within the record (a raw line break, U+2028 ...), not
            # in the file, whose line the quarantine already names: the place in the record's one line says it
            detail = _json_error_detail(error, text) if isinstance(error, json.JSONDecodeError) else str(error)
            malformed.append(_malformed(row, number, "record_is_not_json", text, detail))
            continue
        if not isinstance(obj, dict):
            malformed.append(_malformed(row, number, "record_is_not_an_object", text,
                                        f"each {what} must be an object"))
            continue
        if "\\u" in text and _SURROGATE_ESCAPE.search(text) and (where := _lone_surrogate(obj)):
            malformed.append(_malformed(row, number, "record_has_lone_surrogate", text,
                                        f"{where}, half of a UTF-16 surrogate pair (as where a text is cut in the "
                                        "middle of an emoji), which is no character: remove it or complete the pair"))
            continue
        records.append((row, obj))
        lines.append(number)
    return records, lines, malformed, seen


#: JSON's whitespace (``str.isspace`` is wider: a form feed or U+2028 between values is no JSON)
_JSON_SPACE = re.compile(r"[ \t\r\n]*")


def _json_values(text: str, position: int, separator: str | None) -> list[tuple[int, str]] | None:
    """The JSON values in ``text`` from ``position`` to its end (``separator=None``: one after another) or to the
    ``]`` closing an array (``separator=","``), each as (the line it starts on, its text); None when the text is not
    that throughout (a value that does not parse, anything else between them)."""
    decoder, values, line, counted = json.JSONDecoder(), [], 1, 0
    while True:
        position = _JSON_SPACE.match(text, position).end()
        if position >= len(text):
            return values if separator is None else None
        if separator is not None and text[position] == "]" and not values:
            break
        try:
            _, end = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            return None
        line += text.count("\n", counted, position)
        counted = position
        values.append((line, text[position:end]))
        position = _JSON_SPACE.match(text, end).end()
        if separator is None:
            continue
        if position < len(text) and text[position] == "]":
            break
        if position >= len(text) or text[position] != separator:
            return None
        position += 1
    rest = _JSON_SPACE.match(text, position + 1).end()
    return values if rest == len(text) else None


def _spanning_objects(lines: list[str]) -> list[tuple[int, str]] | None:
    """The records of a file of JSON objects written one after another over several lines each (``json.dump(obj,
    indent=2)`` per record): each object's text and first line; None when the file is not that (read line by line,
    not one of its lines is an object)."""
    values = _json_values("".join(lines).removeprefix("\ufeff"), 0, None)
    if not values or not all(text.startswith("{") for _, text in values):
        return None
    return values


def _json_array_values(path: Path, lines: list[str]) -> list[tuple[int, str]] | None:
    """The elements of a file holding one JSON array (``[{...}, {...}]``), each with the line it starts on; None for
    a file of JSON Lines (a JSONL file whose first record is a list parses line by line). A file that starts as an
    array but is no JSON (a missing comma, a cut-off end) is a one-line error naming where it breaks."""
    first = next((line.strip() for line in lines if line.strip()), "").removeprefix("\ufeff")
    if not first.startswith("["):
        return None
    text = "".join(lines).removeprefix("\ufeff")
    opening = text.index("[")
    values = _json_values(text, opening + 1, ",")
    if values is not None:
        return values
    try:
        json.loads(first)
        return None  # a JSON Lines file whose first line is a list (set aside as no object)
    except (ValueError, RecursionError):
        pass
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise DataLoadError(f"{path} holds one JSON array ([{{...}}, {{...}}]) that is no valid JSON: line "
                            f"{error.lineno} column {error.colno}: {error.msg}; fix it there (or write one JSON "
                            "object per line, JSON Lines, where a broken line costs only its record)") from None
    except RecursionError:
        pass
    raise DataLoadError(f"{path} holds one JSON array ([{{...}}, {{...}}]) that could not be split into records; "
                        f"write one JSON object per line (e.g. jq -c '.[]' {path} > {Path(path).stem}-lines.jsonl) "
                        "and point data at that file")


def _parquet_values(column: pa.ChunkedArray) -> list:
    """A Parquet column as Python values, None where missing; two types as the values a text file would give:

    - binary (bytes, as Spark and some database exports store strings): decoded as UTF-8, else every text would be
      bytes, no string, and quarantined; a value that is not valid UTF-8 stays bytes (no text, which the schema
      rejects where the column is used; an unused binary column, an image say, stays as it was);
    - boolean (``is_duplicate: bool``) as the labels ``"false"`` and ``"true"``, as a CSV's TRUE/FALSE cells are
      read as labels: a whole column of type bool holds labels, where a stray boolean in a JSON label field is a
      parsing accident (:func:`normalize_label`). A bool column read as text is then the texts "false"/"true".
    """
    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_boolean(kind):
        return _boolean_labels(column.to_pylist())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind) or (
            hasattr(pa.types, "is_binary_view") and pa.types.is_binary_view(kind)):
        return [_utf8_or_bytes(value) for value in column.to_pylist()]
    return column.to_pylist()


def _read_arrow(path: Path) -> pa.Table:
    """An Arrow IPC file: a Hugging Face ``save_to_disk`` shard (``data-00000-of-00001.arrow``, the stream format) or
    a Feather v2 / IPC file (``ARROW1`` first), read with the "parquet" format, the other columnar table format."""
    import pyarrow.ipc as ipc

    with pa.memory_map(str(path), "r") as source:
        try:
            return ipc.open_file(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            return ipc.open_stream(source).read_all()


def hugging_face_class_names(schema: pa.Schema) -> dict[str, list[str]]:
    """The columns a Hugging Face dataset's Parquet (or Arrow) file declares as class labels, with their names.

    ``datasets`` stores labels as ids (SST-2's ``label`` 0/1, CoNLL-2003's ``ner_tags`` lists of 0-8) and their
    names in the file's schema metadata (``huggingface`` → ``info.features``: a ``ClassLabel``, or a ``Sequence`` or
    ``List`` of one). Read as they are stored, a model learned the classes "0" and "1", and NER ids needed
    data.tag_names typed in by hand. Anything unreadable there is no names (the ids are then read as written)."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return {}
    try:
        features = json.loads(raw).get("info", {}).get("features", {})
    except (ValueError, AttributeError):
        return {}
    if not isinstance(features, dict):
        return {}
    found = {}
    for column, feature in features.items():
        for _ in range(3):  # a ClassLabel, or a list of them written in one of the ways datasets versions write it
            if isinstance(feature, list) and len(feature) == 1:
                feature = feature[0]
            elif isinstance(feature, dict) and feature.get("_type") in ("Sequence", "List", "LargeList"):
                feature = feature.get("feature")
            else:
                break
        if isinstance(feature, dict) and feature.get("_type") == "ClassLabel":
            names = feature.get("names")
            if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
                found[str(column)] = names
    return found


def _class_name(value: Any, names: list[str]) -> Any:
    """A class id (or a list of them) as its name; -1, Hugging Face's "no label" (a test split's), as missing; any
    other value as it is (an id past the names is then a label of its own, which the label set judges)."""
    if isinstance(value, list):
        return [_class_name(v, names) for v in value]
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value == -1:
            return None
        if 0 <= value < len(names):
            return names[value]
    return value


def _utf8_or_bytes(value: bytes | None) -> str | bytes | None:
    """``value`` decoded as UTF-8, or as it is when it is no UTF-8 text (or None)."""
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


def _read_parquet(path: Path) -> ReadResult:
    import pyarrow.parquet as pq

    _check_file(path, text=False)
    try:
        with path.open("rb") as handle:
            columnar = handle.read(4) == _PARQUET_MAGIC or path.suffix.lower() not in (".arrow", ".feather")
        table = pq.read_table(path) if columnar else _read_arrow(path)
    except Exception as error:  # pyarrow raises several types (ArrowInvalid, OSError...) for a bad file
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataLoadError(f"cannot read {path} as {'parquet' if columnar else 'an Arrow file'} ({message}); check "
                            "the file or set data.format") from None
    names = [str(name) for name in table.column_names]
    _check_names(path, names, "the parquet schema")
    if table.num_rows == 0:
        raise DataLoadError(f"input file {path} is a parquet file with no rows; give a file with records")
    columns = {name: _parquet_values(table.column(i)) for i, name in enumerate(names)}  # None if missing
    class_names = hugging_face_class_names(table.schema)
    for name, label_names in class_names.items():
        if name in columns:
            columns[name] = [_class_name(value, label_names) for value in columns[name]]
    if class_names:
        from tuneline.common import task_logger  # prefect: imported only where a run logs

        task_logger().info("%s: class ids read as the names its Hugging Face features give (%s)", path, "; ".join(
            f"{column}: " + ", ".join(f"{i} {n}" for i, n in enumerate(label_names[:4]))
            + (f", ... ({len(label_names)} names)" if len(label_names) > 4 else "")
            for column, label_names in class_names.items() if column in columns))
    numbers_ = list(range(1, table.num_rows + 1))
    return ReadResult(frame=_object_frame(columns, numbers_, numbers_), malformed=[], records_seen=table.num_rows,
                      has_lines=False)


# --------------------------------------------------------------------------------------------------------------
# CoNLL


_CONLL_SEPARATOR = re.compile(r"[ \t]+")
#: a CoNLL file is tab-separated (its tokens may hold spaces) when at least this share of its token lines hold a tab
_TAB_SHARE = 0.95
_CONLL_TAB = re.compile(r"\t+")
_IOB_LIKE = re.compile(r"(?i)^(o|[bielsu][-_].+|.+[-_][bielsu])$")


def _token_column(fields: list[str], tag_column: int) -> int:
    """The column of a CoNLL line's token: the first one that is not its tag column. With the tag first (``B-PER
    John``, data.conll_tag_column: 0) the token was read from column 0 too, so tokens were the tags, without a
    word."""
    return 1 if len(fields) > 1 and tag_column in (0, -len(fields)) else 0


def _conll_comment(line: str, fields: list[str], tag_column: int) -> bool:
    """A ``#`` line heading a sentence whose tag field is no tag (``# id 42 domain=en``) is a comment; ``# O``, a
    hashtag token, is a token."""
    if not line.lstrip(" \t").startswith("#"):
        return False
    tag = fields[tag_column] if -len(fields) <= tag_column < len(fields) and len(fields) > 1 else ""
    return not _IOB_LIKE.match(tag)
#: a file read as one sentence of more tokens than this, or any sentence of more than :data:`LONGEST_SENTENCE`, is
#: a file without the blank lines between its sentences (CoNLL-2003's longest sentence has 124 tokens)
LONGEST_ONLY_SENTENCE = 500
LONGEST_SENTENCE = 1000
#: a file read as one sentence of more than 100 tokens, at least 5 of them before its last token sentence ends
#: (``.``, ``!``, ``?`` as tokens of their own), is one too: no CoNLL-2003 sentence has even 2 such tokens inside
_SENTENCE_ENDS = frozenset({".", "!", "?"})


def _check_joined_items(path: Path, sentences: list[list[tuple[int, list[str]]]]) -> None:
    """A one-line error for a file of one sentence a line whose words carry their tags joined by ``|``
    (``John|NNP|B-PER Smith|NNP|I-PER``, the WikiNER layout): read as CoNLL, each line was one token of a single
    sentence, and the error said its tags had no B-/I- prefix (dirty-data QA)."""
    lines = [fields for sentence in sentences for _, fields in sentence]
    items = [field for fields in lines for field in fields]
    if len(items) < 3 * max(1, len(lines)) or not items:
        return
    joined = sum("|" in field and bool(_IOB_LIKE.match(field.rsplit("|", 1)[1])) for field in items)
    if joined < 0.9 * len(items):
        return
    index, fields = sentences[0][0]
    raise DataLoadError(f"{path}: its lines hold whole sentences of word|...|tag items (line {index + 1}: "
                        f"{' '.join(fields[:3])} ...), as WikiNER writes them, not one token a line: write each "
                        "token and its tag on a line of its own (the word first, the tag last) and a blank line "
                        "after each sentence (CoNLL)")


def _check_sentences_separated(path: Path, sentences: list[list[tuple[int, list[str]]]],
                               tag_column: int = -1) -> None:
    """A one-line error for a CoNLL file whose sentences are not separated by blank lines: it reads as one sentence
    of hundreds of tokens (or a few huge ones), which later fails far from the cause ("the validation split is
    empty"), or trains on nonsense."""
    limit = LONGEST_ONLY_SENTENCE if len(sentences) == 1 else LONGEST_SENTENCE
    sentence = next((s for s in sentences if len(s) > limit), None)
    if sentence is None and len(sentences) == 1 and len(sentences[0]) > 100:
        inner_ends = sum(fields[_token_column(fields, tag_column)] in _SENTENCE_ENDS for _, fields in sentences[0][:-1])
        sentence = sentences[0] if inner_ends >= 5 else None
    if sentence is None:
        return
    first, last = sentence[0][0] + 1, sentence[-1][0] + 1
    raise DataLoadError(f"{path}: lines {first}-{last} ({len(sentence)} token lines) read as a single sentence: no "
                        "blank line separates its sentences; CoNLL puts one empty line after each sentence: add the "
                        "blank lines (or check data.format)")


#: a number as a confidence column writes it (``0.98``, ``1``, ``-3.5e-2``): no tag
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _check_tag_column(path: Path, sentences: list[list[tuple[int, list[str]]]], tag_column: int,
                      expected: int) -> None:
    """Where the tag column (``tag_column`` of lines of the file's ``expected`` fields) holds no tags and another
    column does (:data:`_IOB_LIKE` on at least 9 in 10 lines, one an entity's), say which: a tag-first file
    (``B-PER John``) or one with a confidence column last (``John B-PER 0.98``) read with the default last column
    failed far from the cause, with advice about numeric class ids or the IO scheme.

    A tag column of numbers is refused (one line naming the column to set); one of words is read as configured, with
    a warning (a file of several tag columns, POS and NER, may be read at another on purpose)."""
    rows = [(index, fields) for sentence in sentences for index, fields in sentence if len(fields) == expected]
    if expected < 2 or not rows or not -expected <= tag_column < expected:
        return  # one column, or the tag column is missing: the reader's malformed rules say so
    configured = tag_column % expected

    def tagged(column: int) -> int:
        return sum(bool(_IOB_LIKE.match(fields[column])) for _, fields in rows)

    if tagged(configured) * 2 >= len(rows):
        return  # tags, or the IO scheme (PER, O): mostly O
    found = [column for column in range(expected) if column != configured and tagged(column) * 10 >= len(rows) * 9
             and any(fields[column].upper() != "O" and _IOB_LIKE.match(fields[column]) for _, fields in rows)]
    if not found:
        return
    column = found[-1]  # CoNLL-2003 writes its chunk tags (B-NP) before the NER tags
    advice = f"the tags look like they are in column {column}: set data.conll_tag_column: {column}"
    if all(_NUMBER.fullmatch(fields[configured]) for _, fields in rows):
        index, first = rows[0]
        raise DataLoadError(f"{path}: column {configured} (data.conll_tag_column: {tag_column}) holds numbers, not "
                            f"tags (line {index + 1}: {' '.join(first)!r}); {advice}")
    from tuneline.common import task_logger  # prefect: imported only where a run logs

    shown = ", ".join(repr(value) for value in list(dict.fromkeys(fields[configured] for _, fields in rows))[:3])
    task_logger().warning("%s: %s (column %d, read as the tags, holds %s, ...)", path, advice, configured, shown)


def read_conll(path: Path, tag_column: int = -1, *, encoding: str = "utf-8",
               on_decode_error: DecodePolicy = "error", tags_optional: bool = False) -> ReadResult:
    """Read a CoNLL column file into one row per sentence: ``tokens``, ``tags``, ``source_row`` (sentence number),
    ``source_line`` (line of its first token).

    ``tags_optional`` (sentences to predict on): a file of one field a line is words alone, read without a
    ``tags`` column; a file with more fields keeps its tags (gold tags beside the predicted ones).

    The tag is field ``tag_column``, the token the first other field (:func:`_token_column`); blank or
    whitespace-only lines end a sentence; ``-DOCSTART-`` lines are document markers, skipped. The file's field count
    is the most common one among its lines: a line with another count (``New York B-LOC`` in a 2-column file) would
    silently lose a word or shift a tag, so its whole sentence is malformed rather than half-read.
    """
    path = Path(path)
    encoding = bom_encoding(path, encoding)
    lines, bad_lines = _read_lines(path, encoding, on_decode_error)
    # a file whose token lines all hold a tab is tab-separated: its tokens may hold spaces ("New York", as
    # spaCy and Label Studio exports write multi-word tokens); else fields are separated by ASCII spaces and tabs only
    # (str.split() also splits at a no-break space, which real corpora keep inside tokens: "1 000", "10 km")
    # (a tab only at the end of a line, an exporter's stray one, separates nothing: it was taken for a tab-separated
    # file, and every "EU B-ORG<TAB>" line read as one field)
    # "all" was "all but a few": one line without its tag ("lonely") made a tab file space-separated, and every
    # "New York<TAB>B-LOC" a line of three fields, costing 30 good sentences for one bad line; a line without a tab
    # in a file of tab lines is that line's problem (its record is set aside as having no tag column)
    token_lines = [line.strip(" \t\r\n\v\f") for line in lines
                   if line.strip() and not line.lstrip("\ufeff").startswith(DOCSTART)]
    tabbed = sum("\t" in line for line in token_lines)
    separator = _CONLL_TAB if token_lines and tabbed >= _TAB_SHARE * len(token_lines) else _CONLL_SEPARATOR
    sentences: list[list[tuple[int, list[str]]]] = []
    sentence: list[tuple[int, list[str]]] = []
    comments = 0
    for index, line in enumerate(lines):
        line = line.removeprefix("\ufeff")  # the mark of a file joined on with cat: no part of a token
        fields = [field for field in (part.strip(" ") for part in separator.split(line.strip(" \t\r\n\v\f")))
                  if field] if line.strip() else []
        if not fields or DOCSTART in (fields[0], fields[_token_column(fields, tag_column)]) \
                or fields[0].split(" ", 1)[0] == DOCSTART:  # "-DOCSTART- O" typed with a space in a tab file
            if sentence:
                sentences.append(sentence)
            sentence = []
            continue
        if not sentence and _conll_comment(line, fields, tag_column):
            comments += 1  # "# id 42 domain=en" (MultiCoNER, CoNLL-U) heading a sentence: no token
            continue
        sentence.append((index, fields))
    if comments:
        logging.getLogger("tuneline").info("%s: %d comment line(s) ('# ...' heading a sentence) skipped", path,
                                           comments)
    if sentence:
        sentences.append(sentence)
    if not sentences:
        raise DataLoadError(f"input file {path} has no sentences (only blank and {DOCSTART} lines); "
                            "give a CoNLL file with token lines")
    expected = Counter(len(fields) for s in sentences for _, fields in s).most_common(1)[0][0]
    words_only = tags_optional and expected == 1
    if not words_only:
        _check_joined_items(path, sentences)
        _check_sentences_separated(path, sentences, tag_column)
        _check_tag_column(path, sentences, tag_column, expected)

    records: list[dict] = []
    malformed: list[dict] = []
    for number, sentence in enumerate(sentences, start=1):
        first_line = sentence[0][0] + 1
        tokens = [fields[0 if words_only else _token_column(fields, tag_column)] for _, fields in sentence]
        value = " ".join(tokens)
        undecodable = [index for index, _ in sentence if index in bad_lines] if bad_lines else []
        short = [] if words_only else [(index, fields) for index, fields in sentence
                                       if len(fields) < 2 or not -len(fields) <= tag_column < len(fields)]
        odd = [(index, fields) for index, fields in sentence if len(fields) != expected]
        if undecodable:
            malformed.append(_malformed(number, first_line, "record_not_decodable", value,
                                        _not_decodable_detail(undecodable[0], encoding)))
        elif short:
            index, fields = short[0]
            raw = lines[index].removeprefix("\ufeff")
            # a line "\ufeff\tO" (a token that is only the mark of a file joined on with cat) was told it has no tab
            no_token = separator is _CONLL_TAB and "\t" in raw and not raw.split("\t", 1)[0].strip(" ")
            untabbed = separator is _CONLL_TAB and len(_CONLL_SEPARATOR.split(lines[index].strip())) >= 2
            malformed.append(_malformed(number, first_line, "conll_line_has_no_tag_column", value, (
                f"in this sentence, line {index + 1} ({lines[index].strip()!r}) has no token before its tab"
                + (" (only a byte-order mark, U+FEFF, which is no text)" if raw != lines[index] else "")
                + ": write the token there, or remove the line"
            ) if no_token else (
                f"in this sentence, line {index + 1} ({lines[index].strip()!r}) has no tab, while the file's other "
                f"token lines are split at tabs (a token may then hold spaces): put a tab between its fields"
                # QA: "has 1 field(s) ... (data.conll_tag_column)" of a line that plainly shows two, wrong fix named
            ) if untabbed else (
                f"in this sentence, line {index + 1} ({' '.join(fields)!r}) has {len(fields)} field(s); the tag "
                f"is read from column {tag_column} (data.conll_tag_column)")))
        elif odd:
            index, fields = odd[0]
            malformed.append(_malformed(number, first_line, "conll_line_has_wrong_field_count", value,
                                        f"in this sentence, line {index + 1} ({' '.join(fields)!r}) has {len(fields)} fields, expected "
                                        f"{expected} (the count of most lines in the file); a token must not "
                                        "contain spaces"))
        else:
            records.append({"tokens": tokens, "tags": None if words_only else [fields[tag_column] for _, fields
                                                                                in sentence],
                            "source_row": number, "source_line": first_line})
    columns = {"tokens": [r["tokens"] for r in records]}
    if not words_only:
        columns["tags"] = [r["tags"] for r in records]
    frame = _object_frame(columns, [r["source_row"] for r in records], [r["source_line"] for r in records])
    return ReadResult(frame=frame, malformed=malformed, records_seen=len(sentences))


def read_text_lines(path: Path, column: str = "text", *, encoding: str = "utf-8") -> ReadResult:
    """A plain text file of one text a line (inputs to predict on) as rows of ``column`` with ``source_line``.

    A blank line between texts is refused, naming it: dropping it would shift every later prediction against its
    line, and predicting on it answers a confident label for no text. Blank lines at the end are no texts."""
    lines, _ = _read_lines(Path(path), bom_encoding(Path(path), encoding), "error")
    texts = [line.rstrip("\r\n") for line in lines]
    while texts and not texts[-1].strip():
        texts.pop()
    blank = next((number for number, text in enumerate(texts, start=1) if not text.strip()), None)
    if blank is not None:
        raise DataLoadError(f"input file {path}: line {blank} is blank between texts; each line is one text and "
                            "gets one prediction, in order: remove the line or write a text on it")
    numbers = list(range(1, len(texts) + 1))
    return ReadResult(frame=_object_frame({column: texts}, numbers, numbers), records_seen=len(texts))


def has_sentence_breaks(path: Path, encoding: str = "utf-8") -> bool:
    """Whether a text file reads as CoNLL (sentences of one word a line between blank lines) rather than one text
    a line: a blank line between non-blank ones, and most lines of at most four fields (a word and its tags)."""
    lines, _ = _read_lines(Path(path), bom_encoding(Path(path), encoding), "error")
    filled = [bool(line.strip()) for line in lines]  # _read_lines refuses a file with no filled line
    first, last = filled.index(True), len(filled) - 1 - filled[::-1].index(True)
    words = [line.split() for line in lines if line.strip()]
    if all(filled[first:last + 1]) or sum(len(fields) <= 4 for fields in words) < 0.9 * len(words):
        return False
    # a word a line: the fields after it are tags (O, B-PER, NNP, B-NP, 0), never words such as 'Merkel'. Texts of
    # two or three words a line with blank lines between them read as CoNLL took every word after the first for a
    # tag: "Angela Merkel" came out as the sentence "Angela" and 3 texts as 2 rows
    annotations = [field for fields in words if fields[0] != DOCSTART for field in fields[1:]]
    return sum(_tag_like(field) for field in annotations) >= 0.9 * len(annotations)


#: what a tag column holds: an entity tag in any case (``b-per``), or a code without lower-case letters (``NNP``,
#: ``B-NP``, ``PRP$``, ``.``, ``0``); a word of text has lower-case letters
_TAG_LIKE = re.compile(r"(?i:[bieslu][-_]\S+|o)|[^a-z]+")


def _tag_like(field: str) -> bool:
    return bool(_TAG_LIKE.fullmatch(field))
