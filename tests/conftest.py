"""Shared fixtures: an offline tiny BERT, an isolated MLflow store and Prefect's test harness."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# Under pytest-xdist (two workers on two cores) each worker's torch, and every process it starts, uses one thread:
# two 2-thread torch processes on two cores spin against each other, and these tiny models gain little from a second
# thread. Set before torch is imported anywhere in the worker.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_threads, "1")

from tuneline import runtime  # noqa: F401  (offline defaults before prefect/mlflow/transformers)

# Tests call tasks' functions directly (``task.fn``), outside any flow run: their log lines have no flow run to be sent
# to, which Prefect would otherwise report with a UserWarning per test.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
# Flow and task logs are not shipped to the Prefect API: no test but test_mlflow_server's log check reads them there (it
# turns shipping back on for its flows), and shipping cost the test process and the API server each about 5% of a
# flow-heavy file's CPU (measured on test_kinds_end_to_end + test_flow_classification: 38 -> 33 s server CPU, 134 ->
# 127 s test process CPU). Subprocesses the tests start inherit it.
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Heaviest test files first (seconds from ``file_seconds.json``; why and how to refresh it: ``file_seconds.py``),
    each file's tests in their own order. The xdist workers take files in this order (pyproject:
    ``--no-loadscope-reorder``), so the long real-model and server files start at once and short ones fill the end."""
    from file_seconds import heaviest_first, known_seconds

    items[:] = heaviest_first(items, known_seconds())


WORDS = sorted(set("""
the a an my your is was not it to for of on in at and or can you i me please why how when where what help need
invoice bill charge payment refund subscription fee receipt card money credit promo code discount twice
parcel delivery order package courier tracking shipment address damaged arrived arrive box return label express
app login page website crash crashing error slow load bug freeze screen blank laptop update dashboard search sync
password email username account profile settings reset change delete close verify sign team phone membership
good bad great awful love hate movie film fun boring
john smith paris london acme corp berlin google visited works lives
""".split()))


def write_tiny_bert(folder: Path, num_layers: int = 2, dropout: float = 0.1) -> Path:
    """A randomly initialised 2-layer BERT and a WordPiece tokenizer, built offline in a few milliseconds.

    ``dropout`` (BERT's default 0.1): at the learning rate the flow tests train this model with, whether it learns
    their keyword intents depends on the dropout draws (3 of 6 seeds ended near 0.62 macro-F1, the others near 0.99);
    without dropout every seed tried reached 0.99. Tests that assert how well it learns use 0."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)  # the same tiny model every session: tests must not depend on a lucky init

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
    vocab = list(dict.fromkeys(specials + WORDS + chars + pieces))
    # transformers 5 builds the WordPiece model from a vocab mapping (a vocab_file argument is silently ignored)
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    tokenizer.save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=num_layers, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    """One throwaway Prefect API for the whole session (flows run against it, as they would locally)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Run in a fresh folder with its own SQLite MLflow store (the embedded default)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@contextmanager
def working_in(folder: Path) -> Iterator[Path]:
    """Run a flow in ``folder`` with the embedded default store (./mlflow.db there), then restore the cwd.

    For module-scoped runs that several tests read (the function-scoped ``workdir`` fixture does the same per test).
    """
    old, saved_uri = Path.cwd(), os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(old)
        if saved_uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved_uri


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent (it lives in ../shared/data beside the repository)")
    return path


# --------------------------------------------------------------------------------------------------------------
# Throwaway servers for the scaled setup (tests/services.py): started once per session, always stopped and deleted.


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[object]:
    """A PostgreSQL cluster of its own (temporary folder, free port on 127.0.0.1); skipped when not installed."""
    from services import PostgresCluster, ServiceUnavailable

    try:
        cluster = PostgresCluster()
    except ServiceUnavailable as missing:
        pytest.skip(str(missing))
    try:
        try:
            cluster.start()
        except ServiceUnavailable as missing:
            pytest.skip(str(missing))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster) -> str:
    """``postgresql+psycopg://tuneline:<password>@127.0.0.1:<port>/tuneline``: a role with a password and its own
    database in the session's throwaway cluster (the ledger's, data versions' and promotion history's database)."""
    from services import ServiceUnavailable

    try:
        return postgres_cluster.create_database("tuneline")
    except ServiceUnavailable as missing:
        pytest.skip(str(missing))


@pytest.fixture(scope="session")
def mlflow_server(postgres_cluster, tmp_path_factory) -> Iterator[str]:
    """``mlflow server`` on a PostgreSQL backend store (a database of its own), serving the artifacts from a
    temporary folder; yields its ``http://127.0.0.1:<port>`` URL."""
    import sys

    from services import MlflowServer, ServiceUnavailable

    try:
        store = postgres_cluster.create_database("mlflow")
    except ServiceUnavailable as missing:
        pytest.skip(str(missing))
    folder = tmp_path_factory.mktemp("mlflow-server")
    server = MlflowServer(store, folder / "artifacts", folder / "mlflow-server.log",
                          Path(sys.executable).parent / "mlflow")
    try:
        server.start()
        yield server.url
    finally:
        server.stop()
