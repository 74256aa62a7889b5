"""Stages shared by every task type's flow: the same task calls in the same order, wired once.

Each stage is plain wiring (no logic of its own), so the flows stay a table of contents and a change to how models
are trained or promoted lands in both classification and NER at once.
"""

from __future__ import annotations

from tuneline.config import TunelineConfig
from tuneline.tasks.gate import GateDecision, gate_and_promote, score_champion
from tuneline.tasks.lineage import SplitLineage
from tuneline.tasks.model import build_model, load_tokenizer
from tuneline.tasks.register import RegisteredVersion, register_model
from tuneline.tasks.split import DataSplits
from tuneline.tasks.tokenize import TokenizedData, tokenize_splits
from tuneline.tasks.tracking import RunContext
from tuneline.tasks.train import TrainedModel, train_model
from tuneline.tasks.versioning import version_tags


def fine_tune(config: TunelineConfig, splits: DataSplits, lineage: dict[str, SplitLineage],
              run: RunContext) -> tuple[TokenizedData, TrainedModel]:
    """tokenize (content-keyed cache) → build the model (strategy) → train (checkpoints keyed by config + data)."""
    tokenizer = load_tokenizer(config.model)
    tokenized = tokenize_splits(splits, tokenizer, {label: i for i, label in enumerate(splits.labels)},
                                config.task, config.tokenize.max_length,
                                {name: item.content_hash for name, item in lineage.items()},
                                config.work_dir / "cache" / "tokenized", config.tokenize.label_all_subwords)
    built = build_model(config.model, config.task, splits.labels)
    checkpoints = config.work_dir / "checkpoints" / f"{config.fingerprint()}-{lineage['train'].content_hash[:12]}"
    trained = train_model(built.model, tokenizer, tokenized, config.task, splits.labels, config.train,
                          config.primary_metric, checkpoints, run.run_dir / "model", run, config.tokenize.max_length)
    return tokenized, trained


def register_and_gate(config: TunelineConfig, splits: DataSplits, lineage: dict[str, SplitLineage],
                      trained: TrainedModel, test_metrics: dict[str, float],
                      run: RunContext) -> tuple[RegisteredVersion, GateDecision]:
    """score the champion on these test rows → register the candidate (challenger) → gate, maybe promote."""
    champion = score_champion(run, config.registered_model_name, config.task, splits.test, splits.labels,
                              config.primary_metric)
    version = register_model(trained.model_dir, config.task, config.registered_model_name, run,
                             version_tags(config, lineage, test_metrics, run), test_metrics)
    decision = gate_and_promote(version, test_metrics, champion, config.gate, config.primary_metric, run)
    return version, decision
