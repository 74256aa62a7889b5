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

import pytest
from prefect import flow
from prefect.automations import Automation
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events import emit_event
from prefect.events.worker import EventsWorker
from prefect.states import Running

from tuneline.deployments.zombies import (AUTOMATION_NAME, HEARTBEAT_ENV, ensure_zombie_automation, heartbeat_env,
                                          watched_flows, zombie_automation)


@flow(name="tuneline-zombie-test")
def stand_in() -> None:
    """Only its name is used: runs of it are created in a state, never executed."""


@flow(name="nightly-report")
def other_flow() -> None:
    """A flow that is not tuneline's, on the same Prefect server."""


def heartbeat(run_id, flow_name: str = "tuneline-zombie-test") -> None:
    """A heartbeat as Prefect's engine sends it: the run, and its flow as a related resource."""
    emit_event(event="prefect.flow-run.heartbeat", resource={"prefect.resource.id": f"prefect.flow-run.{run_id}"},
               related=[{"prefect.resource.id": f"prefect.flow.{uuid.uuid4()}", "prefect.resource.role": "flow",
                         "prefect.resource.name": flow_name}])
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
            # another flow on the same server (Prefect 3 runs beat every 180 s by default): not tuneline's to judge
            other = client.create_flow_run(other_flow, state=Running())
            heartbeat(other.id, flow_name="nightly-report")
            assert state_after(client, other.id, 25) == StateType.RUNNING
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
    assert made.trigger.match_related == watched_flows()
    made.delete()
    older = zombie_automation(AUTOMATION_NAME)  # as tuneline made it before: every flow run of the server watched
    older.trigger.match_related = []
    older.create()
    assert ensure_zombie_automation() is True  # replaced
    with get_client(sync_client=True) as client:
        assert len(client.read_automations_by_name(AUTOMATION_NAME)) == 1
    made = Automation.read(name=AUTOMATION_NAME)
    assert made.trigger.match_related == watched_flows()
    made.delete()


@pytest.mark.parametrize("given, beats", [(None, "30"), ("60", "30"), ("45", "45"), ("fast", "30")])
def test_every_tuneline_command_makes_its_flow_runs_beat_within_the_automations_wait(given, beats, tmp_path):
    """Prefect 3 flow runs beat every 180 s by default: the automation (90 s) marked a healthy `tuneline retrain`
    run Crashed ("its process died") 90 s in (loop QA). The setting Prefect reads in a tuneline command's process:"""
    env = {key: value for key, value in os.environ.items() if key != HEARTBEAT_ENV}
    if given is not None:
        env[HEARTBEAT_ENV] = given
    config = tmp_path / "c.yaml"
    config.write_text("task: classification\ndata:\n  path: d.csv\n")
    probe = ("import sys\nfrom tuneline.cli import main\nassert main(['show-config', '-c', sys.argv[1]]) == 0\n"
             "from prefect.settings import get_current_settings\n"
             "print('BEATS', get_current_settings().flows.heartbeat_frequency)")
    done = subprocess.run([sys.executable, "-c", probe, str(config)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"BEATS {beats}"


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


def test_a_killed_flow_run_is_marked_crashed_and_one_that_completes_after_beating_stays_completed(tmp_path):
    """The promise under a real fault: a flow run's process is SIGKILLed mid-run (no final state can be sent), so
    Prefect keeps it Running; the automation, with nothing faked but its 40 s wait (30 s between beats, plus slack),
    marks it Crashed. Beside it, in the same window, a run that beat and then completed must stay Completed when its
    next heartbeat does not come (the automation waits for a heartbeat or a final state of the same run; the final
    state's event names its flow as the heartbeats do, which the automation's flow filter needs)."""
    from prefect.settings import PREFECT_API_URL

    name = f"zombie-kill-{uuid.uuid4().hex[:8]}"
    automation = zombie_automation(name, within=timedelta(seconds=40)).create()
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), HEARTBEAT_ENV: "30"}
    (tmp_path / "sleeper.py").write_text(SLEEPER, encoding="utf-8")
    (tmp_path / "short.py").write_text(SLEEPER.replace("time.sleep(600)", "time.sleep(33)"), encoding="utf-8")
    processes = [subprocess.Popen([sys.executable, str(tmp_path / script)], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, start_new_session=True)
                 for script in ("sleeper.py", "short.py")]
    killed_process, short_process = processes
    try:
        killed_id, short_id = (uuid.UUID(process.stdout.readline().strip()) for process in processes)
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 30
            while heartbeats_of(client, killed_id) == 0 and time.monotonic() < deadline:
                time.sleep(1)
            assert heartbeats_of(client, killed_id) >= 1, "the flow run sent no heartbeat"
            os.killpg(killed_process.pid, signal.SIGKILL)
            killed_process.wait(timeout=30)
            killed = time.monotonic()
            assert client.read_flow_run(killed_id).state_type == StateType.RUNNING  # what a dead process leaves

            assert short_process.wait(timeout=120) == 0
            short_done = time.monotonic()
            assert heartbeats_of(client, short_id) >= 1, "the flow run sent no heartbeat"
            assert client.read_flow_run(short_id).state_type == StateType.COMPLETED

            assert state_after(client, killed_id, 90 - (time.monotonic() - killed)) == StateType.CRASHED
            waited = time.monotonic() - killed
            assert "no heartbeat for 40 s" in client.read_flow_run(killed_id).state.message
            assert waited < 75, f"marked Crashed {waited:.0f} s after the kill"
            # its last heartbeat was at most 30 s before it completed: 40 s on, plus slack, it would have been found
            assert state_after(client, short_id, 50 - (time.monotonic() - short_done)) == StateType.COMPLETED
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        automation.delete()
