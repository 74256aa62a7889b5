"""Gate and promote: ``champion`` moves to a new version only through the metric gate, compare-and-set.

The rule, every check leaving a reason in one plain sentence:

1. the candidate's primary test metric is at least ``min_metric``;
2. it beats the best baseline of its own run (majority, zero-shot, ...) by ``min_gain_over_baseline``: a model
   that learned nothing is never promoted, whatever ``min_metric`` says;
3. with a champion, scored again *on the candidate's test rows* through its registered pyfunc: the candidate is not
   worse than it by more than ``tolerance`` (and, with ``require_significant_gain``, significantly better by a
   paired test on those rows); ``tolerance`` can never take the candidate below the best score ever promoted minus
   ``tolerance``, so the champion cannot slide down a little at every promotion.

The champion alias is resolved to a version number once; that version is scored and recorded. The move happens
under a per-model lock (:mod:`tuneline.locking`): the alias is re-read, and if another run moved it meanwhile, the
new champion is scored and the rule applied again before anything moves. The move itself is the compare-and-set of
:mod:`tuneline.promotions` and leaves a row (action ``gate``, the reasons) in the promotion history. An MLflow
error while reading the champion fails the run; it is never taken for "no champion".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import pandas as pd
from mlflow.exceptions import MlflowException

from tuneline.common import pipeline_task, task_logger
from tuneline.config import TunelineConfig
from tuneline.kinds import Evaluation, TaskKind, kind_of
from tuneline.ledger import ledger_url_for
from tuneline.loaded_versions import load_version
from tuneline.locking import default_lock_url, model_lock
from tuneline.promotions import (CHAMPION, GATE, PROMOTING, PromotionLog, PromotionNotRecorded, _move_locked,
                                 champion_version, recorded_champion)
from tuneline.stats import PairedComparison, mcnemar, paired_bootstrap
from tuneline.seen_rows import seen_by_version, subset
from tuneline.tasks.forgetting import Forgetting
from tuneline.tasks.register import CHALLENGER, RegisteredVersion
from tuneline.tracking import RunContext, client_for, log_metrics, set_tags

#: Float noise must not flip a decision taken exactly at an edge.
EPSILON = 1e-9
#: Registered-model tag holding the best primary metric ever promoted (the floor ``tolerance`` cannot go under).
BEST_TAG = "tuneline.best.{metric}"
#: which test rows that best was measured on (a hash of their keys): a number from other rows is no floor
BEST_TEST_TAG = "tuneline.best.{metric}.test_rows"


@dataclass(frozen=True)
class ChampionScore:
    version: str
    metric: float | None
    error: str | None = None
    predictions: list[Any] | None = None
    #: the champion's label spellings read in this run's spelling (``positive`` → ``Positive``), when they differ
    relabeled: dict[str, str] = field(default_factory=dict)
    #: the labels (NER: tags) the champion can predict, in this run's spelling; None where not known
    labels: list[str] | None = None
    #: per test row, whether the champion trained on it (:mod:`tuneline.seen_rows`); None when it trained on none
    seen: tuple[bool, ...] | None = None


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    metric: str
    candidate: float
    champion: ChampionScore | None
    reasons: list[str] = field(default_factory=list)
    comparison: PairedComparison | None = None
    failed: list[str] = field(default_factory=list)  # the reasons that kept the version out (a subset of reasons)
    forgetting: Forgetting | None = None  # as applied: measured against the champion the gate compared with

    def explained(self) -> str:
        """The reasons in one line; a refusal names what failed first, then what else was checked (a list that
        began with the checks it passed read as if those had refused it)."""
        if self.promote or not self.failed:
            return "; ".join(self.reasons)
        others = [r for r in self.reasons if r not in self.failed]
        return "; ".join(self.failed) + (f" (also checked: {'; '.join(others)})" if others else "")


def significant_gain(comparison: PairedComparison, level: float) -> bool:
    """The candidate is better, and the paired test says it is no chance (one rule for champion and baseline)."""
    return comparison.p_value < level and comparison.difference > 0


def promoted_without_significant_gain(decision: GateDecision, versus_baseline: PairedComparison | None,
                                      baseline: str, metric: str, gate: Any) -> str | None:
    """The warning for a version promoted although the paired test cannot tell it from its best baseline (allowed by
    ``gate.require_significant_gain_over_baseline: false``); None when it was not promoted, or the gain is clear.
    It was logged for versions the gate then refused too, saying "promoted all the same" (operator QA)."""
    if not decision.promote or versus_baseline is None or gate.require_significant_gain_over_baseline \
            or significant_gain(versus_baseline, gate.significance_level):
        return None
    return (f"gate: promoted, though not significantly better than the {baseline} baseline on these "
            f"{versus_baseline.n} test rows ({versus_baseline.sentence(metric)}): the test set is too small to tell "
            "this model from one that learned nothing (gate.require_significant_gain_over_baseline is false)")


def decide_promotion(metric: str, candidate: float, champion: ChampionScore | None, min_metric: float,
                     tolerance: float, best_baseline: tuple[str, float] | None = None,
                     min_gain_over_baseline: float = 0.0, comparison: PairedComparison | None = None,
                     require_significant_gain: bool = False, significance_level: float = 0.05,
                     best_ever: float | None = None, forgetting: Forgetting | None = None,
                     max_forgetting: float = 1.0, max_class_forgetting: float = 1.0,
                     baseline_comparison: PairedComparison | None = None,
                     require_significant_gain_over_baseline: bool = False) -> GateDecision:
    """The pure gate rule; every check that ran leaves a reason, passed or not."""
    reasons: list[str] = []
    failed: list[str] = []

    def check(passed: bool, reason: str) -> bool:
        reasons.append(reason)
        if not passed:
            failed.append(reason)
        return passed

    reached = candidate + EPSILON >= min_metric
    ok = check(reached, f"{metric} {candidate:.4f} {'>=' if reached else '<'} min_metric {min_metric:.4f}")
    if best_baseline is not None:
        name, value = best_baseline
        beats = candidate + EPSILON >= value + min_gain_over_baseline
        ok = check(beats, f"{metric} {candidate:.4f} {'>=' if beats else '<'} best baseline {name} {value:.4f} + "
                          f"min_gain_over_baseline {min_gain_over_baseline:.4f}"
                          + ("" if beats else " (the model learned too little to be worth serving)")) and ok
        if baseline_comparison is not None:
            # "too few test rows" explains only a gain the test cannot confirm: a model significantly below the
            # baseline, or one that scores no better on these rows, is told so (p=0.002 read as "not significant")
            significant = significant_gain(baseline_comparison, significance_level)
            worse = baseline_comparison.p_value < significance_level and baseline_comparison.difference < 0
            # chance's score above is the mean of its shuffles; the paired test needs one shuffle's answers (the
            # one nearest that mean), whose own score differs a little: said, or "+0.0000" read as a contradiction
            shuffle = (f" (its shuffle nearest their mean, {metric} "
                       f"{candidate - baseline_comparison.difference:.4f})" if name == "chance" else "")
            sentence = (f"paired test vs baseline {name}{shuffle}: {baseline_comparison.sentence(metric)}, "
                        + (f"significant at {significance_level}" if significant else
                           f"significant at {significance_level}: really worse than a model that learned nothing"
                           if worse else
                           f"not significant at {significance_level}: too few test rows to tell this model from one "
                           "that learned nothing" if baseline_comparison.difference > 0 else
                           f"not significant at {significance_level}: no gain over a model that learned nothing"))
            if require_significant_gain_over_baseline:
                ok = check(significant, sentence) and ok
            else:
                reasons.append(sentence)
    if champion is not None and champion.relabeled:
        reasons.append(f"champion v{champion.version} read in this data's label spelling "
                       f"({read_as(champion.relabeled)}): promoting changes the label names the served model returns")
    if champion is None:
        reasons.append("no champion yet: the checks above decide")
    elif champion.metric is None:
        ok = check(False, f"champion v{champion.version} could not be scored on this test data ({champion.error}); "
                          "keeping it until a person decides") and ok
    else:
        floor = champion.metric - tolerance
        better = candidate + EPSILON >= floor
        ok = check(better, f"{metric} {candidate:.4f} {'>=' if better else '<'} champion v{champion.version} "
                           f"{champion.metric:.4f} - tolerance {tolerance:.4f} = {floor:.4f}") and ok
        if tolerance > 0 and best_ever is not None and candidate < champion.metric:
            held = candidate + EPSILON >= best_ever - tolerance
            ok = check(held, f"{metric} {candidate:.4f} {'>=' if held else '<'} best ever promoted {best_ever:.4f} "
                             f"- tolerance {tolerance:.4f} (no slow slide through repeated tolerance)") and ok
        if comparison is not None:
            significant = significant_gain(comparison, significance_level)
            worse = comparison.p_value < significance_level and comparison.difference < 0
            verdict = (f"significant at {significance_level}: a real gain" if significant else
                       f"significant at {significance_level}: really worse" if worse else
                       f"not significant at {significance_level}")
            reasons.append(f"paired test vs champion: {comparison.sentence(metric)}, {verdict}")
            if require_significant_gain and not significant:
                ok = check(False, "require_significant_gain: the gain is not significant, keeping the champion") and ok
    if forgetting is not None:
        kept = forgetting.drop <= max_forgetting + EPSILON
        ok = check(kept, f"forgetting on {forgetting.rows} earlier test rows: {metric} {forgetting.champion:.4f} "
                         f"(champion v{forgetting.champion_version}) -> {forgetting.candidate:.4f}, "
                         + (f"a drop of {forgetting.drop:.4f} {'<=' if kept else '>'} max_forgetting "
                            f"{max_forgetting:.4f}" if forgetting.drop > 0 else
                            f"no drop (a gain of {abs(forgetting.drop):.4f}), within max_forgetting "
                            f"{max_forgetting:.4f}")) and ok
        worst = forgetting.worst_class()
        if worst is not None:
            held = worst[1] <= max_class_forgetting + EPSILON
            within = (f"{'<=' if held else '>'} max_class_forgetting" if worst[1] > 0 else
                      "within max_class_forgetting")
            ok = check(held, f"{forgetting.worst_class_sentence()} {within} {max_class_forgetting:.4f}") and ok
    return GateDecision(promote=ok, metric=metric, candidate=candidate, champion=champion, reasons=reasons,
                        comparison=comparison, failed=failed)


def score_version(registered_name: str, version: str, kind: TaskKind, test: pd.DataFrame, labels: list[str],
                  metric: str) -> ChampionScore:
    """Load ``models:/<name>/<version>`` (the version recorded, not whatever the alias says later) and score it."""
    try:
        model = load_version(registered_name, version)
        known = _model_labels(model)
        output = model.predict(kind.model_input(test))
        predictions, _ = kind.predictions_from_output(output)
        if len(predictions) != len(test):
            raise ValueError(f"the model returned {len(predictions)} predictions for {len(test)} test rows")
        predictions, relabeled = in_run_spelling(predictions, labels)
        score = kind.score(kind.gold(test), predictions, labels)[metric]
    except Exception as error:  # a broken champion must not crash the run, nor be replaced blindly
        task_logger().warning("champion v%s could not be scored: %s", version, error)
        return ChampionScore(version=version, metric=None, error=f"{type(error).__name__}: {error}")
    foreign = sorted(set(_flat(predictions)) - set(labels))
    if foreign and not set(_flat(predictions)) & set(labels):
        error = (f"it answers with labels {_shown(foreign)}, none of this run's {_shown(labels)}: the labels were "
                 "renamed, so the two models cannot be compared; name them as before (data.labels) or promote by "
                 "hand (tuneline promote)")
        task_logger().warning("champion v%s could not be scored: %s", version, error)
        return ChampionScore(version=version, metric=None, error=error)
    if relabeled:
        task_logger().warning("champion v%s writes its labels another way than this data: read %s; promoting a new "
                              "version changes the label names the served model returns", version, read_as(relabeled))
    task_logger().info("champion v%s scores %s %.4f on this test data", version, metric, score)
    if known is not None:
        known = list(in_run_spelling(known, labels)[0])
    seen = seen_by_version(registered_name, version, test, kind.key_column)
    return ChampionScore(version=version, metric=float(score), predictions=list(predictions), relabeled=relabeled,
                         labels=known, seen=tuple(bool(x) for x in seen) if seen is not None and seen.any() else None)


#: fewer test rows than this that the champion did not train on: no fair comparison with it
MIN_UNSEEN_ROWS = 20


def on_rows_unseen_by_champion(champion: ChampionScore, kind: TaskKind, test: pd.DataFrame, labels: list[str],
                               metric: str, fine_tuned: Evaluation, baselines: list[Evaluation]
                               ) -> tuple[pd.DataFrame, Evaluation, list[Evaluation], ChampionScore, str | None]:
    """The gate's inputs on the test rows the champion did not train on (:mod:`tuneline.seen_rows`), and the note
    that says so; a champion with fewer than :data:`MIN_UNSEEN_ROWS` of them cannot be compared (its score is
    withdrawn with the reason, and the gate keeps it until a person decides)."""
    import numpy as np

    keep = ~np.asarray(champion.seen, dtype=bool)
    seen_rows, total = int((~keep).sum()), len(keep)
    if keep.sum() < MIN_UNSEEN_ROWS:
        error = (f"{seen_rows} of its {total} test rows were its own training rows (the split or the data changed "
                 f"since it trained), leaving {int(keep.sum())}: too few to compare it with this version fairly")
        task_logger().warning("champion v%s: %s", champion.version, error)
        return test, fine_tuned, baselines, replace(champion, metric=None, error=error), None
    kept = test[keep].reset_index(drop=True)
    gold = kind.gold(kept)

    def cut(evaluation: Evaluation) -> Evaluation:
        if evaluation.predictions is None or len(evaluation.predictions) != total:
            return evaluation
        predictions = subset(evaluation.predictions, keep)
        return replace(evaluation, metrics=kind.score(gold, predictions, labels), predictions=predictions,
                       scores=None if evaluation.scores is None else subset(evaluation.scores, keep))

    predictions = subset(champion.predictions or [], keep)
    champion = replace(champion, predictions=predictions, metric=float(kind.score(gold, predictions, labels)[metric]),
                       seen=None)
    note = (f"{seen_rows} of {total} test rows were training rows of champion v{champion.version} (the split or the "
            f"data changed since it trained): the gate compares on the other {len(kept)} rows")
    task_logger().warning("gate: %s", note)
    return kept, cut(fine_tuned), [cut(b) for b in baselines], champion, note


def _model_labels(model: Any) -> list[str] | None:
    """The labels (tags) a loaded tuneline pyfunc predicts: its model config's ``id2label``."""
    try:
        inner = model.unwrap_python_model()
    except Exception:  # noqa: BLE001 - a model of another flavour: not known
        return None
    for holder in (inner, *vars(inner).values()):  # the wrapper, or the classifier (tagger) it loaded
        labels = getattr(holder, "labels", None)
        if isinstance(labels, list):
            return [str(label) for label in labels]
    return None


def dropped_labels(champion: ChampionScore | None, labels: list[str]) -> list[str]:
    """What the champion predicts that a model of ``labels`` cannot: labels, or for NER tags, entity types."""
    if champion is None or not champion.labels:
        return []
    gone = sorted(set(champion.labels) - set(labels))
    if gone and _iob_tags([*champion.labels, *labels]):
        gone = sorted(_entity_types(gone) - _entity_types(labels))
    return gone


def _iob_tags(tags: list[Any]) -> bool:
    """Whether every label is an IOB2 tag (NER): labels are then compared as entity types."""
    return all(str(tag)[:2] in ("B-", "I-") or tag == "O" for tag in tags)


def _entity_types(tags: Any) -> set[str]:
    return {str(tag)[2:] for tag in tags if tag != "O"}


def unlearned_labels(champion: ChampionScore | None, labels: list[str], gold: list[Any],
                     predicted: list[Any]) -> list[str]:
    """Labels (NER: entity types) the champion does not know, that the test rows hold and the candidate never
    predicts: the label set grew by them (``drift.allow_label_growth``) and the model did not learn them. Promoted,
    such a version answered 'billing' to "I want to cancel my subscription" with a class 'cancellation' on its
    books, and the gate's sentence did not mention the class (operator QA)."""
    if champion is None or not champion.labels:
        return []
    if _iob_tags([*champion.labels, *labels]):
        new = _entity_types(labels) - _entity_types(champion.labels)
        held, said = _entity_types(_flat(gold)), _entity_types(_flat(predicted))
    else:
        new, held, said = set(labels) - set(champion.labels), set(_flat(gold)), set(_flat(predicted))
    return sorted(label for label in new if label in held and label not in said)


def read_as(relabeled: dict[str, str]) -> str:
    """``'positive' as 'Positive', ...``: how the champion's labels were read."""
    return ", ".join(f"{a!r} as {b!r}" for a, b in sorted(relabeled.items()))


def _flat(predictions: list[Any]) -> list[Any]:
    """Every label in ``predictions``: a row's label, or each of a row's labels or tags."""
    return [item for row in predictions for item in (row if isinstance(row, (list, tuple)) else [row])]


def _shown(labels: list[str], most: int = 6) -> str:
    return repr(labels[:most])[:-1] + (f", ... {len(labels) - most} more]" if len(labels) > most else "]")


def in_run_spelling(predictions: list[Any], labels: list[str]) -> tuple[list[Any], dict[str, str]]:
    """``predictions`` with each label this run writes another way (``positive`` for ``Positive``, ``b-per`` for
    ``B-PER``: the fold validation applies to the data) in this run's spelling, and what was read so.

    Why: the champion answers in the spelling of the data it was trained on. Scored against test rows that write
    the same classes another way, every answer counted wrong: a champion at 0.0 that any candidate "beat"
    significantly, and was replaced by a model no better."""
    from tuneline.kinds.label_spellings import spelling_key

    known = set(labels)
    by_key = {spelling_key(label): label for label in labels}
    relabeled = {label: by_key[spelling_key(label)] for label in set(_flat(predictions))
                 if isinstance(label, str) and label not in known and spelling_key(label) in by_key}
    if not relabeled:
        return predictions, {}

    def one(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [relabeled.get(item, item) for item in value]
        return relabeled.get(value, value)

    return [one(row) for row in predictions], relabeled


@pipeline_task(name="score-champion")
def score_champion(run: RunContext, registered_name: str, kind: TaskKind | str, test: pd.DataFrame,
                   labels: list[str], metric: str) -> ChampionScore | None:
    """The current champion's primary metric on these test rows, through its registered pyfunc and the kind's one
    metrics function; None when there is no champion."""
    kind = kind_of(kind) if isinstance(kind, str) else kind
    version = champion_version(client_for(run), registered_name)
    return None if version is None else score_version(registered_name, version, kind, test, labels, metric)


def paired_comparison(kind: TaskKind, test: pd.DataFrame, labels: list[str], metric: str,
                      candidate: list[Any], champion: list[Any], resamples: int) -> PairedComparison | None:
    """McNemar's test for a per-row metric, else a paired bootstrap of the kind's own metric on the same rows."""
    gold = kind.gold(test)
    if not gold or len(champion) != len(gold) or len(candidate) != len(gold):
        return None
    if metric in kind.per_row_metrics:
        return mcnemar([c == g for c, g in zip(candidate, gold)], [c == g for c, g in zip(champion, gold)])
    score_candidate = kind.subset_score(gold, candidate, labels, metric)
    score_champion_ = kind.subset_score(gold, champion, labels, metric)
    return paired_bootstrap(lambda idx: (score_candidate(idx), score_champion_(idx)), len(gold),
                            resamples=resamples)


def best_baseline(baselines: list[Evaluation], metric: str) -> tuple[str, float] | None:
    scored = [(b.name, b.metrics[metric]) for b in baselines if metric in b.metrics]
    return max(scored, key=lambda item: item[1]) if scored else None


def test_rows_hash(test: pd.DataFrame, kind: TaskKind) -> str:
    """The test rows' identity: a hash of their sorted keys (order and extra columns do not matter)."""
    import hashlib

    keys = sorted(str(k) for k in test[kind.key_column]) if kind.key_column in test.columns else []
    return hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()[:16]


def _best_ever(client: Any, name: str, metric: str, test_rows: str) -> float | None:
    """The best ``metric`` ever promoted, when it was measured on these test rows; None otherwise. The retraining
    loop adds test rows with every batch, and a score on 271 rows is no floor for one on 408 (a batch of hard or
    mislabeled rows lowers every model's score): the champion, re-scored on the same rows, is the comparison then."""
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException:
        return None
    value, measured_on = tags.get(BEST_TAG.format(metric=metric)), tags.get(BEST_TEST_TAG.format(metric=metric))
    if not value or (measured_on is not None and measured_on != test_rows):
        return None
    return float(value)


@pipeline_task(name="gate-and-promote")
def gate_and_promote(candidate: RegisteredVersion, fine_tuned: Evaluation, baselines: list[Evaluation],
                     champion: ChampionScore | None, test: pd.DataFrame, labels: list[str], config: TunelineConfig,
                     run: RunContext, forgetting: Forgetting | None = None,
                     remeasure_forgetting: Callable[[str], Forgetting | None] | None = None) -> GateDecision:
    """Apply the gate under the model's lock; move ``champion`` only on a pass, and only if the champion is still
    the version that was scored; record the decision on the version and the run.

    A champion that moved since it was scored is scored again on the same test rows, and forgetting is measured
    again against it (``remeasure_forgetting(version)``, on the test rows that version knew): the gate once
    compared the candidate with the new champion but bounded its forgetting by the old one's, which did not know a
    class the new one had learned. Without that callable, a forgetting bound measured against another version
    keeps the candidate out.

    Any failure in here takes ``challenger`` back from the candidate (it must not point at a version whose run
    failed) and tags the version ``tuneline.status=failed``; ``champion`` is never touched on a failure.
    """
    kind, gate, metric = kind_of(config), config.gate, config.primary_metric
    client = client_for(run)
    if metric not in fine_tuned.metrics:
        raise KeyError(f"gate.primary_metric={metric!r} is not among the test metrics {sorted(fine_tuned.metrics)}")
    moved = False
    rows = test_rows_hash(test, kind)
    try:
        with model_lock(candidate.name, default_lock_url(run.tracking_uri), timeout_s=gate.lock_timeout_s) as lock:
            current = champion_version(client, candidate.name)
            # a champion alias deleted by hand made the next candidate a "first model", promoted without being
            # compared with the version it replaced, without a forgetting bound
            lost = None if current is not None else recorded_champion(
                ledger_url_for(config.ledger.url, run.tracking_uri), candidate.name, client)
            if current != (champion.version if champion else None):
                task_logger().info("champion moved from v%s to v%s while this run was scoring; re-scoring",
                                   champion.version if champion else None, current)
                champion = None if current is None else score_version(candidate.name, current, kind, test, labels,
                                                                      metric)
            full_candidate, unseen_note = fine_tuned.metrics[metric], None
            if champion is not None and champion.seen is not None:
                test, fine_tuned, baselines, champion, unseen_note = on_rows_unseen_by_champion(
                    champion, kind, test, labels, metric, fine_tuned, baselines)
            stale = forgetting is not None and current is not None and forgetting.champion_version != current
            if stale and remeasure_forgetting is not None:
                task_logger().info("measuring forgetting again, against champion v%s", current)
                forgetting, stale = remeasure_forgetting(current), False
            comparison = None
            if champion is not None and champion.predictions is not None:
                comparison = paired_comparison(kind, test, labels, metric, fine_tuned.predictions,
                                               champion.predictions, gate.bootstrap_resamples)
            best = best_baseline(baselines, metric)
            best_run = next((b for b in baselines if best is not None and b.name == best[0]), None)
            versus_baseline = None if best_run is None or best_run.predictions is None else paired_comparison(
                kind, test, labels, metric, fine_tuned.predictions, best_run.predictions, gate.bootstrap_resamples)
            decision = decide_promotion(
                metric, fine_tuned.metrics[metric], champion, gate.min_metric, gate.tolerance,
                best, gate.min_gain_over_baseline, comparison,
                gate.require_significant_gain, gate.significance_level,
                None if unseen_note else _best_ever(client, candidate.name, metric, rows),
                forgetting, config.retrain.max_forgetting, config.retrain.max_class_forgetting, versus_baseline,
                gate.require_significant_gain_over_baseline)
            if unseen_note:
                decision = replace(decision, reasons=[unseen_note, *decision.reasons])
            if stale:
                refusal = (f"forgetting was measured against champion v{forgetting.champion_version}, which is no "
                           f"longer champion (v{current} is), and could not be measured again: not promoted (run "
                           "again to compare with the new champion)")
                decision = replace(decision, promote=False, reasons=[*decision.reasons, refusal],
                                   failed=[refusal, *decision.failed])
            decision = replace(decision, forgetting=forgetting)
            dropped = dropped_labels(champion, labels)
            if dropped:
                names = ", ".join(repr(d) for d in dropped[:8]) + (f" and {len(dropped) - 8} more"
                                                                     if len(dropped) > 8 else "")
                sentence = (f"this version cannot predict {names}, which champion v{champion.version} predicts (the "
                            "training data had no row of it)")
                if gate.allow_dropped_labels:
                    decision = replace(decision, reasons=[*decision.reasons, sentence + ": allowed by "
                                                          "gate.allow_dropped_labels"])
                else:
                    refusal = (sentence + ": not promoted; if the class was retired on purpose, set "
                               f"gate.allow_dropped_labels: true or promote by hand (tuneline promote {candidate.name} "
                               f"{candidate.version} --reason \"...\")")
                    decision = replace(decision, promote=False, reasons=[*decision.reasons, refusal],
                                       failed=[refusal, *decision.failed])
            unlearned = unlearned_labels(champion, labels, kind.gold(test), fine_tuned.predictions)
            if unlearned:
                sentence = (f"this version never predicts {', '.join(repr(u) for u in unlearned[:8])}, new since "
                            f"champion v{champion.version} and held by the test rows (the label set grew by it)")
                if gate.allow_unlearned_labels:
                    decision = replace(decision, reasons=[*decision.reasons, sentence + ": allowed by "
                                                          "gate.allow_unlearned_labels"])
                else:
                    refusal = (sentence + ": not promoted, as the class was added to be learned; give it more rows "
                               "(or train longer), or set gate.allow_unlearned_labels: true to promote it anyway")
                    decision = replace(decision, promote=False, reasons=[*decision.reasons, refusal],
                                       failed=[refusal, *decision.failed])
            if lost is not None:
                refusal = (f"no version is {CHAMPION}, yet the promotion history says v{lost} is: the alias was "
                           f"removed outside tuneline, so this version cannot be compared with it and is not promoted "
                           f"(restore it with tuneline promote {candidate.name} {lost} --reason \"...\", or promote "
                           f"the version you want by hand)")
                decision = replace(decision, promote=False, reasons=[*decision.reasons, refusal],
                                   failed=[refusal, *decision.failed])
            if (note := promoted_without_significant_gain(decision, versus_baseline, best[0] if best else "",
                                                          metric, gate)) is not None:
                task_logger().warning("%s", note)
            verdict = "promoted" if decision.promote else "kept_champion" if champion else "rejected"
            tags = {"gate.decision": verdict, "gate.reasons": "; ".join(decision.reasons), "gate.metric": metric,
                    "gate.candidate": f"{decision.candidate:.6f}",
                    "gate.champion_version": champion.version if champion else "",
                    "gate.champion_metric": "" if champion is None or champion.metric is None
                    else f"{champion.metric:.6f}", "gate.lock_waited_s": f"{lock.waited_s:.1f}"}
            if comparison is not None:
                tags.update({"gate.test": comparison.test, "gate.p_value": f"{comparison.p_value:.6g}",
                             "gate.difference_ci": f"[{comparison.ci_low:.6f}, {comparison.ci_high:.6f}]"})
            tags["gate.sentence"] = decision_sentence(decision, candidate.version)
            tags["tuneline.status"] = "gated"  # before the alias move: a champion is always a gated version
            # a passed gate reads "promoting" until the alias has moved: a run killed in between leaves a version
            # that says so, which `tuneline doctor` resolves, instead of one that says "promoted" and never was
            pending = {**tags, "gate.decision": PROMOTING, "gate.sentence": (
                f"Version {candidate.version} passed its gate and is being made champion: {decision.explained()}.")} \
                if decision.promote else tags
            # one tag per request, so the gate's verdict, gate.decision, is written last: a run killed part way
            # leaves a version without it, which `tuneline doctor` finds as unfinished and settles; written first, a
            # kill left one that read decided but never got tuneline.status=gated (training QA)
            for key, value in sorted(pending.items(), key=lambda item: item[0] == "gate.decision"):
                client.set_model_version_tag(candidate.name, candidate.version, key, value)
            if decision.promote:  # the compare-and-set of every champion move, recorded in the promotion history
                with PromotionLog(ledger_url_for(config.ledger.url, run.tracking_uri), candidate.name,
                                  client=client) as history:
                    _move_locked(client, history, candidate.version, expected_from=current,
                                 actor=f"run {run.run_id}", action=GATE, reason=decision.explained())
                moved = True
                for key in ("gate.decision", "gate.sentence"):
                    client.set_model_version_tag(candidate.name, candidate.version, key, tags[key])
                best = max(full_candidate, _best_ever(client, candidate.name, metric, rows) or 0.0)
                client.set_registered_model_tag(candidate.name, BEST_TAG.format(metric=metric), f"{best:.6f}")
                client.set_registered_model_tag(candidate.name, BEST_TEST_TAG.format(metric=metric), rows)
    except BaseException as error:
        # Once the alias moved (even if its history row was then lost) the version is serving: never tag it failed.
        if not moved and not isinstance(error, PromotionNotRecorded):
            _withdraw(client, candidate)
        raise
    set_tags(run, tags)
    numbers = {f"gate.champion.{metric}": champion.metric} if champion is not None and champion.metric is not None \
        else {}
    if comparison is not None:
        numbers.update({"gate.p_value": comparison.p_value, "gate.difference": comparison.difference,
                        "gate.difference_ci_low": comparison.ci_low, "gate.difference_ci_high": comparison.ci_high})
    log_metrics(run, numbers)
    outcome = (f"v{candidate.version} promoted to champion" if decision.promote else
               f"v{candidate.version} not promoted, champion v{champion.version} kept" if champion else
               f"v{candidate.version} not promoted")
    task_logger().info("gate: %s (%s)", outcome, decision.explained())
    return decision


def decision_sentence(decision: GateDecision, version: str) -> str:
    """The gate's decision as one plain sentence with its numbers (on the version's tags, the run, the summary)."""
    verb = "promoted to champion" if decision.promote else "not promoted"
    return f"Version {version} {verb}: {decision.explained()}."


def _withdraw(client: Any, candidate: RegisteredVersion) -> None:
    """After a failure: no ``challenger`` on the candidate, and a tag saying why (best effort: the store may be
    the thing that failed)."""
    try:
        client.set_model_version_tag(candidate.name, candidate.version, "tuneline.status", "failed")
        if str((client.get_registered_model(candidate.name).aliases or {}).get(CHALLENGER)) == candidate.version:
            client.delete_registered_model_alias(candidate.name, CHALLENGER)
    except Exception as error:  # noqa: BLE001 - reported, and `tuneline doctor` finds the version later
        task_logger().warning("could not withdraw %s v%s after a failure: %s", candidate.name, candidate.version, error)


