"""The text-classification flow."""

from __future__ import annotations

from prefect import flow

from tuneline.config import TunelineConfig
from tuneline.flows.stages import fine_tune, register_and_gate
from tuneline.runtime import resolve_base_model
from tuneline.tasks.evaluate import evaluate_classifier, majority_baseline, zero_shot_baseline
from tuneline.tasks.lineage import log_lineage
from tuneline.tasks.load import load_data
from tuneline.tasks.report import report_classification
from tuneline.tasks.split import split_data
from tuneline.tasks.summary import RunSummary, summarize_run
from tuneline.tasks.tracking import tracked_run
from tuneline.tasks.validate import validate_data


@flow(name="tuneline-classification", log_prints=True)
def classification_flow(config: TunelineConfig) -> RunSummary:
    """Fine-tune, evaluate, register and gate a text classifier.

    1. load the input files (hashing each)           7. train with the Trainer (early stopping, best reload)
    2. validate them, quarantining bad rows          8. evaluate on test, with majority and zero-shot baselines
    3. split by text hash (stable, stratified)       9. report: before vs after, per class, confusion matrix
    4. log lineage (MLflow dataset inputs, tags)    10. register the model version (alias challenger)
    5. tokenize (cached by content)                 11. score the champion on the same test rows
    6. build the model (full / LoRA / freeze)       12. gate: move champion only if the candidate passes
    """
    with tracked_run(config) as run:
        loaded = load_data(config.data, config.task)
        validated = validate_data(loaded, config.data, run.run_dir, run)
        splits = split_data(validated.frames, validated.labels, config.data.split)
        lineage = log_lineage(splits, loaded.sources, run)
        tokenized, trained = fine_tune(config, splits, lineage, run)
        fine_tuned = evaluate_classifier(trained.model_dir, splits.test, splits.labels, config.evaluate.batch_size)
        baselines = [majority_baseline(splits.train, splits.test, splits.labels)]
        if config.evaluate.zero_shot_baseline:
            baselines.append(zero_shot_baseline(resolve_base_model(config.model.base), splits.test, splits.labels,
                                                config.data.label_descriptions, config.evaluate.batch_size,
                                                config.tokenize.max_length, config.model.trust_remote_code))
        report = report_classification(fine_tuned, baselines, splits.test, splits.labels,
                                       run.run_dir / "evaluation", run)
        version, decision = register_and_gate(config, splits, lineage, trained, fine_tuned.metrics, run)
        return summarize_run(run, version, decision, report.comparison, validated.quarantine_path,
                             validated.rejected_records, extra={"truncated_rows": tokenized.truncated})
