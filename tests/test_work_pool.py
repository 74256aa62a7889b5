"""The retraining loop on a work pool, as an operator runs it in three terminals and one command.

1. ``prefect server start`` (its own PREFECT_HOME and SQLite database, a free port),
2. ``tuneline deploy --config cfg.yaml --pool tuneline-test`` (creates the process pool, deploys the loop, exits),
3. ``prefect worker start --pool tuneline-test --type process`` (MLFLOW_TRACKING_URI set in its environment only),

then a run of ``tuneline-train/train`` must be picked up by the worker, complete, and register a model version in
the MLflow store the worker's environment names. Every process is started by the test and killed in a finalizer
(with its process group), whatever happens; their environments are built here, without the MLFLOW_*, PREFECT_* and
TUNELINE_* variables of the test's own. A quick test before it pins what ``tuneline deploy`` refuses without any
server: a literal credential in the config, a source folder without tuneline's flows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_prefect_server import prefect_server, start, tail, wait_for, write_config  # noqa: F401 - start is a fixture

POOL = "tuneline-test"
MODEL = "pool-intents"
EXPERIMENT = "work-pool"
DEPLOY_S, RUN_S = 180, 150
PREFECT = str(Path(sys.executable).parent / "prefect")


def clean_env(tmp_path: Path) -> dict[str, str]:
    """This process's environment less every MLflow, Prefect and tuneline setting, plus a Prefect home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "TUNELINE_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1", PYTHONUNBUFFERED="1")
    return env


def test_deploy_checks_the_config_and_the_source_before_it_contacts_prefect(tmp_path, tiny_bert, capsys):
    from tuneline.cli import main

    config = str(write_config(tmp_path, tiny_bert))
    secret = "tracking.tracking_uri=https://bob:s3cret@mlflow.example.com"
    assert main(["deploy", "--config", config, "--pool", POOL, "--set", secret]) == 2
    assert "tracking.tracking_uri holds credentials" in capsys.readouterr().err
    assert main(["deploy", "--config", config, "--pool", POOL, "--source", str(tmp_path)]) == 1
    assert f"--source {tmp_path}: it has no flows/train.py" in capsys.readouterr().err
    # a copy of another revision: a worker's run would take its flows from there and the rest from the installation
    import shutil

    from tuneline.deployments.deploy import _checked_source, default_source

    copy = tmp_path / "other-revision"
    for folder in ("tuneline", "flows", "tasks", "schemas", "deployments"):
        shutil.copytree(default_source() / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    assert _checked_source(copy) == copy  # the same code elsewhere is fine
    with (copy / "tasks" / "intake.py").open("a") as handle:
        handle.write("\n# another revision\n")
    assert main(["deploy", "--config", config, "--pool", POOL, "--source", str(copy)]) == 1
    err = capsys.readouterr().err
    assert f"--source {copy}: tasks/intake.py differs from this installation's" in err and "Traceback" not in err


@pytest.mark.integration
def test_a_worker_runs_the_deployed_training_and_registers_a_version(tmp_path, tiny_bert, start):  # noqa: F811
    from mlflow.tracking import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy, StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tuneline.deployments.deploy import default_source

    env = clean_env(tmp_path)
    api, server = prefect_server(start, tmp_path, env)

    # test_prefect_server's tiny config (cron twelve hours away, landing folder: all five deployments), with no
    # tracking URI: the worker's MLFLOW_TRACKING_URI names the store
    config = write_config(tmp_path, tiny_bert)
    raw = yaml.safe_load(config.read_text())
    raw["tracking"] = {"experiment": EXPERIMENT, "registered_model": MODEL}
    config.write_text(yaml.safe_dump(raw))
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # A flow run of a process worker starts in the source folder (here: the repository), and tuneline puts a new
    # SQLite experiment's artifacts in ./mlartifacts: the experiment is made first, its artifacts under tmp_path.
    MlflowClient(tracking_uri=store).create_experiment(EXPERIMENT,
                                                       artifact_location=(tmp_path / "mlartifacts").as_uri())

    client_env = {**env, "PREFECT_API_URL": api}
    deployed = subprocess.run([sys.executable, "-m", "tuneline.cli", "deploy", "--config", str(config), "--pool", POOL],
                              cwd=tmp_path, env=client_env, capture_output=True, text=True, timeout=DEPLOY_S)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert f"work pool '{POOL}' (process, created)" in deployed.stdout
    names = ["tuneline-train/train", "tuneline-retrain/retrain-scheduled", "tuneline-retrain/retrain-on-batch",
             "tuneline-watch-landing/watch-landing", "tuneline-predict-batch/predict-batch"]
    assert all(f"deployed  {name}" in deployed.stdout for name in names), deployed.stdout
    # `tuneline serve` on the same API would take these deployments over and pause them all when it stops
    served = subprocess.run([sys.executable, "-m", "tuneline.cli", "serve", "--config", str(config)],
                            cwd=tmp_path, env=client_env, capture_output=True, text=True, timeout=DEPLOY_S)
    assert served.returncode == 1, served.stdout[-2000:] + served.stderr[-2000:]
    assert served.stderr.startswith("tuneline: deployment tuneline-train/train is already deployed to work pool "
                                    f"'{POOL}'") and "Traceback" not in served.stderr
    # a second model's loop deployed to the same API replaced the first's, silently (operator QA): refused
    raw["tracking"] = {"experiment": EXPERIMENT, "registered_model": "another-model"}
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(raw))
    second = subprocess.run([sys.executable, "-m", "tuneline.cli", "deploy", "--config", str(other), "--pool", POOL],
                            cwd=tmp_path, env=client_env, capture_output=True, text=True, timeout=DEPLOY_S)
    assert second.returncode == 1, second.stdout[-2000:] + second.stderr[-2000:]
    assert second.stderr.startswith(f"tuneline: deployment tuneline-train/train on this Prefect API runs the loop of "
                                    f"registered model '{MODEL}', not 'another-model'") and "Traceback" not in \
        second.stderr
    assert "next: start a worker where PREFECT_API_URL, MLFLOW_TRACKING_URI are set" in deployed.stdout

    worker = start("prefect-worker", [PREFECT, "worker", "start", "--pool", POOL, "--type", "process"],
                   {**client_env, "MLFLOW_TRACKING_URI": store, "PREFECT_WORKER_QUERY_SECONDS": "2"})

    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        assert client.read_work_pool(POOL).type == "process"
        deployments = {name: client.read_deployment_by_name(name) for name in names}
        source = str(default_source())
        for name, deployment in deployments.items():
            assert deployment.work_pool_name == POOL, name
            assert not deployment.paused, name
            # its runs send heartbeats, so one whose worker dies is marked Crashed (tests/test_zombie_runs.py)
            assert deployment.job_variables["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30", name
            assert deployment.entrypoint.startswith("flows/") and ".py:" in deployment.entrypoint, name
            assert deployment.pull_steps == [
                {"prefect.deployments.steps.set_working_directory": {"directory": source}}], name
        assert client.read_automations_by_name("tuneline: mark flow runs without heartbeats crashed")
        on_batch = deployments["tuneline-retrain/retrain-on-batch"]
        assert on_batch.global_concurrency_limit.limit == 1
        assert on_batch.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.ENQUEUE
        [automation] = client.read_resource_related_automations(f"prefect.deployment.{on_batch.id}")
        assert automation.trigger.expect == {"tuneline.batch.landed", "tuneline.batch.pending"}
        [cron] = deployments["tuneline-retrain/retrain-scheduled"].schedules
        assert cron.schedule.cron == raw["retrain"]["cron"]
        # the retraining runs' hints (`tuneline data drop -c CONFIG ...`) name the file deployed (prod-stack QA)
        for name in ("tuneline-retrain/retrain-scheduled", "tuneline-retrain/retrain-on-batch"):
            assert deployments[name].parameters["config_file"] == str(config.resolve()), name
        assert "config_file" not in deployments["tuneline-train/train"].parameters

        train = deployments["tuneline-train/train"]
        flow_run = client.create_flow_run_from_deployment(train.id)

        def finished():
            run = client.read_flow_run(flow_run.id)
            if run.state_type in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
                pytest.fail(f"train run ended {run.state_type.value}: {run.state.message}\n{tail(worker[1])}")
            return run if run.state_type == StateType.COMPLETED else None

        done = wait_for("a COMPLETED train run", finished, RUN_S, server, worker, every_s=2)
        assert done.work_pool_name == POOL
        assert f"submitting flow run '{flow_run.id}'" in tail(worker[1], 100_000)  # this worker ran it

    mlflow = MlflowClient(tracking_uri=store, registry_uri=store)
    [version] = mlflow.search_model_versions(f"name='{MODEL}'")
    assert version.tags["tuneline.status"] == "gated"
    assert mlflow.get_run(version.run_id).info.status == "FINISHED"
    assert mlflow.get_experiment_by_name(EXPERIMENT).experiment_id == mlflow.get_run(version.run_id).info.experiment_id
