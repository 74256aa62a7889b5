"""What a QA pass of training as a speed-minded user found (2026-12-06): library noise in every LoRA run, and an ETA
on the last progress line of a run that early stopping had ended."""

from __future__ import annotations

import logging

from tuneline.config import ModelConfig
from tuneline.tasks.model import build_model


def test_lora_builds_without_a_library_warning_a_user_cannot_act_on(tiny_bert):
    """peft read a property transformers 5 deprecated: a FutureWarning with a file path and source line in every
    LoRA run's log (training QA)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        built = build_model.fn(ModelConfig(base=str(tiny_bert), strategy="lora"), "classification", ["a", "b"], seed=1)
    assert built.trainable_parameters < built.total_parameters
    assert [str(w.message) for w in caught if issubclass(w.category, FutureWarning)] == []


def test_the_last_progress_line_of_an_early_stopped_run_says_done_not_an_eta(caplog):
    """The Trainer's end-of-training log came with "ETA 0:00:48" at step 15 of 20 when early stopping ended the run
    (training QA)."""
    from transformers import TrainerState

    from tuneline.tasks.train import ProgressLogCallback

    progress, state = ProgressLogCallback(), TrainerState(global_step=0, max_steps=20)
    progress.on_train_begin(None, state, None)
    state.global_step = 15
    with caplog.at_level(logging.INFO):
        progress.on_log(None, state, None, logs={"loss": 0.5})
        progress.on_log(None, state, None, logs={"train_runtime": 1.5, "train_loss": 0.5})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step 15/20")]
    assert len(lines) == 2 and ", ETA " in lines[0] and lines[1].endswith(", done") and "ETA" not in lines[1]
