"""What a QA probe of registered models found in the pair, multi-label and NER pyfuncs.

* A Parquet body (``serve-model`` accepts ``application/vnd.apache.parquet``) whose text column is binary, as
  pyarrow, Spark and some exporters write strings, reached the pair and the multi-label model as ``bytes`` cells,
  which they turned into text with ``str()``: they predicted on ``"b'my invoice please'"`` and answered 200 with
  other scores than for the same text as a string. The text classifier already decoded such cells; all three do now
  (and refuse bytes that are no UTF-8, naming the input).
* NER on raw text: a combining mark (the accent of a decomposed ``José``, ``Zoë`` written ``e`` + U+0308 as macOS
  and some web pages write them, a Devanagari vowel sign) was split off the word it belongs to, as a "word" of its
  own. The entity's text and end offset cut the name short (``Jose`` instead of ``José``), and the mark got a tag.

Tiny random heads on the conftest BERT, registered by tuneline's own register task (the path a training run takes)
and loaded back from the registry; the scoring app is the one ``tuneline serve-model`` runs. The random weights make
the labels meaningless: what is checked is that the same text gives the same answer in every form.
"""

from __future__ import annotations

import io
import json
import unicodedata

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow.exceptions import MlflowException

from test_serving_inputs import register, save_head, served_client, store  # noqa: F401 - store is a fixture

TEXTS = ["my invoice please", "where is my parcel"]
PAIRS = [["where is my parcel", "my parcel has not arrived"], ["reset my password", "refund the charge"]]


@pytest.fixture(scope="module")
def multilabel(store, tiny_bert, tmp_path_factory):
    folder = save_head(tiny_bert, tmp_path_factory.mktemp("ml"), "AutoModelForSequenceClassification",
                       ["billing", "delivery", "account"], max_length=32)
    return register(store, folder, "multilabel_classification", "qa-bytes-multilabel")


@pytest.fixture(scope="module")
def pair(store, tiny_bert, tmp_path_factory):
    folder = save_head(tiny_bert, tmp_path_factory.mktemp("pair"), "AutoModelForSequenceClassification", ["0", "1"],
                       max_length=32)
    return register(store, folder, "pair_classification", "qa-bytes-pair")


@pytest.fixture(scope="module")
def tagger(store, tiny_bert, tmp_path_factory):
    folder = save_head(tiny_bert, tmp_path_factory.mktemp("ner"), "AutoModelForTokenClassification",
                       ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], max_length=16)
    return register(store, folder, "token_classification", "qa-marks-ner")


def parquet(columns: dict[str, list], binary: bool) -> bytes:
    table = pa.table({name: pa.array([v.encode() for v in values] if binary else values,
                                     type=pa.binary() if binary else pa.string())
                      for name, values in columns.items()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def scores(predictions: list[dict]) -> list[float]:
    return [value for row in predictions for value in row["scores"].values()]


@pytest.mark.parametrize("kind", ["multilabel_classification", "pair_classification"])
def test_a_binary_parquet_column_is_predicted_as_its_text_over_http(kind, multilabel, pair, monkeypatch):
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    served = multilabel if kind == "multilabel_classification" else pair
    columns = ({"text": TEXTS} if kind == "multilabel_classification" else
               {"text": [p[0] for p in PAIRS], "text_pair": [p[1] for p in PAIRS]})
    client = served_client(served, kind)
    answers = []
    for binary in (False, True):
        answer = client.post("/invocations", content=parquet(columns, binary),
                             headers={"Content-Type": "application/vnd.apache.parquet"})
        assert answer.status_code == 200, answer.text
        answers.append(answer.json()["predictions"])
    as_json = client.post("/invocations", content=json.dumps(
        {"inputs": TEXTS if kind == "multilabel_classification" else PAIRS}),
        headers={"Content-Type": "application/json"}).json()["predictions"]
    for got in answers:  # the same texts, the same scores (it predicted on "b'...'" for the binary column)
        assert scores(got) == pytest.approx(scores(as_json), abs=1e-7)
    # the check tells the two apart: the repr of the bytes scores otherwise on these weights
    as_repr = client.post("/invocations", content=json.dumps(
        {"inputs": [str(t.encode()) for t in TEXTS] if kind == "multilabel_classification" else
         [[str(a.encode()), str(b.encode())] for a, b in PAIRS]}),
        headers={"Content-Type": "application/json"}).json()["predictions"]
    assert max(abs(a - b) for a, b in zip(scores(as_repr), scores(as_json))) > 1e-6


def test_bytes_cells_in_process_equal_their_text_and_undecodable_bytes_are_refused(multilabel, pair):
    expected = multilabel.model.predict(pd.DataFrame({"text": TEXTS}))
    got = multilabel.model.predict(pd.DataFrame({"text": [t.encode() for t in TEXTS]}))
    assert got["scores"].tolist() == expected["scores"].tolist()
    expected = pair.model.predict(PAIRS)
    got = pair.model.predict([[a.encode(), b.encode()] for a, b in PAIRS])
    assert got["scores"].tolist() == expected["scores"].tolist()
    with pytest.raises(MlflowException, match=r"input 1 is bytes that are not UTF-8 text"):
        multilabel.model.predict(pd.DataFrame({"text": [b"fine", b"\xff\xfe"]}))
    with pytest.raises(MlflowException, match=r"bytes that are not UTF-8 text .* at row 0 of 'text_pair'"):
        pair.model.predict([["fine", b"\xff\xfe"]])


def test_a_combining_mark_stays_in_its_word_and_entities_slice_whole_words(tagger):
    composed = "José Smith visited Zoë in Paris"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    out = tagger.model.predict([composed, decomposed, "नमस्ते दुनिया"])
    assert out.loc[0, "tokens"] == ["José", "Smith", "visited", "Zoë", "in", "Paris"]
    assert out.loc[1, "tokens"] == ["Jose\u0301", "Smith", "visited", "Zoe\u0308", "in", "Paris"]
    assert out.loc[2, "tokens"] == ["नमस्ते", "दुनिया"]  # vowel signs and virama are marks: two words, not ten
    # the uncased tokenizer reads both spellings alike: one tag per word, the same tags
    assert out.loc[1, "tags"] == out.loc[0, "tags"] and len(out.loc[1, "tags"]) == 6
    for _, row in out.iterrows():
        text = row["text"]
        for entity in row["entities"]:
            assert text[entity["start"]:entity["end"]] == entity["text"]
            assert not unicodedata.category(entity["text"][0]).startswith("M")
            assert entity["end"] == len(text) or not unicodedata.category(text[entity["end"]]).startswith("M")
