"""Every input record accounted for, and every input mistake a one-line error (issue 10), on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests_support import run_config, store_client, write_rows
from tuneline.cli import main
from tuneline.config import ConfigError, load_config
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import DataValidationError, validate_data


def validate(config, run_dir: Path):
    return validate_data.fn(load_data.fn(config), config, run_dir)


def test_labels_written_three_ways_are_one_label(tmp_path):
    spellings = ["1", "1.0", " 1"]
    rows = [(f"good text {i}", spellings[i % 3]) for i in range(30)] + [(f"bad text {i}", "0") for i in range(30)]
    result = validate(run_config("classification", path=write_rows(tmp_path / "d.csv", rows)), tmp_path / "run")
    assert result.labels == ["0", "1"]
    assert set(result.frames["all"]["label"]) == {"0", "1"} and result.rejected_records == 0


def test_numeric_label_column_with_missing_values_quarantines_the_missing_rows(tmp_path):
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(40)],
                          "label": [float(i % 2) if i % 10 else None for i in range(40)]})
    frame.to_parquet(tmp_path / "d.parquet")
    result = validate(run_config("classification", "data.max_bad_fraction=0.2", path=tmp_path / "d.parquet"),
                      tmp_path / "run")
    assert result.labels == ["0", "1"]
    assert sorted(result.quarantine["source_row"]) == [1, 11, 21, 31]
    assert set(result.quarantine["rule"]) == {"not_nullable"}


def test_the_quarantine_names_the_files_columns_not_the_frames_own(tmp_path):
    """A file of ``review``/``stars`` columns got quarantine rows naming ``text`` and ``label``, columns it lacks."""
    frame = pd.DataFrame({"review": [f"review number {i}" for i in range(40)] + [None, "no stars"],
                          "stars": ["1", "5"] * 20 + ["5", None]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    result = validate(run_config("classification", "data.max_bad_fraction=0.2", path=tmp_path / "d.csv",
                                 text_column="review", label_column="stars"), tmp_path / "run")
    written = pd.read_csv(result.quarantine_path)
    assert sorted(zip(written["source_row"], written["column"])) == [(41, "review"), (42, "stars")]


def test_a_text_that_is_no_string_says_what_it_is(tmp_path):
    """``{"text": 12345}`` was quarantined as text_is_non_empty_string with no detail: it read as "empty"."""
    lines = [{"text": f"text {i}", "label": ["a", "b"][i % 2]} for i in range(40)]
    lines += [{"text": 12345, "label": "a"}, {"text": True, "label": "b"}, {"text": {"en": "hi"}, "label": "a"}]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    result = validate(run_config("classification", "data.max_bad_fraction=0.2", path=path), tmp_path / "run")
    details = dict(zip(result.quarantine["source_row"].astype(int), result.quarantine["detail"]))
    assert details[41].startswith("the text is the number 12345, not a string: if it is a text, store it as one (in "
                                  "JSON in quotes, \"12345\"; in Parquet a string column)")
    assert details[42].startswith("the text is the boolean True") and "JSON object or list" in details[43]


def test_booleans_and_lists_in_a_single_label_column_are_rejected_by_name(tmp_path):
    lines = [{"text": f"text {i}", "label": ["a", "b"][i % 2]} for i in range(20)]
    lines += [{"text": "flag", "label": True}, {"text": "two", "label": ["a", "b"]}]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    result = validate(run_config("classification", "data.max_bad_fraction=0.2", path=path), tmp_path / "run")
    assert {(int(r), rule) for r, rule in zip(result.quarantine["source_row"], result.quarantine["rule"])} == {
        (21, "label_is_boolean"), (22, "label_is_not_a_single_value")}


def test_a_broken_quote_cannot_make_rows_vanish(tmp_path):
    rows = [(f"row number {i}", "a" if i % 2 else "b") for i in range(1000)]
    path = write_rows(tmp_path / "d.csv", rows)
    lines = path.read_text().splitlines()
    lines[100] = '"row number 99 opens a quote,a'  # never closed: a plain CSV reader swallows what follows
    path.write_text("\n".join(lines) + "\n")
    loaded = load_data.fn(run_config("classification", path=path))
    assert loaded.sources[0].records == 1000
    assert loaded.sources[0].loaded + loaded.sources[0].malformed == 1000
    assert len(loaded.frames["all"]) == 999
    assert loaded.malformed["rule"].tolist() == ["unbalanced_quote"]


def test_inferred_rare_label_is_an_error_naming_it(tmp_path):
    rows = [(f"text {i}", ["neg", "pos"][i % 2]) for i in range(40)] + [("odd one", "POSITIVE!")]
    with pytest.raises(DataValidationError, match=r"'POSITIVE!' \(1\).*data.labels"):
        validate(run_config("classification", path=write_rows(tmp_path / "d.csv", rows)), tmp_path / "run")


def test_an_inferred_label_of_copies_is_an_error_counting_its_distinct_texts(tmp_path):
    """Six rows of one text passed the rare-label check (6 >= 5), their copies were dropped as duplicates, and the
    split said the label had "no rows in the train split: give it more rows" (exploratory QA)."""
    rows = [(f"text {i}", ["neg", "pos"][i % 2]) for i in range(40)] + [("cancel my order", "cancel")] * 6
    rows += [("  cancel my order ", "cancel")]  # spacing aside, a copy too
    with pytest.raises(DataValidationError, match=r"^label\(s\) 'cancel' \(7 rows, 1 distinct text\) have fewer than "
                                                  r"data.min_examples_per_label=5 distinct texts: their other rows are "
                                                  r"copies"):
        validate(run_config("classification", path=write_rows(tmp_path / "d.csv", rows)), tmp_path / "run")
    rows += [(f"cancel order {i}", "cancel") for i in range(4)]  # five distinct texts: enough
    validated = validate(run_config("classification", path=write_rows(tmp_path / "e.csv", rows)), tmp_path / "run2")
    assert "cancel" in validated.labels


def test_multi_label_rows_read_without_task_say_to_set_the_multilabel_task(tmp_path):
    """`task:` left out reads GoEmotions-like rows with the single-label kind: the error listed '2,7' (1) ... as rare
    labels and stopped there."""
    rows = [(f"text {i}", ["2", "7", "11"][i % 3]) for i in range(60)]
    rows += [(f"both {i}", label) for i, label in enumerate(["2,7", "7,11", "2,11", "2,7,11"])]
    with pytest.raises(DataValidationError, match=r"labels such as '2,11' are several labels of one row: for "
                                                  r"multi-label data set task: multilabel_classification"):
        validate(run_config("classification", path=write_rows(tmp_path / "d.csv", rows)), tmp_path / "run")
    rows = [(f"text {i}", ["neg", "pos"][i % 2]) for i in range(40)] + [("odd one", "very, very good")]
    with pytest.raises(DataValidationError) as error:  # a comma in a rare label alone is no hint
        validate(run_config("classification", path=write_rows(tmp_path / "e.csv", rows)), tmp_path / "run2")
    assert "multilabel" not in str(error.value)


def test_one_configured_label_is_an_error_not_a_regression_head(tmp_path):
    rows = [(f"text {i}", "x") for i in range(20)]
    with pytest.raises(DataValidationError, match="at least 2"):
        validate(run_config("classification", "data.labels=[x]", path=write_rows(tmp_path / "d.csv", rows)),
                 tmp_path / "run")


def test_exact_duplicates_have_their_own_budget(tmp_path):
    rows = [(f"text {i}", ["neg", "pos"][i % 2]) for i in range(60)]
    rows += rows[:30]  # a third of the file is repeated copies: clean data, heavily duplicated
    path = write_rows(tmp_path / "d.csv", rows)
    result = validate(run_config("classification", path=path), tmp_path / "run")
    assert result.duplicate_records == 30 and len(result.frames["all"]) == 60
    with pytest.raises(DataValidationError, match=r"30 of 90 records .* are copies, more than data.max_duplicate_"
                                                  r"fraction=20.0%: 30 exact copies of an earlier record"):
        validate(run_config("classification", "data.max_duplicate_fraction=0.2", path=path), tmp_path / "run2")
    # over the broken-record budget, the copies are named apart: "quarantined 31" then "30 of 91 broke the contract"
    # read as a miscount
    broken = write_rows(tmp_path / "broken.csv", rows[:60] + [(f"text {i}", "") for i in range(60, 90)] + rows[:1])
    with pytest.raises(DataValidationError, match=r"^30 of 91 records \(33.0%\) broke the data contract \(besides 1 "
                                                  r"copy of earlier records, dropped and not counted here\)"):
        validate(run_config("classification", path=broken), tmp_path / "run3")


def test_test_rows_copied_from_train_are_copies_not_broken_records(tmp_path):
    """CoNLL-2003's validation file repeats 196 of its 3,250 sentences from train (6.0%, case and spacing folded):
    counted as broken records, over data.max_bad_fraction (5%), ``examples/conll2003.yaml`` stopped at validation.
    They are set aside and budgeted as copies, per file too: a test file that mostly repeats train still stops."""
    train = [(f"training sentence number {i}", ["neg", "pos"][i % 2]) for i in range(200)]
    fresh = [(f"a test sentence never seen {i}", ["neg", "pos"][i % 2]) for i in range(90)]
    leaked = [(text.upper(), label) for text, label in train[:10]]  # 10% of the test file, in capitals
    files = dict(train=write_rows(tmp_path / "train.csv", train), test=write_rows(tmp_path / "test.csv", fresh + leaked))
    result = validate(run_config("classification", **files), tmp_path / "run")
    assert len(result.frames["test"]) == 90 and result.duplicate_records == 10 and result.rejected_records == 10
    assert set(pd.read_csv(result.quarantine_path)["rule"]) == {"text_not_in_train"}
    files["test"] = write_rows(tmp_path / "copied.csv", fresh[:20] + [(t, l) for t, l in train[:30]])
    with pytest.raises(DataValidationError, match=r"^30 of 50 records of .*copied.csv \(60.0%\) are copies, more than "
                                                  r"data.max_duplicate_fraction=50.0%: 30 test/validation record\(s\) "
                                                  r"also in the training data"):
        validate(run_config("classification", **files), tmp_path / "run2")


def test_yaml_duplicate_keys_and_boolean_numbers_are_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  path: d.csv\ntrain:\n  epochs: 3\n  batch_size: 8\n  epochs: 1\n")
    with pytest.raises(ConfigError, match=r"'epochs' appears twice .*line 4"):
        load_config(path)
    path.write_text("data:\n  path: d.csv\ntrain:\n  epochs: yes\n")
    with pytest.raises(ConfigError, match=r"train\.epochs: expected a number, got the boolean True"):
        load_config(path)


def test_validate_prints_labels_holding_a_comma_quoted_so_they_count_right(tmp_path, capsys):
    """``labels (4): account, billing, refunds, shipping, technical`` showed 5 names for 4 labels (exploratory QA)."""
    rows = [(f"text {i}", ["billing, refunds", "account", "shipping"][i % 3]) for i in range(60)]
    write_rows(tmp_path / "d.csv", rows)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"path": "d.csv"}, "work_dir": str(tmp_path / "out")}))
    assert main(["validate", "-c", str(config)]) == 0
    assert "  labels (3): 'account', 'billing, refunds', 'shipping'\n" in capsys.readouterr().out


def test_validate_command_prints_the_accounting_and_fails_over_the_limit(tmp_path, capsys):
    rows = [(f"text {i}", ["neg", "pos"][i % 2]) for i in range(50)] + [("", "neg"), ("text 3", "pos")]
    data = write_rows(tmp_path / "d.csv", rows)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"path": "d.csv"}, "work_dir": str(tmp_path / "out")}))
    assert main(["validate", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"all        {data}: read 52, kept 50, quarantined 2" in out
    assert "no_exact_duplicates 1" in out and "splits: train" in out
    # one record of each rule, where it is and why: the counts alone sent the user into quarantine.csv
    assert f"  e.g. not_nullable: {data} line 52: the text is missing (an empty cell, or null)" in out
    assert f"  e.g. no_exact_duplicates: {data} line 53: a copy of d.csv line 5 (same text and label): the first copy is " \
           "kept" in out
    assert (tmp_path / "out" / "validate" / "quarantine.csv").is_file()
    assert "  labels (2): neg, pos\n" in out
    assert main(["validate", "-c", str(config), "--set", "data.max_bad_fraction=0.0"]) == 1
    assert "broke the data contract" in capsys.readouterr().err


def test_validate_out_that_cannot_be_written_is_the_user_s_to_fix_not_a_bug(tmp_path, capsys):
    """`--out` naming a file (or an unwritable place) said "this is not a problem with your data or config"."""
    write_rows(tmp_path / "d.csv", [(f"text {i}", ["neg", "pos"][i % 2]) for i in range(30)])
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"path": "d.csv"}, "work_dir": str(tmp_path / "out")}))
    a_file = tmp_path / "d.csv"
    assert main(["validate", "-c", str(config), "--out", str(a_file)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (f"tuneline: cannot write the quarantine into {a_file}: it is a file, not a folder; give --out a "
                    "folder you can write to")


def test_validate_command_reports_a_label_set_error_in_one_line_not_a_stale_quarantine(tmp_path, capsys):
    folder = tmp_path / "out" / "validate"
    folder.mkdir(parents=True)
    (folder / "quarantine.csv").write_text("split,source_file,source_row,rule,column,value,detail\n"
                                           "all,old.csv,1,stale_rule,text,x,from an earlier check\n")
    data = write_rows(tmp_path / "d.csv", [(f"text {i}", "neg") for i in range(30)] + [("one pos", "pos")])
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"path": "d.csv"}, "work_dir": str(tmp_path / "out")}))
    assert main(["validate", "-c", str(config)]) == 1
    captured = capsys.readouterr()
    assert f"all        {data}: read 31" in captured.out and "stale_rule" not in captured.out
    errors = [line for line in captured.err.splitlines() if line.startswith("tuneline:")]
    assert len(errors) == 1 and "pos" in errors[0] and "FileNotFoundError" not in captured.err
    # the check judged no record: the last quarantine stays, named as the previous check's (README)
    assert "stale_rule" in (folder / "quarantine.csv").read_text()
    assert f"quarantine: {folder / 'quarantine.csv'} is the previous check's" in captured.out


def test_a_data_error_is_one_line_without_traceback(tmp_path, tiny_bert):
    rows = [(f"text {i}", "neg") for i in range(10)] + [("", "pos")] * 10
    write_rows(tmp_path / "d.csv", rows)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"data": {"path": "d.csv", "labels": ["neg", "pos"]},
                                                     "model": {"base": str(tiny_bert)}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_TRACKING", "MLFLOW_REGISTRY"))}
    result = subprocess.run([sys.executable, "-m", "tuneline.cli", "train", "-c", "c.yaml"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("tuneline:")] == [
        line for line in result.stderr.splitlines() if "broke the data contract" in line]
    assert "quarantine.csv" in result.stderr


def test_label_names_mlflow_rejects_are_logged_under_safe_keys(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from tuneline.kinds import Evaluation
    from tuneline.tasks.report import report_evaluation
    from tuneline.tracking import tracked_run

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    labels = ["C++", "a,b", "why?"]
    test = pd.DataFrame({"text": ["x", "y", "z", "w"], "label": ["C++", "a,b", "why?", "C++"],
                         "source_file": "f", "source_row": [1, 2, 3, 4]})
    config = run_config("classification", path=tmp_path / "d.csv")
    with tracked_run(config) as run:
        fine = Evaluation("fine_tuned", {"accuracy": 0.75, "macro_f1": 0.7, "weighted_f1": 0.7},
                          ["C++", "a,b", "why?", "a,b"], [0.9] * 4)
        report_evaluation.fn(fine, [], test, labels, config, run.run_dir / "evaluation", run)
    metrics = MlflowClient().get_run(run.run_id).data.metrics
    assert {"test.C__.f1", "test.a_b.f1", "test.why_.f1"} <= set(metrics)
    mapping = json.loads((run.run_dir / "evaluation" / "metric_key_mapping.json").read_text())
    assert mapping == {"C++.f1": "C__.f1", "a,b.f1": "a_b.f1", "why?.f1": "why_.f1"}
    assert metrics["test.macro_f1.ci_low"] <= 0.7 <= metrics["test.macro_f1.ci_high"]


def test_label_names_that_collide_are_too_long_or_path_like_get_distinct_valid_keys(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from tuneline.kinds import Evaluation
    from tuneline.tasks.report import report_evaluation
    from tuneline.tracking import tracked_run

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    long_a, long_b = "x" * 300 + "a", "x" * 300 + "b"
    labels = ["C++ why?", "C+? why+", "http://a", "ends/", long_a, long_b]
    gold = labels + labels[:2]
    test = pd.DataFrame({"text": [f"t{i}" for i in range(len(gold))], "label": gold, "source_file": "f",
                         "source_row": range(1, len(gold) + 1)})
    predicted = ["C++ why?", "C++ why?", "http://a", "ends/", long_a, long_b, "C++ why?", "C++ why?"]
    config = run_config("classification", path=tmp_path / "d.csv")
    with tracked_run(config) as run:
        fine = Evaluation("fine_tuned", {"accuracy": 0.75, "macro_f1": 0.7, "weighted_f1": 0.7}, predicted,
                          [0.9] * len(gold))
        report_evaluation.fn(fine, [], test, labels, config, run.run_dir / "evaluation", run)
    metrics = MlflowClient().get_run(run.run_id).data.metrics
    mapping = json.loads((run.run_dir / "evaluation" / "metric_key_mapping.json").read_text())
    keys = [f"test.{mapping.get(f'{label}.f1', f'{label}.f1')}" for label in labels]
    assert len(set(keys)) == len(labels) and all(len(k) <= 250 and "/" not in k for k in keys)
    assert metrics[keys[0]] == pytest.approx(2 / 3) and metrics[keys[1]] == 0.0  # not one overwriting the other
    assert metrics[keys[4]] == 1.0 and metrics[keys[5]] == 1.0 and keys[4].endswith(".f1")


def test_a_label_that_is_a_valid_key_keeps_it_before_a_label_that_sanitises_to_it():
    """``x/y`` before ``x_y``: the first took ``x_y`` and the class really called ``x_y`` got a hashed key, so
    ``test.x_y.f1`` was another class's F1 (exploratory QA)."""
    from tuneline.tracking import safe_metric_keys

    for names in (["x/y.f1", "x_y.f1", "x:y.f1"], ["x_y.f1", "x/y.f1", "x:y.f1"]):
        keys = safe_metric_keys(names, "test.")
        assert keys["x_y.f1"] == "x_y.f1" and len(set(keys.values())) == 3, keys
        assert list(keys) == names


def test_a_very_long_text_is_truncated_in_one_row(tmp_path, tiny_bert):
    from transformers import AutoTokenizer

    from tuneline.tasks.split import DataSplits
    from tuneline.tasks.tokenize import tokenize_splits

    frame = pd.DataFrame({"text": ["good movie " * 100_000, "bad film"], "label": ["pos", "neg"],
                          "source_file": "f", "source_row": [1, 2]})
    splits = DataSplits(train=frame, validation=frame, test=frame, labels=["neg", "pos"])
    config = run_config("classification", "tokenize.max_length=16", path="/x.csv")
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    out = tokenize_splits.fn(splits, tokenizer, config, {"train": "a", "validation": "b", "test": "c"}, tmp_path)
    assert len(out.datasets["train"]) == 2 and out.truncated["train"] == 1
    assert [len(ids) for ids in out.datasets["train"]["input_ids"]] == [16, 4]


def test_a_header_in_another_case_or_with_spaces_finds_its_columns_but_an_ambiguous_one_is_an_error(tmp_path):
    rows = [(f"good text {i}", "pos") for i in range(10)] + [(f"bad text {i}", "neg") for i in range(10)]
    shouty = write_rows(tmp_path / "shouty.csv", rows, header=(" Text ", "LABEL"))
    result = validate(run_config("classification", path=shouty), tmp_path / "run")
    assert result.labels == ["neg", "pos"] and result.rejected_records == 0
    assert sorted(pd.concat(result.frames.values())["text"])[0] == "bad text 0"
    # a zero-width space in the header (a web copy, a broken export) printed as the very name configured
    hidden = write_rows(tmp_path / "hidden.csv", rows, header=("\u200btext", "label\u200b"))
    assert validate(run_config("classification", path=hidden), tmp_path / "run-hidden").rejected_records == 0
    both = write_rows(tmp_path / "both.csv", [(t, t.upper(), l) for t, l in rows], header=("text_", "Text", "TEXT"))
    with pytest.raises(Exception, match=r"has 2 columns named 'text' apart from case and spaces \('Text', 'TEXT'\), "
                                         r"and data.text_column could mean any of them: rename all but one"):
        validate(run_config("classification", "data.label_column=text_", path=both), tmp_path / "run2")


def test_validate_accounts_per_role_when_one_file_serves_two_roles(tmp_path, capsys):
    data = write_rows(tmp_path / "d.csv", [(f"text {i}", ["neg", "pos"][i % 2]) for i in range(60)])
    write_rows(tmp_path / "e.csv", [(f"other {i}", ["neg", "pos"][i % 2]) for i in range(20)])
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"train": "d.csv", "test": "d.csv", "validation": "e.csv"},
                                      "work_dir": str(tmp_path / "out")}))
    assert main(["validate", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"train      {data}: read 60, kept 60, quarantined 0 (none)" in out
    assert f"test       {data}: read 60, kept 0, quarantined 60 (text_not_in_train 60)" in out


def test_doctor_naming_an_unknown_model_and_predict_with_nothing_are_one_line_errors(tmp_path, capsys, monkeypatch):
    import io

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store_client(uri).create_registered_model("known-model")
    assert main(["doctor", "--model", "nosuch", "--tracking-uri", uri, "--work-dir", str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err
    assert "has no registered model 'nosuch' (it has: known-model)" in err and "Traceback" not in err
    assert main(["doctor", "--model", "known-model", "--tracking-uri", uri, "--work-dir", str(tmp_path / "w")]) == 0
    assert "known-model: no orphaned versions" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("\n  \n"))
    assert main(["predict", "-m", "models:/known-model@champion", "--tracking-uri", uri]) == 1
    assert capsys.readouterr().err.strip() == ("tuneline: nothing to predict: give texts as arguments, one per line "
                                               "on stdin, or --input FILE")


# --- what a new user's messy files got wrong (a probe of ~130 files): each now names its cause and fix ------------

def test_every_row_ending_in_a_stray_comma_is_named_as_the_cause_not_an_empty_label_set(tmp_path):
    """All 200 rows had one field more than the header: the error blamed the label column ("the label set [] has
    0 labels"); now it leads with the rows that could not be read, one of them, and the fix, on both readers."""
    lines = "".join(f"row {i},{['neg', 'pos'][i % 2]},\n" for i in range(200))
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + lines)
    with pytest.raises(DataValidationError) as caught:
        validate(run_config("classification", path=data), tmp_path / "run")
    message = str(caught.value)
    assert message.startswith("200 of 200 records could not be read (record_has_wrong_field_count (200); e.g. "
                              f"{data} line 2: 3 fields, header has 2; the line ends with a stray ',': remove it)")
    assert (tmp_path / "run" / "quarantine.csv").is_file()
    # a few such rows among good ones: the run goes on, each row quarantined with the same hint
    mixed = tmp_path / "m.csv"
    mixed.write_text("text,label\n" + "".join(f"fine {i},{['neg', 'pos'][i % 2]}\n" for i in range(100))
                     + "one more,pos,\n")
    result = validate(run_config("classification", path=mixed), tmp_path / "run2")
    (detail,) = result.quarantine["detail"]
    assert detail == "3 fields, header has 2; the line ends with a stray ',': remove it"


def test_pretty_printed_json_objects_are_read_one_record_each(tmp_path):
    """``json.dump(record, indent=2)`` per record: no line is an object, and the file was refused with a jq
    command; each object is a record now, named by the line it starts on."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}, indent=2) + "\n" for i in range(20)))
    loaded = load_data.fn(run_config("classification", path=data))
    frame = loaded.frames["all"]
    assert frame["text"].tolist() == [f"t{i}" for i in range(20)] and frame["label"].tolist() == list("ab" * 10)
    assert loaded.source_lines[str(data)].tolist() == list(range(1, 80, 4))  # four lines an object


def test_a_folder_or_a_txt_file_is_named_for_what_it_is(tmp_path):
    folder = tmp_path / "adir"
    folder.mkdir()
    with pytest.raises(Exception, match=f"data.path is the folder {folder}, which holds no data file tuneline can "
                                        r"read for this task \(csv, tsv, jsonl, parquet, xlsx\): it holds nothing"):
        load_data.fn(run_config("classification", path=folder))  # a folder of shards is read; this one has none
    text = tmp_path / "export.txt"
    text.write_text("good\tpos\nbad\tneg\n")
    with pytest.raises(Exception, match=r"\.txt files are read as conll unless data\.format says otherwise.*"
                                        r"data\.format: tsv\); set data\.format to one of csv, tsv"):
        load_data.fn(run_config("classification", path=text))


def test_the_contract_error_shows_one_record_of_its_top_reason_with_its_fix(tmp_path):
    """IOB1 files: the one line said only "Top reasons: valid_iob2 (60)"; the fix was in quarantine.csv alone."""
    data = tmp_path / "iob1.conll"
    data.write_text("\n".join(f"Name{i} I-PER\nworks O\nat O\nAcme{i} I-ORG\n" for i in range(60)))
    with pytest.raises(DataValidationError, match=r"Top reasons: valid_iob2 \(60\); e\.g\. .*iob1\.conll line 1: "
                                                  r"token 1 \('Name0', line 1\): I-PER follows the sentence "
                                                  r"start.*set data\.iob1_to_iob2=true"):
        validate(run_config("token_classification", path=data), tmp_path / "run")


def test_a_conll_tag_error_names_the_line_of_its_token(tmp_path):
    """Dirty-data QA (D7): "line 7: token 3 ('Leicestershire')" sent the user to the sentence's first line; in a
    CoNLL file each token has a line of its own, and the detail names it. A JSONL record's tokens share one line."""
    sentences = [f"Essex{i} B-ORG\nbeat O\nLeicestershire I-ORG\nagain O\n" for i in range(40)]
    data = tmp_path / "train.conll"
    data.write_text("-DOCSTART- O\n\n" + "\n".join(sentences))
    with pytest.raises(DataValidationError, match=r"train\.conll line 3: token 3 \('Leicestershire', line 5\): "
                                                  r"I-ORG follows O"):
        validate(run_config("token_classification", path=data), tmp_path / "run")
    records = tmp_path / "train.jsonl"
    records.write_text("".join(json.dumps({"tokens": ["Essex", "beat", f"Leics{i}"], "tags": ["B-ORG", "O", "I-ORG"]})
                               + "\n" for i in range(40)))
    with pytest.raises(DataValidationError, match=r"train\.jsonl line 1: token 3 \('Leics0'\): I-ORG follows O"):
        validate(run_config("token_classification", path=records), tmp_path / "run2")


def test_iobes_and_bilou_tags_are_named_and_read_with_bioes_to_iob2(tmp_path):
    """S-/E- tags were rejected with "set data.labels", which could not help; now the detail names the scheme and
    the setting, and the setting reads the file as IOB2."""
    sentences = [f"EU S-ORG\nrejects O\nGerman{i} S-MISC\ncall O\n" for i in range(30)]
    sentences += [f"Peter B-PER\nBlackburn{i} E-PER\nsaid O\n" for i in range(30)]
    data = tmp_path / "bioes.conll"
    data.write_text("\n".join(sentences))
    with pytest.raises(DataValidationError, match=r"tag 'S-ORG' is an IOBES/BILOU tag \(S-, E-, U- or L-\): set "
                                                  r"data\.bioes_to_iob2=true"):
        validate(run_config("token_classification", path=data), tmp_path / "run")
    result = validate(run_config("token_classification", "data.bioes_to_iob2=true", path=data), tmp_path / "run2")
    assert result.rejected_records == 0 and result.labels == ["O", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER",
                                                              "I-PER"]
    tags = {tuple(t) for t in result.frames["all"]["tags"]}
    assert ("B-ORG", "O", "B-MISC", "O") in tags and ("B-PER", "I-PER", "O") in tags


def test_ner_jsonl_with_space_joined_strings_says_lists_are_needed(tmp_path):
    data = tmp_path / "ner.jsonl"
    data.write_text("".join(json.dumps({"tokens": f"EU rejects call{i}", "tags": "B-ORG O O"}) + "\n"
                            for i in range(20)))
    with pytest.raises(DataValidationError, match=rf"the tags are strings \(like 'B-ORG O O'\), not lists \(first: "
                                                  rf"{data} record 1\); write tokens and tags as JSON lists"):
        validate(run_config("token_classification", path=data), tmp_path / "run")


def test_max_bad_fraction_holds_for_each_file_too(tmp_path):
    """20 of a 30-row test file were quarantined (labels written 0/1 instead of neg/pos), 3.2% of all 630 records:
    the run went on and the gate decided on the 10 test rows left, without a word."""
    train = [(f"train text number {i}", "pos" if i % 2 else "neg") for i in range(600)]
    test = [(f"test text number {i}", ("pos" if i % 2 else "neg") if i < 10 else str(i % 2)) for i in range(30)]
    pd.DataFrame(train, columns=["text", "label"]).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(test, columns=["text", "label"]).to_csv(tmp_path / "test.csv", index=False)
    config = run_config("classification", "data.min_examples_per_label=1", train=tmp_path / "train.csv",
                        test=tmp_path / "test.csv")
    with pytest.raises(DataValidationError) as info:
        validate(config, tmp_path / "run")
    assert str(info.value).startswith(f"20 of 30 records of {tmp_path / 'test.csv'} (66.7%) broke the data contract")
    # one broken record of the 30 (3.3%) is within the limit: the file trains without it
    test[10:] = [(text, "pos") for text, _ in test[10:]]
    test[11] = (test[11][0], "1")
    pd.DataFrame(test, columns=["text", "label"]).to_csv(tmp_path / "test.csv", index=False)
    assert validate(config, tmp_path / "run2").frames["test"].shape[0] == 29


@pytest.mark.parametrize("kind, suffix", [("classification", "csv"), ("classification", "jsonl"),
                                          ("pair_classification", "jsonl"), ("multilabel_classification", "csv")])
def test_a_text_of_only_invisible_characters_is_quarantined(tmp_path, kind, suffix):
    """A zero-width space (or a byte-order mark, a soft hyphen) is not blank, so validation kept it: the model learnt a
    label for no text, and the registered model refuses such a text, so scoring the test rows through it failed."""
    invisible = ["\u200b", "\ufeff\u200d", "\u00ad \u2060"]
    rows = [{"text": f"some words {i}", "text_pair": f"other words {i}", "label": "ab"[i % 2]} for i in range(40)]
    for n, text in enumerate(invisible):
        rows.insert(10 * n + 5, {"text": text, "text_pair": "fine", "label": "a"})
    columns = {"classification": ["text", "label"], "pair_classification": ["text", "text_pair", "label"],
               "multilabel_classification": ["text", "label"]}[kind]
    path = tmp_path / f"d.{suffix}"
    frame = pd.DataFrame(rows)[columns]
    if suffix == "csv":
        frame.to_csv(path, index=False)
    else:
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in frame.to_dict("records")),
                        encoding="utf-8")
    extra = {"text_column": "text", "label_column": "label"} if kind == "multilabel_classification" else {}
    result = validate(run_config(kind, "data.max_bad_fraction=0.2", "gate.primary_metric=macro_f1", path=path, **extra),
                      tmp_path / "run")
    quarantined = result.quarantine[result.quarantine["column"] == "text"]
    assert sorted(quarantined["source_row"].astype(int)) == [6, 16, 26]
    assert set(quarantined["rule"]) == {"text_is_non_empty_string"}
    kept = result.frames["all"]["text"].tolist()
    assert len(kept) == 40 and not any(text in kept for text in invisible)
    if kind == "classification":
        assert all(detail.startswith("the text has only invisible characters") for detail in quarantined["detail"])


def test_a_jsonl_record_naming_its_label_twice_in_two_spellings_is_set_aside(tmp_path):
    """Keys are read whatever their case, so ``"label": "neg", "Label": "pos"`` names the label twice: the configured
    spelling alone was read and the other value dropped without a word. A record whose spellings disagree is
    ``record_has_duplicate_key`` (as a key written twice is); the same value twice, or another key, is no conflict."""
    rows = [json.dumps({"text": f"normal {i}", "label": ["neg", "pos"][i % 2]}) for i in range(12)]
    rows += ['{"text": "conflict A", "label": "neg", "Label": "pos"}',
             '{"Label": "pos", "text": "conflict B", "label": "neg"}',
             '{"text": "conflict C", "Text ": "other text", "label": "neg"}',
             '{"text": "agreeing", "Label": "neg", "label": "neg", "ID": 1, "id": 2}']
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(rows) + "\n")
    loaded = load_data.fn(run_config("classification", path=data))
    assert loaded.frames["all"]["text"].tolist()[-1] == "agreeing" and len(loaded.frames["all"]) == 13
    bad = loaded.malformed
    assert bad[["source_line", "rule"]].values.tolist() == [[13, "record_has_duplicate_key"],
                                                            [14, "record_has_duplicate_key"],
                                                            [15, "record_has_duplicate_key"]]
    assert bad["detail"].iloc[0] == ("key 'label' is written twice in one object, also as 'Label', with other values "
                                     "('neg', 'pos'); keys are read whatever their case or spaces, so a record has one "
                                     "value per key: keep one")
    assert "key 'text' is written twice in one object, also as 'Text '" in bad["detail"].iloc[2]


def test_every_copy_in_the_quarantine_names_its_twin_and_what_to_do(tmp_path):
    """The copy rules had no detail: no twin, no label, and ``text_not_in_train`` read as the opposite of the problem
    (exploratory QA). Each now says what happened, names the other record's file and line, and what to do."""
    train = [(f"train text {i}", ["neg", "pos"][i % 2]) for i in range(40)]
    train += [("train text 2", "neg"), ("train text 5", "neg")]  # line 42: a copy of line 4; line 43: another label
    test = [(f"test text {i}", ["neg", "pos"][i % 2]) for i in range(20)] + [("Train  TEXT 8", "neg")]
    config = run_config("classification", "data.max_bad_fraction=0.5", "data.max_duplicate_fraction=0.5",
                        train=write_rows(tmp_path / "train.csv", train), test=write_rows(tmp_path / "test.csv", test))
    quarantine = validate(config, tmp_path / "run").quarantine
    said = {(rule, int(line)): detail for rule, line, detail in
            zip(quarantine["rule"], quarantine["source_line"], quarantine["detail"])}
    assert said[("no_exact_duplicates", 42)].startswith("a copy of train.csv line 4 (same text and label)")
    assert said[("no_conflicting_label_duplicates", 43)].startswith(
        "the same text as train.csv line 7, labelled 'pos' there and 'neg' here: every copy is set aside")
    assert said[("no_conflicting_label_duplicates", 7)].startswith(
        "the same text as train.csv line 43, labelled 'neg' there and 'pos' here")
    assert said[("text_not_in_train", 22)].startswith(
        "this test record is also in the training data (train.csv line 10) (case and spacing aside)")


def test_copies_of_sentence_pairs_and_ner_sentences_name_their_twins(tmp_path):
    pairs = [{"text": f"question {i}", "text_pair": f"answer {i}", "label": str(i % 2)} for i in range(30)]
    pairs.append(dict(pairs[3]))
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    config = run_config("pair_classification", "data.max_bad_fraction=0.5", path=path)
    quarantine = validate(config, tmp_path / "run").quarantine
    [detail] = quarantine.loc[quarantine["rule"] == "no_exact_duplicates", "detail"]
    assert detail.startswith("a copy of pairs.jsonl line 4 (same text and label)")
    train, test = tmp_path / "train.conll", tmp_path / "test.conll"
    train.write_text("".join(f"word{i} O\nCity{i} B-LOC\n\n" for i in range(30)))
    test.write_text("".join(f"other{i} O\nTown{i} B-LOC\n\n" for i in range(10)) + "word3 O\nCity3 B-LOC\n")
    quarantine = validate(run_config("token_classification", "data.max_duplicate_fraction=0.5", train=train,
                                     test=test), tmp_path / "run-ner").quarantine
    [(line, detail)] = quarantine.loc[quarantine["rule"] == "sentence_not_in_train", ["source_line", "detail"]].values
    assert line == 31 and detail.startswith("this test record is also in the training data (train.conll line 10)")


def test_validate_lists_a_label_set_of_28_whole(tmp_path, capsys):
    """GoEmotions' 28 labels were cut at 20 with '...': the whole set was never shown (exploratory QA)."""
    names = [f"emotion{i:02d}" for i in range(28)]
    rows = [(f"text {i}", names[i % 28]) for i in range(28 * 6)]
    write_rows(tmp_path / "d.csv", rows)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": {"path": "d.csv"}, "work_dir": str(tmp_path / "out")}))
    assert main(["validate", "-c", str(config)]) == 0
    assert f"  labels (28): {', '.join(names)}\n" in capsys.readouterr().out


def test_files_joined_with_their_headers_are_not_over_the_bad_fraction(tmp_path):
    """Dirty-data QA (D9): each repeated header of shards joined with ``cat`` counted as a broken record, so 40
    shards of 10 rows stopped the run (39 of 439 records, 8.9% > 5%) though no row was bad. A repeated header is no
    record: it stays in the quarantine, to be seen, but is neither broken nor counted."""
    shards = ["text,label\n" + "".join(f"shard {s} review {i} {'fine' if i % 2 else 'poor'},{i % 2}\n"
                                       for i in range(10)) for s in range(40)]
    data = tmp_path / "joined.csv"
    data.write_text("".join(shards))
    result = validate(run_config("classification", path=data), tmp_path / "run")
    assert sum(len(frame) for frame in result.frames.values()) == 400
    quarantine = pd.read_csv(result.quarantine_path)
    assert quarantine["rule"].tolist() == ["repeated_header"] * 39
    broken = tmp_path / "broken.csv"  # a real bad record still counts, over the records alone
    broken.write_text("".join(shards[:2]) + "".join(f"row {i} with,too,many fields\n" for i in range(2)))
    with pytest.raises(DataValidationError, match=r"2 of 22 records \(9\.1%\) broke the data contract"):
        validate(run_config("classification", path=broken), tmp_path / "run2")
