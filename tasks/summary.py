"""Summary: one record of where a run's results are (MLflow run, model version, aliases, reports), saved and logged."""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from tuneline.common import pipeline_task
from tuneline.config import TunelineConfig
from tuneline.runtime import redact
from tuneline.tasks.gate import GateDecision
from tuneline.tasks.register import RegisteredVersion
from tuneline.tasks.report import ReportFiles
from tuneline.tasks.tokenize import TokenizedData, truncation_line
from tuneline.tasks.train import TrainedModel
from tuneline.tasks.validate import ValidatedData
from tuneline.tracking import RunContext, client_for, log_artifact

#: how many quarantine rules a batch's summary line names by count before "N more under M other rules"
SHOWN_RULES = 4


@dataclass
class RunSummary:
    run_id: str
    experiment_id: str
    tracking_uri: str
    registered_model: str
    version: str
    aliases: list[str]
    promoted: bool
    gate_reasons: list[str]
    primary_metric: str
    comparison: dict[str, dict[str, float]]
    run_dir: str
    quarantine_file: str
    rejected_records: int
    duplicate_records: int
    task: str
    labels: list[str]
    truncated: dict[str, int]
    train_runtime_s: float = 0.0
    truncation: str = ""  # rows cut at tokenize.max_length, per split (empty: none)
    time: str = ""  # where the run's time went, in one line (tuneline.timings), details in timings.json
    resumed_from: str = ""  # the checkpoint an interrupted run of the same config and data left (empty: a fresh start)
    split_rows: dict[str, int] = field(default_factory=dict)  # rows trained, validated and tested on
    records_read: int = 0  # records in the data files (kept + quarantined)
    gate_line: str = ""  # the reasons in one line, a refusal's failed checks first (GateDecision.explained)
    warnings: list[str] = field(default_factory=list)  # what the run logged as warnings (tuneline.run_warnings)
    experiment: str = ""  # the MLflow experiment's name (its id alone said nothing to a person)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def report_time(run: RunContext, training_s: float) -> str:
    """The run's time breakdown: ``timings.json`` in the run folder, ``time.*`` metrics, and its one-line form."""
    from tuneline.timings import time_breakdown, write_breakdown
    from tuneline.tracking import log_metrics

    breakdown = time_breakdown(training_s)
    log_artifact(run, write_breakdown(breakdown, Path(run.run_dir)))
    log_metrics(run, breakdown.metrics())
    return breakdown.line()


@pipeline_task(name="summarize-run")
def summarize_run(run: RunContext, config: TunelineConfig, version: RegisteredVersion, decision: GateDecision,
                  report: ReportFiles, validated: ValidatedData, tokenized: TokenizedData,
                  trained: TrainedModel | None = None, warnings: list[str] | None = None) -> RunSummary:
    """Collect the run's outcome (aliases read back from the registry) into ``summary.json``; the model is
    registered now, so the run's checkpoints (kept so far for a re-run to resume from) are removed."""
    if trained is not None and trained.checkpoint_dir is not None:
        shutil.rmtree(trained.checkpoint_dir, ignore_errors=True)
    aliases = sorted(client_for(run).get_model_version(version.name, version.version).aliases)
    summary = RunSummary(
        run_id=run.run_id, experiment_id=run.experiment_id, experiment=config.tracking.experiment,
        tracking_uri=redact(run.tracking_uri), registered_model=version.name, version=version.version, aliases=aliases, promoted=decision.promote,
        gate_reasons=decision.reasons, primary_metric=decision.metric, comparison=report.comparison,
        run_dir=str(run.run_dir), quarantine_file=str(validated.quarantine_path),
        rejected_records=validated.rejected_records, duplicate_records=validated.duplicate_records, task=config.task, labels=list(validated.labels),
        truncated=dict(tokenized.truncated), truncation=truncation_line(tokenized, config.tokenize.max_length),
        train_runtime_s=trained.train_runtime_s if trained is not None else 0.0,
        resumed_from=(trained.resumed_from or "") if trained is not None else "",
        split_rows=dict(tokenized.rows), records_read=int(validated.total_records), gate_line=decision.explained(),
        warnings=list(warnings or []))
    summary.time = report_time(run, summary.train_runtime_s)
    path = Path(run.run_dir) / "summary.json"
    path.write_text(summary.to_json())
    log_artifact(run, path)
    return summary


@dataclass
class RetrainSummary:
    """What one run of the retraining flow did: the batches it used or rejected, the data version, the model."""

    status: str                      # retrained | skipped | nothing_accepted | waiting
    message: str
    trigger: str
    batches_used: list[str]
    batches_rejected: dict[str, list[str]]
    rejected_quarantines: dict[str, str] = field(default_factory=dict)  # a rejected batch -> its quarantine file
    batches_duplicate: dict[str, str] = field(default_factory=dict)  # a copy's name -> the batch it copies
    duplicate_notes: dict[str, str] = field(default_factory=dict)  # a copy of a rejected batch -> what to do
    waiting: list[str] = field(default_factory=list)  # landings not complete, so not read: 'name (why)'
    #: a batch landed at the path of an earlier batch that was used or waits validated (the file was rewritten)
    #: -> what that earlier batch is, and how to take this one out if the rewrite was a mistake
    rewritten: dict[str, str] = field(default_factory=dict)
    batch_rows: dict[str, str] = field(default_factory=dict)  # a used batch -> its rows kept and quarantined
    drift: dict[str, str] = field(default_factory=dict)  # a batch whose drift checks warned or stopped -> why
    warnings: list[str] = field(default_factory=list)  # what the run did not do as its config reads (data.labels)
    data_version: int | None = None
    data_version_hash: str | None = None
    run: RunSummary | None = None
    forgetting: dict[str, float] | None = None
    sentence: str | None = None
    #: a refused version's batches: their rows stay in the data version, so later runs train on them too
    refused_rows: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def summarize_nothing_accepted(intake, parent, trigger: str, run: RunContext) -> RetrainSummary:  # noqa: ANN001
    """Every claimed batch was rejected: the champion stays, and the summary says why."""
    from tuneline.tracking import set_tags

    rejected = {batch.name: reasons for batch, reasons in intake.rejected}
    message = (f"no batch was accepted ({len(rejected)} rejected); the registered model stays as it is" if rejected
               else "no batch left to take: another run claimed them first (it trains on them); nothing to do")
    set_tags(run, {"retrain.status": "nothing_accepted"})
    print(message)
    return RetrainSummary(status="nothing_accepted", message=message, trigger=trigger, batches_used=[],
                          batches_rejected=rejected, rejected_quarantines=dict(intake.quarantines),
                          data_version=parent.number,
                          data_version_hash=parent.content_hash)


def summarize_too_few_rows(intake, new_rows: int, minimum: int, parent, trigger: str,  # noqa: ANN001
                           run: RunContext) -> RetrainSummary:
    """The accepted batches bring fewer new rows than ``retrain.min_new_rows``: they wait, validated, for more."""
    from tuneline.tracking import set_tags

    message = too_few_rows_message(distinct_names([a.batch for a in intake.accepted]), new_rows, minimum)
    set_tags(run, {"retrain.status": "waiting", "retrain.new_rows": str(new_rows)})
    print(message)
    return RetrainSummary(status="waiting", message=message, trigger=trigger, batches_used=[],
                          batches_rejected={batch.name: reasons for batch, reasons in intake.rejected},
                          rejected_quarantines=dict(intake.quarantines), batch_rows=batch_rows(intake),
                          data_version=parent.number, data_version_hash=parent.content_hash)


def too_few_rows_message(names: list[str], new_rows: int, minimum: int) -> str:
    """Why a run with validated batches trains nothing yet: they hold fewer rows than ``retrain.min_new_rows``."""
    return (f"{new_rows} new row(s) in {', '.join(names)}, fewer than retrain.min_new_rows={minimum}: no retraining "
            "yet; the batch(es) stay validated (not read again) and the next run trains on them with what lands by "
            "then")


def summarize_held_elsewhere(held, parent, batches, trigger: str, run: RunContext) -> RetrainSummary:  # noqa: ANN001
    """The current data version holds rows of batches another run still holds (a run that died after committing
    it, or one still training): this run gives its own batches back instead of training on rows it cannot name."""
    from tuneline.tracking import set_tags

    from tuneline.run_process import GONE, run_liveness, shown

    named = ", ".join(f"{b.name} (run {b.claimed_by}, lease until {b.lease_expires_at:%H:%M:%S} UTC)" for b in held)
    dead = sorted({shown(process) for b in held
                   for alive, process in [run_liveness(client_for(run), b.claimed_by)] if alive == GONE})
    state = (f"killed: its process {', '.join(dead)} is gone" if dead else "killed, or still training")
    message = (f"data version {parent.number} holds the rows of {named}; that run committed it and has not finished "
               f"({state}): this run gives back its {len(batches)} batch(es) and trains nothing, "
               "so that no model is tagged with the wrong batches; once the lease runs out the next run takes them "
               "all (the watcher announces them again; if that run was killed, `tuneline doctor --fix` gives them "
               "back now)")
    set_tags(run, {"retrain.status": "waiting", "retrain.waiting_for": ", ".join(b.name for b in held)})
    print(message)
    return RetrainSummary(status="waiting", message=message, trigger=trigger, batches_used=[],
                          batches_rejected={}, data_version=parent.number, data_version_hash=parent.content_hash)


def distinct_names(batches) -> list[str]:  # noqa: ANN001 - ledger Batches
    """Each batch's name, with the start of its content hash where two batches share a name (a file rewritten and
    landed again after its first content was taken): ``good.csv #1a2b3c4d5e6f``."""
    names = [b.name for b in batches]
    return [f"{b.name} #{b.content_hash[:12]}" if names.count(b.name) > 1 else b.name for b in batches]


def batch_rows(intake) -> dict[str, str]:  # noqa: ANN001
    """Each used batch's rows in a few words: ``51 rows kept, 39 quarantined (conflicts_with_earlier_label 39)``. A
    summary that named the batch alone hid the rows its contract set aside, which only the log and the batch's
    quarantine file said."""
    said: dict[str, str] = {}
    for accepted in intake.accepted:
        words = f"{len(accepted.frame)} rows kept"
        if accepted.rejected_rows:
            rules = ""
            if accepted.quarantine_path is not None and Path(accepted.quarantine_path).is_file():
                counts = pd.read_csv(accepted.quarantine_path, usecols=["rule"])["rule"].value_counts()
                more = len(counts) - SHOWN_RULES  # the rest said, not dropped: the counts must add up (loop QA)
                rules = (" (" + ", ".join(f"{rule} {n}" for rule, n in counts.head(SHOWN_RULES).items())
                         + (f", {int(counts.iloc[SHOWN_RULES:].sum())} more under {more} other rule"
                            f"{'s' * (more != 1)}" if more > 0 else "") + f"; {accepted.quarantine_path})")
            words += f", {accepted.rejected_rows} quarantined{rules}"
        said[accepted.batch.name] = words
    return said


def refused_rows_note(names: list[str], version: int) -> str | None:
    """What a refused version leaves behind: its batches' rows are in data version ``version``, and every later run
    trains and tests on them. A one-class or drifted batch that made the gate refuse a model (forgetting) stayed in
    the data with nothing saying so (loop QA); ``CONFIG`` is the run's config file where it knows it
    (:mod:`tuneline.config_hints`), else the CLI fills it in as it prints.
    ``names``: the batches the run used; None when there are none (the first run's base data, a retrain
    without new data)."""
    if not names:
        return None
    from tuneline.config_hints import named

    drops = "; ".join(f'tuneline data drop -c CONFIG {shlex.quote(name)} --reason "..."' for name in names)
    return named(f"the rows of {', '.join(names)} stay in data version {version}: every later run trains and tests "
                 f"on them too. If they are why the gate refused this version, take them out: {drops}")


@pipeline_task(name="summarize-retrain")
def summarize_retrain(summary: RunSummary, decision: GateDecision, used, intake, version, forgetting,  # noqa: ANN001
                      trigger: str, run: RunContext, drift: dict[str, str] | None = None,
                      warnings: list[str] | None = None) -> RetrainSummary:
    """The retraining run's outcome in one record (``retrain_summary.json`` in the run) and its gate sentence."""
    from tuneline.tasks.gate import decision_sentence
    from tuneline.tracking import set_tags

    sentence = decision_sentence(decision, summary.version)
    set_tags(run, {"retrain.status": "retrained"})  # the sentence: in the gate's log line and the printed summary
    names = distinct_names(used)
    result = RetrainSummary(
        status="retrained", message=sentence, trigger=trigger, batches_used=names,
        batches_rejected={batch.name: reasons for batch, reasons in intake.rejected},
        rejected_quarantines=dict(intake.quarantines), data_version=version.number,
        data_version_hash=version.content_hash, run=summary, batch_rows=batch_rows(intake), drift=dict(drift or {}),
        warnings=list(warnings or []),
        forgetting=None if forgetting is None else {"drop": forgetting.drop, "champion": forgetting.champion,
                                                    "champion_version": forgetting.champion_version,
                                                    "candidate": forgetting.candidate,
                                                    "worst_class_drop": (forgetting.worst_class() or ("", 0.0))[1]},
        sentence=sentence, refused_rows=None if decision.promote else refused_rows_note(names, version.number))
    if result.refused_rows:  # in the run's log too: a run on a worker had it only in retrain_summary.json (QA)
        from tuneline.common import task_logger
        from tuneline.run_warnings import SAID_IN_SUMMARY

        task_logger().warning("%s", result.refused_rows, extra=SAID_IN_SUMMARY)
    path = Path(run.run_dir) / "retrain_summary.json"
    path.write_text(result.to_json())
    log_artifact(run, path)
    return result
