"""train.compact_vocabulary: only the word-embedding rows the training rows use train, and the model saved at the end
is the one a full table trains (every weight compared), also through best-checkpoint reload and resume."""

from __future__ import annotations

import logging

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from test_train_resume_lora import Crash, CrashAtStep
from tests_support import run_config, tiny_splits
from tuneline.compact_vocabulary import (CompactWordEmbedding, compact_while_training, compact_word_embeddings,
                                         restore_word_embeddings, token_ids)
from tuneline.config import ModelConfig
from tuneline.tasks.model import build_model, load_tokenizer
from tuneline.tasks.tokenize import tokenize_splits
from tuneline.tasks.train import train_model

WORD_TABLE = "bert.embeddings.word_embeddings.weight"


def _setup(tmp_path, tiny_bert, *overrides):
    splits = tiny_splits()
    model_config = ModelConfig(base=str(tiny_bert))
    tokenizer = load_tokenizer.fn(model_config)
    # a large learning rate and weight decay: the rows no training row uses decay visibly, so a restore that left them
    # as they started would show in the comparison
    config = run_config("classification", f"model.base={tiny_bert}", "tokenize.max_length=32", "train.max_steps=8",
                        "train.eval_steps=2", "train.batch_size=8", "train.learning_rate=5e-2",
                        "train.weight_decay=0.5", "train.precision=fp32", "train.early_stopping_patience=0",
                        *overrides, path="/unused.csv")
    tokenized = tokenize_splits.fn(splits, tokenizer, config, {n: f"h-{n}" for n, _ in splits.items()},
                                   tmp_path / "cache")
    return splits, model_config, tokenizer, config, tokenized


def _train(tmp_path, name, tiny_bert, *overrides, callbacks=(), checkpoints=None):
    splits, model_config, tokenizer, config, tokenized = _setup(tmp_path, tiny_bert, *overrides)
    model = build_model.fn(model_config, "classification", splits.labels, seed=7).model
    result = train_model.fn(model, tokenizer, tokenized, splits.labels, config, model_dir=tmp_path / name,
                            checkpoint_dir=checkpoints or tmp_path / f"ckpt-{name}", extra_callbacks=list(callbacks))
    return result, load_file(str(tmp_path / name / "model.safetensors")), model, tokenized


def _assert_same_weights(compact: dict, full: dict) -> None:
    assert compact.keys() == full.keys()
    for name, tensor in full.items():
        assert compact[name].shape == tensor.shape, name
        torch.testing.assert_close(compact[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_the_compact_table_trains_the_model_a_full_table_trains(tmp_path, tiny_bert, caplog):
    with caplog.at_level(logging.INFO):
        compact, compact_weights, model, tokenized = _train(tmp_path, "compact", tiny_bert)
    full, full_weights, _, _ = _train(tmp_path, "full", tiny_bert, "train.compact_vocabulary=false")
    used = token_ids([tokenized.datasets["train"]])
    vocabulary = full_weights[WORD_TABLE].shape[0]
    assert 0 < len(used) < vocabulary / 2
    kept = len(set(used.tolist()) | {0})  # and the padding row, which the collator adds
    assert f"word embeddings: training the {kept} of {vocabulary} rows" in caplog.text
    # the keep_best reload picked a checkpoint of the compact model: the same one as the full model's
    assert compact.best_metric == pytest.approx(full.best_metric) and compact.global_step == full.global_step == 8
    _assert_same_weights(compact_weights, full_weights)
    # the Trainer counts the same non-embedding weights for its FLOPs (it read 8.15e11 against 7.59e11: QA)
    assert compact.history[-1]["total_flos"] == full.history[-1]["total_flos"] > 0
    # the caller's model holds its whole table again
    assert type(model.get_input_embeddings()) is torch.nn.Embedding
    assert model.get_input_embeddings().weight.shape[0] == vocabulary

    # the check can fail: unused rows moved (weight decay), and trained rows moved more
    base = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=3).bert.embeddings
    start = base.word_embeddings.weight.detach()
    unused = torch.ones(vocabulary, dtype=torch.bool)
    unused[used] = False
    unused[0] = False  # the padding row
    decayed = full_weights[WORD_TABLE][unused] / start[unused]
    assert float(decayed.mean()) < 0.99  # the decay the sentinel row carried over
    torch.testing.assert_close(decayed, torch.full_like(decayed, float(decayed.mean())), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(compact_weights[WORD_TABLE][used], start[used] * float(decayed.mean()), atol=1e-3)


def test_a_compact_run_resumed_after_a_crash_ends_with_the_uninterrupted_weights(tmp_path, tiny_bert):
    checkpoints = tmp_path / "ckpt"
    with pytest.raises(Crash):
        _train(tmp_path, "crashed", tiny_bert, "train.seed=42",
               callbacks=[CrashAtStep(5)], checkpoints=checkpoints)
    assert (checkpoints / "checkpoint-4").is_dir()
    saved = load_file(str(checkpoints / "checkpoint-4" / "model.safetensors"))
    assert saved[WORD_TABLE].shape[0] < 100  # the checkpoint holds the compact table (and the sentinel row)
    resumed, resumed_weights, _, _ = _train(tmp_path, "resumed", tiny_bert, "train.seed=42", checkpoints=checkpoints)
    assert resumed.resumed_from.endswith("checkpoint-4")
    _, full_weights, _, _ = _train(tmp_path, "full", tiny_bert, "train.seed=42", "train.compact_vocabulary=false")
    _assert_same_weights(resumed_weights, full_weights)


def _tiny_model(tiny_bert):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=3)
    model.config.hidden_dropout_prob = 0.0
    return model


def test_evaluation_reads_tokens_training_never_saw_from_the_base_table(tiny_bert):
    model = _tiny_model(tiny_bert)
    model.eval()
    batch = torch.tensor([[2, 10, 11, 12, 3], [2, 40, 41, 3, 0]])
    mask = (batch != 0).long()
    with torch.no_grad():
        expected = model(input_ids=batch, attention_mask=mask).logits
    compact = compact_word_embeddings(model, torch.tensor([2, 3, 10, 11, 12]))
    assert isinstance(compact, CompactWordEmbedding) and compact.kept_rows == 6  # with the padding row
    with torch.no_grad():
        compact.weight[-1].fill_(0.5)  # as if the optimizer had decayed every unused row to half
        got = model(input_ids=batch, attention_mask=mask).logits
        torch.testing.assert_close(got[0], expected[0])  # every token kept
        assert not torch.allclose(got[1], expected[1])  # tokens 40 and 41 read the base table, halved
        compact.weight[-1].fill_(1.0)
        torch.testing.assert_close(model(input_ids=batch, attention_mask=mask).logits, expected)
    model.train()
    with pytest.raises(RuntimeError, match=r"token ids \[40, 41\]"):
        model(input_ids=batch, attention_mask=mask)
    assert restore_word_embeddings(model) and not restore_word_embeddings(model)


def test_models_whose_embeddings_do_not_train_keep_their_table(tmp_path, tiny_bert):
    splits, model_config, _, config, tokenized = _setup(tmp_path, tiny_bert)
    frozen = build_model.fn(ModelConfig(base=str(tiny_bert), strategy="freeze", freeze={"embeddings": True}),
                            "classification", splits.labels).model
    table = frozen.get_input_embeddings()
    with compact_while_training(frozen, tokenized.datasets["train"]) as compact:
        assert compact is None and frozen.get_input_embeddings() is table
    full = build_model.fn(model_config, "classification", splits.labels).model
    with compact_while_training(full, tokenized.datasets["train"], enabled=False) as compact:
        assert compact is None
    with pytest.raises(ValueError, match="interrupted"):
        with compact_while_training(full, tokenized.datasets["train"]) as compact:
            assert isinstance(full.get_input_embeddings(), CompactWordEmbedding)
            raise ValueError("interrupted")
    assert type(full.get_input_embeddings()) is torch.nn.Embedding  # put back on the way out of a failure


def _steps_of_adamw(model, batches, compact: bool) -> dict[str, torch.Tensor]:
    """A few optimizer steps as the Trainer takes them (clipping at 1.0, AdamW with weight decay, a linear decay
    of the learning rate), on a compact or the full table; the weights after them."""
    used = torch.unique(torch.cat([batch["input_ids"].flatten() for batch in batches]))
    with compact_while_training(model, _Rows(used), enabled=compact):
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2, weight_decay=0.5)
        schedule = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.2, total_iters=6)
        model.train()
        for batch in batches * 3:
            model(**batch).loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            optimizer.step()
            schedule.step()
            model.zero_grad()
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


class _Rows:
    """The part of a Hugging Face dataset the compact table reads: an ``input_ids`` column in an Arrow table."""

    column_names = ["input_ids"]

    def __init__(self, ids: torch.Tensor) -> None:
        import pyarrow as pa

        self.data = pa.table({"input_ids": [ids.tolist()]})


def test_a_token_classifier_trained_compactly_ends_with_the_full_tables_weights(tiny_bert):
    """NER reads every position of the same table: the same exactness, outside the Trainer (its own loop)."""
    from transformers import AutoModelForTokenClassification

    batches = [{"input_ids": torch.tensor([[2, 10, 11, 12, 3], [2, 40, 3, 0, 0]]),
                "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]),
                "labels": torch.tensor([[-100, 1, 2, 0, -100], [-100, 1, -100, -100, -100]])},
               {"input_ids": torch.tensor([[2, 13, 10, 3]]), "attention_mask": torch.ones(1, 4, dtype=torch.long),
                "labels": torch.tensor([[-100, 2, 1, -100]])}]
    weights = {}
    for compact in (True, False):
        torch.manual_seed(0)
        model = AutoModelForTokenClassification.from_pretrained(str(tiny_bert), num_labels=3)
        weights[compact] = _steps_of_adamw(model, batches, compact)
        assert type(model.get_input_embeddings()) is torch.nn.Embedding
    _assert_same_weights(weights[True], weights[False])
    table = weights[False][WORD_TABLE]
    start = AutoModelForTokenClassification.from_pretrained(str(tiny_bert), num_labels=3).get_input_embeddings().weight
    assert not torch.allclose(table[50:], start[50:].detach(), atol=1e-3)  # unused rows decayed: the sentinel's work

