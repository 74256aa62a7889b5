"""A small learnable dataset, config overrides and the documented input forms for every task kind.

Used by the end-to-end test parametrized over KINDS: a new kind adds one entry here (its data must use words of the
tiny test BERT's vocabulary, ``conftest.WORDS``, so the tiny model can learn it).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tuneline.demo import write_demo_csv


@dataclass
class KindExample:
    write: Callable[[Path], dict[str, Any]]     # writes the files, returns the data: config
    overrides: list[str]                        # dotted config overrides that make the tiny model learn
    planted_rules: list[str]                    # quarantine rules the data deliberately breaks
    inputs: list[tuple[Any, int]]               # (documented input form, rows expected back)
    equivalent: list[list[int]] = field(default_factory=list)  # indices of inputs holding the same rows
    check_output: Callable[[Any, Any], None] = lambda given, output: None
    cli_rows: list[dict[str, Any]] = field(default_factory=list)  # rows of a JSONL file for `tuneline predict --input`


# --- classification ------------------------------------------------------------------------------------------------

def write_classification(folder: Path) -> dict[str, Any]:
    path = write_demo_csv(folder / "tickets.csv", realistic=False)  # keyword data: the tiny model learns it
    return {"path": str(path), "text_column": "text", "label_column": "intent",
            "labels": ["billing", "shipping", "technical", "account"]}


TEXTS = ["where is my parcel", "how do I reset my password please, my account is locked and I need help now"]

CLASSIFICATION = KindExample(
    write=write_classification,
    overrides=["tokenize.max_length=32", "train.epochs=8", "train.learning_rate=2e-3", "train.batch_size=32",
               "train.early_stopping_patience=4"],
    planted_rules=["no_exact_duplicates", "label_in_label_set", "record_has_wrong_field_count"],
    inputs=[(TEXTS[0], 1), (TEXTS, 2), (pd.Series(TEXTS), 2), (pd.DataFrame({"text": TEXTS}), 2),
            ([TEXTS[0]] * 5, 5)],
    equivalent=[[1, 2, 3]],
    cli_rows=[{"text": t} for t in TEXTS],
)


# --- token classification ------------------------------------------------------------------------------------------

PEOPLE = [["John"], ["John", "Smith"], ["Smith"]]
PLACES = [["Paris"], ["London"], ["Berlin"]]
ORGS = [["Acme", "Corp"], ["Google"], ["Acme"]]


def _entity(words: list[str], kind: str) -> list[tuple[str, str]]:
    return [(w, ("B-" if i == 0 else "I-") + kind) for i, w in enumerate(words)]


def _sentence(rng: random.Random) -> list[tuple[str, str]]:
    per, loc, org = _entity(rng.choice(PEOPLE), "PER"), _entity(rng.choice(PLACES), "LOC"), \
        _entity(rng.choice(ORGS), "ORG")
    return rng.choice([per + [("visited", "O")] + loc + [(".", "O")],
                       per + [("works", "O"), ("for", "O")] + org + [("in", "O")] + loc,
                       org + [("is", "O"), ("in", "O")] + loc + [(".", "O")]])


def write_token_classification(folder: Path) -> dict[str, Any]:
    rng = random.Random(0)
    blocks = [_sentence(rng) for _ in range(300)]
    blocks.insert(3, [("John", "O"), ("Smith", "I-PER"), ("visited", "O"), ("Paris", "B-LOC")])  # invalid IOB2
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ner.conll"
    body = "\n\n".join("\n".join(f"{w} {t}" for w, t in block) for block in blocks)
    path.write_text(body + "\n\nNew York B-LOC\nis O\n")  # a ragged line: 3 fields in a 2-column file
    return {"path": str(path), "labels": ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]}


WORD_LISTS = [["John", "Smith", "lives", "in", "Berlin"], ["Paris"],
              ["John", "works", "for", "Acme", "Corp", "in", "London", "and", "Smith", "visited", "Paris", "."] * 3]


def _one_tag_per_word(given: Any, output: Any) -> None:
    if isinstance(given, list) and given and isinstance(given[0], list):
        assert [len(t) for t in output["tags"]] == [len(w) for w in given]


TOKEN_CLASSIFICATION = KindExample(
    write=write_token_classification,
    overrides=["tokenize.max_length=16", "train.epochs=8", "train.learning_rate=5e-3", "train.batch_size=16"],
    planted_rules=["valid_iob2", "conll_line_has_wrong_field_count"],
    inputs=[("John Smith lives in Berlin", 1), (["John Smith lives in Berlin", "Paris"], 2), (WORD_LISTS, 3),
            (pd.DataFrame({"tokens": WORD_LISTS}), 3), (pd.DataFrame({"text": ["John Smith lives in Berlin",
                                                                               "Paris"]}), 2)],
    equivalent=[[2, 3], [1, 4]],
    check_output=_one_tag_per_word,
    cli_rows=[{"tokens": words} for words in WORD_LISTS],
)


# --- pair classification -------------------------------------------------------------------------------------------

def write_pair_classification(folder: Path) -> dict[str, Any]:
    from test_kind_pair import write_pair_csv

    path, _ = write_pair_csv(folder / "pairs.csv")
    return {"path": str(path), "text_column": "question", "text_pair_column": "candidate", "label_column": "same",
            "symmetric": True}


PAIRS = [["my invoice", "my invoice"], ["my parcel", "the password please help with it now"]]

PAIR_CLASSIFICATION = KindExample(
    write=write_pair_classification,
    overrides=["tokenize.max_length=32", "train.epochs=10", "train.learning_rate=2e-3", "train.batch_size=32",
               "train.early_stopping_patience=4"],
    planted_rules=["no_exact_duplicates", "no_conflicting_label_duplicates"],
    inputs=[(pd.DataFrame({"text": [p[0] for p in PAIRS], "text_pair": [p[1] for p in PAIRS]}), 2), (PAIRS, 2),
            ({"text": [p[0] for p in PAIRS], "text_pair": [p[1] for p in PAIRS]}, 2), ([PAIRS[0]] * 5, 5)],
    equivalent=[[0, 1, 2]],
    cli_rows=[{"text": t, "text_pair": p} for t, p in PAIRS],
)


# --- multi-label classification ------------------------------------------------------------------------------------

def write_multilabel_classification(folder: Path) -> dict[str, Any]:
    from test_kind_multilabel import NAMES, write_tag_csv

    path = write_tag_csv(folder / "tags.csv", fillers=2, weights=(60, 40, 0))
    return {"path": str(path), "text_column": "text", "label_column": "tags", "label_separator": "|",
            "labels": NAMES}


TAG_TEXTS = ["my invoice please", "refund and the parcel please help me again, it is not here and i need it now"]


def _labels_over_threshold(given: Any, output: Any) -> None:
    for labels, scores in zip(output["labels"], output["scores"]):
        assert set(labels) <= set(scores)


MULTILABEL_CLASSIFICATION = KindExample(
    write=write_multilabel_classification,
    overrides=["tokenize.max_length=32", "train.epochs=10", "train.learning_rate=2e-3", "train.batch_size=16",
               "train.early_stopping_patience=3"],
    planted_rules=["at_least_one_label", "label_in_label_set"],
    inputs=[(TAG_TEXTS[0], 1), (TAG_TEXTS, 2), (pd.Series(TAG_TEXTS), 2), (pd.DataFrame({"text": TAG_TEXTS}), 2)],
    equivalent=[[1, 2, 3]],
    check_output=_labels_over_threshold,
    cli_rows=[{"text": t} for t in TAG_TEXTS],
)


EXAMPLES: dict[str, KindExample] = {
    "classification": CLASSIFICATION,
    "token_classification": TOKEN_CLASSIFICATION,
    "pair_classification": PAIR_CLASSIFICATION,
    "multilabel_classification": MULTILABEL_CLASSIFICATION,
}
