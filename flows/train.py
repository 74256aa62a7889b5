"""The training flow: one config in, one registered and gated model out, for every task kind."""

from __future__ import annotations

from prefect import flow

from tuneline.errors import quiet_console
from tuneline.interrupts import cancelled_when_stopped
from tuneline.heap import frozen_heap
from tuneline.kinds import AnyConfig
from tuneline.registered_kind import refuse_another_kind
from tuneline.run_warnings import collected_warnings
from tuneline.tasks.calibrate import calibrate_model
from tuneline.tasks.evaluate import chance_baseline, evaluate_model, score_baselines
from tuneline.tasks.gate import gate_and_promote, score_champion
from tuneline.tasks.lineage import log_lineage, record_seen_rows
from tuneline.tasks.load import load_data
from tuneline.tasks.model import build_model, load_tokenizer
from tuneline.tasks.register import register_model
from tuneline.tasks.report import report_evaluation
from tuneline.tasks.split import split_data
from tuneline.tasks.summary import RunSummary, summarize_run
from tuneline.tasks.tokenize import tokenize_splits
from tuneline.tasks.train import train_model
from tuneline.tasks.validate import validate_data
from tuneline.tracking import tracked_run, version_tags


@flow(name="tuneline-train", log_prints=True, on_running=[quiet_console],
      on_crashed=[cancelled_when_stopped])
def train_flow(config: AnyConfig) -> RunSummary:
    """Fine-tune, evaluate, register and gate a model of the config's task kind.

     1. load the input files (hashing and counting each)    9. calibrate on validation (e.g. thresholds)
     2. validate: the kind's contract, quarantine           10. evaluate on test through the serving code
     3. split by key hash (stable, leakage-free)            11. baselines on the same test rows
     4. log lineage (MLflow dataset inputs, tags)           12. report: before vs after, per class, plots
     5. load the tokenizer                                  13. score the champion on the same test rows
     6. tokenize with the kind's encoder (cached)           14. register the version (alias challenger)
     7. build the model: the kind's head + strategy         15. gate: move champion only if it passes
     8. train with the Trainer (early stopping, resume)     16. summarize (and the run's warnings); remove
                                                                the checkpoints
    """
    refuse_another_kind(config)  # before the run: versions of two kinds under one name cannot be gated
    with frozen_heap(), tracked_run(config) as run, collected_warnings() as warned:
        loaded = load_data(config)
        validated = validate_data(loaded, config, run.run_dir, run)
        splits = split_data(validated.frames, validated.labels, config.data.split, kind=config.task,
                            quarantine_path=validated.quarantine_path)
        lineage = log_lineage(splits, loaded.sources, run, config.task)
        record_seen_rows(splits, run, config.task)
        tokenizer = load_tokenizer(config.model)
        tokenized = tokenize_splits(splits, tokenizer, config, lineage)
        built = build_model(config.model, config.task, splits.labels, seed=config.train.seed,
                            max_length=config.tokenize.max_length, model_inputs=tokenized.model_inputs)
        trained = train_model(built.model, tokenizer, tokenized, splits.labels, config, run)
        calibrate_model(trained, splits, config, run)
        fine_tuned = evaluate_model(trained.model_dir, splits.test, splits.labels, config)
        baselines = [*score_baselines(splits, config), chance_baseline(fine_tuned, splits.test, splits.labels, config)]
        report = report_evaluation(fine_tuned, baselines, splits.test, splits.labels, config,
                                   run.run_dir / "evaluation", run)
        champion = score_champion(run, config.registered_model_name, config.task, splits.test, splits.labels,
                                  config.primary_metric)
        version = register_model(trained.model_dir, config.task, config.registered_model_name, run,
                                 version_tags(config, lineage, fine_tuned.metrics, run), fine_tuned.metrics)
        decision = gate_and_promote(version, fine_tuned, baselines, champion, splits.test, splits.labels, config, run)
        return summarize_run(run, config, version, decision, report, validated, tokenized, trained, warned)
