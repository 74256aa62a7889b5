"""What every tuneline task shares: the Prefect task decorator settings and a logger that works in and out of runs."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable
from typing import Any, Callable
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from tuneline.interrupts import stops_kept
from tuneline.timings import timed

#: tuneline tasks pass DataFrames, datasets and models between each other in memory. Prefect's default cache policy
#: would hash those inputs on every call, so caching is off here and done where it pays: tokenization (datasets'
#: cache files keyed by content) and checkpoints (resume).
def pipeline_task(__fn: Callable | None = None, **options: Any) -> Any:
    """``prefect.task`` with tuneline's settings (no cache policy, no result persistence, see above), whose body's
    run time is noted for the run's time breakdown (:mod:`tuneline.timings`; a wrapper, not a state hook, because
    Prefect logs two INFO lines for every hook it runs) and which ends as the stop it was sent, even one whose
    exception was lost on the way (:func:`tuneline.interrupts.stops_kept`)."""
    options = {"cache_policy": NO_CACHE, "persist_result": False, **options}

    def decorate(fn: Callable) -> Any:
        return task(timed(stops_kept(fn), options.get("name") or fn.__name__), **options)

    return decorate(__fn) if __fn is not None else decorate


def task_logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task run (shows in the Prefect UI), a plain logger elsewhere."""
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:  # MissingContextError outside a run: tasks are plain functions too
        logger = logging.getLogger("tuneline")
        if not logger.handlers and not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)-7s | %(message)s")
        return logger


#: seconds between two of a run's "the MLflow server does not answer" lines (one per outage, about)
SERVER_AWAY_EVERY_S = 120.0


class _NoRetryLines(logging.Filter):
    """Drops urllib3's "Retrying (Retry(total=6, ...)) after connection broken by ..." records; inside a Prefect
    run, the first of an outage becomes one line of the run's own (:func:`_say_server_away`)."""

    def __init__(self) -> None:
        super().__init__()
        self.said_at: float | None = None
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Retrying ("):
            return True
        try:
            self._say_server_away(record)
        except Exception:  # noqa: BLE001 - a line about the outage must never break the request being retried
            pass
        return False

    def _say_server_away(self, record: logging.LogRecord) -> None:
        """Prod-stack QA: the MLflow server stopped while a run on a worker finished training, and the run's log said
        nothing for two minutes while MLflow's client retried its closing writes. Now it says which server, why, and
        how long the client retries, once per :data:`SERVER_AWAY_EVERY_S`. Only in a run's own thread (the flow's
        or a task's): the curves' writer says its own line (:mod:`tuneline.live_curves`), and ``serve-model
        --follow`` its own, with what it still serves."""
        import sys
        import time

        from prefect.context import FlowRunContext, TaskRunContext

        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            return
        with self.lock:
            now = time.monotonic()
            if self.said_at is not None and now - self.said_at < SERVER_AWAY_EVERY_S:
                return
            self.said_at = now
        error = record.args[1] if isinstance(record.args, tuple) and len(record.args) > 1 else None
        reason = _connection_reason(error)
        mlflow = sys.modules.get("mlflow")
        server = mlflow.get_tracking_uri() if mlflow is not None else ""
        if not str(server).startswith(("http://", "https://")):
            server = ""
        from tuneline.runtime import redact

        task_logger().warning(
            "the MLflow server%s does not answer (%s); its client retries the request for up to about %d s "
            "(MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR), and the run goes on if it answers "
            "by then", f" at {redact(server)}" if server else "", reason, _retry_window_s())


def _connection_reason(error: object) -> str:
    """``connection refused``, ``timed out``, ... out of urllib3's error, else its type's name."""
    text = str(error or "")
    for needle, said in (("refused", "connection refused"), ("timed out", "timed out"),
                         ("Name or service not known", "unknown host"), ("reset", "connection reset"),
                         ("RemoteDisconnected", "the connection closed"), ("503", "503 Service Unavailable"),
                         ("502", "502 Bad Gateway"), ("504", "504 Gateway Timeout")):
        if needle in text:
            return said
    return type(error).__name__ if error is not None else "no answer"


def _retry_window_s() -> int:
    """Roughly how long MLflow's client retries one request: urllib3 sleeps ``factor * 2 ** (n - 1)`` seconds before
    the n-th retry from the second on (at most 120 s each), ``n`` up to MLFLOW_HTTP_REQUEST_MAX_RETRIES."""
    try:
        from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, MLFLOW_HTTP_REQUEST_MAX_RETRIES

        retries, factor = int(MLFLOW_HTTP_REQUEST_MAX_RETRIES.get()), float(MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get())
    except Exception:  # noqa: BLE001 - an unreadable setting: MLflow's defaults
        retries, factor = 7, 2.0
    return int(sum(min(factor * 2 ** (n - 1), 120.0) for n in range(2, retries + 1)))


def server_away_said() -> None:
    """Another line has just said that the MLflow server does not answer (:func:`tuneline.tracking.
    warn_if_server_down`): the retries that follow it say nothing more for :data:`SERVER_AWAY_EVERY_S`."""
    import time

    for installed in logging.getLogger("urllib3.connectionpool").filters:
        if isinstance(installed, _NoRetryLines):
            with installed.lock:
                installed.said_at = time.monotonic()


def quiet_http_retries() -> None:
    """Keep urllib3's retry lines out of tuneline's output. MLflow's client retries a request to a server that is
    away (a restart mid-training) with one WARNING per attempt, repeated in a run's log (operator QA); tuneline says
    it once itself (the curves held, :mod:`tuneline.live_curves`; a run that cannot reach the server), and the
    request's own error, if it gives up, says what failed. urllib3's other warnings are kept."""
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _NoRetryLines) for f in logger.filters):
        logger.addFilter(_NoRetryLines())


quiet_http_retries()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


# --- key hashes: one salted SHA-256 per row, shared by the duplicate, leakage and split rules ----------------------

#: Salt of key hashes computed where no split salt is given (duplicates and leakage do not depend on the salt).
DEFAULT_KEY_SALT = "tuneline"

_KEY_HASHES: dict[tuple[int, str], tuple[Any, Any]] = {}  # (id(arrow column), salt) -> (weak ref, hashes)
_KEY_HASHES_LOCK = threading.RLock()


def key_text(value: Any) -> str:
    """What identifies a row: its stripped text (a token list joined by spaces, for NER)."""
    import numpy as np

    return " ".join(value) if isinstance(value, (list, tuple, np.ndarray)) else str(value).strip()


def sha256_prefixes(salt: str, texts: Iterable[str]) -> Any:
    """The first 8 bytes of ``sha256_text(salt, text)`` of each text as a numpy uint64 array (big-endian), so
    ``int(sha256_text(salt, t)[:16], 16) == sha256_prefixes(salt, [t])[0]``."""
    import numpy as np

    head, sha = salt.encode("utf-8") + b"\x00", hashlib.sha256
    digests = b"".join([sha(head + text.encode("utf-8") + b"\x00").digest()[:8] for text in texts])
    return np.frombuffer(digests, dtype=">u8").astype(np.uint64)


def arrow_strings(values: Any) -> Any:
    """The Arrow ChunkedArray under a pandas ``str``/``string[pyarrow]`` Series (shared, immutable), else None."""
    import pandas as pd

    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        return values.array.__arrow_array__()
    return None


def key_hashes(keys: Any, salt: str) -> Any:
    """``sha256_prefixes(salt, [key_text(k) for k in keys])`` as a read-only uint64 array.

    For an Arrow-backed string column the result is remembered while the column's (immutable) Arrow data lives,
    so the rules that key rows by their text (duplicates, leakage, the split) hash each row once per salt: 10 million
    rows take seconds, not a Python set of millions of strings.
    """
    import numpy as np

    column = arrow_strings(keys)
    if column is None:
        hashes = sha256_prefixes(salt, (key_text(k) for k in keys))
        hashes.flags.writeable = False
        return hashes
    cached = remembered_key_hashes(keys, salt)
    if cached is not None:
        return cached
    missing = key_text(keys.dtype.na_value)  # what str(value).strip() makes of a missing value
    hashes = np.empty(len(column), dtype=np.uint64)
    position = 0
    for chunk in column.chunks:
        for start in range(0, len(chunk), 1 << 16):  # a slice at a time: few Python strings alive at once
            texts = chunk.slice(start, 1 << 16).to_pylist()
            hashes[position:position + len(texts)] = sha256_prefixes(
                salt, [missing if text is None else text.strip() for text in texts])
            position += len(texts)
    remember_key_hashes(keys, salt, hashes)
    return hashes


def remember_key_hashes(keys: Any, salt: str, hashes: Any) -> None:
    """Note ``hashes`` as the key hashes of ``keys`` (an Arrow-backed string column; others are not remembered),
    e.g. the hashes of the rows a filter kept."""
    import weakref

    column = arrow_strings(keys)
    if column is None or len(column) != len(hashes):
        return
    hashes.flags.writeable = False
    entry = (id(column), salt)

    def forget(reference: Any, entry: tuple[int, str] = entry) -> None:
        with _KEY_HASHES_LOCK:
            if entry in _KEY_HASHES and _KEY_HASHES[entry][0] is reference:
                del _KEY_HASHES[entry]

    with _KEY_HASHES_LOCK:
        _KEY_HASHES[entry] = (weakref.ref(column, forget), hashes)


def forget_key_hashes(keys: Any) -> None:
    """Drop the remembered key hashes of ``keys`` (every salt): for a column no rule will key again."""
    column = arrow_strings(keys)
    if column is None:
        return
    with _KEY_HASHES_LOCK:
        for entry in [e for e in _KEY_HASHES if e[0] == id(column)]:
            if _KEY_HASHES[entry][0]() is column:
                del _KEY_HASHES[entry]


def remembered_key_hashes(keys: Any, salt: str | None = None) -> Any:
    """The remembered key hashes of ``keys`` with ``salt`` (any salt if None), else None."""
    column = arrow_strings(keys)
    if column is None:
        return None
    with _KEY_HASHES_LOCK:
        entries = [(s, e) for (i, s), e in _KEY_HASHES.items() if i == id(column) and (salt is None or s == salt)]
    for _, (reference, hashes) in entries:
        if reference() is column:
            return hashes
    return None


def remembered_key_salts(keys: Any) -> list[str]:
    """The salts ``keys`` has remembered key hashes for."""
    column = arrow_strings(keys)
    if column is None:
        return []
    with _KEY_HASHES_LOCK:
        entries = [(s, e) for (i, s), e in _KEY_HASHES.items() if i == id(column)]
    return [salt for salt, (reference, _) in entries if reference() is column]


def remembered_key_salt(keys: Any) -> str | None:
    """The salt of some remembered key hashes of ``keys``, else None."""
    return next(iter(remembered_key_salts(keys)), None)
