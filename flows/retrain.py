"""The retraining flow: new labeled batches in, a better model (or a reasoned refusal) out.

Triggered by a ``tuneline.batch.landed`` event, a cron schedule, or by hand (``tuneline retrain``). One run takes
every free batch in the ledger at once (a burst becomes one run), so a queued run that finds nothing exits at once.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import flow

from tuneline.datasets import DatasetStore
from tuneline.kinds import AnyConfig, kind_of
from tuneline.ledger import Ledger, LedgerConflict, ledger_url_for
from tuneline.locking import retraining_slot
from tuneline.runtime import resolve_tracking_uri
from tuneline.tasks.calibrate import calibrate_model
from tuneline.tasks.continual import champion_weights, continual_splits
from tuneline.tasks.drift import DriftStop, check_batch_drift, check_label_set
from tuneline.tasks.evaluate import evaluate_model, score_baselines
from tuneline.tasks.forgetting import measure_forgetting
from tuneline.tasks.gate import champion_version, decision_sentence, gate_and_promote, score_champion
from tuneline.tasks.intake import (
    LeaseKeeper,
    batch_labels,
    dataset_folder,
    ingest_base,
    splits_of,
    validate_batches,
)
from tuneline.tasks.lineage import log_lineage
from tuneline.tasks.load import SourceFile
from tuneline.tasks.model import build_model, load_tokenizer
from tuneline.tasks.register import register_model
from tuneline.tasks.report import report_evaluation
from tuneline.tasks.summary import RetrainSummary, summarize_run
from tuneline.tasks.tokenize import tokenize_splits
from tuneline.tasks.train import train_model
from tuneline.tasks.validate import ValidatedData
from tuneline.tracking import client_for, log_metrics, set_tags, tracked_run, version_tags


@flow(name="tuneline-retrain", log_prints=True)
def retrain_flow(config: AnyConfig, trigger: str = "manual") -> RetrainSummary:
    """Claim the landed batches, validate each once, check drift, append a data version, retrain, gate.

     1. scan the landing folder; claim every free batch (a lease the run renews while it works)
     2. data version 1 is the config's own data files (first run only)
     3. unseen labels: reject the batch, or grow the label set (drift.allow_label_growth)
     4. validate each batch with the kind's contract; quarantine; the ledger records validated/rejected
     5. drift report per batch against the current data version (warn, or stop and reject)
     6. commit the next data version (the accepted rows appended; every row keeps its split)
     7. train: full (from model.base, all data) or continual (from the champion, new rows + replay)
     8. evaluate on all test rows and on the new ones; forgetting on the earlier test set vs the champion
     9. register (data version on the tags), gate with the forgetting bounds, mark the batches used
    Any failure gives the batches back (validated ones stay validated) for the next run.
    """
    tracking_uri = resolve_tracking_uri(config.tracking.tracking_uri)
    name = config.registered_model_name
    ledger = Ledger(ledger_url_for(config.ledger.url, tracking_uri), name)
    store = DatasetStore(ledger.url, name, dataset_folder(config))
    try:
        if config.retrain.landing is not None:
            ledger.scan(config.retrain.landing, data_format=config.data.format)
        with retraining_slot(name):
            if not ledger.free_batches() and store.current() is not None \
                    and config.retrain.when_no_new_data == "skip":
                message = "no new batch has landed since the last retraining run; nothing to do"
                print(message)
                return RetrainSummary(status="skipped", message=message, trigger=trigger, batches_used=[],
                                      batches_rejected={})
            with tracked_run(config) as run:
                set_tags(run, {"tuneline.flow": "retrain", "retrain.trigger": trigger})
                batches = ledger.claim(run.run_id)
                try:
                    with LeaseKeeper(ledger, run.run_id):
                        return _retrain(config, run, ledger, store, batches, trigger)
                except BaseException:
                    ledger.release(run.run_id)
                    raise
    finally:
        store.close()
        ledger.close()


def _retrain(config, run, ledger: Ledger, store: DatasetStore, batches, trigger: str) -> RetrainSummary:  # noqa: ANN001
    kind = kind_of(config)
    name = config.registered_model_name
    parent = store.current() or ingest_base(config, store, run)
    first = parent.created_by == run.run_id
    reference = store.frame(parent)

    landed = {b.content_hash: batch_labels(b, config) for b in batches if b.state != "validated"}
    labelset = check_label_set(list(parent.labels), landed, config)
    rejected: dict[str, list[str]] = {}
    for batch in batches:
        if batch.content_hash in labelset.refused:
            reason = (f"unseen label(s) {labelset.refused[batch.content_hash]} in {batch.name}: the model knows "
                      f"{list(parent.labels)}; fix the labels, or set drift.allow_label_growth=true to grow the head")
            ledger.mark_rejected(run.run_id, batch.content_hash, [reason])
            rejected[batch.name] = [reason]
    if rejected:
        raise DriftStop("; ".join(r for reasons in rejected.values() for r in reasons))
    if labelset.added:
        print(f"the label set grows by {labelset.added}: the model's head is extended")
        set_tags(run, {"retrain.labels_added": ", ".join(labelset.added)})

    intake = validate_batches(batches, labelset.labels, config, ledger, store, reference, run)
    rejected.update({b.name: reasons for b, reasons in intake.rejected})
    tokenizer = load_tokenizer(config.model)
    drift = check_batch_drift([(a.batch, a.frame) for a in intake.accepted], reference, list(parent.labels),
                              tokenizer, config, run)
    if drift.stopped:
        for accepted in intake.accepted:
            if accepted.batch.content_hash in drift.stopped:
                ledger.mark_rejected(run.run_id, accepted.batch.content_hash,
                                     [f"drift (drift.on_drift=stop): {drift.stopped[accepted.batch.content_hash]}"],
                                     accepted.quarantine_path)
        raise DriftStop("drift stopped the run: " + "; ".join(
            f"{a.batch.name}: {drift.stopped[a.batch.content_hash]}" for a in intake.accepted
            if a.batch.content_hash in drift.stopped) + " (see the drift report in the run's drift/ artifacts)")

    if not intake.accepted and not first and config.retrain.when_no_new_data == "skip":
        message = f"no batch was accepted ({len(rejected)} rejected); the champion stays"
        print(message)
        set_tags(run, {"retrain.status": "nothing_accepted"})
        return RetrainSummary(status="nothing_accepted", message=message, trigger=trigger, batches_used=[],
                              batches_rejected=rejected, data_version=parent.number,
                              data_version_hash=parent.content_hash)
    new_parts = [a.part for a in intake.accepted]
    version = parent if not new_parts else store.commit(
        parent, new_parts, labelset.labels, run.run_id,
        ", ".join(f"{a.batch.name} (+{len(a.frame)} rows)" for a in intake.accepted))
    frame = store.frame(version)
    splits = splits_of(frame, labelset.labels)
    labels = splits.labels
    client = client_for(run)
    champion_v = champion_version(client, name)
    champion_data = _champion_data_version(client, name, champion_v)
    earlier_parts = set(store.get(champion_data).parts) if champion_data else set(parent.parts)
    earlier_test = splits.test[splits.test["part"].isin(earlier_parts)].reset_index(drop=True)
    new_test_mask = ~splits.test["part"].isin(earlier_parts)

    continual = config.retrain.strategy == "continual" and champion_v is not None and new_parts
    training = continual_splits(splits, new_parts, config, run) if continual else splits
    sources = [SourceFile(role="all", path=store.part_path(p), sha256=p, records=int((frame["part"] == p).sum()))
               for p in version.parts]
    lineage = log_lineage(training, sources, run, config.task)
    set_tags(run, {"data.version": str(version.number), "data.version_hash": version.content_hash,
                   "retrain.batches": ", ".join(a.batch.name for a in intake.accepted)})
    tokenized = tokenize_splits(training, tokenizer, config, lineage)
    init_from = champion_weights(name, champion_v, run) if continual else None
    built = build_model(config.model, config.task, labels, init_from)
    trained = train_model(built.model, tokenizer, tokenized, labels, config, run)
    calibrate_model(trained, training, config, run)
    fine_tuned = evaluate_model(trained.model_dir, splits.test, labels, config)
    if new_test_mask.any():
        new_rows = splits.test[new_test_mask]
        picked = [fine_tuned.predictions[i] for i in new_test_mask.to_numpy().nonzero()[0]]
        log_metrics(run, {f"new_test.{k}": v for k, v in kind.score(kind.gold(new_rows), picked, labels).items()})
    baselines = score_baselines(splits, config)
    report = report_evaluation(fine_tuned, baselines, splits.test, labels, config, run.run_dir / "evaluation", run)
    champion = score_champion(run, name, config.task, splits.test, labels, config.primary_metric)
    forgetting = measure_forgetting(trained.model_dir, earlier_test, labels, name, champion_v, config, run)
    tags = {**version_tags(config, lineage, fine_tuned.metrics, run), "data.version": str(version.number),
            "data.version_hash": version.content_hash, "retrain.strategy": "continual" if continual else "full",
            "retrain.trigger": trigger}
    registered = register_model(trained.model_dir, config.task, name, run, tags, fine_tuned.metrics)
    decision = gate_and_promote(registered, fine_tuned, baselines, champion, splits.test, labels, config, run,
                                forgetting=forgetting)
    used = ledger.mark_used(run.run_id, registered.version, expected=[a.batch.content_hash for a in intake.accepted]) \
        if intake.accepted else []
    validated = ValidatedData(frames={}, labels=labels, quarantine=pd.DataFrame(
        columns=["split", "source_file", "source_row", "rule"]), quarantine_path=_quarantines(intake, run),
        total_records=len(frame))
    summary = summarize_run(run, config, registered, decision, report, validated, tokenized, trained)
    sentence = decision_sentence(decision, registered.version)
    set_tags(run, {"retrain.status": "retrained"})
    print(sentence)
    return RetrainSummary(
        status="retrained", message=sentence, trigger=trigger, batches_used=[b.name for b in used],
        batches_rejected=rejected, data_version=version.number, data_version_hash=version.content_hash, run=summary,
        forgetting=None if forgetting is None else {"drop": forgetting.drop, "champion": forgetting.champion,
                                                    "candidate": forgetting.candidate}, sentence=sentence)


def _champion_data_version(client, name: str, version: str | None) -> int | None:  # noqa: ANN001
    if version is None:
        return None
    value = client.get_model_version(name, version).tags.get("data.version")
    return int(value) if value and value.isdigit() else None


def _quarantines(intake, run) -> Path:  # noqa: ANN001
    """One quarantine file for the run: every batch's rejected records, with the batch's file names."""
    frames = [pd.read_csv(a.quarantine_path) for a in intake.accepted if a.quarantine_path and a.quarantine_path.is_file()]
    path = run.run_dir / "quarantine.csv"
    (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["split", "source_file", "source_row", "rule", "column", "value", "detail"])).to_csv(path, index=False)
    return path


__all__ = ["LedgerConflict", "retrain_flow"]
