"""Labels written several ways are one class (tuneline.kinds.label_spellings), in a training run and in a landed batch."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone

import pandas as pd

from tests_support import run_config, write_rows
from tuneline.kinds.label_spellings import apply_spelling_map, spelling_key, spelling_map
from tuneline.ledger import Batch
from tuneline.tasks.drift import admit_labels
from tuneline.tasks.intake import _read_batch, _validate_batch, batch_labels
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import validate_data


def spelled(n: int, spellings: list[str], word: str) -> list[tuple[str, str]]:
    return [(f"{word} review number {i}", spellings[i % len(spellings)]) for i in range(n)]


def test_spelling_key_ignores_case_unicode_form_and_separators():
    assert spelling_key("Very_Good ") == spelling_key("very good") == spelling_key("VERY-GOOD") == "very good"
    assert spelling_key("Positive\u00a0") == spelling_key("ｐｏｓｉｔｉｖｅ") == "positive"  # no-break space, full width
    assert spelling_key("positive") != spelling_key("negative") and spelling_key("1") != spelling_key("11")
    assert len({spelling_key(label) for label in ("-1", "1", "0", "_1")}) == 4  # signs are not separators
    frames = {"train": pd.DataFrame({"label": ["-1", "0", "1", "1", "-1"]})}
    assert spelling_map(frames, "label", None, ["train"]) == {}
    # a whole number with a zero fraction (an export's float column) is the number; other fractions are not
    assert spelling_key("1.0") == spelling_key("1") == "1" and spelling_key("-1.00") == "-1"
    assert spelling_key("1.5") != spelling_key("1") and spelling_key("10") != spelling_key("1.0")
    exported = {"train": pd.DataFrame({"label": ["1", "0", "1", "0"]}), "test": pd.DataFrame({"label": ["1.0", "0.0"]})}
    assert spelling_map(exported, "label", None, ["train"]) == {"1.0": "1", "0.0": "0"}


def test_a_whole_number_written_any_way_is_one_label():
    assert {spelling_key(label) for label in ("01", "+1", "1.0", "+01.00", "1", "１")} == {"1"}
    assert {spelling_key(label) for label in ("-0", "00", "0.0", "0")} == {"0"}
    assert spelling_key("-1") == spelling_key("-01.0") == "-1" and spelling_key("+1") != spelling_key("-1")
    assert [spelling_key(code) for code in ("A01", "1e3", "0x1", "1.5", "_1")] == ["a01", "1e3", "0x1", "1.5", "_1"]
    hand_typed = {"train": pd.DataFrame({"label": ["1", "0", "1", "0", "01", "+1", "-0", "00"]})}
    assert spelling_map(hand_typed, "label", None, ["train"]) == {"01": "1", "+1": "1", "-0": "0", "00": "0"}



def test_a_decimal_written_with_trailing_or_leading_zeros_is_one_label():
    """``01`` and ``1`` were one class but ``1.5`` and ``1.50`` two (a spreadsheet's fixed decimals)."""
    assert {spelling_key(label) for label in ("1.5", "1.50", "+1.5", "01.500", "１.５")} == {"1.5"}
    assert spelling_key(".5") == spelling_key("0.50") == "0.5" and spelling_key("-1.50") == "-1.5"
    assert spelling_key("1.5.0") == "1.5.0" and spelling_key("1.05") == "1.05"
    ratings = {"train": pd.DataFrame({"label": ["1.5", "2.5", "1.5", "2.50", "1.50", "2.5"]})}
    assert spelling_map(ratings, "label", None, ["train"]) == {"2.50": "2.5", "1.50": "1.5"}


def test_the_spelling_written_most_in_train_wins_and_a_configured_one_overrides_it():
    train = pd.DataFrame({"label": ["positive"] * 5 + ["Positive"] * 3 + ["NEG"] * 4})
    test = pd.DataFrame({"label": ["POSITIVE", "positive", "neg", "other"]})
    frames = {"train": train, "test": test}
    assert spelling_map(frames, "label", None, ["train"]) == {"Positive": "positive", "POSITIVE": "positive",
                                                              "neg": "NEG"}
    assert spelling_map(frames, "label", ["Positive", "neg"], ["train"]) == {
        "positive": "Positive", "POSITIVE": "Positive", "NEG": "neg"}
    assert spelling_map({"train": pd.DataFrame({"label": ["a", "b"]})}, "label", None, ["train"]) == {}


def test_the_map_applies_to_categorical_object_and_list_columns():
    mapping = {"POS": "pos", "Neg": "neg"}
    categorical = pd.Series(pd.Categorical(["POS", "pos", None, "Neg", "neg"]))
    folded = apply_spelling_map(categorical, mapping)
    assert isinstance(folded.dtype, pd.CategoricalDtype) and list(folded.cat.categories) == ["neg", "pos"]
    assert folded.tolist()[:2] == ["pos", "pos"] and pd.isna(folded[2]) and folded.tolist()[3:] == ["neg", "neg"]
    assert apply_spelling_map(pd.Series(["POS", None, 3]), mapping).tolist() == ["pos", None, 3]
    assert apply_spelling_map(pd.Series([["POS", "pos", "Neg"], []]), mapping).tolist() == [["pos", "neg"], []]


def test_a_training_file_with_labels_in_several_cases_has_two_classes_and_says_so(tmp_path, caplog):
    rows = spelled(40, ["Positive", "positive", " POSITIVE ", "Positive"], "great") + \
        spelled(40, ["negative", "Negative", "NEGATIVE", "negative"], "awful")
    path = write_rows(tmp_path / "reviews.csv", rows)
    config = run_config("classification", path=path)
    with caplog.at_level(logging.WARNING):
        result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert result.labels == ["Positive", "negative"] and result.rejected_records == 0
    counts = pd.concat(result.frames.values())["label"].value_counts().to_dict()
    assert counts == {"Positive": 40, "negative": 40}
    assert "'POSITIVE' (10 rows), 'positive' (10 rows) → 'Positive'" in caplog.text
    apart = run_config("classification", "data.merge_label_spellings=false", "data.min_examples_per_label=1",
                       path=path)
    assert validate_data.fn(load_data.fn(apart), apart, tmp_path / "run2").labels == [
        "NEGATIVE", "Negative", "POSITIVE", "Positive", "negative", "positive"]


def test_configured_labels_take_the_data_in_any_case(tmp_path):
    rows = spelled(30, ["POSITIVE", "Positive"], "great") + spelled(30, ["Negative"], "awful")
    config = run_config("classification", path=write_rows(tmp_path / "r.csv", rows),
                        labels=["positive", "negative"])
    result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert result.labels == ["positive", "negative"] and result.rejected_records == 0
    assert set(pd.concat(result.frames.values())["label"]) == {"positive", "negative"}


def test_a_landed_batch_writing_a_known_label_another_way_is_not_an_unseen_label(tmp_path, caplog):
    path = write_rows(tmp_path / "landing" / "batch-1.csv",
                      spelled(20, ["POSITIVE"], "great") + spelled(10, ["negative"], "awful"))
    now = datetime.now(timezone.utc)
    batch = Batch(id=1, model="m", content_hash=hashlib.sha256(path.read_bytes()).hexdigest(), path=str(path),
                  kind="file", format="csv",
                  size_bytes=path.stat().st_size, files=1, state="claimed", duplicate_of=None, landed_at=now,
                  claimed_by="run", claimed_at=now, lease_expires_at=None, rows_accepted=None, rows_rejected=None,
                  quarantine_path=None, reasons=(), used_by_run=None, model_version=None, used_at=None,
                  updated_at=now)
    config = run_config("classification", f"work_dir={tmp_path / 'work'}", path=path)
    assert batch_labels(batch, config) == {"POSITIVE": 20, "negative": 10}  # as landed, nothing known to fold to
    with caplog.at_level(logging.WARNING):
        decision = admit_labels.fn([batch], ["Positive", "negative"], config, ledger=None, run=None)
    assert decision.labels == ["Positive", "negative"] and not decision.refused and not decision.added
    # the fold is said once per retraining run: by validation, not also by this look at the labels before it
    assert "written several ways" not in caplog.text
    checked = config.model_copy(deep=True)  # as validate-batches checks a batch: against the model's label set
    checked.data.labels = ["Positive", "negative"]
    # the run reads the batch once: the label check keeps what it read, unfolded, for validation to take
    kept = decision.read[batch.content_hash]
    assert sorted(kept.frames["all"]["label"].unique()) == ["POSITIVE", "negative"]
    with caplog.at_level(logging.WARNING):
        validated = _validate_batch(kept, ["Positive", "negative"], checked, tmp_path / "q", batch.name)
    # said once, naming the batch whose labels were folded
    assert caplog.text.count("labels written several ways are one class each in batch batch-1.csv: "
                             "'POSITIVE' (20 rows) → 'Positive'") == 1
    fresh = _validate_batch(_read_batch(batch, checked), ["Positive", "negative"], checked, tmp_path / "fresh",
                            batch.name)
    pd.testing.assert_frame_equal(validated.frames["all"], fresh.frames["all"])
    assert validated.frames["all"]["label"].value_counts().to_dict() == {"Positive": 20, "negative": 10}


def test_a_tie_between_spellings_goes_to_the_one_with_the_fewest_capitals():
    frames = {"train": pd.DataFrame({"label": ["EMBARRASSMENT", "embarrassment", "Joy", "JOY", "joy", "joy", "JOY", "JOY"]})}
    assert spelling_map(frames, "label", None, ["train"]) == {"EMBARRASSMENT": "embarrassment", "Joy": "JOY",
                                                               "joy": "JOY"}  # JOY is written most: no tie


def test_iob_tags_in_any_case_or_with_an_underscore_are_read_as_iob2():
    from tuneline.kinds.label_spellings import tag_spelling_map

    train = pd.DataFrame({"tags": [["b-per", "i-per", "o"], ["B_PER", "O", "B-LOC"], ["B-PER", "O", "b-loc"],
                                   ["E-PER", "B-PER"]]})
    mapping = tag_spelling_map({"train": train}, "tags", None, ["train"])
    # the type keeps its most written spelling (PER: 3 of 4; LOC: a tie, the first in order); BIOES' E- is no IOB2 tag
    assert mapping == {"b-per": "B-PER", "i-per": "I-PER", "o": "O", "B_PER": "B-PER", "b-loc": "B-LOC"}
    assert tag_spelling_map({"train": train}, "tags", ["O", "B-per", "I-per", "B-loc", "I-loc"], ["train"]) == {
        "b-per": "B-per", "i-per": "I-per", "o": "O", "B_PER": "B-per", "B-PER": "B-per", "B-LOC": "B-loc",
        "b-loc": "B-loc"}
    folded = apply_spelling_map(train["tags"], mapping, sequences=True)
    assert folded.tolist() == [["B-PER", "I-PER", "O"], ["B-PER", "O", "B-LOC"], ["B-PER", "O", "B-LOC"],
                               ["E-PER", "B-PER"]]  # one tag per token: nothing merged away
    # a colon or a dot between prefix and type, or the prefix after the type (exploratory QA: called "the IO scheme")
    other = pd.DataFrame({"tags": [["PER-B", "PER-I", "O", "B:LOC", "loc.i"], ["B-PER", "O", "B.LOC"]]})
    assert tag_spelling_map({"train": other}, "tags", None, ["train"]) == {
        "PER-B": "B-PER", "PER-I": "I-PER", "B:LOC": "B-LOC", "loc.i": "I-LOC", "B.LOC": "B-LOC"}


def test_a_conll_file_with_lower_case_tags_trains_iob2_labels(tmp_path):
    path = tmp_path / "lower.conll"
    path.write_text("".join(f"eu b-org\nrejects o\ngerman b-misc\ncall{i} o\n\npeter b-per\nblackburn i-per\n"
                            f"said{i} o\n\n" for i in range(30)), encoding="utf-8")
    config = run_config("token_classification", path=path)
    result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert result.labels == ["O", "B-misc", "I-misc", "B-org", "I-org", "B-per", "I-per"]
    assert result.rejected_records == 0
    sentences = pd.concat(result.frames.values())
    assert all(len(tokens) == len(tags) for tokens, tags in zip(sentences["tokens"], sentences["tags"]))
    assert ["B-per", "I-per", "O"] in sentences["tags"].tolist()


def test_label_growth_needs_enough_rows_and_a_near_miss_is_named(tmp_path):
    """With drift.allow_label_growth, one mistyped row ('shiping') became a class of its own; the refusal without
    growth did not point at the known label it was meant to be."""
    from tuneline.tasks.drift import check_label_set, did_you_mean

    known = ["billing", "shipping", "technical"]
    config = run_config("classification", "drift.allow_label_growth=true", f"work_dir={tmp_path}", path="/x.csv")
    decision = check_label_set(known, {"h1": {"billing": 30, "shiping": 1, "refund": 3},
                                       "h2": {"refund": 4, "shipping": 10}}, config)
    assert decision.added == ["refund"] and decision.labels == [*known, "refund"]  # 7 rows over the two batches
    assert decision.too_rare == {"shiping": 1}  # under data.min_examples_per_label (5): not a class
    assert did_you_mean(["shiping", "refund"], known) == " (did you mean 'shipping' for 'shiping'?)"
    assert did_you_mean(["Billing!"], known) == " (did you mean 'billing' for 'Billing!'?)"
    assert did_you_mean(["refund"], known) == ""
    strict = run_config("classification", f"work_dir={tmp_path}", path="/x.csv")
    assert check_label_set(known, {"h1": {"shiping": 1}}, strict).refused == {"h1": ["shiping"]}


def test_ner_label_growth_adds_both_tags_of_a_new_type_and_names_types_not_tags(tmp_path):
    """The loop grows and reports NER labels by entity type, through the kind (``label_class``), not by a check of
    the task's name outside the kind's module."""
    from tuneline.drift import unseen_labels
    from tuneline.kinds import kind_of
    from tuneline.tasks.drift import _classes, check_label_set

    known = ["O", "B-PER", "I-PER"]
    config = run_config("token_classification", "drift.allow_label_growth=true", f"work_dir={tmp_path}",
                        path="/x.conll")
    decision = check_label_set(known, {"h1": {"O": 90, "B-PRODUCT": 6, "PER": 0}}, config)
    assert decision.added == ["B-PRODUCT", "I-PRODUCT"] and decision.labels == [*known, "B-PRODUCT", "I-PRODUCT"]
    kind = kind_of(config)
    assert _classes({"O": 9, "B-ORG": 2, "I-ORG": 3, "B-PER": 1}, kind) == {"ORG": 5, "PER": 1}
    check = unseen_labels(sorted(_classes(known, kind)), _classes({"O": 9, "B-ORG": 2, "I-ORG": 3}, kind),
                          allow_growth=False, what=kind.label_noun)
    assert check.status == "stop" and "1 entity type never seen in the reference data: 'ORG' (5 in the batch)" \
        in check.sentence
    flat = run_config("classification", "drift.allow_label_growth=true", f"work_dir={tmp_path}", path="/x.csv")
    assert check_label_set(["a", "b"], {"h1": {"B-c": 7}}, flat).labels == ["a", "b", "B-c"]  # a label, no tags


def test_invisible_characters_do_not_make_a_class_of_their_own(tmp_path, caplog):
    """A zero-width space (a label copied from a web page) or a NUL (a broken export) printed in a label looks exactly
    like the label without it: ``pos`` and ``pos\\u200b`` were two classes. They fold into the visible spelling, which
    is kept even where the invisible one is written more often, and the log shows what was there."""
    assert spelling_key("pos\u200b") == spelling_key("\ufeffPOS") == spelling_key("pos\x00") == "pos"
    rows = (spelled(40, ["pos\u200b", "pos\u200b", "pos"], "great") + spelled(40, ["neg", "neg\x00"], "awful"))
    path = write_rows(tmp_path / "web.csv", rows)
    config = run_config("classification", path=path)
    with caplog.at_level(logging.WARNING):
        result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert result.labels == ["neg", "pos"] and result.rejected_records == 0
    assert pd.concat(result.frames.values())["label"].value_counts().to_dict() == {"pos": 40, "neg": 40}
    assert "'pos\\u200b' (27 rows) → 'pos'" in caplog.text and "'neg\\x00' (20 rows) → 'neg'" in caplog.text
    # written only with the invisible character: the class is still named without it
    only = run_config("classification", path=write_rows(tmp_path / "only.csv", spelled(30, ["pos\u200b"], "great")
                                                        + spelled(30, ["neg"], "awful")))
    assert validate_data.fn(load_data.fn(only), only, tmp_path / "run2").labels == ["neg", "pos"]


def test_invisible_characters_in_iob_tags_are_dropped():
    from tuneline.kinds.label_spellings import tag_spelling_map

    train = pd.DataFrame({"tags": [["B-PER", "I-PER", "O"], ["B-PER\u200b", "I-PER\u200b", "O\u200b"],
                                   ["\ufeffB-LOC", "O"]]})
    assert tag_spelling_map({"train": train}, "tags", None, ["train"]) == {
        "B-PER\u200b": "B-PER", "I-PER\u200b": "I-PER", "O\u200b": "O", "\ufeffB-LOC": "B-LOC"}


def test_a_zero_for_the_outside_tag_is_read_as_o(tmp_path):
    """A hand-typed or OCR'd CoNLL file writes ``0`` (zero) for ``O`` on some lines: each such token was quarantined
    with its sentence (9 of 60 sentences failed the run). No IOB scheme has a tag ``0``, so beside B-/I- tags it is
    the outside tag, logged; a configured label set that names ``0`` keeps it."""
    from tuneline.kinds.label_spellings import tag_spelling_map

    train = pd.DataFrame({"tags": [["B-PER", "0", "O"], ["B-LOC", "0"]]})
    assert tag_spelling_map({"train": train}, "tags", None, ["train"]) == {"0": "O"}
    assert tag_spelling_map({"train": train}, "tags", ["0", "B-PER", "I-PER", "B-LOC", "I-LOC"], ["train"]) == {}
    assert tag_spelling_map({"train": pd.DataFrame({"tags": [["0", "1"]]})}, "tags", None, ["train"]) == {}
    path = tmp_path / "zero.conll"
    path.write_text("".join(f"EU B-ORG\nrejects {'0' if i % 3 == 0 else 'O'}\ncall{i} O\n\n" for i in range(60)),
                    encoding="utf-8")
    config = run_config("token_classification", path=path)
    result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert result.rejected_records == 0 and result.labels == ["O", "B-ORG", "I-ORG"]
    assert all(tags == ["B-ORG", "O", "O"] for tags in pd.concat(result.frames.values())["tags"])


def test_missing_value_markers_are_refused_as_inferred_classes(tmp_path):
    """R's write.csv writes a missing label as NA, pandas as nan, Excel as #N/A: read as text each became a class
    the model learned to predict. An inferred label set refuses them in one line; data.labels can still list one."""
    import pytest

    from tuneline.errors import UserError

    rows = spelled(30, ["pos"], "great") + spelled(30, ["neg"], "awful") + spelled(7, ["NA"], "meh") + \
        spelled(6, ["#N/A"], "hmm")
    path = write_rows(tmp_path / "r-export.csv", rows)
    config = run_config("classification", path=path)
    with pytest.raises(UserError, match=r"'#N/A' \(6 rows\), 'NA' \(7 rows\) in the training data are how R, "
                                            r"pandas, Excel or SQL write a missing value") as refused:
        validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    assert "leave those label cells empty" in str(refused.value) and "\n" not in str(refused.value)
    listed = run_config("classification", "data.max_bad_fraction=0.1", path=path, labels=["pos", "neg", "NA"])
    result = validate_data.fn(load_data.fn(listed), listed, tmp_path / "run2")
    assert result.labels == ["pos", "neg", "NA"] and result.rejected_records == 6  # '#N/A' is not in the set


def test_spellings_that_print_alike_are_logged_with_escapes():
    """A composed and a decomposed ``café`` were logged as ``'café' (2 rows) → 'café'`` (exploratory QA)."""
    from tuneline.kinds.label_spellings import describe

    frames = {"train": pd.DataFrame({"label": ["caf\u00e9"] * 3 + ["cafe\u0301"] * 2 + ["Pos", "pos"]})}
    assert describe({"cafe\u0301": "caf\u00e9", "Pos": "pos"}, frames, "label") == (
        "'cafe\\u0301' (2 rows) → 'caf\\xe9'; 'Pos' (1 rows) → 'pos'")
