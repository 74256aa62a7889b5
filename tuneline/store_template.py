"""A new local MLflow store (SQLite) made from a copy of MLflow's own empty schema instead of migrations.

Why: opening a SQLite file that does not exist makes MLflow build its schema by creating the first tables and then
running every alembic migration since, about 50 steps: 4-5 s on a quiet 2-core machine, 7-12 s beside other work.
Every new project folder paid it (README command 1 too), and the test suite, which gives most runs a folder of their
own, paid it about a hundred times. The schema MLflow ends with is the same every time for one MLflow version, so it
is built once (by MLflow: :func:`mlflow.store.db.utils._initialize_tables`, what its store runs on an empty
database) into a per-user cache, and a new store starts as a copy of it. The copy holds tables only: MLflow itself
then adds its default experiment on first open, as it does for a store it built, so nothing in the copy names the
folder it was built in. ``tests/test_store_template.py`` holds a copied store to one MLflow builds, table for table.

Anything unexpected (no writable cache, a changed private MLflow function) leaves the store to MLflow, as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

_log = logging.getLogger(__name__)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (absolute: ``sqlite:////abs``; relative to the current folder:
    ``sqlite:///rel``), or None for any other store (a server, in-memory SQLite)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def template_path() -> Path:
    """Where this MLflow version's empty schema is kept: ``$TUNELINE_CACHE`` or ``~/.cache/tuneline`` (XDG)."""
    import mlflow

    root = os.environ.get("TUNELINE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
        / "tuneline"
    return Path(root) / f"mlflow-{mlflow.__version__}-empty-store.db"


def _built_template() -> Path | None:
    """The template, built now if it is not there yet (into a file of this process's own, renamed into place in one
    step, so that processes building it at once never read half a file); None when it cannot be built."""
    template = template_path()
    if template.is_file():
        return template
    building = template.with_name(f".{template.name}.{os.getpid()}.building")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        from mlflow.store.db.utils import _initialize_tables
        from sqlalchemy import create_engine

        engine = create_engine(f"sqlite:///{building}")
        try:
            _initialize_tables(engine)
        finally:
            engine.dispose()
        os.replace(building, template)
        return template
    except Exception as error:  # noqa: BLE001 - only speed depends on it: MLflow builds the store as before
        _log.debug("no MLflow store template (%s): MLflow builds the new store itself", error)
        with contextlib.suppress(OSError):
            building.unlink(missing_ok=True)
        return None


def seed_new_store(uri: str) -> bool:
    """Start the SQLite store of ``uri`` as a copy of the empty schema when its file does not exist yet; True when it
    was seeded. An existing file (another process's store, made meanwhile) is never replaced: the copy is linked into
    place, which fails when the name is taken. Callers hold the store's first-open lock
    (:func:`tuneline.tracking.configure_mlflow`)."""
    database = sqlite_path(uri)
    if database is None or database.exists() or not database.parent.is_dir():
        return False
    template = _built_template()
    if template is None:
        return False
    copy = database.with_name(f".{database.name}.{os.getpid()}.seed")
    try:
        shutil.copyfile(template, copy)
        os.link(copy, database)
        return True
    except OSError as error:  # a store made meanwhile (FileExistsError), a file system without hard links
        _log.debug("store %s not seeded (%s): MLflow builds it itself", database, error)
        return False
    finally:
        copy.unlink(missing_ok=True)
