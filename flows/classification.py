"""The text-classification flow."""

from __future__ import annotations

from prefect import flow

from tuneline.config import TunelineConfig
from tuneline.runtime import resolve_base_model
from tuneline.tasks.evaluate import evaluate_classifier, majority_baseline, zero_shot_baseline
from tuneline.tasks.gate import gate_and_promote, score_champion
from tuneline.tasks.lineage import log_lineage
from tuneline.tasks.load import load_data
from tuneline.tasks.model import build_model, load_tokenizer
from tuneline.tasks.register import register_model
from tuneline.tasks.report import report_classification
from tuneline.tasks.split import split_data
from tuneline.tasks.summary import RunSummary, summarize_run
from tuneline.tasks.tokenize import tokenize_splits
from tuneline.tasks.tracking import tracked_run
from tuneline.tasks.train import train_model
from tuneline.tasks.validate import validate_data
from tuneline.tasks.versioning import version_tags


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
        tokenizer = load_tokenizer(config.model)
        tokenized = tokenize_splits(splits, tokenizer, {label: i for i, label in enumerate(splits.labels)},
                                    config.task, config.tokenize.max_length,
                                    {name: item.content_hash for name, item in lineage.items()},
                                    config.work_dir / "cache" / "tokenized")
        built = build_model(config.model, config.task, splits.labels)
        trained = train_model(built.model, tokenizer, tokenized, config.task, splits.labels, config.train,
                              config.primary_metric,
                              config.work_dir / "checkpoints" / f"{config.fingerprint()}-{lineage['train'].content_hash[:12]}",
                              run.run_dir / "model", run, config.tokenize.max_length)
        fine_tuned = evaluate_classifier(trained.model_dir, splits.test, splits.labels, config.evaluate.batch_size)
        baselines = [majority_baseline(splits.train, splits.test, splits.labels)]
        if config.evaluate.zero_shot_baseline:
            baselines.append(zero_shot_baseline(resolve_base_model(config.model.base), splits.test, splits.labels,
                                                config.data.label_descriptions, config.evaluate.batch_size,
                                                config.tokenize.max_length, config.model.trust_remote_code))
        report = report_classification(fine_tuned, baselines, splits.test, splits.labels,
                                       run.run_dir / "evaluation", run)
        champion = score_champion(run, config.registered_model_name, config.task, splits.test, splits.labels,
                                  config.primary_metric)
        version = register_model(trained.model_dir, config.task, config.registered_model_name, run,
                                 version_tags(config, lineage, fine_tuned.metrics, run), fine_tuned.metrics)
        decision = gate_and_promote(version, fine_tuned.metrics, champion, config.gate, config.primary_metric, run)
        return summarize_run(run, version, decision, report.comparison, validated.quarantine_path,
                             validated.rejected_records)
