"""The retraining loop against a real Prefect server, as a user runs it in three terminals.

1. ``prefect server start`` (its own PREFECT_HOME and SQLite database, a free port),
2. ``tuneline serve --config cfg.yaml`` (the loop's deployments, served),
3. a batch file and its ``.done`` marker land; ``tuneline watch --config cfg.yaml --once`` announces it,

and the event must trigger ``retrain-on-batch``, whose run must complete and register a new model version in MLflow.
Every process is started by the test and killed in a finalizer (with its process group), whatever happens.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from loop_data import land, tickets
from tests_support import default_ctrl_c

pytestmark = pytest.mark.integration

MODEL = "server-intents"
LABELS = ["billing", "shipping", "technical", "account"]
TIMEZONE = "Europe/Berlin"
SERVER_START_S, SERVE_START_S, RUN_S = 90, 90, 150


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, check: Callable[[], object], timeout_s: float, *processes: tuple[subprocess.Popen, Path],
              every_s: float = 1.0) -> object:
    """``check()``'s first truthy value within ``timeout_s``; fails early, with its log, when a process has died."""
    deadline = time.monotonic() + timeout_s
    while True:
        for process, log in processes:
            if process.poll() is not None:
                pytest.fail(f"{log.stem} exited with {process.returncode} while waiting for {what}:\n{tail(log)}")
        if (value := check()):
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {log.stem}:\n{tail(log)}" for _process, log in processes)
            pytest.fail(f"no {what} within {timeout_s:.0f} s\n{logs}")
        time.sleep(every_s)


def tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no output)"


@pytest.fixture
def start(tmp_path, request) -> Callable[..., tuple[subprocess.Popen, Path]]:
    """Start a process in its own process group, output to ``<name>.log``; killed (group and all) at teardown."""

    def _start(name: str, argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True, preexec_fn=default_ctrl_c)

        def stop() -> None:
            if process.poll() is None:
                for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
                    try:
                        os.killpg(process.pid, sig)
                    except ProcessLookupError:
                        return
                    try:
                        process.wait(grace)
                        return
                    except subprocess.TimeoutExpired:
                        continue

        request.addfinalizer(stop)
        return process, log

    return _start


def prefect_server(start: Callable[..., tuple[subprocess.Popen, Path]], tmp_path: Path, env: dict[str, str],
                   **settings: str) -> tuple[str, tuple[subprocess.Popen, Path]]:
    """``prefect server start`` on a free port with its own SQLite database (``settings``: more PREFECT_ variables),
    once its API answers: ``(api_url, (process, log))``."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    server = start("prefect-server", [str(Path(sys.executable).parent / "prefect"), "server", "start",
                                      "--host", "127.0.0.1", "--port", str(port)],
                   {**env, "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
                    "PREFECT_UI_ENABLED": "false", **settings})

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_for("healthy Prefect API", healthy, SERVER_START_S, server)
    return api, server


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY", "TUNELINE_LEDGER", "TUNELINE_LOCK"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1", PYTHONUNBUFFERED="1")
    return env


def write_config(tmp_path: Path, tiny_bert: Path) -> Path:
    data = tmp_path / "data" / "tickets.csv"
    data.parent.mkdir()
    tickets({label: 40 for label in LABELS}, seed=0).to_csv(data, index=False)
    (tmp_path / "landing").mkdir()
    # a daily schedule twelve hours away: it must exist, and must not fire during the test
    hour = (datetime.now(ZoneInfo(TIMEZONE)).hour + 12) % 24
    raw = {
        "task": "classification",
        "work_dir": str(tmp_path / "work"),
        "data": {"path": str(data), "text_column": "text", "label_column": "label", "labels": LABELS},
        "model": {"base": str(tiny_bert), "strategy": "full"},
        "tokenize": {"max_length": 32},
        "train": {"epochs": 1, "max_steps": 3, "batch_size": 16, "precision": "fp32"},
        "evaluate": {"zero_shot_baseline": False},
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "registered_model": MODEL},
        "gate": {"min_metric": 0.99},
        # an hour between the deployed watcher's scans: `tuneline watch --once` is the one that announces
        "retrain": {"landing": str(tmp_path / "landing"), "cron": f"0 {hour} * * *", "timezone": TIMEZONE,
                    "watch_interval_s": 3600},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.skipif(importlib.util.find_spec("tuneline.flows.retrain") is None,
                    reason="tuneline.flows.retrain (retrain_flow) is not written yet: nothing to trigger")
def test_a_landed_batch_triggers_a_served_retraining_that_registers_a_version(tmp_path, tiny_bert, start):
    from mlflow.tracking import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy, StateType
    from prefect.events.filters import EventFilter, EventNameFilter
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tuneline.ledger import Ledger

    env = base_env(tmp_path)
    # a queued run retries for its slot every 2 s instead of 30 s (the test's pace, not the loop's)
    api, server = prefect_server(start, tmp_path, env, PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS="2")

    config = write_config(tmp_path, tiny_bert)
    client_env = {**env, "PREFECT_API_URL": api, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    serve = start("tuneline-serve", [sys.executable, "-m", "tuneline.cli", "serve", "--config", str(config)],
                  client_env)

    with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        def deployment(name: str):
            try:
                return client.read_deployment_by_name(name)
            except Exception:  # noqa: BLE001 - ObjectNotFound until serve has registered it
                return None

        on_batch = wait_for("retrain-on-batch deployment", lambda: deployment("tuneline-retrain/retrain-on-batch"),
                            SERVE_START_S, server, serve)
        # serve registers its deployments one after another before it starts polling: wait for each of them
        for name in ("tuneline-watch-landing/watch-landing", "tuneline-train/train",
                     *(["tuneline-predict-batch/predict-batch"]
                       if importlib.util.find_spec("tuneline.deployments.predict") is not None else [])):
            wait_for(f"{name} deployment", lambda name=name: deployment(name), 30, server, serve)

        [cron] = deployment("tuneline-retrain/retrain-scheduled").schedules
        assert cron.schedule.cron.startswith("0 ") and cron.schedule.timezone == TIMEZONE
        assert on_batch.global_concurrency_limit.limit == 1
        assert on_batch.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.ENQUEUE
        [automation] = client.read_resource_related_automations(f"prefect.deployment.{on_batch.id}")
        assert automation.trigger.expect == {"tuneline.batch.landed", "tuneline.batch.pending"}
        assert automation.trigger.match.model_dump() == {"tuneline.model": MODEL}
        [action] = automation.actions
        assert action.parameters == {"trigger": "event"}
        [interval] = deployment("tuneline-watch-landing/watch-landing").schedules
        assert interval.schedule.interval.total_seconds() == 3600

        # a burst: two batches at once, two events, two runs; the first claims both, the second finds nothing
        batches = [land(tmp_path / "landing", f"batch-0{seed}.csv", tickets({label: 10 for label in LABELS}, seed))
                   for seed in (1, 2)]
        watched = subprocess.run([sys.executable, "-m", "tuneline.cli", "watch", "--config", str(config), "--once"],
                                 cwd=tmp_path, env=client_env, capture_output=True, text=True, timeout=120)
        assert watched.returncode == 0, watched.stderr[-3000:]
        assert "landed    batch-01.csv" in watched.stdout and "landed    batch-02.csv" in watched.stdout

        def landed_event():
            page = client.read_events(EventFilter(event=EventNameFilter(name=["tuneline.batch.landed"])),
                                      limit=50)  # the client's default (100) is over the API's maximum
            return [e for e in page.events if e.resource.get("tuneline.model") == MODEL]

        events = wait_for("both tuneline.batch.landed events in the API", lambda: len(landed_event()) == 2 and
                          landed_event(), 30, server, serve)
        assert {e.payload["path"] for e in events} == {str(b.absolute()) for b in batches}

        # the foreground watcher (no --once) scans until Ctrl-C, then exits 0 without a traceback
        looping = start("tuneline-watch", [sys.executable, "-m", "tuneline.cli", "watch", "--config", str(config),
                                           "--interval", "3600"], client_env)
        wait_for("the watcher's start", lambda: "Ctrl-C stops" in tail(looping[1]), 60, looping)
        # at once: Ctrl-C usually lands during the first scan, inside a Prefect client call
        looping[0].send_signal(signal.SIGINT)
        assert looping[0].wait(30) == 0, tail(looping[1])
        assert "tuneline: watch stopped" in tail(looping[1]) and "Traceback" not in tail(looping[1])

        def finished_run():
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[on_batch.id])))
            for run in runs:
                if run.state_type in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
                    pytest.fail(f"retrain-on-batch run {run.name} ended {run.state_type.value}: "
                                f"{run.state.message}\n{tail(serve[1])}")
            done = [r for r in runs if r.state_type == StateType.COMPLETED]
            return len(done) == 2 and done

        first, second = sorted(wait_for("two COMPLETED retrain-on-batch runs", finished_run, RUN_S, server, serve,
                                        every_s=2), key=lambda r: r.start_time)
        assert first.parameters["trigger"] == second.parameters["trigger"] == "event"
        assert second.start_time >= first.end_time  # concurrency 1: the second waited for the first

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow = MlflowClient(tracking_uri=store, registry_uri=store)
    versions = mlflow.search_model_versions(f"name='{MODEL}'")
    assert [v.tags.get("retrain.trigger") for v in versions] == ["event"]  # one training, one new version
    with Ledger(f"sqlite:///{tmp_path / 'tuneline-ledger.db'}", MODEL) as ledger:
        used = ledger.batches("used")
    assert sorted(b.name for b in used) == ["batch-01.csv", "batch-02.csv"]
    assert {(b.used_by_run, b.model_version) for b in used} == {(versions[0].run_id, str(versions[0].version))}
