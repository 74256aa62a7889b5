"""Report building blocks every kind uses: the "before vs after" table and confusion-matrix plots."""

from __future__ import annotations

from pathlib import Path


def comparison_markdown(comparison: dict[str, dict[str, float]]) -> str:
    """A Markdown table: one row per model (fine-tuned first, then the baselines), one column per metric."""
    metrics = list(next(iter(comparison.values())).keys())
    lines = ["| model | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for name, values in comparison.items():
        lines.append(f"| {name} | " + " | ".join(f"{values.get(m, float('nan')):.4f}" for m in metrics) + " |")
    return "\n".join(lines) + "\n"


def plot_confusion_matrix(gold: list[str], predicted: list[str], labels: list[str], path: Path,
                          title: str = "Confusion matrix (test)") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    size = max(4.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    shown = [label if len(label) <= 40 else label[:39] + "…" for label in labels]  # a 300-character label
    ConfusionMatrixDisplay.from_predictions(gold, predicted, labels=labels, display_labels=shown, ax=ax,
                                            colorbar=False, xticks_rotation=45 if len(labels) > 4 else "horizontal")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
