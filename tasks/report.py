"""Report: test metrics, "before vs after", per-class report, confusion matrix and predictions, logged to MLflow."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tuneline.tasks.common import pipeline_task, task_logger
from tuneline.tasks.evaluate import Evaluation, per_class_report
from tuneline.tasks.tracking import RunContext, log_artifact, log_metrics


@dataclass
class ReportFiles:
    folder: Path
    comparison: dict[str, dict[str, float]]


def plot_confusion_matrix(gold: list[str], predicted: list[str], labels: list[str], path: Path,
                          title: str = "Confusion matrix (test)") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    size = max(4.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(gold, predicted, labels=labels, ax=ax, colorbar=False,
                                            xticks_rotation=45 if len(labels) > 4 else "horizontal")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def comparison_markdown(comparison: dict[str, dict[str, float]]) -> str:
    metrics = list(next(iter(comparison.values())).keys())
    lines = ["| model | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for name, values in comparison.items():
        lines.append(f"| {name} | " + " | ".join(f"{values.get(m, float('nan')):.4f}" for m in metrics) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(comparison: dict[str, dict[str, float]], folder: Path, run: RunContext | None) -> None:
    """``before_vs_after.json``/``.md`` and metrics ``test.<m>`` (fine-tuned) and ``baseline.<name>.<m>``."""
    (folder / "before_vs_after.json").write_text(json.dumps(comparison, indent=2))
    (folder / "before_vs_after.md").write_text(comparison_markdown(comparison))
    if run is None:
        return
    flat: dict[str, float] = {}
    for name, values in comparison.items():
        prefix = "test" if name == "fine_tuned" else f"baseline.{name}"
        flat.update({f"{prefix}.{k}": v for k, v in values.items()})
    log_metrics(run, flat)
    for name in ("before_vs_after.json", "before_vs_after.md"):
        log_artifact(run, folder / name, "evaluation")


@pipeline_task(name="report-classification")
def report_classification(fine_tuned: Evaluation, baselines: list[Evaluation], test: pd.DataFrame,
                          labels: list[str], folder: Path, run: RunContext | None = None) -> ReportFiles:
    """Write and log every evaluation artifact of a classification run."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gold = test["label"].tolist()
    report = per_class_report(gold, fine_tuned.predictions, labels)
    (folder / "per_class_report.json").write_text(json.dumps(report, indent=2))
    plot_confusion_matrix(gold, fine_tuned.predictions, labels, folder / "confusion_matrix.png")
    predictions = test[["source_file", "source_row", "text", "label"]].assign(
        predicted=fine_tuned.predictions, score=fine_tuned.scores)
    predictions.to_csv(folder / "test_predictions.csv", index=False)
    comparison = {e.name: e.metrics for e in [fine_tuned, *baselines]}
    write_comparison(comparison, folder, run)
    if run is not None:
        log_metrics(run, {f"test.{label}.f1": float(report[label]["f1-score"]) for label in labels})
        for name in ("per_class_report.json", "confusion_matrix.png", "test_predictions.csv"):
            log_artifact(run, folder / name, "evaluation")
    task_logger().info("before vs after (test):\n%s", comparison_markdown(comparison))
    return ReportFiles(folder=folder, comparison=comparison)
