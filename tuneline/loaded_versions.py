"""One load of a registered version per process while it is in use: the retraining flow scores the champion three
times (its agreement with a batch's labels, the gate's re-score on the new test rows, forgetting on the earlier
ones), and each ``mlflow.pyfunc.load_model`` copied the version's artifacts out of the store and read its weights
again. A registered version's artifacts never change, so the last version loaded is kept and handed out again; a
different version (or store) replaces it, so at most one extra model is held.
"""

from __future__ import annotations

import threading
from typing import Any

import mlflow

from tuneline.errors import UserError

_LOCK = threading.Lock()
_LAST: dict[str, Any] = {}


class ModelFilesMissing(UserError):
    """A registered version whose model files are gone from the artifact store (moved, deleted, a lost volume)."""


def files_missing(model_uri: str, tracking_uri: str | None = None) -> bool:
    """Whether the artifact store holds nothing for ``model_uri`` (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``):
    MLflow lists an empty folder, and loading it said only ``No such artifact: ''``.

    ``tracking_uri``: the store to ask (``models:/NAME/VERSION`` only), not MLflow's global one. MLflow resolves a
    ``models:/`` URI in the global registry, ``./mlflow.db`` when none is set: ``doctor`` given an MLflow server called
    every champion's files missing (and created an empty ``mlflow.db``), and advised promoting another version."""
    from mlflow.exceptions import MlflowException

    try:
        if tracking_uri is None:
            return not mlflow.artifacts.list_artifacts(artifact_uri=model_uri)
        from mlflow.tracking import MlflowClient

        name, version = model_uri.removeprefix("models:/").rsplit("/", 1)
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        return location_empty(client.get_model_version_download_uri(name, version), tracking_uri)
    except (MlflowException, OSError):
        return True


def location_empty(location: str, tracking_uri: str | None = None) -> bool:
    """Whether the artifact store holds nothing at ``location`` (a version's download URI; unreadable: nothing)."""
    from mlflow.exceptions import MlflowException

    try:
        return not mlflow.artifacts.list_artifacts(artifact_uri=location, tracking_uri=tracking_uri)
    except (MlflowException, OSError):
        return True


def missing_files_message(name: str, version: str | int, source: str) -> str:
    return (f"the model files of {name} v{version} are missing from the artifact store (nothing at {source}): "
            f"restore them from a backup, or make another version champion (tuneline promote {name} VERSION "
            "--reason ...)")


def load_version(name: str, version: str | int) -> Any:
    """``mlflow.pyfunc.load_model("models:/NAME/VERSION")`` against the current registry, loaded once while asked for
    again and again (pyfunc ``predict`` keeps no state between calls)."""
    from mlflow.tracking import MlflowClient

    # the version's source names its logged model's unique id: two stores reached by one relative URI
    # (``sqlite:///mlflow.db`` from two folders) never share an entry
    source = MlflowClient().get_model_version(name, str(version)).source
    key = f"{mlflow.get_registry_uri()}|{name}|{version}|{source}"
    with _LOCK:
        if key not in _LAST:
            _LAST.clear()  # before the load: two models at once would double the peak
            try:
                _LAST[key] = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
            except Exception:
                if files_missing(f"models:/{name}/{version}"):  # MLflow said only "No such artifact: ''"
                    raise ModelFilesMissing(missing_files_message(name, version, source)) from None
                raise
        return _LAST[key]


def forget_loaded() -> None:
    """Drop the kept model (its memory goes back at the next collection)."""
    with _LOCK:
        _LAST.clear()
