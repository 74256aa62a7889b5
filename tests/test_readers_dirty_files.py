"""tuneline.readers on more files made dirty by the tools around them: JSON text cut mid-emoji or naming a key twice,
workbooks and archives named as text, JSON Lines that are no JSON objects, files joined with headers that differ
(a byte-order mark, the case, the column order), and a UTF-8 file read under an 8-bit data.encoding. Each must be
read right, set aside with a rule, or refused with one line naming the file and the fix. Real files in tmp_path."""

from __future__ import annotations

import bz2
import json
import lzma
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from test_readers_dirty import assert_accounted
from tuneline import readers
from tuneline.readers import (DataLoadError, _read_delimited_careful, _read_delimited_fast,
                              _with_object_columns, read_conll, read_table, split_setting_advice)


def error(read) -> str:
    """The one-line message of the DataLoadError ``read()`` raises."""
    with pytest.raises(DataLoadError) as info:
        read()
    message = str(info.value)
    assert "\n" not in message
    return message


def strings(value: object) -> list[str]:
    """Every string in a read value (lists of tokens too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in strings(item)]
    return []


# ------------------------------------------------------------------------------------------------ JSON values


SURROGATE_DETAIL = ("half of a UTF-16 surrogate pair (as where a text is cut in the middle of an emoji), which is no "
                    "character: remove it or complete the pair")


def test_a_lone_surrogate_escape_is_set_aside_not_passed_on_to_crash_the_hashing(tmp_path):
    path = tmp_path / "tweets.jsonl"  # the escapes as written: \ud83d alone is half an emoji
    path.write_text('{"text": "ugly \\ud83d", "label": "pos"}\n'
                    '{"text": "whole \\ud83d\\ude00", "label": "neg"}\n'
                    '{"text": "fine", "label": "\\udc80"}\n'
                    '{"text": "escaped backslash \\\\ud83d", "label": "pos"}\n', encoding="utf-8")
    result = read_table(path, "jsonl")
    assert result.frame["text"].tolist() == ["whole \U0001f600", "escaped backslash \\ud83d"]
    assert [(m["rule"], m["source_line"], m["detail"]) for m in result.malformed] == [
        ("record_has_lone_surrogate", 1, f"field 'text' holds \\ud83d, {SURROGATE_DETAIL}"),
        ("record_has_lone_surrogate", 3, f"field 'label' holds \\udc80, {SURROGATE_DETAIL}")]
    assert result.malformed[0]["value"] == '{"text": "ugly \\ud83d", "label": "pos"}'
    for value in [*result.frame["text"], *result.frame["label"], *(m[k] for m in result.malformed for k in m
                                                                   if isinstance(m[k], str))]:
        value.encode("utf-8")  # what the hashing does: no lone surrogate left anywhere
    assert_accounted(result)


def test_no_lone_surrogate_leaves_the_reader_in_token_lists_nested_values_or_keys(tmp_path):
    path = tmp_path / "ner.jsonl"
    path.write_text('{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}\n'
                    '{"tokens": ["cut", "\\ud83d"], "tags": ["O", "O"]}\n'
                    '{"tokens": ["a"], "tags": ["O"], "meta": {"src": ["x", "\\udfff"]}}\n'
                    '{"tokens": ["b"], "tags": ["O"], "k\\ud800": 1}\n', encoding="utf-8")
    result = read_table(path, "jsonl")
    assert result.frame["tokens"].tolist() == [["EU", "rejects"]]
    assert [(m["rule"], m["detail"].split(",")[0]) for m in result.malformed] == [
        ("record_has_lone_surrogate", "field 'tokens'[1] holds \\ud83d"),
        ("record_has_lone_surrogate", "field 'meta'['src'][1] holds \\udfff"),
        ("record_has_lone_surrogate", "a key 'k\\ud800' holds \\ud800")]
    for name in result.frame.columns:
        for value in result.frame[name]:
            for text in strings(value):
                text.encode("utf-8")
    assert_accounted(result)


def test_a_key_written_twice_is_set_aside_not_read_as_its_last_value(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text('{"text": "a", "label": "pos"}\n'
                    '{"text": "b", "label": "pos", "label": "neg"}\n'
                    '{"text": "c", "label": "neg", "meta": {"id": 1, "id": 2}}\n'
                    '{"text": "d", "label": "neg"}\n', encoding="utf-8")
    result = read_table(path, "jsonl")
    assert result.frame["text"].tolist() == ["a", "d"]
    assert [(m["rule"], m["source_line"], m["detail"]) for m in result.malformed] == [
        ("record_has_duplicate_key", 2, 'key \'label\' appears 2 times in one object ("pos", "neg"); a record has one '
                                        "value per key: write the key once, with the right value"),
        ("record_has_duplicate_key", 3, "key 'id' appears 2 times in one object (1, 2); a record has one value per "
                                        "key: write the key once, with the right value")]
    assert_accounted(result)


def test_json_lines_still_keep_python_types_nan_and_big_numbers(tmp_path):
    path = tmp_path / "types.jsonl"  # the hooked decoder reads what json.loads reads
    path.write_text('{"text": "a", "label": 1, "score": NaN, "n": 123456789012345678901234567890, "x": null}\n',
                    encoding="utf-8")
    row = read_table(path, "jsonl").frame.iloc[0]
    assert row["label"] == 1 and row["n"] == 123456789012345678901234567890 and row["x"] is None
    assert pd.isna(row["score"])


# ------------------------------------------------------------------------------------------------ not the text named


def zip_bytes(tmp_path: Path) -> bytes:
    workbook = tmp_path / "book.xlsx"
    with zipfile.ZipFile(workbook, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return workbook.read_bytes()


def parquet_bytes(tmp_path: Path) -> bytes:
    real = tmp_path / "real.parquet"
    pd.DataFrame({"text": ["good", "bad"], "label": ["pos", "neg"]}).to_parquet(real)
    return real.read_bytes()


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_a_workbook_archive_or_parquet_file_named_as_text_says_what_it_is(tmp_path, fmt):
    text = b"text,label\ngood,pos\n" * 20
    cases = {
        "zip": (zip_bytes(tmp_path), "looks like an Excel workbook (.xlsx) or a zip archive, not text: name it .xlsx "
                                     "(tuneline reads its first sheet), or export it as CSV (Excel: File > Save As > "
                                     "'CSV UTF-8'), or unzip it, and point data at that file"),
        "xls": (bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 500,
                "looks like a legacy Excel workbook (.xls), not text: export it as CSV (Excel: File > Save As > "
                "'CSV UTF-8') and point data at the .csv"),
        "parquet": (parquet_bytes(tmp_path), "is a Parquet file, not text; set data.format: parquet or rename it "
                                             ".parquet"),
        "bzip2": (bz2.compress(text), "is bzip2-compressed; decompress it (bunzip2 -c "),
        "xz": (lzma.compress(text), "is xz-compressed; decompress it (xz -dc "),
        "zstd": (b"\x28\xb5\x2f\xfd" + b"\x00" * 40, "is zstd-compressed; decompress it (zstd -dc "),
    }
    for kind, (data, expected) in cases.items():
        path = tmp_path / f"{kind}.{fmt}"
        path.write_bytes(data)
        for encoding in ("utf-8", "latin-1"):  # never the "set data.encoding" advice that reads it as garbage
            message = error(lambda: read_table(path, fmt, encoding=encoding))
            assert message.startswith(f"input file {path} {expected}"), message
            assert "data.encoding" not in message
    bz = tmp_path / "train.csv.bz2"
    bz.write_bytes(bz2.compress(text))
    assert f"(bunzip2 -k {bz})" in error(lambda: read_table(bz, "csv"))
    conll = tmp_path / "train.conll"
    conll.write_bytes(zip_bytes(tmp_path))
    assert "looks like an Excel workbook" in error(lambda: read_conll(conll))


def test_a_parquet_file_still_reads_and_its_advice_splits_at_the_setting(tmp_path):
    real = tmp_path / "train.parquet"
    real.write_bytes(parquet_bytes(tmp_path))
    assert read_table(real, "parquet").frame["label"].tolist() == ["pos", "neg"]
    renamed = tmp_path / "train.csv"
    renamed.write_bytes(real.read_bytes())
    problem, advice = split_setting_advice(error(lambda: read_table(renamed, "csv")))
    assert problem == f"input file {renamed} is a Parquet file, not text"
    assert advice == "set data.format: parquet or rename it .parquet"
    # a text file that merely starts with the letters of a magic number is text
    plain = tmp_path / "par.csv"
    plain.write_text("PAR1,BZh9\ncode,label\nPK,pos\n", encoding="utf-8")
    assert read_table(plain, "csv").frame["BZh9"].tolist() == ["label", "pos"]


# ------------------------------------------------------------------------------------------------ no JSON object


@pytest.mark.parametrize("text, expected", [
    ("".join(json.dumps({"text": f"t{i}", "label": "pos"}) + ",\n" for i in range(3)),
     "none of the 3 lines of {path} is a JSON object; line 1: Extra data at column 31; each line ends with a comma: "
     "JSON Lines has no separator between records, remove the comma at the end of each line"),
    ("".join(repr({"text": f"t{i}", "label": "pos"}) + "\n" for i in range(3)),
     "none of the 3 lines of {path} is a JSON object; line 1: Expecting property name enclosed in double quotes at "
     "column 2; the lines are Python dicts (single quotes, True/None), not JSON: write each record with "
     "json.dumps(record), not str(record)"),
    ("\ntext,label\ngood,pos\nbad,neg\n",
     "none of the 3 lines of {path} is a JSON object; line 2: Expecting value at column 1; line 2 looks like a CSV "
     "header (text, label): the file is CSV, not JSON Lines: set data.format: csv (or name it .csv)"),
    ('{"text": "a", "label": "pos",}\n',
     "none of the 1 line of {path} is a JSON object; line 1: Expecting property name enclosed in double quotes at "
     "column 30; a comma stands before a closing } or ]: JSON allows no trailing comma, remove it"),
    ('"just a string"\n3\n',
     "none of the 2 lines of {path} is a JSON object; line 1: it is JSON, but no object; each line must be one JSON "
     "object ({...}), as json.dumps(record) writes it"),
])
def test_json_lines_of_which_none_is_an_object_say_what_the_lines_are(tmp_path, text, expected):
    path = tmp_path / "train.jsonl"
    path.write_text(text, encoding="utf-8")
    assert error(lambda: read_table(path, "jsonl")) == expected.replace("{path}", str(path))


def test_json_lines_with_some_objects_keep_quarantining_the_rest(tmp_path):
    path = tmp_path / "some.jsonl"
    path.write_text('{"text": "a", "label": "pos"},\n{"text": "b", "label": "neg"}\n', encoding="utf-8")
    result = read_table(path, "jsonl")
    assert result.frame["text"].tolist() == ["b"]
    assert [m["rule"] for m in result.malformed] == ["record_is_not_json"]
    # every line an object, each set aside: not "no JSON object" (the quarantine names each one)
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"text": "a", "text": "b"}\n', encoding="utf-8")
    assert [m["rule"] for m in read_table(dup, "jsonl").malformed] == ["record_has_duplicate_key"]


# ------------------------------------------------------------------------------------------------ joined files


REPEATED = ("line {line} repeats the header (line 1), as where files are joined with their headers; it is no "
            "record: remove it (join files without their header lines)")


def joined(sep: str, repeat: str) -> str:
    """Two exports joined with ``cat``: 20 records, the second file's header (``repeat``) before the last 10."""
    rows = [f"review {i}{sep}{'pos' if i % 2 else 'neg'}" for i in range(20)]
    return "\n".join([f"text{sep}label", *rows[:10], repeat, *rows[10:]]) + "\n"


@pytest.mark.parametrize("block_bytes", [1, 64, 1 << 20])
@pytest.mark.parametrize("repeat", ["\ufefftext{sep}label", "Text{sep}Label", "TEXT {sep} label",
                                    '\ufeff"text"{sep}"label"'])
@pytest.mark.parametrize("fmt, sep", [("csv", ","), ("tsv", "\t")])
def test_a_repeated_header_with_a_byte_order_mark_or_in_another_case_is_found_by_both_readers(
        tmp_path, monkeypatch, block_bytes, repeat, fmt, sep):
    monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", block_bytes)
    path = tmp_path / f"joined.{fmt}"
    path.write_text(joined(sep, repeat.format(sep=sep)), encoding="utf-8")
    careful = _read_delimited_careful(path, fmt, "utf-8", True, "error")
    fast = _read_delimited_fast(path, fmt, "utf-8", "error")
    assert fast is not None
    fast = _with_object_columns(fast)
    assert fast.malformed == careful.malformed and fast.records_seen == careful.records_seen
    pd.testing.assert_frame_equal(fast.frame, careful.frame)
    assert [(m["rule"], m["source_line"], m["detail"]) for m in careful.malformed] == [
        ("repeated_header", 12, REPEATED.format(line=12))]
    assert careful.frame["label"].tolist() == ["pos" if i % 2 else "neg" for i in range(20)]
    assert_accounted(careful)


@pytest.mark.parametrize("fmt, sep", [("csv", ","), ("tsv", "\t")])
@pytest.mark.parametrize("compact", [False, True])
def test_a_header_in_another_column_order_reads_the_records_after_it_in_that_order(tmp_path, fmt, sep, compact):
    rows = [f"review {i}{sep}{'pos' if i % 2 else 'neg'}" for i in range(10)]
    swapped = [f"{'pos' if i % 2 else 'neg'}{sep}review {i}" for i in range(10, 20)]
    path = tmp_path / f"joined.{fmt}"
    path.write_text("\n".join([f"text{sep}label", *rows, f"\ufeffLabel{sep}text", *swapped,
                               f"text{sep}label", f"review 20{sep}pos"]) + "\n", encoding="utf-8")
    assert _read_delimited_fast(path, fmt, "utf-8", "error") is None  # the careful reader reads it
    result = read_table(path, fmt, compact=compact)
    assert result.frame["text"].tolist() == [f"review {i}" for i in range(21)]
    assert result.frame["label"].tolist() == ["pos" if i % 2 else "neg" for i in range(20)] + ["pos"]
    assert [(m["rule"], m["source_line"], m["detail"]) for m in result.malformed] == [
        ("repeated_header", 12, "line 12 repeats the header (line 1) with its columns in another order (label,text), "
                                "as where files with different column orders are joined; it is no record, and the "
                                "records after it are read in its column order: remove it, or join files whose "
                                "columns are in one order"),
        ("repeated_header", 23, REPEATED.format(line=23))]
    assert_accounted(result)


def test_a_record_that_only_resembles_a_header_is_still_a_record(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("text,label\nlabel,pos\ntext,label text\nlabels,text\n", encoding="utf-8")
    result = read_table(path, "csv")
    assert result.frame["text"].tolist() == ["label", "text", "labels"] and not result.malformed


def test_a_byte_order_mark_starting_a_json_line_or_a_conll_line_is_skipped(tmp_path):
    jsonl = tmp_path / "joined.jsonl"  # cat of two files, each written with a mark
    jsonl.write_text('\ufeff{"text": "a", "label": "pos"}\n\ufeff{"text": "b", "label": "neg"}\n', encoding="utf-8")
    result = read_table(jsonl, "jsonl")
    assert result.frame["text"].tolist() == ["a", "b"] and not result.malformed
    conll = tmp_path / "joined.conll"
    conll.write_text("\ufeff-DOCSTART- O\n\nEU B-ORG\n\n\ufeff-DOCSTART- O\n\nPeter B-PER\n", encoding="utf-8")
    assert read_conll(conll).frame["tokens"].tolist() == [["EU"], ["Peter"]]


# ------------------------------------------------------------------------------------------------ encodings


def test_a_file_that_is_not_utf8_is_advised_cp1252_first(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("text,label\n\u201cquoted\u201d café,pos\n".encode("cp1252"))
    assert "set data.encoding to the file's encoding (e.g. cp1252, or latin-1)" in error(
        lambda: read_table(path, "csv"))
    assert read_table(path, "csv", encoding="cp1252").frame["text"].tolist() == ["\u201cquoted\u201d café"]


@pytest.mark.parametrize("size", [3, 20_000])  # the careful reader, and the fast one (which hands over)
def test_a_cp1252_file_configured_as_latin1_is_read_as_cp1252_and_said(tmp_path, size):
    """Latin-1 reads cp1252's curly quotes, dashes and euro sign (bytes 0x80-0x9F) as invisible control characters,
    which the tokenizer drops: the text trained was not the text written, without a word (dirty-data QA)."""
    path = tmp_path / "export.csv"
    rows = ["text,label", *(f"plain row {i},neg" for i in range(size)), "\u201cquoted\u201d \u2013 \u20ac5 café,pos"]
    path.write_bytes("\n".join(rows).encode("cp1252") + b"\n")
    said = _said_by_tuneline(lambda: read_table(path, "csv", encoding="latin-1"))
    assert said[0].frame["text"].iloc[-1] == "\u201cquoted\u201d \u2013 \u20ac5 café"
    assert "read as cp1252, not latin-1: it holds 4 byte(s)" in said[1] and f"(first on line {size + 2})" in \
        said[1], said[1]
    # a true latin-1 file (no byte in 0x80-0x9F) is read as latin-1, without a word
    path.write_bytes("text,label\ncafé ± 5,pos\n".encode("latin-1"))
    result, text = _said_by_tuneline(lambda: read_table(path, "csv", encoding="latin-1"))
    assert result.frame["text"].tolist() == ["café ± 5"] and "cp1252" not in text


def _said_by_tuneline(call):
    """``(call(), what the tuneline logger said meanwhile)``: its records, whatever handlers a run set up."""
    import logging

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("tuneline")
    logger.addHandler(handler)
    try:
        return call(), "\n".join(records)
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
@pytest.mark.parametrize("pasted", ["naïve plot, déjà vu", "a \u201cquoted\u201d line"])
def test_utf8_lines_in_a_cp1252_file_are_read_as_utf8(tmp_path, fmt, pasted):
    """A cp1252 export with a UTF-8 line appended by a script: the line read as ``naÃ¯ve plot dÃ©jÃ  vu``, without
    a word, or (a UTF-8 quotation mark holds byte 9d, which cp1252 lacks) stopped the run with advice to set
    data.encoding to cp1252, which it was."""
    rows = [("café crème", "pos"), (pasted, "neg"), ("\u2018single\u2019 déjà", "pos")]
    encodings = ["cp1252", "utf-8", "cp1252"]
    write = {"csv": lambda t, l: f'"{t}",{l}\n', "tsv": lambda t, l: f"{t}\t{l}\n",
             "jsonl": lambda t, l: '{"text": "%s", "label": "%s"}\n' % (t, l)}[fmt]
    head = {"csv": "text,label\n", "tsv": "text\tlabel\n", "jsonl": ""}[fmt].encode()
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(head + b"".join(write(t, l).encode(e) for (t, l), e in zip(rows, encodings)))
    result = read_table(path, fmt, encoding="cp1252")
    assert result.malformed == []
    assert result.frame["text"].tolist() == [t for t, _ in rows]
    if fmt != "jsonl":
        assert _read_delimited_fast(path, fmt, "cp1252", "error") is None  # the careful reader reads such a file


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "iso-8859-15"])
@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "conll"])
def test_a_utf8_file_under_an_8bit_encoding_says_the_setting_is_for_every_file(tmp_path, encoding, fmt):
    text = {"csv": "text,label\nplain,neg\ncafé,pos\n", "tsv": "text\tlabel\nplain\tneg\ncafé\tpos\n",
            "jsonl": '{"text": "plain", "label": "neg"}\n{"text": "café", "label": "pos"}\n',
            "conll": "plain O\n\ncafé O\n"}[fmt]
    path = tmp_path / f"train.{fmt}"
    path.write_text(text, encoding="utf-8")
    read = (lambda: read_conll(path, encoding=encoding)) if fmt == "conll" else (
        lambda: read_table(path, fmt, encoding=encoding))
    name = {"latin-1": "latin-1", "cp1252": "cp1252", "iso-8859-15": "iso-8859-15"}[encoding]
    line = 2 if fmt == "jsonl" else 3
    assert error(read) == (f"{path} is UTF-8, not {name} (line {line}: 'é' would read as 'Ã©'); data.encoding "
                           "applies to every file of the config: convert the other file(s) to UTF-8 (e.g. iconv -f "
                           f"{name} -t utf-8) and remove data.encoding, or, if every file is UTF-8, just remove it")
    if fmt in ("csv", "tsv"):
        assert _read_delimited_fast(path, fmt, encoding, "error") is None  # the block reader leaves it to the other
    # plain ASCII, and real cp1252 text, read under the setting as before
    path.write_bytes(text.replace("é", "\u201c").encode("cp1252"))
    if encoding == "cp1252":
        assert "\u201c" in str(read().frame.iloc[-1].tolist())
    path.write_text(text.replace("é", "e"), encoding="ascii")
    assert len(read().frame) == 2


@pytest.mark.parametrize("size", [3, 20_000])  # the careful reader and the fast one
def test_a_quote_never_closed_in_the_last_record_says_so(tmp_path, size):
    """The last record opens a quote it never closes: nothing follows for it to swallow, and the record was
    quarantined as "1 fields, header has 2" without a word of the quote (dirty-data QA, D8)."""
    path = tmp_path / "data.csv"
    lines = ["text,label", *(f'"row {i}",pos' for i in range(size)), '"this last record never closes its quote,pos']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = read_table(path, "csv")
    assert len(result.frame) == size
    (bad,) = result.malformed
    assert bad["source_line"] == size + 2 and bad["rule"] == "record_has_wrong_field_count"
    assert bad["detail"] == ("1 fields, header has 2; its quote is opened and never closed, so the rest of the line "
                             'was read as one field: close it, or double a quote inside a quoted text ("")')


@pytest.mark.parametrize("size", [3, 400])
def test_a_text_that_lost_its_opening_quote_is_named_as_such(tmp_path, size):
    """An MRPC row whose first text lost its opening quote split at its commas: the detail said only that a text
    holding ',' must be in double quotes, and the user looked for an unquoted comma (dirty-data QA)."""
    path = tmp_path / "pairs.csv"
    lines = ["sentence1,sentence2,label", *(f'"a, {i}","b {i}",1' for i in range(size)),
             'Shares of Genentech , a unit , fell 2 percent .","Shares of Xoma fell",0']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = read_table(path, "csv")
    assert len(result.frame) == size
    (bad,) = result.malformed
    assert bad["source_line"] == size + 2 and bad["rule"] == "record_has_wrong_field_count"
    assert "a quote closes a text that no quote opens: add the missing opening quote" in bad["detail"]
