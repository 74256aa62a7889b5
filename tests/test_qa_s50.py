"""What a QA pass of training as a speed-minded user found (2026-12-06): library noise in every LoRA run, and an ETA
on the last progress line of a run that early stopping had ended."""

from __future__ import annotations

import logging

from test_tokenize_model import _Records
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


def _resumable(tmp_path, tiny_bert, *overrides):
    """A tiny training whose validation score cannot move (a learning rate of 1e-9): early stopping ends it."""
    from tests_support import run_config, tiny_splits
    from tuneline.tasks.model import load_tokenizer
    from tuneline.tasks.tokenize import tokenize_splits

    splits = tiny_splits()
    tokenizer = load_tokenizer.fn(ModelConfig(base=str(tiny_bert)))
    config = run_config("classification", f"model.base={tiny_bert}", "tokenize.max_length=32", "train.max_steps=30",
                        "train.eval_steps=2", "train.batch_size=8", "train.learning_rate=1e-9",
                        "train.precision=fp32", "train.early_stopping_patience=2", *overrides, path="/unused.csv")
    tokenized = tokenize_splits.fn(splits, tokenizer, config, {n: f"h-{n}" for n, _ in splits.items()},
                                   tmp_path / "cache")
    return splits, tokenizer, config, tokenized


def _train(tmp_path, tiny_bert, name, checkpoints, callbacks=(), *overrides):
    from tuneline.tasks.train import train_model

    splits, tokenizer, config, tokenized = _resumable(tmp_path, tiny_bert, *overrides)
    model = build_model.fn(ModelConfig(base=str(tiny_bert)), "classification", splits.labels, seed=3).model
    return train_model.fn(model, tokenizer, tokenized, splits.labels, config, model_dir=tmp_path / name,
                          checkpoint_dir=checkpoints, extra_callbacks=list(callbacks))


def test_a_resumed_run_stops_early_where_the_uninterrupted_run_stopped(tmp_path, tiny_bert):
    """The count of evaluations without improvement was lost on resume: the resumed run trained on past the step
    where the uninterrupted one stopped, and registered another model (QA: stopped at 20 instead of 15)."""
    import pytest

    from test_train_resume_lora import Crash, CrashAtStep
    from tuneline.tasks.train import evaluation_seconds

    whole = _train(tmp_path, tiny_bert, "whole", tmp_path / "ckpt-whole")
    assert 4 < whole.global_step < 30  # it stopped early, after the checkpoint of step 4
    with pytest.raises(Crash):
        _train(tmp_path, tiny_bert, "crashed", tmp_path / "ckpt", [CrashAtStep(5)])
    resumed = _train(tmp_path, tiny_bert, "resumed", tmp_path / "ckpt")
    assert resumed.resumed_from.endswith("checkpoint-4")
    assert resumed.global_step == whole.global_step
    # the evaluations of the interrupted run are in the restored history, not in this run's time
    before = [e["eval_runtime"] for e in resumed.history if "eval_runtime" in e and e["step"] <= 4]
    after = [e["eval_runtime"] for e in resumed.history if "eval_runtime" in e and e["step"] > 4]
    assert before and after
    assert evaluation_seconds(resumed.history, 4) == pytest.approx(sum(after))


def test_keep_best_false_with_early_stopping_prints_no_library_note(tmp_path, tiny_bert):
    """transformers said "Using EarlyStoppingCallback without load_best_model_at_end=True. Once training is finished,
    the best model will not be loaded automatically." in every such run: what train.keep_best=false asks for. Its
    records reach transformers' own stderr handler, on the "transformers" logger, where this test listens too."""
    seen, library = _Records(), logging.getLogger("transformers")
    library.addHandler(seen)
    try:
        result = _train(tmp_path, tiny_bert, "last", tmp_path / "ckpt", (), "train.keep_best=false",
                        "train.max_steps=4")
    finally:
        library.removeHandler(seen)
    assert result.global_step == 4
    assert not [m for m in seen.messages if "without load_best_model_at_end" in m], seen.messages
