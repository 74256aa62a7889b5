"""``tuneline doctor`` and the batches a killed run still holds: a run killed outright (SIGKILL) holds its batches
under a lease nobody renews, and the next run waited for it to run out (ten minutes by default) while doctor said
nothing. The run's process tag (tuneline.run_process) tells doctor the process is gone; --fix gives them back.
Real processes, a real SQLite ledger and MLflow store; nothing is mocked."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from tuneline.cli import main
from tuneline.ledger import Ledger, default_ledger_url
from tests_support import store_client

MODEL = "lease-tickets"


def claim_and_wait(folder: Path, uri: str, landing: Path, ready: Path, gated: bool = False) -> subprocess.Popen:
    """A process that opens a tracked-like MLflow run (with its process tag), claims every landed batch and waits;
    with ``gated``, it first validates them, registers a version and tags it gated, as a run past its gate."""
    code = textwrap.dedent(f"""
        import pathlib, time
        from mlflow.tracking import MlflowClient
        from tuneline.ledger import Ledger, default_ledger_url
        from tuneline.run_process import PROCESS_TAG, process_tag
        client = MlflowClient(tracking_uri={uri!r}, registry_uri={uri!r})
        experiment = client.create_experiment("leases", artifact_location={(folder / 'art').as_uri()!r})
        run = client.create_run(experiment, tags={{PROCESS_TAG: process_tag()}})
        with Ledger(default_ledger_url({uri!r}), {MODEL!r}, lease_s=3600) as ledger:
            ledger.scan({str(landing)!r})
            held = ledger.claim(run.info.run_id)
            if {gated!r}:
                for batch in held:
                    ledger.mark_validated(run.info.run_id, batch.content_hash, 5, 0)
                client.create_registered_model({MODEL!r})
                version = client.create_model_version({MODEL!r}, source={(folder / 'art').as_uri()!r},
                                                      run_id=run.info.run_id).version
                client.set_model_version_tag({MODEL!r}, version, "tuneline.status", "gated")
                client.set_model_version_tag({MODEL!r}, version, "gate.decision", "kept_champion")
        pathlib.Path({str(ready)!r}).write_text(run.info.run_id + " " + str(len(held)))
        time.sleep(600)
    """)
    return subprocess.Popen([sys.executable, "-c", code], cwd=folder)


def start_training_runs(tmp_path: Path, uri: str, body: str) -> tuple[subprocess.Popen, str]:
    """A process that opens MLflow runs as a training does (tagged with its process), runs ``body`` (which
    writes the file ``ready``) and sleeps; returned once ``ready`` is written, with its text."""
    ready = tmp_path / "started"
    code = textwrap.dedent(f"""
        import pathlib, time
        from mlflow.tracking import MlflowClient
        from tuneline.run_process import PROCESS_TAG, process_tag
        client = MlflowClient(tracking_uri={uri!r})
        experiment = client.create_experiment("training", artifact_location={(tmp_path / 'art').as_uri()!r})
        ready = pathlib.Path({str(ready)!r})
    """) + textwrap.dedent(body) + "time.sleep(600)\n"
    trainer = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not ready.exists() and trainer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not ready.exists():
        trainer.kill()
        raise AssertionError(f"the training process wrote no {ready.name} (exit {trainer.wait()})")
    return trainer, ready.read_text()


def test_doctor_names_and_fix_releases_batches_held_by_a_killed_run(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store_client(uri)
    landing = tmp_path / "landing"
    landing.mkdir()
    for name in ("b1.csv", "b2.csv"):
        pd.DataFrame({"text": [f"{name} row {i}" for i in range(5)], "label": ["a", "b"] * 2 + ["a"]}).to_csv(
            landing / name, index=False)
        (landing / f"{name}.done").touch()  # the producer's marker: the batch is complete
    ready = tmp_path / "claimed"
    holder = claim_and_wait(tmp_path, uri, landing, ready)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.exists(), "the holder did not claim"
        run_id, claimed = ready.read_text().split()
        assert claimed == "2"
        client.create_registered_model(MODEL)
        doctor = ["doctor", "--model", MODEL, "--tracking-uri", uri, "--work-dir", str(tmp_path / "w")]
        assert main(doctor) == 0
        assert f"run {run_id} holds" not in capsys.readouterr().out  # alive: its lease is its own
    finally:
        holder.kill()  # SIGKILL: nothing gives the batches back
        holder.wait()

    assert main(doctor) == 0
    report = capsys.readouterr().out
    assert f"{MODEL}: run {run_id} holds b1.csv, b2.csv under a lease until " in report
    # the loop's config names the same model, store and work folder (`doctor -c` was refused: operator QA)
    config = tmp_path / "loop.yaml"
    config.write_text(f"data:\n  path: base.csv\nwork_dir: {tmp_path / 'w'}\ntracking:\n  tracking_uri: {uri}\n"
                      f"  registered_model: {MODEL}\n")
    assert main(["doctor", "-c", str(config)]) == 0
    assert capsys.readouterr().out == report
    assert f":{holder.pid} is gone (--fix releases them now)" in report
    with Ledger(default_ledger_url(uri), MODEL) as ledger:
        assert ledger.free_batches() == []  # a report changes nothing

    assert main([*doctor, "--fix"]) == 0
    assert "is gone: released, run closed KILLED" in capsys.readouterr().out
    with Ledger(default_ledger_url(uri), MODEL) as ledger:
        assert sorted(b.name for b in ledger.free_batches()) == ["b1.csv", "b2.csv"]
        assert {b.state for b in ledger.batches()} == {"landed"}
    dead = client.get_run(run_id)
    assert dead.info.status == "KILLED" and f":{holder.pid} ended without closing the run" in \
        dead.data.tags["tuneline.error"]
    assert main(doctor) == 0
    assert "holds" not in capsys.readouterr().out


def test_doctor_closes_a_run_killed_before_it_registered_anything_and_counts_recent_checkpoints(tmp_path, capsys):
    """kill -9 mid-training: no version, no batch, so neither sweep saw the run, and it stayed RUNNING for ever
    (a probe); a 270 MB checkpoint of the last hour was not mentioned ("0 stale checkpoint folder(s), 0.0 MB")."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trainer, run_id = start_training_runs(tmp_path, uri, """
        run = client.create_run(experiment, tags={PROCESS_TAG: process_tag()}, run_name="mid-training")
        ready.write_text(run.info.run_id)
    """)
    try:
        work = tmp_path / "w"
        (work / "checkpoints" / "abc" / "checkpoint-6").mkdir(parents=True)
        (work / "checkpoints" / "abc" / "checkpoint-6" / "model.safetensors").write_bytes(b"\0" * 2_000_000)
        doctor = ["doctor", "--tracking-uri", uri, "--work-dir", str(work)]
        assert main(doctor) == 0
        report = capsys.readouterr().out
        assert run_id not in report  # alive: a training at work
        assert "1 checkpoint folder(s) younger than an hour kept (2.0 MB" in report
    finally:
        trainer.kill()
        trainer.wait()
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(run_id).info.status == "RUNNING"
    assert main(doctor) == 0
    assert (f"run {run_id} (mid-training) is RUNNING in MLflow, but its process " in (report := capsys.readouterr().out)
            and f":{trainer.pid} is gone (--fix closes it KILLED)" in report)
    assert main([*doctor, "--fix"]) == 0
    assert f":{trainer.pid} is gone: closed KILLED" in capsys.readouterr().out
    assert client.get_run(run_id).info.status == "KILLED"
    assert main(doctor) == 0
    assert run_id not in capsys.readouterr().out


def test_doctor_fix_marks_used_the_batches_of_a_run_killed_after_its_gate(tmp_path, capsys):
    """A run killed after its gate scored its version (before it marked its batches used): given back, they were
    trained again into a second version, and the ledger credited them to that one only (integrity QA)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    landing = tmp_path / "landing"
    landing.mkdir()
    pd.DataFrame({"text": [f"row {i}" for i in range(5)], "label": ["a", "b"] * 2 + ["a"]}).to_csv(
        landing / "b1.csv", index=False)
    (landing / "b1.csv.done").touch()
    ready = tmp_path / "claimed"
    holder = claim_and_wait(tmp_path, uri, landing, ready, gated=True)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        run_id, claimed = ready.read_text().split()
        assert claimed == "1"
    finally:
        holder.kill()
        holder.wait()
    doctor = ["doctor", "--model", MODEL, "--tracking-uri", uri, "--work-dir", str(tmp_path / "w"), "--fix"]
    assert main(doctor) == 0
    assert ("is gone: marked used by v1 (they made it, and its gate had scored it), run closed KILLED"
            in capsys.readouterr().out)
    with Ledger(default_ledger_url(uri), MODEL) as ledger:
        (batch,) = ledger.batches()
        assert (batch.state, batch.model_version, batch.used_by_run) == ("used", "1", run_id)
        assert ledger.free_batches() == []


def test_doctor_with_a_config_cleans_a_first_training_killed_before_any_version_and_only_its_models_runs(
        tmp_path, capsys):
    """`doctor -c CONFIG --fix` refused ("has no registered model") when a first training was killed before it
    registered anything, and `doctor -m NAME --fix` closed the dead runs of other models too (training QA)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trainer, ids = start_training_runs(tmp_path, uri, """
        ids = []
        for model in ("first-model", "other-model"):
            run = client.create_run(experiment, tags={PROCESS_TAG: process_tag()}, run_name=model)
            client.log_param(run.info.run_id, "tracking.registered_model", model)
            ids.append(run.info.run_id)
        ready.write_text(" ".join(ids))
    """)
    trainer.kill()
    trainer.wait()
    first, other = ids.split()
    config = tmp_path / "first.yaml"
    config.write_text(f"data:\n  path: d.csv\ntracking:\n  tracking_uri: {uri}\n  registered_model: first-model\n"
                      f"work_dir: {tmp_path / 'w'}\n")
    assert main(["doctor", "-c", str(config), "--fix"]) == 0
    report = capsys.readouterr().out
    assert "  first-model: no registered version yet" in report
    assert f"run {first} (first-model) is RUNNING in MLflow" in report and other not in report
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(first).info.status == "KILLED"
    assert client.get_run(other).info.status == "RUNNING"  # another model's: not this doctor's to close
    assert main(["doctor", "--tracking-uri", uri, "--work-dir", str(tmp_path / "w"), "--fix"]) == 0
    assert client.get_run(other).info.status == "KILLED"  # every model's, when none is named
