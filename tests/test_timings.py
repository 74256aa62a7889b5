"""Where a run's time goes (tuneline.timings), the attention kernel choice, and the early start of Prefect's API."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from tuneline import timings
from tuneline.tasks.model import attention_implementation, build_model
from tuneline.config import ModelConfig


def test_breakdown_counts_each_stage_the_gaps_and_the_startup():
    start = time.time()
    nap = timings.timed(lambda seconds: time.sleep(seconds), "nap")
    other = timings.timed(lambda seconds: time.sleep(seconds), "other")
    time.sleep(0.2)                      # "startup": before the first task
    nap(0.3)
    time.sleep(0.15)                     # between tasks
    other(0.1)
    nap(0.2)
    breakdown = timings.time_breakdown(training_s=0.25, since=start)
    assert breakdown.stages["nap"] == pytest.approx(0.5, abs=0.05)
    assert breakdown.stages["other"] == pytest.approx(0.1, abs=0.05)
    assert breakdown.startup_s == pytest.approx(0.2, abs=0.05)
    assert breakdown.between_tasks_s == pytest.approx(0.15, abs=0.05)
    assert breakdown.total_s == pytest.approx(0.95, abs=0.1)
    assert breakdown.outside_training_fraction == pytest.approx(1 - 0.25 / breakdown.total_s, abs=1e-3)
    metrics = breakdown.metrics()
    assert metrics["time.nap_s"] == breakdown.stages["nap"] and metrics["time.total_s"] == breakdown.total_s
    assert breakdown.line().startswith(f"time: {breakdown.total_s:.0f} s in all; training 0 s")


def test_a_task_that_raises_is_timed_too():
    start = time.time()
    failing = timings.timed(lambda: (time.sleep(0.1), 1 / 0), "failing")
    with pytest.raises(ZeroDivisionError):
        failing()
    assert timings.time_breakdown(0.0, since=start).stages["failing"] == pytest.approx(0.1, abs=0.05)


def test_auto_attention_is_eager_for_short_sequences_on_a_cpu(tiny_bert):
    assert attention_implementation("auto", 64) == "eager"
    assert attention_implementation("auto", 128) == "eager"
    assert attention_implementation("auto", 512) == "sdpa"
    assert attention_implementation("sdpa", 64) == "sdpa"
    built = build_model.fn(ModelConfig(base=str(tiny_bert)), "classification", ["a", "b"], seed=0, max_length=32)
    assert built.model.config._attn_implementation == "eager"
    built = build_model.fn(ModelConfig(base=str(tiny_bert), attention="sdpa"), "classification", ["a", "b"], seed=0,
                           max_length=32)
    assert built.model.config._attn_implementation == "sdpa"


def test_early_api_is_the_one_the_flow_uses(tmp_path):
    """The server started before the imports is the flow's: one ephemeral server process, not two."""
    script = textwrap.dedent("""
        import os, psutil
        os.environ.pop("PREFECT_API_URL", None)
        from tuneline.early_api import start_ephemeral_api_early
        wait = start_ephemeral_api_early()
        from prefect import flow, get_client
        wait()
        from prefect.server.api.server import SubprocessASGIServer
        server = SubprocessASGIServer()
        assert server.running and server.server_process.poll() is None

        @flow
        def where() -> str:
            with get_client(sync_client=True) as client:
                return str(client.api_url)

        url = where()
        servers = [p for p in psutil.Process().children(recursive=True) if "uvicorn" in " ".join(p.cmdline())]
        print(url, server.api_url, len(servers))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PREFECT_HOME": str(tmp_path / "prefect")})
    assert done.returncode == 0, done.stderr[-3000:]
    url, api_url, servers = done.stdout.split()[-3:]
    assert url.rstrip("/") == api_url.rstrip("/")
    assert servers == "1"


def test_the_early_api_runs_on_its_own_port_when_another_server_answers_prefects_draw(tmp_path):
    """Serving QA: two commands started together drew the same port of Prefect's 8000-8999 (tested free, bound by
    uvicorn seconds later). The second's uvicorn could not bind, but the first's server had answered its health
    check, so it ran its flow there and failed with ConnectError once the first command stopped it. Here the draw
    is forced onto a port where another server answers, as if it had bound it just after the test."""
    script = textwrap.dedent("""
        import http.server, os, threading, time
        os.environ.pop("PREFECT_API_URL", None)

        class Health(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.end_headers(); self.wfile.write(b"true")
            def log_message(self, *args):
                pass

        other = http.server.HTTPServer(("127.0.0.1", 0), Health)
        threading.Thread(target=other.serve_forever, daemon=True).start()
        taken = other.server_address[1]
        from prefect.server.api.server import SubprocessASGIServer
        SubprocessASGIServer._port_range = range(taken, taken + 1)
        SubprocessASGIServer.is_port_available = staticmethod(lambda port: True)
        from tuneline.early_api import start_ephemeral_api_early
        start_ephemeral_api_early()()
        server = SubprocessASGIServer()
        time.sleep(3)
        print(taken, server.port, server.running, server.server_process.poll())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PREFECT_HOME": str(tmp_path / "prefect")})
    assert done.returncode == 0, done.stderr[-3000:]
    taken, port, running, exited = done.stdout.split()[-4:]
    assert port != taken and running == "True" and exited == "None", done.stdout  # its own server, still up


def test_a_command_whose_flow_starts_the_api_itself_takes_a_kernel_port_too():
    """``tuneline predict --input`` lets Prefect start its API when the flow needs it (no early start): it drew from
    8000-8999 as before, the race above included. The port is set where every such command prepares the server."""
    script = textwrap.dedent("""
        from prefect.server.api.server import SubprocessASGIServer
        SubprocessASGIServer._port_range = range(8123, 8124)
        SubprocessASGIServer.is_port_available = staticmethod(lambda port: True)
        from tuneline.early_api import detach_ephemeral_api_from_terminal
        detach_ephemeral_api_from_terminal()
        print(SubprocessASGIServer(None).find_available_port(), SubprocessASGIServer(None).find_available_port())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = map(int, done.stdout.split()[-2:])
    assert 8123 not in (first, second) and first > 0 and second > 0


def test_a_command_exec_d_by_a_shell_after_other_work_counts_from_its_own_start():
    """``bash -c 'pip install ... && tuneline demo'`` runs tuneline by exec in the shell's process, created before the
    install: the command's start is when the interpreter reached tuneline, not the shell's creation."""
    script = ("import time, tuneline; from tuneline import timings; "
              "print(time.time() - timings.process_started(), tuneline.IMPORTED_AT - timings.process_started())")
    shell = subprocess.run(["bash", "-c", f"sleep 12 && exec {sys.executable} -c '{script}'"],
                           capture_output=True, text=True, timeout=120, check=True)
    since_start, before_import = map(float, shell.stdout.split())
    assert 0 < since_start < 10 and before_import == 0  # from the shell's creation it would be 12 s and more
    direct = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    since_start, before_import = map(float, direct.stdout.split())
    assert 0 < since_start < 10 and before_import > 0  # a plain start counts the interpreter's own start too
