"""Database writes that a Ctrl-C does not cut in half.

Ctrl-C raises KeyboardInterrupt between any two bytecodes of the main thread, and a training logs its curves to MLflow
(and the retraining loop writes its ledger) from that thread many times a minute. One landing inside SQLAlchemy's
write path left a session half-committed, its connection holding SQLite's write lock: the run's closing writes then
waited out the 20 s busy timeout and failed ("database is locked", exit 1 in place of the resume hint and 130; CI
hit it, and a loop of interrupted metric writes hit it once in 6-20 interrupts), or the pool's own cleanup raised
"Cannot operate on a closed database". Python's answer for code that must not be cut is to let the handler record
the signal and act on it after the critical part: :func:`deferred_interrupts`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: the signals the commands turn into an interrupt (SIGTERM: a service manager's stop, ``kill``)
DEFERRED = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service manager's stop, ``kill``, a Kubernetes pod's shutdown) as the commands see it: an interrupt,
    so every cleanup that a Ctrl-C runs (the MLflow run closed as KILLED, the batches given back, the checkpoint
    kept for a resume) runs for it too, and the CLI ends with its own line and 143 (128 + SIGTERM)."""


def _signal_of(exc_type: type | None) -> int | None:
    """The signal an interrupt exception stands for: SIGTERM for :class:`Terminated` and Prefect's
    ``TerminationSignal``, SIGINT for a Ctrl-C; None for any other exception."""
    if exc_type is None:
        return None
    names = {cls.__name__ for cls in exc_type.__mro__}
    if "Terminated" in names or "TerminationSignal" in names:
        return signal.SIGTERM
    if KeyboardInterrupt in exc_type.__mro__ or "ExternalSignal" in names:
        return signal.SIGINT
    return None


@contextmanager
def kept_lost_interrupts() -> Iterator[list[int]]:
    """The signals whose interrupt Python dropped in the block because it landed in a ``__del__`` or a weakref
    callback ("Exception ignored in: <function Dataset.__del__ ...> ... TerminationSignal"), kept in the yielded
    list instead of printed as that traceback, so that the command can end as stopped rather than with 0.

    Why: a SIGTERM that arrived as a retraining run was finishing was lost so; the command printed that traceback,
    then its summary, and exited 0, which a service manager reads as a normal finish, not a stop (loop QA). The
    training loop raises its own lost interrupts again (:func:`remembered_interrupts`)."""
    lost: list[int] = []
    hook = sys.unraisablehook

    def keep_lost_interrupt(unraisable: Any) -> None:
        number = _signal_of(unraisable.exc_type)
        if number is None:
            hook(unraisable)
        else:
            lost.append(number)

    sys.unraisablehook = keep_lost_interrupt
    try:
        yield lost
    finally:
        sys.unraisablehook = hook


def terminate_as_interrupt() -> None:
    """SIGTERM raises :class:`Terminated` in the main thread from now on (elsewhere: nothing changes).

    Why: Python's default for SIGTERM ends the process at once. Inside a flow run Prefect's own handler raises its
    ``TerminationSignal``, lets the run's cleanup run, then sends the signal again under the handler in place before
    the flow: under the default that killed ``tuneline train`` after Prefect's crash lines with no word of what
    happened or what to do next. Under this one the CLI says it, as it does for a Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        return

    def terminate(signum: int, _frame: Any) -> None:
        raise Terminated(f"signal {signum}")

    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
            signal.signal(signal.SIGTERM, terminate)
    except (ValueError, OSError):  # an embedding interpreter without signal support
        pass


@contextmanager
def deferred_interrupts(*, second_ctrl_c_forces: bool = False) -> Iterator[None]:
    """SIGINT and SIGTERM arriving inside the block take effect when it ends, as they would have (the handlers in
    place before the block run then, with the first signal). Outside the main thread, where no handler runs, the
    block runs as it is. A write takes milliseconds, so Ctrl-C still stops at once.

    ``second_ctrl_c_forces``: for a longer block (a run's closing writes, which an unreachable MLflow server can
    stretch to minutes of retries), a second Ctrl-C inside it takes effect at once, as users expect of a second
    Ctrl-C; SIGTERM is always held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, Any]] = []
    previous: dict[int, Any] = {}

    def hold(signum: int, frame: Any) -> None:
        if second_ctrl_c_forces and signum == signal.SIGINT and any(n == signal.SIGINT for n, _ in caught):
            _deliver(signum, frame, previous[signum])
        caught.append((signum, frame))

    try:
        for number in DEFERRED:
            previous[number] = signal.signal(number, hold)
    except (ValueError, OSError):  # an embedding interpreter without signal support: nothing is deferred
        for number, handler in previous.items():
            signal.signal(number, handler)
        yield
        return
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if caught:
            _deliver(*caught[0], previous[caught[0][0]])


@contextmanager
def uncut_cleanup() -> Iterator[None]:
    """The cleanup of a run cut short by an interrupt (closing its MLflow run, giving back its ledger batches),
    held against the next signal until it is done.

    One stop often sends two signals: a terminal's Ctrl-C reaches ``tuneline serve``'s whole process group, so the
    served run gets SIGINT, and then Prefect's runner, stopping, sends that run SIGTERM. The second one, landing
    inside the first one's cleanup, cut it: the run stayed RUNNING in MLflow and its batches stayed claimed until
    their lease ran out (CI hit it in tests/test_serve_interrupt.py once the cleanup also collected garbage).
    The held signal takes effect after the cleanup, and a second Ctrl-C still forces its way."""
    with deferred_interrupts(second_ctrl_c_forces=True):
        yield


@contextmanager
def remembered_interrupts() -> Iterator[list[int]]:
    """SIGINT and SIGTERM arriving in the block are noted in the yielded list, then handled as before (the handler
    in place still raises), so a loop that looks at the list (the Trainer, after each step) can raise it again.

    Why: an exception a signal handler raises is lost when it lands while Python runs a weakref callback or a
    ``__del__`` ("Exception ignored in: ... KeyboardInterrupt"): the garbage collector runs them between any two
    bytecodes. CI saw a Ctrl-C to ``tuneline serve`` land so: the training went on, and the run never gave its
    batches back. Outside the main thread, where no handler runs, nothing is noted."""
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous: dict[int, Any] = {}

    def note(signum: int, frame: Any) -> None:
        seen.append(signum)
        _deliver(signum, frame, previous[signum])

    try:
        for number in DEFERRED:
            if signal.getsignal(number) not in (signal.SIG_IGN, None):  # an ignored signal stays ignored (nohup)
                previous[number] = signal.signal(number, note)
    except (ValueError, OSError):
        for number, handler in previous.items():
            signal.signal(number, handler)
        yield seen
        return
    hook = sys.unraisablehook

    def quiet_lost_interrupt(unraisable: Any) -> None:
        """The interrupt a weakref callback or ``__del__`` swallowed, noted above and raised again by the loop:
        not Python's "Exception ignored in ... Traceback ... KeyboardInterrupt" on the console as well (CI: a Ctrl-C
        to ``tuneline serve`` left one in the served run's log, though the run was stopped and cleaned up)."""
        if seen and _signal_of(unraisable.exc_type) is not None:  # a Ctrl-C, our SIGTERM or Prefect's
            return
        hook(unraisable)

    sys.unraisablehook = quiet_lost_interrupt
    try:
        yield seen
    finally:
        sys.unraisablehook = hook
        for number, handler in previous.items():
            signal.signal(number, handler)


def _deliver(signum: int, frame: Any, handler: Any) -> None:
    """What ``signum`` would have done under ``handler``: call it, or for the default action send it again."""
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)
    # SIG_IGN (or None, a handler not set from Python): ignored, as it would have been


def cancelled_when_stopped(flow: object = None, flow_run: Any = None, state: Any = None) -> None:  # noqa: ANN401
    """A flow's ``on_crashed`` hook: a run stopped on purpose (Ctrl-C, a SIGTERM from a service manager or ``kill``)
    reads Cancelled, not Crashed. Prefect calls every interrupt a crash, so an operator's dashboard (and any automation
    on Crashed runs) counted each deliberate stop of a retraining as a failure (loop QA). A crash of another cause, or
    a process killed outright (which runs no hook), stays Crashed. Best effort: the stop itself must go on."""
    import re

    message = str(getattr(state, "message", "") or "")
    stopped = re.search(r"aborted by (an interrupt|a termination) signal", message)
    if flow_run is None or stopped is None:
        return
    from prefect import get_client
    from prefect.states import Cancelled

    why = "Ctrl-C" if stopped.group(1) == "an interrupt" else "SIGTERM"
    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run.id, Cancelled(message=f"stopped by {why}"), force=True)
    except Exception:  # noqa: BLE001 - the API may be what is going away; Crashed is then what it keeps
        pass
