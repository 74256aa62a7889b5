"""A retraining run's `-c CONFIG` hints name the config file it was started with (prod-stack QA).

On a work pool, a gate refusal's drop hint and an unseen-label stop's requeue hint said `-c CONFIG` in the run's log
and in `retrain_summary.json`: a step never knows the file, and no command was there to fill it in. `tuneline deploy`,
`serve` and `retrain` now pass the file as the run's `config_file` parameter; the run's log lines and its summary's
drop hint name it. A real Prefect flow run on the session's API; no mock.
"""

from __future__ import annotations

import logging

from prefect import flow, get_run_logger

from tuneline.config_hints import name_config_in_run_logs, with_config
from tuneline.tasks.summary import refused_rows_note


class Said(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@flow(name="hinted-run", log_prints=True)
def hinted_run(config_file: str | None = None) -> str:
    get_run_logger().warning("%s stopped the run: tuneline data requeue -c CONFIG %s --reason \"...\"",
                             "b05 unseen", "b05-unseen.tsv")
    print("take them out: tuneline data drop -c CONFIG b08-flipped.tsv --reason ...")
    return refused_rows_note(["b08-flipped.tsv"], 5)


def test_a_runs_hints_name_its_config_file_and_stay_placeholders_without_one():
    name_config_in_run_logs()
    said = Said()
    logging.getLogger("prefect.flow_runs").addHandler(said)
    try:
        note = hinted_run(config_file="/srv/loops/my loop.yaml")
        bare = hinted_run()
    finally:
        logging.getLogger("prefect.flow_runs").removeHandler(said)
    named = "-c '/srv/loops/my loop.yaml' "
    assert 'b05 unseen stopped the run: tuneline data requeue -c \'/srv/loops/my loop.yaml\' b05-unseen.tsv ' \
           '--reason "..."' in said.lines
    assert f"take them out: tuneline data drop {named}b08-flipped.tsv --reason ..." in said.lines
    assert note.endswith(f'take them out: tuneline data drop {named}b08-flipped.tsv --reason "..."')
    assert "-c CONFIG" in bare and sum("-c CONFIG " in line for line in said.lines) == 2  # the run without a file
    assert with_config("tuneline doctor -c CONFIG --fix", None) == "tuneline doctor -c CONFIG --fix"


def test_the_retraining_deployments_carry_the_config_file(tmp_path):
    from test_deployments_cli import loop_config
    from tuneline.deployments.loop import loop_deployments

    config = loop_config(tmp_path)
    deployments = {d.name: d for d in loop_deployments(config, str(tmp_path / "loop.yaml"))}
    for name in ("retrain-scheduled", "retrain-on-batch"):
        assert deployments[name].parameters["config_file"] == str(tmp_path / "loop.yaml")
    assert "config_file" not in deployments["train"].parameters  # the training flow has no such parameter
    assert all("config_file" not in d.parameters for d in loop_deployments(config))
