"""Promotion history of the champion alias: compare-and-set moves, refusals, rollback, the CLI, the gate's own move.

Real MLflow (a SQLite store) with real registered versions, and the real ledger database beside it. Every test works
on its own registered model name in one module-wide store (an MLflow store takes seconds to create).
"""

from __future__ import annotations

import re
from datetime import timezone
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tuneline.ledger import default_ledger_url
from tuneline.locking import default_lock_url, model_lock
from tuneline.promotions import (GATE, PROMOTE, ROLLBACK, Promotion, PromotionConflict, PromotionLog,
                                 PromotionRefused, _move_locked, champion_version, move_champion, previous_champion,
                                 rollback_champion)


class Store:
    """One SQLite MLflow store with its ledger and lock databases beside it (the defaults)."""

    def __init__(self, folder: Path, file: str = "mlflow.db") -> None:
        self.uri = f"sqlite:///{folder / file}"
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self.experiment = self.client.create_experiment("promotions", artifact_location=(folder / "art").as_uri())
        self.run_id = self.client.create_run(self.experiment).info.run_id
        self.ledger_url, self.lock_url = default_ledger_url(self.uri), default_lock_url(self.uri)
        self.folder = folder

    def versions(self, name: str, count: int) -> list[str]:
        """``count`` real registered versions of a new model ``name`` (no artifacts: nothing here loads them)."""
        self.client.create_registered_model(name)
        return [str(self.client.create_model_version(name, source=str(self.folder / "model"),
                                                     run_id=self.run_id).version) for _ in range(count)]

    def move(self, name: str, version: str, action: str = PROMOTE, reason: str = "because", **kw) -> Promotion:
        expected = kw.pop("expected_from", champion_version(self.client, name))
        return move_champion(self.client, name, version, expected_from=expected, actor="user tester@host",
                             action=action, reason=reason, ledger_url=self.ledger_url, lock_url=self.lock_url, **kw)

    def log(self, name: str) -> PromotionLog:
        return PromotionLog(self.ledger_url, name, client=self.client)

    def history(self, name: str) -> list[Promotion]:
        with self.log(name) as log:
            return log.history()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    with pytest.MonkeyPatch.context() as patch:
        for var in ("TUNELINE_LEDGER_URL", "TUNELINE_LOCK_URL"):
            patch.delenv(var, raising=False)
        yield Store(tmp_path_factory.mktemp("promotions"))


@pytest.fixture
def name(request) -> str:
    return re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60]


def test_promote_moves_the_alias_and_records_exactly_one_row(store, name):
    v1, v2 = store.versions(name, 2)
    store.move(name, v1, reason="first one")
    moved = store.move(name, v2, reason="hotfix for ticket 42")

    assert champion_version(store.client, name) == v2
    rows = store.history(name)
    assert len(rows) == 2 and rows[-1] == moved
    assert (moved.model, moved.alias, moved.from_version, moved.to_version, moved.action, moved.actor,
            moved.reason) == (name, "champion", v1, v2, PROMOTE, "user tester@host", "hotfix for ticket 42")
    assert moved.at.tzinfo is not None and moved.at.utcoffset().total_seconds() == 0
    assert rows[0].from_version is None and rows[0].to_version == v1


def test_two_stores_sharing_one_ledger_keep_their_own_histories(tmp_path, monkeypatch):
    """Two SQLite stores in one folder share the default ledger beside them, and a model name. Store B's history held
    store A's moves: its first good version was refused ("the promotion history says v3 is champion", a version B
    does not have) and `tuneline history` mixed both (strategies QA). Each registry's rows are its own; a ledger
    made before rows named their registry gets the column, and its old rows stay readable."""
    import sqlite3

    from tuneline.promotions import HISTORY_TAG, recorded_champion

    for var in ("TUNELINE_LEDGER_URL", "TUNELINE_LOCK_URL"):
        monkeypatch.delenv(var, raising=False)
    # a ledger written by an earlier tuneline: the table without the registry column, one move in it
    ledger = tmp_path / "tuneline-ledger.db"
    with sqlite3.connect(ledger) as old:
        old.execute("CREATE TABLE tuneline_promotions (id INTEGER PRIMARY KEY AUTOINCREMENT, model VARCHAR(255) NOT "
                    "NULL, alias VARCHAR(64) NOT NULL, from_version VARCHAR(32), to_version VARCHAR(32) NOT NULL, at "
                    "DATETIME NOT NULL, actor TEXT NOT NULL, action VARCHAR(16) NOT NULL, reason TEXT NOT NULL)")
        old.execute("INSERT INTO tuneline_promotions (model, alias, to_version, at, actor, action, reason) VALUES "
                    "('legacy', 'champion', '1', '2026-12-01 10:00:00.000000', 'user old@host', 'promote', 'before')")
    a, b = Store(tmp_path, "a.db"), Store(tmp_path, "b.db")
    assert a.ledger_url == b.ledger_url == f"sqlite:///{ledger}"
    a1, a2, a3 = a.versions("shared", 3)
    a.move("shared", a1)
    a.move("shared", a3, reason="a's third")
    [b1] = b.versions("shared", 1)

    assert b.history("shared") == [] and recorded_champion(b.ledger_url, "shared", b.client) is None
    moved = b.move("shared", b1, action=GATE, reason="b's first")
    assert [row.to_version for row in b.history("shared")] == [b1] and b.history("shared")[0] == moved
    assert [row.to_version for row in a.history("shared")] == [a1, a3]
    assert recorded_champion(a.ledger_url, "shared", a.client) == a3
    ids = {store.client.get_registered_model("shared").tags[HISTORY_TAG] for store in (a, b)}
    assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    # a rollback in B finds nothing before its first champion, though A's history has a v1 before v3
    with pytest.raises(PromotionRefused, match="nothing to roll back to"):
        rollback_champion(b.client, "shared", actor="user tester@host", reason=None, ledger_url=b.ledger_url,
                          lock_url=b.lock_url)
    # the earlier tuneline's row: kept, and read by each store (it cannot say which store it was made in)
    [legacy] = a.history("legacy")
    assert (legacy.to_version, legacy.reason) == ("1", "before") and b.history("legacy") == [legacy]
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT COUNT(*) FROM tuneline_promotions WHERE registry IS NULL").fetchone() == (1,)


def test_a_stale_expected_from_is_a_conflict_that_names_the_mover_and_changes_nothing(store, name):
    v1, v2, v3 = store.versions(name, 3)
    store.move(name, v1)
    store.move(name, v2, reason="better on the new data")
    before = store.history(name)

    with pytest.raises(PromotionConflict) as error:  # this caller still believes v1 is champion
        store.move(name, v3, expected_from=v1)
    assert "is v2, not v1" in str(error.value) and "user tester@host" in str(error.value)
    assert "better on the new data" in str(error.value) and "\n" not in str(error.value)
    assert champion_version(store.client, name) == v2
    assert store.history(name) == before


def test_a_version_that_failed_died_or_does_not_exist_is_never_made_champion(store, name):
    v1, v2, v3 = store.versions(name, 3)
    store.move(name, v1)
    store.client.set_model_version_tag(name, v2, "tuneline.status", "failed")
    store.client.set_model_version_tag(name, v3, "tuneline.status", "orphaned")

    for version, message in ((v2, "tuneline.status=failed"), (v3, "tuneline.status=orphaned"),
                             ("99", "has no version 99"), ("three", "not a model version number"),
                             (v1, "already the champion")):
        with pytest.raises(PromotionRefused, match=message):
            store.move(name, version)
    assert champion_version(store.client, name) == v1
    assert [r.to_version for r in store.history(name)] == [v1]


def test_rollback_returns_to_the_champion_it_replaced_and_walks_further_back(store, name):
    v1, v2, v3 = store.versions(name, 3)
    for version in (v1, v2, v3):
        store.move(name, version)
    stores = dict(ledger_url=store.ledger_url, lock_url=store.lock_url)

    with store.log(name) as log:
        assert previous_champion(log) == v2
    back = rollback_champion(store.client, name, actor="user oncall@host", reason="v3 mislabels refunds", **stores)
    assert champion_version(store.client, name) == v2
    assert (back.action, back.from_version, back.to_version, back.reason) == (ROLLBACK, v3, v2,
                                                                             "v3 mislabels refunds")
    # a second rollback undoes the promotion of v2 (not the first rollback): back to v1
    again = rollback_champion(store.client, name, actor="user oncall@host", reason=None, **stores)
    assert (again.from_version, again.to_version, again.reason) == (v2, v1, "rolled back from v2")
    # v1 replaced no champion: a rollback to nothing is refused, and nothing changes
    with pytest.raises(PromotionRefused, match="nothing to roll back to"):
        rollback_champion(store.client, name, actor="user oncall@host", reason=None, **stores)
    assert champion_version(store.client, name) == v1
    assert [r.action for r in store.history(name)] == [PROMOTE] * 3 + [ROLLBACK] * 2


def test_rows_are_only_ever_appended(store, name):
    versions = store.versions(name, 5)
    snapshots = []
    for version in versions:
        store.move(name, version, reason=f"to {version}")
        snapshots.append(store.history(name))
    for count, rows in enumerate(snapshots, start=1):
        assert len(rows) == count
        assert rows == snapshots[-1][:count]  # earlier rows never change after later moves
    final = snapshots[-1]
    assert [r.to_version for r in final] == versions
    assert [r.from_version for r in final] == [None, *versions[:-1]]
    assert [r.id for r in final] == sorted(r.id for r in final)
    assert [r.at for r in final] == sorted(r.at for r in final)
    assert not any(hasattr(PromotionLog, verb) for verb in ("update", "delete", "remove", "edit"))


def test_a_second_log_on_the_same_file_sees_every_row(store, name):
    v1, v2 = store.versions(name, 2)
    store.move(name, v1)
    store.move(name, v2, reason="durable")
    with PromotionLog(store.ledger_url, name) as first, PromotionLog(store.ledger_url, name) as second:
        assert second.history() == first.history()
        assert [r.reason for r in second.history()] == ["because", "durable"]
    with PromotionLog(store.ledger_url, "some-other-model") as other:
        assert other.history() == []  # one database holds many models; each log sees its own


def test_the_lock_is_not_taken_twice_so_the_gate_moves_through_the_inner_path(store, name):
    v1, v2 = store.versions(name, 2)
    store.move(name, v1)
    with model_lock(name, store.lock_url, use_prefect=False):
        with pytest.raises(RuntimeError, match="not re-entrant"):  # why the gate must not call move_champion
            store.move(name, v2)
        with store.log(name) as log:
            moved = _move_locked(store.client, log, v2, expected_from=v1, actor="run abc", action=GATE,
                                 reason="macro_f1 0.9 >= min_metric 0.5")
    assert champion_version(store.client, name) == v2
    assert store.history(name)[-1] == moved and moved.action == GATE


def test_the_gate_records_its_promotion_with_its_run_and_reasons(store, name):
    from tests_support import WORDS, run_config, tiny_frame
    from tuneline.kinds import Evaluation
    from tuneline.tasks.gate import gate_and_promote
    from tuneline.tasks.register import RegisteredVersion
    from tuneline.tracking import RunContext

    (version,) = store.versions(name, 1)
    run_id = store.client.create_run(store.experiment).info.run_id
    context = RunContext(run_id=run_id, experiment_id=store.experiment, tracking_uri=store.uri,
                         run_dir=store.folder)
    config = run_config("classification", f"tracking.registered_model={name}", "gate.min_metric=0.5",
                        path="/unused.csv")
    test = tiny_frame(2)
    good = Evaluation("fine_tuned", {"accuracy": 0.9, "macro_f1": 0.9, "weighted_f1": 0.9}, list(test["label"]))
    decision = gate_and_promote.fn(RegisteredVersion(name, version, run_id), good, [], None, test, sorted(WORDS),
                                   config, context)

    assert decision.promote
    assert champion_version(store.client, name) == version
    (row,) = store.history(name)
    assert (row.action, row.actor, row.from_version, row.to_version) == (GATE, f"run {run_id}", None, version)
    assert row.reason == "; ".join(decision.reasons)


def test_the_cli_promotes_rolls_back_and_prints_the_history(store, name, capsys):
    from tuneline.cli import main

    v1, v2 = store.versions(name, 2)
    stores = ["--tracking-uri", store.uri, "--ledger-url", store.ledger_url]
    assert main(["promote", name, v1, "--reason", "first release", *stores]) == 0
    assert main(["promote", name, f"v{v2}", "--reason", "retrained on May data", *stores]) == 0
    assert main(["rollback", name, "--reason", "complaints about refunds", *stores]) == 0
    capsys.readouterr()
    # asking for the state that already holds (a script run twice, a gate that promoted it first) is no error, and
    # records no move
    assert main(["promote", name, v1, "--reason", "again", *stores]) == 0
    assert capsys.readouterr().out == f"{name} v{v1} is already the champion; nothing to do\n"

    assert main(["history", name, *stores]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3 and err == ""
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"
    assert re.fullmatch(rf"{stamp}  promote   none -> v{v1}  user \S+@\S+  first release", lines[0])
    assert re.fullmatch(rf"{stamp}  promote   v{v1} -> v{v2}  user \S+@\S+  retrained on May data", lines[1])
    assert re.fullmatch(rf"{stamp}  rollback  v{v2} -> v{v1}  user \S+@\S+  complaints about refunds", lines[2])
    assert all(r.at.tzinfo == timezone.utc for r in store.history(name))


def test_cli_refusals_are_one_line_and_an_outside_move_is_flagged(store, name, capsys):
    from tuneline.cli import main

    v1, v2 = store.versions(name, 2)
    stores = ["--tracking-uri", store.uri, "--ledger-url", store.ledger_url]
    store.client.set_model_version_tag(name, v2, "tuneline.status", "failed")
    assert main(["promote", name, v2, "--reason", "try", *stores]) == 1
    assert main(["rollback", name, *stores]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "tuneline.status=failed" in err[0] and "no champion to roll back" in err[1]

    store.client.set_registered_model_alias(name, "champion", v1)  # by hand, around tuneline
    assert main(["history", name, *stores]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("no recorded moves") and "moved outside tuneline" in err


def test_rollback_after_the_champion_alias_was_deleted_by_hand_says_how_to_restore_it(store, name, capsys):
    """The alias deleted in the MLflow UI: rollback said only "has no champion to roll back" (operator QA); doctor
    knew better. It now names the version the history made champion last and the command that restores it."""
    from tuneline.cli import main

    v1, v2 = store.versions(name, 2)
    stores = ["--tracking-uri", store.uri, "--ledger-url", store.ledger_url]
    assert main(["promote", name, v1, "--reason", "first", *stores]) == 0
    assert main(["promote", name, v2, "--reason", "second", *stores]) == 0
    store.client.delete_registered_model_alias(name, "champion")
    capsys.readouterr()
    assert main(["rollback", name, *stores]) == 1
    assert capsys.readouterr().err.strip() == (
        f"tuneline: registered model {name!r} has no champion to roll back; the promotion history says v{v2} was "
        f"champion last, so the alias was removed outside tuneline: restore it with `tuneline promote {name} {v2}` "
        "(or promote the version you want by number)")
    assert store.client.get_registered_model(name).aliases == {}  # refused: nothing moved
    for fix in ([], ["--fix"]):  # doctor said "--fix writes the row", and --fix fixed nothing (operator QA)
        assert main(["doctor", "-m", name, "--work-dir", str(store.folder / "work"), *fix, *stores]) == 0
        out = capsys.readouterr().out
        assert (f"  {name}: the champion of {name!r} is none, but the last recorded move is to v{v2} (promote by "
                f"user ") in out and (f"the champion alias was removed outside tuneline: restore it with tuneline "
                                      f"promote {name} {v2} --reason ..., or promote another version\n") in out, out
        assert "--fix writes the row" not in out


def test_a_wrong_folder_or_a_misspelled_model_leaves_no_files_behind(store, name, tmp_path, monkeypatch, capsys):
    """Run in the wrong folder, `promote` created mlflow.db, a ledger and lock files there and then said the model was
    missing; a misspelled name also left a lock file per name. Both are now one line, and the folder stays empty."""
    from tuneline.cli import main

    store.versions(name, 1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["promote", name, "1", "--reason", "x"]) == 1
    assert main(["rollback", name]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"tuneline: no MLflow store at {elsewhere / 'mlflow.db'}: run this in the folder where you "
                   "trained (the one holding mlflow.db), or pass --tracking-uri"] * 2
    assert list(elsewhere.iterdir()) == []
    locks_before = sorted(p.name for p in Path(store.uri.removeprefix("sqlite:///")).parent.rglob("*"))
    stores = ["--tracking-uri", store.uri, "--ledger-url", store.ledger_url]
    assert main(["promote", name + "-typo", "1", "--reason", "x", *stores]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert f"has no registered model '{name}-typo' (it has: " in line and name in line
    assert sorted(p.name for p in Path(store.uri.removeprefix("sqlite:///")).parent.rglob("*")) == locks_before
    # history of a misspelled name said "no recorded moves" and exited 0: a typo looked like an empty history
    assert main(["history", name + "-typo", *stores]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert f"has no registered model '{name}-typo' (it has: " in line


def test_an_mlflow_server_that_does_not_answer_is_one_line_at_once(store, name, capsys, monkeypatch):
    """A wrong MLFLOW_TRACKING_URI: MLflow's client retried a refused connection for minutes, printing urllib3
    warnings, before any message."""
    import socket
    import time

    from tuneline.cli import main

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    for argv in (["history", name], ["rollback", name], ["serve-model", name, "--port", "1"],
                 ["predict", "-m", f"models:/{name}@champion", "a text"]):
        started = time.monotonic()
        assert main(argv) == 1, argv
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"tuneline: the MLflow tracking server at http://127.0.0.1:{port} does not answer")
        assert time.monotonic() - started < 30, argv


def test_rollback_after_a_manual_promote_walks_back_and_ends_instead_of_flipping(store, name):
    v1, v2, v3 = store.versions(name, 3)
    for version in (v1, v2, v3):
        store.move(name, version)
    store.move(name, v2, reason="v3 is worse on refunds")  # a person puts the older version back by number
    stores = dict(ledger_url=store.ledger_url, lock_url=store.lock_url)
    walked = [rollback_champion(store.client, name, actor="oncall", reason=None, **stores).to_version
              for _ in range(3)]
    assert walked == [v3, v2, v1]  # undo the manual promote, then back through the gate's champions
    with pytest.raises(PromotionRefused, match="nothing to roll back to"):
        rollback_champion(store.client, name, actor="oncall", reason=None, **stores)
    assert champion_version(store.client, name) == v1


def test_rollback_returns_to_a_champion_set_before_the_history_began(store, name):
    """The champion set by hand (MLflow's UI, a script) before tuneline recorded a move: the first promote's record
    says which version it replaced, and a rollback returns to it (it said "nothing to roll back to")."""
    v1, v2 = store.versions(name, 2)
    store.client.set_registered_model_alias(name, "champion", v1)  # outside tuneline: no history row
    store.move(name, v2)
    stores = dict(ledger_url=store.ledger_url, lock_url=store.lock_url)
    assert rollback_champion(store.client, name, actor="oncall", reason=None, **stores).to_version == v1
    assert champion_version(store.client, name) == v1
    with pytest.raises(PromotionRefused, match="nothing to roll back to"):
        rollback_champion(store.client, name, actor="oncall", reason=None, **stores)


def test_promote_and_rollback_with_a_prefect_api_end_without_the_events_worker_warning(store, name):
    """With a Prefect API the gate lock's concurrency slot sends events; the command exited before they were sent
    and Prefect's events worker printed "Still processing items" on every promote and rollback. Run as a user runs
    it: a fresh process against the session's real Prefect API."""
    import os
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    v1, v2 = store.versions(name, 2)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    stores = ["--tracking-uri", store.uri, "--ledger-url", store.ledger_url]
    for argv in (["promote", name, v1, "--reason", "first"], ["promote", name, v2, "--reason", "second"],
                 ["rollback", name, "--reason", "back"]):
        done = subprocess.run([sys.executable, "-m", "tuneline.cli", *argv, *stores], env=env, capture_output=True,
                              text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Still processing items" not in done.stderr and "EventsWorker" not in done.stderr, done.stderr
    assert str(store.client.get_model_version_by_alias(name, "champion").version) == str(v1)
