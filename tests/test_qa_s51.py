"""Follow-ups of the 2026-12-06 training QA (session 51)."""

from __future__ import annotations

import pytest

from test_qa_s50 import _resumable
from tuneline.config import ModelConfig
from tuneline.tasks.model import build_model


def test_an_interrupted_run_resumes_when_only_how_it_is_watched_changed(tmp_path, tiny_bert):
    """The checkpoint folder's name hashed every train setting, so re-running an interrupted run with a longer
    ``train.process_timeout_s`` or a finer ``train.logging_steps``, or after a run with ``train.resume=false``, started from
    step 0 (QA). A setting that shapes the weights still starts fresh."""
    from test_train_resume_lora import Crash, CrashAtStep
    from tuneline.tasks.train import checkpoint_folder, train_model

    def train(name: str, callbacks, *overrides):
        splits, tokenizer, config, tokenized = _resumable(tmp_path, tiny_bert, "train.learning_rate=1e-3",
                                                          f"work_dir={tmp_path / 'work'}", *overrides)
        model = build_model.fn(ModelConfig(base=str(tiny_bert)), "classification", splits.labels, seed=3).model
        folder = checkpoint_folder(config, tokenized)
        return folder, lambda: train_model.fn(model, tokenizer, tokenized, splits.labels, config,
                                              model_dir=tmp_path / name, checkpoint_dir=folder,
                                              extra_callbacks=list(callbacks))

    crashed_folder, run = train("crashed", [CrashAtStep(5)], "train.resume=false")
    with pytest.raises(Crash):
        run()
    assert (crashed_folder / "checkpoint-4").is_dir()

    other_folder, _ = train("other", [], "train.learning_rate=2e-3")
    assert other_folder != crashed_folder

    folder, run = train("resumed", [], "train.process_timeout_s=60", "train.logging_steps=1")
    assert folder == crashed_folder
    result = run()
    assert result.resumed_from == str(crashed_folder / "checkpoint-4")


def test_serve_refuses_a_bad_cron_in_one_line_before_it_looks_for_a_prefect_api(tmp_path):
    """``serve --cron "0 3 * *"`` printed pydantic's own error text, exited 1 and called it an internal failure
    (with a Prefect API set); without one the cron was never checked (README QA). ``--set retrain.cron`` said it in one
    line with exit 2."""
    from test_cli_qa_s43 import one_line, tuneline

    (tmp_path / "data.csv").write_text("text,label\nfine,a\nbad,b\n")
    (tmp_path / "loop.yaml").write_text("task: classification\ndata:\n  path: data.csv\n")
    done = tuneline("serve", "-c", "loop.yaml", "--cron", "0 3 * *", cwd=tmp_path)  # no Prefect API set
    assert done.returncode == 2, done.stderr
    assert one_line(done) == ("tuneline: --cron: '0 3 * *' is not a cron expression (five fields: minute 0-59, hour "
                              "0-23, day of month, month, day of week; e.g. '0 3 * * *' for 03:00 daily)")


def test_the_retrain_summary_names_the_users_config_in_the_commands_it_suggests(capsys):
    """The flow's hints said ``tuneline data requeue -c CONFIG b02.tsv`` although the command was given
    ``-c loop.yaml`` (loop QA); the summary the command prints names it."""
    from tuneline.cli_loop import print_retrain_summary
    from tuneline.tasks.summary import RetrainSummary

    summary = RetrainSummary(
        status="nothing_accepted", message="no batch was accepted (1 rejected)", trigger="manual", batches_used=[],
        batches_rejected={"b02.tsv": ["label '2' is new: set drift.allow_label_growth: true and take this batch "
                                      'again: tuneline data requeue -c CONFIG b02.tsv --reason "..."']})
    print_retrain_summary(summary, "loops/my loop.yaml")
    out = capsys.readouterr().out
    assert "tuneline data requeue -c 'loops/my loop.yaml' b02.tsv --reason" in out and "CONFIG" not in out
    print_retrain_summary(summary)  # no config given (a flow run by Prefect): the placeholder stays
    assert "tuneline data requeue -c CONFIG b02.tsv" in capsys.readouterr().out


def test_serve_drops_prefects_line_for_a_watch_run_it_cancelled_on_purpose():
    """``tuneline serve`` logged "Aborted submission of flow run ...: Server returned a non-pending state 'CANCELLED'"
    at INFO every few scans: the watch-landing deployment cancels a run that finds another scanning (CANCEL_NEW), on
    purpose (loop QA). Other aborted submissions are still said. Logged here with Prefect's own logger and format."""
    import logging

    from prefect.logging import get_logger

    from test_tokenize_model import _Records
    from tuneline.deployments.loop import quiet_cancelled_submissions

    proposer, seen = get_logger("runner.state_proposer"), _Records()
    quiet_cancelled_submissions()
    quiet_cancelled_submissions()  # once is enough: serving twice in one process adds no second filter
    assert len(proposer.filters) == len({type(f) for f in proposer.filters})
    proposer.addHandler(seen)
    level = proposer.level
    proposer.setLevel(logging.INFO)
    try:
        proposer.info("Aborted submission of flow run '%s': Server returned a non-pending state %r", "abc",
                      "CANCELLED")
        proposer.info("Aborted submission of flow run '%s'. Server sent an abort signal: %s", "def", "gone")
    finally:
        proposer.removeHandler(seen)
        proposer.setLevel(level)
    assert seen.messages == [
        "Aborted submission of flow run 'def'. Server sent an abort signal: gone"]
