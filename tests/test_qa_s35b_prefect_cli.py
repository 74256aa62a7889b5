"""Operator mistakes against a real Prefect API (the session's), found following README's deployment sections.

* A refused ``tuneline rollback`` (nothing to roll back to) took the gate lock's Prefect concurrency slot, whose
  events were never flushed: Prefect's events worker printed "Still processing items" under the one-line error.
* ``PREFECT_API_URL`` set to the server's address without ``/api`` was reported as an API that "does not answer",
  with the advice to start a server that was running; the message now names the missing ``/api``.

Real MLflow (a SQLite store with real registered versions), the real ledger beside it, the real CLI in a fresh
process; nothing mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from tuneline.errors import UserError
from tuneline.events import require_prefect_api
from tuneline.ledger import default_ledger_url
from tests_support import store_client


def _cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tuneline.cli", *argv], env=env, capture_output=True, text=True,
                          timeout=180)


def test_a_refused_rollback_with_a_prefect_api_is_one_line_without_the_events_worker_warning(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store_client(uri)
    run_id = client.create_run(client.create_experiment("qa", artifact_location=(tmp_path / "a").as_uri())).info.run_id
    client.create_registered_model("qa-rollback")
    version = str(client.create_model_version("qa-rollback", source=str(tmp_path / "m"), run_id=run_id).version)
    env = {k: v for k, v in os.environ.items() if k not in ("TUNELINE_LEDGER_URL", "TUNELINE_LOCK_URL")}
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    stores = ["--tracking-uri", uri, "--ledger-url", default_ledger_url(uri)]
    assert _cli(["promote", "qa-rollback", version, "--reason", "first", *stores], env).returncode == 0
    # in-process first, where the race is not left to the machine's load: when the command returns, every event the
    # lock's slot emitted has been sent (on a busy machine a fresh process exited with them still queued, and
    # Prefect printed "EventsWorker - Still processing items" under the one-line error)
    from prefect.events.worker import EventsWorker

    from tuneline.cli import main

    for _ in range(3):
        assert main(["rollback", "qa-rollback", "--reason", "nothing before v1", *stores]) == 1
        assert EventsWorker.instance()._queue.unfinished_tasks == 0
    for _ in range(2):  # the slot's events are sent in the background: a fast exit lost them every time
        done = _cli(["rollback", "qa-rollback", "--reason", "nothing before v1", *stores], env)
        assert done.returncode == 1, done.stderr[-2000:]
        assert done.stderr.startswith("tuneline: ") and "nothing to roll back to" in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert str(client.get_model_version_by_alias("qa-rollback", "champion").version) == version


@pytest.mark.parametrize("suffix", ["", "/"])
def test_a_prefect_api_url_without_api_names_the_missing_path(suffix: str) -> None:
    api = PREFECT_API_URL.value()
    assert api.endswith("/api")
    server = api[: -len("/api")] + suffix
    with temporary_settings({PREFECT_API_URL: server}):
        with pytest.raises(UserError) as refused:
            require_prefect_api()
    message = str(refused.value)
    assert f"set PREFECT_API_URL={api} " in message and "does not answer" not in message, message
    assert "\n" not in message
    with temporary_settings({PREFECT_API_URL: api}):
        assert require_prefect_api() == api  # the right URL still passes


def test_promote_with_a_prefect_api_url_that_does_not_answer_warns_once_and_moves_the_champion(tmp_path: Path) -> None:
    """A wrong PREFECT_API_URL (a closed port) cost a promote 14 s of the client's retries and printed three
    warnings: the concurrency limit not taken, the events socket unreachable, "EventsWorker failed with 1 pending
    items". The API is asked once; without an answer the database lock alone is taken and no event is sent."""
    import socket

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store_client(uri)
    run_id = client.create_run(client.create_experiment("qa", artifact_location=(tmp_path / "a").as_uri())).info.run_id
    client.create_registered_model("qa-closed")
    version = str(client.create_model_version("qa-closed", source=str(tmp_path / "m"), run_id=run_id).version)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("TUNELINE_LEDGER_URL", "TUNELINE_LOCK_URL")}
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    done = _cli(["promote", "qa-closed", version, "--reason", "first", "--tracking-uri", uri,
                 "--ledger-url", default_ledger_url(uri)], env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert str(client.get_model_version_by_alias("qa-closed", "champion").version) == version
    [warning] = [line for line in done.stderr.splitlines() if line.strip()]  # one line, no retries' warnings
    assert "does not answer" in warning and "relying on the database lock alone" in warning
    [moved] = [line for line in done.stdout.splitlines() if line.strip()]
    assert moved.startswith("qa-closed@champion: ") and "promote" in moved


def test_train_with_a_prefect_api_url_that_does_not_answer_is_one_line_naming_it(tmp_path: Path) -> None:
    """It ended in "tuneline: RuntimeError: Failed to reach API ...; this is not a problem with your data or config;
    the full traceback is in the Prefect run log" (a log on the API that did not answer) after the flow started."""
    import socket

    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(40)))
    (tmp_path / "c.yaml").write_text(f"task: classification\ndata:\n  path: {tmp_path / 'd.csv'}\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        api = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    env = {**os.environ, "PREFECT_API_URL": api}
    done = _cli(["train", "-c", str(tmp_path / "c.yaml"), "--set", f"work_dir={tmp_path / 'work'}"], env)
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stderr == (f"tuneline: the Prefect API at {api} does not answer (ConnectError): start it with `prefect "
                           "server start`, or set PREFECT_API_URL to a running one (or unset PREFECT_API_URL: tuneline "
                           "then runs its flows on a temporary local API)\n")
    assert not (tmp_path / "work").exists()  # nothing started: no run folder, no MLflow run
