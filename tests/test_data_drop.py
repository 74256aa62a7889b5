"""``tuneline data drop``: a landed batch's rows taken back out of the data as a new version, the old ones intact."""

from __future__ import annotations

import pandas as pd
import yaml

from tests_support import store_client, write_rows
from tuneline.cli import main
from tuneline.config import build_config, load_config
from tuneline.dataset_store import DatasetStore
from tuneline.ledger import Ledger, ledger_url_for
from tuneline.runtime import resolve_tracking_uri
from tuneline.tasks.intake import dataset_folder


def rows(prefix: str, n: int) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"{prefix} {i}" for i in range(n)], "label": ["a", "b"] * (n // 2),
                         "split": ["train"] * (n - 2) + ["test"] * 2})


def land_rows(landing, name: str, rows: list[tuple[str, str]]):
    """A batch CSV of (text, label) rows landed as a producer does: the file, then its ``.done`` marker."""
    path = write_rows(landing / name, rows)
    (landing / f"{name}.done").touch()
    return path


def loop_config(tmp_path, landing, **retrain) -> tuple[str, object, str, str]:
    """(config file, config, ledger URL, model name) of a loop whose landing folder is ``landing``."""
    config_path = tmp_path / "c.yaml"
    config_path.write_text(yaml.safe_dump({
        "data": {"path": "base.csv"}, "work_dir": str(tmp_path / "out"),
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        "retrain": {"landing": str(landing), **retrain}}))
    config = load_config(config_path)
    url = ledger_url_for(config.ledger.url, resolve_tracking_uri(config.tracking.tracking_uri))
    return str(config_path), config, url, config.registered_model_name


def test_dropping_a_batch_makes_a_version_without_its_rows_and_keeps_the_earlier_ones(tmp_path, capsys):
    landing = tmp_path / "landing"
    bad = land_rows(landing, "shuffled.csv", [(f"bad {i}", "a") for i in range(6)])
    config_path = tmp_path / "c.yaml"
    config_path.write_text(yaml.safe_dump({
        "data": {"path": str(write_rows(tmp_path / "base.csv", [("x", "a"), ("y", "b")]))},
        "work_dir": str(tmp_path / "out"), "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        "retrain": {"landing": str(landing)}}))
    config = load_config(config_path)
    url = ledger_url_for(config.ledger.url, resolve_tracking_uri(config.tracking.tracking_uri))
    name = config.registered_model_name
    with Ledger(url, name) as ledger:
        [batch] = ledger.scan(landing)
    with DatasetStore(url, name, dataset_folder(config)) as store:
        base = store.commit(None, [store.write_part(rows("base", 10))], ["a", "b"], "run-1", "base data")
        part = store.write_part(rows("bad", 6), batch.content_hash)
        grown = store.commit(base, [part], ["a", "b"], "run-2", "batch shuffled.csv")

    assert main(["data", "drop", "shuffled.csv", "--reason", "labels shuffled by the exporter",
                 "-c", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert "data version 3 (#" in out
    # the command to paste, with the config given (it said "-c CONFIG": README QA)
    assert f"Retrain on it: tuneline retrain -c {config_path} --set retrain.when_no_new_data=retrain" in out
    with DatasetStore(url, name, dataset_folder(config)) as store:
        dropped = store.current()
        assert (dropped.number, dropped.parent, dropped.parts) == (3, 2, base.parts)
        assert dropped.rows == 10 and dropped.split_rows == {"train": 8, "validation": 0, "test": 2}
        assert "dropped batch shuffled.csv" in dropped.note and "labels shuffled by the exporter" in dropped.note
        assert store.get(2).parts == grown.parts and len(store.frame(store.get(2))) == 16  # history intact
        assert not store.frame(dropped)["text"].str.startswith("bad").any()

    with Ledger(url, name) as ledger:  # the ledger says so too: it kept it claimable (landed) or "used"
        assert ledger.batch(batch.content_hash).state == "dropped"
        assert ledger.claim("run-3") == []
        last = ledger.history(batch.content_hash)[-1]
        assert (last.from_state, last.to_state) == ("landed", "dropped")
        assert "data version 3: labels shuffled by the exporter" in last.detail

    assert main(["data", "drop", "shuffled.csv", "--reason", "again", "-c", str(config_path)]) == 1
    err = capsys.readouterr().err  # it named the version that already left the batch out, not only a part hash
    assert "is not in the current data version" in err and ": version 3 already left it out (dropped batch " in err
    assert main(["data", "drop", "nosuch.csv", "--reason", "x", "-c", str(config_path)]) == 1
    assert "no landed batch of" in capsys.readouterr().err and bad.is_file()


def test_a_rejected_batch_is_requeued_once_and_claimed_again_by_the_next_run(tmp_path, capsys):
    landing = tmp_path / "landing"
    land_rows(landing, "new-label.csv", [(f"cancel {i}", "cancellation") for i in range(4)])
    config_path = tmp_path / "c.yaml"
    config_path.write_text(yaml.safe_dump({
        "data": {"path": "base.csv"}, "work_dir": str(tmp_path / "out"),
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}, "retrain": {"landing": str(landing)}}))
    config = load_config(config_path)
    url = ledger_url_for(config.ledger.url, resolve_tracking_uri(config.tracking.tracking_uri))
    with Ledger(url, config.registered_model_name) as ledger:
        [batch] = ledger.scan(landing)
        ledger.claim("run-1")
        ledger.mark_rejected("run-1", batch.content_hash, ["unseen label(s) ['cancellation']"])
        assert ledger.free_batches() == []

    assert main(["data", "requeue", "new-label.csv", "--reason", "label growth allowed now",
                 "-c", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert "was rejected: unseen label(s) ['cancellation']" in out
    # the config still refuses unseen labels: the requeue says what the next run needs, or it rejects it again
    assert "the next run rejects it again for the same reason: run it with --set drift.allow_label_growth=true" in out
    with Ledger(url, config.registered_model_name) as ledger:
        [free] = ledger.free_batches()
        assert (free.content_hash, free.state, free.reasons) == (batch.content_hash, "landed", ())
        last = ledger.history(batch.content_hash)[-1]
        assert (last.from_state, last.to_state) == ("rejected", "landed") and "label growth allowed" in last.detail
        assert [b.content_hash for b in ledger.claim("run-2")] == [batch.content_hash]
    assert main(["data", "requeue", "new-label.csv", "--reason", "again", "-c", str(config_path)]) == 1
    assert "is claimed, not rejected" in capsys.readouterr().err
    # rejected for its rows: a requeue of the same bytes is rejected again, and it says so (it had been silent)
    with Ledger(url, config.registered_model_name) as ledger:
        ledger.mark_rejected("run-2", batch.content_hash, ["no new rows: all 4 records were rejected or already in "
                                                           "the data"])
    assert main(["data", "requeue", "new-label.csv", "--reason", "try again", "-c", str(config_path)]) == 0
    assert "note: it was rejected for its content (no new rows); the batch is the same bytes" in \
        capsys.readouterr().out


def test_dropping_the_batch_that_grew_a_label_takes_the_label_out_when_no_row_carries_it(tmp_path, capsys):
    """A typo label grown into a class ('shiping') and dropped with its batch stayed in the label set: the next
    model learned a head for a class without rows."""
    landing = tmp_path / "landing"
    land_rows(landing, "typo.csv", [(f"typo {i}", "c") for i in range(6)])
    config_path, config, url, name = loop_config(tmp_path, landing, strategy="continual")
    with Ledger(url, name) as ledger:
        [batch] = ledger.scan(landing)
    with DatasetStore(url, name, dataset_folder(config)) as store:
        base = store.commit(None, [store.write_part(rows("base", 10))], ["a", "b"], "run-1", "base data")
        typo = rows("typo", 6).assign(label="c")
        store.commit(base, [store.write_part(typo, batch.content_hash)], ["a", "b", "c"], "run-2", "typo.csv")
    # the registry as the loop leaves it: v1 trained on data version 1, v2 (champion) on version 2, with the typo
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)  # not a registry another test set process-wide
    client.create_registered_model(name)
    for data_version in ("1", "2"):
        client.create_model_version(name, str(tmp_path), tags={"data.version": data_version})
    client.set_registered_model_alias(name, "champion", "2")

    assert main(["data", "drop", "typo.csv", "--reason", "typo", "-c", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert "label(s) ['c'] leave the label set" in out and "a continual run trains as retrain.strategy full" in out
    # who was trained on the dropped rows, and that the gate would keep the next version out for the lost label
    assert f"model version(s) of {name} trained on data holding these rows: v2 (champion)\n" in out
    assert f"champion v2 was trained on them and stays champion until a version retrained without them passes " \
           f"the gate (or: tuneline rollback {name}" in out
    assert ("the gate keeps out a version that cannot predict a label champion v2 predicts: to retire ['c'], "
            "retrain with --set gate.allow_dropped_labels=true") in out
    with DatasetStore(url, name, dataset_folder(config)) as store:
        assert store.current().labels == ("a", "b") and store.current().content_hash == base.content_hash
        assert store.get(2).labels == ("a", "b", "c")  # history intact


def test_a_label_kept_by_other_rows_stays_after_a_drop(tmp_path, capsys):
    landing = tmp_path / "landing"
    for name in ("first.csv", "second.csv"):
        land_rows(landing, name, [(f"{name} {i}", "c") for i in range(6)])
    config_path, config, url, name = loop_config(tmp_path, landing)
    with Ledger(url, name) as ledger:
        batches = {b.name: b for b in ledger.scan(landing)}
    with DatasetStore(url, name, dataset_folder(config)) as store:
        version = store.commit(None, [store.write_part(rows("base", 10))], ["a", "b"], "run-1", "base data")
        for label_name in ("first.csv", "second.csv"):
            part = store.write_part(rows(label_name, 6).assign(label="c"), batches[label_name].content_hash)
            version = store.commit(version, [part], ["a", "b", "c"], "run", label_name)
    assert main(["data", "drop", "first.csv", "--reason", "bad export", "-c", str(config_path)]) == 0
    assert "leave the label set" not in capsys.readouterr().out
    with DatasetStore(url, name, dataset_folder(config)) as store:
        assert store.current().labels == ("a", "b", "c")


def test_a_batch_name_landed_twice_a_path_and_a_misspelling_are_each_answered(tmp_path, capsys):
    """A producer writing export.csv every day makes several batches of one name: the error asked for 'more of its
    content hash', which no command showed; a path (landing/x.csv) and a typo got no help either."""
    import os

    landing = tmp_path / "landing"
    config_path, config, url, _name = loop_config(tmp_path, landing)
    hashes = []
    for day in (1, 2):
        path = write_rows(landing / "export.csv", [(f"day {day} row {i}", "a") for i in range(4)])
        marker = landing / "export.csv.done"
        marker.touch()
        later = path.stat().st_mtime_ns + day * 10**9
        os.utime(marker, ns=(later, later))
        with Ledger(url, config.registered_model_name) as ledger:
            [batch] = ledger.scan(landing)
            hashes.append(batch.content_hash)
            ledger.claim("run")
            ledger.mark_rejected("run", batch.content_hash, ["bad export"])
    assert hashes[0] != hashes[1]

    assert main(["data", "requeue", "export.csv", "--reason", "fixed", "-c", str(config_path)]) == 1
    err = capsys.readouterr().err
    assert "2 landed batches of" in err and f"#{hashes[0][:12]} (rejected" in err and f"#{hashes[1][:12]}" in err
    assert main(["data", "requeue", hashes[1][:10], "--reason", "fixed", "-c", str(config_path)]) == 0
    capsys.readouterr()
    assert main(["data", "requeue", "exprot.csv", "--reason", "x", "-c", str(config_path)]) == 1
    assert "(did you mean 'export.csv'?)" in capsys.readouterr().err
    assert main(["data", "requeue", str(landing / "export.csv"), "--reason", "x", "-c", str(config_path)]) == 1
    assert "2 landed batches of" in capsys.readouterr().err  # the path names the batch by its file name
    assert main(["data", "requeue", hashes[1][:5], "--reason", "x", "-c", str(config_path)]) == 1
    assert "(a content hash is given by its first 8 or more characters)" in capsys.readouterr().err


def test_a_complete_batch_no_run_has_recorded_yet_can_be_dropped_before_it_is_trained_on(tmp_path, capsys):
    """Without a watcher, a batch reaches the ledger when a run starts: `data drop` of a complete batch still in
    landing said "no landed batch is called", and the next retrain trained on it (operator QA)."""
    landing = tmp_path / "landing"
    config_path, config, url, name = loop_config(tmp_path, landing)
    with Ledger(url, name):  # the loop has run before: its ledger exists
        pass
    land_rows(landing, "oops.csv", [(f"wrong export {i}", "a") for i in range(4)])
    assert main(["data", "drop", "oops.csv", "--reason", "wrong export", "-c", config_path]) == 0
    capsys.readouterr()
    with Ledger(url, name) as ledger:
        [batch] = ledger.batches()
        assert (batch.name, batch.state) == ("oops.csv", "dropped")
        assert ledger.claim("next-run") == []  # the next retrain does not take it


def test_data_batches_says_why_a_batch_was_dropped_and_that_an_unreadable_one_was_not_read(tmp_path, capsys):
    """`data batches` showed `dropped` without the reason given to `data drop` (it was in `data log` only), and an
    unreadable batch with no row part at all, as if it had none (pair QA, D8)."""
    landing = tmp_path / "landing"
    config_path, config, url, name = loop_config(tmp_path, landing)
    land_rows(landing, "oops.csv", [(f"wrong export {i}", "a") for i in range(4)])
    land_rows(landing, "broken.csv", [(f"text {i}", "a") for i in range(4)])
    with Ledger(url, name) as ledger:
        recorded = {b.name: b for b in ledger.scan(landing)}
        ledger.claim("run-1")
        ledger.mark_rejected("run-1", recorded["broken.csv"].content_hash, ["broken.csv cannot be read: bad bytes"])
        ledger.release("run-1")
    assert main(["data", "drop", "oops.csv", "--reason", "the export joined on the wrong key",
                 "-c", config_path]) == 0
    capsys.readouterr()
    assert main(["data", "batches", "-c", config_path]) == 0
    lines = capsys.readouterr().out.splitlines()
    broken = next(i for i, line in enumerate(lines) if line.strip().startswith("broken.csv"))
    assert "rejected" in lines[broken] and "not read (no row counted)" in lines[broken], lines
    oops = next(i for i, line in enumerate(lines) if line.strip().startswith("oops.csv"))
    assert "dropped" in lines[oops], lines
    assert lines[oops + 1].strip() == ("dropped by user " + __import__("getpass").getuser()
                                       + ": before any data version held its rows: the export joined on the wrong key")


def test_two_batches_of_one_name_are_told_apart_by_hash_in_the_summary():
    """A batch given back by a stopped run keeps its copied content; the producer then rewrote the file and landed it
    again: both were used, and the summary read 'good.csv, new.csv, good.csv'."""
    from types import SimpleNamespace

    from tuneline.tasks.summary import distinct_names

    batches = [SimpleNamespace(name="good.csv", content_hash="a" * 64), SimpleNamespace(name="new.csv",
                                                                                        content_hash="b" * 64),
               SimpleNamespace(name="good.csv", content_hash="c" * 64)]
    assert distinct_names(batches) == [f"good.csv #{'a' * 12}", "new.csv", f"good.csv #{'c' * 12}"]


def test_data_log_on_a_fresh_folder_reads_and_writes_nothing(tmp_path, capsys):
    """A read-only command created the ledger file (and its tables) where none was."""
    config_path = tmp_path / "c.yaml"
    config_path.write_text(yaml.safe_dump({
        "data": {"path": "base.csv"}, "work_dir": str(tmp_path / "out"),
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}}))
    assert main(["data", "log", "-c", str(config_path)]) == 1  # no store there: not "no data version yet" (loop QA)
    assert f"no MLflow store at {tmp_path / 'mlflow.db'}: run this in the folder where you trained" in (
        capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
    (tmp_path / "mlflow.db").touch()  # a store that has trained, but no retraining loop yet
    assert main(["data", "log", "-c", str(config_path)]) == 0
    assert "no data version yet" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "mlflow.db"]


def test_a_takeover_run_never_counts_its_own_batches_as_earlier_data(tmp_path):
    """A run killed after it committed its data version leaves the batches' parts in the version the next run
    starts from; with a champion from `tuneline train` (no data.version tag) those new rows were scored as the
    champion's earlier test rows (314 of 314) and no new_test.* metric was logged."""

    from tuneline.tasks.forgetting import earlier_data

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store_client(uri)  # not the process's: an earlier test's server is gone
    client.create_registered_model("takeover")
    version = client.create_model_version("takeover", str(tmp_path), run_id=None)
    client.set_registered_model_alias("takeover", "champion", version.version)  # as `tuneline train` leaves it
    with DatasetStore(f"sqlite:///{tmp_path / 'ledger.db'}", "takeover", tmp_path / "data") as store:
        base = store.write_part(pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"], "split": ["train", "test"]}))
        batch = store.write_part(pd.DataFrame({"text": ["c", "d"], "label": ["x", "y"], "split": ["test", "test"]}))
        first = store.commit(None, [base], ["x", "y"], None, "base")
        committed = store.commit(first, [batch], ["x", "y"], "dead-run", "batch")  # by the run that was killed
        earlier = earlier_data.fn(client, "takeover", store, committed, {batch})
    assert earlier.champion_version == str(version.version) and earlier.parts == frozenset([base])
    test = pd.DataFrame({"text": ["b", "c", "d"], "part": [base, batch, batch]})
    assert earlier.earlier(test)["text"].tolist() == ["b"] and earlier.new_mask(test).tolist() == [False, True, True]


def test_a_takeover_run_checks_drift_against_the_data_without_its_own_batches(tmp_path, tiny_bert):
    """The run that takes over from one killed after it committed the data version finds the batch's part in that
    version: its drift test compared the batch partly with itself (250 new vs 2,600 reference rows instead of
    2,350), a weaker test than the killed run's."""
    from transformers import AutoTokenizer

    from conftest import working_in
    from tuneline.tasks.drift import check_batch_drift
    from tuneline.tracking import tracked_run

    base_rows = pd.DataFrame({"text": [f"base text {i}" for i in range(300)], "label": ["x", "y"] * 150,
                              "split": ["train", "test", "train"] * 100})
    batch_rows = pd.DataFrame({"text": [f"new text {i}" for i in range(250)], "label": ["x"] * 200 + ["y"] * 50,
                               "split": ["train"] * 250})
    (tmp_path / "landing").mkdir()
    batch_rows[["text", "label"]].to_csv(tmp_path / "landing" / "b.csv", index=False)
    (tmp_path / "landing" / "b.csv.done").touch()
    with DatasetStore(f"sqlite:///{tmp_path / 'ledger.db'}", "takeover", tmp_path / "data") as store, \
            Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", "takeover") as ledger:
        base = store.write_part(base_rows)
        part = store.write_part(batch_rows)
        first = store.commit(None, [base], ["x", "y"], None, "base")
        committed = store.commit(first, [part], ["x", "y"], "dead-run", "batch")  # by the run that was killed
        (batch,) = ledger.scan(tmp_path / "landing")
        reference = store.frame(committed)
    config = build_config({"data": {"path": str(tmp_path / "d.csv")}, "model": {"base": str(tiny_bert)},
                           "tracking": {"registered_model": "takeover"}}, [])
    with working_in(tmp_path), tracked_run(config) as run:
        outcome = check_batch_drift.fn([(batch, batch_rows)], reference, ["x", "y"],
                                       AutoTokenizer.from_pretrained(tiny_bert), config, run, own_parts={part})
    sentence = outcome.reports[batch.content_hash]["label_shift"].sentence
    assert "250 new vs 300 reference rows" in sentence, sentence
    assert outcome.reports[batch.content_hash]["label_shift"].status == "warn"  # 80% x against 50%: a real shift


def _p1_partly_resent_by_p2(tmp_path, resent_rows: int) -> tuple[str, object, str, str, object]:
    """p1 lands 6 rows, p2 resends ``resent_rows`` of them (quarantined there as duplicate_of_earlier_data, not stored
    twice) and one new row; both used by run r2. (config path, config, ledger URL, model name, the grown version)."""
    landing = tmp_path / "landing"
    config_path, config, url, name = loop_config(tmp_path, landing)
    write_rows(tmp_path / "base.csv", [("x", "a"), ("y", "b")])
    first = rows("sent once", 6)
    land_rows(landing, "p1.csv", list(zip(first["text"], first["label"])))
    with Ledger(url, name) as ledger:
        [p1] = ledger.scan(landing)
    resent = [(f"SENT  once {i}", label) for i, label in zip(range(resent_rows), first["label"])]  # case, spacing
    land_rows(landing, "p2.csv", [*resent, ("new row", "a")])
    quarantine = tmp_path / "out" / "runs" / "r2" / "batches" / "q" / "quarantine.csv"
    quarantine.parent.mkdir(parents=True)
    pd.DataFrame({"split": "train", "source_file": str(landing / "p2.csv"), "source_row": range(1, resent_rows + 1),
                  "source_line": range(2, resent_rows + 2), "rule": "duplicate_of_earlier_data", "column": "text",
                  "value": [t for t, _ in resent], "detail": "already in an earlier data version or batch"}
                 ).to_csv(quarantine, index=False)
    with Ledger(url, name) as ledger:
        [p2] = ledger.scan(landing)
        assert [b.name for b in ledger.claim("r2")] == ["p1.csv", "p2.csv"]
        ledger.mark_validated("r2", p1.content_hash, 6, 0)
        ledger.mark_validated("r2", p2.content_hash, 1, resent_rows, quarantine)
        ledger.mark_used("r2", "1")
    with DatasetStore(url, name, dataset_folder(config)) as store:
        base = store.commit(None, [store.write_part(rows("base", 10))], ["a", "b"], "run-1", "base data")
        grown = store.commit(base, [store.write_part(first, p1.content_hash),
                                    store.write_part(rows("new row", 2), p2.content_hash)], ["a", "b"], "r2", "p1, p2")
    return config_path, config, url, name, grown


def test_dropping_a_batch_keeps_the_rows_a_batch_still_in_use_also_delivered(tmp_path, capsys):
    """p2 resent 4 of p1's rows (quarantined there as duplicate_of_earlier_data, not stored twice): dropping p1 took
    them out of the data although p2, still "used", had brought them too (operator QA)."""
    config_path, config, url, name, grown = _p1_partly_resent_by_p2(tmp_path, 4)
    assert main(["data", "drop", "p1.csv", "--reason", "a test export", "-c", config_path]) == 0
    said = capsys.readouterr().out
    assert f"version {grown.number} without the rows of p1.csv (but for 4 that p2.csv also delivered, which stay); " \
           "16 rows" in said, said
    with DatasetStore(url, name, dataset_folder(config)) as store:
        frame = store.frame(store.current())
        assert sorted(frame.loc[frame["text"].str.startswith("sent once"), "text"]) == [f"sent once {i}" for i in
                                                                                        range(4)]
        assert "kept its rows that p2.csv (4) also delivered" in store.current().note


def test_dropping_a_batch_whose_every_row_another_batch_resent_is_refused_saying_which_to_drop_first(tmp_path,
                                                                                                   capsys):
    """All 6 rows of p1 resent by p2: the drop made a version equal to the last, marked p1 dropped and advised a
    retrain for nothing; a later drop of p2 would then have kept the rows of the "dropped" p1 (operator QA)."""
    config_path, config, url, name, grown = _p1_partly_resent_by_p2(tmp_path, 6)
    assert main(["data", "drop", "p1.csv", "--reason", "a test export", "-c", config_path]) != 0
    assert capsys.readouterr().err.strip() == (
        "tuneline: batch p1.csv: all its 6 rows in the data were also delivered by p2.csv, still in use (set aside "
        "there as copies of these), so dropping p1.csv alone removes nothing; drop p2.csv first (tuneline data "
        "drop), then p1.csv")
    with DatasetStore(url, name, dataset_folder(config)) as store:
        assert store.current().number == grown.number  # no new version
    with Ledger(url, name) as ledger:
        assert {b.name: b.state for b in ledger.batches()} == {"p1.csv": "used", "p2.csv": "used"}
