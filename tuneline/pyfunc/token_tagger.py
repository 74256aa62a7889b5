"""MLflow pyfunc for a fine-tuned token tagger (NER), logged as "models from code".

This file is copied into every registered NER model, so it must stay self-contained: it imports only torch,
transformers, pandas, numpy and mlflow, never tuneline. tuneline's own test evaluation uses :class:`TokenTagger`
from this file, so the metrics in the registry come from exactly the code that serves the model.

Input: raw text (a str, a list of str, or a DataFrame with a ``text`` column), or pre-split words (a DataFrame with a
``tokens`` column of lists, or a list of lists; MLflow hands a list of lists over as a table with one word per
column, which is read back row by row). Output: one row per input with ``text``, ``tokens``, ``tags`` (one
IOB2 tag per word) and ``entities`` (dicts with ``type``, ``text``, ``start``, ``end``, ``score``).

Choices, and why:

* Raw text is split into words the way CoNLL data is (the data the model was trained on): runs of letters/digits,
  kept whole across inner ``-``, ``'``, ``.`` and ``&`` (``1996-08-22``, ``O'Neill``, ``AT&T``), letter-dot
  abbreviations kept whole (``U.S.``), and every other non-space character a word of its own (``Paris.`` →
  ``Paris`` ``.``). Words keep their character offsets into the raw text. Pre-split words are taken as they are;
  their offsets refer to ``" ".join(tokens)``.
* A word's tag is the prediction on its first subword (as in training); its score is that tag's probability.
* Long inputs are never truncated: words are packed into overlapping windows that fit ``max_length`` tokens, and
  each word takes its prediction from the window where it sits most centrally (most context on both sides). A single
  word longer than a whole window (pathological) is cut, but its first subword, which carries its tag, is kept.
* Entities are read leniently from the tags (an ``I-X`` that does not continue an ``X`` starts a new entity), so
  users see everything the model marked; the metrics (seqeval, strict IOB2) are stricter than that.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORD_PATTERN = re.compile(r"(?:[^\W\d_]\.){2,}|\w+(?:[-'’.&]\w+)*|\S")


def split_words(text: str) -> list[tuple[str, int, int]]:
    """CoNLL-style words of raw text with their [start, end) character offsets."""
    return [(m.group(), m.start(), m.end()) for m in WORD_PATTERN.finditer(text)]


def join_words(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """``" ".join(tokens)`` and each token's [start, end) offsets in it."""
    spans, position = [], 0
    for token in tokens:
        spans.append((position, position + len(token)))
        position += len(token) + 1
    return " ".join(tokens), spans


def _is_word_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def parse_input(model_input: Any) -> list[tuple[str, list[str], list[tuple[int, int]]]]:
    """Normalise every accepted input to (text, words, word offsets) per item."""
    if isinstance(model_input, str):
        model_input = [model_input]
    if isinstance(model_input, dict):
        model_input = pd.DataFrame({k: v if isinstance(v, list) else [v] for k, v in model_input.items()})
    if isinstance(model_input, pd.DataFrame):
        if "tokens" in model_input.columns:
            model_input = model_input["tokens"]
        elif "text" in model_input.columns:
            model_input = model_input["text"]
        elif model_input.shape[1] > 1:
            # MLflow turns a list of word lists into a table, one word per column (shorter rows padded): undo that.
            model_input = [[w for w in row if isinstance(w, str)] for row in model_input.itertuples(index=False)]
        elif model_input.shape[1]:
            model_input = model_input.iloc[:, 0]
        else:
            raise ValueError("predict got a DataFrame with no columns; pass a 'text' or a 'tokens' column")
    if isinstance(model_input, pd.Series):
        model_input = model_input.tolist()
    if not isinstance(model_input, Sequence) or isinstance(model_input, str):
        raise TypeError("predict takes a str, a list of str, a list of word lists, or a DataFrame with a 'text' or "
                        f"'tokens' column, not {type(model_input).__name__}")
    items = []
    for value in model_input:
        if _is_word_list(value):
            words = [str(w) for w in value]
            text, spans = join_words(words)
        else:
            text = "" if value is None else str(value)
            found = split_words(text)
            words, spans = [w for w, _, _ in found], [(s, e) for _, s, e in found]
        items.append((text, words, spans))
    return items


def extract_entities(tags: list[str], scores: list[float], spans: list[tuple[int, int]],
                     text: str) -> list[dict[str, Any]]:
    """Entities from IOB2 word tags (leniently: a stray ``I-X`` starts an entity) with character offsets."""
    entities: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for index, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        continues = current is not None and prefix == "I" and kind == current["type"]
        if current is not None and not continues:
            entities.append(current)
            current = None
        if prefix in ("B", "I") and kind and not continues:
            current = {"type": kind, "first": index, "last": index}
        elif continues:
            current["last"] = index
    if current is not None:
        entities.append(current)
    out = []
    for entity in entities:
        first, last = entity["first"], entity["last"]
        start, end = spans[first][0], spans[last][1]
        out.append({"type": entity["type"], "text": text[start:end], "start": int(start), "end": int(end),
                    "score": float(np.mean(scores[first : last + 1])), "first_word": first, "last_word": last})
    return out


def word_windows(subwords_per_word: list[int], budget: int) -> list[tuple[int, int]]:
    """Overlapping [start, end) word windows of at most ``budget`` subwords (a longer single word is alone).

    Consecutive windows share about half a window of words, so every word is predicted with context on both sides
    in at least one window.
    """
    n = len(subwords_per_word)
    windows: list[tuple[int, int]] = []
    start = 0
    while start < n:
        end, used = start, 0
        while end < n and (end == start or used + subwords_per_word[end] <= budget):
            used += subwords_per_word[end]
            end += 1
        windows.append((start, end))
        if end >= n:
            break
        next_start, kept = end, 0
        while next_start - 1 > start and kept + subwords_per_word[next_start - 1] <= budget // 2:
            next_start -= 1
            kept += subwords_per_word[next_start]
        start = next_start
    return windows


class TokenTagger:
    """A saved token-classification model folder, ready for batched word-level tagging."""

    def __init__(self, model_dir: str, device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForTokenClassification.from_pretrained(model_dir).to(self.device).eval()
        config = self.model.config
        self.labels = [config.id2label[i] for i in range(config.num_labels)]
        self.max_length = int(getattr(config, "tuneline_max_length", 0) or min(self.tokenizer.model_max_length, 512))
        self.budget = max(1, self.max_length - self.tokenizer.num_special_tokens_to_add())

    def _subword_counts(self, sentences: list[list[str]]) -> list[list[int]]:
        enc = self.tokenizer(sentences, is_split_into_words=True, add_special_tokens=False)
        counts = []
        for row, words in enumerate(sentences):
            per_word = [0] * len(words)
            for word in enc.word_ids(row):
                if word is not None:
                    per_word[word] += 1
            counts.append(per_word)
        return counts

    def tag_words(self, sentences: list[list[str]], batch_size: int = 64) -> list[tuple[list[str], list[float]]]:
        """Tags and their probabilities, one per word, for every sentence (none truncated; see module docstring).

        A word the tokenizer turns into no subword at all (e.g. a lone control character) is tagged 'O', score 0.
        """
        import torch

        results = [(["O"] * len(words), [0.0] * len(words)) for words in sentences]
        centrality = [[-1] * len(words) for words in sentences]
        non_empty = [i for i, words in enumerate(sentences) if words]
        if not non_empty:
            return results
        counts = self._subword_counts([sentences[i] for i in non_empty])
        chunks = [(i, s, e) for i, per_word in zip(non_empty, counts) for s, e in word_windows(per_word, self.budget)]
        chunks.sort(key=lambda c: c[2] - c[1])
        with torch.inference_mode():
            for begin in range(0, len(chunks), batch_size):
                batch = chunks[begin : begin + batch_size]
                words = [sentences[i][s:e] for i, s, e in batch]
                enc = self.tokenizer(words, is_split_into_words=True, truncation=True, max_length=self.max_length,
                                     padding=True, return_tensors="pt")
                word_ids = [enc.word_ids(row) for row in range(len(batch))]
                proba = torch.softmax(self.model(**enc.to(self.device)).logits.float(), dim=-1).cpu().numpy()
                for row, (sentence, start, end) in enumerate(batch):
                    tags, scores = results[sentence]
                    previous = None
                    for position, word in enumerate(word_ids[row]):
                        if word is not None and word != previous:
                            centre = min(word, end - start - 1 - word)
                            index = start + word
                            if centre > centrality[sentence][index]:
                                best = int(proba[row, position].argmax())
                                tags[index], scores[index] = self.labels[best], float(proba[row, position, best])
                                centrality[sentence][index] = centre
                        previous = word
        return results

    def predict(self, model_input: Any, batch_size: int = 64) -> pd.DataFrame:
        """What the registered model's ``predict`` returns for any accepted input."""
        return self.predict_frame(model_input, batch_size=batch_size)

    def predict_frame(self, model_input: Any, batch_size: int = 64) -> pd.DataFrame:
        """One row per input: ``text``, ``tokens``, ``tags``, ``entities`` (see the module docstring)."""
        items = parse_input(model_input)
        tagged = self.tag_words([words for _, words, _ in items], batch_size=batch_size)
        rows = []
        for (text, words, spans), (tags, scores) in zip(items, tagged):
            entities = extract_entities(tags, scores, spans, text)
            rows.append({"text": text, "tokens": words, "tags": tags, "entities": entities})
        return pd.DataFrame(rows, columns=["text", "tokens", "tags", "entities"])


def load_predictor(model_dir: str) -> TokenTagger:
    """The predictor tuneline's evaluation uses: the same class the registered model serves with."""
    return TokenTagger(model_dir)


try:
    import mlflow.pyfunc

    class TokenTaggerPyfunc(mlflow.pyfunc.PythonModel):
        """``predict`` returns a DataFrame: ``text``, ``tokens``, ``tags`` and ``entities`` per input."""

        def load_context(self, context) -> None:
            self._tagger = TokenTagger(context.artifacts["model"])

        def predict(self, context, model_input, params: dict | None = None) -> pd.DataFrame:
            batch_size = int((params or {}).get("batch_size", 64))
            return self._tagger.predict_frame(model_input, batch_size=batch_size)

    mlflow.models.set_model(TokenTaggerPyfunc())
except ImportError:  # pragma: no cover - inference without mlflow needs only TokenTagger
    pass
