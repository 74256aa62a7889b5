"""Defects a QA pass over dirty input files found (2026-12-05), each as a user meets it through the CLI."""

from __future__ import annotations

from pathlib import Path

from test_cli_qa_s43 import one_line, tuneline, write_validate_project


def test_a_label_set_error_keeps_the_last_quarantine_and_names_the_first_rows_of_the_labels(tmp_path: Path):
    """A label-set error stops the check before any record is judged: it deleted the last quarantine.csv and wrote
    none, and named no file or line, so a stray label among hundreds of rows was found by grepping."""
    config = write_validate_project(tmp_path)
    assert tuneline("validate", "-c", "c.yaml", cwd=tmp_path).returncode == 0
    quarantine = tmp_path / "out" / "validate" / "quarantine.csv"
    kept = quarantine.read_text()

    rows = [f"message number {i},{('neg', 'pos')[i % 2]}" for i in range(40)]
    rows[6], rows[17], rows[30] = "message six,NA", "message seventeen,NA", "message thirty,neutral"
    (tmp_path / "labels.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    config.write_text(config.read_text().replace("  labels: [neg, pos]\n", ""))
    done = tuneline("validate", "-c", "c.yaml", "--set", "data.path=labels.csv", cwd=tmp_path)
    assert done.returncode == 1
    line = one_line(done)
    assert line.startswith("tuneline: label(s) 'NA' (2 rows) in the training data are how R"), line
    assert line.endswith(f"(first rows: 'NA' at {tmp_path / 'labels.csv'} line 8, line 19)"), line
    assert quarantine.read_text() == kept, "the last check's quarantine was replaced by a check that judged nothing"
    assert "is the previous check's" in done.stdout

    (tmp_path / "labels.csv").write_text((tmp_path / "labels.csv").read_text().replace(",NA\n", ",neg\n"))
    done = tuneline("validate", "-c", "c.yaml", "--set", "data.path=labels.csv", cwd=tmp_path)
    line = one_line(done)
    assert "'neutral' (1) occur fewer than data.min_examples_per_label=5" in line, line
    assert line.endswith(f"(first rows: 'neutral' at {tmp_path / 'labels.csv'} line 32)"), line
    assert sorted(p.name for p in quarantine.parent.iterdir()) == ["quarantine.csv"]
