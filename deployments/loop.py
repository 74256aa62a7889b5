"""The retraining loop as Prefect deployments: served together by ``tuneline serve --config my.yaml``, or applied to
a work pool by ``tuneline deploy --config my.yaml --pool NAME`` and run by its workers.

=====================  ================================  ============================================================
deployment             flow                              runs
=====================  ================================  ============================================================
``train``              ``tuneline-train``                on demand (``prefect deployment run tuneline-train/train``)
``retrain-scheduled``  ``tuneline-retrain``              on ``Cron(retrain.cron, timezone=retrain.timezone)``; only
                                                         when ``retrain.cron`` is set
``retrain-on-batch``   ``tuneline-retrain``              on each ``tuneline.batch.landed`` (and
                                                         ``tuneline.batch.pending``) event of this model; one run at
                                                         a time, the others queued (concurrency 1, ENQUEUE)
``watch-landing``      ``tuneline-watch-landing``        every ``retrain.watch_interval_s``; only when
                                                         ``retrain.landing`` is set
``predict-batch``      ``tuneline-predict-batch``        on demand (when :mod:`tuneline.flows.predict` exists)
=====================  ================================  ============================================================

A burst of batches becomes few runs: a retraining run claims *every* free batch of its model from the ledger, so the
runs queued behind it find nothing and end at once. Each deployment carries the whole config as its ``config``
parameter, which Prefect stores and shows: a literal credential in ``tracking.tracking_uri`` or ``ledger.url`` is
refused (write ``${VAR}`` and set the variable where the flows run). The names are fixed, so one Prefect
API serves the loop of one registered model; give each model its own Prefect server (or workspace).

:func:`loop_specs` is the one definition of these deployments; ``tuneline serve`` serves them from its own process
(:func:`loop_deployments`) and ``tuneline deploy`` applies the same ones to a work pool, whose workers run them
(:mod:`tuneline.deployments.deploy`).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.schedules import Cron, Interval

from tuneline.config import ConfigError, TunelineConfig
from tuneline.events import BATCH_LANDED, BATCHES_PENDING, MODEL_LABEL, landing_folder
from tuneline.runtime import has_literal_secret

logger = logging.getLogger(__name__)

TRAIN, RETRAIN_SCHEDULED, RETRAIN_ON_BATCH, WATCH_LANDING, PREDICT_BATCH = (
    "train", "retrain-scheduled", "retrain-on-batch", "watch-landing", "predict-batch")


def refuse_literal_credentials(config: TunelineConfig) -> None:
    """A deployment stores its parameters (the config) in Prefect's database and UI: no literal secrets in them."""
    for key, value in (("tracking.tracking_uri", config.tracking.tracking_uri), ("ledger.url", config.ledger.url)):
        if has_literal_secret(value):
            raise ConfigError(f"{key} holds credentials, which a deployment would store in Prefect's database: "
                              f"write the password (or the whole URL) as ${{VAR}} (any variable name) and set that "
                              f"variable where the flows run (`tuneline serve`, or the work pool's worker)")


def _optional(module: str, name: str):  # noqa: ANN202 - a flow or a function
    """``module.name`` when the module exists (a module that exists but fails to import raises, as it should)."""
    if importlib.util.find_spec(module) is None:
        return None
    return getattr(importlib.import_module(module), name)


def _retrain_flow():  # noqa: ANN202 - a Prefect flow
    return _optional("tuneline.flows.retrain", "retrain_flow")


def _prediction_flow():  # noqa: ANN202 - a Prefect flow
    return _optional("tuneline.flows.predict", "batch_predict_flow")


def _cron(config: TunelineConfig):  # noqa: ANN202 - a Prefect schedule
    try:
        return Cron(config.retrain.cron, timezone=config.retrain.timezone)
    except ValueError as error:
        raise ConfigError(f"retrain.cron: {config.retrain.cron!r} is not a cron expression (five fields, e.g. "
                          f"'0 3 * * *' for 03:00 daily): {str(error).splitlines()[0]}") from None


@dataclass(frozen=True)
class LoopDeployment:
    """One deployment of the loop: its name, its flow, and how it runs (the keyword arguments that
    ``Flow.to_deployment`` and ``Flow.deploy`` share: parameters, schedules, triggers, concurrency_limit, tags,
    description)."""

    name: str
    flow: Flow
    options: dict[str, Any]

    @property
    def entrypoint(self) -> str:
        """``flows/<file>.py:<function>``: the same relative path in the repository and in the installed package
        (setuptools installs ``flows/`` as ``tuneline/flows/``), which is what ``Flow.from_source`` loads."""
        return f"flows/{Path(inspect.getfile(self.flow.fn)).name}:{self.flow.fn.__name__}"

    def served(self) -> RunnerDeployment:
        """The deployment as this process serves it (``tuneline serve``)."""
        return self.flow.to_deployment(name=self.name, **self.options)


def loop_specs(config: TunelineConfig, config_file: str | None = None) -> list[LoopDeployment]:
    """The deployments of the retraining loop for ``config`` (module docstring); those that do not apply are left
    out (no cron, no landing folder, no retraining or prediction flow in this installation). ``config_file``: the
    YAML ``config`` was read from, a parameter of the retraining runs, whose ``-c CONFIG`` hints then name it."""
    from tuneline.flows.train import train_flow
    from tuneline.flows.watch import watch_flow

    refuse_literal_credentials(config)
    model = config.registered_model_name
    parameters = {"config": config.model_dump(mode="json")}
    tags = ["tuneline", config.task, model]
    specs = [LoopDeployment(TRAIN, train_flow, dict(
        parameters=parameters, tags=tags,
        description=f"Train {model} from {config.data.path or config.data.train}, on demand."))]

    retrain_flow = _retrain_flow()
    if retrain_flow is None:
        logger.warning("tuneline.flows.retrain is not installed: %s and %s are left out",
                       RETRAIN_SCHEDULED, RETRAIN_ON_BATCH)
    else:
        retraining = {**parameters, "config_file": config_file} if config_file else parameters
        if config.retrain.cron:
            specs.append(LoopDeployment(RETRAIN_SCHEDULED, retrain_flow, dict(
                schedules=[_cron(config)], parameters={**retraining, "trigger": "schedule"}, tags=tags,
                description=f"Retrain {model} on the batches landed so far, on '{config.retrain.cron}' "
                f"({config.retrain.timezone}).")))
        trigger = DeploymentEventTrigger(
            name=f"{model}: retrain on a landed batch", expect={BATCH_LANDED, BATCHES_PENDING},
            match={MODEL_LABEL: model}, parameters={"trigger": "event"})
        specs.append(LoopDeployment(RETRAIN_ON_BATCH, retrain_flow, dict(
            triggers=[trigger], parameters=retraining, tags=tags,
            concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
            description=f"Retrain {model} when a batch lands; one run at a time, each claiming every free batch.")))

    if config.retrain.landing is not None:
        landing = landing_folder(config)  # a missing folder is an error now, not at every interval
        specs.append(LoopDeployment(WATCH_LANDING, watch_flow, dict(
            schedules=[Interval(timedelta(seconds=config.retrain.watch_interval_s))], parameters=parameters,
            tags=tags,
            # a scan slower than the interval skips the next tick instead of piling runs up
            concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
            description=f"Scan {landing} every {config.retrain.watch_interval_s:g} s; announce each new batch.")))

    prediction_flow = _prediction_flow()
    if prediction_flow is not None:
        # model, input and output come with each run; the tracking URI (if configured) is a default parameter
        tracking_uri = config.tracking.tracking_uri
        specs.append(LoopDeployment(PREDICT_BATCH, prediction_flow, dict(
            parameters={"tracking_uri": tracking_uri} if tracking_uri else {}, tags=["tuneline", "predict"],
            description="Predict a file of inputs with one registered model version (NAME@ALIAS resolved at "
            "start)")))
    return specs


def existing_deployments(specs: list[LoopDeployment]) -> Iterator[tuple[LoopDeployment, Any]]:
    """Each spec with the deployment of its name that the Prefect API already holds (specs it lacks are left out)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for spec in specs:
            try:
                yield spec, client.read_deployment_by_name(f"{spec.flow.name}/{spec.name}")
            except ObjectNotFound:
                continue


def refuse_pool_deployments(specs: list[LoopDeployment]) -> None:
    """``tuneline serve`` on an API where ``tuneline deploy`` put the same deployments on a work pool would take
    them over (same names): its runner cannot load their pool flow runs (they crash), and stopping it pauses every
    one of them, so the pool's worker silently stops retraining. Refuse before anything changes."""
    from tuneline.errors import UserError

    for spec, existing in existing_deployments(specs):
        if existing.work_pool_name:
            raise UserError(f"deployment {spec.flow.name}/{spec.name} is already deployed to work pool "
                            f"{existing.work_pool_name!r} on this Prefect API (`tuneline deploy`): its workers "
                            f"run the loop; serving it here too would take it over and pause it on exit. Use "
                            f"the pool, or delete the deployments first (prefect deployment delete)")


def refuse_another_models_loop(specs: list[LoopDeployment], model: str) -> None:
    """``tuneline deploy`` (or ``serve``) of a second model on an API that holds another model's loop: the
    deployment names are fixed, so the new deployments replaced the first model's, silently (its landing folder
    no longer watched, its cron gone, every scheduled run now the new model's; operator QA). Refused before anything
    changes; the same model is deployed again freely (a changed config)."""
    from tuneline.errors import UserError

    for spec, existing in existing_deployments(specs):
        tags = list(existing.tags or [])
        if len(tags) >= 3 and tags[0] == "tuneline" and tags[2] != model:
            raise UserError(
                f"deployment {spec.flow.name}/{spec.name} on this Prefect API runs the loop of registered model "
                f"{tags[2]!r}, not {model!r}: the loop's deployment names are fixed, so one Prefect API (server "
                f"or workspace) serves one model's loop, and deploying {model!r} here would replace "
                f"{tags[2]!r}'s; give {model!r} its own Prefect server or workspace, or delete {tags[2]!r}'s "
                "deployments first (prefect deployment delete NAME)")


#: how long a served run may stay Pending before ``tuneline serve`` takes it for one a killed runner left: a live
#: runner starts its process within seconds of submitting it
ORPHANED_PENDING_S = 60.0


def cancel_orphaned_runs(specs: list[LoopDeployment], older_than_s: float = ORPHANED_PENDING_S) -> list[str]:
    """Cancel the runs of these deployments that have been Pending for ``older_than_s`` (the names cancelled).

    A ``tuneline serve`` killed while it was submitting a run (a watch-landing run every few seconds) leaves that run
    Pending for good, and a Pending run holds its deployment's concurrency slot until Prefect's slot lease runs out:
    the restarted ``serve`` had every scan cancelled ("Server returned a non-pending state 'CANCELLED'") for five
    minutes, and batches landed meanwhile were announced that late (loop QA). Cancelling it frees the slot; it had
    claimed nothing (a run claims its batches once it runs)."""
    from datetime import datetime, timezone

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterId, FlowRunFilter,
                                                FlowRunFilterState, FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled

    deployments = [existing.id for _spec, existing in existing_deployments(specs)]
    if not deployments:
        return []
    cancelled = []
    with get_client(sync_client=True) as client:
        pending = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=deployments)),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.PENDING]))))
        now = datetime.now(timezone.utc)
        for run in pending:
            since = run.state.timestamp if run.state is not None else None
            if since is None or (now - since).total_seconds() < older_than_s:
                continue
            client.set_flow_run_state(run.id, Cancelled(
                message=f"Pending since {since:%Y-%m-%d %H:%M:%S} UTC: left by a tuneline serve that stopped while "
                        "submitting it; cancelled to free its deployment's concurrency slot"), force=True)
            cancelled.append(run.name)
    return cancelled


def loop_deployments(config: TunelineConfig, config_file: str | None = None) -> list[RunnerDeployment]:
    """:func:`loop_specs` as deployments served by this process."""
    return [spec.served() for spec in loop_specs(config, config_file)]


class _NoCancelledSubmissions(logging.Filter):
    """Drops the runner's "Aborted submission of flow run ...: Server returned a non-pending state 'CANCELLED'": the
    ``watch-landing`` deployment cancels a scheduled run that finds another still scanning (``CANCEL_NEW``, on
    purpose), and ``tuneline serve`` printed it at INFO every few scans, which reads like an error (loop QA)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Aborted submission of flow run") and message.endswith("'CANCELLED'"))


def quiet_cancelled_submissions() -> None:
    """Install :class:`_NoCancelledSubmissions` on Prefect's runner logger (once)."""
    proposer = logging.getLogger("prefect.runner.state_proposer")
    if not any(isinstance(f, _NoCancelledSubmissions) for f in proposer.filters):
        proposer.addFilter(_NoCancelledSubmissions())


def with_cron(config: TunelineConfig, cron: str | None) -> TunelineConfig:
    """``config`` with ``retrain.cron`` set to ``cron`` (``serve --cron``), checked as the config's own cron is: a
    bad one is a one-line :class:`ConfigError` naming ``--cron``. The assignment raised pydantic's own error text,
    which tuneline then reported as an internal failure (README QA)."""
    if cron is None:
        return config
    from pydantic import ValidationError

    from tuneline.config import _format_validation_error

    config = config.model_copy(deep=True)
    try:
        config.retrain.cron = cron
    except ValidationError as error:
        said = _format_validation_error(error, config.task).removeprefix("invalid configuration: ")
        raise ConfigError(f"--cron: {said.removeprefix('cron: ')}") from None
    return config


def serve_loop(config: TunelineConfig, config_file: str | None = None) -> None:
    """Serve :func:`loop_deployments` until interrupted (``serve --cron`` is applied by :func:`with_cron` first)."""
    from prefect import serve

    from tuneline.deployments.zombies import emit_heartbeats_from_this_process, ensure_zombie_automation

    refuse_pool_deployments(loop_specs(config))
    refuse_another_models_loop(loop_specs(config), config.registered_model_name)
    for name in cancel_orphaned_runs(loop_specs(config)):
        logger.warning("cancelled flow run %s, Pending since a tuneline serve stopped while submitting it: it held "
                       "its deployment's concurrency slot", name)
    emit_heartbeats_from_this_process()  # a served run whose process dies is then marked Crashed (zombies.py)
    ensure_zombie_automation()
    quiet_cancelled_submissions()
    serve(*loop_deployments(config, config_file))
