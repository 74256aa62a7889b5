"""Promotion history of a registered model's ``champion`` alias: who moved it, when, from which version, and why.

MLflow keeps only where an alias points *now*. Every move of ``champion`` made by tuneline (the gate, ``tuneline
promote``, ``tuneline rollback``) therefore goes through :func:`move_champion` (the gate, which already holds the
model's lock, through :func:`_move_locked`), and leaves one row in the append-only table ``tuneline_promotions`` of
the ledger database (:mod:`tuneline.ledger`: ``ledger.url``, ``$TUNELINE_LEDGER_URL``, else a SQLite file beside the
MLflow store). There is no API to change or delete a row: a move is undone by another move (``rollback``).

One ledger can serve several MLflow stores (the default ledger is per folder: two SQLite stores in one folder share
it), and their registered models may share a name. Each row therefore names the registry it was made in: the
registered model's tag ``tuneline.history`` (:data:`HISTORY_TAG`), a random id set at its first recorded move. A
history read for a model holds that id's rows only, plus rows written before rows named one. The id lives in the
registry itself, so one store reached by several URLs (a worker's and an operator's) keeps one history, and a new
store never inherits another's: a fresh store whose model shared a name with another store's read that model's
moves and refused its own first good version ("the promotion history says v3 is champion"; strategies QA).

A move is a compare-and-set under the model's gate lock (:func:`tuneline.locking.model_lock`): the alias is re-read,
and unless it still points where the caller saw it (``expected_from``) nothing moves and :class:`PromotionConflict`
says who moved it. A version that does not exist, is not ready, or is tagged ``tuneline.status=failed|orphaned`` is
never made champion (:class:`PromotionRefused`), nor is a version a tuneline run registered whose gate has not
scored it yet (its run still at work, or killed before its gate: :mod:`tuneline.registry`). A version the gate
scored and kept out may be promoted by a person; ``tuneline promote`` then prints the gate's reasons.

Order: the alias is moved first and the history row written after it. The two live in different databases, so one
of them can be lost when a process dies in between, and the order chooses which: a moved alias whose row is missing
is *detectable* (the champion is not the newest row's ``to_version``; ``tuneline history`` warns), whereas a row
written for a move that then failed would be a record that lies, and nothing could tell it apart from a true one.
A gate's move whose row was lost so is *recoverable* too: the version's own gate tags say which champion it replaced
and why (:func:`record_lost_gate_move`, run by ``tuneline doctor --fix``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, ErrorCode
from sqlalchemy import CheckConstraint, Column, Index, Integer, MetaData, String, Table, Text, insert, select, true
from sqlalchemy.engine import Row

from tuneline.errors import UserError
from tuneline.ledger import LedgerDatabase, LedgerError, _UTCDateTime
from tuneline.locking import model_lock
from tuneline.registry import INTERRUPTED, STATUS
from tuneline.run_process import GONE, run_liveness, shown
from tuneline.runtime import redact
from tuneline.tasks.register import CHAMPION

GATE, PROMOTE, ROLLBACK = "gate", "promote", "rollback"
#: ``gate.decision`` of a version its gate passed: ``promoting`` until the alias has moved, then ``promoted``. A run
#: killed in between leaves ``promoting``, which ``tuneline doctor`` resolves from where the alias points.
PROMOTING, PROMOTED = "promoting", "promoted"
ACTIONS = (GATE, PROMOTE, ROLLBACK)
#: ``tuneline.status`` values of versions that must never serve: their run failed, or died before its gate.
NEVER_CHAMPION = ("failed", "orphaned")


class PromotionRefused(UserError):
    """The move was refused before anything changed: no such version, a failed/orphaned one, nothing to roll back."""


class PromotionConflict(UserError):
    """The alias no longer points where the caller saw it (someone else moved it); nothing was changed."""


class PromotionNotRecorded(LedgerError):
    """The alias moved, but its history row could not be written (the history is now behind the registry)."""


# --------------------------------------------------------------------------------------------------------------
# the table

_metadata = MetaData()

PROMOTIONS = Table(
    "tuneline_promotions", _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(255), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("from_version", String(32)),                       # None: there was no champion
    Column("to_version", String(32), nullable=False),         # a move to nothing is never made (nor recorded)
    Column("at", _UTCDateTime, nullable=False),
    Column("actor", Text, nullable=False),                    # "run <mlflow run id>" | "user <login>@<host>"
    Column("action", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("registry", String(64)),                           # the model's HISTORY_TAG; None: written before it
    CheckConstraint(f"action IN ({', '.join(repr(a) for a in ACTIONS)})", name="ck_tuneline_promotions_action"),
)
Index("ix_tuneline_promotions_model", PROMOTIONS.c.model, PROMOTIONS.c.alias, PROMOTIONS.c.id)


@dataclass(frozen=True)
class Promotion:
    """One move of an alias, as recorded (``from_version`` None: the alias pointed nowhere before)."""

    id: int
    model: str
    alias: str
    from_version: str | None
    to_version: str
    at: datetime
    actor: str
    action: str
    reason: str

    def line(self) -> str:
        """One line for people: time (UTC, seconds), action, from -> to, actor, reason."""
        return (f"{self.at.astimezone(timezone.utc).isoformat(timespec='seconds')}  {self.action:<8}  "
                f"{_shown(self.from_version)} -> {_shown(self.to_version)}  {self.actor}  {self.reason}")


#: The registered-model tag naming its promotion history in a shared ledger (see the module docstring).
HISTORY_TAG = "tuneline.history"


def history_id(client: Any, name: str, *, create: bool = False) -> str | None:
    """The id that scopes the promotion history of registered model ``name`` in this registry; None when it has
    none yet (or there is no such model). ``create``: set a new one when it has none (the caller holds the model's
    lock, so two moves cannot set two)."""
    model = _registered_model(client, name)
    tags = (model.tags or {}) if model is not None else {}
    if model is None or tags.get(HISTORY_TAG) or not create:
        return tags.get(HISTORY_TAG) or None
    import uuid

    made = uuid.uuid4().hex
    client.set_registered_model_tag(name, HISTORY_TAG, made)
    return made


def _shown(version: str | None) -> str:
    return "none" if version is None else f"v{version}"


def _promotion(row: Row) -> Promotion:
    m = row._mapping
    return Promotion(id=m["id"], model=m["model"], alias=m["alias"], from_version=m["from_version"],
                     to_version=m["to_version"], at=m["at"], actor=m["actor"], action=m["action"],
                     reason=m["reason"])


class PromotionLog(LedgerDatabase):
    """The append-only promotion history of one registered model's alias in the ledger database at ``url``.

    The table is created on first use. Failures of the database become :class:`tuneline.ledger.LedgerError` with
    the URL redacted. Use it as a context manager (or call :meth:`close`) to release its connections.

    ``client``: the MLflow client of the registry the model lives in; the history is then that registry's alone
    (:data:`HISTORY_TAG`). Without one, every row of the model's name is read and rows name no registry.
    """

    WHAT = "promotion history"
    METADATA = _metadata
    ADDED_COLUMNS = (PROMOTIONS.c.registry,)  # a ledger made before rows named their registry

    def __init__(self, url: str, model: str, *, client: Any = None, alias: str = CHAMPION,
                 busy_timeout_s: float = 30.0) -> None:
        self.alias, self._client, self._registry = alias, client, None
        super().__init__(url, model, busy_timeout_s=busy_timeout_s)

    def registry(self, *, create: bool = False) -> str | None:
        """This registry's id for the model's history (:func:`history_id`), looked up once it exists."""
        if self._registry is None and self._client is not None:
            self._registry = history_id(self._client, self.model, create=create)
        return self._registry

    def _scope(self) -> Any:
        """The rows of this model's alias in this registry: its id's, and those written before ids (every row
        when the log has no registry to ask)."""
        own = true() if self._client is None else PROMOTIONS.c.registry.is_(None)
        if (registry := self.registry()) is not None:
            own = own | (PROMOTIONS.c.registry == registry)
        return (PROMOTIONS.c.model == self.model) & (PROMOTIONS.c.alias == self.alias) & own

    def __repr__(self) -> str:
        return f"PromotionLog({redact(self.url)!r}, model={self.model!r}, alias={self.alias!r})"

    def record(self, from_version: str | None, to_version: str, *, actor: str, action: str, reason: str,
               at: datetime | None = None) -> Promotion:
        """Append one move (made already: see the module docstring for the order) and return it as stored."""
        if action not in ACTIONS:
            raise ValueError(f"unknown promotion action {action!r}; one of {', '.join(ACTIONS)}")
        if not to_version:
            raise ValueError("a promotion moves the alias to a version: to_version must not be empty")
        if not actor:
            raise ValueError("a promotion is made by someone: actor must not be empty")
        values = dict(model=self.model, alias=self.alias, to_version=str(to_version), actor=actor, action=action,
                      from_version=None if from_version is None else str(from_version), reason=reason or "",
                      at=at or datetime.now(timezone.utc), registry=self.registry(create=True))
        with self._tx("cannot record a move in") as conn:
            new_id = conn.execute(insert(PROMOTIONS).values(**values)).inserted_primary_key[0]
            return _promotion(conn.execute(select(PROMOTIONS).where(PROMOTIONS.c.id == new_id)).one())

    def history(self) -> list[Promotion]:
        """Every recorded move of this model's alias, oldest first."""
        query = select(PROMOTIONS).where(self._scope()).order_by(PROMOTIONS.c.id)
        with self._tx("cannot read") as conn:
            return [_promotion(r) for r in conn.execute(query).all()]

    def latest(self) -> Promotion | None:
        """The newest recorded move, or None."""
        query = select(PROMOTIONS).where(self._scope()).order_by(PROMOTIONS.c.id.desc()).limit(1)
        with self._tx("cannot read") as conn:
            row = conn.execute(query).first()
        return None if row is None else _promotion(row)


# --------------------------------------------------------------------------------------------------------------
# reading the registry


def _registered_model(client: Any, name: str) -> Any:
    """The registered model ``name``, None when there is none of that name yet; any other MLflow error is
    raised, never hidden."""
    try:
        return client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise


def alias_version(client: Any, registered_name: str, alias: str) -> str | None:
    """The version an alias points at, None when it points nowhere or there is no such model; any other MLflow
    error is raised, never hidden."""
    model = _registered_model(client, registered_name)
    version = None if model is None else (model.aliases or {}).get(alias)
    return None if version is None else str(version)


def recorded_champion(url: str, model: str, client: Any) -> str | None:
    """The version the promotion history last made champion in ``client``'s registry; None when it records none.
    The registry's alias is the truth; this is what to compare it with when the alias is gone (deleted by hand)."""
    with PromotionLog(url, model, client=client) as history:
        latest = history.latest()
    return latest.to_version if latest is not None else None


def champion_version(client: Any, registered_name: str) -> str | None:
    """The champion's version number, None when there is none; any other MLflow error is raised, never hidden."""
    return alias_version(client, registered_name, CHAMPION)


def previous_champion(log: PromotionLog, current: str | None = None) -> str | None:
    """The champion before ``current`` (default: the newest recorded ``to_version``), as a rollback should restore.

    The history is replayed as a stack of champions: a gate or a promote pushes its version, a rollback pops one. The
    answer is the entry under ``current`` at the top, so rolling back walks back through the champions one at a time
    (after a manual promote of v2 over v3, rollbacks go v2 -> v3 -> v2's predecessor, never back and forth between
    two versions) and ends at the first champion (None: a rollback to nothing is not allowed); the first recorded
    move's ``from_version`` is that first champion when the alias was set before tuneline recorded anything. When
    ``current`` is not the top (the alias was moved outside tuneline), the newest recorded promotion to ``current``
    says what it replaced.
    """
    rows = log.history()
    if current is None:
        if not rows:
            return None
        current = rows[-1].to_version
    stack: list[str] = []
    for row in rows:
        if row.from_version and row.action != ROLLBACK and (not stack or stack[-1] != row.from_version):
            # a champion set before the history began (by hand in MLflow's UI), or one moved there since without a
            # row (a gate killed between its move and its row): it is what this row's version replaced
            stack.append(row.from_version)
        if row.action == ROLLBACK:
            if stack:
                stack.pop()
            if not stack or stack[-1] != row.to_version:  # a history that began mid-way: follow the rows
                stack.append(row.to_version)
        elif not stack or stack[-1] != row.to_version:
            stack.append(row.to_version)
    if stack and stack[-1] == str(current):
        return stack[-2] if len(stack) > 1 else None
    for row in reversed(rows):
        if row.to_version == str(current) and row.action != ROLLBACK:
            return row.from_version
    return None


def replaced_by_gate(client: Any, name: str, version: str) -> str | None:
    """The champion ``version``'s gate replaced, from the version's own tags (``gate.champion_version``), when its
    gate promoted it; else None. The history is the record; this is what is left when its row was lost."""
    try:
        tags = client.get_model_version(name, version).tags or {}
    except MlflowException:
        return None
    if tags.get("gate.decision") not in (PROMOTED, PROMOTING):
        return None
    return tags.get("gate.champion_version") or None


def record_lost_gate_move(client: Any, log: PromotionLog) -> Promotion | None:
    """Write the history row of a gate's move that was made but not recorded (its run killed between moving the
    alias and writing the row), from the champion version's gate tags; None when there is no such move.

    Only a move the tags vouch for is written: the champion's gate promoted it (``gate.decision``) over the champion
    the history last recorded (``gate.champion_version``), by its own run. A move made outside tuneline stays
    unrecorded (``tuneline history`` warns of it). The caller holds the model's lock, so no gate is between its
    move and its row meanwhile."""
    current = alias_version(client, log.model, log.alias)
    latest = log.latest()
    recorded = latest.to_version if latest else None
    if current is None or current == recorded:
        return None
    found = client.get_model_version(log.model, current)
    tags = found.tags or {}
    if tags.get("gate.decision") not in (PROMOTED, PROMOTING) or (tags.get("gate.champion_version") or None) != recorded:
        return None
    return log.record(recorded, current, actor=f"run {found.run_id}", action=GATE,
                      reason=(tags.get("gate.reasons") or "promoted by its gate")
                      + " (row written by tuneline doctor --fix: the run was killed after moving the alias)")


def unrecorded_move(client: Any, log: PromotionLog) -> str | None:
    """A sentence when the alias is not where the history says it last moved it (a move made outside tuneline, or
    a history row lost after the alias moved); None when they agree."""
    current = alias_version(client, log.model, log.alias)
    latest = log.latest()
    recorded = latest.to_version if latest else None
    if current == recorded:
        return None
    return (f"the {log.alias} of {log.model!r} is {_shown(current)}, but the last recorded move "
            + (f"is to {_shown(recorded)} ({latest.action} by {latest.actor})" if latest else "does not exist")
            + ": it was moved outside tuneline, or a move's history row was lost")


# --------------------------------------------------------------------------------------------------------------
# moving


def _version_number(version: str | int) -> str:
    text = str(version).strip()
    if not re.fullmatch(r"[vV]?\d+", text):
        raise PromotionRefused(f"{version!r} is not a model version number (e.g. 3)")
    return str(int(text.lstrip("vV")))


def _trained_by_tuneline(client: Any, version: Any) -> bool:
    """Whether a version without tuneline's status tag came from a tuneline run (one killed between registering it
    and tagging it) rather than from someone's own ``mlflow`` code, which tuneline does not gate."""
    try:
        return bool(version.run_id) and "tuneline.version" in client.get_run(version.run_id).data.tags
    except MlflowException:
        return False


def _ungated_state(client: Any, version: Any) -> str:
    """Why a tuneline version has no gate verdict yet, and what to do: its run is still at work, or died."""
    try:
        status = client.get_run(version.run_id).info.status if version.run_id else "MISSING"
    except MlflowException:
        status = "MISSING"
    if status == "RUNNING":
        alive, process = run_liveness(client, version.run_id)
        if alive != GONE:
            return (f"its run {version.run_id} is still at work ({shown(process)}): wait for its gate, which "
                    "promotes it if it is better")
        return (f"its run {version.run_id} was killed: process {shown(process)} is gone; `tuneline doctor --fix` "
                "tags it orphaned; train again to get a gated version")
    return f"its run {version.run_id or '?'} ended {status} before the gate; train again to get a gated version"


def gate_verdict(client: Any, name: str, version: str | int) -> str | None:
    """The gate's sentence for a version it did not promote (a person promoting it anyway should read why), else
    None (promoted by its gate, or never gated by tuneline)."""
    try:
        tags = client.get_model_version(name, _version_number(version)).tags or {}
    except MlflowException:
        return None
    if tags.get("gate.decision") in (None, PROMOTED, PROMOTING, INTERRUPTED):
        return None  # passed by its gate (an interrupted one too: its run died before moving the alias)
    return tags.get("gate.sentence") or f"gate decision {tags['gate.decision']}: {tags.get('gate.reasons', '')}"


def _check_target(client: Any, name: str, version: str, current: str | None = None) -> None:
    """Refuse a version that does not exist, is not ready, must never serve (failed or orphaned), is of another task
    than the champion ``current``, or whose model files are gone."""
    try:
        found = client.get_model_version(name, version)
    except MlflowException as error:
        if error.error_code in (ErrorCode.Name(RESOURCE_DOES_NOT_EXIST), ErrorCode.Name(INVALID_PARAMETER_VALUE)):
            raise PromotionRefused(f"registered model {name!r} has no version {version}") from None
        raise
    tags = found.tags or {}
    status = tags.get(STATUS)
    if status in NEVER_CHAMPION:
        why = tags.get("tuneline.orphan_reason") or tags.get("tuneline.error")
        raise PromotionRefused(f"{name} v{version} is tagged {STATUS}={status}" + (f" ({why})" if why else "")
                               + ": a version whose run failed or died before its gate is never made champion")
    gated = "gate.decision" in tags  # the gate's last tag: tuneline.status=gated without it is a gate cut short
    if not gated and (status is not None or _trained_by_tuneline(client, found)):
        raise PromotionRefused(f"{name} v{version} has not been through its gate ({_ungated_state(client, found)}): "
                               "a version tuneline trained is made champion only once its gate has scored it")
    if str(getattr(found, "status", "READY")) not in ("READY", "None"):
        raise PromotionRefused(f"{name} v{version} is not ready to serve (registration status {found.status})")
    _check_same_task(client, name, found, current)
    if str(found.source or "").startswith("models:/m-"):  # a logged model (what tuneline registers), not a bare path
        _check_files(client, name, found)


def _check_same_task(client: Any, name: str, found: Any, current: str | None) -> None:
    """Refuse a version of another task than the champion's: one registered model serves one kind, and an endpoint
    following the alias kept serving the old champion while ``champion`` named the other kind's version (operator
    QA: ``promote`` said nothing)."""
    task = (found.tags or {}).get("task")
    if current is None or not task:
        return
    try:
        serving = (client.get_model_version(name, current).tags or {}).get("task")
    except MlflowException:
        return
    if serving and serving != task:
        raise PromotionRefused(f"{name} v{found.version} is a {task!r} model and the {CHAMPION} v{current} a "
                               f"{serving!r} one: one registered model serves one kind (an endpoint following the "
                               f"alias would keep serving v{current}); register that model under its own name")


def _check_files(client: Any, name: str, found: Any) -> None:
    """Refuse a version whose model files are gone from a local artifact store (a cleanup, a moved folder): made
    champion, it could not be served, and ``promote`` had said nothing (operator QA). A remote store is not listed
    here (it is read through the tracking server, which the client does not name); ``tuneline doctor`` checks it."""
    from tuneline.loaded_versions import location_empty, missing_files_message

    try:
        location = client.get_model_version_download_uri(name, found.version)
    except MlflowException:
        return
    if isinstance(location, str) and location.startswith(("file:", "/")) and location_empty(location):
        raise PromotionRefused(missing_files_message(name, found.version, found.source))


def _settle_cut_short_gate(client: Any, name: str, version: str, action: str) -> None:
    """A person moving ``champion`` to a version left ``gate.decision=promoting`` (its gate passed it, then its run
    died before moving the alias): say so on the version before the move. Left ``promoting``, `tuneline doctor
    --fix` later found the alias on it and credited the move to the gate ("promoted to champion" by its gate), while
    the history said a person made it (training QA). The caller holds the model's lock, so no live gate is between
    its ``promoting`` and its move."""
    tags = client.get_model_version(name, version).tags or {}
    if tags.get("gate.decision") != PROMOTING:
        return
    client.set_model_version_tag(name, version, "gate.sentence", (
        f"Version {version} passed its gate, but its run died before making it champion; it was made champion by "
        f"`tuneline {action}` instead (see `tuneline history`): {tags.get('gate.reasons', '')}."))
    client.set_model_version_tag(name, version, "gate.decision", INTERRUPTED)


def _conflict(log: PromotionLog, current: str | None, expected: str | None) -> PromotionConflict:
    latest = log.latest()
    if latest is not None and latest.to_version == current:
        who = (f"moved {_shown(latest.from_version)} -> {_shown(current)} by {latest.actor} at "
               f"{latest.at.isoformat(timespec='seconds')} ({latest.action}: {latest.reason})")
    else:
        who = ("moved outside tuneline's promotion history"
               + (f" (last recorded move: {latest.line()})" if latest else ""))
    return PromotionConflict(f"the {log.alias} of {log.model!r} is {_shown(current)}, not {_shown(expected)} as "
                             f"expected: {who}; nothing was changed")


def _move_locked(client: Any, log: PromotionLog, to_version: str | int, *, expected_from: str | None, actor: str,
                 action: str, reason: str) -> Promotion:
    """The compare-and-set of :func:`move_champion` for a caller that already holds ``model_lock(log.model)``
    (the gate): re-read, compare, check the target, move the alias, then record the move."""
    if log.alias != CHAMPION:
        raise ValueError(f"only the {CHAMPION!r} alias is moved through its history, not {log.alias!r}")
    if action not in ACTIONS:
        raise ValueError(f"unknown promotion action {action!r}; one of {', '.join(ACTIONS)}")
    name, to_version = log.model, _version_number(to_version)
    expected_from = None if expected_from is None else _version_number(expected_from)
    current = champion_version(client, name)
    if current != expected_from:
        raise _conflict(log, current, expected_from)
    if current == to_version:
        raise PromotionRefused(f"{name} v{to_version} is already the {CHAMPION}; nothing to do")
    _check_target(client, name, to_version, current)
    if action != GATE:
        _settle_cut_short_gate(client, name, to_version, action)
    log.registry(create=True)  # the history's id in this registry, before the move: its row cannot lack it
    client.set_registered_model_alias(name, CHAMPION, to_version)
    try:  # after the move, never before: see the module docstring
        return log.record(current, to_version, actor=actor, action=action, reason=reason)
    except Exception as exc:
        raise PromotionNotRecorded(f"the {CHAMPION} of {name!r} moved {_shown(current)} -> v{to_version} ({action} "
                                   f"by {actor}), but its history row could not be written: {redact(exc)}") from exc


def move_champion(client: Any, name: str, to_version: str | int, *, expected_from: str | None, actor: str,
                  action: str, reason: str, ledger_url: str, lock_url: str, timeout_s: float = 600.0) -> Promotion:
    """Move ``champion`` of ``name`` from ``expected_from`` (None: no champion) to ``to_version`` and record it.

    Compare-and-set under the model's gate lock: :class:`PromotionConflict` when the alias is elsewhere now,
    :class:`PromotionRefused` for a version that does not exist or is tagged failed/orphaned; in both cases nothing
    changed. Waits at most ``timeout_s`` for the lock (:class:`tuneline.locking.LockTimeout`).
    """
    # opened first: an unusable ledger fails before any waiting
    with PromotionLog(ledger_url, name, client=client) as log:
        with model_lock(name, lock_url, timeout_s=timeout_s):
            return _move_locked(client, log, to_version, expected_from=expected_from, actor=actor, action=action,
                                reason=reason)


def rollback_champion(client: Any, name: str, *, actor: str, reason: str | None, ledger_url: str, lock_url: str,
                      timeout_s: float = 600.0) -> Promotion:
    """Move ``champion`` back to the version it replaced (:func:`previous_champion`), recorded as ``rollback``.

    The champion is read under the lock, so the rollback undoes the champion of that moment, not of a moment ago.
    """
    with PromotionLog(ledger_url, name, client=client) as log:
        with model_lock(name, lock_url, timeout_s=timeout_s):
            current = champion_version(client, name)
            if current is None:  # what to do, as doctor says it (operator QA: the alias deleted in the MLflow UI)
                latest = log.latest()
                raise PromotionRefused(f"registered model {name!r} has no {CHAMPION} to roll back" + (
                    f"; the promotion history says v{latest.to_version} was champion last, so the alias was "
                    f"removed outside tuneline: restore it with `tuneline promote {name} {latest.to_version}` (or "
                    "promote the version you want by number)" if latest is not None else
                    f": promote a version by number (tuneline promote {name} VERSION)"))
            previous = previous_champion(log, current) or replaced_by_gate(client, name, current)
            if previous is None:
                raise PromotionRefused(f"no recorded version before {name} v{current} in the promotion history "
                                       f"{redact(log.url)}: nothing to roll back to (promote a version by number)")
            return _move_locked(client, log, previous, expected_from=current, actor=actor, action=ROLLBACK,
                                reason=reason or f"rolled back from v{current}")
