"""MLflow pyfunc for a fine-tuned sentence-pair classifier (logged as "models from code").

This file is copied into every registered model, so it must stay self-contained: it imports only torch, transformers,
pandas, numpy and mlflow, never tuneline. A model registered by tuneline therefore loads anywhere with
``mlflow.pyfunc.load_model("models:/<name>@champion")`` without tuneline installed.

Input: a DataFrame with ``text`` and ``text_pair`` columns (the registered signature), a list of ``[text, pair]``
lists, a list of ``{"text": ..., "text_pair": ...}`` objects, or a dict of two lists (``{"text": [...], "text_pair":
[...]}``; in-process only: MLflow's HTTP parser refuses it for unnamed inputs). Output: the text classifier's columns,
``label``, ``score`` (its probability) and ``scores`` (every label's). Pairs are cut to the model's
``tuneline_max_length`` the way training cut them (``tuneline_truncation``, default ``longest_first``).

tuneline's own evaluation uses :class:`PairClassifier` from this file too, so the numbers in the registry are the
numbers of exactly the code that serves the model.

Speed (issue 13): every pair is tokenized once (fast tokenizer, no padding), batches are taken in order of token
count (little padding) and padded per batch, under ``torch.inference_mode``. On a CPU with native bf16 matrix units
(``amx_bf16`` or ``avx512_bf16`` in ``/proc/cpuinfo``) the forward pass runs under bf16 autocast by default, several
times faster than fp32 there; the returned probabilities stay fp32, and the labels agree with fp32 inference except on
near-ties. ``precision`` (constructor) or ``$TUNELINE_INFERENCE_PRECISION`` picks ``auto`` (that default), ``fp32``
or ``bf16``.
"""

from __future__ import annotations

import os
import sys
import time
import unicodedata
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: Environment variable that picks the inference precision when the constructor is given none.
PRECISION_ENV = "TUNELINE_INFERENCE_PRECISION"
PRECISIONS = ("auto", "fp32", "bf16")
#: The columns ``predict`` returns, in order (the frame is built from this tuple). Batch prediction
#: (``tuneline.tasks.predict_batch``) reads it to refuse, before any model work, an input file that already has a
#: column the predictions would be written under (it would be duplicated, or its values overwritten).
OUTPUT_COLUMNS = ("label", "score", "scores")

#: why a prediction stopped part way: the HTTP request it answers was answered with a timeout
#: (:func:`_stop_if_abandoned`)
ABANDONED = "stopped: the request ran past the server's time limit and was answered with a 504"

#: inputs tokenized and predicted at a time: tokenizing a whole request before its first batch could not be stopped,
#: and a 40,000-sentence request that ran past the server's limit went on for seconds of a core after its 504
#: (length grouping within a slice of this size pads as little as over the whole request)
SLICE = 4096


def _stop_if_abandoned() -> None:
    """Stop (TimeoutError) when the HTTP request this prediction answers was already answered with a timeout (504).
    MLflow's scoring server cannot stop the thread that predicts such a request: a large one went on for minutes
    after its 504, taking a core from the requests after it. tuneline's served app (``tuneline.serving_app``) sets
    each request's deadline; wherever it is not loaded there is none, and this file still imports nothing of
    tuneline."""
    app = sys.modules.get("tuneline.serving_app")
    deadline = app.REQUEST_DEADLINE.get() if app is not None else None
    if deadline is not None and time.monotonic() > deadline:
        raise TimeoutError(ABANDONED)


def cpu_has_native_bf16() -> bool:
    """True on a CPU with bf16 matrix instructions (AMX or AVX512-BF16), where bf16 autocast pays off."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision: str | None, device: str) -> str:
    """``fp32`` or ``bf16``: the given choice, else ``$TUNELINE_INFERENCE_PRECISION``, else ``auto`` (bf16 autocast
    on a CPU with native bf16, fp32 everywhere else)."""
    choice = (precision or os.environ.get(PRECISION_ENV) or "auto").strip().lower()
    if choice not in PRECISIONS:
        raise ValueError(f"inference precision must be one of {', '.join(PRECISIONS)}, not {choice!r}")
    if choice == "auto":
        return "bf16" if str(device).split(":")[0] == "cpu" and cpu_has_native_bf16() else "fp32"
    return choice

TEXT, PAIR = "text", "text_pair"


def _text(value: Any, where: str) -> str:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()  # MLflow's scoring server sends each value of a JSON object as a 0-d array
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"predict got an empty text at {where}; every pair needs two texts")
        return value
    if isinstance(value, (bytes, bytearray)):  # a Parquet binary cell: str() would predict on "b'...'"
        try:
            return _text(bytes(value).decode("utf-8"), where)
        except UnicodeDecodeError:
            raise ValueError(f"predict got bytes that are not UTF-8 text ({bytes(value)[:40]!r}) at {where}; every "
                             "pair needs two texts") from None
    if value is None or (np.ndim(value) == 0 and not isinstance(value, bool) and pd.isna(value)):
        raise ValueError(f"predict got a missing text at {where}; every pair needs two texts")
    if np.ndim(value) != 0 or isinstance(value, bool):
        raise ValueError(f"predict got {value!r:.60} at {where}, not a text; every pair needs two texts")
    return str(value)


#: Unicode categories no reader sees: format characters (a zero-width space or joiner, a word joiner, a soft hyphen, a
#: byte-order mark, a direction mark), control characters (a NUL, an escape) and private-use characters (U+E000..,
#: which no font shows and no tokenizer knows); with :data:`REPLACEMENT`. A BERT tokenizer's normalizer drops every
#: one of them, so a text of only these is read as an empty text.
INVISIBLE_CATEGORIES = ("Cf", "Cc", "Co")
#: U+FFFD, what a decoder writes for bytes it could not read: a text or word of only these is what a broken encoding
#: left of it, and a BERT tokenizer drops it too
REPLACEMENT = "\ufffd"


def invisible_only(text: str) -> bool:
    """True for a text that is not blank but holds nothing a reader sees: only :data:`INVISIBLE_CATEGORIES`
    characters, whitespace aside. A copy of ``text_classifier.invisible_only`` (the rule ``tuneline predict`` applies;
    this file is self-contained): see there why."""
    return bool(text.strip()) and all(c.isspace() or c == REPLACEMENT or unicodedata.category(c) in INVISIBLE_CATEGORIES
                                       for c in text)


def refuse_invisible(texts: list[str], pairs: list[str]) -> None:
    """A ValueError naming the first pair with a text of only invisible characters (:func:`invisible_only`), and
    which of its two texts.

    The registered model's ``predict`` applies it (HTTP 400 from ``serve-model``); :class:`PairClassifier` does not:
    training's validation quarantines such a text (``schemas.common.non_empty_string``), and tuneline's evaluation
    predicts every test row it is given."""
    for row, (text, pair) in enumerate(zip(texts, pairs)):
        for column, value in ((TEXT, text), (PAIR, pair)):
            if invisible_only(value):
                raise ValueError(f"predict got no visible text at row {row} of {column!r} (only invisible characters: "
                                 f"{value[:20]!r}); every pair needs two texts")


def _is_sequence(value: Any) -> bool:
    """A list-like of values; a 0-d array is one value (MLflow's form of a JSON scalar), not a sequence."""
    if isinstance(value, np.ndarray):
        return value.ndim > 0
    return isinstance(value, (list, tuple, pd.Series))


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
        elif model_input.shape[1] == 2 and not any(isinstance(c, str) for c in model_input.columns):
            first, second = model_input.iloc[:, 0], model_input.iloc[:, 1]  # unnamed: a list of [text, pair] lists
        else:
            raise ValueError(f"predict got a DataFrame with columns {list(model_input.columns)}; pass {TEXT!r} and "
                             f"{PAIR!r} columns (of a DataFrame with more columns only the first two reach the "
                             f"model: put them first or send them alone)")
        if len(first) == 1 and all(_is_sequence(v) for v in (*first, *second)):
            # MLflow turns a dict of two lists into a ONE-row DataFrame whose cells are the lists; any other frame
            # with list cells would come back with more predictions than rows (and pairs shifted): _text refuses it
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

    def __init__(self, model_dir: str, device: str | None = None, precision: str | None = None) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = resolve_precision(precision, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(self.device).eval()
        config = self.model.config
        self.labels = [config.id2label[i] for i in range(config.num_labels)]
        self.max_length = int(getattr(config, "tuneline_max_length", 0) or min(self.tokenizer.model_max_length, 512))
        self.truncation = str(getattr(config, "tuneline_truncation", None) or "longest_first")

    def _encode(self, texts: list[str], pairs: list[str]) -> dict[str, list]:
        """Tokenize every pair once, unpadded. A pair whose kept text alone is too long for only_first/only_second
        makes the tokenizer refuse the whole call; then each pair is tokenized alone and such a pair is cut
        longest_first, as training does for that row (``encode_pairs`` in tuneline's pair kind)."""
        try:
            return dict(self.tokenizer(texts, pairs, truncation=self.truncation, max_length=self.max_length))
        except Exception as error:  # tokenizers raises a bare Exception("Truncation error: ...")
            if self.truncation == "longest_first" or "Truncation error" not in str(error):
                raise
        rows = []
        for text, pair in zip(texts, pairs):
            try:
                rows.append(self.tokenizer(text, pair, truncation=self.truncation, max_length=self.max_length))
            except Exception:
                rows.append(self.tokenizer(text, pair, truncation="longest_first", max_length=self.max_length))
        return {key: [row[key] for row in rows] for key in rows[0].keys()}

    def predict_proba(self, texts: list[str], pairs: list[str], batch_size: int = 64) -> np.ndarray:
        """Class probabilities, one row per pair, in input order (batches are grouped by length for speed)."""
        import torch

        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        if not texts:
            return out
        with torch.inference_mode(), self._autocast():
            for first in range(0, len(texts), SLICE):
                _stop_if_abandoned()  # MLflow's parsing, or the slices before, took the request's time
                encoded = self._encode(list(texts[first : first + SLICE]), list(pairs[first : first + SLICE]))
                order = sorted(range(len(encoded["input_ids"])), key=lambda i: len(encoded["input_ids"][i]))
                for start in range(0, len(order), batch_size):
                    _stop_if_abandoned()
                    idx = order[start : start + batch_size]
                    enc = self.tokenizer.pad({key: [values[i] for i in idx] for key, values in encoded.items()},
                                             return_tensors="pt").to(self.device)
                    logits = self.model(**enc).logits.float()
                    out[[first + i for i in idx]] = torch.softmax(logits, dim=-1).cpu().numpy()
        return out

    def _autocast(self):
        """bf16 autocast for the forward pass when this predictor runs in bf16, else a no-op context."""
        import torch

        return torch.autocast(device_type=str(self.device).split(":")[0], dtype=torch.bfloat16,
                              enabled=self.precision == "bf16")

    def predict(self, model_input: Any, batch_size: int = 64) -> pd.DataFrame:
        """What the registered model's ``predict`` returns for any accepted input (see :func:`pairs_from_input`)."""
        return _aligned(self.predict_pairs(*pairs_from_input(model_input), batch_size=batch_size), model_input)

    def predict_pairs(self, texts: list[str], pairs: list[str], batch_size: int = 64) -> pd.DataFrame:
        """:meth:`predict` for pairs already read by :func:`pairs_from_input`."""
        proba = self.predict_proba(texts, pairs, batch_size=batch_size)
        best = proba.argmax(axis=1) if len(texts) else []
        return pd.DataFrame({
            "label": [self.labels[i] for i in best],
            "score": [float(proba[row, i]) for row, i in enumerate(best)],
            "scores": [dict(zip(self.labels, map(float, row))) for row in proba],
        }, columns=list(OUTPUT_COLUMNS))


def _aligned(output: pd.DataFrame, model_input: Any) -> pd.DataFrame:
    """The output rows carry the input's index when the input was a Series or DataFrame of as many rows, so
    ``frame["label"] = model.predict(frame)["label"]`` lines up (with a RangeIndex it gave NaN or other rows' labels
    for a filtered or shuffled frame)."""
    if isinstance(model_input, (pd.Series, pd.DataFrame)) and len(model_input.index) == len(output):
        output.index = model_input.index
    return output


def load_predictor(model_dir: str) -> PairClassifier:
    """The predictor tuneline's evaluation uses: the same class the registered model serves with."""
    return PairClassifier(model_dir)


try:
    import mlflow.pyfunc

    class PairClassifierPyfunc(mlflow.pyfunc.PythonModel):
        """``predict`` returns a DataFrame: ``label`` (name), ``score`` (its probability), ``scores`` (all labels)."""

        # No type hint on predict, on purpose (see above): MLflow then warns "Add type hints to the `predict`
        # method" at every load of the model (each evaluation, gate and prediction). This attribute is what MLflow
        # itself checks to skip that inspection (mlflow/pyfunc/model.py, PythonModel.__init_subclass__).
        _skip_type_hint_validation = True

        def load_context(self, context) -> None:
            self._classifier = PairClassifier(context.artifacts["model"])

        def predict(self, context, model_input, params: dict | None = None) -> pd.DataFrame:
            from mlflow.exceptions import MlflowException

            batch_size = int((params or {}).get("batch_size", 64))
            try:
                texts, pairs = pairs_from_input(model_input)
                refuse_invisible(texts, pairs)
                return _aligned(self._classifier.predict_pairs(texts, pairs, batch_size=batch_size), model_input)
            except (TypeError, ValueError) as error:  # the caller's input: HTTP 400 with the reason, not a 500
                raise MlflowException.invalid_parameter_value(str(error)) from error

    mlflow.models.set_model(PairClassifierPyfunc())
except ImportError:  # pragma: no cover - inference without mlflow needs only PairClassifier
    pass
