"""Label spellings a probe of dirty CSVs left as extra classes (tuneline.kinds.label_spellings): a whole number written
with a decimal comma (``1,0`` in a semicolon-separated European file), and a label wrapped in quotes or typed with
trailing punctuation (``'neg'``, ``"neg"``, ``neg.``, ``neg,``) beside the bare label, in single- and multi-label
data. What may be part of a name (``U.S.``, ``C++``, ``1,5``) stays as written."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pandas as pd

from tests_support import run_config, write_rows
from tuneline.kinds.label_spellings import (apply_spelling_map, bare_key, canonical_comma_integer, describe,
                                            kept_apart, spelling_key, spelling_map, undecorated)
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import validate_data


def frames_of(*labels: str, **splits: list[str]) -> dict[str, pd.DataFrame]:
    frames = {"train": pd.DataFrame({"label": list(labels)})}
    frames.update({role: pd.DataFrame({"label": values}) for role, values in splits.items()})
    return frames


def folded(labels: list[str], configured: list[str] | None = None) -> dict[str, int]:
    frames = frames_of(*labels)
    mapping = spelling_map(frames, "label", configured, ["train"])
    return dict(Counter(apply_spelling_map(frames["train"]["label"], mapping)))


# --- a decimal comma ----------------------------------------------------------------------------------------------

def test_a_whole_number_with_a_decimal_comma_is_the_number():
    assert [canonical_comma_integer(t) for t in ("1,0", "2,00", "+1,0", "-1,0", "-0,0", "01,0", "3,0000")] == [
        "1", "2", "1", "-1", "0", "1", "3"]
    assert [canonical_comma_integer(t) for t in ("1,5", "1,2", "1,000", "1,05", "1,", ",0", "1,0,0", "a,0")] == [
        None] * 8
    assert spelling_key("1,0") == spelling_key("1") == spelling_key("1.0") == "1"
    assert spelling_key("２,００") == "2" and spelling_key(" 0,0 ") == "0"


def test_decimal_comma_labels_fold_into_the_integers_written_beside_them():
    frames = frames_of("1", "0", "1", "0", "1,0", "0,0", "2,00", "2", "2")
    mapping = spelling_map(frames, "label", None, ["train"])
    assert mapping == {"1,0": "1", "0,0": "0", "2,00": "2"}
    assert describe(mapping, frames, "label") == (
        "'0,0' (1 rows) → '0'; '1,0' (1 rows) → '1'; '2,00' (1 rows) → '2'")
    assert folded(["1", "0", "1", "1,0", "0,0", "2,00", "2"]) == {"1": 3, "0": 2, "2": 2}


def test_a_decimal_comma_that_is_no_whole_number_stays_apart():
    """``1,5`` is a fraction (or two labels); ``1,000`` may be a thousand; ``1,2`` a thousands group or a list."""
    assert spelling_map(frames_of("1", "1,5", "2", "1,2", "1000", "1,000", "15"), "label", None, ["train"]) == {}
    assert folded(["1,5", "1.5", "1"]) == {"1,5": 1, "1.5": 1, "1": 1}
    # alone a decimal comma keeps its spelling, as 007 does: folding happens between spellings
    assert spelling_map(frames_of("1,0", "0,0", "1,0"), "label", None, ["train"]) == {}


def test_in_a_column_of_numbers_every_decimal_comma_whole_number_is_its_number():
    """``1,0`` beside ``1`` folded into ``1`` while ``0,0``, with no plain ``0`` written, stayed a class ``0,0``: one
    notation read two ways in one column (the label list printed ``0,0, 1``). A column that writes some whole
    number plainly is a column of numbers: ``0,0`` is ``0`` there, and ``1,0`` is ``1`` even where it is the more
    frequent spelling."""
    frames = frames_of("1,0", "0,0", "1", "1,0", "0,0", "1,0")
    assert spelling_map(frames, "label", None, ["train"]) == {"1,0": "1", "0,0": "0"}
    assert folded(["1,0", "0,0", "1", "1,0", "0,0", "1,0"]) == {"1": 4, "0": 2}


def test_a_semicolon_separated_european_file_trains_two_classes(tmp_path: Path, caplog):
    path = tmp_path / "eu.csv"
    lines = ["text;label"] + [f"great review {i};{['1', '1,0', '1'][i % 3]}" for i in range(30)] + \
        [f"awful review {i};{['0', '0,0'][i % 2]}" for i in range(30)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = run_config("classification", path=path)
    with caplog.at_level(logging.WARNING):
        result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert result.labels == ["0", "1"] and result.rejected_records == 0
    assert pd.concat(result.frames.values())["label"].value_counts().to_dict() == {"1": 30, "0": 30}
    assert "'0,0' (15 rows) → '0'; '1,0' (10 rows) → '1'" in caplog.text


# --- quotes and trailing punctuation ------------------------------------------------------------------------------

def test_undecorated_strips_matching_quotes_and_trailing_punctuation_only():
    assert [undecorated(t) for t in ("'neg'", '"neg"', "`neg`", "\u201cneg\u201d", "neg.", "neg,", "neg!", "'neg.'",
                                     "neg...", " 'neg' ")] == ["neg"] * 10
    assert [undecorated(t) for t in ("C++", "C#", "'neg", "neg'", "'", "''", "...", "don't", "a.b")] == [
        "C++", "C#", "'neg", "neg'", "'", "''", "...", "don't", "a.b"]
    assert bare_key("'Neg.'") == bare_key("NEG,") == "neg" and bare_key("1.50.") == "1.5" and bare_key("U.S.") == "u.s"


def test_a_question_mark_is_no_typing_slip_and_keeps_its_class():
    """'question?' (32 rows) beside 'question' (40), and 'joy ?' beside 'joy', were merged into one class (QA): a '?'
    is part of a name or an annotator's doubt ("spam?"), which the user must decide about, not a stray key."""
    assert undecorated("question?") == "question?" and undecorated("'spam?'") == "spam?"
    labels = ["question"] * 40 + ["question?"] * 32 + ["joy"] * 30 + ["joy ?"] * 29 + ["joy."] * 2
    assert spelling_map(frames_of(*labels), "label", None, ["train"]) == {"joy.": "joy"}


def test_quoted_and_punctuated_spellings_fold_into_the_bare_label():
    labels = ["neg"] * 4 + ["pos"] * 5 + ["neg."] * 3 + ["'neg'"] * 2 + ['"neg"', "neg,", "`pos`", "Pos!"]
    frames = frames_of(*labels)
    mapping = spelling_map(frames, "label", None, ["train"])
    assert mapping == {"neg.": "neg", "'neg'": "neg", '"neg"': "neg", "neg,": "neg", "`pos`": "pos", "Pos!": "pos"}
    assert describe(mapping, frames, "label") == (
        "'\"neg\"' (1 rows), \"'neg'\" (2 rows), 'neg,' (1 rows), 'neg.' (3 rows) → 'neg'; "
        "'Pos!' (1 rows), '`pos`' (1 rows) → 'pos'")
    assert dict(Counter(apply_spelling_map(frames["train"]["label"], mapping))) == {"neg": 11, "pos": 7}


def test_the_bare_spelling_is_kept_even_where_a_decorated_one_is_written_more():
    assert spelling_map(frames_of(*["neg."] * 9, "neg", "Pos", "pos"), "label", None, ["train"]) == {
        "neg.": "neg", "Pos": "pos"}
    # the bare class in another case: the decorated one joins it, and its spelling follows the class's
    assert spelling_map(frames_of("Neg", "Neg", "neg.", "'NEG'"), "label", None, ["train"]) == {
        "neg.": "Neg", "'NEG'": "Neg"}
    # in another split only: still one class
    frames = frames_of("neg", "pos", "neg", test=["neg.", "pos"])
    assert spelling_map(frames, "label", None, ["train"]) == {"neg.": "neg"}


def test_a_label_that_is_punctuated_alone_is_never_renamed():
    """``U.S.``, ``C++``, ``Yahoo!`` alone are class names: nothing bare to fold into."""
    assert spelling_map(frames_of("U.S.", "UK", "C++", "C#", "C", "Yahoo!", "1,5", "'quoted'"), "label", None,
                        ["train"]) == {}
    assert folded(["U.S.", "U.S.", "UK", "C++", "C"]) == {"U.S.": 2, "UK": 1, "C++": 1, "C": 1}
    # beside the bare spelling the punctuated one joins it, and the bare one is kept
    assert spelling_map(frames_of("U.S.", "U.S.", "U.S"), "label", None, ["train"]) == {"U.S.": "U.S"}


def test_configured_labels_decide_what_a_decorated_spelling_is():
    # the configured bare label is the class: a decorated spelling folds into it even where no bare one is written
    assert spelling_map(frames_of("neg.", "'neg'", "Pos"), "label", ["neg", "pos"], ["train"]) == {
        "neg.": "neg", "'neg'": "neg", "Pos": "pos"}
    # a configured decorated label is a class of its own
    assert spelling_map(frames_of("U.S.", "U.S", "us"), "label", ["U.S.", "U.S", "us"], ["train"]) == {}
    assert spelling_map(frames_of("neg.", "neg"), "label", ["neg.", "neg"], ["train"]) == {}


def test_decorated_spellings_with_no_bare_class_are_kept_apart_and_named():
    frames = frames_of("'neg'", "'neg'", '"neg"', "pos", "U.S.", "C++")
    mapping = spelling_map(frames, "label", None, ["train"])
    assert mapping == {}  # no bare 'neg' to fold into: left as written
    warning = kept_apart(frames, "label", mapping)
    assert warning.startswith("labels that differ only by quotes or trailing punctuation are kept apart as "
                              "separate classes: '\"neg\"' (1 rows), \"'neg'\" (2 rows); ")
    assert "list the bare label in data.labels" in warning and "U.S." not in warning and "C++" not in warning
    folded_frames = frames_of("neg", "neg.", "pos")
    assert kept_apart(folded_frames, "label", spelling_map(folded_frames, "label", None, ["train"])) == ""


def test_a_training_file_with_quoted_and_punctuated_labels_has_two_classes(tmp_path: Path, caplog):
    rows = [(f"bad review {i}", ["neg", "neg.", "'neg'", "neg,", '"neg"'][i % 5]) for i in range(40)] + \
        [(f"good review {i}", "pos") for i in range(35)] + [(f"ok review {i}", "C++") for i in range(5)]
    config = run_config("classification", path=write_rows(tmp_path / "quoted.csv", rows))
    with caplog.at_level(logging.WARNING):
        result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert result.labels == ["C++", "neg", "pos"] and result.rejected_records == 0
    assert pd.concat(result.frames.values())["label"].value_counts().to_dict() == {"neg": 40, "pos": 35, "C++": 5}
    assert "'\"neg\"' (8 rows), \"'neg'\" (8 rows), 'neg,' (8 rows), 'neg.' (8 rows) → 'neg'" in caplog.text


def test_multilabel_rows_with_quoted_and_punctuated_labels_fold_too(tmp_path: Path, caplog):
    cells = ["neg|pos", "neg.|pos", "'neg'|pos", "neg", "\"neg\"|joy", "joy", "pos", "neg,|joy"]
    rows = [(f"text number {i}", cells[i % len(cells)]) for i in range(80)]
    config = run_config("multilabel_classification", "data.label_separator=|",
                        path=write_rows(tmp_path / "ml.csv", rows))
    with caplog.at_level(logging.WARNING):
        result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert result.labels == ["joy", "neg", "pos"] and result.rejected_records == 0
    counts = Counter(label for row in pd.concat(result.frames.values())["label"] for label in row)
    assert counts == {"neg": 60, "pos": 40, "joy": 30}
    assert "'\"neg\"' (10 rows), \"'neg'\" (10 rows), 'neg,' (10 rows), 'neg.' (10 rows) → 'neg'" in caplog.text


def test_a_training_file_whose_only_spellings_are_decorated_warns_naming_them(tmp_path: Path, caplog):
    """'neg' and "neg" with no bare neg: no rule may merge them, but the user is told, with what to do."""
    rows = [(f"bad review {i}", ["'neg'", '"neg"'][i % 2]) for i in range(40)] + \
        [(f"good review {i}", "pos") for i in range(35)]
    config = run_config("classification", path=write_rows(tmp_path / "quoted.csv", rows))
    with caplog.at_level(logging.WARNING):
        result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert result.labels == ['"neg"', "'neg'", "pos"]
    assert ("differ only by quotes or trailing punctuation are kept apart as separate classes: "
            "'\"neg\"' (20 rows), \"'neg'\" (20 rows)") in caplog.text
    assert "list the bare label in data.labels" in caplog.text
