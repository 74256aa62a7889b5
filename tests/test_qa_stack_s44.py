"""Defects an operator QA pass over the production stack found (2026-12-05): option values out of range are usage
errors (exit 2), as argparse's own are, and none starts a process that spins."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_cli_qa_s43 import one_line, tuneline


@pytest.mark.parametrize("value", ["-3", "0", "inf", "soon"])
def test_watch_refuses_an_interval_that_is_not_a_positive_number_of_seconds(tmp_path: Path, value: str):
    """``--interval -3`` was taken: ``stop.wait(-3)`` returns at once, so the watcher scanned back to back (2,229
    ledger transactions in 20 s against 143 at 5 s); ``0`` fell back to the config's interval without a word."""
    done = tuneline("watch", "-c", "nope.yaml", "--interval", value, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "argument --interval:" in done.stderr and "number of seconds" in done.stderr, done.stderr


@pytest.mark.parametrize(("args", "said"), [
    (["--workers", "0"], "--workers must be at least 1 (got 0)"),
    (["--follow", "-5"], "--follow takes the seconds between reads of the alias, at least 1 (got -5)"),
    (["--max-request-mb", "0"], "--max-request-mb must be more than 0 (got 0)"),
    (["--version", "latest"], "--version must be a version number such as 3 (got 'latest')"),
])
def test_serve_model_option_values_out_of_range_are_usage_errors(tmp_path: Path, args: list[str], said: str):
    """They exited 1, the code of a service that failed, while --port 0 exits 2: a supervisor reading the code
    could not tell "fix the command line" from "the service broke"."""
    done = tuneline("serve-model", "some-model", *args, cwd=tmp_path)
    assert done.returncode == 2 and one_line(done) == f"tuneline: {said}", done.stderr
