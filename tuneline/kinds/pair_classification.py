"""Sentence-pair classification: paraphrase detection, duplicate questions, NLI, query-document relevance.

A pair kind is a text classifier whose input is two texts, so it subclasses :class:`ClassificationKind` and changes
only what the second text touches:

* the frame has ``text``, ``text_pair``, ``label`` and a ``key`` (both stripped texts joined by a separator that no
  text can contain; sorted first when ``data.symmetric``, so that for a paraphrase corpus "A, B" and "B, A" are the
  same example for splitting, duplicates and leakage);
* the encoder builds ``[CLS] text [SEP] text_pair [SEP]`` (``token_type_ids`` 0 then 1) and truncates per
  ``tokenize.truncation``;
* the metrics add ``f1_positive`` (GLUE reports MRPC and QQP as the F1 of the positive class plus accuracy): the F1
  of the positive label, which :meth:`PairClassificationKind.label_set` puts at ``labels[1]``. The positive label is
  ``data.positive_label``, else one the names leave no doubt about (``1`` of ``0``/``1``, ``yes`` of ``yes``/``no``,
  ``duplicate`` of ``not_duplicate``/``duplicate``: :func:`default_positive`); it is never guessed from the sorted
  order, since ``labels[1]`` of ``duplicate``/``not_duplicate`` is the negative class. Where there is none (two
  other names, or three or more labels as in NLI), ``f1_positive`` is not computed at all: not in the metrics, the
  reports, the tags or the baselines (:func:`scored_positive`), and the run says so once; a gate on ``f1_positive``
  then stops the run, asking for ``data.positive_label`` or another ``gate.primary_metric``;
* with ``data.symmetric: false`` a pair and its reversed copy stay two examples (a direction can matter: NLI), but
  validation warns how many there are and how many straddle train and validation/test
  (:func:`reversed_pairs_note`), since in a paraphrase corpus they are one example seen on both sides;
* the zero-shot baseline is the cosine similarity of the two texts' base-model embeddings, thresholded at the cut
  that is best on the training split for the gate's metric (two labels only).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from tuneline.config import TokenizeConfig, TunelineConfig, label_text
from tuneline.kinds.base import Evaluation, ReadRecords
from tuneline.kinds.classification import (
    ClassificationData,
    ClassificationKind,
    LabelSetError,
    encode_texts,
    label_ids,
    normalized_labels,
    per_class_f1,
    present_labels,
)

#: Joins the two texts of a key. Python treats U+001F as whitespace, so ``str.strip`` removes it from a text's ends
#: and :func:`pair_key` turns any inside a text into a space: the separator can then only come from the join.
KEY_SEPARATOR = "\x1f"
PAIR_COLUMNS = ["text", "text_pair", "label", "key", "source_file", "source_row"]
#: Train pairs embedded to fit the zero-shot threshold: one scalar is fitted, and 2,000 pairs pin it down to well
#: under a point of the metric while keeping the baseline cheap on big corpora (QQP has 364k train pairs).
ZERO_SHOT_FIT_ROWS = 2000


class PairData(ClassificationData):
    text_pair_column: str = Field("text_pair", description="The column holding the second text of each pair.")
    symmetric: bool = Field(
        False, description="The relation does not depend on order (paraphrase, duplicate question): 'A, B' and "
                           "'B, A' are the same example for splitting, duplicate and leakage checks. false for NLI "
                           "and query-document relevance.")
    positive_label: str | None = Field(
        None, description="The class whose F1 is reported as f1_positive (and that the zero-shot baseline predicts "
                          "above its threshold). Default, for two labels only: the positive one of 0/1, false/true, "
                          "no/yes, negative/positive, or the label the other negates (duplicate of not_duplicate, "
                          "match of no_match); otherwise f1_positive is not reported, and it must be set while "
                          "gate.primary_metric is f1_positive.")

    @field_validator("positive_label", mode="before")
    @classmethod
    def _positive_label_as_text(cls, value: Any) -> Any:
        """``positive_label: 1`` (YAML, or ``--set data.positive_label=1``) is the label "1", as ``data.labels: [0, 1]``
        is; an unquoted yes/no is the error that says to quote it."""
        return label_text(value)

    def column_keys(self) -> dict[str, str]:
        return {"text_column": self.text_column, "text_pair_column": self.text_pair_column,
                "label_column": self.label_column}


class PairTokenizeConfig(TokenizeConfig):
    truncation: Literal["longest_first", "only_first", "only_second"] = Field(
        "longest_first", description="Which text loses tokens when a pair exceeds max_length: longest_first cuts "
                                     "the longer one token by token; only_second keeps a short query whole and cuts "
                                     "the document. A row whose kept text alone is too long falls back to "
                                     "longest_first.")


class PairClassificationConfig(TunelineConfig):
    """Pair classification's config.

    The default gate metric is ``f1_positive``: the usual pair corpora are skewed towards one class (MRPC is 68%
    paraphrases, QQP 63% non-duplicates), so accuracy rewards predicting the majority (0.68 on MRPC for free) and
    GLUE reports MRPC and QQP as the F1 of the positive class for that reason. For balanced or multi-class pair tasks
    (NLI) set ``gate.primary_metric: macro_f1`` or ``accuracy``: a label set with no positive class (see
    :func:`default_positive`) and no ``data.positive_label`` reports no ``f1_positive`` and stops a run whose gate is
    ``f1_positive``. The primary metric also picks the best checkpoint,
    and an all-positive model already has a high positive F1 (0.81 on MRPC dev): compare a run with the majority
    baseline in its report, and prefer ``macro_f1`` when training is short enough to end near that degenerate model.
    """

    METRICS: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1", "f1_positive")
    DEFAULT_METRIC: ClassVar[str] = "f1_positive"

    task: Literal["pair_classification"] = "pair_classification"
    data: PairData
    tokenize: PairTokenizeConfig = Field(default_factory=PairTokenizeConfig)


def _clean(text: object) -> str | None:
    """A text as it takes part in a key: stripped, with the key separator turned into a space; None when unusable
    (not a string, or blank: the contract rejects those rows on their own)."""
    if not isinstance(text, str):
        return None
    text = text.replace(KEY_SEPARATOR, " ").strip()
    return text or None


def pair_key(text: object, text_pair: object, symmetric: bool) -> str | None:
    """What identifies a pair: its two stripped texts, in order, or sorted when the relation is symmetric (sorted
    as the leakage rule compares them, case and spacing folded: sorted as written, ``ABC`` and ``abc`` could take
    opposite places, and a test pair that is a train pair in capitals was not caught)."""
    from tuneline.schemas.common import leak_form

    parts = (_clean(text), _clean(text_pair))
    if parts[0] is None or parts[1] is None:
        return None
    return KEY_SEPARATOR.join(sorted(parts, key=lambda part: (leak_form(part), part)) if symmetric else parts)


def pair_keys(texts: pd.Series, pairs: pd.Series, symmetric: bool) -> pd.Series:
    """:func:`pair_key` of every row (an object column: pandas would turn the None of unusable rows into NaN)."""
    return pd.Series([pair_key(a, b, symmetric) for a, b in zip(texts, pairs)], index=texts.index, dtype=object)


def _split_codes(frames: dict[str, pd.DataFrame], split: Any) -> dict[str, np.ndarray]:
    """The split each row of ``frames`` will take (0 train, 1 validation, 2 test), as
    :func:`tuneline.tasks.split.split_data` assigns it: a role's own file keeps its role; ``all``, or ``train`` where
    a validation or test file is missing, is carved by the salted key hash with near twins kept together (done here
    without :func:`~tuneline.tasks.split.keep_near_twins_together`'s log line, which the real split logs)."""
    from tuneline.tasks.split import SPLITS, near_twin_groups, split_codes

    carved = ("validation", "test") if "all" in frames else tuple(r for r in ("validation", "test") if r not in frames)
    out: dict[str, np.ndarray] = {}
    for role, frame in frames.items():
        if role in ("validation", "test") or (role == "train" and not carved):
            out[role] = np.full(len(frame), SPLITS.index(role), dtype=np.int8)
            continue
        keys = frame["key"].reset_index(drop=True)
        codes = split_codes(keys, split)
        codes[~np.isin(codes, [SPLITS.index(r) for r in carved])] = 0
        if len(codes):
            groups = near_twin_groups(keys)
            least = np.full(int(groups.max(initial=-1)) + 1, len(SPLITS), dtype=np.int8)
            np.minimum.at(least, groups[groups >= 0], codes[groups >= 0])
            codes[groups >= 0] = least[groups[groups >= 0]]
        out[role] = codes
    return out


def reversed_pairs_note(frames: dict[str, pd.DataFrame], data: PairData, labels: list[str]) -> str | None:
    """The warning for pairs that also occur reversed, None when there are none or ``data.symmetric`` makes them one.

    With ``symmetric: false`` (A, B) and (B, A) are two examples, which is right where the direction matters (NLI)
    and quietly wrong for a paraphrase corpus: a QQP-style file of 300 pairs and 60 swapped copies was read as 360
    examples, with copies in train and test, and nothing said. Counted on the rows the contract can keep (both texts
    usable, a known label), case and spacing folded as the leakage rule folds them; a pair counts once however many
    copies of each order there are."""
    from tuneline.schemas.common import leak_form

    if data.symmetric:
        return None
    known, orders = set(labels), {}
    for role, codes in _split_codes(frames, data.split).items():
        frame = frames[role]
        for text, pair, label, code in zip(frame["text"], frame["text_pair"], frame["label"], codes):
            a, b = _clean(text), _clean(pair)
            if a is None or b is None or label not in known or (a := leak_form(a)) == (b := leak_form(b)):
                continue
            orders.setdefault((a, b), set()).add(int(code))
    both = [(pair, (pair[1], pair[0])) for pair in orders if pair < (pair[1], pair[0]) and (pair[1], pair[0]) in orders]
    if not both:
        return None
    straddling = sum(1 for pair, other in both
                     if 0 in orders[pair] | orders[other] and (orders[pair] | orders[other]) - {0})
    return (f"{len(both)} pair(s) also occur reversed (text and text_pair swapped), {straddling} of them in train "
            "and in validation or test: data.symmetric is false, so each order is its own example; if the relation "
            "does not depend on order (paraphrase, duplicate questions), set data.symmetric: true to make them one "
            "pair (a reversed copy is then a duplicate, or leakage across splits)")


#: Two-label sets whose positive class the names say: (positive, negative), compared as :func:`_name_key` writes them.
POSITIVE_NEGATIVE = (("1", "0"), ("1", "-1"), ("true", "false"), ("yes", "no"), ("y", "n"), ("t", "f"),
                     ("positive", "negative"), ("pos", "neg"))
#: Words that negate the label after them with a separator: ``not_duplicate``, ``no-match``, ``non entailment``.
SEPARATED_NEGATIONS = ("not", "non", "no")
#: Prefixes that negate the label they are glued to: ``notduplicate``, ``nonduplicate``, ``unrelated``, ``irrelevant``,
#: ``dissimilar``, to a label of three characters or more (``none`` is not the negation of ``e``, nor is ``no`` a
#: glued prefix).
GLUED_NEGATIONS = ("not", "non", "un", "in", "im", "ir", "il", "dis")


def _name_key(label: str) -> str:
    """A label name as the rules compare it: Unicode-normalised, case-folded, stripped, and any run of ``-``, ``_``
    or spaces between two characters written ``_`` (``Not-Duplicate`` → ``not_duplicate``; ``-1`` stays ``-1``)."""
    key = unicodedata.normalize("NFKC", label).casefold().strip()
    return re.sub(r"(?<=\w)[\s_-]+(?=\w)", "_", key)


def negates(label: str, other: str) -> bool:
    """Whether ``label`` is ``other`` with a negation in front (``not_duplicate`` of ``duplicate``, never the other
    way round)."""
    a, b = _name_key(label), _name_key(other)
    return bool(b) and (any(a == f"{word}_{b}" for word in SEPARATED_NEGATIONS)
                        or (len(b) >= 3 and any(a == prefix + b for prefix in GLUED_NEGATIONS)))


def default_positive(labels: list[str]) -> tuple[str | None, str]:
    """The positive class when the names leave no doubt, and why; (None, why not) otherwise.

    Only a two-label set has one: the positive member of a pair like 0/1 or no/yes, or the label the other one
    negates (``duplicate`` of ``duplicate``/``not_duplicate``, although it sorts first). Two other names, or three
    or more labels (NLI's entailment/neutral/contradiction), have no positive class to guess.
    """
    if len(labels) != 2:
        return None, f"{len(labels)} labels have no single positive class"
    keys = {_name_key(label): label for label in labels}
    for positive, negative in POSITIVE_NEGATIVE:
        if set(keys) == {positive, negative}:
            return keys[positive], f"the positive one of {labels[0]!r}/{labels[1]!r}"
    first, second = labels
    for label, other in ((first, second), (second, first)):
        if negates(label, other):
            return other, f"{label!r} negates it"
    return None, "the names do not say which one is positive"


def positive_class(labels: list[str], configured: str | None) -> tuple[str | None, str]:
    """The positive label and why it is that one: the configured one (which must be in the label set), else
    :func:`default_positive`."""
    if configured is not None:
        from tuneline.kinds.label_spellings import spelling_key

        same = [label for label in labels if spelling_key(label) == spelling_key(configured)]
        if configured not in labels and len(same) == 1:  # "yes" configured, "Yes" written: one class, as labels fold
            return same[0], f"data.positive_label ({configured!r} as the data writes it)"
        if configured not in labels:
            raise LabelSetError(f"data.positive_label={configured!r} is not in the label set {labels}; set it to one "
                                "of those labels")
        return configured, "data.positive_label"
    return default_positive(labels)


def resolve_positive(labels: list[str], configured: str | None) -> str | None:
    """The positive label (see :func:`positive_class`), None when there is none to take."""
    return positive_class(labels, configured)[0]


#: The positive label that each label set was settled with in this process (None: it has none), by
#: :meth:`PairClassificationKind.label_set` (validation) and :meth:`PairClassificationKind.encoder` (tokenization,
#: which every training run reaches, the retraining loop's too, before any metric). Needed because
#: :meth:`~tuneline.kinds.base.TaskKind.score` is given the label list, not the config, and the list cannot say
#: whether ``labels[1]`` is the positive class or only second in sorted order (NLI's ``entailment``).
SETTLED_POSITIVES: dict[tuple[str, ...], str | None] = {}


def settle_positive(labels: list[str], configured: str | None) -> tuple[str | None, str]:
    """:func:`positive_class`, remembered for :func:`scored_positive` (the last run's choice wins for a label set)."""
    positive, why = positive_class(list(labels), configured)
    SETTLED_POSITIVES[tuple(labels)] = positive
    return positive, why


def scored_positive(labels: list[str]) -> str | None:
    """The label whose F1 :meth:`PairClassificationKind.score` reports as ``f1_positive``, None for no such metric.

    The one settled for this label set in this process, else (a training worker process, a direct call) the one the
    names say (:func:`default_positive`): never ``labels[1]`` because the alphabet put it there, which reported the
    F1 of NLI's ``entailment`` as the run's positive-class F1."""
    key = tuple(labels)
    if key in SETTLED_POSITIVES:
        return SETTLED_POSITIVES[key]
    return default_positive(list(labels))[0]


def no_positive_note(labels: list[str], why: str) -> str:
    """The one line a run logs when it reports no ``f1_positive``."""
    return (f"f1_positive not reported: the pair labels {labels} have no positive class ({why}); set "
            "data.positive_label to one of them to report one")


def binary_scores(positive: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """accuracy, f1_positive and macro_f1 of boolean gold/predicted arrays (F1 0 where undefined, as sklearn's
    ``zero_division=0``); plain counting, so the threshold search can call it hundreds of times."""
    positive, predicted = np.asarray(positive, dtype=bool), np.asarray(predicted, dtype=bool)
    tp = int(np.sum(positive & predicted))
    tn = int(np.sum(~positive & ~predicted))
    fp = int(np.sum(~positive & predicted))
    fn = int(np.sum(positive & ~predicted))
    f1_pos = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    f1_neg = 2 * tn / (2 * tn + fp + fn) if tn else 0.0
    return {"accuracy": (tp + tn) / max(len(positive), 1), "macro_f1": (f1_pos + f1_neg) / 2,
            "f1_positive": f1_pos}


def threshold_objective(metric: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """The function :func:`tuneline.embeddings.best_threshold` maximises: the gate's metric on two classes."""
    if metric not in ("accuracy", "macro_f1", "f1_positive"):
        raise ValueError(f"no threshold objective for metric {metric!r}")
    return lambda positive, predicted: binary_scores(positive, predicted)[metric]


def encode_pairs(batch: dict[str, list], tokenizer: Any, max_length: int, label2id: dict[str, int],
                 truncation: str) -> dict[str, list]:
    """:func:`encode_texts` with the pair as the second segment.

    ``only_first``/``only_second`` cannot fit a row whose kept text alone exceeds ``max_length`` (the fast tokenizer
    raises for the whole batch); such rows are encoded with ``longest_first`` instead, and flagged truncated.
    """
    encode = partial(encode_texts, tokenizer=tokenizer, max_length=max_length, label2id=label2id)
    try:
        return encode(batch, pair=batch["text_pair"], truncation=truncation)
    except Exception as error:  # tokenizers raises a bare Exception("Truncation error: ...")
        if truncation == "longest_first" or "Truncation error" not in str(error):
            raise
    out: dict[str, list] = {}
    for i in range(len(batch["text"])):
        row = {column: values[i : i + 1] for column, values in batch.items()}
        try:
            encoded = encode(row, pair=row["text_pair"], truncation=truncation)
        except Exception:
            encoded = encode(row, pair=row["text_pair"], truncation="longest_first")
            encoded["truncated"] = [True]
        for key, values in encoded.items():
            out.setdefault(key, []).extend(values)
    return out


@dataclass
class ThresholdEvaluation(Evaluation):
    """A baseline that thresholds a score: the cut it used comes with its metrics."""

    threshold: float = 0.5


class PairClassificationKind(ClassificationKind):
    name = "pair_classification"
    config_model = PairClassificationConfig
    pyfunc_file = "pair_classifier.py"
    #: Two rows of the two texts (the signature itself is :meth:`signature`).
    input_example = pd.DataFrame({
        "text": ["The company posted a profit.", "He said the storm closed every road into the town on Monday."],
        "text_pair": ["The firm reported earnings.", "Officials said all roads to the town were shut by the storm."],
    })
    key_column = "key"
    value_column = "text"
    second_text_column = "text_pair"
    lineage_columns = ("text", "text_pair", "label")
    target_column = "label"

    def signature(self) -> Any:
        """Two unnamed inputs, text then pair: MLflow then takes a DataFrame (``text``, ``text_pair``), a dict of two
        lists and a list of ``[text, pair]`` lists alike. A signature that named the columns would refuse the list
        of lists before the model saw it ("missing inputs ['text', 'text_pair']"). Of type ``Any``, as
        classification's, so a null second sentence reaches the model as null (refused) and not as ``"None"``."""
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema
        from mlflow.types.schema import AnyType

        return ModelSignature(inputs=Schema([ColSpec(AnyType()), ColSpec(AnyType())]))

    # --- data -------------------------------------------------------------------------------------------------
    def read(self, path: Path, fmt: str, data: PairData) -> ReadRecords:
        frame, malformed, seen, lines = self.read_canonical(
            path, fmt, data, {"text_column": data.text_column, "text_pair_column": data.text_pair_column})
        labels, keep = normalized_labels(frame["label"], frame["source_row"], malformed)
        frame = frame.assign(label=labels)[keep].reset_index(drop=True)
        frame["key"] = pair_keys(frame["text"], frame["text_pair"], data.symmetric)
        return ReadRecords(frame=frame[PAIR_COLUMNS], malformed=malformed, records_seen=seen, source_lines=lines)

    def label_set(self, frames: dict[str, pd.DataFrame], data: PairData,
                  primary_metric: str | None = None) -> list[str]:
        """Classification's label set, with the positive label moved to index 1 (where :meth:`score` finds it); the
        choice is logged. Without a positive class the order stays sorted, ``f1_positive`` is not reported (the
        tokenizer's :meth:`encoder` says so, once per training run), and a gate on ``f1_positive`` is refused (it
        would be some class's F1, chosen by the alphabet). Also where reversed pairs are warned about
        (:func:`reversed_pairs_note`): the one hook that sees every split's rows and the data config, once per
        validation."""
        from tuneline.common import task_logger

        labels = super().label_set(frames, data)
        positive, why = positive_class(labels, data.positive_label)
        metric = primary_metric or PairClassificationConfig.DEFAULT_METRIC
        if positive is None and metric == "f1_positive":
            raise LabelSetError(
                f"gate.primary_metric is f1_positive, but the pair labels {labels} have no positive class "
                f"({why}): set data.positive_label to one of them, or gate.primary_metric to macro_f1 or accuracy")
        if (note := reversed_pairs_note(frames, data, labels)) is not None:
            task_logger().warning("%s", note)
        if positive is None:
            settle_positive(labels, data.positive_label)
            return labels
        task_logger().info("positive class %r (%s): f1_positive is its F1%s", positive, why,
                           "" if why == "data.positive_label" else "; set data.positive_label to choose another")
        rest = [label for label in labels if label != positive]
        labels = [rest[0], positive, *rest[1:]]
        settle_positive(labels, data.positive_label)
        return labels

    def schema(self, labels: list[str], train_keys: list[str] | None, data: PairData):
        from tuneline.schemas.pair_classification import pair_schema

        return pair_schema(labels, train_keys)

    column_titles = {"text": "first text", "text_pair": "second text"}

    def describe_failures(self, quarantine: pd.DataFrame, frames: dict[str, pd.DataFrame],
                          labels: list[str], names: dict[str, str] | None = None, **context: Any) -> pd.DataFrame:
        """The quarantine's ``value`` shows the first text; ``detail`` shows the second, so a rejected pair can be
        recognised without opening the input file, after what the label rules say (classification's details).
        Columns are named as the file names them (``names``): MRPC's ``#2 String``, not ``text_pair``."""
        if quarantine.empty:
            return quarantine
        quarantine = super().describe_failures(quarantine, frames, labels, names)
        second = (names or {}).get("text_pair", "text_pair")
        lookup = {(role, f, int(r)): p for role, frame in frames.items()
                  for f, r, p in zip(frame["source_file"], frame["source_row"], frame["text_pair"])}

        from tuneline.kinds.classification import _no_text_detail

        def detail(key: tuple[str, str, int], current: object, rule: str) -> object:
            if key not in lookup:
                return current
            pair, said = lookup[key], isinstance(current, str) and bool(current)
            if rule == "text_pair_is_non_empty_string":  # it had shown "text_pair:    " and no reason
                why = _no_text_detail(pair, self.column_title("text_pair", names))
                return why + (f"; {second}: {str(pair)[:300]!r}" if isinstance(pair, str) and pair else "")
            if pair is None:  # a missing second text: classification's detail already says so when it is the rule
                return current if said else f"{second}: (missing)"
            shown = f"{second}: {str(pair)[:300]}"
            return f"{current}; {shown}" if said else shown

        details = [detail((s, f, int(r)), d, rule) for s, f, r, d, rule in zip(
            quarantine["split"], quarantine["source_file"], quarantine["source_row"], quarantine["detail"],
            quarantine["rule"])]
        return quarantine.assign(detail=details)

    # --- model ------------------------------------------------------------------------------------------------
    def encoder(self, tokenizer: Any, max_length: int, label2id: dict[str, int], config: TunelineConfig,
                model_inputs: dict[str, Any]):
        """:func:`encode_pairs`. Also settles the run's positive class (:func:`settle_positive`) and says once when
        there is none: tokenization is the one step every training run (the retraining loop's too, which never
        calls :meth:`label_set`) takes with both the config and the label order, before any metric is computed."""
        from tuneline.common import task_logger

        labels = sorted(label2id, key=label2id.__getitem__)
        positive, why = settle_positive(labels, config.data.positive_label)
        if positive is None:
            task_logger().info("%s", no_positive_note(labels, why))
        return partial(encode_pairs, tokenizer=tokenizer, max_length=max_length, label2id=label2id,
                       truncation=config.tokenize.truncation), ["text", "text_pair", "label"]

    def encoder_settings(self, config: TunelineConfig) -> dict[str, Any]:
        return {"truncation": config.tokenize.truncation}

    # --- metrics ----------------------------------------------------------------------------------------------
    def score(self, gold: list[str], predicted: list[str], labels: list[str]) -> dict[str, float]:
        """Accuracy, macro F1 over the labels the rows hold (as classification's: an NLI test split without one of
        its three classes was averaged with an F1 of 0 for it), and ``f1_positive``, the F1 of the positive label,
        only where there is one (:func:`scored_positive`): every number of a run (validation, test, baselines,
        champion) comes from here, so a metric left out here is left out of the reports, tags and gate alike."""
        from sklearn.metrics import accuracy_score, f1_score

        metrics = {
            "accuracy": float(accuracy_score(gold, predicted)),
            "macro_f1": float(f1_score(gold, predicted, labels=present_labels(gold, predicted, labels),
                                       average="macro", zero_division=0)),
        }
        if (positive := scored_positive(labels)) is not None:
            metrics["f1_positive"] = float(f1_score(gold, predicted, labels=[positive], average="macro",
                                                    zero_division=0))
        return metrics

    def subset_score(self, gold: list[str], predicted: list[str], labels: list[str], metric: str):
        """The same numbers as :meth:`score` on resampled rows: ``f1_positive`` is the F1 of the positive label (an
        error where :meth:`score` reports none), macro_f1 runs over the labels all the rows hold, as :meth:`score`
        averages it (fixed, so resamples stay comparable)."""
        if metric not in ("accuracy", "macro_f1", "f1_positive"):
            raise ValueError(f"no subset score for metric {metric!r} of {self.name}")
        positive = scored_positive(labels)
        if metric == "f1_positive" and positive is None:
            raise ValueError(f"no f1_positive for the pair labels {list(labels)}: they have no positive class; set "
                             "data.positive_label to one of them")
        gold_ids, pred_ids = label_ids(gold, labels), label_ids(predicted, labels)
        present = np.isin(np.arange(len(labels)), gold_ids)

        def score(indices: Any) -> float:
            g, p = gold_ids[indices], pred_ids[indices]
            if metric == "accuracy":
                return float(np.mean(g == p))
            f1, _support = per_class_f1(g, p, len(labels))
            if metric == "f1_positive":
                return float(f1[list(labels).index(positive)])
            return float(f1[present].mean()) if present.any() else 0.0  # macro_f1

        return score

    # --- evaluation and serving ---------------------------------------------------------------------------------
    def model_input(self, frame: pd.DataFrame) -> Any:
        return pd.DataFrame({"text": [str(t) for t in frame["text"]],
                             "text_pair": [str(t) for t in frame["text_pair"]]})

    def calibrate(self, model_dir: Path, splits: Any, config: TunelineConfig, run: Any) -> dict[str, Any]:
        """Store the training truncation in the saved model's config, so serving cuts pairs the way training did
        (nothing is fitted; the pyfunc defaults to longest_first)."""
        path = Path(model_dir) / "config.json"
        saved = json.loads(path.read_text(encoding="utf-8"))
        saved["tuneline_truncation"] = config.tokenize.truncation
        path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return {}

    def settle_scoring(self, labels: list[str], config: TunelineConfig) -> None:
        """The run's positive class, for :meth:`score` in a process that neither validated nor tokenized (a DDP
        worker: without it, labels whose names do not say which is positive scored no f1_positive there even with
        ``data.positive_label`` set, and the Trainer's best-checkpoint metric was missing)."""
        settle_positive(labels, config.data.positive_label)

    def baselines(self, splits: Any, config: TunelineConfig) -> list[Evaluation]:
        """Majority, all-positive (see :meth:`all_positive_baseline`) and zero-shot, scored with the run's positive
        class (settled again here from the config, so that a caller that did not tokenize scores as a run does)."""
        settle_positive(splits.labels, config.data.positive_label)
        out = [self.majority_baseline(splits)]
        if (always := self.all_positive_baseline(splits, config, out[0])) is not None:
            out.append(always)
        if config.evaluate.zero_shot_baseline:
            zero_shot = self.zero_shot_baseline(splits, config)
            if zero_shot is not None:
                out.append(zero_shot)
        return out

    def all_positive_baseline(self, splits: Any, config: TunelineConfig, majority: Evaluation) -> Evaluation | None:
        """Every pair called positive: the trivial model of the gate's ``f1_positive`` when the positive class is the
        minority. The majority baseline then predicts the other class and scores F1 0, so a model that had learned
        only to say "positive" (F1 2p/(1+p): 0.46 at 30% positives) beat every "before" number by a wide margin and
        was promoted (metrics QA, MRPC with data.positive_label: 0). None when the majority is the positive class
        (the majority baseline is this one) or the gate reads another metric."""
        labels, positive = splits.labels, scored_positive(splits.labels)
        if len(labels) != 2 or config.primary_metric != "f1_positive" or positive is None \
                or majority.predictions[:1] == [positive]:
            return None
        predicted = [positive] * len(splits.test)
        return Evaluation("all_positive", self.score(self.gold(splits.test), predicted, labels), predicted)

    def zero_shot_baseline(self, splits: Any, config: TunelineConfig) -> ThresholdEvaluation | None:
        """Cosine similarity of the two texts' mean-pooled embeddings (untouched base model): the positive label at
        ``similarity >= t``, the other below, with ``t`` the best cut on (a sample of) train for the gate's metric.
        Skipped (None) for more than two labels, where one similarity cannot separate the classes. Without a positive
        class (the gate then uses macro_f1 or accuracy, which do not care which class is which) the label whose train
        pairs are more similar on average is the one predicted above ``t``: ``labels[1]`` is only the second name in
        sorted order, and predicting it for similar pairs could make the baseline needlessly weak."""
        from tuneline.common import task_logger
        from tuneline.embeddings import Embedder, best_threshold

        labels = splits.labels
        if len(labels) != 2:
            task_logger().info("zero-shot pair baseline skipped: it thresholds one similarity, so it needs exactly "
                               "2 labels (this run has %d)", len(labels))
            return None
        negative, positive = labels[0], labels[1]
        embedder = Embedder.for_config(config)
        fit = splits.train
        if len(fit) > ZERO_SHOT_FIT_ROWS:
            fit = fit.sample(n=ZERO_SHOT_FIT_ROWS, random_state=0)
        fit_similarity = pair_similarity(embedder, fit)
        if resolve_positive(labels, config.data.positive_label) is None:
            by_label = pd.Series(fit_similarity, index=fit.index).groupby(fit["label"].astype(str)).mean()
            if by_label.get(negative, -np.inf) > by_label.get(positive, -np.inf):
                negative, positive = positive, negative
        metric = config.primary_metric
        threshold = best_threshold(fit_similarity, (fit["label"] == positive).to_numpy(),
                                   threshold_objective(metric))
        similarity = pair_similarity(embedder, splits.test)
        predicted = [positive if s >= threshold else negative for s in similarity]
        task_logger().info("zero-shot pair baseline: %r at similarity >= %.4f (best %s on %d train pairs)",
                           positive, threshold, metric, len(fit))
        return ThresholdEvaluation("zero_shot", self.score(self.gold(splits.test), predicted, labels), predicted,
                                   similarity.tolist(), threshold=threshold)


def pair_similarity(embedder: Any, frame: pd.DataFrame) -> np.ndarray:
    """Cosine similarity of each row's text and text_pair embeddings (both L2-normalised, so a row-wise dot)."""
    first = embedder.embed([str(t) for t in frame["text"]])
    second = embedder.embed([str(t) for t in frame["text_pair"]])
    return np.sum(first * second, axis=1)
