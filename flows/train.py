"""The entry flow: one config in, one registered and gated model out, whatever the task type."""

from __future__ import annotations

from prefect import flow

from tuneline.config import TunelineConfig
from tuneline.flows.classification import classification_flow
from tuneline.tasks.summary import RunSummary


@flow(name="tuneline-train", log_prints=True)
def train_flow(config: TunelineConfig) -> RunSummary:
    """Run the flow for ``config.task``: text classification or token classification (NER)."""
    if config.task == "token_classification":
        from tuneline.flows.token_classification import token_classification_flow

        return token_classification_flow(config)
    return classification_flow(config)
