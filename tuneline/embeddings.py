"""Sentence embeddings from the untouched base model, for the zero-shot baselines of every text kind.

The sentence-transformers models (MiniLM included) are trained so that the masked mean of the last hidden states,
L2-normalised, is the sentence embedding; cosine similarity between such vectors is what the zero-shot baselines
compare (text vs label name, or text vs its pair). Loaded once per call site and run without gradients.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
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

    from tuneline.long_texts import cut_long_texts

    texts = cut_long_texts(list(texts), tokenizer, max_length)  # a long document costs its whole tokenization
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
    over every distinct score, so a threshold "chosen on train" is the exact optimum there, not a grid point: the
    middle of the range of cuts that reach it.

    Over 512 distinct scores a quantile grid finds the best region first, and the distinct scores between the grid
    points around it are then tried one by one: the grid alone missed the gap of a separable split (its points fell
    just below the highest negative and just above the lowest positive: micro-F1 0.997 for 1.0), and the middle of
    two grid points could let through a negative the best grid cut kept out."""
    unique = np.unique(scores)
    if not len(unique):
        return 0.5
    candidates = unique
    if len(unique) > 512:  # linear in practice: 513 grid cuts, then the few hundred scores around the best one
        grid = np.unique(np.quantile(scores, np.linspace(0, 1, 513)))
        coarse = [objective(positive, scores >= threshold) for threshold in grid]
        best = int(np.argmax(coarse))
        low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
        candidates = unique[(unique >= low) & (unique <= high)]
    values = [objective(positive, scores >= threshold) for threshold in candidates]
    first = int(np.argmax(values))
    last = first
    while last + 1 < len(values) and values[last + 1] == values[first]:
        last += 1
    # every cut in (the score below candidates[first], candidates[last]] gives the best value; its middle, not its
    # edge: the lowest positive score was the threshold, so on separable validation scores (negatives up to 0.62,
    # positives from 0.69) a test positive at 0.68 was missed (exploratory QA: recall 0.70-0.83 where the middle
    # gave more)
    at = int(np.searchsorted(unique, candidates[first]))
    lower = unique[at - 1] if at > 0 else candidates[first]
    return float((lower + candidates[last]) / 2)


class Embedder:
    """Sentence embeddings of the untouched base model with a per-text cache on disk.

    The zero-shot baselines embed the same test (and train-sample) texts at every run of a model, and in the
    retraining loop most test rows are old. Vectors are cached under ``cache_dir`` keyed by the base model (its path
    and ``config.json``), ``max_length`` and each text's SHA-256, so a run embeds only texts it has not seen, and
    loads the base model only when there is one. The cache is two ``.npy`` files replaced atomically; two runs that
    write at once lose nothing but each other's new vectors (recomputed next time).
    """

    def __init__(self, base_model: str, *, trust_remote_code: bool = False, max_length: int = 128,
                 batch_size: int = 64, cache_dir: Path | None = None) -> None:
        self.base_model, self.trust_remote_code = base_model, trust_remote_code
        self.max_length, self.batch_size = max_length, batch_size
        self._loaded: tuple[Any, Any] | None = None
        self._file: Path | None = None
        if cache_dir is not None:
            config = Path(base_model) / "config.json"
            fingerprint = hashlib.sha256(f"{Path(base_model).resolve() if config.is_file() else base_model}\0"
                                         f"{config.read_text() if config.is_file() else ''}\0{max_length}"
                                         .encode()).hexdigest()[:20]
            self._file = Path(cache_dir) / f"{fingerprint}"
        self._cache: dict[bytes, np.ndarray] = self._read()
        self.hits = self.misses = 0

    @classmethod
    def for_config(cls, config: Any) -> Embedder:
        """The base model of a run's config, cached under ``<work_dir>/cache/embeddings``."""
        from tuneline.runtime import resolve_base_model

        return cls(resolve_base_model(config.model.base), trust_remote_code=config.model.trust_remote_code,
                   max_length=config.tokenize.max_length, batch_size=config.evaluate.batch_size,
                   cache_dir=Path(config.work_dir) / "cache" / "embeddings")

    def _read(self) -> dict[bytes, np.ndarray]:
        if self._file is None:
            return {}
        keys, vectors = self._file.with_suffix(".keys.npy"), self._file.with_suffix(".vectors.npy")
        if not (keys.is_file() and vectors.is_file()):
            return {}
        try:
            key_array, vector_array = np.load(keys), np.load(vectors)
        except (OSError, ValueError):  # a damaged cache is only a cache: start again
            return {}
        if len(key_array) != len(vector_array):
            return {}
        return {bytes(k): v for k, v in zip(key_array, vector_array)}

    def _write(self) -> None:
        if self._file is None or not self._cache:
            return
        self._file.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._cache), dtype="S32")
        vectors = np.stack(list(self._cache.values())).astype(np.float32)
        for suffix, array in ((".keys.npy", keys), (".vectors.npy", vectors)):
            target = self._file.with_suffix(suffix)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp.npy")
            np.save(tmp, array)
            os.replace(tmp, target)

    def embed(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised vector per text, in input order."""
        digests = [hashlib.sha256(t.encode("utf-8")).digest() for t in texts]
        missing = sorted({d: t for d, t in zip(digests, texts) if d not in self._cache}.items())
        self.hits += len(texts) - sum(1 for d in digests if d not in self._cache)
        if missing:
            self.misses += len(missing)
            if self._loaded is None:
                self._loaded = load_encoder(self.base_model, self.trust_remote_code)
            model, tokenizer = self._loaded
            vectors = mean_pooled_embeddings(model, tokenizer, [t for _, t in missing], self.batch_size,
                                             self.max_length)
            self._cache.update({d: v for (d, _), v in zip(missing, vectors)})
            self._write()
        if not texts:
            return np.zeros((0, next(iter(self._cache.values())).shape[0] if self._cache else 0), dtype=np.float32)
        return np.stack([self._cache[d] for d in digests])
