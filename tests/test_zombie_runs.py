"""Zombie flow runs (tuneline.deployments.zombies): a retraining run whose process died stayed Running in Prefect,
and the retrain deployment's one concurrency slot with it, so every later run waited forever (a new-user probe killed
a worker mid-training). The automation is run here by the session's real Prefect API; only its wait is shortened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
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


#: A flow that beats (Prefect's own heartbeat thread, every 30 s: the least it allows) and sleeps until killed.
SLEEPER = textwrap.dedent("""
    import sys, time
    from prefect import flow
    from prefect.runtime import flow_run

    @flow(name="tuneline-zombie-kill-test")
    def sleeper():
        print(flow_run.id, flush=True)
        time.sleep(600)

    sleeper()
""")


def heartbeats_of(client, run_id) -> int:
    """The heartbeat events the API has stored for one flow run."""
    body = {"filter": {"event": {"name": ["prefect.flow-run.heartbeat"]},
                       "resource": {"id": [f"prefect.flow-run.{run_id}"]}}, "limit": 10}
    return len(client.request("POST", "/events/filter", json=body).json()["events"])


def test_a_flow_run_whose_process_is_killed_is_marked_crashed_by_the_automation(tmp_path):
    """The promise under a real fault: a flow run's process is SIGKILLed mid-run (no final state can be sent), so
    Prefect keeps it Running; the automation, with nothing faked but its 40 s wait (30 s between beats, plus slack),
    marks it Crashed."""
    from prefect.settings import PREFECT_API_URL

    name = f"zombie-kill-{uuid.uuid4().hex[:8]}"
    automation = zombie_automation(name, within=timedelta(seconds=40)).create()
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), HEARTBEAT_ENV: "30"}
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER, encoding="utf-8")
    process = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        run_id = uuid.UUID(process.stdout.readline().strip())
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 30
            while heartbeats_of(client, run_id) == 0 and time.monotonic() < deadline:
                time.sleep(1)
            assert heartbeats_of(client, run_id) >= 1, "the flow run sent no heartbeat"
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            killed = time.monotonic()
            assert client.read_flow_run(run_id).state_type == StateType.RUNNING  # what a dead process leaves
            assert state_after(client, run_id, 90) == StateType.CRASHED
            waited = time.monotonic() - killed
            assert "no heartbeat for 40 s" in client.read_flow_run(run_id).state.message
            assert waited < 75, f"marked Crashed {waited:.0f} s after the kill"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        automation.delete()
