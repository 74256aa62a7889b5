"""Train: the transformers ``Trainer`` with early stopping, best-checkpoint reload and resume after interruption.

Checkpoints go to ``<work_dir>/checkpoints/<config fingerprint>-<data key>``: re-running the same config on the same
data after a crash resumes from the last checkpoint instead of starting over. After a successful run the merged,
final model is saved as safetensors (LoRA adapters merged into the base weights, so the result loads as a plain
model) and the checkpoints are removed. Curves go to MLflow through a Trainer callback; progress with ETA goes to the
log (and to the tqdm bar on a terminal).

With ``train.processes: N`` above 1 the same Trainer runs under DDP in N worker processes started by torchrun
(:mod:`tuneline.distributed`); the task stays in the flow's process, logs the curves of rank 0 to MLflow once and
returns the same :class:`TrainedModel`, so everything after training runs once, as in a single-process run.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from tuneline.common import pipeline_task, task_logger
from tuneline.compact_vocabulary import compact_while_training
from tuneline.errors import UserError
from tuneline.heap import frozen_heap
from tuneline.config import TrainConfig, TunelineConfig, default_learning_rate
from tuneline.interrupts import remembered_interrupts
from tuneline.kinds import kind_of
from tuneline.runtime import stderr_is_a_terminal
from tuneline.tasks.model import parameter_counts
from tuneline.tasks.tokenize import TokenizedData
from tuneline.live_curves import MlflowCurvesCallback, curve_metrics
from tuneline.tracking import RunContext, log_metrics, set_tags


@dataclass
class TrainedModel:
    model_dir: Path
    global_step: int
    train_runtime_s: float
    best_metric: float | None
    resumed_from: str | None
    precision: str
    checkpoint_dir: Path | None = None  # kept until the model is registered, then removed
    history: list[dict[str, float]] = field(default_factory=list)


@contextmanager
def exclusive_checkpoints(folder: Path, config: TunelineConfig) -> Iterator[Path]:
    """The checkpoint folder, held for this process: a second identical run started meanwhile trains in a folder of
    its own instead of resuming from (and later deleting) checkpoints another live process is writing."""
    from tuneline.locking import LockTimeout, model_lock

    import os

    # its own file, named for what it guards: beside the gate's tuneline-locks.db (in the store's folder) a second file
    # of that name in the work folder read as a stray copy of it
    url = f"sqlite:///{Path(config.work_dir).resolve() / 'checkpoint-locks.db'}"
    Path(config.work_dir).mkdir(parents=True, exist_ok=True)
    with ExitStack() as held:
        try:
            held.enter_context(model_lock(f"checkpoints-{Path(folder).name}", url, timeout_s=1.0,
                                          use_prefect=False))
            target = Path(folder)
        except LockTimeout:
            target = Path(f"{folder}-pid{os.getpid()}")
            task_logger().warning("another run is training the same config on the same data in %s; using %s",
                                  folder, target)
            held.enter_context(model_lock(f"checkpoints-{target.name}", url, timeout_s=1.0, use_prefect=False))
        _adopt_abandoned(Path(folder), target, url, held)
        yield target


OWNER_FILE = "tuneline-run-id"


def record_checkpoint_owner(folder: Path, run_id: str) -> None:
    """Name the MLflow run that trains into ``folder``: a run that resumes from its checkpoints then links the
    interrupted run it continues (tag ``train.resumed_run``), which showed in MLflow as a KILLED run with nothing
    pointing from the run that finished its work (strategies QA, L3)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OWNER_FILE).write_text(run_id + "\n", encoding="utf-8")


def checkpoint_owner(folder: Path) -> str | None:
    """The run id :func:`record_checkpoint_owner` wrote in ``folder``; None when none was (a folder of a release
    before, a run without MLflow) or it cannot be read."""
    try:
        return (folder / OWNER_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _adopt_abandoned(folder: Path, target: Path, url: str, held: ExitStack) -> None:
    """Resume from the checkpoints of an identical run that trained beside another in ``<folder>-pid<N>`` and died:
    a re-run took ``folder`` (or a folder of its own) and started over, while the dead run's further checkpoints
    stayed behind for ever (training QA). A sibling whose lock this process can take has no live run; the furthest
    complete checkpoint among them and ``target`` wins, and its folder becomes ``target``."""
    from tuneline.locking import LockTimeout, model_lock

    best, best_step = None, _checkpoint_step(last_complete_checkpoint(target)) if target.is_dir() else 0
    for sibling in sorted(folder.parent.glob(f"{folder.name}-pid*")):
        if sibling == target or not sibling.name.rpartition("-pid")[2].isdigit() or not sibling.is_dir():
            continue
        try:
            held.enter_context(model_lock(f"checkpoints-{sibling.name}", url, timeout_s=0.5, use_prefect=False))
        except LockTimeout:
            continue  # its run is training now
        step = _checkpoint_step(last_complete_checkpoint(sibling))
        if step > best_step:
            best, best_step = sibling, step
    if best is not None:
        shutil.rmtree(target, ignore_errors=True)
        best.rename(target)
        task_logger().info("taking over the checkpoints of an interrupted identical run from %s (up to step %d)",
                           best, best_step)


UNUSUAL_LEARNING_RATE = 5.0  # this many times above or below the strategy's default is worth a warning


def warn_unusual_learning_rate(config: TunelineConfig) -> float | None:
    """A learning rate far from its strategy's usual one: LoRA at a full fine-tune's 3e-5 stayed at the majority
    baseline in our runs (its adapters need about 10x), and a full fine-tune at LoRA's 5e-4 can diverge. Only a
    warning: the user may know better, and the gate still judges the result. Returns the ratio when it warned."""
    usual = default_learning_rate(config.model)
    rate = config.train.learning_rate or usual
    ratio = rate / usual
    if 1 / UNUSUAL_LEARNING_RATE <= ratio <= UNUSUAL_LEARNING_RATE:
        return None
    strategy = config.model.strategy + (" (freeze.all_but_head)" if config.model.strategy == "freeze"
                                        and config.model.freeze.all_but_head else "")
    task_logger().warning(
        "train.learning_rate %g is %s the usual rate for model.strategy %s (%g)%s; unset train.learning_rate to "
        "use the strategy's default", rate, f"{ratio:.0f}x" if ratio > 1 else f"1/{1 / ratio:.0f} of", strategy,
        usual, ": LoRA adapters at a full fine-tune's rate learn next to nothing" if config.model.strategy == "lora"
        and ratio < 1 else "")
    return ratio


#: fewer optimizer steps than this, from the base model, and a fine-tune barely leaves its start: MiniLM on 286
#: SST-2 rows, batch 32, tested on GLUE dev: 9 steps (1 epoch) accuracy 0.50 (the majority class: 0.49), 27 steps
#: 0.62, 54 steps 0.69 (2026-12-05, one seed). The learning rate's warmup alone takes a tenth of them.
FEW_STEPS = 30


def planned_steps(train: TrainConfig, train_rows: int) -> tuple[int, int]:
    """Optimizer steps an epoch and in all (``train.max_steps`` when set), as the Trainer will count them."""
    per_epoch = math.ceil(train_rows / (train.batch_size * train.gradient_accumulation_steps))
    return per_epoch, train.max_steps if train.max_steps > 0 else math.ceil(per_epoch * train.epochs)


def warn_few_steps(config: TunelineConfig, train_rows: int) -> int | None:
    """Warn when training from the base model takes fewer than :data:`FEW_STEPS` optimizer steps, naming the
    setting that gives it more: a small file at the default batch and epochs made a model no better than the
    majority class, and the gate's refusal said only that. Not when ``train.max_steps`` sets the steps: a choice,
    not an accident. Returns the planned steps when it warned."""
    train = config.train
    if train.max_steps > 0 or train_rows == 0:
        return None
    batch = train.batch_size * train.gradient_accumulation_steps
    per_epoch, steps = planned_steps(train, train_rows)
    steps = max(1, steps)
    if steps >= FEW_STEPS:
        return None
    task_logger().warning(
        "training from model.base takes only %d optimizer step%s (%s rows in batches of %d, %g epoch%s): a fine-tune "
        "rarely learns much in under %d and may stay at the majority class; give it more with --set "
        "train.epochs=%d%s, or more rows", steps, "" if steps == 1 else "s", f"{train_rows:,}", batch, train.epochs,
        "" if train.epochs == 1 else "s", FEW_STEPS, math.ceil(FEW_STEPS / per_epoch),
        f" or --set train.batch_size={smaller}" if (smaller := batch_for_steps(train, train_rows)) else "")
    return steps


def batch_for_steps(train: TrainConfig, train_rows: int, smallest: int = 4) -> int | None:
    """The largest power-of-two batch under ``train.batch_size`` (down to ``smallest``) that gives at least
    :data:`FEW_STEPS` optimizer steps, or None. A quarter of the batch was suggested before, also where it still gave
    fewer (100 rows, 1 epoch: batch 8 gives 13 steps); below a few rows a batch makes a noisy recipe of its own."""
    if train.gradient_accumulation_steps != 1:
        return None
    size = 1 << (max(1, train.batch_size - 1).bit_length() - 1)  # the largest power of two under the batch
    while size >= smallest:
        if planned_steps(train.model_copy(update={"batch_size": size}), train_rows)[1] >= FEW_STEPS:
            return size
        size //= 2
    return None


def resolve_precision(requested: str) -> str:
    """``auto`` → bf16 where the hardware runs it natively (CUDA with bf16, or a CPU with AVX512-BF16/AMX), else fp32."""
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    from tuneline.pyfunc.text_classifier import cpu_has_native_bf16  # the serving code's rule, so both agree

    return "bf16" if cpu_has_native_bf16() else "fp32"


def log_curves(run: RunContext, history: list[dict[str, Any]]) -> None:
    """Log a finished Trainer's ``log_history`` as the same metrics :class:`MlflowCurvesCallback` logs live (each
    entry's ``step`` is the global step the Trainer logged it at, not a metric)."""
    for entry in history:
        logs = {k: v for k, v in entry.items() if k != "step"}
        log_metrics(run, curve_metrics(logs), step=int(entry.get("step", 0)))


class LaterCheckpointOnTies(TrainerCallback):
    """A checkpoint that ties the best validation score replaces it: the later, longer-trained model is kept.

    The Trainer keeps the best checkpoint only on a strict improvement, so with a validation split that cannot tell
    models apart (one row, or no row of a rare class: every evaluation scores macro-F1 1.0) the first checkpoint,
    often the majority-class model of the first steps, was loaded at the end and registered, while the model trained
    to the end scored 1.0 on test. Early stopping still counts a tie as no improvement (this callback runs after
    it), so a plateau stops training as before."""

    def on_evaluate(self, args: TrainingArguments, state: Any, control: Any, metrics: dict | None = None,
                    **kwargs: Any) -> None:
        name = args.metric_for_best_model or ""
        name = name if name.startswith("eval_") else f"eval_{name}"
        value = (metrics or {}).get(name)
        if value is None or state.best_metric is None or not math.isfinite(state.best_metric):
            return
        if math.isclose(value, state.best_metric, rel_tol=0.0, abs_tol=1e-12):
            # the comparison that follows is strict: a best a hair under the tie makes the tie the new best
            state.best_metric = math.nextafter(state.best_metric, -math.inf if args.greater_is_better else math.inf)


class TrainingDiverged(UserError):
    """The loss or the gradients stopped being numbers: the settings (the learning rate) made training blow up."""


class DivergenceGuard(TrainerCallback):
    """Stop at the first logged loss, gradient norm or validation loss that is not a finite number.

    With ``train.learning_rate`` far too high the weights became NaN within a few steps, and the run went on: it
    evaluated (every row predicted the first class: accuracy 0.80 on a skewed test set), registered the model and
    served NaN scores. The Trainer's ``logging_nan_inf_filter`` keeps a NaN step out of the logged loss, but not out
    of the gradient norm or the validation loss. Raising here ends the run as a user error before evaluation."""

    WATCHED = ("loss", "grad_norm", "eval_loss")

    def __init__(self, strategy: str, usual_rate: float) -> None:
        self.strategy, self.usual_rate = strategy, usual_rate

    def on_log(self, args, state, control, logs=None, **kwargs):
        for name in self.WATCHED:
            value = (logs or {}).get(name)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                raise TrainingDiverged(
                    f"training diverged: the {name.replace('_', ' ')} became {value} at step {state.global_step} of "
                    f"{state.max_steps} (learning rate {args.learning_rate:g}); the weights are no longer numbers, so "
                    f"the run stops before evaluating or registering anything: lower train.learning_rate "
                    f"(model.strategy {self.strategy}'s default is {self.usual_rate:g})")


class ProgressLogCallback(TrainerCallback):
    """One log line per logging step with progress and ETA, for logs where no progress bar is visible."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.first_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()
        self.first_step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        done = state.global_step - self.first_step
        if not logs or done <= 0 or not state.max_steps:
            return
        elapsed = time.monotonic() - self.started
        # the Trainer's last log (train_runtime) comes after training ended, also when it stopped early: an ETA
        # there ("ETA 0:00:48" at step 15 of 20) read as if training went on (training QA)
        left = ("done" if "train_runtime" in logs
                else f"ETA {_clock(elapsed / done * (state.max_steps - state.global_step))}")
        shown = ", ".join(f"{k} {v:.4g}" for k, v in logs.items() if isinstance(v, float))
        task_logger().info("step %d/%d (%.0f%%) epoch %.2f | %s | elapsed %s, %s", state.global_step,
                           state.max_steps, 100 * state.global_step / state.max_steps, state.epoch or 0, shown,
                           _clock(elapsed), left)


class BarOnlyProgressCallback(ProgressCallback):
    """The Trainer's progress bar without its ``{'loss': ...}`` dict under the bar at every logging step:
    :class:`ProgressLogCallback` already says the same in one line with an ETA."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return None


def quiet_progress(trainer: Trainer) -> None:
    """One progress report per logging step: tuneline's line, plus the bar on a terminal (no printed log dicts)."""
    trainer.remove_callback(PrinterCallback)
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarOnlyProgressCallback())


def _checkpoint_step(checkpoint: str | Path | None) -> int:
    """The step a Trainer checkpoint folder (``checkpoint-14``) was saved at; 0 for none or another name."""
    if not checkpoint:
        return 0
    number = Path(checkpoint).name.rpartition("-")[2]
    return int(number) if number.isdigit() else 0


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def training_arguments(config: TrainConfig, output_dir: Path, primary_metric: str, precision: str,
                       train_rows: int, world_size: int = 1) -> TrainingArguments:
    """The Trainer's arguments; with ``world_size`` processes each takes ``batch_size / world_size`` rows, so the
    global batch, the number of optimizer steps and the logging/evaluation steps are those of one process."""
    distributed = world_size > 1
    eval_steps = config.eval_steps
    if eval_steps is None and config.max_steps > 0:
        eval_steps = max(1, config.max_steps // 4)
    strategy = "steps" if eval_steps else "epoch"
    # a train.logging_steps given is kept up to the run's steps (39 rows in batches of 32 logged every 2 steps
    # whatever it said: 200 lines for 400 steps); the default logs every 10 steps and at least once an epoch
    steps_per_epoch, total_steps = planned_steps(config, train_rows)
    logging_steps = (min(10, max(1, steps_per_epoch)) if config.logging_steps is None
                     else min(config.logging_steps, max(1, total_steps)))
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=config.batch_size // world_size,
        per_device_eval_batch_size=math.ceil(config.eval_batch_size / world_size),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio of total steps in transformers 5
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        optim="sgd" if config.optimizer == "sgd" else "adamw_torch_fused",  # fused: ~1.4x the step rate
        seed=config.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=eval_steps,
        save_steps=eval_steps,
        save_total_limit=2,
        load_best_model_at_end=config.keep_best,
        metric_for_best_model=f"eval_{primary_metric}",
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=logging_steps,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        report_to="none",
        # bars only on a terminal: a log file, CI or a Prefect worker gets ProgressLogCallback's lines
        disable_tqdm=distributed or not stderr_is_a_terminal(),
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        **({"ddp_backend": "nccl" if torch.cuda.is_available() else "gloo",
            "ddp_timeout": int(config.process_timeout_s),
            # On: the Trainer multiplies each process's loss by the number of processes, assuming the model divides
            # it by the token count of all processes; the encoder heads take a plain mean, so the gradients (and
            # the logged loss) came out N times too large. Off: DDP's gradient mean matches one process exactly.
            "average_tokens_across_devices": False} if distributed else {}),
    )


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest ``checkpoint-N`` that was written completely, skipping (with a log line) any that a dying process
    left half-written: no readable ``trainer_state.json``, weights whose safetensors header does not load, or a
    truncated optimizer, scheduler, random-number or arguments state (torch saves a zip: a cut-off file has no central
    directory)."""
    import json
    import zipfile

    from safetensors import safe_open

    log = task_logger()
    candidates = sorted((p for p in Path(folder).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                        key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for candidate in candidates:
        try:
            json.loads((candidate / "trainer_state.json").read_text())
            weights = [w for w in candidate.glob("*.safetensors")]
            if not weights:
                raise ValueError("no weights")
            for path in weights:
                with safe_open(str(path), "pt") as handle:
                    list(handle.keys())
            # every state the Trainer restores is a torch.save zip: a cut-off one failed every re-run with a bare
            # EOFError (a truncated scheduler.pt or rng_state.pth: training QA)
            for state in sorted({*candidate.glob("*.pt"), *candidate.glob("*.pth"), *candidate.glob("*.bin")}):
                if not zipfile.is_zipfile(state):
                    raise ValueError(f"{state.name} is truncated")
        except Exception as error:  # noqa: BLE001 - any unreadable part makes the checkpoint unusable
            log.warning("skipping incomplete checkpoint %s (%s: %s)", candidate, type(error).__name__, error)
            continue
        return str(candidate)
    return None


def checkpoint_folder(config: TunelineConfig, tokenized: TokenizedData) -> Path:
    """``<work_dir>/checkpoints/<config fingerprint>-<train data key>``: the same config on the same data finds its
    own checkpoints again after a crash, and anything else starts fresh."""
    return Path(config.work_dir) / "checkpoints" / f"{config.fingerprint()}-{tokenized.cache_keys['train'][:12]}"


@dataclass
class TrainOutcome:
    """What ``Trainer.train()`` reports, from this process or from rank 0 of the worker processes."""

    global_step: int
    train_runtime_s: float
    best_metric: float | None
    history: list[dict[str, float]]
    planned_steps: int | None = None  # the Trainer's max_steps: more than global_step when it stopped early
    best_step: int | None = None  # the step of the checkpoint kept as the model (train.keep_best)


def build_trainer(model: Any, tokenizer: Any, train_dataset: Any, eval_dataset: Any, labels: list[str],
                  config: TunelineConfig, checkpoint_dir: Path, precision: str,
                  callbacks: list[TrainerCallback] | None = None, world_size: int = 1) -> Trainer:
    """The one Trainer setup, used in this process and in each DDP worker (:mod:`tuneline.distributed`)."""
    kind = kind_of(config)
    kind.settle_scoring(labels, config)  # score() has the labels only; a DDP worker has not settled them
    train_config = config.train
    args = training_arguments(train_config, checkpoint_dir, config.primary_metric, precision, len(train_dataset),
                              world_size=world_size)
    all_callbacks: list[TrainerCallback] = [DivergenceGuard(config.model.strategy, default_learning_rate(config.model)),
                                            ProgressLogCallback(), *(callbacks or [])]
    if train_config.early_stopping_patience > 0:
        all_callbacks.append(EarlyStoppingCallback(early_stopping_patience=train_config.early_stopping_patience))
        noted = logging.getLogger("transformers.trainer_callback")
        if not any(isinstance(f, _NoKeepBestNote) for f in noted.filters):
            noted.addFilter(_NoKeepBestNote())
    if train_config.keep_best:
        all_callbacks.append(LaterCheckpointOnTies())  # after early stopping, which must still see a tie as a tie
    trainer = Trainer(model=model, args=args, data_collator=kind.collator(tokenizer), train_dataset=train_dataset,
                      eval_dataset=eval_dataset, processing_class=tokenizer,
                      compute_metrics=kind.trainer_metrics(labels), callbacks=all_callbacks)
    # The heads tuneline builds take **kwargs in forward but average their loss per batch and ignore
    # num_items_in_batch. Left to its guess (True), the Trainer would then skip dividing the loss by
    # gradient_accumulation_steps (and, under DDP, multiply it by the number of processes): steps N times too big.
    trainer.model_accepts_loss_kwargs = False
    quiet_progress(trainer)
    return trainer


def restore_early_stopping(trainer: Trainer, resume: str | None) -> None:
    """Give the run's ``EarlyStoppingCallback`` the count of evaluations without improvement that the checkpoint it
    resumes from saved. The Trainer saves it (``stateful_callbacks`` in ``trainer_state.json``) but reads it back
    only with ``restore_callback_states_from_checkpoint``, which also re-adds the callbacks it restores at the end of
    the list, after :class:`LaterCheckpointOnTies` (which must run after early stopping). Without the count, a
    resumed run trained past the step where the uninterrupted run stopped and registered another model (QA)."""
    import json

    if not resume:
        return
    try:
        saved = json.loads((Path(resume) / "trainer_state.json").read_text()).get("stateful_callbacks", {})
    except (OSError, ValueError):
        return
    stored = saved.get("EarlyStoppingCallback")
    stored = stored[0] if isinstance(stored, list) and stored else stored
    callback = next((c for c in trainer.callback_handler.callbacks if isinstance(c, EarlyStoppingCallback)), None)
    if callback is None or not isinstance(stored, dict):
        return
    for name, value in stored.get("attributes", {}).items():
        setattr(callback, name, value)


class _NoKeepBestNote(logging.Filter):
    """transformers' "Using EarlyStoppingCallback without load_best_model_at_end=True ..." for a run with
    ``train.keep_best: false``: not loading the best checkpoint is what that setting asks for (QA)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Using EarlyStoppingCallback without load_best_model_at_end")


def train_or_finish(trainer: Trainer, resume: str | None) -> Any:
    """``trainer.train(resume_from_checkpoint=resume)``, unless ``resume`` already holds every step its run planned
    (a run stopped after its last checkpoint: while evaluating, registering, gating). There the Trainer skips the
    trained batches and then trains one more step before it checks for the end ("step 6/5", "trained steps 6-6"),
    so instead the checkpoint's weights are loaded (its best one's, with keep-best, as the end of training loads
    them) and its state is the trainer's: nothing trains, and the run goes on to its evaluation."""
    from transformers.trainer_callback import TrainerState
    from transformers.trainer_utils import TrainOutput

    state_file = Path(resume) / "trainer_state.json" if resume else None
    if state_file is None or not state_file.is_file():
        return trainer.train(resume_from_checkpoint=resume)
    state = TrainerState.load_from_json(str(state_file))
    if not 0 < state.max_steps <= state.global_step:
        return trainer.train(resume_from_checkpoint=resume)
    best = state.best_model_checkpoint
    weights = best if trainer.args.load_best_model_at_end and best and Path(best).is_dir() else resume
    trainer._load_from_checkpoint(weights)  # the Trainer's own resume loading (full weights or LoRA adapters)
    trainer.state = state
    return TrainOutput(state.global_step, 0.0, {"train_runtime": 0.0})


def save_final_model(trainer: Trainer, tokenizer: Any, config: TunelineConfig, model_dir: Path) -> None:
    """Save the trained model (LoRA adapters folded into the base weights, so it loads as a plain model) and the
    tokenizer into ``model_dir``."""
    final = trainer.model
    if hasattr(final, "merge_and_unload"):
        final = final.merge_and_unload()
    final.config.tuneline_max_length = config.tokenize.max_length
    final.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)


def evaluation_seconds(history: list[dict[str, Any]], after_step: int = 0) -> float:
    """Seconds spent evaluating after ``after_step``: a resumed run's ``log_history`` holds the evaluations of the
    interrupted run too, which its ``train_runtime`` does not (one resumed run reported 11 s of 20 s evaluating, and
    an evaluation fraction of 0.525, where its own evaluations took 2 s)."""
    return sum(float(entry.get("eval_runtime", 0.0)) for entry in history if entry.get("step", 0) > after_step)


def evaluation_rows(validation: Any, max_rows: int | None, seed: int) -> Any:
    """The validation rows evaluated during training: all of them, or a seeded sample of ``max_rows``.

    Evaluation during training only picks the checkpoint and stops early; a few thousand rows decide that as well
    as tens of thousands (the standard error of an accuracy on 2,000 rows is at most 1.1 points) at a fraction of
    the cost, and the sample is the same at every evaluation, so checkpoints are compared on the same rows.
    """
    if max_rows is None or len(validation) <= max_rows:
        return validation
    return validation.shuffle(seed=seed).select(range(max_rows)).flatten_indices()


class LostInterrupt(TrainerCallback):
    """Raise KeyboardInterrupt after a step when a SIGINT or SIGTERM arrived during it and training went on: the
    handler's exception was swallowed where Python ignores exceptions (a weakref callback, a ``__del__``:
    :func:`tuneline.interrupts.remembered_interrupts`). The run then stops as a Ctrl-C stops it, giving its batches
    back, instead of training on until something kills it."""

    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    def on_step_end(self, args, state, control, **kwargs):
        if self.seen:
            raise KeyboardInterrupt(f"signal {self.seen[0]} during training step {state.global_step}")


def train_in_this_process(model: Any, tokenizer: Any, tokenized: TokenizedData, labels: list[str],
                          config: TunelineConfig, checkpoint_dir: Path, precision: str, resume: str | None,
                          model_dir: Path, callbacks: list[TrainerCallback]) -> TrainOutcome:
    validation = evaluation_rows(tokenized.datasets["validation"], config.train.eval_max_rows, config.train.seed)
    with compact_while_training(model, tokenized.datasets["train"], config.train.compact_vocabulary):
        trainer = build_trainer(model, tokenizer, tokenized.datasets["train"], validation, labels,
                                config, checkpoint_dir, precision, callbacks)
        # frozen as a flow run freezes it, for this task called alone (a notebook, a test): Trainer.train() starts
        # with gc.collect() (accelerate's free_memory), which otherwise walks every object the process imported
        with remembered_interrupts() as seen, frozen_heap():
            trainer.add_callback(LostInterrupt(seen))  # last: it raises after every other callback saw the step
            restore_early_stopping(trainer, resume)
            output = train_or_finish(trainer, resume)
    save_final_model(trainer, tokenizer, config, model_dir)
    return TrainOutcome(global_step=output.global_step,
                        train_runtime_s=float(output.metrics.get("train_runtime", 0.0)),
                        best_metric=trainer.state.best_metric, history=list(trainer.state.log_history),
                        planned_steps=trainer.state.max_steps, best_step=trainer.state.best_global_step)


def train_in_processes(model: Any, tokenizer: Any, tokenized: TokenizedData, labels: list[str],
                       config: TunelineConfig, checkpoint_dir: Path, precision: str, resume: str | None,
                       model_dir: Path, callbacks: list[TrainerCallback]) -> TrainOutcome:
    """Run :func:`build_trainer` + ``train()`` under DDP in ``train.processes`` workers; rank 0 saves the model.

    The workers' spec, logs and rank 0's result lie in ``<model_dir's folder>/train-workers``.
    """
    from tuneline.distributed import run_workers

    datasets = {"train": tokenized.datasets["train"],
                "validation": evaluation_rows(tokenized.datasets["validation"], config.train.eval_max_rows,
                                              config.train.seed)}
    result = run_workers(model, tokenizer, datasets,
                         labels, config, workers_dir=model_dir.parent / "train-workers",
                         checkpoint_dir=checkpoint_dir, model_dir=model_dir, precision=precision, resume=resume,
                         callbacks=callbacks, forward_log=task_logger().info)
    return TrainOutcome(global_step=int(result["global_step"]), train_runtime_s=float(result["train_runtime_s"]),
                        best_metric=result["best_metric"], history=list(result["history"]),
                        planned_steps=result.get("planned_steps"), best_step=result.get("best_step"))


@pipeline_task(name="train-model")
def train_model(model: Any, tokenizer: Any, tokenized: TokenizedData, labels: list[str], config: TunelineConfig,
                run: RunContext | None = None, model_dir: Path | None = None, checkpoint_dir: Path | None = None,
                extra_callbacks: list[TrainerCallback] | None = None, from_base: bool = True) -> TrainedModel:
    """Fine-tune with the Trainer; save the final (merged) model; return what happened.

    ``from_base``: the model starts from ``model.base`` (not from a champion's weights, which a few steps on new
    rows may well be enough for): too few optimizer steps are then worth a warning (:func:`warn_few_steps`).

    The model goes to ``<run folder>/model`` (``model_dir`` overrides), checkpoints to :func:`checkpoint_folder`.
    ``extra_callbacks`` lets another flow add its own Trainer callbacks (monitoring, custom stopping rules); with
    ``train.processes`` above 1 they run in every worker process, so they must be picklable.
    """
    log = task_logger()
    primary_metric = config.primary_metric
    precision = resolve_precision(config.train.precision)
    # what the strategy left to train, beside the curves: LoRA and freeze runs compared in MLflow, not in a log line
    sizes = dict(zip(("model.trainable_parameters", "model.total_parameters"), parameter_counts(model)))
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else checkpoint_folder(config, tokenized)
    if model_dir is None:
        model_dir = (run.run_dir if run is not None else Path(config.work_dir)) / "model"
    model_dir = Path(model_dir)
    train_config = config.train
    processes = train_config.processes
    with exclusive_checkpoints(checkpoint_dir, config) as checkpoint_dir:
        resume = last_complete_checkpoint(checkpoint_dir) if train_config.resume and checkpoint_dir.is_dir() else None
        resumed_run = checkpoint_owner(checkpoint_dir) if resume else None
        if resume:
            log.info("resuming from checkpoint %s%s", resume, f" of run {resumed_run}" if resumed_run else "")
        if run is not None:
            record_checkpoint_owner(checkpoint_dir, run.run_id)
        validation_rows = len(tokenized.datasets["validation"])
        evaluated = min(validation_rows, train_config.eval_max_rows or validation_rows)
        log.info("training on %d rows (%s, %s precision%s), evaluating on %s", len(tokenized.datasets["train"]),
                 train_config.optimizer, precision,
                 f", {processes} processes of {train_config.batch_size // processes} rows a batch"
                 if processes > 1 else "",
                 f"{evaluated} of {validation_rows} validation rows (train.eval_max_rows)" if evaluated < validation_rows
                 else f"{validation_rows} validation rows")
        warn_unusual_learning_rate(config)
        if from_base:
            warn_few_steps(config, len(tokenized.datasets["train"]))
        if processes > 1:
            outcome = train_in_processes(model, tokenizer, tokenized, labels, config, checkpoint_dir, precision,
                                         resume, model_dir, list(extra_callbacks or []))
            if run is not None:  # the curves of rank 0, once (a single process logs them live, below)
                log_curves(run, outcome.history)
        else:
            callbacks = [*(extra_callbacks or []), *([MlflowCurvesCallback(run)] if run is not None else [])]
            outcome = train_in_this_process(model, tokenizer, tokenized, labels, config, checkpoint_dir, precision,
                                            resume, model_dir, callbacks)
    result = TrainedModel(model_dir=model_dir, global_step=outcome.global_step,
                          train_runtime_s=outcome.train_runtime_s, best_metric=outcome.best_metric,
                          resumed_from=resume, precision=precision, checkpoint_dir=checkpoint_dir,
                          history=outcome.history)
    evaluation_s = evaluation_seconds(outcome.history, _checkpoint_step(resume))
    if run is not None:
        log_metrics(run, {"train.runtime_s": result.train_runtime_s, "train.global_step": result.global_step,
                          "train.evaluation_s": evaluation_s,
                          "train.evaluation_fraction": evaluation_s / max(result.train_runtime_s, 1e-9),
                          **({"val.best_" + primary_metric: result.best_metric} if result.best_metric is not None
                             else {}),
                          **({"train.best_step": outcome.best_step} if outcome.best_step else {}), **sizes})
        set_tags(run, {"train.precision": precision, "train.resumed_from": resume or "",
                       "train.resumed_run": resumed_run or ""})
    kept = (f"; the model is the checkpoint of step {outcome.best_step}"
            if train_config.keep_best and outcome.best_step and outcome.best_step != result.global_step else "")
    # a resumed run trained only the steps after its checkpoint: "trained 30 steps in 35 s" read as all of them
    start = _checkpoint_step(resume)
    steps = (f"steps {start + 1}-{result.global_step} (resumed after step {start})"
             if start and start < result.global_step else
             f"no step: the checkpoint of step {start} held all {result.global_step}" if start
             else f"{result.global_step} steps")
    log.info("trained %s in %.0f s (%.0f s of it evaluating); best validation %s = %s%s", steps,
             result.train_runtime_s, evaluation_s, primary_metric,
             "n/a" if result.best_metric is None else f"{result.best_metric:.4f}", kept)
    planned = outcome.planned_steps
    if train_config.early_stopping_patience and planned and result.global_step < planned:
        patience = train_config.early_stopping_patience
        log.info("stopped early at step %d of %d: validation %s did not improve for %s (train.early_stopping_patience; "
                 "0 trains every step)%s", result.global_step, planned, primary_metric,
                 "1 evaluation" if patience == 1 else f"{patience} evaluations in a row",
                 "; the model is the best checkpoint" if train_config.keep_best else "")
    return result
