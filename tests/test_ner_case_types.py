"""NER word casing as token types: an uncased tokenizer reads 'Paris' and 'paris' alike, so the casing of each word
reaches the model as the token type of its subwords, in training and in serving alike."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, BertTokenizerFast

from tuneline.config import build_config
from tuneline.errors import UserError
from tuneline.kinds import kind_of
from tuneline.kinds.token_classification import encode_token_batch, tokenizer_lowercases
from tuneline.pyfunc.token_tagger import CASE_TYPES, TokenTagger, case_type, case_types_of, grow_case_types
from tuneline.tasks.model import build_model

LABELS = ["O", "B-PER", "I-PER"]


def ner_config(base: str, *overrides: str):
    raw = {"task": "token_classification", "data": {"train": "unused.conll"}}
    return build_config(raw, [f"model.base={base}", *overrides])


def test_case_type_of_a_word():
    cases = {"the": 0, "1996": 0, "-": 0, "": 0, "Paris": 1, "A": 1, "Ñu": 1, "O'Neill": 3, "EU": 2, "U.S.": 2,
             "ÉCOLE": 2, "McDonald": 3, "iPhone": 3, "1-Jan": 1}
    assert {word: case_type(word) for word in cases} == cases
    assert max(cases.values()) < CASE_TYPES


def test_encoded_rows_carry_each_words_casing_on_all_its_subwords(tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    batch = {"tokens": [["John", "visited", "BERLINX", "."]], "tags": [["B-PER", "O", "O", "O"]]}
    label2id = {label: i for i, label in enumerate(LABELS)}
    plain = encode_token_batch(batch, tokenizer, 32, label2id)
    cased = encode_token_batch(batch, tokenizer, 32, label2id, case_types=True)
    assert cased["input_ids"] == plain["input_ids"] and cased["labels"] == plain["labels"]
    assert set(plain["token_type_ids"][0]) == {0}
    word_ids = tokenizer(batch["tokens"][0], is_split_into_words=True).word_ids()
    expected = [0 if w is None else [1, 0, 2, 0][w] for w in word_ids]
    assert cased["token_type_ids"][0] == expected
    assert expected.count(2) > 1  # BERLINX is several subwords, every one of them typed as capitals
    assert cased["token_type_ids"][0] == case_types_of(batch["tokens"][0], word_ids)


def test_the_grown_model_computes_what_it_did_until_the_types_train(tiny_bert):
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3).eval()
    inputs = {"input_ids": torch.tensor([[2, 10, 11, 12, 3]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    before = model(**inputs).logits
    grow_case_types(model)
    assert model.config.type_vocab_size == CASE_TYPES and model.config.tuneline_case_types is True
    table = model.base_model.embeddings.token_type_embeddings.weight
    assert table.shape[0] == CASE_TYPES
    typed = {**inputs, "token_type_ids": torch.tensor([[0, 1, 2, 3, 0]])}
    assert torch.allclose(model(**typed).logits, before, atol=1e-6)  # every type starts as type 0
    with torch.no_grad():  # (a constant shift would vanish in the embeddings' LayerNorm)
        table[2] += torch.randn(table.shape[1], generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(model(**typed).logits, before, atol=1e-3)
    grown = table.detach().clone()
    grow_case_types(model)  # a model that has them (a champion retrained) keeps its trained table
    assert torch.equal(model.base_model.embeddings.token_type_embeddings.weight, grown)


def test_auto_is_on_for_an_uncased_bert_and_off_for_a_cased_tokenizer(tiny_bert, tmp_path):
    kind = kind_of("token_classification")
    uncased = AutoTokenizer.from_pretrained(tiny_bert)
    assert tokenizer_lowercases(uncased)
    assert kind.model_inputs(ner_config(str(tiny_bert)), uncased) == {"case_types": True}
    assert kind.model_inputs(ner_config(str(tiny_bert), "tokenize.case_types=false"), uncased) == {}
    cased = BertTokenizerFast(vocab=dict(uncased.get_vocab()), do_lower_case=False)
    assert not tokenizer_lowercases(cased)
    assert kind.model_inputs(ner_config(str(tiny_bert)), cased) == {}
    assert kind.model_inputs(ner_config(str(tiny_bert), "tokenize.case_types=true"), cased) == {"case_types": True}


def test_forcing_case_types_on_an_encoder_without_token_types_says_what_to_set(tiny_bert, tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    folder = tmp_path / "distil"
    DistilBertModel(DistilBertConfig(vocab_size=200, dim=32, n_layers=1, n_heads=2, hidden_dim=64)).save_pretrained(
        folder)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(folder)
    kind = kind_of("token_classification")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert kind.model_inputs(ner_config(str(folder)), tokenizer) == {}  # auto: off, nothing to grow
    with pytest.raises(UserError, match="tokenize.case_types=false"):
        kind.model_inputs(ner_config(str(folder), "tokenize.case_types=true"), tokenizer)


@pytest.mark.parametrize("strategy", ["freeze", "lora"])
def test_the_case_types_train_under_every_strategy_and_are_saved(tiny_bert, tmp_path, strategy):
    """Frozen embeddings or LoRA would leave the new types as copies of type 0 for ever: they must train."""
    overrides = ["model.strategy=freeze", "model.freeze.embeddings=true"] if strategy == "freeze" else \
        ["model.strategy=lora"]
    config = ner_config(str(tiny_bert), *overrides)
    built = build_model(config.model, "token_classification", LABELS, seed=0, model_inputs={"case_types": True})
    trainable = {name for name, p in built.model.named_parameters() if p.requires_grad}
    assert any("token_type_embeddings" in name for name in trainable), trainable
    assert not any("word_embeddings" in name for name in trainable)
    table = next(p for name, p in built.model.named_parameters() if "token_type_embeddings" in name and p.requires_grad)
    with torch.no_grad():
        table[3] += torch.randn(table.shape[1], generator=torch.Generator().manual_seed(0))  # as training would
    model = built.model.merge_and_unload() if strategy == "lora" else built.model
    model.save_pretrained(tmp_path)
    saved = AutoModelForTokenClassification.from_pretrained(tmp_path)
    assert saved.config.tuneline_case_types is True
    assert torch.equal(saved.base_model.embeddings.token_type_embeddings.weight[3], table[3].detach())


def test_serving_passes_the_casing_the_model_was_trained_with(tiny_bert, tmp_path):
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3, id2label=dict(enumerate(LABELS)),
                                                            label2id={v: k for k, v in enumerate(LABELS)}).eval()
    grow_case_types(model)
    with torch.no_grad():  # types that matter: capitals push towards B-PER
        model.base_model.embeddings.token_type_embeddings.weight.normal_(0, 2.0, generator=torch.Generator().manual_seed(1))
    model.save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    tokenizer.save_pretrained(tmp_path)
    tagger = TokenTagger(str(tmp_path), precision="fp32")
    assert tagger.case_types
    words = ["JOHN", "Smith", "visited", "berlinx", "."]
    (tags, scores), = tagger.tag_words([words])
    enc = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    typed = enc["token_type_ids"].clone()
    typed[0] = torch.tensor(case_types_of(words, enc.word_ids()))
    with torch.no_grad():
        proba = torch.softmax(model(**{**enc, "token_type_ids": typed}).logits, -1)[0]
        untyped = torch.softmax(model(**enc).logits, -1)[0]
    firsts = [enc.word_ids().index(w) for w in range(len(words))]
    assert scores == pytest.approx([float(proba[i].max()) for i in firsts], abs=1e-5)
    assert tags == [LABELS[int(proba[i].argmax())] for i in firsts]
    assert not torch.allclose(proba, untyped, atol=1e-3)  # without the types the model reads another sentence
    # the lower-cased sentence is another input to this model
    (lower_tags, lower_scores), = tagger.tag_words([[w.lower() for w in words]])
    assert lower_scores != pytest.approx(scores, abs=1e-4)


def test_a_seeded_share_of_training_sentences_is_shown_without_casing_and_only_train(tiny_bert, tmp_path):
    """``tokenize.uncased_share``: that share of the train split (a draw fixed by the seed) gets the token types of
    the same sentence written in lower case, so the model also learns to find names without capitals; validation and
    test keep their casing (they are scored as the data is)."""
    import pandas as pd

    from tuneline.tasks.split import DataSplits
    from tuneline.tasks.tokenize import tokenize_splits

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    sentences = [[f"Name{i}", "visited", "PARIS", "."] for i in range(400)]
    frame = pd.DataFrame({"tokens": sentences, "tags": [["B-PER", "O", "O", "O"]] * 400})
    splits = DataSplits(train=frame, validation=frame.head(50), test=frame.head(50), labels=LABELS)
    hashes = {"train": "a", "validation": "b", "test": "c"}
    lowered = encode_token_batch({"tokens": [[w.lower() for w in s] for s in sentences], "tags": frame["tags"]},
                                 tokenizer, 32, {label: i for i, label in enumerate(LABELS)}, case_types=True)
    cased = encode_token_batch({"tokens": sentences, "tags": frame["tags"]}, tokenizer, 32,
                               {label: i for i, label in enumerate(LABELS)}, case_types=True)

    def run(*overrides: str) -> dict[str, list[list[int]]]:
        config = ner_config(str(tiny_bert), "tokenize.max_length=32", *overrides)
        out = tokenize_splits.fn(splits, tokenizer, config, hashes, tmp_path)
        assert out.model_inputs == {"case_types": True}
        return {name: out.datasets[name]["token_type_ids"] for name in ("train", "validation", "test")}

    default = run()
    uncased_rows = [i for i, types in enumerate(default["train"]) if types != cased["token_type_ids"][i]]
    assert 0.14 * 400 < len(uncased_rows) < 0.26 * 400  # the default share, 0.2
    assert all(default["train"][i] == lowered["token_type_ids"][i] for i in uncased_rows)
    assert default["validation"] == cased["token_type_ids"][:50] == default["test"]
    assert run() == default                                   # the same seed draws the same rows (and reads the cache)
    other_seed = run("train.seed=7")["train"]
    assert [i for i, t in enumerate(other_seed) if t != cased["token_type_ids"][i]] != uncased_rows
    assert run("tokenize.uncased_share=0")["train"] == cased["token_type_ids"]
    half = run("tokenize.uncased_share=0.5")["train"]
    assert 0.4 * 400 < sum(t != c for t, c in zip(half, cased["token_type_ids"])) < 0.6 * 400
    with pytest.raises(UserError, match="uncased_share"):
        ner_config(str(tiny_bert), "tokenize.uncased_share=1")
