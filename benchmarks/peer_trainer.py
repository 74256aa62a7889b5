"""The peer: the plain ``Trainer`` script a user would write by hand, with the usual tricks switched on one by one.

Run by ``train_speed.py`` in a fresh process per variant, so every run starts cold the same way. It reads the same
train/dev TSV files tuneline reads, fine-tunes a sequence classifier for the given epochs, predicts the dev rows and
writes one JSON line with its timings and predictions. No evaluation or saving during training: the fastest honest
hand-written baseline.

    python benchmarks/peer_trainer.py --train t.tsv --dev d.tsv --model DIR --padding dynamic --group --bf16 --out r.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
STARTED = time.monotonic()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,  # noqa: E402
                          Trainer, TrainingArguments)


def read_tsv(path: str) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--dev", required=True)
    parser.add_argument("--model", required=True, help="a model folder (MiniLM's, or a tiny one in smoke mode)")
    parser.add_argument("--text-column", default="sentence")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--padding", choices=["max_length", "dynamic"], default="dynamic")
    parser.add_argument("--group", action="store_true", help="train_sampling_strategy=group_by_length")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--attention", default=None, help="attn_implementation (default: the model's own, sdpa)")
    parser.add_argument("--optim", default=None, help="TrainingArguments.optim (default: the Trainer's own)")
    parser.add_argument("--pad-multiple", type=int, default=None,
                        help="DataCollatorWithPadding(pad_to_multiple_of=N): fewer distinct batch shapes")
    parser.add_argument("--freeze-embeddings", action="store_true", help="the embedding layer stays as pretrained")
    parser.add_argument("--no-dropout", action="store_true", help="hidden and attention dropout 0")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    train, dev = read_tsv(args.train), read_tsv(args.dev)
    labels = sorted(set(train[args.label_column]))
    label_id = {name: i for i, name in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_id,
        **({"attn_implementation": args.attention} if args.attention else {}),
        **({"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0} if args.no_dropout else {}))
    if args.freeze_embeddings:
        model.base_model.embeddings.requires_grad_(False)
    pad = "max_length" if args.padding == "max_length" else False

    def encode(frame: pd.DataFrame) -> Dataset:
        data = Dataset.from_dict({"text": frame[args.text_column].tolist(),
                                  "labels": [label_id[v] for v in frame[args.label_column]]})
        return data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=args.max_length, padding=pad),
                        batched=True, remove_columns=["text"])

    train_data, dev_data = encode(train), encode(dev)
    training_args = TrainingArguments(
        output_dir=args.work_dir, per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=64,
        num_train_epochs=args.epochs, learning_rate=args.lr, weight_decay=0.01, warmup_steps=0.1, seed=args.seed,
        bf16=args.bf16, eval_strategy="no", save_strategy="no", logging_steps=50, report_to="none",
        train_sampling_strategy="group_by_length" if args.group else "random", disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(), **({"optim": args.optim} if args.optim else {}))
    trainer = Trainer(model=model, args=training_args, train_dataset=train_data,
                      data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=args.pad_multiple),
                      processing_class=tokenizer)
    ready = time.monotonic()
    output = trainer.train()
    trained = time.monotonic()
    # predict() after a group_by_length run: transformers 5 also reorders predict output under that strategy, so
    # predictions are made with a plain (random-sampling) copy of the arguments to keep them in dev order.
    trainer.args.train_sampling_strategy = "random"
    logits = trainer.predict(dev_data).predictions
    predictions = np.asarray(logits).argmax(-1)
    gold = np.asarray(dev_data["labels"])
    tokens = int(sum(len(ids) for ids in train_data["input_ids"]))
    real_tokens = int(sum(int(np.sum(mask)) for mask in train_data["attention_mask"]))
    result = {
        "variant": Path(args.out).stem,
        "train_rows": len(train_data), "epochs": args.epochs, "seed": args.seed,
        "train_runtime_s": float(output.metrics["train_runtime"]),
        "train_samples_per_s": len(train_data) * args.epochs / float(output.metrics["train_runtime"]),
        "global_step": int(output.global_step),
        "setup_s": ready - STARTED, "train_wall_s": trained - ready, "wall_s": time.monotonic() - STARTED,
        "dev_accuracy": float(np.mean(predictions == gold)),
        "dev_predictions": [labels[i] for i in predictions.tolist()],
        "real_tokens_per_epoch": real_tokens, "tokenized_tokens_per_epoch": tokens,
        "precision": "bf16" if args.bf16 else "fp32", "attention": model.config._attn_implementation, "optim": training_args.optim.value
        if hasattr(training_args.optim, "value") else str(training_args.optim),
    }
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
