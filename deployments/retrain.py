"""The training flow as a Prefect deployment with the run's config baked in as a parameter.

``tuneline serve`` serves it as ``tuneline-train/train`` among the retraining loop's deployments
(:mod:`tuneline.deployments.loop`); :func:`serve_training` serves it alone, on a cron schedule or on demand. Either
needs a Prefect API (``prefect server start`` and ``PREFECT_API_URL``), as any served deployment does.
"""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment

from tuneline.config import TunelineConfig
from tuneline.flows.train import train_flow


def training_deployment(config: TunelineConfig, name: str = "scheduled-retrain", cron: str | None = None) -> RunnerDeployment:
    """A deployment of ``train_flow`` for ``config``; scheduled when ``cron`` is given, on demand otherwise.

    Its parameters are stored in Prefect's database and shown in its UI, so a literal secret in the config is
    refused: write it as a ``${VAR}`` reference to an environment variable set where the flow runs.
    """
    from tuneline.config import ConfigError
    from tuneline.runtime import has_literal_secret

    if has_literal_secret(config.tracking.tracking_uri):
        raise ConfigError("tracking.tracking_uri holds credentials, which a deployment would store in Prefect's "
                          "database: write it as ${MLFLOW_URI} (any variable name) and set that variable where the "
                          "deployment runs, or leave it unset and set MLFLOW_TRACKING_URI there")
    return train_flow.to_deployment(
        name=name, cron=cron, parameters={"config": config.model_dump(mode="json")},
        tags=["tuneline", config.task], description=f"Retrain {config.registered_model_name} from {config.data.path or config.data.train}")


def serve_training(config: TunelineConfig, name: str = "scheduled-retrain", cron: str | None = None) -> None:
    from prefect import serve

    serve(training_deployment(config, name=name, cron=cron))
