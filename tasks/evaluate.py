"""Evaluate: the fine-tuned model and the "before" baselines, on the same test rows, with the kind's one metric.

The fine-tuned model is scored through its pyfunc file's predictor (the same code that serves it from the registry),
given the kind's model input for the test rows, and its output is read back the way the gate reads the champion's,
so the numbers in the registry are the numbers of exactly the code that serves the model. Predictions stay in
test-row order (never lined up through a training sampler).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tuneline.common import pipeline_task, task_logger
from tuneline.config import TunelineConfig
from tuneline.kinds import Evaluation, kind_of
from tuneline.tasks.split import DataSplits

__all__ = ["Evaluation", "chance_baseline", "evaluate_model", "score_baselines"]


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())


@pipeline_task(name="evaluate-model")
def evaluate_model(model_dir: Path, test: pd.DataFrame, labels: list[str], config: TunelineConfig,
                   rows: str = "test") -> Evaluation:
    """Score the saved fine-tuned model on the test split through its serving code (``rows``: what the log line
    calls them; the forgetting check scores the earlier test rows, which a second "on test" line misnamed)."""
    kind = kind_of(config)
    output = kind.load_predictor(model_dir).predict(kind.model_input(test), batch_size=config.evaluate.batch_size)
    predicted, scores = kind.predictions_from_output(output)
    metrics = kind.score(kind.gold(test), predicted, labels)
    task_logger().info("fine-tuned on %s: %s", rows, _fmt(metrics))
    return Evaluation("fine_tuned", metrics, predicted, scores)


@pipeline_task(name="score-baselines")
def score_baselines(splits: DataSplits, config: TunelineConfig) -> list[Evaluation]:
    """The kind's "before" models (majority, zero-shot, ...) on the same test rows."""
    baselines = kind_of(config).baselines(splits, config)
    for baseline in baselines:
        task_logger().info("baseline %s on test: %s", baseline.name, _fmt(baseline.metrics))
    return baselines


#: how many shuffles the chance baseline's metrics are the mean of
CHANCE_SHUFFLES = 8


@pipeline_task(name="score-chance")
def chance_baseline(fine_tuned: Evaluation, test: pd.DataFrame, labels: list[str],
                    config: TunelineConfig) -> Evaluation:
    """The ``chance`` baseline: the fine-tuned model's own answers dealt to the test rows in a random order
    (:meth:`~tuneline.kinds.base.TaskKind.shuffled`), scored like any model; its metrics are the mean of
    :data:`CHANCE_SHUFFLES` shuffles, its predictions the shuffle nearest that mean on the gate's metric.

    Why: a model that learned nothing beat the majority baseline and was promoted (QA: a random head, trained at a
    learning rate of 1e-9, scored macro-F1 0.42 against the majority's 0.29, "significant at 0.05"; and accuracy
    0.47 against 0.41 where train's majority class was the test rows' minority). Any answers that vary beat a
    constant one on macro-F1, so beating the majority says little; answers as often of each class as the model gives
    them, but unrelated to the texts, score what a model that learned nothing scores, and the gate's paired test
    against them asks whether its answers depend on the texts at all."""
    import numpy as np

    kind, metric = kind_of(config), config.primary_metric
    gold, rng, answers = kind.gold(test), np.random.default_rng(0), list(fine_tuned.predictions)
    dealt = [kind.shuffled(answers, rng) for _ in range(CHANCE_SHUFFLES)]
    scores = [kind.score(gold, predicted, labels) for predicted in dealt]
    metrics = {name: float(np.mean([s[name] for s in scores])) for name in scores[0]}
    nearest = min(range(len(dealt)), key=lambda i: abs(scores[i].get(metric, 0.0) - metrics.get(metric, 0.0)))
    task_logger().info("baseline chance on test (the model's answers shuffled): %s", _fmt(metrics))
    return Evaluation("chance", metrics, dealt[nearest])


@pipeline_task(name="score-new-rows")
def score_subset(evaluation: Evaluation, test: pd.DataFrame, mask: pd.Series, labels: list[str],
                 config: TunelineConfig, run: Any, prefix: str = "new_test") -> dict[str, float]:
    """The fine-tuned model's metrics on a subset of the test rows (the rows of the new batches), logged as
    ``<prefix>.<metric>``; nothing when the subset is empty."""
    from tuneline.tracking import log_metrics

    kind = kind_of(config)
    picked = mask.to_numpy().nonzero()[0]
    if not len(picked):
        return {}
    metrics = kind.score(kind.gold(test.iloc[picked]), [evaluation.predictions[i] for i in picked], labels)
    log_metrics(run, {f"{prefix}.{k}": v for k, v in metrics.items()})
    task_logger().info("fine-tuned on the %d %s rows: %s", len(picked), prefix.replace("_", " "), _fmt(metrics))
    return metrics
