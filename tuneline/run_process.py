"""Which process runs an MLflow run, and whether it still lives: what tells a killed run from a live one.

A run killed outright (``kill -9``, the OOM killer) never ends its MLflow run: it stays ``RUNNING`` for ever, and a
model version it registered before its gate looked *pending* (a live run about to gate it) to every reader, so
``tuneline doctor`` called it healthy and ``tuneline promote`` would serve it. Every tracked run therefore carries
the tag ``tuneline.process`` = ``<host>:<pid>:<start time>``; on the same host, a process with that pid and start time
either exists or does not (the start time keeps a recycled pid from passing for the dead process). On another host
the pid says nothing, so a run also beats a heartbeat, the tag ``tuneline.heartbeat`` (its time, every
:data:`HEARTBEAT_EVERY_S`), while it is open: a run on another host whose heartbeat is older than
:data:`HEARTBEAT_STALE_S` (the ledger lease's default) is known gone, one that beat since is alive, and one from
before the heartbeat existed cannot be told and stays pending. A process is declared gone only when this is known.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any, Literal

import psutil

PROCESS_TAG = "tuneline.process"
HEARTBEAT_TAG = "tuneline.heartbeat"
#: seconds between two heartbeats of an open run
HEARTBEAT_EVERY_S = 60.0
#: seconds to the next try after a heartbeat could not be written (the store unreachable)
HEARTBEAT_RETRY_S = 5.0
#: a run on another host whose last heartbeat is older than this is gone (ten beats missed: the ledger's lease)
HEARTBEAT_STALE_S = 600.0
ALIVE, GONE, UNKNOWN = "alive", "gone", "unknown"
Liveness = Literal["alive", "gone", "unknown"]


class Heartbeat:
    """While open, sets the run's :data:`HEARTBEAT_TAG` to the time every :data:`HEARTBEAT_EVERY_S` seconds, from a
    daemon thread (a process that dies stops it, which is the point).

    A failed write (the tracking server restarting, a network blip) is tried again every :data:`HEARTBEAT_RETRY_S`
    seconds, not at the next beat: after an outage longer than :data:`HEARTBEAT_STALE_S` the heartbeat reads stale
    to every other host until it is written, and a reader in that window takes the live run for gone (its version
    tagged orphaned). Retrying soon shrinks that window from up to a beat to a few seconds."""

    def __init__(self, client: Any, run_id: str, every_s: float | None = None, retry_s: float | None = None) -> None:
        self.client, self.run_id = client, run_id
        self.every_s = HEARTBEAT_EVERY_S if every_s is None else every_s
        self.retry_s = min(HEARTBEAT_RETRY_S if retry_s is None else retry_s, self.every_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"tuneline-heartbeat-{run_id[:8]}", daemon=True)

    def _set(self) -> None:
        self.client.set_tag(self.run_id, HEARTBEAT_TAG, f"{time.time():.1f}")

    def _beat(self) -> None:
        wait = self.every_s
        while not self._stop.wait(wait):
            try:
                self._set()
                wait = self.every_s
            except Exception:  # noqa: BLE001 - a busy store or a network blip: tried again soon
                wait = self.retry_s

    def __enter__(self) -> "Heartbeat":
        self._set()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def process_tag(pid: int | None = None) -> str:
    """``<host>:<pid>:<start time>`` of this process (or ``pid``), for :data:`PROCESS_TAG`."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{psutil.Process(pid).create_time():.2f}"


def liveness(tag: str | None, heartbeat: str | None = None, now: float | None = None) -> Liveness:
    """Whether the process a :func:`process_tag` names still runs: on this host by its pid and start time; on
    another by its ``heartbeat`` (the run's :data:`HEARTBEAT_TAG`); ``unknown`` without a tag (runs from before it
    existed), on another host without a heartbeat, or when the tag cannot be read."""
    try:
        host, pid, started = (tag or "").rsplit(":", 2)
        pid_number, start_time = int(pid), float(started)
    except ValueError:
        return UNKNOWN
    if host != socket.gethostname():
        try:
            beat = float(heartbeat) if heartbeat else None
        except ValueError:
            beat = None
        if beat is None:
            return UNKNOWN
        return GONE if (time.time() if now is None else now) - beat > HEARTBEAT_STALE_S else ALIVE
    try:
        process = psutil.Process(pid_number)
        same = abs(process.create_time() - start_time) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return GONE
    except psutil.Error:  # no permission to look: it exists
        return ALIVE
    return ALIVE if same else GONE


def run_liveness(client: Any, run_id: str | None) -> tuple[Liveness, str]:
    """(liveness, the process tag) of MLflow run ``run_id``'s process."""
    from mlflow.exceptions import MlflowException

    if not run_id:
        return UNKNOWN, ""
    try:
        tags = client.get_run(run_id).data.tags
    except MlflowException:
        return UNKNOWN, ""
    tag = tags.get(PROCESS_TAG, "")
    return liveness(tag, tags.get(HEARTBEAT_TAG)), tag


def shown(tag: str) -> str:
    """``host:pid`` of a process tag, for messages."""
    return tag.rsplit(":", 1)[0] if tag.count(":") >= 2 else tag or "an unrecorded process"


def dead_holders(ledger: Any, client: Any) -> dict[str, tuple[str, list[Any]]]:
    """Runs that hold batches of ``ledger`` under a lease that has not run out while their process is known to be
    gone: run id -> (``host:pid``, the batches). Their batches would wait for the lease (ten minutes by default) before
    the next run could take them over; ``tuneline doctor --fix`` gives them back at once."""
    from tuneline.ledger import CLAIMED, VALIDATED

    free, held = {b.id for b in ledger.free_batches()}, {}
    for batch in ledger.batches():
        if batch.state in (CLAIMED, VALIDATED) and batch.claimed_by and batch.id not in free:
            held.setdefault(batch.claimed_by, []).append(batch)
    dead = {}
    for run_id, batches in held.items():
        alive, process = run_liveness(client, run_id)
        if alive == GONE:
            dead[run_id] = (shown(process), batches)
    return dead


def close_dead_run(client: Any, run_id: str, process: str) -> None:
    """End a run MLflow shows RUNNING whose process is gone: KILLED, with the reason as ``tuneline.error``."""
    if client.get_run(run_id).info.status == "RUNNING":
        client.set_tag(run_id, "tuneline.error", f"killed: its process {process} ended without closing the run "
                                                 "(kill -9, out of memory, a lost machine)")
        client.set_terminated(run_id, status="KILLED")


def dead_runs(client: Any) -> list[tuple[Any, str]]:
    """Every tuneline run of the store that MLflow shows RUNNING while its process is known to be gone: (run,
    ``host:pid``). A run killed before it registered anything (mid-training) left no version and held no batch, so
    neither the version sweep nor the lease check saw it; it read as a training still at work for ever."""
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    found = []
    for start in range(0, len(experiments), 100):  # search_runs takes at most 100 experiments at once
        for run in client.search_runs(experiments[start:start + 100], filter_string="attributes.status = 'RUNNING'",
                                      max_results=1000):
            tag = run.data.tags.get(PROCESS_TAG)
            if tag and liveness(tag, run.data.tags.get(HEARTBEAT_TAG)) == GONE:
                found.append((run, shown(tag)))
    return found
