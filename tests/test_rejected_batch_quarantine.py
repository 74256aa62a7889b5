"""A batch rejected for an unseen label lists its rows in a quarantine file (operator QA).

A 48-row batch in which 8 rows carry the label ``nonsense`` was rejected with its reason, but `tuneline data
batches --state rejected` showed no ``quarantine:`` line: only a batch that *also* had another broken record got
one, and then without the unseen-label rows. Real files, the real SQLite ledger, the real retraining flow (it stops
before training) and the real CLI; nothing is mocked.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import working_in
from loop_data import land, tickets
from tuneline.cli import main
from tuneline.ledger import Ledger, default_ledger_url

MODEL = "quarantined-tickets"


def write_config(root: Path, bert: Path) -> Path:
    """The loop's config file, as an operator's ``loop.yaml``."""
    path = root / "loop.yaml"
    path.write_text(yaml.safe_dump({
        "task": "classification", "data": {"path": str(root / "base.csv")}, "model": {"base": str(bert)},
        "tracking": {"registered_model": MODEL, "tracking_uri": f"sqlite:///{root / 'mlflow.db'}"},
        "retrain": {"landing": str(root / "landing")}, "tokenize": {"max_length": 32}, "drift": {"min_rows": 20},
        "work_dir": str(root / "tuneline-output")}))
    return path


def test_a_batch_rejected_only_for_an_unseen_label_lists_those_rows_in_its_quarantine(tmp_path, tiny_bert, capsys):
    from tuneline.config import load_config
    from tuneline.flows.retrain import retrain_flow
    from tuneline.tasks.drift import DriftStop

    tickets({"billing": 40, "shipping": 40, "technical": 40}, seed=1).to_csv(tmp_path / "base.csv", index=False)
    rows = tickets({"billing": 16, "shipping": 16, "technical": 16}, seed=7)
    rows.loc[[3, 10, 17, 22, 29, 35, 41, 46], "label"] = "nonsense"  # 8 of 48, on lines 5, 12, ... below the header
    land(tmp_path / "landing", "b12.csv", rows)
    config = write_config(tmp_path, tiny_bert)

    with working_in(tmp_path), pytest.raises(DriftStop, match="nonsense"):
        retrain_flow(load_config(config), trigger="test")

    with Ledger(default_ledger_url(f"sqlite:///{tmp_path / 'mlflow.db'}"), MODEL) as ledger:
        (batch,) = ledger.batches("rejected")
    assert batch.name == "b12.csv" and "unseen label(s) ['nonsense']" in batch.reasons[0]
    assert "besides" not in batch.reasons[0]  # no other broken record: the clause stays out
    assert batch.quarantine_path and Path(batch.quarantine_path).is_file()
    quarantined = pd.read_csv(batch.quarantine_path, keep_default_na=False)
    assert list(quarantined["rule"]) == ["unseen_label"] * 8
    assert list(quarantined["source_line"]) == [5, 12, 19, 24, 31, 37, 43, 48]
    assert sorted(quarantined["value"]) == sorted(rows.loc[rows["label"] == "nonsense", "text"])
    assert all(d.startswith("label 'nonsense' is not in the label set ['billing', 'shipping', 'technical']: new to "
                            "the model, and drift.allow_label_growth is off") for d in quarantined["detail"])

    capsys.readouterr()
    assert main(["data", "batches", "-c", str(config), "--state", "rejected"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert f"      quarantine: {batch.quarantine_path}" in listed
