"""A per-registered-model exclusive lock that holds across processes and machines: the gate's compare-and-set.

The gate re-reads the ``champion`` alias, compares the challenger with it and moves the alias. Two training runs that
finish together must not interleave those three steps, or the slower one can overwrite a better champion that the
faster one just set. The steps therefore run inside :func:`model_lock`.

Why a database transaction, and not a file lock or only Prefect:

* With the embedded default every ``tuneline train`` process starts its own temporary Prefect API, so a Prefect global
  concurrency limit is per process there and excludes nothing.
* With an MLflow tracking server the clients need not share a file system, so a lock file cannot be seen by all.
* A lock that is a *held transaction* dies with its holder: the kernel drops a dead process's SQLite (fcntl) locks, and
  PostgreSQL ends the session (and its transaction-scoped locks) when the client's connection closes. Nothing stale
  is left to expire or to clean up by hand, which a lease row with a TTL would need.

Backends (chosen by the lock URL, see :func:`default_lock_url`):

* SQLite (the default, beside the MLflow store but never inside the MLflow database itself, so that a held lock never
  blocks MLflow's own writes). SQLite locks a whole database file, not a row, so every model gets its own small lock
  file ``<folder>/<stem>.d/<model>-<hash>.db`` in which the holder keeps a ``BEGIN IMMEDIATE`` transaction open for
  the with-block; without that, a lock on one model would block the gate of every other model. SQLite file locks are
  only as good as the file system's: use PostgreSQL when the trainers do not share a local disk.
* PostgreSQL: ``pg_try_advisory_xact_lock`` on a 64-bit hash of the model name, polled inside a transaction that is
  held open for the with-block. An advisory lock rather than ``SELECT ... FOR UPDATE`` leaves the ``tuneline_locks``
  row itself free, so that the holder can *commit* its name there (see below) while the lock is held.

Both backends keep a register table ``tuneline_locks(name TEXT PRIMARY KEY, holder TEXT, acquired_at TEXT)`` in the
database named by the lock URL. The holder upserts and commits its row right after it acquired the lock and clears it
right before it releases it; a waiter that gives up reads it to say who holds the lock. The register is for people,
never for exclusion: the exclusion is the held transaction alone, so a stale row left by a killed process is harmless
(the next holder overwrites it).

When a Prefect API is configured (a real server), :func:`model_lock` also takes the global concurrency limit
``tuneline-gate-<model>`` (limit 1, created on first use), so that a gate waiting for another one shows in the Prefect
UI. It is taken *before* the database lock, by every process in the same order, so the two cannot deadlock.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from tuneline.errors import UserError
from tuneline.runtime import database_error, redact

logger = logging.getLogger(__name__)

LOCK_DB_NAME = "tuneline-locks.db"
LOCK_URL_ENV = "TUNELINE_LOCK_URL"
PREFECT_LIMIT_PREFIX = "tuneline-gate-"

# How long one attempt waits inside SQLite's busy handler (or between two PostgreSQL tries). Short, so that a waiter
# returns to Python often enough to honour Ctrl-C and its own deadline; SQLite's busy handler retries every few ms.
_POLL_S = 0.2
# The register is written in short transactions that may queue behind another process's register write.
_REGISTER_BUSY_S = 5.0

_CREATE_REGISTER = ("CREATE TABLE IF NOT EXISTS tuneline_locks "
                    "(name TEXT PRIMARY KEY, holder TEXT, acquired_at TEXT)")
# Valid in both SQLite (>= 3.24) and PostgreSQL.
_UPSERT_HOLDER = ("INSERT INTO tuneline_locks (name, holder, acquired_at) VALUES (:name, :holder, :at) "
                  "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at")
_CLEAR_HOLDER = ("UPDATE tuneline_locks SET holder = NULL, acquired_at = NULL "
                 "WHERE name = :name AND holder = :holder")
_READ_HOLDER = "SELECT holder, acquired_at FROM tuneline_locks WHERE name = :name"

_held = threading.local()  # the (url, name) pairs this thread holds: a nested take of the same one fails fast


class LockDatabaseError(UserError, ValueError):
    """The lock database's URL does not parse, or the database cannot be reached: one line, the URL's password
    hidden (a password with a raw ``@`` or ``:`` does not parse, and the error quoted the rest of it)."""


def _lock_database_error(doing: str, url: str, exc: BaseException) -> LockDatabaseError:
    return LockDatabaseError(f"{doing} {redact(url)}: {database_error(exc, url)}")


class LockTimeout(RuntimeError):
    """The gate lock of a model was not acquired in time; the message names the model, the lock database
    (credentials redacted) and the holder when the register knows it."""


@dataclass(frozen=True)
class LockInfo:
    """What :func:`model_lock` yields: the model, who holds the lock now (this process) and how long it waited."""

    name: str
    holder: str
    waited_s: float


def default_lock_url(tracking_uri: str) -> str:
    """The lock database for an MLflow tracking URI.

    * ``$TUNELINE_LOCK_URL`` when set, whatever the tracking URI: an operator's explicit choice always wins (as every
      default in :mod:`tuneline.runtime` gives way to the user's environment).
    * ``sqlite:///<dir>/mlflow.db`` → ``sqlite:///<dir>/tuneline-locks.db``: every process that shares the MLflow
      store file necessarily shares its folder, so they all find the same lock database; it is a separate file so
      that a held lock never blocks MLflow's own writes to its database.
    * Anything else (``http://...`` tracking server, ``postgresql://...`` store, ...) → ``sqlite:///<cwd>/tuneline-
      locks.db``. That only excludes processes started in the same folder on the same machine: tuneline cannot know a
      database that all clients of a remote server share, so a scaled setup must set ``$TUNELINE_LOCK_URL`` (for
      example a PostgreSQL URL that every trainer can reach).
    """
    return database_beside_store(tracking_uri, LOCK_DB_NAME, LOCK_URL_ENV)


def lock_url_is_shared(tracking_uri: str) -> bool:
    """Whether :func:`default_lock_url` names a database every run of the model shares by construction (set by
    ``$TUNELINE_LOCK_URL``, or beside a SQLite MLflow store), not the current folder's file, which only processes
    started in the same folder share."""
    return default_lock_url(tracking_uri) != _in_current_folder(LOCK_DB_NAME)


def database_beside_store(tracking_uri: str, filename: str, env_var: str) -> str:
    """``$<env_var>`` when set; else a SQLite file ``filename`` beside a SQLite MLflow store; else in the current
    folder (the rule of :func:`default_lock_url`, shared with the retraining ledger)."""
    configured = os.environ.get(env_var)
    if configured:
        return configured
    try:
        url = make_url(tracking_uri)
    except ArgumentError:
        url = None
    if url is not None and url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database).with_name(filename)
        return url.set(drivername="sqlite", database=str(path)).render_as_string(hide_password=False)
    return _in_current_folder(filename)


def _in_current_folder(filename: str) -> str:
    """The SQLite URL of ``filename`` in the current folder: the last resort of :func:`database_beside_store`."""
    return f"sqlite:///{Path.cwd() / filename}"


def default_holder() -> str:
    """``<hostname>:<pid>``: enough for a person to find the process that holds a lock."""
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def model_lock(name: str, url: str, *, timeout_s: float = 600.0, holder: str | None = None,
               use_prefect: bool = True) -> Iterator[LockInfo]:
    """Hold the exclusive gate lock of registered model ``name`` for the with-block, across processes.

    Blocks until acquired or raises :class:`LockTimeout` after ``timeout_s`` (the Prefect limit, when one is taken,
    and the database lock share that budget). Locks of different models never block each other. The lock is not
    re-entrant: taking the same model's lock again in the same thread raises :class:`RuntimeError` at once instead of
    waiting for itself until the timeout. ``use_prefect=False`` takes the database lock alone (for short local
    locks that are not a gate: the first open of a store, a checkpoint folder).
    """
    holder = holder or default_holder()
    parsed = _parse_lock_url(url)
    key = (parsed.render_as_string(hide_password=False), name)
    held: set[tuple[str, str]] = _held.__dict__.setdefault("keys", set())
    if key in held:
        raise RuntimeError(f"model_lock is not re-entrant: this thread already holds the gate lock of {name!r} "
                           f"in {redact(url)}")
    api_url = prefect_api_url() if use_prefect else None  # before the clock starts: loading Prefect's settings is not waiting for anyone
    started = time.monotonic()
    deadline = started + max(timeout_s, 0.0)
    with ExitStack() as stack:
        if api_url:
            stack.enter_context(_prefect_gate_slot(name, url, api_url, deadline, timeout_s))
        backend = _PostgresLock if parsed.get_backend_name() == "postgresql" else _SqliteLock
        stack.enter_context(backend(name, parsed, url, holder).held(deadline, timeout_s))
        held.add(key)
        stack.callback(held.discard, key)
        yield LockInfo(name=name, holder=holder, waited_s=time.monotonic() - started)


def _parse_lock_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise _lock_database_error("not a database URL for the gate lock:", url, exc) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError(f"an in-memory SQLite lock database excludes nothing across processes: {redact(url)}")
        return parsed
    if backend == "postgresql":
        return parsed
    raise ValueError(f"unsupported lock database {redact(url)}: use sqlite:///<file> or postgresql://...")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _DatabaseLock:
    """Shared by both backends: the wait loop, the register and the timeout message."""

    def __init__(self, name: str, parsed: URL, url: str, holder: str) -> None:
        self.name, self.parsed, self.url, self.holder = name, parsed, url, holder
        self.register = _register_engine(parsed)  # no connection is made until it is used

    # -- per backend --------------------------------------------------------------------------------------------
    def _open(self) -> None:
        """Prepare to try (engines, files)."""

    def _try_acquire(self) -> bool:
        """One bounded attempt; True when this process now holds the lock transaction."""
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        """Close what _open opened (the register engine is disposed by held())."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------------------------
    @contextmanager
    def held(self, deadline: float, timeout_s: float) -> Iterator[None]:
        try:
            self._open()  # (creates nothing that needs closing if it fails)
        except SQLAlchemyError as exc:
            self.register.dispose()
            raise _lock_database_error("cannot open the gate lock database", self.url, exc) from None
        try:
            announced = False
            while not self._try_acquire():
                if time.monotonic() >= deadline:
                    raise LockTimeout(_timeout_message(self.name, self.url, timeout_s,
                                                       _read_holder(self.register, self.name)))
                if not announced:
                    logger.info("waiting for the gate lock of model %r in %s (held by %s)", self.name,
                                redact(self.url), _describe_holder(_read_holder(self.register, self.name)))
                    announced = True
            try:
                self._write_register(_UPSERT_HOLDER, at=_now())
                yield
            finally:
                self._write_register(_CLEAR_HOLDER)  # while still holding, so it never clears a successor's row
                self._release()
        finally:
            self._close()
            self.register.dispose()

    def _write_register(self, statement: str, **extra: str) -> None:
        """Best effort: the register only tells people who holds a lock, the exclusion does not depend on it."""
        try:
            with self.register.begin() as conn:
                conn.execute(text(_CREATE_REGISTER))
                conn.execute(text(statement), {"name": self.name, "holder": self.holder, **extra})
        except Exception as exc:  # noqa: BLE001 - never let the register break a held lock
            logger.warning("could not update the lock register in %s: %s", redact(self.url), redact(exc))


def _register_engine(parsed: URL) -> Engine:
    """The engine of the register table: the database named by the lock URL itself."""
    if parsed.get_backend_name() == "sqlite":
        return create_engine(parsed.set(drivername="sqlite"), poolclass=NullPool,
                             connect_args={"timeout": _REGISTER_BUSY_S})
    return create_engine(parsed, poolclass=NullPool)  # NullPool: every use is its own connection and transaction


def _read_holder(register: Engine, name: str) -> tuple[str, str | None] | None:
    """The recorded holder and since when, or None (no row, cleared, or the register is unreadable)."""
    try:
        with register.connect() as conn:
            row = conn.execute(text(_READ_HOLDER), {"name": name}).first()
    except Exception:  # noqa: BLE001 - e.g. the table does not exist yet
        return None
    return (row[0], row[1]) if row is not None and row[0] else None


class _SqliteLock(_DatabaseLock):
    """``BEGIN IMMEDIATE`` on a per-model SQLite file, held open for the with-block."""

    def _open(self) -> None:
        self.lock_path = sqlite_lock_path(self.name, self.parsed)
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = _immediate_engine(self.lock_path, busy_s=_POLL_S)
        self.conn: Connection | None = None

    def _try_acquire(self) -> bool:
        conn = self.engine.connect()
        try:
            conn.begin()  # the "begin" hook issues BEGIN IMMEDIATE; SQLite's busy handler waits up to _POLL_S
        except OperationalError as exc:
            conn.close()
            if "locked" in str(exc) or "busy" in str(exc):
                return False
            raise
        self.conn = conn
        return True

    def _release(self) -> None:
        if self.conn is not None:
            self.conn.commit()  # nothing was written: this only ends the transaction and drops the RESERVED lock
            self.conn.close()
            self.conn = None

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.engine.dispose()


def sqlite_lock_path(name: str, url: str | URL) -> Path:
    """The file whose ``BEGIN IMMEDIATE`` transaction is the lock of model ``name`` under a SQLite lock URL.

    ``sqlite:///<dir>/tuneline-locks.db`` → ``<dir>/tuneline-locks.d/<model>-<hash>.db``: one file per model because
    SQLite locks whole files. Public so that an operator (and the tests) can find, e.g. with ``fuser``, who holds it.
    """
    database = make_url(url).database if isinstance(url, str) else url.database
    if not database or database == ":memory:":
        raise ValueError(f"not a SQLite lock file URL: {redact(url)}")
    register_path = Path(database)
    return register_path.with_name(f"{register_path.stem}.d") / f"{_slug(name)}.db"


def _immediate_engine(path: Path, *, busy_s: float) -> Engine:
    """An engine whose transactions start with ``BEGIN IMMEDIATE``.

    Python's sqlite3 module by default sends no BEGIN until the first INSERT/UPDATE and then a plain (deferred) one,
    which takes no lock at all: a "lock" built on it would exclude nothing. SQLAlchemy's documented recipe (pysqlite:
    "Serializable isolation / Savepoints / Transactional DDL") turns the driver's own transaction handling off and
    emits the BEGIN itself; tests/test_locking.py checks that the RESERVED lock is really taken.
    """
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool, connect_args={"timeout": busy_s})

    @event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_connection, _record) -> None:  # noqa: ANN001 - SQLAlchemy's hook signature
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class _PostgresLock(_DatabaseLock):
    """``pg_try_advisory_xact_lock`` on a hash of the model name, inside a transaction held for the with-block.

    Exercised by tests/test_locking.py against a throwaway PostgreSQL cluster (tests/services.py); the SQL is
    deliberately the smallest possible.
    """

    def _open(self) -> None:
        self.engine = create_engine(self.parsed, poolclass=NullPool)
        self.conn = self.engine.connect()
        # The holder's gate work runs on other connections (MLflow's), so this one sits idle in its transaction; a
        # server-side idle-in-transaction timeout would end the session and silently drop the lock mid-gate.
        self.conn.exec_driver_sql("SET idle_in_transaction_session_timeout = 0")
        self.conn.commit()
        self.key = _advisory_key(self.name)

    def _try_acquire(self) -> bool:
        if self.conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": self.key}).scalar():
            return True
        self.conn.rollback()  # do not sit idle in a transaction between two tries
        time.sleep(_POLL_S)
        return False

    def _release(self) -> None:
        self.conn.commit()  # ends the transaction, which releases the transaction-scoped advisory lock

    def _close(self) -> None:
        self.conn.close()
        self.engine.dispose()


def _advisory_key(name: str) -> int:
    """A signed 64-bit key (PostgreSQL's bigint) from the model name; a clash only serialises two gates."""
    return int.from_bytes(hashlib.sha256(f"tuneline-lock:{name}".encode()).digest()[:8], "big", signed=True)


def _slug(name: str) -> str:
    """A file name for any registered model name (which may hold ``/``, spaces, ...): readable part plus a hash,
    so that two names that slugify alike still get different files."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "model"
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


def _describe_holder(recorded: tuple[str, str | None] | None) -> str:
    if recorded is None:
        return "an unknown holder"
    who, since = recorded
    return f"{who} since {since}" if since else who


def _timeout_message(name: str, url: str, timeout_s: float, recorded: tuple[str, str | None] | None,
                     what: str | None = None) -> str:
    where = what or f"the lock database {redact(url)}"
    return (f"timed out after {timeout_s:g}s waiting for the gate lock of registered model {name!r} in {where}; "
            f"held by {_describe_holder(recorded)}")


def prefect_api_url() -> str | None:
    """The configured Prefect API URL (environment, profile or a test harness's settings), or None.

    None means the embedded default: each process would start its own temporary API, on which a concurrency limit
    excludes nothing across processes, so there is nothing to take.
    """
    try:
        from prefect.settings import get_current_settings
    except ImportError:  # pragma: no cover - prefect is a dependency
        return os.environ.get("PREFECT_API_URL") or None
    return get_current_settings().api.url or None


@contextmanager
def _prefect_gate_slot(name: str, url: str, api_url: str, deadline: float, timeout_s: float) -> Iterator[None]:
    """Hold the slot of Prefect's global concurrency limit ``tuneline-gate-<name>`` when a Prefect API is configured.

    It makes a waiting gate visible in the Prefect UI and queues gates that share a server; the database lock is what
    guarantees exclusion, so a Prefect API that fails (other than by a timeout) is logged and the lock goes on without
    it rather than blocking every gate on Prefect's availability.
    """
    limit_name = f"{PREFECT_LIMIT_PREFIX}{name}"
    from tuneline.events import prefect_api_answers

    if not prefect_api_answers(api_url):  # asked once, not retried for seconds by every client call below
        logger.warning("the Prefect API at %s does not answer: concurrency limit %r not taken, relying on the "
                       "database lock alone (start the API, or unset PREFECT_API_URL)", redact(api_url), limit_name)
        yield
        return
    with ExitStack() as stack:
        try:
            from prefect.concurrency.sync import concurrency

            _ensure_prefect_limit(limit_name)
            options: dict[str, object] = {"strict": True}  # the limit exists now: its absence must not pass silently
            if "raise_on_lease_renewal_failure" in inspect.signature(concurrency).parameters:
                # a transient renewal hiccup must not kill a gate that already holds the database lock
                options["raise_on_lease_renewal_failure"] = False
            stack.enter_context(concurrency(limit_name, occupy=1,
                                            timeout_seconds=max(deadline - time.monotonic(), 0.05), **options))
        except TimeoutError as exc:
            register = _register_engine(_parse_lock_url(url))
            try:
                recorded = _read_holder(register, name)
            finally:
                register.dispose()
            raise LockTimeout(_timeout_message(
                name, url, timeout_s, recorded,
                what=f"Prefect's concurrency limit {limit_name!r} on {redact(api_url)} (then {redact(url)})")) from exc
        except Exception as exc:  # noqa: BLE001 - see the docstring
            logger.warning("Prefect concurrency limit %r on %s not taken (%s); relying on the database lock alone",
                           limit_name, redact(api_url), redact(exc))
        yield


def _ensure_prefect_limit(limit_name: str) -> None:
    """Create the limit with ``limit=1`` unless it exists (an existing one is left as an operator set it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(limit_name)
            return
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=limit_name, limit=1))
        except ObjectAlreadyExists:  # another process created it between our read and our create
            pass


RETRAIN_LIMIT_PREFIX = "tuneline-retrain-"


def _prefect_limit_full(limit_name: str) -> bool:
    """Whether every slot of the limit is taken now (a read; False when it cannot be read: the wait is then silent)."""
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(limit_name)
        return limit.active_slots >= limit.limit
    except Exception:  # noqa: BLE001 - only the line depends on it
        return False


def _enter_at_once(stack: ExitStack, name: str, lock_url: str) -> str | None:
    """Enter lock ``name`` on ``stack`` if it is free now and return None; else whom it is held by. A holder clears
    the register as it leaves, so a lock found taken whose register names nobody was most likely just let go: it is
    tried once more before the caller says it waits for "an unknown holder" (then free a moment later)."""
    for attempt in range(2):
        try:
            stack.enter_context(model_lock(name, lock_url, timeout_s=0.0, use_prefect=False))
            return None
        except LockTimeout:
            register = _register_engine(_parse_lock_url(lock_url))
            recorded = _read_holder(register, name)
            register.dispose()
            if recorded is not None or attempt:
                return _describe_holder(recorded)
    return None  # not reached: the loop returns on its last attempt


@contextmanager
def retraining_slot(model: str, timeout_s: float = 3600.0, lock_url: str | None = None,
                    free_stale_slots: bool = False) -> Iterator[None]:
    """At most one retraining run per registered model at a time: the slot of Prefect's global concurrency limit
    ``tuneline-retrain-<model>`` (limit 1, created on first use), held for the whole run, when a Prefect API is
    configured (a server: scheduled, event-triggered and manual runs all share it; a queued run waits here and then
    finds its batches already taken). With the embedded per-process API (``tuneline retrain`` from a shell) the
    database lock ``<model> (retraining)`` in ``lock_url`` does it: two commands run at once trained side by side
    (the ledger kept each batch to one run, but a run retraining on the current data holds no batch), each at half
    speed on a small machine. The second one says whom it waits for.

    With a Prefect API the run also holds that database lock while it holds the slot, and with
    ``free_stale_slots`` (the lock database is shared by every run of the model: :func:`lock_url_is_shared`) a run
    that waits frees a slot no run holds (:func:`_free_a_slot_no_run_holds`)."""
    from tuneline.timings import WAITING, record

    if prefect_api_url() is None:
        if lock_url is None:
            yield
            return
        name = f"{model} (retraining)"
        with ExitStack() as stack:
            holder = _enter_at_once(stack, name, lock_url)
            if holder is not None:
                print(f"another retraining run of {model} is in progress ({holder}); this one waits for it to end "
                      f"(at most {timeout_s:g} s; Ctrl-C to stop waiting)", flush=True)
                started, clock = time.time(), time.perf_counter()
                stack.enter_context(model_lock(name, lock_url, timeout_s=timeout_s, use_prefect=False))
                record(WAITING, started, time.perf_counter() - clock)  # the run's time line: not "startup"
            yield
        return
    from prefect.concurrency.sync import concurrency

    limit_name = f"{RETRAIN_LIMIT_PREFIX}{_slug(model)}"
    _ensure_prefect_limit(limit_name)
    options: dict[str, object] = {"strict": True}
    if "raise_on_lease_renewal_failure" in inspect.signature(concurrency).parameters:
        # a Prefect API restarted or out of reach for a moment must not kill an hour of training: Prefect's default
        # ends the run ("Concurrency lease renewal failed ... Terminating execution", operator QA); the database
        # lock below keeps the runs apart whatever the slot's lease does
        options["raise_on_lease_renewal_failure"] = False
    # two stacks so that the slot is let go before the database lock: released the other way round, a waiter that
    # looked between the two releases found the lock free and the slot still counted, and freed a live run's slot
    # (CI, on a loaded machine); this way a slot is never held by a run without the lock except while it takes it
    with ExitStack() as lock_stack, ExitStack() as stack:
        started, clock = time.time(), time.perf_counter()
        full = _prefect_limit_full(limit_name)
        if full:  # a command that waited minutes without a word read as hung
            print(f"another retraining run of {model} holds the Prefect concurrency limit {limit_name!r}; this one "
                  f"waits for it to end (at most {timeout_s:g} s; Ctrl-C to stop waiting)", flush=True)
        deadline = time.monotonic() + timeout_s
        with _tagged_waiting() if full else nullcontext(), _quiet_slot_wait_timeouts():
            while True:
                try:
                    stack.enter_context(concurrency(limit_name, occupy=1, **options, timeout_seconds=max(
                        min(deadline - time.monotonic(), STALE_SLOT_CHECK_S), 0.05)))
                    break
                except TimeoutError:
                    if time.monotonic() >= deadline:
                        raise
                    if lock_url is not None and free_stale_slots:
                        _free_a_slot_no_run_holds(model, limit_name, lock_url)
        if lock_url is not None:  # every holder of the slot holds this too: how a waiter tells a leaked slot
            lock_stack.enter_context(model_lock(f"{model} (retraining)", lock_url,
                                           timeout_s=max(deadline - time.monotonic(), 0.0), use_prefect=False))
        if (waited := time.perf_counter() - clock) >= 1.0:  # a slot taken at once costs a request, not a wait
            record(WAITING, started, waited)
        yield


#: the tag a retraining flow run wears while it waits for its model's slot: it has claimed no batch yet and takes
#: every free one when it gets the slot, so ``tuneline watch`` counts it as queued, not as a run that has claimed
WAITING_FOR_SLOT_TAG = "tuneline.waiting-for-slot"


@contextmanager
def _tagged_waiting() -> Iterator[None]:
    """The current flow run (if any) wears :data:`WAITING_FOR_SLOT_TAG` inside. Prod-stack QA: ``watch --once``
    beside a Running run that waited for the slot announced the free batch as one "no retraining run is queued
    for", and the extra run it woke found nothing to do. Best effort: a tag that cannot be set costs that line only."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    run_id = flow_run.id

    def tag(add: bool) -> None:
        try:
            with get_client(sync_client=True) as client:
                tags = [t for t in client.read_flow_run(run_id).tags if t != WAITING_FOR_SLOT_TAG]
                client.update_flow_run(run_id, tags=tags + [WAITING_FOR_SLOT_TAG] if add else tags)
        except Exception as error:  # noqa: BLE001 - only the watcher's line depends on it
            logging.getLogger("tuneline").debug("could not tag flow run %s (%s)", run_id, error)

    if run_id is None:
        yield
        return
    tag(True)
    try:
        yield
    finally:
        tag(False)


class _SlotWaitTimeouts(logging.Filter):
    """Drops Prefect's ``Service 'ConcurrencySlotAcquisitionWithLeaseService' failed to process item (...
    TimeoutError>)``: logged at ERROR each time a wait for a slot times out, it printed once a minute while a
    retraining run waited its turn (each wait is :data:`STALE_SLOT_CHECK_S` long), for a wait the run had already
    said it does, and the timeout that ends the wait is raised and told by tuneline itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - logging reports a malformed record itself
            return True
        return not ("ConcurrencySlotAcquisition" in message and "raised TimeoutError" in message)


@contextmanager
def _quiet_slot_wait_timeouts() -> Iterator[None]:
    target, quiet = logging.getLogger("prefect._internal.concurrency"), _SlotWaitTimeouts()
    target.addFilter(quiet)
    try:
        yield
    finally:
        target.removeFilter(quiet)


#: how often a retraining run waiting for the Prefect slot checks that a live run holds it (seconds)
STALE_SLOT_CHECK_S = 60.0
#: a slot is freed only when no run held the database lock at two looks this far apart (a holder takes the lock
#: right after the slot: milliseconds)
STALE_SLOT_CONFIRM_S = 5.0


#: why a slot is counted with no run holding it: both causes, as neither can be told from the other here (operator
#: QA: a worker killed mid-run was blamed on a server restart, on a server that kept its leases)
UNHELD_SLOT_CAUSES = ("its run was killed and Prefect's lease on the slot has not run out yet (up to 5 minutes), or "
                      "a Prefect server restart forgot the lease")


def _no_run_holds(model: str, lock_url: str) -> bool:
    """Whether no retraining run of ``model`` held the database lock ``<model> (retraining)`` at two looks
    :data:`STALE_SLOT_CONFIRM_S` apart (a holder takes it milliseconds after the slot, and lets go of it after)."""
    name = f"{model} (retraining)"
    for look in range(2):
        with ExitStack() as probe:
            if _enter_at_once(probe, name, lock_url) is not None:
                return False
        if not look:
            time.sleep(STALE_SLOT_CONFIRM_S)
    return True


def unheld_retraining_slot(model: str, tracking_uri: str, fix: bool = False) -> str | None:
    """For ``tuneline doctor``: a line when the Prefect limit ``tuneline-retrain-<model>`` is full and no retraining
    run of ``model`` holds it (:func:`_free_a_slot_no_run_holds`; with ``fix``, one slot is freed), else None. None
    also when there is no Prefect API, no such limit, or no lock database shared by every run to tell by."""
    from tuneline.events import prefect_api_answers

    api_url = prefect_api_url()
    if api_url is None or not lock_url_is_shared(tracking_uri) or not prefect_api_answers(api_url):
        return None
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    limit_name = f"{RETRAIN_LIMIT_PREFIX}{_slug(model)}"
    try:
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(limit_name)
    except ObjectNotFound:
        return None
    if limit.active_slots < limit.limit or not _no_run_holds(model, default_lock_url(tracking_uri)):
        return None
    said = (f"Prefect concurrency limit {limit_name!r} on {redact(api_url)} has {limit.active_slots} of {limit.limit} "
            f"slot(s) taken, but no retraining run of {model} holds one ({UNHELD_SLOT_CAUSES})")
    if not fix:
        return said + " (--fix frees one; a retraining run that waits for it frees it within a minute)"
    if _free_one_slot(limit_name):
        return said + ": one freed"
    return said + ": not freed (a run took it meanwhile, or the API refused: see the warning above)"


def _free_a_slot_no_run_holds(model: str, limit_name: str, lock_url: str) -> bool:
    """Free one slot of the full limit ``limit_name`` when no retraining run of ``model`` holds the database lock
    ``<model> (retraining)``, which every holder of the slot takes right after it, at two looks
    :data:`STALE_SLOT_CONFIRM_S` apart; True when a slot was freed.

    Why: Prefect keeps a slot's lease in its server's memory by default. A ``prefect server`` restart forgets the
    lease but not the slot it counts, so the slot of the run that held it is never freed, and every later retraining
    run waited "for another retraining run" that did not exist, an hour each, until someone reset the limit by hand
    (operator QA). The database lock is released by the database when its holder's connection ends, however it
    ends. A slot freed wrongly costs nothing but the count: the runs still queue on the database lock."""
    if not _no_run_holds(model, lock_url):
        return False  # a live run holds it: the slot is its own
    if not _free_one_slot(limit_name):
        return False
    print(f"freed a slot of the Prefect concurrency limit {limit_name!r} that no retraining run of {model} holds "
          f"({UNHELD_SLOT_CAUSES}; see the README on PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE)", flush=True)
    return True


def _free_one_slot(limit_name: str) -> bool:
    """One slot of ``limit_name`` freed, if it is still full; False when it is not, or the API refused (logged)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    try:
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(limit_name)
            if limit.active_slots < limit.limit:
                return False  # freed meanwhile (its lease ran out, or its holder let go)
            client.update_global_concurrency_limit(limit_name, GlobalConcurrencyLimitUpdate(
                active_slots=max(limit.active_slots - 1, 0)))
    except Exception as exc:  # noqa: BLE001 - the wait goes on, and says why the slot stays taken
        logger.warning("could not free the slot of Prefect's concurrency limit %r: %s", limit_name, redact(exc))
        return False
    return True
