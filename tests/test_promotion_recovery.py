"""A gate killed while it promotes, and what `tuneline doctor` makes of it (fault injection: the gate runs in a real
process that SIGKILLs itself at the moment named, against a real SQLite MLflow store and ledger; nothing mocked).

The gate tags its version, moves ``champion``, then writes the history row. Killed after the tags but before the
move, the version read ``gate.decision=promoted`` for ever although it never served; killed after the move but
before the row, the champion moved unrecorded, doctor said nothing, and rollback refused ("nothing to roll back
to") although the version's own tags named the champion it replaced.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests_support import store_client
from tuneline.cli import main
from tuneline.ledger import default_ledger_url
from tuneline.locking import default_lock_url
from tuneline.promotions import (GATE, PROMOTE, PromotionLog, PromotionRefused, champion_version, move_champion,
                                 previous_champion, rollback_champion)

GATE_KILLED = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from mlflow.tracking import MlflowClient
from tests_support import WORDS, run_config, tiny_frame
import tuneline.promotions as promotions
from tuneline.kinds import Evaluation
from tuneline.run_process import PROCESS_TAG, process_tag
from tuneline.tasks.gate import gate_and_promote
from tuneline.tasks.register import RegisteredVersion
from tuneline.tracking import RunContext

client = MlflowClient(tracking_uri={uri!r}, registry_uri={uri!r})
experiment = client.get_experiment_by_name("gate") or None
experiment = experiment.experiment_id if experiment else client.create_experiment(
    "gate", artifact_location={artifacts!r})
run = client.create_run(experiment, tags={{PROCESS_TAG: process_tag(), "tuneline.version": "test"}})
version = str(client.create_model_version({name!r}, source={artifacts!r}, run_id=run.info.run_id).version)
Path({ready!r}).write_text(run.info.run_id + " " + version)

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if {point!r} == "before_alias":
    moving = MlflowClient.set_registered_model_alias
    MlflowClient.set_registered_model_alias = lambda self, model, alias, number: (
        die() if alias == "champion" else moving(self, model, alias, number))
elif {point!r} == "third_tag":  # killed part way through the gate's tag writes
    tagging, written = MlflowClient.set_model_version_tag, []
    def tag_then_die(self, *args, **kwargs):
        written.append(args)
        return die() if len(written) == 3 else tagging(self, *args, **kwargs)
    MlflowClient.set_model_version_tag = tag_then_die
else:
    promotions.PromotionLog.record = die
context = RunContext(run_id=run.info.run_id, experiment_id=experiment, tracking_uri={uri!r}, run_dir=Path({folder!r}))
config = run_config("classification", "tracking.registered_model={name}", "gate.min_metric=0.5", path="/unused.csv")
test = tiny_frame(2)
good = Evaluation("fine_tuned", {{"accuracy": 0.9, "macro_f1": 0.9, "weighted_f1": 0.9}}, list(test["label"]))
gate_and_promote.fn(RegisteredVersion({name!r}, version, run.info.run_id), good, [], None, test, sorted(WORDS),
                    config, context)
"""


def gate_killed(folder: Path, uri: str, name: str, point: str) -> tuple[str, str]:
    """Run a first model's gate in its own process, SIGKILLed at ``point``; return its run id and version."""
    ready = folder / f"{point}.ready"
    script = GATE_KILLED.format(tests=str(Path(__file__).parent), uri=uri, name=name, point=point, ready=str(ready),
                                artifacts=(folder / "art").as_uri(), folder=str(folder))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=folder, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-3000:]
    run_id, version = ready.read_text().split()
    return run_id, version


@pytest.fixture
def store(tmp_path, monkeypatch):
    for var in ("TUNELINE_LEDGER_URL", "TUNELINE_LOCK_URL"):
        monkeypatch.delenv(var, raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store_client(uri)
    return tmp_path, uri, client


def doctor(uri: str, name: str, folder: Path, *fix: str) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["doctor", "--model", name, "--tracking-uri", uri, "--work-dir", str(folder / "w"), *fix]) == 0
    return out.getvalue()


def test_a_gate_killed_before_the_alias_moves_leaves_promoting_and_doctor_settles_it_as_never_served(store):
    folder, uri, client = store
    client.create_registered_model("killed-before-move")
    run_id, version = gate_killed(folder, uri, "killed-before-move", "before_alias")

    tags = client.get_model_version("killed-before-move", version).tags
    assert tags["gate.decision"] == "promoting"  # not "promoted": it never was
    assert champion_version(client, "killed-before-move") is None

    report = doctor(uri, "killed-before-move", folder)
    assert (f"killed-before-move v{version}: its gate passed it, but run {run_id} died before making it champion "
            "(it never served): --fix tags it interrupted") in report
    report = doctor(uri, "killed-before-move", folder, "--fix")
    assert "tagged interrupted" in report
    tags = client.get_model_version("killed-before-move", version).tags
    assert tags["gate.decision"] == "interrupted" and "never served" in tags["gate.sentence"]
    assert champion_version(client, "killed-before-move") is None  # doctor never moves the champion
    assert "its gate passed it" not in doctor(uri, "killed-before-move", folder)  # settled once


def test_a_gate_killed_between_the_move_and_its_row_is_recorded_by_doctor_fix(store, capsys):
    folder, uri, client = store
    client.create_registered_model("killed-after-move")
    run_id, version = gate_killed(folder, uri, "killed-after-move", "before_record")

    assert champion_version(client, "killed-after-move") == version
    with PromotionLog(default_ledger_url(uri), "killed-after-move") as log:
        assert log.history() == []
    report = doctor(uri, "killed-after-move", folder)
    assert f"v{version}: its gate passed it, but run {run_id} died after making it champion" in report
    assert "--fix writes the row" in report

    report = doctor(uri, "killed-after-move", folder, "--fix")
    assert "had no history row (its run died after moving the alias): written" in report
    with PromotionLog(default_ledger_url(uri), "killed-after-move") as log:
        (row,) = log.history()
    assert (row.action, row.actor, row.from_version, row.to_version) == (GATE, f"run {run_id}", None, version)
    assert client.get_model_version("killed-after-move", version).tags["gate.decision"] == "promoted"
    report = doctor(uri, "killed-after-move", folder, "--fix")
    assert "written" not in report and "moved outside tuneline" not in report  # once, and then in agreement


def test_a_gate_killed_part_way_through_its_tags_leaves_a_version_doctor_settles(store):
    """The gate writes its verdict one tag per request. ``gate.decision`` went first, so a run killed after it left a
    version that read decided (never orphaned, ``challenger`` kept, promotable by hand) without
    ``tuneline.status=gated``. The verdict is now the last tag: what a kill leaves is unfinished, and doctor ends it."""
    folder, uri, client = store
    client.create_registered_model("killed-mid-tags")
    run_id, version = gate_killed(folder, uri, "killed-mid-tags", "third_tag")

    tags = client.get_model_version("killed-mid-tags", version).tags
    assert "gate.decision" not in tags and len([k for k in tags if k.startswith("gate.")]) == 2
    report = doctor(uri, "killed-mid-tags", folder, "--fix")
    assert (f"killed-mid-tags v{version}: run {run_id} RUNNING, but its process" in report
            and "gate never finished: fixed" in report)
    tags = client.get_model_version("killed-mid-tags", version).tags
    assert tags["tuneline.status"] == "orphaned" and run_id in tags["tuneline.orphan_reason"]
    assert client.get_run(run_id).info.status == "KILLED"  # its run no longer reads RUNNING
    with pytest.raises(PromotionRefused, match="orphaned"):
        move_champion(client, "killed-mid-tags", version, expected_from=None, actor="a person", action=PROMOTE,
                      reason="by hand", ledger_url=default_ledger_url(uri), lock_url=default_lock_url(uri))


def test_a_cut_short_promotion_made_by_hand_is_not_credited_to_the_gate(store):
    """Killed between ``promoting`` and its alias move, then promoted by a person: `doctor --fix` found the alias on
    it and tagged it "promoted to champion" by its gate, while the history said a person made it champion."""
    folder, uri, client = store
    name = "cut-short-then-by-hand"
    client.create_registered_model(name)
    run_id, version = gate_killed(folder, uri, name, "before_alias")
    assert main(["promote", name, version, "--reason", "its gate passed it", "--tracking-uri", uri]) == 0

    doctor(uri, name, folder, "--fix")
    tags = client.get_model_version(name, version).tags
    assert tags["gate.decision"] == "interrupted"
    assert "made champion by `tuneline promote` instead" in tags["gate.sentence"]
    with PromotionLog(default_ledger_url(uri), name) as log:
        (row,) = log.history()
    assert (row.action, row.to_version) == (PROMOTE, version)
    assert "its gate passed it, but run" not in doctor(uri, name, folder)  # nothing left to settle


def versions(client: MlflowClient, folder: Path, name: str, count: int) -> list[str]:
    client.create_registered_model(name)
    experiment = client.create_experiment(name, artifact_location=(folder / "art").as_uri())
    run_id = client.create_run(experiment).info.run_id
    return [str(client.create_model_version(name, source=str(folder / "model"), run_id=run_id).version)
            for _ in range(count)]


def test_rollback_restores_the_version_the_champion_replaced_even_across_an_unrecorded_move(store):
    folder, uri, client = store
    v1, v2, v3, v4 = versions(client, folder, "gap", 4)
    stores = dict(ledger_url=default_ledger_url(uri), lock_url=default_lock_url(uri))

    def promote(version: str) -> None:
        move_champion(client, "gap", version, expected_from=champion_version(client, "gap"), actor="user t@h",
                      action=PROMOTE, reason="test", **stores)

    promote(v1)
    promote(v2)
    client.set_registered_model_alias("gap", "champion", v3)  # a move the history never saw (a killed gate's)
    promote(v4)  # recorded v3 -> v4
    with PromotionLog(stores["ledger_url"], "gap") as log:
        assert previous_champion(log) == v3  # was v2: the replay skipped the champion v4 replaced
    assert rollback_champion(client, "gap", actor="user t@h", reason=None, **stores).to_version == v3
    assert rollback_champion(client, "gap", actor="user t@h", reason=None, **stores).to_version == v2


def test_rollback_of_a_champion_missing_from_the_history_falls_back_on_its_gate_tags(store):
    folder, uri, client = store
    v1, v2 = versions(client, folder, "untracked", 2)
    stores = dict(ledger_url=default_ledger_url(uri), lock_url=default_lock_url(uri))
    client.set_model_version_tag("untracked", v2, "tuneline.status", "gated")
    client.set_model_version_tag("untracked", v2, "gate.decision", "promoted")
    client.set_model_version_tag("untracked", v2, "gate.champion_version", v1)
    client.set_registered_model_alias("untracked", "champion", v2)  # moved; its row lost with its run
    from tuneline.promotions import replaced_by_gate

    assert replaced_by_gate(client, "untracked", v2) == v1
    moved = rollback_champion(client, "untracked", actor="user t@h", reason=None, **stores)
    assert (moved.from_version, moved.to_version) == (v2, v1)
    assert champion_version(client, "untracked") == v1


def test_promote_and_rollback_refuse_a_mistyped_ledger_and_an_empty_name_creating_nothing(store, capsys):
    folder, uri, client = store
    v1, v2 = versions(client, folder, "typo", 2)
    stores = ["--tracking-uri", uri]
    assert main(["promote", "typo", v1, "--reason", "first", *stores]) == 0
    wrong = folder / "elsewhere" / "ledger.db"
    capsys.readouterr()
    for command in (["promote", "typo", v2, "--reason", "next"], ["rollback", "typo"]):
        assert main([*command, *stores, "--ledger-url", f"sqlite:///{wrong}"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no such ledger file" in err[0], err
    assert not wrong.exists() and not wrong.parent.exists()
    assert champion_version(client, "typo") == v1  # nothing moved
    assert main(["rollback", "", *stores]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tuneline: rollback: the model name is empty; give the registered model's name"], err
