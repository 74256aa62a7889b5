"""Registry hygiene: find model versions that a crashed or killed run left half-done, and neutralise them.

A version is *finished* once the gate has tagged it (``tuneline.status=gated``, or ``gate.decision`` on versions
from before that tag existed). A version without that mark whose run is no longer running was left behind by a
process that died between registration and gate (a kill, an OOM, a lost machine): it is tagged
``tuneline.status=orphaned`` and loses the ``challenger`` alias if it holds it. A run killed outright stays
``RUNNING`` in MLflow for ever; its process tag (:mod:`tuneline.run_process`) tells it from a live one on the same
host, its heartbeat on another, and such a run is closed ``KILLED`` when its version is neutralised. A version whose
run still lives (or cannot be told: from before the heartbeat) is *pending*: :func:`find_pending`. ``champion`` is never touched here:
only the gate moves it, and only to a gated version. Every training run sweeps its own registered model before
registering; ``tuneline doctor`` does the same on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException

from tuneline.run_process import GONE, Liveness, close_dead_run, dead_holders, run_liveness, shown

STATUS = "tuneline.status"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Orphan:
    version: str
    run_id: str
    run_status: str
    had_challenger: bool
    #: ``host:pid`` of a run left RUNNING by a process that is gone (killed outright); empty otherwise
    dead_process: str = ""


@dataclass(frozen=True)
class Pending:
    """A version whose gate has not finished and whose run is RUNNING: alive, or on a host where it cannot be told."""

    version: str
    run_id: str
    liveness: Liveness
    process: str


def _run_status(client: Any, run_id: str | None) -> str:
    if not run_id:
        return "MISSING"
    try:
        return client.get_run(run_id).info.status
    except MlflowException:
        return "MISSING"


def _unfinished(client: Any, name: str) -> tuple[list[Orphan], list[Pending]]:
    """The versions of ``name`` the gate never finished: orphans (their run is over, or its process is gone) and
    pending ones (their run may still gate them)."""
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return [], []
    challenger = str((model.aliases or {}).get(CHALLENGER))
    orphans, pending = [], []
    for version in client.search_model_versions(f"name = '{name}'"):
        tags = version.tags or {}
        if tags.get(STATUS) == "orphaned" or "gate.decision" in tags:  # the verdict is the gate's last tag
            continue
        if not version.run_id and STATUS not in tags:
            # registered outside any run (someone's own MlflowClient code): tuneline registers from its run, so
            # this is no gate of tuneline's cut short; named "run  MISSING, gate never finished", --fix tagged it
            # orphaned and made it unpromotable (operator QA)
            continue
        number, run_id = str(version.version), version.run_id or ""
        status, dead = _run_status(client, version.run_id), ""
        if tags.get(STATUS) == "failed" and status != "RUNNING" and challenger != number:
            # its own run withdrew it (a failure after registration, a Ctrl-C): settled, never promotable; calling
            # it orphaned later told of a kill that never happened (loop QA)
            continue
        if status == "RUNNING" and tags.get(STATUS) != "failed":
            alive, process = run_liveness(client, run_id)
            if alive != GONE:  # still being registered or gated by a live run, or one that cannot be told
                pending.append(Pending(number, run_id, alive, shown(process)))
                continue
            status, dead = f"RUNNING, but its process {shown(process)} is gone", shown(process)
        orphans.append(Orphan(number, run_id, status, challenger == number, dead))
    return sorted(orphans, key=lambda o: int(o.version)), sorted(pending, key=lambda p: int(p.version))


@dataclass(frozen=True)
class InterruptedPromotion:
    """A version its gate passed (``gate.decision=promoting``) whose run died before the gate ended: ``moved`` when
    the alias had moved to it (only the final tags are missing), else it never became champion."""

    version: str
    run_id: str
    moved: bool


#: ``gate.decision`` of a passed gate whose alias move a killed run never made (see :func:`settle_promotions`)
INTERRUPTED = "interrupted"


def find_interrupted_promotions(client: Any, name: str) -> list[InterruptedPromotion]:
    """Versions of ``name`` tagged ``gate.decision=promoting`` whose run is over or whose process is gone: the gate
    writes that before moving ``champion`` and ``promoted`` after, so a run killed in between left it."""
    try:
        champion = str((client.get_registered_model(name).aliases or {}).get("champion"))
    except MlflowException:
        return []
    found = []
    for version in client.search_model_versions(f"name = '{name}'"):
        if (version.tags or {}).get("gate.decision") != "promoting":
            continue
        if _run_status(client, version.run_id) == "RUNNING" and run_liveness(client, version.run_id or "")[0] != GONE:
            continue  # its gate is moving the alias now, or its process cannot be told from here
        found.append(InterruptedPromotion(str(version.version), version.run_id or "", champion == str(version.version)))
    return sorted(found, key=lambda found: int(found.version))


def settle_promotions(client: Any, name: str) -> list[InterruptedPromotion]:
    """Give each interrupted promotion (:func:`find_interrupted_promotions`) the decision that holds: ``promoted``
    where the alias moved, else ``interrupted`` with a sentence saying it never became champion (a person may still
    promote it: its gate passed it)."""
    settled = find_interrupted_promotions(client, name)
    for item in settled:
        tags = client.get_model_version(name, item.version).tags or {}
        reasons = tags.get("gate.reasons", "")
        if item.moved:
            decision, sentence = "promoted", f"Version {item.version} promoted to champion: {reasons}."
        else:
            decision, sentence = INTERRUPTED, (
                f"Version {item.version} passed its gate, but its run {item.run_id or '?'} died before making it "
                f"champion, so it never served: {reasons}.")
        client.set_model_version_tag(name, item.version, "gate.decision", decision)
        client.set_model_version_tag(name, item.version, "gate.sentence", sentence)
    return settled


def find_orphans(client: Any, name: str) -> list[Orphan]:
    """Versions of ``name`` the gate never finished and whose run is over (FAILED, KILLED, FINISHED, gone, or
    RUNNING in MLflow while its process is gone)."""
    return _unfinished(client, name)[0]


def find_pending(client: Any, name: str) -> list[Pending]:
    """Versions of ``name`` the gate has not finished yet while their run is RUNNING (and not known dead)."""
    return _unfinished(client, name)[1]


def neutralise_orphans(client: Any, name: str) -> list[Orphan]:
    """Tag every orphan of ``name`` ``tuneline.status=orphaned`` and take ``challenger`` off it."""
    orphans = find_orphans(client, name)
    for orphan in orphans:
        client.set_model_version_tag(name, orphan.version, STATUS, "orphaned")
        client.set_model_version_tag(name, orphan.version, "tuneline.orphan_reason",
                                     f"run {orphan.run_id or '?'} ended {orphan.run_status} before the gate finished")
        if orphan.had_challenger:
            client.delete_registered_model_alias(name, CHALLENGER)
        if orphan.dead_process:  # nothing else would ever end it: it read as a retraining still at work
            close_dead_run(client, orphan.run_id, orphan.dead_process)
    return orphans


@dataclass(frozen=True)
class DeadHolder:
    """A run whose process is gone while it held batches under a live lease, as :func:`settle_dead_holders` left
    it: its batches given back, or marked used by ``used_by`` (the version its gate had scored)."""

    run_id: str
    process: str
    batches: list[Any]
    used_by: str | None


def gated_version_of(client: Any, name: str, run_id: str) -> str | None:
    """The version of ``name`` run ``run_id`` registered, when its gate decided on it; else None."""
    for version in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
        tags = version.tags or {}
        if tags.get(STATUS) == "gated" and "gate.decision" in tags:  # the verdict is the gate's last tag
            return str(version.version)
    return None


def settle_dead_holders(client: Any, ledger: Any, name: str) -> list[DeadHolder]:
    """Free the batches of every run whose process is known to be gone (:func:`tuneline.run_process.dead_holders`)
    instead of leaving them to wait out its lease, and close the run KILLED. A run that had passed its gate made a
    version from them: they are marked used by it (given back, they were trained again into a second version).
    Called by ``tuneline doctor --fix`` and, under the retraining slot, by every retraining run."""
    from tuneline.ledger import VALIDATED

    settled = []
    for run_id, (process, batches) in dead_holders(ledger, client).items():
        gated = gated_version_of(client, name, run_id)
        if gated is not None and all(b.state == VALIDATED for b in batches):
            ledger.mark_used(run_id, gated)
        else:
            gated = None
            ledger.release(run_id)
        close_dead_run(client, run_id, process)
        settled.append(DeadHolder(run_id, process, batches, gated))
    return settled
