"""tuneline.readers on files made dirty by the tools around them: files joined with their headers, TSV saved by
Excel or R (quoted cells, line breaks inside cells), and files that are not the text they are named as (gzip, one
JSON array, UTF-16 without a byte-order mark). Every case is a real file written into tmp_path."""

from __future__ import annotations

import codecs
import gzip
import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from tuneline import readers
from tuneline.readers import (DataLoadError, ReadResult, _read_delimited_careful, _read_delimited_fast,
                              _with_object_columns, read_conll, read_table)


def assert_accounted(result: ReadResult) -> None:
    """Each record seen is either good or malformed, never lost (as tests/test_readers.py checks it)."""
    assert len(result.frame) + len(result.malformed) == result.records_seen
    rows = sorted([*result.frame["source_row"].tolist(), *(m["source_row"] for m in result.malformed)])
    assert rows == list(range(1, result.records_seen + 1))


def assert_both_readers_agree(path: Path, fmt: str) -> ReadResult:
    """The block reader ran and gave exactly the careful reader's result (records, numbers, quarantine)."""
    careful = _read_delimited_careful(path, fmt, "utf-8", True, "error")
    fast = _read_delimited_fast(path, fmt, "utf-8", "error")
    assert fast is not None
    fast = _with_object_columns(fast)
    assert fast.malformed == careful.malformed and fast.records_seen == careful.records_seen
    pd.testing.assert_frame_equal(fast.frame, careful.frame)
    return careful


# ------------------------------------------------------------------------------------------------ repeated headers


def joined_csv(sep: str = ",", header: str = "text,label") -> tuple[str, list[int]]:
    """60 records with the header line repeated 6 times among them (``cat`` of files with headers); the 1-based
    lines of the repeats."""
    rows = [f"review {i}{sep}{'pos' if i % 2 else 'neg'}" for i in range(60)]
    lines, repeats = [header], []
    for i, row in enumerate(rows):
        if i in (10, 20, 21, 30, 40, 50):
            lines.append(header)
            repeats.append(len(lines))
        lines.append(row)
    return "\n".join(lines) + "\n", repeats


@pytest.mark.parametrize("compact", [False, True])
def test_a_header_line_repeated_in_the_data_is_quarantined_not_read_as_a_class(tmp_path, compact):
    text, repeats = joined_csv()
    path = tmp_path / "joined.csv"
    path.write_text(text, encoding="utf-8")
    result = read_table(path, "csv", compact=compact)
    assert result.frame["label"].value_counts().to_dict() == {"pos": 30, "neg": 30}
    assert "text" not in set(result.frame["text"])
    assert [(m["rule"], m["source_line"], m["value"]) for m in result.malformed] == [
        ("repeated_header", line, "text,label") for line in repeats]
    assert repeats == [12, 23, 25, 35, 46, 57]
    assert result.malformed[0]["detail"] == ("line 12 repeats the header (line 1), as where files are joined with "
                                             "their headers; it is no record: remove it (join files without their "
                                             "header lines)")
    assert result.records_seen == 66
    assert_accounted(result)


@pytest.mark.parametrize("block_bytes", [1, 40, 333, 1 << 20])
def test_repeated_headers_are_found_alike_by_the_block_and_the_careful_reader(tmp_path, monkeypatch, block_bytes):
    monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", block_bytes)
    for name, fmt, (text, repeats) in (
            ("plain.csv", "csv", joined_csv()),
            ("spaced.csv", "csv", joined_csv(header="text , label")),  # trimmed as the header's names are
            ("quoted.csv", "csv", joined_csv(header='"text","label"')),  # the csv module's lines
            ("joined.tsv", "tsv", joined_csv("\t", "text\tlabel")),
            ("quoted.tsv", "tsv", joined_csv("\t", '"text"\t"label"'))):  # names unquoted in a TSV file
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        result = assert_both_readers_agree(path, fmt)
        assert [(m["rule"], m["source_line"]) for m in result.malformed] == [
            ("repeated_header", line) for line in repeats], name
        assert len(result.frame) == 60 and set(result.frame["label"]) == {"pos", "neg"}, name


def test_a_repeated_header_in_a_semicolon_csv_and_a_record_that_only_resembles_it(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("text;label\ngood;pos\ntext;label\nbad;neg\ntext;label;extra\ntext;positive\n", encoding="utf-8")
    result = read_table(path, "csv")  # the careful reader (";" is not the block reader's delimiter)
    assert result.frame["text"].tolist() == ["good", "bad", "text"]
    assert result.frame["label"].tolist() == ["pos", "neg", "positive"]
    assert [(m["rule"], m["source_line"]) for m in result.malformed] == [
        ("repeated_header", 3), ("record_has_wrong_field_count", 5)]
    # no header, nothing to repeat: a line of names is a record like any other
    plain = tmp_path / "plain.csv"
    plain.write_text("text,label\ngood,pos\ntext,label\n", encoding="utf-8")
    assert read_table(plain, "csv", header=False).frame["1"].tolist() == ["label", "pos", "label"]


# ------------------------------------------------------------------------------------------------ TSV from Excel / R


CELL_DETAIL = ("a quoted cell seems to span lines (a line break inside a cell, as Excel writes it); TSV is read one "
               "record per line, without quotes: save the file without line breaks in cells, or as CSV "
               "(data.format: csv)")


def test_a_tsv_cell_with_a_line_break_makes_its_record_malformed_once(tmp_path):
    """Dirty-data QA (D9): each line of such a cell counted as a bad record of its own, so 20 of 500 rows (4%)
    read as 40 of 520 records (7.7%) and stopped the run over data.max_bad_fraction."""
    path = tmp_path / "excel.tsv"
    path.write_text("text\tlabel\n"
                    "good film\tpos\n"
                    '"remains great throughout\n'
                    'second line"\tneg\n'
                    "bad film\tneg\n"
                    '"three\n'
                    "\n"
                    'lines, one blank"\tpos\n'
                    "last\tpos\n", encoding="utf-8")
    result = read_table(path, "tsv")
    assert result.frame["text"].tolist() == ["good film", "bad film", "last"]
    assert result.frame["label"].tolist() == ["pos", "neg", "pos"]
    assert [(m["rule"], m["source_row"], m["source_line"], m["value"]) for m in result.malformed] == [
        ("quoted_cell_spans_lines", 2, 3, '"remains great throughout\nsecond line"\tneg'),
        ("quoted_cell_spans_lines", 4, 6, '"three\n\nlines, one blank"\tpos')]
    assert result.malformed[0]["detail"] == f"lines 3-4: {CELL_DETAIL}"
    assert result.malformed[1]["detail"] == f"lines 6-8: {CELL_DETAIL}"
    assert result.frame["source_row"].tolist() == [1, 3, 5]
    assert result.records_seen == 5
    assert_accounted(result)
    assert_both_readers_agree(path, "tsv")


@pytest.mark.parametrize("block_bytes", [1, 20, 64, 1 << 20])
def test_tsv_cells_spanning_lines_are_found_alike_across_blocks(tmp_path, monkeypatch, block_bytes):
    monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", block_bytes)
    rows = [f"{i}\treview {i}\t{'pos' if i % 2 else 'neg'}" for i in range(40)]
    rows[5] = '5\t"first line'
    rows[6] = 'second ""quoted"" line"\tpos'
    rows[20] = '20\t"opens, never closed'  # no later line closes it into one record: one malformed line
    rows[30] = '30\t"a\tb"\tneg'  # Excel quotes a cell holding a tab: a wrong field count, as before
    path = tmp_path / "ids.tsv"
    path.write_text("id\ttext\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = assert_both_readers_agree(path, "tsv")
    assert [(m["rule"], m["source_line"]) for m in result.malformed] == [
        ("quoted_cell_spans_lines", 7), ("record_has_wrong_field_count", 22), ("record_has_wrong_field_count", 32)]
    assert len(result.frame) == 36 and result.records_seen == 39


def test_glue_quotes_in_a_tsv_are_still_text(tmp_path):
    # a sentence in the last column opening a quote, a later line's first field ending in one: no Excel cell, as
    # together they are no record of the header's field count
    path = tmp_path / "cola.tsv"
    path.write_text('source\tlabel\tsentence\n'
                    'gj04\t1\t" the time machine " is a movie .\n'
                    'gj04\t0\t"unclosed, then more\n'
                    'clc95"\t1\tthe end .\n', encoding="utf-8")
    result = read_table(path, "tsv")
    assert result.frame["sentence"].tolist() == ['" the time machine " is a movie .', '"unclosed, then more',
                                                 "the end ."]
    assert not result.malformed


@pytest.mark.parametrize("compact", [False, True])
def test_a_tsv_with_every_value_quoted_reads_without_the_quotes(tmp_path, compact):
    path = tmp_path / "r.tsv"  # R's write.table(sep="\t"), pandas QUOTE_ALL: header and every value quoted
    path.write_text('"text"\t"label"\n"great film"\t"pos"\n"she said ""wow"""\t"neg"\n""\t"pos"\n',
                    encoding="utf-8")
    result = read_table(path, "tsv", compact=compact)
    assert [c for c in result.frame.columns if not c.startswith("source_")] == ["text", "label"]
    assert result.frame["label"].tolist() == ["pos", "neg", "pos"]
    assert result.frame["text"].tolist()[:2] == ["great film", 'she said "wow"']
    assert pd.isna(result.frame["text"].tolist()[2])  # an empty quoted cell is a missing value
    assert not result.malformed


def test_a_tsv_column_with_only_some_values_quoted_keeps_them_and_warns(tmp_path, caplog):
    path = tmp_path / "excel.tsv"  # Excel quotes only the cells that hold a quote
    path.write_text('text\tlabel\n"a ""great"" film"\tpos\nplain film\tneg\n" hello there "\tpos\n',
                    encoding="utf-8")
    with caplog.at_level(logging.INFO):
        result = read_table(path, "tsv")
    assert result.frame["text"].tolist() == ['"a ""great"" film"', "plain film", '" hello there "']
    assert result.frame["label"].tolist() == ["pos", "neg", "pos"]
    assert f"{path}: 2 of 3 values of column 'text' are wrapped in double quotes" in caplog.text
    assert "save the file as CSV (data.format: csv)" in caplog.text
    caplog.clear()  # quotations as text, no quote doubled inside (MRPC's): no advice that would strip their quotes
    path.write_text('text\tlabel\n" We \'re just dealing with bragging rights . "\tpos\nplain film\tneg\n',
                    encoding="utf-8")
    with caplog.at_level(logging.INFO):
        result = read_table(path, "tsv")
    assert result.frame["text"].tolist()[0] == '" We \'re just dealing with bragging rights . "'
    assert "wrapped in double quotes" not in caplog.text


def test_tsv_quotes_keep_reads_every_value_as_written_without_the_warning(tmp_path, caplog):
    """GoEmotions' and GLUE's TSV files hold quotes as text (their README: read with quoting disabled, keep the text
    as it is): ``auto``'s warning told to convert such a file to CSV on every run, and ``keep`` is the way to say
    the quotes are text. A column quoted throughout is kept as written too."""
    from tests_support import run_config
    from tuneline.tasks.load import load_data

    path = tmp_path / "excel.tsv"
    path.write_text('text\tlabel\n"a ""great"" film"\tpos\nplain film\tneg\n" hello there "\tpos\n'
                    + "".join(f"film number {i}\t{('pos', 'neg')[i % 2]}\n" for i in range(20)), encoding="utf-8")
    with caplog.at_level(logging.INFO):
        kept = load_data.fn(run_config("classification", "data.tsv_quotes=keep", path=str(path)))
    assert kept.frames["all"]["text"].tolist()[:3] == ['"a ""great"" film"', "plain film", '" hello there "']
    assert "wrapped in double quotes" not in caplog.text
    with caplog.at_level(logging.INFO):
        load_data.fn(run_config("classification", path=str(path)))
    assert "or set data.tsv_quotes: keep if the quotes are text" in caplog.text  # auto, the default, says how
    quoted = tmp_path / "r.tsv"
    quoted.write_text('"text"\t"label"\n"great film"\t"pos"\n', encoding="utf-8")
    assert read_table(quoted, "tsv", tsv_quotes="keep").frame["label"].tolist() == ['"pos"']
    assert read_table(quoted, "tsv").frame["label"].tolist() == ["pos"]


# ------------------------------------------------------------------------------------------------ not the text named


def test_a_gzip_compressed_file_says_to_decompress_it(tmp_path):
    data = gzip.compress(b"text,label\ngood,pos\n")
    for name, fmt in (("train.csv.gz", "csv"), ("train.csv", "csv"), ("train.tsv", "tsv"), ("r.jsonl", "jsonl"),
                      ("r.parquet", "parquet")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DataLoadError) as info:
            read_table(path, fmt)
        assert str(info.value).startswith(f"input file {path} is gzip-compressed; decompress it (gunzip ")
        assert "data.encoding" not in str(info.value) and "\n" not in str(info.value)
    assert f"(gunzip -k {tmp_path / 'train.csv.gz'})" in str(_error(lambda: read_table(tmp_path / "train.csv.gz",
                                                                                       "csv")))
    conll = tmp_path / "train.conll"
    conll.write_bytes(gzip.compress(b"EU B-ORG\n"))
    assert "gzip-compressed" in str(_error(lambda: read_conll(conll)))


def _error(read) -> DataLoadError:
    with pytest.raises(DataLoadError) as info:
        read()
    return info.value


@pytest.mark.parametrize("text, lines", [
    (json.dumps([{"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}], indent=2), [2, 6]),
    (json.dumps([{"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}]), [1, 1]),  # to_json's layout
    ('\ufeff[{"text": "good", "label": "pos"},\n {"text": "bad", "label": "neg"}]', [1, 2]),
])
def test_a_json_array_file_is_read_record_by_record_with_their_lines(tmp_path, text, lines):
    """One JSON array of objects (``json.dump`` of a list, pandas' ``to_json(orient="records")``) was refused with a
    jq command; it is a record per element, numbered by its position, each naming the line it starts on."""
    path = tmp_path / "train.json"
    path.write_text(text, encoding="utf-8")
    result = read_table(path, "jsonl")
    assert result.frame[["text", "label"]].values.tolist() == [["good", "pos"], ["bad", "neg"]]
    assert result.frame["source_row"].tolist() == [1, 2] and result.frame["source_line"].tolist() == lines
    assert result.records_seen == 2 and result.malformed == []


def test_a_json_array_sets_aside_elements_that_are_no_records_and_names_where_a_broken_one_breaks(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('[\n  {"text": "good", "label": "pos"},\n  "a string",\n  {"text": "x", "label": "a", '
                    '"label": "b"},\n  {"text": "bad", "label": "neg"}\n]\n', encoding="utf-8")
    result = read_table(path, "jsonl")
    assert result.frame["text"].tolist() == ["good", "bad"] and result.frame["source_line"].tolist() == [2, 5]
    assert [(m["source_row"], m["source_line"], m["rule"]) for m in result.malformed] == [
        (2, 3, "record_is_not_an_object"), (3, 4, "record_has_duplicate_key")]
    assert result.malformed[0]["detail"] == "each element of the array must be an object"
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"text": "good", "label": "pos"}\n  {"text": "bad", "label": "neg"}\n]\n')
    assert str(_error(lambda: read_table(broken, "jsonl"))) == (
        f"{broken} holds one JSON array ([{{...}}, {{...}}]) that is no valid JSON: line 3 column 3: Expecting ',' "
        "delimiter; fix it there (or write one JSON object per line, JSON Lines, where a broken line costs only its "
        "record)")


def test_a_quote_that_closes_inside_a_field_is_set_aside_not_read_without_its_quotes(tmp_path):
    """``f.write(f"{text},{label}")`` for a text starting with a quote writes ``"Best" movie ever,pos``: the csv
    module (and pandas) read ``Best movie ever``, a text that was never written, silently. Such a record is set
    aside naming its field; a quoted field (Excel, pandas: inner quotes doubled) and quotes inside an unquoted field
    (``plain "quoted" word``) are read as written."""
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"Best" movie ever,pos\n"broken ""quote" here,neg\n"""Best"" movie ever",pos\n'
                    'plain "quoted" word,neg\n"fine, thanks",pos\n', encoding="utf-8")
    result = read_table(path, "csv")
    assert result.frame["text"].tolist() == ['"Best" movie ever', 'plain "quoted" word', "fine, thanks"]
    assert [(m["rule"], m["source_line"]) for m in result.malformed] == [("field_has_stray_quote", 2),
                                                                        ("field_has_stray_quote", 3)]
    assert result.malformed[0]["detail"] == (
        "field 1 opens a quote that closes before the field ends ('\"Best\" movie ever'), so it would be read "
        'without its quotes: write the whole field in quotes with each quote inside doubled ("""Best"" movie ever"), '
        "as spreadsheet programs and pandas write it")
    # the fix shown is the record's own field, not a fixed example
    assert result.malformed[1]["detail"].endswith(
        'each quote inside doubled ("""broken """"quote"" here"), as spreadsheet programs and pandas write it')
    pairs = tmp_path / "pairs.csv"
    pairs.write_text('text,text_pair,label\nquestion y,"No" is the answer,0\nq,a,1\n', encoding="utf-8")
    assert [(m["rule"], m["detail"][:8]) for m in read_table(pairs, "csv").malformed] == [
        ("field_has_stray_quote", "field 2 ")]


@pytest.mark.parametrize("orient, says", [
    ("columns", "is one JSON object of objects ('text', 'label'), as pandas' df.to_json() writes by default"),
    ("index", "is one JSON object of objects ('0', '1', '2', ...), as pandas' df.to_json() writes by default"),
    ("split", "is one JSON object of 'columns' and 'data', as pandas' df.to_json(orient='split') writes"),
    ("values", "is a JSON array of arrays (as pandas' df.to_json(orient='values') writes): rows without column names"),
])
def test_pandas_json_layouts_other_than_records_name_the_layout_and_the_call_that_writes_records(tmp_path, orient,
                                                                                                 says):
    """``df.to_json(path)`` (pandas' default, column-oriented) read as one record whose label was a dict: the error
    blamed the labels. Each of pandas' other layouts is named, with the call that writes records."""
    import pandas as pd

    path = tmp_path / "t.json"
    pd.DataFrame({"text": [f"t {i}" for i in range(12)], "label": ["neg", "pos"] * 6}).to_json(path, orient=orient)
    message = str(_error(lambda: read_table(path, "jsonl")))
    assert message.startswith(f"{path} {says}")
    assert message.endswith("(df.to_json('t.jsonl', orient='records', lines=True))")


def test_an_empty_array_or_records_wrapped_in_an_object_say_so(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("[ ]\n")
    assert str(_error(lambda: read_table(empty, "jsonl"))) == (
        f"input file {empty} holds an empty JSON array ([]): no records; give a file with records")
    wrapped = tmp_path / "export.json"
    wrapped.write_text(json.dumps({"data": [{"text": "good", "label": "pos"}, {"text": "bad", "label": "neg"}],
                                   "count": 2}, indent=2))
    assert str(_error(lambda: read_table(wrapped, "jsonl"))) == (
        f"{wrapped} is one JSON object whose key 'data' holds 2 records ([{{...}}, ...]); tuneline reads a record per "
        f"object: write them one per line (e.g. jq -c '.[\"data\"][]' {wrapped} > export-lines.jsonl) and point data "
        "at that file")
    single = tmp_path / "one.jsonl"  # one record whose spans are objects: a record, read as it is
    single.write_text('{"text": "Paris in May", "spans": [{"start": 0, "end": 5}, {"start": 9, "end": 12}]}\n')
    assert read_table(single, "jsonl").frame["text"].tolist() == ["Paris in May"]


def test_json_lines_whose_first_record_is_a_list_are_still_read_line_by_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('["a", "list"]\n{"text": "good", "label": "pos"}\n', encoding="utf-8")
    result = read_table(path, "jsonl")
    assert result.frame["text"].tolist() == ["good"]
    assert [(m["rule"], m["source_line"]) for m in result.malformed] == [("record_is_not_an_object", 1)]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_utf16_without_a_byte_order_mark_names_the_encoding_to_set(tmp_path, codec, fmt):
    text = {"csv": "text,label\nnaïve film,pos\nbad,neg\n", "tsv": "text\tlabel\nnaïve film\tpos\nbad\tneg\n",
            "jsonl": '{"text": "naïve film", "label": "pos"}\n{"text": "bad", "label": "neg"}\n'}[fmt]
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(text.encode(codec))  # no mark: bcp and some database exports write it so
    for encoding in ("utf-8", "latin-1"):
        message = str(_error(lambda: read_table(path, fmt, encoding=encoding)))
        assert message == (f"{path} looks like {codec.upper()} text without a byte-order mark (a NUL byte between "
                           f"the characters), not {codecs.lookup(encoding).name}; set data.encoding: {codec}")
    result = read_table(path, fmt, encoding=codec)  # as the message says
    assert result.frame["text"].tolist() == ["naïve film", "bad"] and not result.malformed


def test_utf16_conll_without_a_mark_and_a_utf8_file_with_a_nul_are_told_apart(tmp_path):
    conll = tmp_path / "train.conll"
    conll.write_bytes("EU B-ORG\nrejects O\n".encode("utf-16-le"))
    assert "set data.encoding: utf-16-le" in str(_error(lambda: read_conll(conll)))
    stray = tmp_path / "stray.csv"
    stray.write_bytes(b"text,label\ngood\x00 film,pos\nbad film,neg\n")  # one NUL is no UTF-16
    assert read_table(stray, "csv").frame["label"].tolist() == ["pos", "neg"]


@pytest.mark.parametrize("block_bytes", [1, 64, 1 << 20])
def test_tsv_cells_spanning_lines_are_found_when_they_hold_a_tab_too(tmp_path, monkeypatch, block_bytes):
    """pandas' ``to_csv(sep="\\t")`` (and Excel) quotes a cell holding a line break and a tab. A tab on the cell's
    closing line hid it (its lines became 'record_has_wrong_field_count', with no word of the quoting), and a tab
    on its opening line read ``"and`` as the text and the rest of the cell as the label (exploratory QA)."""
    monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", block_bytes)
    path = tmp_path / "pandas.tsv"
    path.write_text("text\tlabel\n"
                    "good film\tpos\n"
                    '"a cell\n'
                    'and\tmore"\tneg\n'
                    '"and\tmore from the first line\n'
                    'next"\tpos\n'
                    "last\tpos\n", encoding="utf-8")
    result = assert_both_readers_agree(path, "tsv")
    assert result.frame["text"].tolist() == ["good film", "last"]
    assert [(m["rule"], m["source_line"], m["detail"]) for m in result.malformed] == [
        ("quoted_cell_spans_lines", 3, f"lines 3-4: {CELL_DETAIL}"),
        ("quoted_cell_spans_lines", 5, f"lines 5-6: {CELL_DETAIL}")]


def test_a_tsv_line_whose_quoted_cell_holds_a_tab_says_to_read_the_file_as_csv(tmp_path):
    path = tmp_path / "pandas.tsv"
    path.write_text('text\tlabel\ngood film\tpos\n"a\tb"\tneg\n', encoding="utf-8")
    result = read_table(path, "tsv")
    assert [m["detail"] for m in result.malformed] == [
        "3 fields, header has 2; read with quotes, as Excel writes a cell holding a tab, the line has the header's "
        "fields: a TSV file is read without quotes: set data.format: csv, which reads quoted cells (and finds the "
        "tab)"]
    as_csv = read_table(path, "csv")
    assert as_csv.frame["text"].tolist() == ["good film", "a\tb"] and not as_csv.malformed
