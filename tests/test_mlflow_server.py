"""The scaled setup end to end: an ``mlflow server`` on PostgreSQL that serves the artifacts, and the ledger on
PostgreSQL.

The session's fixtures (``mlflow_server``, ``postgres_url`` in conftest.py, tests/services.py) start a throwaway
PostgreSQL cluster and a real tracking server on it. Here the project's flows run unchanged against them, pointed
there only by the environment (``MLFLOW_TRACKING_URI``; ``TUNELINE_LEDGER_URL`` / ``ledger.url: ${VAR}``;
``TUNELINE_LOCK_URL``), as a user of a shared setup would: nothing may land in a local store, and the database password
may appear nowhere but in the environment.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sqlalchemy.engine import make_url

from loop_data import land, tickets
from tuneline.config import build_config
from tuneline.dataset_store import DatasetStore
from tuneline.ledger import Ledger
from tuneline.promotions import PromotionLog
from tuneline.tasks.intake import dataset_folder

pytestmark = pytest.mark.integration

TRAINED, RETRAINED = "served-intents", "served-loop"
LEDGER_VAR = "TUNELINE_TEST_LEDGER_URL"  # what the config names: ledger.url: ${TUNELINE_TEST_LEDGER_URL}
LABELS = ["billing", "shipping", "technical"]
BASE = {label: 80 for label in LABELS}
# settings under which the tiny BERT learns the keyword tickets in seconds (as in test_retrain_loop.py)
LEARN = ["tokenize.max_length=32", "train.epochs=20", "train.learning_rate=2e-3", "train.early_stopping_patience=0",
         "train.batch_size=32", "train.precision=fp32", "evaluate.zero_shot_baseline=false", "gate.min_metric=0.3",
         "drift.min_rows=20", "tracking.experiment=scaled-setup"]
LOCAL_STORES = ("mlflow.db", "mlartifacts", "mlruns", "tuneline-ledger.db", "tuneline-locks.db")


@dataclass(frozen=True)
class Scaled:
    folder: Path       # the working directory of the flows
    tracking_uri: str  # http://127.0.0.1:<port>
    database_url: str = field(repr=False)  # the ledger database, password included: only ever in the environment
    password: str = field(repr=False)

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)


class Recorder(logging.Handler):
    """Every log record (Prefect's flow/task run logs, ``log_prints`` included, and tuneline's own), as printed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def scaled(mlflow_server, postgres_url, tmp_path_factory):
    """The environment of a scaled setup for this module: tracking server, ledger and lock databases; restored after
    (mlflow.set_tracking_uri/set_registry_uri export environment variables, so MLflow's globals are reset too)."""
    folder = tmp_path_factory.mktemp("scaled")
    tickets(BASE, seed=1).to_csv(folder / "base.csv", index=False)
    with pytest.MonkeyPatch.context() as env:
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "TUNELINE_LEDGER_URL", "TUNELINE_LOCK_URL",
                     "TUNELINE_TRACKING_URI", LEDGER_VAR):
            env.delenv(name, raising=False)
        env.setenv("MLFLOW_TRACKING_URI", mlflow_server)
        env.setenv("MLFLOW_REGISTRY_URI", mlflow_server)
        env.setenv("TUNELINE_LEDGER_URL", postgres_url)  # the default ledger of the plain training flow
        env.setenv("TUNELINE_LOCK_URL", postgres_url)    # the gate lock: an advisory lock every trainer can reach
        env.setenv(LEDGER_VAR, postgres_url)             # what the retraining config refers to
        env.chdir(folder)
        try:
            yield Scaled(folder, mlflow_server, postgres_url, make_url(postgres_url).password)
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)


def config(scaled: Scaled, model: str, bert: Path, *overrides: str, **sections):
    raw = {"task": "classification", "data": {"path": str(scaled.folder / "base.csv")},
           "model": {"base": str(bert)}, "tracking": {"registered_model": model}, **sections}
    return build_config(raw, [*LEARN, *overrides])


@pytest.fixture(scope="module")
def trained(scaled, tiny_bert):
    """``train_flow`` twice: two versions on the server, the gate decides the champion (the second, trained for a few
    epochs only, keeps the first unless it is as good)."""
    from tuneline.flows.train import train_flow

    first = train_flow(config(scaled, TRAINED, tiny_bert))
    second = train_flow(config(scaled, TRAINED, tiny_bert, "train.epochs=4"))
    return first, second


@pytest.fixture(scope="module")
def retrained(scaled, tiny_bert):
    """``retrain_flow`` with ``ledger.url: ${TUNELINE_TEST_LEDGER_URL}``: a batch landed before the first run, then a
    second run that must find nothing new. Returns both summaries, the Prefect flow run ids and the recorded logs."""
    from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

    from tuneline.flows.retrain import retrain_flow

    landing = scaled.folder / "landing"
    land(landing, "b1.csv", tickets(BASE, seed=2).head(90))
    cfg = config(scaled, RETRAINED, tiny_bert, "train.epochs=8", retrain={"landing": str(landing)},
                 ledger={"url": f"${{{LEDGER_VAR}}}"})
    recorder = Recorder()
    loggers = [logging.getLogger(), logging.getLogger("prefect")]  # Prefect's loggers do not propagate to the root
    for logger in loggers:
        logger.addHandler(recorder)
    try:  # the log check below reads what Prefect stored: ship the logs (conftest turns shipping off)
        with temporary_settings(updates={PREFECT_LOGGING_TO_API_ENABLED: True}):
            states = [retrain_flow(cfg, trigger="test", return_state=True) for _ in range(2)]
    finally:
        for logger in loggers:
            logger.removeHandler(recorder)
    summaries = [state.result() for state in states]
    return cfg, summaries, [state.state_details.flow_run_id for state in states], recorder.lines


# --------------------------------------------------------------------------------------------------------------
# (a) the training flow against the server


def test_two_trainings_register_two_versions_on_the_server_and_the_gate_sets_champion(scaled, trained):
    first, second = trained
    client = scaled.client()
    assert first.tracking_uri == second.tracking_uri == scaled.tracking_uri
    versions = {v.version: v for v in client.search_model_versions(f"name='{TRAINED}'")}
    assert sorted(versions, key=int) == ["1", "2"] == [first.version, second.version]
    assert first.promoted, first.gate_reasons  # no champion yet, and it beat the majority baseline
    champion = client.get_model_version_by_alias(TRAINED, "champion")
    assert champion.version == (second.version if second.promoted else first.version)
    for summary in trained:
        tags = client.get_model_version(TRAINED, summary.version).tags
        assert tags["tuneline.status"] == "gated" and tags["gate.decision"] in ("promoted", "kept_champion")
        assert tags["run_id"] == summary.run_id and tags["gate.sentence"].startswith(f"Version {summary.version}")
        run = client.get_run(summary.run_id)
        assert run.info.status == "FINISHED"
        assert run.data.params["train.learning_rate"] == "0.002" and run.data.params["tracking.registered_model"] \
            == TRAINED
        assert float(tags["metric.test.macro_f1"]) == pytest.approx(run.data.metrics["test.macro_f1"], abs=1e-6)
        assert len(client.get_metric_history(summary.run_id, "train.loss")) >= 3
    metrics = client.get_run(first.run_id).data.metrics
    assert metrics["test.macro_f1"] > metrics["baseline.majority.macro_f1"] + 0.3, metrics  # the first one learned
    # the champion move is in the promotion history on PostgreSQL ($TUNELINE_LEDGER_URL), not in a local file
    with PromotionLog(scaled.database_url, TRAINED) as history:
        assert [p.to_version for p in history.history()][0] == first.version
        assert history.latest().to_version == champion.version
    assert not [name for name in LOCAL_STORES if (scaled.folder / name).exists()]


def test_promote_in_a_folder_without_the_loops_history_is_refused_and_a_config_names_it(scaled, trained, tmp_path,
                                                                                        monkeypatch, capsys):
    """With an MLflow server the promotion history's default is a file in the current folder: `promote` run
    elsewhere recorded the move in a new one there, missing from the loop's history, under a lock that was not the
    gate's (loop QA). Refused; `-c CONFIG` takes the loop's tracking URI and ledger."""
    from tuneline.cli import main

    monkeypatch.delenv("TUNELINE_LEDGER_URL")
    monkeypatch.chdir(tmp_path)
    champion = scaled.client().get_model_version_by_alias(TRAINED, "champion").version
    other = "1" if champion == "2" else "2"
    assert main(["promote", TRAINED, other, "--reason", "from another folder"]) == 1
    err = capsys.readouterr().err
    assert f"tuneline: {TRAINED} has a champion, but this folder holds no promotion history (" in err, err
    assert "give -c CONFIG, --ledger-url or TUNELINE_LEDGER_URL" in err
    assert not (tmp_path / "tuneline-ledger.db").exists()
    assert scaled.client().get_model_version_by_alias(TRAINED, "champion").version == champion
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"data:\n  path: base.csv\ntracking:\n  tracking_uri: {scaled.tracking_uri}\n"
                    f"ledger:\n  url: ${{{LEDGER_VAR}}}\n")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert main(["promote", TRAINED, other, "--reason", "from another folder", "-c", str(loop)]) == 0
    assert main(["rollback", TRAINED, "-c", str(loop)]) == 0
    assert scaled.client().get_model_version_by_alias(TRAINED, "champion").version == champion
    with PromotionLog(scaled.database_url, TRAINED) as history:
        assert [(p.action, p.to_version) for p in history.history()][-2:] == [("promote", other),
                                                                                ("rollback", champion)]
    capsys.readouterr()
    assert main(["history", TRAINED, "-c", str(loop)]) == 0
    assert "from another folder" in capsys.readouterr().out


def evaluated_predictions(scaled: Scaled, run_id: str) -> pd.DataFrame:
    """The run's own test predictions (``evaluation/test_predictions.csv``), downloaded through the server."""
    return pd.read_csv(mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="evaluation/test_predictions.csv",
        dst_path=str(scaled.folder / "downloaded" / run_id), tracking_uri=scaled.tracking_uri))


def test_the_champion_is_served_by_the_server_and_predicts_over_http(scaled, trained):
    client = scaled.client()
    champion = client.get_model_version_by_alias(TRAINED, "champion")
    # artifacts go through the server's proxy (--serve-artifacts), never to a path of this machine's
    assert client.get_run(champion.run_id).info.artifact_uri.startswith("mlflow-artifacts:/")
    assert {"evaluation/before_vs_after.json", "evaluation/test_predictions.csv"} <= \
        {a.path for a in client.list_artifacts(champion.run_id, "evaluation")}
    evaluated = evaluated_predictions(scaled, champion.run_id)
    assert (evaluated["predicted"] == evaluated["label"]).mean() > 0.6  # it learned (3 classes)

    mlflow.set_tracking_uri(scaled.tracking_uri)
    mlflow.set_registry_uri(scaled.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{TRAINED}@champion")
    served = model.predict(evaluated["text"].tolist())
    # the model the server serves is the one that was evaluated: the same label for every test row
    assert served["label"].tolist() == evaluated["predicted"].tolist()


# --------------------------------------------------------------------------------------------------------------
# (b) the retraining flow with the ledger on PostgreSQL


def test_retraining_with_the_ledger_on_postgresql_uses_the_batch_once(scaled, retrained):
    cfg, (first, second), _runs, _lines = retrained
    assert cfg.ledger.url == f"${{{LEDGER_VAR}}}"  # the config holds the reference, never the URL
    assert first.status == "retrained" and first.batches_used == ["b1.csv"] and first.data_version == 2
    assert second.status == "skipped" and second.run is None  # used once: the next run finds nothing new

    with Ledger(scaled.database_url, RETRAINED) as ledger:
        [batch] = ledger.batches()
        assert (batch.name, batch.state) == ("b1.csv", "used")
        assert (batch.used_by_run, batch.model_version) == (first.run.run_id, first.run.version)
        assert [e.to_state for e in ledger.history(batch.content_hash)] == ["landed", "claimed", "validated", "used"]
    with DatasetStore(scaled.database_url, RETRAINED, dataset_folder(cfg)) as store:
        versions = store.versions()
        assert [v.number for v in versions] == [1, 2] and versions[1].parent == 1
        assert versions[1].rows > versions[0].rows == sum(BASE.values())
    with PromotionLog(scaled.database_url, RETRAINED) as history:
        assert [(p.from_version, p.to_version, p.action) for p in history.history()] == [(None, "1", "gate")]

    tags = scaled.client().get_model_version(RETRAINED, first.run.version).tags
    assert tags["data.version"] == "2" and tags["data.version_hash"] == first.data_version_hash
    assert first.run.promoted and scaled.client().get_model_version_by_alias(RETRAINED, "champion").version == "1"
    assert not [name for name in LOCAL_STORES if (scaled.folder / name).exists()]


# --------------------------------------------------------------------------------------------------------------
# (c) the CLI in its own process


def test_tuneline_predict_in_a_subprocess_loads_the_champion_from_the_server(scaled, trained, tmp_path):
    # an explicit environment: nothing of this process's (MLflow, Prefect, tuneline settings, the password) leaks in
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_", "TUNELINE_"))}
    env["MLFLOW_TRACKING_URI"] = scaled.tracking_uri
    champion = scaled.client().get_model_version_by_alias(TRAINED, "champion")
    evaluated = evaluated_predictions(scaled, champion.run_id).head(5)
    texts = evaluated["text"].tolist()
    done = subprocess.run([str(Path(sys.executable).parent / "tuneline"), "predict", "-m",
                           f"models:/{TRAINED}@champion", *texts], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [p["text"] for p in printed] == texts
    assert [p["label"] for p in printed] == evaluated["predicted"].tolist()
    assert list(tmp_path.iterdir()) == []  # no local store was created beside it


# --------------------------------------------------------------------------------------------------------------
# (d) the database password stays in the environment


def test_the_ledger_password_appears_in_no_param_tag_artifact_log_or_output(scaled, trained, retrained, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    _cfg, (first, second), flow_runs, lines = retrained
    secret = scaled.password
    assert secret and secret in os.environ[LEDGER_VAR]  # the check below can fail: the secret is real and known
    client = scaled.client()

    run = client.get_run(first.run.run_id)
    assert run.data.params["ledger.url"] == f"${{{LEDGER_VAR}}}"
    seen = {"params": run.data.params, "tags": run.data.tags}
    for summary in trained:
        other = client.get_run(summary.run_id)
        seen[f"train {summary.version}"] = {**other.data.params, **other.data.tags}
    for name in (TRAINED, RETRAINED):
        seen[name] = client.get_registered_model(name).tags
        for version in client.search_model_versions(f"name='{name}'"):
            seen[f"{name} v{version.version}"] = {**version.tags, "source": version.source}
    leaked = {where: key for where, values in seen.items() for key, value in values.items() if secret in str(value)}
    assert not leaked

    # every artifact of the retraining run (summary, reports, drift) and of its model, as the server serves them
    folder = Path(mlflow.artifacts.download_artifacts(run_id=first.run.run_id, dst_path=str(tmp_path / "run"),
                                                      tracking_uri=scaled.tracking_uri))
    model = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{RETRAINED}/{first.run.version}",
                                                     dst_path=str(tmp_path / "model"),
                                                     tracking_uri=scaled.tracking_uri))
    files = [f for f in [*folder.rglob("*"), *model.rglob("*")] if f.is_file()]
    assert {"summary.json", "retrain_summary.json", "MLmodel"} <= {f.name for f in files}
    assert not [f for f in files if secret.encode() in f.read_bytes()]
    assert not [f for f in Path(first.run.run_dir).rglob("*") if f.is_file() and secret.encode() in f.read_bytes()]

    # what was printed and logged while the flows ran, and what Prefect stored: parameters and logs
    assert len(lines) > 10 and not [line for line in lines if secret in line]
    assert secret not in first.to_json() + second.to_json()
    APILogHandler().flush()
    with get_client(sync_client=True) as prefect:
        for flow_run_id in flow_runs:
            assert secret not in json.dumps(prefect.read_flow_run(flow_run_id).parameters, default=str)
            logs = prefect.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200)
            assert logs and not [log.message for log in logs if secret in log.message]


def test_ending_a_run_on_the_server_prints_no_view_run_lines(mlflow_server):
    """MLflow prints "🏃 View run ... at: http://..." when a run on a tracking server ends: two lines in the middle of
    `doctor --fix`'s report and of every run's output (operator QA). tuneline's defaults turn them off; without
    tuneline imported the same script prints them (so the check can fail)."""
    script = ("import sys\nif sys.argv[1] == 'tuneline':\n    import tuneline\nimport mlflow\n"
              f"mlflow.set_tracking_uri({mlflow_server!r})\nwith mlflow.start_run():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"}
    printed = {which: subprocess.run([sys.executable, "-c", script, which], capture_output=True, text=True,
                                     env=env, timeout=120) for which in ("tuneline", "mlflow")}
    assert printed["tuneline"].returncode == 0, printed["tuneline"].stderr[-1500:]
    assert "View run" in printed["mlflow"].stdout + printed["mlflow"].stderr
    assert "View run" not in printed["tuneline"].stdout + printed["tuneline"].stderr
