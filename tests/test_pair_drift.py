"""Drift checks of a sentence-pair batch read both of its texts.

The text-length and unknown-token checks read only a pair's first text (pair QA, 2026-12-06): a batch whose second
sentences were ID numbers, or twice as long, passed both."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import working_in
from tuneline.config import build_config
from tuneline.ledger import Ledger


def _pairs(n: int, second: str, label_every: int = 2) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"the company said on monday that item {i} was sold" for i in range(n)],
                         "text_pair": [second.format(i=i) for i in range(n)],
                         "label": [str(i % label_every) for i in range(n)]})


@pytest.mark.parametrize("second, shifted", [("a firm sold item {i} on monday", False),
                                             ("a firm sold item {i} on monday " * 3, True)])
def test_a_shift_in_the_second_text_alone_is_seen(tmp_path, tiny_bert, second, shifted):
    from transformers import AutoTokenizer

    from tuneline.tasks.drift import check_batch_drift
    from tuneline.tracking import tracked_run

    reference = _pairs(400, "a firm sold item {i} on monday").assign(
        split=["train", "test", "train", "validation"] * 100)
    batch_rows = _pairs(250, second).assign(split="train")
    (tmp_path / "landing").mkdir()
    batch_rows.to_csv(tmp_path / "landing" / "b.csv", index=False)
    (tmp_path / "landing" / "b.csv.done").touch()
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", "pairs") as ledger:
        (batch,) = ledger.scan(tmp_path / "landing")
    config = build_config({"task": "pair_classification", "data": {"path": str(tmp_path / "d.csv")},
                           "model": {"base": str(tiny_bert)}, "tracking": {"registered_model": "pairs"}}, [])
    with working_in(tmp_path), tracked_run(config) as run:
        outcome = check_batch_drift.fn([(batch, batch_rows)], reference, ["0", "1"],
                                       AutoTokenizer.from_pretrained(tiny_bert), config, run)
    check = outcome.reports[batch.content_hash]["text_length_shift"]
    assert check.status == ("warn" if shifted else "ok"), check.sentence
    if shifted:  # the lengths are the two texts' words together: 17 against 31
        assert "median length 17 -> 31" in check.sentence, check.sentence
