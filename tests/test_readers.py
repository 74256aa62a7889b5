"""tuneline.readers: robust readers for dirty files. Every case is a real file written into tmp_path."""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import shared_data
from tuneline import readers
from tuneline.readers import DataLoadError, ReadResult, detect_format, normalize_label, read_conll, read_table

BOM = b"\xef\xbb\xbf"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def assert_accounted(result: ReadResult) -> None:
    """The invariant every reader keeps: each record seen is either good or malformed, never lost."""
    assert len(result.frame) + len(result.malformed) == result.records_seen
    rows = sorted([*result.frame["source_row"].tolist(), *(m["source_row"] for m in result.malformed)])
    assert rows == list(range(1, result.records_seen + 1))
    for bad in result.malformed:
        assert set(bad) == {"source_row", "source_line", "rule", "value", "detail"}
        assert len(bad["value"]) <= 500


# ------------------------------------------------------------------------------------------------ encodings / BOM


@pytest.mark.parametrize("fmt, text", [
    ("csv", "text,label\nhello,pos\n"),
    ("tsv", "text\tlabel\nhello\tpos\n"),
])
def test_utf8_bom_never_reaches_the_first_column_name(tmp_path, fmt, text):
    path = tmp_path / f"data.{fmt}"
    path.write_bytes(BOM + text.encode())
    result = read_table(path, fmt)
    assert list(result.frame.columns) == ["text", "label", "source_row", "source_line"]
    assert result.frame["text"].tolist() == ["hello"]
    # also with an explicit non-UTF-8 encoding: the UTF-8 BOM is still removed, not read as "ï»¿"
    assert list(read_table(path, fmt, encoding="latin-1").frame.columns)[0] == "text"


def test_utf8_bom_in_jsonl_and_conll(tmp_path):
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_bytes(BOM + b'{"text": "hi", "label": 1}\n')
    result = read_table(jsonl, "jsonl")
    assert result.frame["text"].tolist() == ["hi"] and not result.malformed
    conll = tmp_path / "data.conll"
    conll.write_bytes(BOM + b"EU B-ORG\nrejects O\n")
    assert read_conll(conll).frame["tokens"].tolist() == [["EU", "rejects"]]


def test_latin1_file_read_as_utf8_names_file_line_and_byte_then_reads_with_latin1(tmp_path):
    path = write(tmp_path / "data.csv", "text,label\ncafe ok,pos\ncaf\xe9 cr\xe8me,neg\nplain,pos\n", "latin-1")
    with pytest.raises(DataLoadError) as info:
        read_table(path, "csv")
    message = str(info.value)
    assert str(path) in message and "line 3" in message
    assert "byte offset 26" in message  # len(b"text,label\ncafe ok,pos\ncaf") == 26
    assert "data.encoding" in message and "latin-1" in message and "data.on_decode_error: quarantine" in message
    assert "\n" not in message
    assert not isinstance(info.value, UnicodeDecodeError)
    result = read_table(path, "csv", encoding="latin-1")
    assert result.frame["text"].tolist() == ["cafe ok", "café crème", "plain"]
    assert not result.malformed


def test_decode_error_byte_offset_counts_the_bom(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_bytes(BOM + b"text\tlabel\nok\t1\n\xff\t0\n")
    with pytest.raises(DataLoadError, match=r"line 3, byte offset 19"):
        read_table(path, "tsv")


def test_quarantine_sets_aside_only_the_undecodable_lines(tmp_path):
    path = write(tmp_path / "data.csv", "text,label\ngood one,pos\ncaf\xe9,neg\n\"multi\nline\",pos\nlast,neg\n",
                 "latin-1")
    result = read_table(path, "csv", on_decode_error="quarantine")
    assert result.frame["text"].tolist() == ["good one", "multi\nline", "last"]
    assert result.frame["source_row"].tolist() == [1, 3, 4]
    assert result.frame["source_line"].tolist() == [2, 4, 6]
    [bad] = result.malformed
    assert bad["rule"] == "record_not_decodable"
    assert (bad["source_row"], bad["source_line"]) == (2, 3)
    assert "line 3" in bad["detail"]
    assert bad["value"] == "caf\ufffd,neg"
    assert result.records_seen == 4
    assert_accounted(result)
    # the header cannot be set aside: without column names nothing else can be read
    header = write(tmp_path / "header.csv", "t\xe9xt,label\na,b\n", "latin-1")
    with pytest.raises(DataLoadError, match="header.*data.encoding"):
        read_table(header, "csv", on_decode_error="quarantine")


def test_quarantine_in_jsonl_and_conll(tmp_path):
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_bytes(b'{"text": "a", "label": 1}\n{"text": "caf\xe9", "label": 0}\n{"text": "b", "label": 0}\n')
    with pytest.raises(DataLoadError, match="line 2"):
        read_table(jsonl, "jsonl")
    result = read_table(jsonl, "jsonl", on_decode_error="quarantine")
    assert result.frame["text"].tolist() == ["a", "b"]
    assert [(m["source_line"], m["rule"]) for m in result.malformed] == [(2, "record_not_decodable")]
    conll = tmp_path / "data.conll"
    conll.write_bytes(b"A O\nB O\n\nCaf\xe9 O\nC O\n\nD O\n")
    with pytest.raises(DataLoadError, match="line 4"):
        read_conll(conll)
    result = read_conll(conll, on_decode_error="quarantine")
    assert result.frame["tokens"].tolist() == [["A", "B"], ["D"]]
    assert [(m["source_row"], m["source_line"], m["rule"]) for m in result.malformed] == [
        (2, 4, "record_not_decodable")]
    assert "line 4" in result.malformed[0]["detail"]
    assert result.records_seen == 3


def test_unknown_encoding_and_bad_policy_are_load_errors(tmp_path):
    path = write(tmp_path / "data.csv", "text,label\na,b\n")
    with pytest.raises(DataLoadError, match="unknown encoding 'no-such-codec'.*data.encoding"):
        read_table(path, "csv", encoding="no-such-codec")
    with pytest.raises(DataLoadError, match="on_decode_error"):
        read_table(path, "csv", on_decode_error="ignore")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ CSV / TSV


def test_csv_rfc4180_quoted_commas_quotes_and_one_legit_newline(tmp_path):
    path = write(tmp_path / "data.csv", 'text,label\n'
                                        '"Hello, world",pos\n'
                                        '"She said ""hi"", then left",neg\n'
                                        '"first line\nsecond line, with a comma",pos\n'
                                        'plain text,\n')
    result = read_table(path, "csv")
    frame = result.frame
    assert frame["text"].tolist() == ["Hello, world", 'She said "hi", then left',
                                      "first line\nsecond line, with a comma", "plain text"]
    assert frame["label"].tolist() == ["pos", "neg", "pos", None]  # an empty field is None
    assert frame["source_row"].tolist() == [1, 2, 3, 4]
    assert frame["source_line"].tolist() == [2, 3, 4, 6]
    assert frame["text"].dtype == object and frame["source_row"].dtype == "int64"
    assert not result.malformed and result.records_seen == 4


def test_tsv_is_glue_style_quotes_are_text(tmp_path):
    sentences = ['" the time machine " is a movie .', 'an "unfinished quote keeps going', "`` glue '' quotes"]
    path = write(tmp_path / "dev.tsv", "sentence\tlabel\n" + "".join(f"{s}\t{i % 2}\n" for i, s in
                                                                      enumerate(sentences)))
    result = read_table(path, "tsv")
    assert result.frame["sentence"].tolist() == sentences
    assert result.frame["label"].tolist() == ["0", "1", "0"]
    assert result.frame["source_line"].tolist() == [2, 3, 4]
    assert not result.malformed and result.records_seen == 3


def test_wrong_field_count_is_malformed_and_blank_lines_are_no_records(tmp_path):
    path = write(tmp_path / "data.tsv", "sentence\tlabel\n\ngood film\t1\n   \nbad\tfilm\t0\n\r\nfun movie\t1\n\n")
    result = read_table(path, "tsv")
    assert result.frame["sentence"].tolist() == ["good film", "fun movie"]
    assert result.frame["source_row"].tolist() == [1, 3]
    assert result.frame["source_line"].tolist() == [3, 7]
    [bad] = result.malformed
    assert bad == {"source_row": 2, "source_line": 5, "rule": "record_has_wrong_field_count",
                   "value": "bad\tfilm\t0", "detail": "3 fields, header has 2"}
    assert result.records_seen == 3
    assert_accounted(result)


def csv_rows(n: int, bad_row: int | None = None, quoted_every: int = 10) -> str:
    """id,text,label rows; every `quoted_every`-th text is legitimately quoted; `bad_row` opens a quote."""
    lines = ["id,text,label"]
    for i in range(1, n + 1):
        if i == bad_row:
            lines.append(f'{i},"broken quote in row {i},{"pos" if i % 2 else "neg"}')
        elif i % quoted_every == 0:
            lines.append(f'{i},"text {i}, quoted",{"pos" if i % 2 else "neg"}')
        else:
            lines.append(f"{i},text {i},{'pos' if i % 2 else 'neg'}")
    return "\n".join(lines) + "\n"


def test_unbalanced_quote_in_1000_rows_is_found_and_the_swallowed_rows_recovered(tmp_path):
    path = write(tmp_path / "data.csv", csv_rows(1000, bad_row=100, quoted_every=37))
    # What a plain csv.reader makes of it: row 100 swallows the following lines up to the next quote.
    with path.open(newline="") as handle:
        plain = list(csv.reader(handle))[1:]
    assert len(plain) < 1000
    result = read_table(path, "csv")
    assert result.records_seen == 1000
    assert len(result.frame) == 999
    [bad] = result.malformed
    assert bad["rule"] == "unbalanced_quote"
    assert (bad["source_row"], bad["source_line"]) == (100, 101)
    assert bad["value"] == '100,"broken quote in row 100,neg'
    assert "lines 101-112" in bad["detail"] and "close the quote" in bad["detail"]  # row 111 has the next quote
    frame = result.frame
    assert frame["id"].tolist() == [str(i) for i in range(1, 1001) if i != 100]
    assert frame["source_row"].tolist() == [i for i in range(1, 1001) if i != 100]
    assert frame["source_line"].tolist() == [i + 1 for i in range(1, 1001) if i != 100]
    recovered = frame.set_index("id").loc[["101", "111"]]
    assert recovered["text"].tolist() == ["text 101", "text 111, quoted"]
    assert recovered["source_line"].tolist() == [102, 112]
    assert_accounted(result)


def test_unbalanced_quote_closed_cleanly_later_is_still_found_by_its_inner_lines(tmp_path):
    # The quote opened on line 3 is closed by the stray quote ending row 6's text: valid RFC 4180 by accident,
    # but the lines in between are complete records on their own.
    path = write(tmp_path / "data.csv", 'id,text,label\n1,ok,pos\n2,"oops,neg\n3,fine,pos\n4,also fine,neg\n'
                                        '5,size 6",pos\n6,after,neg\n')
    result = read_table(path, "csv")
    assert [m["rule"] for m in result.malformed] == ["unbalanced_quote"]
    assert result.malformed[0]["source_line"] == 3 and "lines 3-6" in result.malformed[0]["detail"]
    assert result.frame["id"].tolist() == ["1", "3", "4", "5", "6"]
    assert result.frame["text"].tolist() == ["ok", "fine", "also fine", 'size 6"', "after"]
    assert result.frame["source_line"].tolist() == [2, 4, 5, 6, 7]
    assert result.records_seen == 6
    assert_accounted(result)


def test_unbalanced_quote_running_to_the_end_of_the_file(tmp_path):
    path = write(tmp_path / "data.csv", 'text,label\na,pos\n"never closed,neg\nb,pos\nc,neg')
    result = read_table(path, "csv")
    assert result.frame["text"].tolist() == ["a", "b", "c"]
    assert [(m["source_line"], m["rule"]) for m in result.malformed] == [(3, "unbalanced_quote")]
    assert result.records_seen == 4
    assert_accounted(result)


def test_oversized_fields_are_read_not_a_csv_error(tmp_path):
    big = "x" * 300_000  # > csv's default field limit of 131072
    for fmt, sep in (("csv", ","), ("tsv", "\t")):
        path = write(tmp_path / f"big.{fmt}", f"text{sep}label\n{big}{sep}pos\nsmall{sep}neg\n")
        result = read_table(path, fmt)
        assert result.frame["text"].tolist() == [big, "small"]
    quoted = write(tmp_path / "quoted.csv", f'text,label\n"{big}\n{big}",pos\n')
    assert read_table(quoted, "csv").frame["text"].tolist() == [f"{big}\n{big}"]


def test_other_csv_errors_become_malformed_records_with_their_line(tmp_path, monkeypatch):
    # Force a csv.Error the ordinary way (a field over a low process-wide limit) to exercise that path.
    monkeypatch.setattr(readers, "_raise_csv_field_limit", lambda: None)
    old = csv.field_size_limit(20)
    try:
        path = write(tmp_path / "data.csv", f"text,label\nshort,pos\n{'y' * 50},neg\nalso short,pos\n")
        result = read_table(path, "csv")
    finally:
        csv.field_size_limit(old)
    assert result.frame["text"].tolist() == ["short", "also short"]
    [bad] = result.malformed
    assert (bad["rule"], bad["source_row"], bad["source_line"]) == ("record_is_not_parseable", 2, 3)
    assert "field limit" in bad["detail"] and "line 3" in bad["detail"]
    assert_accounted(result)


def test_header_false_numbers_the_columns_and_skips_header_checks(tmp_path):
    path = write(tmp_path / "train.tsv", "a\ta\t1\nsecond text\t27\tid2\nshort\t3\n")
    result = read_table(path, "tsv", header=False)
    assert list(result.frame.columns) == ["0", "1", "2", "source_row", "source_line"]
    assert result.frame["0"].tolist() == ["a", "second text"]
    assert result.frame["source_row"].tolist() == [1, 2]
    assert [(m["source_row"], m["rule"]) for m in result.malformed] == [(3, "record_has_wrong_field_count")]
    assert result.records_seen == 3


@pytest.mark.parametrize("name, content, match", [
    ("empty.csv", b"", "empty"),
    ("blank.csv", b"  \n\r\n\t\n", "empty"),
    ("bom_only.csv", BOM, "empty"),
    ("header_only.csv", b"text,label\n\n", "header.*no data records"),
    ("dupes.csv", b"text, label,text\na,b,c\n", r"duplicate column names \['text'\]"),
    ("reserved.csv", b"text,source_row\na,1\n", "'source_row'"),
])
def test_unusable_files_are_one_line_load_errors(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataLoadError, match=match) as info:
        read_table(path, "csv")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_path_and_folder_are_load_errors(tmp_path):
    with pytest.raises(DataLoadError, match="does not exist"):
        read_table(tmp_path / "nope.csv", "csv")
    with pytest.raises(DataLoadError, match="give a file, not a folder"):
        read_table(tmp_path, "csv")
    with pytest.raises(DataLoadError, match="does not exist"):
        read_conll(tmp_path / "nope.conll")
    with pytest.raises(DataLoadError, match="not a folder"):
        read_table(tmp_path, "parquet")


def test_unknown_format_and_detect_format(tmp_path):
    path = write(tmp_path / "data.xyz", "whatever")
    with pytest.raises(DataLoadError, match="set data.format"):
        detect_format(path, "auto")
    with pytest.raises(DataLoadError, match="data.format"):
        read_table(path, "xls")
    assert detect_format(path, "csv") == "csv"
    assert detect_format(Path("dev.TSV"), "auto") == "tsv"
    assert detect_format(Path("a.jsonl.gz.json"), "auto") == "jsonl"
    assert detect_format(Path("train.txt"), "auto") == "conll"
    assert detect_format(Path("x.pq"), "auto") == "parquet"


# ------------------------------------------------------------------------------------------------ JSONL / Parquet


def test_jsonl_keeps_python_types_and_quarantines_bad_lines(tmp_path):
    path = write(tmp_path / "data.jsonl", json.dumps({"text": "good film", "label": 1}) + "\n"
                                           + "{not json\n\n"
                                           + json.dumps({"text": "bad film", "label": 0.5, "extra": [1]}) + "\n"
                                           + json.dumps(["a", "list"]) + "\n"
                                           + json.dumps({"text": 42}) + "\n")
    result = read_table(path, "jsonl")
    frame = result.frame
    assert frame["text"].tolist() == ["good film", "bad film", 42]
    assert frame["label"].tolist() == [1, 0.5, None]  # missing -> None, never NaN
    assert frame["extra"].tolist() == [None, [1], None]
    assert frame["source_row"].tolist() == frame["source_line"].tolist() == [1, 4, 6]  # line numbers
    assert [(m["source_line"], m["rule"]) for m in result.malformed] == [
        (2, "record_is_not_json"), (5, "record_is_not_an_object")]
    # the place in the record, not json's own "line 1 column 2 (char 1)", whose line read as a line of the file
    assert result.malformed[0]["detail"] == "Expecting property name enclosed in double quotes at column 2"
    assert result.records_seen == 5
    assert len(frame) + len(result.malformed) == result.records_seen


@pytest.mark.parametrize("line", ['{"text": "awful item", "label": "negat', '{"text": "awful item", "label": 1',
                                  '{"text": "awful item", "label": "neg"', '["awful item", "neg"'])
def test_a_jsonl_record_cut_short_is_said_to_be_cut_short(tmp_path, line):
    """json said "Invalid control character at at column 48" (the line break inside the unterminated string) or
    "Expecting ',' delimiter" for a line a crashed writer cut short (exploratory QA)."""
    path = write(tmp_path / "cut.jsonl", json.dumps({"text": "good film", "label": "pos"}) + "\n" + line + "\n")
    [bad] = read_table(path, "jsonl").malformed
    assert bad["rule"] == "record_is_not_json" and bad["source_line"] == 2
    assert bad["detail"] == (f"the record ends at column {len(line) + 1} before its JSON does (a line cut short, or a "
                             "missing closing quote, ] or }): write the whole record on its line")
    inside = write(tmp_path / "inside.jsonl", '{"text": "ok"}\n{"text": "a\tb" "label": 1}\n')  # json's own words
    assert read_table(inside, "jsonl").malformed[0]["detail"] == "Invalid control character at column 12"


def test_parquet_rows_types_and_errors(tmp_path):
    path = tmp_path / "data.parquet"
    pd.DataFrame({"review": ["good", None, "bad"], "sentiment": [1, 0, 1],
                  "score": [0.5, float("nan"), 1.0]}).to_parquet(path)
    result = read_table(path, "parquet")
    frame = result.frame
    assert frame["review"].tolist() == ["good", None, "bad"]
    assert frame["sentiment"].tolist() == [1, 0, 1] and type(frame["sentiment"][0]) is int
    assert frame["source_row"].tolist() == frame["source_line"].tolist() == [1, 2, 3]
    assert result.records_seen == 3 and not result.malformed
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"review": pd.Series([], dtype=object)}).to_parquet(empty)
    with pytest.raises(DataLoadError, match="no rows"):
        read_table(empty, "parquet")
    broken = write(tmp_path / "broken.parquet", "not,parquet\n")
    with pytest.raises(DataLoadError, match="cannot read .* as parquet"):
        read_table(broken, "parquet")


# ------------------------------------------------------------------------------------------------ CoNLL


def test_conll_sentences_docstart_and_line_numbers(tmp_path):
    path = write(tmp_path / "data.conll", "-DOCSTART- O\n\nEU B-ORG\nrejects O\n  \n\nPeter B-PER\n\n")
    result = read_conll(path)
    assert result.frame["tokens"].tolist() == [["EU", "rejects"], ["Peter"]]
    assert result.frame["tags"].tolist() == [["B-ORG", "O"], ["B-PER"]]
    assert result.frame["source_row"].tolist() == [1, 2]
    assert result.frame["source_line"].tolist() == [3, 7]
    assert result.records_seen == 2 and not result.malformed


def test_conll_line_with_an_extra_field_makes_its_sentence_malformed(tmp_path):
    path = write(tmp_path / "data.conll", "He O\nlives O\n\nNew York B-LOC\nis O\n\nBig B-LOC\napple I-LOC\n")
    result = read_conll(path)
    assert result.frame["tokens"].tolist() == [["He", "lives"], ["Big", "apple"]]
    assert result.frame["source_row"].tolist() == [1, 3]
    [bad] = result.malformed
    assert (bad["rule"], bad["source_row"], bad["source_line"]) == ("conll_line_has_wrong_field_count", 2, 4)
    assert bad["detail"].startswith("in this sentence, line 4 ('New York B-LOC') has 3 fields, expected 2")
    assert result.records_seen == 3
    assert_accounted(result)


def test_conll_line_without_tag_and_tag_column(tmp_path):
    path = write(tmp_path / "data.conll", "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nlonely\n\n"
                                          "Peter NNP B-NP B-PER\n")
    result = read_conll(path)
    assert result.frame["tags"].tolist() == [["B-ORG", "O"], ["B-PER"]]
    assert [(m["source_row"], m["rule"]) for m in result.malformed] == [(2, "conll_line_has_no_tag_column")]
    assert "line 4" in result.malformed[0]["detail"]
    assert read_conll(path, tag_column=1).frame["tags"].tolist() == [["NNP", "VBZ"], ["NNP"]]


def test_conll_without_sentences_is_a_load_error(tmp_path):
    with pytest.raises(DataLoadError, match="no sentences"):
        read_conll(write(tmp_path / "doc.conll", "-DOCSTART- -X- -X- O\n\n"))
    with pytest.raises(DataLoadError, match="empty"):
        read_conll(write(tmp_path / "blank.conll", "\n \n"))


# ------------------------------------------------------------------------------------------------ normalize_label


@pytest.mark.parametrize("value, expected", [
    (1, ("1", None)),
    (1.0, ("1", None)),
    ("1", ("1", None)),
    (" 1", ("1", None)),
    ("1.0", ("1", None)),
    # a whole number written with a fraction of zeros is its canonical integer (a float column, a spreadsheet);
    # without one it is kept as written (a zero-padded code is a name): label_spellings folds "01" with "1" only
    # where both occur
    ("01", ("01", None)),
    ("+1", ("+1", None)),
    ("+1.0", ("1", None)),
    ("+01.00", ("1", None)),
    ("-0", ("-0", None)),
    ("00", ("00", None)),
    ("0.0", ("0", None)),
    ("-1", ("-1", None)),
    ("-01.0", ("-1", None)),
    ("007", ("007", None)),
    # codes that are no whole number stay as written
    ("A01", ("A01", None)),
    ("1e3", ("1e3", None)),
    ("0x1", ("0x1", None)),
    ("1.50", ("1.50", None)),
    ("1_000", ("1_000", None)),
    ("- 1", ("- 1", None)),
    (np.int64(3), ("3", None)),
    (np.float64(2.0), ("2", None)),
    (-0.0, ("0", None)),
    (0.5, ("0.5", None)),
    ("0.5", ("0.5", None)),
    (" pos ", ("pos", None)),
    (None, (None, None)),
    (float("nan"), (None, None)),
    (math.nan, (None, None)),
    (pd.NA, (None, None)),
    ("", (None, None)),
    ("   ", (None, None)),
    (True, (None, "label_is_boolean")),
    (np.bool_(False), (None, "label_is_boolean")),
    ([1], (None, "label_is_not_a_single_value")),
    (("a",), (None, "label_is_not_a_single_value")),
    ({"a": 1}, (None, "label_is_not_a_single_value")),
    (np.array([1, 2]), (None, "label_is_not_a_single_value")),
    (float("inf"), (None, "label_is_infinite")),  # a JSONL label written Infinity
    (-math.inf, (None, "label_is_infinite")),
])
def test_normalize_label(value, expected):
    assert normalize_label(value) == expected


# ------------------------------------------------------------------------------------------------ real data


@pytest.mark.shared_data
def test_real_mrpc_dev_bom_and_sst2_train_speed():
    mrpc = read_table(shared_data("mrpc") / "dev.tsv", "tsv")
    assert list(mrpc.frame.columns)[:5] == ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    assert len(mrpc.frame) == 408 and not mrpc.malformed and mrpc.records_seen == 408
    started = time.perf_counter()
    sst2 = read_table(shared_data("sst2") / "train.tsv", "tsv")
    assert time.perf_counter() - started < 5
    assert len(sst2.frame) == 67349 and not sst2.malformed and sst2.records_seen == 67349


def test_a_readers_advice_is_split_at_a_real_data_setting_not_at_a_file_name():
    """The landed-batch reason and predict's hint say a reader's data.* advice their own way: the split must find the
    setting (a kind's own too), not a file such as /in/data.csv named in the message."""
    from tuneline.readers import split_setting_advice

    assert split_setting_advice("cannot decode byte 0xe9 at line 3; the file /in/data.csv is not UTF-8") == (
        "cannot decode byte 0xe9 at line 3; the file /in/data.csv is not UTF-8", None)
    assert split_setting_advice("bad byte at line 3 of data.csv; set data.encoding: latin-1") == (
        "bad byte at line 3 of data.csv", "set data.encoding: latin-1")
    assert split_setting_advice("line 4 has 1 field (the tag; data.conll_tag_column) ; set data.conll_tag_column: 1"
                                ) == ("line 4 has 1 field (the tag; data.conll_tag_column) ",
                                      "set data.conll_tag_column: 1")
