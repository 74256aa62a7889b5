"""The gate lock (tuneline.locking) with real processes: exclusion, timeout, death of a holder, per-model scope.

Every cross-process test runs real ``python`` subprocesses against one SQLite lock database in ``tmp_path``, and
again against PostgreSQL (``TUNELINE_TEST_POSTGRES_URL`` when set, else the session's throwaway cluster: the
``postgres_url`` fixture, skipped with a reason when PostgreSQL is not installed); nothing is mocked. The subprocesses get no Prefect API (``PREFECT_API_URL=""``), like ``tuneline train`` with the embedded
default; the in-process calls run against the session's throwaway Prefect API (tests/conftest.py), so they also take
and release the Prefect concurrency limit.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from tuneline.locking import (
    LOCK_DB_NAME,
    PREFECT_LIMIT_PREFIX,
    LockInfo,
    LockTimeout,
    _immediate_engine,
    default_holder,
    default_lock_url,
    model_lock,
    retraining_slot,
    sqlite_lock_path,
)
from tuneline.runtime import redact
from tests_support import store_client

# One worker: waits for a "go" file (so that both workers start their critical section together, whatever their
# import times), then records when it entered and left a ~1 s critical section, with or without the lock.
WORKER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from tuneline.locking import model_lock

    url, name, holder, mode, hold_s, folder = sys.argv[1:7]
    folder = Path(folder)
    (folder / f"{holder}.ready").touch()
    give_up = time.monotonic() + 30
    while not (folder / "go").exists():
        if time.monotonic() > give_up:
            sys.exit("no go signal")
        time.sleep(0.01)

    def critical_section():
        enter = time.time()
        (folder / f"{holder}.acquired").touch()
        time.sleep(float(hold_s))
        return enter, time.time()

    if mode == "lock":
        with model_lock(name, url, timeout_s=20, holder=holder) as info:
            enter, leave = critical_section()
    else:
        enter, leave = critical_section()
    (folder / f"{holder}.json").write_text(json.dumps({
        "enter": enter, "leave": leave,
        "prefect_concurrency_loaded": "prefect.concurrency.sync" in sys.modules,
    }))
""")


def _env() -> dict[str, str]:
    """The subprocesses' environment: no Prefect API, as with the embedded default of each ``tuneline train``."""
    env = dict(os.environ)
    env["PREFECT_API_URL"] = ""
    return env


def _start(folder: Path, url: str, name: str, holder: str, *, mode: str = "lock", hold_s: float = 1.0
           ) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, url, name, holder, mode, str(hold_s), str(folder)],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    give_up = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"worker ended before {path.name}: {proc.communicate()}")
        if time.monotonic() > give_up:
            raise AssertionError(f"no {path.name} after {timeout_s}s")
        time.sleep(0.01)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


@pytest.fixture
def own() -> str:
    """A suffix of this test's own for the lock names it takes in this process.

    Those calls also take Prefect's concurrency limit of the name on the session's one Prefect API, which the same
    test's other parametrization (on another xdist worker) or a flow of another test may hold at that moment: CI once
    timed out waiting for ``tuneline-gate-sst2-classifier`` that way. The subprocesses have no Prefect API.
    """
    return uuid.uuid4().hex[:8]


@pytest.fixture(params=["sqlite", "postgresql"])
def lock_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / LOCK_DB_NAME}"
    return os.environ.get("TUNELINE_TEST_POSTGRES_URL") or request.getfixturevalue("postgres_url")


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen]]:
    """Started workers; any still running at the end of a test is killed, so no test leaves a lock holder behind."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        _stop(proc)


def _race(folder: Path, url: str, mode: str, workers: list[subprocess.Popen]) -> list[dict]:
    """Two workers on the same model, released together; their critical-section intervals."""
    procs = [_start(folder, url, "sst2-classifier", holder, mode=mode) for holder in ("first", "second")]
    workers.extend(procs)
    for holder, proc in zip(("first", "second"), procs):
        _wait_for(folder / f"{holder}.ready", proc)
    (folder / "go").touch()
    for proc in procs:
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    return [json.loads((folder / f"{holder}.json").read_text()) for holder in ("first", "second")]


def _overlap(a: dict, b: dict) -> bool:
    return a["enter"] < b["leave"] and b["enter"] < a["leave"]


def test_two_processes_never_hold_the_lock_together(tmp_path, lock_url, workers):
    """(1) The core guarantee: two processes' critical sections under the same model's lock are disjoint."""
    first, second = _race(tmp_path, lock_url, "lock", workers)
    assert not _overlap(first, second), (first, second)
    # the second waited for the first's whole second of work: serialised, not merely lucky
    assert abs(first["enter"] - second["enter"]) >= 0.9
    # no Prefect API configured -> the Prefect concurrency limit is skipped (Prefect's concurrency not even loaded)
    assert not first["prefect_concurrency_loaded"] and not second["prefect_concurrency_loaded"]


def test_without_the_lock_the_same_harness_overlaps(tmp_path, lock_url, workers):
    """(2) The harness can fail: the same two workers without the lock do run their sections at the same time."""
    first, second = _race(tmp_path, lock_url, "nolock", workers)
    assert _overlap(first, second), (first, second)


def test_a_waiter_times_out_and_names_the_holder(own, tmp_path, lock_url, workers):
    """(3) A bounded wait: LockTimeout after ~timeout_s, naming the model, the lock database and the holder."""
    (tmp_path / "go").touch()
    holder = _start(tmp_path, lock_url, f"sst2-classifier-{own}", "trainer-on-gpu-7", hold_s=20)
    workers.append(holder)
    _wait_for(tmp_path / "trainer-on-gpu-7.acquired", holder)

    started = time.monotonic()
    with pytest.raises(LockTimeout) as caught:
        with model_lock(f"sst2-classifier-{own}", lock_url, timeout_s=0.5):
            pytest.fail("acquired a lock that another process holds")
    waited = time.monotonic() - started
    # bounded: about timeout_s, far below the holder's 20 s (3.0 s was too tight: 3.4 s once with both cores busy)
    assert 0.5 <= waited < 10.0
    message = str(caught.value)
    assert "trainer-on-gpu-7" in message and f"'sst2-classifier-{own}'" in message and redact(lock_url) in message


def test_a_killed_holder_releases_the_lock(own, tmp_path, lock_url, workers):
    """(4) A holder that dies (SIGKILL: no finally, no atexit) does not leave the model locked."""
    (tmp_path / "go").touch()
    holder = _start(tmp_path, lock_url, f"sst2-classifier-{own}", "doomed", hold_s=60)
    workers.append(holder)
    _wait_for(tmp_path / "doomed.acquired", holder)
    with pytest.raises(LockTimeout, match="doomed"):  # really held before the kill
        with model_lock(f"sst2-classifier-{own}", lock_url, timeout_s=0.3):
            pass

    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    with model_lock(f"sst2-classifier-{own}", lock_url, timeout_s=5, holder="successor") as info:
        assert info == LockInfo(name=f"sst2-classifier-{own}", holder="successor", waited_s=info.waited_s)
        assert info.waited_s < 2.0


def test_locks_of_different_models_do_not_block_each_other(own, tmp_path, lock_url, workers):
    """(6) Per model: another process holding model A does not delay model B, nor does nesting A and B here."""
    (tmp_path / "go").touch()
    holder = _start(tmp_path, lock_url, f"model-a-{own}", "holder-of-a", hold_s=20)
    workers.append(holder)
    _wait_for(tmp_path / "holder-of-a.acquired", holder)

    # a free slot comes at once; 10 s only bound a loaded machine's Prefect API (CI timed out a free one at 1 s):
    # blocked by A, B would wait the 20 s A is held
    with model_lock(f"model-b-{own}", lock_url, timeout_s=10.0) as b:
        assert b.waited_s < 10.0
        with model_lock(f"model-c/with odd name-{own}", lock_url, timeout_s=10.0) as c:
            assert c.waited_s < 10.0
    with pytest.raises(LockTimeout, match="holder-of-a"):
        with model_lock(f"model-a-{own}", lock_url, timeout_s=0.3):
            pass


def test_the_same_model_twice_in_one_thread_fails_fast(own, lock_url):
    """Not re-entrant, and says so at once instead of waiting for itself until the timeout."""
    with model_lock(f"sst2-classifier-{own}", lock_url, timeout_s=10):  # free: 10 s only bound a loaded Prefect API
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="not re-entrant"):
            with model_lock(f"sst2-classifier-{own}", lock_url, timeout_s=30):
                pass
        assert time.monotonic() - started < 1.0
    with model_lock(f"sst2-classifier-{own}", lock_url, timeout_s=10):  # and the failed attempt left nothing held
        pass


@pytest.mark.parametrize("lock_url", ["sqlite"], indirect=True)
def test_the_held_lock_is_a_reserved_sqlite_lock(own, tmp_path, lock_url):
    """The lock really is ``BEGIN IMMEDIATE``: a raw sqlite3 writer is refused while it is held, and only then.

    Also shows why the hooks are needed: an engine left to pysqlite's own transaction handling "begins" without
    taking any lock, so a lock built on it would exclude nothing.
    """
    path = sqlite_lock_path(f"sst2-classifier-{own}", lock_url)
    assert path.parent == tmp_path / "tuneline-locks.d"

    def writer_refused() -> bool:
        raw = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            return True
        raw.execute("ROLLBACK")
        return False
        # (raw is closed by garbage collection; nothing is held after ROLLBACK)

    with model_lock(f"sst2-classifier-{own}", lock_url, timeout_s=2):
        assert writer_refused()
    assert not writer_refused()

    plain = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    with plain.connect() as conn:
        conn.begin()
        assert not writer_refused()  # pysqlite's default: no BEGIN sent, no lock taken
    plain.dispose()
    hooked = _immediate_engine(path, busy_s=0.1)
    with hooked.connect() as conn:
        conn.begin()
        assert writer_refused()
    hooked.dispose()


@pytest.mark.parametrize("lock_url", ["sqlite"], indirect=True)
def test_the_register_names_the_holder_only_while_held(lock_url):
    """The committed register row is how a waiter learns the holder; it is cleared on release."""
    url_path = Path(lock_url.removeprefix("sqlite:///"))

    def recorded() -> tuple:
        with sqlite3.connect(url_path) as raw:
            return raw.execute("SELECT holder FROM tuneline_locks WHERE name = 'm'").fetchone()

    with model_lock("m", lock_url, timeout_s=2, holder="me@host:1"):
        assert recorded() == ("me@host:1",)
    assert recorded() == (None,)


def test_with_a_prefect_api_the_gate_limit_is_created_and_held(own, lock_url):
    """With a Prefect API configured (here the session's throwaway one), the global concurrency limit
    ``tuneline-gate-<model>`` exists with limit 1 and its slot is taken for the with-block."""
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency

    name = f"prefect-gated-model-{own}"
    limit_name = f"{PREFECT_LIMIT_PREFIX}{name}"
    with model_lock(name, lock_url, timeout_s=30):
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(limit_name)
        assert limit.limit == 1
        assert limit.active_slots == 1
        with pytest.raises(TimeoutError):
            with concurrency(limit_name, occupy=1, timeout_seconds=0.5, strict=True):
                pytest.fail("took the gate limit's slot while model_lock held it")
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(limit_name).active_slots == 0

    # and the other way round: a gate slot held elsewhere on the Prefect server bounds model_lock's wait as well
    with concurrency(limit_name, occupy=1, timeout_seconds=5, strict=True):
        with pytest.raises(LockTimeout, match=f"Prefect's concurrency limit '{limit_name}'"):
            with model_lock(name, lock_url, timeout_s=0.5):
                pytest.fail("acquired while the Prefect gate slot was taken")


def test_threads_of_one_process_are_excluded_too(own, lock_url):
    """Gate tasks may run in threads of one flow process: each take is its own connection, so they exclude too."""
    intervals: list[tuple[float, float]] = []
    errors: list[BaseException] = []

    def gate() -> None:
        try:
            with model_lock(f"threaded-model-{own}", lock_url, timeout_s=20):
                enter = time.monotonic()
                time.sleep(0.5)
                intervals.append((enter, time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=gate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors and len(intervals) == 2
    (a_enter, a_leave), (b_enter, b_leave) = intervals
    assert a_leave <= b_enter or b_leave <= a_enter, intervals


def test_a_second_retraining_run_without_a_prefect_server_waits_for_the_first_and_says_so(own, lock_url, capsys,
                                                                                          monkeypatch):
    """Two ``tuneline retrain`` commands from a shell (the embedded Prefect API: no concurrency limit to share)
    trained side by side, each at half speed, when the first held no batch (retraining on the current data)."""
    import tuneline.locking as locking

    monkeypatch.setattr(locking, "prefect_api_url", lambda: None)  # as from a shell: the test session has an API
    intervals: list[tuple[float, float]] = []
    errors: list[BaseException] = []
    first_in = threading.Event()

    def retraining(hold_s: float, signal_in: bool) -> None:
        try:
            with retraining_slot(f"tickets-{own}", timeout_s=30, lock_url=lock_url):
                enter = time.monotonic()
                if signal_in:
                    first_in.set()
                time.sleep(hold_s)
                intervals.append((enter, time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    from tuneline.timings import WAITING, task_times, time_breakdown

    since = time.time()
    first = threading.Thread(target=retraining, args=(3.0, True))  # long enough to be found at work on a busy machine
    first.start()
    assert first_in.wait(20)
    second = threading.Thread(target=retraining, args=(0.1, False))
    second.start()
    for thread in (first, second):
        thread.join(timeout=40)
    assert not errors and len(intervals) == 2
    (a_enter, a_leave), (b_enter, _) = intervals
    assert b_enter >= a_leave, intervals
    printed = capsys.readouterr().out
    assert f"another retraining run of tickets-{own} is in progress ({default_holder()} since " in printed
    # the wait is a stage of its own in the run's time line, not "startup" (which read as a slow start)
    (waited,) = [r for r in task_times(since) if r.name == WAITING]
    assert 1.5 < waited.seconds <= a_leave - a_enter + 1.0, (waited, intervals)
    breakdown = time_breakdown(0.0, since=since)
    assert breakdown.stages[WAITING] == round(waited.seconds, 3) and breakdown.startup_s < 1.5
    assert f"{WAITING} {waited.seconds:.0f} s" in breakdown.line()
    with model_lock(f"tickets-{own}", lock_url, timeout_s=0):  # the gate lock of the model is another lock
        with retraining_slot(f"tickets-{own}", timeout_s=0, lock_url=lock_url):
            pass


def test_default_lock_url(tmp_path, monkeypatch):
    """(5) Beside a SQLite MLflow store (never the MLflow database itself); the cwd for any other tracking URI;
    $TUNELINE_LOCK_URL over everything."""
    monkeypatch.delenv("TUNELINE_LOCK_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "runs" / "mlflow.db"
    assert default_lock_url(f"sqlite:///{store}") == f"sqlite:///{store.parent / LOCK_DB_NAME}"
    assert default_lock_url("sqlite:///mlflow.db") == f"sqlite:///{LOCK_DB_NAME}"  # relative, like MLflow's own
    in_cwd = f"sqlite:///{tmp_path / LOCK_DB_NAME}"
    assert default_lock_url("http://mlflow.internal:5000") == in_cwd
    assert default_lock_url("postgresql://user:secret@db/mlflow") == in_cwd
    assert default_lock_url("./mlruns") == in_cwd
    assert default_lock_url("sqlite://") == in_cwd  # an in-memory store shares nothing to lock beside

    monkeypatch.setenv("TUNELINE_LOCK_URL", "postgresql://gate:secret@locks/tuneline")
    assert default_lock_url("http://mlflow.internal:5000") == "postgresql://gate:secret@locks/tuneline"
    assert default_lock_url(f"sqlite:///{store}") == "postgresql://gate:secret@locks/tuneline"


def test_lock_urls_that_cannot_lock_are_refused(tmp_path):
    """An in-memory SQLite database is private to one connection, and other databases are not implemented."""
    with pytest.raises(ValueError, match="in-memory"):
        with model_lock("m", "sqlite://"):
            pass
    with pytest.raises(ValueError, match=r"unsupported lock database mysql://\*\*\*@db/x"):
        with model_lock("m", "mysql://root:hunter2@db/x"):
            pass


def test_a_second_retraining_run_on_a_prefect_api_says_it_waits_for_the_concurrency_slot(own, capsys):
    """With a Prefect API the slot is Prefect's global concurrency limit; a second `tuneline retrain` waited on it
    for minutes without a word (operator QA: 1 min 35 s, read as a hang). It now says whom it waits for, once."""
    first_in, errors, entered = threading.Event(), [], []

    def hold() -> None:
        try:
            with retraining_slot(f"slot-words-{own}", timeout_s=60):
                first_in.set()
                time.sleep(4.0)
                entered.append(("first", time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    holder = threading.Thread(target=hold)
    holder.start()
    assert first_in.wait(60)
    with retraining_slot(f"slot-words-{own}", timeout_s=60):
        entered.append(("second", time.monotonic()))
    holder.join(timeout=60)
    assert not errors and [who for who, _ in entered] == ["first", "second"]
    printed = capsys.readouterr().out
    assert printed.count(f"another retraining run of slot-words-{own} holds the Prefect concurrency limit "
                         f"'tuneline-retrain-slot-words-{own}-") == 1 and "this one waits for it to end (at most 60 s" in printed


def _limit(name: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name)


def test_a_retraining_slot_no_run_holds_is_freed_by_the_next_run(lock_url, monkeypatch, capsys):
    """Fault injection: a ``prefect server`` restart forgets the leases (kept in its memory) but not the slots they
    counted, so the slot of the run that held it was never freed and every later retraining run waited an hour "for
    another retraining run" that did not exist (operator QA). Here the limit is left full with no holder, as the
    restart leaves it; the next run finds the retraining database lock free at two looks, frees the slot, runs, and
    gives its own slot back."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    from tuneline import locking

    monkeypatch.setattr(locking, "STALE_SLOT_CHECK_S", 1.0)
    monkeypatch.setattr(locking, "STALE_SLOT_CONFIRM_S", 0.2)
    model = f"leaked-slot-{lock_url.split(':')[0]}"
    limit_name = f"{locking.RETRAIN_LIMIT_PREFIX}{locking._slug(model)}"
    locking._ensure_prefect_limit(limit_name)
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(limit_name, GlobalConcurrencyLimitUpdate(active_slots=1))
    clock = time.monotonic()
    with retraining_slot(model, timeout_s=60, lock_url=lock_url, free_stale_slots=True):
        assert _limit(limit_name).active_slots == 1  # its own
        entered = time.monotonic() - clock
    assert entered < 30, entered
    printed = capsys.readouterr().out
    assert printed.count(f"freed a slot of the Prefect concurrency limit {limit_name!r} that no retraining run of "
                         f"{model} holds") == 1, printed
    assert _limit(limit_name).active_slots == 0


@pytest.mark.parametrize("release_delay_s", [0.0, 2.5], ids=["prompt-release", "slow-release"])
def test_a_retraining_slot_a_live_run_holds_is_not_freed(lock_url, release_delay_s, monkeypatch, capsys, caplog):
    """The other side: while a live run holds the slot (and so the retraining database lock), a waiting run checks
    every second and frees nothing; it enters after the first has left.

    Fault injection: a slot release that takes seconds (a loaded server). The holder let go of the database lock
    before the slot, and a waiter that looked in between found the lock free and the slot still counted, and freed
    the live run's slot (seen in CI on a loaded machine); the slot is now let go first.

    And quietly: each wait that timed out to look at the lock logged Prefect's ERROR "Service
    'ConcurrencySlotAcquisitionWithLeaseService' failed to process item (... raised TimeoutError>)", once a minute."""
    import prefect.concurrency._sync as prefect_sync

    from tuneline import locking

    monkeypatch.setattr(locking, "STALE_SLOT_CHECK_S", 1.0)
    monkeypatch.setattr(locking, "STALE_SLOT_CONFIRM_S", 0.2)
    release = prefect_sync.release_concurrency_slots_with_lease

    def slow_release(lease_id):  # noqa: ANN001, ANN202 - Prefect's signature
        time.sleep(release_delay_s)
        return release(lease_id)

    monkeypatch.setattr(prefect_sync, "release_concurrency_slots_with_lease", slow_release)
    model = f"live-slot-{lock_url.split(':')[0]}-{release_delay_s:g}"
    first_in, errors, intervals = threading.Event(), [], []

    def hold() -> None:
        try:
            with retraining_slot(model, timeout_s=60, lock_url=lock_url, free_stale_slots=True):
                enter = time.monotonic()
                first_in.set()
                time.sleep(6.0)
                intervals.append((enter, time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    holder = threading.Thread(target=hold)
    holder.start()
    assert first_in.wait(60)
    with retraining_slot(model, timeout_s=60, lock_url=lock_url, free_stale_slots=True):
        second = time.monotonic()
    holder.join(timeout=60)
    assert not errors and len(intervals) == 1 and second >= intervals[0][1], (intervals, second)
    assert "freed a slot" not in capsys.readouterr().out
    assert not [r for r in caplog.records if "failed to process item" in r.getMessage()]


def test_doctor_names_and_frees_a_retraining_slot_no_run_holds(tmp_path, monkeypatch, capsys):
    """The slot a Prefect server restart leaves counted with no holder: `tuneline doctor` names it and `--fix` frees
    it (a waiting run frees it too, but only once one waits); one a live run holds is not named."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    from tuneline import locking
    from tuneline.cli import main

    monkeypatch.setattr(locking, "STALE_SLOT_CONFIRM_S", 0.2)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    model = f"doctor-slot-{os.getpid()}"
    store_client(uri).create_registered_model(model)
    limit_name = f"{locking.RETRAIN_LIMIT_PREFIX}{locking._slug(model)}"
    locking._ensure_prefect_limit(limit_name)
    doctor = ["doctor", "--tracking-uri", uri, "-m", model, "--work-dir", str(tmp_path)]

    first_in, done, errors = threading.Event(), threading.Event(), []

    def hold() -> None:
        try:
            with retraining_slot(model, timeout_s=60, lock_url=locking.default_lock_url(uri), free_stale_slots=True):
                first_in.set()
                done.wait(60)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    holder = threading.Thread(target=hold)
    holder.start()
    assert first_in.wait(60)
    try:
        assert main(doctor) == 0
        assert "slot(s) taken" not in capsys.readouterr().out  # a live run's slot
    finally:
        done.set()
        holder.join(60)
    assert not errors and _limit(limit_name).active_slots == 0

    with get_client(sync_client=True) as client:  # as a server restart leaves it
        client.update_global_concurrency_limit(limit_name, GlobalConcurrencyLimitUpdate(active_slots=1))
    said = f"  {model}: Prefect concurrency limit {limit_name!r} on "
    assert main(doctor) == 0
    out = capsys.readouterr().out
    assert said in out and (f"has 1 of 1 slot(s) taken, but no retraining run of {model} holds one (its run was "
                            "killed and Prefect's lease on the slot has not run out yet (up to 5 minutes), or a "
                            "Prefect server restart forgot the lease) (--fix frees one") in out, out
    assert _limit(limit_name).active_slots == 1
    assert main([*doctor, "--fix"]) == 0
    assert ("holds one (its run was killed and Prefect's lease on the slot has not run out yet (up to 5 minutes), or "
            "a Prefect server restart forgot the lease): one freed") in capsys.readouterr().out
    assert _limit(limit_name).active_slots == 0
