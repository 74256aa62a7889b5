"""tuneline.readers on still more files made dirty by the tools that wrote them: Excel's empty rows after the data
(``,,,``), CoNLL without the blank lines between sentences, Parquet strings stored as bytes and labels as booleans,
quotes escaped with a backslash (Spark, MySQL), and byte-order marks starting data lines (files joined with cat).
Each must be read right, set aside with a rule and a hint, or refused with one line naming the file and the fix;
the block reader must read each exactly as the careful one does. Real files in tmp_path."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import shared_data

from test_readers_dirty import assert_accounted
from test_readers_dirty_files import error
from tuneline import readers
from tuneline.readers import (BACKSLASH_DETAIL, BACKSLASH_HINT, DataLoadError, ReadResult, _read_delimited_careful,
                              _read_delimited_fast, _with_object_columns, check_file, normalize_label, read_conll,
                              read_table)


def read_both(path: Path, fmt: str) -> ReadResult:
    """The careful reader's result, after checking the block reader gives exactly the same."""
    careful = _read_delimited_careful(path, fmt, "utf-8", True, "error")
    fast = _read_delimited_fast(path, fmt, "utf-8", "error")
    assert fast is not None
    fast = _with_object_columns(fast)
    assert fast.records_seen == careful.records_seen
    assert fast.malformed == careful.malformed
    pd.testing.assert_frame_equal(fast.frame, careful.frame)
    assert_accounted(careful)
    return careful


LABELS = ["pos", "neg", "neu"]


# ------------------------------------------------------------------------------------------------ lone \r


@pytest.mark.parametrize("fmt, sep, end", [("csv", ",", "\n"), ("csv", ",", "\r\n"), ("tsv", "\t", "\n")])
def test_a_lone_carriage_return_inside_a_line_is_a_space_not_a_line_break(tmp_path, fmt, sep, end):
    """pandas' ``to_csv`` writes a cell ``a\\rb`` unquoted. Split at the \\r, the record's first half was quarantined
    as ragged and its second half (``carriage return,negative``) kept as a training row of its own; every later
    record was numbered one off."""
    path = tmp_path / f"export.{fmt}"
    rows = [("first review", "positive"), ("stray\rcarriage return", "negative"), ("third one", "positive")]
    path.write_bytes((f"text{sep}label{end}" + "".join(f"{t}{sep}{l}{end}" for t, l in rows)).encode())
    for result in (_read_delimited_careful(path, fmt, "utf-8", True, "error"), read_table(path, fmt)):
        assert result.malformed == []
        frame = result.frame
        assert list(frame["text"]) == ["first review", "stray carriage return", "third one"]
        assert list(frame["label"]) == ["positive", "negative", "positive"]
        assert [int(n) for n in frame["source_line"]] == [2, 3, 4]
    assert _read_delimited_fast(path, fmt, "utf-8", "error") is None  # such a file goes to the careful reader


@pytest.mark.parametrize("fmt, sep", [("csv", ","), ("tsv", "\t")])
def test_a_line_break_inside_an_unquoted_cell_of_a_crlf_file_keeps_the_record_whole(tmp_path, fmt, sep):
    """SQL Server Management Studio (and other Windows exports) end lines in \\r\\n and write a cell's line break
    unquoted as a lone \\n. Split there, the record's first half was quarantined as ragged and its second half
    ("number 2 with a break", positive) kept as a training row of its own: a silent mis-read (dirty-data QA)."""
    rows = [("first review", "positive"), ("good movie\nnumber 2 with a break", "positive"),
            ("two\nbreaks\nhere", "negative"), ("plain", "negative"), ("ends the file\nunended", "positive")]
    body = "\r\n".join(f"{t}{sep}{l}" for t, l in rows)  # no line end after the last record
    path = tmp_path / f"ssms.{fmt}"
    path.write_bytes(f"text{sep}label\r\n{body}".encode())
    for result in (_read_delimited_careful(path, fmt, "utf-8", True, "error"), read_table(path, fmt)):
        assert result.malformed == [] and result.records_seen == 5
        assert list(result.frame["text"]) == ["first review", "good movie number 2 with a break",
                                              "two breaks here", "plain", "ends the file unended"]
        assert list(result.frame["label"]) == ["positive", "positive", "negative", "negative", "positive"]
        assert [int(n) for n in result.frame["source_line"]] == [2, 3, 5, 8, 9]  # each record's first line
    assert _read_delimited_fast(path, fmt, "utf-8", "error") is None  # such a file goes to the careful reader


@pytest.mark.parametrize("end, other", [("\n", "\r\n"), ("\r\n", "\n")])
def test_a_short_line_is_only_rejoined_where_the_evidence_is_plain(tmp_path, end, other):
    """What is not rejoined: a short line in a file whose lines end in \\n (a ragged record: \\n is its line end),
    a lone-\\n line that is a whole record (a file joined from \\n and \\r\\n exports), a short line whose
    joining would give too many fields, and a quoted cell (the csv module joins its lines itself)."""
    ragged_end = other if end == "\n" else end  # a line of the other kind, so that the file holds both
    lines = [f"text,label{end}", f"whole,positive{end}", f"ragged{ragged_end}", f"next,negative{end}"]
    if end == "\r\n":
        lines += ["joined from another export,positive\n", "short\n", "too,many,fields\r\n",
                  '"quoted\nbreak",negative\r\n']
    else:
        lines += [f"short{end}", f"next two,positive{end}"]
    lines += [f"row {i},positive{end}" for i in range(4)]  # so that the file's line end is plain
    path = tmp_path / "mixed.csv"
    path.write_bytes("".join(lines).encode())
    result = read_table(path, "csv")
    texts = list(result.frame["text"])
    rules = {m["value"].rstrip("\r\n"): m["rule"] for m in result.malformed}
    assert "whole" in texts and "next" in texts
    assert rules["ragged"] == "record_has_wrong_field_count"
    if end == "\r\n":
        assert "joined from another export" in texts and "quoted\nbreak" in texts
        assert rules["short"] == "record_has_wrong_field_count" and "too,many,fields" in rules
    else:
        assert rules["short"] == "record_has_wrong_field_count" and "next two" in texts
    assert len(result.frame) + len(result.malformed) == result.records_seen


def test_an_old_mac_file_of_carriage_returns_only_still_splits_there(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(b"text,label\rgood film,pos\rbad film,neg\r")
    assert list(read_table(path, "csv").frame["text"]) == ["good film", "bad film"]


def test_an_old_mac_file_with_a_line_break_inside_a_cell_still_splits_at_its_carriage_returns(tmp_path):
    """One \n in a cell of a \r-ended file: split at the \n, the whole file was one line, and the error listed its
    records as column names (exploratory QA)."""
    path = tmp_path / "mac.csv"
    path.write_bytes(b'text,label\rgood film,pos\r"line one\nline two",neg\rplain\nbreak,pos\rbad film,neg\r')
    result = read_table(path, "csv")
    assert list(result.frame["text"]) == ["good film", "line one line two", "plain break", "bad film"]
    assert list(result.frame["label"]) == ["pos", "neg", "pos", "neg"] and not result.malformed
    assert list(result.frame["source_line"]) == [2, 3, 4, 5]


# ------------------------------------------------------------------------------------------------ empty rows


@pytest.mark.parametrize("block_bytes", [1, 64, 1 << 20])
@pytest.mark.parametrize("header, row, tail", [
    ("text,label,,", "{t},{l},,", ",,,"),  # Excel: a sheet with empty columns after the data
    ("text,label", "{t},{l}", ","),  # two columns: the empty row is one comma
    ("text,label", "{t},{l}", ' ,""'),  # whitespace, and a quoted empty field
    ("text,label", '"{t}","{l}"', '"",""'),  # everything quoted (QUOTE_ALL)
])
def test_excel_empty_rows_after_the_data_are_no_records(tmp_path, monkeypatch, block_bytes, header, row, tail):
    """10 empty rows in 70 lines used to be 10 records without text, failing max_bad_fraction (14.3%)."""
    monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", block_bytes)
    path = tmp_path / "excel.csv"
    rows = [row.format(t=f"review {i}", l=LABELS[i % 3]) for i in range(60)]
    path.write_text("\r\n".join([header, *rows, *[tail] * 10]) + "\r\n", encoding="utf-8", newline="")
    result = read_both(path, "csv")
    assert result.records_seen == 60 and not result.malformed
    assert result.frame["text"].tolist() == [f"review {i}" for i in range(60)]
    assert result.frame["label"].tolist() == [LABELS[i % 3] for i in range(60)]


def test_empty_rows_in_a_semicolon_file_are_no_records_either(tmp_path):
    path = tmp_path / "excel-de.csv"  # Excel in a locale with a decimal comma
    path.write_text("text;label\r\n" + "".join(f"review {i};{LABELS[i % 3]}\r\n" for i in range(60)) + ";\r\n" * 10,
                    encoding="utf-8", newline="")
    result = read_table(path, "csv")
    assert result.records_seen == 60 and len(result.frame) == 60 and not result.malformed
    assert_accounted(result)


@pytest.mark.parametrize("block_bytes", [64, 1 << 20])  # a block of one line before the header: careful reader
def test_a_record_with_one_field_written_is_still_a_record_and_an_empty_row_inside_a_cell_is_text(
        tmp_path, monkeypatch, block_bytes):
    """Only a line whose every field is empty is no record; a comma line inside a quoted cell is part of its text."""
    monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", block_bytes)
    path = tmp_path / "mixed.csv"
    path.write_text(',,\n"",""\ntext,label\none,pos\n,neg\n"two\n,\nlines",pos\n,,\nthree,\n  ,  \n', encoding="utf-8")
    result = read_both(path, "csv")
    assert result.frame["text"].tolist() == ["one", None, "two\n,\nlines", "three"]
    assert result.frame["label"].tolist() == ["pos", "neg", "pos", None]
    assert result.frame["source_line"].tolist() == [4, 5, 6, 10]
    assert result.records_seen == 4 and not result.malformed


def test_a_file_of_only_empty_rows_says_so_in_one_line(tmp_path):
    path = tmp_path / "empty-sheet.csv"
    path.write_text(",,\n,,\n\n", encoding="utf-8")
    assert error(lambda: read_table(path, "csv")) == (
        f"input file {path} holds no records (only blank lines and lines of empty fields such as ',,,'); give a "
        "file with records")


# ------------------------------------------------------------------------------------------------ CoNLL


def two_columns(sentences: int, tokens: int, blank: bool) -> str:
    """A two-column CoNLL file; ``blank=False``: without the empty line after each sentence."""
    lines = [[f"w{s}x{t} O" for t in range(tokens - 1)] + [". O"] for s in range(sentences)]
    return ("\n\n" if blank else "\n").join("\n".join(sentence) for sentence in lines) + "\n"


NO_BLANK = ("{path}: lines {first}-{last} ({count} token lines) read as a single sentence: no blank line separates "
            "its sentences; CoNLL puts one empty line after each sentence: add the blank lines (or check data.format)")


@pytest.mark.parametrize("sentences, tokens", [(60, 7), (100, 7), (1, 501)])
def test_a_conll_file_without_blank_lines_between_sentences_says_so(tmp_path, sentences, tokens):
    """It read as one sentence of hundreds of tokens, and failed later with "the validation split is empty"."""
    path = tmp_path / "noblank.conll"
    path.write_text(two_columns(sentences, tokens, blank=False), encoding="utf-8")
    count = sentences * tokens
    assert error(lambda: read_conll(path)) == NO_BLANK.format(path=path, first=1, last=count, count=count)


def test_a_run_on_sentence_among_others_is_refused_over_a_thousand_tokens(tmp_path):
    path = tmp_path / "partly.conll"
    path.write_text(two_columns(3, 10, blank=True) + "\n" + two_columns(143, 7, blank=False), encoding="utf-8")
    assert error(lambda: read_conll(path)) == NO_BLANK.format(path=path, first=34, last=1034, count=1001)
    path.write_text(two_columns(3, 10, blank=True) + "\n" + two_columns(142, 7, blank=False), encoding="utf-8")
    assert len(read_conll(path).frame) == 4  # 994 tokens: a long document, maybe on purpose


@pytest.mark.parametrize("tokens", [300, 500])
def test_one_long_sentence_without_full_stops_inside_still_reads(tmp_path, tokens):
    path = tmp_path / "long.conll"
    path.write_text("".join(f"w{i} O\n" for i in range(tokens)), encoding="utf-8")
    result = read_conll(path)
    assert result.records_seen == 1 and len(result.frame["tokens"][0]) == tokens


def test_conll2003_still_reads_every_sentence_quickly():
    train = shared_data("conll2003") / "train.txt"
    started = time.perf_counter()
    result = read_conll(train)
    assert 14_000 <= len(result.frame) and not result.malformed
    assert time.perf_counter() - started < 10


# ------------------------------------------------------------------------------------------------ Parquet


def test_a_parquet_text_column_stored_as_bytes_reads_as_text(tmp_path):
    """Spark and some exports store strings as binary: every row used to be quarantined (text is no string)."""
    path = tmp_path / "binary.parquet"
    pq.write_table(pa.table({
        "text": pa.array(["café".encode(), b"plain", None, b"\xff\xfe not utf-8"], pa.binary()),
        "label": pa.array([b"pos", b"neg", b"pos", b"neg"], pa.large_binary()),
        "image": pa.array([b"\x89PNG\r\n", b"\x89PNG\r\n", None, b""], pa.binary())}), path)
    check_file(path)  # the load task's check of every input, whatever its format: a Parquet file is one
    result = read_table(path, "parquet")
    assert result.frame["text"].tolist() == ["café", "plain", None, b"\xff\xfe not utf-8"]  # no text: rejected
    assert result.frame["label"].tolist() == ["pos", "neg", "pos", "neg"]
    assert result.frame["image"].tolist() == [b"\x89PNG\r\n", b"\x89PNG\r\n", None, ""]
    assert result.records_seen == 4 and not result.malformed


def test_a_parquet_boolean_column_reads_as_the_labels_false_and_true(tmp_path):
    """``is_duplicate: bool`` used to be quarantined whole as label_is_boolean; a CSV's TRUE/FALSE are labels. So
    is a JSONL key holding only booleans (every row was quarantined, and the run stopped)."""
    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"text": ["a", "b", "c"], "is_duplicate": pa.array([True, False, None], pa.bool_())}),
                   path)
    result = read_table(path, "parquet")
    assert result.frame["is_duplicate"].tolist() == ["true", "false", None]
    assert [normalize_label(value) for value in result.frame["is_duplicate"]] == [
        ("true", None), ("false", None), (None, None)]
    stray = tmp_path / "stray.jsonl"  # a boolean in a JSON label field stays a parsing accident
    stray.write_text('{"text": "a", "label": true}\n{"text": "b", "label": "pos"}\n', encoding="utf-8")
    assert [normalize_label(v) for v in read_table(stray, "jsonl").frame["label"]] == [
        (None, "label_is_boolean"), ("pos", None)]
    flags = tmp_path / "flags.jsonl"  # every value a boolean: a boolean field, as Parquet's bool column
    flags.write_text('{"text": "a", "is_spam": true}\n{"text": "b", "is_spam": false}\n{"text": "c"}\n'
                     '{"text": "d", "is_spam": null}\n', encoding="utf-8")
    assert read_table(flags, "jsonl").frame["is_spam"].tolist() == ["true", "false", None, None]
    mixed = tmp_path / "mixed.jsonl"  # booleans and "true"/"false" strings from two writers: one boolean field
    mixed.write_text('{"text": "a", "label": true}\n{"text": "b", "label": "false"}\n{"text": "c", "label": "True"}\n'
                     '{"text": "d", "label": false}\n', encoding="utf-8")
    assert read_table(mixed, "jsonl").frame["label"].tolist() == ["true", "false", "True", "false"]


# ------------------------------------------------------------------------------------------------ backslashes


@pytest.mark.parametrize("block_bytes", [1, 64, 1 << 20])
def test_quotes_escaped_with_a_backslash_are_set_aside_with_the_fix(tmp_path, monkeypatch, block_bytes):
    """``"he said \\"hi\\" to me"`` used to read silently as ``he said \\hi\\" to me"``, others as 3 fields."""
    monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", block_bytes)
    path = tmp_path / "spark.csv"
    path.write_text('text,label\n'
                    '"he said \\"hi\\" to me",pos\n'  # 2: read garbled before
                    '"she said \\"no, never\\"",neg\n'  # 3: read as 3 fields before
                    '"plain",pos\n'
                    '"C:\\temp\\",neg\n'  # 5: a path ending in a backslash is valid CSV: kept
                    '"\\"",pos\n'  # 6: a lone escaped quote opened a quote that swallowed line 7
                    'after,neg\n'
                    'a\\"b,c,pos\n'  # 8: no quoted field: the field count, with the hint
                    '"R quotes every field: C:\\temp\\","neg"\n',  # 9: write.csv's; it was set aside as Spark's
                    encoding="utf-8")
    result = read_both(path, "csv")
    assert result.frame["text"].tolist() == ["plain", "C:\\temp\\", "after", "R quotes every field: C:\\temp\\"]
    assert result.frame["source_line"].tolist() == [4, 5, 7, 9]
    assert [(m["rule"], m["source_line"], m["detail"]) for m in result.malformed] == [
        ("quote_escaped_with_backslash", 2, BACKSLASH_DETAIL.format(line=2)),
        ("quote_escaped_with_backslash", 3, BACKSLASH_DETAIL.format(line=3)),
        ("quote_escaped_with_backslash", 6, BACKSLASH_DETAIL.format(line=6)),
        ("record_has_wrong_field_count", 8, f"3 fields, header has 2{BACKSLASH_HINT}")]
    assert result.malformed[0]["value"] == '"he said \\"hi\\" to me",pos'
    assert "re-export the file with doubled quotes" in BACKSLASH_DETAIL and '\\"' in BACKSLASH_HINT


def test_a_backslash_before_a_quote_in_tsv_is_text(tmp_path):
    """TSV is read without quote processing: a backslash and a quote are just characters."""
    path = tmp_path / "glue.tsv"
    path.write_text('text\tlabel\nhe said \\"hi\\"\tpos\n', encoding="utf-8")
    result = read_both(path, "tsv")
    assert result.frame["text"].tolist() == ['he said \\"hi\\"'] and not result.malformed


# ------------------------------------------------------------------------------------------------ marks


@pytest.mark.parametrize("block_bytes", [1, 64, 1 << 20])
@pytest.mark.parametrize("fmt, sep", [("csv", ","), ("tsv", "\t")])
def test_a_byte_order_mark_starting_a_data_line_is_no_part_of_its_first_field(
        tmp_path, monkeypatch, block_bytes, fmt, sep):
    """Files joined with cat after their header lines were cut: each one's mark starts a data line."""
    monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", block_bytes)
    path = tmp_path / f"joined.{fmt}"
    path.write_text(f"\ufefftext{sep}label\n\ufeffgreat{sep}pos\nfine{sep}neg\n\ufeff\ufeffbad{sep}neg\n"
                    f"\ufeff\"quoted\"{sep}pos\n", encoding="utf-8")
    result = read_both(path, fmt)
    expected = "quoted" if fmt == "csv" else '"quoted"'  # TSV keeps quotes in a column not wholly quoted
    assert result.frame["text"].tolist() == ["great", "fine", "\ufeffbad", expected]
    assert result.frame["label"].tolist() == ["pos", "neg", "neg", "pos"]
    labels = tmp_path / f"labels-first.{fmt}"
    labels.write_text(f"label{sep}text\n\ufeffpos{sep}great\n", encoding="utf-8")
    assert read_table(labels, fmt).frame["label"].tolist() == ["pos"]


# ------------------------------------------------------------------------------------------------ both readers


PIECES = ["a", ",", ",,", '""', '"",""', " ", '\\"', '"x\\"y"', '"\\""', "\ufeff", '"', "\n", "\r\n", "pos", "é"]


@pytest.mark.parametrize("seed", range(3))
def test_the_block_reader_reads_these_files_as_the_careful_one(tmp_path, monkeypatch, seed):
    """Random lines of empty fields, backslashes, quotes and marks, in \\n or \\r\\n lines (one file in ten of
    both, which the block reader leaves to the careful one): the same records, lines and quarantine."""
    rng = random.Random(seed)
    fast_runs = 0
    for trial in range(60):
        monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", rng.choice([1, 16, 64, 1 << 20]))
        end, mixed = rng.choice(["\n", "\r\n"]), rng.random() < 0.1
        pieces = [p for p in PIECES if mixed or p not in ("\n", "\r\n") or p == end]
        lines = [f"text,label{end}"] + [
            f"row {i},pos{end}" if rng.random() < 0.5 else
            "".join(rng.choice(pieces) for _ in range(rng.randint(1, 5)))
            + rng.choice(["\n", "\r\n", ""] if mixed else [end, ""])
            for i in range(rng.randint(1, 40))]
        path = tmp_path / f"t{trial}.csv"
        path.write_text("".join(lines), encoding="utf-8", newline="")
        try:
            careful = _read_delimited_careful(path, "csv", "utf-8", True, "error")
        except DataLoadError:
            assert _read_delimited_fast(path, "csv", "utf-8", "error") is None
            continue
        fast = _read_delimited_fast(path, "csv", "utf-8", "error")
        if fast is None:
            data = path.read_bytes()
            assert 0 < data.count(b"\r\n") < data.count(b"\n"), "the block reader gave up on a file of one line end"
            continue
        fast_runs += 1
        fast = _with_object_columns(fast)
        assert (fast.records_seen, fast.malformed) == (careful.records_seen, careful.malformed)
        pd.testing.assert_frame_equal(fast.frame, careful.frame)
        assert_accounted(careful)
    assert fast_runs > 40


@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
def test_an_r_export_with_row_names_names_the_cause(tmp_path, monkeypatch, block_bytes):
    """R's write.table (and write.csv with col.names=TRUE but no row-name header) writes each row's name first and
    leaves it out of the header: every record has one field too many, which the detail now explains."""
    monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", block_bytes)
    path = tmp_path / "r.tsv"
    path.write_text('"text"\t"label"\n' + "".join(f'"{i}"\t"review {i}"\t"pos"\n' for i in range(1, 21)),
                    encoding="utf-8")
    result = read_both(path, "tsv")
    assert len(result.frame) == 0 and len(result.malformed) == 20
    assert {m["rule"] for m in result.malformed} == {"record_has_wrong_field_count"}
    assert all("row names without a header cell" in m["detail"] and "row.names = FALSE" in m["detail"]
               for m in result.malformed)
    assert_accounted(result)


def test_a_jsonl_infinity_label_is_set_aside(tmp_path):
    path = tmp_path / "inf.jsonl"
    path.write_text('{"text": "fine", "label": "pos"}\n{"text": "odd", "label": Infinity}\n', encoding="utf-8")
    result = read_table(path, "jsonl")
    assert normalize_label(result.frame["label"][1]) == (None, "label_is_infinite")


ROWS = [(f"review number {i}, with a comma" if i % 4 == 0 else f"review number {i}", LABELS[i % 3]) for i in range(40)]


def _csv_lines(rows: list[tuple[str, str]]) -> list[bytes]:
    return [b"text,label"] + [(f'"{t}",{l}' if "," in t else f"{t},{l}").encode() for t, l in rows]


@pytest.mark.parametrize("layout", ["some", "every third", "crlf header, cr after", "cr, the last line lf"])
def test_lines_ending_in_a_lone_carriage_return_among_lf_lines_are_records(tmp_path, layout):
    """Files joined from an old Mac export and a Unix one, or saved so by an editor: each lone \\r line end was read as
    a space, gluing two or more records into one line, quarantined together with a false reason ("3 fields, header
    has 2; a text holding ',' must be in double quotes"): 267 records read of 400 and 133 good rows set aside, or
    one record of four good rows set aside with exit 0 (dirty-data QA)."""
    lines = _csv_lines(ROWS)
    if layout == "some":
        ends = [b"\r" if i in (11, 12, 13) else b"\n" for i in range(len(lines))]
    elif layout == "every third":
        ends = [[b"\r\n", b"\n", b"\r"][i % 3] for i in range(len(lines))]
    elif layout == "crlf header, cr after":
        ends = [b"\r\n"] + [b"\r"] * (len(lines) - 1)
    else:
        ends = [b"\r"] * (len(lines) - 1) + [b"\n"]
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"".join(line + end for line, end in zip(lines, ends)))
    for result in (_read_delimited_careful(path, "csv", "utf-8", True, "error"), read_table(path, "csv")):
        assert result.malformed == [] and result.records_seen == len(ROWS)
        assert list(result.frame["text"]) == [t for t, _ in ROWS]
        assert list(result.frame["label"]) == [l for _, l in ROWS]
        assert [int(n) for n in result.frame["source_line"]] == list(range(2, len(ROWS) + 2))  # as an editor counts


def test_a_lone_carriage_return_line_end_beside_ones_inside_cells_and_a_bad_record(tmp_path):
    """In one line: a \\r inside a cell (a space, as before), a \\r ending a record, and a ragged record after it:
    the good records are kept, the ragged one alone is set aside, with its own line."""
    path = tmp_path / "mixed.tsv"
    path.write_bytes(b"text\tlabel\nfirst\rhalf\tpos\rsecond\tneg\rragged\nlast\tneu\n")
    result = read_table(path, "tsv")
    assert list(result.frame["text"]) == ["first half", "second", "last"]
    assert [int(n) for n in result.frame["source_line"]] == [2, 3, 5]
    assert [(m["rule"], m["source_line"]) for m in result.malformed] == [("record_has_wrong_field_count", 4)]
    assert len(result.frame) + len(result.malformed) == result.records_seen


def test_a_comment_line_is_said_to_look_like_one(tmp_path):
    """Set aside as "1 fields, header has 2" only, with a comma's advice added later: the user looked for a comma."""
    path = tmp_path / "export.csv"
    path.write_bytes(b"text,label\n# exported by tool v1\ngood film,pos\n#1 fan,pos\n")
    result = read_table(path, "csv")
    assert list(result.frame["text"]) == ["good film", "#1 fan"]  # a text starting with '#' is a text
    [bad] = result.malformed
    assert bad["source_line"] == 2 and bad["detail"].startswith(
        "1 fields, header has 2; it looks like a comment line, and data files hold no comments: remove it")


def test_a_broken_record_after_a_lone_carriage_return_line_end_is_set_aside_alone(tmp_path):
    """``2,cafe\\r3,terrible, awful``: the good record before the \\r is kept, the ragged one after it set aside on its
    own line (it had taken the good one with it)."""
    path = tmp_path / "mixed.csv"
    path.write_bytes(b'id,text\n1,a great movie\r\n2,cafe\r3,terrible, awful\n4,naive plot\r5,"ok, fine"\n')
    result = read_table(path, "csv")
    assert list(result.frame["text"]) == ["a great movie", "cafe", "naive plot", "ok, fine"]
    assert [int(n) for n in result.frame["source_line"]] == [2, 3, 5, 6]
    assert [(m["source_line"], m["value"].rstrip("\r\n")) for m in result.malformed] == [(4, "3,terrible, awful")]


def test_a_lone_carriage_return_in_a_one_column_file_is_a_space_and_said(tmp_path, caplog):
    """Nothing tells a \\r inside a text from a line end there: read as a space, as before, but no longer silently
    (predict QA: 3 predictions for 4 records, exit 0, no word)."""
    import logging

    from tuneline.readers import read_text_lines

    path = tmp_path / "texts.txt"
    path.write_bytes(b"good one\r\nbad one\rthird\nfourth\r\nfifth")
    caplog.set_level(logging.WARNING)
    assert list(read_text_lines(path).frame["text"]) == ["good one", "bad one third", "fourth", "fifth"]
    [said] = [r.getMessage() for r in caplog.records if "carriage return" in r.getMessage()]
    assert said.startswith(f"{path}: 1 line(s) hold a lone carriage return (\\r), read as a space inside the line "
                           "(first: line 2); where it ends a line")
