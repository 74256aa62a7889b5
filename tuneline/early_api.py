"""Start Prefect's temporary API while the command is still importing its flow.

Without ``PREFECT_API_URL`` a flow run starts Prefect's ephemeral API server (a uvicorn subprocess) when it creates
its first client, after the flow's imports (torch, transformers, MLflow, Prefect: seconds). The two do not depend on
each other, so ``tuneline train`` starts the server first, in a background thread that only waits on the
subprocess, imports meanwhile, and joins before the flow starts: the server comes up on the second core while the
first imports. Prefect keeps one ephemeral server per process (``SubprocessASGIServer`` is a per-port singleton), so
the flow's client finds this one running and does not start another.
"""

from __future__ import annotations

import os
import subprocess
import threading
from typing import Callable


def needs_ephemeral_api() -> bool:
    """Whether a flow run in this process would start Prefect's ephemeral API (no API URL configured)."""
    if os.environ.get("PREFECT_API_URL"):
        return False
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    return not PREFECT_API_URL.value() and bool(PREFECT_SERVER_EPHEMERAL_ENABLED.value())


class _DetachedSubprocess:
    """The ``subprocess`` module as Prefect's server module sees it, but with ``Popen(start_new_session=True)``.

    Ctrl-C in a terminal sends SIGINT to the whole foreground process group, the ephemeral API server (a child of
    this process) included. It died at once, and the interrupted flow then spent over two minutes retrying to report
    its crash to the dead server before ending with ``ConnectError`` (142 s measured on ``tuneline train``). In its
    own session the server no longer gets the terminal's signals; this process stops it at exit, as Prefect
    arranges (``SubprocessASGIServer.stop``).

    A process killed outright (``kill -9``) cannot stop it at exit, so the server runs under
    :mod:`tuneline.parent_watch`, which stops it when this process is gone.
    """

    def __getattr__(self, name: str):  # noqa: ANN204 - whatever the subprocess module holds
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args, **kwargs):  # noqa: N802, ANN002, ANN003, ANN205 - the name and signature Prefect calls
        kwargs.setdefault("start_new_session", True)
        command = kwargs.get("args", args[0] if args else None)
        if isinstance(command, list) and command[1:3] == ["-m", "uvicorn"]:
            command = [command[0], "-m", "tuneline.parent_watch", str(os.getpid()), *command[2:]]
            if "args" in kwargs:
                kwargs["args"] = command
            else:
                args = (command, *args[1:])
        return subprocess.Popen(*args, **kwargs)


def detach_ephemeral_api_from_terminal() -> None:
    """Have Prefect start its ephemeral API server outside this terminal's process group (see
    :class:`_DetachedSubprocess`), on a port the kernel assigns (:func:`kernel_assigned_port`); harmless where no
    ephemeral server is started. Every command that may start one calls this first."""
    try:
        import prefect.server.api.server as server_module
    except ImportError:  # pragma: no cover - a Prefect without the server
        return
    if getattr(server_module, "subprocess", None) is subprocess:
        server_module.subprocess = _DetachedSubprocess()
    server_module.SubprocessASGIServer.find_available_port = lambda self: kernel_assigned_port()


def kernel_assigned_port() -> int:
    """A free local port the kernel picks, for the ephemeral API.

    Prefect draws one from 8000-8999 at random and tests it by binding and releasing it; uvicorn binds it seconds
    later, after its imports. Two commands started together could draw the same port: the second's uvicorn failed to
    bind, but its health check had already been answered by the first's server, so it ran its flow there and failed
    with ConnectError once the first command stopped that server, after writing its whole output (serving QA). The
    kernel hands a port to one socket at a time and picks each from its whole ephemeral range."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_ephemeral_api_early() -> Callable[[], None]:
    """Start the ephemeral API in the background when this process will need one; returns ``wait()``, to call before
    the flow runs (a server still starting would answer the flow's first request with a refused connection).

    A failure here is not reported: the flow's own client then starts the server as usual and reports its error.
    With ``PREFECT_API_URL`` set, ``wait()`` checks that API instead: one that does not answer is a one-line
    :class:`~tuneline.errors.UserError` naming the URL (the flow ended in "RuntimeError: Failed to reach API", called
    "not a problem with your data or config", with its traceback "in the Prefect run log" that could not be written).
    """
    if not needs_ephemeral_api():
        return require_configured_api
    detach_ephemeral_api_from_terminal()

    def start() -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer

            SubprocessASGIServer().start()
        except Exception:  # noqa: BLE001 - the flow's client retries and reports
            try:
                from prefect.server.api.server import SubprocessASGIServer

                SubprocessASGIServer().running = False
            except Exception:  # noqa: BLE001
                pass

    thread = threading.Thread(target=start, name="tuneline-early-prefect-api", daemon=True)
    thread.start()
    return thread.join


def require_configured_api() -> None:
    """The configured Prefect API answers, or a one-line error that says to start it or unset the variable."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        from tuneline.events import require_prefect_api

        require_prefect_api("run the flow on", "(or unset PREFECT_API_URL: tuneline then runs its flows on a "
                                               "temporary local API)")
