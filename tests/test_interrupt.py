"""Ctrl-C in a terminal: the whole foreground process group gets SIGINT, Prefect's temporary API server included.

Before tuneline started that server in its own session it died with the flow, and an interrupted ``tuneline train``
spent 142 s retrying to report its crash to it, then ended with ``ConnectError`` instead of its own message.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import yaml

from tests_support import default_ctrl_c, write_rows


def start_long_training(tmp_path, tiny_bert, preexec_fn=None, api_url: str | None = None
                        ) -> tuple[subprocess.Popen, object]:
    """A ``tuneline train`` child that trains for minutes, returned (with its open log) once it is training."""
    write_rows(tmp_path / "d.csv", [(f"text number {i} {'good' if i % 2 else 'bad'}", ["neg", "pos"][i % 2])
                                    for i in range(200)])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "data": {"path": "d.csv"}, "model": {"base": str(tiny_bert)},
        # no early stopping: a model that stops improving would end the "minutes" of training in seconds, before
        # the test's Ctrl-C (a CI run did: exit 0 after 2 s of training)
        "train": {"epochs": 500, "batch_size": 4, "early_stopping_patience": 0}, "tokenize": {"max_length": 16}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_TRACKING"))}
    env["PYTHONUNBUFFERED"] = "1"
    if api_url:  # a Prefect API that outlives the run (the session's), to read the run's state from after it
        env["PREFECT_API_URL"] = api_url
    log = (tmp_path / "out.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "tuneline.cli", "train", "-c", "c.yaml"], cwd=tmp_path,
                               env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
    deadline = time.monotonic() + 300
    while "training on" not in (tmp_path / "out.log").read_text() and time.monotonic() < deadline:
        if process.poll() is not None:
            log.close()
            raise AssertionError((tmp_path / "out.log").read_text()[-3000:])
        time.sleep(0.5)
    return process, log


def terminal_job() -> None:
    """``preexec_fn`` of a terminal's job: its own process group, Ctrl-C delivered to all of it."""
    default_ctrl_c()
    os.setpgid(0, 0)


def ended(process: subprocess.Popen, log, tmp_path) -> str:  # noqa: ANN001
    """The job's output once it has ended (its group killed if it has not), its log closed."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    log.close()
    return (tmp_path / "out.log").read_text()


def terminated(process: subprocess.Popen, log, tmp_path) -> str:  # noqa: ANN001
    """SIGTERM to a training two seconds in; its output once it has ended with 143."""
    try:
        time.sleep(2)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)
    finally:
        output = ended(process, log, tmp_path)
    assert process.returncode == 143, output[-3000:]
    return output


def test_ctrl_c_during_training_ends_at_once_with_the_resume_hint(tmp_path, tiny_bert):
    process, log = start_long_training(tmp_path, tiny_bert, preexec_fn=terminal_job)
    try:
        time.sleep(2)
        interrupted = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=90)
        took = time.monotonic() - interrupted
    finally:
        output = ended(process, log, tmp_path)
    assert process.returncode == 130, output[-3000:]
    assert "tuneline: interrupted; a re-run of the same config resumes" in output
    assert "ConnectError" not in output and "Connect call failed" not in output
    assert "interrupt signal" not in output, output[-3000:]  # Prefect's four crash lines repeated it (CLI QA)
    assert took < 30, f"{took:.0f} s from Ctrl-C to exit"


def test_a_second_ctrl_c_during_cleanup_ends_at_once_with_the_same_code(tmp_path, tiny_bert):
    """Ctrl-C pressed again while the interrupted run cleans up (Prefect stops its temporary API server at exit): the
    run ends at once with 130, no traceback, and the temporary server does not outlive it."""
    import psutil

    process, log = start_long_training(tmp_path, tiny_bert, preexec_fn=terminal_job)
    servers = [child for child in psutil.Process(process.pid).children() if "uvicorn" in " ".join(child.cmdline())]
    try:
        time.sleep(2)
        os.killpg(process.pid, signal.SIGINT)
        deadline = time.monotonic() + 60
        while "tuneline: interrupted" not in (tmp_path / "out.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(process.pid, signal.SIGINT)  # the second Ctrl-C, as the message appears
        process.wait(timeout=60)
    finally:
        output = ended(process, log, tmp_path)
    assert process.returncode == 130, output[-3000:]
    assert output.count("tuneline: interrupted") == 1
    assert "Traceback" not in output and "Exception ignored" not in output, output[-3000:]
    gone, alive = psutil.wait_procs(servers, timeout=20)
    assert not alive, "the temporary Prefect API server outlived the interrupted run"


def test_a_killed_run_leaves_no_prefect_server_behind(tmp_path, tiny_bert):
    """``kill -9`` gives the run no chance to stop the temporary API server it started; the server must notice and
    stop itself instead of holding its port and database for ever."""
    import psutil

    process, log = start_long_training(tmp_path, tiny_bert)
    servers: list[psutil.Process] = []
    try:
        servers = [child for child in psutil.Process(process.pid).children()
                   if "uvicorn" in " ".join(child.cmdline())]
        assert len(servers) == 1, [child.cmdline() for child in psutil.Process(process.pid).children()]
        assert servers[0].is_running()
        process.kill()
        process.wait(timeout=30)
        gone, alive = psutil.wait_procs(servers, timeout=20)
        assert not alive, f"the temporary Prefect API server {alive[0].pid} outlived the killed run"
    finally:
        if process.poll() is None:
            process.kill()
        for server in servers:
            if server.is_running():
                server.kill()
        log.close()


def test_sigterm_during_training_closes_the_run_and_ends_with_its_own_line(tmp_path, tiny_bert):
    """SIGTERM to the process alone, as a service manager, ``kill`` or Kubernetes sends it: the run is cleaned up as
    for a Ctrl-C (the MLflow run KILLED, the temporary API server gone) and the CLI ends with its own line and 143.
    Before, Prefect's crash handling re-sent the signal under Python's default handler: exit 143 right after
    Prefect's "aborted by a termination signal" lines, without a word from tuneline or the resume hint."""
    import psutil
    from mlflow import MlflowClient

    process, log = start_long_training(tmp_path, tiny_bert)
    servers = [child for child in psutil.Process(process.pid).children() if "uvicorn" in " ".join(child.cmdline())]
    output = terminated(process, log, tmp_path)
    assert output.count("tuneline: terminated (SIGTERM); a re-run of the same config resumes") == 1, output[-3000:]
    assert "termination signal" not in output and "Traceback" not in output, output[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["KILLED"]
    gone, alive = psutil.wait_procs(servers, timeout=20)
    assert not alive, "the temporary Prefect API server outlived the terminated run"


def test_a_run_stopped_on_purpose_reads_cancelled_in_prefect_not_crashed(tmp_path, tiny_bert):
    """Prefect calls every interrupt a crash: each deliberate stop of a run (Ctrl-C, a service manager's SIGTERM)
    showed as Crashed on the operator's dashboard, like a run that died (loop QA)."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL

    output = terminated(*start_long_training(tmp_path, tiny_bert, api_url=PREFECT_API_URL.value()), tmp_path)
    assert "cancelled_when_stopped" not in output, output[-3000:]  # the hook's own lines stay off the console
    run_name = re.search(r"Beginning flow run '([\w-]+)'", output).group(1)
    with get_client(sync_client=True) as client:
        [run] = [r for r in client.read_flow_runs(limit=200) if r.name == run_name]
    assert (run.state.type.value, run.state.message) == ("CANCELLED", "stopped by SIGTERM")


class _StopsInItsFinalizer:
    """An object whose ``__del__`` receives SIGTERM: Python drops the exception the handler raises there."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the handler runs here, inside __del__
            time.sleep(0.01)


def test_a_sigterm_a_finalizer_swallows_still_ends_the_command_as_terminated(monkeypatch, capsys):
    """A SIGTERM landing in a ``Dataset.__del__`` as a retraining run finished: "Exception ignored in ...
    TerminationSignal" on the console, then the summary and exit 0, read by a service manager as a normal end
    (loop QA). Now no traceback, and 143 after what the command finished."""
    from tuneline import cli
    from tuneline.interrupts import terminate_as_interrupt

    def finishes_while_stopped(args) -> int:  # noqa: ANN001
        print("the work is done")
        _StopsInItsFinalizer()  # collected at once: its __del__ gets the signal
        return 0

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli, "_show_config", finishes_while_stopped)
    try:
        terminate_as_interrupt()
        code = cli.main(["show-config"])
    finally:
        signal.signal(signal.SIGTERM, before)
    out, err = capsys.readouterr()
    assert code == 143
    assert out == "the work is done\n"
    assert err == "tuneline: terminated (SIGTERM) as it was finishing; what it printed above was done\n"
    monkeypatch.setattr(cli, "_show_config", lambda args: 0)
    assert cli.main(["show-config"]) == 0  # nothing lost: nothing changes
