"""A training that blows up (the loss or gradients no longer numbers) stops as a user error before anything is
evaluated or registered. A QA session's ``train.learning_rate=inf`` trained NaN weights that the run scored (accuracy
0.80: every row the first class), registered and served with NaN scores; ``inf`` is refused by the config now, and
a rate that is merely far too high must not get that far either."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from conftest import working_in
from tuneline.config import build_config
from tuneline.demo import demo_config_dict, write_demo_csv
from tuneline.flows.train import train_flow
from tuneline.tasks.train import TrainingDiverged


def test_a_learning_rate_that_makes_the_weights_nan_stops_the_run_before_registration(tmp_path, tiny_bert):
    with working_in(tmp_path):
        data = write_demo_csv(tmp_path / "tickets.csv", realistic=False)
        config = build_config(demo_config_dict(data), [
            f"model.base={tiny_bert}", "tokenize.max_length=16", "train.precision=fp32", "train.batch_size=16",
            "train.max_steps=6", "train.logging_steps=1", "train.learning_rate=1e30",
            "evaluate.zero_shot_baseline=false", "tracking.registered_model=diverged"])
        with pytest.raises(TrainingDiverged) as stopped:
            train_flow(config)
    said = str(stopped.value)
    assert said.startswith("training diverged: the ") and " became nan at step " in said, said
    assert "(learning rate 1e+30)" in said and "lower train.learning_rate (model.strategy full's default is 5e-05)" \
        in said
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert MlflowClient().search_model_versions("name='diverged'") == []  # nothing registered
