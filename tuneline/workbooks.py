"""Excel workbooks (``.xlsx``, ``.xlsm``) read as the table on their first sheet.

Labeled text is often kept in a spreadsheet (annotators work in Excel or Google Sheets), and exporting it as CSV is
where encodings, delimiters and quoting go wrong. openpyxl reads the workbook's cells as typed values, so none of
that applies; what is left is turning cells into the strings a CSV would have held:

- a whole number stored as a float (Excel stores every number so: the label ``1`` is ``1.0``) is written ``1``;
  other numbers as Python writes them; booleans as ``true``/``false`` (as the other readers read a boolean label);
  a date as ISO 8601 (``2026-12-04``, with the time where it is not midnight);
- the row number is the record's line (what the spreadsheet shows beside it), so quarantine and errors name it;
- rows with no value in any cell are no records (a spreadsheet's gaps), and columns without a header name are named
  by position (``unnamed_3``) and ignored, as the CSV reader does with the empty columns an export leaves;
- formulas are read as the values Excel last computed and saved (a workbook written by a script that never opened
  in Excel holds no such values: its formula cells are empty, and a warning names them, since the quarantine can
  only call such a cell missing).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tuneline.readers import DataLoadError, ReadResult, _check_file, _check_names, _named, _object_frame


def cell_text(value: Any) -> str | None:
    """A cell's value as the text a CSV export would hold; None for an empty cell."""
    if value is None:
        return None
    if isinstance(value, str):
        return value  # whitespace is judged by the schema, as for a CSV cell
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def read_workbook(path: Path, *, header: bool = True, skip_lines: int = 0, sheet: str | None = None) -> ReadResult:
    """The first sheet of ``path`` (or the one named ``sheet``, ``data.sheet``) as a
    :class:`~tuneline.readers.ReadResult` (see the module docstring). ``skip_lines``: rows above the header (a
    title); ``header=False``: columns named by position (``0``, ``1``...) as for a CSV without a header."""
    try:
        import openpyxl
    except ImportError:  # a dependency of tuneline; an environment without it can still export CSV
        raise DataLoadError(f"{path} is an Excel workbook and the openpyxl package is not installed: pip install "
                            "openpyxl, or export the sheet as CSV UTF-8") from None
    path = Path(path)
    _check_file(path, text=False, workbook=True)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # noqa: BLE001 - zipfile, XML and openpyxl's own errors for a file that is no workbook
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataLoadError(f"cannot read {path} as an Excel workbook ({message}); open and save it again in the "
                            "spreadsheet program, or export the sheet as CSV UTF-8") from None
    try:
        if not book.worksheets:
            raise DataLoadError(f"{path} holds no worksheet; give a workbook with the records on its first sheet")
        titles = [ws.title for ws in book.worksheets]
        if sheet is not None and sheet not in titles:
            raise DataLoadError(f"{path} has no sheet {sheet!r} (data.sheet); its sheets: {titles}")
        chosen = book.worksheets[titles.index(sheet) if sheet is not None else 0]
        rows = [(number, [cell_text(value) for value in values])
                for number, values in enumerate(chosen.iter_rows(values_only=True), start=1)
                if number > skip_lines]
        rows = [(number, cells) for number, cells in rows if any(c is not None and c.strip() for c in cells)]
        # the records may be on another sheet (a notes or a read-me sheet first): looked for only when this one
        # holds none, so a workbook that reads fine is not scanned sheet by sheet
        others = ([t for t in titles if t != chosen.title and _has_records(book[t])]
                  if len(rows) < (2 if header else 1) else [])
        sheets = len(book.worksheets)
        title = chosen.title
    finally:
        book.close()
    which = "sheet" if sheet is not None else "first sheet"
    elsewhere = (f"; the workbook's sheet{'s' * (len(others) > 1)} {', '.join(map(repr, others))} "
                 f"hold{'s' * (len(others) == 1)} rows: set data.sheet to the one with the records") if others else ""
    if not rows:
        raise DataLoadError(f"input file {path} has no values on its {which} ({title!r})"
                            + (f" below row {skip_lines} (data.skip_lines)" if skip_lines else "")
                            + (elsewhere or "; give a workbook with the records on its first sheet"))
    width = max(len(cells) for _, cells in rows)
    if header:
        head_row, head = rows[0]
        names = _named([(c or "").strip() for c in head] + [""] * (width - len(head)))
        _check_names(path, names, f"the header (row {head_row} of sheet {title!r})")
        body = rows[1:]
        if not body:
            raise DataLoadError(f"input file {path} has a header (row {head_row} of sheet {title!r}) but no data "
                                "records" + (elsewhere or "; give a workbook with records, or set data.header: false "
                                             "if that row is data"))
    else:
        names, body = [str(i) for i in range(width)], rows
    columns = {name: [cells[i] if i < len(cells) else None for _, cells in body] for i, name in enumerate(names)}
    numbers = list(range(1, len(body) + 1))
    from tuneline.common import task_logger

    if sheets > 1:
        task_logger().info("%s: read its %s (%r) of %d (data.sheet picks another)", path, which, title, sheets)
    empty_rows = {row for row, cells in body if any(cells[i] is None for i, name in enumerate(names)
                                                    if not name.startswith("unnamed_") and i < len(cells))
                  or len(cells) < len(names)}
    if empty_rows and (unsaved := _formulas_without_values(path, title, empty_rows)):
        shown = ", ".join(unsaved[:5]) + (f" and {len(unsaved) - 5} more" if len(unsaved) > 5 else "")
        task_logger().warning(
            "%s: %d formula cell(s) of sheet %r have no saved value, so they read as empty (%s): the workbook was "
            "written by a program that does not compute formulas; open and save it in Excel or LibreOffice, or write "
            "the values instead of formulas", path, len(unsaved), title, shown)
    return ReadResult(frame=_object_frame(columns, numbers, [row for row, _ in body]), malformed=[],
                      records_seen=len(body))


def _formulas_without_values(path: Path, title: str, rows: set[int]) -> list[str]:
    """The cells (``B7``) of ``rows`` on sheet ``title`` that hold a formula but no value saved with it. Read again
    with the formulas (``data_only=False``) only when a row has an empty cell: a workbook that reads fine is read
    once."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception:  # noqa: BLE001 - it was read a moment ago; a note is not worth an error
        return []
    try:
        found: list[str] = []
        last = max(rows)
        for number, values in enumerate(book[title].iter_rows(values_only=True, max_row=last), start=1):
            if number in rows:
                found.extend(f"{get_column_letter(i + 1)}{number}" for i, value in enumerate(values)
                             if isinstance(value, str) and value.startswith("="))
        return found
    finally:
        book.close()


def _has_records(worksheet: Any) -> bool:
    """Whether a sheet holds a header and at least one row under it (values in two rows; read-only sheets stream)."""
    filled = 0
    for values in worksheet.iter_rows(values_only=True, max_row=200):
        if any((text := cell_text(value)) and text.strip() for value in values):
            filled += 1
            if filled >= 2:
                return True
    return False


def header_row_below(path: Path, wanted: set[str], skip_lines: int = 0, rows: int = 50) -> int | None:
    """The number of the first row of the first sheet below the one read as the header (among the first ``rows``)
    whose cells include every name in ``wanted`` (case-folded): where the header is when a title or notes sit above
    it. None when no such row, or the workbook cannot be read (the reader says why)."""
    try:
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - the reader's own error names the problem
        return None
    try:
        filled = [(number, {(cell_text(v) or "").strip().casefold() for v in values})
                  for number, values in enumerate(book.worksheets[0].iter_rows(values_only=True, max_row=rows), 1)
                  if number > skip_lines and any(v is not None and str(v).strip() for v in values)]
    finally:
        book.close()
    return next((number for number, cells in filled[1:] if wanted <= cells), None)
