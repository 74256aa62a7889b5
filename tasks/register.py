"""Register: log the model as an MLflow pyfunc and make it a new version of the registered model (alias challenger).

The logged model is "models from code": the self-contained file in ``tuneline/pyfunc/`` plus the saved model folder
(safetensors; a LoRA model is already merged into plain weights). Anyone with MLflow, torch and transformers can load
it; tuneline itself is not needed. The version is tagged with its test metrics and data hashes at once; if that
fails the version is deleted again, so the registry never holds a version without its metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version as installed_version
from pathlib import Path

import mlflow
import mlflow.pyfunc

from tuneline.common import pipeline_task, task_logger
from tuneline.kinds import TaskKind, kind_of
from tuneline.registry import STATUS, neutralise_orphans
from tuneline.tracking import RunContext, active_run, client_for

CHALLENGER, CHAMPION = "challenger", "champion"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def serving_requirements() -> list[str]:
    """Pinned runtime requirements of the pyfunc (given explicitly: MLflow's inference would load the model again)."""
    pins = []
    for package in ("mlflow", "torch", "transformers", "pandas", "numpy"):
        try:
            pins.append(f"{package}=={installed_version(package)}")
        except PackageNotFoundError:  # pragma: no cover
            pins.append(package)
    return pins


@pipeline_task(name="register-model")
def register_model(model_dir: Path, kind: TaskKind | str, registered_name: str, run: RunContext,
                   version_tags: dict[str, str], test_metrics: dict[str, float] | None = None) -> RegisteredVersion:
    """Log + register the model; attach its test metrics; tag the version; give it the ``challenger`` alias.

    The metrics go to MLflow's logged model (``model_id``), which is what the registry UI shows on a version page,
    and to the version's tags (``metric.test.*``), which the gate and API users can read without a search.
    """
    log = task_logger()
    kind = kind_of(kind) if isinstance(kind, str) else kind
    for orphan in neutralise_orphans(client_for(run), registered_name):
        log.warning("%s v%s was left by run %s (%s) before its gate finished: tagged orphaned%s", registered_name,
                    orphan.version, orphan.run_id, orphan.run_status,
                    ", challenger removed" if orphan.had_challenger else "")
    with active_run(run):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(kind.pyfunc_path), artifacts={"model": str(model_dir)},
            pip_requirements=serving_requirements(), input_example=kind.input_example,
            registered_model_name=registered_name, await_registration_for=300, signature=kind.signature() or None)
    version = str(info.registered_model_version)
    client = client_for(run)
    try:
        if test_metrics:
            mlflow.log_metrics({f"test.{k}": float(v) for k, v in test_metrics.items()}, run_id=run.run_id,
                               model_id=info.model_id)
        for key, value in {**version_tags, STATUS: "registered"}.items():  # "gated" once the gate is done
            client.set_model_version_tag(registered_name, version, key, str(value))
        client.set_registered_model_alias(registered_name, CHALLENGER, version)
    except BaseException:
        client.delete_model_version(registered_name, version)
        raise
    log.info("registered %s version %s (alias %s)", registered_name, version, CHALLENGER)
    return RegisteredVersion(name=registered_name, version=version, run_id=run.run_id)
