"""Registry hygiene: find model versions that a crashed or killed run left half-done, and neutralise them.

A version is *finished* once the gate has tagged it (``tuneline.status=gated``, or ``gate.decision`` on versions
from before that tag existed). A version without that mark whose run is no longer running was left behind by a
process that died between registration and gate (a kill, an OOM, a lost machine): it is tagged
``tuneline.status=orphaned`` and loses the ``challenger`` alias if it holds it. ``champion`` is never touched here:
only the gate moves it, and only to a gated version. Every training run sweeps its own registered model before
registering; ``tuneline doctor`` does the same on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException

STATUS = "tuneline.status"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Orphan:
    version: str
    run_id: str
    run_status: str
    had_challenger: bool


def _run_status(client: Any, run_id: str | None) -> str:
    if not run_id:
        return "MISSING"
    try:
        return client.get_run(run_id).info.status
    except MlflowException:
        return "MISSING"


def find_orphans(client: Any, name: str) -> list[Orphan]:
    """Versions of ``name`` the gate never finished and whose run is over (FAILED, KILLED, FINISHED or gone)."""
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return []
    challenger = str((model.aliases or {}).get(CHALLENGER))
    orphans = []
    for version in client.search_model_versions(f"name = '{name}'"):
        tags = version.tags or {}
        if tags.get(STATUS) in ("gated", "orphaned") or "gate.decision" in tags:
            continue
        status = _run_status(client, version.run_id)
        if status == "RUNNING" and tags.get(STATUS) != "failed":
            continue  # still being registered or gated by a live run
        orphans.append(Orphan(str(version.version), version.run_id or "", status, challenger == str(version.version)))
    return sorted(orphans, key=lambda o: int(o.version))


def neutralise_orphans(client: Any, name: str) -> list[Orphan]:
    """Tag every orphan of ``name`` ``tuneline.status=orphaned`` and take ``challenger`` off it."""
    orphans = find_orphans(client, name)
    for orphan in orphans:
        client.set_model_version_tag(name, orphan.version, STATUS, "orphaned")
        client.set_model_version_tag(name, orphan.version, "tuneline.orphan_reason",
                                     f"run {orphan.run_id or '?'} ended {orphan.run_status} before the gate finished")
        if orphan.had_challenger:
            client.delete_registered_model_alias(name, CHALLENGER)
    return orphans
