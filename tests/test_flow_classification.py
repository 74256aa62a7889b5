"""End-to-end classification flow on a tiny random BERT: registry state, aliases, metrics, artifacts, gate, failures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from conftest import working_in, write_tiny_bert
from tuneline.config import build_config
from tuneline.demo import demo_config_dict, write_demo_csv
from tuneline.flows.train import train_flow
from tuneline.tasks.validate import DataValidationError

MODEL = "flow-test-intents"


def tiny_config(data_file: Path, tiny_bert: Path, *overrides: str):
    """The demo config, pointed at the tiny model and tuned so the tiny model learns the keyword-driven intents."""
    raw = demo_config_dict(data_file)
    return build_config(raw, [f"model.base={tiny_bert}", f"tracking.registered_model={MODEL}",
                              "tracking.experiment=flow-test", "tokenize.max_length=32", "train.epochs=15",
                              "train.learning_rate=2e-3", "train.batch_size=32", "train.early_stopping_patience=0", "train.precision=fp32",
                              "evaluate.zero_shot_baseline=true", "gate.min_metric=0.5", *overrides])


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """The tiny BERT without dropout: this module asserts how well it learns, which with dropout depends on the draws
    (see :func:`conftest.write_tiny_bert`)."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert-no-dropout"), dropout=0.0)


def registry() -> MlflowClient:
    return MlflowClient()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_bert):
    """One full run in its own folder, shared by the read-only assertions below."""
    folder = tmp_path_factory.mktemp("flow")
    with working_in(folder):
        data = write_demo_csv(folder / "data" / "tickets.csv", realistic=False)  # keyword data, learnable
        config = tiny_config(data, tiny_bert)
        summary = train_flow(config)
    return folder, config, summary


def test_run_registers_a_champion_with_metrics_lineage_and_artifacts(first_run):
    folder, config, summary = first_run
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    client = registry()
    run = client.get_run(summary.run_id)
    assert run.info.status == "FINISHED"

    # resolved config as params, secrets-free
    assert run.data.params["train.learning_rate"] == "0.002"
    assert run.data.params["data.label_column"] == "intent"

    # the tiny model really learned: well above the majority baseline
    metrics = run.data.metrics
    assert metrics["test.macro_f1"] >= 0.8
    assert metrics["test.macro_f1"] > metrics["baseline.majority.macro_f1"] + 0.4
    assert "baseline.zero_shot.macro_f1" in metrics
    assert {f"test.{label}.f1" for label in config.data.labels} <= set(metrics)
    curve = client.get_metric_history(summary.run_id, "train.loss")
    assert len(curve) >= 3 and curve[-1].value < curve[0].value
    # full fine-tuning trains every weight of the tiny BERT and its head
    assert metrics["model.trainable_parameters"] == metrics["model.total_parameters"] > 10_000
    # the rejected fraction is the rejected records' (broken and copies) over the records read; the limit's own
    # share (broken only) is data.broken_fraction (rejected_fraction was the broken share: metrics QA)
    read = int(run.data.tags["data.source.all.records"])
    assert metrics["data.rejected_fraction"] == pytest.approx(metrics["data.rejected_records"] / read)
    assert metrics["data.broken_fraction"] == pytest.approx(metrics["data.broken_records"] / read)
    assert metrics["data.rejected_records"] == metrics["data.broken_records"] + metrics["data.duplicate_records"]

    # lineage: dataset inputs per split + hash/rows/distribution tags
    contexts = {inp.tags[0].value for inp in run.inputs.dataset_inputs}
    assert contexts == {"train", "validation", "test"}
    tags = run.data.tags
    rows = sum(int(tags[f"data.{s}.rows"]) for s in ("train", "validation", "test"))
    assert rows == 960 - 1  # 960 clean demo rows minus the original of the conflicting pair
    assert set(json.loads(tags["data.train.label_distribution"])) == set(config.data.labels)
    assert len(tags["data.source.all.sha256"]) == 64

    # artifacts: quarantine, reports, confusion matrix, model
    artifacts = {a.path for a in client.list_artifacts(summary.run_id, "evaluation")}
    assert {"evaluation/confusion_matrix.png", "evaluation/confusion_matrix.csv", "evaluation/per_class_report.json",
            "evaluation/before_vs_after.json", "evaluation/test_predictions.csv"} <= artifacts
    counts = pd.read_csv(Path(summary.run_dir) / "evaluation" / "confusion_matrix.csv", index_col="gold")
    assert list(counts.index) == list(counts.columns) == summary.labels
    assert counts.to_numpy().sum() == summary.split_rows["test"]
    assert [a.path for a in client.list_artifacts(summary.run_id, "data")] == ["data/quarantine.csv"]
    quarantine = pd.read_csv(folder / Path(summary.quarantine_file).relative_to(folder))
    assert set(quarantine["rule"]) == {"not_nullable", "text_is_non_empty_string", "label_in_label_set",
                                       "no_conflicting_label_duplicates", "no_exact_duplicates",
                                       "record_has_wrong_field_count"}
    assert summary.rejected_records == 9
    # the summary says where the rows went: read = train + validation + test + quarantined
    assert set(summary.split_rows) == {"train", "validation", "test"} and min(summary.split_rows.values()) > 0
    assert summary.records_read == sum(summary.split_rows.values()) + summary.rejected_records

    # registry: version with metrics and aliases, gate decision recorded
    version = client.get_model_version(MODEL, summary.version)
    assert sorted(version.aliases) == ["challenger", "champion"]
    assert float(version.tags["metric.test.macro_f1"]) == pytest.approx(metrics["test.macro_f1"], abs=1e-6)
    assert version.tags["gate.decision"] == "promoted"
    logged_model = client.get_logged_model(version.model_id or version.source.removeprefix("models:/"))
    assert logged_model.source_run_id == summary.run_id
    assert {m.key: m.value for m in logged_model.metrics}["test.macro_f1"] == pytest.approx(metrics["test.macro_f1"])
    assert "no champion yet" in version.tags["gate.reasons"]
    assert run.data.tags["gate.decision"] == "promoted"


def test_champion_loads_as_pyfunc_and_predicts_names_and_scores(first_run):
    folder, config, summary = first_run
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    texts = ["Where is my parcel? It has not arrived yet.", "How do I reset my password?"]
    from_list = model.predict(texts)
    from_frame = model.predict(pd.DataFrame({"text": texts}))
    assert list(from_list["label"]) == ["shipping", "account"]
    assert list(from_frame["label"]) == list(from_list["label"])
    assert all(0.0 < s <= 1.0 for s in from_list["score"])
    assert set(from_list["scores"][0]) == set(config.data.labels)
    assert sum(from_list["scores"][0].values()) == pytest.approx(1.0, abs=1e-4)


def test_worse_retrain_is_registered_but_does_not_take_champion(first_run, tiny_bert):
    folder, config, summary = first_run
    with working_in(folder):
        # a barely trained model (2 steps) must not replace the champion
        weak = train_flow(tiny_config(Path(config.data.path), tiny_bert, "train.max_steps=2", "train.eval_steps=1",
                                      "evaluate.zero_shot_baseline=false", "gate.tolerance=0.01"))
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    client = registry()
    assert int(weak.version) == int(summary.version) + 1
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == summary.version
    assert str(client.get_model_version_by_alias(MODEL, "challenger").version) == weak.version
    tags = client.get_model_version(MODEL, weak.version).tags
    assert tags["gate.decision"] in {"kept_champion", "rejected"}
    assert tags["gate.champion_version"] == summary.version
    # the champion was re-scored on the same test rows: same number as its own run logged
    champion_metric = float(tags["gate.champion_metric"])
    logged = client.get_run(summary.run_id).data.metrics["test.macro_f1"]
    assert champion_metric == pytest.approx(logged, abs=1e-6)
    assert "metric.test.macro_f1" in tags


def test_a_second_store_in_the_same_folder_starts_its_own_promotion_history(first_run, tiny_bert):
    """A new SQLite store beside the first shares its ledger (the default is per folder) and the model's name. Its
    first good version was refused: "no version is champion, yet the promotion history says v1 is", the first
    store's move (strategies QA). It is judged as a first version and promoted; each store's history is its own."""
    from tuneline.ledger import default_ledger_url
    from tuneline.promotions import PromotionLog

    folder, config, summary = first_run
    other = f"sqlite:///{folder / 'other-store.db'}"
    with working_in(folder):
        fresh = train_flow(tiny_config(Path(config.data.path), tiny_bert, f"tracking.tracking_uri={other}"))
    assert default_ledger_url(other) == default_ledger_url(f"sqlite:///{folder / 'mlflow.db'}")
    client = MlflowClient(tracking_uri=other, registry_uri=other)
    assert fresh.promoted and str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    assert "no champion yet" in client.get_model_version(MODEL, "1").tags["gate.reasons"]
    with PromotionLog(default_ledger_url(other), MODEL, client=client) as log:
        assert [(row.from_version, row.to_version, row.actor) for row in log.history()] == [
            (None, "1", f"run {fresh.run_id}")]
    first_uri = f"sqlite:///{folder / 'mlflow.db'}"
    with PromotionLog(default_ledger_url(other), MODEL,
                      client=MlflowClient(tracking_uri=first_uri, registry_uri=first_uri)) as log:
        actors = [row.actor for row in log.history()]
    assert actors[0] == f"run {summary.run_id}" and f"run {fresh.run_id}" not in actors


def test_bad_file_over_threshold_fails_with_quarantine_and_registers_nothing(workdir, tiny_bert):
    data = workdir / "bad.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        for i in range(40):
            writer.writerow([f"my invoice number {i} is wrong", "billing"])
            writer.writerow([f"where is my parcel {i}", "shipping"])
        for i in range(20):
            writer.writerow(["", "billing"])                  # empty
            writer.writerow([f"gift card {i}", "sales"])      # unknown label
    before = data.read_bytes()
    config = tiny_config(data, tiny_bert, "data.labels=[billing, shipping]", "data.max_bad_fraction=0.1",
                         "tracking.registered_model=bad-data-model")
    with pytest.raises(DataValidationError) as error:
        train_flow(config)
    message = str(error.value)
    assert "40 of 120 records" in message and "label_in_label_set (20)" in message
    assert "quarantine.csv" in message
    assert data.read_bytes() == before  # the input is never modified

    quarantine_files = list((workdir / "tuneline-output" / "runs").glob("*/quarantine.csv"))
    assert len(quarantine_files) == 1
    quarantine = pd.read_csv(quarantine_files[0])
    assert len(quarantine) == 40 and set(quarantine["source_file"]) == {str(data)}

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    client = registry()
    run_id = quarantine_files[0].parent.name
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert "DataValidationError" in run.data.tags["tuneline.error"]
    assert [a.path for a in client.list_artifacts(run_id, "data")] == ["data/quarantine.csv"]
    with pytest.raises(MlflowException):
        client.get_registered_model("bad-data-model")


def test_run_reports_where_its_time_went(first_run):
    """timings.json, the time.* metrics and the summary's line agree, and the stages fit inside the run."""
    folder, config, summary = first_run
    breakdown = json.loads((Path(summary.run_dir) / "timings.json").read_text())
    stages = breakdown["stages"]
    assert {"load-data", "validate-data", "tokenize", "train-model", "evaluate-model", "register-model"} <= set(stages)
    assert all(seconds >= 0 for seconds in stages.values())
    assert stages["train-model"] >= breakdown["training_s"] > 0
    assert breakdown["training_s"] == pytest.approx(summary.train_runtime_s, abs=1e-3)
    assert sum(stages.values()) + breakdown["startup_s"] <= breakdown["total_s"] + 0.5
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    metrics = registry().get_run(summary.run_id).data.metrics
    assert metrics["time.train-model_s"] == pytest.approx(stages["train-model"])
    assert metrics["time.outside_training_fraction"] == pytest.approx(breakdown["outside_training_fraction"])
    assert 0 < metrics["train.evaluation_s"] < metrics["train.runtime_s"]
    assert summary.time.startswith(f"time: {breakdown['total_s']:.0f} s in all; training")


def test_another_kind_under_the_same_registered_name_is_refused_before_any_run(first_run, tiny_bert):
    """An NER config reusing the classifier's name trained, registered beside the classifiers, and only then failed
    to score the champion ("predict got a column named 'tokens'"), exploratory QA: refused before a run now."""
    from tuneline.config import ConfigError

    folder, _config, _summary = first_run
    conll = folder / "ner.conll"
    conll.write_text("".join(f"Peter{i} B-PER\nvisits O\nParis B-LOC\n\n" for i in range(20)))
    store = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    runs_before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    versions_before = len(client.search_model_versions(f"name = '{MODEL}'"))
    ner = build_config({"task": "token_classification", "data": {"path": str(conll)},
                        "model": {"base": str(tiny_bert)}, "tracking": {"registered_model": MODEL}}, [])
    with working_in(folder), pytest.raises(ConfigError) as refused:
        train_flow(ner)
    numbers = sorted((str(v.version) for v in client.search_model_versions(f"name = '{MODEL}'")), key=int)
    versions = ("versions " if len(numbers) > 1 else "version ") + ", ".join(numbers)
    assert str(refused.value) == (
        f"registered model {MODEL!r} in sqlite:///{folder / 'mlflow.db'} holds classification ({versions}) "
        "models, and this config trains task 'token_classification': one registered model serves one kind; set "
        "tracking.registered_model to a name of its own")
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == runs_before
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == versions_before


def test_a_version_that_lost_a_class_is_kept_out_unless_allowed(first_run, tiny_bert):
    """A retraining on data without any row of one class replaced the champion 'macro_f1 1.0000 >= champion', and
    nothing said the served model could no longer answer that class (exploratory QA)."""
    folder, config, summary = first_run
    rows = pd.read_csv(config.data.path, dtype=str, keep_default_na=False, on_bad_lines="skip", engine="python")
    gone = "account"
    assert gone in summary.labels
    without = folder / "data" / "without-account.csv"
    rows[rows["intent"] != gone].to_csv(without, index=False)
    store = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    with working_in(folder):
        three = f"data.labels=[{', '.join(label for label in summary.labels if label != gone)}]"
        kept_out = train_flow(tiny_config(without, tiny_bert, "gate.tolerance=1.0", three))
        champion = str(client.get_model_version_by_alias(MODEL, "champion").version)
        assert not kept_out.promoted and champion != kept_out.version
        assert (f"this version cannot predict '{gone}', which champion v{champion} predicts (the training data had "
                f"no row of it): not promoted") in kept_out.gate_line
        allowed = train_flow(tiny_config(without, tiny_bert, "gate.tolerance=1.0", three,
                                         "gate.allow_dropped_labels=true"))
    assert allowed.promoted, allowed.gate_line
    assert f"cannot predict '{gone}'" in allowed.gate_line and "allowed by gate.allow_dropped_labels" in \
        allowed.gate_line


def test_after_a_split_change_the_champion_is_compared_on_test_rows_it_did_not_train_on(tmp_path, tiny_bert):
    """Another ``data.split.salt`` sends most of the champion's training rows into the new test split; the gate
    scored the champion on them as if it had not seen them (metrics QA: 144 of 199 test rows; the champion won
    overall and lost on the 55 rows it had not seen). Each run now records the rows it trained on, and the gate
    compares champion and candidate on the test rows the champion did not train on, saying so."""
    import numpy as np

    from tuneline.kinds import kind_of
    from tuneline.tasks.split import assign_splits, example_key

    with working_in(tmp_path):
        data = write_demo_csv(tmp_path / "data" / "tickets.csv", realistic=False)
        first = train_flow(tiny_config(data, tiny_bert, "evaluate.zero_shot_baseline=false"))
        second = train_flow(tiny_config(data, tiny_bert, "evaluate.zero_shot_baseline=false", "train.epochs=3",
                                        "data.split.salt=another-split", "gate.tolerance=0.5"))
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = registry()
    assert "lineage/seen_keys.npy" in [a.path for a in client.list_artifacts(first.run_id, "lineage")]
    tags = client.get_model_version(MODEL, second.version).tags
    # independently: the first run's train and validation rows by its own split, the second's test rows
    frame = pd.read_csv(data, on_bad_lines="skip").dropna()  # the demo's broken lines are quarantined anyway
    text, label = frame.columns[0], frame.columns[1]
    first_split = assign_splits(frame[text], build_config(demo_config_dict(data)).data.split)
    seen = {example_key(t) for t, s in zip(frame[text], first_split) if s in ("train", "validation")}
    test = pd.read_csv(Path(second.run_dir) / "evaluation" / "test_predictions.csv")
    trained_on = test["text"].map(example_key).isin(seen).to_numpy()
    assert 20 <= (~trained_on).sum() < trained_on.sum()
    assert tags["gate.reasons"].startswith(
        f"{trained_on.sum()} of {len(test)} test rows were training rows of champion v{first.version} (the split or "
        f"the data changed since it trained): the gate compares on the other {(~trained_on).sum()} rows; ")
    unseen = test[~trained_on]
    champion = mlflow.pyfunc.load_model(f"models:/{MODEL}/{first.version}").predict(unseen["text"].tolist())
    kind = kind_of("classification")
    labels = sorted(frame[label].unique())
    expected = kind.score(unseen["label"].tolist(), champion["label"].tolist(), labels)["macro_f1"]
    assert float(tags["gate.champion_metric"]) == pytest.approx(expected, abs=1e-6)
    candidate = kind.score(unseen["label"].tolist(), unseen["predicted"].tolist(), labels)["macro_f1"]
    assert float(tags["gate.candidate"]) == pytest.approx(candidate, abs=1e-6)
    assert not np.isclose(candidate, client.get_run(second.run_id).data.metrics["test.macro_f1"])  # not all rows
