"""MLflow pyfunc for a fine-tuned sentence-pair classifier (logged as "models from code").

This file is copied into every registered model, so it must stay self-contained: it imports only torch, transformers,
pandas, numpy and mlflow, never tuneline. A model registered by tuneline therefore loads anywhere with
``mlflow.pyfunc.load_model("models:/<name>@champion")`` without tuneline installed.

Input: a DataFrame with ``text`` and ``text_pair`` columns (the registered signature), a list of ``[text, pair]``
lists, or a dict of two lists (``{"text": [...], "text_pair": [...]}``). Output: the text classifier's columns,
``label``, ``score`` (its probability) and ``scores`` (every label's). Pairs are cut to the model's
``tuneline_max_length`` the way training cut them (``tuneline_truncation``, default ``longest_first``).

tuneline's own evaluation uses :class:`PairClassifier` from this file too, so the numbers in the registry are the
numbers of exactly the code that serves the model.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXT, PAIR = "text", "text_pair"


def _text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        raise ValueError(f"predict got a missing text at {where}; every pair needs two texts")
    return str(value)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray, pd.Series))


def _columns(first: Any, second: Any) -> tuple[list[str], list[str]]:
    """Two parallel columns (lists, or scalars for one pair) as two equally long lists of texts."""
    first = list(first) if _is_sequence(first) else [first]
    second = list(second) if _is_sequence(second) else [second]
    if len(first) != len(second):
        raise ValueError(f"predict got {len(first)} texts but {len(second)} pairs; the two columns must line up")
    return ([_text(v, f"row {i} of {TEXT!r}") for i, v in enumerate(first)],
            [_text(v, f"row {i} of {PAIR!r}") for i, v in enumerate(second)])


def pairs_from_input(model_input: Any) -> tuple[list[str], list[str]]:
    """(texts, pairs) from any accepted input; an error that names the accepted forms otherwise."""
    if isinstance(model_input, pd.DataFrame):
        if {TEXT, PAIR} <= set(model_input.columns):
            first, second = model_input[TEXT], model_input[PAIR]
        elif model_input.shape[1] >= 2:
            first, second = model_input.iloc[:, 0], model_input.iloc[:, 1]
        else:
            raise ValueError(f"predict got a DataFrame with columns {list(model_input.columns)}; pass {TEXT!r} and "
                             f"{PAIR!r} columns")
        if len(first) and all(_is_sequence(v) for v in (*first, *second)):
            # MLflow turns a dict of two lists into a one-row DataFrame whose cells are the lists
            first = [t for cell in first for t in cell]
            second = [t for cell in second for t in cell]
        return _columns(first, second)
    if isinstance(model_input, dict):
        if {TEXT, PAIR} <= set(model_input):
            return _columns(model_input[TEXT], model_input[PAIR])
        if len(model_input) == 2:
            return _columns(*model_input.values())
        raise ValueError(f"predict got a dict with keys {list(model_input)}; pass {{{TEXT!r}: [...], {PAIR!r}: [...]}}")
    if _is_sequence(model_input) and not isinstance(model_input, pd.Series):
        rows = list(model_input)
        if all(isinstance(row, dict) and {TEXT, PAIR} <= set(row) for row in rows):
            return _columns([row[TEXT] for row in rows], [row[PAIR] for row in rows])
        bad = next((i for i, row in enumerate(rows) if not (_is_sequence(row) and len(row) == 2)), None)
        if bad is not None:
            raise ValueError(f"predict got {rows[bad]!r} at position {bad} of a list; each item must be one "
                             "[text, pair] list (for one pair pass [[text, pair]])")
        return _columns([row[0] for row in rows], [row[1] for row in rows])
    raise TypeError(f"predict takes a DataFrame with {TEXT!r} and {PAIR!r} columns, a list of [text, pair] lists or "
                    f"a dict of two lists, not {type(model_input).__name__}")


class PairClassifier:
    """A saved sequence-classification model folder that reads two texts per example, ready for batched inference."""

    def __init__(self, model_dir: str, device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(self.device).eval()
        config = self.model.config
        self.labels = [config.id2label[i] for i in range(config.num_labels)]
        self.max_length = int(getattr(config, "tuneline_max_length", 0) or min(self.tokenizer.model_max_length, 512))
        self.truncation = str(getattr(config, "tuneline_truncation", None) or "longest_first")

    def _encode(self, texts: list[str], pairs: list[str]) -> Any:
        """Tokenize a batch; a pair whose kept text alone is too long for only_first/only_second makes the
        tokenizer refuse the batch, which is then cut longest_first (as training did for that row)."""
        kwargs = {"max_length": self.max_length, "padding": True, "return_tensors": "pt"}
        try:
            return self.tokenizer(texts, pairs, truncation=self.truncation, **kwargs)
        except Exception as error:
            if self.truncation == "longest_first" or "Truncation error" not in str(error):
                raise
            return self.tokenizer(texts, pairs, truncation="longest_first", **kwargs)

    def predict_proba(self, texts: list[str], pairs: list[str], batch_size: int = 64) -> np.ndarray:
        """Class probabilities, one row per pair, in input order (batches are grouped by length for speed)."""
        import torch

        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]) + len(pairs[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = self._encode([texts[i] for i in idx], [pairs[i] for i in idx]).to(self.device)
                logits = self.model(**enc).logits.float()
                out[idx] = torch.softmax(logits, dim=-1).cpu().numpy()
        return out

    def predict(self, model_input: Any, batch_size: int = 64) -> pd.DataFrame:
        """What the registered model's ``predict`` returns for any accepted input (see :func:`pairs_from_input`)."""
        texts, pairs = pairs_from_input(model_input)
        proba = self.predict_proba(texts, pairs, batch_size=batch_size)
        best = proba.argmax(axis=1) if len(texts) else []
        return pd.DataFrame({
            "label": [self.labels[i] for i in best],
            "score": [float(proba[row, i]) for row, i in enumerate(best)],
            "scores": [dict(zip(self.labels, map(float, row))) for row in proba],
        })


def load_predictor(model_dir: str) -> PairClassifier:
    """The predictor tuneline's evaluation uses: the same class the registered model serves with."""
    return PairClassifier(model_dir)


try:
    import mlflow.pyfunc

    class PairClassifierPyfunc(mlflow.pyfunc.PythonModel):
        """``predict`` returns a DataFrame: ``label`` (name), ``score`` (its probability), ``scores`` (all labels)."""

        def load_context(self, context) -> None:
            self._classifier = PairClassifier(context.artifacts["model"])

        def predict(self, context, model_input, params: dict | None = None) -> pd.DataFrame:
            batch_size = int((params or {}).get("batch_size", 64))
            return self._classifier.predict(model_input, batch_size=batch_size)

    mlflow.models.set_model(PairClassifierPyfunc())
except ImportError:  # pragma: no cover - inference without mlflow needs only PairClassifier
    pass
