"""NER metrics: seqeval, entity level, strict IOB2 matching, over word-level tag sequences.

Strict mode counts an entity as found only when type *and* both boundaries match a gold entity, and only well-formed
chunks (``B-X I-X*``) count as predicted entities: an ``I-X`` after ``O`` is no entity. ``accuracy`` is per word
(token-level, so it is high even for a model that never finds an entity: that is why ``f1`` is the gate metric).
The same :func:`seqeval_scores` serves the Trainer's validation metric, the test evaluation, and the gate's re-scoring
of the champion's pyfunc output, so the three numbers are computed by one piece of code.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from tuneline.tasks.align import IGNORE

STRICT = {"mode": "strict", "scheme": IOB2}


def seqeval_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Micro-averaged entity precision/recall/F1 (strict IOB2) and word accuracy."""
    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError("gold and predicted tag sequences must line up sentence by sentence and word by word")
    return {
        "f1": float(f1_score(gold, predicted, zero_division=0, **STRICT)),
        "precision": float(precision_score(gold, predicted, zero_division=0, **STRICT)),
        "recall": float(recall_score(gold, predicted, zero_division=0, **STRICT)),
        "accuracy": float(accuracy_score(gold, predicted)),
    }


def per_type_report(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, dict[str, float]]:
    """seqeval's per-entity-type report (precision, recall, f1-score, support) plus micro/macro/weighted averages."""
    report = classification_report(gold, predicted, output_dict=True, zero_division=0, **STRICT)
    return {name: {k: float(v) for k, v in values.items()} for name, values in report.items()}


def decode_label_ids(predicted_ids: np.ndarray, label_ids: np.ndarray,
                     labels: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted tag names at the labelled positions (-100 positions dropped), row by row."""
    gold, predicted = [], []
    for pred_row, gold_row in zip(predicted_ids, label_ids):
        keep = gold_row != IGNORE
        gold.append([labels[i] for i in gold_row[keep]])
        predicted.append([labels[i] for i in pred_row[keep]])
    return gold, predicted


def token_classification_metrics(labels: list[str]) -> Callable[[Any], dict[str, float]]:
    """A Trainer ``compute_metrics``: argmax the logits, keep the labelled (first-subword) positions, score.

    With ``tokenize.label_all_subwords`` continuation subwords are labelled too, so this validation metric then
    counts subword positions; the test evaluation is always per original word (see evaluate_tokens).
    """

    def compute(prediction: Any) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        gold, predicted = decode_label_ids(np.asarray(logits).argmax(axis=-1), np.asarray(prediction.label_ids),
                                           labels)
        return seqeval_scores(gold, predicted)

    return compute


def tags_from_output(predictions: Any) -> list[list[str]]:
    """The word tags from a token-tagger pyfunc's output (a DataFrame with a ``tags`` column, or a list of dicts)."""
    if isinstance(predictions, pd.DataFrame):
        return [list(t) for t in predictions["tags"]]
    return [list(p["tags"]) for p in predictions]


def score_tagger_output(predictions: Any, test: pd.DataFrame) -> dict[str, float]:
    """Score a registered tagger's raw predictions for ``test["tokens"]`` against ``test["tags"]``."""
    gold = [list(t) for t in test["tags"]]
    predicted = tags_from_output(predictions)
    if len(predicted) != len(gold):
        raise ValueError(f"the tagger returned {len(predicted)} predictions for {len(gold)} test sentences")
    return seqeval_scores(gold, predicted)
