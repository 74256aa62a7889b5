"""Report a tagger: before vs after, seqeval's per-type report, the tag confusion table and the test predictions.

Artifacts (logged to MLflow under ``evaluation/``): ``before_vs_after.json``/``.md`` (shared with classification),
``per_type_report.json`` (entity-level, strict IOB2, per type and averaged), ``tag_confusion.csv``/``.png`` (gold
word tag × predicted word tag: which types get confused, which get missed as 'O') and ``test_predictions.jsonl``
(each test sentence with its file, sentence number, gold and predicted tags).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sklearn.metrics import confusion_matrix

from tuneline.tasks.common import pipeline_task, task_logger
from tuneline.tasks.evaluate import Evaluation
from tuneline.tasks.metrics_tokens import per_type_report
from tuneline.tasks.report import ReportFiles, comparison_markdown, plot_confusion_matrix, write_comparison
from tuneline.tasks.tracking import RunContext, log_artifact, log_metrics

ARTIFACTS = ("per_type_report.json", "tag_confusion.csv", "tag_confusion.png", "test_predictions.jsonl")


def tag_confusion(gold: list[list[str]], predicted: list[list[str]], labels: list[str]) -> pd.DataFrame:
    """Word-level confusion counts: rows are gold tags, columns predicted tags, in label order."""
    flat_gold = [t for tags in gold for t in tags]
    flat_pred = [t for tags in predicted for t in tags]
    counts = confusion_matrix(flat_gold, flat_pred, labels=labels)
    return pd.DataFrame(counts, index=pd.Index(labels, name="gold"), columns=labels)


@pipeline_task(name="report-token-classification")
def report_token_classification(fine_tuned: Evaluation, baselines: list[Evaluation], test: pd.DataFrame,
                                labels: list[str], folder: Path, run: RunContext | None = None) -> ReportFiles:
    """Write and log every evaluation artifact of an NER run; per-type F1 also becomes ``test.<TYPE>.f1``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gold = [list(t) for t in test["tags"]]
    report = per_type_report(gold, fine_tuned.predictions)
    (folder / "per_type_report.json").write_text(json.dumps(report, indent=2))
    tag_confusion(gold, fine_tuned.predictions, labels).to_csv(folder / "tag_confusion.csv")
    plot_confusion_matrix([t for tags in gold for t in tags], [t for tags in fine_tuned.predictions for t in tags],
                          labels, folder / "tag_confusion.png", title="Word tag confusion (test)")
    with (folder / "test_predictions.jsonl").open("w", encoding="utf-8") as handle:
        for (source_file, source_row, tokens), tags, predicted in zip(
                test[["source_file", "source_row", "tokens"]].itertuples(index=False), gold, fine_tuned.predictions):
            handle.write(json.dumps({"source_file": source_file, "source_row": int(source_row),
                                     "tokens": list(tokens), "tags": tags, "predicted": predicted,
                                     "correct": tags == predicted}, ensure_ascii=False) + "\n")
    comparison = {e.name: e.metrics for e in [fine_tuned, *baselines]}
    write_comparison(comparison, folder, run)
    if run is not None:
        types = [name for name in report if not name.endswith(" avg")]
        log_metrics(run, {f"test.{name}.f1": report[name]["f1-score"] for name in types})
        for name in ARTIFACTS:
            log_artifact(run, folder / name, "evaluation")
    task_logger().info("before vs after (test):\n%s", comparison_markdown(comparison))
    return ReportFiles(folder=folder, comparison=comparison)
