"""The warnings a run logged, kept for its summary.

A warning a task logs (labels written several ways merged into one class, texts cut at ``max_length``, most tokens
unknown to the vocabulary) scrolled past among hundreds of progress lines, and the summary printed at the end, and its
``summary.json``, said nothing of it: a user reading only the summary, or a script reading the JSON, missed that the
data was read differently from how it was written. :func:`collected_warnings` attaches one ``logging`` handler to the
loggers tasks write to (Prefect's run loggers, tuneline's own) for the run, and hands the flow the list it fills.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

#: the loggers a run's tasks and flows write to: Prefect's run loggers (``task_logger()`` inside a run) and
#: tuneline's own (outside a run, and the modules that log directly)
RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs", "tuneline")


#: ``extra`` for a warning the summary prints under its own heading (a rejected batch: "batch rejected"): kept out of
#: the list, so a 780-character reason is not printed again among the warnings (loop QA: three times a run)
SAID_IN_SUMMARY = {"said_in_summary": True}


class WarningList(logging.Handler):
    """Keeps the text of every WARNING-or-worse record once, in the order first logged (but those logged with
    :data:`SAID_IN_SUMMARY`)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must not break the run; logging reports it anyway
            return
        if message not in self.messages and not getattr(record, "said_in_summary", False):
            self.messages.append(message)


@contextmanager
def collected_warnings(loggers: tuple[str, ...] = RUN_LOGGERS) -> Iterator[list[str]]:
    """The warnings logged inside the block, as a list filled while it runs (hand it to the summary task)."""
    handler = WarningList()
    targets = [logging.getLogger(name) for name in loggers]
    for target in targets:
        target.addHandler(handler)
    try:
        yield handler.messages
    finally:
        for target in targets:
            target.removeHandler(handler)


class _Renamed(logging.Filter):
    """Rewrites a record whose message names one of ``paths`` (old → new) before any handler sees it."""

    def __init__(self, paths: dict[str, str]) -> None:
        super().__init__()
        self.paths = paths

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - logging reports a malformed record itself
            return True
        renamed = message
        for old, new in self.paths.items():
            renamed = renamed.replace(old, new)
        if renamed != message:
            record.msg, record.args = renamed, None
        return True


@contextmanager
def logged_as(paths: dict[str, str], loggers: tuple[str, ...] = RUN_LOGGERS) -> Iterator[None]:
    """Inside the block, log lines name each file of ``paths`` by the path it maps to. The loop reads a batch from its
    hash-checked copy (``datasets/<model>/landed/<sha256>/b1.tsv``); a reader's warning about that file named the
    copy, which the user never wrote, where the landing path (``landing/b1.tsv``) says which file to fix."""
    renamed = _Renamed({old: new for old, new in paths.items() if old and old != new})
    targets = [logging.getLogger(name) for name in loggers]
    for target in targets:
        target.addFilter(renamed)
    try:
        yield
    finally:
        for target in targets:
            target.removeFilter(renamed)
