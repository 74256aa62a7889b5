"""Report building blocks every kind uses: the "before vs after" table and confusion-matrix plots."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def comparison_markdown(comparison: dict[str, dict[str, float]]) -> str:
    """A Markdown table: one row per model (fine-tuned first, then the baselines), one column per metric."""
    metrics = list(next(iter(comparison.values())).keys())
    lines = ["| model | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for name, values in comparison.items():
        lines.append(f"| {name} | " + " | ".join(f"{values.get(m, float('nan')):.4f}" for m in metrics) + " |")
    return "\n".join(lines) + "\n"


#: the most labels a confusion-matrix plot shows: the figure grew with the labels (0.6 inch each) and annotated every
#: cell, so 400 intents drew a 242-inch figure whose rendering took 24 GB and got the run killed after training
MAX_PLOTTED_LABELS = 30
OTHER_LABELS = "(other labels)"


def plotted_labels(gold: list[str], predicted: list[str], labels: list[str],
                   limit: int = MAX_PLOTTED_LABELS) -> list[str]:
    """The labels a plot shows: all of them up to ``limit``; beyond, the ``limit - 1`` involved in the most errors
    (as the gold label or the prediction; then the most frequent), in their order, the rest pooled."""
    if len(labels) <= limit:
        return list(labels)
    errors: Counter = Counter()
    for g, p in zip(gold, predicted):
        if g != p:
            errors[g] += 1
            errors[p] += 1
    frequency = Counter(gold)
    ranked = sorted(labels, key=lambda label: (-errors[label], -frequency[label]))[: limit - 1]
    keep = set(ranked)
    return [label for label in labels if label in keep]


def plot_confusion_matrix(gold: list[str], predicted: list[str], labels: list[str], path: Path,
                          title: str = "Confusion matrix (test)") -> Path:
    """A PNG of the confusion matrix, of at most :data:`MAX_PLOTTED_LABELS` labels (the ones with the most errors,
    the others pooled as "(other labels)"; the run's report files keep every count)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    shown_labels = plotted_labels(gold, predicted, labels)
    if len(shown_labels) < len(labels):
        keep = set(shown_labels)
        gold = [g if g in keep else OTHER_LABELS for g in gold]
        predicted = [p if p in keep else OTHER_LABELS for p in predicted]
        title = f"{title}: the {len(shown_labels)} of {len(labels)} labels with the most errors"
        shown_labels = [*shown_labels, OTHER_LABELS]
    size = min(24.0, max(4.0, 0.6 * len(shown_labels) + 2))
    fig, ax = plt.subplots(figsize=(size, size))
    shown = [label if len(label) <= 40 else label[:39] + "…" for label in shown_labels]  # a 300-character label
    ConfusionMatrixDisplay.from_predictions(gold, predicted, labels=shown_labels, display_labels=shown, ax=ax,
                                            colorbar=False, include_values=len(shown_labels) <= 20,
                                            xticks_rotation=45 if len(shown_labels) > 4 else "horizontal")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
