"""Zombie flow runs (tuneline.deployments.zombies): a retraining run whose process died stayed Running in Prefect,
and the retrain deployment's one concurrency slot with it, so every later run waited forever (a new-user probe killed
a worker mid-training). The automation is run here by the session's real Prefect API; only its wait is shortened."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from prefect import flow
from prefect.automations import Automation
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events import emit_event
from prefect.events.worker import EventsWorker
from prefect.states import Running

from tuneline.deployments.zombies import (AUTOMATION_NAME, HEARTBEAT_ENV, ensure_zombie_automation, heartbeat_env,
                                          zombie_automation)


@flow(name="tuneline-zombie-test")
def stand_in() -> None:
    """Only its name is used: runs of it are created in a state, never executed."""


def heartbeat(run_id) -> None:
    emit_event(event="prefect.flow-run.heartbeat", resource={"prefect.resource.id": f"prefect.flow-run.{run_id}"})
    EventsWorker.instance().wait_until_empty()


def state_after(client, run_id, seconds: float) -> StateType:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = client.read_flow_run(run_id).state_type
        if state == StateType.CRASHED:
            return state
        time.sleep(1)
    return client.read_flow_run(run_id).state_type


def test_a_running_flow_run_whose_heartbeats_stop_is_marked_crashed_and_a_beating_one_is_not():
    name = f"zombie-test-{uuid.uuid4().hex[:8]}"
    automation = zombie_automation(name, within=timedelta(seconds=10)).create()
    try:
        with get_client(sync_client=True) as client:
            dead = client.create_flow_run(stand_in, state=Running())
            alive = client.create_flow_run(stand_in, state=Running())
            heartbeat(dead.id)
            started = time.monotonic()
            while time.monotonic() - started < 20:  # the live one beats every 3 s, the dead one never again
                heartbeat(alive.id)
                time.sleep(3)
            assert state_after(client, dead.id, 60) == StateType.CRASHED
            run = client.read_flow_run(dead.id)
            assert "no heartbeat for 10 s" in run.state.message
            assert client.read_flow_run(alive.id).state_type == StateType.RUNNING
            never_beat = client.create_flow_run(stand_in, state=Running())  # sent no heartbeat: never matched
            assert state_after(client, never_beat.id, 15) == StateType.RUNNING
    finally:
        automation.delete()


def test_the_automation_is_created_once_and_the_deployments_environment_beats():
    try:
        Automation.read(name=AUTOMATION_NAME).delete()
    except ValueError:
        pass
    assert ensure_zombie_automation() is True
    assert ensure_zombie_automation() is False  # `tuneline deploy` twice: still one
    with get_client(sync_client=True) as client:
        assert len(client.read_automations_by_name(AUTOMATION_NAME)) == 1
    made = Automation.read(name=AUTOMATION_NAME)
    assert made.trigger.within == timedelta(seconds=90) and made.trigger.after == {"prefect.flow-run.heartbeat"}
    assert heartbeat_env() == {HEARTBEAT_ENV: "30"}
    made.delete()
