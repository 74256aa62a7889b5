"""Training reports progress once per logging step, in one form: tuneline's line with an ETA (and the Trainer's bar
only on a terminal), never the Trainer's printed ``{'loss': ...}`` dicts or a bar's carriage returns in a log."""

from __future__ import annotations

import logging

import pytest

from tests_support import run_config, tiny_training
from tuneline.tasks.train import build_trainer


def test_a_training_outside_a_terminal_logs_one_line_per_logging_step(tmp_path, tiny_bert, capfd, caplog):
    config = run_config("classification", f"model.base={tiny_bert}", f"work_dir={tmp_path}", "train.precision=fp32",
                        "train.batch_size=8", "train.max_steps=4", "train.logging_steps=1", "train.eval_steps=2",
                        "tokenize.max_length=16", path="unused.csv")
    splits, tokenizer, tokenized, model = tiny_training(config, tmp_path)
    trainer = build_trainer(model, tokenizer, tokenized.datasets["train"], tokenized.datasets["validation"],
                            splits.labels, config, tmp_path / "checkpoints", "fp32")
    capfd.readouterr()
    with caplog.at_level(logging.INFO):
        trainer.train()
    printed = "".join(capfd.readouterr())

    assert "{'loss'" not in printed and "'eval_loss'" not in printed  # no Trainer log dicts
    assert "it/s]" not in printed and "\r" not in printed  # no progress bar: pytest's output is not a terminal
    steps = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    training = [m for m in steps if "| loss " in m]  # a training log: loss, grad_norm, learning_rate
    assert [m.split()[1] for m in training] == ["1/4", "2/4", "3/4", "4/4"], steps
    evaluations = [m.split()[1] for m in steps if "eval_loss" in m]
    assert evaluations == ["2/4", "4/4"], steps  # train.eval_steps=2: the validation metrics, once each
    # the Trainer's end-of-training log (train_runtime) says done: an ETA there read as if training went on
    assert all("ETA" in m for m in steps if "train_runtime" not in m)
    assert [m.rsplit(", ", 1)[1] for m in steps if "train_runtime" in m] == ["done"], steps


def test_the_lineage_datasets_notes_are_not_printed(tmp_path):
    """MLflow notes "Inferred schema contains integer column(s)" (each split's ``source_row``) and "The specified
    dataset source can be interpreted in multiple ways" for every split's dataset: not shown once tuneline is
    imported; shown without it (the check can fail)."""
    import subprocess
    import sys

    source = tmp_path / "train.csv"
    script = ("import mlflow, pandas as pd; "
              "mlflow.data.from_pandas(pd.DataFrame({'text': ['a'], 'source_row': [1]}), "
              f"source={str(source)!r}, name='train').schema")
    notes = ("Inferred schema contains integer column", "interpreted in multiple ways")
    for preamble, shown in (("import tuneline; ", False), ("", True)):
        done = subprocess.run([sys.executable, "-c", preamble + script], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert [note in done.stderr for note in notes] == [shown, shown], done.stderr[-2000:]


def test_an_early_stop_is_said_with_its_reason(tmp_path, tiny_bert, caplog):
    from tuneline.tasks.train import train_model

    # a learning rate of 1e-12 leaves the model as it is: validation never improves after the first evaluation
    config = run_config("classification", f"model.base={tiny_bert}", f"work_dir={tmp_path}", "train.precision=fp32",
                        "train.batch_size=8", "train.max_steps=12", "train.eval_steps=1", "train.optimizer=sgd",
                        "train.learning_rate=1e-12", "train.early_stopping_patience=1", "tokenize.max_length=16",
                        path="unused.csv")
    splits, tokenizer, tokenized, model = tiny_training(config, tmp_path)
    with caplog.at_level(logging.INFO):
        trained = train_model.fn(model, tokenizer, tokenized, splits.labels, config, model_dir=tmp_path / "model",
                                 checkpoint_dir=tmp_path / "checkpoints")
    assert trained.global_step == 2
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopped early")]
    assert said == [f"stopped early at step 2 of 12: validation {config.primary_metric} did not improve for 1 "
                    "evaluation (train.early_stopping_patience; 0 trains every step); the model is the best "
                    "checkpoint"]


def test_a_signal_whose_interrupt_was_swallowed_still_stops_training_at_the_next_step(tmp_path, tiny_bert):
    """A Ctrl-C whose KeyboardInterrupt lands in a weakref callback or ``__del__`` is lost ("Exception ignored in"):
    CI saw `tuneline serve`'s training go on after Ctrl-C and its batches stay claimed. Here a callback swallows the
    interrupt of a real SIGINT, as such a place does; the training must stop at the end of that step all the same."""
    import os
    import signal

    from transformers import TrainerCallback

    from tuneline.tasks.train import train_model

    class SwallowsCtrlC(TrainerCallback):
        def __init__(self) -> None:
            self.swallowed_at: int | None = None

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                try:
                    os.kill(os.getpid(), signal.SIGINT)
                    for _ in range(1000):  # the handler runs between bytecodes, inside this try
                        pass
                except KeyboardInterrupt:
                    self.swallowed_at = state.global_step

    config = run_config("classification", f"model.base={tiny_bert}", f"work_dir={tmp_path}", "train.precision=fp32",
                        "train.batch_size=8", "train.max_steps=50", "tokenize.max_length=16", path="unused.csv")
    splits, tokenizer, tokenized, model = tiny_training(config, tmp_path)
    swallower = SwallowsCtrlC()
    # Python's own Ctrl-C handler, as in a command's process (a pytest-xdist worker ignores SIGINT)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt, match=r"signal 2 during training step 3"):
            train_model.fn(model, tokenizer, tokenized, splits.labels, config, model_dir=tmp_path / "model",
                           checkpoint_dir=tmp_path / "checkpoints", extra_callbacks=[swallower])
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler in place before, again
    finally:
        signal.signal(signal.SIGINT, before)
    assert swallower.swallowed_at == 3


@pytest.mark.parametrize("overrides, logging_steps", [
    (["train.epochs=200", "train.logging_steps=50"], 50),  # 39 rows, 2 steps an epoch: it was 2
    (["train.epochs=1", "train.logging_steps=50"], 2),  # a 2-step run still logs its loss
    (["train.max_steps=3", "train.logging_steps=10"], 3),
    (["train.epochs=200"], 2),  # the default: every 10 steps, and at least once an epoch (a curve point per epoch)
    (["train.epochs=1"], 2),
])
def test_train_logging_steps_is_kept_up_to_the_runs_own_steps(tmp_path, overrides, logging_steps):
    """CLI QA: ``train.logging_steps=50`` on 39 rows logged a progress line every 2 steps (capped at an epoch's
    steps), about 200 lines for 400 steps. Unset, the cap at an epoch stays: a short run's loss curve in MLflow has
    a point per epoch (the scaled-setup test counts them)."""
    from tuneline.tasks.train import training_arguments

    config = run_config("classification", *overrides, path="unused.csv")
    args = training_arguments(config.train, tmp_path, "macro_f1", "fp32", train_rows=39)
    assert args.logging_steps == logging_steps
