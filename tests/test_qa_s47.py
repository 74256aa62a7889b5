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

    from test_data_drop import land_rows, loop_config
    from tuneline.ledger import Ledger

    landing = tmp_path / "landing"
    for name in ("held.csv", "free.csv"):
        land_rows(landing, name, [(f"{name} row {i}", "a") for i in range(3)])
    config_path, config, url, name = loop_config(tmp_path, landing)
    with Ledger(url, name) as ledger:
        ledger.scan(landing)
        [held] = ledger.claim("run-killed", max_batches=1)
    [free] = {"held.csv", "free.csv"} - {held.name}
    assert main(["data", "batches", "-c", config_path]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert re.search(r"claimed +landed \S+ \S+Z  held by run run-killed until \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$",
                     lines[held.name]), lines[held.name]
    assert "held by" not in lines[free]


# --------------------------------------------------------------------------------------------------------------
# README QA: what the README and --help say, tried as written


def test_a_config_named_like_data_but_ending_yaml_is_read_as_yaml(tmp_path):
    from tuneline.config import load_config

    for name in ("tickets.csv.yaml", "x.jsonl.yml"):
        (tmp_path / name).write_text("task: classification\ndata:\n  path: tickets.csv\n")
        assert load_config(tmp_path / name).data.path == tmp_path / "tickets.csv"
    (tmp_path / "tickets.csv").write_text("text,label\na,b\n")
    with pytest.raises(ConfigError, match="is a data file"):
        load_config(tmp_path / "tickets.csv")


def test_the_default_of_a_tracking_uri_reference_is_beside_the_config(tmp_path, monkeypatch):
    """``${MLFLOW_URI:-sqlite:///mlflow.db}`` wrote the store in whatever folder a command ran in, although the README
    says a relative SQLite file is beside the config; a value the variable gives is read as the environment's."""
    from tuneline.config import load_config
    from tuneline.runtime import resolve_tracking_uri

    config_dir, elsewhere = tmp_path / "cfg", tmp_path / "elsewhere"
    config_dir.mkdir()
    elsewhere.mkdir()
    (config_dir / "c.yaml").write_text("task: classification\ndata:\n  path: d.csv\ntracking:\n"
                                       "  tracking_uri: ${TL_QA_URI:-sqlite:///mlflow.db}\n"
                                       "ledger:\n  url: ${TL_QA_LEDGER:-sqlite:///ledger.db}\n")
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("TL_QA_URI", raising=False)
    monkeypatch.delenv("TL_QA_LEDGER", raising=False)
    config = load_config(config_dir / "c.yaml")
    assert config.tracking.tracking_uri.startswith("${TL_QA_URI:-")  # still a reference (secrets stay out)
    assert resolve_tracking_uri(config.tracking.tracking_uri) == f"sqlite:///{config_dir / 'mlflow.db'}"
    from tuneline.ledger import ledger_url_for

    assert ledger_url_for(config.ledger.url, "unused") == f"sqlite:///{config_dir / 'ledger.db'}"
    monkeypatch.setenv("TL_QA_URI", "sqlite:///given.db")
    assert resolve_tracking_uri(load_config(config_dir / "c.yaml").tracking.tracking_uri) == "sqlite:///given.db"


def test_the_demo_leaves_the_learning_rate_to_the_strategy(capsys):
    """The demo pinned 5e-5, so `tuneline demo --set model.strategy=lora` trained LoRA at a tenth of its default,
    the rate the README says learns next to nothing; show-config also showed the registered model as null."""
    assert main(["show-config", "--set", "model.strategy=lora"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["train"]["learning_rate"] == 5e-4  # LoRA's own default, resolved
    from tuneline.cli import _demo_config
    from tuneline.config import default_learning_rate

    assert default_learning_rate(_demo_config(["model.strategy=lora"], write=False).model) == 5e-4
    assert default_learning_rate(_demo_config([], write=False).model) == 5e-5  # the demo itself is unchanged
    assert shown["tracking"]["registered_model"] == "tuneline-demo-intents"


def test_show_config_names_the_default_registered_model(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("task: pair_classification\ndata:\n  path: p.csv\n")
    assert main(["show-config", "-c", str(tmp_path / "c.yaml")]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["tracking"]["registered_model"] == "tuneline-pair-classification"


def test_validate_of_a_mistyped_path_says_the_last_quarantine_is_kept(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(20))
                                    + "row 20,\n")
    (tmp_path / "c.yaml").write_text("task: classification\ndata:\n  path: d.csv\nwork_dir: out\n")
    main(["validate", "-c", str(tmp_path / "c.yaml")])
    quarantine = tmp_path / "out" / "validate" / "quarantine.csv"
    kept = quarantine.read_bytes()
    capsys.readouterr()
    assert main(["validate", "-c", str(tmp_path / "c.yaml"), "--set", "data.path=nothere.csv"]) == 1
    captured = capsys.readouterr()
    assert captured.out == (f"  quarantine: {quarantine} is the previous check's (this one could not read its "
                            "input)\n")
    assert captured.err.startswith("tuneline: input file ") and "nothere.csv does not exist" in captured.err
    assert quarantine.read_bytes() == kept


def test_a_quarantine_example_names_its_line_once(tmp_path, capsys):
    (tmp_path / "bs.csv").write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(40))
                                     + '"he said \\"hi\\" to me",a\n')
    (tmp_path / "c.yaml").write_text("task: classification\ndata:\n  path: bs.csv\n  max_bad_fraction: 0.5\n"
                                     "work_dir: out\n")
    main(["validate", "-c", str(tmp_path / "c.yaml")])
    [example] = [line for line in capsys.readouterr().out.splitlines() if "quote_escaped_with_backslash:" in line]
    assert example.startswith(f"  e.g. quote_escaped_with_backslash: {tmp_path / 'bs.csv'} line 42: a quote inside")


def test_copies_of_a_conflicting_text_are_set_aside_once_as_conflicts(tmp_path, capsys):
    """Three copies of a text with one label and one with another: every copy is set aside as a conflict. Two were
    also quarantined as exact copies ("the first copy is kept", of a record itself set aside), and the rules' counts
    added up to more records than were quarantined."""
    import pandas as pd

    rows = [(f"ticket number {i}", "ab"[i % 2]) for i in range(60)]
    rows += [("refund please", "a")] * 3 + [("Refund  please", "b")] + [("just a copy", "a")] * 2
    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))
    (tmp_path / "c.yaml").write_text("task: classification\ndata:\n  path: d.csv\n  max_bad_fraction: 0.5\n"
                                     "work_dir: out\n")
    assert main(["validate", "-c", str(tmp_path / "c.yaml")]) == 0
    out = capsys.readouterr().out
    assert "quarantined 5 (no_conflicting_label_duplicates 4, no_exact_duplicates 1)" in out
    quarantine = pd.read_csv(tmp_path / "out" / "validate" / "quarantine.csv")
    assert sorted(quarantine["source_line"]) == [62, 63, 64, 65, 67]
    copies = quarantine[quarantine["rule"] == "no_exact_duplicates"]
    assert list(copies["source_line"]) == [67] and "d.csv line 66" in copies["detail"].iloc[0]


# --------------------------------------------------------------------------------------------------------------
# dirty-data QA: files real exports write, read through `tuneline validate`

TEXTS = [(f"sample text number {i} here", "pos" if i % 2 == 0 else "neg") for i in range(60)]


def _validate(tmp_path: Path, name: str, content: str | bytes, capsys, **data) -> tuple[int, str, str]:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    config = {"task": "classification", "data": {"path": name, **data}, "work_dir": "out"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    code = main(["validate", "-c", str(tmp_path / "c.yaml")])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("marker", ["\\N", "#REF!", "#DIV/0!"])
def test_sql_nulls_and_excel_formula_errors_are_no_classes(tmp_path, capsys, marker):
    """MySQL's and PostgreSQL's ``\\N`` and Excel's formula errors became classes of their own."""
    rows = "".join(f"{t}\t{marker if i % 6 == 0 else label}\n" for i, (t, label) in enumerate(TEXTS))
    code, out, err = _validate(tmp_path, "d.tsv", "text\tlabel\n" + rows, capsys)
    assert code == 1 and "(10 rows) in the training data are how R, pandas, Excel or SQL write a missing value" in err


def test_labels_apart_only_by_a_typographic_dash_are_one_class(tmp_path, capsys):
    labels = ["non-toxic", "non\u2013toxic", "toxic", "non\u2010toxic", "toxic", "toxic"]
    rows = "".join(f"{t},{labels[i % 6]}\n" for i, (t, _) in enumerate(TEXTS))
    code, out, err = _validate(tmp_path, "d.csv", "text,label\n" + rows, capsys)
    assert code == 0 and "  labels (2): non-toxic, toxic" in out


@pytest.mark.parametrize("header", [True, False])
def test_an_lf_file_whose_cells_hold_lone_carriage_returns_is_no_old_mac_file(tmp_path, capsys, header):
    """Two lone \\r a cell (pandas writes them unquoted) outnumbered the \\n line ends: the file was read as an old
    Mac one, each \\n a space, all of it one line."""
    rows = "".join(f"{t}\rsecond para\rthird para,{label}\n" for t, label in TEXTS)
    options = {} if header else {"header": False, "text_column": "0", "label_column": "1"}
    code, out, err = _validate(tmp_path, "d.csv", ("text,label\n" if header else "") + rows, capsys, **options)
    assert code == 0, err
    assert ": read 60, kept 60, quarantined 0 (none)" in out
    old_mac = "text,label\r" + "".join(f"{t},{label}\r" for t, label in TEXTS)  # still read as one
    code, out, err = _validate(tmp_path, "m.csv", old_mac, capsys)
    assert code == 0 and ": read 60, kept 60, quarantined 0 (none)" in out


@pytest.mark.parametrize("compress", [False, True])
def test_a_tar_archive_is_named_as_one(tmp_path, capsys, compress):
    import tarfile

    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in TEXTS))
    archive = tmp_path / ("train.csv.tar.gz" if compress else "train.csv")
    with tarfile.open(archive, "w:gz" if compress else "w") as tar:
        tar.add(tmp_path / "d.csv", arcname="d.csv")
    code, out, err = _validate(tmp_path, archive.name, archive.read_bytes(), capsys)
    assert code == 1
    assert err == (f"tuneline: input file {archive} is a tar archive, not text: extract it (tar -xf {archive}) and "
                   "point data at the file inside, or at the folder of several (its shards are read as one file)\n")


def test_a_header_in_another_unicode_form_is_found(tmp_path, capsys):
    rows = "".join(f"{t},{label}\n" for t, label in TEXTS)
    code, out, err = _validate(tmp_path, "d.csv", "te\u0301xte,label\n" + rows, capsys, text_column="t\u00e9xte")
    assert code == 0, err
    assert ": read 60, kept 60, quarantined 0 (none)" in out


def test_an_infinite_label_is_quarantined_with_its_line_and_why(tmp_path, capsys):
    import json

    import pandas as pd

    rows = [{"text": t, "label": label} for t, label in TEXTS]
    rows[6]["label"] = float("inf")  # Python's json writes Infinity, as some exporters do
    code, out, err = _validate(tmp_path, "d.jsonl", "".join(json.dumps(r) + "\n" for r in rows), capsys)
    quarantine = pd.read_csv(tmp_path / "out" / "validate" / "quarantine.csv")
    [row] = quarantine[quarantine["rule"] == "label_is_infinite"].to_dict("records")
    assert (row["source_row"], row["source_line"]) == (7, 7)
    assert row["detail"].startswith("Infinity is no label name")


@pytest.mark.parametrize("record", [
    {"text": "John Smith visited Paris", "label": [[0, 10, "PER"], [19, 24, "LOC"]]},  # Doccano (older)
    {"text": "John Smith visited Paris", "entities": [{"start_offset": 0, "end_offset": 10, "label": "PER"}]},
    {"text": "John Smith visited Paris", "tokens": [{"text": "John", "start": 0, "end": 4, "id": 0}],
     "spans": [{"start": 0, "end": 10, "label": "PER"}]},  # Prodigy
])
def test_a_character_offset_ner_export_is_named_as_one(tmp_path, capsys, record):
    import json

    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for _ in range(30)))
    (tmp_path / "c.yaml").write_text("task: token_classification\ndata:\n  path: d.jsonl\nwork_dir: out\n")
    assert main(["validate", "-c", str(tmp_path / "c.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tuneline: {path} holds character-offset annotations (its ")
    assert "convert each record to tokens and one BIO tag per token" in err and err.count("\n") == 1


def test_a_nested_json_field_is_read_by_its_dotted_name(tmp_path, capsys):
    """Label Studio and other tools export ``{"data": {"text": ...}}``: ``text_column: data.text`` was refused with
    advice about a CSV header."""
    import json

    import pandas as pd

    rows = [{"data": {"text": t, "meta": {"lang": "en"}}, "label": label} for t, label in TEXTS]
    rows[3]["data"] = {"meta": {}}  # a record without the nested text: quarantined as missing, not an error
    code, out, err = _validate(tmp_path, "d.jsonl", "".join(json.dumps(r) + "\n" for r in rows), capsys,
                               text_column="data.text", max_bad_fraction=0.1)
    assert code == 0, err
    assert ": read 60, kept 59, quarantined 1 (not_nullable 1)" in out
    quarantine = pd.read_csv(tmp_path / "out" / "validate" / "quarantine.csv")
    assert list(quarantine["source_line"]) == [4]


def test_a_wikiner_file_of_joined_word_pos_tag_items_is_named(tmp_path, capsys):
    path = tmp_path / "d.txt"
    path.write_text("".join(f"John|NNP|B-PER Smith|NNP|I-PER visited|VBD|O Paris|NNP|B-LOC w{i}|NN|O .|.|O\n"
                            for i in range(40)))
    (tmp_path / "c.yaml").write_text("task: token_classification\ndata:\n  path: d.txt\nwork_dir: out\n")
    assert main(["validate", "-c", str(tmp_path / "c.yaml")]) == 1
    assert capsys.readouterr().err == (
        f"tuneline: {path}: its lines hold whole sentences of word|...|tag items (line 1: John|NNP|B-PER "
        "Smith|NNP|I-PER visited|VBD|O ...), as WikiNER writes them, not one token a line: write each token and its "
        "tag on a line of its own (the word first, the tag last) and a blank line after each sentence (CoNLL)\n")
