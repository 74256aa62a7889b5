"""``tuneline serve-model``: a registered model as an HTTP endpoint, MLflow's own scoring server.

The child it starts (:mod:`tuneline.serving_app`) does what ``mlflow models serve --env-manager local`` does and
names the served version on every answer. tuneline adds what MLflow's command leaves to the caller:

* the registry is the one the other commands use (``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else
  ./mlflow.db), passed as ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI`` in the child's environment;
* ``NAME@ALIAS`` is resolved to ONE version number before anything starts, and that version is what MLflow serves
  (``models:/NAME/VERSION``) and what the log and every answer name (``X-Model-Version``, ``GET /model``): if
  the alias moves while the server starts, they still say what is served. An endpoint started for ``@champion``
  therefore picks up a promotion (or a ``tuneline rollback``) when it is restarted, never in the middle of its life;
* an unknown model, alias or version, or a port already in use, is one ``tuneline:`` line;
* the server runs as a child in its own process group: Ctrl-C or SIGTERM stops all of it (the child and the
  uvicorn workers it starts) before the command returns, so the port is free again when it does; the child also
  gets SIGTERM if tuneline is killed outright (Linux).

The endpoint is MLflow's own scoring server: ``GET /ping`` and ``/health``, ``POST /invocations`` with
``{"inputs": [...]}`` or ``{"dataframe_split": ...}`` JSON (NER models: ``inputs`` only, a list of texts or of
word lists), answering ``{"predictions": [...]}`` (one record per input, the pyfunc's columns).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tuneline.config import UsageError
from tuneline.errors import UserError
from tuneline.runtime import redact, require_tracking_server, resolve_tracking_uri

DEFAULT_ALIAS = "champion"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 5001
DEFAULT_FOLLOW_S = 30.0
#: How long a stopped server may take to shut down (finish the request in flight) before it is killed.
STOP_GRACE_S = 15.0


@dataclass(frozen=True)
class ServedModel:
    """One concrete registered version and where it is served."""

    name: str
    version: str
    task: str
    reference: str       # as asked, e.g. models:/intents@champion
    tracking_uri: str    # resolved (``${VAR}`` expanded): never printed unredacted
    host: str
    port: int
    workers: int
    alias: str | None = None        # the alias resolved, None for --version
    follow_s: float | None = None   # --follow: seconds between reads of the alias

    @property
    def uri(self) -> str:
        """What MLflow serves: the resolved version, never the alias (which may move while the server starts)."""
        return f"models:/{self.name}/{self.version}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def add_parser(sub: argparse._SubParsersAction) -> None:  # noqa: ANN001 - argparse's private subparsers action
    from tuneline.serving_app import DEFAULT_MAX_REQUEST_MB  # stdlib only at import: cheap

    serve = sub.add_parser(
        "serve-model", help="serve a registered model over HTTP (MLflow's scoring server)",
        description="Resolve NAME@ALIAS (default @champion) or NAME/VERSION to one version, print it, and serve "
        "that version with MLflow's scoring server until Ctrl-C: GET /ping, POST /invocations with {\"inputs\": "
        "[...]} or {\"dataframe_split\": ...}, GET /model; every answer names its version (X-Model-Version). "
        "The alias is read at start; with --follow it is read again every few seconds and a promotion or a "
        "rollback is served without a restart (else restart the endpoint to pick one up).")
    serve.add_argument("name", metavar="NAME", help="registered model name")
    which = serve.add_mutually_exclusive_group()
    which.add_argument("--alias", "-a", help=f"alias to serve (default: {DEFAULT_ALIAS})")
    which.add_argument("--version", "-v", help="version number to serve instead of an alias")
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"interface to listen on (default {DEFAULT_HOST})")
    serve.add_argument("--port", "-p", type=port_number, default=DEFAULT_PORT,
                       help=f"1 to 65535 (default {DEFAULT_PORT})")
    serve.add_argument("--workers", "-w", type=int, default=1, help="uvicorn worker processes (default 1)")
    serve.add_argument("--follow", nargs="?", type=float, const=DEFAULT_FOLLOW_S, metavar="SECONDS",
                       help="read the alias again every SECONDS (default "
                            f"{DEFAULT_FOLLOW_S:g}) and switch to the version it names without a restart: the new "
                            "version is loaded beside the serving one, then takes the next requests")
    serve.add_argument("--max-request-mb", type=float, default=None, metavar="MB",
                       help="refuse a request body larger than this with a 413 (default "
                            f"{DEFAULT_MAX_REQUEST_MB:g}, about 100,000 short texts)")
    serve.add_argument("--timeout-s", type=float, default=None, metavar="SECONDS",
                       help="answer a request still predicting after SECONDS with a 504 and stop predicting it "
                            "(default: $MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT or MLflow's 60)")
    serve.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI or sqlite:///./mlflow.db")


def port_number(text: str) -> int:
    """``--port``'s type: a TCP port, 1 to 65535. ``--port 99999`` reached the socket's bind ("OverflowError: bind():
    port must be 0-65535.", printed as an internal error); 0 would serve on a port nobody is told."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number: give one from 1 to 65535") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number: give one from 1 to 65535")
    return port


def serve_model_command(args: argparse.Namespace) -> int:
    """The CLI entry: ``tuneline serve-model`` with parsed arguments."""
    from tuneline.errors import UserError
    from tuneline.serving_app import MAX_REQUEST_ENV, TIMEOUT_ENV

    if args.max_request_mb is not None:
        if not args.max_request_mb > 0:
            raise UsageError(f"--max-request-mb must be more than 0 (got {args.max_request_mb:g})")
        os.environ[MAX_REQUEST_ENV] = f"{args.max_request_mb:g}"  # the served app reads it in every worker
    if args.timeout_s is not None:
        if not args.timeout_s >= 1 or args.timeout_s != int(args.timeout_s):
            raise UsageError(f"--timeout-s must be a whole number of seconds, at least 1 (got {args.timeout_s:g})")
        os.environ[TIMEOUT_ENV] = str(int(args.timeout_s))  # MLflow's scoring app reads it in every worker
    return serve_model(args.name, alias=args.alias, version=args.version, host=args.host, port=args.port,
                       workers=args.workers, tracking_uri=args.tracking_uri, follow_s=args.follow)


def resolve_served_model(name: str, alias: str | None = None, version: str | None = None,
                         tracking_uri: str | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                         workers: int = 1, follow_s: float | None = None) -> ServedModel:
    """The version ``NAME@ALIAS`` (or ``NAME/VERSION``) points at now; a :class:`UserError` naming what exists when
    the model, alias or version does not."""
    from mlflow.exceptions import MlflowException

    from tuneline.tasks.predict_batch import resolve_model_version

    if alias is not None and version is not None:
        raise UserError("give --alias or --version, not both")
    if not name or name.startswith("models:/") or "@" in name:
        raise UsageError(f"serve-model takes a registered model NAME (got {name!r}); choose the version with "
                        "--alias ALIAS or --version N")
    if version is not None and not str(version).isdigit():
        raise UsageError(f"--version must be a version number such as 3 (got {version!r})")
    if workers < 1:
        raise UsageError(f"--workers must be at least 1 (got {workers})")
    if follow_s is not None and version is not None:
        raise UsageError("--follow follows an alias; a --version never moves: give --alias (or neither) with --follow")
    if follow_s is not None and not follow_s >= 1:
        raise UsageError(f"--follow takes the seconds between reads of the alias, at least 1 (got {follow_s:g})")
    reference = f"models:/{name}/{version}" if version is not None else f"models:/{name}@{alias or DEFAULT_ALIAS}"
    require_existing_store(require_tracking_server(resolve_tracking_uri(tracking_uri)))
    try:
        resolved = resolve_model_version.fn(reference, tracking_uri)
    except MlflowException as error:  # a name MLflow refuses ('a/../b'): the user's to fix, not an internal error
        if error.error_code not in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
            raise
        raise UserError(f"cannot serve {name!r}: {str(error.message).splitlines()[0]} (give the NAME a model is "
                        "registered under)") from None
    except UserError as error:  # batch prediction's wording names its own options: name this command's
        hint = (str(error).replace("check --model and", "check NAME and")
                .replace(f"use one of them or models:/{name}/<version>", "serve one of them with --alias ALIAS, "
                         "or a version with --version N")
                .replace("batch prediction takes models", "serve-model serves models"))
        raise UserError(hint) from None
    return ServedModel(name=resolved.name, version=resolved.version, task=resolved.task, reference=reference,
                       tracking_uri=resolved.tracking_uri, host=host, port=port, workers=workers,
                       alias=None if version is not None else alias or DEFAULT_ALIAS, follow_s=follow_s)


def require_existing_store(uri: str) -> str:
    """``uri``; for a SQLite store, a :class:`UserError` naming its file when that file does not exist. MLflow's client
    creates an empty database there, and serve-model then said the model was not registered (a typo in the path
    left an empty ``mlflow.db`` behind and hid the typo)."""
    if not uri.startswith("sqlite:"):
        return uri
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    if database and database != ":memory:" and not database.startswith("file:") and not Path(database).is_file():
        raise UserError(f"the MLflow store {redact(uri)} has no database file ({Path(database).absolute()} does not "
                        "exist): point --tracking-uri (or $MLFLOW_TRACKING_URI) at the store the model is registered "
                        "in")
    return uri


def serve_command(model: ServedModel) -> list[str]:
    """:mod:`tuneline.serving_app` in this interpreter: MLflow's scoring app for the resolved version."""
    return [sys.executable, "-m", "tuneline.serving_app", "--host", model.host, "--port", str(model.port),
            "--workers", str(model.workers)]


def serving_environment(model: ServedModel) -> dict[str, str]:
    """The child's environment: the registry to read and the version to serve (never the alias)."""
    from tuneline.serving_app import ALIAS_ENV, FOLLOW_ENV, NAME_ENV, TASK_ENV, VERSION_ENV

    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = env["MLFLOW_REGISTRY_URI"] = model.tracking_uri
    env.update({NAME_ENV: model.name, VERSION_ENV: model.version, TASK_ENV: model.task})
    env.pop(FOLLOW_ENV, None)
    if model.follow_s is not None and model.alias is not None:
        env.update({ALIAS_ENV: model.alias, FOLLOW_ENV: str(model.follow_s)})
    return env


def require_free_port(host: str, port: int) -> None:
    """Fail before starting anything when the port cannot be listened on (uvicorn's own failure is a traceback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UserError(f"cannot listen on {host}:{port} ({error.strerror or error}); "
                            f"{bind_hint(error, host, port)}") from None


def bind_hint(error: OSError, host: str, port: int) -> str:
    """What to change when listening on ``host:port`` failed with ``error``. Every failure said "another server is
    probably using it", also for ``--host 256.1.1.1`` (no such address) and a port below 1024 without root."""
    if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
        return (f"--host {host} is not an address of this machine: give one of its addresses, 127.0.0.1 (this "
                "machine only) or 0.0.0.0 (every interface)")
    if error.errno == errno.EACCES:
        return f"port {port} needs privileges this user lacks (ports below 1024 need root): pick --port 1024 or above"
    if error.errno == errno.EADDRINUSE:
        return "another server is using it: pick another --port or stop that server"
    return "check --host and --port"


def serve_model(name: str, *, alias: str | None = None, version: str | None = None, host: str = DEFAULT_HOST,
                port: int = DEFAULT_PORT, workers: int = 1, tracking_uri: str | None = None,
                follow_s: float | None = None,
                echo: Callable[[str], None] = lambda line: print(line, flush=True)) -> int:
    """Resolve, announce and serve until stopped; the exit code of the server (0 after Ctrl-C or SIGTERM)."""
    model = resolve_served_model(name, alias, version, tracking_uri, host, port, workers, follow_s)
    require_free_port(host, port)
    echo(f"serving {model.name} version {model.version} ({model.task}; asked for {model.reference}) from "
         f"{redact(model.tracking_uri)}")
    echo(f"  endpoint: POST {model.url}/invocations   health: GET {model.url}/ping   workers: {model.workers} "
         "(Ctrl-C stops)")
    if model.follow_s is not None:
        echo(f"  following {model.name}@{model.alias}: read every {model.follow_s:g} s; a move is served without a "
             "restart (GET /model says which version answers)")
    code = run_until_stopped(serve_command(model), serving_environment(model))
    if code not in (0, None):
        print(f"tuneline: the model server exited with code {code} (its log is above)", file=sys.stderr)
        return 1
    return 0


def wait_until_serving(url: str, timeout_s: float = 120.0, process: subprocess.Popen | None = None) -> float:
    """Poll ``GET {url}/ping`` until the endpoint answers 200; the seconds it took. A :class:`RuntimeError` when
    ``process`` (the server, if given) exits first or after ``timeout_s``: callers never wait unbounded."""
    import urllib.error
    import urllib.request

    start = time.monotonic()
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the model server exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() - start > timeout_s:
            raise RuntimeError(f"{url}/ping did not answer within {timeout_s:.0f} s")
        time.sleep(0.25)


class _Stop(Exception):
    """SIGTERM arrived: stop the server as for Ctrl-C."""


def _raise_stop(signum, frame) -> None:  # noqa: ANN001 - signal handler signature
    raise _Stop


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when this process dies, even by SIGKILL (MLflow does the same for uvicorn)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_until_stopped(command: list[str], env: dict[str, str]) -> int | None:
    """Run ``command`` in a process group of its own until it exits, or until Ctrl-C / SIGTERM stops this process:
    then the whole group gets SIGTERM (SIGKILL after :data:`STOP_GRACE_S`), and this returns once it is gone."""
    linux = sys.platform.startswith("linux")
    child = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=_die_with_parent if linux else None)
    in_main_thread = hasattr(signal, "SIGTERM") and _is_main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_stop) if in_main_thread else None
    try:
        return child.wait()
    except (KeyboardInterrupt, _Stop):
        _stop_group(child)
        print("tuneline: model server stopped", file=sys.stderr, flush=True)
        return 0
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        if child.poll() is None:  # any other way out (an error in this process): never leave the server behind
            _stop_group(child)


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _stop_group(child: subprocess.Popen) -> None:
    """SIGTERM to the child's process group (MLflow's CLI and the uvicorn it exec'd), then wait for every member."""
    group = child.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            child.poll()  # reap the direct child so that it does not linger as a zombie group member
            if not _group_alive(group):
                child.wait()
                return
            time.sleep(0.1)
    child.wait()


def _group_alive(group: int) -> bool:
    """Whether a process of the group still runs. A zombie does not count: uvicorn, orphaned when MLflow's CLI
    exits first, is reaped by whatever adopts it, which need not be prompt in a container."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == group and fields[0] != "Z":  # fields after the command: state, ppid, pgrp, ...
            return True
    return False
