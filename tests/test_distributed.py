"""train.processes: the same training flow under DDP in 2 torchrun workers (gloo on CPU) against 1 process.

Correctness, not speed: both runs train the tiny BERT on the same keyword data with the same global batch and seed,
and must take the same optimizer steps, log each curve point once, save one model, register one version and reach
the gate. A worker that fails must fail the task naming its rank, in bounded time.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from conftest import working_in, write_tiny_bert
from tuneline.config import ConfigError, build_config
from tuneline.demo import demo_config_dict, write_demo_csv
from tuneline.distributed import FAULT_ENV, WorkerFailed
from tuneline.flows.train import train_flow

EPOCHS = 8


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """The tiny BERT without dropout: this module asserts that the DDP model learned, which with dropout depends on
    the draws (see :func:`conftest.write_tiny_bert`)."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert-no-dropout"), dropout=0.0)


def ddp_config(data_file: Path, tiny_bert: Path, processes: int, *overrides: str):
    return build_config(demo_config_dict(data_file), [
        f"model.base={tiny_bert}", f"tracking.registered_model=ddp-test-{processes}", "tracking.experiment=ddp-test",
        "tokenize.max_length=32", "train.learning_rate=2e-3", "train.batch_size=32", "train.precision=fp32",
        f"train.epochs={EPOCHS}", "train.logging_steps=8", "train.early_stopping_patience=0",
        "evaluate.zero_shot_baseline=false", "gate.min_metric=0.5", f"train.processes={processes}", *overrides])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bert):
    """One run in 1 process and one in 2, in the same folder (shared tokenization cache and MLflow store)."""
    import torch

    folder = tmp_path_factory.mktemp("ddp")
    summaries, seconds = {}, {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker runs: on 2 busy cores, 2 threads made one process 10x slower
    try:
        with working_in(folder):
            data = write_demo_csv(folder / "data" / "tickets.csv", realistic=False)
            for processes in (1, 2):
                started = time.monotonic()
                summaries[processes] = train_flow(ddp_config(data, tiny_bert, processes))
                seconds[processes] = time.monotonic() - started
    finally:
        torch.set_num_threads(threads)
    print(f"\ntrain flow wall time: 1 process {seconds[1]:.1f} s, 2 processes {seconds[2]:.1f} s")
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    return folder, summaries


def steps_of(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return [point.step for point in client.get_metric_history(run_id, key)]


def test_ddp_run_takes_the_same_optimizer_steps_and_logs_each_curve_point_once(runs):
    _, summaries = runs
    client = MlflowClient()
    single, ddp = (client.get_run(summaries[p].run_id).data for p in (1, 2))
    assert ddp.params["train.processes"] == "2"
    steps = single.metrics["train.global_step"]
    assert ddp.metrics["train.global_step"] == steps and steps % EPOCHS == 0 and steps >= 100
    for key in ("train.loss", "train.learning_rate", "val.macro_f1", "val.loss"):
        logged = steps_of(client, summaries[2].run_id, key)
        assert logged, key
        assert not [step for step, n in Counter(logged).items() if n > 1], f"{key} logged twice at some step"
        assert sorted(logged) == sorted(steps_of(client, summaries[1].run_id, key)), key
    per_epoch = int(steps) // EPOCHS  # evaluated once per epoch, at the same steps as the single process
    assert sorted(steps_of(client, summaries[2].run_id, "val.macro_f1")) == list(range(per_epoch, int(steps) + 1,
                                                                                       per_epoch))
    loss = [p.value for p in sorted(client.get_metric_history(summaries[2].run_id, "train.loss"),
                                    key=lambda p: p.step)]
    assert loss[-1] < loss[0]


def test_each_run_registers_exactly_one_version_and_passes_through_the_gate(runs):
    _, summaries = runs
    client = MlflowClient()
    for processes, summary in summaries.items():
        versions = client.search_model_versions(f"name='ddp-test-{processes}'")
        assert [v.run_id for v in versions] == [summary.run_id]
        assert versions[0].tags["gate.decision"] in {"promoted", "rejected", "kept_champion"}
        assert client.get_run(summary.run_id).data.tags["gate.decision"] == versions[0].tags["gate.decision"]


def test_ddp_model_learned_beyond_the_majority_baseline(runs):
    _, summaries = runs
    metrics = MlflowClient().get_run(summaries[2].run_id).data.metrics
    assert metrics["test.macro_f1"] >= 0.8
    assert metrics["test.macro_f1"] > metrics["baseline.majority.macro_f1"] + 0.4
    assert summaries[2].promoted


def test_ddp_model_folder_holds_one_saved_model_and_the_workers_leave_logs_only(runs):
    _, summaries = runs
    run_dir = Path(summaries[2].run_dir)
    model_dir = run_dir / "model"
    assert sorted(p.name for p in model_dir.glob("*.safetensors")) == ["model.safetensors"]
    assert (model_dir / "config.json").is_file() and (model_dir / "tokenizer.json").is_file()
    assert not [p for p in model_dir.iterdir() if p.is_dir()]
    workers = run_dir / "train-workers"
    assert {p.name for p in (workers / "logs").glob("rank-*.log")} == {"rank-0.log", "rank-1.log"}
    assert not (workers / "initial.pt").exists()           # the pickled initial model is removed after training
    assert not list(workers.glob("logs/*.error.json"))
    assert not (Path(summaries[1].run_dir) / "train-workers").exists()  # one process: no workers, as before


@pytest.mark.parametrize("fault", ["1:2", "1:2:exit"], ids=["raises", "dies_silently"])
def test_a_failing_worker_fails_the_task_naming_its_rank_in_bounded_time(fault, workdir, tiny_bert, monkeypatch):
    data = write_demo_csv(workdir / "tickets.csv", realistic=False)
    monkeypatch.setenv(FAULT_ENV, fault)
    config = ddp_config(data, tiny_bert, 2, "tracking.registered_model=ddp-crash", "train.process_timeout_s=60")
    started = time.monotonic()
    with pytest.raises(WorkerFailed, match=r"worker rank 1 of 2") as error:
        train_flow(config)
    assert time.monotonic() - started < 120
    message = str(error.value)
    assert "rank-1.log" in message
    if fault == "1:2":
        assert "injected fault at step 2" in message
    else:  # no Python error: the message quotes what the worker last wrote (a C++ abort's reason, say)
        assert "exit code 3, no Python error reported" in message
        assert "its last words: " in message and "injected: rank 1 dies without a Python error'" in message
    log = Path(message.split("see ", 1)[1].split(" (all logs", 1)[0])
    assert log.is_file() and log.name == "rank-1.log"
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    failed = MlflowClient().search_runs([MlflowClient().get_experiment_by_name("ddp-test").experiment_id])
    assert [run.info.status for run in failed] == ["FAILED"]
    assert "worker rank 1" in failed[0].data.tags["tuneline.error"]


def test_a_worker_dying_in_shutdown_after_training_keeps_the_saved_model_and_says_so(workdir, tiny_bert,
                                                                                     monkeypatch, caplog):
    """gloo can abort a worker while its peers close their connections at exit (seen once in CI: SIGABRT after the
    last step). Every rank has then passed the final barrier and rank 0 has saved the model: the run goes on."""
    data = write_demo_csv(workdir / "tickets.csv", realistic=False)
    monkeypatch.setenv(FAULT_ENV, "1:teardown")
    config = ddp_config(data, tiny_bert, 2, "tracking.registered_model=ddp-teardown", "train.epochs=2")
    with caplog.at_level("WARNING", logger="tuneline"):
        summary = train_flow(config)
    warned = [r.getMessage() for r in caplog.records if "ended badly while shutting down" in r.getMessage()]
    assert len(warned) == 1 and "worker rank 1 of 2" in warned[0] and "SIGABRT" in warned[0], warned
    logs = Path(summary.run_dir) / "train-workers" / "logs"
    assert {p.name for p in logs.glob("rank-*.done")} == {"rank-0.done", "rank-1.done"}
    assert (Path(summary.run_dir) / "model" / "model.safetensors").is_file()
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    run = MlflowClient().get_run(summary.run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["train.global_step"] > 0
    assert [v.run_id for v in MlflowClient().search_model_versions("name='ddp-teardown'")] == [summary.run_id]


def test_batch_size_that_does_not_split_over_the_processes_is_a_config_error(tmp_path, tiny_bert):
    with pytest.raises(ConfigError, match=r"train\.batch_size: 32 does not split evenly over train\.processes=3"):
        ddp_config(tmp_path / "tickets.csv", tiny_bert, 3)


INTERRUPTED_TRAINING = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from tests_support import run_config, tiny_splits
from tuneline.config import ModelConfig
from tuneline.tasks.model import build_model, load_tokenizer
from tuneline.tasks.tokenize import tokenize_splits
from tuneline.tasks.train import train_model

splits = tiny_splits()
config = run_config("classification", "model.base={bert}", "tokenize.max_length=16", "train.max_steps=100000",
                    "train.batch_size=8", "train.logging_steps=1", "train.precision=fp32", "train.processes=2",
                    "work_dir={work}", path="/unused.csv")
tokenizer = load_tokenizer.fn(config.model)
tokenized = tokenize_splits.fn(splits, tokenizer, config, {{n: "h-" + n for n, _ in splits.items()}})
model = build_model.fn(config.model, "classification", splits.labels).model
train_model.fn(model, tokenizer, tokenized, splits.labels, config)
"""


def test_ctrl_c_in_the_flow_process_stops_torchrun_and_every_worker(tmp_path, tiny_bert):
    import os
    import re
    import signal
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text(INTERRUPTED_TRAINING.format(tests=str(Path(__file__).parent), bert=tiny_bert, work=tmp_path))
    from tests_support import default_ctrl_c

    trainer = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True, preexec_fn=default_ctrl_c)
    try:
        logs = tmp_path / "train-workers" / "logs"
        deadline = time.monotonic() + 240  # a loaded CI machine: tokenizing and starting two workers takes a while
        while "step 3/" not in ((logs / "rank-0.log").read_text() if (logs / "rank-0.log").is_file() else ""):
            assert trainer.poll() is None and time.monotonic() < deadline, "training never got going"
            time.sleep(0.5)
        workers = [int(pid) for log in logs.glob("rank-*.log")
                   for pid in re.findall(r"worker rank \d+ of 2, pid (\d+)", log.read_text())]
        assert len(workers) == 2

        trainer.send_signal(signal.SIGINT)  # what Ctrl-C does to the flow's process
        _, stderr = trainer.communicate(timeout=150)  # stopping waits up to 45 s for torchrun, then kills it
        assert trainer.returncode != 0 and b"KeyboardInterrupt" in stderr
        for pid in workers:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:  # whatever failed above, leave no training processes behind for the rest of the suite
        import psutil

        if trainer.poll() is None:
            for child in psutil.Process(trainer.pid).children(recursive=True):
                child.kill()
            trainer.kill()
            trainer.wait()
    assert not (tmp_path / "train-workers" / "initial.pt").exists()


def test_kill_9_of_the_flow_process_stops_torchrun_and_every_worker(tmp_path, tiny_bert):
    """The flow's process killed outright (no Ctrl-C to handle): torchrun and its workers trained on to the last
    step, and a re-run trained in the same checkpoint folder beside them (training QA). torchrun now runs under
    ``tuneline.parent_watch``, which stops it when its parent is gone."""
    import os
    import re
    import signal
    import subprocess
    import sys

    import psutil

    script = tmp_path / "train.py"
    script.write_text(INTERRUPTED_TRAINING.format(tests=str(Path(__file__).parent), bert=tiny_bert, work=tmp_path))
    trainer = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    workers: list[int] = []
    try:
        logs = tmp_path / "train-workers" / "logs"
        deadline = time.monotonic() + 240
        while "step 3/" not in ((logs / "rank-0.log").read_text() if (logs / "rank-0.log").is_file() else ""):
            assert trainer.poll() is None and time.monotonic() < deadline, "training never got going"
            time.sleep(0.5)
        workers = [int(pid) for log in logs.glob("rank-*.log")
                   for pid in re.findall(r"worker rank \d+ of 2, pid (\d+)", log.read_text())]
        launcher = [child.pid for child in psutil.Process(trainer.pid).children()]
        assert len(workers) == 2 and len(launcher) == 1
        trainer.send_signal(signal.SIGKILL)
        trainer.wait(timeout=30)
        deadline = time.monotonic() + 90  # torchrun's SIGTERM to its workers, then its own exit
        while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                  for pid in [*workers, *launcher]) and time.monotonic() < deadline:
            time.sleep(0.5)
        alive = [pid for pid in [*workers, *launcher]
                 if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        assert not alive, f"left training after the kill: {alive}"
    finally:
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait()


def test_every_ddp_worker_trains_the_compact_word_table_and_rank_0_saves_the_whole_one(runs, tiny_bert):
    """train.compact_vocabulary under DDP: every rank builds the same compact table (DDP needs equal parameters on
    all ranks), and the saved model holds the full table, the rows no training text uses decayed by one factor."""
    import pandas as pd
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    folder, summaries = runs
    run_dir = Path(summaries[2].run_dir)
    for rank in (0, 1):
        assert "word embeddings: training the " in (run_dir / "train-workers" / "logs" / f"rank-{rank}.log").read_text()
    saved = load_file(str(run_dir / "model" / "model.safetensors"))["bert.embeddings.word_embeddings.weight"]
    start = load_file(str(tiny_bert / "model.safetensors"))["embeddings.word_embeddings.weight"]
    assert saved.shape == start.shape
    texts = pd.read_csv(folder / "data" / "tickets.csv", on_bad_lines="skip")["text"].dropna().astype(str).tolist()
    used = {i for ids in AutoTokenizer.from_pretrained(str(tiny_bert))(texts)["input_ids"] for i in ids} | {0}
    unused = torch.tensor(sorted(set(range(start.shape[0])) - used))
    assert len(unused) > 10
    factor = saved[unused] / start[unused]
    torch.testing.assert_close(factor, torch.full_like(factor, float(factor.median())), rtol=1e-5, atol=1e-5)
    assert float(factor.median()) < 1.0  # weight decay reached them, through the sentinel row
