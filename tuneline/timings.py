"""Where a run's time went: each task's own run time, and what no task accounts for.

Every tuneline task's body is wrapped by :func:`timed` (through :func:`tuneline.common.pipeline_task`), which notes
the task's name and how long the body ran. :func:`time_breakdown` turns
those records and the process's start time into one breakdown: startup (interpreter, imports, the Prefect API, up to
the first task), each stage, and the flow's own overhead between tasks. ``tuneline train`` prints it in one line,
writes it to ``timings.json`` in the run folder and logs it as ``time.*`` metrics, so a slow run says where its
time went without a profiler.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import psutil

_LOCK = threading.Lock()
_RECORDS: list["TaskTime"] = []


@dataclass(frozen=True)
class TaskTime:
    name: str
    started: float  # epoch seconds
    seconds: float


def timed(fn: Callable, name: str) -> Callable:
    """``fn``, noting how long each call took under ``name`` (also when it raises)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started, clock = time.time(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            with _LOCK:
                _RECORDS.append(TaskTime(name=name, started=started, seconds=time.perf_counter() - clock))

    return wrapper


#: The stage a run spends waiting for another run of its model (the retraining slot): not startup, and not slowness
WAITING = "waiting for another run"


def record(name: str, started: float, seconds: float) -> None:
    """Note a stage that is not a task body (``started``: epoch seconds), e.g. :data:`WAITING`."""
    with _LOCK:
        _RECORDS.append(TaskTime(name=name, started=started, seconds=seconds))


def task_times(since: float = 0.0) -> list[TaskTime]:
    with _LOCK:
        return [r for r in _RECORDS if r.started >= since]


_MARK: list[float] = []
_MOMENTS: dict[str, float] = {}


def moment(name: str) -> None:
    """Note when the command reached a point of its startup (``flow imported``, ``API ready``), for the breakdown."""
    _MOMENTS[name] = time.time()


# A process older than this when tuneline was imported did something else before it became this interpreter.
_EXEC_SLACK_S = 10.0


def process_started() -> float:
    """When this command started (epoch seconds): the startup share counts the interpreter and the imports too.

    That is the process's creation time, unless the process was created long before tuneline was imported: a shell
    runs the last command of ``bash -c 'pip install ... && tuneline demo'`` by exec in its own process, whose creation
    time is the start of the install (README command 1 reported a 163 s "startup" that was pip's). Then the time this
    interpreter imported tuneline counts (it misses only the interpreter's own start, a tenth of a second).
    """
    import tuneline

    created = psutil.Process(os.getpid()).create_time()
    return created if tuneline.IMPORTED_AT - created <= _EXEC_SLACK_S else tuneline.IMPORTED_AT


def mark_command_start() -> None:
    """Called by a command that runs one flow in its own process (``tuneline train``): time counts from the
    process's start. Without it (a flow run in a long-lived served process) time counts from the flow run's start."""
    _MARK[:] = [process_started()]


def run_started() -> float:
    """The start this run's breakdown counts from: the command's process, else the current flow run."""
    if _MARK:
        return _MARK[0]
    try:
        from prefect.context import FlowRunContext

        context = FlowRunContext.get()
        if context is not None and context.flow_run is not None and context.flow_run.start_time is not None:
            return context.flow_run.start_time.timestamp()
    except Exception:  # noqa: BLE001
        pass
    return process_started()


@dataclass
class TimeBreakdown:
    total_s: float
    startup_s: float                          # process start → first task starts
    stages: dict[str, float]                  # task name → seconds (summed over repeated runs of one task)
    between_tasks_s: float                    # first task start → last task end, not inside any task
    after_last_task_s: float                  # last task end → now (the flow's end, the CLI)
    training_s: float                         # the Trainer's own train_runtime
    outside_training_fraction: float
    notes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def metrics(self) -> dict[str, float]:
        return {"time.total_s": self.total_s, "time.startup_s": self.startup_s,
                "time.between_tasks_s": self.between_tasks_s, "time.training_s": self.training_s,
                "time.outside_training_fraction": self.outside_training_fraction,
                **{f"time.{name}_s": seconds for name, seconds in self.stages.items()}}

    def line(self) -> str:
        """One line, biggest parts first: ``time: 75 s in all; training 40 s (53%), startup 21 s, ...``."""
        parts = {"startup": self.startup_s, **self.stages}
        if "train-model" in parts:
            parts["train-model (besides training)"] = max(0.0, parts.pop("train-model") - self.training_s)
        parts = {k: v for k, v in parts.items() if v >= 0.5}
        shown = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in
                          sorted(parts.items(), key=lambda item: -item[1])[:6])
        return (f"time: {self.total_s:.0f} s in all; training {self.training_s:.0f} s "
                f"({100 * (1 - self.outside_training_fraction):.0f}%), {shown}")


def time_breakdown(training_s: float, since: float | None = None, now: float | None = None) -> TimeBreakdown:
    """The breakdown of this process's run so far (tasks recorded since ``since``, default the process start)."""
    start = run_started() if since is None else since
    now = time.time() if now is None else now
    records = sorted(task_times(start), key=lambda r: r.started)
    stages: dict[str, float] = {}
    for record in records:
        stages[record.name] = stages.get(record.name, 0.0) + record.seconds
    if records:
        first = records[0].started
        last_end = max(r.started + r.seconds for r in records)
        covered = _covered(records)
        between = max(0.0, (last_end - first) - covered)
    else:
        first = last_end = now
        between = 0.0
    total = now - start
    return TimeBreakdown(total_s=round(total, 3), startup_s=round(first - start, 3),
                         stages={k: round(v, 3) for k, v in stages.items()}, between_tasks_s=round(between, 3),
                         after_last_task_s=round(max(0.0, now - last_end), 3), training_s=round(training_s, 3),
                         outside_training_fraction=round(1 - training_s / total, 4) if total > 0 else 0.0,
                         notes={f"{name} at_s": round(at - start, 3) for name, at in _MOMENTS.items() if at >= start})


def _covered(records: list[TaskTime]) -> float:
    """Seconds covered by at least one task (nested or concurrent task runs are counted once)."""
    covered, end = 0.0, float("-inf")
    for record in records:
        lo, hi = record.started, record.started + record.seconds
        if hi <= end:
            continue
        covered += hi - max(lo, end)
        end = hi
    return covered


def write_breakdown(breakdown: TimeBreakdown, run_dir: Path) -> Path:
    path = Path(run_dir) / "timings.json"
    path.write_text(breakdown.to_json())
    return path
