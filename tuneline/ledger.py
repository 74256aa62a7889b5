"""The batch ledger of the retraining loop: every landed batch, by content hash, and where it is in its life.

Labeled batches land in a landing folder. The ledger records each complete one once, by the SHA-256 of its content,
and moves it through these states::

    landed               --claim-->          claimed     (held by one run under a lease)
    claimed              --mark_validated--> validated   (still held by the run)
    claimed | validated  --mark_rejected-->  rejected    final: never claimed again (reasons, quarantine)
    validated            --mark_used-->      used        final: used by run X / model version Y
    used | validated     --mark_dropped-->   dropped     final: a person took its rows back out of the data
                                                         (``tuneline data drop``); never claimed again
    claimed              --release-->        landed      (a failed run gives it back)
    validated            --release-->        validated   (free again; its validation is kept)
    duplicate                                            final: the same content landed again under another name;
                                                         it points at the first and is never processed

so that a batch is processed **exactly once**: a file landing twice, a renamed copy, a watcher restart or a run killed
mid-way never duplicates or loses a batch, and a restarted run picks up what was not finished.

Completeness rule (the one rule the landing folder follows)
------------------------------------------------------------
A batch counts only once its producer has said it is complete, with a **marker**:

* a file batch ``<name>`` (``batch-07.csv``) is complete when the empty marker file ``<name>.done``
  (``batch-07.csv.done``) exists beside it;
* a folder batch (a direct sub-folder of the landing folder, e.g. a Spark job's output) is complete when it holds a
  ``_SUCCESS`` file; its data are all files below it whose path has no ignored part (see below);
* and in both cases no data file may be newer than its marker (modification times): a producer that rewrites a batch
  after marking it must touch the marker again, and until it does, the half-rewritten batch is not read.

A producer therefore writes the data first and the marker last. Ignored always, marker or not: names starting with
``.`` or ``_`` (hidden and temporary files, Spark's ``_committed_*``/``_started_*``) and names ending with ``.tmp``,
``.part`` or ``.done``. A file is hashed, then looked at again; if it changed while it was hashed it is left for the
next scan. Partial files are never recorded.

Identity: a *landing* is a (path, content hash) pair. Scanning the same landing again records nothing (``scan`` is
idempotent, and a file that is only touched again, or re-delivered with the same bytes under the same name, is the
same landing: never recorded twice, never processed again). The same content under another path is recorded once as a
``duplicate`` of the first batch with that hash, whatever state that one is in. New content under an old path (the
producer replaced ``batch-07.csv`` and touched its marker) is a new batch. A folder's content hash is taken over its
files' hashes (not their names, so a re-run of the same job with other part-file names is a duplicate).

A run reads a batch only through :func:`fetch_batch`: a copy in the dataset folder, hashed as it is copied and
checked against the recorded hash. A file changed or removed after it landed (a producer rewriting it in place) is
therefore never read as the recorded batch: the run rejects that batch, saying so, and the new content, once its
marker is touched again, is a new batch.

Claims and leases
-----------------
:meth:`Ledger.claim` hands a run every free batch at once (a burst that landed together is folded into one claim and
so one retraining run). A claim is a lease (``lease_s``, 10 minutes by default) that the run renews with
:meth:`Ledger.heartbeat`; a batch is free when it is ``landed``, or ``claimed``/``validated`` with no live lease (its
run died, or gave it back with :meth:`Ledger.release`). A ``validated`` batch taken over from a dead run stays
``validated``: its validation (row counts, quarantine) is not redone. ``rejected`` and ``used`` are final.

Every transition is one transaction that changes a row only if it is still in the state the transition starts from
(compare-and-set, checked by the row count; claims compare a per-row version counter), and writes one row of the
append-only history (:meth:`Ledger.history`) in the same transaction. Two claimers therefore never get the same batch,
and a run whose lease was taken over cannot validate, reject, use or release batches that are no longer its own.
Leases compare the clients' clocks, which must agree to well within ``lease_s`` (NTP).

Storage
-------
Tables ``tuneline_batches`` and ``tuneline_batch_events`` in the database named by the ledger URL; one URL may hold the
ledgers of many registered models (every row carries its ``model``; each :class:`Ledger` sees only its own).
Defined with SQLAlchemy Core, so the DDL and statements are rendered for each dialect:

* SQLite (the default, ``tuneline-ledger.db`` beside the MLflow store, see :func:`default_ledger_url`): every
  transaction starts with ``BEGIN IMMEDIATE``, so transactions of all processes run one after the other (they are a
  few milliseconds long) and the busy timeout is the wait. SQLite is only as good as its file system's locks: use
  PostgreSQL when the processes do not share a local disk.
* PostgreSQL (the scaled setup): READ COMMITTED; a compare-and-set ``UPDATE`` re-checks its ``WHERE`` on the newest row
  version after waiting for a concurrent one, and the unique indexes settle two scanners that record one hash at once.

A ledger URL may hold a password; every message, log line and ``repr`` shows it redacted
(:func:`tuneline.runtime.redact`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    event,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from tuneline.errors import UserError
from tuneline.interrupts import deferred_interrupts
from tuneline.locking import database_beside_store
from tuneline.runtime import database_error, encoding_hint, has_credentials, redact, redact_for

logger = logging.getLogger(__name__)

LEDGER_DB_NAME = "tuneline-ledger.db"
LEDGER_URL_ENV = "TUNELINE_LEDGER_URL"
DEFAULT_LEASE_S = 600.0
MARKER_SUFFIX = ".done"
FOLDER_MARKER = "_SUCCESS"
IGNORED_PREFIXES = (".", "_")
IGNORED_SUFFIXES = (".tmp", ".part", MARKER_SUFFIX)

LANDED, CLAIMED, VALIDATED, REJECTED, USED = "landed", "claimed", "validated", "rejected", "used"
DUPLICATE, DROPPED = "duplicate", "dropped"
STATES = (LANDED, CLAIMED, VALIDATED, REJECTED, USED, DUPLICATE, DROPPED)
_HELD = (CLAIMED, VALIDATED)  # the states in which a run holds a batch under a lease

_SCAN_RETRIES = 3  # a unique-index clash (two scanners recording one hash at once) is retried, then it is a bug


class LedgerError(UserError):
    """The ledger cannot be opened or used as asked; the message names the ledger (credentials redacted)."""


class BatchChanged(UserError):
    """A recorded batch can no longer be read as it landed: its files changed or were removed after the ledger
    recorded their content hash. Reading it anyway would train on rows the ledger never recorded (or lose some), so
    the batch is rejected with this message; new content at the same path is a new batch once its marker is touched."""


class LedgerConflict(LedgerError):
    """A transition's compare-and-set found the batch elsewhere than it must start from (another run took it over,
    it was already validated/rejected/used, or no such batch); nothing was changed."""


# --------------------------------------------------------------------------------------------------------------
# schema


class _UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend: PostgreSQL stores ``timestamptz``; SQLite, which has no time
    zones, stores naive UTC text (fixed width, so text order is time order) and gets UTC attached on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the ledger stores only timezone-aware datetimes")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


_metadata = MetaData()

BATCHES = Table(
    "tuneline_batches", _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(255), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("kind", String(16), nullable=False),           # file | folder
    Column("format", String(32)),                          # csv, tsv, jsonl, parquet, conll (None: unknown)
    Column("size_bytes", BigInteger, nullable=False),
    Column("files", Integer, nullable=False),
    Column("stat_key", Text),                              # size/mtimes when last hashed: skip re-hashing
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False, default=0),  # bumped by every transition: compare-and-set
    Column("duplicate_of", Integer, ForeignKey("tuneline_batches.id")),
    Column("landed_at", _UTCDateTime, nullable=False),
    Column("claimed_by", Text),
    Column("claimed_at", _UTCDateTime),
    Column("lease_expires_at", _UTCDateTime),
    Column("rows_accepted", Integer),
    Column("rows_rejected", Integer),
    Column("quarantine_path", Text),
    Column("reasons", Text),                               # JSON list of strings
    Column("used_by_run", Text),
    Column("model_version", Text),
    Column("used_at", _UTCDateTime),
    Column("updated_at", _UTCDateTime, nullable=False),
)
# One landing (path, content) is recorded once; one content is an original batch once per model (the rest are
# duplicates). Partial unique indexes exist in both SQLite (>= 3.8) and PostgreSQL.
Index("ux_tuneline_batches_landing", BATCHES.c.model, BATCHES.c.path, BATCHES.c.content_hash, unique=True)
Index("ux_tuneline_batches_original", BATCHES.c.model, BATCHES.c.content_hash, unique=True,
      sqlite_where=BATCHES.c.state != DUPLICATE, postgresql_where=BATCHES.c.state != DUPLICATE)
Index("ix_tuneline_batches_state", BATCHES.c.model, BATCHES.c.state)

EVENTS = Table(
    "tuneline_batch_events", _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(255), nullable=False),
    Column("batch_id", Integer, ForeignKey("tuneline_batches.id"), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("from_state", String(16)),                      # None: recorded by a scan
    Column("to_state", String(16), nullable=False),
    Column("run_id", Text),
    Column("at", _UTCDateTime, nullable=False),
    Column("detail", Text),
)
Index("ix_tuneline_batch_events_batch", EVENTS.c.model, EVENTS.c.batch_id)


# --------------------------------------------------------------------------------------------------------------
# public records


@dataclass(frozen=True)
class Batch:
    """One recorded landing: an original batch, or a ``duplicate`` of one (``duplicate_of`` is the original's id)."""

    id: int
    model: str
    content_hash: str
    path: str
    kind: str
    format: str | None
    size_bytes: int
    files: int
    state: str
    duplicate_of: int | None
    landed_at: datetime
    claimed_by: str | None
    claimed_at: datetime | None
    lease_expires_at: datetime | None
    rows_accepted: int | None
    rows_rejected: int | None
    quarantine_path: str | None
    reasons: tuple[str, ...]
    used_by_run: str | None
    model_version: str | None
    used_at: datetime | None
    updated_at: datetime

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass(frozen=True)
class BatchEvent:
    """One transition in the append-only history: ``from_state`` is None when a scan recorded the batch."""

    batch_id: int
    content_hash: str
    from_state: str | None
    to_state: str
    run_id: str | None
    at: datetime
    detail: str | None


# --------------------------------------------------------------------------------------------------------------
# URLs


def default_ledger_url(tracking_uri: str) -> str:
    """The ledger database for an MLflow tracking URI (the same rule as :func:`tuneline.locking.default_lock_url`).

    * ``$TUNELINE_LEDGER_URL`` when set, whatever the tracking URI.
    * ``sqlite:///<dir>/mlflow.db`` → ``sqlite:///<dir>/tuneline-ledger.db``: beside the MLflow store, never inside it.
    * Anything else (an ``http://`` tracking server, whose database clients do not know) → ``sqlite:///<cwd>/
      tuneline-ledger.db``; a scaled setup sets ``$TUNELINE_LEDGER_URL`` (or ``ledger.url``) to a shared PostgreSQL.
    """
    return database_beside_store(tracking_uri, LEDGER_DB_NAME, LEDGER_URL_ENV)


def ledger_url_for(configured: str | None, tracking_uri: str) -> str:
    """``ledger.url`` from the config (``${VAR}`` references expanded), else :func:`default_ledger_url`."""
    from tuneline.runtime import expand_env

    return expand_env(configured) if configured else default_ledger_url(tracking_uri)


def sqlite_file_missing(url: str) -> bool:
    """True for a SQLite ledger URL whose file does not exist yet: a read-only command says "nothing yet" instead
    of opening it, which would create the file and its tables."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return False
    return (parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
            and not Path(parsed.database).expanduser().exists())


def _open_engine(url: str, busy_timeout_s: float) -> Engine:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise LedgerError(f"not a database URL for the batch ledger: {redact(url)} ({redact_for(exc, url)})"
                          f"{encoding_hint(url)}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise LedgerError(f"an in-memory SQLite ledger is private to one connection and forgets everything: "
                              f"{redact(url)}; use sqlite:///<file>")
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, poolclass=NullPool, connect_args={"timeout": busy_timeout_s})

        # SQLAlchemy's documented pysqlite recipe: the driver's own (deferred, late) BEGIN is turned off and every
        # transaction starts with BEGIN IMMEDIATE, i.e. takes the write lock first. A deferred transaction that reads
        # and then writes could fail at once with "database is locked" when another one wrote in between.
        @event.listens_for(engine, "connect")
        def _driver_autocommit(dbapi_connection, _record) -> None:  # noqa: ANN001 - SQLAlchemy's hook signature
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if backend == "postgresql":
        return create_engine(parsed, poolclass=NullPool)
    raise LedgerError(f"unsupported ledger database {redact(url)}: use sqlite:///<file> or postgresql://...")


# --------------------------------------------------------------------------------------------------------------
# the landing folder


@dataclass(frozen=True)
class _Landing:
    path: str                  # the batch's name in its file system (no protocol)
    kind: str
    files: tuple[str, ...]
    marker: str
    stat_key: str

    @property
    def size_bytes(self) -> int:
        return sum(size for size, _mtime in json.loads(self.stat_key)[:-1])


def landing_filesystem(landing: Path | str) -> tuple[Any, str]:
    """The fsspec file system and root of a landing folder: a local path, or any fsspec URL whose file system
    package is installed (``s3://``, ``gs://``, ``abfs://``, ``memory://``, ...)."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(str(landing))
    except (ImportError, ValueError) as exc:
        raise LedgerError(f"cannot open the landing folder {redact(landing)}: {exc} (install the fsspec file "
                          "system package for its protocol, e.g. s3fs for s3://)") from None


def is_local(fs: Any) -> bool:
    return "file" in ((fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol))


def _base(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def _ignored(name: str) -> bool:
    return name.startswith(IGNORED_PREFIXES) or name.endswith(IGNORED_SUFFIXES)


def _not_in_batch(relative: str) -> bool:
    """Whether a file of a batch folder (its path inside the folder) is no part of the batch's data: ignored (a
    marker, a hidden or temporary file) or a file datasets ship beside their data (a README, Hugging Face's
    ``dataset_info.json``: :func:`tuneline.shards.not_data_file`), as a configured data folder skips them."""
    from tuneline.shards import not_data_file

    parts = relative.strip("/").split("/")
    return any(_ignored(part) for part in parts) or not_data_file(parts[-1])


def _mtime(info: dict[str, Any]) -> int:
    """Modification time in ns from an fsspec ``info`` (the key differs by file system)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created", "modified"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, datetime):
            return int(value.timestamp() * 1e9)
        if isinstance(value, str):
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
        return int(float(value) * 1e9)
    return 0


def _stat_key(fs: Any, files: Sequence[str], marker: str) -> str | None:
    """Sizes and modification times of the data and the marker, or None when a file vanished meanwhile."""
    try:
        stats = [fs.info(f) for f in files]
        marker_mtime = _mtime(fs.info(marker))
    except FileNotFoundError:
        return None
    return json.dumps([[int(s.get("size") or 0), _mtime(s)] for s in stats] + [marker_mtime])


def _complete(fs: Any, files: Sequence[str], marker: str) -> str | None:
    """The stat key when the batch is complete under the marker rule (no data file newer than its marker)."""
    key = _stat_key(fs, files, marker)
    if key is None:
        return None
    *data, marker_mtime = json.loads(key)
    return key if all(mtime <= marker_mtime for _size, mtime in data) else None


def _complete_landings(fs: Any, root: str) -> list[_Landing]:
    """The complete batches under ``root`` under the completeness rule (module docstring), in landing order: by
    their marker's modification time, then name. Two copies landed in one scan are told apart by it: the one that
    landed first is the original and the later one the copy (name order blamed whichever sorted second)."""
    found: list[_Landing] = []
    entries = sorted(fs.ls(root, detail=True), key=lambda e: e["name"])
    names = {_base(e["name"]) for e in entries}
    for entry in entries:
        name = entry["name"].rstrip("/")
        if _ignored(_base(name)):
            continue
        if entry["type"] == "file":
            if _base(name) + MARKER_SUFFIX not in names:
                continue
            marker = f"{name}{MARKER_SUFFIX}"
            if (key := _complete(fs, [name], marker)) is not None:
                found.append(_Landing(name, "file", (name,), marker, key))
        elif entry["type"] == "directory":
            marker = f"{name}/{FOLDER_MARKER}"
            if not fs.isfile(marker):
                continue
            files = tuple(sorted(f for f in fs.find(name) if not _not_in_batch(f[len(name):])))
            if (key := _complete(fs, files, marker)) is not None:
                found.append(_Landing(name, "folder", files, marker, key))
    return sorted(found, key=lambda landing: (json.loads(landing.stat_key)[-1], landing.path))


def waiting_landings(landing: Path | str, limit: int = 5,
                     recorded: Iterable[str] | Mapping[str, str] = ()) -> list[str]:
    """What in ``landing`` looks like a batch but is not complete under the marker rule, as ``name (why)``: a data
    file without its ``.done`` marker, a folder without ``_SUCCESS``, data newer than its marker. Said when a
    retraining run finds nothing new, so a producer that forgot its marker is told instead of ignored.

    ``recorded``: the names of batches the ledger holds as used (or dropped); a marker left behind by one of them,
    whose data file a clean-up removed after the batch was taken, waits for nothing (it had been listed as "not read
    yet" by every run). A rejected batch's leftover marker is still named: its producer has something to fix. Given as
    a mapping of names to ledger states (:meth:`Ledger.recorded_states`), a file edited after the loop copied it
    (validated, used or dropped) is named with what that means: the loop reads the copy, never the edit, and
    touching the marker again only landed the edit as a new batch whose changed labels conflict with the old ones
    (operator QA: the advice had been "touch the marker again", beside "batches used" naming the same file).
    Data whose modification time is in the future (a producer's clock ahead of this machine's) stays newer than any
    marker touched here, so the advice to touch the marker again never helped: it is named as such."""
    import time

    fs, root = landing_filesystem(landing)
    if not fs.isdir(root):
        return []
    states = dict(recorded) if isinstance(recorded, Mapping) else {str(name): USED for name in recorded}
    taken = {str(name).rstrip("/") for name, state in states.items() if state in (USED, DROPPED)}
    copied = {str(name).rstrip("/"): state for name, state in states.items() if state in (VALIDATED, USED, DROPPED)}
    complete = {item.path.rstrip("/") for item in _complete_landings(fs, root)}
    entries = sorted(fs.ls(root, detail=True), key=lambda e: e["name"])
    names = {_base(e["name"]) for e in entries}
    waiting: list[str] = []
    for entry in entries:
        name = entry["name"].rstrip("/")
        base = _base(name)
        if base.endswith(MARKER_SUFFIX) and not base.startswith(IGNORED_PREFIXES) and entry["type"] == "file" \
                and base[: -len(MARKER_SUFFIX)] not in names:  # a marker whose data is missing or named otherwise
            if base[: -len(MARKER_SUFFIX)] in taken:
                continue
            waiting.append(f"{base} (a marker without {base[: -len(MARKER_SUFFIX)]} beside it: the data file is "
                           f"missing or named otherwise; a marker is the data file's name plus {MARKER_SUFFIX})")
            continue
        if _ignored(base) or name in complete:
            continue
        if entry["type"] == "file":
            future = _mtime(entry) > (time.time() + 60) * 1e9  # a minute's leeway for clocks a little apart
            why = (f"no {base}{MARKER_SUFFIX} beside it" if base + MARKER_SUFFIX not in names
                   else f"its modification time is in the future (the producer's clock is ahead of this machine's?), "
                        f"so it stays newer than {base}{MARKER_SUFFIX}: touch {base}, then its marker"
                   if future else _edited_after_copy(base, copied[base]) if base in copied
                   else f"changed after {base}{MARKER_SUFFIX}: touch the marker again")
        elif entry["type"] == "directory":
            why = (f"a file changed after its {FOLDER_MARKER}: touch the marker again"
                   if fs.isfile(f"{name}/{FOLDER_MARKER}") else
                   f"no {FOLDER_MARKER} in it: a folder is complete with an empty {FOLDER_MARKER} inside, not "
                   f"{base}{MARKER_SUFFIX} beside it" if base + MARKER_SUFFIX in names else f"no {FOLDER_MARKER} in it")
        else:
            continue
        waiting.append(f"{base} ({why})")
    return waiting[:limit] + ([f"{len(waiting) - limit} more"] if len(waiting) > limit else [])


def _edited_after_copy(name: str, state: str) -> str:
    """Why a landing file edited after the ledger copied it (a batch now ``state``) is not read, and what to do."""
    return (f"changed after the loop took its copy, a batch now {state}: the loop reads that copy, never this edit; "
            "to correct labels use `tuneline data relabel` (rows already landed), or land the corrected rows as a "
            f"new file; restore {name} as it was to silence this")


def _sha256(fs: Any, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _batch_digest(files_kind: str, hashes: Sequence[str]) -> str:
    """A batch's content hash from its files' hashes: a file's own; a folder's over its files' hashes, not their
    names (the one rule :meth:`Ledger.scan` records and :func:`fetch_batch` checks)."""
    from tuneline.common import sha256_text  # imported here: tuneline.common imports Prefect

    if files_kind == "file" and hashes:
        return hashes[0]
    return sha256_text("tuneline-folder-batch", *sorted(hashes))


def _content(fs: Any, item: _Landing, data_format: str) -> tuple[str, str | None, list[str]]:
    """Content hash, format and rejection reasons (empty when the batch can be read)."""
    from tuneline.readers import DataLoadError, detect_format

    hashes = [_sha256(fs, f) for f in item.files]
    if not item.files:
        return _batch_digest("folder", []), None, [f"the batch folder {item.path} holds no data files"]
    digest = _batch_digest(item.kind, hashes)
    formats: set[str] = set()
    for f in item.files:
        try:
            formats.add(detect_format(Path(_base(f)), data_format))
        except DataLoadError as exc:
            return digest, None, [str(exc)]
    if len(formats) > 1:
        return digest, None, [f"the batch folder {item.path} mixes formats {sorted(formats)}; one batch, one format"]
    return digest, formats.pop(), []


def _copy_batch(fs: Any, root: str, files_kind: str, into: Path) -> str:
    """Copy a batch's data files (a folder's without its ignored files) under ``into`` and return the content hash of
    what was copied, hashed as it was written: the bytes later read are the bytes hashed, whatever happens to the
    landing folder meanwhile. FileNotFoundError when the batch is gone."""
    if files_kind == "file":
        files = [(root, _base(root))]
    else:
        if not fs.isdir(root):
            raise FileNotFoundError(root)
        files = [(f, f[len(root):].strip("/")) for f in sorted(fs.find(root))]
        files = [(f, relative) for f, relative in files if not _not_in_batch(relative)]
    hashes = []
    for source, relative in files:
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with fs.open(source, "rb") as handle, target.open("wb") as out:
            while block := handle.read(1 << 20):
                digest.update(block)
                out.write(block)
        hashes.append(digest.hexdigest())
    return _batch_digest(files_kind, hashes)


def _changed(batch_path: str, files_kind: str, recorded: str, now: str | None) -> str:
    """What to tell about a batch whose recorded content is no longer at its path (``now``: None when it is gone)."""
    what = "file" if files_kind == "file" else "folder"
    marker = f"{_base(batch_path)}{MARKER_SUFFIX}" if files_kind == "file" else f"its {FOLDER_MARKER}"
    if now is None:
        return (f"{what} {redact(batch_path)} no longer exists: it was removed after it landed, before a run read "
                f"it, so none of its rows were used; to use them, land them as a new batch (the identical bytes "
                f"again would be a duplicate of this rejected batch)")
    return (f"{what} {redact(batch_path)} changed after it landed (recorded sha256 {recorded[:12]}…, now "
            f"{now[:12]}…): the recorded content is gone, so it is not used; once the new content is complete, "
            f"touch {marker} again and it lands as a new batch")


def fetch_batch(batch_path: str, files_kind: str, cache: Path, content_hash: str | None = None) -> list[Path]:
    """The local files of a recorded batch, as it landed: a copy under ``cache`` (named by the batch's content hash by
    the caller), made once and kept; later reads use the copy.

    Local batches are copied too, not read in place: a producer may rewrite a landed file (or be half-way through),
    and a run must read the bytes the ledger recorded or none. The copy is hashed as it is written; with
    ``content_hash`` (the recorded one) a copy with another hash is thrown away and :class:`BatchChanged` says what
    changed, as it does when the batch's files are gone. Only a checked copy is ever renamed to ``cache``.
    """
    target = Path(cache)
    if not target.is_dir():
        fs, root = landing_filesystem(batch_path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            try:
                digest = _copy_batch(fs, root, files_kind, tmp)
            except FileNotFoundError:
                raise BatchChanged(_changed(batch_path, files_kind, content_hash or "", None)) from None
            if content_hash is not None and digest != content_hash:
                raise BatchChanged(_changed(batch_path, files_kind, content_hash, digest))
            try:
                os.replace(tmp, target)
            except OSError:
                if not target.is_dir():  # else another process copied the same checked content first
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return sorted(f for f in target.rglob("*") if f.is_file())


# --------------------------------------------------------------------------------------------------------------
# the ledger


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _batch(row: Row) -> Batch:
    m = row._mapping
    return Batch(
        id=m["id"], model=m["model"], content_hash=m["content_hash"], path=m["path"], kind=m["kind"],
        format=m["format"], size_bytes=m["size_bytes"], files=m["files"], state=m["state"],
        duplicate_of=m["duplicate_of"], landed_at=m["landed_at"], claimed_by=m["claimed_by"],
        claimed_at=m["claimed_at"], lease_expires_at=m["lease_expires_at"], rows_accepted=m["rows_accepted"],
        rows_rejected=m["rows_rejected"], quarantine_path=m["quarantine_path"],
        reasons=tuple(json.loads(m["reasons"])) if m["reasons"] else (), used_by_run=m["used_by_run"],
        model_version=m["model_version"], used_at=m["used_at"], updated_at=m["updated_at"])


def _describe(batch: Batch) -> str:
    if batch.state == USED:
        return f"used by run {batch.used_by_run!r} (model version {batch.model_version})"
    if batch.state in _HELD and batch.claimed_by:
        return f"{batch.state}, held by run {batch.claimed_by!r}"
    return batch.state


class LedgerDatabase:
    """One registered model's tables in the ledger database at ``url``: the engine, transactions whose failures
    become :class:`LedgerError` with the URL redacted, and table creation on first use. :class:`Ledger`, the
    promotion history and the dataset store share it; ``WHAT`` names the subclass in messages."""

    WHAT = "ledger database"
    METADATA: MetaData
    #: Nullable columns added to a table after ledgers were first made: ``create_all`` leaves an existing table as it
    #: is, so each one is added where it is missing.
    ADDED_COLUMNS: tuple[Column, ...] = ()

    def __init__(self, url: str, model: str, *, busy_timeout_s: float = 30.0) -> None:
        if not model:
            raise ValueError(f"a {self.WHAT} belongs to one registered model: model must not be empty")
        self.url, self.model = url, model
        try:
            self._engine = _open_engine(url, busy_timeout_s)
        except LedgerError:
            raise
        except ModuleNotFoundError as exc:  # SQLAlchemy imports the driver when the engine is created
            raise LedgerError(f"cannot open the {self.WHAT} {redact(url)}: its database driver is not installed "
                              f"({exc}; for PostgreSQL: pip install 'psycopg[binary]')") from None
        except Exception as exc:  # noqa: BLE001 - anything else SQLAlchemy raises for a URL it cannot use
            raise self._error("cannot open", exc) from None
        self._create_tables()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self.url)!r}, model={self.model!r})"

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self):  # noqa: ANN204 - the subclass
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _error(self, doing: str, exc: BaseException) -> LedgerError:
        return LedgerError(f"{doing} the {self.WHAT} {redact(self.url)} of model {self.model!r}: "
                           f"{database_error(exc, self.url)}")

    @contextmanager
    def _tx(self, doing: str) -> Iterator[Connection]:
        """One transaction; database failures become a :class:`LedgerError` with the URL redacted (the original is
        chained unless its text holds a credential). Unique-index clashes stay ``IntegrityError``: callers that can
        meet one (two processes recording the same thing at once) decide what it means."""
        try:
            with deferred_interrupts(), self._engine.begin() as conn:  # Ctrl-C takes effect after, not inside, a write
                yield conn
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            secret = has_credentials(str(exc)) or redact_for(exc, self.url) != redact(exc)  # a password's piece
            raise self._error(doing, exc) from (None if secret else exc)

    def _create_tables(self) -> None:
        for attempt in range(2):  # two processes creating the tables at once: the loser sees them on its retry
            try:
                with self._tx("cannot open") as conn:
                    self.METADATA.create_all(conn)
                    for column in self.ADDED_COLUMNS:
                        if column.name not in {c["name"] for c in inspect(conn).get_columns(column.table.name)}:
                            kind = column.type.compile(dialect=conn.dialect)
                            conn.execute(text(f"ALTER TABLE {column.table.name} ADD COLUMN {column.name} {kind}"))
                return
            except (LedgerError, IntegrityError):
                if attempt:
                    raise


class Ledger(LedgerDatabase):
    """The batch ledger of one registered model in the database at ``url`` (tables are created on first use).

    ``lease_s``: how long a claim holds without a :meth:`heartbeat`. ``busy_timeout_s``: how long a SQLite transaction
    waits for another process's transaction. Opening fails with :class:`LedgerError` (URL redacted) when the database
    cannot be reached.
    """

    WHAT = "batch ledger"
    METADATA = _metadata

    def __init__(self, url: str, model: str, *, lease_s: float = DEFAULT_LEASE_S,
                 busy_timeout_s: float = 30.0) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {lease_s}")
        self.lease_s = float(lease_s)
        super().__init__(url, model, busy_timeout_s=busy_timeout_s)

    def _event(self, conn: Connection, batch_id: int, content_hash: str, from_state: str | None, to_state: str,
               run_id: str | None, at: datetime, detail: str | None = None) -> None:
        conn.execute(insert(EVENTS).values(model=self.model, batch_id=batch_id, content_hash=content_hash,
                                           from_state=from_state, to_state=to_state, run_id=run_id, at=at,
                                           detail=detail))

    def _mine(self):  # noqa: ANN202 - a SQLAlchemy clause
        return BATCHES.c.model == self.model

    def _original(self, conn: Connection, batch_hash: str) -> Batch | None:
        row = conn.execute(select(BATCHES).where(self._mine(), BATCHES.c.content_hash == batch_hash,
                                                 BATCHES.c.state != DUPLICATE)).first()
        return _batch(row) if row is not None else None

    def _conflict(self, conn: Connection, batch_hash: str, wanted: str, run_id: str) -> LedgerConflict:
        current = self._original(conn, batch_hash)
        where = f"in the batch ledger {redact(self.url)} of model {self.model!r}"
        if current is None:
            return LedgerConflict(f"no batch with content hash {batch_hash[:12]} {where}")
        return LedgerConflict(f"run {run_id!r} cannot {wanted} batch {current.name} ({batch_hash[:12]}): it is "
                              f"{_describe(current)} {where}")

    @staticmethod
    def _check_run(run_id: str) -> None:
        if not run_id:
            raise ValueError("run_id must not be empty")

    # -- landing ------------------------------------------------------------------------------------------------
    def scan(self, landing: Path | str, *, data_format: str = "auto") -> list[Batch]:
        """Record the complete batches in ``landing`` that are not recorded yet; return the newly recorded ones.

        New content is recorded as ``landed``; content already known under another path as ``duplicate`` (pointing at
        the original); a batch whose format cannot be read (``data_format``: ``auto`` guesses from the file name, as
        ``data.format`` does) as ``rejected`` with the reason. Idempotent: a landing already recorded is skipped,
        without re-hashing it when its sizes and modification times are unchanged.
        """
        fs, root = landing_filesystem(landing)
        if not fs.isdir(root):
            raise LedgerError(f"the landing folder {redact(landing)} does not exist or is not a folder; create it, "
                              "or set retrain.landing to the folder where labeled batches land")
        recorded: list[Batch] = []
        for item in _complete_landings(fs, root):
            path = str(Path(item.path).absolute()) if is_local(fs) else fs.unstrip_protocol(item.path)
            with self._tx("cannot read") as conn:
                known = conn.execute(select(BATCHES.c.id).where(self._mine(), BATCHES.c.path == path,
                                                                BATCHES.c.stat_key == item.stat_key)).first()
            if known is not None:
                continue
            try:
                digest, fmt, reasons = _content(fs, item, data_format)
            except FileNotFoundError:  # removed while we looked at it: whatever lands there next is judged anew
                continue
            if _stat_key(fs, item.files, item.marker) != item.stat_key:
                logger.info("batch %s changed while it was hashed; it is left for the next scan", path)
                continue
            for attempt in range(_SCAN_RETRIES):
                try:
                    batch = self._record(item, path, digest, fmt, reasons)
                    break
                except IntegrityError as exc:  # another scanner recorded the same landing or hash meanwhile
                    if attempt == _SCAN_RETRIES - 1:
                        raise self._error("cannot record a batch in", exc) from exc
            if batch is not None:
                recorded.append(batch)
        return recorded

    def _record(self, item: _Landing, path: str, digest: str, fmt: str | None, reasons: list[str]) -> Batch | None:
        now = _now()
        with self._tx("cannot record a batch in") as conn:
            same = conn.execute(select(BATCHES.c.id).where(self._mine(), BATCHES.c.path == path,
                                                           BATCHES.c.content_hash == digest)).first()
            if same is not None:  # the same landing, touched again: remember its new stat key, record nothing
                conn.execute(update(BATCHES).where(BATCHES.c.id == same.id).values(stat_key=item.stat_key))
                return None
            original = self._original(conn, digest)
            values = dict(model=self.model, content_hash=digest, path=path, kind=item.kind, format=fmt,
                          size_bytes=item.size_bytes, files=len(item.files), stat_key=item.stat_key, version=0,
                          landed_at=now, updated_at=now)
            if original is not None:
                values.update(state=DUPLICATE, duplicate_of=original.id)
                detail = f"same content as batch {original.id} ({original.path})"
            elif reasons:
                values.update(state=REJECTED, reasons=json.dumps(reasons))
                detail = "; ".join(reasons)
            else:
                values.update(state=LANDED)
                detail = None
            batch_id = conn.execute(insert(BATCHES).values(**values)).inserted_primary_key[0]
            self._event(conn, batch_id, digest, None, values["state"], None, now, detail)
            row = conn.execute(select(BATCHES).where(BATCHES.c.id == batch_id)).one()
        batch = _batch(row)
        logger.info("ledger of %r: %s %s (%s)%s", self.model, batch.state, batch.name, digest[:12],
                    f": {detail}" if detail else "")
        return batch

    # -- claims -------------------------------------------------------------------------------------------------
    def claim(self, run_id: str, max_batches: int | None = None) -> list[Batch]:
        """Give run ``run_id`` every free batch (the oldest first, at most ``max_batches``) under a fresh lease.

        Free: ``landed``, or ``claimed``/``validated`` with no live lease (the claiming run is gone or released it).
        A ``validated`` batch stays ``validated``: its row counts and quarantine need not be redone; the others become
        ``claimed``. Returns the batches now held by the run ([] when there is nothing to do).
        """
        self._check_run(run_id)
        if max_batches is not None and max_batches < 1:
            raise ValueError(f"max_batches must be at least 1, got {max_batches}")
        now = _now()
        expires = now + timedelta(seconds=self.lease_s)
        got: list[Batch] = []
        with self._tx("cannot claim from") as conn:
            free = conn.execute(
                select(BATCHES).where(
                    self._mine(),
                    or_(BATCHES.c.state == LANDED,
                        and_(BATCHES.c.state.in_(_HELD),
                             or_(BATCHES.c.claimed_by.is_(None), BATCHES.c.lease_expires_at.is_(None),
                                 BATCHES.c.lease_expires_at < now))))
                .order_by(BATCHES.c.id)).all()
            for row in free:
                if max_batches is not None and len(got) >= max_batches:
                    break
                seen = _batch(row)
                new_state = VALIDATED if seen.state == VALIDATED else CLAIMED
                changed = conn.execute(
                    update(BATCHES)
                    .where(BATCHES.c.id == seen.id, BATCHES.c.version == row._mapping["version"],
                           BATCHES.c.state == seen.state)
                    .values(state=new_state, claimed_by=run_id, claimed_at=now, lease_expires_at=expires,
                            version=BATCHES.c.version + 1, updated_at=now)).rowcount
                if changed != 1:  # another claimer took it between our read and our write (PostgreSQL)
                    continue
                detail = (f"taken over from run {seen.claimed_by!r} (lease expired "
                          f"{seen.lease_expires_at.isoformat(timespec='seconds')})"
                          if seen.claimed_by and seen.lease_expires_at else None)
                self._event(conn, seen.id, seen.content_hash, seen.state, new_state, run_id, now, detail)
                got.append(_batch(conn.execute(select(BATCHES).where(BATCHES.c.id == seen.id)).one()))
        if got:
            logger.info("ledger of %r: run %r claimed %d batch(es): %s", self.model, run_id, len(got),
                        ", ".join(b.name for b in got))
        return got

    def heartbeat(self, run_id: str) -> int:
        """Renew the lease of every batch run ``run_id`` holds; returns how many it still holds (fewer than it
        claimed means another run took some over after the lease had expired)."""
        self._check_run(run_id)
        now = _now()
        with self._tx("cannot renew a lease in") as conn:
            return conn.execute(
                update(BATCHES)
                .where(self._mine(), BATCHES.c.claimed_by == run_id, BATCHES.c.state.in_(_HELD))
                .values(lease_expires_at=now + timedelta(seconds=self.lease_s), updated_at=now)).rowcount

    # -- outcomes -----------------------------------------------------------------------------------------------
    def _transition(self, run_id: str, batch_hash: str, from_states: tuple[str, ...], to_state: str, wanted: str,
                    detail: str | None, **values: object) -> Batch:
        """Compare-and-set one original batch held by ``run_id`` from one of ``from_states`` to ``to_state``."""
        self._check_run(run_id)
        now = _now()
        with self._tx(f"cannot {wanted} a batch in") as conn:
            current = self._original(conn, batch_hash)
            changed = conn.execute(
                update(BATCHES)
                .where(self._mine(), BATCHES.c.content_hash == batch_hash, BATCHES.c.state.in_(from_states),
                       BATCHES.c.claimed_by == run_id)
                .values(state=to_state, version=BATCHES.c.version + 1, updated_at=now, **values)).rowcount
            if changed != 1:
                raise self._conflict(conn, batch_hash, wanted, run_id)
            self._event(conn, current.id, batch_hash, current.state, to_state, run_id, now, detail)
            return _batch(conn.execute(select(BATCHES).where(BATCHES.c.id == current.id)).one())

    def mark_validated(self, run_id: str, batch_hash: str, rows_accepted: int, rows_rejected: int,
                       quarantine_path: str | Path | None = None) -> Batch:
        """``claimed`` → ``validated``: the batch passed validation (its rejected rows are in ``quarantine_path``)."""
        return self._transition(run_id, batch_hash, (CLAIMED,), VALIDATED, "validate",
                                f"{rows_accepted} rows accepted, {rows_rejected} rejected",
                                rows_accepted=int(rows_accepted), rows_rejected=int(rows_rejected),
                                quarantine_path=str(quarantine_path) if quarantine_path is not None else None)

    def mark_rejected(self, run_id: str, batch_hash: str, reasons: Sequence[str],
                      quarantine_path: str | Path | None = None, rows_read: int | None = None) -> Batch:
        """``claimed`` or ``validated`` → ``rejected`` (final: never claimed again), with the reasons. ``rows_read``:
        the records of a batch that was read before it was rejected (none kept, every one accounted to the
        rejection), so ``data batches`` can show that rows landed = used + quarantined + rejected."""
        reasons = [str(r) for r in reasons] or ["rejected"]
        counts = {"rows_accepted": 0, "rows_rejected": int(rows_read)} if rows_read is not None else {}
        return self._transition(run_id, batch_hash, _HELD, REJECTED, "reject", "; ".join(reasons),
                                reasons=json.dumps(reasons), lease_expires_at=None,
                                quarantine_path=str(quarantine_path) if quarantine_path is not None else None,
                                **counts)

    def mark_used(self, run_id: str, model_version: str | None, *, expected: Iterable[str] | None = None
                  ) -> list[Batch]:
        """Every ``validated`` batch run ``run_id`` holds → ``used`` (by the run, and ``model_version`` when one was
        registered), in one transaction.

        Refused (:class:`LedgerConflict`, nothing changed) while the run still holds a batch it neither validated nor
        rejected, and, when ``expected`` (content hashes: what the run trained on) is given, unless the run holds
        exactly those validated batches: a run whose lease was taken over learns it here instead of recording a
        batch as used twice.
        """
        self._check_run(run_id)
        now = _now()
        with self._tx("cannot mark batches used in") as conn:
            held = [_batch(r) for r in conn.execute(
                select(BATCHES).where(self._mine(), BATCHES.c.claimed_by == run_id, BATCHES.c.state.in_(_HELD))
                .order_by(BATCHES.c.id)).all()]
            where = f"in the batch ledger {redact(self.url)} of model {self.model!r}"
            pending = [b.name for b in held if b.state == CLAIMED]
            if pending:
                raise LedgerConflict(f"run {run_id!r} cannot mark its batches used before it validated or rejected "
                                     f"{', '.join(pending)} {where}")
            if expected is not None:
                expected = set(expected)
                have = {b.content_hash for b in held}
                if have != expected:
                    lost = sorted(h[:12] for h in expected - have)
                    extra = sorted(h[:12] for h in have - expected)
                    raise LedgerConflict(f"run {run_id!r} does not hold the batches it trained on {where}: "
                                         f"not held (taken over or not validated): {lost or 'none'}; "
                                         f"held but not expected: {extra or 'none'}")
            used: list[Batch] = []
            for batch in held:
                changed = conn.execute(
                    update(BATCHES)
                    .where(BATCHES.c.id == batch.id, BATCHES.c.state == VALIDATED, BATCHES.c.claimed_by == run_id)
                    .values(state=USED, used_by_run=run_id, model_version=model_version, used_at=now,
                            lease_expires_at=None, version=BATCHES.c.version + 1, updated_at=now)).rowcount
                if changed != 1:  # cannot happen under the transaction's isolation; refuse rather than half-do it
                    raise self._conflict(conn, batch.content_hash, "mark used", run_id)
                self._event(conn, batch.id, batch.content_hash, VALIDATED, USED, run_id, now,
                            f"model version {model_version}" if model_version is not None else "no model version")
                used.append(_batch(conn.execute(select(BATCHES).where(BATCHES.c.id == batch.id)).one()))
        return used

    def release(self, run_id: str) -> list[Batch]:
        """A failed run gives back what it holds: ``claimed`` → ``landed``; ``validated`` stays ``validated`` but free
        (the next claim takes it without validating it again). Returns the released batches."""
        self._check_run(run_id)
        now = _now()
        released: list[Batch] = []
        with self._tx("cannot release batches in") as conn:
            held = [_batch(r) for r in conn.execute(
                select(BATCHES).where(self._mine(), BATCHES.c.claimed_by == run_id, BATCHES.c.state.in_(_HELD))
                .order_by(BATCHES.c.id)).all()]
            for batch in held:
                new_state = LANDED if batch.state == CLAIMED else VALIDATED
                changed = conn.execute(
                    update(BATCHES)
                    .where(BATCHES.c.id == batch.id, BATCHES.c.state == batch.state, BATCHES.c.claimed_by == run_id)
                    .values(state=new_state, claimed_by=None, claimed_at=None, lease_expires_at=None,
                            version=BATCHES.c.version + 1, updated_at=now)).rowcount
                if changed != 1:
                    raise self._conflict(conn, batch.content_hash, "release", run_id)
                self._event(conn, batch.id, batch.content_hash, batch.state, new_state, run_id, now, "released")
                released.append(_batch(conn.execute(select(BATCHES).where(BATCHES.c.id == batch.id)).one()))
        return released

    def requeue(self, batch_hash: str, actor: str, reason: str) -> Batch:
        """``rejected`` → ``landed``, by a person: the batch is claimed again by the next run, as if it had just
        landed. For a rejection the config decided (an unseen label before ``drift.allow_label_growth`` was set, a
        contract since relaxed): the bytes are the same, so landing them again would only be a ``duplicate``.
        Its row counts go with its rejection: the next run validates it anew, and the rejection's "none kept, all
        read" had been listed as "0 kept, 100 quarantined" for a batch that was landed again (loop QA)."""
        now = _now()
        with self._tx("cannot requeue a batch in") as conn:
            current = self._original(conn, batch_hash)
            if current is None or current.state != REJECTED:
                state = "not recorded" if current is None else current.state
                raise LedgerConflict(f"batch #{batch_hash[:12]} is {state}, not rejected, in the batch ledger "
                                     f"{redact(self.url)} of model {self.model!r}: only a rejected batch is requeued")
            changed = conn.execute(
                update(BATCHES).where(BATCHES.c.id == current.id, BATCHES.c.state == REJECTED)
                .values(state=LANDED, claimed_by=None, claimed_at=None, lease_expires_at=None, reasons=json.dumps([]),
                        quarantine_path=None, rows_accepted=None, rows_rejected=None,
                        version=BATCHES.c.version + 1, updated_at=now)).rowcount
            if changed != 1:
                raise self._conflict(conn, batch_hash, "requeue", actor)
            self._event(conn, current.id, batch_hash, REJECTED, LANDED, None, now, f"requeued by {actor}: {reason}")
            return _batch(conn.execute(select(BATCHES).where(BATCHES.c.id == current.id)).one())

    def mark_dropped(self, batch_hash: str, actor: str, detail: str) -> Batch:
        """``used`` (or ``claimed`` / ``validated`` / ``landed`` and not held by a live run) → ``dropped``: its rows
        were taken back out of the data by a person, or it is dropped before any run used it. Final: the ledger listed
        it ``used`` as if its rows were still trained on, and a ``landed`` one, or a ``claimed`` or ``validated`` one
        whose run died, would have been claimed again, putting its rows (back) in."""
        now = _now()
        with self._tx("cannot mark a batch dropped in") as conn:
            current = self._original(conn, batch_hash)
            held = current is not None and current.state in _HELD and current.claimed_by is not None and \
                current.lease_expires_at is not None and current.lease_expires_at >= now
            if current is None or current.state not in (LANDED, *_HELD, USED) or held:
                state = "not recorded" if current is None else _describe(current)
                raise LedgerConflict(f"batch #{batch_hash[:12]} is {state} in the batch ledger {redact(self.url)} of "
                                     f"model {self.model!r}: only a landed, claimed, validated or used batch no run "
                                     "holds is dropped")
            changed = conn.execute(
                update(BATCHES).where(BATCHES.c.id == current.id, BATCHES.c.state == current.state)
                .values(state=DROPPED, claimed_by=None, lease_expires_at=None, version=BATCHES.c.version + 1,
                        updated_at=now)).rowcount
            if changed != 1:
                raise self._conflict(conn, batch_hash, "drop", actor)
            self._event(conn, current.id, batch_hash, current.state, DROPPED, None, now, f"dropped by {actor}: {detail}")
            return _batch(conn.execute(select(BATCHES).where(BATCHES.c.id == current.id)).one())

    # -- reading ------------------------------------------------------------------------------------------------
    def batches(self, state: str | None = None) -> list[Batch]:
        """Every recorded batch of this model (in landing order), or those in ``state``."""
        if state is not None and state not in STATES:
            raise ValueError(f"unknown batch state {state!r}; one of {', '.join(STATES)}")
        query = select(BATCHES).where(self._mine()).order_by(BATCHES.c.id)
        if state is not None:
            query = query.where(BATCHES.c.state == state)
        with self._tx("cannot read") as conn:
            return [_batch(r) for r in conn.execute(query).all()]

    def recorded_states(self) -> dict[str, str]:
        """Each recorded batch name's state, for :func:`waiting_landings`: of a name recorded more than once (landed
        again, a copy of other content), the newest record whose copy the loop took, else the newest record."""
        states: dict[str, str] = {}
        for batch in self.batches():  # in landing order
            if batch.state not in (REJECTED, DUPLICATE) or states.get(batch.name) in (None, REJECTED, DUPLICATE):
                states[batch.name] = batch.state
        return states

    def free_batches(self) -> list[Batch]:
        """The batches a :meth:`claim` now would hand out: ``landed``, or held under a lease that ran out (or none)."""
        now = _now()
        return [b for b in self.batches() if b.state == LANDED or (
            b.state in _HELD and (b.claimed_by is None or b.lease_expires_at is None or b.lease_expires_at < now))]

    def batch(self, batch_hash: str) -> Batch | None:
        """The original batch with this content hash (not its duplicates), or None."""
        with self._tx("cannot read") as conn:
            return self._original(conn, batch_hash)

    def history(self, batch_hash: str | None = None) -> list[BatchEvent]:
        """The append-only record of every transition (of one content hash, duplicates included), oldest first."""
        query = select(EVENTS).where(EVENTS.c.model == self.model).order_by(EVENTS.c.id)
        if batch_hash is not None:
            query = query.where(EVENTS.c.content_hash == batch_hash)
        with self._tx("cannot read") as conn:
            return [BatchEvent(batch_id=r.batch_id, content_hash=r.content_hash, from_state=r.from_state,
                               to_state=r.to_state, run_id=r.run_id, at=r.at, detail=r.detail)
                    for r in conn.execute(query).all()]
