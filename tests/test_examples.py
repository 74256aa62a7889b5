"""The example configs in examples/ stay valid and point at the shared data as published."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SHARED_DATA
from tuneline.config import load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name,task,primary", [("sst2.yaml", "classification", "accuracy"),
                                               ("conll2003.yaml", "token_classification", "f1"),
                                               ("mrpc.yaml", "pair_classification", "f1_positive"),
                                               ("goemotions.yaml", "multilabel_classification", "micro_f1")])
def test_example_config_is_valid_and_resolves_to_shared_data(name, task, primary):
    config = load_config(EXAMPLES / name)
    assert config.task == task and config.primary_metric == primary
    for path in (config.data.train, config.data.test):
        assert path is not None and path.is_absolute()
        assert path.parent.parent == SHARED_DATA.resolve()
    if SHARED_DATA.is_dir():
        assert config.data.train.is_file() and config.data.test.is_file()


def test_every_example_config_loads_and_every_kind_has_one():
    """The list above is written by hand; a new kind's example (README: How to add a task kind) is checked here."""
    from tuneline.kinds import KINDS

    tasks = {load_config(path).task for path in sorted(EXAMPLES.glob("*.yaml"))}
    assert tasks == set(KINDS), f"kinds without an example config in examples/: {sorted(set(KINDS) - tasks)}"
