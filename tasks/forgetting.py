"""Forgetting: did the retrained model lose what the champion knew?

Both models are scored on the *earlier* test set (the test rows of the data version the champion was trained on),
through their serving code and the kind's one metrics function, overall and per class (entity type, label).
Forgetting is the champion's score minus the candidate's: positive when the candidate got worse. The gate refuses a
candidate whose overall forgetting is over ``retrain.max_forgetting`` or whose worst class dropped more than
``retrain.max_class_forgetting``; both numbers are logged to the run as metrics and a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tuneline.common import pipeline_task, task_logger
from tuneline.config import TunelineConfig
from tuneline.kinds import kind_of
from tuneline.loaded_versions import load_version
from tuneline.tasks.evaluate import evaluate_model
from tuneline.tracking import RunContext, log_artifact, log_metrics


@dataclass(frozen=True)
class Forgetting:
    metric: str
    champion_version: str
    rows: int
    champion: float
    candidate: float
    per_class: dict[str, tuple[float, float]] = field(default_factory=dict)  # class -> (champion, candidate)

    @property
    def drop(self) -> float:
        return self.champion - self.candidate

    def class_drops(self) -> dict[str, float]:
        return {name: before - after for name, (before, after) in self.per_class.items()}

    def worst_class(self) -> tuple[str, float] | None:
        drops = self.class_drops()
        return max(drops.items(), key=lambda item: item[1]) if drops else None

    def worst_class_sentence(self) -> str | None:
        """How the worst class moved, for the gate's reason and the log; None without per-class scores. When no
        class dropped, no class is named: the "worst" of classes that all held was an arbitrary one, and "admiration
        F1 rose 0.0000" read as if admiration had been singled out (loop QA)."""
        worst = self.worst_class()
        if worst is None:
            return None
        if worst[1] > 0:
            return f"worst class on the earlier test rows: {worst[0]} F1 dropped {worst[1]:.4f}"
        return "no class dropped on the earlier test rows (every class's F1 held or rose)"


@dataclass(frozen=True)
class EarlierData:
    """What the champion knew: its version, and which test rows it was tested on (by data part)."""

    champion_version: str | None
    parts: frozenset[str]
    labels: tuple[str, ...] = ()  # the label set the champion was trained on (its head), in order
    #: the examples (:func:`~tuneline.tasks.split.example_key` of ``key_column``) of the champion's test split;
    #: None: told by data part, as before keys were kept
    test_keys: frozenset[str] | None = None
    key_column: str = "text"

    def lost_labels(self, labels: list[str]) -> list[str]:
        """The champion's labels that ``labels`` lacks or holds out of order, which training on from its head
        cannot give (a head grows, it never drops or reorders): those a ``data drop`` took out with their batch."""
        if list(labels[: len(self.labels)]) == list(self.labels):
            return []
        return [label for label in self.labels if label not in labels] or list(self.labels)

    def _known(self, test: pd.DataFrame) -> pd.Series:
        """Which test rows the champion was tested on: by example, so a row relabelled since (``data relabel``
        writes its batch's rows into a new data part) is still one it knew, scored with its corrected label. Told
        by part, a relabel of one base row took all 190 base test rows out of the forgetting check, silently."""
        if self.test_keys is not None and self.key_column in test.columns:
            from tuneline.tasks.split import example_key

            return test[self.key_column].map(example_key).isin(self.test_keys)
        return test["part"].isin(self.parts)

    def earlier(self, test: pd.DataFrame) -> pd.DataFrame:
        return test[self._known(test)].reset_index(drop=True)

    def new_mask(self, test: pd.DataFrame) -> pd.Series:
        return ~self._known(test)


@pipeline_task(name="find-earlier-data")
def earlier_data(client: Any, registered_name: str, store: Any, parent: Any,
                 new_parts: frozenset[str] | set[str] = frozenset(), key_column: str | None = None,
                 current: pd.DataFrame | None = None) -> EarlierData:
    """The champion and the data version it was trained on (its ``data.version`` tag; the parent version when the
    champion came from ``tuneline train``, which trains on the base data that became version 1).

    ``new_parts``: the parts of this run's batches, never earlier data. A run that takes over the batches of a run
    killed after it committed its data version finds them already in ``parent``: counted as earlier, the new rows
    were scored as "earlier test rows" (all 314 of 314) and no ``new_test.*`` metric was logged."""
    from tuneline.tasks.gate import champion_version

    version = champion_version(client, registered_name)
    number = client.get_model_version(registered_name, version).tags.get("data.version") if version else None
    trained_on = store.get(int(number)) if number and str(number).isdigit() else parent
    parts = frozenset(trained_on.parts) - frozenset(new_parts)
    keys = None
    if version and key_column is not None:
        from tuneline.tasks.split import example_key

        # the parts the current version still holds are in ``current`` (the run read them once); only parts it
        # no longer holds (replaced by a relabel, taken out by a drop) are read again
        held = set(current["part"]) & parts if current is not None and "part" in current.columns else set()
        known = [store.read_part(part) for part in sorted(parts - held)]
        if held:
            known.append(current[current["part"].isin(held)])
        tested = [frame.loc[frame["split"] == "test", key_column] for frame in known
                  if "split" in frame.columns and key_column in frame.columns]
        if len(tested) == len(known):
            keys = frozenset(example_key(key) for column in tested for key in column)
    return EarlierData(champion_version=version, parts=parts, labels=tuple(trained_on.labels) if version else (),
                       test_keys=keys, key_column=key_column or "text")


@pipeline_task(name="measure-forgetting")
def measure_forgetting(model_dir: Path, earlier_test: pd.DataFrame, labels: list[str], registered_name: str,
                       champion_version: str | None, config: TunelineConfig, run: RunContext) -> Forgetting | None:
    """Candidate vs champion on the earlier test rows; None when there is no champion or no earlier test row."""
    if champion_version is None or earlier_test.empty:
        return None
    from tuneline.tasks.gate import in_run_spelling

    kind = kind_of(config)
    metric = config.primary_metric
    candidate = evaluate_model.fn(model_dir, earlier_test, labels, config,
                                  rows=f"the {len(earlier_test)} earlier test rows (forgetting)")
    output = load_version(registered_name, champion_version).predict(
        kind.model_input(earlier_test))
    champion_predicted, _ = kind.predictions_from_output(output)
    champion_predicted, _ = in_run_spelling(champion_predicted, labels)  # as the gate scores it
    gold = kind.gold(earlier_test)
    champion_metric = kind.score(gold, champion_predicted, labels)[metric]
    before = kind.per_class_scores(gold, champion_predicted, labels)
    after = kind.per_class_scores(gold, candidate.predictions, labels)
    result = Forgetting(metric=metric, champion_version=champion_version, rows=len(earlier_test),
                        champion=float(champion_metric), candidate=float(candidate.metrics[metric]),
                        per_class={name: (before[name], after.get(name, 0.0)) for name in before})
    table = pd.DataFrame([{"class": name, "champion_f1": b, "candidate_f1": a, "drop": b - a}
                          for name, (b, a) in result.per_class.items()])
    folder = run.run_dir / "evaluation"
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "forgetting_per_class.csv", index=False)
    log_artifact(run, folder / "forgetting_per_class.csv", "evaluation")
    worst = result.worst_class()
    log_metrics(run, {f"forgetting.{metric}": result.drop, f"earlier_test.candidate.{metric}": result.candidate,
                      f"earlier_test.champion.{metric}": result.champion,
                      "forgetting.worst_class_drop": worst[1] if worst else 0.0,
                      "earlier_test.rows": float(len(earlier_test))})
    task_logger().info("forgetting on %d earlier test rows: %s %.4f (champion v%s) -> %.4f (candidate); %s",
                       len(earlier_test), metric, result.champion, champion_version, result.candidate,
                       result.worst_class_sentence() or "no per-class scores")
    return result
