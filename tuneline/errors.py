"""Errors the user can fix (data, config, files), told apart from bugs.

Every tuneline error that means "change your input" subclasses :class:`UserError`. The CLI prints such an error as
one ``tuneline:`` line with no traceback, and :func:`quiet_user_error_tracebacks` keeps Prefect's console from
printing its tracebacks too (the Prefect run log and the MLflow run still record them in full). Anything else is a
bug or an outage and keeps its traceback.
"""

from __future__ import annotations

import errno
import logging
import re


class UserError(ValueError):
    """A problem with the user's input; the message says which file/key/row and what to change."""


def excerpt(value: object, width: int = 60) -> str:
    """``value`` as a message quotes it, at most about ``width`` characters: a long text cut before it is quoted
    (``'a long te…'``). ``f"{value!r:.60}"`` cut the quoted form, leaving an unclosed quote or half an escape
    (``'caf\\xe``), which read as if the data were broken there."""
    if isinstance(value, str) and len(repr(value)) > width:
        cut = value[:max(1, width - 3)]
        while len(repr(cut)) > width - 1 and len(cut) > 1:
            cut = cut[:-1]
        return repr(cut) + "…"
    shown = repr(value)
    return shown if len(shown) <= width else shown[:width - 1] + "…"


def bytes_shown(data: bytes) -> str:
    """Undecodable bytes as an error names them: ``byte 0x97``, ``bytes 0xe2 0x80``. The bare hex (``bytes 97``)
    read as a decimal count of bytes, and the 0x is what hex editors and encoding tables show."""
    return ("byte " if len(data) == 1 else "bytes ") + " ".join(f"0x{b:02x}" for b in data)


def _user_error_names() -> set[str]:
    names, pending = set(), [UserError]
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return names


_FAILED_STATE = re.compile(r"Finished in state Failed\(.*encountered an exception:? (\w+):")
#: Prefect's INFO lines around this module's own ``on_running`` hook: two lines of every retraining run about a hook
#: that only quiets the console
_OWN_HOOK = re.compile(r"^(Running hook '(quiet_console|cancelled_when_stopped)'|"
                       r"Hook '(quiet_console|cancelled_when_stopped)' finished)")
#: the crash lines of an interrupted run ("Crash detected! Execution was aborted by an interrupt signal." or, for
#: SIGTERM, "by a termination signal"; the tasks' and the flow's "Crashed(...)" states): four lines before the CLI's
#: own
_INTERRUPTED = re.compile(r"aborted by (an interrupt|a termination) signal")


#: a full disk in the words of the layers that hit it: Python (errno 28), safetensors' Rust ("os error 28"), SQLite
_OUT_OF_SPACE = re.compile(r"No space left on device|database or disk is full|os error 28|\[Errno 28\]", re.I)


#: what to do about :func:`out_of_space`
FREE_SPACE = ("free space on the disk of work_dir and of the MLflow store, then run the same command again (training "
              "resumes from its last complete checkpoint)")


def out_of_space(error: BaseException | None) -> str | None:
    """The line that says a disk filled up, when ``error`` (or an error it was raised from) is one; else None.

    A full disk is the machine's to fix, not a bug: it printed Prefect's two tracebacks and "this is not a problem with
    your data or config", and a checkpoint that could not be saved read as the lock database's "disk is full" when that
    was the next write (training QA)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or _OUT_OF_SPACE.search(str(error)):
            where = getattr(error, "filename", None)
            return "the disk is full" + (f" (writing {where})" if where else "")
        error = error.__cause__ or error.__context__
    return None


def _is_interrupt(error: BaseException | None) -> bool:
    """A Ctrl-C or a termination signal as the flow run sees it (Prefect's ``ExternalSignal``, a BaseException)."""
    return isinstance(error, KeyboardInterrupt) or any(
        cls.__name__ == "ExternalSignal" and cls.__module__ == "prefect.exceptions" for cls in type(error).__mro__)


class _DropUserErrorTracebacks(logging.Filter):
    """Drops the records that repeat a user error: its tracebacks, and the "Finished in state Failed(...)" lines
    that quote it (the CLI prints it once, as one line). Drops the traceback of an interrupt too (Ctrl-C on ``tuneline
    serve`` mid-run printed Prefect's "Engine execution interrupted by base exception" and 60 lines of stack): the
    "Crash detected! Execution was aborted by an interrupt signal" lines say what happened."""

    def __init__(self, one_line: bool = False) -> None:
        super().__init__()
        self.one_line = one_line  # no CLI in this process prints the error: say it here, once, as one line
        self._said: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if _is_interrupt(error):
            return False
        message = record.getMessage()
        if _OWN_HOOK.search(message):
            return False
        if not self.one_line and _INTERRUPTED.search(message):
            return False  # the CLI says it once: "tuneline: interrupted; ..."
        full = out_of_space(error)
        if isinstance(error, UserError) or full:
            if not self.one_line or id(error) in self._said:
                return False
            self._said.add(id(error))
            said = f"{full}: {FREE_SPACE}" if full else str(error)
            record.msg, record.args, record.exc_info, record.exc_text = f"tuneline: {said}", (), None, None
            return True
        if error is None and "Finished in state Failed(" in message and _OUT_OF_SPACE.search(message):
            return False  # said once, as above
        failed = _FAILED_STATE.search(message)
        return not (failed and failed.group(1) in _user_error_names())


def quiet_console(flow: object = None, flow_run: object = None, state: object = None) -> None:
    """A flow's ``on_running`` hook: :func:`quiet_user_error_tracebacks` in whatever process runs the flow. The CLI
    installs it itself (first, so its filter is the one kept); a flow run that ``tuneline serve``, a worker or
    ``prefect deployment run`` starts runs in a process of its own, whose console printed every user error's and
    interrupt's traceback, and then, with the tracebacks dropped, nothing at all: a drift stop on a worker left its
    console ending at the MLflow run's line (operator QA). There the error is said once, as the CLI says it."""
    quiet_user_error_tracebacks(one_line=True)


def quiet_user_error_tracebacks(one_line: bool = False) -> None:
    """Drop, on Prefect's console handlers only, the log records that repeat a :class:`UserError` (``one_line``:
    the first of them is kept as the error's one line)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    quiet = _DropUserErrorTracebacks(one_line)
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler) and not any(
                    isinstance(f, _DropUserErrorTracebacks) for f in handler.filters):
                handler.addFilter(quiet)
