"""The retraining loop's commands given a real user's mistakes: each answered in one line, exit code non-zero, and the
ledger, data versions and landing folder left as they were (or, where the command does what was asked, changed as
asked). Real files, the real SQLite ledger and dataset store, the real CLI entry point; nothing mocked."""

from __future__ import annotations

import time

import pytest
import yaml

from test_data_drop import land_rows, loop_config, rows
from tests_support import store_client, write_rows
from tuneline.cli import main
from tuneline.dataset_store import DatasetStore
from tuneline.ledger import Ledger
from tuneline.tasks.intake import dataset_folder


def one_line(err: str) -> str:
    """The error as printed: one ``tuneline:`` line, no traceback."""
    assert err.startswith("tuneline: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def with_base(config, url: str, name: str) -> None:
    """Data version 1, as a first retraining run commits it (10 rows, labels a/b)."""
    with DatasetStore(url, name, dataset_folder(config)) as store:
        store.commit(None, [store.write_part(rows("base", 10))], ["a", "b"], "run-1", "base data")


def versions(config, url: str, name: str) -> list[int]:
    with DatasetStore(url, name, dataset_folder(config)) as store:
        return [v.number for v in store.versions()]


def test_drop_and_requeue_from_another_folder_name_the_missing_ledger_and_create_nothing(tmp_path, capsys):
    """Run where no loop ever ran (the default ledger sits beside ./mlflow.db), both commands created an empty
    tuneline-ledger.db there and answered "no landed batch is called X", which reads as a typo in the name."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config_path = elsewhere / "c.yaml"
    config_path.write_text(yaml.safe_dump({"data": {"path": "base.csv"}, "work_dir": str(tmp_path / "out"),
                                           "tracking": {"tracking_uri": f"sqlite:///{elsewhere / 'mlflow.db'}"}}))
    for command in ("drop", "requeue"):
        assert main(["data", command, "tickets-batch-001.csv", "--reason", "bad export", "-c", str(config_path)]) == 1
        err = one_line(capsys.readouterr().err)
        assert f"no MLflow store at {elsewhere / 'mlflow.db'}: run this in the folder where you trained" in err
    assert sorted(p.name for p in elsewhere.iterdir()) == ["c.yaml"]
    (elsewhere / "mlflow.db").touch()  # a store without a retraining loop beside it: no ledger, no batch landed
    for command in ("drop", "requeue"):
        assert main(["data", command, "tickets-batch-001.csv", "--reason", "bad export", "-c", str(config_path)]) == 1
        err = one_line(capsys.readouterr().err)
        assert f"no batch ledger at sqlite:///{elsewhere / 'tuneline-ledger.db'}" in err
        assert "run this in the folder where `tuneline retrain` ran" in err
    assert sorted(p.name for p in elsewhere.iterdir()) == ["c.yaml", "mlflow.db"]


def test_a_relabelling_row_without_a_label_or_text_is_refused_and_no_version_is_made(tmp_path, capsys):
    """A correction file with the label cell left empty was committed: data version 2 held a row labelled NaN, which
    no batch could ever have landed with. Now the kind's contract is applied to the file first."""
    landing = tmp_path / "landing"
    landing.mkdir()
    config_path, config, url, name = loop_config(tmp_path, landing)
    with_base(config, url, name)

    fixes = write_rows(tmp_path / "fixes.csv", [("base 1", "a"), ("base 0", "")])
    assert main(["data", "relabel", str(fixes), "--reason", "review", "-c", config_path]) == 1
    assert one_line(capsys.readouterr().err) == (
        f"tuneline: {fixes}: 1 row(s) break the data contract, first at line 3 (not_nullable: the label is missing (an "
        "empty cell, or null)); fix them, so that no row of the data is given a label it could never have landed "
        "with")
    blank = write_rows(tmp_path / "blank.csv", [("   ", "b")])
    assert main(["data", "relabel", str(blank), "--reason", "review", "-c", config_path]) == 1
    assert "first at line 2 (text_is_non_empty_string: the text is empty or only spaces)" in one_line(
        capsys.readouterr().err)
    assert versions(config, url, name) == [1]
    with DatasetStore(url, name, dataset_folder(config)) as store:
        frame = store.frame(store.current())
        assert frame["label"].notna().all() and dict(zip(frame["text"], frame["label"]))["base 0"] == "a"

    # a file the reader refuses is named once, not "fixes.csv: input file fixes.csv is empty"
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert main(["data", "relabel", str(empty), "--reason", "review", "-c", config_path]) == 1
    err = one_line(capsys.readouterr().err)
    assert err.count(str(empty)) == 1 and "is empty (0 bytes)" in err
    # the good rows alone still go through
    good = write_rows(tmp_path / "good.csv", [("base 0", "b")])
    assert main(["data", "relabel", str(good), "--reason", "review", "-c", config_path]) == 0
    assert "version 1 with 1 row(s) relabelled" in capsys.readouterr().out
    assert versions(config, url, name) == [1, 2]


def test_dropping_a_batch_before_any_run_took_it_keeps_every_run_from_taking_it(tmp_path, capsys):
    """`data drop` of a batch that had landed but was not trained on yet answered "added no rows to the data (it is
    landed); nothing to drop", and the next `tuneline retrain` trained on the batch the user had just dropped."""
    landing = tmp_path / "landing"
    land_rows(landing, "wrong.csv", [(f"wrong {i}", "a") for i in range(4)])
    land_rows(landing, "held.csv", [(f"held {i}", "b") for i in range(4)])
    config_path, config, url, name = loop_config(tmp_path, landing)
    with_base(config, url, name)
    with Ledger(url, name) as ledger:
        wrong, held = ledger.scan(landing)

    assert main(["data", "drop", "wrong.csv", "--reason", "exported from the wrong table", "-c", config_path]) == 0
    assert capsys.readouterr().out == (
        f"batch wrong.csv (#{wrong.content_hash[:12]}) of {name} is dropped: it was landed and no data version holds "
        "its rows, so the data stays as it is and no retraining run will take the batch in\n")
    with Ledger(url, name) as ledger:
        assert ledger.batch(wrong.content_hash).state == "dropped"
        last = ledger.history(wrong.content_hash)[-1]
        assert (last.from_state, last.to_state) == ("landed", "dropped")
        assert "exported from the wrong table" in last.detail
        assert [b.name for b in ledger.free_batches()] == ["held.csv"]
        ledger.claim("live-run")  # a run at work holds the other batch under a live lease
    assert versions(config, url, name) == [1]

    assert main(["data", "drop", "held.csv", "--reason", "x", "-c", config_path]) == 1
    err = one_line(capsys.readouterr().err)
    assert "is claimed, held by run 'live-run'" in err and "let that run finish" in err
    with Ledger(url, name) as ledger:
        assert ledger.batch(held.content_hash).state == "claimed"  # refused: nothing changed
    assert versions(config, url, name) == [1]

    # a run that died holding it: its lease runs out, and the next run would take the batch over; droppable now
    with Ledger(url, name, lease_s=0.2) as ledger:
        ledger.release("live-run")
        ledger.claim("killed-run")
    time.sleep(0.5)
    assert main(["data", "drop", "held.csv", "--reason", "wrong table too", "-c", config_path]) == 0
    assert "it was claimed and no data version holds its rows" in capsys.readouterr().out
    with Ledger(url, name) as ledger:
        assert ledger.batch(held.content_hash).state == "dropped" and ledger.claim("next-run") == []
    assert versions(config, url, name) == [1]


def test_requeue_of_a_batch_that_is_landed_already_is_nothing_to_do(tmp_path, capsys):
    """A requeue run twice (the second time with the --set its note named) failed: "is landed, not rejected"."""
    landing = tmp_path / "landing"
    land_rows(landing, "new-label.csv", [(f"cancel {i}", "cancellation") for i in range(4)])
    config_path, config, url, name = loop_config(tmp_path, landing)
    with Ledger(url, name) as ledger:
        [batch] = ledger.scan(landing)
        ledger.claim("run-1")
        ledger.mark_rejected("run-1", batch.content_hash, ["unseen label(s) ['cancellation']"])
    assert main(["data", "requeue", "new-label.csv", "--reason", "new intent", "-c", config_path]) == 0
    capsys.readouterr()
    assert main(["data", "requeue", "new-label.csv", "--reason", "new intent", "-c", config_path,
                 "--set", "drift.allow_label_growth=true"]) == 0
    assert capsys.readouterr().out == (
        f"batch new-label.csv (#{batch.content_hash[:12]}) of {name} is landed already: the next `tuneline retrain` "
        "takes it; nothing to do (a --set for that run goes on `tuneline retrain`)\n")
    with Ledger(url, name) as ledger:
        assert [e.to_state for e in ledger.history(batch.content_hash)] == ["landed", "claimed", "rejected", "landed"]


def test_requeue_of_an_empty_file_is_refused(tmp_path, capsys):
    """An empty batch was landed again by `data requeue`, with the note "change the data.* setting it names": no
    setting reads 0 bytes (operator QA)."""
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "empty.csv").write_bytes(b"")
    (landing / "empty.csv.done").touch()
    config_path, config, url, name = loop_config(tmp_path, landing)
    with Ledger(url, name) as ledger:
        [batch] = ledger.scan(landing)
        ledger.claim("run-1")
        ledger.mark_rejected("run-1", batch.content_hash,
                             [f"batch empty.csv cannot be read: {landing}/empty.csv is empty"])
    assert main(["data", "requeue", "empty.csv", "--reason", "try again", "-c", config_path]) == 1
    assert capsys.readouterr().err.strip() == (
        f"tuneline: batch empty.csv (#{batch.content_hash[:12]}) is an empty file (0 bytes): no setting makes it "
        "readable, so it stays rejected; land the data as a new file")
    with Ledger(url, name) as ledger:
        assert ledger.batch(batch.content_hash).state == "rejected"


def test_demo_batch_given_a_file_instead_of_the_landing_folder_writes_nothing(tmp_path, capsys, monkeypatch):
    """`demo-batch demo-loop.yaml` failed as "File exists: demo-loop.yaml: check that path, its permissions and the
    free disk space"; `demo-batch landing/b.csv` made a folder b.csv in the landing folder, which the scanner then
    listed as a folder batch waiting for its _SUCCESS."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "landing").mkdir()
    config = tmp_path / "demo-loop.yaml"
    config.write_text("task: classification\n")
    assert main(["demo-batch", "demo-loop.yaml", "-n", "2"]) == 1
    assert one_line(capsys.readouterr().err) == (
        "tuneline: demo-loop.yaml is a file, not a folder: give the landing folder (retrain.landing) to write the "
        "batch into, e.g. tuneline demo-batch . -n 2")
    assert main(["demo-batch", "landing/tickets-batch-001.csv"]) == 1
    assert "landing/tickets-batch-001.csv names a file, not the landing folder" in one_line(capsys.readouterr().err)
    assert config.read_text() == "task: classification\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["demo-loop.yaml", "landing"]
    assert main(["demo-batch", "landing", "-n", "1", "--rows", "5"]) == 0  # the folder itself still works
    assert sorted(p.name for p in (tmp_path / "landing").iterdir()) == ["tickets-batch-001.csv",
                                                                        "tickets-batch-001.csv.done"]


def test_retrain_with_a_missing_landing_folder_is_refused_before_anything_starts(tmp_path, capsys, tiny_bert):
    """A typo in retrain.landing was refused only after the Prefect API had started (about 20 s), and after the
    ledger database was created beside the MLflow store."""
    write_rows(tmp_path / "base.csv", [("x", "a"), ("y", "b")])
    config_path = tmp_path / "c.yaml"
    config_path.write_text(yaml.safe_dump({
        "data": {"path": str(tmp_path / "base.csv")}, "model": {"base": str(tiny_bert)},
        "work_dir": str(tmp_path / "out"), "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        "retrain": {"landing": str(tmp_path / "landing")}}))
    assert main(["retrain", "-c", str(config_path)]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"tuneline: retrain.landing: the landing folder {tmp_path / 'landing'} does not exist; create it, or set "
        "retrain.landing to the folder where labeled batches land")
    assert main(["retrain", "-c", str(config_path), "--set", f"retrain.landing={config_path}"]) == 2
    assert "is a file, not a folder; set retrain.landing" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.csv", "c.yaml"]


def _loop_with_a_used_batch(tmp_path, stem: str):
    """A loop as its runs leave it: the base data (version 1, run-1) and batch ``<stem>.csv`` used by run-2
    (version 2, model v2); returns (config path, config, ledger URL, model name, the batch)."""
    landing = tmp_path / "landing"
    land_rows(landing, f"{stem}.csv", [(f"{stem} 0", "a")])
    config_path, config, url, name = loop_config(tmp_path, landing)
    with Ledger(url, name) as ledger:
        [batch] = ledger.scan(landing)
        ledger.claim("run-2")
        ledger.mark_validated("run-2", batch.content_hash, 4, 0)
        ledger.mark_used("run-2", "2")
    with DatasetStore(url, name, dataset_folder(config)) as store:
        base = store.commit(None, [store.write_part(rows("base", 10))], ["a", "b"], "run-1", "base data")
        store.commit(base, [store.write_part(rows(stem, 4).assign(batch=batch.content_hash), batch.content_hash)],
                     ["a", "b"], "run-2", f"batch {stem}.csv")
    return config_path, config, url, name, batch


def test_a_run_with_nothing_new_after_a_drop_says_the_new_version_has_no_model(tmp_path, capsys):
    """After `data drop`, a plain `tuneline retrain` said "no new batch has landed; nothing to do", and the champion
    trained on the dropped rows went on serving; now the run names the version no model was trained on."""
    from conftest import working_in
    from tuneline.flows.retrain import retrain_flow

    config_path, config, url, name, batch = _loop_with_a_used_batch(tmp_path, "bad")
    assert main(["data", "drop", "bad.csv", "--reason", "labels shuffled", "-c", config_path]) == 0
    capsys.readouterr()

    with working_in(tmp_path):
        summary = retrain_flow(config, trigger="test")
    assert summary.status == "skipped" and summary.run is None
    assert summary.message.startswith("no new batch has landed since the last retraining run; nothing to do")
    assert summary.message.endswith(
        f"; data version 3 (dropped batch bad.csv (#{batch.content_hash[:12]}): labels shuffled) has no model trained "
        "on it yet: retrain on it with --set retrain.when_no_new_data=retrain")
    assert versions(config, url, name) == [1, 2, 3]


def test_history_with_no_ledger_file_creates_none(tmp_path, capsys):
    """``history --ledger-url`` with a mistyped SQLite path created an empty ledger there and printed "no recorded
    moves" (a typo read as an empty history); without --ledger-url, a registry whose loop never recorded a move
    created the default ledger beside mlflow.db."""

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store_client(uri).create_registered_model("tickets")
    capsys.readouterr()  # MLflow's own lines as it creates the store
    typo = tmp_path / "ledgr.db"
    assert main(["history", "tickets", "--tracking-uri", uri, "--ledger-url", f"sqlite:///{typo}"]) == 1
    assert "no such ledger file" in one_line(capsys.readouterr().err)
    assert main(["history", "tickets", "--tracking-uri", uri]) == 0
    assert capsys.readouterr().out.startswith("no recorded moves of tickets@champion: no ledger at")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]
    assert main(["history", "tikets", "--tracking-uri", uri]) == 1  # a misspelled model is still named as such
    assert "tikets" in one_line(capsys.readouterr().err)


def test_a_config_folder_or_a_ledger_url_that_is_no_url_is_a_config_error(tmp_path, capsys):
    assert main(["validate", "-c", str(tmp_path)]) == 2
    assert f"config file {tmp_path} is a folder; give the YAML file" in one_line(capsys.readouterr().err)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"data": {"path": "base.csv"}}))
    assert main(["retrain", "-c", str(tmp_path / "c.yaml"), "--set", "ledger.url=notaurl"]) == 2
    assert "ledger.url: not a database URL" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_nothing_to_do_names_the_run_that_took_the_last_batches(tmp_path):
    """A run queued behind a concurrent one found the batches that woke it taken and said only "no new batch has
    landed", though two had a minute before (operator QA): it names the run that took them, and when."""
    from tuneline.flows.retrain import _last_taken

    landing = tmp_path / "landing"
    for name in ("b7.csv", "b8.csv"):
        land_rows(landing, name, [(f"{name} {i}", "a") for i in range(3)])
    _config_path, _config, url, name = loop_config(tmp_path, landing)
    with Ledger(url, name) as ledger:
        assert _last_taken(ledger) == ""
        for batch in ledger.scan(landing):
            ledger.claim("run-9")
            ledger.mark_validated("run-9", batch.content_hash, 3, 0)
        ledger.mark_used("run-9", "4")
        [used] = ledger.batches("used")[-1:]
        assert _last_taken(ledger) == f" (run run-9 took b7.csv, b8.csv at {used.used_at:%Y-%m-%d %H:%M:%S} UTC)"


def test_a_run_with_nothing_new_names_what_landed_since_and_was_not_usable(tmp_path):
    """"no new batch has landed since the last retraining run (run ... took good.csv ...)" was said although a
    batch had landed (and been rejected) since, and a copy of an earlier one too (loop QA)."""
    from conftest import working_in
    from tuneline.flows.retrain import retrain_flow

    landing = tmp_path / "landing"
    _config_path, config, url, name, _batch = _loop_with_a_used_batch(tmp_path, "good")
    time.sleep(0.05)  # landed after the use
    with Ledger(url, name) as ledger:
        land_rows(landing, "newlabel.csv", [("odd 0", "zzz")])
        land_rows(landing, "again.csv", [("good 0", "a")])
        recorded = {b.name: b for b in ledger.scan(landing)}
        assert recorded["again.csv"].state == "duplicate"
        ledger.claim("run-3")
        ledger.mark_rejected("run-3", recorded["newlabel.csv"].content_hash, ["label 'zzz' is new"])
    with working_in(tmp_path):
        summary = retrain_flow(config, trigger="test")
    assert summary.status == "skipped" and summary.run is None
    assert summary.message.startswith("no new usable batch has landed since the last retraining run (run run-2 took "
                                      "good.csv at ")
    assert (" UTC) (landed since, not usable: 1 rejected (newlabel.csv); 1 copy of an earlier batch (again.csv); "
            "`tuneline data batches` says why); nothing to do") in summary.message


@pytest.mark.parametrize("labels", [["c"], ["0", "1"]])
def test_a_stopped_run_names_the_config_it_was_given_in_its_advice(tmp_path, labels):
    """An unseen label stops the run with a `data requeue` command to paste: it said `-c CONFIG` where the summary of
    a rejected batch named the user's config (pair QA). Labels that name the model's classes another way (codes
    where its labels are words, `yes`/`no` for `1`/`0`) are not advised to grow the head (pair QA, D4)."""
    import contextlib
    import io

    from conftest import working_in

    config_path, _config, _url, _name, _batch = _loop_with_a_used_batch(tmp_path, "good")
    land_rows(tmp_path / "landing", "new.csv", [(f"a text with a new label {i}", label)
                                                for i, label in enumerate(labels)])
    said = io.StringIO()
    with working_in(tmp_path), contextlib.redirect_stderr(said):
        assert main(["retrain", "-c", config_path]) == 1
    message = said.getvalue()
    assert f"unseen label(s) {labels} in new.csv" in message, message
    assert f"tuneline data requeue -c {config_path} new.csv" in message and "CONFIG" not in message
    renamed = ("the batch writes number codes where the model's labels are words: they look like other names of its "
               "2 classes, not new ones, so write them as 'a', 'b' in the file and land it as a new batch; only if "
               "they are new classes, set drift.allow_label_growth: true (the model would have 4 classes)")
    assert (renamed in message) == (labels == ["0", "1"]), message
    assert ("or set drift.allow_label_growth: true to grow the head" in message) == (labels == ["c"]), message


def test_words_for_number_codes_are_named_as_other_names_of_the_classes():
    from tuneline.tasks.drift import renamed_classes

    assert renamed_classes(["no", "yes"], ["0", "1"]).startswith(
        "the batch writes words where the model's labels are number codes")
    assert "write them as '0', '1'" in renamed_classes(["no", "yes"], ["0", "1"])
    # a real new class, more names than classes, or a mix of codes and words: the growth advice stays
    for unseen, known in [(["2"], ["0", "1"]), (["c"], ["a", "b"]), (["x", "y", "z"], ["0", "1"]),
                          (["yes"], ["0", "b"])]:
        assert renamed_classes(unseen, known) == "", (unseen, known)
