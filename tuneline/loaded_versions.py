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

_LOCK = threading.Lock()
_LAST: dict[str, Any] = {}


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
            _LAST[key] = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        return _LAST[key]


def forget_loaded() -> None:
    """Drop the kept model (its memory goes back at the next collection)."""
    with _LOCK:
        _LAST.clear()
