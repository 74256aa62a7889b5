"""The retraining loop when a landed batch goes bad: rewritten or removed after it landed, or unreadable.

The promise: a landed batch is read as it landed or not at all; one that cannot be used is ``rejected`` with a reason
that names it and says what to do, and the other batches go on (one bad file never blocks the loop); a run that finds
nothing to do says why (batches held by a killed run's lease, no champion yet). Real files, the real SQLite ledger,
the real flow and tasks with the tiny BERT; nothing of tuneline, MLflow or Prefect is mocked.

One scenario per module, in order (each step builds on the ledger and data versions the step before left).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import working_in
from loop_data import land, tickets
from tuneline.config import build_config
from tuneline.dataset_store import DatasetStore
from tuneline.ledger import Ledger, default_ledger_url
from tests_support import store_client

pytestmark = pytest.mark.slow

MODEL = "faulty-tickets"
LEARN = ["tokenize.max_length=32", "train.epochs=3", "train.learning_rate=2e-3", "train.early_stopping_patience=0",
         "train.batch_size=32", "evaluate.zero_shot_baseline=false", "gate.min_metric=0.3", "drift.min_rows=20"]
BASE = {"billing": 60, "shipping": 60, "technical": 60}


def loop_config(root: Path, bert: Path, *overrides: str):
    return build_config({"task": "classification", "data": {"path": str(root / "base.csv")},
                         "model": {"base": str(bert)}, "tracking": {"registered_model": MODEL},
                         "retrain": {"landing": str(root / "landing")}}, [*LEARN, *overrides])


def ledger_of(root: Path, **kwargs) -> Ledger:
    return Ledger(default_ledger_url(f"sqlite:///{root / 'mlflow.db'}"), MODEL, **kwargs)


def store_of(root: Path) -> DatasetStore:
    return DatasetStore(default_ledger_url(f"sqlite:///{root / 'mlflow.db'}"), MODEL,
                        root / "tuneline-output" / "datasets" / MODEL)


def run(root: Path, bert: Path, *overrides: str):
    from tuneline.flows.retrain import retrain_flow

    with working_in(root):
        return retrain_flow(loop_config(root, bert, *overrides), trigger="test")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rewrite_after_marker(path: Path, data: bytes) -> None:
    """What a producer rewriting a landed file in place does before it touches the marker: the data is newer."""
    marker_ns = path.with_name(path.name + ".done").stat().st_mtime_ns
    path.write_bytes(data)
    os.utime(path, ns=(marker_ns + 5 * 10**9, marker_ns + 5 * 10**9))


def touch_marker(path: Path) -> None:
    marker = path.with_name(path.name + ".done")
    latest = path.stat().st_mtime_ns + 10**9
    os.utime(marker, ns=(latest, latest))


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    tickets(BASE, seed=21).to_csv(root / "base.csv", index=False)
    (root / "landing").mkdir()
    return root


def test_1_first_run_makes_data_version_1(loop, tiny_bert):
    assert run(loop, tiny_bert).data_version == 1


def test_2_a_batch_rewritten_after_it_landed_is_rejected_not_read_and_the_others_go_on(loop, tiny_bert):
    """Recorded by a scan (as `tuneline watch` does), then cut to its first 3000 bytes (a producer mid-rewrite) or
    replaced by other rows: neither is used under its recorded hash (no rows lost, no wrong lineage); the good batch
    beside them is used; once their markers are touched, the new contents are new batches."""
    landing = loop / "landing"
    good = land(landing, "good.csv", tickets(BASE, seed=22).head(60))
    cut = land(landing, "cut.csv", tickets(BASE, seed=23).head(200))
    replaced = land(landing, "replaced.csv", tickets(BASE, seed=24).head(80))
    with ledger_of(loop) as ledger:
        recorded = {b.name: b for b in ledger.scan(landing)}
    assert sorted(recorded) == ["cut.csv", "good.csv", "replaced.csv"]
    full = cut.read_bytes()
    rewrite_after_marker(cut, full[:3000])
    other = tickets(BASE, seed=25).head(70).to_csv(index=False).encode()
    rewrite_after_marker(replaced, other)

    (landing / "ghost.csv.done").touch()  # a marker whose data file never came
    summary = run(loop, tiny_bert)
    assert summary.status == "retrained" and summary.batches_used == ["good.csv"]
    assert sorted(summary.batches_rejected) == ["cut.csv", "replaced.csv"]
    # a run that trains names what it did not read, as a run with nothing to do does
    assert summary.waiting == [
        "cut.csv (changed after cut.csv.done: touch the marker again)",
        "ghost.csv.done (a marker without ghost.csv beside it: the data file is missing or named otherwise; a marker "
        "is the data file's name plus .done)",
        "replaced.csv (changed after replaced.csv.done: touch the marker again)"]
    (landing / "ghost.csv.done").unlink()
    (reason,) = summary.batches_rejected["cut.csv"]
    assert reason == (f"batch cut.csv: file {cut} changed after it landed (recorded sha256 {sha256(full)[:12]}…, now "
                      f"{sha256(full[:3000])[:12]}…): the recorded content is gone, so it is not used; once the new "
                      "content is complete, touch cut.csv.done again and it lands as a new batch")
    assert f"now {sha256(other)[:12]}…" in summary.batches_rejected["replaced.csv"][0]
    with ledger_of(loop) as ledger:
        for name in ("cut.csv", "replaced.csv"):
            batch = ledger.batch(recorded[name].content_hash)
            assert batch.state == "rejected" and batch.reasons == tuple(summary.batches_rejected[name])
    with store_of(loop) as store:
        rows = store.frame(store.get(summary.data_version))
    assert set(rows["batch"].dropna()) == {recorded["good.csv"].content_hash}  # nothing of the two under old hashes

    touch_marker(cut)
    touch_marker(replaced)
    with ledger_of(loop) as ledger:
        again = {b.name: b for b in ledger.scan(landing)}
    assert {n: (b.state, b.content_hash) for n, b in again.items()} == {
        "cut.csv": ("landed", sha256(full[:3000])), "replaced.csv": ("landed", sha256(other))}
    assert good.exists()


def test_3_an_unreadable_batch_is_rejected_with_its_reason_and_never_blocks_the_loop(loop, tiny_bert, monkeypatch):
    """A wrong header, bytes that are not UTF-8, a file deleted after it landed: each is rejected naming the batch
    (not told to change data.* for all data), the readable batches (the re-landed contents of test 2 among them)
    are used, the summary lists the rejected ones, and the next run is not blocked by them."""
    landing = loop / "landing"
    land(landing, "good2.csv", tickets(BASE, seed=26).head(60))
    packed = land(landing, "packed.csv.gz", tickets(BASE, seed=30).head(30))  # pandas writes it gzip-compressed
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    land(landing, "wrong-header.csv", tickets(BASE, seed=27).head(30).rename(columns={"text": "body"}))
    latin1 = landing / "latin1.csv"
    latin1.write_bytes("text,label\ninvoice refund for my café order,billing\nparcel delivery late,shipping\n"
                       .encode("latin-1"))
    latin1.with_name("latin1.csv.done").touch()
    deleted = land(landing, "deleted.csv", tickets(BASE, seed=28).head(30))
    with ledger_of(loop) as ledger:
        ledger.scan(landing)
    deleted.unlink()
    from tuneline.tasks import intake

    reads: list[str] = []  # each batch is read (fetched, parsed) once a run: the label check and validation share it
    real_read = intake._read_batch
    monkeypatch.setattr(intake, "_read_batch", lambda batch, config: reads.append(batch.name) or real_read(batch,
                                                                                                          config))

    summary = run(loop, tiny_bert)
    assert summary.status == "retrained"
    assert sorted(summary.batches_used) == ["cut.csv", "good2.csv", "packed.csv.gz", "replaced.csv"]
    assert sorted(reads) == ["cut.csv", "deleted.csv", "good2.csv", "latin1.csv", "packed.csv.gz", "replaced.csv",
                             "wrong-header.csv"]
    rejected = {name: reasons[0] for name, reasons in summary.batches_rejected.items()}
    assert sorted(rejected) == ["deleted.csv", "latin1.csv", "wrong-header.csv"]
    header = rejected["wrong-header.csv"]
    assert header.startswith(f"batch wrong-header.csv cannot be read: {landing / 'wrong-header.csv'} has no column "
                             "'text' (its columns: ['body', 'label']); only this batch is rejected: fix the file")
    assert "land it as a new batch (or, if every batch will look like this one from now on: set " \
           "data.text_column" in header
    assert rejected["latin1.csv"].startswith("batch latin1.csv cannot be read: ") and "not valid utf-8" in \
        rejected["latin1.csv"]
    assert rejected["deleted.csv"].startswith(f"batch deleted.csv: file {deleted} no longer exists")
    with ledger_of(loop) as ledger:
        states = {b.name: (b.state, b.reasons[:1]) for b in ledger.batches() if b.name in rejected}
    assert states == {name: ("rejected", (reason,)) for name, reason in rejected.items()}
    with store_of(loop) as store:
        rows = store.frame(store.get(summary.data_version))
    assert (rows["text"].str.contains("caf")).sum() == 0
    import pandas as pd

    in_packed = set(pd.read_csv(packed)["text"])  # the compressed batch's rows are in the version, read as text
    assert rows["text"].isin(in_packed).sum() >= 25

    after = run(loop, tiny_bert)  # nothing left: the rejected batches do not fail the next run
    assert after.status == "skipped" and after.message.startswith("no new batch has landed")
    assert "deleted.csv.done (a marker without deleted.csv beside it" in after.message  # the producer's leftover
    (landing / "deleted.csv.done").unlink()


def test_3b_a_copy_of_a_rejected_batch_says_to_requeue_the_original(loop, tiny_bert, capsys):
    """Landing the same file again under a new name (after fixing the config that rejected it) is ignored as a copy;
    the run said only "nothing to do", not that the original can be taken again with data requeue."""
    landing = loop / "landing"
    (landing / "latin1-again.csv").write_bytes((landing / "latin1.csv").read_bytes())
    (landing / "latin1-again.csv.done").touch()
    summary = run(loop, tiny_bert)
    assert summary.status == "skipped" and summary.batches_duplicate == {"latin1-again.csv": "latin1.csv"}
    note = summary.duplicate_notes["latin1-again.csv"]
    assert note.startswith("latin1.csv was rejected (batch latin1.csv cannot be read: ")
    assert note.endswith('run tuneline data requeue -c CONFIG latin1.csv --reason "..."')

    # requeued with a config that still cannot read it, the command says so (it promised "the next retrain takes
    # it"); read for real, from the batch's hash-checked copy: with data.encoding=latin-1 it reads
    from tuneline.cli_loop import _data_requeue, _unreadable_now

    with ledger_of(loop) as ledger:
        (original,) = [b for b in ledger.batches() if b.name == "latin1.csv"]
    assert _unreadable_now(loop_config(loop, tiny_bert, "data.encoding=latin-1"), original) is None
    capsys.readouterr()
    with working_in(loop):
        assert _data_requeue(loop_config(loop, tiny_bert), "latin1.csv", "exported again") == 0
    out = capsys.readouterr().out
    assert "note: with this config the batch still cannot be read (" in out and "not valid utf-8" in out
    # the copy itself: it was said to be "no landed batch", though the ledger holds it as a duplicate
    from tuneline.errors import UserError

    with working_in(loop), pytest.raises(UserError, match=r"^'latin1-again.csv' landed as a copy of batch latin1.csv "
                                                          r"\(#[0-9a-f]{12}, landed\) and was never used on its own"):
        _data_requeue(loop_config(loop, tiny_bert), "latin1-again.csv", "x")


def test_3c_rows_that_relabel_earlier_examples_are_quarantined_as_conflicts_with_both_labels(loop, tiny_bert):
    """Annotation review sends corrected labels for texts already in the data: they were quarantined as plain
    duplicates, without the batch's label, so nobody could see that they disagreed with the stored rows."""
    import pandas as pd

    base = pd.read_csv(loop / "base.csv")
    other = {"billing": "shipping", "shipping": "technical", "technical": "billing"}
    relabelled = base.head(6).assign(label=lambda f: f["label"].map(other))
    copies = base.iloc[6:9]
    # the same examples exported in capitals with doubled spaces: near twins of stored rows, which would hash into a
    # split of their own (train beside a twin in test) if taken as new
    twins = base.iloc[9:12].assign(text=lambda f: f["text"].str.upper().str.replace(" ", "  ") + " ")
    copies = pd.concat([copies, twins], ignore_index=True)
    from_batch = pd.read_csv(loop / "landing" / "good.csv").head(1).assign(label=lambda f: f["label"].map(other))
    land(loop / "landing", "review.csv", pd.concat([relabelled, copies, from_batch], ignore_index=True))
    summary = run(loop, tiny_bert)
    (reason,) = summary.batches_rejected["review.csv"]
    # 7 of the 13 contradict stored labels: over data.max_bad_fraction, so the batch is rejected for them
    assert reason.startswith("7 of 13 records give another label to an example the data already holds")
    with ledger_of(loop) as ledger:
        (batch,) = [b for b in ledger.batches() if b.name == "review.csv"]
    quarantine = pd.read_csv(batch.quarantine_path)
    assert set(quarantine["source_file"]) == {batch.path}  # the landed file, not the run's copy of it
    assert Path(batch.path).name == "review.csv" and "/landing/" in batch.path
    # each row names its line in the landed file (one record a line after the header), whichever rule set it aside
    assert (quarantine["source_line"] == quarantine["source_row"] + 1).all() and len(quarantine) == 13
    conflicts = quarantine[quarantine["rule"] == "conflicts_with_earlier_label"]
    assert sorted(conflicts["value"]) == sorted([*relabelled["text"], *from_batch["text"]])
    first = relabelled.iloc[0]
    [detail] = conflicts.loc[conflicts["value"] == first["text"], "detail"]
    # where the earlier label came from says what can be done: the advice named no batch, and base rows have none
    assert detail.startswith(f"already in the data with label {base.iloc[0]['label']!r}; this batch says "
                             f"{first['label']!r}: it came with the base data (data version 1): the earlier label "
                             "is kept (to correct it: tuneline data relabel FILE -c CONFIG --reason ..., FILE "
                             "holding the rows with their right labels)")
    [detail] = conflicts.loc[conflicts["value"] == from_batch.iloc[0]["text"], "detail"]
    assert detail.endswith(f"{from_batch.iloc[0]['label']!r}: it came with batch good.csv: the earlier label is kept "
                           "(to correct it: tuneline data relabel FILE -c CONFIG --reason ..., FILE holding the rows "
                           "with their right labels)")
    assert sorted(quarantine.loc[quarantine["rule"] == "duplicate_of_earlier_data", "value"].str.strip()) == sorted(
        copies["text"].str.strip())
    # and a copy says whose row it copies (the base data's, here)
    assert set(quarantine.loc[quarantine["rule"] == "duplicate_of_earlier_data", "detail"]) == {
        "already in the data: it came with the base data (data version 1); not added again"}


def test_3d_the_quarantined_conflicts_relabel_the_data_and_the_next_model_trains_on_the_new_labels(loop, tiny_bert,
                                                                                                   capsys):
    """The quarantine's ``conflicts_with_earlier_label`` rows, given to ``tuneline data relabel``, correct the
    earlier labels (base rows included: they could not be corrected before) in a new data version, and the retraining
    run on it trains and tests on the corrected labels."""
    import pandas as pd

    from tuneline.cli_loop import _data_relabel

    with ledger_of(loop) as ledger:
        (batch,) = [b for b in ledger.batches() if b.name == "review.csv"]
    quarantine = pd.read_csv(batch.quarantine_path)
    conflicting = set(quarantine.loc[quarantine["rule"] == "conflicts_with_earlier_label", "value"])
    review = pd.read_csv(loop / "landing" / "review.csv")
    fixes = review[review["text"].isin(conflicting)]
    assert len(fixes) == len(conflicting) >= 2
    fixes.to_csv(loop / "fixes.csv", index=False)
    with store_of(loop) as store:
        parent = store.current()
    with working_in(loop):
        assert _data_relabel(loop_config(loop, tiny_bert), loop / "fixes.csv", "the reviewers were right") == 0
    assert f"version {parent.number} with {len(fixes)} row(s) relabelled" in capsys.readouterr().out
    with store_of(loop) as store:
        relabelled = store.current()
        frame = store.frame(relabelled)
    assert relabelled.number == parent.number + 1
    assert dict(zip(frame["text"], frame["label"])) | dict(zip(fixes["text"], fixes["label"])) == \
        dict(zip(frame["text"], frame["label"]))

    client = MlflowClient(tracking_uri=f"sqlite:///{loop / 'mlflow.db'}")
    champion = client.get_model_version_by_alias(MODEL, "champion")
    with store_of(loop) as store:
        knew = store.frame(store.get(int(champion.tags["data.version"])))
    summary = run(loop, tiny_bert, "retrain.when_no_new_data=retrain")
    assert (summary.status, summary.data_version) == ("retrained", relabelled.number)
    version = client.get_model_version(MODEL, summary.run.version)
    assert version.tags["data.version"] == str(relabelled.number)
    # the forgetting check scores every test row the champion knew, the relabelled batch's too (told by data part,
    # the relabel's new part took them all out of it, silently: exploratory QA)
    rows = client.get_run(summary.run.run_id).data.metrics["earlier_test.rows"]
    assert rows == (knew["split"] == "test").sum() > 0


def test_3e_a_batch_contradicting_many_earlier_labels_is_rejected_listed_and_taken_after_a_relabel(loop, tiny_bert,
                                                                                                      capsys):
    """A labelling job gone wrong (a label map swapped) sends new rows and some rows the data already holds, with
    other labels. The contradictions were set aside one by one and the batch's new rows, labelled the same way,
    were trained on (16% of a batch). Contradictions now count toward data.max_bad_fraction: the batch is rejected,
    the run's printout names its quarantine, `tuneline data batches` lists it with the reason; after a relabel of
    the earlier rows and a requeue, the next run takes the batch (its repeats are plain copies then)."""
    import pandas as pd

    from tuneline.cli_loop import _data_batches, _data_relabel, _data_requeue, print_retrain_summary

    base = pd.read_csv(loop / "base.csv")
    other = {"billing": "shipping", "shipping": "technical", "technical": "billing"}
    swapped = base.iloc[20:24].assign(label=lambda f: f["label"].map(other))
    new = tickets(BASE, seed=31).head(20)
    with store_of(loop) as store:
        known = set(store.frame(store.current())["text"])
    new = new[~new["text"].isin(known)]
    land(loop / "landing", "swapped.csv", pd.concat([new, swapped], ignore_index=True))
    total = len(new) + 4
    summary = run(loop, tiny_bert)
    assert summary.status == "nothing_accepted"
    (reason,) = summary.batches_rejected["swapped.csv"]
    assert reason.startswith(f"4 of {total} records give another label to an example the data already holds "
                             f"(conflicts_with_earlier_label): {4 / total:.1%} of the batch, more than "
                             "data.max_bad_fraction=5.0%")
    assert "tuneline data requeue -c CONFIG swapped.csv" in reason
    with ledger_of(loop) as ledger:
        (batch,) = [b for b in ledger.batches() if b.name == "swapped.csv"]
    assert batch.state == "rejected" and batch.quarantine_path and reason.endswith(batch.quarantine_path)
    quarantine = pd.read_csv(batch.quarantine_path)
    assert sorted(quarantine.loc[quarantine["rule"] == "conflicts_with_earlier_label", "value"]) == sorted(
        swapped["text"])
    with store_of(loop) as store:  # nothing of the batch in the data
        assert not store.frame(store.current())["text"].isin(new["text"]).any()
    capsys.readouterr()
    print_retrain_summary(summary)
    assert "  batch rejected    : swapped.csv: 4 of" in capsys.readouterr().out

    with working_in(loop):
        assert _data_batches(loop_config(loop, tiny_bert), "rejected") == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith(f"batches of {MODEL} (")
    rows = [line for line in listed if line.startswith("  ") and not line.startswith("      ")]
    every = _batches_in(loop, None)
    assert f"): {len(rows)} rejected shown, of {len(every)} (" in listed[0]  # README QA: the header counted all
    assert [line.split()[0] for line in rows] == [b.name for b in _batches_in(loop, "rejected")]
    at = next(i for i, line in enumerate(listed) if line.startswith("  swapped.csv "))
    assert f"#{batch.content_hash[:12]}  rejected " in listed[at]
    # landed = used + quarantined + rejected; the rows no rule broke are held back with it (loop QA: uncounted)
    assert listed[at].endswith(f"  rows {total} read, none kept: 4 quarantined, {total - 4} held back with the batch")
    assert listed[at + 1].startswith(f"      reason: {reason[:100]}")
    assert listed[at + 2] == f"      quarantine: {batch.quarantine_path}"

    # the reviewers say the batch is right: relabel the earlier rows with the batch's quarantine itself (its
    # conflicts are read from the batch as it landed), requeue the batch, and it is taken. Meanwhile the producer
    # has rewritten the landing file with yet other labels: they are nobody's answer (operator QA: they had been
    # committed, silently), the batch's hash-checked copy is.
    landed_bytes, landed_at = Path(batch.path).read_bytes(), Path(batch.path).stat()
    rewritten = pd.read_csv(batch.path).assign(label=lambda f: f["label"].map(other))
    rewritten.to_csv(batch.path, index=False)
    with working_in(loop):
        assert _data_relabel(loop_config(loop, tiny_bert), Path(batch.quarantine_path), "the new map is right") == 0
        assert "the batch's label for 4 row(s) quarantined as conflicts_with_earlier_label (read from batch " \
               f"swapped.csv as it landed, #{batch.content_hash[:12]})" in capsys.readouterr().out
    Path(batch.path).write_bytes(landed_bytes)  # as it landed, time and all: the later scenarios see no rewrite
    os.utime(batch.path, ns=(landed_at.st_atime_ns, landed_at.st_mtime_ns))
    with working_in(loop):
        with store_of(loop) as store:
            frame = store.frame(store.current())
        assert dict(zip(frame["text"], frame["label"])) | dict(zip(swapped["text"], swapped["label"])) == \
            dict(zip(frame["text"], frame["label"]))
        assert _data_requeue(loop_config(loop, tiny_bert), "swapped.csv", "earlier labels corrected") == 0
    summary = run(loop, tiny_bert)
    assert summary.status == "retrained" and summary.batches_used == ["swapped.csv"]
    assert summary.batch_rows["swapped.csv"].startswith(f"{len(new)} rows kept, 4 quarantined "
                                                        "(duplicate_of_earlier_data 4;")


def _batches_in(root: Path, state: str):
    with ledger_of(root) as ledger:
        return ledger.batches(state)


def test_4_batches_held_by_a_killed_run_are_named_with_their_lease(loop, tiny_bert):
    """A run killed with SIGKILL after validating leaves its batch validated under its lease (the ledger's own
    claim and validate, exactly as that run wrote them): the next run says who holds what until when, instead of
    'no new batch has landed'."""
    land(loop / "landing", "held.csv", tickets(BASE, seed=29).head(40))
    with ledger_of(loop, lease_s=600) as dead:
        dead.scan(loop / "landing")
        (batch,) = dead.claim("killed-run")
        dead.mark_validated("killed-run", batch.content_hash, 40, 0)
        until = dead.batch(batch.content_hash).lease_expires_at
    try:
        summary = run(loop, tiny_bert)
        assert summary.status == "skipped" and summary.run is None
        assert summary.message == (
            f"no free batch; nothing to do now: 1 batch(es) (held.csv) are held by run killed-run until "
            f"{until:%Y-%m-%d %H:%M:%S} UTC (its ledger lease, renewed while that run works; if it was killed, the "
            "first retraining run after that takes them over, or `tuneline doctor --fix` gives them back now)")
    finally:  # the fake run validated it without storing its rows: no later run may take it
        with ledger_of(loop) as ledger:
            ledger.release("killed-run")
            ledger.mark_dropped(batch.content_hash, "test", "validated by a fake run, rows never stored")


def test_4b_batches_held_by_a_run_whose_process_is_gone_are_taken_over_at_once(loop, tiny_bert, capsys,
                                                                                  caplog):
    """A run killed outright (SIGKILL) after claiming: its process tag shows it gone, yet the next retraining waited
    out its lease (ten minutes by default) saying "nothing to do" (integrity QA). It takes them over now."""
    import subprocess
    import sys
    import textwrap
    import time

    land(loop / "landing", "orphaned.csv", tickets(BASE, seed=33).head(40))
    uri = f"sqlite:///{loop / 'mlflow.db'}"
    ready = loop / "holder.ready"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import pathlib, time
        from mlflow.tracking import MlflowClient
        from tuneline.ledger import Ledger, default_ledger_url
        from tuneline.run_process import PROCESS_TAG, process_tag
        client = MlflowClient(tracking_uri={uri!r}, registry_uri={uri!r})
        run = client.create_run(client.get_experiment_by_name("Default").experiment_id,
                                tags={{PROCESS_TAG: process_tag()}})
        with Ledger(default_ledger_url({uri!r}), {MODEL!r}, lease_s=3600) as ledger:
            ledger.scan({str(loop / 'landing')!r})
            held = ledger.claim(run.info.run_id)
        pathlib.Path({str(ready)!r}).write_text(run.info.run_id + " " + ",".join(b.name for b in held))
        time.sleep(600)
    """)], cwd=loop)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        run_id, held = ready.read_text().split()
        assert held == "orphaned.csv"
    finally:
        holder.kill()
        holder.wait()
    with caplog.at_level("INFO"):
        summary = run(loop, tiny_bert)
    assert summary.status == "retrained" and summary.batches_used == ["orphaned.csv"]
    said = capsys.readouterr().out + "\n".join(r.getMessage() for r in caplog.records)
    assert f"took over the batches of run {run_id} (orphaned.csv), whose process " in said
    assert MlflowClient(tracking_uri=uri).get_run(run_id).info.status == "KILLED"


def test_without_a_champion_nothing_to_do_says_how_to_retrain_anyway(tmp_path, tiny_bert):
    """The first model was not promoted (min_metric out of reach) and no batch lands: skipping would leave the loop
    without a champion for good, so the message names the setting that retrains on the data there is."""
    tickets(BASE, seed=21).to_csv(tmp_path / "base.csv", index=False)
    (tmp_path / "landing").mkdir()
    first = run(tmp_path, tiny_bert, "train.epochs=1", "gate.min_metric=1.0")
    assert first.status == "retrained" and not first.run.promoted
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert "champion" not in store_client(uri).get_registered_model(MODEL).aliases
    summary = run(tmp_path, tiny_bert, "gate.min_metric=1.0")
    assert summary.status == "skipped"
    assert summary.message == (
        f"no new batch has landed since the last retraining run; nothing to do; no version of {MODEL} is champion "
        "(the first model was not promoted): land a new batch, or retrain on the current data with "
        "--set retrain.when_no_new_data=retrain")


def test_the_first_retraining_runs_quarantine_holds_the_base_datas_rejected_rows(tmp_path, tiny_bert, capsys):
    """The run that makes data version 1 from the config's files quarantined their bad rows in base/quarantine.csv,
    while its own quarantine.csv (the one summary.json names) held only a header (README QA)."""
    import pandas as pd

    base = tickets(BASE, seed=41)
    bad = pd.DataFrame({"text": ["   ", "where is my parcel, it is late"], "label": ["billing", "maybe"]})
    pd.concat([base, bad], ignore_index=True).to_csv(tmp_path / "base.csv", index=False)
    (tmp_path / "landing").mkdir()
    labels = "[" + ",".join(sorted(base["label"].unique())) + "]"
    summary = run(tmp_path, tiny_bert, "train.epochs=1", f"data.labels={labels}")
    assert summary.status == "retrained"
    quarantine = pd.read_csv(summary.run.quarantine_file)
    assert sorted(quarantine["source_line"]) == [len(base) + 2, len(base) + 3]
    assert set(quarantine["source_file"].map(lambda f: Path(f).name)) == {"base.csv"}
    assert summary.run.rejected_records == 2
    from tuneline.cli_loop import print_retrain_summary

    print_retrain_summary(summary)
    assert f"  quarantine        : 2 rejected records in {summary.run.quarantine_file}\n" in capsys.readouterr().out
