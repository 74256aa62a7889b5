"""Training behaviours that need a real Trainer: resume after an interruption, LoRA registered as a plain model."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from transformers import TrainerCallback

from tests_support import run_config, tiny_splits
from tuneline.config import build_config
from tuneline.demo import demo_config_dict, write_demo_csv
from tuneline.flows.train import train_flow
from tuneline.tasks.model import build_model, load_tokenizer
from tuneline.tasks.tokenize import tokenize_splits
from tuneline.tasks.train import train_model


class Crash(RuntimeError):
    pass


class StepRecorder(TrainerCallback):
    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


class CrashAtStep(TrainerCallback):
    """Simulates a machine going away mid-training (after a checkpoint was written)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Crash(f"interrupted at step {state.global_step}")


def test_interrupted_training_resumes_from_last_checkpoint(tmp_path, tiny_bert, caplog):
    from tuneline.config import ModelConfig

    splits = tiny_splits()
    model_config = ModelConfig(base=str(tiny_bert))
    tokenizer = load_tokenizer.fn(model_config)
    config = run_config("classification", f"model.base={tiny_bert}", "tokenize.max_length=32", "train.max_steps=6",
                        "train.eval_steps=2", "train.batch_size=8", "train.learning_rate=1e-3",
                        "train.precision=fp32", "train.early_stopping_patience=0", "train.logging_steps=1",
                        path="/unused.csv")
    tokenized = tokenize_splits.fn(splits, tokenizer, config, {n: f"h-{n}" for n, _ in splits.items()},
                                   tmp_path / "cache")
    checkpoints = tmp_path / "ckpt"

    first = build_model.fn(model_config, "classification", splits.labels).model
    with pytest.raises(Crash):
        train_model.fn(first, tokenizer, tokenized, splits.labels, config, model_dir=tmp_path / "model",
                       checkpoint_dir=checkpoints, extra_callbacks=[CrashAtStep(5)])
    assert sorted(p.name for p in checkpoints.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert not (tmp_path / "model").exists()

    second = build_model.fn(model_config, "classification", splits.labels).model
    recorder = StepRecorder()
    with caplog.at_level("INFO"):
        result = train_model.fn(second, tokenizer, tokenized, splits.labels, config, model_dir=tmp_path / "model",
                                checkpoint_dir=checkpoints, extra_callbacks=[recorder])
    # the steps this run trained, not "trained 6 steps" (training QA)
    assert any(r.getMessage().startswith("trained steps 5-6 (resumed after step 4) in ") for r in caplog.records)
    assert result.resumed_from is not None and result.resumed_from.endswith("checkpoint-4")
    assert result.global_step == 6
    assert recorder.steps == [5, 6]  # only the remaining steps ran
    # the restored history still holds the curve of the interrupted part
    assert [h["step"] for h in result.history if "loss" in h] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "model" / "model.safetensors").is_file()
    # kept until the model is registered (the flow's last step removes them): a failure in evaluation or
    # registration must not throw the training away
    assert result.checkpoint_dir == checkpoints and checkpoints.is_dir()


def crashed_at_step_5(tmp_path, tiny_bert, splits, config):
    """A tiny training that died at step 5, after its checkpoint at step 4: (model config, tokenizer, tokenized
    splits, checkpoint folder)."""
    from tuneline.config import ModelConfig

    model_config = ModelConfig(base=str(tiny_bert))
    tokenizer = load_tokenizer.fn(model_config)
    tokenized = tokenize_splits.fn(splits, tokenizer, config, {n: f"h-{n}" for n, _ in splits.items()},
                                   tmp_path / "cache")
    checkpoints = tmp_path / "ckpt"
    with pytest.raises(Crash):
        train_model.fn(build_model.fn(model_config, "classification", splits.labels).model, tokenizer, tokenized,
                       splits.labels, config, model_dir=tmp_path / "model", checkpoint_dir=checkpoints,
                       extra_callbacks=[CrashAtStep(5)])
    return model_config, tokenizer, tokenized, checkpoints


def test_a_half_written_checkpoint_is_skipped_on_resume(tmp_path, tiny_bert):
    splits = tiny_splits()
    config = run_config("classification", f"model.base={tiny_bert}", "tokenize.max_length=32", "train.max_steps=6",
                        "train.eval_steps=2", "train.batch_size=8", "train.learning_rate=1e-3",
                        "train.precision=fp32", "train.early_stopping_patience=0", "train.logging_steps=1",
                        f"work_dir={tmp_path}", path="/unused.csv")
    model_config, tokenizer, tokenized, checkpoints = crashed_at_step_5(tmp_path, tiny_bert, splits, config)
    # the process "died" while writing checkpoint-4: its weights are cut off, and a checkpoint-6 has no state file
    weights = checkpoints / "checkpoint-4" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    (checkpoints / "checkpoint-6").mkdir()
    recorder = StepRecorder()
    result = train_model.fn(build_model.fn(model_config, "classification", splits.labels).model, tokenizer,
                            tokenized, splits.labels, config, model_dir=tmp_path / "model",
                            checkpoint_dir=checkpoints, extra_callbacks=[recorder])
    assert result.resumed_from.endswith("checkpoint-2")  # the last complete one
    assert recorder.steps == [3, 4, 5, 6]


def test_lora_run_registers_a_merged_model_that_loads_without_peft(workdir, tiny_bert):
    data = write_demo_csv(workdir / "tickets.csv", realistic=False)  # keyword data: the tiny model learns it
    config = build_config(demo_config_dict(data), [
        f"model.base={tiny_bert}", "model.strategy=lora", "model.lora.r=4", "model.lora.alpha=8",
        "tracking.registered_model=lora-intents", "tokenize.max_length=32", "train.epochs=2",
        "train.learning_rate=5e-3", "train.batch_size=32", "train.precision=fp32",
        "evaluate.zero_shot_baseline=false", "gate.min_metric=0.0"])
    summary = train_flow(config)

    model_dir = Path(summary.run_dir) / "model"
    assert (model_dir / "model.safetensors").is_file()
    assert not (model_dir / "adapter_config.json").exists()  # merged: a plain transformers folder

    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), "pt") as weights:
        keys = list(weights.keys())
    assert not [k for k in keys if "lora_" in k]

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    client = mlflow.tracking.MlflowClient()
    run = client.get_run(summary.run_id)
    assert run.data.params["model.strategy"] == "lora"
    # the strategy's share of the model, in MLflow (it was in the log only): the adapters (r=4 on the query and
    # value layers) and the head, a small part of the tiny model's weights
    trainable, total = run.data.metrics["model.trainable_parameters"], run.data.metrics["model.total_parameters"]
    assert 0 < trainable < total / 3, (trainable, total)
    model = mlflow.pyfunc.load_model(f"models:/lora-intents/{summary.version}")
    predictions = model.predict(["where is my parcel", "reset my password"])
    assert set(predictions["label"]) <= set(config.data.labels)
    assert len(predictions) == 2


def test_a_rerun_after_a_crash_resumes_and_its_summary_says_from_where(workdir, tiny_bert, monkeypatch, capsys):
    """The resume was only in a log line among hundreds: the summary a user reads (printed and summary.json) did not
    say that the model came from a run continued at a checkpoint rather than a fresh one."""
    import json
    import re

    import yaml

    from tuneline.cli import main
    from tuneline.tasks import train as train_task

    data = write_demo_csv(workdir / "tickets.csv", realistic=False)
    raw = demo_config_dict(data)
    raw.update(model={"base": str(tiny_bert)}, tokenize={"max_length": 32},
               train={"max_steps": 6, "eval_steps": 2, "batch_size": 16, "precision": "fp32",
                      "early_stopping_patience": 0},
               evaluate={"zero_shot_baseline": False})
    (workdir / "c.yaml").write_text(yaml.safe_dump(raw))

    class CrashAfterFour(train_task.ProgressLogCallback):  # the machine goes away after checkpoint-4 is written
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise Crash("the machine went away at step 5")
            return super().on_step_end(args, state, control, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(train_task, "ProgressLogCallback", CrashAfterFour)
        assert main(["train", "-c", "c.yaml"]) != 0
    capsys.readouterr()
    assert main(["train", "-c", "c.yaml"]) == 0
    printed = capsys.readouterr().out
    [line] = [line for line in printed.splitlines() if line.strip().startswith("resumed")]
    assert "checkpoint-4 (left by an interrupted run of the same config and data" in line
    [data] = [line for line in printed.splitlines() if line.strip().startswith("data ")]  # where the rows went
    assert re.fullmatch(r"  data {14}: [\d,]+ records read; train [\d,]+, validation [\d,]+, test [\d,]+ rows", data)
    run_dir = next(line.split(":", 1)[1].strip() for line in printed.splitlines() if "reports" in line)
    assert json.loads((Path(run_dir) / "summary.json").read_text())["resumed_from"].endswith("checkpoint-4")
    # in MLflow the finishing run names the crashed run it continued, which read as a lone FAILED run (QA, L3)
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    crashed, finished = sorted(client.search_runs([e.experiment_id for e in client.search_experiments()]),
                               key=lambda r: r.info.start_time)
    assert (crashed.info.status, finished.info.status) == ("FAILED", "FINISHED")
    assert finished.data.tags["train.resumed_run"] == crashed.info.run_id


@pytest.mark.parametrize("state, size", [("scheduler.pt", 0), ("rng_state.pth", 100), ("training_args.bin", 50)])
def test_a_checkpoint_with_a_cut_off_state_file_is_skipped_on_resume(tmp_path, tiny_bert, state, size):
    """A truncated scheduler.pt or rng_state.pth in the newest checkpoint made every re-run fail with a bare
    EOFError (training QA): only the weights, trainer_state.json and optimizer.pt were checked."""
    from tuneline.tasks.train import last_complete_checkpoint

    splits = tiny_splits()
    config = run_config("classification", f"model.base={tiny_bert}", "tokenize.max_length=32", "train.max_steps=6",
                        "train.eval_steps=2", "train.batch_size=8", "train.precision=fp32",
                        "train.early_stopping_patience=0", f"work_dir={tmp_path}", path="/unused.csv")
    model_config, tokenizer, tokenized, checkpoints = crashed_at_step_5(tmp_path, tiny_bert, splits, config)
    assert (checkpoints / "checkpoint-4" / state).is_file()
    cut = checkpoints / "checkpoint-4" / state
    cut.write_bytes(cut.read_bytes()[:size])
    assert last_complete_checkpoint(checkpoints).endswith("checkpoint-2")
    recorder = StepRecorder()
    result = train_model.fn(build_model.fn(model_config, "classification", splits.labels).model, tokenizer,
                            tokenized, splits.labels, config, model_dir=tmp_path / "model",
                            checkpoint_dir=checkpoints, extra_callbacks=[recorder])
    assert result.resumed_from.endswith("checkpoint-2") and recorder.steps == [3, 4, 5, 6]


def test_a_rerun_after_the_last_checkpoint_trains_no_step_and_keeps_its_weights(tmp_path, tiny_bert, caplog):
    """A run stopped after training (while evaluating or registering) left a checkpoint of its last step. The
    Trainer resumed from it by skipping the trained batches and training one step more before it looked at
    max_steps: "step 6/5 (120%)", "trained steps 6-6" (loop QA)."""
    from safetensors.torch import load_file

    from tuneline.config import ModelConfig

    splits = tiny_splits()
    model_config = ModelConfig(base=str(tiny_bert))
    tokenizer = load_tokenizer.fn(model_config)
    config = run_config("classification", f"model.base={tiny_bert}", "tokenize.max_length=32", "train.max_steps=5",
                        "train.eval_steps=5", "train.batch_size=8", "train.learning_rate=1e-3",
                        "train.precision=fp32", "train.early_stopping_patience=0", path="/unused.csv")
    tokenized = tokenize_splits.fn(splits, tokenizer, config, {n: f"h-{n}" for n, _ in splits.items()},
                                   tmp_path / "cache")
    checkpoints = tmp_path / "ckpt"
    first = train_model.fn(build_model.fn(model_config, "classification", splits.labels).model, tokenizer,
                           tokenized, splits.labels, config, model_dir=tmp_path / "first",
                           checkpoint_dir=checkpoints)
    assert first.global_step == 5 and (checkpoints / "checkpoint-5").is_dir()

    recorder = StepRecorder()
    with caplog.at_level("INFO"):
        again = train_model.fn(build_model.fn(model_config, "classification", splits.labels).model, tokenizer,
                               tokenized, splits.labels, config, model_dir=tmp_path / "again",
                               checkpoint_dir=checkpoints, extra_callbacks=[recorder])
    assert recorder.steps == [] and again.global_step == 5
    assert again.resumed_from.endswith("checkpoint-5") and again.best_metric == first.best_metric
    assert any(r.getMessage().startswith("trained no step: the checkpoint of step 5 held all 5 in ")
               for r in caplog.records)
    saved, resaved = (load_file(tmp_path / name / "model.safetensors") for name in ("first", "again"))
    assert saved.keys() == resaved.keys()
    assert all(bool((saved[key] == resaved[key]).all()) for key in saved)
