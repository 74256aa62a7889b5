"""What a task kind is: every kind-specific part of a run, behind one interface.

The flow and the tasks never ask ``if task == ...``: they call the kind of the config (``KINDS[config.task]``), and
the kind supplies the part. A new kind is one module that subclasses :class:`TaskKind` (plus its pandera schema and
its pyfunc file) and one line in :data:`tuneline.kinds.KINDS`. :func:`check_kind` runs when the registry is built,
so a kind that lacks a part fails at import with the part's name, not halfway through a training run.

Vocabulary, the same in every kind:

* a *frame* is one row per example, with the kind's canonical columns, a key column (``key_column``: the string
  that identifies the example for splitting, duplicate and leakage checks) and the provenance columns
  ``source_file``/``source_row``;
* *gold* and *predictions* are per-example values in the kind's own currency (a label name, a list of tags, a
  list of label names), and :meth:`TaskKind.score` is the ONE function that turns them into metrics: the Trainer's
  validation, the test evaluation and the champion's re-score all call it;
* the *model input* is what the registered pyfunc takes; evaluation and the champion re-score both build it with
  :meth:`TaskKind.model_input` and read the pyfunc's output back with :meth:`TaskKind.predictions_from_output`, so
  the registry's numbers come from the code that serves the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # heavy imports stay out of config loading
    import pandera.pandas as pa

    from tuneline.config import DataConfig, TunelineConfig
    from tuneline.tracking import RunContext

PYFUNC_DIR = Path(__file__).resolve().parents[1] / "pyfunc"

#: Columns every canonical frame carries besides the kind's own.
PROVENANCE = ("source_file", "source_row")

#: the registered version's tag prefix naming where training read a model input: ``column.text`` → ``sentence``
COLUMN_TAG = "column."


def file_column_names(data: Any) -> dict[str, str]:
    """Each canonical column a kind's data config names otherwise in the file (``{"text": "sentence", "label":
    "sentiment"}``): what the user knows the columns as, in the quarantine and in the registry."""
    keys = dict(data.column_keys()) if hasattr(data, "column_keys") else {}
    for key in ("tokens_column", "tags_column"):
        if getattr(data, key, None) is not None:
            keys[key] = getattr(data, key)
    named = {key.removesuffix("_column"): str(name) for key, name in keys.items()}
    return {column: name for column, name in named.items() if name != column}


def trained_column_names(data: Any) -> dict[str, str]:
    """The model's input columns that the training data named otherwise (``{"text": "sentence"}``): registered with
    the version, so that batch prediction reads a file laid out like the training data (``sentence``; MRPC's
    ``#1 String``) as it is."""
    return {column: name for column, name in file_column_names(data).items() if column not in ("label", "tags")}


@dataclass
class Evaluation:
    """One model's predictions on the test split (in test-row order) and the metrics computed from them."""

    name: str
    metrics: dict[str, float]
    predictions: list[Any]
    scores: list[Any] | None = None


@dataclass
class ReadRecords:
    """One input file read into the kind's canonical frame, plus the records that could not be used."""

    frame: pd.DataFrame
    malformed: list[dict]
    records_seen: int
    #: physical line of each record by record number (``source_lines[source_row - 1]``, 0: not known), from
    #: :meth:`tuneline.readers.ReadResult.record_lines`; the quarantine names lines with it
    source_lines: np.ndarray | None = None


class TaskKind:
    """Base class of every task kind. Class attributes describe the kind; methods supply its parts."""

    # --- description ------------------------------------------------------------------------------------------
    name: ClassVar[str]                      # the ``task:`` value
    config_model: ClassVar[type]             # a TunelineConfig subclass with task: Literal[name]
    formats: ClassVar[tuple[str, ...]]       # file formats its reader accepts
    head: ClassVar[str]                      # the transformers AutoModelFor... class name
    peft_task_type: ClassVar[str]            # peft.TaskType member name
    problem_type: ClassVar[str | None] = None
    pyfunc_file: ClassVar[str]               # file in tuneline/pyfunc/, self-contained, copied into the model
    input_example: ClassVar[Any]             # logged with the model; fixes its MLflow signature
    value_column: ClassVar[str] = "text"     # the column a quarantine row shows as the record's value
    key_column: ClassVar[str] = "text"       # identifies an example: split, duplicates, leakage
    lineage_columns: ClassVar[tuple[str, ...]]  # columns whose content hash identifies a split
    target_column: ClassVar[str]             # the gold column of a frame
    #: a column of raw text that prediction inputs may hold instead of :meth:`model_input`'s (NER: ``text``, split
    #: into words by the model, instead of ``tokens``); such inputs may also come as CSV/TSV
    raw_text_column: ClassVar[str | None] = None
    #: whether a label with no train rows stops the run (single-label classes: the model can never predict it, and
    #: its test rows are sure errors); tags and multi-label labels only warn, as a tag scheme may list a tag (``I-X``
    #: of one-word entities) that no row uses
    train_needs_every_label: ClassVar[bool] = False
    #: whether evaluation and serving cut an input at ``tokenize.max_length`` as training does (NER: no, the pyfunc
    #: tags a long sentence in overlapping windows, so only train's cut rows lose anything)
    serving_truncates: ClassVar[bool] = True
    #: whether a row's label is one tag per word of its text (NER), in word order: a list of another length is
    #: misaligned; else a list label is a set (multi-label: order and length are free)
    labels_per_word: ClassVar[bool] = False
    #: whether a row carries any number of the labels :meth:`shift_distribution` counts (multi-label: labels; NER:
    #: entity types): the loop's label-shift check then tests each label's share of rows, not one distribution over
    #: label occurrences
    labels_per_row_any: ClassVar[bool] = False
    #: how large an effect (Cohen's h of a label's share of rows; 0.8 is "large") the label-shift check needs to flag
    #: a batch, besides the test's p-value (for ``labels_per_row_any`` kinds): where one batch is one source whose
    #: mix differs from the whole data's by nature (NER: a few news documents)
    shift_min_effect: ClassVar[float] = 0.0
    #: what one class of this kind is called in messages (NER: "entity type", which a B-/I- tag pair stands for)
    label_noun: ClassVar[str] = "label"
    #: the model's second text input, for kinds that take two texts per example (pairs: ``text_pair``); the command
    #: line then asks for ``--pair`` or TEXT<TAB>SECOND lines
    second_text_column: ClassVar[str | None] = None
    #: the metric of :meth:`score` that says how far a model's answers agree with a batch's labels (the loop's
    #: ``champion_agreement`` drift check): one that stays put when a batch holds only some of the classes (a
    #: macro average then counts every class the champion wrongly predicted once as F1 0)
    agreement_metric: ClassVar[str] = "accuracy"
    #: what the champion-agreement check calls the number :meth:`agreement_scorer` computes (None: the metric's name)
    agreement_name: ClassVar[str | None] = None

    REQUIRED: ClassVar[tuple[str, ...]] = (
        "name", "config_model", "formats", "head", "peft_task_type", "pyfunc_file", "input_example",
        "lineage_columns", "target_column", "read", "label_set", "schema", "encoder", "collator", "score",
        "decode_logits", "model_input", "predictions_from_output", "baselines", "report_artifacts",
        "per_class_scores")

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.config_model.METRICS

    @property
    def pyfunc_path(self) -> Path:
        return PYFUNC_DIR / self.pyfunc_file

    # --- data -------------------------------------------------------------------------------------------------
    def read(self, path: Path, fmt: str, data: "DataConfig") -> ReadRecords:
        """Read one file into the canonical frame (kind columns, key column, ``source_file``, ``source_row``)."""
        raise NotImplementedError

    def read_file(self, path: Path, fmt: str, data: "DataConfig") -> ReadRecords:
        """:meth:`read`, for a compressed file too (``train.csv.gz``: :func:`tuneline.compressed.readable`): what the
        callers use. Records, quarantine details and errors name ``path``, never the uncompressed copy."""
        from tuneline.compressed import readable

        path = Path(path)
        with readable(path) as source:
            records = self.read(source, fmt, data)
        if source == path:
            return records
        copy, given = str(source), str(path)
        column = records.frame.get("source_file")
        if column is not None:
            records.frame["source_file"] = (column.cat.rename_categories(
                {c: given for c in column.cat.categories if c == copy})
                if isinstance(column.dtype, pd.CategoricalDtype) else column.where(column.astype(str) != copy, given))
        for row in records.malformed:
            for key, value in row.items():
                if isinstance(value, str) and copy in value:
                    row[key] = value.replace(copy, given)
        return records

    def prepare(self, frames: dict[str, pd.DataFrame], data: "DataConfig",
                quiet: bool = False, source: str = "") -> dict[str, pd.DataFrame]:
        """Rewrite frames before validation where the config asks for it (e.g. IOB1 → IOB2); default: as they are.
        ``quiet``: log nothing (a caller that only counts labels before the validation that logs the same rewrite).
        ``source``: what the frames are, for the log (the retraining loop names the batch: " in batch b.csv")."""
        return frames

    def label_set(self, frames: dict[str, pd.DataFrame], data: "DataConfig",
                  primary_metric: str | None = None) -> list[str]:
        """The configured label set, or the one inferred from the training frame (then frozen for the run).
        ``primary_metric``: the gate's metric (None: the kind's default), for a kind whose label policy depends on
        it (pairs need a positive class only for ``f1_positive``)."""
        raise NotImplementedError

    def schema(self, labels: list[str], train_keys: list[str] | None, data: "DataConfig") -> "pa.DataFrameSchema":
        """The pandera contract for one split (train_keys given for validation/test: no leakage)."""
        raise NotImplementedError

    def describe_failures(self, quarantine: pd.DataFrame, frames: dict[str, pd.DataFrame],
                          labels: list[str], names: dict[str, str] | None = None, *, data: Any = None,
                          source_lines: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
        """Fill the quarantine's ``detail`` column where the kind can say more than the rule name. ``names``: the
        file's name of each canonical column it names otherwise (:func:`file_column_names`), for details that name
        a column: the user knows MRPC's second sentence as ``#2 String``, not as ``text_pair``. ``data`` (the data
        config) and ``source_lines`` (each file's line of each record) let a detail name a line inside a record:
        a CoNLL sentence spans one line per token."""
        return quarantine

    def label_distribution(self, frame: pd.DataFrame) -> dict[str, int]:
        """How often each label (tag, label of a list) occurs in a frame: lineage tags, drift, absent-label warnings."""
        counts = frame[self.target_column].value_counts()
        return {str(k): int(v) for k, v in sorted(counts.items())}

    def shift_distribution(self, frame: pd.DataFrame) -> dict[str, int]:
        """What the loop's label-shift check compares between a batch and the data so far: the label distribution
        (for ``labels_per_row_any`` kinds, the rows carrying each label)."""
        return self.label_distribution(frame)

    def label_class(self, label: str) -> str | None:
        """The class a label stands for (NER: ``B-PER`` and ``I-PER`` stand for ``PER``; ``O`` for none: None), for
        the loop's label growth and drift, which reason about classes, not about the labels a head predicts."""
        return label

    def labels_no_head_can_learn(self, unseen: list[str], data: Any) -> str | None:
        """Why a batch's unseen labels are no labels of this kind at all (NER: IOBES tags, words read as tags), so
        that label growth must never add them and the batch is refused for its layout, not for new labels; None when
        they are labels (new classes, or typos of known ones). Every label is one for a single-label kind."""
        return None

    def labels_of_classes(self, classes: list[str]) -> list[str]:
        """Every label the head needs for these classes (NER: both tags of each type)."""
        return list(classes)

    # --- model ------------------------------------------------------------------------------------------------
    def encoder(self, tokenizer: Any, max_length: int, label2id: dict[str, int], config: "TunelineConfig",
                model_inputs: dict[str, Any]) -> tuple[Callable[[dict[str, list]], dict[str, list]], list[str]]:
        """A ``datasets`` batched map function (outputs input ids, ``labels`` and a ``truncated`` count per row) and
        the frame columns it reads; ``model_inputs`` is :meth:`model_inputs`, resolved once by the tokenize task."""
        raise NotImplementedError

    def encoder_settings(self, config: "TunelineConfig") -> dict[str, Any]:
        """Config values that change the encoder's output (part of the tokenization cache key)."""
        return {}

    def train_augmentation(self, config: "TunelineConfig", model_inputs: dict[str, Any]
                           ) -> tuple[Callable[[dict[str, list], list[int]], dict[str, list]], dict[str, Any]] | None:
        """A batched ``datasets`` map function over the *encoded train split only* (it gets the row indices) and the
        settings that change its output (part of its cache key), or None. Validation, test and serving see the data
        as it is; this is where a kind teaches the model inputs it will meet in the wild (NER: text without casing)."""
        return None

    def model_inputs(self, config: "TunelineConfig", tokenizer: Any) -> dict[str, Any]:
        """What the encoder gives the model beyond the tokenizer's own inputs, which the model must be built to take
        (NER: word casing as token types). Tokenization resolves it once; :meth:`adapt_model` builds for it."""
        return {}

    def adapt_model(self, model: Any, inputs: dict[str, Any]) -> list[str]:
        """Make a freshly loaded model take :meth:`model_inputs`; returns the names of modules that must train
        under every strategy (freezing and LoRA leave them trainable)."""
        return []

    def collator(self, tokenizer: Any) -> Any:
        raise NotImplementedError

    # --- metrics: one function for validation, test and the champion ---------------------------------------------
    def score(self, gold: list[Any], predicted: list[Any], labels: list[str]) -> dict[str, float]:
        """The kind's metrics (exactly ``self.metrics``) from gold and predicted values."""
        raise NotImplementedError

    def agreement_scorer(self, gold: list[Any], predicted: list[Any], labels: list[str]) -> Callable[[Any], float]:
        """The champion-agreement check's number on the rows at some indices (repeats allowed: it is bootstrapped):
        :attr:`agreement_metric` by default (:meth:`subset_score`)."""
        return self.subset_score(gold, predicted, labels, self.agreement_metric)

    def shuffled_gold(self, gold: list[Any], rng: Any) -> list[Any]:
        """``gold`` with its labels no longer belonging to their rows, as an exporter's wrong join leaves them: the
        champion-agreement drift check scores the champion's answers against it for the chance level of its metric.
        Rows permuted (``rng``: a numpy Generator)."""
        return [gold[i] for i in rng.permutation(len(gold))]

    def decode_logits(self, logits: Any, label_ids: Any, labels: list[str]) -> tuple[list[Any], list[Any]]:
        """Gold and predicted values from the Trainer's evaluation arrays (for :meth:`score`)."""
        raise NotImplementedError

    def settle_scoring(self, labels: list[str], config: Any) -> None:
        """Settle what :meth:`score` needs from the run's config, as it is given the label list only; called where a
        Trainer is built (:func:`tuneline.tasks.train.build_trainer`), so in every process that scores, a DDP
        worker's too. Nothing for most kinds (the pair kind: its positive class)."""

    def trainer_metrics(self, labels: list[str]) -> Callable[[Any], dict[str, float]]:
        """The Trainer's ``compute_metrics``: decode the logits, then the same :meth:`score` as everywhere else."""

        def compute(prediction: Any) -> dict[str, float]:
            logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
            gold, predicted = self.decode_logits(logits, prediction.label_ids, labels)
            return self.score(gold, predicted, labels)

        return compute

    # --- evaluation and serving ---------------------------------------------------------------------------------
    def gold(self, frame: pd.DataFrame) -> list[Any]:
        return list(frame[self.target_column])

    def model_input(self, frame: pd.DataFrame) -> Any:
        """What the registered pyfunc is given for these rows (evaluation and champion re-score alike)."""
        raise NotImplementedError

    def predictions_from_output(self, output: Any) -> tuple[list[Any], list[Any] | None]:
        """Per-row predictions (and scores, if any) from the pyfunc's output DataFrame."""
        raise NotImplementedError

    def score_output(self, output: Any, frame: pd.DataFrame, labels: list[str]) -> dict[str, float]:
        """Score a pyfunc's raw output for ``model_input(frame)`` against the frame's gold values."""
        predicted, _ = self.predictions_from_output(output)
        if len(predicted) != len(frame):
            raise ValueError(f"the model returned {len(predicted)} predictions for {len(frame)} test rows")
        return self.score(self.gold(frame), predicted, labels)

    #: Metrics that are the mean of a per-row right/wrong outcome: the gate compares them with McNemar's test.
    per_row_metrics: ClassVar[tuple[str, ...]] = ()

    def per_class_scores(self, gold: list[Any], predicted: list[Any], labels: list[str]) -> dict[str, float]:
        """F1 of each class (entity type, label) present in ``gold``: what the forgetting gate compares per class."""
        raise NotImplementedError

    def subset_score(self, gold: list[Any], predicted: list[Any], labels: list[str],
                     metric: str) -> Callable[[Any], float]:
        """``metric`` on the rows at some indices (repeats allowed), called a thousand times by the gate's paired
        bootstrap and the reports' confidence intervals. The default re-runs :meth:`score` on the subset; kinds
        override it with a vectorised version of the same numbers."""

        def score(indices: Any) -> float:
            return self.score([gold[i] for i in indices], [predicted[i] for i in indices], labels)[metric]

        return score

    def signature(self) -> Any:
        """An explicit MLflow signature for the registered model, when the one MLflow infers from
        ``input_example`` would refuse a documented input form; None: inferred (or from the pyfunc's type hints)."""
        return None

    def load_predictor(self, model_dir: Path) -> Any:
        """The pyfunc file's model class on a saved folder: ``.predict(model_input)`` returns the pyfunc's output."""
        import importlib

        module = importlib.import_module(f"tuneline.pyfunc.{Path(self.pyfunc_file).stem}")
        return module.load_predictor(str(model_dir))

    def calibrate(self, model_dir: Path, splits: Any, config: "TunelineConfig",
                  run: "RunContext | None") -> dict[str, Any]:
        """Fit post-training settings on the validation split and store them in the saved model (default: none)."""
        return {}

    def baselines(self, splits: Any, config: "TunelineConfig") -> list[Evaluation]:
        """The "before" models scored on the test rows: each a real, cheap alternative to fine-tuning."""
        raise NotImplementedError

    def shuffled(self, predictions: list[Any], rng: np.random.Generator) -> list[Any]:
        """``predictions`` dealt to the rows in a random order: answers that have nothing to do with the inputs, as
        often of each kind as the model gives them (the chance baseline, :func:`tuneline.tasks.evaluate.chance`)."""
        return [predictions[i] for i in rng.permutation(len(predictions))]

    def report_artifacts(self, fine_tuned: Evaluation, test: pd.DataFrame, labels: list[str],
                         folder: Path) -> dict[str, float]:
        """Write the kind's report files into ``folder`` (per-class tables, plots, predictions); return per-class
        metrics to log (``test.<label>.f1`` ...)."""
        raise NotImplementedError


def check_kind(kind: TaskKind) -> TaskKind:
    """Fail at import, naming the part, when a kind does not supply everything the flow calls."""
    missing = []
    for part in TaskKind.REQUIRED:
        value = getattr(type(kind), part, None)
        if value is None or getattr(value, "__func__", value) is getattr(TaskKind, part, None):
            missing.append(part)
    if missing:
        raise TypeError(f"task kind {type(kind).__name__} lacks {', '.join(missing)}: every kind must supply them "
                        "(see tuneline/kinds/base.py)")
    if not kind.pyfunc_path.is_file():
        raise TypeError(f"task kind {kind.name!r}: pyfunc file {kind.pyfunc_path} does not exist")
    if kind.config_model.model_fields["task"].default != kind.name:
        raise TypeError(f"task kind {kind.name!r}: its config model's task must default to {kind.name!r}")
    if not kind.config_model.METRICS or kind.config_model.DEFAULT_METRIC not in kind.config_model.METRICS:
        raise TypeError(f"task kind {kind.name!r}: its config model must list METRICS including DEFAULT_METRIC")
    if kind.agreement_metric not in kind.config_model.METRICS:
        raise TypeError(f"task kind {kind.name!r}: agreement_metric {kind.agreement_metric!r} is not one of its METRICS")
    return kind
