"""The landing-folder watcher as a flow: the Prefect-native sensor, deployed on an interval schedule (open-source
Prefect has no file sensor). Light to import: it runs every few seconds in a fresh process."""

from __future__ import annotations

from prefect import flow

from tuneline.errors import quiet_console
from tuneline.interrupts import cancelled_when_stopped
from tuneline.common import pipeline_task, task_logger
from tuneline.events import announce_pending, announce_stranded, describe, scan_and_announce
from tuneline.kinds import AnyConfig
from tuneline.ledger import LANDED, Batch


@pipeline_task(name="scan-and-announce")
def scan_landing(config: AnyConfig) -> list[Batch]:
    """Record the complete batches in ``retrain.landing``; emit ``tuneline.batch.landed`` for each new original."""
    recorded = scan_and_announce(config)
    for batch in recorded:
        task_logger().info(describe(batch))
    return recorded


@pipeline_task(name="announce-pending")
def announce_unclaimed(config: AnyConfig) -> list[Batch]:
    """The pending rule (:mod:`tuneline.events`): one ``tuneline.batch.pending`` for batches no run was woken for."""
    pending = announce_pending(config)
    if pending:
        task_logger().info("announced %d unclaimed batch(es): %s", len(pending), ", ".join(b.name for b in pending))
    return pending


@pipeline_task(name="announce-stranded")
def announce_stranded_batches(config: AnyConfig) -> list[Batch]:
    """The stranded rule (:mod:`tuneline.events`): announce again batches whose woken run failed before claiming."""
    stranded = announce_stranded(config)
    if stranded:
        task_logger().warning("announced %d batch(es) again that no retraining run is queued or running for: %s",
                              len(stranded), ", ".join(b.name for b in stranded))
    return stranded


@flow(name="tuneline-watch-landing", on_running=[quiet_console],
      on_crashed=[cancelled_when_stopped])
def watch_flow(config: AnyConfig, check_pending: bool = False) -> list[str]:
    """Scan the landing folder once and announce what landed; returns the paths of the batches announced.

    1. scan ``retrain.landing`` into the batch ledger; emit ``tuneline.batch.landed`` per newly recorded original
    2. with ``check_pending`` (a watcher's start): the pending rule; else (every scheduled scan) the stranded rule;
       either emits at most one ``tuneline.batch.pending``
    """
    recorded = scan_landing(config)
    pending = announce_unclaimed(config) if check_pending else announce_stranded_batches(config)
    return [b.path for b in recorded if b.state == LANDED] + [b.path for b in pending]
