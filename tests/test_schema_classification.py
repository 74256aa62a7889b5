"""The classification data contract: every rule, a valid and an invalid frame, the exact rows it rejects."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd
import pytest

from tests_support import run_config
from tuneline.schemas.classification import classification_schema
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import (
    DataValidationError,
    apply_schema,
    infer_labels,
    validate_data,
    validate_frames,
)

LABELS = ["neg", "pos"]


def frame(rows: list[tuple[object, object]], source: str = "data.csv") -> pd.DataFrame:
    """Rows as the loader makes them: canonical text/label (objects) plus provenance (1-based rows)."""
    return pd.DataFrame({
        "text": pd.Series([r[0] for r in rows], dtype=object),
        "label": pd.Series([r[1] for r in rows], dtype=object),
        "source_file": source,
        "source_row": pd.Series(range(1, len(rows) + 1), dtype="int64"),
    })


def rejected(quarantine: pd.DataFrame) -> set[tuple[int, str]]:
    return {(int(r), str(rule)) for r, rule in zip(quarantine["source_row"], quarantine["rule"])}


def check(rows, labels=LABELS, train_texts=None, split="train"):
    clean, quarantine = apply_schema(frame(rows), classification_schema(labels, train_texts), split)
    return clean, quarantine


VALID = [("good movie", "pos"), ("bad film", "neg"), ("great fun", "pos")]


def test_valid_frame_passes_untouched():
    clean, quarantine = check(VALID)
    assert quarantine.empty
    assert clean["text"].tolist() == ["good movie", "bad film", "great fun"]
    assert clean["source_row"].tolist() == [1, 2, 3]


def test_text_missing_is_rejected():
    clean, quarantine = check([*VALID, (None, "pos")])
    assert rejected(quarantine) == {(4, "not_nullable")}
    assert quarantine["column"].tolist() == ["text"]
    assert clean["source_row"].tolist() == [1, 2, 3]


@pytest.mark.parametrize("bad_text", ["", "   ", "\t \n"])
def test_text_empty_or_whitespace_is_rejected(bad_text):
    clean, quarantine = check([("good movie", "pos"), (bad_text, "neg"), ("bad film", "neg")])
    assert rejected(quarantine) == {(2, "text_is_non_empty_string")}
    assert quarantine["split"].tolist() == ["train"]
    assert quarantine["column"].tolist() == ["text"]
    assert clean["source_row"].tolist() == [1, 3]


def test_text_not_a_string_is_rejected():
    # JSONL can deliver a number where the text should be.
    clean, quarantine = check([("good movie", "pos"), (12345, "neg"), (3.5, "pos")])
    assert rejected(quarantine) == {(2, "text_is_non_empty_string"), (3, "text_is_non_empty_string")}
    assert clean["source_row"].tolist() == [1]


def test_label_missing_is_rejected():
    clean, quarantine = check([*VALID, ("awful film", None)])
    assert set(quarantine["source_row"]) == {4}
    assert set(quarantine["rule"]) == {"not_nullable"}
    assert set(quarantine["column"]) == {"label"}
    assert clean["source_row"].tolist() == [1, 2, 3]


def test_label_not_in_label_set_is_rejected():
    clean, quarantine = check([*VALID, ("boring film", "meh")])
    assert rejected(quarantine) == {(4, "label_in_label_set")}
    assert quarantine["value"].tolist() == ["boring film"]
    assert clean["source_row"].tolist() == [1, 2, 3]


def test_exact_duplicates_keep_first_reject_later():
    rows = [("good movie", "pos"), ("bad film", "neg"), ("good movie", "pos"), ("  good movie ", "pos")]
    clean, quarantine = check(rows)
    # Duplicates are judged on the stripped text: rows 3 and 4 repeat row 1.
    assert rejected(quarantine) == {(3, "no_exact_duplicates"), (4, "no_exact_duplicates")}
    assert quarantine["column"].isna().all()  # a dataframe-level rule names no column
    assert clean["source_row"].tolist() == [1, 2]


def test_conflicting_label_duplicates_reject_every_copy():
    rows = [("good movie", "pos"), ("fun film", "pos"), ("fun film", "neg"), ("bad film", "neg"), ("fun film", "pos")]
    clean, quarantine = check(rows)
    assert {r for r, rule in rejected(quarantine) if rule == "no_conflicting_label_duplicates"} == {2, 3, 5}
    assert set(quarantine["source_row"]) == {2, 3, 5}
    assert clean["source_row"].tolist() == [1, 4]


def test_text_in_train_is_rejected_from_test():
    train_texts = ["good movie", "bad film"]
    clean, quarantine = check([("great fun", "pos"), (" good movie", "pos"), ("awful film", "neg")],
                              train_texts=train_texts, split="test")
    assert rejected(quarantine) == {(2, "text_not_in_train")}
    assert quarantine["split"].tolist() == ["test"]
    assert clean["source_row"].tolist() == [1, 3]
    # Without train texts (the train split itself) the same rows pass.
    _, quarantine = check([("great fun", "pos"), (" good movie", "pos"), ("awful film", "neg")])
    assert quarantine.empty


def test_validate_frames_checks_validation_and_test_against_clean_train():
    frames = {
        "train": frame([("good movie", "pos"), ("bad film", "neg"), ("", "neg")], "train.csv"),
        "validation": frame([("good movie", "pos"), ("great fun", "pos")], "validation.csv"),
        "test": frame([("awful film", "neg"), ("bad film", "neg")], "test.csv"),
    }
    clean, quarantine = validate_frames(frames, LABELS, classification_schema)
    got = {(s, f, int(r), rule) for s, f, r, rule in
           quarantine[["split", "source_file", "source_row", "rule"]].itertuples(index=False)}
    assert got == {("train", "train.csv", 3, "text_is_non_empty_string"),
                   ("validation", "validation.csv", 1, "text_not_in_train"),
                   ("test", "test.csv", 2, "text_not_in_train")}
    assert clean["train"]["text"].tolist() == ["good movie", "bad film"]
    assert clean["validation"]["text"].tolist() == ["great fun"]
    assert clean["test"]["text"].tolist() == ["awful film"]


# --- validate_data.fn: quarantine file, threshold, inputs untouched, label inference ---------------------------

def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def clean_rows(n: int, prefix: str = "row") -> list[tuple[str, str]]:
    return [(f"{prefix} text number {i}", "pos" if i % 2 else "neg") for i in range(n)]


def run_validate(config, run_dir: Path):
    loaded = load_data.fn(config)
    return validate_data.fn(loaded, config, run_dir)


def test_validate_data_writes_quarantine_and_returns_clean_frames(tmp_path):
    # An empty CSV field is a missing value (not_nullable); a blank one is an empty string.
    rows = clean_rows(40) + [("", "pos"), ("another text", "ugly"), ("row text number 0", "neg"), ("  ", "neg")]
    data = write_csv(tmp_path / "all.csv", rows)
    config = run_config("classification", path=data, labels=["neg", "pos"], max_bad_fraction=0.1)
    before = (data.read_bytes(), os.stat(data).st_mtime_ns)
    result = run_validate(config, tmp_path / "run")
    assert (data.read_bytes(), os.stat(data).st_mtime_ns) == before
    assert result.quarantine_path == tmp_path / "run" / "quarantine.csv"
    written = pd.read_csv(result.quarantine_path)
    assert {"source_file", "source_row", "rule"} <= set(written.columns)
    assert {(int(r), rule) for r, rule in zip(written["source_row"], written["rule"])} == {
        (41, "not_nullable"), (42, "label_in_label_set"), (43, "no_exact_duplicates"),
        (44, "text_is_non_empty_string")}
    assert set(written["source_file"]) == {str(data)}
    assert result.rejected_records == 4
    assert result.total_records == 44
    assert len(result.frames["all"]) == 40
    assert result.labels == ["neg", "pos"]


def test_validate_data_over_threshold_raises_with_reasons_and_path(tmp_path):
    rows = clean_rows(20) + [(" ", "pos"), ("", "neg"), ("x", "ugly"), ("y", "ugly"), ("z", "ugly")]
    data = write_csv(tmp_path / "all.csv", rows)
    config = run_config("classification", path=data, labels=["neg", "pos"], max_bad_fraction=0.1)
    before = (data.read_bytes(), os.stat(data).st_mtime_ns)
    with pytest.raises(DataValidationError) as info:
        run_validate(config, tmp_path / "run")
    message = str(info.value)
    quarantine_path = tmp_path / "run" / "quarantine.csv"
    assert "5 of 25 records" in message
    assert "label_in_label_set (3)" in message
    assert "text_is_non_empty_string (1)" in message
    assert "not_nullable (1)" in message
    assert str(quarantine_path) in message
    assert quarantine_path.is_file()  # written before the threshold check
    assert len(pd.read_csv(quarantine_path)) == 5
    assert (data.read_bytes(), os.stat(data).st_mtime_ns) == before


def test_validate_data_under_threshold_with_explicit_splits(tmp_path):
    train = write_csv(tmp_path / "train.csv", clean_rows(30) + [("bad one", "ugly")])
    test = write_csv(tmp_path / "test.csv", clean_rows(10, "test") + [("row text number 3", "pos")])
    config = run_config("classification", train=train, test=test, labels=["neg", "pos"], max_bad_fraction=0.1)
    result = run_validate(config, tmp_path / "run")
    assert len(result.frames["train"]) == 30
    assert len(result.frames["test"]) == 10
    assert rejected(result.quarantine) == {(31, "label_in_label_set"), (11, "text_not_in_train")}


def test_labels_inferred_sorted_from_train_and_frozen(tmp_path):
    train_rows = [(f"train text {i}", ["zeta", "alpha", "mid"][i % 3]) for i in range(30)]
    train = write_csv(tmp_path / "train.csv", train_rows)
    validation = write_csv(tmp_path / "validation.csv",
                           [(f"val text {i}", "alpha") for i in range(9)] + [("val text new", "omega")])
    config = run_config("classification", train=train, validation=validation, max_bad_fraction=0.1)
    assert config.data.labels is None
    result = run_validate(config, tmp_path / "run")
    assert result.labels == ["alpha", "mid", "zeta"]
    assert rejected(result.quarantine) == {(10, "label_in_label_set")}
    assert set(result.quarantine["split"]) == {"validation"}
    assert "omega" not in set(result.frames["validation"]["label"])


def test_infer_labels_needs_two_labels():
    with pytest.raises(DataValidationError, match="at least 2"):
        infer_labels({"train": frame([("a", "x"), ("b", "x")])}, None)
    assert infer_labels({"train": frame([("a", "x"), ("b", "y")])}, ["y", "x", "y"]) == ["y", "x"]
    # issue 10: a configured label that never occurs in train could never be learned
    with pytest.raises(DataValidationError, match=r"\['b'\] never occur"):
        infer_labels({"train": frame([("a", "a"), ("c", "a")])}, ["a", "b"])


def test_swapped_text_and_label_columns_get_a_capped_list_and_the_likely_cause():
    """With the columns the wrong way round every text is a 'label' seen once: the error named all 3,000 of them in
    one line; now it names ten, counts the rest and says what is probably wrong."""
    from tuneline.kinds import kind_of
    from tuneline.kinds.classification import ClassificationData, LabelSetError

    rows = [(label, f"a whole review text number {i}") for i, label in enumerate(["pos", "neg"] * 1500)]
    data = ClassificationData(path=Path("-"), min_examples_per_label=2)
    with pytest.raises(LabelSetError) as caught:
        kind_of("classification").label_set({"train": frame(rows)}, data)
    message = str(caught.value)
    assert "and 2,990 more" in message and message.count("a whole review text") == 10
    assert "is it the text column? check data.text_column and data.label_column" in message
    # a few genuinely rare classes get the plain message, no guess about swapped columns
    few = [(f"text {i}", "common") for i in range(100)] + [("odd one", "rare")]
    with pytest.raises(LabelSetError) as plain:
        kind_of("classification").label_set({"train": frame(few)}, data)
    assert "'rare' (1)" in str(plain.value) and "text column" not in str(plain.value)


def test_missing_and_blank_texts_are_not_also_reported_as_duplicates():
    rows = [*VALID, (None, "pos"), (None, "pos"), (" ", "pos"), ("  ", "neg"), ("", "neg")]
    clean, quarantine = check(rows)
    assert rejected(quarantine) == {(4, "not_nullable"), (5, "not_nullable"), (6, "text_is_non_empty_string"),
                                    (7, "text_is_non_empty_string"), (8, "text_is_non_empty_string")}
    assert clean["source_row"].tolist() == [1, 2, 3]


# --- what the quarantine says about a label ------------------------------------------------------------------------


def test_label_not_in_label_set_names_the_label_and_the_set_in_detail(tmp_path):
    """``value`` shows the text; ``detail`` used to be empty, so the offending label (``Positive!``) was nowhere."""
    rows = clean_rows(40) + [("a stray label", "Positive!"), ("no label at all", "")]
    data = write_csv(tmp_path / "all.csv", rows)
    config = run_config("classification", path=data, labels=["neg", "pos"], max_bad_fraction=0.1)
    result = run_validate(config, tmp_path / "run")
    written = pd.read_csv(result.quarantine_path)
    by_row = {int(r): (rule, value, detail) for r, rule, value, detail in
              zip(written["source_row"], written["rule"], written["value"], written["detail"])}
    assert by_row[41] == ("label_in_label_set", "a stray label",
                          "label 'Positive!' is not in the label set ['neg', 'pos']: fix the row, or add the label "
                          "to data.labels if it is a class")
    assert by_row[42] == ("not_nullable", "no label at all", "the label is missing (an empty cell, or null)")
    assert len(result.frames["all"]) == 40


def test_label_detail_from_object_frames_and_a_long_label_set():
    from tuneline.kinds import KINDS

    labels = [f"class_{i:02d}" for i in range(30)]
    rows = [("good movie", "class_01"), ("boring film", "meh"), ("awful film", "class_02")]
    frames = {"train": frame(rows)}
    _, quarantine = apply_schema(frames["train"], classification_schema(labels), "train")
    described = KINDS["classification"].describe_failures(quarantine, frames, labels)
    assert described["source_row"].tolist() == [2]
    assert described["detail"].tolist() == [
        "label 'meh' is not in the label set ['class_00', 'class_01', 'class_02', 'class_03', 'class_04', "
        "'class_05', 'class_06', 'class_07', 'class_08', 'class_09', 'class_10', 'class_11', 'class_12', 'class_13', "
        "'class_14', 'class_15', 'class_16', 'class_17', 'class_18', 'class_19', ...] (30 labels): fix the row, or "
        "add the label to data.labels if it is a class"]


def test_text_column_equal_to_label_column_is_a_config_error():
    from tuneline.config import ConfigError

    with pytest.raises(ConfigError, match=r"data\.text_column: names the same column as data\.label_column "
                                          r"\('label'\); the model would be given the label as its input"):
        run_config("classification", path="x.csv", text_column="label")


def test_two_keys_matching_one_header_is_a_data_error(tmp_path):
    """Distinct names in the config (``Label``, ``label``) can still match one header column case-insensitively."""
    from tuneline.readers import DataLoadError

    data = write_csv(tmp_path / "all.csv", clean_rows(10))
    config = run_config("classification", path=data, text_column="Label ")
    with pytest.raises(DataLoadError, match=r"data\.text_column and data\.label_column both read the column "
                                            r"'label'; the model would be given the label as its input"):
        load_data.fn(config)


def test_inferred_whole_number_labels_sort_as_numbers():
    """Labels 0..27 were sorted as text (0, 1, 10, 11, ..., 2): the model's class ids were not the data's own."""
    from tuneline.kinds.classification import frequent_labels, natural_order

    assert frequent_labels(["10", "2", "1", "0", "2", "10", "1", "0"], 1) == ["0", "1", "2", "10"]
    assert natural_order(["b", "10", "a"]) == ["10", "a", "b"]  # not all numbers: as text
    assert natural_order(["1", "-1", "0"]) == ["-1", "0", "1"]


def test_a_long_rare_label_is_cut_with_an_ellipsis():
    """Labels were cut to 40 characters with no mark of the cut, reading as the whole label (exploratory QA)."""
    from tuneline.kinds.classification import frequent_labels

    long_label = "a label that goes on and on " * 4
    from tuneline.kinds.classification import LabelSetError

    with pytest.raises(LabelSetError) as info:
        frequent_labels(["pos"] * 5 + ["neg"] * 5 + [long_label], 5)
    assert "label(s) 'a label that goes on and on a label tha'… (1) occur fewer" in str(info.value)


def test_a_configured_label_written_twice_two_ways_is_named_as_the_likely_cause():
    """``data.labels: [positive, negative, Positive]``: configured labels are classes as written (``02134`` and
    ``2134`` stay two), so ``Positive`` has no rows; the error said only that, sending the user looking for rows
    (exploratory QA)."""
    with pytest.raises(DataValidationError) as info:
        infer_labels({"train": frame([("a", "positive"), ("b", "negative")])}, ["positive", "negative", "Positive"])
    assert "configured label(s) ['Positive'] never occur in the training data" in str(info.value)
    assert "'Positive' and 'positive' are one label written two ways unless they are two classes: list each label " \
           "once" in str(info.value)


# --- one example written two ways: case and runs of whitespace aside -------------------------------------------------

CASE_AND_SPACING = [("The plot is a total mess", "pos"), ("good movie", "pos"), ("the plot is a total mess", "neg"),
                    ("the plot  is a\ttotal mess ", "neg"), ("Great fun", "pos"), ("great  FUN", "pos"),
                    ("bad film", "neg")]


def test_a_text_written_in_another_case_or_spacing_with_another_label_is_a_conflict():
    """QA: ``The plot is a total mess`` as pos and ``the plot  is a total mess`` as neg were both kept and trained on,
    although an uncased model reads them as one input and the leakage rule, the split and the loop treat them as one
    example. Every copy is set aside; variants with the same label are not (they are not exact copies either)."""
    clean, quarantine = check(CASE_AND_SPACING)
    assert rejected(quarantine) == {(1, "no_conflicting_label_duplicates"), (3, "no_conflicting_label_duplicates"),
                                    (4, "no_conflicting_label_duplicates")}
    assert clean["source_row"].tolist() == [2, 5, 6, 7]


def test_a_conflict_in_case_or_spacing_is_found_in_a_compact_csv_column_and_its_twin_named(tmp_path):
    """The same rule on the compact (Arrow) text column the loader makes of a CSV file, folded and hashed a slice at
    a time, with each quarantined row's detail naming the line of its twin and that they differ in case or spacing."""
    rows = clean_rows(30) + CASE_AND_SPACING
    data = write_csv(tmp_path / "all.csv", rows)
    config = run_config("classification", "data.max_bad_fraction=0.5", path=str(data))
    result = run_validate(config, tmp_path / "run")
    conflicts = result.quarantine[result.quarantine["rule"] == "no_conflicting_label_duplicates"]
    assert sorted(conflicts["source_line"].astype(int)) == [32, 34, 35]  # the header is line 1
    first = conflicts[conflicts["source_line"] == 32]["detail"].iloc[0]
    assert first.startswith("the same text as all.csv line 34 (case and spacing aside), labelled 'neg' there and "
                            "'pos' here"), first
    kept = pd.concat(result.frames.values())["text"].tolist()
    assert "Great fun" in kept and "great  FUN" in kept and not any("plot" in t for t in kept)


def test_two_different_texts_that_share_a_group_hash_are_no_conflict(monkeypatch):
    """The folded texts are grouped by a 64-bit hash; a collision between two different texts must flag nothing.
    Fault injection: every row in one hash group."""
    import numpy as np

    from tuneline.schemas import common

    monkeypatch.setattr(common, "near_twin_groups", lambda keys: np.zeros(len(keys), dtype=np.int64))
    clean, quarantine = check([("good movie", "pos"), ("bad film", "neg"), ("Bad  film", "pos")])
    assert rejected(quarantine) == {(2, "no_conflicting_label_duplicates"), (3, "no_conflicting_label_duplicates")}
    assert clean["source_row"].tolist() == [1]
