"""Gradient accumulation must not change the loss scale: 2 x 16 rows is one step of 32, not twice its loss."""

from __future__ import annotations

from transformers import TrainerCallback

from tests_support import run_config, tiny_training
from tuneline.tasks.train import build_trainer


class FirstLoss(TrainerCallback):
    def __init__(self) -> None:
        self.loss: float | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.loss is None and logs and "loss" in logs:
            self.loss = float(logs["loss"])


def first_logged_loss(tmp_path, tiny_bert, batch: int, accumulation: int) -> float:
    config = run_config("classification", f"model.base={tiny_bert}", f"work_dir={tmp_path}", "train.precision=fp32",
                        f"train.batch_size={batch}", f"train.gradient_accumulation_steps={accumulation}",
                        "train.max_steps=1", "train.logging_steps=1", "train.learning_rate=1e-12",
                        "train.warmup_ratio=0", "train.group_by_length=false", "tokenize.max_length=32",
                        path="unused.csv")
    splits, tokenizer, tokenized, model = tiny_training(config, tmp_path)
    recorder = FirstLoss()
    trainer = build_trainer(model, tokenizer, tokenized.datasets["train"], tokenized.datasets["validation"],
                            splits.labels, config, tmp_path / f"ckpt-{accumulation}", "fp32", [recorder])
    trainer.train()
    return recorder.loss


def test_accumulated_steps_report_and_apply_the_mean_loss(tmp_path, tiny_bert):
    whole = first_logged_loss(tmp_path, tiny_bert, batch=32, accumulation=1)
    halves = first_logged_loss(tmp_path, tiny_bert, batch=16, accumulation=2)
    assert abs(halves - whole) < 0.05 * whole, (whole, halves)  # the bug this pins gave halves == 2 * whole
