"""Run the train task's Trainer under DDP in N worker processes, launched by torchrun.

The train task stays in the flow's process. It writes a spec into a workers folder (``spec.json``: the config,
labels, the tokenized splits' ``datasets`` cache files, the checkpoint and model folders; ``initial.pt``: the built
model, its tokenizer and any extra callbacks, pickled as they are, so every strategy, frozen layer and LoRA adapter
starts exactly as built) and starts ``python -m torch.distributed.run --standalone --nproc-per-node N -m
tuneline.distributed <spec>``. Each worker memory-maps the cache files (no re-tokenization), builds the same Trainer
as a single-process run (:func:`tuneline.tasks.train.build_trainer`) with ``batch_size / N`` rows per process and
trains; gloo on CPU, nccl with one GPU per process. Rank 0 saves the final model and writes its ``log_history`` to
``result.json``, which the task logs to MLflow once.

Each rank writes ``logs/rank-<r>.log`` (rank 0's progress lines are also forwarded to the task's log); a rank that
fails writes ``rank-<r>.error.json`` first, and torchrun stops the others. The task then raises
:class:`WorkerFailed` naming the rank and its log. Collectives time out after ``train.process_timeout_s``, workers
die with torchrun (``PR_SET_PDEATHSIG``), and Ctrl-C in the flow's process stops torchrun and its workers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuneline.config import ConfigError, TunelineConfig

#: Fault injection for tests only: ``<rank>[:<step>[:exit]]`` makes that worker raise (or, with ``exit``, die
#: without a Python error through ``os._exit``) once its Trainer reaches the optimizer step (default 1);
#: ``<rank>:teardown`` makes it abort (SIGABRT) after training, in shutdown.
FAULT_ENV = "TUNELINE_TEST_WORKER_FAULT"

#: How long the task waits for torchrun to stop the other workers after one has reported a failure.
STOP_GRACE_S = 60.0


class WorkerFailed(RuntimeError):
    """A training worker process failed; the message names its rank and its log file."""


# --- the flow's side -----------------------------------------------------------------------------------------------

def run_workers(model: Any, tokenizer: Any, datasets: dict[str, Any], labels: list[str], config: TunelineConfig,
                workers_dir: Path, checkpoint_dir: Path, model_dir: Path, precision: str, resume: str | None,
                callbacks: list[Any] | None = None,
                forward_log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train in ``config.train.processes`` workers and return rank 0's result (global_step, train_runtime_s,
    best_metric, history); raise :class:`WorkerFailed` if any worker fails."""
    import torch

    processes = config.train.processes
    if torch.cuda.is_available() and processes > torch.cuda.device_count():
        raise ConfigError(f"train.processes={processes} but only {torch.cuda.device_count()} CUDA device(s) are "
                          f"visible; set train.processes to at most {torch.cuda.device_count()}")
    workers_dir = Path(workers_dir).resolve()
    shutil.rmtree(workers_dir, ignore_errors=True)
    (workers_dir / "logs").mkdir(parents=True)
    initial = workers_dir / "initial.pt"
    try:
        torch.save({"model": model, "tokenizer": tokenizer, "callbacks": list(callbacks or [])}, initial)
    except Exception as error:  # noqa: BLE001 - typically a callback holding a lock or a local class
        raise TypeError(f"train.processes={processes}: the model, tokenizer and extra Trainer callbacks must be "
                        f"picklable to reach the worker processes ({type(error).__name__}: {error})") from error
    spec = {
        # The workers never reach MLflow or the ledger: their sections (and any credentials in them) stay out.
        "config": config.model_dump(mode="json", exclude={"tracking", "ledger"}),
        "labels": list(labels),
        "initial": str(initial),
        "datasets": {name: _dataset_files(dataset, workers_dir / "datasets" / name)
                     for name, dataset in datasets.items()},
        "checkpoint_dir": str(Path(checkpoint_dir).resolve()),
        "model_dir": str(Path(model_dir).resolve()),
        "precision": precision,
        "resume": resume,
        "threads": config.train.threads_per_process,
        "logs": str(workers_dir / "logs"),
        "result": str(workers_dir / "result.json"),
    }
    spec_file = workers_dir / "spec.json"
    spec_file.write_text(json.dumps(spec, indent=1))
    try:
        _launch(spec_file, processes, config.train.threads_per_process, workers_dir, forward_log)
    finally:
        initial.unlink(missing_ok=True)
    return json.loads((workers_dir / "result.json").read_text())


def _dataset_files(dataset: Any, fallback: Path) -> dict[str, Any]:
    """How a worker finds a split without tokenizing again: the ``datasets`` cache files the tokenize task wrote
    (memory-mapped, not copied), or a copy saved here when the split is not exactly those files."""
    files = [entry["filename"] for entry in dataset.cache_files]
    if files and dataset._indices is None and dataset.format["type"] is None:
        return {"files": files, "columns": list(dataset.column_names), "rows": len(dataset)}
    dataset.save_to_disk(str(fallback))
    return {"saved": str(fallback), "rows": len(dataset)}


def _launch(spec_file: Path, processes: int, threads: int, workers_dir: Path,
            forward_log: Callable[[str], None] | None) -> None:
    # under tuneline.parent_watch: torchrun is stopped (and stops its workers) when this process dies outright. A
    # `kill -9` of `tuneline train` left torchrun and its workers training on, and a re-run trained in the same
    # checkpoint folder beside them (training QA)
    command = [sys.executable, "-m", "tuneline.parent_watch", str(os.getpid()), "torch.distributed.run",
               "--standalone", f"--nproc-per-node={processes}", "--max-restarts=0", "-m", "tuneline.distributed",
               str(spec_file)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false",
           "PYTHONUNBUFFERED": "1"}
    logs = workers_dir / "logs"
    launcher_log = logs / "torchrun.log"
    rank0 = _LogTail(logs / "rank-0.log")
    with launcher_log.open("wb") as output:
        # A session of its own: a terminal's Ctrl-C reaches this process only, which then stops torchrun in order.
        launcher = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=os.getcwd(),
                                    start_new_session=True)
        try:
            failure_seen: float | None = None
            while launcher.poll() is None:
                time.sleep(0.5)
                rank0.forward(forward_log)
                if failure_seen is None and _failures(logs):
                    failure_seen = time.monotonic()
                if failure_seen is not None and time.monotonic() - failure_seen > STOP_GRACE_S:
                    _stop(launcher)  # torchrun should have stopped the others by now
            rank0.forward(forward_log)
        except BaseException:  # Ctrl-C, a Prefect cancellation: never leave workers behind
            _stop(launcher)
            raise
    if launcher.returncode != 0 and _finished(workers_dir, processes):
        # Every rank passed the final barrier after rank 0 saved the model: what failed is a worker's shutdown
        # (gloo can abort a process while its peers close their connections), not the training or the model.
        who, what, where = _culprit(logs, launcher.returncode, processes)
        _log().warning("training finished on all %d workers and the model is saved; %s then ended badly while "
                       "shutting down (%s), see %s", processes, who, what, where)
        return
    if launcher.returncode != 0 or not (workers_dir / "result.json").is_file():
        raise _failure(logs, launcher.returncode, processes)


def _finished(workers_dir: Path, processes: int) -> bool:
    """Whether rank 0 wrote its result and every rank left the final barrier (its ``rank-<r>.done`` marker)."""
    logs = workers_dir / "logs"
    return (workers_dir / "result.json").is_file() and all((logs / f"rank-{rank}.done").is_file()
                                                            for rank in range(processes))


def _log() -> Any:
    import logging

    return logging.getLogger("tuneline")


def _stop(launcher: subprocess.Popen) -> None:
    """SIGTERM to torchrun, which stops its workers (SIGTERM, then SIGKILL); SIGKILL if it does not exit in time
    (the workers then die with it through their parent-death signal)."""
    if launcher.poll() is not None:
        return
    launcher.terminate()
    try:
        launcher.wait(timeout=45)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()


def _failures(logs: Path) -> list[dict[str, Any]]:
    found = []
    for path in logs.glob("rank-*.error.json"):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # being written; the next look reads it
    return sorted(found, key=lambda failure: failure["time"])


#: A worker's error that only says a peer went away: the consequence of another rank's failure, not its cause.
_PEER_LOST = re.compile(r"gloo|nccl|connection (reset|closed)|DistBackendError|DistNetworkError|timed? ?out",
                        re.IGNORECASE)


def _failure(logs: Path, returncode: int, processes: int) -> WorkerFailed:
    who, what, where = _culprit(logs, returncode, processes)
    return WorkerFailed(f"training failed in {who} ({what}); see {where} (all logs: {logs})")


def _culprit(logs: Path, returncode: int, processes: int) -> tuple[str, str, Path]:
    """Name the worker that failed first, what happened and its log: the earliest rank that reported an error of
    its own; else the rank torchrun saw fail first (a rank that died without a word, by ``os._exit`` or a signal,
    leaves the others only "connection reset" errors); else whichever rank reported anything."""
    reported = _failures(logs)
    launcher = (logs / "torchrun.log").read_text(errors="replace") if (logs / "torchrun.log").is_file() else ""
    root = re.search(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", launcher, re.S)
    own = [failure for failure in reported if not _PEER_LOST.search(f"{failure['type']}: {failure['message']}")]
    rank: int | None = None
    if own:
        rank, what = own[0]["rank"], f"{own[0]['type']}: {own[0]['message']}"
    elif root:
        rank, code = int(root.group(1)), int(root.group(2))
        what = next((f"{f['type']}: {f['message']}" for f in reported if f["rank"] == rank), None) or (
            f"killed by {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals()
            else f"exit code {code}") + ", no Python error reported" + _last_words(logs / f"rank-{rank}.log")
    elif reported:
        rank, what = reported[0]["rank"], f"{reported[0]['type']}: {reported[0]['message']}"
    else:
        what = f"torchrun exited with code {returncode}"
    where = logs / f"rank-{rank}.log"
    if rank is None or not where.is_file():  # died before its own log was opened: python's words are torchrun's
        where = logs / "torchrun.log"
    who = f"worker rank {rank} of {processes}" if rank is not None else f"the {processes} training processes"
    return who, what, where


#: tuneline's own lines in a worker's log (see :func:`_redirect_output`).
_OWN_LINE = re.compile(r" \| rank \d+ \| ")


def _last_words(log: Path, lines: int = 2) -> str:
    """The last lines a worker that died without a Python error wrote that are not tuneline's own progress lines
    (a C++ ``terminate called after throwing ...``, an OpenMP or allocator message), or nothing."""
    try:
        text = log.read_bytes()[-16384:].decode(errors="replace")
    except OSError:
        return ""
    words = [_excerpt(line.strip()) for line in text.splitlines() if line.strip() and not _OWN_LINE.search(line)]
    return f"; its last words: {' / '.join(words[-lines:])!r}" if words else ""


def _excerpt(line: str, limit: int = 240) -> str:
    return line if len(line) <= limit else line[:limit - 3] + "..."


class _LogTail:
    """The new complete lines of rank 0's log since the last look; tuneline's own lines go to the task's log."""

    MARK = " | rank 0 | "

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.partial = path, 0, b""

    def forward(self, sink: Callable[[str], None] | None) -> None:
        if sink is None or not self.path.is_file():
            return
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        self.offset += len(chunk)
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        for line in lines:
            text = line.decode(errors="replace")
            if self.MARK in text:
                sink("rank 0: " + text.split(self.MARK, 1)[1])


# --- the worker's side ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    """Entry point of one worker (``python -m tuneline.distributed <spec.json>`` under torchrun)."""
    spec = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    rank = int(os.environ.get("RANK", "0"))
    _die_with_parent()
    logs = Path(spec["logs"])
    _redirect_output(logs / f"rank-{rank}.log", rank)
    import logging

    logging.getLogger("tuneline").info("worker rank %d of %s, pid %d", rank, os.environ.get("WORLD_SIZE", "1"),
                                       os.getpid())
    try:
        _train(spec, rank)
    except BaseException as error:
        report = {"rank": rank, "type": type(error).__name__, "message": str(error)[:2000], "time": time.time()}
        (logs / f"rank-{rank}.error.json").write_text(json.dumps(report))
        raise


def _train(spec: dict[str, Any], rank: int) -> None:
    from tuneline.heap import imports_without_collections

    with imports_without_collections():  # each worker imports torch and transformers again: see tuneline.heap
        import torch
        import torch.distributed as dist

        from tuneline.compact_vocabulary import compact_while_training
        from tuneline.config import build_config
        from tuneline.tasks.train import build_trainer, restore_early_stopping, save_final_model, train_or_finish

    torch.set_num_threads(int(spec["threads"]))
    config = build_config(spec["config"])
    initial = torch.load(spec["initial"], map_location="cpu", weights_only=False)  # our own file, just written
    splits = {name: _load_split(entry) for name, entry in spec["datasets"].items()}
    callbacks = [*initial["callbacks"], *_injected_faults(rank)]
    # every rank builds the same compact table from the same training rows, so DDP's parameters match across ranks
    # (and each step all-reduces the used rows' gradients only)
    with compact_while_training(initial["model"], splits["train"], config.train.compact_vocabulary):
        trainer = build_trainer(initial["model"], initial["tokenizer"], splits["train"], splits["validation"],
                                spec["labels"], config, Path(spec["checkpoint_dir"]), spec["precision"], callbacks,
                                world_size=int(os.environ.get("WORLD_SIZE", "1")))
        restore_early_stopping(trainer, spec["resume"])
        output = train_or_finish(trainer, spec["resume"])
    if trainer.is_world_process_zero():
        save_final_model(trainer, initial["tokenizer"], config, Path(spec["model_dir"]))
        result = {"global_step": output.global_step,
                  "train_runtime_s": float(output.metrics.get("train_runtime", 0.0)),
                  "best_metric": trainer.state.best_metric, "history": trainer.state.log_history,
                  "planned_steps": trainer.state.max_steps, "best_step": trainer.state.best_global_step}
        written = Path(spec["result"] + ".tmp")
        written.write_text(json.dumps(result))
        written.replace(spec["result"])
    if dist.is_available() and dist.is_initialized():
        # All ranks leave together, once rank 0 has saved: a rank that exited while rank 0 was still saving had
        # its peers' connections close under it, and gloo can abort (SIGABRT) a process that sees that.
        dist.barrier()
    (Path(spec["logs"]) / f"rank-{rank}.done").touch()
    if _injected_teardown_fault(rank):
        os.abort()  # tests only: a worker dying in shutdown, after its work is done
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _load_split(entry: dict[str, Any]) -> Any:
    from datasets import Dataset, concatenate_datasets, load_from_disk

    if "saved" in entry:
        dataset = load_from_disk(entry["saved"])
    else:
        parts = [Dataset.from_file(name) for name in entry["files"]]
        dataset = (parts[0] if len(parts) == 1 else concatenate_datasets(parts)).select_columns(entry["columns"])
    if len(dataset) != entry["rows"]:
        raise RuntimeError(f"tokenized split has {len(dataset)} rows in the worker, {entry['rows']} in the task")
    return dataset


def _injected_faults(rank: int) -> list[Any]:
    """The fault :data:`FAULT_ENV` asks for on this rank, as a Trainer callback (tests only)."""
    from transformers import TrainerCallback

    raw = os.environ.get(FAULT_ENV, "")
    if not raw or _injected_teardown_fault(rank):
        return []
    parts = raw.split(":")
    if int(parts[0]) != rank:
        return []
    at_step = int(parts[1]) if len(parts) > 1 else 1
    hard = len(parts) > 2 and parts[2] == "exit"

    class InjectedFault(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= at_step:
                if hard:
                    print(f"injected: rank {rank} dies without a Python error", file=sys.stderr, flush=True)
                    os._exit(3)
                raise RuntimeError(f"injected fault at step {state.global_step} ({FAULT_ENV}={raw})")

    return [InjectedFault()]


def _injected_teardown_fault(rank: int) -> bool:
    """Whether :data:`FAULT_ENV` (``<rank>:teardown``) asks this rank to abort after training, in shutdown."""
    return os.environ.get(FAULT_ENV, "") == f"{rank}:teardown"


def _die_with_parent() -> None:
    """Linux: die when torchrun dies, even by SIGKILL, instead of training on as an orphan."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _redirect_output(path: Path, rank: int) -> None:
    """This worker's stdout, stderr (tracebacks, library warnings) and tuneline's log lines go to its own file."""
    import logging

    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(handle, 1)
    os.dup2(handle, 2)
    os.close(handle)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    logger = logging.getLogger("tuneline")
    output = logging.StreamHandler(sys.stderr)
    output.setFormatter(logging.Formatter(f"%(asctime)s | rank {rank} | %(levelname)-7s | %(message)s"))
    logger.addHandler(output)
    logger.setLevel(logging.INFO)
    logger.propagate = False


if __name__ == "__main__":
    main()
