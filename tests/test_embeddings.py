"""The zero-shot baselines' embedding cache: the same vectors as computing them, and no model load on a full hit."""

from __future__ import annotations

import numpy as np

from tuneline.embeddings import Embedder, load_encoder, mean_pooled_embeddings

TEXTS = ["where is my parcel", "reset my password please", "my invoice is wrong", "the app is slow"]


def test_cached_vectors_equal_computed_ones_and_a_second_run_loads_no_model(tmp_path, tiny_bert):
    model, tokenizer = load_encoder(str(tiny_bert))
    expected = mean_pooled_embeddings(model, tokenizer, TEXTS, batch_size=2, max_length=32)

    first = Embedder(str(tiny_bert), max_length=32, batch_size=2, cache_dir=tmp_path)
    assert np.allclose(first.embed(TEXTS), expected, atol=1e-6)
    assert (first.hits, first.misses) == (0, 4)

    again = Embedder(str(tiny_bert), max_length=32, batch_size=2, cache_dir=tmp_path)  # a later run
    vectors = again.embed(list(reversed(TEXTS)) + [TEXTS[0]])
    assert np.allclose(vectors, np.concatenate([expected[::-1], expected[:1]]), atol=1e-6)
    assert (again.hits, again.misses) == (5, 0) and again._loaded is None  # the base model was never loaded

    grown = Embedder(str(tiny_bert), max_length=32, batch_size=2, cache_dir=tmp_path)
    grown.embed(TEXTS + ["a brand new ticket"])
    assert (grown.hits, grown.misses) == (4, 1)


def test_another_max_length_or_model_is_another_cache(tmp_path, tiny_bert):
    Embedder(str(tiny_bert), max_length=32, cache_dir=tmp_path).embed(TEXTS)
    other = Embedder(str(tiny_bert), max_length=16, cache_dir=tmp_path)
    other.embed(TEXTS)
    assert other.misses == 4
    (tmp_path / "junk").mkdir()
    for damaged in tmp_path.glob("*.keys.npy"):
        damaged.write_bytes(b"not numpy")
    fresh = Embedder(str(tiny_bert), max_length=32, cache_dir=tmp_path)  # a damaged cache is recomputed, not fatal
    fresh.embed(TEXTS)
    assert fresh.misses == 4
