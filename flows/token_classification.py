"""The token-classification (NER) flow."""

from __future__ import annotations

from prefect import flow

from tuneline.config import TunelineConfig
from tuneline.flows.stages import fine_tune, register_and_gate
from tuneline.tasks.evaluate_tokens import all_outside_baseline, evaluate_tagger
from tuneline.tasks.lineage import log_lineage
from tuneline.tasks.load import load_data
from tuneline.tasks.report_tokens import report_token_classification
from tuneline.tasks.split import split_data
from tuneline.tasks.summary import RunSummary, summarize_run
from tuneline.tasks.tracking import tracked_run
from tuneline.tasks.validate_tokens import validate_token_data


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
        tokenized, trained = fine_tune(config, splits, lineage, run)
        fine_tuned = evaluate_tagger(trained.model_dir, splits.test, config.evaluate.batch_size)
        baselines = [all_outside_baseline(splits.test)]
        report = report_token_classification(fine_tuned, baselines, splits.test, splits.labels,
                                             run.run_dir / "evaluation", run)
        version, decision = register_and_gate(config, splits, lineage, trained, fine_tuned.metrics, run)
        return summarize_run(run, version, decision, report.comparison, validated.quarantine_path,
                             validated.rejected_records,
                             extra={"truncated_words": tokenized.truncated, "labels": splits.labels})
