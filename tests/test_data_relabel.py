"""``tuneline data relabel``: labels of rows already in the loop's data corrected as a new data version.

The loop only appended: a batch row giving a known example another label was quarantined and the old label kept, and
rows of the base data (data version 1) could not be corrected without starting the loop over."""

from __future__ import annotations

import pandas as pd

from test_data_drop import loop_config, rows
from tests_support import write_rows
from tuneline.cli import main
from tuneline.dataset_store import DatasetStore
from tuneline.ledger import Ledger
from tuneline.tasks.intake import dataset_folder


def labels_of(store: DatasetStore, version) -> dict[str, str]:
    frame = store.frame(version)
    return dict(zip(frame["text"], frame["label"]))


def test_relabelling_corrects_base_and_batch_rows_in_a_new_version_and_keeps_the_old(tmp_path, capsys):
    landing = tmp_path / "landing"
    write_rows(landing / "late.csv", [("late 0", "a")])
    (landing / "late.csv.done").touch()
    config_path, config, url, name = loop_config(tmp_path, landing)
    with Ledger(url, name) as ledger:
        [batch] = ledger.scan(landing)
    with DatasetStore(url, name, dataset_folder(config)) as store:
        base = store.commit(None, [store.write_part(rows("base", 10))], ["a", "b"], "run-1", "base data")
        late = store.write_part(rows("late", 4).assign(batch=batch.content_hash), batch.content_hash)
        grown = store.commit(base, [late], ["a", "b"], "run-2", "batch late.csv")
        before = labels_of(store, grown)
        splits_before = dict(zip(store.frame(grown)["text"], store.frame(grown)["split"]))
    assert before["base 0"] == "a" and before["base 9"] == "b" and before["late 1"] == "b"

    fixes = write_rows(tmp_path / "fixes.csv", [("Base  0", "b"),   # case and runs of whitespace aside
                                                ("base 9", "a"), ("late 1", "a"), ("base 1", "b")])  # base 1: as is
    assert main(["data", "relabel", str(fixes), "--reason", "annotator mix-up", "-c", config_path]) == 0
    out = capsys.readouterr().out
    assert "data version 3 (#" in out and "version 2 with 3 row(s) relabelled" in out
    assert "1 row(s) of fixes.csv already had their label" in out
    assert f". Retrain on it: tuneline retrain -c {config_path} --set retrain.when_no_new_data=retrain" in out
    with DatasetStore(url, name, dataset_folder(config)) as store:
        now = store.current()
        after = labels_of(store, now)
        assert (now.number, now.parent, now.rows, now.split_rows) == (3, 2, grown.rows, grown.split_rows)
        assert {t: l for t, l in after.items() if l != before[t]} == {"base 0": "b", "base 9": "a", "late 1": "a"}
        assert dict(zip(store.frame(now)["text"], store.frame(now)["split"])) == splits_before  # no row moved
        assert "relabelled rows from fixes.csv: annotator mix-up" in now.note
        assert labels_of(store, store.get(2)) == before  # the version a model was trained on is untouched
        assert len(set(now.parts) & set(grown.parts)) == 0  # both parts held a corrected row: both written anew

    # the batch can still be dropped: its rows now live in the relabelled part
    assert main(["data", "drop", "late.csv", "--reason", "bad export", "-c", config_path]) == 0
    with DatasetStore(url, name, dataset_folder(config)) as store:
        dropped = store.current()
        assert dropped.rows == 10 and not store.frame(dropped)["text"].str.startswith("late").any()
        assert labels_of(store, dropped)["base 0"] == "b"  # the correction stays


def test_a_relabelling_that_cannot_be_applied_whole_changes_nothing(tmp_path, capsys):
    landing = tmp_path / "landing"
    landing.mkdir()
    config_path, config, url, name = loop_config(tmp_path, landing)
    with DatasetStore(url, name, dataset_folder(config)) as store:
        store.commit(None, [store.write_part(rows("base", 10))], ["a", "b"], "run-1", "base data")

    def refused(fix_rows: list[tuple[str, str]]) -> str:
        fixes = write_rows(tmp_path / "fixes.csv", fix_rows)
        assert main(["data", "relabel", str(fixes), "--reason", "r", "-c", config_path]) == 1
        return capsys.readouterr().err

    err = refused([("base 0", "b"), ("never seen", "a")])
    assert "1 row(s) are not in data version 1" in err and "line 3 ('never seen')" in err  # record 2, after the header
    assert "rows quarantined when their file was read" in err  # README QA: it said only "new rows land as a batch"
    assert "label(s) ['c'] are not in the label set of data version 1 (a, b)" in refused([("base 0", "c")])
    assert "gives one example two labels: line 3 ('BASE 0')" in refused([("base 0", "b"), ("BASE 0", "a")])
    assert "every row already has that label" in refused([("base 0", "a")])
    assert main(["data", "relabel", str(tmp_path / "none.csv"), "--reason", "r", "-c", config_path]) == 1
    assert "none.csv does not exist" in capsys.readouterr().err
    with DatasetStore(url, name, dataset_folder(config)) as store:
        assert [v.number for v in store.versions()] == [1]
        assert labels_of(store, store.current())["base 0"] == "a"


def test_corrections_written_in_another_spelling_are_the_versions_labels(tmp_path, capsys):
    """A correction file is read as a batch is: its labels in the data version's spelling ('B' and 'a.' are the
    version's 'b' and 'a'). Before, the file alone decided the spelling and 'B' was refused as outside the label set,
    though a batch with the same label lands."""
    landing = tmp_path / "landing"
    landing.mkdir()
    config_path, config, url, name = loop_config(tmp_path, landing)
    with DatasetStore(url, name, dataset_folder(config)) as store:
        store.commit(None, [store.write_part(rows("base", 10))], ["a", "b"], "run-1", "base data")
    fixes = write_rows(tmp_path / "fixes.csv", [("base 0", "B"), ("base 2", " B "), ("base 9", "a.")])
    assert main(["data", "relabel", str(fixes), "--reason", "typos", "-c", config_path]) == 0
    assert "version 1 with 3 row(s) relabelled" in capsys.readouterr().out
    with DatasetStore(url, name, dataset_folder(config)) as store:
        now = store.current()
        after = labels_of(store, now)
        assert (after["base 0"], after["base 2"], after["base 9"]) == ("b", "b", "a")
        assert set(store.frame(now)["label"]) == {"a", "b"} and list(now.labels) == ["a", "b"]


def test_ner_sentences_are_retagged_word_for_word(tmp_path):
    """For NER a row's label is its tag list: a sentence is retagged whole, and a tag list of another length than
    the sentence's words is refused (it would shift every tag after the gap)."""
    import pytest

    from tuneline.errors import UserError
    from tuneline.kinds import kind_of
    from tuneline.ledger import default_ledger_url
    from tuneline.tasks.relabel import relabel_rows

    kind = kind_of("token_classification")
    data = pd.DataFrame({"tokens": [["John", "lives", "in", "Paris"], ["Acme", "hired", "Ann"]],
                         "tags": [["B-PER", "O", "O", "B-PER"], ["B-PER", "O", "B-PER"]],
                         "text": ["John lives in Paris", "Acme hired Ann"], "source_file": "base.conll",
                         "source_row": [1, 2], "split": ["train", "test"]})
    url = default_ledger_url(f"sqlite:///{tmp_path / 'mlflow.db'}")
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    with DatasetStore(url, "ner", tmp_path / "datasets") as store:
        base = store.commit(None, [store.write_part(data)], labels, "run-1", "base data")
        fixes = pd.DataFrame({"tokens": [["John", "lives", "in", "Paris"], ["Acme", "hired", "Ann"]],
                              "tags": [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]],
                              "text": ["John lives in Paris", "Acme hired Ann"], "source_row": [1, 2]})
        done = relabel_rows(store, base, fixes, kind, tmp_path / "fixes.conll", "user", "fixed Paris and Acme")
        frame = store.frame(done.version)
        assert [list(t) for t in frame["tags"]] == [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
        assert (done.changed, done.splits) == (2, {"test": 1, "train": 1})
        short = fixes.head(1).assign(tags=[["B-PER", "O", "O"]])
        with pytest.raises(UserError, match="has 4 labels in the data .* and 3 in the file; give one per word"):
            relabel_rows(store, done.version, short, kind, tmp_path / "short.conll", "user", "x")


def test_multilabel_rows_take_another_set_of_labels_of_any_size_and_order(tmp_path, capsys):
    """A multi-label row's label is a set: a correction may add or remove labels, and gives them in any order.
    Before, the NER rule (one tag per word) refused a set of another size ("has 1 labels in the data (one per
    word)"), so a label could be neither added nor removed."""
    import yaml

    from tuneline.config import load_config
    from tuneline.ledger import ledger_url_for
    from tuneline.runtime import resolve_tracking_uri

    config_path = tmp_path / "c.yaml"
    config_path.write_text(yaml.safe_dump({
        "task": "multilabel_classification",
        "data": {"path": "base.csv", "label_column": "tags", "label_separator": "|"},
        "work_dir": str(tmp_path / "out"), "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        "retrain": {"landing": str(tmp_path / "landing")}}))
    config = load_config(config_path)
    url = ledger_url_for(config.ledger.url, resolve_tracking_uri(config.tracking.tracking_uri))
    name = config.registered_model_name
    base = pd.DataFrame({"text": ["my invoice", "my parcel", "a refund"],
                         "label": [["billing", "refund"], ["shipping"], ["refund"]], "split": "train"})
    with DatasetStore(url, name, dataset_folder(config)) as store:
        store.commit(None, [store.write_part(base)], ["billing", "refund", "shipping"], "run-1", "base data")
    fixes = tmp_path / "fixes.csv"
    fixes.write_text("text,tags\nmy invoice,Refund|billing\nmy parcel,refund|shipping\na refund,billing|refund\n")
    assert main(["data", "relabel", str(fixes), "--reason", "missed labels", "-c", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert "with 2 row(s) relabelled" in out and "1 row(s) of fixes.csv already had their label" in out
    with DatasetStore(url, name, dataset_folder(config)) as store:
        after = {t: sorted(labels) for t, labels in labels_of(store, store.current()).items()}
    assert after == {"my invoice": ["billing", "refund"], "my parcel": ["refund", "shipping"],
                     "a refund": ["billing", "refund"]}
    fixes.write_text("text,tags\nmy parcel,shipping\n")  # and a label taken away
    assert main(["data", "relabel", str(fixes), "--reason", "wrong label", "-c", str(config_path)]) == 0
    with DatasetStore(url, name, dataset_folder(config)) as store:
        assert list(labels_of(store, store.current())["my parcel"]) == ["shipping"]
