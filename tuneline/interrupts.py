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

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: the signals the commands turn into an interrupt (SIGTERM: a service manager's stop, ``kill``)
DEFERRED = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service manager's stop, ``kill``, a Kubernetes pod's shutdown) as the commands see it: an interrupt,
    so every cleanup that a Ctrl-C runs (the MLflow run closed as KILLED, the batches given back, the checkpoint
    kept for a resume) runs for it too, and the CLI ends with its own line and 143 (128 + SIGTERM)."""


def signal_of(exc_type: type | None) -> int | None:
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


def interrupt_in(error: BaseException | None) -> BaseException | None:
    """The interrupt (a Ctrl-C, :class:`Terminated`, Prefect's ``TerminationSignal``) that ``error`` is or that it
    was raised while handling (its ``__context__`` / ``__cause__`` chain); None when the chain holds none.

    Why: a signal whose exception lands inside a database call's error handling is replaced by the error that
    handling raises. A SIGTERM landing in an MLflow write on SQLite surfaced as "database is locked" (an
    ``MlflowException`` with a 5xx status): the registration task retried it as transient, the run went on and
    the command ended with 0 (loop QA, 1 stop in about 8). The error that reaches the code is not the event: the
    stop is."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        link = pending.pop(0)
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        if signal_of(type(link)) is not None:
            return link
        pending += [link.__context__, link.__cause__]
    return None


#: the read and write ends of the pipe Python writes each arriving signal's number to (``signal.set_wakeup_fd``)
_WAKEUP: list[int] = []
#: the stop signals read from that pipe so far, in arrival order
_ARRIVED: list[int] = []


def note_stop_signals() -> bool:
    """From now on every SIGINT and SIGTERM that reaches the process is noted (:func:`stop_signals_noted`),
    whichever Python handler it meets (ours, Prefect's, the default) and whatever becomes of the exception that
    handler raises. Set once per process, from the main thread (False in another thread, or where the process's
    wakeup fd is another user's: an asyncio loop's that handles signals, whose fd stays theirs).

    Why Python's own hook: Prefect replaces the SIGTERM handler for the length of each flow run, so a handler of
    ours would not see the signals that matter; the C-level signal handler writes every caught signal's number to
    the wakeup fd before any Python code runs."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if _WAKEUP:
        return _still_noting()
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    try:
        previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except (ValueError, OSError):
        os.close(read)
        os.close(write)
        return False
    if previous != -1:  # someone else's: theirs stays
        signal.set_wakeup_fd(previous)
        os.close(read)
        os.close(write)
        return False
    _WAKEUP[:] = [read, write]
    os.register_at_fork(after_in_child=_forget_in_child)
    return True


def _still_noting() -> bool:
    """Whether the wakeup fd is still ours, set again if it was let go: an asyncio loop that handled signals in the
    main thread sets it to -1 when it closes (a signal arriving in the instant between the two calls still meets its
    handler; only its note would be missed)."""
    try:
        current = signal.set_wakeup_fd(-1)
        if current in (-1, _WAKEUP[1]):
            signal.set_wakeup_fd(_WAKEUP[1], warn_on_full_buffer=False)
        else:  # another user's (an asyncio loop's, running now): theirs stays
            signal.set_wakeup_fd(current)
    except (ValueError, OSError):
        return False
    return current in (-1, _WAKEUP[1])


def _forget_in_child() -> None:
    """A forked child (a data loader's worker) writes its own signals elsewhere: not into its parent's notes."""
    try:
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        pass
    _WAKEUP.clear()


def stop_signals_noted() -> list[int]:
    """The SIGINTs and SIGTERMs that reached the process since :func:`note_stop_signals`, oldest first."""
    if _WAKEUP:
        while True:
            try:
                data = os.read(_WAKEUP[0], 512)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            _ARRIVED.extend(number for number in data if number in DEFERRED)
    return list(_ARRIVED)


def stops_kept(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a pipeline task's body) that ends as the stop it was sent: a SIGINT or SIGTERM that arrived while it
    ran is raised at its end although its exception was lost on the way (replaced by an error raised as a database
    call handled it, then perhaps caught as that error; dropped in a ``__del__``), and an error raised while
    handling an interrupt is that interrupt again.

    Why at the task's edge: Prefect decides there whether a run goes on (the next task, a retry of a "transient"
    error); an interrupt it sees ends the flow run as stopped. Main thread only: signals reach no other."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        noting = note_stop_signals()
        before = len(stop_signals_noted()) if noting else 0
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            stop = interrupt_in(error)
            if stop is not None and stop is not error:
                raise stop  # noqa: B904 - Python chains the error that replaced it as the stop's context
            if stop is None and noting:
                _raise_noted(before)
            raise
        if noting:
            _raise_noted(before)
        return result

    return wrapper


def _raise_noted(before: int) -> None:
    """Deliver the first stop signal noted after the first ``before`` as the handler now in place would: it raises
    (ours :class:`Terminated`, Prefect's ``TerminationSignal``, Python's ``KeyboardInterrupt``)."""
    arrived = stop_signals_noted()[before:]
    if arrived:
        _deliver(arrived[0], None, signal.getsignal(arrived[0]))


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
        number = signal_of(unraisable.exc_type)
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
        if seen and signal_of(unraisable.exc_type) is not None:  # a Ctrl-C, our SIGTERM or Prefect's
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
