"""What a file says about itself wins over the defaults: a UTF-16/UTF-32 byte-order mark names the encoding, and a
".csv" written with ";", tab or "|" (Excel in a decimal-comma locale, a TSV named .csv) is read at that delimiter."""

from __future__ import annotations

import codecs
import json

import pytest

from tuneline.readers import bom_encoding, read_conll, read_table, sniff_delimiter

ROWS = [("naïve, but “sweet”; 5€", "Positive"), ('a "quoted" word; and a comma, too', "negative"),
        ("plain text", "positive")]


def csv_text(delimiter: str = ",") -> str:
    def quoted(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if any(c in value for c in (delimiter, '"', "\n")) else value
    return "".join(delimiter.join(quoted(v) for v in row) + "\r\n" for row in [("text", "label"), *ROWS])


def records(result) -> list[tuple]:
    return list(zip(result.frame["text"], result.frame["label"], result.frame["source_row"]))


EXPECTED = [(text, label, i + 1) for i, (text, label) in enumerate(ROWS)]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_a_utf16_or_utf32_file_with_a_byte_order_mark_reads_under_the_default_encoding(tmp_path, codec):
    text = csv_text()
    data = text.encode(codec)
    if codec.endswith(("-le", "-be")):  # these codecs write no mark: add the one Excel or PowerShell writes
        mark = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE,
                "utf-32-le": codecs.BOM_UTF32_LE, "utf-32-be": codecs.BOM_UTF32_BE}[codec]
        data = mark + data
    path = tmp_path / "reviews.csv"
    path.write_bytes(data)
    assert bom_encoding(path, "utf-8") == codec[:6]
    assert records(read_table(path, "csv")) == EXPECTED
    assert records(read_table(path, "csv", encoding="latin-1", compact=True)) == EXPECTED  # the mark wins


def test_utf16_jsonl_tsv_and_conll(tmp_path):
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in ROWS), encoding="utf-16")
    assert records(read_table(jsonl, "jsonl")) == EXPECTED
    tsv = tmp_path / "r.tsv"
    tsv.write_text("text\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in ROWS), encoding="utf-16")
    assert records(read_table(tsv, "tsv")) == EXPECTED
    conll = tmp_path / "r.conll"
    conll.write_text("Zürich B-LOC\nis O\n\nAnna B-PER\n", encoding="utf-16")
    result = read_conll(conll)
    assert result.frame["tokens"].tolist() == [["Zürich", "is"], ["Anna"]]
    assert result.frame["tags"].tolist() == [["B-LOC", "O"], ["B-PER"]]


def test_a_file_without_a_mark_keeps_the_configured_encoding(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(csv_text().encode("utf-8"))
    assert bom_encoding(path, "cp1252") == "cp1252" and bom_encoding(tmp_path / "missing.csv", "utf-8") == "utf-8"


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_csv_written_with_another_delimiter_reads_the_same_records(tmp_path, delimiter):
    path = tmp_path / "reviews.csv"
    path.write_text(csv_text(delimiter), encoding="utf-8-sig")
    assert sniff_delimiter(path, "utf-8") == delimiter
    assert records(read_table(path, "csv")) == EXPECTED
    assert records(read_table(path, "csv", compact=True)) == EXPECTED


def test_a_comma_csv_whose_texts_hold_semicolons_stays_a_comma_csv(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text(csv_text(","), encoding="utf-8")
    assert sniff_delimiter(path, "utf-8") == ","
    assert records(read_table(path, "csv")) == EXPECTED
    single = tmp_path / "one-column.csv"
    single.write_text("text\nhello; world\n", encoding="utf-8")  # one column: the header decides, not the rows
    assert sniff_delimiter(single, "utf-8") == ","


@pytest.mark.parametrize("delimiter", [",", ";"])
@pytest.mark.parametrize("compact", [False, True])
def test_fields_quoted_after_a_space_are_read_without_the_space_and_quotes(tmp_path, delimiter, compact):
    """``"text", "label"``: read as RFC 4180, the header named a column ``"label"`` and, told to use it, every label
    came out as ``"positive"``, quotes included (exploratory QA)."""
    path = tmp_path / "spaced.csv"
    path.write_text(f'"text"{delimiter} "label"\n"great film, really"{delimiter} "positive"\n'
                    f'"dull"{delimiter}  "negative"\n"say ""hi"""{delimiter} "positive"\n', encoding="utf-8")
    frame = read_table(path, "csv", compact=compact).frame
    assert list(frame.columns)[:2] == ["text", "label"]
    assert frame[["text", "label"]].astype(object).values.tolist() == [["great film, really", "positive"], ["dull", "negative"],
                                                    ['say "hi"', "positive"]]
    plain = tmp_path / "plain.csv"  # a text with a space after its comma, unquoted, stays as written
    plain.write_text('text,label\n"a, b",pos\nc d,neg\n', encoding="utf-8")
    assert read_table(plain, "csv").frame[["text", "label"]].values.tolist() == [["a, b", "pos"], ["c d", "neg"]]


@pytest.mark.parametrize("delimiter", [";", ","])
def test_an_excel_sep_line_names_the_delimiter_and_is_not_the_header(tmp_path, delimiter):
    path = tmp_path / "export.csv"
    path.write_text(f"sep={delimiter}\r\n" + csv_text(delimiter), encoding="utf-8")
    result = read_table(path, "csv")
    assert records(result) == EXPECTED and result.records_seen == 3
    assert result.frame["source_line"].tolist() == [3, 4, 5]  # physical lines: sep= is line 1, the header line 2
    without_header = read_table(path, "csv", header=False)
    assert without_header.frame["0"].tolist() == ["text", *[t for t, _ in ROWS]] and without_header.records_seen == 4


@pytest.mark.parametrize("compact", [False, True])
def test_the_empty_columns_a_spreadsheet_leaves_after_the_data_are_ignored(tmp_path, compact):
    path = tmp_path / "export.csv"
    path.write_text("text,label,,\n" + "".join(f"{t.replace(',', ' ').replace(chr(34), '')},{l},,\n"
                                               for t, l in ROWS), encoding="utf-8")
    result = read_table(path, "csv", compact=compact)
    assert [c for c in result.frame.columns if not c.startswith("source_")] == ["text", "label", "unnamed_2",
                                                                                 "unnamed_3"]
    assert result.frame["label"].tolist() == [l for _, l in ROWS] and not result.malformed


def test_a_semicolon_csv_whose_header_quotes_a_comma_is_read_at_the_semicolon(tmp_path):
    """The first line alone said comma ("label, final" holds one outside the semicolons' view), and every record was
    read as one field: the delimiter is the one that splits the header and most records alike."""
    path = tmp_path / "export.csv"
    body = "".join(f'"{text}";{label}\r\n' for text, label in [("good, really", "pos"), ("bad film", "neg")] * 3)
    path.write_text('"text";"label, final"\r\n' + body, encoding="utf-8")
    assert sniff_delimiter(path, "utf-8") == ";"
    result = read_table(path, "csv")
    assert result.frame["text"].tolist()[:2] == ["good, really", "bad film"]
    assert result.frame["label, final"].tolist()[:2] == ["pos", "neg"] and result.records_seen == 6


@pytest.mark.parametrize("fmt, sep", [("csv", ","), ("tsv", "\t"), ("csv", ";")])
def test_lines_above_the_header_are_skipped_when_configured_and_named_when_not(tmp_path, fmt, sep):
    """An export's title line above the header: without data.skip_lines the error says which line holds the
    configured columns and what to set; with it the records are the table's, numbered by their physical lines."""
    from tuneline.kinds import KINDS
    from tuneline.kinds.classification import ClassificationData
    from tuneline.readers import DataLoadError

    # ";": a European Excel export, whose delimiter the title line above hid from the hint (it said "set
    # data.text_column")
    path = tmp_path / f"tickets.{fmt}"
    rows = "".join(f"{text}{sep}{label}\n" for text, label in [("late parcel", "shipping"), ("refund", "billing")])
    path.write_text(f"Tickets exported 2026-11-30 by ops\n\nText{sep}Label\n{rows}", encoding="utf-8")
    kind = KINDS["classification"]
    with pytest.raises(DataLoadError, match=r"line 3 names the configured columns: set data.skip_lines: 2"):
        kind.read(path, fmt, ClassificationData(path=path))
    read = kind.read(path, fmt, ClassificationData(path=path, skip_lines=2))
    assert read.frame["text"].tolist() == ["late parcel", "refund"]
    assert read.frame["label"].tolist() == ["shipping", "billing"] and read.records_seen == 2
    assert read_table(path, fmt, skip_lines=2).frame["source_line"].tolist() == [4, 5]
