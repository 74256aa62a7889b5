"""Dirty-data QA of 2026-12-06 (reader and NER fixes; the multi-label and sentence-pair ones have their own files):
each test is a file a real tool writes, read through the real readers or ``tuneline validate``."""

from __future__ import annotations

import pytest

from tuneline import readers
from tuneline.readers import _read_delimited_careful, _read_delimited_fast, read_table


@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
def test_rows_after_excels_sixteenth_lack_only_its_trailing_empty_columns_and_are_read(tmp_path, monkeypatch,
                                                                                      block_bytes):
    """Excel writes the empty columns after the data as trailing commas on the first 16 rows only: header
    ``text,label,,``, rows ``a,pos,,`` and, from row 17, ``b,neg``. Those rows were quarantined as "2 fields, header
    has 4" and the run stopped, although all they lack is the empty, unnamed columns the README says are ignored."""
    monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", block_bytes)
    rows = [f"review {i},{'pos' if i % 2 else 'neg'}" + (",," if i < 16 else "") for i in range(40)]
    rows[30] = "review 30"  # short of a named column: still ragged
    rows[31] = '"review, 31, quoted",pos'  # the csv module's line: padded too
    path = tmp_path / "excel.csv"
    path.write_text("text,label,,\r\n" + "\r\n".join(rows) + "\r\n", encoding="utf-8")
    for result in (read_table(path, "csv"), _read_delimited_careful(path, "csv", "utf-8", True, "error")):
        assert [(m["source_line"], m["rule"]) for m in result.malformed] == [(32, "record_has_wrong_field_count")]
        frame = result.frame
        assert len(frame) == 39 and result.records_seen == 40
        assert frame["text"].iloc[20] == "review 20" and frame["label"].iloc[20] == "neg"
        assert frame["text"].iloc[30] == "review, 31, quoted" and frame["label"].iloc[30] == "pos"
        assert frame["unnamed_2"].isna().all() and frame["unnamed_3"].isna().all()
    assert _read_delimited_fast(path, "csv", "utf-8", "error") is None  # padded by the careful reader only

    named_last = tmp_path / "named.csv"  # a named column after the empty ones may not be left out
    named_last.write_text("text,,label\na,,pos\nb,neg\n", encoding="utf-8")
    result = read_table(named_last, "csv")
    assert list(result.frame["text"]) == ["a"] and [m["source_line"] for m in result.malformed] == [3]


def test_an_r_write_table_tsv_is_read_without_its_quotes_its_escapes_and_its_bare_na(tmp_path):
    """R's ``write.table(df, sep = "\\t", row.names = FALSE)`` quotes every string, escapes a quote inside with a
    backslash (``qmethod = "escape"``) and writes a missing value as a bare ``NA``. One such escape or one NA in a
    column made the reader keep the quotes on every value of it, silently (dirty-data QA)."""
    path = tmp_path / "r.tsv"
    rows = [(f'"pair {i} left"', f'"pair {i} right"', i % 2) for i in range(12)]
    rows[3] = ('"he said \\"hi\\" there"', '"pair 3 right"', 1)
    rows[5] = ('"pair 5 left"', "NA", 1)
    path.write_text('"sentence1"\t"sentence2"\t"label"\n' + "".join(f"{a}\t{b}\t{c}\n" for a, b, c in rows))
    frame = read_table(path, "tsv").frame
    assert frame["sentence1"].tolist()[:4] == ["pair 0 left", "pair 1 left", "pair 2 left", 'he said "hi" there']
    assert frame["sentence2"].tolist()[4:7] == ["pair 4 right", None, "pair 6 right"]
    assert frame["label"].tolist()[:3] == ["0", "1", "0"]  # never quoted by R: as written

    glue = tmp_path / "glue.tsv"  # quotations as text (MRPC) beside plain values, and a text "NA": all kept
    glue.write_text("text\tlabel\n" + "".join(f"plain {i}\t1\n" for i in range(5)) + '" a quotation "\t0\nNA\t0\n')
    assert read_table(glue, "tsv").frame["text"].tolist()[5:] == ['" a quotation "', "NA"]


def test_a_bioes_end_tag_that_ends_no_entity_is_named_as_written(tmp_path):
    """With data.bioes_to_iob2, a lone ``E-LOC`` after ``O`` was read as I-LOC and reported as "I-LOC follows O ...
    (set data.iob1_to_iob2=true if the file is IOB1)": a tag the file does not hold, and the wrong fix."""
    from tests_support import run_config
    from tuneline.tasks.load import load_data
    from tuneline.tasks.validate import validate_data

    sentences = [f"EU S-ORG\nrejects O\nGerman{i} S-MISC\ncall O\n" for i in range(30)]
    sentences += [f"Peter B-PER\nBlackburn{i} E-PER\nin O\nNew B-LOC\nYork{i} E-LOC\n" for i in range(30)]
    sentences[40] = "went O\nto O\nParis E-LOC\n"
    data = tmp_path / "bioes.conll"
    data.write_text("\n".join(sentences))
    config = run_config("token_classification", "data.bioes_to_iob2=true", "data.max_bad_fraction=0.1", path=data)
    result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    (rule, detail), = result.quarantine[["rule", "detail"]].values.tolist()
    assert rule == "tag_in_label_set"
    # the fix that applies, first: "set data.bioes_to_iob2=true" was said although it was set (NER QA)
    assert detail.startswith("token 3 ('Paris', line 213): tag 'E-LOC' ends an entity that no tag began (the tag "
                             "before it is 'O'): make the entity's first tag B-LOC (S-/B- in IOBES) and the ones "
                             "after it I-LOC")
    tags = {tuple(t) for t in result.frames["all"]["tags"]}
    assert ("B-PER", "I-PER", "O", "B-LOC", "I-LOC") in tags and ("B-ORG", "O", "B-MISC", "O") in tags


def test_a_batch_whose_end_tags_end_no_entity_is_not_told_to_set_what_is_set(tmp_path):
    """The loop's word for a batch with IOBES tags the head cannot learn said "set data.bioes_to_iob2: true" also
    where it was set, and only the tags that end no entity were left (bioes_to_iob2 above)."""
    from tests_support import run_config
    from tuneline.kinds import KINDS

    kind = KINDS["token_classification"]
    unset = run_config("token_classification", path=tmp_path / "d.conll").data
    converted = run_config("token_classification", "data.bioes_to_iob2=true", path=tmp_path / "d.conll").data
    assert kind.labels_no_head_can_learn(["E-LOC"], unset).endswith("set data.bioes_to_iob2: true to read them as IOB2")
    assert kind.labels_no_head_can_learn(["E-LOC"], converted) == (
        "its tags 'E-LOC' end no entity (an E-/L- tag ends one that a B-/I- tag of its type began, and "
        "data.bioes_to_iob2 reads only such ones as I-): fix the tag before each")


def test_a_conll_line_whose_token_is_only_a_byte_order_mark_says_so(tmp_path):
    """``\\ufeff<TAB>O`` was reported as "has no tab, while the file's other token lines are split at tabs": it
    plainly has one; its token is the mark alone (dirty-data QA)."""
    from tuneline.readers import read_conll

    path = tmp_path / "ner.conll"
    path.write_text("EU\tB-ORG\nrejects\tO\n\nPeter\tB-PER\n\ufeff\tO\nsaid\tO\n", encoding="utf-8")
    (bad,) = read_conll(path).malformed
    assert bad["rule"] == "conll_line_has_no_tag_column" and bad["source_line"] == 4
    assert bad["detail"] == ("in this sentence, line 5 ('\\ufeff\\tO') has no token before its tab (only a "
                             "byte-order mark, U+FEFF, which is no text): write the token there, or remove the line")
