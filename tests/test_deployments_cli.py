"""The deployment definition and the `tuneline train` command as a user runs it (a subprocess, its own Prefect)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tuneline.config import build_config
from tuneline.kinds import config_adapter
from tuneline.demo import demo_config_dict, write_demo_csv
from tuneline.deployments.retrain import training_deployment


def test_training_deployment_carries_schedule_and_the_full_config(tmp_path):
    config = build_config(demo_config_dict(tmp_path / "tickets.csv"), ["train.epochs=1"])
    deployment = training_deployment(config, name="nightly", cron="0 3 * * *")
    assert deployment.name == "nightly"
    assert deployment.flow_name == "tuneline-train"
    assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]
    restored = config_adapter().validate_python(deployment.parameters["config"])
    assert restored == config  # the deployment runs exactly this config
    assert "tuneline" in deployment.tags and "classification" in deployment.tags


def test_train_command_runs_the_flow_from_a_yaml_config(tmp_path, tiny_bert):
    data = write_demo_csv(tmp_path / "data" / "tickets.csv")
    raw = demo_config_dict(Path("data/tickets.csv"))  # relative to the config file's folder
    raw["model"]["base"] = str(tiny_bert)
    raw["tracking"]["registered_model"] = "cli-intents"
    raw["evaluate"] = {"zero_shot_baseline": False}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(raw))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_TRACKING"))}
    result = subprocess.run(
        [sys.executable, "-m", "tuneline.cli", "train", "-c", "cfg.yaml", "--set", "train.max_steps=3",
         "--set", "train.precision=fp32", "--set", "tokenize.max_length=32", "--set", "gate.min_metric=0.99"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "registered model  : cli-intents version 1 (aliases: challenger)" in out
    assert "not promoted" in out and "< min_metric 0.9900" in out
    assert "9 rejected records" in out
    assert (tmp_path / "mlflow.db").is_file() and data.is_file()
    assert len(list((tmp_path / "tuneline-output" / "runs").glob("*/summary.json"))) == 1

    predicted = subprocess.run(
        [sys.executable, "-m", "tuneline.cli", "predict", "-m", "models:/cli-intents@challenger",
         "where is my parcel", "reset my password"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    rows = [json.loads(line) for line in predicted.stdout.splitlines() if line.startswith("{")]
    assert [r["text"] for r in rows] == ["where is my parcel", "reset my password"]
    assert all(r["label"] in {"billing", "shipping", "technical", "account"} and 0 < r["score"] <= 1 for r in rows)
