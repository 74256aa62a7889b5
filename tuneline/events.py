"""Announcing landed batches to Prefect: the events that wake the retraining loop.

Open-source Prefect has no file sensor, so a *watcher* scans the landing folder (``retrain.landing``) into the batch
ledger (:mod:`tuneline.ledger`: completeness markers, content hashes, duplicates) and emits one Prefect event per
newly recorded original batch::

    event     tuneline.batch.landed
    resource  prefect.resource.id   = tuneline.batch.<content hash>
              prefect.resource.name = <file or folder name>
              tuneline.model        = <registered model name>
    payload   path, content_hash, format, size_bytes

The ``retrain-on-batch`` deployment (:mod:`tuneline.deployments.loop`) is triggered by it, matched on
``tuneline.model``. A retraining run claims *every* free batch of its model, so one event is enough to process a
whole burst; duplicates (the same content again under another name) and batches rejected at the door (unreadable
format) are recorded but never announced. Both watchers run this code: ``tuneline watch`` (a foreground loop) and
the ``watch-landing`` deployment (:func:`tuneline.flows.watch.watch_flow`, on an interval schedule).

The pending rule (a lost announcement)
--------------------------------------
The ledger is written first and the event sent second, so a watcher killed between the two (or an event sent while
the Prefect API was down, or a retraining run that scanned the folder itself and failed before it claimed) leaves a
batch ``landed`` in the ledger that no run was woken for; a restarted watcher will not announce it again, since for
the ledger it is not new. Therefore:

    **Once per watcher start**, after its first scan, a watcher calls :func:`announce_pending`: if the ledger holds
    free batches (``landed`` ones no run claimed, and ``validated`` or ``claimed`` ones a killed run held, released
    by ``tuneline doctor --fix`` or whose lease ran out), no landed one recorded within the last
    ``retrain.watch_interval_s``, and no retraining run is queued, it emits **one** ``tuneline.batch.pending``
    event for the model (resource ``tuneline.model.<name>``, label ``tuneline.model``; payload: the batches' paths
    and hashes), which ``retrain-on-batch`` expects as well. ``tuneline watch --once`` prints what it announced or
    one line saying why it announced nothing (``nothing to announce: 0 free batches``).

* *Once per start*: ``tuneline watch`` checks on its first scan (``--once`` is always a first scan). A run of the
  ``watch-landing`` deployment checks only when run with ``check_pending=true`` (``prefect deployment run
  tuneline-watch-landing/watch-landing -p check_pending=true``); its scheduled runs do not (each is a
  new process every interval, and a batch that lands while a long retraining trains is rightly ``landed``, with a
  run already queued for it, until that run ends). The ``retrain-scheduled`` cron run is the served setup's
  backstop: it claims whatever is free.
* *All older than one interval*: a batch recorded within the last interval was (or is being) announced by the
  watcher that recorded it, and its event wakes a run that claims the older ones as well; ``pending`` would only
  queue a second run with nothing left to do.
* *No run queued* (pending, or scheduled and due within one interval): it claims every free batch when it starts.
  A *running* one does not count: it claimed when it started, so a batch freed since (a killed run's, released by
  ``doctor --fix`` while the killed run still shows Running in Prefect) needs an event of its own; only released
  batches were once left to the stranded rule, ten minutes later (operator QA).
* *One event*, not one per batch: the run it wakes claims them all.

The stranded rule (a run that failed before it claimed)
-------------------------------------------------------
A run woken for a batch can fail before it claims it (MLflow unreachable for longer than its retries): the batch
stays ``landed`` with nothing queued for it. So **at every later scan** a watcher (``tuneline watch`` after its first
scan, and every scheduled run of ``watch-landing``) calls :func:`announce_stranded`, which emits the same
``tuneline.batch.pending`` event (payload ``rule: stranded``) when

* the ledger holds free batches: ``landed`` ones, the newest recorded more than ``retrain.reannounce_after_s``
  ago, or ones a killed run held until its lease ran out (no event would wake a run to take them over);
* the Prefect API knows no run of ``tuneline-retrain`` that is queued or running (scheduled, pending, awaiting its
  concurrency slot, running, paused); and
* the last such run ended more than ``retrain.reannounce_after_s`` ago (or there was none).

The last condition is the back-off: while MLflow stays down, a retry is started at most once per
``reannounce_after_s`` (default 10 minutes), not at every scan. One Prefect API serves the loop of one model (the
deployments' names are fixed), so every ``tuneline-retrain`` run it knows is this model's.

A duplicated announcement is harmless: a queued run that finds nothing free ends at once.

A queued run that nothing starts (``tuneline serve`` stopped; a run created before the deployments moved to a work
pool) counts as queued for both rules, and an announcement would only queue one more such run, so once it is
``reannounce_after_s`` late the watcher names it, how late it is and the way out (:func:`stuck_retraining_run`).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from tuneline.config import ConfigError, TunelineConfig
from tuneline.ledger import CLAIMED, DUPLICATE, LANDED, REJECTED, VALIDATED, Batch, Ledger, ledger_url_for
from tuneline.locking import WAITING_FOR_SLOT_TAG
from tuneline.runtime import redact, resolve_tracking_uri

logger = logging.getLogger(__name__)

BATCH_LANDED = "tuneline.batch.landed"
BATCHES_PENDING = "tuneline.batch.pending"
MODEL_LABEL = "tuneline.model"


def landing_folder(config: TunelineConfig) -> str:
    """``retrain.landing`` (a local folder or an fsspec URL), which must be set and exist (one-line
    :class:`ConfigError` naming the key otherwise)."""
    from tuneline.ledger import landing_filesystem

    landing = config.retrain.landing
    if landing is None:
        raise ConfigError("retrain.landing is not set: set it to the folder where labeled batches land "
                          "(in the config, or --set retrain.landing=/path/to/landing)")
    fs, root = landing_filesystem(landing)
    if not fs.isdir(root):
        raise ConfigError(f"retrain.landing: the landing folder {landing} does not exist or is not a folder; "
                          "create it or set retrain.landing to the folder where labeled batches land")
    return str(landing)


def open_ledger(config: TunelineConfig) -> Ledger:
    """The batch ledger of the config's registered model (``ledger.url``, else beside the MLflow store)."""
    url = ledger_url_for(config.ledger.url, resolve_tracking_uri(config.tracking.tracking_uri))
    return Ledger(url, config.registered_model_name)


def _emit(event: str, resource: dict[str, str], payload: dict) -> bool:
    """Hand one event to Prefect's events worker; False when this process emits no events (no Prefect API)."""
    from prefect.events import emit_event

    if emit_event(event=event, resource=resource, payload=payload) is None:
        logger.warning("%s was not emitted: this process has no Prefect API to send events to (set PREFECT_API_URL)",
                       event)
        return False
    return True


def flush_events() -> None:
    """Wait until Prefect's events worker has sent what was emitted (a short-lived process exits right after)."""
    from prefect.events.worker import EventsWorker

    EventsWorker.instance().wait_until_empty()


def emit_batch_landed(batch: Batch, model: str) -> bool:
    """Emit ``tuneline.batch.landed`` for one recorded original batch (see the module docstring for its shape)."""
    resource = {"prefect.resource.id": f"tuneline.batch.{batch.content_hash}",
                "prefect.resource.name": batch.name, MODEL_LABEL: model}
    payload = {"path": batch.path, "content_hash": batch.content_hash, "format": batch.format,
               "size_bytes": batch.size_bytes}
    return _emit(BATCH_LANDED, resource, payload)


def emit_batches_pending(batches: list[Batch], model: str, rule: str = "start") -> bool:
    """Emit one ``tuneline.batch.pending`` for the model, naming the unclaimed ``batches`` and the ``rule`` that
    found them (``start``: the pending rule; ``stranded``: the stranded rule)."""
    resource = {"prefect.resource.id": f"tuneline.model.{model}", "prefect.resource.name": model, MODEL_LABEL: model}
    payload = {"count": len(batches), "rule": rule,
               "batches": [{"path": b.path, "content_hash": b.content_hash,
                            "landed_at": b.landed_at.isoformat(timespec="seconds")} for b in batches]}
    return _emit(BATCHES_PENDING, resource, payload)


def scan_and_announce(config: TunelineConfig) -> list[Batch]:
    """Scan ``retrain.landing`` into the ledger and announce each newly recorded original batch.

    Returns every batch this scan recorded (``landed`` ones were announced; ``duplicate`` and ``rejected`` ones only
    recorded). A batch already in the ledger is never announced again, however often the folder is scanned.
    """
    landing = landing_folder(config)
    model = config.registered_model_name
    with open_ledger(config) as ledger:
        recorded = ledger.scan(landing, data_format=config.data.format)
    announced = [b for b in recorded if b.state == LANDED and emit_batch_landed(b, model)]
    if announced:
        flush_events()
    return recorded


def announce_pending(config: TunelineConfig, *, interval_s: float | None = None,
                     now: datetime | None = None) -> list[Batch]:
    """The pending rule (module docstring): announce the free batches (landed, released, or held under a lease that
    ran out) unless one landed within one watch interval (``interval_s``, default ``retrain.watch_interval_s``) of
    ``now`` or a retraining run is queued.

    Returns the batches named in the ``tuneline.batch.pending`` event, or [] when none was emitted."""
    return announce_at_start(config, interval_s=interval_s, now=now)[0]


def announce_at_start(config: TunelineConfig, *, interval_s: float | None = None,
                      now: datetime | None = None) -> tuple[list[Batch], str]:
    """The pending rule, with why it announced nothing: (the batches announced, ``""``) or ([], one line saying why).

    Why the line: ``tuneline watch --once`` after ``doctor --fix`` released a killed run's batch printed nothing at
    all, and the batch waited eleven minutes for the stranded rule (operator QA)."""
    interval_s = interval_s or config.retrain.watch_interval_s
    now = now or datetime.now(timezone.utc)
    free, held = _free_and_held(config, now)
    if not free:
        return [], ("nothing to announce: 0 free batches" + (f"; {_held_clause(held)}" if held else "")
                    + _waiting_clause(config))
    if waiting_for_rows(free, config.retrain.min_new_rows):
        rows = sum(b.rows_accepted or 0 for b in free)
        return [], (f"nothing to announce: {_names(free)} {'is' if len(free) == 1 else 'are'} validated and "
                    f"waiting for retrain.min_new_rows={config.retrain.min_new_rows} ({rows} row(s) so far); the next "
                    "batch to land wakes a run that takes them all")
    young = [b for b in free if b.state == LANDED and now - b.landed_at < timedelta(seconds=interval_s)]
    if young:  # announced by the watcher that recorded it; the run that event wakes claims every free batch
        return [], (f"nothing to announce: {_names(young)} landed under {interval_s:g} s ago and its "
                    f"{BATCH_LANDED} wakes a run that takes every free batch ({_names(free)})")
    queued = _queued_run(due_within=timedelta(seconds=interval_s), now=now)
    if queued is not None and WAITING_FOR_SLOT_TAG in (queued.tags or []):
        return [], (f"nothing to announce: {_names(free)} {'is' if len(free) == 1 else 'are'} free but retraining "
                    f"run {queued.name} is running and waiting for its slot (another run of "
                    f"{config.registered_model_name} holds it); it takes every free batch when it gets the slot")
    if queued is not None:
        stuck = _stuck_clause(queued, now, timedelta(seconds=config.retrain.reannounce_after_s))
        return [], (f"nothing to announce: {_names(free)} {'is' if len(free) == 1 else 'are'} free but retraining "
                    f"run {_run_text(queued, now)} is queued; it takes every free batch when it starts{stuck}")
    if not emit_batches_pending(free, config.registered_model_name):
        return [], f"nothing announced: {_names(free)} free, but this process has no Prefect API to send events to"
    flush_events()
    return free, ""


def _free_and_held(config: TunelineConfig, now: datetime) -> tuple[list[Batch], list[Batch]]:
    """(the batches a run would claim now, those held under another run's live lease): a batch a killed run held
    is free once ``doctor --fix`` released it (``validated``, no lease) or its lease ran out."""
    with open_ledger(config) as ledger:
        free = ledger.free_batches()
        taken = {b.id for b in free}
        held = [b for b in ledger.batches() if b.state in (CLAIMED, VALIDATED) and b.id not in taken]
    return free, held


def _waiting_clause(config: TunelineConfig) -> str:
    """``; not complete, so not read yet: late.csv (no late.csv.done beside it)``, or "": a producer that forgot its
    marker read "0 free batches" as if nothing had landed (operator QA; ``retrain`` already named them)."""
    from tuneline.ledger import waiting_landings

    if config.retrain.landing is None:
        return ""
    with open_ledger(config) as ledger:
        recorded = ledger.recorded_states()
    waiting = waiting_landings(config.retrain.landing, recorded=recorded)
    return (f"; not complete, so not read yet: {'; '.join(waiting)} (a producer writes the data first, then its "
            "marker)") if waiting else ""


def _names(batches: list[Batch]) -> str:
    """``a.csv, b.csv`` (the first five, then how many more); a name two of them share (a file landed again with
    new content) with each one's content hash, as ``data batches`` shows it: "b.csv, b.csv" told them not apart."""
    names = [b.name for b in batches]
    shown = ", ".join(f"{b.name} ({b.content_hash[:12]})" if names.count(b.name) > 1 else b.name
                      for b in batches[:5])
    return shown + (f" and {len(batches) - 5} more" if len(batches) > 5 else "")


def _held_clause(held: list[Batch]) -> str:
    """Which batches are held under a live lease, by which run, until when (what the operator waits for)."""
    runs: dict[str, list[Batch]] = {}
    for batch in held:
        runs.setdefault(batch.claimed_by or "?", []).append(batch)
    return "; ".join(
        f"{_names(batches)} held by run {run_id} until "
        f"{max(b.lease_expires_at for b in batches if b.lease_expires_at):%H:%M:%S} UTC"
        if any(b.lease_expires_at for b in batches) else f"{_names(batches)} held by run {run_id}"
        for run_id, batches in runs.items()) + " (a killed run's: `tuneline doctor -c CONFIG --fix` releases them)"


def _run_text(run: Any, now: datetime) -> str:
    """``alluring-ocelot (Scheduled)``; a run whose start is overdue says by how long: ``(Late for 2 h 05 min)``."""
    state = run.state.name if run.state else "Scheduled"
    expected = getattr(run, "expected_start_time", None)
    if expected is not None and run.state is not None and run.state.is_scheduled() and now - expected >= timedelta(
            minutes=1):
        return f"{run.name} ({state} for {_duration(now - expected)})"
    return f"{run.name} ({state})"


def _duration(delta: timedelta) -> str:
    """``2 h 05 min``, ``14 min``, ``3 d 4 h``: how long an operator has been waiting, to the minute."""
    minutes = int(delta.total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins:02d} min" if hours else f"{mins} min"


def _stuck_clause(run: Any, now: datetime, after: timedelta) -> str:
    """What to do about a queued run that nothing has started for ``after`` (``retrain.reannounce_after_s``), or "".

    Such a run blocked both rules for good: it counts as queued, so no event was sent for the free batches, and it
    never starts when no process serves its deployment (``tuneline serve`` stopped; a run created before the
    deployments moved to a work pool, which no worker of the pool takes: operator QA). Announcing again would only
    queue another run that nothing starts, so the operator is told which run, and the two ways out."""
    expected = getattr(run, "expected_start_time", None)
    if expected is None or run.state is None or not run.state.is_scheduled() or now - expected < after:
        return ""
    return (f", but nothing has started it: start what serves its deployment (`tuneline serve`, or a worker of its "
            f"work pool), or cancel it (`prefect flow-run cancel {run.id}`) and the batches are announced again "
            f"{after.total_seconds():g} s later")


def stuck_retraining_run(config: TunelineConfig, now: datetime | None = None) -> tuple[str, str] | None:
    """The stranded rule's blocker: a ``tuneline-retrain`` run queued but not started for
    ``retrain.reannounce_after_s`` while batches are free (:func:`_stuck_clause`), as (a key that changes only with
    the run and the batches, the watcher's line), or None."""
    now = now or datetime.now(timezone.utc)
    free, _ = _free_and_held(config, now)
    if not free:
        return None
    after = timedelta(seconds=config.retrain.reannounce_after_s)
    # quiet: the stranded rule has said so already when the API cannot be asked
    queued = _queued_run(due_within=timedelta(0), now=now - after, quiet=True, pending=False)
    if queued is None or not (clause := _stuck_clause(queued, now, after)):
        return None
    return (f"{queued.id} {_names(free)}",
            f"waiting   {_names(free)} {'is' if len(free) == 1 else 'are'} free and retraining run "
            f"{_run_text(queued, now)} is queued{clause}")


def _queued_run(due_within: timedelta, now: datetime, quiet: bool = False, pending: bool = True) -> Any:
    """A ``tuneline-retrain`` run (a Prefect ``FlowRun``) that has not started yet and will claim every free batch
    (pending, or scheduled and due within ``due_within``), or None. A *running* one does not count: it claimed when
    it started (a run killed outright even shows Running until Prefect marks it Crashed), so a batch freed since then
    needs an announcement of its own; except one still waiting for its model's slot, which has claimed nothing yet
    (it wears :data:`~tuneline.locking.WAITING_FOR_SLOT_TAG`; with ``pending``). None also when the API cannot be
    asked (logged): a duplicated announcement is harmless, a missed one waits for the stranded rule."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (FlowFilter, FlowFilterName, FlowRunFilter,
                                                FlowRunFilterExpectedStartTime, FlowRunFilterState,
                                                FlowRunFilterStateType, FlowRunFilterTags)
    from prefect.client.schemas.objects import StateType

    flows = FlowFilter(name=FlowFilterName(any_=[RETRAIN_FLOW]))
    try:
        with get_client(sync_client=True) as client:
            found = pending and client.read_flow_runs(flow_filter=flows, limit=1, flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PENDING]))))
            found = found or client.read_flow_runs(flow_filter=flows, limit=1, flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                expected_start_time=FlowRunFilterExpectedStartTime(before_=now + due_within)))
            waiting = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING])),
                                    tags=FlowRunFilterTags(all_=[WAITING_FOR_SLOT_TAG]))
            found = found or pending and client.read_flow_runs(flow_filter=flows, limit=1, flow_run_filter=waiting)
    except Exception as error:  # noqa: BLE001 - the API briefly away: announce, as a duplicate is harmless
        if not quiet:
            logger.warning("could not ask the Prefect API for queued retraining runs (%s: %s); announcing anyway",
                           type(error).__name__, redact(str(error))[:200])
        return None
    return found[0] if found else None


RETRAIN_FLOW = "tuneline-retrain"
#: the states of a retraining run that will still claim batches (a run awaiting its concurrency slot is SCHEDULED)
QUEUED_OR_RUNNING = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")


def retraining_runs(due_within: timedelta = timedelta(0), now: datetime | None = None
                    ) -> tuple[bool, datetime | None]:
    """(whether a ``tuneline-retrain`` run is queued or running, when the last one ended) as the Prefect API knows.

    A SCHEDULED run counts only when it is due (its expected start at most ``due_within`` from ``now``): a run
    waiting for its concurrency slot or a late one. The cron deployment (``retrain.cron``) always has future runs
    scheduled, and counting those kept the stranded rule from ever announcing: a killed run's batches and a requeued
    batch waited for the next cron tick (a day, for a nightly cron) instead of about ten minutes (operator QA)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterEndTime,
                                                FlowRunFilterExpectedStartTime, FlowRunFilterState,
                                                FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    flows = FlowFilter(name=FlowFilterName(any_=[RETRAIN_FLOW]))
    started = [StateType[n] for n in QUEUED_OR_RUNNING if n != "SCHEDULED"]
    due = (now or datetime.now(timezone.utc)) + due_within
    with get_client(sync_client=True) as client:
        active = client.read_flow_runs(flow_filter=flows, limit=1, flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=started))))
        if not active:
            active = client.read_flow_runs(flow_filter=flows, limit=1, flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                expected_start_time=FlowRunFilterExpectedStartTime(before_=due)))
        ended = client.read_flow_runs(flow_filter=flows, sort=FlowRunSort.END_TIME_DESC, limit=1,
                                      flow_run_filter=FlowRunFilter(end_time=FlowRunFilterEndTime(is_null_=False)))
    return bool(active), (ended[0].end_time if ended else None)


def waiting_for_rows(free: list[Batch], min_new_rows: int) -> bool:
    """Whether ``free`` are validated batches held back on purpose: their accepted rows add up to fewer than
    ``retrain.min_new_rows``, so a run would only check them and wait again. The stranded rule announced them
    with a warning at every ``reannounce_after_s`` (loop QA); the next batch to land wakes a run for them all."""
    return all(b.state == VALIDATED and b.rows_accepted is not None for b in free) and \
        sum(b.rows_accepted for b in free) < min_new_rows


def announce_stranded(config: TunelineConfig, *, now: datetime | None = None) -> list[Batch]:
    """The stranded rule (module docstring): announce free ``landed`` batches that no retraining run is queued or
    running for, once they and the last run's end are ``retrain.reannounce_after_s`` old.

    Returns the batches named in the ``tuneline.batch.pending`` event, or [] when none was emitted (also when the
    Prefect API cannot be asked: logged, and asked again at the next scan).
    """
    wait = timedelta(seconds=config.retrain.reannounce_after_s)
    now = now or datetime.now(timezone.utc)
    with open_ledger(config) as ledger:
        # landed ones, and those a killed run held whose lease ran out (claimed/validated): no event wakes a run
        # for them otherwise, and the takeover the lease promises never happens until another batch lands
        free = ledger.free_batches()
    if not free or any(now - b.landed_at < wait for b in free if b.state == LANDED):
        return []
    if waiting_for_rows(free, config.retrain.min_new_rows):
        return []
    try:
        busy, last_end = retraining_runs(due_within=wait, now=now)  # a run due within the wait takes them
    except Exception as error:  # noqa: BLE001 - the API briefly away: the next scan asks again
        logger.warning("could not ask the Prefect API for retraining runs (%s: %s); the stranded rule waits for the "
                       "next scan", type(error).__name__, redact(str(error))[:200])
        return []
    if busy or (last_end is not None and now - last_end < wait):
        return []
    if not emit_batches_pending(free, config.registered_model_name, rule="stranded"):
        return []
    flush_events()
    return free


def describe(batch: Batch) -> str:
    """One line for the watcher's terminal."""
    if batch.state == DUPLICATE:
        return f"duplicate {batch.name}: same content as an earlier batch (#{batch.duplicate_of}); not announced"
    if batch.state == REJECTED:
        return f"rejected  {batch.name}: {'; '.join(batch.reasons)}"
    return (f"landed    {batch.name} ({batch.content_hash[:12]}, {batch.format}, {batch.size_bytes} bytes): "
            f"announced {BATCH_LANDED}")


@functools.lru_cache(maxsize=8)
def prefect_api_answers(url: str) -> bool:
    """Whether the Prefect API at ``url`` answers its health check, asked once per process (one request, about
    1.5 s when nothing listens). A command that only *uses* Prefect when it is there (the gate lock's concurrency
    slot, its events) asks this first: against a wrong ``PREFECT_API_URL`` the client's retries and the events
    worker's reconnects spent 14 s and printed three warnings on a ``promote`` that needed none of them."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        return client.api_healthcheck() is None


def require_prefect_api(purpose: str = "announce batches to", where: str = "(the API `tuneline serve` uses)") -> str:
    """The URL of the configured Prefect API; a :class:`UserError` when none is set or it does not answer.

    Without ``PREFECT_API_URL`` Prefect would start a private throwaway API for this process: an event sent there
    reaches no deployment, and a deployment made there is seen by no worker. ``purpose`` and ``where`` finish the
    message (what the API is needed for, where it must be set).
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from tuneline.errors import UserError

    url = PREFECT_API_URL.value()
    if not url:
        raise UserError(f"no Prefect API to {purpose}: start one with `prefect server start` and set "
                        f"PREFECT_API_URL=http://127.0.0.1:4200/api {where}")
    with get_client(sync_client=True) as client:
        failure = client.api_healthcheck()
    response = getattr(failure, "response", None)
    if getattr(response, "status_code", None) == 404 and not url.rstrip("/").endswith("/api"):
        # the server's own address without /api: it does answer (404), so "start it" would send the user astray
        raise UserError(f"PREFECT_API_URL={redact(url)} names the Prefect server but not its API (it answered 404): "
                        f"set PREFECT_API_URL={redact(url.rstrip('/'))}/api {where}")
    if failure is not None:
        raise UserError(f"the Prefect API at {redact(url)} does not answer ({type(failure).__name__}): start it "
                        f"with `prefect server start`, or set PREFECT_API_URL to a running one {where}")
    return url


def watch(config: TunelineConfig, *, interval_s: float | None = None, once: bool = False,
          echo: Callable[[str], None] = print, sleep: Callable[[float], object] | None = None,
          stop: threading.Event | None = None) -> None:
    """The foreground watcher (``tuneline watch``): scan and announce every ``interval_s`` (default
    ``retrain.watch_interval_s``) until ``stop`` is set or interrupted; with ``once``, one scan. Applies the pending
    rule on its first scan (with ``once``, a line says why it announced nothing) and the stranded rule on each later
    one. A scan that fails after the first (the ledger's database busy, the folder briefly
    unmounted) is reported and retried at the next interval; the first one's error is raised (a wrong config).

    ``stop`` is what the CLI's Ctrl-C handler sets instead of raising KeyboardInterrupt in the middle of a scan
    (inside a Prefect client call or a ledger transaction): the scan in progress finishes, and the wait between
    scans (``stop.wait``) returns at once."""
    from tuneline.errors import UserError

    interval_s = interval_s or config.retrain.watch_interval_s
    stop = stop or threading.Event()
    sleep = sleep or stop.wait
    first, told = True, set()
    while not stop.is_set():
        try:
            recorded = scan_and_announce(config)
            for batch in recorded:
                echo(describe(batch))
            if first:
                pending, why = announce_at_start(config, interval_s=interval_s)
                if pending:
                    echo(f"pending   {len(pending)} free batch(es) no retraining run is queued for "
                         f"({_names(pending)}): announced {BATCHES_PENDING}")
                elif once and not any(b.state == LANDED for b in recorded):  # --once says why it announced nothing
                    echo(why)
            elif stranded := announce_stranded(config):
                echo(f"stranded  {len(stranded)} batch(es) no retraining run is queued or running for "
                     f"({', '.join(b.name for b in stranded)}): announced {BATCHES_PENDING} again")
            elif (stuck := stuck_retraining_run(config)) and stuck[0] not in told:  # once, not at every scan
                told.add(stuck[0])
                echo(stuck[1])
        except UserError as error:
            if first:
                raise
            echo(f"tuneline: warning: scan failed, retrying in {interval_s:g} s: {redact(error)}")
        first = False
        if once or stop.is_set():
            return
        sleep(interval_s)
