"""A retraining summary's line per batch names the quarantine's rules by count: it showed the first three and
dropped the rest without a word, so "6 quarantined (a 3, b 1, c 1)" added up to 5 (loop QA)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pandas as pd

from tuneline.ledger import Batch
from tuneline.tasks.intake import AcceptedBatch, Intake
from tuneline.tasks.summary import batch_rows


def accepted(tmp_path, rules: list[str]) -> Intake:
    quarantine = tmp_path / "quarantine.csv"
    pd.DataFrame({"rule": rules, "detail": ["x"] * len(rules)}).to_csv(quarantine, index=False)
    batch = Batch(**{f.name: None for f in dataclasses.fields(Batch)} | {
        "path": str(tmp_path / "b2_broken.txt"), "landed_at": datetime.now(timezone.utc), "reasons": ()})
    return Intake(accepted=[AcceptedBatch(batch=batch, part="p", frame=pd.DataFrame({"text": ["a"] * 74}),
                                          quarantine_path=quarantine, rejected_rows=len(rules))])


def test_every_rule_is_counted_up_to_four_and_the_rest_summed(tmp_path):
    four = ["duplicate_of_earlier_data"] * 3 + ["tag_in_label_set", "conll_line_has_no_tag_column",
                                                "conll_line_has_wrong_field_count"]
    line = batch_rows(accepted(tmp_path, four))["b2_broken.txt"]
    assert line == (f"74 rows kept, 6 quarantined (duplicate_of_earlier_data 3, tag_in_label_set 1, "
                    f"conll_line_has_no_tag_column 1, conll_line_has_wrong_field_count 1; {tmp_path / 'quarantine.csv'})")
    six = four + ["a_rule"] * 2 + ["b_rule"]
    line = batch_rows(accepted(tmp_path, six))["b2_broken.txt"]
    assert "duplicate_of_earlier_data 3, a_rule 2, " in line and ", 2 more under 2 other rules;" in line
