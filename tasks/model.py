"""Build model: a pretrained encoder with a fresh task head, and the training strategy applied to it.

Strategies: ``full`` (every weight trains), ``lora`` (peft adapters on the configured modules; the head trains in
full), ``freeze`` (embeddings and/or the bottom N encoder layers, or everything but the head, are frozen).
``trust_remote_code`` stays off unless the config turns it on.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import transformers
from transformers import AutoTokenizer

from tuneline.errors import UserError
from tuneline.common import pipeline_task, task_logger
from tuneline.config import ModelConfig
from tuneline.head_token import compute_head_token_only
from tuneline.kinds import TaskKind, kind_of
from tuneline.runtime import resolve_base_model


@dataclass
class BuiltModel:
    model: Any
    base_path: str
    trainable_parameters: int
    total_parameters: int

    @property
    def trainable_fraction(self) -> float:
        return self.trainable_parameters / self.total_parameters if self.total_parameters else 0.0


def parameter_counts(model: Any) -> tuple[int, int]:
    """(trainable, total) weights of ``model``: what its training strategy left to train."""
    parameters = list(model.parameters())
    return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)


class ModelBuildError(UserError):
    """The model cannot be built as configured; the message names the config key."""


@pipeline_task(name="load-tokenizer")
def load_tokenizer(config: ModelConfig) -> Any:
    """The base model's fast tokenizer (offline: a local path or the installed MiniLM)."""
    base = resolve_base_model(config.base)
    refuse_custom_code(config, base)
    try:
        tokenizer = AutoTokenizer.from_pretrained(base, use_fast=True, trust_remote_code=config.trust_remote_code)
    except OSError as error:
        raise ModelBuildError(f"cannot load a tokenizer from model.base={config.base!r} ({error}); use 'minilm', a "
                              "local model folder, or a model id already in the local Hugging Face cache") from None
    except ValueError as error:
        raise _refused_remote_code(config, error) from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelBuildError(f"model.base={config.base!r} has no fast tokenizer; tuneline needs one (word ids, "
                              "offsets)")
    return tokenizer


def refuse_custom_code(config: ModelConfig, base: str) -> None:
    """A model folder whose config maps Auto classes to its own Python files (``auto_map``) is refused unless
    trusted: transformers would otherwise either run that code or silently substitute its own classes."""
    config_file = Path(base) / "config.json"
    if config.trust_remote_code or not config_file.is_file():
        return
    try:
        auto_map = json.loads(config_file.read_text()).get("auto_map")
    except (OSError, ValueError):
        return
    if auto_map:
        raise ModelBuildError(f"model.base={config.base!r} ships its own Python code ({config_file} maps "
                              f"{', '.join(sorted(auto_map))} to it), which tuneline does not load unless you set "
                              "model.trust_remote_code: true (only for code you have read)")


def _refused_remote_code(config: ModelConfig, error: ValueError) -> Exception:
    """transformers refuses a model folder that ships its own code unless trusted: say so in the config's words."""
    if "trust_remote_code" in str(error) and not config.trust_remote_code:
        return ModelBuildError(f"model.base={config.base!r} ships its own Python code, which tuneline does not run "
                               "unless you set model.trust_remote_code: true (only for code you have read)")
    return error


def _encoder_parts(model: Any) -> tuple[Any, list[Any]]:
    base = model.base_model
    embeddings = getattr(base, "embeddings", None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if embeddings is None or layers is None:
        raise ModelBuildError(f"model.freeze needs a BERT-family encoder (.embeddings and .encoder.layer); "
                              f"{type(base).__name__} has a different layout: use model.strategy=full or lora")
    return embeddings, list(layers)


def strategy_problem(model: Any, config: ModelConfig) -> str | None:
    """Why ``config``'s strategy cannot be applied to ``model`` as written, in the config's words, or None.

    The model's layout decides what a config can only state: how many layers there are to freeze or adapt, and what
    its layers are named. One check for both callers: :func:`check_strategy` before any work, and
    :func:`build_model` for a caller that skipped it."""
    try:
        if config.strategy == "lora":
            top = config.lora.top_layers
            if top is not None and top > (count := len(_encoder_parts(model)[1])):
                return f"model.lora.top_layers={top} but the encoder has {count} layers"
            return lora_target_problem(model, list(config.lora.target_modules))
        if config.strategy == "freeze" and not config.freeze.all_but_head:
            bottom = config.freeze.bottom_layers
            if bottom > (count := len(_encoder_parts(model)[1])):
                return f"model.freeze.bottom_layers={bottom} but the encoder has {count} layers"
            if config.freeze.embeddings and bottom == count:
                # the head alone trains, as with all_but_head, but at full fine-tuning's learning rate (the config
                # cannot know the depth): on CoNLL it learned nothing where all_but_head learned (strategies QA)
                return (f"model.freeze: embeddings and all {count} encoder layers frozen leaves only the head to "
                        "train; set model.freeze.all_but_head=true instead (it also freezes the pooler and "
                        "trains the head at its own learning rate, 1e-3)")
    except ModelBuildError as error:  # not a BERT-family layout: what the strategy needs is not there
        return str(error)
    return None


def lora_target_problem(model: Any, targets: list[str]) -> str | None:
    """Why an entry of ``model.lora.target_modules`` would get no adapter, or None.

    peft refuses a list only when NO entry matches: ``[query, vaule]`` trained adapters on ``query`` alone, with
    ``["query", "vaule"]`` logged as the run's params (strategies QA). And an entry naming a block rather than a
    linear layer (``attention``) came back as peft's dump of the whole module. An entry matches as peft matches
    it: a module's full name, or its last dotted parts."""
    import difflib

    import torch
    from transformers.pytorch_utils import Conv1D

    adaptable = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, Conv1D,
                 torch.nn.MultiheadAttention)  # what peft's LoRA wraps
    modules = list(model.named_modules())
    encoder = getattr(model, "base_model", model)
    in_encoder = {id(module) for module in encoder.modules()}
    linear = sorted({name.rsplit(".", 1)[-1] for name, module in encoder.named_modules()
                     if name and isinstance(module, torch.nn.Linear)})
    for target in targets:
        found = [module for name, module in modules if name == target or name.endswith("." + target)]
        layers = [module for module in found if isinstance(module, adaptable)]
        if any(id(module) in in_encoder for module in layers):
            continue
        # the task head trains in full under every strategy: peft refused an adapter on it only when the model was
        # built, after the data was read, with two tracebacks (strategies QA)
        what = ("names the task head, which trains in full under every strategy" if layers else
                f"names a {type(found[0]).__name__}, not a linear layer" if found else "names no layer of this model")
        close = difflib.get_close_matches(target, linear, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close and not found else ""
        return (f"model.lora.target_modules: {target!r} {what}{hint}; the encoder's linear layers are named "
                f"{', '.join(linear)}")
    return None


def check_strategy(config: ModelConfig, task: str) -> None:
    """Refuse, before any data is read, a ``model.lora`` or ``model.freeze`` setting this base model cannot take
    (:func:`strategy_problem`): otherwise the mistake surfaced at the build-model step, after loading, validating and
    tokenizing. The model is built on PyTorch's meta device: its layout without its weights, in a fraction of a
    second. A base model that cannot be built this way is left to :func:`build_model`, which says why."""
    if config.strategy == "full":
        return
    import torch

    from tuneline.config import ConfigError  # a config key to fix: exit 2, as every config error

    try:
        base = resolve_base_model(config.base)
        layout = transformers.AutoConfig.from_pretrained(base, trust_remote_code=config.trust_remote_code)
        with torch.device("meta"):
            model = getattr(transformers, kind_of(task).head).from_config(
                layout, trust_remote_code=config.trust_remote_code)
    except Exception:  # noqa: BLE001 - build_model loads it for real and names what is wrong
        return
    if (problem := strategy_problem(model, config)) is not None:
        raise ConfigError(problem)


def apply_freeze(model: Any, embeddings: bool, bottom_layers: int, all_but_head: bool) -> None:
    """Turn off gradients for the chosen parts; the task head always trains."""
    if all_but_head:
        for param in model.base_model.parameters():
            param.requires_grad = False
        return
    emb, layers = _encoder_parts(model)
    for module in ([emb] if embeddings else []) + layers[:bottom_layers]:
        for param in module.parameters():
            param.requires_grad = False


def apply_lora(model: Any, config: ModelConfig, kind: TaskKind, modules_to_save: list[str] | None = None) -> Any:
    """Wrap the model with LoRA adapters; ``modules_to_save`` (the kind's parts that train under every strategy)
    train in full beside them and are saved with the merged model."""
    from peft import LoraConfig, TaskType as PeftTaskType, get_peft_model

    layers = None
    if config.lora.top_layers is not None:  # only the top layers adapt: no gradient has to flow below them
        count = len(_encoder_parts(model)[1])
        layers = list(range(count - config.lora.top_layers, count))
    lora = LoraConfig(task_type=getattr(PeftTaskType, kind.peft_task_type), r=config.lora.r, lora_alpha=config.lora.alpha,
                      lora_dropout=config.lora.dropout, target_modules=list(config.lora.target_modules),
                      layers_to_transform=layers, modules_to_save=list(modules_to_save or []) or None)
    try:
        with warnings.catch_warnings():
            # peft reads `is_gradient_checkpointing`, which transformers 5 deprecated: a FutureWarning with a file
            # path and source line in every LoRA run's log, which no user can act on (training QA)
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            return get_peft_model(model, lora)
    except ValueError as error:
        raise ModelBuildError(f"model.lora.target_modules={config.lora.target_modules} do not match this model "
                              f"({error})") from None


#: Up to this many tokens a sequence, ``model.attention: auto`` uses the eager attention on a CPU.
EAGER_ATTENTION_MAX_LENGTH = 128


def attention_implementation(requested: str, max_length: int | None) -> str:
    """The attention kernel for training: ``auto`` is eager on a CPU for short sequences, else SDPA.

    Measured on these 2-core CPUs (MiniLM, batch 32, bf16 autocast): in one training step at 16-40 tokens, PyTorch's
    SDPA (flash-attention-for-CPU) backward took 40% of the step, and a step took 0.057 s eager against 0.086 s SDPA
    on a quiet machine. Whole 4,000-row SST-2 runs of the same Trainer script gave 198.8 (eager) and 198.1 (SDPA)
    samples/s on a quiet machine, but 1.8x in eager's favour on a loaded one (load average 4-5: SDPA's threads wait on
    each other). Never slower here, so eager is the CPU default up to 128 tokens; at 256 the two were within noise,
    and on a GPU SDPA is the fast one.
    """
    if requested != "auto":
        return requested
    import torch

    if torch.cuda.is_available():
        return "sdpa"
    return "eager" if max_length is None or max_length <= EAGER_ATTENTION_MAX_LENGTH else "sdpa"


@pipeline_task(name="build-model")
def build_model(config: ModelConfig, kind: TaskKind | str, labels: list[str],
                init_from: Path | None = None, seed: int | None = None, max_length: int | None = None,
                model_inputs: dict[str, Any] | None = None) -> BuiltModel:
    """Load the base encoder with the kind's head sized for ``labels`` (id2label/label2id set) and apply the strategy.

    ``init_from``: start from a fine-tuned model instead (continual retraining from the champion); its labels must
    be the first labels of ``labels`` in the same order, and a longer ``labels`` grows the head (see :func:`grow_head`).
    ``max_length`` (``tokenize.max_length``) picks the attention kernel with ``model.attention: auto``.
    ``seed`` (``train.seed``) fixes the random initialisation of the new head and adapters: without it they would
    depend on whatever used the global generator before, and the same config could train a different model.
    ``model_inputs`` (``TokenizedData.model_inputs``): what the data was encoded with beyond the tokenizer's inputs;
    the kind adapts the model to take it (NER word casing: more token types), and those parts train under every
    strategy.
    """
    if seed is not None:
        transformers.set_seed(seed)
    log = task_logger()
    kind = kind_of(kind) if isinstance(kind, str) else kind
    base = resolve_base_model(config.base)
    id2label = dict(enumerate(labels))
    refuse_custom_code(config, base)
    extra = {"problem_type": kind.problem_type} if kind.problem_type else {}
    extra["attn_implementation"] = attention_implementation(config.attention, max_length)
    try:
        if init_from is not None:
            model = getattr(transformers, kind.head).from_pretrained(str(init_from), **extra)
            model = grow_head(model, labels)
        else:
            with _without_load_report():
                model, loading = getattr(transformers, kind.head).from_pretrained(
                    base, num_labels=len(labels), id2label=id2label, label2id={v: k for k, v in id2label.items()},
                    trust_remote_code=config.trust_remote_code, ignore_mismatched_sizes=True,
                    output_loading_info=True, **extra)
            report_loading(model, loading, config.base)
    except ValueError as error:
        raise _refused_remote_code(config, error) from None
    if (problem := strategy_problem(model, config)) is not None:
        raise ModelBuildError(problem)
    always_trained = kind.adapt_model(model, model_inputs or {})
    head_token_only = config.head_token_only and compute_head_token_only(model)
    if config.strategy == "freeze":
        apply_freeze(model, config.freeze.embeddings, config.freeze.bottom_layers, config.freeze.all_but_head)
        for name, module in model.named_modules():
            if name.rsplit(".", 1)[-1] in always_trained:
                module.requires_grad_(True)
    elif config.strategy == "lora":
        model = apply_lora(model, config, kind, always_trained)
    trainable, total = parameter_counts(model)
    if trainable == 0:
        raise ModelBuildError("the configured strategy leaves no trainable parameter; relax model.freeze")
    log.info("model %s (%s, %s attention%s): %d labels, %s of %s parameters trainable (%.1f%%)", config.base,
             config.strategy, extra["attn_implementation"], ", last layer for the head's token" if head_token_only
             else "", len(labels), f"{trainable:,}", f"{total:,}", 100 * trainable / total)
    return BuiltModel(model=model, base_path=base, trainable_parameters=trainable, total_parameters=total)


class _DropLoadReport:
    """A logging filter for transformers' multi-line "LOAD REPORT" table (printed at every training run, in red on a
    terminal, for the head that every fine-tuning starts without): :func:`report_loading` says what matters."""

    def filter(self, record: Any) -> bool:
        return "LOAD REPORT" not in str(record.msg)


@contextmanager
def _without_load_report() -> Iterator[None]:
    logger, dropping = logging.getLogger("transformers.modeling_utils"), _DropLoadReport()
    logger.addFilter(dropping)
    try:
        yield
    finally:
        logger.removeFilter(dropping)


def report_loading(model: Any, loading: dict, base: str) -> None:
    """One line for what loading the base left to chance: the new head is expected (INFO); encoder weights the
    checkpoint lacks are not (WARNING: they start random, as with a base made for another architecture); weights
    the head does not use (a pooler for token classification) are not worth a line."""
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    mismatched = [item[0] if isinstance(item, (tuple, list)) else item for item in loading.get("mismatched_keys", [])]
    fresh = sorted(set(loading.get("missing_keys", [])) | set(mismatched))
    head = [key for key in fresh if not key.startswith(prefix)]
    body = [key for key in fresh if key.startswith(prefix)]
    log = task_logger()
    if head:
        log.info("new %s head from random weights (%s)%s", _head_module(head), ", ".join(head),
                 "; the checkpoint's own head had another shape" if mismatched else "")
    if body:
        log.warning("%d encoder weight(s) are not in %s and start random: %s%s; is model.base an encoder of this "
                    "architecture?", len(body), base, ", ".join(body[:5]), " ..." if len(body) > 5 else "")


def _head_module(keys: list[str]) -> str:
    return sorted({key.split(".")[0] for key in keys})[0] if keys else "task"


def grow_head(model: Any, labels: list[str]) -> Any:
    """Extend a fine-tuned model's classification head to ``labels`` (its own labels first, in order, then the new
    ones): the known rows keep their weights, the new rows start like a fresh head (normal, std
    ``initializer_range``; bias 0), so what the model knew is kept and only the new labels start from scratch."""
    import torch

    known = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if labels[: len(known)] != known:
        raise ModelBuildError(f"the champion's labels {known} must come first and in order in the new label set "
                              f"{labels}; a retraining run may add labels, never reorder or drop them")
    if len(labels) > len(known):
        head = getattr(model, "classifier", None)
        if not isinstance(head, torch.nn.Linear):
            raise ModelBuildError("growing the label set of a continually retrained model needs a linear "
                                  "'classifier' head; use retrain.strategy=full for this model")
        grown = torch.nn.Linear(head.in_features, len(labels), bias=head.bias is not None)
        grown.weight.data.normal_(0.0, getattr(model.config, "initializer_range", 0.02))
        with torch.no_grad():
            grown.weight[: len(known)] = head.weight
            if head.bias is not None:
                grown.bias.zero_()
                grown.bias[: len(known)] = head.bias
        model.classifier = grown.to(head.weight.device, head.weight.dtype)
        model.num_labels = len(labels)
    id2label = dict(enumerate(labels))
    model.config.num_labels = len(labels)
    model.config.id2label, model.config.label2id = id2label, {v: k for k, v in id2label.items()}
    return model
