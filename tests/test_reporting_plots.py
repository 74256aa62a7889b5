"""Report plots stay bounded however many labels a task has.

The confusion-matrix figure grew 0.6 inch a label and annotated every cell: a 400-intent classifier trained in a
second and then spent 78 s drawing a 242-inch figure, whose rendering took 24 GB until the kernel killed the run
(after training: nothing registered, the MLflow run left RUNNING). A plot now shows at most 30 labels, those with the
most errors, the rest pooled; ``confusion_matrix.csv`` keeps every count.
"""

from __future__ import annotations

import random

from PIL import Image

from tuneline.reporting import MAX_PLOTTED_LABELS, OTHER_LABELS, plot_confusion_matrix, plotted_labels


def test_a_400_label_confusion_matrix_is_drawn_bounded_showing_the_labels_with_the_most_errors(tmp_path):
    labels = [f"intent_{i:03d}" for i in range(400)]
    rng = random.Random(0)
    gold = [rng.choice(labels) for _ in range(3200)]
    predicted = list(gold)
    confused = labels[100:110]  # ten intents the model mixes up with their neighbours
    for i, label in enumerate(gold):
        if label in confused or i % 97 == 0:
            predicted[i] = labels[(labels.index(label) + 1) % 400]
    shown = plotted_labels(gold, predicted, labels)
    assert len(shown) == MAX_PLOTTED_LABELS - 1 and set(confused) <= set(shown)
    assert shown == sorted(shown, key=labels.index)  # in the label order

    path = plot_confusion_matrix(gold, predicted, labels, tmp_path / "confusion_matrix.png")
    with Image.open(path) as image:  # at most 24 inches at 110 dpi (400 labels drew 242 inches)
        assert max(image.size) <= 24 * 110


def test_up_to_thirty_labels_are_all_shown_and_the_pool_only_beyond():
    labels = [f"l{i}" for i in range(MAX_PLOTTED_LABELS)]
    assert plotted_labels(labels, labels[::-1], labels) == labels
    more = [*labels, "extra"]
    shown = plotted_labels(more, more, more)
    assert len(shown) == MAX_PLOTTED_LABELS - 1 and OTHER_LABELS not in shown


def test_a_400_label_cooccurrence_plot_is_bounded(tmp_path):
    import numpy as np

    from tuneline.kinds.multilabel_classification import plot_cooccurrence

    rng = np.random.default_rng(0)
    gold = rng.random((500, 400)) < 0.01
    path = plot_cooccurrence(gold, gold, [f"tag_{i}" for i in range(400)], tmp_path / "label_cooccurrence.png")
    with Image.open(path) as image:  # two panels of at most 14 inches at 100 dpi (400 labels drew 130 inches each)
        assert image.size[0] <= 29 * 100 and image.size[1] <= 14 * 100
