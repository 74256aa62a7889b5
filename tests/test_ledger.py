"""The batch ledger (tuneline.ledger) with real files, a real database and real processes.

Every test runs against a SQLite ledger file in ``tmp_path`` and against PostgreSQL: the database named by
``TUNELINE_TEST_POSTGRES_URL`` when set, else the session's throwaway cluster (``postgres_url`` in conftest.py; skipped
with a reason when PostgreSQL is not installed). Nothing is mocked:
batches are files and folders in a landing folder, claimers are separate ``python`` processes, and the run killed
in the middle is killed with SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tuneline.ledger import (
    CLAIMED,
    DROPPED,
    DUPLICATE,
    LANDED,
    LEDGER_DB_NAME,
    REJECTED,
    USED,
    VALIDATED,
    BatchChanged,
    Ledger,
    LedgerConflict,
    LedgerError,
    default_ledger_url,
    fetch_batch,
    waiting_landings,
)

POSTGRES_ENV = "TUNELINE_TEST_POSTGRES_URL"

# One claimer process. Opens the ledger, says it is ready, then:
#   race:               waits for the "go" file, then claims one batch at a time until nothing is left;
#   validate-then-hang: claims everything, validates it, reports, and "trains" until it is killed;
#   finish:             claims everything and marks it used by model version 2 (what a restarted run does).
WORKER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from tuneline.ledger import Ledger

    url, model, run_id, mode, lease_s, folder = sys.argv[1:7]
    folder = Path(folder)
    ledger = Ledger(url, model, lease_s=float(lease_s))
    (folder / f"{run_id}.ready").touch()
    report = folder / f"{run_id}.json"

    def publish(value):
        # write then rename: the test polls for the file, and must never read it half-written
        part = folder / f"{run_id}.json.part"
        part.write_text(json.dumps(value))
        part.replace(report)

    if mode == "race":
        give_up = time.monotonic() + 60
        while not (folder / "go").exists():
            if time.monotonic() > give_up:
                sys.exit("no go signal")
            time.sleep(0.005)
        got = []
        while batches := ledger.claim(run_id, max_batches=1):
            got += [b.content_hash for b in batches]
            time.sleep(0.02)  # a little work between two claims, so that neither process starves the other (2 busy cores)
        publish(got)
    elif mode == "validate-then-hang":
        got = ledger.claim(run_id)
        for b in got:
            ledger.mark_validated(run_id, b.content_hash, 10, 1, str(folder / f"{b.name}.quarantine.jsonl"))
        publish([b.content_hash for b in got])
        time.sleep(600)
    elif mode == "finish":
        got = ledger.claim(run_id)
        used = ledger.mark_used(run_id, "2", expected=[b.content_hash for b in got])
        publish({"claimed": [[b.content_hash, b.state] for b in got], "used": [b.content_hash for b in used]})
    else:
        sys.exit(f"unknown mode {mode}")
""")

ORPHAN = ("orphan.csv.done (a marker without orphan.csv beside it: the data file is missing or named otherwise; "
          "a marker is the data file's name plus .done)")


# --------------------------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / LEDGER_DB_NAME}"
    return os.environ.get(POSTGRES_ENV) or request.getfixturevalue("postgres_url")


@pytest.fixture
def model() -> str:
    """A registered model name of its own per test, so that tests never see each other's rows in a shared database."""
    return f"intents-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def landing(tmp_path) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen]]:
    """Started workers; any still running at the end of a test is killed."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def csv_bytes(tag: str, rows: int = 3) -> bytes:
    return ("text,label\n" + "".join(f"{tag} row {i},billing\n" for i in range(rows))).encode()


def land(landing: Path, name: str, data: bytes) -> Path:
    """What a well-behaved producer does: write the data, then the marker."""
    path = landing / name
    path.write_bytes(data)
    marker = landing / f"{name}.done"
    marker.touch()
    stamp_after(marker, path)
    return path


def stamp_after(marker: Path, *data: Path) -> None:
    """Give the marker a modification time later than every data file's, whatever the file system's resolution."""
    latest = max(p.stat().st_mtime_ns for p in data)
    os.utime(marker, ns=(latest + 10**9, latest + 10**9))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def start(folder: Path, url: str, model: str, run_id: str, mode: str, lease_s: float = 600.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, url, model, run_id, mode, str(lease_s), str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    give_up = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"worker ended before {path.name}: {proc.communicate()}")
        if time.monotonic() > give_up:
            raise AssertionError(f"no {path.name} after {timeout_s}s")
        time.sleep(0.01)


def finish(proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    out, err = proc.communicate(timeout=timeout_s)
    assert proc.returncode == 0, err


def states(ledger: Ledger) -> dict[str, str]:
    return {b.name: b.state for b in ledger.batches()}


# --------------------------------------------------------------------------------------------------------------
# the completeness rule


def test_partial_files_are_ignored_until_complete_then_recorded_once(ledger_url, model, landing):
    """Only a marker makes a batch complete: a half-written file, temporary names, a folder without _SUCCESS and a
    file rewritten after its marker are never recorded; once complete, each is recorded exactly once."""
    ledger = Ledger(ledger_url, model)
    full = csv_bytes("first", rows=50)
    partial = landing / "tickets-01.csv"
    partial.write_bytes(full[: len(full) // 2])                       # the producer is still writing
    (landing / "tickets-02.csv.part").write_bytes(csv_bytes("part"))  # a temporary name, even with a marker
    (landing / "tickets-02.csv.part.done").touch()
    (landing / ".tickets-03.csv").write_bytes(csv_bytes("hidden"))
    (landing / ".tickets-03.csv.done").touch()
    spark = landing / "export-2024-06-01"
    spark.mkdir()
    (spark / "part-00000.csv").write_bytes(csv_bytes("spark-a"))
    (spark / "part-00001.csv").write_bytes(csv_bytes("spark-b"))
    (spark / ".part-00000.csv.crc").write_bytes(b"crc")
    (landing / "orphan.csv.done").touch()                             # a marker without data

    assert ledger.scan(landing) == []
    assert ledger.batches() == []
    assert waiting_landings(landing) == ["export-2024-06-01 (no _SUCCESS in it)",  # what a run says it waits for
                                         ORPHAN, "tickets-01.csv (no tickets-01.csv.done beside it)"]

    partial.write_bytes(full)                                          # finished, but not marked yet
    assert ledger.scan(landing) == []
    (spark / "_SUCCESS").touch()
    stamp_after(spark / "_SUCCESS", *spark.iterdir())
    (landing / "tickets-01.csv.done").touch()                          # landed second: recorded second
    stamp_after(landing / "tickets-01.csv.done", partial, spark / "_SUCCESS")

    recorded = ledger.scan(landing)
    assert [(b.name, b.state, b.kind) for b in recorded] == [("export-2024-06-01", LANDED, "folder"),
                                                              ("tickets-01.csv", LANDED, "file")]
    file_batch = recorded[1]
    assert file_batch.content_hash == sha256(full)   # the whole file, not the half that was there first
    assert file_batch.size_bytes == len(full) and file_batch.format == "csv"
    assert recorded[0].files == 2 and recorded[0].format == "csv"  # _SUCCESS and the hidden .crc are not data
    assert ledger.scan(landing) == []                # idempotent
    assert len(ledger.batches()) == 2
    assert waiting_landings(landing) == [ORPHAN]
    # the marker of a batch already taken, whose data a clean-up removed, waits for nothing (operator QA: every
    # run listed it as "not read yet")
    assert waiting_landings(landing, recorded=["orphan.csv", "tickets-01.csv"]) == []

    # The producer rewrites a marked file in place: until the marker is touched again, the new content is not read.
    newer = csv_bytes("second", rows=7)
    partial.write_bytes(newer)
    marker_time = (landing / "tickets-01.csv.done").stat().st_mtime_ns
    os.utime(partial, ns=(marker_time + 5 * 10**9, marker_time + 5 * 10**9))
    assert ledger.scan(landing) == []
    assert waiting_landings(landing) == [ORPHAN,
                                         "tickets-01.csv (changed after tickets-01.csv.done: touch the marker again)"]
    # ... but once a run has copied and used it, the edit is never read, and touching the marker only landed it as a
    # new batch whose changed labels conflict with the old ones (operator QA): said so, with what to do instead
    assert waiting_landings(landing, recorded={"tickets-01.csv": USED, "orphan.csv": REJECTED}) == [
        ORPHAN, "tickets-01.csv (changed after the loop took its copy, a batch now used: the loop reads that copy, "
                "never this edit; to correct labels use `tuneline data relabel` (rows already landed), or land the "
                "corrected rows as a new file; restore tickets-01.csv as it was to silence this)"]
    assert waiting_landings(landing, recorded={"tickets-01.csv": LANDED})[1].endswith("touch the marker again)")
    # data stamped in the future (a producer's clock ahead): touching the marker cannot help, and it is said so
    future = time.time_ns() + 3600 * 10**9
    os.utime(partial, ns=(future, future))
    assert waiting_landings(landing)[1] == (
        "tickets-01.csv (its modification time is in the future (the producer's clock is ahead of this machine's?), "
        "so it stays newer than tickets-01.csv.done: touch tickets-01.csv, then its marker)")
    os.utime(partial, ns=(marker_time + 5 * 10**9, marker_time + 5 * 10**9))
    stamp_after(landing / "tickets-01.csv.done", partial)
    (again,) = ledger.scan(landing)
    assert (again.name, again.state, again.content_hash) == ("tickets-01.csv", LANDED, sha256(newer))

    # An atomic rename to the final name plus its marker completes the .part file.
    (landing / "tickets-02.csv.part").rename(landing / "tickets-02.csv")
    (landing / "tickets-02.csv.done").touch()
    stamp_after(landing / "tickets-02.csv.done", landing / "tickets-02.csv")
    assert [b.name for b in ledger.scan(landing)] == ["tickets-02.csv"]
    assert ledger.scan(landing) == []
    assert sorted(b.name for b in ledger.batches()) == ["export-2024-06-01", "tickets-01.csv", "tickets-01.csv",
                                                        "tickets-02.csv"]

    # Complete but unreadable (no format the training flow reads): recorded as rejected, with the reason, never claimed.
    land(landing, "notes.xyz", b"not a table")
    (unreadable,) = ledger.scan(landing)
    assert unreadable.state == REJECTED and "cannot tell the format" in unreadable.reasons[0]
    assert "notes.xyz" not in {b.name for b in ledger.claim("run-1")}


def test_a_folder_batch_leaves_out_what_datasets_ship_beside_their_data(ledger_url, model, landing):
    """``datasets``' ``save_to_disk`` writes its Arrow shard beside ``dataset_info.json`` and ``state.json``, and a
    producer may add a README: the batch was rejected ("cannot tell the format of README.md", or JSON and Parquet
    mixed). They are left out as a configured data folder leaves them (tuneline.shards)."""
    import pyarrow as pa

    folder = landing / "hf-export-07"
    folder.mkdir()
    table = pa.table({"text": ["my card was charged twice", "where is my parcel"], "label": ["billing", "shipping"]})
    with pa.ipc.new_stream(str(folder / "data-00000-of-00001.arrow"), table.schema) as writer:
        writer.write_table(table)
    (folder / "dataset_info.json").write_text(json.dumps({"features": {}}))
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (folder / "README.md").write_text("# export 07\n")
    (folder / "_SUCCESS").touch()
    stamp_after(folder / "_SUCCESS", *[p for p in folder.iterdir() if p.name != "_SUCCESS"])
    [batch] = Ledger(ledger_url, model).scan(landing)
    assert (batch.name, batch.state, batch.kind, batch.files, batch.format) == (
        "hf-export-07", LANDED, "folder", 1, "parquet"), batch.reasons


def test_two_copies_landed_before_one_scan_blame_the_later_landing_not_the_later_name(ledger_url, model, landing):
    """The landing order is the markers' times: the file that landed second is the copy, whatever its name (name
    order called the earlier file, 'tickets-new.csv' landed at 09:00, a copy of 'tickets-copy.csv' landed at 10:00)."""
    data = csv_bytes("billing")
    first, second = land(landing, "z-first.csv", data), land(landing, "a-second.csv", data)
    for path, hour in ((first, 9), (second, 10)):
        stamp = int(datetime(2026, 12, 1, hour, tzinfo=timezone.utc).timestamp() * 1e9)
        os.utime(path, ns=(stamp - 10**9, stamp - 10**9))
        os.utime(landing / f"{path.name}.done", ns=(stamp, stamp))
    original, copy = Ledger(ledger_url, model).scan(landing)
    assert (original.name, original.state) == ("z-first.csv", LANDED)
    assert (copy.name, copy.state, copy.duplicate_of) == ("a-second.csv", DUPLICATE, original.id)


def test_a_duplicate_is_recorded_once_and_never_claimed(ledger_url, model, landing):
    """Same bytes under a new name: recorded as a duplicate pointing at the original; the same file touched again is
    the same landing; only the original is ever claimed."""
    ledger = Ledger(ledger_url, model)
    data = csv_bytes("shipping")
    land(landing, "batch-07.csv", data)
    (original,) = ledger.scan(landing)
    assert original.state == LANDED

    copy = land(landing, "batch-07 (copy).csv", data)
    (dup,) = ledger.scan(landing)
    assert (dup.state, dup.duplicate_of, dup.content_hash) == (DUPLICATE, original.id, original.content_hash)

    for name in ("batch-07.csv", copy.name):         # touched again, same bytes: nothing new is recorded
        os.utime(landing / name)
        stamp_after(landing / f"{name}.done", landing / name)
    assert ledger.scan(landing) == []
    assert [b.state for b in ledger.batches()] == [LANDED, DUPLICATE]

    claimed = ledger.claim("retrain-1")
    assert [b.id for b in claimed] == [original.id]
    ledger.mark_validated("retrain-1", original.content_hash, 3, 0)
    ledger.mark_used("retrain-1", "4")

    land(landing, "batch-07-redelivered.csv", data)  # after the original was used: still a duplicate
    (late,) = ledger.scan(landing)
    assert (late.state, late.duplicate_of) == (DUPLICATE, original.id)
    assert ledger.claim("retrain-2") == []
    assert [b.state for b in ledger.batches()] == [USED, DUPLICATE, DUPLICATE]
    used_events = [e for e in ledger.history(original.content_hash) if e.to_state == USED]
    assert len(used_events) == 1


def test_a_burst_of_batches_is_folded_into_one_claim(ledger_url, model, landing):
    """Three batches that landed together go to one run; the next run finds nothing; max_batches caps a claim."""
    ledger = Ledger(ledger_url, model)
    for i in range(3):
        land(landing, f"burst-{i}.jsonl", json.dumps({"text": f"t{i}", "label": "billing"}).encode() + b"\n")
    assert len(ledger.scan(landing)) == 3

    claim = ledger.claim("retrain-1")
    assert sorted(b.name for b in claim) == ["burst-0.jsonl", "burst-1.jsonl", "burst-2.jsonl"]
    assert {(b.state, b.claimed_by) for b in claim} == {(CLAIMED, "retrain-1")}
    assert all(b.format == "jsonl" for b in claim)
    assert ledger.claim("retrain-2") == []

    capped = Ledger(ledger_url, f"{model}-capped")   # another model on the same database: a ledger of its own
    assert capped.batches() == [] and len(capped.scan(landing)) == 3
    assert [len(capped.claim(f"run-{i}", max_batches=2)) for i in range(3)] == [2, 1, 0]


# --------------------------------------------------------------------------------------------------------------
# exactly once across processes


def test_exactly_once_when_a_run_is_killed_after_validation(ledger_url, model, landing, tmp_path, workers):
    """Run A claims and validates, then is SIGKILLed before mark_used. While its lease lives nobody gets the batches;
    after it expires run B (another process) takes them over, still validated, and marks them used; a third claim
    gets nothing; A, were it still alive, can no longer touch them; every batch is used exactly once."""
    lease_s = 4.0
    ledger = Ledger(ledger_url, model)
    for i in range(3):
        land(landing, f"tickets-{i}.csv", csv_bytes(f"restart {i}"))
    hashes = sorted(b.content_hash for b in ledger.scan(landing))

    proc_a = start(tmp_path, ledger_url, model, "run-A", "validate-then-hang", lease_s=lease_s)
    workers.append(proc_a)
    wait_for(tmp_path / "run-A.json", proc_a)
    assert sorted(json.loads((tmp_path / "run-A.json").read_text())) == hashes
    os.kill(proc_a.pid, signal.SIGKILL)
    proc_a.wait(timeout=30)
    assert proc_a.returncode == -signal.SIGKILL

    assert ledger.claim("run-too-early") == []       # the dead run's lease has not expired yet
    assert set(states(ledger).values()) == {VALIDATED}
    expiry = max(b.lease_expires_at for b in ledger.batches())
    time.sleep(max((expiry - datetime.now(timezone.utc)).total_seconds(), 0) + 0.2)

    proc_b = start(tmp_path, ledger_url, model, "run-B", "finish")
    workers.append(proc_b)
    finish(proc_b)
    report = json.loads((tmp_path / "run-B.json").read_text())
    assert sorted(h for h, _state in report["claimed"]) == hashes
    assert {state for _h, state in report["claimed"]} == {VALIDATED}   # validation is not redone
    assert sorted(report["used"]) == hashes

    assert ledger.claim("run-C") == []
    for batch in ledger.batches():
        assert (batch.state, batch.used_by_run, batch.model_version) == (USED, "run-B", "2")
        assert (batch.rows_accepted, batch.rows_rejected) == (10, 1)  # A's validation, kept
    with pytest.raises(LedgerConflict, match="does not hold the batches it trained on"):
        ledger.mark_used("run-A", "1", expected=hashes)  # a zombie A cannot record them used a second time
    with pytest.raises(LedgerConflict, match="used by run 'run-B'"):
        ledger.mark_validated("run-A", hashes[0], 10, 1)

    history = ledger.history()
    for h in hashes:
        events = [(e.from_state, e.to_state, e.run_id) for e in history if e.content_hash == h]
        assert events == [(None, LANDED, None), (LANDED, CLAIMED, "run-A"), (CLAIMED, VALIDATED, "run-A"),
                          (VALIDATED, VALIDATED, "run-B"), (VALIDATED, USED, "run-B")]
    assert all("taken over from run 'run-A'" in e.detail for e in history if e.run_id == "run-B"
               and e.from_state == e.to_state == VALIDATED)


def test_two_processes_claiming_at_once_never_share_a_batch(ledger_url, model, landing, tmp_path, workers):
    """Two claimer processes, released together, claim one batch at a time until nothing is left: each batch goes to
    exactly one of them and none is lost."""
    ledger = Ledger(ledger_url, model)
    for i in range(40):
        land(landing, f"b{i:02d}.csv", csv_bytes(f"race {i}"))
    hashes = {b.content_hash for b in ledger.scan(landing)}
    assert len(hashes) == 40

    procs = [start(tmp_path, ledger_url, model, run_id, "race") for run_id in ("claimer-1", "claimer-2")]
    workers.extend(procs)
    for run_id, proc in zip(("claimer-1", "claimer-2"), procs):
        wait_for(tmp_path / f"{run_id}.ready", proc)
    (tmp_path / "go").touch()
    for proc in procs:
        finish(proc)
    one, two = (json.loads((tmp_path / f"{run_id}.json").read_text()) for run_id in ("claimer-1", "claimer-2"))

    assert set(one).isdisjoint(two)
    assert len(one) + len(two) == 40 and set(one) | set(two) == hashes
    assert one and two, "both claimers must have taken part, or the race tested nothing"
    owners = {b.content_hash: b.claimed_by for b in ledger.batches()}
    assert {h for h, run in owners.items() if run == "claimer-1"} == set(one)
    assert [e.to_state for e in ledger.history()].count(CLAIMED) == 40   # no batch was claimed twice


# --------------------------------------------------------------------------------------------------------------
# release, rejection, leases


def test_release_returns_batches_and_a_rejected_batch_is_never_claimed_again(ledger_url, model, landing):
    """A failed run gives back what it holds (validated ones keep their validation); a rejected batch is final, even
    after every lease has expired; mark_used waits for every held batch to be validated or rejected."""
    ledger = Ledger(ledger_url, model, lease_s=0.3)
    for name in ("a.csv", "b.csv", "c.csv"):
        land(landing, name, csv_bytes(name))
    a, b, c = ledger.scan(landing)

    assert len(ledger.claim("run-1")) == 3
    rejected = ledger.mark_rejected("run-1", a.content_hash, ["label 'refund?' never seen before"], "q/a.jsonl")
    assert (rejected.state, rejected.reasons, rejected.quarantine_path) == (
        REJECTED, ("label 'refund?' never seen before",), "q/a.jsonl")
    ledger.mark_validated("run-1", b.content_hash, 3, 0, "q/b.jsonl")

    released = ledger.release("run-1")               # the run failed
    assert {(x.name, x.state, x.claimed_by) for x in released} == {("b.csv", VALIDATED, None), ("c.csv", LANDED, None)}
    assert ledger.release("run-1") == []
    assert states(ledger) == {"a.csv": REJECTED, "b.csv": VALIDATED, "c.csv": LANDED}

    again = ledger.claim("run-2")
    assert sorted((x.name, x.state) for x in again) == [("b.csv", VALIDATED), ("c.csv", CLAIMED)]
    assert ledger.batch(b.content_hash).rows_accepted == 3
    time.sleep(0.5)                                  # run-2's lease expires without a heartbeat
    taken = ledger.claim("run-3")
    assert sorted(x.name for x in taken) == ["b.csv", "c.csv"]   # never a.csv
    with pytest.raises(LedgerConflict, match="rejected"):
        ledger.mark_validated("run-3", a.content_hash, 3, 0)
    with pytest.raises(LedgerConflict, match="before it validated or rejected c.csv"):
        ledger.mark_used("run-3", "5")
    assert states(ledger)["b.csv"] == VALIDATED     # the refused mark_used changed nothing
    ledger.mark_validated("run-3", c.content_hash, 3, 0)
    assert sorted(x.name for x in ledger.mark_used("run-3", "5")) == ["b.csv", "c.csv"]
    time.sleep(0.4)
    assert ledger.claim("run-4") == []
    assert states(ledger) == {"a.csv": REJECTED, "b.csv": USED, "c.csv": USED}


def test_heartbeat_keeps_a_claim_and_its_absence_lets_it_go(ledger_url, model, landing):
    """While a run heartbeats, its batches are not free even past the first lease; once it stops, another run takes
    them over and the first one's heartbeat reports that it holds nothing."""
    first, second = Ledger(ledger_url, model, lease_s=1.0), Ledger(ledger_url, model, lease_s=1.0)
    land(landing, "slow.csv", csv_bytes("slow"))
    first.scan(landing)
    assert len(first.claim("slow-run")) == 1
    give_up = time.monotonic() + 2.5                 # 2.5 lease lengths
    while time.monotonic() < give_up:
        assert first.heartbeat("slow-run") == 1
        assert second.claim("eager-run") == []
        time.sleep(0.25)
    time.sleep(1.2)
    assert [b.name for b in second.claim("eager-run")] == ["slow.csv"]
    assert first.heartbeat("slow-run") == 0


# --------------------------------------------------------------------------------------------------------------
# reading a batch: what landed, or nothing


def test_a_batch_is_read_as_it_landed_or_not_at_all(tmp_path, model, landing):
    """fetch_batch copies a batch into the dataset folder, hashing the copy: a file rewritten after it landed (a
    producer half-way through, or other content) or removed is refused with both hashes and what to do, and leaves
    no copy behind; a checked copy is what every later read gets, whatever the landing folder holds by then. The
    rewritten file, once its marker is touched, is a new batch."""
    ledger = Ledger(f"sqlite:///{tmp_path / LEDGER_DB_NAME}", model)
    full = csv_bytes("full", rows=200)
    kept = land(landing, "kept.csv", csv_bytes("kept"))
    rewritten = land(landing, "rewritten.csv", full)
    gone = land(landing, "gone.csv", csv_bytes("gone"))
    folder = landing / "export"
    folder.mkdir()
    (folder / "part-0.csv").write_bytes(csv_bytes("part-0"))
    (folder / "part-1.csv").write_bytes(csv_bytes("part-1"))
    (folder / "_SUCCESS").touch()
    stamp_after(folder / "_SUCCESS", folder / "part-0.csv", folder / "part-1.csv")
    recorded = {b.name: b for b in ledger.scan(landing)}
    cache = tmp_path / "datasets" / "landed"

    def fetch(name: str) -> list[Path]:
        batch = recorded[name]
        return fetch_batch(batch.path, batch.kind, cache / batch.content_hash, batch.content_hash)

    (copy,) = fetch("kept.csv")
    assert copy.read_bytes() == kept.read_bytes() and copy.parent == cache / recorded["kept.csv"].content_hash
    kept.write_bytes(csv_bytes("later"))
    assert fetch("kept.csv") == [copy] and copy.read_bytes() == csv_bytes("kept")  # the checked copy, not the file
    assert [p.name for p in fetch("export")] == ["part-0.csv", "part-1.csv"]          # a folder: by the same rule

    rewritten.write_bytes(full[:3000])                                  # the producer rewrites it in place
    with pytest.raises(BatchChanged) as caught:
        fetch("rewritten.csv")
    assert str(caught.value) == (
        f"file {rewritten} changed after it landed (recorded sha256 {sha256(full)[:12]}…, now "
        f"{sha256(full[:3000])[:12]}…): the recorded content is gone, so it is not used; once the new content is "
        "complete, touch rewritten.csv.done again and it lands as a new batch")
    gone.unlink()
    with pytest.raises(BatchChanged, match=r"^file .*gone.csv no longer exists: it was removed after it landed"):
        fetch("gone.csv")
    (folder / "part-1.csv").write_bytes(csv_bytes("part-1 again"))
    (cache / recorded["export"].content_hash).rename(tmp_path / "export-copy")  # as if never fetched
    with pytest.raises(BatchChanged, match=r"^folder .*export changed after it landed .* touch its _SUCCESS again"):
        fetch("export")
    assert sorted(p.name for p in cache.iterdir()) == [recorded["kept.csv"].content_hash]  # no half copy left

    stamp_after(landing / "rewritten.csv.done", rewritten)               # the producer finishes: a new batch
    (again,) = [b for b in ledger.scan(landing) if b.name == "rewritten.csv"]
    assert (again.state, again.content_hash) == (LANDED, sha256(full[:3000]))
    assert [(b.name, b.content_hash) for b in ledger.free_batches() if b.name == "rewritten.csv"] == [
        ("rewritten.csv", sha256(full)), ("rewritten.csv", sha256(full[:3000]))]


# --------------------------------------------------------------------------------------------------------------
# persistence, URLs, redaction


def test_the_ledger_persists_across_ledger_objects_and_models_are_separate(ledger_url, model, landing):
    ledger = Ledger(ledger_url, model)
    land(landing, "a-kept.csv", csv_bytes("kept"))
    land(landing, "b-copy.csv", csv_bytes("kept"))
    ledger.scan(landing)
    (batch,) = ledger.claim("run-1")
    ledger.mark_validated("run-1", batch.content_hash, 3, 0, "quarantine.jsonl")
    before, history = ledger.batches(), ledger.history()
    ledger.close()

    reopened = Ledger(ledger_url, model)
    assert reopened.batches() == before
    assert reopened.history() == history
    assert reopened.scan(landing) == []              # nothing is recorded twice after a restart
    assert reopened.claim("run-2") == []             # run-1's lease is in the database, not in the object
    assert [b.name for b in reopened.batches(DUPLICATE)] == ["b-copy.csv"]
    assert Ledger(ledger_url, f"{model}-other").batches() == []
    with pytest.raises(ValueError, match="unknown batch state"):
        reopened.batches("done")


def test_errors_show_database_urls_with_credentials_redacted(tmp_path, model, landing):
    """Whatever fails (no driver, no server, an unsupported backend, a conflict), the password never shows."""
    for url in ("postgresql://tuner:s3cr3t-pw@127.0.0.1:9/ledger",
                "postgresql+psycopg2://tuner:s3cr3t-pw@127.0.0.1:9/ledger",
                "mysql://tuner:s3cr3t-pw@db.internal/ledger"):
        with pytest.raises(LedgerError) as caught:
            Ledger(url, model)
        text = str(caught.value)
        assert "s3cr3t" not in text and "tuner:" not in text, text
        assert "***@" in text, text
        cause = caught.value.__cause__ or caught.value.__context__
        assert cause is None or "s3cr3t" not in str(cause)
    with pytest.raises(LedgerError, match="in-memory"):
        Ledger("sqlite://", model)

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", model)
    ledger.url = "postgresql://tuner:s3cr3t-pw@db.internal/ledger"  # what a conflict would name on PostgreSQL
    with pytest.raises(LedgerConflict) as caught:
        ledger.mark_validated("run-1", "0" * 64, 1, 0)
    assert "s3cr3t" not in str(caught.value) and "postgresql://***@db.internal/ledger" in str(caught.value)
    assert "s3cr3t" not in repr(ledger)
    with pytest.raises(LedgerError, match="landing folder"):
        ledger.scan(tmp_path / "no-such-folder")


def test_default_ledger_url(tmp_path, monkeypatch):
    """Beside a SQLite MLflow store (never inside it); the cwd otherwise; $TUNELINE_LEDGER_URL over everything."""
    monkeypatch.delenv("TUNELINE_LEDGER_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "runs" / "mlflow.db"
    assert default_ledger_url(f"sqlite:///{store}") == f"sqlite:///{store.parent / LEDGER_DB_NAME}"
    assert default_ledger_url("http://mlflow.internal:5000") == f"sqlite:///{tmp_path / LEDGER_DB_NAME}"
    monkeypatch.setenv("TUNELINE_LEDGER_URL", "postgresql://ledger:secret@db/tuneline")
    assert default_ledger_url(f"sqlite:///{store}") == "postgresql://ledger:secret@db/tuneline"


def test_a_dropped_batch_is_final_and_its_bytes_landing_again_stay_out(ledger_url, model, landing):
    """``tuneline data drop`` takes a batch's rows out of the data: the ledger went on listing it ``used`` (and a
    ``validated`` one left by a dead run would have been claimed again, its rows put back). Now it is ``dropped``,
    final; a batch a live run holds is refused; the same bytes landing again are a duplicate, not new rows."""
    ledger = Ledger(ledger_url, model)
    data = csv_bytes("wrong labels", rows=6)
    land(landing, "bad.csv", data)
    land(landing, "held.csv", csv_bytes("held"))
    bad, held = ledger.scan(landing)
    assert [b.content_hash for b in ledger.claim("run-1", max_batches=1)] == [bad.content_hash]
    ledger.mark_validated("run-1", bad.content_hash, 6, 0)
    ledger.mark_used("run-1", "3")
    assert [b.content_hash for b in ledger.claim("run-2")] == [held.content_hash]

    dropped = ledger.mark_dropped(bad.content_hash, "user ann", "data version 4: labels shuffled")
    assert dropped.state == DROPPED and dropped.model_version == "3"  # which model trained on it stays known
    last = ledger.history(bad.content_hash)[-1]
    assert (last.from_state, last.to_state, last.detail) == (USED, DROPPED,
                                                             "dropped by user ann: data version 4: labels shuffled")
    with pytest.raises(LedgerConflict, match=r"is dropped in the batch ledger"):
        ledger.mark_dropped(bad.content_hash, "user ann", "again")
    with pytest.raises(LedgerConflict, match=r"is claimed, held by run 'run-2'"):
        ledger.mark_dropped(held.content_hash, "user ann", "while a run reads it")
    assert states(ledger)["held.csv"] == CLAIMED

    land(landing, "bad-again.csv", data)
    (again,) = ledger.scan(landing)
    assert (again.state, again.duplicate_of) == (DUPLICATE, bad.id)
    assert ledger.free_batches() == []


def test_a_copy_of_a_dropped_batch_is_said_to_be_dropped_not_used(ledger_url, model, landing):
    """The same bytes landed again after ``data drop`` were ignored as "landed before (never used twice)", which read
    as if the rows had been trained on, and requeue refuses a dropped batch (exploratory QA of the loop)."""
    from tuneline.flows.retrain import _copies_of_rejected, _duplicates

    ledger = Ledger(ledger_url, model)
    land(landing, "b10.csv", csv_bytes("dropped later"))
    [original] = ledger.scan(landing)
    ledger.mark_dropped(original.content_hash, "user test", "not wanted")
    land(landing, "b10-again.csv", csv_bytes("dropped later"))
    copies = _duplicates(ledger, ledger.scan(landing))
    assert copies == {"b10-again.csv": "b10.csv"}
    assert _copies_of_rejected(ledger, copies) == {"b10-again.csv": (
        "b10.csv was dropped (tuneline data drop), and a dropped batch's content is not taken again: to bring its "
        "rows back, land them as new content (a file with any row changed, added or removed)")}
