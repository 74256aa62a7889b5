"""A ``tuneline serve`` killed while submitting a run (loop QA): the run stayed Pending for good and held its
deployment's concurrency slot until Prefect's slot lease ran out, so the restarted ``serve`` had every watch-landing
scan cancelled for five minutes. ``serve`` now cancels such runs when it starts (``cancel_orphaned_runs``).

Against the session's real Prefect API: a deployment with the watcher's concurrency (1, CANCEL_NEW), runs moved to
Pending as a runner moves them, and the server's own orchestration deciding which may go on."""

from __future__ import annotations

import uuid

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy, StateType
from prefect.states import Pending

from tuneline.deployments.loop import LoopDeployment, cancel_orphaned_runs


@flow(name="tuneline-orphan-test")
def scan() -> None:
    """Only its deployment is used: its runs are moved between states, never executed."""


def test_a_pending_run_left_by_a_killed_runner_is_cancelled_and_frees_the_slot():
    spec = LoopDeployment(f"watch-{uuid.uuid4().hex[:8]}", scan, dict(concurrency_limit=ConcurrencyLimitConfig(
        limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)))
    deployment_id = spec.served().apply()
    with get_client(sync_client=True) as client:
        orphan = client.create_flow_run_from_deployment(deployment_id)
        client.set_flow_run_state(orphan.id, Pending())  # submitted by a runner that was then killed
        assert client.read_flow_run(orphan.id).state_type == StateType.PENDING
        blocked = client.create_flow_run_from_deployment(deployment_id)
        client.set_flow_run_state(blocked.id, Pending())  # the next scan: the orphan holds the one slot
        assert client.read_flow_run(blocked.id).state_type == StateType.CANCELLED
        assert cancel_orphaned_runs([spec], older_than_s=600) == []  # a run Pending for seconds may be starting
        assert cancel_orphaned_runs([spec], older_than_s=0) == [orphan.name]
        left = client.read_flow_run(orphan.id)
        assert left.state_type == StateType.CANCELLED and "left by a tuneline serve" in left.state.message
        after = client.create_flow_run_from_deployment(deployment_id)
        client.set_flow_run_state(after.id, Pending())
        assert client.read_flow_run(after.id).state_type == StateType.PENDING  # the slot is free again
        assert cancel_orphaned_runs([LoopDeployment("no-such-deployment", scan, {})], older_than_s=0) == []
