"""Throwaway servers for the tests: a PostgreSQL cluster and an MLflow tracking server on free local ports.

Both are real processes in temporary folders, started with bounded waits and always stopped (process group and all)
and deleted, whatever the test did. The fixtures in ``tests/conftest.py`` wrap them; ``.ci/run`` only has to make
sure PostgreSQL's binaries are installed (``apt-get install -y postgresql``).

PostgreSQL's ``initdb`` and ``postgres`` refuse to run as root: as root, the cluster is created and run as the
``postgres`` OS user (which the Debian package creates) in a folder that user owns.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tuneline.runtime import redact

PG_START_S, PG_STOP_S, MLFLOW_START_S = 60, 30, 120
INSTALL_HINT = "apt-get install -y postgresql"


class ServiceUnavailable(RuntimeError):
    """What a service needs is not installed here (the fixture turns this into a skip naming the fix)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, chars: int = 4000) -> str:
    """The end of a log, credentials redacted (server logs may echo connection URLs)."""
    return redact(path.read_text(errors="replace")[-chars:]) if path.exists() else "(no output)"


def wait_until(what: str, ready: Callable[[], bool], timeout_s: float, process: subprocess.Popen | None = None,
               log: Path | None = None) -> None:
    """Poll ``ready()`` until it is true; fail after ``timeout_s`` or as soon as ``process`` has exited."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}\n{tail(log) if log else ''}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready within {timeout_s:.0f} s\n{tail(log) if log else ''}")
        time.sleep(0.5)


def stop_process_group(process: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM the process's group, then SIGKILL what is left after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_bindir() -> Path:
    """The folder of PostgreSQL's server binaries (``initdb``, ``pg_ctl``): the newest ``/usr/lib/postgresql/<v>/bin``
    (Debian keeps them off the PATH), else wherever ``pg_ctl`` is on the PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1].parent
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    raise ServiceUnavailable(f"PostgreSQL's server binaries (initdb, pg_ctl) are not installed: {INSTALL_HINT}")


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster of its own in a temporary folder, listening on 127.0.0.1 only.

    Authentication is ``scram-sha-256`` everywhere (no ``trust``): the superuser ``postgres`` has a random password,
    and :meth:`create_database` makes a login role with a password of its own and a database it owns.
    """

    bindir: Path = field(default_factory=postgres_bindir)  # first: nothing is created when PostgreSQL is absent
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tuneline-pg-")))
    port: int = field(default_factory=free_port)
    superuser_password: str = field(default_factory=lambda: secrets.token_hex(16))
    started: bool = False

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "postgres.log"

    def _as_owner(self, argv: Sequence[str]) -> list[str]:
        """As root, run ``argv`` as the ``postgres`` OS user (PostgreSQL refuses root); otherwise as is."""
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)

    def _run(self, *argv: str, timeout_s: float) -> None:
        done = subprocess.run(self._as_owner([str(self.bindir / argv[0]), *argv[1:]]), capture_output=True,
                              text=True, timeout=timeout_s, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
                               f"\n{tail(self.log)}")

    def start(self) -> PostgresCluster:
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceUnavailable(f"running as root, and there is no 'postgres' OS user to run PostgreSQL "
                                         f"as (it comes with the package: {INSTALL_HINT})") from None
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)  # mkdtemp made it 0700: only its owner gets in
        password_file = self.folder / "superuser-password"
        password_file.write_text(self.superuser_password + "\n")
        if os.geteuid() == 0:
            os.chown(password_file, owner.pw_uid, owner.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", f"--pwfile={password_file}",
                      "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", timeout_s=PG_START_S)
        finally:
            password_file.unlink()
        # a throwaway cluster: durability off (fsync, full-page writes) for speed; its socket stays in its folder
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", str(PG_START_S),
                  "start", timeout_s=PG_START_S + 10)
        self.started = True
        return self

    def url(self, user: str, password: str, database: str, driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A login role ``<name>`` with a random password owning a new database ``<name>``; its SQLAlchemy URL."""
        try:
            import psycopg
        except ImportError:
            raise ServiceUnavailable("the PostgreSQL driver psycopg is not installed: "
                                     "pip install -e '.[test]' (or 'psycopg[binary]')") from None
        password = secrets.token_hex(16)
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", password=self.superuser_password,
                             dbname="postgres", autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE ROLE "{name}" LOGIN PASSWORD \'{password}\'')  # hex password: nothing to escape
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
        return self.url(name, password, name)

    def stop(self) -> None:
        """Stop the server (fast, then immediate, then a kill of the postmaster) and delete the folder."""
        try:
            if self.started and (self.data / "postmaster.pid").exists():
                for mode in ("fast", "immediate"):
                    try:
                        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(PG_STOP_S), "stop",
                                  timeout_s=PG_STOP_S + 10)
                        break
                    except (RuntimeError, subprocess.TimeoutExpired):
                        continue
                else:
                    pid = int((self.data / "postmaster.pid").read_text().split()[0])
                    os.kill(pid, signal.SIGKILL)
        finally:
            self.started = False
            shutil.rmtree(self.folder, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------
# MLflow tracking server


@dataclass
class MlflowServer:
    """``mlflow server`` on a database backend store, serving artifacts from a local folder (``--serve-artifacts``)."""

    backend_store_uri: str
    artifacts: Path
    log: Path
    mlflow: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MlflowServer:
        # explicit environment: no tracking/registry URI, Prefect or tuneline setting of the tests leaks into it
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MLFLOW_TRACKING", "MLFLOW_REGISTRY", "PREFECT_", "TUNELINE_"))}
        env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1",
                   # no job runner (a second process importing MLflow, for GenAI jobs tuneline never submits)
                   MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        self.artifacts.mkdir(parents=True, exist_ok=True)
        argv = [str(self.mlflow), "server", "--backend-store-uri", self.backend_store_uri,
                "--artifacts-destination", str(self.artifacts), "--serve-artifacts",
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(argv, cwd=self.log.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_until(f"mlflow server on port {self.port}", self.healthy, MLFLOW_START_S, self.process, self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)
