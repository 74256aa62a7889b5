"""Dirty multi-label input is read right or rejected by rule, never silently mis-read: list cells written by pandas,
numpy, Python or Postgres; lists joined with another separator; label names files in other encodings; digits that
are no ids; a single 0/1 column given as the label column."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests_support import run_config
from tuneline.kinds import KINDS
from tuneline.kinds.classification import LabelSetError
from tuneline.kinds.multilabel_classification import (
    _check_separator, _listed, looks_like_one_indicator_column, parse_labels, read_label_names)
from tuneline.readers import DataLoadError
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import DataValidationError, validate_data

TASK = "multilabel_classification"
KIND = KINDS[TASK]
EMOTIONS = ["joy", "anger", "fear", "neutral"]


def label_sets(count: int) -> list[list[str]]:
    """One, two or three labels a row, every label alone in some rows and together in others."""
    return [EMOTIONS[i % 4:][:1 + i % 3] or [EMOTIONS[i % 4]] for i in range(count)]


def validated(tmp_path: Path, *overrides: str, **data):
    config = run_config(TASK, *overrides, **data)
    return validate_data.fn(load_data.fn(config), config, tmp_path / "run")


# --- list cells ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("labels", [["anger", "fear"], ["joy"], ["it's", "a b", "fear"]])
def test_list_cells_in_python_numpy_and_postgres_spellings_read_as_their_labels(labels: list[str]):
    """pandas writes an array cell as numpy's repr (``['anger' 'fear']``: no comma, which ``ast.literal_eval`` read
    as the one label ``angerfear``), a tuple as ``('anger', 'fear')`` and Postgres exports ``{anger,fear}``; these
    became invented classes such as ``('anger'`` or ``{anger``."""
    expected = sorted(labels)
    quoted = ",".join('"' + label + '"' if " " in label else label for label in labels)
    spellings = [str(np.array(labels)), repr(tuple(labels)), repr(list(labels)), json.dumps(labels),
                 "{" + quoted + "}", "{" + ",".join(json.dumps(label) for label in labels) + "}"]
    for cell in spellings:
        assert parse_labels(cell, ",", None) == expected, cell


def test_numpy_integer_arrays_map_to_label_names():
    """``[2 7]`` (numpy's repr of an id array) with data.label_names is ids 2 and 7, as ``2,7`` is."""
    for ids in ([2, 3], [0], [1, 3, 0]):
        cell = str(np.array(ids))
        assert parse_labels(cell, ",", EMOTIONS) == sorted(EMOTIONS[i] for i in ids), cell
        assert parse_labels(str(np.array(ids, dtype=float)), ",", EMOTIONS) == sorted(EMOTIONS[i] for i in ids)


def test_adjacent_strings_are_never_concatenated():
    """Python joins ``'a' 'b'`` into ``'ab'``; in a label cell that is a list written without commas, or garbage,
    never the label ``ab``."""
    assert _listed("['anger' 'fear']") == ["anger", "fear"]
    for cell in ["['joy', 'anger' 'fear']", "('anger' 'fear')", "{'anger' 'fear'}"]:
        assert parse_labels(cell, ",", None) == cell  # unchanged: the contract rejects it by rule
        assert "angerfear" not in str(_listed(cell))


@pytest.mark.parametrize("cell", ["[meta]", "('anger')", "{'a': 1}", "[1 -> 2]", "{a,,b}", "[f'x']", '{"open,b}'])
def test_bracketed_cells_that_spell_no_list_are_returned_for_the_contract(cell: str):
    """A cell in matching brackets is meant as a list: one that cannot be read must not become a label name."""
    assert parse_labels(cell, ",", None) == cell


def test_pandas_array_cells_and_postgres_arrays_read_through_the_kind(tmp_path: Path):
    """The probe's files: a CSV pandas wrote from a column of numpy arrays, and one with Postgres arrays."""
    sets = label_sets(12)
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(len(sets))],
                          "labels": [np.array(labels) for labels in sets]})
    np_csv = tmp_path / "np.csv"
    frame.to_csv(np_csv, index=False)
    pg_csv = tmp_path / "pg.csv"
    frame.assign(labels=["{" + ",".join(labels) + "}" for labels in sets]).to_csv(pg_csv, index=False)
    for path in (np_csv, pg_csv):
        data = run_config(TASK, path=path, label_column="labels").data
        assert KIND.read(path, "csv", data).frame["label"].tolist() == [sorted(labels) for labels in sets]


def test_unreadable_list_cells_are_quarantined_with_a_rule_that_says_so(tmp_path: Path):
    sets = label_sets(40)
    bad = ["('anger' 'fear')", "[joy anger]"]
    path = tmp_path / "bad.csv"
    pd.DataFrame({"text": [f"text {i}" for i in range(len(sets) + len(bad))],
                  "labels": [",".join(labels) for labels in sets] + bad}).to_csv(path, index=False)
    result = validated(tmp_path, "data.max_bad_fraction=0.5", path=path, label_column="labels")
    assert result.labels == sorted(EMOTIONS)
    quarantine = result.quarantine.set_index("source_row")
    assert sorted(quarantine["rule"]) == ["labels_are_list_of_strings"] * len(bad)
    assert all("in brackets but spell no list" in detail for detail in quarantine["detail"])
    assert sum(map(len, result.frames.values())) == len(sets)


# --- lists joined with another separator ------------------------------------------------------------------------

@pytest.mark.parametrize("other", ["|", ";", "/", "\t"])
def test_joined_lists_are_an_error_even_when_no_label_is_ever_alone(other: str):
    """Every row ``joy|anger``-like (no label alone) made each pair a class; the pieces recur across pairs."""
    pairs = [other.join([EMOTIONS[i], EMOTIONS[(i + 1) % 4]]) for i in range(4)] * 5
    with pytest.raises(LabelSetError) as error:
        _check_separator(pairs, ",")
    setting = json.dumps(other) if other == "\t" else repr(other)
    assert f"set data.label_separator: {setting} " in str(error.value)
    assert "data.label_separator is ','" in str(error.value)


def test_two_and_three_label_lists_joined_with_semicolons_are_an_error(tmp_path: Path):
    """The probe's ``a;b`` / ``a;b;c`` file: ``joy;anger`` and ``joy;anger;fear`` share their labels."""
    rows = [";".join((EMOTIONS[i % 4:] + EMOTIONS[:i % 4])[:2 + i % 2]) for i in range(40)]
    path = tmp_path / "semi.csv"
    pd.DataFrame({"text": [f"text {i}" for i in range(len(rows))], "labels": rows}).to_csv(path, index=False)
    config = run_config(TASK, path=path, label_column="labels")
    with pytest.raises(DataValidationError, match=r"joined with ';', but data\.label_separator is ',': "
                                            r"set data\.label_separator: ';'"):
        validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    fixed = run_config(TASK, "data.label_separator=;", path=path, label_column="labels")
    assert validate_data.fn(load_data.fn(fixed), fixed, tmp_path / "run2").labels == sorted(EMOTIONS)


def test_names_that_share_a_word_or_a_path_prefix_are_no_joined_lists():
    """Multi-word names share words, a taxonomy's paths and ``City, ST`` names share a part in the same place."""
    _check_separator(["very positive", "very negative", "neutral"] * 3, ",")
    _check_separator(["billing/refund", "billing/invoice", "shipping/late", "shipping/lost"] * 3, ",")
    _check_separator(["Portland, OR", "Salem, OR", "Austin, TX"] * 3, "|")


def test_a_cell_joined_by_another_separator_names_the_separator_setting_not_the_task():
    """One ``admiration;love`` cell under ``,`` told a multi-label user to set task: multilabel_classification."""
    from tuneline.kinds.classification import LabelSetError, frequent_labels

    values = ["admiration"] * 5 + ["love"] * 5 + ["admiration;love"]
    with pytest.raises(LabelSetError) as multilabel:
        frequent_labels(values, 2, ",")
    assert "joined by ';', not by data.label_separator (','): set data.label_separator: ';'" in str(multilabel.value)
    assert "task" not in str(multilabel.value)
    with pytest.raises(LabelSetError) as among_commas:  # where ',' joins other cells, the cell is the slip
        frequent_labels(values, 2, ",", joined_here=3)
    assert "join those rows' labels by ','" in str(among_commas.value)
    assert "set data.label_separator" not in str(among_commas.value)
    with pytest.raises(LabelSetError, match="set task: multilabel_classification"):
        frequent_labels(values, 2)  # the single-label kind: multi-label data read without task:


# --- label names files --------------------------------------------------------------------------------------------

def names_data(path: Path, **data) -> object:
    return run_config(TASK, path=path.parent / "data.csv", label_names=str(path), **data).data


def test_label_names_file_in_utf16_with_a_mark_or_in_the_configured_encoding_is_read(tmp_path: Path):
    """Notepad's "Unicode" writes UTF-16 with a mark; a cp1252 file with accents is read with data.encoding."""
    accented = ["joie", "colère", "peur", "neutre"]
    utf16 = tmp_path / "names16.txt"
    utf16.write_text("\r\n".join(EMOTIONS) + "\r\n", encoding="utf-16")
    assert read_label_names(names_data(utf16)) == EMOTIONS
    cp1252 = tmp_path / "names1252.txt"
    cp1252.write_text("\n".join(accented) + "\n", encoding="cp1252")
    assert read_label_names(names_data(cp1252, encoding="cp1252")) == accented


def test_label_names_file_that_does_not_decode_is_one_user_error_naming_file_line_and_setting(tmp_path: Path):
    """It was a raw UnicodeDecodeError, reported as "not a problem with your data"."""
    accented = ["joie", "peur", "colère", "neutre"]
    cp1252 = tmp_path / "names1252.txt"
    cp1252.write_text("\n".join(accented) + "\n", encoding="cp1252")
    with pytest.raises(DataLoadError) as error:
        read_label_names(names_data(cp1252))
    message = str(error.value)
    line = next(i for i, name in enumerate(accented, 1) if not name.isascii())
    assert message.startswith(f"{cp1252}: line {line}: ") and "data.encoding" in message
    assert "\n" not in message


def test_label_names_written_with_their_ids_are_read_by_id_not_by_line(tmp_path: Path):
    """``27<TAB>neutral`` lines were taken whole for names, and read by line number: a file whose lines were in
    another order gave every row other labels, with no error."""
    shuffled = [(i, name) for i, name in enumerate(EMOTIONS)][::-1]
    tabbed = tmp_path / "ids.tsv"
    tabbed.write_text("".join(f"{i}\t{name}\n" for i, name in shuffled))
    assert read_label_names(names_data(tabbed)) == EMOTIONS
    commas = tmp_path / "ids.csv"
    commas.write_text("".join(f"{i},{name}\r\n" for i, name in shuffled))
    assert read_label_names(names_data(commas)) == EMOTIONS


@pytest.mark.parametrize("lines, said", [
    (["id\tname", *(f"{i}\t{n}" for i, n in enumerate(EMOTIONS))], "line 1 ('id\\tname') is not ID<TAB>NAME"),
    ([f"{i + 1}\t{n}" for i, n in enumerate(EMOTIONS)], "the written ids must be 0.."),
    ([*EMOTIONS[:2], f"x\t{EMOTIONS[2]}", *EMOTIONS[3:]], "line 3 ('x\\tfear') holds a tab"),
])
def test_a_label_names_file_that_mixes_forms_is_refused_naming_the_line(tmp_path: Path, lines, said):
    path = tmp_path / "names.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataLoadError, match=re.escape(said)):
        read_label_names(names_data(path))


# --- digits that are no ids ----------------------------------------------------------------------------------------

def test_non_ascii_digits_are_labels_not_ids():
    """``"²".isdigit()`` is True but ``int("²")`` fails; the cell must stay a label the contract can name."""
    for cell in ["²", "١", "2,²"]:
        expected = sorted(EMOTIONS[int(p)] if p.isascii() else p for p in cell.split(","))
        assert parse_labels(cell, ",", EMOTIONS) == expected


def test_a_superscript_label_with_label_names_is_quarantined_not_a_crash(tmp_path: Path):
    rows = [f"text {i},\"{i % 4},{(i + 1) % 4}\"" for i in range(40)] + ["odd one,²"]
    path = tmp_path / "sup.csv"
    path.write_text("text,labels\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = validated(tmp_path, "data.max_bad_fraction=0.5", path=path, label_column="labels",
                       label_names=EMOTIONS)
    assert result.quarantine["rule"].tolist() == ["label_in_label_set"]
    assert "'²'" in result.quarantine["detail"].iloc[0]


# --- one indicator column -----------------------------------------------------------------------------------------

def test_labels_that_are_all_whole_numbers_warn_to_name_them(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """A Hugging Face export of GoEmotions without labels.txt (``"labels": [3, 27]``) trained classes "3" and "27" with
    no word that they look like ids; a set with names, or of only 0/1 (the indicator warning), says nothing here."""
    path = tmp_path / "ids.jsonl"
    path.write_text("".join(json.dumps({"text": f"comment {i}", "labels": [i % 5, (i + 2) % 5]}) + "\n"
                            for i in range(60)))
    with caplog.at_level(logging.WARNING, logger="tuneline"):
        result = validated(tmp_path, path=path, label_column="labels")
    assert result.labels == ["0", "1", "2", "3", "4"]
    warnings = [r.getMessage() for r in caplog.records if "is a whole number" in r.getMessage()]
    assert len(warnings) == 1 and "(0, 1, 2, 3, ...; 5 labels)" in warnings[0] and "data.label_names" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tuneline"):
        named = validated(tmp_path, "data.label_names=[a, b, c, d, e]", path=path, label_column="labels")
    assert named.labels == ["a", "b", "c", "d", "e"]
    assert not [r for r in caplog.records if "is a whole number" in r.getMessage()]


def test_one_indicator_column_is_recognised():
    assert looks_like_one_indicator_column([["0"], ["1"], ["1"], []])
    assert not looks_like_one_indicator_column([["0"], ["1"], ["0", "1"]])  # a real list of ids 0 and 1
    assert not looks_like_one_indicator_column([["1"], ["2"], ["0"]])
    assert not looks_like_one_indicator_column([["1"], ["1"]])


def test_one_indicator_column_as_the_label_column_warns_how_to_lay_out_multilabel_data(
        tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """A one-hot ``toxic`` column given as data.label_column silently trained two classes "0" and "1"."""
    path = tmp_path / "onehot.csv"
    pd.DataFrame({"text": [f"text {i}" for i in range(40)], "toxic": [i % 2 for i in range(40)],
                  "insult": [i % 3 == 0 for i in range(40)]}).to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="tuneline"):
        result = validated(tmp_path, path=path, label_column="toxic")
    assert result.labels == ["0", "1"]
    warnings = [r.getMessage() for r in caplog.records if "indicator column" in r.getMessage()]
    assert len(warnings) == 1 and "'toxic'" in warnings[0] and "data.label_separator" in warnings[0]


def test_label_names_file_written_as_one_json_list_is_read_as_the_names(tmp_path: Path):
    """``json.dump(names, f)`` is one line: it was read as one label name, ``["admiration", ...]``."""
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(EMOTIONS))
    assert read_label_names(names_data(path)) == EMOTIONS
    brackets = tmp_path / "brackets.txt"  # names that start with a bracket, one a line, are still names
    brackets.write_text("[joy]\n[anger]\n")
    assert read_label_names(names_data(brackets)) == ["[joy]", "[anger]"]
