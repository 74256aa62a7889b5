"""Drift checks of a sentence-pair batch read both of its texts.

The text-length and unknown-token checks read only a pair's first text (pair QA, 2026-12-06): a batch whose second
sentences were ID numbers, or twice as long, passed both. And the length test waited for the 200 rows of the label
test: a batch of 60 pairs with ID numbers under both text headers passed every check (pair QA, D1)."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import working_in
from tuneline.config import build_config
from tuneline.ledger import Ledger


def _pairs(n: int, second: str, label_every: int = 2,
           first: str = "the company said on monday that item {i} was sold") -> pd.DataFrame:
    return pd.DataFrame({"text": [first.format(i=i) for i in range(n)],
                         "text_pair": [second.format(i=i) for i in range(n)],
                         "label": [str(i % label_every) for i in range(n)]})


@pytest.mark.parametrize("rows, first, second, shifted", [
    (250, None, "a firm sold item {i} on monday", False),
    (250, None, "a firm sold item {i} on monday " * 3, True),
    (60, "{i}145183", "{i}145154", True),  # ID numbers under both headers, in a batch under drift.min_rows
    (60, None, "a firm sold item {i} on monday", False),
])
def test_a_shift_in_the_second_text_alone_is_seen(tmp_path, tiny_bert, rows, first, second, shifted):
    from transformers import AutoTokenizer

    from tuneline.tasks.drift import check_batch_drift
    from tuneline.tracking import tracked_run

    reference = _pairs(400, "a firm sold item {i} on monday").assign(
        split=["train", "test", "train", "validation"] * 100)
    batch_rows = _pairs(rows, second, **({"first": first} if first else {})).assign(split="train")
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
    if shifted and rows == 250:  # the lengths are the two texts' words together: 17 against 31
        assert "median length 17 -> 31" in check.sentence, check.sentence
    if shifted and rows == 60:
        assert "median length 17 -> 2" in check.sentence and "60 new" in check.sentence, check.sentence
        assert "label_shift" in outcome.reports[batch.content_hash].to_frame()["name"].tolist()
        assert outcome.notes["b.csv"].startswith("text length shift"), outcome.notes


def test_a_pairs_quarantine_rows_from_the_loop_show_its_second_text(tmp_path, tiny_bert):
    """A pair batch's quarantine showed only the first text for the loop's own rules (`duplicate_of_earlier_data`,
    `conflicts_with_earlier_label`, `unseen_label`), while the contract's rules add the second one to `detail`
    (pair QA, D8): two pairs with one first text could not be told apart without the input file."""
    from tuneline.dataset_store import DatasetStore
    from tuneline.tasks.drift import DriftStop, admit_labels
    from tuneline.tasks.intake import dataset_folder, validate_batches
    from tuneline.tracking import tracked_run

    landing = tmp_path / "landing"
    landing.mkdir()
    first = _pairs(30, "a firm sold item {i} on monday")
    first.to_csv(landing / "first.csv", index=False)
    # the same pairs again (ten with the other label), and pairs with labels the model does not know
    again = first.head(20).assign(label=["0"] * 10 + ["1"] * 10)
    again.to_csv(landing / "again.csv", index=False)
    _pairs(4, "the second text of a pair with a new label {i}").assign(label="maybe").to_csv(
        landing / "new.csv", index=False)
    config = build_config({"task": "pair_classification", "data": {"path": str(tmp_path / "d.csv")},
                           "model": {"base": str(tiny_bert)}, "tracking": {"registered_model": "pairs"},
                           "retrain": {"landing": str(landing)}, "work_dir": str(tmp_path / "out")}, [])
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    for name in ("first.csv", "new.csv", "again.csv"):
        (landing / f"{name}.done").touch()
        with Ledger(url, "pairs") as ledger:
            ledger.scan(landing)
    with working_in(tmp_path), tracked_run(config) as run, Ledger(url, "pairs") as ledger, \
            DatasetStore(url, "pairs", dataset_folder(config)) as store:
        batches = {b.name: b for b in ledger.claim(run.run_id)}
        with pytest.raises(DriftStop, match=r"unseen label\(s\) \['maybe'\] in new.csv"):
            admit_labels.fn([batches["new.csv"]], ["0", "1"], config, ledger, run)
        intake = validate_batches.fn([batches["first.csv"], batches["again.csv"]], ["0", "1"], config, ledger,
                                     store, pd.DataFrame(columns=["text", "text_pair", "label", "key"]), run)
    assert [a.batch.name for a in intake.accepted] == ["first.csv"], intake
    unseen = pd.read_csv(ledger_quarantine(url, "new.csv"), dtype=str)
    assert (unseen["rule"] == "unseen_label").sum() == 4
    assert unseen["detail"].str.endswith(tuple(f"; text_pair: the second text of a pair with a new label {i}"
                                               for i in range(4))).all(), unseen["detail"].tolist()
    copies = pd.read_csv(intake.quarantines["again.csv"] if "again.csv" in intake.quarantines
                         else ledger_quarantine(url, "again.csv"), dtype=str)
    assert set(copies["rule"]) == {"duplicate_of_earlier_data", "conflicts_with_earlier_label"}, copies
    for value, detail in zip(copies["value"], copies["detail"]):  # each row's own second text
        i = int(value.split("item ")[1].split()[0])
        assert detail.endswith(f"; text_pair: a firm sold item {i} on monday"), detail


def ledger_quarantine(url: str, name: str) -> str:
    with Ledger(url, "pairs") as ledger:
        return next(b.quarantine_path for b in ledger.batches() if b.name == name)
