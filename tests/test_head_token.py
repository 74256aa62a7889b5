"""The last layer computed for the head's token only: same logits and gradients as every position, where applied."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, BertConfig,
                          BertForSequenceClassification, BertForTokenClassification, DistilBertConfig,
                          DistilBertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification)

from tuneline.config import ModelConfig
from tuneline.head_token import compute_head_token_only, computes_head_token_only
from tuneline.tasks.model import build_model

TEXTS = ["reset my password", "my parcel arrived damaged and the box was not good", "refund",
         "why is my invoice higher than last month"]


def bert(attention: str = "eager", cls=BertForSequenceClassification, **extra):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, num_labels=3, **extra)
    config._attn_implementation = attention
    return cls(config)


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Four rows of different lengths, padded: the mask matters for the first token's attention."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 120, (4, 12), generator=generator)
    mask = torch.ones_like(ids)
    for row, length in enumerate((12, 7, 3, 9)):
        mask[row, length:] = 0
        ids[row, length:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 2, 1, 2])}


def loss_and_grads(model, inputs) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    output = model(**inputs)
    output.loss.backward()
    return output.loss.detach(), output.logits.detach(), {
        name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_logits_loss_and_every_gradient_match_the_full_model(attention):
    full = bert(attention).eval()  # eval: no dropout, so the two computations are comparable number for number
    short = copy.deepcopy(full)
    assert compute_head_token_only(short)
    for seed in range(3):
        inputs = batch(seed)
        loss, logits, grads = loss_and_grads(full, inputs)
        short_loss, short_logits, short_grads = loss_and_grads(short, inputs)
        torch.testing.assert_close(short_logits, logits, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(short_loss, loss, rtol=1e-5, atol=1e-6)
        assert short_grads.keys() == grads.keys()  # every weight of the last layer still gets its gradient
        for name, grad in grads.items():
            torch.testing.assert_close(short_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    # it really computes less: the last layer returns one position
    hidden = short.bert(input_ids=batch()["input_ids"], attention_mask=batch()["attention_mask"]).last_hidden_state
    assert hidden.shape == (4, 1, 32)


def test_training_with_dropout_runs_and_learns():
    """In train mode (dropout on) the short model trains: the loss on a fixed batch falls."""
    model = bert()
    assert compute_head_token_only(model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    inputs = batch()
    first = None
    for _ in range(30):
        loss = model(**inputs).loss
        first = float(loss.detach()) if first is None else first
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    assert float(model(**inputs).loss) < 0.5 * first


def test_roberta_head_reads_the_first_token_too():
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=80, num_labels=3, pad_token_id=1)
    config._attn_implementation = "eager"
    full = RobertaForSequenceClassification(config).eval()
    short = copy.deepcopy(full)
    assert compute_head_token_only(short)
    inputs = batch()
    inputs["input_ids"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, 1)
    torch.testing.assert_close(short(**inputs).logits, full(**inputs).logits, rtol=1e-5, atol=1e-6)


def test_models_it_is_not_known_exact_for_are_left_alone():
    tagger = bert(cls=BertForTokenClassification)  # NER reads every position
    assert not compute_head_token_only(tagger)
    assert "forward" not in vars(tagger.bert.encoder.layer[-1])
    distil = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=120, dim=32, n_layers=1, n_heads=2,
                                                                  hidden_dim=64))
    assert not compute_head_token_only(distil)  # another layer layout
    decoder = bert(is_decoder=True)
    assert not compute_head_token_only(decoder)


def test_saved_weights_are_the_same_and_load_back_computing_every_position(tmp_path):
    model = bert().eval()
    keys = list(model.state_dict())
    assert compute_head_token_only(model)
    assert list(model.state_dict()) == keys
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert "forward" not in vars(loaded.bert.encoder.layer[-1])
    inputs = batch()
    torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, rtol=1e-5, atol=1e-6)
    assert loaded.bert(input_ids=inputs["input_ids"]).last_hidden_state.shape[1] == 12


@pytest.mark.parametrize("strategy,extra", [("full", {}), ("lora", {}),
                                            ("freeze", {"freeze": {"embeddings": True}})])
def test_build_model_applies_it_under_every_strategy_and_the_setting_turns_it_off(tiny_bert, strategy, extra):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    config = ModelConfig(base=str(tiny_bert), strategy=strategy, **extra)
    built = build_model.fn(config, "classification", ["a", "b", "c"], seed=1)
    off = build_model.fn(config.model_copy(update={"head_token_only": False}), "classification", ["a", "b", "c"],
                         seed=1)
    assert computes_head_token_only(built.model)
    assert not computes_head_token_only(off.model)
    built.model.eval(), off.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(built.model(**inputs).logits, off.model(**inputs).logits, rtol=1e-5, atol=1e-6)


def test_token_classification_kind_is_not_changed(tiny_bert):
    built = build_model.fn(ModelConfig(base=str(tiny_bert)), "token_classification", ["O", "B-PER", "I-PER"], seed=1)
    assert not computes_head_token_only(built.model)


def test_the_short_model_pickles_and_copies_with_its_shortcut():
    """DDP workers receive the built model pickled; a copy must still compute the first position only, correctly."""
    import pickle

    model = bert().eval()
    assert compute_head_token_only(model)
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        layer = clone.bert.encoder.layer[-1]
        assert computes_head_token_only(clone)
        assert layer.forward.args[0] is layer  # the clone's layer, not the original's
        inputs = batch()
        torch.testing.assert_close(clone(**inputs).logits, model(**inputs).logits, rtol=1e-5, atol=1e-6)
