"""Drift: compare every new batch with the data the champion was trained on, before anything trains on it.

Two steps, because they act on different things:

* :func:`check_label_set` runs on the batches *as landed*: a label (or entity type) the model has never seen is an
  error that rejects the batch, unless ``drift.allow_label_growth`` is set; then the label set grows (new labels are
  appended, so every existing label keeps its id and the champion's head can be extended) and the run says so.
* :func:`check_batch_drift` runs on each batch's *accepted* rows against the reference (the current data version):
  label-distribution shift (chi-square with a minimum-sample guard), text-length shift (KS), the unknown-token rate
  under the model's tokenizer, and unseen labels. Each batch's report (table + plot) is logged to the run under
  ``drift/``; ``drift.on_drift: stop`` turns a detected shift into a rejection of that batch and a stopped run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from tuneline.common import pipeline_task, task_logger
from tuneline.config import TunelineConfig
from tuneline.drift import ChampionAgreement, DriftReport, check_drift
from tuneline.errors import UserError
from tuneline.kinds import TaskKind, kind_of
from tuneline.ledger import Batch
from tuneline.loaded_versions import load_version
from tuneline.run_warnings import SAID_IN_SUMMARY
from tuneline.tracking import RunContext, log_artifact, log_metrics, set_tags


class DriftStop(UserError):
    """A batch's drift (or an unseen label) stopped the run; the batch is rejected with the reasons."""


@dataclass
class LabelSetDecision:
    labels: list[str]
    added: list[str] = field(default_factory=list)
    refused: dict[str, list[str]] = field(default_factory=dict)  # batch content hash -> its unseen labels
    unreadable: list[tuple[Batch, list[str]]] = field(default_factory=list)  # rejected here: could not be read
    too_rare: dict[str, int] = field(default_factory=dict)  # unseen labels not grown: fewer rows than the minimum
    read: dict[str, Any] = field(default_factory=dict, repr=False)  # content hash -> the batch as read (LoadedData)
    ignored: str | None = None  # why the config's data.labels is not the label set used (for the run's summary)


def _classes(labels: Mapping[str, int] | list[str], kind: TaskKind) -> dict[str, int]:
    """The classes the labels stand for, with their counts (NER: entity types, ``B-PER`` and ``I-PER`` → ``PER``;
    ``O`` stands for none; other kinds: the labels themselves)."""
    counts = labels if isinstance(labels, Mapping) else dict.fromkeys(labels, 1)
    classes: dict[str, int] = {}
    for label, count in counts.items():
        if (name := kind.label_class(label)) is not None:
            classes[name] = classes.get(name, 0) + count
    return classes


def check_label_set(known: list[str], landed: dict[str, dict[str, int]], config: TunelineConfig) -> LabelSetDecision:
    """``landed``: each batch's label distribution as landed. Returns the label set to train with."""
    decision = LabelSetDecision(labels=list(known))
    minimum = getattr(config.data, "min_examples_per_label", 1)
    totals: dict[str, int] = {}  # a new label's rows over every batch of the run: growth needs enough of them
    for distribution in landed.values():
        for label, count in distribution.items():
            if label not in known:
                totals[label] = totals.get(label, 0) + count
    for batch_hash, distribution in landed.items():
        unseen = sorted(label for label, count in distribution.items() if count > 0 and label not in known)
        if not unseen:
            continue
        if not config.drift.allow_label_growth:
            decision.refused[batch_hash] = unseen
            continue
        for label in unseen:
            if totals[label] < minimum:  # a typo ('shiping') must not become a class trained from one row
                decision.too_rare[label] = totals[label]
            elif label not in decision.labels:
                decision.labels.append(label)
                decision.added.append(label)
    if decision.added:  # every new class gets all of its labels (NER: a new type gets both of its tags)
        kind = kind_of(config)
        for label in kind.labels_of_classes(sorted(set(_classes(decision.added, kind)) - set(_classes(known, kind)))):
            if label not in decision.labels:
                decision.labels.append(label)
                decision.added.append(label)
    return decision


def did_you_mean(unseen: list[str], known: list[str]) -> str:
    """`` (did you mean 'shipping' for 'shiping'?)`` for unseen labels one slip away from a known one, else ''."""
    import difflib

    folded = {label.casefold(): label for label in known}
    pairs = []
    for label in unseen:
        close = difflib.get_close_matches(label.casefold(), list(folded), n=1, cutoff=0.8)
        if close:
            pairs.append(f"{folded[close[0]]!r} for {label!r}")
    return f" (did you mean {', '.join(pairs)}?)" if pairs else ""


def renamed_classes(unseen: list[str], known: list[str]) -> str:
    """The advice for unseen labels that name the model's classes another way: words (``yes``/``no``) where every
    known label is a number code (``0``/``1``), or codes where every known label is a word, and no more of them
    than there are classes. Growing the head would turn a binary paraphrase model into one of four classes (pair QA,
    D4), so the advice is to write them as the model's labels; which code each word means only the user can say."""
    from tuneline.readers import canonical_integer

    def coded(label: str) -> bool:
        return canonical_integer(label.strip()) is not None

    if not unseen or not known or len(unseen) > len(known):
        return ""
    if all(map(coded, known)) and not any(map(coded, unseen)):
        written = "words where the model's labels are number codes"
    elif not any(map(coded, known)) and all(map(coded, unseen)):
        written = "number codes where the model's labels are words"
    else:
        return ""
    more = f" (and {len(known) - 8} more)" if len(known) > 8 else ""
    return (f"the batch writes {written}: they look like other names of its {len(known)} classes, not new ones, "
            f"so write them as {', '.join(map(repr, known[:8]))}{more} in the file and land it as a new batch; "
            f"only if they are new classes, set drift.allow_label_growth: true (the model would have "
            f"{len(known) + len(unseen)} classes) and take this batch again")


@pipeline_task(name="admit-labels")
def admit_labels(batches: list[Batch], known: list[str], config: TunelineConfig, ledger: Any,
                 run: RunContext) -> LabelSetDecision:
    """Look at each batch's labels as landed: reject a batch with an unseen label (and stop the run) unless
    ``drift.allow_label_growth``; with it, return the grown label set (and tag the run with what was added).

    A batch that cannot be read at all (changed or removed after it landed, a header or encoding the reader
    refuses) is rejected here with the reader's reason and listed in ``unreadable``; the run goes on without it.
    Raising instead would give every batch back, and the same batch would fail every later run the same way."""
    from tuneline.tasks.intake import UnreadableBatch, _read_batch, batch_labels

    configured = list(getattr(config.data, "labels", None) or [])
    ignored = None
    if configured and configured != list(known):  # the config (and its MLflow param) reads as if it decided
        what = "label set" if set(configured) != set(known) else "label order (the model's class ids)"
        ignored = (f"data.labels in the config ({configured}) is not the {what} of the loop's current data version "
                   f"({list(known)}): the loop keeps its own (the first data version's, grown only by "
                   "drift.allow_label_growth when a batch brings a new label); data.labels only spells the labels of "
                   "the first version. To train on another label set, start a new loop (another "
                   "tracking.registered_model)")
        task_logger().warning("%s", ignored)
        if run is not None:
            set_tags(run, {"retrain.data_labels_ignored": ", ".join(configured)})
    spelled = config.model_copy(deep=True)  # a known label written another way ('POSITIVE') is not unseen
    spelled.data.labels = list(known)
    landed: dict[str, dict[str, int]] = {}
    unreadable: list[tuple[Batch, list[str]]] = []
    read: dict[str, Any] = {}
    for batch in batches:
        if batch.state == "validated":
            continue
        try:
            read[batch.content_hash] = _read_batch(batch, spelled)  # reading does not depend on the label set
            landed[batch.content_hash] = batch_labels(batch, spelled, read[batch.content_hash])
        except UnreadableBatch as error:
            ledger.mark_rejected(run.run_id, batch.content_hash, [str(error)])
            unreadable.append((batch, [str(error)]))
            task_logger().warning("batch %s rejected: %s", batch.name, error, extra=SAID_IN_SUMMARY)
    decision = check_label_set(list(known), landed, config)
    decision.ignored = ignored
    decision.unreadable = unreadable
    decision.read = read
    reasons = []
    for batch in batches:
        if batch.content_hash in decision.refused:
            unseen = decision.refused[batch.content_hash]
            advice = renamed_classes(unseen, known) or (
                "fix the labels and land them as a new batch, or set drift.allow_label_growth: true to grow the head "
                "and take this batch again")
            reason = (f"unseen label(s) {unseen} in {batch.name}{did_you_mean(unseen, known)}: the model knows "
                      f"{list(known)}; {advice}: tuneline data requeue -c CONFIG {batch.name} --reason \"...\"")
            quarantine, besides = _other_problems(batch, read.get(batch.content_hash), list(known),
                                                  decision.refused[batch.content_hash], config, run)
            reason += besides
            loaded = read.get(batch.content_hash)  # its rows were read: `data batches` shows them as none kept
            ledger.mark_rejected(run.run_id, batch.content_hash, [reason], quarantine,
                                 rows_read=loaded.total_records if loaded is not None else None)
            reasons.append(reason)
    if reasons:  # the stop names every batch's fate: the others were only in warning lines before it
        gone = {b.content_hash for b, _ in unreadable}
        also = "".join(f"; also rejected by this run: {b.name}: {'; '.join(why)}" for b, why in unreadable)
        kept = [b.name for b in batches if b.content_hash not in decision.refused and b.content_hash not in gone]
        given_back = f"; given back for the next run: {', '.join(kept)}" if kept else ""
        raise DriftStop("; ".join(reasons) + also + given_back)
    if decision.too_rare:
        task_logger().warning(
            "not added to the label set: %s (rows in this run's batches), fewer than data.min_examples_per_label=%d%s;"
            " those rows are quarantined as unknown labels. Fix them and land them as a new batch",
            ", ".join(f"{label!r} ({count})" for label, count in sorted(decision.too_rare.items())),
            getattr(config.data, "min_examples_per_label", 1), did_you_mean(list(decision.too_rare), known))
        set_tags(run, {"retrain.labels_too_rare": ", ".join(sorted(decision.too_rare))})
    if decision.added:
        task_logger().info("the label set grows by %s: the model's head is extended", decision.added)
        set_tags(run, {"retrain.labels_added": ", ".join(decision.added)})
    return decision


def _other_problems(batch: Batch, loaded: Any, known: list[str], unseen: list[str], config: TunelineConfig,
                    run: RunContext) -> tuple[Path | None, str]:
    """A batch refused for its unseen labels, validated as if they were known: its quarantine file (its unseen-label
    rows and its other broken records; None when it has none) and a clause naming the other broken records, for the
    rejection reason.

    Why: the refusal named only the label, so a user fixed it, landed the batch again, and only then learned of its
    empty texts or contradicting copies: one round trip per kind of problem. Nothing here is kept as data."""
    if loaded is None:
        return None, ""
    from tuneline.tasks.intake import _validate_batch, quarantine_unseen_labels

    checked = config.model_copy(deep=True)
    checked.data.labels = [*known, *(label for label in unseen if label not in known)]
    folder = run.run_dir / "batches" / batch.content_hash[:12]
    over = error_text = ""
    try:
        _validate_batch(loaded, checked.data.labels, checked, folder, batch.name)
    except UserError as error:  # over data.max_bad_fraction, or a contract the whole batch breaks: said too
        error_text = str(error)
        over = f" ({error_text.splitlines()[0][:300]})"
    quarantine = folder / "quarantine.csv"
    rows = pd.read_csv(quarantine, keep_default_na=False, dtype=str) if quarantine.is_file() else pd.DataFrame()
    with_unseen = quarantine_unseen_labels(loaded, known, config, folder, batch.name)  # its unseen-label rows too
    if rows.empty:
        return with_unseen, over and f"; besides, it breaks other rules{over}"
    rules = rows["rule"].value_counts() if "rule" in rows else pd.Series(dtype=int)
    records = len(rows[["source_file", "source_row"]].drop_duplicates()) if {"source_file", "source_row"} <= set(
        rows.columns) else len(rows)
    named = ", ".join(f"{rule} {count}" for rule, count in rules.head(3).items())
    # over data.max_bad_fraction it is rejected again once its labels are allowed: said, so a requeue with label
    # growth alone is not the whole fix (operator QA: 30 of 65 texts empty, and only the label was named)
    limit = re.search(r"more than (data\.max_(?:bad|duplicate)_fraction=[\d.]+%)", error_text)
    over = f", more than {limit[1]}, so it is rejected again for them once its labels are allowed" if limit else ""
    return quarantine, (f"; besides, {records} of its {loaded.total_records} records break other rules ({named}){over}"
                        f": fix them too before landing it again, as listed in {quarantine}")


@pipeline_task(name="enforce-drift")
def enforce_drift(outcome: "DriftOutcome", accepted: list[Any], ledger: Any, run: RunContext) -> None:
    """``drift.on_drift: stop``: reject every batch whose report says stop, then stop the run naming them."""
    stopped = [a for a in accepted if a.batch.content_hash in outcome.stopped]
    if not stopped:
        return
    keys = sorted({_STOP_KEYS.get(check.name, "drift.on_drift") for a in stopped
                   for check in outcome.reports[a.batch.content_hash].checks if check.status == "stop"})
    for item in stopped:
        ledger.mark_rejected(run.run_id, item.batch.content_hash,
                             [f"drift ({', '.join(f'{key}=stop' for key in keys)}): "
                              f"{outcome.stopped[item.batch.content_hash]}"],
                             item.quarantine_path, rows_read=len(item.frame) + item.rejected_rows)  # none kept
    raise DriftStop("drift stopped the run: " + "; ".join(
        f"{a.batch.name}: {outcome.stopped[a.batch.content_hash]}" for a in stopped)
        + f" (drift report: {Path(run.run_dir) / 'drift'}, MLflow run {run.run_id}). To train on such a batch anyway: "
        + ", ".join(f'tuneline data requeue -c CONFIG {a.batch.name} --reason "..."' for a in stopped)
        + ", then tuneline retrain -c CONFIG " + " ".join(f"--set {key}=warn" for key in keys)
        + _kept_for_next(accepted, stopped))


def _kept_for_next(accepted: list[Any], stopped: list[Any]) -> str:
    """The batches of a stopped run that passed: validated, given back with the run's failure, trained by the next
    run. The stop named only the stopped batch, so an operator took the good one landed beside it for lost."""
    passed = [a for a in accepted if a not in stopped]
    if not passed:
        return ""
    return (". Validated and kept for the next run (tuneline retrain trains on them): "
            + ", ".join(f"{a.batch.name} ({len(a.frame)} rows)" for a in passed))


#: the config key whose ``stop`` a stopped check obeyed (the statistical checks: ``drift.on_drift``)
_STOP_KEYS = {"champion_agreement": "drift.on_label_disagreement"}


#: rows scored per batch (and of the earlier test rows) by the champion-agreement check: enough to see a drop of
#: ``drift.max_champion_drop`` (the standard error of an accuracy on 1,000 rows is under 0.016), bounded in time
AGREEMENT_SAMPLE = 1000

#: shuffles of the labels averaged for the chance level (its spread over shuffles is about a tenth of a point on
#: a few hundred rows: measured 0.006-0.015 for NER F1, under 0.03 for accuracy on 300 rows)
CHANCE_SHUFFLES = 20

#: the batch score's bootstrap interval: its upper end (one-sided 95%) is what the check holds against the limit
AGREEMENT_CONFIDENCE = 0.90


class AgreementScore(NamedTuple):
    """A served model's ``agreement_metric`` on some labeled rows: ``score`` on ``rows`` of them, ``chance`` with
    their labels shuffled (:meth:`TaskKind.shuffled_gold`, the mean of :data:`CHANCE_SHUFFLES`; NaN when not asked
    for), ``low`` and ``high`` the ends of the score's bootstrap interval. NaN, 0 when no row could be scored."""

    score: float
    rows: int
    chance: float = float("nan")
    high: float = float("nan")
    low: float = float("nan")


def agreement_score(model: Any, kind: TaskKind, frame: pd.DataFrame, known: list[str], *,
                    chance: bool = True) -> AgreementScore:
    """A served model's agreement with ``frame``'s labels (:meth:`TaskKind.agreement_scorer`), on up to
    :data:`AGREEMENT_SAMPLE` of its rows whose labels are all in ``known``, with its interval and (``chance``) its
    chance level (:class:`AgreementScore`)."""
    import numpy as np

    from tuneline.stats import bootstrap_interval
    from tuneline.tasks.gate import in_run_spelling

    known_set = set(known)
    gold = kind.gold(frame)
    rows = pd.Series([i for i, g in enumerate(gold)
                      if all(label in known_set for label in ([g] if isinstance(g, str) else g))], dtype="int64")
    if rows.empty:
        return AgreementScore(float("nan"), 0)
    rows = rows.sample(n=min(len(rows), AGREEMENT_SAMPLE), random_state=0).to_numpy()
    predicted, _ = kind.predictions_from_output(model.predict(kind.model_input(frame.iloc[rows])))
    predicted, _ = in_run_spelling(predicted, known)
    gold = [gold[i] for i in rows]
    every = np.arange(len(rows))
    scorer = kind.agreement_scorer(gold, predicted, known)
    level = float("nan")
    if chance:
        rng = np.random.default_rng(0)
        level = float(np.mean([kind.agreement_scorer(kind.shuffled_gold(gold, rng), predicted, known)(every)
                               for _ in range(CHANCE_SHUFFLES)]))
    low, high = bootstrap_interval(scorer, len(rows), confidence=AGREEMENT_CONFIDENCE)
    return AgreementScore(float(scorer(every)), len(rows), level, float(high), float(low))


def agreement_of(version: str, metric: str, earlier: AgreementScore, batch: AgreementScore) -> ChampionAgreement:
    """What :func:`tuneline.drift.champion_agreement` judges: the champion's scores on its earlier test rows and on
    a batch."""
    return ChampionAgreement(version, metric, reference=earlier.score, reference_rows=earlier.rows,
                             reference_chance=earlier.chance, batch=batch.score, rows=batch.rows,
                             batch_high=batch.high, reference_low=earlier.low)


def champion_agreements(batches: list[tuple[Batch, pd.DataFrame]], reference: pd.DataFrame, known: list[str],
                        config: TunelineConfig, run: RunContext) -> dict[str, ChampionAgreement]:
    """The champion's ``agreement_metric`` on each batch's rows (those whose labels it knows) and on the reference's
    test rows, through its registered pyfunc, as the gate scores it; empty without a champion.

    A champion that cannot be loaded or scored gives each batch an agreement with its ``error`` (the check is then
    skipped and says why): this check must not stop a run the gate would let through."""
    from tuneline.promotions import champion_version
    from tuneline.tracking import client_for

    if not batches:
        return {}
    name = config.registered_model_name
    version = champion_version(client_for(run), name)
    if version is None:
        return {}
    kind = kind_of(config)
    metric = kind.agreement_name or kind.agreement_metric

    def failed(error: Exception, where: str) -> ChampionAgreement:
        said = f"{type(error).__name__}: {error}"[:300]
        task_logger().warning("champion v%s could not be scored on %s: %s", version, where, said)
        return ChampionAgreement(version, metric, error=said)

    try:
        model = load_version(name, version)
        earlier = agreement_score(model, kind, reference[reference["split"] == "test"], known)
    except Exception as error:  # noqa: BLE001 - see the docstring
        unscored = failed(error, "the earlier test rows")
        return {batch.content_hash: unscored for batch, _ in batches}
    agreements: dict[str, ChampionAgreement] = {}
    for batch, frame in batches:
        try:
            scored = agreement_score(model, kind, frame, known, chance=False)
        except Exception as error:  # noqa: BLE001 - see the docstring
            agreements[batch.content_hash] = failed(error, f"batch {batch.name}")
            continue
        agreements[batch.content_hash] = agreement_of(version, metric, earlier, scored)
    return agreements


def _drift_texts(frame: pd.DataFrame, kind: TaskKind) -> pd.Series:
    """What each row's length and unknown tokens are measured on: a pair's two texts together. The checks read the
    first text alone, so a shift in the second one went unseen (pair QA: IDs under the second sentence's header)."""
    second = kind.second_text_column
    if second and second in frame.columns:
        return frame[kind.value_column].astype(str) + " " + frame[second].astype(str)
    return frame[kind.value_column]


def _lengths(values: pd.Series) -> list[float]:
    return [float(len(v)) if isinstance(v, (list, tuple)) or hasattr(v, "__array__") else float(len(str(v).split()))
            for v in values]


@dataclass
class DriftOutcome:
    reports: dict[str, DriftReport]
    stopped: dict[str, str]  # batch content hash -> the report's summary
    #: batch name -> the sentences of its checks that warned or stopped: for the run's summary, where a detected
    #: shift was missing (the log said it at INFO, among the flow's other lines)
    notes: dict[str, str] = field(default_factory=dict)


@pipeline_task(name="check-drift")
def check_batch_drift(batches: list[tuple[Batch, pd.DataFrame]], reference: pd.DataFrame, known: list[str],
                      tokenizer: Any, config: TunelineConfig, run: RunContext,
                      own_parts: frozenset[str] | set[str] = frozenset()) -> DriftOutcome:
    """One drift report per batch (accepted rows) against ``reference`` less ``own_parts`` (the batches' stored
    parts); logged as table, JSON and PNG.

    The reference never holds the batches' own rows: a run that takes over batches (its predecessor was killed or
    interrupted after it committed their data version) finds them in the current version already, and compared each
    batch partly with itself (250 new against 2,600 reference rows instead of 2,350: a weaker test), and the
    champion's earlier test rows then held the batch's own test rows."""
    log = task_logger()
    kind = kind_of(config)
    if own_parts and "part" in reference.columns:
        reference = reference[~reference["part"].isin(set(own_parts))].reset_index(drop=True)
    ref_shift = kind.shift_distribution(reference)  # what the label test compares (NER: sentences per entity type)
    ref_texts = _drift_texts(reference, kind)
    ref_lengths = _lengths(ref_texts)
    ref_sample = ref_texts.sample(n=min(len(reference), 2000), random_state=0).tolist()
    from tuneline.drift import unknown_token_share

    ref_unknown = unknown_token_share(ref_sample, tokenizer) if ref_sample else None
    what = kind.label_noun
    agreements = champion_agreements(batches, reference, known, config, run)
    outcome = DriftOutcome(reports={}, stopped={})
    for batch, frame in batches:
        batch_labels = kind.label_distribution(frame)
        batch_shift = kind.shift_distribution(frame)
        texts = _drift_texts(frame, kind)
        report = check_drift(
            reference_labels=ref_shift, batch_labels=batch_shift, reference_lengths=ref_lengths,
            batch_lengths=_lengths(texts), batch_texts=texts.tolist(), tokenizer=tokenizer,
            reference_unknown_rate=ref_unknown,
            known_labels=sorted(_classes(known, kind)), batch_types=_classes(batch_labels, kind),
            what=what, allow_growth=config.drift.allow_label_growth, batch_rows=len(frame),
            reference_rows=len(reference), per_row=kind.labels_per_row_any, min_effect=kind.shift_min_effect,
            thresholds=config.drift.thresholds(), on_drift=config.drift.on_drift,
            champion=agreements.get(batch.content_hash), on_label_disagreement=config.drift.on_label_disagreement)
        name = batch.content_hash[:12]
        folder = run.run_dir / "drift"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(json.dumps({"batch": batch.path, **report.to_dict()}, indent=2))
        report.to_frame().to_csv(folder / f"{name}.csv", index=False)
        report.plot(folder / f"{name}.png", ref_lengths, _lengths(texts), ref_shift, batch_shift)
        for suffix in ("json", "csv", "png"):
            log_artifact(run, folder / f"{name}.{suffix}", "drift")
        shifted = [check.sentence for check in report.checks if check.status in ("warn", "stop")]
        skipped = sum(check.status == "skipped" for check in report.checks)
        status = (f"ok, {skipped} of {len(report.checks)} checks skipped" if report.status == "skipped"
                  and skipped < len(report.checks) else report.status)  # four checks ran: not "skipped"
        (log.warning if shifted else log.info)("drift of batch %s (%s):\n%s", batch.name, status, report.summary())
        outcome.reports[batch.content_hash] = report
        # a label shift too small a batch could not test is said too: a batch of one class passed without a word
        # (with why it is said for this batch: a smaller batch holding every label passes without the line)
        # NER: entity types, as `what` says, not tags (nor `O`, its sentences without an entity)
        ref_classes = {label for label in ref_shift if kind.label_class(label) is not None}
        batch_classes = {label for label in batch_shift if kind.label_class(label) is not None}
        missing = sorted(ref_classes - batch_classes)
        untested = [f"{check.sentence.rstrip('.')}; said because the batch holds {len(batch_classes)} of the "
                    f"{len(ref_classes)} {what}s (none of {', '.join(repr(m) for m in missing[:5])}"
                    f"{f' and {len(missing) - 5} more' if len(missing) > 5 else ''})."
                    for check in report.checks if check.name == "label_shift"
                    and check.status == "skipped" and len(batch_classes) < len(ref_classes)]
        # and labels a champion too weak to judge could not check (loop QA: the summary said nothing of it)
        untested += [check.sentence for check in report.checks if check.name == "champion_agreement"
                     and check.status == "skipped" and "cannot tell right labels from wrong ones" in check.sentence]
        if shifted or untested:
            outcome.notes[batch.name] = " ".join(shifted + untested)
        if report.status == "stop":
            outcome.stopped[batch.content_hash] = " ".join(c.sentence for c in report.checks if c.status == "stop")
    worst = max((r.status for r in outcome.reports.values()), default="skipped",
                key={"ok": 0, "skipped": 1, "warn": 2, "stop": 3}.__getitem__)
    set_tags(run, {"drift.status": worst})
    log_metrics(run, {f"drift.{check.name}.statistic": check.statistic
                      for report in outcome.reports.values() for check in report.checks})
    return outcome
