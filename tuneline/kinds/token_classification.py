"""Token classification (NER): one tag per word, IOB2 (``B-PER I-PER O``), entity-level metrics.

Everything specific to this kind: its config keys (token/tag columns, the CoNLL tag column, IOB1 conversion,
subword labelling), the sentence frame (``tokens``, ``tags``, ``text`` = tokens joined by spaces: the key for
splitting and leakage and the string the served model's offsets refer to), the label policy ('O' plus B-/I- per
entity type), the subword alignment, the metrics (seqeval), the all-'O' baseline and the report (per type, tag
confusion, predictions).

Alignment: a word split into several subwords gets its tag on the *first* subword only; continuation subwords and
special tokens get -100, which the loss and the metrics ignore. Two mistakes a naive alignment makes, both covered
by tests: copying ``B-X`` onto every subword (one entity becomes several), and labelling by token index instead of
word index (every tag after a split word shifts right). With ``tokenize.label_all_subwords`` continuations are
labelled too, with ``I-X`` for a ``B-X`` word, so an entity still starts exactly once. Training examples are
truncated at ``max_length`` tokens and the words cut off are counted; evaluation and serving never truncate (the
pyfunc tags long sentences in overlapping windows).

Metrics: ``f1``/``precision``/``recall`` are conlleval's (seqeval's default mode: an ``I-X`` after ``O`` starts an
entity, as in the published CoNLL-2003 figures); ``*_strict`` are seqeval's strict IOB2 mode (only well-formed
``B-X I-X*`` chunks count). ``accuracy`` is per word. One :meth:`TokenClassificationKind.score` serves the Trainer's
validation, the test evaluation and the champion re-score.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from tuneline.config import DataConfig, TokenizeConfig, TunelineConfig
from tuneline.errors import UserError, excerpt
from tuneline.kinds.base import Evaluation, ReadRecords, TaskKind
from tuneline.kinds.classification import LABEL_SOURCE_ROLES, RARE_LABELS_SHOWN, LabelSetError, matched_columns
from tuneline.pyfunc.token_tagger import case_types_of, grow_case_types
from tuneline.readers import DataLoadError, detect_format, read_conll, read_table

IGNORE = -100
SENTENCE_COLUMNS = ["tokens", "tags", "text", "source_file", "source_row"]


class TokenData(DataConfig):
    tokens_column: str = "tokens"
    tags_column: str = "tags"
    conll_tag_column: int = Field(-1, description="Column of the tag in CoNLL files; -1 is the last column.")
    iob1_to_iob2: bool = Field(False, description="Convert IOB1 tags to IOB2 instead of rejecting them.")
    bioes_to_iob2: bool = Field(False, description="Convert IOBES/BIOES (S-X, E-X) and BILOU (U-X, L-X) tags to "
                                "IOB2 (B-X, I-X) instead of rejecting them.")
    min_examples_per_label: int = Field(
        3, ge=1, description="An inferred entity type with fewer mentions (entities, as conlleval counts them) in "
                             "train is an error (a stray typo such as B-PRE must not become a type the model learns); "
                             "configure data.labels to accept it.")
    merge_label_spellings: bool = Field(
        True, description="Tags written several ways are one tag: o → O, b-per, B_PER, B:PER and PER-B → B-PER (an "
                          "entity type spelled as in data.labels or as most often in train; logged). false keeps them as "
                          "written (then only O, B-X and I-X are tags).")
    tag_names: list[str] | Path | None = Field(
        None, description="Tags by id, for files whose tags are class ids (Hugging Face datasets export ner_tags as "
                          "[3, 0, 7]): a list in id order (the dataset's features['ner_tags'].feature.names, e.g. "
                          "[O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC, B-MISC, I-MISC] for CoNLL-2003), or a file "
                          "with one tag a line (line number = id, from 0). Each id in the data becomes its tag.")

    @field_validator("tag_names")
    @classmethod
    def _unique_tag_names(cls, value: list[str] | Path | None) -> list[str] | Path | None:
        if isinstance(value, list):
            repeated = sorted(name for name, n in Counter(value).items() if n > 1)
            if repeated or any(not str(name).strip() for name in value):
                raise ValueError(f"tag names must be unique and non-blank (repeated: {repeated})")
        return value

    def path_fields(self) -> list[str]:
        """A ``tag_names`` file is resolved against the config file like the data files; a list is left alone."""
        return [*super().path_fields(), *(["tag_names"] if isinstance(self.tag_names, Path) else [])]


class TokenTokenizeConfig(TokenizeConfig):
    label_all_subwords: bool = Field(
        False, description="Label every subword (B-X becomes I-X on continuations) instead of the first only.")
    case_types: Literal["auto"] | bool = Field(
        "auto", description="Give the model each word's casing (lower, Capitalised, CAPITALS, miXed) as the token "
                            "type of its subwords. An uncased tokenizer (the embedded MiniLM's) reads 'Paris' and "
                            "'paris' alike, and capitals mark most names: on CoNLL-2003 this raised test F1 by "
                            "about 3 points (benchmarks/BENCHMARKS.md); uncased_share keeps the model finding "
                            "names in text written all in lower case. auto: on "
                            "when the tokenizer lowercases and the encoder has token type embeddings (BERT family); "
                            "the registered model carries it.")
    uncased_share: float = Field(
        0.2, ge=0.0, lt=1.0, description="With case_types on, this share of the training sentences (a seeded draw) "
                                         "is shown without casing, as text written all in lower case reads, so the "
                                         "model learns to find names there too: on CoNLL-2003 (4 epochs) the "
                                         "lower-cased test scored 0.86 F1 with a fifth, 0.55 without, and the cased "
                                         "test 0.886 and 0.884 (benchmarks/BENCHMARKS.md); 0 trains on cased text "
                                         "only. Validation, test and serving are never changed.")


class TokenClassificationConfig(TunelineConfig):
    METRICS: ClassVar[tuple[str, ...]] = ("f1", "precision", "recall", "accuracy", "f1_strict", "precision_strict",
                                          "recall_strict")
    DEFAULT_METRIC: ClassVar[str] = "f1"

    task: Literal["token_classification"] = "token_classification"
    data: TokenData
    tokenize: TokenTokenizeConfig = Field(default_factory=TokenTokenizeConfig)


# --- alignment ---------------------------------------------------------------------------------------------------

def continuation_tag(tag: str) -> str:
    """The tag a non-first subword of a word tagged ``tag`` gets when every subword is labelled."""
    return f"I-{tag[2:]}" if tag.startswith("B-") else tag


def align_labels(word_ids: list[int | None], tags: list[str], label2id: dict[str, int],
                 label_all_subwords: bool = False) -> list[int]:
    """One label id per token: the word's tag on its first subword, -100 (or I-X) after, -100 on special tokens."""
    labels: list[int] = []
    previous: int | None = None
    for word in word_ids:
        if word is None:
            labels.append(IGNORE)
        elif word != previous:
            labels.append(label2id[tags[word]])
        elif label_all_subwords:
            tag = continuation_tag(tags[word])
            if tag not in label2id:
                raise ValueError(f"tokenize.label_all_subwords labels continuations of {tags[word]} as {tag}, which "
                                 "is not in the label set: add it to data.labels (or leave data.labels unset)")
            labels.append(label2id[tag])
        else:
            labels.append(IGNORE)
        previous = word
    return labels


def words_cut(word_ids: list[int | None], n_words: int) -> int:
    """How many words of an ``n_words`` sentence have no token left after truncation."""
    kept = [w for w in word_ids if w is not None]
    return n_words - (max(kept) + 1) if kept else n_words


def encode_token_batch(batch: dict[str, list], tokenizer: Any, max_length: int, label2id: dict[str, int],
                       label_all_subwords: bool = False, case_types: bool = False) -> dict[str, list]:
    """A ``datasets`` batched map function: tokens/tags → input ids, aligned labels and words cut by truncation;
    with ``case_types``, each token's type is its word's casing (the pyfunc's :func:`case_types_of`)."""
    enc = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
    labels, truncated, types = [], [], []
    for row, (tokens, tags) in enumerate(zip(batch["tokens"], batch["tags"])):
        word_ids = enc.word_ids(row)
        labels.append(align_labels(word_ids, tags, label2id, label_all_subwords))
        truncated.append(words_cut(word_ids, len(tokens)))
        if case_types:
            types.append(case_types_of(tokens, word_ids))
    out = {key: list(values) for key, values in enc.items()}
    if case_types:
        out["token_type_ids"] = types
    out["labels"] = labels
    out["truncated"] = truncated
    return out


def uncased_draw(seed: int, row: int) -> float:
    """A uniform draw in [0, 1) fixed by the seed and the row's index: the same rows lose their casing in every
    run with that seed, whatever the batch boundaries of the map."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{row}".encode(), digest_size=8).digest(), "big") / 2**64


def drop_casing(batch: dict[str, list], indices: list[int], share: float, seed: int) -> dict[str, list]:
    """The train-only augmentation of :attr:`TokenTokenizeConfig.uncased_share`: the drawn rows' token types become
    all 0, exactly what the encoder gives the same sentence written in lower case (an uncased tokenizer reads the
    words alike)."""
    batch["token_type_ids"] = [[0] * len(types) if uncased_draw(seed, row) < share else types
                               for row, types in zip(indices, batch["token_type_ids"])]
    return batch


def tokenizer_lowercases(tokenizer: Any) -> bool:
    """Whether the tokenizer reads capitals as lower case (an uncased WordPiece vocabulary does)."""
    return tokenizer.tokenize("Paris NATO") == tokenizer.tokenize("paris nato")



# --- metrics -----------------------------------------------------------------------------------------------------

def _modes() -> dict[str, dict[str, Any]]:
    from seqeval.scheme import IOB2

    return {"": {}, "_strict": {"mode": "strict", "scheme": IOB2}}


def seqeval_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Micro-averaged entity precision/recall/F1 (conlleval, and strict IOB2 as ``*_strict``) and word accuracy."""
    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError("gold and predicted tag sequences must line up sentence by sentence and word by word")
    scores: dict[str, float] = {}
    for suffix, mode in _modes().items():
        scores[f"f1{suffix}"] = float(f1_score(gold, predicted, zero_division=0, **mode))
        scores[f"precision{suffix}"] = float(precision_score(gold, predicted, zero_division=0, **mode))
        scores[f"recall{suffix}"] = float(recall_score(gold, predicted, zero_division=0, **mode))
    scores["accuracy"] = float(accuracy_score(gold, predicted))
    return {name: scores[name] for name in TokenClassificationConfig.METRICS}


def per_type_report(gold: list[list[str]], predicted: list[list[str]],
                    strict: bool = False) -> dict[str, dict[str, float]]:
    """seqeval's per-entity-type report (precision, recall, f1-score, support) plus micro/macro/weighted averages."""
    from seqeval.metrics import classification_report

    mode = _modes()["_strict" if strict else ""]
    report = classification_report(gold, predicted, output_dict=True, zero_division=0, **mode)
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


def tags_from_output(predictions: Any) -> list[list[str]]:
    """The word tags from a token-tagger pyfunc's output (a DataFrame with a ``tags`` column, or a list of dicts)."""
    if isinstance(predictions, pd.DataFrame):
        return [list(t) for t in predictions["tags"]]
    return [list(p["tags"]) for p in predictions]


# --- reading -----------------------------------------------------------------------------------------------------

def _joined(tokens: object) -> str | None:
    """``" ".join(tokens)`` for a list of strings, None for anything else (the contract rejects that row)."""
    if isinstance(tokens, list) and all(isinstance(t, str) for t in tokens):
        return " ".join(tokens)
    return None


def _as_list_or_none(value: object) -> object:
    """A missing field reads as NaN/None; an array from Parquet becomes a list; anything else is left for the
    contract to reject by name."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def refuse_rare_types(tag_lists: Iterable[object], minimum: int) -> None:
    """An inferred entity type mentioned fewer than ``minimum`` times in train is refused in one line. A mention is
    an entity as conlleval counts it: a ``B-X``, or an ``I-X`` that does not continue an X (IOB1 files, whose own
    error names the fix, are counted the same).

    Why: one mistyped tag (``Foo B-XYZ``) became the type XYZ, with B-XYZ and I-XYZ in the registered model's labels
    and only a warning that test had none of it; classification refuses such a stray label the same way."""
    from tuneline.schemas.token_classification import is_string_list, split_tag

    mentions: Counter = Counter()
    for tags in tag_lists:
        if not is_string_list(tags, allow_empty=True):
            continue
        previous = None
        for prefix, kind in map(split_tag, tags):
            if kind is not None and (prefix == "B" or kind != previous):
                mentions[kind] += 1
            previous = kind
    rare = sorted(((kind, n) for kind, n in mentions.items() if n < minimum), key=lambda x: (x[1], x[0]))
    if rare:
        import difflib

        frequent = sorted(kind for kind, n in mentions.items() if n >= minimum)
        shown = ", ".join(f"{excerpt(kind, 42)} ({n} mention{'' if n == 1 else 's'}"
                          + "".join(f"; {close!r}?" for close in difflib.get_close_matches(kind, frequent, 1, 0.75))
                          + ")" for kind, n in rare[:RARE_LABELS_SHOWN])
        more = f" and {len(rare) - RARE_LABELS_SHOWN} more" if len(rare) > RARE_LABELS_SHOWN else ""
        raise LabelSetError(f"entity type(s) {shown}{more} occur fewer than data.min_examples_per_label={minimum} "
                            "times in the training data (B- tags): fix those tags, or list the real tags in "
                            "data.labels (sentences with other tags are then quarantined)",
                            labels=[kind for kind, _ in rare])


def read_tag_names(data: TokenData) -> list[str] | None:
    """``data.tag_names`` as a list (a file: one tag a line, line number = id, or ``ID<TAB>NAME`` on every line;
    trailing blank lines ignored). A file whose first line is a header word (``label``, ``tag``, ...) is refused:
    read as tag 0 it shifted every id by one, and every sentence was quarantined for tags it does not have, the
    file never named; ``0<TAB>O`` lines had been read as the tag names ``0\tO``, ... (dirty-data QA)."""
    names = data.tag_names
    if names is None or isinstance(names, list):
        return [str(name).strip() for name in names] if names else None
    from tuneline.kinds.multilabel_classification import _HEADER_WORDS, _names_by_written_id, names_file_lines

    path = Path(names)
    lines = names_file_lines(path, data.encoding, "tag", "data.tag_names")
    if lines[0].strip().casefold() in _HEADER_WORDS | {"ner_tags", "ner_tag", "id2label"}:
        raise DataLoadError(f"{path}: its first line {lines[0].strip()!r} looks like a header, not the tag of id 0: "
                            "remove that line (data.tag_names: one tag a line, line number = id from 0, e.g. O, "
                            "B-PER, I-PER, ...)")
    return _names_by_written_id(path, lines) or [line.strip() for line in lines]


def _tag_id(tag: object) -> int | None:
    """A tag written as a class id (``3``, ``3.0``, ``"3"``) as that number; None for anything else (a boolean is
    no id: the contract rejects it by rule)."""
    if isinstance(tag, (bool, np.bool_)):
        return None
    if isinstance(tag, (int, np.integer)):
        return int(tag)
    if isinstance(tag, (float, np.floating)) and float(tag).is_integer():
        return int(tag)
    if isinstance(tag, str) and tag.strip().isascii() and tag.strip().isdecimal():
        return int(tag.strip())
    return None


def _out_of_range(tag: object, i: int, count: int) -> str:
    """Why tag id ``i`` (written ``tag``) names no tag of the ``count`` in data.tag_names, and what to do."""
    if i == -100:
        return (f"tag id {tag!r} is what a tokenized export writes on the sub-word pieces and special tokens a loss "
                "ignores: give one tag id per word (the words before tokenization), ids 0-" f"{count - 1}")
    if i < 0:
        return (f"tag id {tag!r} is negative, and data.tag_names numbers its {count} names from 0 (ids 0-{count - 1}): "
                "give every word a tag id in that range")
    return (f"tag id {tag!r} is past the last of the {count} names in data.tag_names (ids 0-{count - 1}): give a name "
            "for every id")


def named_tags(frame: pd.DataFrame, names: list[str]) -> tuple[pd.DataFrame, list[dict]]:
    """``frame`` with each tag written as a class id replaced by ``names[id]`` (``data.tag_names``), and one
    quarantine record per sentence holding an id past the last name (which would otherwise reach the contract as
    "tags must be a list of strings", saying nothing of the id) or a negative one (Python's ``names[-1]`` had made
    ``-1`` the last name, an entity tag, with no word; ``-100``, what a tokenized export writes on the sub-word
    pieces and special tokens a loss ignores, had crashed). Tags written as names are left as they are."""
    tags, malformed, keep = [], [], []
    for row, sentence in zip(frame["source_row"], frame["tags"]):
        if not isinstance(sentence, list):
            tags.append(sentence)
            keep.append(True)
            continue
        ids = [_tag_id(tag) for tag in sentence]
        past = [(position, tag, i) for position, (tag, i) in enumerate(zip(sentence, ids), 1)
                if i is not None and not 0 <= i < len(names)]
        if past:
            position, tag, i = past[0]
            malformed.append({"source_row": int(row), "rule": "tag_id_in_range",
                              "value": json.dumps(sentence, default=str)[:500],
                              "detail": f"token {position}: {_out_of_range(tag, i, len(names))}"})
            keep.append(False)
            continue
        tags.append([names[i] if i is not None else tag for tag, i in zip(sentence, ids)])
        keep.append(True)
    kept = frame[np.array(keep, dtype=bool)].reset_index(drop=True) if malformed else frame.reset_index(drop=True)
    return kept.assign(tags=pd.Series(tags, index=kept.index, dtype=object)), malformed


def read_token_file(path: Path, fmt: str, data: TokenData) -> tuple[pd.DataFrame, list[dict], int]:
    """One NER file → the sentence frame (tokens, tags, text, provenance), unusable records, records seen."""
    read = read_token_records(path, fmt, data)
    return read.frame, read.malformed, read.records_seen


def _span_export(path: Path, field: str, data: TokenData) -> DataLoadError:
    """Entities as character offsets (Doccano's ``label``/``entities``, Label Studio's ``annotations``, Prodigy's
    ``spans`` and token objects): "has no field 'tokens'; set data.tokens_column" sent the user to a setting that
    cannot read them (dirty-data QA)."""
    return DataLoadError(
        f"{path} holds character-offset annotations (its {field!r}, as Doccano, Label Studio and Prodigy export "
        "entities), not token and tag lists: convert each record to tokens and one BIO tag per token (e.g. spaCy's "
        f"offsets_to_biluo_tags, then BILUO to BIO), as JSON Lines with {data.tokens_column!r} and "
        f"{data.tags_column!r} fields or as a CoNLL file")


def _token_lines(data: TokenData | None, source_lines: dict[str, np.ndarray] | None
                 ) -> Callable[[str, object], int | None]:
    """The line of a record's first token, for files read as CoNLL (a token a line, a sentence's tokens on
    consecutive lines: :func:`tuneline.readers.read_conll`); None for other files, whose tokens share a line."""
    def first_line(file: str, row: object) -> int | None:
        known = (source_lines or {}).get(str(file))
        if data is None or known is None or not isinstance(row, (int, np.integer)) or not 1 <= row <= len(known):
            return None
        try:
            conll = detect_format(Path(str(file)), data.format) == "conll"
        except DataLoadError:
            return None
        return int(known[row - 1]) if conll and known[row - 1] > 0 else None
    return first_line


def read_token_records(path: Path, fmt: str, data: TokenData) -> ReadRecords:
    """One NER file as the kind's :class:`ReadRecords` (a sentence's line: that of its first token)."""
    path = Path(path)
    if fmt == "conll":
        result = read_conll(path, data.conll_tag_column, encoding=data.encoding,
                            on_decode_error=data.on_decode_error)
        frame = result.frame[["tokens", "tags", "source_row"]]
    elif fmt in ("jsonl", "parquet"):
        result = read_table(path, fmt, encoding=data.encoding, on_decode_error=data.on_decode_error)
        raw = result.frame
        # keys that differ from the configured ones only in case or surrounding spaces ("Tokens", "Tags") find them,
        # as a table's header does for the other kinds
        wanted = matched_columns(raw, {"tokens": data.tokens_column, "tags": data.tags_column})
        tokens_column, tags_column = wanted["tokens"], wanted["tags"]
        if tags_column not in raw.columns and data.tags_column == "tags" and "ner_tags" in raw.columns:
            tags_column = "ner_tags"  # Hugging Face's NER datasets (conll2003, wnut_17, wikiann) name it so
            from tuneline.common import task_logger  # prefect: imported only where a run logs

            task_logger().info("%s: no 'tags' field; reading the tags from 'ner_tags' (data.tags_column)", path)
        for column in (tokens_column, tags_column):  # Prodigy's token and span objects: {"text", "start", ...}
            first = next((v for v in raw.get(column, []) if isinstance(v, (list, tuple)) and len(v)), None)
            if first is not None and isinstance(first[0], dict):
                raise _span_export(path, column, data)
        missing = [c for c in (tokens_column, tags_column) if c not in raw.columns]
        if len(raw) and missing:
            found = [c for c in raw.columns if c not in ("source_row", "source_line")]
            spans = next((c for c in ("label", "labels", "entities", "spans", "annotations") if c in raw.columns),
                         None)
            if tokens_column not in raw.columns and spans is not None and ("text" in raw.columns
                                                                          or "data" in raw.columns):
                raise _span_export(path, spans, data)  # no column setting fixes it; the message said to set one
            raise DataLoadError(f"{path} has no field {missing[0]!r} in any record (its fields: {found}); "
                                "set data.tokens_column / data.tags_column to the right names")
        frame = pd.DataFrame({
            "tokens": pd.Series([_as_list_or_none(v) for v in raw.get(tokens_column, [])], dtype=object),
            "tags": pd.Series([_as_list_or_none(v) for v in raw.get(tags_column, [])], dtype=object),
            "source_row": raw["source_row"] if len(raw) else pd.Series([], dtype="int64")})
    else:
        raise DataLoadError(f"format {fmt!r} is not a token-classification format; use conll (.conll/.txt column "
                            "files), jsonl or parquet (token and tag lists), via data.format")
    malformed = list(result.malformed)
    if (names := read_tag_names(data)) is not None:
        frame, out_of_range = named_tags(frame, names)
        malformed += out_of_range
    # Built as an object column: pandas would infer a string dtype and turn the None of unusable rows into NaN.
    text = pd.Series([_joined(tokens) for tokens in frame["tokens"]], index=frame.index, dtype=object)
    frame = frame.assign(text=text, source_file=str(path))
    frame["source_row"] = frame["source_row"].astype("int64")
    return ReadRecords(frame=frame[SENTENCE_COLUMNS].reset_index(drop=True), malformed=malformed,
                       records_seen=result.records_seen, source_lines=result.record_lines())


def _bare_tags_hint(sample: list[Any]) -> str:
    """Why tags without a B-/I- prefix gave no entity: few distinct ones (``PER``, ``LOC``, ``O``) are the IO scheme;
    many (``rejects``, ``German``, ...) are words, the token and tag columns swapped."""
    bare = [tag for tags in sample if isinstance(tags, (list, tuple, np.ndarray)) for tag in tags
            if isinstance(tag, str) and tag.strip() and tag.strip() != "O"]
    if not bare:
        return ""
    distinct = sorted(set(bare))
    if len(distinct) > 20:
        return (f": the tag column holds {len(distinct)} different words ({', '.join(map(repr, distinct[:4]))}, ...), "
                "not tags: are the token and tag columns swapped? (data.conll_tag_column, data.tags_column)")
    return (f": the tags have no B-/I- prefix ({', '.join(map(repr, distinct[:6]))}: the IO scheme); write the first "
            "word of each entity as B-TYPE and the words after it as I-TYPE (IOB2)")


#: What to do about tags written as class ids: data.tag_names maps them (data.labels, which the error suggested, is
#: the set of tag names and maps nothing: every sentence was then quarantined as "tags must be strings").
NUMBERED_TAGS_HINT = (": the tags are numbers (class ids, as Hugging Face datasets export ner_tags: [3, 0, 7]); set "
                      "data.tag_names to the tags in id order (the dataset's features['ner_tags'].feature.names, "
                      "e.g. [O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC, B-MISC, I-MISC] for CoNLL-2003), or write "
                      "the tags as names")


def _tags_are_numbers(sample: list[Any]) -> bool:
    """Whether most tags of ``sample`` (tag lists) are numbers: most, not any, as words read as tags (a tag-first
    file) hold a number now and then ('1996')."""
    seen = [tag for tags in sample if isinstance(tags, (list, tuple, np.ndarray)) for tag in tags]
    return bool(seen) and sum(isinstance(tag, (int, float)) and not isinstance(tag, (bool, np.bool_))
                              or (isinstance(tag, str) and tag.strip().lstrip("-").isdigit())
                              for tag in seen) > len(seen) / 2


class TokenClassificationKind(TaskKind):
    name = "token_classification"
    agreement_metric = "f1"  # micro: a batch of some classes only moves it no more than its rows do
    agreement_name = "F1 per sentence"  # what agreement_scorer computes: see there
    config_model = TokenClassificationConfig
    formats = ("conll", "jsonl", "parquet")
    head = "AutoModelForTokenClassification"
    peft_task_type = "TOKEN_CLS"
    pyfunc_file = "token_tagger.py"
    input_example = ["Angela Merkel visited Paris .", "John Smith works for Acme Corp in Berlin since 2010 ."]
    raw_text_column = "text"
    lineage_columns = ("text", "tags")
    target_column = "tags"
    serving_truncates = False  # the pyfunc tags long sentences in overlapping windows
    labels_per_word = True
    label_noun = "entity type"
    labels_per_row_any = True  # for the label-shift check: a sentence holds any number of entity types
    #: a batch of 200 CoNLL-2003 sentences is a few documents, whose entity mix differs from the corpus' by nature
    #: (benchmarks/drift_calibration.py); a type whose tags were lost, or all tags, move a share by a large effect
    shift_min_effect = 0.8

    # --- data -------------------------------------------------------------------------------------------------
    def read(self, path: Path, fmt: str, data: TokenData) -> ReadRecords:
        return read_token_records(path, fmt, data)

    def prepare(self, frames: dict[str, pd.DataFrame], data: TokenData, quiet: bool = False,
                source: str = "") -> dict[str, pd.DataFrame]:
        """With ``data.bioes_to_iob2``, IOBES/BILOU tags are rewritten as IOB2 first; tags written several ways become
        one spelling (``b-per`` → ``B-PER``, logged); with ``data.iob1_to_iob2``, IOB1 tags are rewritten as IOB2
        (non-list rows are left for the contract)."""
        from tuneline.schemas.token_classification import iob1_to_iob2, is_string_list

        if data.bioes_to_iob2:
            from tuneline.schemas.token_classification import bioes_to_iob2

            frames = {role: frame.assign(tags=frame["tags"].map(lambda t: bioes_to_iob2(t) if is_string_list(t) else t))
                      if "tags" in frame.columns else frame for role, frame in frames.items()}
        if data.merge_label_spellings:
            from tuneline.common import task_logger
            from tuneline.kinds import label_spellings

            mapping = label_spellings.tag_spelling_map(frames, "tags", data.labels, LABEL_SOURCE_ROLES)
            if mapping and not quiet:
                task_logger().warning("tags read in their IOB2 spelling%s: %s (data.merge_label_spellings: false "
                                      "keeps them as written)", source,
                                      label_spellings.describe(mapping, frames, "tags", unit="tokens"))
            if mapping:
                frames = {role: frame.assign(tags=label_spellings.apply_spelling_map(frame["tags"], mapping,
                                                                                    sequences=True))
                          if "tags" in frame.columns else frame for role, frame in frames.items()}
        if not data.iob1_to_iob2:
            return frames
        return {role: frame.assign(tags=frame["tags"].map(lambda t: iob1_to_iob2(t) if is_string_list(t) else t))
                for role, frame in frames.items()}

    def label_set(self, frames: dict[str, pd.DataFrame], data: TokenData,
                  primary_metric: str | None = None) -> list[str]:
        """The configured tags, else 'O' plus B-/I- for every entity type in train; frozen for the run."""
        from tuneline.schemas.token_classification import labels_from_tags, split_tag

        source = next((frames[r] for r in LABEL_SOURCE_ROLES if r in frames), None)
        sample = list(source["tags"])[:200] if source is not None else []
        if data.labels:
            if _tags_are_numbers(sample):  # every sentence quarantined as "tags must be strings" said no more
                raise LabelSetError(f"data.labels lists tag names, and the training data has none{NUMBERED_TAGS_HINT}")
            labels = list(dict.fromkeys(str(label) for label in data.labels))
            bad = [label for label in labels if split_tag(label)[0] == "?"]
            if bad or "O" not in labels:
                raise LabelSetError(f"data.labels must be IOB2 tags including 'O' (like O, B-PER, I-PER); "
                                    f"{'got ' + str(bad) if bad else 'O is missing'}")
            return labels
        labels = labels_from_tags(source["tags"]) if source is not None else ["O"]
        if len(labels) < 3:
            if _tags_are_numbers(sample):  # "or set data.labels" after it led nowhere: labels are no id map
                raise LabelSetError(f"found no entity tag (B-X/I-X) in the training data{NUMBERED_TAGS_HINT}")
            hint = ""
            if sample and sum(isinstance(t, str) for t in sample) > len(sample) / 2:
                first = next(i for i, tags in enumerate(sample) if isinstance(tags, str))
                where = (f" (first: {source['source_file'].iloc[first]} record {source['source_row'].iloc[first]})"
                         if {"source_file", "source_row"} <= set(source.columns) else "")  # dirty-data QA: no file
                hint = (f": the tags are strings (like 'B-ORG O O'), not lists{where}; write tokens and tags as JSON "
                        'lists (["EU", "rejects"], ["B-ORG", "O"]), or the file as CoNLL')
            if not hint:
                hint = _bare_tags_hint(sample)
            raise LabelSetError(f"found no entity tag (B-X/I-X) in the training data{hint}; check data.tags_column "
                                f"/ data.conll_tag_column, or set data.labels")
        refuse_rare_types(source["tags"], data.min_examples_per_label)
        return labels

    def schema(self, labels: list[str], train_keys: list[str] | None, data: TokenData):
        from tuneline.schemas.token_classification import token_schema

        return token_schema(labels, train_keys)

    def label_places(self, label: str, frame: pd.DataFrame, data: TokenData | None,
                     source_lines: dict[str, np.ndarray] | None, limit: int) -> list[tuple[str, str]]:
        """(file, ``line L``) of the first ``limit`` tokens tagged with entity type ``label``, for a label-set error
        (:func:`tuneline.tasks.validate.first_rows_of`): in a CoNLL file the token's own line, elsewhere its
        sentence's (``row N`` where no line is known). A rare ``B-PERS`` among 200,000 lines was found by grep."""
        from tuneline.schemas.token_classification import split_tag

        token_lines = _token_lines(data, source_lines)
        known_lines = source_lines or {}
        places: list[tuple[str, str]] = []
        for file, row, tags in zip(frame["source_file"], frame["source_row"], frame["tags"]):
            if not isinstance(tags, list):
                continue
            for index, tag in enumerate(tags):
                if not isinstance(tag, str) or split_tag(tag)[1] != label:
                    continue
                first = token_lines(str(file), row)
                if first is not None:
                    places.append((str(file), f"line {first + index}"))
                else:
                    lines = known_lines.get(str(file))
                    line = int(lines[row - 1]) if lines is not None and 1 <= row <= len(lines) else 0
                    places.append((str(file), f"line {line}" if line > 0 else f"row {row}"))
                if len(places) >= limit:
                    return places
        return places

    def describe_failures(self, quarantine: pd.DataFrame, frames: dict[str, pd.DataFrame],
                          labels: list[str], names: dict[str, str] | None = None, **context: Any) -> pd.DataFrame:
        """Each quarantined sentence's ``detail``: the 1-based token position and what is wrong there, and, in a
        CoNLL file (``context``: ``data``, ``source_lines``), the token's own line."""
        from tuneline.schemas.token_classification import first_problem

        if quarantine.empty:
            return quarantine
        lookup = {(role, f, r): (tokens, tags) for role, frame in frames.items()
                  for f, r, tokens, tags in zip(frame["source_file"], frame["source_row"], frame["tokens"],
                                                frame["tags"])}
        token_lines = _token_lines(context.get("data"), context.get("source_lines"))
        details = [first_problem(rule, *lookup.get((split, f, r), (None, None)), labels, names,
                                 token_lines(f, r))
                   for split, f, r, rule in zip(quarantine["split"], quarantine["source_file"],
                                                quarantine["source_row"], quarantine["rule"])]
        return quarantine.assign(detail=details)

    def label_distribution(self, frame: pd.DataFrame) -> dict[str, int]:
        """Tags per token. Only lists of string tags count: the landed-batch check counts a batch before the contract
        has quarantined its sentences without tags (None, a string, ...), and one such sentence must not make the
        whole count fail."""
        from collections import Counter

        from tuneline.schemas.token_classification import is_string_list

        counts = Counter(tag for tags in frame["tags"] if is_string_list(tags, allow_empty=True) for tag in tags)
        return {str(k): int(v) for k, v in sorted(counts.items())}

    def shift_distribution(self, frame: pd.DataFrame) -> dict[str, int]:
        """Sentences holding each entity type, not tags: a sentence's tags are not independent draws (an entity's
        ``I-`` tags follow its ``B-``, a sports table is all ``ORG`` and ``LOC``), so a chi-square over tag counts
        flagged 81% of batches of 200 sentences drawn at random from CoNLL-2003's own training file; per sentence, 4%
        (``benchmarks/drift_calibration.py``). Sentences without an entity count under ``O``: a batch whose tags an
        exporter lost (all ``O``) is then a shift of that share (19% to 100% on CoNLL-2003), not an empty count."""
        from tuneline.schemas.token_classification import is_string_list

        counts: dict[str, int] = {}
        for tags in frame["tags"]:
            if is_string_list(tags, allow_empty=True):
                for kind in {self.label_class(tag) for tag in tags} - {None} or {"O"}:
                    counts[kind] = counts.get(kind, 0) + 1
        return dict(sorted(counts.items()))

    def label_class(self, label: str) -> str | None:
        """``B-PER``/``I-PER`` → ``PER``; ``O`` → None (no entity)."""
        return label.split("-", 1)[1] if "-" in label else None if label == "O" else label

    def labels_of_classes(self, classes: list[str]) -> list[str]:
        return [tag for entity in classes for tag in (f"B-{entity}", f"I-{entity}")]

    def labels_no_head_can_learn(self, unseen: list[str], data: TokenData) -> str | None:
        """IOB2 is the one scheme of the head, the metrics (seqeval) and the label set: an IOBES/BILOU batch (``S-LOC``,
        ``E-PER``) grown into the head made 17 labels that seqeval refused at every later evaluation, even after the
        batch was dropped (loop QA), and a tag-first CoNLL batch read with the default column offered its 400 words
        as "unseen labels" to grow. Either is the batch's layout, told as such."""
        from tuneline.schemas.token_classification import _BIOES_PREFIX, split_tag

        bioes = [tag for tag in unseen if _BIOES_PREFIX.match(tag)]
        if bioes:
            shown = ", ".join(map(repr, bioes[:4])) + (f" and {len(bioes) - 4} more" if len(bioes) > 4 else "")
            if data.bioes_to_iob2:  # read as IOB2 but these: an E-/L- that ends no entity (bioes_to_iob2)
                return (f"its tags {shown} end no entity (an E-/L- tag ends one that a B-/I- tag of its type began, "
                        "and data.bioes_to_iob2 reads only such ones as I-): fix the tag before each")
            return (f"its tags {shown} are IOBES/BILOU tags (S-, E-, U-, L-), and the model's are IOB2 (B-, I-, O); "
                    "set data.bioes_to_iob2: true to read them as IOB2")
        words = [tag for tag in unseen if split_tag(tag)[0] == "?"]
        if not words:
            return None
        shown = ", ".join(map(repr, words[:5])) + (f" and {len(words) - 5} more" if len(words) > 5 else "")
        return (f"{len(words)} of its tags are no IOB2 tags ({shown}; a tag is O, B-TYPE or I-TYPE): if these are "
                f"words, the tags are in another column than the one read; set data.conll_tag_column to the tags' "
                f"column (it is {data.conll_tag_column}; a tag-first CoNLL file has them in column 0), or "
                "data.tags_column for a table")

    # --- model ------------------------------------------------------------------------------------------------
    def encoder(self, tokenizer: Any, max_length: int, label2id: dict[str, int], config: TunelineConfig,
                model_inputs: dict[str, Any]):
        return partial(encode_token_batch, tokenizer=tokenizer, max_length=max_length, label2id=label2id,
                       label_all_subwords=config.tokenize.label_all_subwords,
                       case_types=bool(model_inputs.get("case_types"))), ["tokens", "tags"]

    def encoder_settings(self, config: TunelineConfig) -> dict[str, Any]:
        return {"label_all_subwords": config.tokenize.label_all_subwords, "case_types": config.tokenize.case_types}

    def train_augmentation(self, config: TunelineConfig, model_inputs: dict[str, Any]):
        """With word casing on: ``tokenize.uncased_share`` of the training sentences without it (:func:`drop_casing`)."""
        share = config.tokenize.uncased_share
        if not model_inputs.get("case_types") or share <= 0:
            return None
        seed = config.train.seed
        return partial(drop_casing, share=share, seed=seed), {"uncased_share": share, "seed": seed}

    def model_inputs(self, config: TunelineConfig, tokenizer: Any) -> dict[str, Any]:
        """``{"case_types": True}`` when ``tokenize.case_types`` is on, or ``auto`` and the tokenizer is uncased and
        the base model a BERT-family encoder (its config has ``type_vocab_size``)."""
        from transformers import AutoConfig

        from tuneline.runtime import resolve_base_model

        wanted = config.tokenize.case_types
        if wanted is False:
            return {}
        try:
            base = AutoConfig.from_pretrained(resolve_base_model(config.model.base),
                                              trust_remote_code=config.model.trust_remote_code)
        except (OSError, ValueError):
            return {}  # the model build says what is wrong with model.base
        has_types = bool(getattr(base, "type_vocab_size", 0))
        if wanted is True and not has_types:
            raise UserError(f"tokenize.case_types=true needs an encoder with token type embeddings (BERT family); "
                            f"{config.model.base} ({base.model_type}) has none: set tokenize.case_types=false")
        if wanted == "auto":
            wanted = has_types and tokenizer_lowercases(tokenizer)
        return {"case_types": True} if wanted else {}

    def adapt_model(self, model: Any, inputs: dict[str, Any]) -> list[str]:
        """Grow the token types for word casing; their table trains under every strategy (LoRA, frozen
        embeddings): new types that never trained would tell the model nothing."""
        if not inputs.get("case_types"):
            return []
        grow_case_types(model)
        return ["token_type_embeddings"]

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    # --- metrics ----------------------------------------------------------------------------------------------
    def score(self, gold: list[list[str]], predicted: list[list[str]], labels: list[str]) -> dict[str, float]:
        return seqeval_scores([list(g) for g in gold], [list(p) for p in predicted])

    def per_class_scores(self, gold: list[list[str]], predicted: list[list[str]], labels: list[str]
                         ) -> dict[str, float]:
        """conlleval F1 of every entity type that occurs in ``gold``."""
        report = per_type_report([list(g) for g in gold], [list(p) for p in predicted])
        return {name: values["f1-score"] for name, values in report.items()
                if not name.endswith(" avg") and values.get("support", 0) > 0}

    def agreement_scorer(self, gold: list[list[str]], predicted: list[list[str]], labels: list[str]):
        """The mean over sentences of each sentence's entity F1, a sentence without entities in the labels and in
        the answers counting 1. Micro F1 is 0 on a batch whose labels hold no entity, however right: a clean batch
        of 150 sentences without entities (a fifth of CoNLL-2003's are so) was rejected as wrong labels with a
        champion that found no entity in 130 of them. Per sentence, those agree; and labels whose entities were
        lost (all ``O`` on sentences that have some) still disagree wherever the champion finds one."""
        from seqeval.metrics.sequence_labeling import get_entities

        scores = []
        for g, p in zip(gold, predicted):
            wanted, found = set(get_entities(list(g))), set(get_entities(list(p)))
            scores.append(1.0 if not wanted and not found else 2 * len(wanted & found) / (len(wanted) + len(found)))
        per_sentence = np.array(scores, dtype=float)

        def score(indices: Any) -> float:
            return float(per_sentence[indices].mean()) if len(per_sentence) else 0.0

        return score

    def shuffled_gold(self, gold: list[list[str]], rng: Any) -> list[list[str]]:
        """Each sentence's tags rotated by a random offset (1 to its length - 1): sentences differ in length, so
        tags cannot move between them, and a rotation keeps each sentence's tags and entity lengths while taking
        them off their words, as a file whose tag column slipped does. A one-word sentence keeps its tag."""
        rotated = []
        for tags in gold:
            tags = list(tags)
            step = int(rng.integers(1, len(tags))) if len(tags) > 1 else 0
            rotated.append(tags[step:] + tags[:step])
        return rotated

    def decode_logits(self, logits: Any, label_ids: Any, labels: list[str]):
        """Tags at the labelled (first-subword) positions; with ``label_all_subwords`` the validation metric then
        counts subword positions (the test evaluation is always per original word)."""
        return decode_label_ids(np.asarray(logits).argmax(axis=-1), np.asarray(label_ids), labels)

    def subset_score(self, gold: list[list[str]], predicted: list[list[str]], labels: list[str], metric: str):
        """conlleval's micro precision/recall/F1 from per-sentence entity counts (seqeval's chunking), so a
        resample costs three sums instead of a seqeval call; other metrics fall back to :meth:`score`."""
        if metric not in ("f1", "precision", "recall"):
            return super().subset_score(gold, predicted, labels, metric)
        from seqeval.metrics.sequence_labeling import get_entities

        counts = np.array([(len(set(get_entities(list(g))) & set(get_entities(list(p)))), len(get_entities(list(p))),
                            len(get_entities(list(g)))) for g, p in zip(gold, predicted)], dtype=np.int64)

        def score(indices: Any) -> float:
            hits, guessed, present = counts[indices].sum(axis=0) if len(counts) else (0, 0, 0)
            precision = hits / guessed if guessed else 0.0
            recall = hits / present if present else 0.0
            if metric == "precision":
                return float(precision)
            if metric == "recall":
                return float(recall)
            return float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0

        return score

    # --- evaluation and serving ---------------------------------------------------------------------------------
    def gold(self, frame: pd.DataFrame) -> list[list[str]]:
        return [list(t) for t in frame["tags"]]

    def model_input(self, frame: pd.DataFrame) -> Any:
        return pd.DataFrame({"tokens": [list(t) for t in frame["tokens"]]})

    def predictions_from_output(self, output: Any) -> tuple[list[Any], list[Any] | None]:
        return tags_from_output(output), None

    def shuffled(self, predictions: list[Any], rng: np.random.Generator) -> list[Any]:
        """The predicted tags dealt to the words in a random order, each sentence keeping its length (sentences of
        other lengths cannot trade their tag lists)."""
        flat = [tag for tags in predictions for tag in tags]
        order, out, start = rng.permutation(len(flat)), [], 0
        for tags in predictions:
            out.append([flat[i] for i in order[start:start + len(tags)]])
            start += len(tags)
        return out

    def baselines(self, splits: Any, config: TunelineConfig) -> list[Evaluation]:
        """Tag every word 'O' (the majority tag of any NER corpus): high word accuracy, entity F1 0."""
        predicted = [["O"] * len(tags) for tags in splits.test["tags"]]
        return [Evaluation("all_o", self.score(self.gold(splits.test), predicted, splits.labels), predicted)]

    def report_artifacts(self, fine_tuned: Evaluation, test: pd.DataFrame, labels: list[str],
                         folder: Path) -> dict[str, float]:
        """``per_type_report.json`` (conlleval) and ``per_type_report_strict.json``, ``tag_confusion.csv/.png``
        (gold word tag × predicted word tag) and ``test_predictions.jsonl``; per-type F1 is logged."""
        from sklearn.metrics import confusion_matrix

        from tuneline.reporting import plot_confusion_matrix

        gold = self.gold(test)
        report = per_type_report(gold, fine_tuned.predictions)
        (folder / "per_type_report.json").write_text(json.dumps(report, indent=2))
        strict = per_type_report(gold, fine_tuned.predictions, strict=True)
        (folder / "per_type_report_strict.json").write_text(json.dumps(strict, indent=2))
        flat_gold = [t for tags in gold for t in tags]
        flat_pred = [t for tags in fine_tuned.predictions for t in tags]
        counts = confusion_matrix(flat_gold, flat_pred, labels=labels)
        pd.DataFrame(counts, index=pd.Index(labels, name="gold"), columns=labels).to_csv(folder / "tag_confusion.csv")
        plot_confusion_matrix(flat_gold, flat_pred, labels, folder / "tag_confusion.png",
                              title="Word tag confusion (test)")
        with (folder / "test_predictions.jsonl").open("w", encoding="utf-8") as handle:
            for (source_file, source_row, tokens), tags, predicted in zip(
                    test[["source_file", "source_row", "tokens"]].itertuples(index=False), gold,
                    fine_tuned.predictions):
                handle.write(json.dumps({"source_file": source_file, "source_row": int(source_row),
                                         "tokens": list(tokens), "tags": tags, "predicted": predicted,
                                         "correct": tags == predicted}, ensure_ascii=False) + "\n")
        return {f"{name}.f1": values["f1-score"] for name, values in report.items() if not name.endswith(" avg")}
