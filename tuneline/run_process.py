"""Which process runs an MLflow run, and whether it still lives: what tells a killed run from a live one.

A run killed outright (``kill -9``, the OOM killer) never ends its MLflow run: it stays ``RUNNING`` for ever, and a
model version it registered before its gate looked *pending* (a live run about to gate it) to every reader, so
``tuneline doctor`` called it healthy and ``tuneline promote`` would serve it. Every tracked run therefore carries
the tag ``tuneline.process`` = ``<host>:<pid>:<start time>``; on the same host, a process with that pid and start time
either exists or does not (the start time keeps a recycled pid from passing for the dead process). On another host
nothing can be told, and the run stays pending: a process is declared gone only when this is known.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Literal

import psutil

PROCESS_TAG = "tuneline.process"
ALIVE, GONE, UNKNOWN = "alive", "gone", "unknown"
Liveness = Literal["alive", "gone", "unknown"]


def process_tag(pid: int | None = None) -> str:
    """``<host>:<pid>:<start time>`` of this process (or ``pid``), for :data:`PROCESS_TAG`."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{psutil.Process(pid).create_time():.2f}"


def liveness(tag: str | None) -> Liveness:
    """Whether the process a :func:`process_tag` names still runs: ``unknown`` without a tag (runs from before it
    existed), for another host, or when the tag cannot be read."""
    try:
        host, pid, started = (tag or "").rsplit(":", 2)
        pid_number, start_time = int(pid), float(started)
    except ValueError:
        return UNKNOWN
    if host != socket.gethostname():
        return UNKNOWN
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
        tag = client.get_run(run_id).data.tags.get(PROCESS_TAG, "")
    except MlflowException:
        return UNKNOWN, ""
    return liveness(tag), tag


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
            if tag and liveness(tag) == GONE:
                found.append((run, shown(tag)))
    return found
