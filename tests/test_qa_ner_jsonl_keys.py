"""NER JSONL/Parquet keys that differ from data.tokens_column / data.tags_column only in case or surrounding spaces
(``Tokens``, ``TAGS``, `` tokens``) find them, as the README promises for every kind's columns and as the
classification, pair and multi-label readers do; they were "has no field 'tokens'"."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tuneline.kinds.token_classification import TokenData, read_token_file
from tuneline.readers import DataLoadError

TOKENS = ["John", "Smith", "visited", "Paris"]
TAGS = ["B-PER", "I-PER", "O", "B-LOC"]


@pytest.mark.parametrize("tokens_key, tags_key", [("Tokens", "Tags"), (" tokens", "TAGS")])
def test_jsonl_keys_in_another_case_find_the_configured_columns(tmp_path, tokens_key, tags_key):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({tokens_key: TOKENS, tags_key: TAGS, "id": i}) + "\n" for i in range(3)))
    frame, bad, seen = read_token_file(path, "jsonl", TokenData(train=path))
    assert bad == [] and seen == 3
    assert frame["tokens"].tolist() == [TOKENS] * 3
    assert frame["tags"].tolist() == [TAGS] * 3


def test_parquet_columns_in_another_case_find_the_configured_columns(tmp_path):
    path = tmp_path / "train.parquet"
    pd.DataFrame({"Tokens": [TOKENS, TOKENS[:2]], "Tags": [TAGS, TAGS[:2]]}).to_parquet(path)
    frame, bad, seen = read_token_file(path, "parquet", TokenData(train=path))
    assert seen == 2 and bad == []
    assert frame["tags"].tolist() == [TAGS, TAGS[:2]]


def test_a_key_that_is_no_spelling_of_the_configured_one_is_still_named(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"tokens": TOKENS, "entity_tags": TAGS}) + "\n")
    with pytest.raises(DataLoadError, match=r"has no field 'tags' in any record \(its fields: \['tokens', "
                                            r"'entity_tags'\]\)"):
        read_token_file(path, "jsonl", TokenData(train=path))
