"""Gate and promote: ``champion`` moves to a new version only through the metric gate.

Rule: the candidate's primary test metric must be at least ``min_metric``, and not worse than the current champion's
by more than ``tolerance``, with the champion scored again *on the candidate's test rows* (through its registered
pyfunc), so the two numbers are comparable even when the test data changed. With no champion yet, the minimum alone
decides. The decision and its reasons are tagged on the version and on the run whatever it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException

from tuneline.common import pipeline_task, task_logger
from tuneline.config import GateConfig
from tuneline.kinds import TaskKind, kind_of
from tuneline.tasks.register import CHAMPION, RegisteredVersion
from tuneline.tracking import RunContext, client_for, log_metrics, set_tags

#: Float noise must not flip a decision taken exactly at the tolerance edge.
EPSILON = 1e-9


@dataclass(frozen=True)
class ChampionScore:
    version: str
    metric: float | None
    error: str | None = None


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    metric: str
    candidate: float
    champion: ChampionScore | None
    reasons: list[str] = field(default_factory=list)


def decide_promotion(metric: str, candidate: float, champion: ChampionScore | None, min_metric: float,
                     tolerance: float) -> GateDecision:
    """The pure gate rule; every check that ran leaves a reason, passed or not."""
    reasons: list[str] = []
    ok = candidate + EPSILON >= min_metric
    reasons.append(f"{metric} {candidate:.4f} {'>=' if ok else '<'} min_metric {min_metric:.4f}")
    if champion is None:
        reasons.append("no champion yet: the minimum alone decides")
    elif champion.metric is None:
        ok = False
        reasons.append(f"champion v{champion.version} could not be scored on this test data ({champion.error}); "
                       "keeping it until a person decides")
    else:
        floor = champion.metric - tolerance
        better = candidate + EPSILON >= floor
        ok = ok and better
        reasons.append(f"{metric} {candidate:.4f} {'>=' if better else '<'} champion v{champion.version} "
                       f"{champion.metric:.4f} - tolerance {tolerance:.4f} = {floor:.4f}")
    return GateDecision(promote=ok, metric=metric, candidate=candidate, champion=champion, reasons=reasons)


@pipeline_task(name="score-champion")
def score_champion(run: RunContext, registered_name: str, kind: TaskKind | str, test: pd.DataFrame,
                   labels: list[str], metric: str) -> ChampionScore | None:
    """The current champion's primary metric on these test rows, through its registered pyfunc and the kind's one
    metrics function; None when there is no champion."""
    kind = kind_of(kind) if isinstance(kind, str) else kind
    client = client_for(run)
    try:
        version = client.get_model_version_by_alias(registered_name, CHAMPION)
    except MlflowException:
        return None
    try:
        model = mlflow.pyfunc.load_model(f"models:/{registered_name}/{version.version}")
        score = kind.score_output(model.predict(kind.model_input(test)), test, labels)[metric]
    except Exception as error:  # a broken champion must not crash the run, nor be replaced blindly
        task_logger().warning("champion v%s could not be scored: %s", version.version, error)
        return ChampionScore(version=str(version.version), metric=None, error=f"{type(error).__name__}: {error}")
    task_logger().info("champion v%s scores %s %.4f on this test data", version.version, metric, score)
    return ChampionScore(version=str(version.version), metric=float(score))


@pipeline_task(name="gate-and-promote")
def gate_and_promote(candidate: RegisteredVersion, metrics: dict[str, float], champion: ChampionScore | None,
                     config: GateConfig, metric: str, run: RunContext) -> GateDecision:
    """Apply the gate; move ``champion`` only on a pass; record the decision on the version and the run."""
    if metric not in metrics:
        raise KeyError(f"gate.primary_metric={metric!r} is not among the test metrics {sorted(metrics)}")
    decision = decide_promotion(metric, metrics[metric], champion, config.min_metric, config.tolerance)
    client = client_for(run)
    verdict = "promoted" if decision.promote else "kept_champion" if champion else "rejected"
    tags = {"gate.decision": verdict, "gate.reasons": "; ".join(decision.reasons), "gate.metric": metric,
            "gate.candidate": f"{decision.candidate:.6f}",
            "gate.champion_version": champion.version if champion else "",
            "gate.champion_metric": "" if champion is None or champion.metric is None else f"{champion.metric:.6f}"}
    for key, value in tags.items():
        client.set_model_version_tag(candidate.name, candidate.version, key, value)
    set_tags(run, tags)
    if champion is not None and champion.metric is not None:
        log_metrics(run, {f"gate.champion.{metric}": champion.metric})
    if decision.promote:
        client.set_registered_model_alias(candidate.name, CHAMPION, candidate.version)
    task_logger().info("gate: %s v%s (%s)", verdict, candidate.version, "; ".join(decision.reasons))
    return decision
