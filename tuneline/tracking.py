"""MLflow run lifecycle and small logging helpers, all addressed by explicit run id.

Tasks receive the run id as an argument instead of relying on MLflow's thread-local "active run", so each task can be
called alone (in a test or another flow) against any run.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import re
import shutil
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tuneline import __version__
from tuneline.config import TunelineConfig, flatten
from tuneline.interrupts import deferred_interrupts, interrupt_in, uncut_cleanup
from tuneline.kinds.base import COLUMN_TAG, trained_column_names
from tuneline.locking import default_lock_url, model_lock
from tuneline.run_process import PROCESS_TAG, Heartbeat, process_tag
from tuneline.runtime import default_artifact_location, redact, redact_params, resolve_tracking_uri
from tuneline.store_template import seed_new_store, sqlite_path
from tuneline.common import server_away_said, task_logger
from tuneline.errors import UserError


@dataclass(frozen=True)
class RunContext:
    """Where a run's results live: the MLflow run and the local folder for its files."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    run_dir: Path


def configure_mlflow(config: TunelineConfig) -> tuple[MlflowClient, str]:
    """Point MLflow at the configured store and make sure the experiment exists; returns (client, experiment id)."""
    uri = resolve_tracking_uri(config.tracking.tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with _first_open(uri):
        client = _seeded_client(uri)
        warn_if_server_down(uri)
        started = time.monotonic()
        try:
            experiment = client.get_experiment_by_name(config.tracking.experiment)
            if experiment is not None:
                return client, experiment.experiment_id
            location = default_artifact_location(uri) if uri.startswith("sqlite:") else None
            return client, client.create_experiment(config.tracking.experiment, artifact_location=location)
        except MlflowException as error:
            if "Max retries exceeded" not in str(error) and "Connection refused" not in str(error):
                raise
            raise MlflowUnreachable(
                f"the MLflow server at {redact(uri)} did not answer for {time.monotonic() - started:.0f} s of "
                "retries: start it (or wait for it to come back), or fix tracking.tracking_uri; nothing was "
                "trained, and a retraining run's batches stay for the next run") from None


def open_store(uri: str) -> MlflowClient:
    """A client (tracking and registry) of the store at the resolved ``uri``. A SQLite file that does not exist yet
    starts as a copy of MLflow's empty schema (:mod:`tuneline.store_template`), under the first-open lock.

    Why not ``MlflowClient(uri)`` wherever one is needed: building the client opens the store, and on a new SQLite
    file MLflow then runs its ~50 schema migrations (seconds) and races another process doing the same. A retraining
    run's first look at the registry (the batches of a dead run, whether a champion exists) came before
    :func:`configure_mlflow` and paid that on every new folder. A store that exists is opened without the lock: a
    read-only folder's store stays readable."""
    database = sqlite_path(uri)
    if database is None or (database.is_file() and database.stat().st_size > 0):
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    with _first_open(uri):
        return _seeded_client(uri)


def _seeded_client(uri: str) -> MlflowClient:
    seed_new_store(uri)  # a new SQLite store from a copy of the empty schema: seconds of migrations saved
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextmanager
def _first_open(uri: str) -> Iterator[None]:
    """Two processes opening a fresh SQLite store at once race in its schema migrations (alembic: "expected to match
    one row"), and both may create the experiment: the first open of a local store is serialised across processes.
    A tracking server does this itself."""
    guard = model_lock("__mlflow-store__", default_lock_url(uri), timeout_s=300, use_prefect=False) \
        if uri.startswith("sqlite:") else nullcontext()
    with store_folder_writable(uri), guard, _quiet_store_creation():
        yield


class StoreNotWritable(UserError):
    """A local store (or its lock files) in a folder that cannot be written: one line naming the settings that move
    it, not the traceback of the lock file's creation (QA: a run started in a read-only folder)."""


@contextmanager
def store_folder_writable(uri: str) -> Iterator[None]:
    """Turn an ``OSError`` while a local store is opened (its lock files, its database) into
    :class:`StoreNotWritable`."""
    try:
        yield
    except OSError as error:
        where = error.filename or uri
        raise StoreNotWritable(
            f"cannot write the local MLflow store {redact(uri)} ({error.strerror or error}: {where}): run from a "
            "folder you can write to, or point tracking.tracking_uri (e.g. sqlite:////data/mlflow.db) and work_dir "
            "at one") from None


class MlflowUnreachable(UserError):
    """The tracking server cannot be reached when a run starts: one line, not a traceback of urllib3 retries."""


#: the servers this process has already said are down (once is enough: the run's later checks retry quietly)
_SAID_DOWN: set[str] = set()


def warn_if_server_down(uri: str) -> bool:
    """Say at once when an HTTP tracking server does not answer (True): MLflow's client then retries every request
    for minutes with only urllib3's "Retrying" lines, and a run looked stuck (operator QA: 8 minutes). The
    retraining flow asks before its first MLflow request (taking over a dead run's batches), which had kept a run
    silent for 4 minutes (loop QA)."""
    if not uri.startswith(("http://", "https://")):
        return False
    import requests

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=5)
        _SAID_DOWN.discard(uri)
        return False
    except requests.RequestException as error:
        if uri in _SAID_DOWN:
            return True
        _SAID_DOWN.add(uri)
        server_away_said()  # the client's retries of the next request do not say it again
        task_logger().warning(
            "the MLflow server at %s does not answer (%s); MLflow retries its requests for a few minutes "
            "(MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR) before this run gives up",
            redact(uri), type(error).__name__)
        return True


@contextmanager
def _quiet_store_creation() -> Iterator[None]:
    """MLflow's "Creating initial MLflow database tables..." and "Updating database tables" lines on a new SQLite
    store are kept off a first run's output: the run's own line names the store."""
    logger = logging.getLogger("mlflow.store.db.utils")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def client_for(run: RunContext) -> MlflowClient:
    return MlflowClient(tracking_uri=run.tracking_uri, registry_uri=run.tracking_uri)


def config_params(config: TunelineConfig) -> dict[str, str]:
    """The resolved config as flat, redacted MLflow params (``train.learning_rate`` → ``3e-05``).

    The settings of a training strategy the run does not use are left out: a full fine-tuning run listed LoRA's
    ``r``, ``alpha`` and target modules beside the freeze options, and runs compared in MLflow seemed to differ in
    settings none of them used (strategies QA, L2). ``model.strategy`` says which ones apply."""
    unused = tuple(f"model.{strategy}." for strategy in ("lora", "freeze") if strategy != config.model.strategy)
    flat = {k: v for k, v in flatten(config.model_dump(mode="json")).items() if not k.startswith(unused)}
    return redact_params({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in flat.items()})


@contextmanager
def tracked_run(config: TunelineConfig) -> Iterator[RunContext]:
    """Open an MLflow run for a flow; close it FINISHED, or FAILED with the error recorded, whatever happens."""
    client, experiment_id = configure_mlflow(config)
    tags = {"tuneline.version": __version__, "tuneline.task": config.task,
            "tuneline.base_model": redact(config.model.base), "tuneline.strategy": config.model.strategy,
            PROCESS_TAG: process_tag()}  # tells a killed run (RUNNING for ever) from a live one: tuneline.run_process
    run = client.create_run(experiment_id, run_name=config.tracking.run_name, tags=tags)
    run_id = run.info.run_id
    client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in config_params(config).items()])
    run_dir = (Path(config.work_dir) / "runs" / run_id).resolve()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)  # in the try: a folder that cannot be made ends the run FAILED
        ctx = RunContext(run_id=run_id, experiment_id=experiment_id, tracking_uri=mlflow.get_tracking_uri(),
                         run_dir=run_dir)
        task_logger().info("MLflow run %s (experiment %r) in %s", run_id, config.tracking.experiment,
                           redact(ctx.tracking_uri))
        with Heartbeat(client, run_id):  # how a reader on another host tells this run alive (tuneline.run_process)
            yield ctx
    except BaseException as error:
        with uncut_cleanup():  # a stop's second signal (serve's runner: SIGTERM after the Ctrl-C) waits for it
            release_interrupted_connections(error)
            message = redact("".join(traceback.format_exception_only(type(error), error)).strip())
            try:
                client.set_tag(run_id, "tuneline.error", message[:5000])
                # an error is a failure; an interrupt, a SIGTERM (Prefect's TerminationSignal) or an exit is a stop
                # (an error raised while handling one, "database is locked" as SQLAlchemy handled a SIGTERM, is a stop)
                stopped = interrupt_in(error) is not None or not isinstance(error, Exception)
                client.set_terminated(run_id, status="KILLED" if stopped else "FAILED")
            except Exception as unrecorded:  # noqa: BLE001 - the run's own error is what the user must see
                task_logger().warning("could not mark MLflow run %s as ended (%s); it reads RUNNING until `tuneline "
                                      "doctor --fix` closes it", run_id,
                                      str(unrecorded).splitlines()[0][:200])
        raise
    else:
        if client.get_run(run_id).info.lifecycle_stage != "deleted":  # see discard_run
            client.set_terminated(run_id, status="FINISHED")


def release_interrupted_connections(error: BaseException) -> None:
    """Give back the database connections ``error`` (an interrupt, say) left checked out, before writing that the
    run ended.

    A Ctrl-C (or SIGTERM, which the commands raise as an interrupt) that lands inside an MLflow or ledger write on
    SQLite can leave that write's session in an open transaction, held by the interrupted frames' locals (which the
    error's traceback keeps alive) and by reference cycles: it keeps SQLite's write lock, and the run's closing writes
    waited out SQLite's busy timeout (20 s) and failed with "database is locked" instead of the resume hint
    (reproduced: one interrupt in 6-20 landed so). Clearing the finished frames' locals (the traceback keeps its file
    and line numbers) and one collection close it, rolling the write back; the heap frozen at the flow's start is not
    walked, so it costs little. The frames of every exception chained to ``error`` are cleared too: a SIGTERM that
    landed as SQLAlchemy handled a registry read's exception propagated as a second one, and the first one's frames
    kept the read's connection and its lock (loop QA: 20 s, "database is locked", the run left RUNNING)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:  # the whole chain: an interrupt that lands in SQLAlchemy's handling of the write's own error
        link = pending.pop()  # propagates as a second exception, and the first one's frames hold the cursor
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        traceback.clear_frames(link.__traceback__)
        pending += [link.__context__, link.__cause__]
    gc.collect()


def close_abandoned_run(run: RunContext, abandoned_run_id: str) -> bool:
    """Mark a run that was killed outright (``kill -9``, a lost machine) KILLED, once ``run`` has taken over its
    batches after its ledger lease ran out. Nothing else would close it: it stayed RUNNING in MLflow for ever, which
    reads as a retraining still at work. Returns whether it was still RUNNING (and is now KILLED)."""
    from mlflow.exceptions import MlflowException

    client = client_for(run)
    try:
        if client.get_run(abandoned_run_id).info.status != "RUNNING":
            return False
    except MlflowException:  # not a run of this store (a ledger shared with another one)
        return False
    client.set_tag(abandoned_run_id, "tuneline.error",
                   f"abandoned: the run stopped renewing its ledger lease (killed?); run {run.run_id} took over its "
                   f"batches")
    client.set_terminated(abandoned_run_id, status="KILLED")
    return True


def discard_run(run: RunContext) -> None:
    """Close and delete a run that recorded nothing worth keeping, inside :func:`tracked_run`.

    Two retraining runs started at once on the embedded API (nothing queues them) both find batches waiting; the
    ledger gives every batch to one, and the other would leave an empty FINISHED run in the experiment that reads
    like a retraining. Deleted runs stay in the store (``mlflow gc`` purges them) but out of the experiment's list.
    """
    client = client_for(run)
    client.set_terminated(run.run_id, status="FINISHED")
    client.delete_run(run.run_id)
    shutil.rmtree(run.run_dir, ignore_errors=True)


def log_metrics(run: RunContext, metrics: dict[str, float], step: int = 0) -> None:
    """Log finite numeric metrics in one batch (NaN would poison comparisons in the UI and the gate)."""
    log_metric_batch(run, metric_points(metrics, step))


def metric_points(metrics: dict[str, float], step: int, timestamp_ms: int | None = None) -> list[Metric]:
    """``metrics`` at ``step`` as MLflow points stamped ``timestamp_ms`` (now by default), the non-finite left out."""
    import time

    stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    keys = safe_metric_keys(list(metrics))  # a last guard: callers that name metrics after labels map them first
    return [Metric(keys[key], float(value), stamp, step) for key, value in metrics.items()
            if value is not None and math.isfinite(float(value))]


#: MLflow's limit on the metrics of one ``log_batch`` request.
MAX_METRICS_PER_BATCH = 1000


def log_metric_batch(run: RunContext, points: list[Metric]) -> None:
    """Write ``points`` in as few requests as MLflow allows (up to :data:`MAX_METRICS_PER_BATCH` each)."""
    for start in range(0, len(points), MAX_METRICS_PER_BATCH):
        with deferred_interrupts():  # a training logs from the thread Ctrl-C interrupts: never inside the write
            client_for(run).log_batch(run.run_id, metrics=points[start:start + MAX_METRICS_PER_BATCH])


def set_tags(run: RunContext, tags: dict[str, Any]) -> None:
    with deferred_interrupts():
        client_for(run).log_batch(run.run_id, tags=[RunTag(k, redact(v)[:5000]) for k, v in tags.items()])


def log_artifact(run: RunContext, path: Path, artifact_dir: str | None = None) -> None:
    client_for(run).log_artifact(run.run_id, str(path), artifact_dir)


@contextmanager
def active_run(run: RunContext) -> Iterator[None]:
    """Make ``run`` MLflow's active run for APIs that only log to the active one (datasets, models).

    The flow sets the run's final status itself (:func:`tracked_run`), so re-activating it here is harmless.
    """
    current = mlflow.active_run()
    if current is not None and current.info.run_id == run.run_id:
        yield
        return
    mlflow.set_tracking_uri(run.tracking_uri)
    mlflow.start_run(run_id=run.run_id)
    try:
        yield
    finally:
        # the run is still at work (tracked_run ends it): leaving start_run()'s block wrote FINISHED and a second
        # write set RUNNING back, so a process killed between the two left a run that read as finished (a kill -9
        # test caught it), and a FINISHED run whose version is not gated yet looks orphaned to a concurrent run's
        # registration (tuneline.registry). Ending the active run with status RUNNING is one write.
        mlflow.end_run(status="RUNNING")


#: what MLflow accepts in a key is letters, digits, ``_ - . /`` and spaces; ``/`` is replaced too, since MLflow also
#: rejects keys that path normalisation would change (``a//b``, ``a/``, ``./a``)
_METRIC_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. ]")
#: MLflow's limit on a metric key's length
MAX_METRIC_KEY = 250


def metric_key(key: str, room: int = MAX_METRIC_KEY) -> str:
    """``key`` as MLflow accepts it, at most ``room`` characters: a label called ``C++``, ``why?``, ``http://x`` or
    300 characters long must not crash a run after training. Unsafe characters become ``_``; a key cut to fit ends
    in a hash of the original, so two long labels with a common start stay apart. Callers record the mapping."""
    safe = _METRIC_KEY_UNSAFE.sub("_", key)
    return safe if len(safe) <= room else _with_hash(safe, key, room)


def _with_hash(safe: str, original: str, room: int) -> str:
    """``safe`` with 8 hex digits of the original's SHA-1 before its last ``.suffix`` (``label.f1`` keeps ``.f1``),
    cut so the whole fits in ``room``."""
    import hashlib

    digest = hashlib.sha1(original.encode("utf-8")).hexdigest()[:8]
    stem, dot, suffix = safe.rpartition(".")
    if not dot or len(suffix) > 40:
        stem, suffix = safe, ""
    tail = f"-{digest}" + (f".{suffix}" if suffix else "")
    return stem[:max(room - len(tail), 1)] + tail


def safe_metric_keys(names: list[str], prefix: str = "") -> dict[str, str]:
    """Each name's MLflow key (without ``prefix``, which must fit too), distinct for distinct names: two labels that
    sanitise alike (``C++ why?`` and ``C+? why+``) would otherwise overwrite one another's metrics.

    A name that is a valid key already keeps it, whatever the order: the labels ``x/y`` and ``x_y`` had given
    ``x_y`` to the class ``x/y`` (first in order) and a hashed key to the class really called ``x_y``, so the metric
    ``test.x_y.f1`` in the MLflow UI was another class's F1."""
    room = MAX_METRIC_KEY - len(prefix)
    keys = {name: name for name in names if metric_key(name, room) == name}
    taken = set(keys)
    for name in names:
        if name in keys:
            continue
        key = metric_key(name, room)
        if key in taken:
            key = _with_hash(_METRIC_KEY_UNSAFE.sub("_", name), name, room)
        keys[name] = key
        taken.add(key)
    return {name: keys[name] for name in names}


def version_tags(config: TunelineConfig, lineage: dict[str, Any], test_metrics: dict[str, float],
                 run: RunContext) -> dict[str, str]:
    """The tags every registered version carries: what it scored, on which data, from which base and run."""
    tags = {f"metric.test.{name}": f"{value:.6f}" for name, value in test_metrics.items()}
    tags.update({f"data.{name}.hash": item.content_hash for name, item in lineage.items()})
    tags.update({"task": config.task, "base_model": redact(config.model.base), "strategy": config.model.strategy,
                 "primary_metric": config.primary_metric, "run_id": run.run_id})
    tags.update({f"{COLUMN_TAG}{column}": name for column, name in trained_column_names(config.data).items()})
    return tags
