"""``serve-model --follow`` and a champion version that does not load at first.

Operator QA: the alias moved to a version whose model files were missing; the follower said so and kept serving the
old version, as it should, but never tried that version again: with the files restored it served the old version
for good (60 s and more), while ``champion`` named the repaired one. Real MLflow (a SQLite store), real pyfunc models.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import mlflow
import mlflow.pyfunc
from mlflow.tracking import MlflowClient

NAME, ALIAS, INTERVAL_S = "follow-failed-load", "champion", 0.5


class Constant(mlflow.pyfunc.PythonModel):
    """A model that answers its own version's word, so an answer tells which version gave it."""

    def __init__(self, word: str) -> None:
        self.word = word

    def predict(self, context, model_input, params=None):  # noqa: ANN001 - MLflow's signature
        return [self.word] * len(model_input)


def register(client: MlflowClient, word: str) -> tuple[str, Path]:
    """Version ``word`` of NAME and the folder of its model files."""
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(word), input_example=["a text"])
    version = client.create_model_version(NAME, info.model_uri, run_id=info.run_id, tags={"task": "classification"})
    return str(version.version), Path(client.get_model_version_download_uri(NAME, version.version).removeprefix("file://"))


def test_a_version_that_did_not_load_is_served_once_its_files_are_back(workdir, caplog):
    from tuneline.serving_app import FollowingApp, scoring_app

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(NAME)
    first, _ = register(client, "one")
    second, files = register(client, "two")
    assert (files / "MLmodel").is_file(), files
    client.set_registered_model_alias(NAME, ALIAS, first)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/{first}")
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    following = FollowingApp(scoring_app(model, NAME, first, "classification"), NAME, ALIAS, first,
                             "classification", INTERVAL_S, workdir)
    away = workdir / "away"
    try:
        shutil.move(files, away)  # the files of version 2 gone (a cleanup, a bucket policy)
        client.set_registered_model_alias(NAME, ALIAS, second)
        time.sleep(6 * INTERVAL_S)
        assert following.version == first  # still serving version 1
        said = [r.getMessage() for r in caplog.records if "did not load" in r.getMessage()]
        assert len(said) == 1 and said[0].startswith(f"{NAME}@{ALIAS} moved to version {second}, which did not "
                                                     f"load ("), said  # said once, not at every try
        shutil.move(away, files)  # the files back
        deadline = time.monotonic() + 20 * INTERVAL_S  # the wait doubles from 0.5 s: tried within 8 s
        while following.version != second and time.monotonic() < deadline:
            time.sleep(0.1)
        assert following.version == second
        assert any(r.getMessage() == f"{NAME}@{ALIAS} moved: serving version {second} (was version {first})"
                   for r in caplog.records)
    finally:
        following._stopped.set()
        mlflow.set_tracking_uri(None)
