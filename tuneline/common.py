"""What every tuneline task shares: the Prefect task decorator settings and a logger that works in and out of runs."""

from __future__ import annotations

import hashlib
import logging
from functools import partial
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

#: tuneline tasks pass DataFrames, datasets and models between each other in memory. Prefect's default cache policy
#: would hash those inputs on every call, so caching is off here and done where it pays: tokenization (datasets'
#: cache files keyed by content) and checkpoints (resume).
pipeline_task = partial(task, cache_policy=NO_CACHE, persist_result=False)


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
