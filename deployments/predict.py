"""Batch prediction on demand: the prediction flow as a Prefect deployment whose parameters come at run time.

``prefect deployment run 'tuneline-predict-batch/predict-batch' -p model=models:/intents@champion
-p input_path=in.csv -p output_path=out.parquet`` (with the deployment served, e.g. by ``prefect.serve``).
"""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment

from tuneline.flows.predict import batch_predict_flow


def prediction_deployment(name: str = "predict-batch", tracking_uri: str | None = None) -> RunnerDeployment:
    """A deployment of ``batch_predict_flow``, run on demand only; model, input and output are given per run.

    ``tracking_uri`` becomes a default parameter, stored in Prefect's database: a literal secret in it is refused
    (write ``${VAR}`` and set VAR where the flow runs, or leave it unset and set ``MLFLOW_TRACKING_URI`` there).
    """
    from tuneline.config import ConfigError
    from tuneline.runtime import has_credentials

    if has_credentials(tracking_uri):
        raise ConfigError("the tracking URI holds credentials, which a deployment would store in Prefect's "
                          "database: write it as ${MLFLOW_URI} (any variable name) and set that variable where the "
                          "deployment runs, or leave it unset and set MLFLOW_TRACKING_URI there")
    return batch_predict_flow.to_deployment(
        name=name, parameters={"tracking_uri": tracking_uri} if tracking_uri else {},
        tags=["tuneline", "predict"],
        description="Predict a file of inputs with one registered model version (NAME@ALIAS resolved at start)")
