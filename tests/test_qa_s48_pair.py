"""QA s48, pair kind (and the classification kind it shares its reading with).

1. A pair file whose every record is malformed at read (rows one field short of the header; R's ``write.table``
   with its default row names) stopped with ``KeyError: 'text'`` and a traceback: the empty keep-mask of
   :func:`normalized_labels` had dtype ``object`` and ``frame[mask]`` read it as column names. Now the pair kind
   gives classification's one-line accounting (the R cause included).
2. A Hugging Face ``Dataset.to_json`` export marks unlabeled rows (a GLUE test split's) ``"label": -1``: beside 0/1
   they became a class ``-1`` with no word. The rows are kept (-1 can be a class) and validation warns, naming the
   file, the count and both ways out; ``data.labels`` settles it and silences the warning.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests_support import run_config
from test_pair_qa import logged_lines
from tuneline.cli import main
from tuneline.kinds import KINDS
from tuneline.kinds.pair_classification import PAIR_COLUMNS, PairData
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import validate_data

PAIR_KEYS = {"text_column": "sentence1", "text_pair_column": "sentence2", "label_column": "label"}
R_CAUSE = ("the first field is a number and the header names one column less: a column of row names without a header "
           "cell, as R's write.table writes it: write with row.names = FALSE")


def validate_cli(tmp_path: Path, data: dict, *sets: str, task: str = "pair_classification") -> int:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"task": task, "data": data, "work_dir": str(tmp_path / "out")}))
    return main(["validate", "-c", str(config), "--out", str(tmp_path / "q"),
                 *[arg for s in sets for arg in ("--set", s)]])


def errors(captured) -> list[str]:
    return [line for line in captured.err.splitlines() if line.startswith("tuneline:")]


# --- 1. every record malformed ----------------------------------------------------------------------------------


def test_pair_file_with_every_row_short_reports_the_read_failures_in_one_line(tmp_path, capsys):
    data = tmp_path / "p_allbad.csv"
    data.write_text("sentence1,sentence2,label\na,b\nc,d\n")
    assert validate_cli(tmp_path, {"path": str(data), **PAIR_KEYS}) == 1
    captured = capsys.readouterr()
    assert errors(captured) == [
        f"tuneline: 2 of 2 records could not be read (record_has_wrong_field_count (2); e.g. {data} line 2: 2 "
        f"fields, header has 3); every one is in {tmp_path / 'q' / 'quarantine.csv'}. With the rest: the label set [] "
        "has 0 label(s); a classifier needs at least 2: check data.label_column or data.labels"]
    assert "KeyError" not in captured.err and "Traceback" not in captured.err
    assert f"all        {data}: read 2, kept 0, quarantined 2 (record_has_wrong_field_count 2)" in captured.out


def test_pair_r_write_table_with_row_names_says_row_names_false_as_classification_does(tmp_path, capsys):
    data = tmp_path / "r.tsv"
    rows = [f'"{i}"\t"first text {i}"\t"second text {i}"\t{i % 2}' for i in range(1, 21)]
    data.write_text('"sentence1"\t"sentence2"\t"label"\n' + "\n".join(rows) + "\n")
    assert validate_cli(tmp_path, {"path": str(data), **PAIR_KEYS}) == 1
    (pair_line,) = errors(capsys.readouterr())
    assert pair_line.startswith(f"tuneline: 20 of 20 records could not be read (record_has_wrong_field_count (20); "
                                f"e.g. {data} line 2: 4 fields, header has 3; {R_CAUSE});")
    assert validate_cli(tmp_path, {"path": str(data), "text_column": "sentence1", "label_column": "label"},
                        task="classification") == 1
    (classification_line,) = errors(capsys.readouterr())
    assert classification_line == pair_line  # the same accounting and cause for both kinds


def test_pair_read_of_an_all_malformed_file_is_an_empty_frame_with_the_pair_columns(tmp_path):
    data = tmp_path / "p.csv"
    data.write_text("sentence1,sentence2,label\na,b\nc,d\ne,f\n")
    read = KINDS["pair_classification"].read(data, "csv", PairData(path=data, **PAIR_KEYS))
    assert list(read.frame.columns) == PAIR_COLUMNS and len(read.frame) == 0
    assert [(m["source_row"], m["rule"]) for m in read.malformed] == [
        (1, "record_has_wrong_field_count"), (2, "record_has_wrong_field_count"), (3, "record_has_wrong_field_count")]
    assert read.records_seen == 3


# --- 2. Hugging Face's -1 "no label" in a JSONL export ----------------------------------------------------------


def hf_jsonl(path: Path, pair: bool, labels: tuple[int, ...] = (0, 1, -1), n: int = 60) -> Path:
    """``Dataset.to_json`` lines: a GLUE-style pair (``sentence1``/``sentence2``) or a ``text``, ``label``, ``idx``."""
    with path.open("w") as out:
        for i in range(n):
            texts = ({"sentence1": f"the first sentence number {i}", "sentence2": f"another sentence {i} here"}
                     if pair else {"text": f"a text to classify, number {i}"})
            out.write(json.dumps({**texts, "label": labels[i % len(labels)], "idx": i}) + "\n")
    return path


def validated_notes(config, tmp_path: Path):
    validated, lines = logged_lines(lambda: validate_data.fn(load_data.fn(config), config, tmp_path / "run"))
    return validated, [line for line in lines if "label -1" in line]


def hf_note(path: Path, rows: int, column: str = "label") -> str:
    return (f"{rows} row(s) of {path} have the label -1 beside the class ids 0, 1: Hugging Face datasets marks a row "
            "with no label -1 (a GLUE test split's), and here -1 is learned as a class of its own. To drop those rows, "
            f"filter them out of the file (e.g. dataset.filter(lambda row: row[{column!r}] != -1) before to_json) or "
            "set data.labels: [0, 1] (they are then quarantined, counted against data.max_bad_fraction); if -1 is a "
            "class, set data.labels: [-1, 0, 1]")


def test_pair_hf_export_with_minus_one_rows_warns_and_keeps_them(tmp_path):
    data = hf_jsonl(tmp_path / "glue.jsonl", pair=True)
    config = run_config("pair_classification", "gate.primary_metric=macro_f1", path=str(data), **PAIR_KEYS)
    validated, notes = validated_notes(config, tmp_path)
    assert notes == [hf_note(data, 20)]
    assert validated.labels == ["-1", "0", "1"] and validated.quarantine.empty  # warned, never silently dropped


def test_classification_hf_export_with_minus_one_rows_warns_too(tmp_path):
    data = hf_jsonl(tmp_path / "sst.jsonl", pair=False)
    validated, notes = validated_notes(run_config("classification", path=str(data)), tmp_path)
    assert notes == [hf_note(data, 20)]
    assert validated.labels == ["-1", "0", "1"]


def test_minus_one_in_data_labels_is_a_class_and_no_warning(tmp_path):
    data = hf_jsonl(tmp_path / "sentiment.jsonl", pair=False)
    validated, notes = validated_notes(run_config("classification", path=str(data), labels=[-1, 0, 1]), tmp_path)
    assert notes == [] and validated.labels == ["-1", "0", "1"]


def test_minus_one_and_one_as_a_binary_label_set_is_no_hugging_face_mark(tmp_path):
    data = hf_jsonl(tmp_path / "pm.jsonl", pair=False, labels=(-1, 1))
    validated, notes = validated_notes(run_config("classification", path=str(data)), tmp_path)
    assert notes == [] and validated.labels == ["-1", "1"]
