"""Zombie flow runs: a run whose process died (its worker killed, its machine lost) stays ``Running`` in Prefect.

For the retraining loop that is worse than one lost run: ``retrain-on-batch`` runs one at a time (concurrency limit
1, queueing), so every later run waits in ``AwaitingConcurrencySlot`` behind the dead one, and the loop stops
retraining without a word (found by killing a worker mid-training). Prefect's own remedy is used, as its guide "How
to detect and respond to zombie flows" describes: the loop's flow runs emit a heartbeat event every
:data:`HEARTBEAT_S` seconds (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, set on the deployments' environment), and one
automation marks a run whose heartbeats stop for :data:`MISSED_HEARTBEATS` intervals ``Crashed``, which frees its
slot. The batches it held come free when its ledger lease runs out, and the watcher's stranded rule
(:mod:`tuneline.events`) announces them.
"""

from __future__ import annotations

import os
from datetime import timedelta

HEARTBEAT_ENV = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
HEARTBEAT_S = 30  # the least Prefect allows
MISSED_HEARTBEATS = 3
ZOMBIE_AFTER = timedelta(seconds=HEARTBEAT_S * MISSED_HEARTBEATS)
AUTOMATION_NAME = "tuneline: mark flow runs without heartbeats crashed"
#: the events that end a run's wait for its next heartbeat (a heartbeat, or a final state)
_ALIVE_OR_DONE = {"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                  "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"}


def heartbeat_env() -> dict[str, str]:
    """The environment that makes a flow run emit heartbeats (for the deployments' job variables)."""
    return {HEARTBEAT_ENV: str(HEARTBEAT_S)}


#: the flows the automation watches (by the flow named in each heartbeat): tuneline's own (``tuneline-train``,
#: ``tuneline-retrain``, ...). Prefect 3 flow runs beat every 180 s by default, so an automation of every flow run
#: marked any other flow on the same server Crashed 90 s into a run (loop QA)
WATCHED_FLOWS = "tuneline-*"


def watched_flows():  # noqa: ANN201 - Prefect's ResourceSpecification
    """The related resource a heartbeat must name for the automation to watch its run: a tuneline flow."""
    from prefect.events.schemas.events import ResourceSpecification

    return ResourceSpecification({"prefect.resource.role": "flow", "prefect.resource.name": WATCHED_FLOWS})


def zombie_automation(name: str = AUTOMATION_NAME, within: timedelta = ZOMBIE_AFTER):  # noqa: ANN201
    """The automation: for each run of a tuneline flow that sent a heartbeat, expect another (or a final state)
    ``within``; when none comes, set the run ``Crashed``. Every tuneline command makes its runs beat often enough
    (:func:`emit_heartbeats_from_this_process`); runs of other flows never match."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return Automation(
        name=name,
        description="Set by tuneline: a flow run whose heartbeats stopped (its process died) is marked Crashed, so "
                    "the retraining deployment's concurrency slot is freed.",
        trigger=EventTrigger(after={"prefect.flow-run.heartbeat"}, expect=set(_ALIVE_OR_DONE),
                             match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
                             match_related=watched_flows(),
                             for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1, within=within),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"no heartbeat for {within.total_seconds():g} s: its process died "
                                            "(marked by tuneline's zombie automation)")])


def ensure_zombie_automation(name: str = AUTOMATION_NAME) -> bool:
    """Create the automation on the configured Prefect API unless one of that name exists; whether it was created."""
    from prefect.automations import Automation

    try:
        made = Automation.read(name=name)
    except ValueError:  # Prefect's "not found"
        made = None
    wanted = zombie_automation(name)
    if made is not None and made.trigger == wanted.trigger:
        return False
    if made is not None:  # one an older tuneline made, which watched every flow run on the server: replaced
        made.delete()
    wanted.create()
    return True


def emit_heartbeats_from_this_process() -> None:
    """Make the flow runs of this process (and of the processes it starts: ``tuneline serve``'s runner) beat every
    :data:`HEARTBEAT_S` seconds, unless they are set to beat at least twice within the automation's wait. Prefect's
    own default, 180 s, is longer than that wait: a ``tuneline retrain`` run against a server with the automation
    was marked Crashed ("its process died") 90 s into a healthy run (loop QA). Must run before Prefect is imported,
    which reads its settings once."""
    current = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not current.isdigit() or int(current) * 2 > ZOMBIE_AFTER.total_seconds():
        os.environ[HEARTBEAT_ENV] = str(HEARTBEAT_S)
