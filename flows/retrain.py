"""The retraining flow: new labeled batches in, a better model (or a reasoned refusal) out.

Triggered by a ``tuneline.batch.landed`` event, a cron schedule, or by hand (``tuneline retrain``). One run takes
every free batch in the ledger at once (a burst becomes one run), so a queued run that finds nothing exits at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timezone

from prefect import flow

from tuneline.errors import quiet_console
from tuneline.interrupts import cancelled_when_stopped
from tuneline.common import task_logger
from tuneline.config_hints import name_config_in_run_logs
from tuneline.dataset_store import DatasetStore, DataVersion
from tuneline.heap import frozen_heap
from tuneline.interrupts import uncut_cleanup
from tuneline.kinds import AnyConfig, kind_of
from tuneline.ledger import (CLAIMED, DROPPED, DUPLICATE, REJECTED, USED, VALIDATED, Batch, Ledger, LedgerConflict, ledger_url_for,
                             waiting_landings)
from tuneline.loaded_versions import forget_loaded
from tuneline.locking import default_lock_url, lock_url_is_shared, retraining_slot
from tuneline.promotions import recorded_champion
from tuneline.registered_kind import refuse_another_kind
from tuneline.registry import settle_dead_holders
from tuneline.run_warnings import collected_warnings
from tuneline.runtime import redact, resolve_tracking_uri
from tuneline.tracking import open_store
from tuneline.tasks.calibrate import calibrate_model
from tuneline.tasks.continual import champion_weights, continual_splits
from tuneline.tasks.drift import admit_labels, check_batch_drift, enforce_drift
from tuneline.tasks.evaluate import chance_baseline, evaluate_model, score_baselines, score_subset
from tuneline.tasks.forgetting import Forgetting, earlier_data, measure_forgetting
from tuneline.tasks.gate import gate_and_promote, score_champion
from tuneline.tasks.intake import (
    LeaseKeeper,
    base_data_changed,
    commit_version,
    dataset_folder,
    ingest_base,
    parent_batches_held_elsewhere,
    retrain_tags,
    splits_of,
    validate_batches,
    version_sources,
)
from tuneline.tasks.lineage import log_lineage, record_seen_rows
from tuneline.tasks.model import build_model, load_tokenizer
from tuneline.tasks.register import register_model
from tuneline.tasks.report import report_evaluation
from tuneline.tasks.summary import (RetrainSummary, distinct_names, summarize_held_elsewhere,
                                   summarize_nothing_accepted, summarize_retrain, summarize_run, summarize_too_few_rows,
                                   too_few_rows_message)
from tuneline.tasks.tokenize import tokenize_splits
from tuneline.tasks.train import train_model
from tuneline.tracking import (client_for, close_abandoned_run, discard_run, release_interrupted_connections, set_tags,
                               tracked_run, version_tags, warn_if_server_down)


name_config_in_run_logs()  # a run's `-c CONFIG` hints name its config_file (tuneline/config_hints.py)


@flow(name="tuneline-retrain", log_prints=True, on_running=[quiet_console],
      on_crashed=[cancelled_when_stopped])
def retrain_flow(config: AnyConfig, trigger: str = "manual", config_file: str | None = None) -> RetrainSummary:
    """Claim the landed batches, validate each once, check drift, append a data version, retrain, gate.

     1. scan the landing folder; claim every free batch (a lease the run renews while it works)
     2. data version 1 is the config's own data files (first run only)
     3. read each batch from a hash-checked copy; one changed, removed or unreadable since it landed is rejected
        with its reason and the others go on; unseen labels: reject the batch, or grow the label set
        (drift.allow_label_growth)
     4. validate each batch with the kind's contract; quarantine; the ledger records validated/rejected
     5. drift report per batch against the current data version (warn, or stop and reject)
     6. commit the next data version (the accepted rows appended; every row keeps its split)
     7. train: full (from model.base, all data) or continual (from the champion, new rows + replay)
     8. evaluate on all test rows and on the new ones; forgetting on the earlier test set vs the champion
     9. register (data version on the tags), gate with the forgetting bounds, mark the batches used
    Any failure gives the batches back (validated ones stay validated) for the next run. A run with no free batch
    says why: what waits for its marker, what another (perhaps killed) run holds and until when, or that no model
    is champion yet. ``config_file``: the YAML the config came from (``tuneline retrain``, ``deploy`` and ``serve``
    pass it), which the run's ``-c CONFIG`` hints then name.
    """
    tracking_uri = resolve_tracking_uri(config.tracking.tracking_uri)
    warn_if_server_down(tracking_uri)  # before the first MLflow request, which MLflow retries for minutes
    name = config.registered_model_name
    refuse_another_kind(config)  # before the ledger and a run: two kinds under one name cannot be gated
    ledger = Ledger(ledger_url_for(config.ledger.url, tracking_uri), name, lease_s=config.ledger.lease_s)
    store = DatasetStore(ledger.url, name, dataset_folder(config))
    try:
        duplicates: dict[str, str] = {}
        notes: dict[str, str] = {}
        refused: dict[str, list[str]] = {}  # rejected as they were recorded (a folder mixing formats): no run reads them
        if config.retrain.landing is not None:
            recorded = ledger.scan(config.retrain.landing, data_format=config.data.format)
            duplicates = _duplicates(ledger, recorded)
            notes = _copies_of_rejected(ledger, duplicates)
            refused = {b.name: list(b.reasons) for b in recorded if b.state == REJECTED}
        with retraining_slot(name, lock_url=default_lock_url(tracking_uri),
                             free_stale_slots=lock_url_is_shared(tracking_uri)):
            _take_over_dead_holders(ledger, tracking_uri)
            if (stored := store.current()) is not None:
                base_data_changed(config, stored)  # warned about, whether or not anything new landed
            if not ledger.free_batches() and store.current() is not None \
                    and config.retrain.when_no_new_data == "skip":
                message = _nothing_to_do(config, ledger, tracking_uri, refused) + _untrained_version(
                    store.current(), name, tracking_uri)
                print(message)
                return RetrainSummary(status=_status_without_batches(refused), message=message, trigger=trigger,
                                      batches_used=[], batches_rejected=refused, batches_duplicate=duplicates,
                                      duplicate_notes=notes)
            if (waiting := _still_too_few(config, ledger, store)) is not None:
                print(waiting)
                current = store.current()
                return RetrainSummary(status="waiting", message=waiting, trigger=trigger, batches_used=[],
                                      batches_rejected=refused, batches_duplicate=duplicates, duplicate_notes=notes,
                                      data_version=current.number, data_version_hash=current.content_hash,
                                      waiting=_unmarked(config, ledger))
            with frozen_heap(), tracked_run(config) as run, collected_warnings() as warned:
                set_tags(run, {"tuneline.flow": "retrain", "retrain.trigger": trigger})
                expired = {b.content_hash: b.claimed_by for b in ledger.free_batches() if b.claimed_by}
                batches = ledger.claim(run.run_id)
                rewritten = _rewritten(ledger, batches)
                for abandoned in sorted({expired[b.content_hash] for b in batches if b.content_hash in expired}):
                    if close_abandoned_run(run, abandoned):
                        print(f"took over the batches of run {abandoned}, whose lease had run out (killed?); "
                              f"marked it KILLED in MLflow")
                if not batches and store.current() is not None and config.retrain.when_no_new_data == "skip":
                    discard_run(run)  # a concurrent run claimed every batch between the check above and here
                    message = _nothing_to_do(config, ledger, tracking_uri, refused)
                    print(message)
                    return RetrainSummary(status=_status_without_batches(refused), message=message,
                                          trigger=trigger, batches_used=[], batches_rejected=refused,
                                          batches_duplicate=duplicates, duplicate_notes=notes)
                try:
                    with LeaseKeeper(ledger, run.run_id):
                        done = _retrain(config, run, ledger, store, batches, trigger, warned)
                        return replace(done, batches_duplicate=duplicates, duplicate_notes=notes,
                                       waiting=_unmarked(config, ledger),
                                       batches_rejected={**refused, **done.batches_rejected}, rewritten=rewritten)
                except BaseException as error:
                    with uncut_cleanup():  # the stop's next signal (serve's runner: SIGTERM) waits for the release
                        release_interrupted_connections(error)  # an interrupted write's lock would block it
                        ledger.release(run.run_id)
                    raise
    finally:
        forget_loaded()  # the champion the drift, gate and forgetting steps shared: a watcher lives on
        store.close()
        ledger.close()


def _unmarked(config: AnyConfig, ledger: Ledger) -> list[str]:
    """The landings not complete, so not read (``late.csv (no late.csv.done beside it)``), for the summary."""
    if config.retrain.landing is None:
        return []
    return waiting_landings(config.retrain.landing, recorded=ledger.recorded_states())


def _still_too_few(config: AnyConfig, ledger: Ledger, store: DatasetStore) -> str | None:
    """Why a run trains nothing when every free batch was validated by an earlier run that left it waiting for
    ``retrain.min_new_rows``, and nothing else landed since; None when there is something to read or train. Such a
    run re-checked the waiting batches' drift, scored them with the champion again and left an MLflow run each time:
    nine copies of one batch's drift report in a day of scheduled runs (loop QA). It now says so and starts none."""
    free = ledger.free_batches()
    if not free or store.current() is None or config.retrain.when_no_new_data != "skip" \
            or any(b.state != VALIDATED or b.claimed_by is not None for b in free):
        return None
    rows = sum(b.rows_accepted or 0 for b in free)
    if rows >= config.retrain.min_new_rows:
        return None
    return too_few_rows_message(distinct_names(free), rows, config.retrain.min_new_rows) + (
        " (nothing has landed since they were validated, so no run is started)")


def _rewritten(ledger: Ledger, batches: list[Batch]) -> dict[str, str]:
    """For each claimed batch new to the loop that landed at the path of an earlier batch still in the data (used,
    or validated and waiting), what that one is: a file rewritten under the same name is a new batch, and an
    operator who overwrote one by mistake was told only "60 rows accepted" (loop QA). An earlier batch that was
    rejected or dropped is not named: landing the corrected file again is how those are fixed."""
    fresh = [b for b in batches if b.state != VALIDATED]
    if not fresh:
        return {}
    every = ledger.batches()
    said: dict[str, str] = {}
    for batch in fresh:
        earlier = [b for b in every if b.path == batch.path and b.content_hash != batch.content_hash
                   and b.duplicate_of is None and b.state in (USED, VALIDATED)
                   and b.landed_at <= batch.landed_at]
        if not earlier:
            continue
        last = max(earlier, key=lambda b: b.landed_at)
        what = (f"used by v{last.model_version}" if last.state == USED and last.model_version else
                "used" if last.state == USED else "validated, waiting to be trained on")
        said[f"{batch.name} #{batch.content_hash[:12]}"] = (
            f"new content at the path of an earlier batch (#{last.content_hash[:12]}, landed "
            f"{last.landed_at:%Y-%m-%d %H:%M:%S} UTC, {what}): taken as a batch of its own, beside it. If the file "
            f"was overwritten by mistake: tuneline data drop -c CONFIG {batch.content_hash[:12]} --reason \"...\"")
    return said


def _status_without_batches(refused: dict[str, list[str]]) -> str:
    """A run with no batch to read: ``nothing_accepted`` (exit 1) when this scan rejected what landed (a folder
    mixing formats, or holding no data file), as when a run rejects a batch for its records; else ``skipped`` (exit
    0). A scheduler checking the exit code saw success for a batch rejected at the scan (loop QA)."""
    return "nothing_accepted" if refused else "skipped"


def _duplicates(ledger: Ledger, recorded: list[Batch]) -> dict[str, str]:
    """The landings this scan recorded as copies of a known batch, each with the original's name: the ledger never
    hands them out, and the run's summary says so (they were silently left out)."""
    copies = [b for b in recorded if b.state == DUPLICATE]
    if not copies:
        return {}
    names = {b.id: b.name for b in ledger.batches()}
    return {b.name: names.get(b.duplicate_of, f"#{b.duplicate_of}") for b in copies}


def _copies_of_rejected(ledger: Ledger, duplicates: dict[str, str]) -> dict[str, str]:
    """For a copy of a batch that was *rejected*, what to do instead: landing the same file again under a new name
    (after fixing the config that rejected it) is ignored as a copy, and the run said only "nothing to do"."""
    rejected = {b.name: b for b in ledger.batches(REJECTED) if b.duplicate_of is None}
    dropped = {b.name for b in ledger.batches(DROPPED) if b.duplicate_of is None}
    notes = {copy: (f"{original} was rejected ({'; '.join(rejected[original].reasons)[:200]}); a copy of it is never "
                    f"taken: to take it after changing what rejected it, run tuneline data requeue -c CONFIG "
                    f"{original} --reason \"...\"")
             for copy, original in duplicates.items() if original in rejected}
    # "landed before (never used twice)" read as if it had been used; a dropped batch's content is out for good
    notes.update({copy: (f"{original} was dropped (tuneline data drop), and a dropped batch's content is not taken "
                         "again: to bring its rows back, land them as new content (a file with any row changed, "
                         "added or removed)")
                  for copy, original in duplicates.items() if original in dropped})
    return notes


def _nothing_to_do(config: AnyConfig, ledger: Ledger, tracking_uri: str, refused: Iterable[str] = ()) -> str:
    """Why a run without a free batch does nothing, and what would change that: a batch waiting for its marker,
    batches held under another run's live lease (a run that was killed keeps them until its lease runs out), or no
    champion yet (the first model was not promoted, and skipping leaves the loop without one). ``refused``: the
    batches this scan rejected as it recorded them (they landed, but no run can read them)."""
    refused = list(refused)
    late = "" if refused else _unusable_since(ledger)
    message = (f"no usable batch has landed ({len(refused)} rejected as it landed: see below); nothing to do"
               if refused else f"no new {'usable ' * bool(late)}batch has landed since the last retraining run"
               f"{_last_taken(ledger)}{late}; nothing to do")
    held = _held_elsewhere(ledger)
    if held:
        message = "no free batch; nothing to do now: " + "; ".join(
            f"{len(batches)} batch(es) ({', '.join(b.name for b in batches)}) are held by run {run_id} until "
            f"{until:%Y-%m-%d %H:%M:%S} UTC (its ledger lease, renewed while that run works; "
            + (f"its process {dead} is gone: `tuneline doctor --fix` gives them back now, or the first retraining "
               f"run after that takes them over)" if (dead := _dead_process(run_id, tracking_uri)) else
               "if it was killed, the first retraining run after that takes them over, or `tuneline doctor --fix` "
               "gives them back now)")
            for (run_id, until), batches in held.items())
    if config.retrain.landing is not None and (waiting := waiting_landings(
            config.retrain.landing, recorded=ledger.recorded_states())):
        message += (f" (not complete, so not read yet: {'; '.join(waiting)}; a producer writes the "
                    f"data first, then its marker)")
    if not held and _no_champion(config.registered_model_name, tracking_uri):
        recorded = recorded_champion(ledger.url, ledger.model, open_store(tracking_uri))
        message += (f"; no version of {config.registered_model_name} is champion" + (
            f", yet the promotion history says v{recorded} is: the alias was removed outside tuneline; restore it "
            f"with tuneline promote {config.registered_model_name} {recorded} --reason \"...\"" if recorded else
            " (the first model was not promoted): land a new batch, or retrain on the current data with "
            "--set retrain.when_no_new_data=retrain"))
    return message


def _untrained_version(current: DataVersion | None, name: str, tracking_uri: str) -> str:
    """A sentence for a run that skips while the current data version was made by hand (``tuneline data drop`` or
    ``data relabel``) and no model version was trained on it yet: the user who dropped a batch and ran ``tuneline
    retrain`` read "no new batch has landed; nothing to do" and was left serving the model trained on the rows they
    had just taken out. "" when a model was trained on it, or when the registry cannot say."""
    if current is None or not (current.created_by or "").startswith("user "):
        return ""
    try:
        client = open_store(tracking_uri)
        trained = any((mv.tags or {}).get("data.version") == str(current.number)
                      for mv in client.search_model_versions(f"name='{name}'"))
    except Exception:  # noqa: BLE001 - only a hint depends on it
        return ""
    if trained:
        return ""
    return (f"; data version {current.number} ({current.note or 'made by hand'}) has no model trained on it yet: "
            "retrain on it with --set retrain.when_no_new_data=retrain")


def _dead_process(run_id: str, tracking_uri: str) -> str | None:
    """``host:pid`` of run ``run_id``'s process when it is known to be gone (a kill -9 on this host), else None."""
    from tuneline.run_process import GONE, run_liveness, shown

    try:
        alive, process = run_liveness(open_store(tracking_uri), run_id)
    except Exception:  # noqa: BLE001 - only a hint depends on it
        return None
    return shown(process) if alive == GONE else None


def _unusable_since(ledger: Ledger) -> str:
    """`` (landed since, not usable: 1 rejected (b02.csv); 1 copy of an earlier batch (b03.csv))``: what landed
    after the last used batch and will never be read. "no new batch has landed" was said beside a batch rejected
    minutes before (loop QA). "" when nothing did."""
    used = [b.used_at for b in ledger.batches(USED) if b.used_at is not None]
    since = max(used) if used else None
    late = [b for b in ledger.batches() if b.state in (REJECTED, DUPLICATE) and (since is None or b.landed_at > since)]
    if not late:
        return ""
    said = []
    for state, what in ((REJECTED, "rejected"), (DUPLICATE, "copy of an earlier batch")):
        names = [b.name for b in late if b.state == state]
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            plural = "copies of earlier batches" if state == DUPLICATE and len(names) > 1 else what
            said.append(f"{len(names)} {plural} ({shown})")
    return f" (landed since, not usable: {'; '.join(said)}; `tuneline data batches` says why)"


def _last_taken(ledger: Ledger) -> str:
    """`` (run R took a.csv, b.csv at HH:MM:SS UTC)``: the batches the last run used. A run queued behind a
    concurrent one (the event trigger's limit) found the batches that woke it taken and said only "no new batch has
    landed", though two had, a minute before (operator QA). "" when no batch was ever used."""
    used = [b for b in ledger.batches(USED) if b.used_at is not None]
    if not used:
        return ""
    last = max(used, key=lambda b: b.used_at)
    names = [b.name for b in used if b.used_by_run == last.used_by_run]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f" (run {last.used_by_run} took {shown} at {last.used_at:%Y-%m-%d %H:%M:%S} UTC)"


def _take_over_dead_holders(ledger: Ledger, tracking_uri: str) -> None:
    """Free now the batches of a run whose process is known to be gone (killed outright, on this host or silent for
    longer than the heartbeat allows), which otherwise waited out its lease while this run said "nothing to do"
    (:func:`tuneline.registry.settle_dead_holders`; under the retraining slot, so no other run is settling them)."""
    client = open_store(tracking_uri)
    for dead in settle_dead_holders(client, ledger, ledger.model):
        names = ", ".join(b.name for b in dead.batches)
        print(f"took over the batches of run {dead.run_id} ({names}), whose process {dead.process} is gone; marked it "
              "KILLED in MLflow" + (f"; they made v{dead.used_by}, which its gate had scored: marked used by it"
                                    if dead.used_by is not None else ""))


def _held_elsewhere(ledger: Ledger) -> dict[tuple[str, datetime], list[Batch]]:
    """Batches held under a live lease, by (run, lease end): what a run killed mid-way leaves behind."""
    now = datetime.now(timezone.utc)
    held: dict[tuple[str, datetime], list[Batch]] = {}
    for batch in ledger.batches():
        if batch.state in (CLAIMED, VALIDATED) and batch.claimed_by and batch.lease_expires_at is not None \
                and batch.lease_expires_at >= now:
            held.setdefault((batch.claimed_by, batch.lease_expires_at.replace(microsecond=0)), []).append(batch)
    return held


def _no_champion(name: str, tracking_uri: str) -> bool:
    """True when the registry has no champion for ``name``; False also when the registry cannot say (the hint is
    left out, the run still skips)."""
    from tuneline.promotions import champion_version

    try:
        return champion_version(open_store(tracking_uri), name) is None
    except Exception as error:  # noqa: BLE001 - only a hint depends on it
        task_logger().warning("could not look up the champion of %s: %s", name, redact(error))
        return False


def _retrain(config, run, ledger: Ledger, store: DatasetStore, batches, trigger: str,  # noqa: ANN001
             warned: list[str]) -> RetrainSummary:
    """``warned``: what the run logs as warnings, filled while it runs (:mod:`tuneline.run_warnings`); each summary
    below lists them, as the training run's does."""
    name = config.registered_model_name
    parent = store.current() or ingest_base(config, store, run)
    held = parent_batches_held_elsewhere(parent, ledger, store, run.run_id)
    if held:
        ledger.release(run.run_id)
        return summarize_held_elsewhere(held, parent, batches, trigger, run)
    reference = store.frame(parent)
    labelset = admit_labels(batches, list(parent.labels), config, ledger, run)

    def run_warnings() -> list[str]:  # the config's ignored data.labels first, then every warning once, as logged
        return list(dict.fromkeys(([labelset.ignored] if labelset.ignored else []) + warned))

    unreadable = {batch.content_hash for batch, _reasons in labelset.unreadable}
    intake = validate_batches([b for b in batches if b.content_hash not in unreadable], labelset.labels, config,
                              ledger, store, reference, run, labelset.read)
    labelset.read.clear()  # each batch was read once, for both checks; not held through training
    intake.rejected[:0] = labelset.unreadable  # already rejected in the ledger; the summary lists them too
    tokenizer = load_tokenizer(config.model)
    new_rows = sum(len(accepted.frame) for accepted in intake.accepted)
    waits = bool(intake.accepted) and new_rows < config.retrain.min_new_rows and parent.created_by != run.run_id
    # a run that will wait checks the batches it validated; those an earlier run validated were checked by it (and
    # all are checked again by the run that trains on them, against the data version it trains on)
    checked = [a for a in intake.accepted if not (waits and a.batch.state == VALIDATED)]
    drift = check_batch_drift([(a.batch, a.frame) for a in checked], reference, list(parent.labels),
                              tokenizer, config, run, own_parts={a.part for a in intake.accepted})
    enforce_drift(drift, checked, ledger, run)
    if not intake.accepted and parent.created_by != run.run_id and config.retrain.when_no_new_data == "skip":
        return replace(summarize_nothing_accepted(intake, parent, trigger, run), drift=drift.notes,
                       warnings=run_warnings())
    if waits:
        ledger.release(run.run_id)  # validated batches stay validated and free: the next run adds them, unread
        return replace(summarize_too_few_rows(intake, new_rows, config.retrain.min_new_rows, parent, trigger, run),
                       drift=drift.notes, warnings=run_warnings())
    version = commit_version(parent, intake, labelset.labels, store, run)
    frame = store.frame(version)
    splits = splits_of(frame, labelset.labels)
    labels = splits.labels
    earlier = earlier_data(client_for(run), name, store, parent, {a.part for a in intake.accepted},
                           kind_of(config).key_column, frame)
    continual = config.retrain.strategy == "continual" and earlier.champion_version is not None and intake.accepted
    if continual and (lost := earlier.lost_labels(labels)):  # a data drop took labels out: the head cannot follow
        task_logger().warning(
            "retrain.strategy continual: champion v%s was trained with label(s) %s that data version %d no longer "
            "has (taken out with a dropped batch); a head can grow but not lose labels, so this run trains from "
            "model.base as retrain.strategy full does, and the next run continues from the champion it makes",
            earlier.champion_version, lost, version.number)
        continual = False
    training = continual_splits(splits, [a.part for a in intake.accepted], config, run) if continual else splits
    lineage = log_lineage(training, version_sources(store, version, frame), run, config.task)
    record_seen_rows(splits, run, config.task)
    tokenized = tokenize_splits(training, tokenizer, config, lineage)
    init_from = champion_weights(name, earlier.champion_version, run) if continual else None
    built = build_model(config.model, config.task, labels, init_from, seed=config.train.seed,
                        max_length=config.tokenize.max_length, model_inputs=tokenized.model_inputs)
    trained = train_model(built.model, tokenizer, tokenized, labels, config, run, from_base=init_from is None)
    calibrate_model(trained, training, config, run)
    fine_tuned = evaluate_model(trained.model_dir, splits.test, labels, config)
    score_subset(fine_tuned, splits.test, earlier.new_mask(splits.test), labels, config, run)
    baselines = [*score_baselines(splits, config), chance_baseline(fine_tuned, splits.test, labels, config)]
    report = report_evaluation(fine_tuned, baselines, splits.test, labels, config, run.run_dir / "evaluation", run)
    champion = score_champion(run, name, config.task, splits.test, labels, config.primary_metric)
    forgetting = measure_forgetting(trained.model_dir, earlier.earlier(splits.test), labels, name,
                                    earlier.champion_version, config, run)
    tags = {**version_tags(config, lineage, fine_tuned.metrics, run), **retrain_tags(version, intake, continual,
                                                                                      trigger, run)}
    registered = register_model(trained.model_dir, config.task, name, run, tags, fine_tuned.metrics)
    def remeasure(moved_to: str) -> Forgetting | None:
        """Forgetting against a champion promoted while this run trained, on the test rows that version knew."""
        knew = earlier_data.fn(client_for(run), name, store, parent, {a.part for a in intake.accepted},
                               kind_of(config).key_column, frame)
        return measure_forgetting.fn(trained.model_dir, knew.earlier(splits.test), labels, name, moved_to, config,
                                     run)

    decision = gate_and_promote(registered, fine_tuned, baselines, champion, splits.test, labels, config, run,
                                forgetting=forgetting, remeasure_forgetting=remeasure)
    forgetting = decision.forgetting
    used = ledger.mark_used(run.run_id, registered.version, expected=[a.batch.content_hash for a in intake.accepted])
    summary = summarize_run(run, config, registered, decision, report, intake.as_validated(labels, len(frame), run),
                            tokenized, trained, run_warnings())
    return summarize_retrain(summary, decision, used, intake, version, forgetting, trigger, run, drift.notes,
                             run_warnings())


__all__ = ["LedgerConflict", "retrain_flow"]
