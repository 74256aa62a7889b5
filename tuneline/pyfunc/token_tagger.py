"""MLflow pyfunc for a fine-tuned token tagger (NER), logged as "models from code".

This file is copied into every registered NER model, so it must stay self-contained: it imports only torch,
transformers, pandas, numpy and mlflow, never tuneline. tuneline's own test evaluation uses :class:`TokenTagger`
from this file, so the metrics in the registry come from exactly the code that serves the model.

Input: raw text (a str, a list of str, a Series, or a DataFrame with a ``text`` column), or pre-split words (a
DataFrame with a ``tokens`` column of lists, or a list of word lists, ragged or not); a list may mix both, and a numpy
array of either is read as that list. Output: one row per input, in input order, with ``text``, ``tokens``, ``tags``
(one IOB2 tag per word) and ``entities`` (dicts with ``type``, ``text``, ``start``, ``end`` (its characters in
``text``), ``score``, and ``first_word``, ``last_word``: the positions in ``tokens`` of its first and last word, so a
client that sent word lists finds the entity's words without searching offsets). Anything
else (a number, a word that is not a string) is refused, never guessed at; the registered model also refuses no
input, an input of only invisible characters (:func:`refuse_invisible`), an empty word list and an empty word
(:func:`refuse_empty_words`). How the registered model gets these inputs past MLflow unchanged is explained at
:class:`TokenTaggerPyfunc`.

Choices, and why:

* Raw text is split into words the way CoNLL data is (the data the model was trained on): runs of letters/digits,
  kept whole across inner ``-``, ``'``, ``.`` and ``&`` (``1996-08-22``, ``O'Neill``, ``AT&T``), letter-dot
  abbreviations kept whole (``U.S.``), a combining mark kept with its word (a decomposed ``José``), and every other
  non-space character a word of its own (``Paris.`` → ``Paris`` ``.``). Words keep their character offsets into the
  raw text. Pre-split words are taken as they are; their offsets refer to ``" ".join(tokens)``.
* A word's tag is the prediction on its first subword (as in training); its score is that tag's probability.
* Long inputs are never truncated: words are packed into overlapping windows that fit ``max_length`` tokens, and
  each word takes its prediction from the window where it sits most centrally (most context on both sides). A single
  word longer than a whole window (pathological) is cut, but its first subword, which carries its tag, is kept.
* Entities are read leniently from the tags (an ``I-X`` that does not continue an ``X`` starts a new entity), so
  users see everything the model marked; the metrics (seqeval, strict IOB2) are stricter than that.
* Speed (issue 13): the windows are tokenized once (fast tokenizer, no padding), batched in order of their token
  count (little padding) and padded per batch, under ``torch.inference_mode``. On a CPU with native bf16 matrix units
  (``amx_bf16`` or ``avx512_bf16`` in ``/proc/cpuinfo``) the forward pass runs under bf16 autocast by default, several
  times faster than fp32 there; probabilities stay fp32, and tags agree with fp32 inference except on near-ties.
  ``precision`` (constructor) or ``$TUNELINE_INFERENCE_PRECISION`` picks ``auto`` (that default), ``fp32`` or ``bf16``.
* Word casing (``tokenize.case_types``): an uncased tokenizer lowercases ``Paris`` and ``paris`` alike, and
  capitals mark most names in news text. A model trained with case types (its config says
  ``tuneline_case_types: true``) reads each word's casing (:func:`case_type`) as the token type of its subwords,
  so serving must pass the same types: this class does. Such a model run by ``transformers.pipeline`` sees every
  word as lower case (type 0), and tags less well; so does text written all in lower case (the CoNLL-2003 test
  lower-cased: 0.65 F1 against 0.88), as with any cased model.
"""

from __future__ import annotations

import os
import re
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
OUTPUT_COLUMNS = ("text", "tokens", "tags", "entities")

#: Invisible characters that join inside a word (soft hyphen, zero-width non-joiner and joiner, word joiner, a BOM
#: used as a zero-width no-break space): ``Ham\u00adburg`` is one word, as a reader sees it. A text pasted from a
#: web page or a PDF carries them; each split its word in three, the middle "word" invisible and tagged.
_JOINERS = "\u00ad\u200c\u200d\u2060\ufeff"
#: ... and invisible characters that are no word on their own (those, the zero-width space and the direction marks):
#: a zero-width space separates words like a space.
_INVISIBLE = _JOINERS + "\u200b\u200e\u200f"
#: what :func:`split_words` writes in its shadow text for a combining mark that follows no letter or digit (the
#: emoji variation selector of ``❤️``, a keycap's ``⃣``): a private-use character the pattern keeps with its symbol
_MARK_OF_SYMBOL = "\ue000"
WORD_PATTERN = re.compile(rf"(?i:['’](?:s|re|ve|ll|d|m))(?!\w)|(?:[^\W\d_]\.){{2,}}"
                          # CoNLL's words: 3,000 1/2 22/11/96 10:30 -- ... and an initial before a name (M. Smith)
                          rf"|\d+(?:[,/:]\d+)+(?:\.\d+)?(?!\w)|-{{2,}}|\.{{2,}}|(?<!\w)[A-Z]\.(?=\s+[A-Z])"
                          rf"|\w+(?:(?:[-'’.&]|[{_JOINERS}]+)\w+)*"
                          rf"|[^\s{_INVISIBLE}{_MARK_OF_SYMBOL}]{_MARK_OF_SYMBOL}*|{_MARK_OF_SYMBOL}+")
#: An English clitic at a word's end, which CoNLL-2003 (the Penn Treebank's tokenisation) writes as a word of its own:
#: ``Bitar's`` is ``Bitar 's``, ``don't`` is ``do n't``. Kept on the word, an entity took it in (``Bitar's`` a
#: PER), and 's alone (``Bitar 's``, as CoNLL text reads joined) came out as ``'`` and ``s``, two words the model had
#: never seen (a quarter of CoNLL's test sentences were split otherwise than their gold words).
_CLITIC = re.compile(r"(?i)(?<=\w)(?:n['’]t|['’](?:s|re|ve|ll|d|m))$")

#: Token types of a model trained with word casing (:func:`case_type`).
CASE_TYPES = 4

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


def case_type(word: str) -> int:
    """A word's casing as a token type, for an uncased tokenizer that cannot see it: 0 lower case or no letters
    (``the``, ``1996``, ``-``), 1 capitalised (``Paris``, ``A``), 2 capitals only, two letters or more (``EU``,
    ``U.S.``), 3 mixed (``McDonald``, ``iPhone``). Special and padding tokens are type 0."""
    upper = [c.isupper() for c in word if c.isalpha()]
    if not any(upper):
        return 0
    if all(upper):
        return 2 if len(upper) > 1 else 1
    return 1 if upper[0] and not any(upper[1:]) else 3


def case_types_of(words: Sequence[str], word_ids: Sequence[int | None]) -> list[int]:
    """The token type of every token of one encoded sequence: its word's :func:`case_type`, 0 for special tokens."""
    cases = [case_type(word) for word in words]
    return [0 if word is None else cases[word] for word in word_ids]


def token_type_embeddings(model: Any) -> Any:
    """The encoder's token type embedding table, or None (DistilBERT has none; RoBERTa has one type only, which
    grows as BERT's does)."""
    embeddings = getattr(getattr(model, "base_model", model), "embeddings", None)
    return getattr(embeddings, "token_type_embeddings", None)


def grow_case_types(model: Any) -> None:
    """Give the model :data:`CASE_TYPES` token types, every new one starting as a copy of type 0 (all a single
    sentence ever had), so the grown model computes exactly what it did until training tells the types apart. A
    model that has them already (the champion a retraining starts from) is left as it is."""
    import torch

    if getattr(model.config, "tuneline_case_types", False):
        return
    table = token_type_embeddings(model)
    grown = torch.nn.Embedding(CASE_TYPES, table.embedding_dim, dtype=table.weight.dtype,
                               device=table.weight.device)
    with torch.no_grad():
        grown.weight.copy_(table.weight[0].expand(CASE_TYPES, -1))
    model.base_model.embeddings.token_type_embeddings = grown
    model.config.type_vocab_size = CASE_TYPES
    model.config.tuneline_case_types = True


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


def split_words(text: str) -> list[tuple[str, int, int]]:
    """CoNLL-style words of raw text with their [start, end) character offsets (English clitics split off as the
    Penn Treebank does: :data:`_CLITIC`).

    A combining mark (Unicode category M: the accent of a decomposed ``José``, ``Zoë`` as macOS and some web pages
    write them, a Devanagari vowel sign) belongs to the word it follows, as a reader sees it: ``re``'s ``\\w`` does
    not match marks, so ``Jose\\u0301`` split into ``Jose`` and a "word" of the accent alone, and an entity's text
    and offsets cut the name short. The pattern runs on a copy of the text where each mark is a letter (one
    character for one, so the offsets hold) and the words are cut from the text itself."""
    if text.isascii():
        shadow = text
    else:  # a mark after a letter or digit is a letter; after a symbol (❤ and its emoji selector), the symbol's
        chars: list[str] = []
        for c in text:
            if unicodedata.category(c).startswith("M"):
                chars.append("a" if chars and (chars[-1].isalnum() or chars[-1] == "a") else _MARK_OF_SYMBOL)
            else:
                chars.append(c)
        shadow = "".join(chars)
    words = []
    for m in WORD_PATTERN.finditer(shadow):
        start, end = m.start(), m.end()
        if not text[start].isalnum() and invisible_only(text[start:end]):  # a control character (BEL, NUL from a
            continue  # database or a terminal): a separator; as a word it was refused as "an empty word" (serving QA)
        clitic = _CLITIC.search(shadow, start, end)
        if clitic is not None and clitic.start() > start:
            words.append((text[start:clitic.start()], start, clitic.start()))
            start = clitic.start()
        words.append((text[start:end], start, end))
    return words


def join_words(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """``" ".join(tokens)`` and each token's [start, end) offsets in it, around its content: a word written with
    surrounding spaces (``" Paris "``, from a table or a hand-built list) is tokenized as ``Paris``, so its entity's
    text and offsets are ``Paris`` too, not the spaces."""
    spans, position = [], 0
    for token in tokens:
        content = token.strip()
        start = position + (token.index(content) if content else 0)
        spans.append((start, start + len(content) if content else position + len(token)))
        position += len(token) + 1
    return " ".join(tokens), spans


def _is_word_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def _is_missing(value: Any) -> bool:
    """None, NaN or ``pd.NA``: what pandas puts in a ``text`` column for a missing row (refused, as in the other
    kinds)."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _parse_item(index: int, value: Any) -> tuple[str, list[str], list[tuple[int, int]]]:
    """One input item as (text, words, word offsets); a TypeError naming the item for anything but a text or a list
    of word strings (``str(7)`` would tag the word "7" the caller never wrote)."""
    if _is_word_list(value):
        words = list(value)
        for position, word in enumerate(words):
            if not isinstance(word, str):
                raise TypeError(f"input {index}: a word list must hold only strings (words), but word {position} is "
                                f"{type(word).__name__} {word!r}")
        words = [str(word) for word in words]  # numpy's str_ (a word list as an array) printed as np.str_('John')
        text, spans = join_words(words)
        return text, words, spans
    if _is_missing(value):  # refused as every kind refuses it: an empty answer would look like "no entities"
        raise ValueError(f"input {index} is missing (null); every input needs some text")
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"input {index} is an empty text; every input needs some text")
        value = str(value)  # a numpy str_ (a text of an array) is answered as the plain text it is
        found = split_words(value)
        return value, [w for w, _, _ in found], [(s, e) for _, s, e in found]
    raise TypeError(f"input {index}: expected a text (str) or a list of words (list of str), not "
                    f"{type(value).__name__} {value!r}")


def parse_input(model_input: Any) -> list[tuple[str, list[str], list[tuple[int, int]]]]:
    """Normalise every accepted input to (text, words, word offsets) per item, in input order.

    A numpy array is read as the list it holds, as the other kinds read one (MLflow's schema enforcement hands them
    any array as its column; this model's type hint passes it here unchanged): a 1-D array of texts, an object array
    of word lists (or of word arrays), a 2-D array of words one sentence a row; a 0-d array is one text."""
    if isinstance(model_input, np.ndarray):
        model_input = model_input.tolist()  # numpy strings become str; an object array's word lists stay lists
    if isinstance(model_input, str):
        model_input = [model_input]
    if isinstance(model_input, dict):
        model_input = pd.DataFrame({k: v if isinstance(v, list) else [v] for k, v in model_input.items()})
    if isinstance(model_input, pd.DataFrame):
        if "tokens" in model_input.columns:
            model_input = model_input["tokens"]
        elif "text" in model_input.columns:
            model_input = model_input["text"]
        elif model_input.shape[1] > 1 and any(isinstance(c, str) for c in model_input.columns):
            raise ValueError(f"predict got a DataFrame with columns {list(model_input.columns)}; pass a 'text' "
                             "(raw text) or a 'tokens' (word lists) column")
        elif model_input.shape[1] > 1:
            # A table with one word per column (shorter rows padded), as MLflow's column-based schema enforcement
            # makes of a list of word lists (and pd.DataFrame(word_lists) does): read it back row by row.
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
    return [_parse_item(index, value) for index, value in enumerate(model_input)]


def refuse_empty_words(items: list[tuple[str, list[str], list[tuple[int, int]]]]) -> None:
    """A ValueError naming the input (and the word) for no input at all, an empty word list, or an empty (or
    all-space, or all-invisible) word, as :func:`parse_input` parsed them; raw text never splits into such words
    (:func:`split_words` skips a control character as a separator).

    The registered model's ``predict`` applies it (HTTP 400 from ``serve-model``): each was answered 200 with no
    predictions, an empty row that reads as "no entities", or an 'O' for a word that is not there (its offsets
    pointing at a space), while training quarantines such sentences (``tokens_are_list_of_strings``,
    ``no_empty_tokens``). :class:`TokenTagger` itself keeps tagging an empty list as a sentence of no words: the
    evaluation of validated data never holds one, and callers of the class may rely on it."""
    if not items:
        raise ValueError('predict got no inputs; send at least one text or word list, e.g. {"inputs": ["John lives '
                         'in Paris"]}')
    for index, (_, words, _) in enumerate(items):
        if not words:
            raise ValueError(f"input {index} has no words (an empty word list or text); every input needs at least "
                             "one word")
        # a word of invisible characters alone (a zero-width space) is no word either: the tokenizer reads nothing
        # of it, and `tuneline predict --input` and training refuse it (one rule for every way in)
        blank = next((position for position, word in enumerate(words) if not word.strip() or invisible_only(word)),
                     None)
        if blank is not None:
            unseen = "; invisible characters alone are no word" if words[blank].strip() else ""
            raise ValueError(f"input {index}: word {blank} is {words[blank]!r}, an empty word{unseen}; every word "
                             "needs some text (drop it from the list)")


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


def refuse_invisible(items: list[tuple[str, list[str], list[tuple[int, int]]]]) -> None:
    """A ValueError naming the first input, raw text or word list, of only invisible characters
    (:func:`invisible_only`), as :func:`parse_input` parsed them.

    The registered model's ``predict`` applies it before :func:`refuse_empty_words` (HTTP 400 from ``serve-model``),
    as the other kinds refuse such a text: a control character was a "word" of its own and tagged, and a zero-width
    space read as "no words" rather than as the invisible text it is. :class:`TokenTagger` itself does not: a word of
    the test split may be one, and the evaluation tags every word (a word with no subword is tagged 'O')."""
    for index, (text, _, _) in enumerate(items):
        if invisible_only(text):
            raise ValueError(f"input {index} has no visible text (only invisible characters: {text[:20]!r}); every "
                             "input needs some text")


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

    def __init__(self, model_dir: str, device: str | None = None, precision: str | None = None) -> None:
        import torch
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = resolve_precision(precision, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForTokenClassification.from_pretrained(model_dir).to(self.device).eval()
        config = self.model.config
        self.labels = [config.id2label[i] for i in range(config.num_labels)]
        self.case_types = bool(getattr(config, "tuneline_case_types", False))
        self.max_length = int(getattr(config, "tuneline_max_length", 0) or min(self.tokenizer.model_max_length, 512))
        self.budget = max(1, self.max_length - self.tokenizer.num_special_tokens_to_add())
        # Counting a long sentence's subwords (below) is no model input: the windows keep every input within
        # max_length, so transformers' once-per-tokenizer "sequence length 2410 > 512 ... indexing errors" warning
        # would only alarm (it reached NER evaluation's output). Marked as given, as transformers marks it.
        if isinstance(getattr(self.tokenizer, "deprecation_warnings", None), dict):
            self.tokenizer.deprecation_warnings["sequence-length-is-longer-than-the-specified-maximum"] = True

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
        results = [(["O"] * len(words), [0.0] * len(words)) for words in sentences]
        centrality = [[-1] * len(words) for words in sentences]
        non_empty = [i for i, words in enumerate(sentences) if words]
        for first in range(0, len(non_empty), SLICE):
            _stop_if_abandoned()  # MLflow's parsing, or the slices before, took the request's time
            self._tag_slice(sentences, non_empty[first : first + SLICE], results, centrality, batch_size)
        return results

    def _tag_slice(self, sentences: list[list[str]], non_empty: list[int], results: list[tuple[list[str], list[float]]],
                   centrality: list[list[int]], batch_size: int) -> None:
        """:meth:`tag_words` for the sentences ``non_empty`` (indexes into ``sentences``), into ``results``."""
        import torch

        counts = self._subword_counts([sentences[i] for i in non_empty])
        chunks = [(i, s, e) for i, per_word in zip(non_empty, counts) for s, e in word_windows(per_word, self.budget)]
        encoded = self.tokenizer([sentences[i][s:e] for i, s, e in chunks], is_split_into_words=True,
                                 truncation=True, max_length=self.max_length)
        if self.case_types:
            encoded["token_type_ids"] = [case_types_of(sentences[i][s:e], encoded.word_ids(c))
                                         for c, (i, s, e) in enumerate(chunks)]
        order = sorted(range(len(chunks)), key=lambda c: len(encoded["input_ids"][c]))
        with torch.inference_mode(), torch.autocast(device_type=str(self.device).split(":")[0],
                                                    dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            for begin in range(0, len(order), batch_size):
                _stop_if_abandoned()
                members = order[begin : begin + batch_size]
                enc = self.tokenizer.pad({key: [values[c] for c in members] for key, values in encoded.items()},
                                         return_tensors="pt")
                proba = torch.softmax(self.model(**enc.to(self.device)).logits.float(), dim=-1).cpu().numpy()
                best_tags = proba.argmax(axis=-1)
                for row, chunk in enumerate(members):
                    sentence, start, end = chunks[chunk]
                    tags, scores = results[sentence]
                    previous = None
                    for position, word in enumerate(encoded.word_ids(chunk)):
                        if word is not None and word != previous:
                            centre = min(word, end - start - 1 - word)
                            index = start + word
                            if centre > centrality[sentence][index]:
                                best = int(best_tags[row, position])
                                tags[index], scores[index] = self.labels[best], float(proba[row, position, best])
                                centrality[sentence][index] = centre
                        previous = word

    def predict(self, model_input: Any, batch_size: int = 64) -> pd.DataFrame:
        """What the registered model's ``predict`` returns for any accepted input."""
        return _aligned(self.predict_frame(model_input, batch_size=batch_size), model_input)

    def predict_frame(self, model_input: Any, batch_size: int = 64) -> pd.DataFrame:
        """One row per input: ``text``, ``tokens``, ``tags``, ``entities`` (see the module docstring)."""
        return self.predict_items(parse_input(model_input), batch_size=batch_size)

    def predict_items(self, items: list[tuple[str, list[str], list[tuple[int, int]]]],
                      batch_size: int = 64) -> pd.DataFrame:
        """:meth:`predict_frame` for inputs already parsed by :func:`parse_input`."""
        tagged = self.tag_words([words for _, words, _ in items], batch_size=batch_size)
        rows = []
        for (text, words, spans), (tags, scores) in zip(items, tagged):
            entities = extract_entities(tags, scores, spans, text)
            rows.append({"text": text, "tokens": words, "tags": tags, "entities": entities})
        return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))


def _aligned(output: pd.DataFrame, model_input: Any) -> pd.DataFrame:
    """The output rows carry the input's index when the input was a Series or DataFrame of as many rows, so
    ``frame["label"] = model.predict(frame)["label"]`` lines up (with a RangeIndex it gave NaN or other rows' labels
    for a filtered or shuffled frame)."""
    if isinstance(model_input, (pd.Series, pd.DataFrame)) and len(model_input.index) == len(output):
        output.index = model_input.index
    return output


def load_predictor(model_dir: str) -> TokenTagger:
    """The predictor tuneline's evaluation uses: the same class the registered model serves with."""
    return TokenTagger(model_dir)


try:
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    class TokenTaggerPyfunc(mlflow.pyfunc.PythonModel):
        """``predict`` returns a DataFrame: ``text``, ``tokens``, ``tags`` and ``entities`` per input.

        Why the input is declared by a type hint, and why this class checks it itself (MLflow 3.17 source):

        * A signature inferred from an input example is column-based, and MLflow's schema enforcement first makes a
          DataFrame of any list (``mlflow/models/utils.py`` ``_enforce_schema``: ``pd.DataFrame(pf_input)`` for a
          list), so a list of word lists becomes a table with one word per column, which it then cuts to the
          signature's columns (``_enforce_unnamed_col_schema``: ``pf_input.columns[: len(input_schema.inputs)]``;
          ``_enforce_named_col_schema`` keeps only the named ones). A one-column string signature therefore tagged
          each sentence's FIRST word only, and no column-based signature keeps a word list of any length intact
          (named optional ``text``/``tokens`` columns lose a str or a list of str entirely instead).
        * A signature inferred from ``predict``'s type hint is flagged ``is_signature_from_type_hint``, and then
          ``PyFuncModel._predict`` (``mlflow/pyfunc/__init__.py``) skips ``_enforce_schema`` and passes the input
          unchanged: "data validation will be done during PythonModel's predict call". ``list[str | list[str]]``
          says what this model takes: a list of inputs, each a text or a list of words (MLflow records the union as
          one ``Any`` column).
        * MLflow's automatic validation for a type hint (the wrapper ``PythonModel.__init_subclass__`` puts around
          ``predict``, ``mlflow/pyfunc/utils/data_validation.py``) accepts only a list or a DataFrame, so it would
          refuse a bare str and a Series before this code runs (``_validate_list_elements``: "Expected list"), and
          it checks nothing inside a union. ``_skip_type_hint_validation`` (the switch MLflow's own ChatModel and
          agent classes use) turns that wrapper off; :func:`parse_input` is the check instead, and a stricter one:
          every item must be a text or a list of strings, or the call fails with MLflow's invalid-parameter error
          (HTTP 400 from a serving endpoint), as a failed schema enforcement does.
        """

        _skip_type_hint_validation = True

        def load_context(self, context) -> None:
            self._tagger = TokenTagger(context.artifacts["model"])

        def predict(self, context, model_input: list[str | list[str]],
                    params: dict[str, Any] | None = None) -> pd.DataFrame:
            """The tags of every input; a ValueError/TypeError of :func:`parse_input`, :func:`refuse_invisible` or
            :func:`refuse_empty_words` is MLflow's invalid-parameter error (HTTP 400 from a serving endpoint)."""
            try:
                items = parse_input(model_input)
                refuse_invisible(items)
                refuse_empty_words(items)
            except (TypeError, ValueError) as error:
                raise MlflowException.invalid_parameter_value(
                    f"Failed to enforce the model input schema (a text, a list of texts or of word lists; in Python "
                    f"also a DataFrame with a 'text' or 'tokens' column): {error}") from error
            batch_size = int((params or {}).get("batch_size", 64))
            # a Series' or DataFrame's index carried over, as the other kinds' models and TokenTagger.predict do
            return _aligned(self._tagger.predict_items(items, batch_size=batch_size), model_input)

    mlflow.models.set_model(TokenTaggerPyfunc())
except ImportError:  # pragma: no cover - inference without mlflow needs only TokenTagger
    pass
