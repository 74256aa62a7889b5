"""A new local MLflow store started from a copy of MLflow's empty schema (tuneline/store_template.py) is the store
MLflow would have built: the same tables, indexes and schema revision, its own default experiment, and it takes runs
and registered models. Real MLflow and SQLite throughout."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests_support import run_config
from tuneline.store_template import seed_new_store, sqlite_path, template_path


def schema(database: Path) -> tuple[list[tuple], list[tuple]]:
    """(every table and index with its SQL, the alembic revision) of a SQLite file. A statement's clauses are
    compared as a set of lines: the order of a table's CHECK constraints varies from one MLflow build to the next."""
    with sqlite3.connect(database) as conn:
        objects = [(kind, name, tuple(sorted(line.strip().rstrip(",") for line in (sql or "").splitlines())))
                   for kind, name, sql in conn.execute("SELECT type, name, sql FROM sqlite_master")]
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return objects, revision


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TUNELINE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_seeded_store_is_the_store_mlflow_builds(tmp_path, cache, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    built, seeded = tmp_path / "built" / "mlflow.db", tmp_path / "seeded" / "mlflow.db"
    built.parent.mkdir()
    seeded.parent.mkdir()
    MlflowClient(tracking_uri=f"sqlite:///{built}").search_experiments()  # MLflow's own migrations
    assert seed_new_store(f"sqlite:///{seeded}") and template_path().parent == cache
    assert seeded.stat().st_nlink == 1  # a copy: the template is not shared with the store
    client = MlflowClient(tracking_uri=f"sqlite:///{seeded}", registry_uri=f"sqlite:///{seeded}")
    (default,) = client.search_experiments()
    (mlflows,) = MlflowClient(tracking_uri=f"sqlite:///{built}").search_experiments()
    assert default.experiment_id == "0" and default.artifact_location == mlflows.artifact_location  # here, not
    assert str(cache) not in default.artifact_location  # where the template was built
    (objects, revision), (mlflows_objects, mlflows_revision) = schema(seeded), schema(built)
    assert set(objects) ^ set(mlflows_objects) == set() and revision == mlflows_revision and revision
    # it works as a store: a run with a metric, a registered model version with an alias
    experiment = client.create_experiment("e")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "accuracy", 0.9)
    client.create_registered_model("m")
    version = client.create_model_version("m", f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias("m", "champion", version.version)
    assert str(client.get_model_version_by_alias("m", "champion").version) == "1"
    assert client.get_run(run.info.run_id).data.metrics == {"accuracy": 0.9}


def test_the_template_is_built_once_and_an_existing_store_is_never_replaced(tmp_path, cache):
    first = tmp_path / "a.db"
    assert seed_new_store(f"sqlite:///{first}")
    built_at = template_path().stat().st_mtime_ns
    assert seed_new_store(f"sqlite:///{tmp_path / 'b.db'}") and template_path().stat().st_mtime_ns == built_at
    existing = tmp_path / "c.db"
    existing.write_bytes(b"someone's store")
    assert not seed_new_store(f"sqlite:///{existing}") and existing.read_bytes() == b"someone's store"
    assert not seed_new_store(f"sqlite:///{tmp_path / 'missing-folder' / 'd.db'}")  # MLflow says what is wrong
    assert not seed_new_store("http://127.0.0.1:5000") and not seed_new_store("sqlite:///:memory:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db", "b.db", "c.db", "cache"]  # no copy left behind
    assert [p.name for p in cache.iterdir()] == [template_path().name]


def test_an_unwritable_cache_leaves_the_store_to_mlflow(tmp_path, monkeypatch):
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("")
    monkeypatch.setenv("TUNELINE_CACHE", str(blocked / "sub"))
    assert not seed_new_store(f"sqlite:///{tmp_path / 'a.db'}") and not (tmp_path / "a.db").exists()


def test_the_flow_opens_a_new_store_seeded_and_a_second_open_keeps_it(tmp_path, cache, monkeypatch):
    from tuneline.tracking import configure_mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    config = run_config("classification", f"tracking.tracking_uri={uri}", "tracking.experiment=seeded",
                        path=tmp_path / "d.csv")
    client, experiment = configure_mlflow(config)
    assert template_path().is_file()  # the new store was made from it
    assert client.get_experiment(experiment).name == "seeded"
    assert configure_mlflow(config)[1] == experiment  # the second open finds the store and its experiment


def test_sqlite_paths():
    assert sqlite_path("sqlite:////abs/m.db") == Path("/abs/m.db")
    assert sqlite_path("sqlite:///rel/m.db") == Path("rel/m.db")
    assert sqlite_path("sqlite:///m.db?timeout=5") == Path("m.db")
    assert sqlite_path("postgresql://u@h/db") is None and sqlite_path("sqlite:///:memory:") is None
    assert os.sep not in template_path().name


def test_a_retraining_runs_first_look_at_a_new_store_runs_no_migrations(tmp_path, cache, monkeypatch):
    """A retraining run looks at the registry (the batches of a dead run, whether a champion exists) before it
    configures MLflow for training. That first look built a new folder's store by MLflow's ~50 migrations (seconds,
    and racing another process's first open) instead of from the template."""
    import mlflow.store.db.utils as db_utils

    from tuneline.flows.retrain import _take_over_dead_holders
    from tuneline.ledger import Ledger
    from tuneline.store_template import _built_template

    assert _built_template() is not None  # the cache's template, as any first use builds it
    upgrades, real_upgrade = [], db_utils._upgrade_db
    monkeypatch.setattr(db_utils, "_upgrade_db", lambda engine: upgrades.append(str(engine.url)) or real_upgrade(engine))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _take_over_dead_holders(Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", "m"), uri)
    assert upgrades == [] and (tmp_path / "mlflow.db").is_file()

    from tuneline.tracking import open_store

    (default,) = open_store(uri).search_experiments()  # the store MLflow would have built: its default experiment
    assert default.experiment_id == "0" and upgrades == []
