"""One registered model, one task kind: a config may not train another kind of model under a name already in use.

A token-classification config that reused a classification model's ``tracking.registered_model`` trained for
minutes, registered its version beside the classifiers, and only then failed to score the champion ("predict got a
column named 'tokens'"): versions of two kinds under one name cannot be compared, gated or served alike. Refused
before any run starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuneline.config import ConfigError
from tuneline.runtime import redact, resolve_tracking_uri


def registered_kinds(client: Any, name: str) -> dict[str, list[str]]:
    """The task kinds (the versions' ``task`` tag) of registered model ``name``, each with its versions."""
    from mlflow.exceptions import MlflowException

    escaped = name.replace("'", "\\'")
    try:
        versions = client.search_model_versions(f"name = '{escaped}'")
    except MlflowException:
        return {}
    kinds: dict[str, list[str]] = {}
    for version in versions:
        if kind := (version.tags or {}).get("task"):
            kinds.setdefault(kind, []).append(str(version.version))
    return kinds


def refuse_another_kind(config: Any) -> None:
    """A :class:`ConfigError` when ``config.registered_model_name`` holds versions of another task kind. A store that
    does not exist yet is not created here (the run creates it)."""
    uri = resolve_tracking_uri(config.tracking.tracking_uri)
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        return
    from mlflow.tracking import MlflowClient

    name = config.registered_model_name
    kinds = registered_kinds(MlflowClient(tracking_uri=uri, registry_uri=uri), name)
    others = {kind: versions for kind, versions in kinds.items() if kind != config.task}
    if others:
        held = "; ".join(f"{kind} (version{'s' if len(v) > 1 else ''} {', '.join(sorted(v, key=int))})"
                         for kind, v in sorted(others.items()))
        raise ConfigError(f"registered model {name!r} in {redact(uri)} holds {held} models, and this config trains "
                          f"task {config.task!r}: one registered model serves one kind; set tracking.registered_model "
                          "to a name of its own")
