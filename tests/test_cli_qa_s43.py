"""Command-line defects found by exploratory QA (session 43): a config overwritten without a word, a quarantine
deleted by a check that never read its input, messages that named argparse's internals or the wrong thing, and
printed commands that did not run when pasted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from tests_support import store_client


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


# --- 3. retrain without retrain.landing; doctor with a work folder that is not there ---------------------------------

def test_retrain_without_a_landing_folder_says_to_set_it_before_starting_anything(tmp_path, tiny_bert):
    import pandas as pd
    import yaml

    from tuneline.config import load_config
    from tuneline.dataset_store import DatasetStore
    from tuneline.ledger import ledger_url_for
    from tuneline.runtime import resolve_tracking_uri
    from tuneline.tasks.intake import dataset_folder

    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "data": {"path": "base.csv"}, "model": {"base": str(tiny_bert)}, "work_dir": "out",
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}}))
    config = load_config(tmp_path / "c.yaml")
    url = ledger_url_for(config.ledger.url, resolve_tracking_uri(config.tracking.tracking_uri))
    base = pd.DataFrame({"text": [f"base {i}" for i in range(10)], "label": ["a", "b"] * 5,
                         "split": ["train"] * 8 + ["test"] * 2})
    with DatasetStore(url, config.registered_model_name, dataset_folder(config)) as store:  # as a first run commits it
        store.commit(None, [store.write_part(base)], ["a", "b"], "run-1", "base data")

    done = tuneline("retrain", "-c", "c.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert one_line(done) == (
        "tuneline: retrain.landing is not set, so no new batch can land and this run has nothing to do: set it to "
        "the folder where labeled batches land (in the config, or --set retrain.landing=/path/to/landing), or "
        "retrain on the current data with --set retrain.when_no_new_data=retrain")
    assert done.stdout == "" and not (tmp_path / "mlflow.db").exists()  # no run was started


def test_doctor_names_a_work_folder_that_does_not_exist(tmp_path):

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store_client(uri).create_registered_model("m")
    done = tuneline("doctor", "--tracking-uri", uri, "--work-dir", "nonexist", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == ("work folder nonexist does not exist: no checkpoints or tokenization "
                                            "cache to check there (give --work-dir the work_dir of your runs, or -c "
                                            "CONFIG)")
    assert "stale checkpoint" not in done.stdout


# --- 4. an empty config file, a UTF-16 one ---------------------------------------------------------------------------

def test_an_empty_or_comment_only_config_file_is_named_as_empty(tmp_path):
    for body in ("", "\n\n", "# my config, to be written\n#task: classification\n"):
        (tmp_path / "c.yaml").write_text(body)
        for command in (["validate", "-c", "c.yaml"], ["show-config", "-c", "c.yaml"], ["retrain", "-c", "c.yaml"]):
            done = tuneline(*command, cwd=tmp_path)
            assert done.returncode == 2
            assert one_line(done) == ("tuneline: config file c.yaml is empty (nothing but blank lines or comments); "
                                      "write the config in it (at least data.path; `tuneline show-config` prints "
                                      "every key with its default)")


def test_a_utf16_config_file_says_utf16_and_to_save_it_as_utf8(tmp_path):
    body = "task: classification\r\ndata:\r\n  path: d.csv\r\n"
    for name, encoded in (("bom.yaml", body.encode("utf-16")), ("le.yaml", body.encode("utf-16-le"))):
        (tmp_path / name).write_bytes(encoded)
        done = tuneline("validate", "-c", name, cwd=tmp_path)
        assert done.returncode == 2
        assert one_line(done) == (f"tuneline: config file {name} is saved as UTF-16 (as PowerShell's > and Notepad's "
                                  "'Unicode' write it); save it as UTF-8 (YAML files are UTF-8), e.g. in PowerShell: "
                                  f"(Get-Content '{name}') | Set-Content -Encoding utf8 '{name}'")
    (tmp_path / "ok.yaml").write_bytes(body.encode("utf-8-sig"))  # a UTF-8 mark is fine: the next error is the data's
    done = tuneline("validate", "-c", "ok.yaml", cwd=tmp_path)
    assert done.returncode != 0 and "UTF" not in done.stderr and "d.csv" in one_line(done)


# --- 5. usage errors: exit 2 before any store, server or model ------------------------------------------------------

def test_predict_into_its_own_input_is_refused_before_prefect_or_the_model(tmp_path):
    source = tmp_path / "same.csv"
    source.write_text("text\nwhere is my parcel\n")
    done = tuneline("predict", "-m", "models:/nosuch@champion", "-i", "same.csv", "-o", "./same.csv", cwd=tmp_path)
    assert done.returncode == 2
    assert one_line(done) == ("tuneline: --output same.csv is the --input file; give another output path (the "
                              "input is read while the predictions are written)")
    assert source.read_text() == "text\nwhere is my parcel\n" and done.stdout == ""


def test_promote_to_a_version_that_is_not_a_number_is_a_usage_error(tmp_path):
    done = tuneline("promote", "my model", "one", "--reason", "x", cwd=tmp_path)
    assert done.returncode == 2
    assert one_line(done) == ("tuneline: promote: VERSION 'one' is not a model version number; give the number, e.g. "
                              "tuneline promote 'my model' 3 --reason ...")
    assert not (tmp_path / "mlflow.db").exists()


# --- 6. printed commands and paths that work when pasted ---------------------------------------------------------------

def test_the_summary_browse_command_and_the_history_path_work_when_pasted(tmp_path, tiny_bert):
    import shlex

    import yaml

    folder = tmp_path / "demo run ü"
    folder.mkdir()
    rows = [(f"my invoice {w} payment", "billing") for w in ("was", "is", "card", "fee", "money")] * 6 + \
           [(f"my parcel {w} delivery", "shipping") for w in ("was", "is", "box", "late", "address")] * 6
    (folder / "d.csv").write_text("text,label\n" + "".join(f"{t} {i},{label}\n" for i, (t, label) in enumerate(rows)))
    (folder / "c.yaml").write_text(yaml.safe_dump({
        "data": {"path": "d.csv"}, "model": {"base": str(tiny_bert)}, "tokenize": {"max_length": 16},
        "train": {"max_steps": 3, "epochs": 1}, "tracking": {"registered_model": "m"}}))
    done = tuneline("train", "-c", "c.yaml", cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    (browse,) = [line for line in done.stdout.splitlines() if line.startswith("  browse ")]
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    assert shlex.split(browse.split(":", 1)[1]) == ["mlflow", "ui", "--backend-store-uri", uri]

    (folder / "tuneline-ledger.db").unlink(missing_ok=True)
    history = tuneline("history", "m", "--tracking-uri", uri, cwd=tmp_path)
    assert history.returncode == 0, history.stderr
    assert history.stdout.strip() == (f"no recorded moves of m@champion: no ledger at "
                                      f"sqlite:///{folder / 'tuneline-ledger.db'} yet")


# --- 7. argument parsing ----------------------------------------------------------------------------------------------

def test_version_prints_the_installed_distribution_s_version(tmp_path):
    from importlib.metadata import version

    done = tuneline("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == f"tuneline {version('tuneline')}\n"


def test_a_mistyped_command_gets_its_likely_meaning_and_no_internal_names(tmp_path):
    done = tuneline("trian", "-c", "c.yaml", cwd=tmp_path)
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("tuneline: error: unknown command 'trian'; did you mean train? (choose from train, demo,")
    done = tuneline("data", "lgo", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == ("tuneline data: error: unknown data command 'lgo'; did you mean "
                                                    "log? (choose from log, batches, drop, relabel, requeue)")
    done = tuneline("data", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == ("tuneline data: error: the following arguments are required: a "
                                                    "command (log, batches, drop, relabel, requeue)")
    assert "data_command" not in done.stderr


def test_show_config_help_has_the_overrides_example_as_the_other_commands():
    from tuneline.cli import EPILOG, build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    assert commands["show-config"].epilog == EPILOG == commands["train"].epilog
