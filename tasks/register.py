"""Register: log the model as an MLflow pyfunc and make it a new version of the registered model (alias challenger).

The logged model is "models from code": the self-contained file in ``tuneline/pyfunc/`` plus the saved model folder
(safetensors; a LoRA model is already merged into plain weights). Anyone with MLflow, torch and transformers can load
it; tuneline itself is not needed. The version is tagged with its test metrics and data hashes at once; if that
fails the version is deleted again, so the registry never holds a version without its metrics.

Registration is safe to repeat, so the task retries what may pass on a second try (the store did not answer, or
answered "try again": HTTP 429/5xx, SQLite busy); a refusal is not retried. A run registers one version: a retry
after a lost response (the version was created, the answer never came) finds that version of the same run and
completes it instead of registering another.
"""

from __future__ import annotations

import io
import logging
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version as installed_version
from pathlib import Path

import mlflow
import mlflow.pyfunc
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from tuneline.common import pipeline_task, task_logger
from tuneline.interrupts import interrupt_in
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


def transient(error: BaseException) -> bool:
    """Worth another try: the store did not answer (connection refused, reset, timed out: ``OSError``, which
    requests' errors are) or answered "try again" (HTTP 429 or 5xx, e.g. SQLite's "database is locked"). A refusal
    (bad request, not found, permission) is not: a retry would fail the same way, only later. Nor is an error raised
    while handling a Ctrl-C or SIGTERM (SQLite's "database is locked" as a write was cut): the stop is what happened."""
    if interrupt_in(error) is not None:
        return False
    if isinstance(error, MlflowException):
        status = error.get_http_status_code()
        return status == 429 or status >= 500
    return isinstance(error, OSError)


def _retry_if_transient(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's retry_condition_fn signature
    error = state.result(raise_on_failure=False)
    return isinstance(error, BaseException) and transient(error)


def _version_of_run(client, registered_name: str, run_id: str) -> ModelVersion | None:  # noqa: ANN001
    """The version this run registered already and has not given up on (failed, orphaned) or finished (gated)."""
    for found in client.search_model_versions(f"name = '{registered_name}' and run_id = '{run_id}'"):
        if (found.tags or {}).get(STATUS) not in ("failed", "orphaned", "gated"):
            return found
    return None


def _logged_model_id(source: str | None) -> str | None:
    """``m-...`` of a version registered from ``models:/m-...`` (what MLflow 3's log_model registers)."""
    return source.removeprefix("models:/") if source and source.startswith("models:/m-") else None


#: MLflow's notes while logging a model whose signature tuneline sets itself: a type hint it cannot use
#: ("Union type hint is inferred as AnyType", "Decorate your function with @mlflow.pyfunc.utils.pyfunc") and running
#: the input example. Printed on every registration, they tell the user nothing to act on.
_CHATTY_LOGGERS = ("mlflow.types.type_hints", "mlflow.models.signature")
_CHATTY_WARNING = re.compile(r"type hint|@mlflow\.pyfunc\.utils\.pyfunc")
#: ... its INFO line "Validating input example against model signature" (warnings from that logger still show) ...
_INFO_LOGGERS = ("mlflow.pyfunc",)
#: ... and the lines the registry prints straight to stderr: tuneline logs its own "registered NAME version N".
_CHATTY_STDERR = re.compile(r"^(Successfully registered model '.*'\.|Created version '\d+' of model '.*'\.|"
                            r"Registered model '.*' already exists\. Creating a new version of this model\.\.\.)$")


@contextmanager
def quiet_model_logging() -> Iterator[None]:
    """Silence MLflow's informational notes, type-hint warnings and registry prints while ``log_model`` runs (errors
    and anything else it prints still show).

    A warnings filter would not do: ``log_model`` installs its own ("once" for every UserWarning) in front of any
    filter of the caller's, so the chatty ones are dropped where warnings are shown instead."""
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS + _INFO_LOGGERS]
    levels = [logger.level for logger in loggers]
    shown = warnings.showwarning
    printed = io.StringIO()

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings' signature
        if issubclass(category, UserWarning) and _CHATTY_WARNING.search(str(message)):
            return
        shown(message, category, filename, lineno, file, line)

    for logger in loggers:
        logger.setLevel(logging.WARNING if logger.name in _INFO_LOGGERS else logging.ERROR)
    warnings.showwarning = show
    try:
        with redirect_stderr(printed):
            yield
    finally:
        warnings.showwarning = shown
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        kept = [line for line in printed.getvalue().splitlines() if not _CHATTY_STDERR.match(line)]
        if kept:  # anything else printed meanwhile still reaches the user
            print("\n".join(kept), file=sys.stderr)


@pipeline_task(name="register-model", retries=2, retry_delay_seconds=[10, 30], retry_condition_fn=_retry_if_transient)
def register_model(model_dir: Path, kind: TaskKind | str, registered_name: str, run: RunContext,
                   version_tags: dict[str, str], test_metrics: dict[str, float] | None = None) -> RegisteredVersion:
    """Log + register the model; attach its test metrics; tag the version; give it the ``challenger`` alias.

    The metrics go to MLflow's logged model (``model_id``), which is what the registry UI shows on a version page,
    and to the version's tags (``metric.test.*``), which the gate and API users can read without a search.
    """
    log = task_logger()
    kind = kind_of(kind) if isinstance(kind, str) else kind
    client = client_for(run)
    # Looked up before the orphan sweep, which would take this run's own version for an orphan: a failed attempt
    # leaves the run FAILED (and a finished ``active_run`` block FINISHED) in MLflow until the flow ends it.
    existing = _version_of_run(client, registered_name, run.run_id)
    if existing is None:
        for orphan in neutralise_orphans(client, registered_name):
            log.warning("%s v%s was left by run %s (%s) before its gate finished: tagged orphaned%s", registered_name,
                        orphan.version, orphan.run_id, orphan.run_status,
                        ", challenger removed" if orphan.had_challenger else "")
        with active_run(run), quiet_model_logging():
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(kind.pyfunc_path), artifacts={"model": str(model_dir)},
                pip_requirements=serving_requirements(), input_example=kind.input_example,
                registered_model_name=registered_name, await_registration_for=300,
                signature=kind.signature() or None)
        version, model_id, metrics_logged = str(info.registered_model_version), info.model_id, False
    else:  # a retry: the first attempt registered this version, then its answer or a later step was lost
        version, model_id = str(existing.version), existing.model_id or _logged_model_id(existing.source)
        metrics_logged = (existing.tags or {}).get(STATUS) == "registered"  # tagged after the metrics
        log.warning("%s v%s was registered by this run already (an earlier attempt of this task): completing it "
                    "instead of registering another", registered_name, version)
    try:
        if test_metrics and not metrics_logged:
            mlflow.log_metrics({f"test.{k}": float(v) for k, v in test_metrics.items()}, run_id=run.run_id,
                               model_id=model_id)
        for key, value in {**version_tags, STATUS: "registered"}.items():  # "gated" once the gate is done
            client.set_model_version_tag(registered_name, version, key, str(value))
        client.set_registered_model_alias(registered_name, CHALLENGER, version)
    except BaseException:
        client.delete_model_version(registered_name, version)
        raise
    log.info("registered %s version %s (alias %s)", registered_name, version, CHALLENGER)
    return RegisteredVersion(name=registered_name, version=version, run_id=run.run_id)
