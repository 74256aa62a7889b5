"""The retraining loop on a work pool: ``tuneline deploy --config my.yaml --pool NAME [--source DIR]``.

``tuneline serve`` runs the loop's flows inside its own process, for as long as it runs. ``tuneline deploy`` registers
the same deployments (:func:`tuneline.deployments.loop.loop_specs`: names, parameters, schedules, trigger,
concurrency) with the Prefect API once and exits; a worker (``prefect worker start --pool NAME``) then runs each flow
run in a fresh process, on this machine or another that sees the same folders.

Each deployment loads its flow with ``Flow.from_source(source, "flows/<file>.py:<flow>")``. ``source`` is a folder
whose ``flows/`` holds tuneline's flow files: by default the one this tuneline is imported from (the repository in
an editable install, ``site-packages/tuneline`` in a regular one, e.g. in the Docker image). The worker must see that
folder and import the same tuneline. Nothing is built or pushed (``build=False, push=False``).

A process worker's flow run starts in ``source`` (Prefect's pull step changes into it), not where the worker was
started: a relative ``work_dir`` is therefore resolved here, against the current folder, and the MLflow store should
be named explicitly, in the config (``${VAR}`` for a secret) or as ``MLFLOW_TRACKING_URI`` in the worker's
environment. The pool is created (type ``process``) when it does not exist; an existing pool is used as it is.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from tuneline.config import TunelineConfig
from tuneline.deployments.loop import loop_specs, refuse_another_models_loop
from tuneline.deployments.zombies import ensure_zombie_automation, heartbeat_env
from tuneline.errors import UserError
from tuneline.runtime import env_references

PROCESS = "process"


@dataclass(frozen=True)
class Deployed:
    name: str  # flow name/deployment name, what `prefect deployment run` takes
    deployment_id: UUID
    entrypoint: str


@dataclass(frozen=True)
class DeployedLoop:
    pool: str
    pool_type: str
    pool_created: bool
    source: Path
    work_dir: Path
    deployments: list[Deployed]
    pinned: dict[str, str] = field(default_factory=dict)


def default_source() -> Path:
    """The folder holding the ``flows/`` this tuneline imports its flows from."""
    import tuneline.flows

    return Path(tuneline.flows.__file__).resolve().parent.parent


def _checked_source(source: Path | str) -> Path:
    folder = Path(source).expanduser().resolve()
    if not (folder / "flows" / "train.py").is_file():
        raise UserError(f"--source {folder}: it has no flows/train.py; give the tuneline repository or the installed "
                        f"package folder (this installation's: {default_source()})")
    if folder != default_source():
        _same_code(folder)
    return folder


#: tuneline's import packages and where each lies in the repository (the installed layout nests all in tuneline/)
_PACKAGE_FOLDERS = {"tuneline": "tuneline", "tuneline.kinds": "tuneline/kinds", "tuneline.pyfunc": "tuneline/pyfunc",
                    "tuneline.flows": "flows", "tuneline.tasks": "tasks", "tuneline.schemas": "schemas",
                    "tuneline.deployments": "deployments"}


def _same_code(folder: Path) -> None:
    """A worker's flow run loads the flows from ``folder`` but imports the rest of tuneline from wherever it is
    installed there, so a source folder of another revision mixes two versions (a probe's run failed with
    ``prepare() got an unexpected keyword argument``). Refuse unless its modules are this installation's."""
    import importlib

    repository_layout = (folder / "tuneline" / "__init__.py").is_file()
    for package, repo_folder in _PACKAGE_FOLDERS.items():
        installed = Path(importlib.import_module(package).__file__).parent
        relative = repo_folder if repository_layout else repo_folder.removeprefix("tuneline").lstrip("/")
        theirs = folder / relative if relative else folder
        for module in sorted(installed.glob("*.py")):
            other = theirs / module.name
            if not other.is_file() or other.read_bytes() != module.read_bytes():
                shown, how = other.relative_to(folder), "differs from" if other.is_file() else "is missing, unlike"
                raise UserError(f"--source {folder}: {shown} {how} this installation's {module}: a worker's flow "
                                "run would mix two versions of "
                                "tuneline (its flows from the source folder, the rest from the installed package); "
                                "deploy from this installation's folder (leave out --source), or install that one "
                                "(pip install -e FOLDER)")


def _cwd_independent(config: TunelineConfig) -> TunelineConfig:
    """The config with a relative ``work_dir`` made absolute (a worker's flow run starts in the source folder)."""
    if Path(config.work_dir).is_absolute():
        return config
    config = config.model_copy(deep=True)
    config.work_dir = (Path.cwd() / config.work_dir).resolve()
    return config


def require_prefect_api() -> str:
    """The Prefect API to deploy to (see :func:`tuneline.events.require_prefect_api`)."""
    from tuneline.events import require_prefect_api as configured_api

    return configured_api("deploy to", "here and where the worker runs")


def ensure_work_pool(name: str) -> tuple[str, bool]:
    """``(type, created)`` of the work pool ``name``, created as a ``process`` pool when absent."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            return client.read_work_pool(name).type, False
        except ObjectNotFound:
            pass
        try:
            pool = client.create_work_pool(WorkPoolCreate(
                name=name, type=PROCESS, base_job_template=ProcessWorker.get_default_base_job_template(),
                description="tuneline's retraining loop (created by `tuneline deploy`)"))
        except ObjectAlreadyExists:  # another `tuneline deploy` created it meanwhile
            return client.read_work_pool(name).type, False
        return pool.type, True


def pinned_databases(config: TunelineConfig) -> dict[str, str]:
    """The ledger and gate-lock databases a worker's flow runs must share with this machine's CLI, as environment
    variables for the deployments, when nothing names them: with a non-SQLite MLflow store (an ``http://`` server)
    their default is a SQLite file in the *current folder*, which for a worker's flow run is the source folder, not
    the folder where ``tuneline history/promote/rollback/data`` run. Pinned here to what this process resolves (the
    shared rule of :func:`tuneline.locking.database_beside_store`)."""
    import os

    from tuneline.ledger import LEDGER_URL_ENV, default_ledger_url
    from tuneline.locking import LOCK_URL_ENV, default_lock_url
    from tuneline.runtime import resolve_tracking_uri

    uri = resolve_tracking_uri(config.tracking.tracking_uri)
    if uri.startswith("sqlite:"):
        return {}  # the defaults live beside the store's file: the same for every process
    pinned = {}
    if not os.environ.get(LOCK_URL_ENV):
        pinned[LOCK_URL_ENV] = default_lock_url(uri)
    if not os.environ.get(LEDGER_URL_ENV) and not config.ledger.url:
        pinned[LEDGER_URL_ENV] = default_ledger_url(uri)
    return pinned


def deploy_loop(config: TunelineConfig, pool: str, source: Path | str | None = None,
                config_file: str | None = None) -> DeployedLoop:
    """Apply every deployment of the loop to the work pool ``pool`` (created if absent), the flows loaded from
    ``source`` (default: :func:`default_source`). Everything that can be checked is checked before the first one is
    applied: the source folder, the config (credentials, cron, landing folder), the Prefect API."""
    from prefect import Flow

    folder = _checked_source(source or default_source())
    config = _cwd_independent(config)
    specs = loop_specs(config, config_file)
    require_prefect_api()
    refuse_another_models_loop(specs, config.registered_model_name)
    pool_type, created = ensure_work_pool(pool)
    pinned = pinned_databases(config)
    environment = {**heartbeat_env(), **pinned}  # heartbeats: a run whose worker died is marked Crashed
    deployed = []
    for spec in specs:
        flow = Flow.from_source(source=str(folder), entrypoint=spec.entrypoint)
        if flow.name != spec.flow.name:
            raise UserError(f"--source {folder}: {spec.entrypoint} defines flow {flow.name!r}, this tuneline's is "
                            f"{spec.flow.name!r}: the source folder holds another version of tuneline")
        with contextlib.redirect_stdout(io.StringIO()):  # Prefect prints a table per deployment; the summary is ours
            deployment_id = flow.deploy(name=spec.name, work_pool_name=pool, build=False, push=False,
                                        print_next_steps=False, ignore_warnings=True,
                                        job_variables={"env": environment}, **spec.options)
        deployed.append(Deployed(f"{flow.name}/{spec.name}", deployment_id, spec.entrypoint))
    ensure_zombie_automation()
    return DeployedLoop(pool, pool_type, created, folder, Path(config.work_dir), deployed, pinned)


def deploy_command(config: TunelineConfig, pool: str, source: Path | None, config_file: str | None = None) -> int:
    """``tuneline deploy``: deploy, then say what was deployed and how to run it."""
    loop = deploy_loop(config, pool, source, config_file)
    print(f"work pool {pool!r} ({loop.pool_type}{', created' if loop.pool_created else ''}); flows from {loop.source}")
    for item in loop.deployments:
        print(f"  deployed  {item.name:<45} {item.entrypoint}")
    if not config.retrain.cron:
        print("  (no retrain-scheduled deployment: retrain.cron is unset; batches and people start retraining)")
    print(f"  work_dir  {loop.work_dir}")
    for variable, url in loop.pinned.items():
        print(f"  {variable}={url} (set on the deployments: flow runs start in {loop.source}; set it to a shared "
              f"database when workers run on other machines)")
    if not config.tracking.tracking_uri:
        print("  MLflow    tracking.tracking_uri is unset: the worker's MLFLOW_TRACKING_URI names the store")
    referenced = sorted({name for value in (config.tracking.tracking_uri, config.ledger.url)
                         for name in env_references(value)})
    needed = ["PREFECT_API_URL", *referenced]  # each once: what the worker's environment must hold
    if not config.tracking.tracking_uri:
        needed.append("MLFLOW_TRACKING_URI")
    import os

    # set in this shell and so not pinned (it may hold credentials): a worker without it would keep its own ledger
    # or gate lock beside its source folder, apart from the one promote/rollback/data use here
    needed += [v for v in ("TUNELINE_LEDGER_URL", "TUNELINE_LOCK_URL") if os.environ.get(v) and v not in needed
               and v not in loop.pinned]
    shared = [v for v in ("TUNELINE_LEDGER_URL", "TUNELINE_LOCK_URL") if v not in needed and v not in loop.pinned]
    also = (f" ({', '.join(shared)} too, when the batch ledger and the gate lock are shared with other machines)"
            if shared else "")
    print(f"next: start a worker where {', '.join(needed)} {'is' if len(needed) == 1 else 'are'} set{also}:\n"
          f"  prefect worker start --pool {pool} --type {loop.pool_type}\n"
          f"then run one: prefect deployment run '{loop.deployments[0].name}'")
    return 0
