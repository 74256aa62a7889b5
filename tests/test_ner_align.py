"""Tag-to-subword alignment on hand-made sentences, with MiniLM's real WordPiece tokenizer (installed, offline)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from tuneline.runtime import resolve_base_model
from tuneline.kinds.token_classification import IGNORE, align_labels, encode_token_batch, words_cut

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
L2I = {label: i for i, label in enumerate(LABELS)}
# [CLS] angela mer ##kel met arnold schwarz ##ene ##gger in wolf ##sburg . [SEP]
TOKENS = ["Angela", "Merkel", "met", "Arnold", "Schwarzenegger", "in", "Wolfsburg", "."]
TAGS = ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O", "B-LOC", "O"]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_base_model("minilm"))


def encode(tokenizer, tokens=TOKENS, tags=TAGS, max_length=64, all_subwords=False):
    out = encode_token_batch({"tokens": [tokens], "tags": [tags]}, tokenizer=tokenizer, max_length=max_length,
                             label2id=L2I, label_all_subwords=all_subwords)
    pieces = tokenizer.convert_ids_to_tokens(out["input_ids"][0])
    return pieces, [LABELS[i] if i != IGNORE else None for i in out["labels"][0]], out["truncated"][0]


def test_first_subword_carries_the_tag_and_the_rest_are_ignored(tokenizer):
    pieces, labels, truncated = encode(tokenizer)
    assert pieces == ["[CLS]", "angela", "mer", "##kel", "met", "arnold", "schwarz", "##ene", "##gger", "in", "wolf",
                      "##sburg", ".", "[SEP]"]
    assert labels == [None, "B-PER", "I-PER", None, "O", "B-PER", "I-PER", None, None, "O", "B-LOC", None, "O", None]
    assert truncated == 0


def test_no_label_shift_after_split_words(tokenizer):
    """Labelling by token index instead of word index would put Merkel's I-PER on 'met' and shift everything."""
    pieces, labels, _ = encode(tokenizer)
    by_piece = dict(zip(pieces, labels))
    assert by_piece["met"] == "O"
    assert by_piece["in"] == "O"
    assert by_piece["wolf"] == "B-LOC"
    assert by_piece["."] == "O"
    # exactly one labelled position per word, in word order
    assert [label for label in labels if label is not None] == TAGS


def test_label_all_subwords_continues_with_i_never_b(tokenizer):
    """Copying B-LOC onto '##sburg' would make Wolfsburg two entities; the continuation must be I-LOC."""
    pieces, labels, _ = encode(tokenizer, all_subwords=True)
    assert labels == [None, "B-PER", "I-PER", "I-PER", "O", "B-PER", "I-PER", "I-PER", "I-PER", "O", "B-LOC",
                      "I-LOC", "O", None]
    assert sum(1 for label in labels if label and label.startswith("B-")) == 3  # three entities, three starts


def test_punctuation_inside_a_word_stays_one_word(tokenizer):
    pieces, labels, _ = encode(tokenizer, tokens=["U.S.", "troops", ","], tags=["B-LOC", "O", "O"])
    assert pieces == ["[CLS]", "u", ".", "s", ".", "troops", ",", "[SEP]"]
    assert labels == [None, "B-LOC", None, None, None, "O", "O", None]
    _, labels, _ = encode(tokenizer, tokens=["U.S.", "troops", ","], tags=["B-LOC", "O", "O"], all_subwords=True)
    assert labels == [None, "B-LOC", "I-LOC", "I-LOC", "I-LOC", "O", "O", None]


def test_truncation_counts_the_words_cut(tokenizer):
    # 8 tokens: [CLS] angela mer ##kel met arnold schwarz [SEP]: Schwarzenegger keeps its first subword (and its
    # tag); 'in', 'Wolfsburg' and '.' are cut.
    pieces, labels, truncated = encode(tokenizer, max_length=8)
    assert pieces == ["[CLS]", "angela", "mer", "##kel", "met", "arnold", "schwarz", "[SEP]"]
    assert labels == [None, "B-PER", "I-PER", None, "O", "B-PER", "I-PER", None]
    assert truncated == 3


def test_words_cut_helper():
    assert words_cut([None, 0, 0, 1, None], 2) == 0
    assert words_cut([None, 0, 1, None], 5) == 3
    assert words_cut([None, None], 4) == 4


def test_align_labels_on_explicit_word_ids():
    labels = align_labels([None, 0, 1, 1, 1, 2, None], ["B-PER", "B-LOC", "O"], L2I)
    assert labels == [IGNORE, L2I["B-PER"], L2I["B-LOC"], IGNORE, IGNORE, L2I["O"], IGNORE]
    labels = align_labels([None, 0, 1, 1, 1, 2, None], ["B-PER", "B-LOC", "O"], L2I, label_all_subwords=True)
    assert labels == [IGNORE, L2I["B-PER"], L2I["B-LOC"], L2I["I-LOC"], L2I["I-LOC"], L2I["O"], IGNORE]


def test_label_all_subwords_needs_the_i_tag():
    with pytest.raises(ValueError, match="I-LOC"):
        align_labels([None, 0, 0, None], ["B-LOC"], {"O": 0, "B-LOC": 1}, label_all_subwords=True)


def test_tokenize_task_aligns_counts_truncation_and_caches(tmp_path, tokenizer):
    """The spine's tokenize task with the NER encoder: aligned labels, sentences cut counted (train only: evaluation
    and serving tag long sentences in windows; the count was the words cut, shown as rows: "1,049 of 124"), cache
    hit."""
    import pandas as pd

    from tuneline.tasks.split import DataSplits
    from tuneline.tasks.tokenize import tokenize_splits

    frame = pd.DataFrame({"tokens": [TOKENS, ["Paris", "."]], "tags": [TAGS, ["B-LOC", "O"]]})
    splits = DataSplits(train=frame, validation=frame.iloc[1:], test=frame.iloc[:1], labels=LABELS)
    hashes = {"train": "a", "validation": "b", "test": "c"}

    def run(all_subwords: bool):
        from tests_support import run_config

        config = run_config("token_classification", "tokenize.max_length=8",
                            f"tokenize.label_all_subwords={str(all_subwords).lower()}", path="/unused.conll")
        return tokenize_splits.fn(splits, tokenizer, config, hashes, tmp_path)

    first = run(False)
    assert first.truncated == {"train": 1, "validation": 0, "test": 0}  # one sentence of two, 3 of its words
    row = first.datasets["train"][0]
    assert [LABELS[i] if i != IGNORE else None for i in row["labels"]] == [
        None, "B-PER", "I-PER", None, "O", "B-PER", "I-PER", None]
    assert "truncated" not in first.datasets["train"].column_names
    assert run(False).cache_hits == {"train": True, "validation": True, "test": True}
    continued = run(True)  # a different setting is a different cache file
    assert continued.cache_hits["train"] is False
    assert [LABELS[i] if i != IGNORE else None for i in continued.datasets["train"][0]["labels"]][3] == "I-PER"
