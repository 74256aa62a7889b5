"""A tracking server whose database is down answers ``/health`` but every store request with a 503, which MLflow's
client retried for minutes without a word: ``tuneline rollback`` hung 4 minutes with PostgreSQL stopped (operator QA).
A real PostgreSQL cluster and ``mlflow server`` of this test's own, the cluster stopped under the server."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tuneline.cli import main
from tuneline.errors import UserError
from tuneline.runtime import require_tracking_server


@pytest.fixture
def server_without_its_database(tmp_path):
    from services import MlflowServer, PostgresCluster, ServiceUnavailable

    try:
        cluster = PostgresCluster().start()
    except ServiceUnavailable as missing:
        pytest.skip(str(missing))
    server = MlflowServer(cluster.create_database("mlflow"), tmp_path / "artifacts", tmp_path / "mlflow.log",
                          Path(sys.executable).parent / "mlflow")
    try:
        server.start()
        assert require_tracking_server(server.url) == server.url  # up, and its store answers
        cluster.stop()
        yield server.url
    finally:
        server.stop()
        cluster.stop()


def test_a_server_whose_database_is_down_is_one_line_at_once(server_without_its_database, capsys):
    url = server_without_its_database
    started = time.monotonic()
    with pytest.raises(UserError) as raised:
        require_tracking_server(url)
    message = str(raised.value)
    assert message.startswith(f"the MLflow tracking server at {url} answers, but not from its backend store (HTTP 5")
    assert message.endswith("its database is probably down or unreachable from the server; bring it back (the "
                            "server's log says more), then run this again") and "\n" not in message
    assert main(["rollback", "some-model", "--reason", "db down", "--tracking-uri", url]) == 1
    assert time.monotonic() - started < 60  # it hung 4 minutes
    err = capsys.readouterr().err
    assert err.startswith("tuneline: the MLflow tracking server at") and "backend store" in err
    assert "Traceback" not in err
