"""Tokenize (dynamic padding, truncation, content-keyed cache) and build_model strategies, on an offline tiny BERT."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from transformers import AutoTokenizer

from tuneline.config import ModelConfig
from tuneline.tasks.lineage import content_hash
from tuneline.tasks.model import ModelBuildError, build_model
from tuneline.tasks.split import DataSplits
from tests_support import run_config
from tuneline.kinds.classification import encode_texts as encode_classification
from tuneline.tasks.tokenize import tokenize_splits, tokenizer_fingerprint
from tuneline.tasks.train import resolve_precision

LABELS = ["account", "billing", "shipping"]
LABEL2ID = {label: i for i, label in enumerate(LABELS)}


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return AutoTokenizer.from_pretrained(str(tiny_bert), use_fast=True)


def frame(rows):
    return pd.DataFrame({"text": [r[0] for r in rows], "label": [r[1] for r in rows],
                         "source_file": "x.csv", "source_row": range(1, len(rows) + 1)})


TRAIN = [("reset my password", "account"),
         ("my parcel arrived damaged and the box was not good and the courier was slow", "shipping"),
         ("refund", "billing"),
         ("why is my invoice higher", "billing")]
VALIDATION = [("where is my order", "shipping"), ("change my email address please", "account")]
TEST = [("double charge on my card", "billing")]


def max_length(n: int):
    """A classification run config that differs only in tokenize.max_length."""
    return run_config("classification", f"tokenize.max_length={n}", path="/unused.csv")


def splits_of(train=TRAIN, validation=VALIDATION, test=TEST) -> DataSplits:
    return DataSplits(train=frame(train), validation=frame(validation), test=frame(test), labels=LABELS)


def hashes(splits: DataSplits) -> dict[str, str]:
    return {name: content_hash(f, ["text", "label"]) for name, f in splits.items()}


def test_encode_never_pads_and_maps_labels(tokenizer):
    batch = {"text": [t for t, _ in TRAIN], "label": [lab for _, lab in TRAIN]}
    out = encode_classification(batch, tokenizer, max_length=128, label2id=LABEL2ID)
    lengths = [len(ids) for ids in out["input_ids"]]
    assert len(set(lengths)) == len(lengths)  # every row keeps its own length
    assert all(tokenizer.pad_token_id not in ids for ids in out["input_ids"])
    assert [len(mask) for mask in out["attention_mask"]] == lengths
    assert all(all(m == 1 for m in mask) for mask in out["attention_mask"])
    assert out["labels"] == [0, 2, 1, 1]
    assert out["truncated"] == [False, False, False, False]
    assert out["input_ids"][2] == tokenizer("refund")["input_ids"]


def test_encode_truncates_to_max_length_and_counts(tokenizer):
    batch = {"text": [t for t, _ in TRAIN], "label": [lab for _, lab in TRAIN]}
    full = [len(tokenizer(t)["input_ids"]) for t in batch["text"]]
    max_length = 8
    out = encode_classification(batch, tokenizer, max_length=max_length, label2id=LABEL2ID)
    assert len(out["input_ids"]) == 4  # overflow chunks never become extra rows
    assert [len(ids) for ids in out["input_ids"]] == [min(n, max_length) for n in full]
    assert out["truncated"] == [n > max_length for n in full]
    assert sum(out["truncated"]) == sum(n > max_length for n in full) >= 1
    assert out["labels"] == [0, 2, 1, 1]
    assert all(ids[-1] == tokenizer.sep_token_id for ids in out["input_ids"])


def test_tokenize_splits_cache_hits_and_misses(tokenizer, tmp_path):
    splits = splits_of()
    cache = tmp_path / "cache"
    first = tokenize_splits.fn(splits, tokenizer, max_length(16), hashes(splits), cache)
    assert first.cache_hits == {"train": False, "validation": False, "test": False}
    assert first.truncated["train"] == 1 and first.truncated["validation"] == 0
    assert "truncated" not in first.datasets["train"].column_names
    assert first.datasets["train"]["labels"] == [0, 2, 1, 1]

    second = tokenize_splits.fn(splits, tokenizer, max_length(16), hashes(splits), cache)
    assert second.cache_hits == {"train": True, "validation": True, "test": True}
    assert second.cache_keys == first.cache_keys
    for name in ("train", "validation", "test"):
        assert second.datasets[name]["input_ids"] == first.datasets[name]["input_ids"]
    assert second.truncated == first.truncated

    longer = tokenize_splits.fn(splits, tokenizer, max_length(64), hashes(splits), cache)
    assert longer.cache_hits == {"train": False, "validation": False, "test": False}
    assert longer.truncated["train"] == 0

    changed = splits_of(train=[*TRAIN[:3], ("why is my invoice so high", "billing")])
    third = tokenize_splits.fn(changed, tokenizer, max_length(16), hashes(changed), cache)
    assert third.cache_hits == {"train": False, "validation": True, "test": True}
    assert third.datasets["train"]["input_ids"][3] != first.datasets["train"]["input_ids"][3]


def test_many_cut_texts_are_warned_about_and_summarised(tokenizer, tmp_path, caplog):
    """One long outlier in a split is normal; a quarter of train losing its end (where a review's verdict often is)
    gets a warning naming the setting to raise, and a line in the run's summary."""
    from tuneline.tasks.tokenize import truncation_line

    splits = splits_of()
    with caplog.at_level(logging.WARNING, logger="tuneline"):
        cut = tokenize_splits.fn(splits, tokenizer, max_length(16), hashes(splits), tmp_path / "cache")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["1 of 4 train rows (25%) are longer than tokenize.max_length=16 tokens and are cut: "
                        "raise it (--set tokenize.max_length=32) if the cut part carries the label"]
    assert truncation_line(cut, 16) == "cut at tokenize.max_length=16: train 1 of 4"
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tuneline"):
        whole = tokenize_splits.fn(splits, tokenizer, max_length(64), hashes(splits), tmp_path / "cache")
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    assert truncation_line(whole, 64) == ""


def test_text_the_vocabulary_does_not_cover_is_warned_about(tokenizer, tmp_path, caplog):
    """Thai or emoji through an English vocabulary become one [UNK] token each: the model learns little and nothing
    fails, so the run says so."""
    from tuneline.tasks.tokenize import unknown_token_share

    foreign = [("ฉันต้องการคืนเงิน ☂☃☄", "billing"), ("พัสดุของฉันเสียหาย ☀☁", "shipping"),
               ("เปลี่ยนรหัสผ่าน ☎", "account"), ("ใบแจ้งหนี้ ♠♣", "billing")]
    splits = splits_of(train=foreign)
    with caplog.at_level(logging.WARNING, logger="tuneline"):
        out = tokenize_splits.fn(splits, tokenizer, max_length(64), hashes(splits), tmp_path / "cache")
    share = unknown_token_share(out.datasets["train"], tokenizer)
    assert share > 0.5
    assert any(f"{100 * share:.0f}% of the train tokens are unknown to the tokenizer" in r.getMessage()
               for r in caplog.records)
    plain = splits_of()
    assert unknown_token_share(tokenize_splits.fn(plain, tokenizer, max_length(64), hashes(plain),
                                                  tmp_path / "cache").datasets["train"], tokenizer) < 0.05


def test_tokenizer_fingerprint_ignores_per_call_truncation_state(tiny_bert, tmp_path):
    fresh = AutoTokenizer.from_pretrained(str(tiny_bert), use_fast=True)
    before = tokenizer_fingerprint(fresh)
    fresh(["good movie"], truncation=True, max_length=9)
    assert tokenizer_fingerprint(fresh) == before
    # A fresh tokenizer (a new process) finds the cache a used one wrote, and the other way round.
    splits = splits_of()
    cache = tmp_path / "cache"
    tokenize_splits.fn(splits, fresh, max_length(16), hashes(splits), cache)
    other = AutoTokenizer.from_pretrained(str(tiny_bert), use_fast=True)
    again = tokenize_splits.fn(splits, other, max_length(16), hashes(splits), cache)
    assert all(again.cache_hits.values())


# --- build_model ----------------------------------------------------------------------------------------------

def trainable(model) -> dict[str, bool]:
    return {name: p.requires_grad for name, p in model.named_parameters()}


def build(tiny_bert, **model):
    return build_model.fn(ModelConfig(base=str(tiny_bert), **model), "classification", LABELS)


def test_full_strategy_trains_everything(tiny_bert):
    built = build(tiny_bert, strategy="full")
    assert all(trainable(built.model).values())
    assert built.trainable_parameters == built.total_parameters
    assert built.trainable_fraction == 1.0
    assert built.model.config.id2label == {0: "account", 1: "billing", 2: "shipping"}
    assert built.model.config.label2id == LABEL2ID
    assert built.model.classifier.out_features == 3


def test_default_lora_adapts_every_linear_layer(tiny_bert):
    flags = trainable(build(tiny_bert, strategy="lora").model)
    adapted = {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in flags if "lora_A" in name}
    assert {"query", "key", "value", "dense"} <= adapted


def test_freeze_embeddings_and_bottom_layer(tiny_bert):
    built = build(tiny_bert, strategy="freeze", freeze={"embeddings": True, "bottom_layers": 1})
    flags = trainable(built.model)
    frozen = {n for n, ok in flags.items() if not ok}
    assert frozen == {n for n in flags if n.startswith(("bert.embeddings.", "bert.encoder.layer.0."))}
    assert any(n.startswith("bert.encoder.layer.1.") for n in flags if flags[n])
    assert flags["classifier.weight"] and flags["classifier.bias"]
    assert 0 < built.trainable_parameters < built.total_parameters
    assert built.trainable_parameters == sum(p.numel() for p in built.model.parameters() if p.requires_grad)


def test_freeze_all_but_head(tiny_bert):
    built = build(tiny_bert, strategy="freeze", freeze={"all_but_head": True})
    flags = trainable(built.model)
    assert {n for n, ok in flags.items() if ok} == {"classifier.weight", "classifier.bias"}
    assert built.trainable_parameters == 32 * 3 + 3


def test_lora_adapters_and_trainable_head(tiny_bert):
    from peft import PeftModel

    built = build(tiny_bert, strategy="lora", lora={"r": 2, "alpha": 4, "target_modules": ["query", "value"]})
    assert isinstance(built.model, PeftModel)
    flags = trainable(built.model)
    lora_names = [n for n in flags if "lora_" in n]
    assert lora_names and all(flags[n] for n in lora_names)
    assert any(".query." in n for n in lora_names) and any(".value." in n for n in lora_names)
    assert not any(".key." in n for n in lora_names)
    head = [n for n, ok in flags.items() if ok and "classifier" in n and "lora_" not in n]
    assert any(n.endswith("classifier.modules_to_save.default.weight") or n.endswith("classifier.weight")
               for n in head), head
    assert not any(flags[n] for n in flags if "word_embeddings" in n)
    assert built.trainable_fraction < 0.1
    assert built.model.config.id2label == {0: "account", 1: "billing", 2: "shipping"}


def test_lora_on_the_top_layers_only_leaves_the_lower_ones_without_adapters(tiny_bert):
    """model.lora.top_layers: the backward pass stops below the adapted layers (1.4x faster on MiniLM, top 3)."""
    import torch

    flags = trainable(build(tiny_bert, strategy="lora", lora={"top_layers": 1}).model)
    adapted = {n.split(".layer.")[1].split(".")[0] for n in flags if "lora_A" in n}
    assert adapted == {"1"}  # the tiny encoder has layers 0 and 1
    with pytest.raises(ModelBuildError, match="model.lora.top_layers=3 but the encoder has 2 layers"):
        build(tiny_bert, strategy="lora", lora={"top_layers": 3})
    built = build(tiny_bert, strategy="lora", lora={"top_layers": 1})  # and it learns: its adapters get gradients
    batch = {"input_ids": torch.tensor([[101, 7, 8, 102]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    built.model(**batch, labels=torch.tensor([1])).loss.backward()
    grads = [p.grad for n, p in built.model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None for g in grads)


def test_freeze_more_layers_than_exist_is_an_error(tiny_bert):
    with pytest.raises(ModelBuildError, match="bottom_layers=5 but the encoder has 2 layers"):
        build(tiny_bert, strategy="freeze", freeze={"bottom_layers": 5})


def test_a_lora_target_that_names_no_linear_layer_is_refused_when_the_model_is_built(tiny_bert):
    """peft refuses a list only when no entry matches: ``[query, vaule]`` built adapters on ``query`` alone."""
    with pytest.raises(ModelBuildError, match="'vaule' names no layer of this model \\(did you mean 'value'\\?\\)"):
        build(tiny_bert, strategy="lora", lora={"target_modules": ["query", "vaule"]})
    with pytest.raises(ModelBuildError, match="'attention' names a BertAttention, not a linear layer"):
        build(tiny_bert, strategy="lora", lora={"target_modules": ["attention"]})
    flags = trainable(build(tiny_bert, strategy="lora", lora={"target_modules": ["attention.self.query"]}).model)
    assert {n.split(".layer.")[1].split(".", 1)[1] for n in flags if "lora_A" in n} == {
        "attention.self.query.lora_A.default.weight"}  # a dotted suffix matches as peft matches it


def test_resolve_precision_explicit_values_pass_through():
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto") in {"fp32", "bf16", "fp16"}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_loading_the_base_says_the_new_head_in_one_line_not_a_load_report_table(tiny_bert, caplog):
    import transformers

    records = _Records()
    library = logging.getLogger("transformers.modeling_utils")
    library.addHandler(records)
    try:
        # transformers alone prints its multi-line table for the head every fine-tuning starts without ...
        transformers.AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=3)
        assert any("LOAD REPORT" in m and "classifier.weight" in m for m in records.messages)
        records.messages.clear()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            build(tiny_bert)
    finally:
        library.removeHandler(records)
    # ... which build_model replaces with one line, and no warning: nothing unexpected happened
    assert not any("LOAD REPORT" in m for m in records.messages)
    assert "new classifier head from random weights (classifier.bias, classifier.weight)" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_encoder_weights_missing_from_the_base_are_a_warning(tiny_bert, tmp_path, caplog):
    import shutil

    from safetensors.torch import load_file, save_file

    partial = tmp_path / "partial"
    shutil.copytree(tiny_bert, partial)
    weights = load_file(partial / "model.safetensors")
    dropped = [k for k in weights if "layer.0.attention.self.query" in k]
    assert dropped
    save_file({k: v for k, v in weights.items() if k not in dropped}, partial / "model.safetensors",
              metadata={"format": "pt"})
    with caplog.at_level(logging.INFO):
        build(partial)
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert warning.startswith(f"{len(dropped)} encoder weight(s) are not in {partial} and start random")
    assert "encoder.layer.0.attention.self.query" in warning and "model.base" in warning
