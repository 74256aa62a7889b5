"""MLflow pyfunc for a fine-tuned text classifier (logged as "models from code").

This file is copied into every registered model, so it must stay self-contained: it imports only torch, transformers,
pandas and mlflow, never tuneline. A model registered by tuneline therefore loads anywhere with
``mlflow.pyfunc.load_model("models:/<name>@champion")`` without tuneline installed.

tuneline's own evaluation uses :class:`TextClassifier` from this file too, so the numbers in the registry are the
numbers of exactly the code that serves the model.

Speed (issue 13): every text is tokenized once (fast tokenizer, no padding), batches are taken from texts sorted by
their token count (little padding) and padded per batch, under ``torch.inference_mode``. On a CPU with native bf16
matrix units (``amx_bf16`` or ``avx512_bf16`` in ``/proc/cpuinfo``) the forward pass runs under bf16 autocast by
default, several times faster than fp32 there; softmax and the returned probabilities stay fp32, and the labels agree
with fp32 inference except on near-ties. ``precision`` (constructor) or ``$TUNELINE_INFERENCE_PRECISION`` picks
``auto`` (that default), ``fp32`` or ``bf16``.
"""

from __future__ import annotations

import os
import sys
import time
import unicodedata
from collections.abc import Sequence
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
    characters, whitespace aside (``"\u200b"`` pasted from a web page, a ``"\ufeff"`` an export left behind). Each
    kind's registered model refuses such an input (:func:`refuse_invisible`) and ``tuneline predict`` refuses it on
    the command line and on stdin with this same function: a model answered it with a confident label for no text.
    The other pyfunc files carry a copy (each is self-contained); ``tests/test_serving_inputs_qa.py`` holds them
    to this one."""
    return bool(text.strip()) and all(c.isspace() or c == REPLACEMENT or unicodedata.category(c) in INVISIBLE_CATEGORIES
                                       for c in text)


def refuse_invisible(texts: list[str]) -> None:
    """A ValueError naming the first input of only invisible characters (:func:`invisible_only`).

    The registered model's ``predict`` applies it (HTTP 400 from ``serve-model``); :class:`TextClassifier` does not:
    training's validation quarantines such a text (``schemas.common.non_empty_string``), and tuneline's evaluation
    predicts every test row it is given."""
    position = next((i for i, text in enumerate(texts) if invisible_only(text)), None)
    if position is not None:
        raise ValueError(f"input {position} has no visible text (only invisible characters: "
                         f"{texts[position][:20]!r}); every input needs some text")


def _quoted(value: Any, width: int = 50) -> str:
    """``value`` quoted, a long text cut before it is quoted (``'a long te…'``), so the quote closes (a copy of
    ``tuneline.errors.excerpt``: this file is self-contained)."""
    if isinstance(value, str) and len(repr(value)) > width:
        cut = value[:max(1, width - 3)]
        while len(repr(cut)) > width - 1 and len(cut) > 1:
            cut = cut[:-1]
        return repr(cut) + "…"
    shown = repr(value)
    return shown if len(shown) <= width else shown[:width - 1] + "…"


def _nested_shown(value: Any) -> str:
    """A list (or array, set, dict) where a text goes, as a message names it: how many values and the first one
    whole-quoted. ``{value!r:.60}`` cut the list mid-text (``['Thank you so much', 'I am so angry right``), and a
    dict of columns passed in-process arrives as one row holding a list, the case this names most."""
    if isinstance(value, dict):
        return f"a dict ({_quoted(value, 60)})"
    items = list(value) if isinstance(value, (list, tuple, set)) or getattr(value, "ndim", 0) == 1 else None
    if items is None:
        return _quoted(value, 60)
    kind = "a list" if isinstance(value, (list, tuple)) else "a set" if isinstance(value, set) else "an array"
    first = _quoted(items[0].item() if hasattr(items[0], "item") and getattr(items[0], "ndim", 1) == 0
                    else items[0]) if items else ""
    return f"{kind} of {len(items)} value{'' if len(items) == 1 else 's'} ([{first}{', …' if len(items) > 1 else ''}])"


def _text_at(value: Any, position: int) -> str:
    """One input text: a string (a number is taken as its digits); a missing, empty or nested value is an error
    that names its position, as training quarantines such records instead of learning from them."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()  # MLflow's scoring server sends each value of a JSON object as a 0-d array
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"input {position} is an empty text; every input needs some text")
        return value
    if value is None:
        raise ValueError(f"input {position} is missing (null); every input needs some text")
    if isinstance(value, (bytes, bytearray)):  # a Parquet binary cell: str() would predict on "b'...'"
        try:
            return _text_at(bytes(value).decode("utf-8"), position)
        except UnicodeDecodeError:
            raise ValueError(f"input {position} is bytes that are not UTF-8 text ({bytes(value)[:40]!r}); pass "
                             "one string per input") from None
    if isinstance(value, (list, tuple, dict, set)) or getattr(value, "ndim", 0) != 0:
        raise ValueError(f"input {position} is {_nested_shown(value)}, not a text; pass one string per input (a "
                         "list of texts, or a DataFrame with a 'text' column)")
    if pd.isna(value):
        raise ValueError(f"input {position} is missing ({value!r}); every input needs some text")
    if isinstance(value, bool):
        raise ValueError(f"input {position} is {value!r}, not a text; pass one string per input")
    return str(value)


def texts_from_input(model_input: Any, column: str = "text") -> list[str]:
    """Accept a str, a list of str, an unnamed Series, or a DataFrame with a ``text`` column. Any other column name
    is refused rather than guessed at: MLflow's schema enforcement hands the model only a frame's FIRST column (the
    signature has one unnamed input), so ``id, text`` arrives as ``id`` alone, and predicting on it would answer
    with confidence. Unnamed columns (a list or an unnamed Series become column ``0``) are taken as the texts."""
    if isinstance(model_input, str):
        return [_text_at(model_input, 0)]
    if isinstance(model_input, pd.DataFrame):
        if column in model_input.columns:
            series = model_input[column]
        elif model_input.shape[1] == 1 and not isinstance(model_input.columns[0], str):
            series = model_input.iloc[:, 0]
        elif model_input.shape[1] == 1:
            raise ValueError(f"predict got a column named {model_input.columns[0]!r}; name the texts' column "
                             f"{column!r} (of a DataFrame with more columns only the first reaches the model, so "
                             f"put {column!r} first or send it alone; a named Series: .rename({column!r}))")
        else:
            raise ValueError(f"predict got a DataFrame with columns {list(model_input.columns)}; pass a "
                             f"{column!r} column")
        return [_text_at(v, i) for i, v in enumerate(series.tolist())]
    if isinstance(model_input, pd.Series):
        return [_text_at(v, i) for i, v in enumerate(model_input.tolist())]
    if isinstance(model_input, dict) and column in model_input:
        return texts_from_input(model_input[column])
    if isinstance(model_input, Sequence):
        return [_text_at(v, i) for i, v in enumerate(model_input)]
    raise TypeError(f"predict takes a str, a list of str or a DataFrame with a {column!r} column, "
                    f"not {type(model_input).__name__}")



#: Characters a token allows before a text is cut: about twice what English WordPiece tokens average (4-5 characters
#: with their space), so a cut holds enough tokens almost always and is checked anyway.
CHARS_PER_TOKEN = 8


def cut_long_texts(texts: list[Any], tokenizer: Any, max_length: int) -> list[Any]:
    """``texts`` with each long one cut where the tokenizer's truncated encoding stays the same. A copy of
    ``tuneline.long_texts.cut_long_texts`` (see why there): this file is self-contained, so a registered model
    predicts where tuneline is not installed; ``tests/test_pyfunc_without_tuneline.py`` holds the copies to it."""
    limit = max_length * CHARS_PER_TOKEN
    # only texts over twice the cut: the cut is tokenized twice (counted here, encoded by the caller), which would
    # cost a text of 1.5 cuts more than its whole tokenization saves
    long = [i for i, text in enumerate(texts) if isinstance(text, str) and len(text) > 2 * limit]
    if not long:
        return texts
    cuts: dict[int, str] = {}
    for i in long:
        end = max(texts[i].rfind(" ", 0, limit), texts[i].rfind("\n", 0, limit), texts[i].rfind("\t", 0, limit))
        if end > 0:
            cuts[i] = texts[i][:end]
    if not cuts:
        return texts
    counts = tokenizer(list(cuts.values()), add_special_tokens=False, return_attention_mask=False,
                       return_token_type_ids=False, verbose=False)["input_ids"]
    result = list(texts)
    for (i, cut), ids in zip(cuts.items(), counts):
        if len(ids) > max_length:  # more than the model reads, so truncated either way, at the same token
            result[i] = cut
    return result


class TextClassifier:
    """A saved sequence-classification model folder, ready for batched inference."""

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

    def predict_proba(self, texts: list[str], batch_size: int = 64):
        """Class probabilities, one row per text, in input order (batches are grouped by length for speed)."""
        import numpy as np
        import torch

        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        with torch.inference_mode(), self._autocast():
            for first in range(0, len(texts), SLICE):
                _stop_if_abandoned()  # MLflow's parsing, or the slices before, took the request's time
                part = list(texts[first : first + SLICE])
                encoded = self.tokenizer(cut_long_texts(part, self.tokenizer, self.max_length), truncation=True,
                                         max_length=self.max_length)
                order = sorted(range(len(part)), key=lambda i: len(encoded["input_ids"][i]))
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
        """What the registered model's ``predict`` returns for any accepted input (see :func:`texts_from_input`)."""
        return _aligned(self.predict_frame(texts_from_input(model_input), batch_size=batch_size), model_input)

    def predict_frame(self, texts: list[str], batch_size: int = 64) -> pd.DataFrame:
        proba = self.predict_proba(texts, batch_size=batch_size)
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


def load_predictor(model_dir: str) -> TextClassifier:
    """The predictor tuneline's evaluation uses: the same class the registered model serves with."""
    return TextClassifier(model_dir)


try:
    import mlflow.pyfunc

    class TextClassifierPyfunc(mlflow.pyfunc.PythonModel):
        """``predict`` returns a DataFrame: ``label`` (name), ``score`` (its probability), ``scores`` (all labels).

        ``model_input`` has no type hint on purpose. The signature (``ClassificationKind.signature``) is one unnamed
        column of type ``Any``. MLflow's column-based schema enforcement turns a str, a list of str, a Series and a
        one-column DataFrame alike into that column (``mlflow/models/utils.py`` ``_enforce_schema`` makes a DataFrame
        of each, ``_enforce_unnamed_col_schema`` keeps its first column), so every documented form arrives here as a
        one-column DataFrame (of a wider DataFrame, only its FIRST column is kept: :func:`texts_from_input` refuses
        a column not named ``text``). ``Any`` rather than ``string``: with a string column the scoring server casts
        a JSON null to the text "None" while parsing the request. A hinted ``list[str]`` would switch MLflow to type-hint
        validation, which refuses a bare str and a Series (``mlflow/types/type_hints.py`` ``_validate_list_elements``);
        a NAMED ``text`` column would drop the unnamed column that a str or a list becomes.
        (The token tagger needs the other path, for lists of word lists: see ``TokenTaggerPyfunc``.)
        """

        # No type hint on predict, on purpose (see above): MLflow then warns "Add type hints to the `predict`
        # method" at every load of the model (each evaluation, gate and prediction). This attribute is what MLflow
        # itself checks to skip that inspection (mlflow/pyfunc/model.py, PythonModel.__init_subclass__).
        _skip_type_hint_validation = True

        def load_context(self, context) -> None:
            self._classifier = TextClassifier(context.artifacts["model"])

        def predict(self, context, model_input, params: dict | None = None) -> pd.DataFrame:
            from mlflow.exceptions import MlflowException

            batch_size = int((params or {}).get("batch_size", 64))
            try:
                texts = texts_from_input(model_input)
                refuse_invisible(texts)
                return _aligned(self._classifier.predict_frame(texts, batch_size=batch_size), model_input)
            except (TypeError, ValueError) as error:  # the caller's input: HTTP 400 with the reason, not a 500
                raise MlflowException.invalid_parameter_value(str(error)) from error

    mlflow.models.set_model(TextClassifierPyfunc())
except ImportError:  # pragma: no cover - inference without mlflow needs only TextClassifier
    pass
