"""Evaluate: the fine-tuned model and the "before" baselines on the same test rows.

The fine-tuned model is scored through :class:`~tuneline.pyfunc.text_classifier.TextClassifier`, the same code that
serves it from the registry, and predictions are kept in test-row order (never lined up through a training sampler).
Baselines: the majority class of train, and zero-shot classification with the *base* model (cosine similarity of
mean-pooled text embeddings to an embedding of each label's name or configured description).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, classification_report, f1_score

from tuneline.pyfunc.text_classifier import TextClassifier
from tuneline.tasks.common import pipeline_task, task_logger


@dataclass
class Evaluation:
    """One model's predictions on the test split and the metrics computed from them."""

    name: str
    metrics: dict[str, float]
    predictions: list[str]
    scores: list[float] | None = None


def classification_scores(gold: list[str], predicted: list[str], labels: list[str]) -> dict[str, float]:
    """Accuracy plus macro/weighted F1 over the full label set (an unpredicted class counts as F1 0)."""
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(gold, predicted, labels=labels, average="weighted", zero_division=0)),
    }


def per_class_report(gold: list[str], predicted: list[str], labels: list[str]) -> dict[str, Any]:
    return classification_report(gold, predicted, labels=labels, output_dict=True, zero_division=0)


@pipeline_task(name="evaluate-model")
def evaluate_classifier(model_dir: Path, test: pd.DataFrame, labels: list[str], batch_size: int = 64) -> Evaluation:
    """Score the saved fine-tuned model on the test split."""
    classifier = TextClassifier(str(model_dir))
    frame = classifier.predict_frame(test["text"].tolist(), batch_size=batch_size)
    predicted = frame["label"].tolist()
    metrics = classification_scores(test["label"].tolist(), predicted, labels)
    task_logger().info("fine-tuned on test: %s", _fmt(metrics))
    return Evaluation("fine_tuned", metrics, predicted, frame["score"].tolist())


@pipeline_task(name="majority-baseline")
def majority_baseline(train: pd.DataFrame, test: pd.DataFrame, labels: list[str]) -> Evaluation:
    """Always predict train's most frequent label (ties: the first in label order)."""
    counts = train["label"].value_counts()
    top = max(labels, key=lambda label: (counts.get(label, 0), -labels.index(label)))
    predicted = [top] * len(test)
    return Evaluation("majority", classification_scores(test["label"].tolist(), predicted, labels), predicted)


def mean_pooled_embeddings(model: Any, tokenizer: Any, texts: list[str], batch_size: int, max_length: int):
    """Sentence embeddings as the sentence-transformers models are trained to give them: masked mean, L2-normalised."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(texts[start : start + batch_size], truncation=True, max_length=max_length, padding=True,
                            return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1), dtype=np.float32)


@pipeline_task(name="zero-shot-baseline")
def zero_shot_baseline(base_model: str, test: pd.DataFrame, labels: list[str], descriptions: dict[str, str],
                       batch_size: int = 64, max_length: int = 128, trust_remote_code: bool = False) -> Evaluation:
    """Nearest label embedding (cosine) to each text embedding, with the untouched base model."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model, trust_remote_code=trust_remote_code)
    model = AutoModel.from_pretrained(base_model, trust_remote_code=trust_remote_code).eval()
    label_texts = [descriptions.get(label, label.replace("_", " ")) for label in labels]
    label_vectors = mean_pooled_embeddings(model, tokenizer, label_texts, batch_size, max_length)
    text_vectors = mean_pooled_embeddings(model, tokenizer, test["text"].tolist(), batch_size, max_length)
    similarity = text_vectors @ label_vectors.T
    predicted = [labels[i] for i in similarity.argmax(axis=1)]
    metrics = classification_scores(test["label"].tolist(), predicted, labels)
    task_logger().info("zero-shot base model on test: %s", _fmt(metrics))
    return Evaluation("zero_shot", metrics, predicted, similarity.max(axis=1).tolist())


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
