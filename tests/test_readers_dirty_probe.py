"""tuneline.readers on the dirty files a probe of ``tuneline train/validate`` found mis-read: a CoNLL file with its
tag in the first column (``B-PER John``), a DOS end-of-file mark (Ctrl-Z, 0x1A) ending a file, JSONL whose keys
change case from row to row, a comma-separated file named .tsv, and a CoNLL file whose tags are in another column
than the one configured. Each must be read right or refused with one line naming the file and the fix. Real files
in tmp_path."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from test_readers_dirty import assert_accounted
from test_readers_dirty_files import error
from tuneline import readers
from tuneline.readers import (_read_delimited_careful, _read_delimited_fast, _with_object_columns, read_conll,
                              read_table)

TAG_FIRST = "B-PER John\nI-PER Smith\nO visited\nB-LOC Paris\nO .\n\nO He\nO left\nO !\n"


# ------------------------------------------------------------------------------------------------ tag column 0


@pytest.mark.parametrize("tag_column", [0, -2])
def test_a_tag_first_conll_file_reads_its_tokens_from_the_other_column(tmp_path, tag_column):
    """With data.conll_tag_column: 0 the token was read from column 0 too: tokens == tags, without a word."""
    path = tmp_path / "tagfirst.txt"
    path.write_text("-DOCSTART- O\n\n" + TAG_FIRST)
    result = read_conll(path, tag_column)
    assert result.malformed == []
    assert result.frame["tokens"].tolist() == [["John", "Smith", "visited", "Paris", "."], ["He", "left", "!"]]
    assert result.frame["tags"].tolist() == [["B-PER", "I-PER", "O", "B-LOC", "O"], ["O", "O", "O"]]
    assert_accounted(result)


def test_a_tag_first_docstart_line_is_a_document_marker(tmp_path):
    path = tmp_path / "tagfirst.txt"
    path.write_text("O -DOCSTART-\n\n" + TAG_FIRST)
    result = read_conll(path, 0)
    assert result.records_seen == 2
    assert result.frame["tokens"].tolist()[0][0] == "John"


def test_a_tag_first_file_without_blank_lines_is_caught_by_its_sentence_ends(tmp_path):
    """The heuristic counts the sentence-end tokens (``.``) of the token column, not of the tag column."""
    path = tmp_path / "tagfirst.txt"
    path.write_text("".join(f"O word{i}\nO .\n" for i in range(60)))
    assert "read as a single sentence" in error(lambda: read_conll(path, 0))


# ------------------------------------------------------------------------------------------------ Ctrl-Z


CSV = "text,label\ngood film,pos\nbad film,neg\n"


@pytest.mark.parametrize("tail", ["\x1a", "\x1a\r\n", "\x1a\n\n  \n", "\x1a\x1a"])
@pytest.mark.parametrize("block_bytes", [1, 16, 1 << 20])
def test_a_dos_end_of_file_mark_ending_a_csv_file_is_no_record(tmp_path, monkeypatch, tail, block_bytes):
    """The mark used to be a record of one field, quarantined (record_has_wrong_field_count), in both readers."""
    monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", block_bytes)
    path = tmp_path / "dos.csv"
    path.write_bytes((CSV + tail).encode())
    careful = _read_delimited_careful(path, "csv", "utf-8", True, "error")
    fast = _read_delimited_fast(path, "csv", "utf-8", "error")
    assert fast is not None
    fast = _with_object_columns(fast)
    for result in (careful, fast, read_table(path, "csv")):
        assert result.malformed == [] and result.records_seen == 2
        assert result.frame["text"].tolist() == ["good film", "bad film"]
        assert result.frame["label"].tolist() == ["pos", "neg"]
    pd.testing.assert_frame_equal(fast.frame, careful.frame)


def test_a_dos_end_of_file_mark_right_after_the_last_record_is_no_part_of_it(tmp_path):
    path = tmp_path / "dos.csv"
    path.write_bytes(b"text,label\r\ngood film,pos\r\nbad film,neg\x1a")
    result = read_table(path, "csv")
    assert result.malformed == [] and result.frame["label"].tolist() == ["pos", "neg"]


def test_a_dos_end_of_file_mark_ending_jsonl_and_conll_files_is_no_record(tmp_path):
    jsonl = tmp_path / "dos.jsonl"
    jsonl.write_bytes(b'{"text": "good film", "label": "pos"}\r\n{"text": "bad film", "label": "neg"}\r\n\x1a')
    result = read_table(jsonl, "jsonl")
    assert result.malformed == [] and result.records_seen == 2
    assert result.frame["label"].tolist() == ["pos", "neg"]
    conll = tmp_path / "dos.txt"
    conll.write_bytes(b"EU B-ORG\r\nrejects O\r\n\r\nPeter B-PER\r\n\x1a")
    result = read_conll(conll)
    assert result.malformed == [] and result.records_seen == 2
    assert result.frame["tokens"].tolist() == [["EU", "rejects"], ["Peter"]]


def test_a_ctrl_z_inside_the_data_is_still_read_as_it_is(tmp_path):
    """Only the mark ending the file is dropped: one inside a record is the record's."""
    path = tmp_path / "mid.csv"
    path.write_bytes(b"text,label\ngood\x1a film,pos\nbad film,neg\n")
    assert read_table(path, "csv").frame["text"].tolist() == ["good\x1a film", "bad film"]


# ------------------------------------------------------------------------------------------------ JSONL key case


def test_jsonl_keys_written_in_another_case_on_some_rows_are_one_column(tmp_path):
    """Rows with ``Text``/``Label`` were read as columns of their own, and quarantined as missing text."""
    path = tmp_path / "mixed.jsonl"
    rows = [{"Text": "good film", "Label": "pos"}, {"text": "bad film", "label": "neg"},
            {" text ": "fine film", "LABEL": "pos"}, {"text": "dull film", "label": "neg"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = read_table(path, "jsonl")
    assert result.malformed == []
    assert [c for c in result.frame.columns if c not in readers.PROVENANCE_COLUMNS] == ["text", "label"]
    assert result.frame["text"].tolist() == ["good film", "bad film", "fine film", "dull film"]
    assert result.frame["label"].tolist() == ["pos", "neg", "pos", "neg"]


def test_jsonl_keys_in_another_case_take_the_most_common_spelling_when_none_is_lower_case(tmp_path):
    path = tmp_path / "mixed.jsonl"
    rows = [{"Text": "a"}, {"Text": "b"}, {"TEXT": "c"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    frame = read_table(path, "jsonl").frame
    assert "TEXT" not in frame.columns and frame["Text"].tolist() == ["a", "b", "c"]


def test_jsonl_object_holding_two_spellings_of_a_key_keeps_each_as_written(tmp_path):
    """Ambiguous: which one is the text? The exact name the config gives is then the one read."""
    path = tmp_path / "both.jsonl"
    rows = [{"text": "a", "Text": "A"}, {"Text": "B"}, {"text": "c"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    frame = read_table(path, "jsonl").frame
    assert frame["text"].tolist() == ["a", None, "c"] and frame["Text"].tolist() == ["A", "B", None]


# ------------------------------------------------------------------------------------------------ .tsv with commas


@pytest.mark.parametrize("delimiter, named", [(",", "commas"), (";", "semicolons")])
def test_a_comma_separated_file_named_tsv_says_to_read_it_as_csv(tmp_path, delimiter, named):
    """It read as one column named 'text,label', and the error said to set data.text_column."""
    path = tmp_path / "reviews.tsv"
    path.write_text("".join(f"{a}{delimiter}{b}\n" for a, b in [("text", "label"), ("good film", "pos"),
                                                                 ("bad film", "neg"), ("fine", "pos")]))
    message = error(lambda: read_table(path, "tsv"))
    assert message.startswith(f"{path} is read as TSV")
    assert f"split at {named} into 2 fields" in message and "(header: text, label)" in message
    assert message.endswith("set data.format: csv (or name the file .csv)")


def test_a_one_column_tsv_file_with_commas_in_its_text_is_still_read(tmp_path):
    path = tmp_path / "texts.tsv"
    path.write_text("text\ngood, fine film\nbad, dull film\nok, I guess\n")
    assert read_table(path, "tsv").frame["text"].tolist() == ["good, fine film", "bad, dull film", "ok, I guess"]


# ------------------------------------------------------------------------------------------------ tags elsewhere


def test_a_confidence_column_in_the_tag_column_names_the_tag_column(tmp_path):
    """``token tag 0.98``: the tags read were '0.98', and the run failed with advice about the IO scheme."""
    path = tmp_path / "conf.txt"
    path.write_text("EU B-ORG 0.98\nrejects O 0.91\n\nPeter B-PER 1\nBlackburn I-PER 0.5\n")
    message = error(lambda: read_conll(path))
    assert message == (f"{path}: column 2 (data.conll_tag_column: -1) holds numbers, not tags (line 1: "
                       "'EU B-ORG 0.98'); the tags look like they are in column 1: set data.conll_tag_column: 1")
    assert read_conll(path, 1).frame["tags"].tolist() == [["B-ORG", "O"], ["B-PER", "I-PER"]]


def test_a_tag_first_file_read_with_the_default_tag_column_warns_where_the_tags_are(tmp_path, caplog):
    """The tags read are words (and a number token made the run say the tags were class ids): the warning names
    the column."""
    path = tmp_path / "tagfirst.txt"
    path.write_text(TAG_FIRST.replace("O .", "O 1996"))
    with caplog.at_level(logging.WARNING):
        result = read_conll(path)
    assert result.frame["tags"].tolist()[0] == ["John", "Smith", "visited", "Paris", "1996"]
    assert ("the tags look like they are in column 0: set data.conll_tag_column: 0 (column 1, read as the tags, "
            "holds 'John', 'Smith', 'visited', ...)") in caplog.text


def test_a_file_whose_tag_column_holds_tags_gives_no_warning(tmp_path, caplog):
    path = tmp_path / "four.txt"
    path.write_text("EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP PER\nruns VBZ B-VP O\n")
    with caplog.at_level(logging.WARNING):
        read_conll(path)
    assert "conll_tag_column" not in caplog.text


def test_a_numbered_header_above_a_file_read_without_one_is_refused(tmp_path):
    """pandas writes ``0<TAB>1<TAB>2`` above a frame read with ``header=None``: under ``data.header: false`` that line
    was a record, the text "0" trained with the label of id 1 (loop QA)."""
    from tuneline.readers import DataLoadError, read_table

    exported = tmp_path / "export.tsv"
    exported.write_text("0\t1\t2\nIs this in New Orleans??\t27\tedgurhb\nI love it\t0\teeu1x\n")
    with pytest.raises(DataLoadError, match=r"export.tsv: line 1 \(0, 1, 2\) names the columns by their numbers, as "
                                            r"pandas writes a header .* or set data.header: true"):
        read_table(exported, "tsv", header=False)
    assert read_table(exported, "tsv", header=True).frame["0"].tolist() == ["Is this in New Orleans??", "I love it"]
    records = tmp_path / "records.tsv"  # a first record that merely starts with numbers is a record
    records.write_text("0\t1\tx\nI love it\t0\teeu1x\n")
    assert len(read_table(records, "tsv", header=False).frame) == 2
