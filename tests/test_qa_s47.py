"""What the training QA of 2026-12-05 found, through the real commands and a real Trainer.

1. A ``work_dir`` that cannot be made (a file where a folder should be, a path under ``/proc``) failed when the run
   made its run folder: after starting the Prefect API and opening the MLflow run, with Prefect's traceback, a line
   naming a folder deep inside ``work_dir`` but not the key to change, and the MLflow run left RUNNING.
2. ``train.max_steps: 0`` (read as "no limit") was passed to the Trainer of transformers 5 as a limit of 0, which it
   ran as one optimizer step while tuneline planned and logged an epoch.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import yaml

from tests_support import run_config, tiny_splits
from tuneline.cli import main
from tuneline.config import ConfigError, ModelConfig, build_config
from tuneline.demo import demo_config_dict, write_demo_csv


@pytest.fixture
def demo_files(workdir, tiny_bert) -> Path:
    data = write_demo_csv(workdir / "tickets.csv", realistic=False)
    raw = demo_config_dict(data)
    raw.update(model={"base": str(tiny_bert)}, tokenize={"max_length": 32},
               train={"max_steps": 2, "batch_size": 16, "precision": "fp32"}, evaluate={"zero_shot_baseline": False})
    (workdir / "c.yaml").write_text(yaml.safe_dump(raw))
    return workdir


@pytest.mark.parametrize("command", ["train", "retrain", "demo"])
def test_a_work_dir_that_cannot_be_made_is_refused_in_one_line_before_any_work(demo_files, capsys, command):
    (demo_files / "a-file").write_text("not a folder")
    work_dir = demo_files / "a-file" / "out"
    argv = [command, *([] if command == "demo" else ["-c", "c.yaml"]), "--set", f"work_dir={work_dir}"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"tuneline: work_dir='{work_dir}' cannot be made: {demo_files / 'a-file'} is a file, not "
                            "a folder; set work_dir (in the config, or --set work_dir=FOLDER) to a folder you can "
                            "write\n")
    assert not (demo_files / "mlflow.db").exists()  # refused before any run was opened


def test_a_run_whose_folder_cannot_be_made_ends_failed_not_running(demo_files):
    """The flow called without the CLI's check (a deployment, a user's own code): its MLflow run is closed."""
    from tuneline.flows.train import train_flow
    from tuneline.runtime import check_work_dir

    (demo_files / "a-file").write_text("not a folder")
    config = build_config(yaml.safe_load((demo_files / "c.yaml").read_text()),
                          [f"work_dir={demo_files / 'a-file' / 'out'}"])
    with pytest.raises(ConfigError):
        check_work_dir(config.work_dir)
    with pytest.raises(NotADirectoryError):
        train_flow(config)
    mlflow.set_tracking_uri(f"sqlite:///{demo_files / 'mlflow.db'}")
    [run] = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "FAILED"
    assert "Not a directory" in run.data.tags["tuneline.error"]


@pytest.mark.parametrize("given", [0, -5])
def test_max_steps_zero_means_no_limit_and_trains_the_epochs(tmp_path, tiny_bert, given):
    from tuneline.tasks.model import build_model, load_tokenizer
    from tuneline.tasks.tokenize import tokenize_splits
    from tuneline.tasks.train import train_model

    assert build_config({"task": "classification", "data": {"path": "x.csv"}},
                        [f"train.max_steps={given}"]).train.max_steps == -1
    splits = tiny_splits()
    model_config = ModelConfig(base=str(tiny_bert))
    tokenizer = load_tokenizer.fn(model_config)
    config = run_config("classification", f"model.base={tiny_bert}", "tokenize.max_length=32", "train.epochs=1",
                        f"train.max_steps={given}", "train.batch_size=8", "train.precision=fp32",
                        "train.early_stopping_patience=0", path="/unused.csv")
    tokenized = tokenize_splits.fn(splits, tokenizer, config, {n: f"h-{n}" for n, _ in splits.items()},
                                   tmp_path / "cache")
    model = build_model.fn(model_config, "classification", splits.labels).model
    result = train_model.fn(model, tokenizer, tokenized, splits.labels, config, model_dir=tmp_path / "model",
                            checkpoint_dir=tmp_path / "ckpt")
    assert result.global_step == len(tokenized.datasets["train"]) // 8 == 6  # one epoch of 48 rows, not 1 step


def _immutable(path: Path) -> bool:
    """Make ``path`` unwritable even for root (``chattr +i``), or by its mode for another user; False if neither."""
    import os
    import subprocess

    if os.geteuid() != 0:
        path.chmod(0o444)
        return True
    return subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0


def _mutable(path: Path) -> None:
    import subprocess

    subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    path.chmod(0o644)


@pytest.mark.parametrize("command", ["train", "retrain"])
def test_a_store_that_cannot_be_written_is_named_before_any_work(demo_files, capsys, command):
    """SQLite opened it read-only without a word; the first write failed in MLflow with five tracebacks and an
    autoflush message naming neither the file nor what to change."""
    import sqlite3

    store = demo_files / "frozen.db"
    sqlite3.connect(store).close()
    if not _immutable(store):
        pytest.skip("chattr +i is not available here, and root writes any file whatever its mode")
    try:
        assert main([command, "-c", "c.yaml", "--set", f"tracking.tracking_uri=sqlite:///{store}"]) == 2
    finally:
        _mutable(store)
    err = capsys.readouterr().err
    assert err.startswith(f"tuneline: the MLflow store {store} cannot be written (")
    assert err.endswith("): make it and its folder writable, or set tracking.tracking_uri to a store you can "
                        "write\n") and err.count("\n") == 1


@pytest.mark.parametrize("error", [
    OSError(28, "No space left on device", "/data/w/checkpoint-4/optimizer.pt"),
    RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"),
])
def test_a_full_disk_is_told_apart_from_a_bug(error):
    from tuneline.errors import out_of_space

    wrapped = RuntimeError("sqlite3.OperationalError: database or disk is full")
    assert out_of_space(error).startswith("the disk is full")
    assert out_of_space(wrapped) == "the disk is full"
    try:
        try:
            raise error
        except Exception as inner:
            raise ValueError("saving failed") from inner
    except ValueError as outer:
        assert out_of_space(outer) == out_of_space(error)
    assert out_of_space(ValueError("a bug")) is None


def test_a_disk_that_fills_while_training_is_one_line_without_tracebacks(demo_files):
    """A real full disk: work_dir on a 2 MB tmpfs, nearly filled, so a checkpoint cannot be saved."""
    import os
    import subprocess
    import sys

    small = demo_files / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        (small / "fill").write_bytes(b"\0" * 1_780_000)
        done = subprocess.run([sys.executable, "-m", "tuneline.cli", "train", "-c", "c.yaml", "--set",
                               f"work_dir={small / 'w'}", "--set", "train.max_steps=6", "--set", "train.eval_steps=2"],
                              cwd=demo_files, capture_output=True, text=True, timeout=600,
                              env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"})
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert [line for line in done.stderr.splitlines() if line.startswith("tuneline:")] == [
        "tuneline: the disk is full: free space on the disk of work_dir and of the MLflow store, then run the same "
        "command again (training resumes from its last complete checkpoint)"]
    assert "not a problem with your data or config" not in done.stderr


def test_a_killed_twin_runs_checkpoints_are_taken_over_by_the_next_run(tmp_path, tiny_bert):
    """Two identical runs at once: the second trains in ``<folder>-pid<N>``. Killed, its checkpoints stayed there for
    ever: the next run took the main folder and started over."""
    import threading

    from transformers import TrainerCallback

    from tuneline.locking import model_lock
    from tuneline.tasks.model import build_model, load_tokenizer
    from tuneline.tasks.tokenize import tokenize_splits
    from tuneline.tasks.train import train_model

    class Crash(RuntimeError):
        pass

    class Steps(TrainerCallback):
        def __init__(self, crash_at: int | None = None) -> None:
            self.steps, self.crash_at = [], crash_at

        def on_step_end(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)
            if state.global_step == self.crash_at:
                raise Crash("the machine went away")

    splits = tiny_splits()
    model_config = ModelConfig(base=str(tiny_bert))
    tokenizer = load_tokenizer.fn(model_config)
    config = run_config("classification", f"model.base={tiny_bert}", "tokenize.max_length=32", "train.max_steps=6",
                        "train.eval_steps=2", "train.batch_size=8", "train.precision=fp32",
                        "train.early_stopping_patience=0", f"work_dir={tmp_path / 'work'}", path="/unused.csv")
    tokenized = tokenize_splits.fn(splits, tokenizer, config, {n: f"h-{n}" for n, _ in splits.items()},
                                   tmp_path / "cache")
    folder = tmp_path / "work" / "checkpoints" / "same-config"
    url = f"sqlite:///{tmp_path / 'work' / 'checkpoint-locks.db'}"

    def train(callback: Steps, model_dir: str):
        model = build_model.fn(model_config, "classification", splits.labels).model
        return train_model.fn(model, tokenizer, tokenized, splits.labels, config, model_dir=tmp_path / model_dir,
                              checkpoint_dir=folder, extra_callbacks=[callback])

    (tmp_path / "work").mkdir()
    held, done = threading.Event(), threading.Event()

    def first_run() -> None:  # holds the main folder while the second trains
        with model_lock(f"checkpoints-{folder.name}", url, timeout_s=5.0, use_prefect=False):
            held.set()
            done.wait(300)

    holder = threading.Thread(target=first_run)
    holder.start()
    assert held.wait(60)
    try:
        with pytest.raises(Crash):
            train(Steps(crash_at=5), "twin")  # the second, killed after its checkpoint at step 4
    finally:
        done.set()
        holder.join()
    [twin] = folder.parent.glob("same-config-pid*")
    assert sorted(p.name for p in twin.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]

    again = Steps()
    result = train(again, "model")
    assert again.steps == [5, 6] and result.resumed_from == str(folder / "checkpoint-4")
    assert not twin.exists()


def test_data_batches_names_the_run_that_holds_a_batch_under_a_live_lease(tmp_path, capsys):
    """A batch a killed run validated and still holds under its lease was listed as plain "validated", as if free;
    `watch --once` and `doctor` named its holder."""
    import re

    from tuneline.config import load_config
    from tuneline.ledger import Ledger, ledger_url_for
    from tuneline.runtime import resolve_tracking_uri

    landing = tmp_path / "landing"
    landing.mkdir()
    for name in ("held.csv", "free.csv"):
        (landing / name).write_text("text,label\n" + "".join(f"{name} row {i},a\n" for i in range(3)))
        (landing / f"{name}.done").touch()  # complete, as a producer lands it
    config_path = tmp_path / "c.yaml"
    config_path.write_text(yaml.safe_dump({
        "data": {"path": "base.csv"}, "work_dir": str(tmp_path / "out"),
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}, "retrain": {"landing": str(landing)}}))
    config = load_config(config_path)
    url = ledger_url_for(config.ledger.url, resolve_tracking_uri(config.tracking.tracking_uri))
    with Ledger(url, config.registered_model_name) as ledger:
        ledger.scan(landing)
        [held] = ledger.claim("run-killed", max_batches=1)
    [free] = {"held.csv", "free.csv"} - {held.name}
    assert main(["data", "batches", "-c", str(config_path)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert re.search(r"claimed +landed \S+ \S+Z  held by run run-killed until \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$",
                     lines[held.name]), lines[held.name]
    assert "held by" not in lines[free]
