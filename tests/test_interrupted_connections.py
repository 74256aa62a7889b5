"""``release_interrupted_connections`` gives back the SQLite connection an interrupted write left open, also where
the interrupt is chained: a SIGTERM landing as SQLAlchemy handled the write's own error propagates as a second
exception, and the first one's frames kept the connection and its write lock (loop QA: the run's closing write
waited 20 s, failed with "database is locked", and left the MLflow run RUNNING)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tuneline.tracking import release_interrupted_connections


class Stop(BaseException):
    """An interrupt, as a signal handler raises it."""


def write_interrupted(path: Path) -> None:
    connection = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")  # holds the write lock, as an interrupted write's open transaction does
    connection.execute("INSERT INTO t VALUES (1)")
    raise Stop("interrupted mid-write")


def interrupted_while_handling(path: Path) -> BaseException:
    """The first exception's frames hold the connection; what propagates is a second one, raised while the first
    was being handled (its ``__context__``)."""
    try:
        try:
            write_interrupted(path)
        except Stop:
            raise Stop("the next signal, during the handling")  # noqa: B904 - chained, as it happened
    except Stop as error:
        return error


def writable(path: Path) -> bool:
    other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def test_the_connection_a_chained_interrupt_keeps_is_given_back(tmp_path):
    path = tmp_path / "store.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.commit()
    setup.close()
    error = interrupted_while_handling(path)
    assert error.__context__ is not None and error.__context__.__traceback__ is not None
    assert not writable(path)  # the first exception's frames still hold the write lock
    release_interrupted_connections(error)
    assert writable(path)
