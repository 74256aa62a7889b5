"""The token-classification (NER) flow."""

from __future__ import annotations

from prefect import flow

from tuneline.config import TunelineConfig
from tuneline.tasks.evaluate_tokens import all_outside_baseline, evaluate_tagger
from tuneline.tasks.gate import gate_and_promote, score_champion
from tuneline.tasks.lineage import log_lineage
from tuneline.tasks.load import load_data
from tuneline.tasks.model import build_model, load_tokenizer
from tuneline.tasks.register import register_model
from tuneline.tasks.report_tokens import report_token_classification
from tuneline.tasks.split import split_data
from tuneline.tasks.summary import RunSummary, summarize_run
from tuneline.tasks.tokenize import tokenize_splits
from tuneline.tasks.tracking import tracked_run
from tuneline.tasks.train import train_model
from tuneline.tasks.validate_tokens import validate_token_data
from tuneline.tasks.versioning import version_tags


@flow(name="tuneline-token-classification", log_prints=True)
def token_classification_flow(config: TunelineConfig) -> RunSummary:
    """Fine-tune, evaluate, register and gate a token tagger (NER, IOB2 tags).

    1. load CoNLL/JSONL sentences (hashing each file)    7. train with the Trainer (seqeval F1 on validation)
    2. validate (IOB2, label set, lengths), quarantine   8. evaluate every test word, with the all-'O' baseline
    3. split by sentence hash (stable)                   9. report: before vs after, per type, tag confusion
    4. log lineage (MLflow dataset inputs, tags)        10. register the model version (alias challenger)
    5. tokenize + align tags to first subwords (cached) 11. score the champion on the same test sentences
    6. build the model (full / LoRA / freeze)           12. gate: move champion only if the candidate passes
    """
    with tracked_run(config) as run:
        loaded = load_data(config.data, config.task)
        validated = validate_token_data(loaded, config.data, run.run_dir, run)
        splits = split_data(validated.frames, validated.labels, config.data.split, key_column="text",
                            label_column=None)
        lineage = log_lineage(splits, loaded.sources, run, columns=("text", "tags"))
        tokenizer = load_tokenizer(config.model)
        tokenized = tokenize_splits(splits, tokenizer, {label: i for i, label in enumerate(splits.labels)},
                                    config.task, config.tokenize.max_length,
                                    {name: item.content_hash for name, item in lineage.items()},
                                    config.work_dir / "cache" / "tokenized", config.tokenize.label_all_subwords)
        built = build_model(config.model, config.task, splits.labels)
        trained = train_model(built.model, tokenizer, tokenized, config.task, splits.labels, config.train,
                              config.primary_metric,
                              config.work_dir / "checkpoints" / f"{config.fingerprint()}-{lineage['train'].content_hash[:12]}",
                              run.run_dir / "model", run, config.tokenize.max_length)
        fine_tuned = evaluate_tagger(trained.model_dir, splits.test, config.evaluate.batch_size)
        baselines = [all_outside_baseline(splits.test)]
        report = report_token_classification(fine_tuned, baselines, splits.test, splits.labels,
                                             run.run_dir / "evaluation", run)
        champion = score_champion(run, config.registered_model_name, config.task, splits.test, splits.labels,
                                  config.primary_metric)
        version = register_model(trained.model_dir, config.task, config.registered_model_name, run,
                                 version_tags(config, lineage, fine_tuned.metrics, run), fine_tuned.metrics)
        decision = gate_and_promote(version, fine_tuned.metrics, champion, config.gate, config.primary_metric, run)
        return summarize_run(run, version, decision, report.comparison, validated.quarantine_path,
                             validated.rejected_records,
                             extra={"truncated_words": tokenized.truncated, "labels": splits.labels})
