"""A run's warnings reach its summary: printed at the end and kept in ``summary.json``, not only in the log above.

A probe found labels written several ways (``billing``, ``Billing``, ``BILLING``) merged into one class with a
WARNING among hundreds of progress lines, and a summary that said nothing of it."""

from __future__ import annotations

import json
import logging

import pandas as pd

from conftest import working_in
from tuneline.cli import WARNINGS_SHOWN, _print_summary
from tuneline.config import build_config
from tuneline.demo import demo_config_dict, write_demo_csv
from tuneline.flows.train import train_flow
from tuneline.run_warnings import collected_warnings

FAST = ["tokenize.max_length=32", "train.learning_rate=2e-3", "train.batch_size=32", "train.precision=fp32",
        "evaluate.zero_shot_baseline=false", "train.early_stopping_patience=0", "train.max_steps=4",
        "tracking.registered_model=warned-intents"]


def test_the_label_merge_is_in_the_summary_and_its_json(tmp_path, tiny_bert, capsys):
    with working_in(tmp_path):
        data = write_demo_csv(tmp_path / "tickets.csv", realistic=False)
        frame = pd.read_csv(data, on_bad_lines="skip")
        frame.loc[frame.index[::7], "intent"] = frame["intent"][::7].str.upper()  # BILLING beside billing
        frame.to_csv(data, index=False)
        config = build_config(demo_config_dict(data), [f"model.base={tiny_bert}", *FAST])
        summary = train_flow(config)
    merged = [w for w in summary.warnings if w.startswith("labels written several ways are one class each")]
    assert len(merged) == 1 and "BILLING" in merged[0], summary.warnings
    assert not any("optimizer step" in w for w in summary.warnings)  # train.max_steps=4: chosen, so no warning
    written = json.loads((tmp_path / "tuneline-output" / "runs" / summary.run_id / "summary.json").read_text())
    assert written["warnings"] == summary.warnings
    capsys.readouterr()
    _print_summary(summary)
    printed = capsys.readouterr().out
    assert f"  warnings          : {len(summary.warnings)} (logged above; all in summary.json)" in printed
    assert "    - labels written several ways are one class each" in printed


def test_collected_warnings_keep_each_message_once_and_let_go_after_the_block(capsys):
    logger = logging.getLogger("tuneline")
    with collected_warnings() as warned:
        logger.warning("first %s", "thing")
        logger.info("progress")  # below WARNING: not a warning
        logging.getLogger("prefect.task_runs").warning("from a task")
        logger.warning("first thing")
    logger.warning("after the run")
    assert warned == ["first thing", "from a task"]
    assert WARNINGS_SHOWN >= 3


def test_a_batch_read_from_its_checked_copy_is_named_by_its_landing_path_in_the_log(tmp_path):
    """The loop reads a batch from its hash-checked copy under datasets/<model>/landed/<sha256>/; a reader's warning
    named that copy, a path the user never wrote (and the summary cut it at 160 characters, before the warning's
    point). It names the landed file now."""
    from test_data_drop import loop_config
    from tuneline.ledger import Ledger
    from tuneline.tasks.intake import _read_batch

    landing = tmp_path / "landing"
    landing.mkdir()
    rows = ['"he said ""hi"" to me"\ta', "plain text\tb", "more text\ta", "other text\tb"]
    (landing / "b1.tsv").write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    (landing / "b1.tsv.done").touch()
    _path, config, url, name = loop_config(tmp_path, landing)
    with Ledger(url, name) as ledger:
        [batch] = ledger.scan(landing)
    with collected_warnings() as warned:
        loaded = _read_batch(batch, config)
    assert len(loaded.frames["all"]) == 4
    quoted = [w for w in warned if "wrapped in double quotes" in w]
    assert len(quoted) == 1 and quoted[0].startswith(f"{landing / 'b1.tsv'}: 1 of 4 values"), warned
    assert "landed" not in quoted[0]


def test_a_user_error_in_a_worker_flow_run_is_said_once_as_one_line_and_the_cli_keeps_it_to_itself():
    """A worker's (or `tuneline serve`'s) flow-run process has no CLI to print a user error: its tracebacks were
    dropped and so was the error, so a drift stop left the worker's console ending at the MLflow run's line
    (operator QA). Real Prefect records through the filter the flow hook installs: the first record of the error
    becomes ``tuneline: <message>``, its repeats and "Finished in state Failed" lines are dropped; in a CLI process
    (which prints the line itself) every one is dropped."""
    import logging

    from tuneline.errors import UserError, _DropUserErrorTracebacks

    def record(message: str, error: BaseException | None) -> logging.LogRecord:
        info = (type(error), error, None) if error is not None else None
        return logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1, message, (), info)

    error = UserError("batch b7.csv brings unseen label(s) ['cancellation']: ...")
    worker = _DropUserErrorTracebacks(one_line=True)
    first = record("Encountered exception during execution: %s", error)
    assert worker.filter(first) and first.getMessage() == f"tuneline: {error}" and first.exc_info is None
    assert not worker.filter(record("Finished in state Failed(...)", error))
    assert not worker.filter(record("Flow run failed", error))  # the same error again
    assert worker.filter(record("something else", None))
    other = RuntimeError("a bug")
    assert worker.filter(record("boom", other))  # a bug keeps its traceback
    cli = _DropUserErrorTracebacks()
    assert not cli.filter(record("Encountered exception during execution: %s", error))


def test_prefects_lines_about_the_quiet_console_hook_are_not_shown():
    """Every retraining run printed "Running hook 'quiet_console' for flow run ..." and "Hook 'quiet_console'
    finished running successfully" (CLI QA), about a hook that only quiets the console."""
    import logging

    from tuneline.errors import _DropUserErrorTracebacks

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("prefect.flow_runs", logging.INFO, __file__, 1, message, (), None)

    for quiet in (_DropUserErrorTracebacks(), _DropUserErrorTracebacks(one_line=True)):
        assert not quiet.filter(record("Running hook 'quiet_console' in response to entering state 'Running'"))
        assert not quiet.filter(record("Hook 'quiet_console' finished running successfully"))
        assert quiet.filter(record("Running hook 'notify_team' in response to entering state 'Running'"))
    # an interrupt's crash lines: the CLI says it itself; a worker's console keeps them (nothing else says it)
    crashed = "Crash detected! Execution was aborted by an interrupt signal."
    assert not _DropUserErrorTracebacks().filter(record(crashed))
    assert _DropUserErrorTracebacks(one_line=True).filter(record(crashed))


def test_an_interrupt_a_weakref_callback_swallowed_is_not_printed_as_an_ignored_exception(monkeypatch):
    """CI: a Ctrl-C to ``tuneline serve`` landed while a weakref callback ran; Python printed "Exception ignored in
    ... Traceback ... KeyboardInterrupt" into the served run's log, though the interrupt was noted and the run
    stopped and cleaned up. Inside :func:`remembered_interrupts` such a lost interrupt is quiet once noted; another
    lost exception, or one outside the block, goes to the hook as before (Python's, which prints it)."""
    import gc
    import signal
    import sys

    from tuneline.interrupts import remembered_interrupts

    reached: list[type] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: reached.append(unraisable.exc_type))

    class Finalized:
        def __init__(self, error: BaseException) -> None:
            self.error = error

        def __del__(self) -> None:
            raise self.error

    with remembered_interrupts() as seen:
        Finalized(KeyboardInterrupt())  # not noted by the handler: not the lost signal's, so as before
        gc.collect()
        seen.append(signal.SIGINT)  # as the handler notes a signal that then lands in a callback
        Finalized(KeyboardInterrupt())
        Finalized(RuntimeError("a bug in a finalizer"))
        gc.collect()
    assert reached == [KeyboardInterrupt, RuntimeError]
    Finalized(KeyboardInterrupt())
    gc.collect()
    assert reached == [KeyboardInterrupt, RuntimeError, KeyboardInterrupt]  # outside the block: as before
