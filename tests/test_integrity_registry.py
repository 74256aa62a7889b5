"""Nothing promoted by accident: fault injection on the real flow (tiny BERT, SQLite MLflow, real processes).

Each test asserts the exact registry state afterwards: versions, aliases, status tags.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import working_in
from tuneline.cli import main
from tuneline.demo import demo_config_dict, write_demo_csv
from tuneline.flows.train import train_flow
from tuneline.locking import LockTimeout, default_lock_url
from tuneline.tasks.register import register_model
from tuneline.tracking import RunContext
from tests_support import store_client

MODEL = "integrity-intents"
FAST = ["tokenize.max_length=32", "train.learning_rate=2e-3", "train.batch_size=32", "train.precision=fp32",
        "evaluate.zero_shot_baseline=false", "train.early_stopping_patience=0"]


def tiny_config(data: Path, tiny_bert: Path, *overrides: str):
    from tuneline.config import build_config

    return build_config(demo_config_dict(data), [f"model.base={tiny_bert}", f"tracking.registered_model={MODEL}",
                                                 *FAST, "train.epochs=6", "gate.min_metric=0.3", *overrides])


def aliases(client: MlflowClient) -> dict[str, str]:
    return {k: str(v) for k, v in client.get_registered_model(MODEL).aliases.items()}


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_bert):
    """A folder with one finished run: version 1 is champion and challenger."""
    folder = tmp_path_factory.mktemp("integrity")
    with working_in(folder):
        data = write_demo_csv(folder / "tickets.csv", realistic=False)  # keyword data: the tiny model learns it
        summary = train_flow(tiny_config(data, tiny_bert))
    assert summary.promoted and summary.version == "1"
    return folder, data


def register_then_die(client: MlflowClient, folder: Path, uri: str, status: str):
    """What a process killed between registration and gate leaves: a version with challenger, its run over."""
    experiment = client.get_experiment_by_name("tuneline-demo").experiment_id
    run = client.create_run(experiment)
    model_dir = next((folder / "tuneline-output" / "runs").glob("*/model"))
    context = RunContext(run_id=run.info.run_id, experiment_id=experiment, tracking_uri=uri, run_dir=folder)
    mlflow.set_tracking_uri(uri)
    orphan = register_model.fn(model_dir, "classification", MODEL, context, {"task": "classification"})
    client.set_terminated(run.info.run_id, status=status)
    return run, orphan


def hold_lock(uri: str, ready: Path) -> subprocess.Popen:
    """Another process holding the gate lock of MODEL (as a concurrent run's gate would)."""
    code = ("import sys, time, pathlib\n"
            "from tuneline.locking import model_lock\n"
            f"with model_lock({MODEL!r}, {default_lock_url(uri)!r}, holder='other-run'):\n"
            f"    pathlib.Path({str(ready)!r}).write_text('held')\n"
            "    time.sleep(120)\n")
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_failure_after_registration_withdraws_challenger_and_never_moves_champion(store, tiny_bert):
    folder, data = store
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    ready = folder / "lock-ready"
    holder = hold_lock(uri, ready)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.exists(), "the lock holder did not start"
        with working_in(folder), pytest.raises(LockTimeout, match="other-run"):
            train_flow(tiny_config(data, tiny_bert, "train.epochs=1", "gate.lock_timeout_s=2"))
    finally:
        holder.kill()
        holder.wait()
    client = store_client(uri)
    failed = client.get_model_version(MODEL, "2")
    assert failed.tags["tuneline.status"] == "failed"
    assert "gate.decision" not in failed.tags
    assert aliases(client) == {"champion": "1"}  # challenger withdrawn from v2, champion untouched
    assert client.get_run(failed.run_id).info.status == "FAILED"
    # settled by its own run: the next run's orphan sweep leaves it failed, without a warning of a kill (loop QA)
    from tuneline.registry import neutralise_orphans

    assert "2" not in [o.version for o in neutralise_orphans(client, MODEL)]
    assert client.get_model_version(MODEL, "2").tags["tuneline.status"] == "failed"
    assert data.read_bytes() == write_demo_csv(folder / "again.csv", realistic=False).read_bytes()  # unchanged input


def test_a_killed_run_leaves_an_orphan_that_doctor_and_the_next_run_neutralise(store, tiny_bert, capsys):
    folder, data = store
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = store_client(uri)
    champion_before = aliases(client)["champion"]
    # A run registers its model, then its process is killed before the gate: the version holds challenger.
    run, orphan = register_then_die(client, folder, uri, "KILLED")
    assert aliases(client)["challenger"] == orphan.version

    with working_in(folder):
        assert main(["doctor", "--model", MODEL]) == 0
    report = capsys.readouterr().out
    assert f"{MODEL} v{orphan.version}: run {run.info.run_id} KILLED, gate never finished (held challenger)" in report
    assert aliases(client)["challenger"] == orphan.version  # a report changes nothing

    with working_in(folder):
        assert main(["doctor", "--model", MODEL, "--fix"]) == 0
    assert client.get_model_version(MODEL, orphan.version).tags["tuneline.status"] == "orphaned"
    assert aliases(client) == {"champion": champion_before}
    with working_in(folder):
        assert main(["doctor", "--model", MODEL]) == 0
    [line] = [l for l in capsys.readouterr().out.splitlines() if "no orphaned versions" in l]
    tagged = line.split("not promotable: ", 1)[1].rstrip(")").split(", ")  # earlier tests' orphans share the store
    assert line.startswith(f"  {MODEL}: no orphaned versions left to fix (tagged orphaned earlier, not promotable: ")
    assert f"v{orphan.version}" in tagged


def test_the_next_run_neutralises_an_orphan_before_registering(store, tiny_bert):
    folder, data = store
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = store_client(uri)
    _, orphan = register_then_die(client, folder, uri, "FAILED")
    with working_in(folder):
        summary = train_flow(tiny_config(data, tiny_bert, "train.epochs=1"))
    assert client.get_model_version(MODEL, orphan.version).tags["tuneline.status"] == "orphaned"
    assert aliases(client)["challenger"] == summary.version
    assert client.get_model_version(MODEL, summary.version).tags["tuneline.status"] == "gated"


def test_two_concurrent_runs_leave_the_better_model_champion(tmp_path, tiny_bert):
    """Two real `tuneline train` processes on the same registered model, tolerance 0: whatever the order in which
    they reach the gate, the champion at the end is the better of the two, and the gates did not overlap."""
    data = write_demo_csv(tmp_path / "tickets.csv", realistic=False)
    raw = demo_config_dict(data)
    raw["model"]["base"] = str(tiny_bert)
    raw["tracking"]["registered_model"] = "race"
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(raw))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_TRACKING", "MLFLOW_REGISTRY"))}
    common = [f"--set={o}" for o in FAST] + ["--set=gate.min_metric=0.0", "--set=gate.min_gain_over_baseline=0.0",
                                             "--set=gate.tolerance=0.0"]
    runs = [subprocess.Popen([sys.executable, "-m", "tuneline.cli", "train", "-c", "cfg.yaml", *common,
                              f"--set=train.epochs={epochs}", f"--set=work_dir=out-{epochs}"],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for epochs in (1, 4)]
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(o[-2000:] for o in outputs)

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store_client(uri)
    versions = {str(v.version): v for v in client.search_model_versions("name = 'race'")}
    assert sorted(versions) == ["1", "2"]
    scores = {name: float(v.tags["metric.test.macro_f1"]) for name, v in versions.items()}
    champion = str(client.get_registered_model("race").aliases["champion"])
    assert scores[champion] == max(scores.values())
    assert all(v.tags["tuneline.status"] == "gated" for v in versions.values())
    # the second gate saw the first one's outcome: it scored the champion of that moment
    second = max(versions.values(), key=lambda v: float(v.last_updated_timestamp))
    first = next(v for v in versions.values() if v is not second)
    if first.tags["gate.decision"] == "promoted":
        assert second.tags["gate.champion_version"] == str(first.version)


def test_a_champion_that_changed_after_scoring_is_rescored_before_any_move(store, tiny_bert):
    """Compare-and-set: this run scored "no champion", but by the time it gates another run has promoted one.
    The gate must notice, score that champion on the same test rows, and decide against it."""
    from tuneline.kinds import Evaluation
    from tuneline.tasks.gate import gate_and_promote
    from tuneline.tasks.load import load_data
    from tuneline.tasks.split import split_data
    from tuneline.tasks.validate import validate_data

    folder, data = store
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = store_client(uri)
    champion = aliases(client)["champion"]
    config = tiny_config(data, tiny_bert, "gate.min_metric=0.0", "gate.min_gain_over_baseline=0.0")
    validated = validate_data.fn(load_data.fn(config), config, folder / "cas")
    splits = split_data.fn(validated.frames, validated.labels, config.data.split, kind=config.task)
    experiment = client.get_experiment_by_name("tuneline-demo").experiment_id
    run = client.create_run(experiment)
    context = RunContext(run_id=run.info.run_id, experiment_id=experiment, tracking_uri=uri, run_dir=folder)
    mlflow.set_tracking_uri(uri)
    model_dir = next((folder / "tuneline-output" / "runs").glob("*/model"))
    candidate = register_model.fn(model_dir, "classification", MODEL, context, {"task": "classification"})
    weak = Evaluation("fine_tuned", {"accuracy": 0.25, "macro_f1": 0.1, "weighted_f1": 0.1},
                      [splits.labels[0]] * len(splits.test))
    decision = gate_and_promote.fn(candidate, weak, [], None, splits.test, splits.labels, config, context)
    assert decision.promote is False
    assert decision.champion is not None and decision.champion.version == champion  # re-scored, not "none"
    tags = client.get_model_version(MODEL, candidate.version).tags
    assert tags["gate.decision"] == "kept_champion" and tags["gate.champion_version"] == champion
    assert float(tags["gate.champion_metric"]) > 0.5
    assert aliases(client)["champion"] == champion


def relabeled_copy(data: Path, target: Path, rename) -> Path:
    """``data`` with each line's label (its last field) written as ``rename(label)``: another export of the same
    rows, as a spreadsheet that capitalised the labels writes it."""
    known = {"account", "billing", "shipping", "technical"}
    lines = []
    for line in data.read_text(encoding="utf-8").splitlines():
        head, _, last = line.rpartition(",")
        lines.append(f"{head},{rename(last)}" if last in known else line)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def test_the_champion_is_scored_in_this_datas_label_spelling_and_renamed_labels_promote_nothing(store, tiny_bert):
    """The same rows exported again with the labels capitalised: the champion answers 'billing' where the test rows
    now say 'BILLING'. Every answer counted wrong, the champion scored 0.0, and any candidate was promoted as "a
    real gain". Now its labels are read in this data's spelling (scored as it deserves), the decision says that
    promoting changes the served label names, and labels renamed outright (nothing in common) leave the champion
    unscorable, so the gate keeps it until a person decides."""
    from tuneline.kinds import kind_of
    from tuneline.tasks.gate import decide_promotion, score_version
    from tuneline.tasks.load import load_data
    from tuneline.tasks.split import split_data
    from tuneline.tasks.validate import validate_data

    folder, data = store
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    champion = aliases(store_client(uri))["champion"]

    def champion_on(path: Path, name: str, labels: list[str]):
        config = tiny_config(path, tiny_bert, f"data.labels=[{', '.join(labels)}]")
        validated = validate_data.fn(load_data.fn(config), config, folder / name)
        splits = split_data.fn(validated.frames, validated.labels, config.data.split, kind=config.task)
        kind = kind_of(config)
        return splits, score_version(MODEL, champion, kind, splits.test, splits.labels, "macro_f1")

    intents = ["account", "billing", "shipping", "technical"]
    splits, as_trained = champion_on(data, "as-trained", intents)
    upper, capitalised = champion_on(relabeled_copy(data, folder / "upper.csv", str.upper), "upper",
                                     [i.upper() for i in intents])
    assert upper.labels == ["ACCOUNT", "BILLING", "SHIPPING", "TECHNICAL"]
    assert capitalised.metric == pytest.approx(as_trained.metric) and capitalised.metric > 0.5
    assert capitalised.relabeled == {"account": "ACCOUNT", "billing": "BILLING", "shipping": "SHIPPING",
                                     "technical": "TECHNICAL"}
    assert set(capitalised.predictions) <= set(upper.labels)
    decision = decide_promotion("macro_f1", capitalised.metric, capitalised, 0.3, 0.01)
    assert decision.promote is True
    assert any("'billing' as 'BILLING'" in r and "changes the label names" in r for r in decision.reasons)

    _, renamed = champion_on(relabeled_copy(data, folder / "renamed.csv", lambda label: f"intent_{label[0]}"),
                             "renamed", [f"intent_{i[0]}" for i in intents])
    assert renamed.metric is None and "renamed" in renamed.error and "tuneline promote" in renamed.error
    assert decide_promotion("macro_f1", 0.99, renamed, 0.3, 0.01).promote is False


def register_and_wait(folder: Path, data: Path, tiny_bert: Path, ready: Path) -> subprocess.Popen:
    """A real tracked run (its process tag and all) that registers its model and then waits before its gate, as a
    run does while it scores the champion; the test kills it there with SIGKILL (nothing in it can clean up)."""
    overrides = [f"model.base={tiny_bert}", f"tracking.registered_model={MODEL}", *FAST,
                 f"tracking.tracking_uri=sqlite:///{folder / 'mlflow.db'}"]
    code = ("import pathlib, time\n"
            "import mlflow\n"
            "from tuneline.config import build_config\n"
            "from tuneline.demo import demo_config_dict\n"
            "from tuneline.tasks.register import register_model\n"
            "from tuneline.tracking import tracked_run\n"
            f"config = build_config(demo_config_dict(pathlib.Path({str(data)!r})), {overrides!r})\n"
            "with tracked_run(config) as run:\n"
            f"    model_dir = next(pathlib.Path({str(folder)!r}).glob('tuneline-output/runs/*/model'))\n"
            f"    found = register_model.fn(model_dir, 'classification', {MODEL!r}, run, {{'task': 'classification'}})\n"
            f"    pathlib.Path({str(ready)!r}).write_text(found.version + ' ' + run.run_id)\n"
            "    time.sleep(600)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_"))}  # this store only
    return subprocess.Popen([sys.executable, "-c", code], cwd=folder, env=env)


def test_a_run_killed_outright_before_its_gate_is_never_promoted_and_doctor_closes_it(store, tiny_bert, capsys):
    """kill -9 between registration and gate left the version `registered` and its MLflow run RUNNING for ever: doctor
    said "no orphaned versions" and `tuneline promote` made it champion (a probe found it). The run's process tag
    tells the dead process from a live one: pending while it lives, orphaned once it is gone, never promoted."""
    folder, data = store
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = store_client(uri)
    champion = aliases(client)["champion"]
    ready = folder / "registered-and-waiting"
    process = register_and_wait(folder, data, tiny_bert, ready)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.exists(), "the run did not register"
        version, run_id = ready.read_text().split()

        # alive: pending, not an orphan, and not promotable yet
        with working_in(folder):
            assert main(["doctor", "--model", MODEL, "--tracking-uri", uri]) == 0
            report = capsys.readouterr().out
            assert f"{MODEL} v{version}: run {run_id} RUNNING, gate not finished yet (its process is alive)" in report
            assert main(["promote", MODEL, version, "--reason", "looks good", "--tracking-uri", uri]) == 1
        refusal = capsys.readouterr().err
        assert f"{MODEL} v{version} has not been through its gate" in refusal and "still at work" in refusal
    finally:
        process.kill()  # SIGKILL: the run stays RUNNING in MLflow
        process.wait()
    assert client.get_run(run_id).info.status == "RUNNING"
    assert aliases(client)["champion"] == champion

    with working_in(folder):
        assert main(["promote", MODEL, version, "--reason", "looks good", "--tracking-uri", uri]) == 1
        refusal = capsys.readouterr().err
        assert "was killed" in refusal and f":{process.pid} is gone" in refusal
        assert main(["doctor", "--model", MODEL, "--tracking-uri", uri]) == 0
        report = capsys.readouterr().out
        assert (f"{MODEL} v{version}: run {run_id} RUNNING, but its process " in report
                and f":{process.pid} is gone, gate never finished (held challenger)" in report)
        assert main(["doctor", "--model", MODEL, "--fix", "--tracking-uri", uri]) == 0
        capsys.readouterr()
        assert main(["promote", MODEL, version, "--reason", "looks good", "--tracking-uri", uri]) == 1
        assert "tagged tuneline.status=orphaned" in capsys.readouterr().err
    assert client.get_model_version(MODEL, version).tags["tuneline.status"] == "orphaned"
    closed = client.get_run(run_id)
    assert closed.info.status == "KILLED" and f":{process.pid} ended without closing the run" in \
        closed.data.tags["tuneline.error"]
    assert aliases(client) == {"champion": champion}


def test_promoting_a_version_its_gate_kept_out_prints_the_gates_reasons(store, tiny_bert, capsys):
    folder, data = store
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = store_client(uri)
    before = aliases(client).get("champion")
    with working_in(folder):
        summary = train_flow(tiny_config(data, tiny_bert, "train.epochs=1", "gate.min_metric=0.999"))
    assert not summary.promoted
    sentence = client.get_model_version(MODEL, summary.version).tags["gate.sentence"]
    assert "not promoted" in sentence
    with working_in(folder):
        assert main(["promote", MODEL, summary.version, "--reason", "the customer asked for it",
                     "--tracking-uri", uri]) == 0
    out, err = capsys.readouterr()
    assert f"-> v{summary.version}" in out
    assert f"tuneline: warning: promoted against its gate's verdict: {sentence}" in err
    assert aliases(client)["champion"] == summary.version
    overruled = client.get_model_version(MODEL, summary.version).tags["gate.overruled_by"]  # the tags say so too
    assert overruled.startswith("user ") and overruled.endswith(": the customer asked for it")
    assert before is not None
    # a rollback that lands on it again says so too (it was silent: exploratory QA)
    with working_in(folder):
        assert main(["promote", MODEL, before, "--reason", "back", "--tracking-uri", uri]) == 0
        capsys.readouterr()
        assert main(["rollback", MODEL, "--reason", "undo", "--tracking-uri", uri]) == 0
    out, err = capsys.readouterr()
    assert aliases(client)["champion"] == summary.version and f"v{before} -> v{summary.version}" in out
    assert (f"tuneline: warning: v{summary.version} is champion again, against its gate's verdict: "
            f"{sentence.rstrip('.')}; promote the version you want" in err)  # no ".;" (README QA)
