"""Align word-level NER tags to subword tokens, through the fast tokenizer's ``word_ids``.

A word split into several subwords gets its tag on the *first* subword only; continuation subwords and special
tokens get -100, which the loss and the metrics ignore. Two mistakes a naive alignment makes, both covered by tests:
copying ``B-X`` onto every subword (one entity becomes several), and labelling by token index instead of word index
(every tag after a split word shifts right). With ``tokenize.label_all_subwords`` continuations are labelled too,
with ``I-X`` for a ``B-X`` word, so an entity still starts exactly once.

Long sentences: training examples are truncated at ``max_length`` tokens and the words cut off are counted in the
``truncated`` column (summed and logged by the tokenize task). Evaluation and serving do not truncate:
:class:`~tuneline.pyfunc.token_tagger.TokenTagger` slides overlapping windows over long sentences, so every original
word is predicted and scored.
"""

from __future__ import annotations

from typing import Any

IGNORE = -100


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
                       label_all_subwords: bool = False) -> dict[str, list]:
    """A ``datasets`` batched map function: tokens/tags → input ids, aligned labels and words cut by truncation."""
    enc = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
    labels, truncated = [], []
    for row, (tokens, tags) in enumerate(zip(batch["tokens"], batch["tags"])):
        word_ids = enc.word_ids(row)
        labels.append(align_labels(word_ids, tags, label2id, label_all_subwords))
        truncated.append(words_cut(word_ids, len(tokens)))
    out = {key: list(values) for key, values in enc.items()}
    out["labels"] = labels
    out["truncated"] = truncated
    return out
