"""Sentence embeddings from the untouched base model, for the zero-shot baselines of every text kind.

The sentence-transformers models (MiniLM included) are trained so that the masked mean of the last hidden states,
L2-normalised, is the sentence embedding; cosine similarity between such vectors is what the zero-shot baselines
compare (text vs label name, or text vs its pair). Loaded once per call site and run without gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def load_encoder(base_model: str, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) of the base encoder, without any task head."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model, trust_remote_code=trust_remote_code)
    model = AutoModel.from_pretrained(base_model, trust_remote_code=trust_remote_code).eval()
    return model, tokenizer


def mean_pooled_embeddings(model: Any, tokenizer: Any, texts: list[str], batch_size: int, max_length: int) -> np.ndarray:
    """Masked-mean, L2-normalised sentence embeddings, one row per text, in input order (batched by length)."""
    import torch

    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length, padding=True,
                            return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy()
    return out


def best_threshold(scores: np.ndarray, positive: np.ndarray, objective: Any) -> float:
    """The cut on ``scores`` (predict positive at ``score >= t``) that maximises ``objective(positive, predicted)``
    over every distinct score, so a threshold "chosen on train" is the exact optimum there, not a grid point."""
    candidates = np.unique(scores)
    if len(candidates) > 512:  # a quantile grid is enough for big splits and keeps this linear in practice
        candidates = np.unique(np.quantile(scores, np.linspace(0, 1, 513)))
    best, best_value = float(candidates[0]) if len(candidates) else 0.5, -1.0
    for threshold in candidates:
        value = objective(positive, scores >= threshold)
        if value > best_value:
            best, best_value = float(threshold), value
    return best
