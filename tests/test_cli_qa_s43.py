"""Command-line defects found by exploratory QA (session 43): a config overwritten without a word, a quarantine
deleted by a check that never read its input, messages that named argparse's internals or the wrong thing, and
printed commands that did not run when pasted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def tuneline(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_TRACKING",
                                                                      "MLFLOW_REGISTRY", "TUNELINE_"))}
    return subprocess.run([sys.executable, "-m", "tuneline.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env, input=stdin)


def one_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# --- 1. demo --write-config ------------------------------------------------------------------------------------------

def test_write_config_refuses_an_existing_file_unless_forced_and_a_folder_before_writing_anything(tmp_path):
    mine = tmp_path / "loop.yaml"
    mine.write_text("task: classification  # my own config\n")
    done = tuneline("demo", "--write-config", "loop.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert one_line(done) == ("tuneline: --write-config loop.yaml exists; give another file name, or add --force to "
                              "overwrite it")
    assert mine.read_text() == "task: classification  # my own config\n"
    assert not (tmp_path / "tuneline-output").exists() and not (tmp_path / "landing").exists()

    (tmp_path / "a folder").mkdir()
    done = tuneline("demo", "--write-config", "a folder", cwd=tmp_path)
    assert done.returncode == 2
    assert one_line(done) == ("tuneline: --write-config a folder is a folder; give a file name in it, e.g. "
                              "--write-config 'a folder/demo-loop.yaml'")
    assert not (tmp_path / "tuneline-output").exists()  # the demo data was written before the failure

    done = tuneline("demo", "--write-config", "loop.yaml", "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "tuneline-demo-intents" in mine.read_text() and (tmp_path / "landing").is_dir()


def test_write_config_prints_next_commands_that_run_from_the_current_folder(tmp_path):
    done = tuneline("demo", "--write-config", "my sub/loop.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "my sub" / "loop.yaml").is_file() and (tmp_path / "my sub" / "landing").is_dir()
    assert done.stdout.splitlines()[-1] == ("next: tuneline retrain --config 'my sub/loop.yaml'   then   "
                                            "tuneline demo-batch 'my sub/landing' -n 1")
    batch = tuneline("demo-batch", "my sub/landing", "-n", "1", "--rows", "5", cwd=tmp_path)
    assert batch.returncode == 0, batch.stderr
    assert (tmp_path / "my sub" / "landing" / "tickets-batch-001.csv.done").is_file()


# --- 2. validate keeps the last quarantine until a new one is written -------------------------------------------------

def write_validate_project(folder: Path) -> Path:
    rows = "".join(f"message number {i},{('neg', 'pos')[i % 2]}\n" for i in range(40)) + ",pos\n"
    (folder / "d.csv").write_text("text,label\n" + rows)
    config = folder / "c.yaml"
    config.write_text("task: classification\ndata:\n  path: d.csv\n  labels: [neg, pos]\nwork_dir: out\n")
    return config


def test_a_validate_that_cannot_read_its_input_keeps_the_last_quarantine(tmp_path):
    write_validate_project(tmp_path)
    assert tuneline("validate", "-c", "c.yaml", cwd=tmp_path).returncode == 0
    quarantine = tmp_path / "out" / "validate" / "quarantine.csv"
    kept = quarantine.read_text()
    assert "d.csv" in kept

    done = tuneline("validate", "-c", "c.yaml", "--set", "data.path=nope.tsv", cwd=tmp_path)
    assert done.returncode == 1 and "nope.tsv" in one_line(done)
    assert quarantine.read_text() == kept
    assert sorted(p.name for p in quarantine.parent.iterdir()) == ["quarantine.csv"]

    (tmp_path / "d.csv").write_text((tmp_path / "d.csv").read_text() + "another one,\n")  # a second broken row
    assert tuneline("validate", "-c", "c.yaml", cwd=tmp_path).returncode == 0
    assert quarantine.read_text() != kept and quarantine.read_text().count("d.csv") == 2
    assert sorted(p.name for p in quarantine.parent.iterdir()) == ["quarantine.csv"]
