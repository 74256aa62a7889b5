"""Defects an exploratory QA of the retraining loop found with its NER, pair and multi-label models: a requeued
batch's row counts, the ``data`` commands run from the wrong folder, a batch in another layout than the config read
as hundreds of "unseen labels", and the forgetting sentence naming a class that "rose 0.0000". Real files, the real
SQLite ledger, dataset store and CLI entry point, the real gate; nothing mocked."""

from __future__ import annotations

import yaml

from test_data_drop import land_rows, loop_config, rows
from tuneline.cli import main
from tuneline.config import load_config
from tuneline.dataset_store import DatasetStore
from tuneline.ledger import Ledger
from tuneline.tasks.forgetting import Forgetting
from tuneline.tasks.gate import ChampionScore, decide_promotion
from tuneline.tasks.intake import dataset_folder


def test_a_requeued_batch_is_listed_without_the_counts_of_its_rejection(tmp_path, capsys):
    """Validated with 99 kept and 1 quarantined, rejected by the drift check (100 read, none kept), then requeued:
    ``data batches`` listed it "landed ... rows 0 kept, 100 quarantined", counts no validation of it ever gave."""
    landing = tmp_path / "landing"
    land_rows(landing, "b1_clean.csv", [(f"clean {i}", "ab"[i % 2]) for i in range(100)])
    config_path, _config, url, name = loop_config(tmp_path, landing)
    with Ledger(url, name) as ledger:
        [batch] = ledger.scan(landing)
        ledger.claim("run-1")
        ledger.mark_validated("run-1", batch.content_hash, 99, 1)
        ledger.mark_rejected("run-1", batch.content_hash, ["drift (drift.on_drift=stop): label shift"], rows_read=100)
    assert main(["data", "requeue", "-c", config_path, "b1_clean.csv", "--reason", "x"]) == 0
    capsys.readouterr()
    with Ledger(url, name) as ledger:
        requeued = ledger.batch(batch.content_hash)
    assert (requeued.state, requeued.rows_accepted, requeued.rows_rejected) == ("landed", None, None)

    assert main(["data", "batches", "-c", config_path]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if "b1_clean.csv" in line]
    assert " landed " in line and "rows" not in line and "quarantined" not in line, line


def test_a_candidate_whose_classes_all_held_names_no_class_in_the_forgetting_sentence():
    """Nothing changed per class and the gate said "worst class on the earlier test rows: admiration F1 rose 0.0000
    (no class dropped)": an arbitrary class named as the worst."""
    same = Forgetting(metric="micro_f1", champion_version="2", rows=40, champion=0.5, candidate=0.5,
                      per_class={"admiration": (0.5, 0.5), "amusement": (0.25, 0.25), "anger": (0.0, 0.0)})
    decision = decide_promotion("micro_f1", 0.5, ChampionScore(version="2", metric=0.5), 0.0, 0.05,
                                forgetting=same, max_forgetting=0.02, max_class_forgetting=0.05)
    said = [r for r in decision.reasons if "class" in r and "forgetting on" not in r]
    assert said == ["no class dropped on the earlier test rows (every class's F1 held or rose) within "
                    "max_class_forgetting 0.0500"], decision.reasons
    assert "admiration" not in " ".join(decision.reasons) and "rose 0.0000" not in " ".join(decision.reasons)
    assert same.worst_class_sentence() == said[0].split(" within")[0]

    dropped = Forgetting(metric="micro_f1", champion_version="2", rows=40, champion=0.5, candidate=0.45,
                         per_class={"0": (0.5, 0.5), "1": (0.6, 0.4)})
    decision = decide_promotion("micro_f1", 0.5, ChampionScore(version="2", metric=0.5), 0.0, 0.05,
                                forgetting=dropped, max_forgetting=0.1, max_class_forgetting=0.05)
    assert ("worst class on the earlier test rows: 1 F1 dropped 0.2000 > max_class_forgetting 0.0500"
            in decision.reasons), decision.reasons


def test_the_data_commands_run_from_another_folder_name_the_missing_mlflow_store(tmp_path, monkeypatch, capsys):
    """``data log -c ner/ner.yaml`` run from the folder above the config (the store is resolved relative to the folder
    the command runs in) said "no data version yet in sqlite:///.../tuneline-ledger.db (the first tuneline retrain
    makes version 1)" beside nine versions: a missing store read as a loop that never ran. ``tuneline history`` names
    the missing store; so does every ``data`` command now, and none creates a file there."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("TUNELINE_LEDGER_URL", raising=False)
    loop = tmp_path / "ner"
    loop.mkdir()
    (loop / "ner.yaml").write_text(yaml.safe_dump({"data": {"path": "base.csv"}, "work_dir": str(loop / "out"),
                                                   "tracking": {"registered_model": "qa-loop-ner"}}))
    monkeypatch.chdir(loop)  # the loop ran here: its ledger, versions and store are beside the config
    config = load_config(loop / "ner.yaml")
    url = f"sqlite:///{loop / 'tuneline-ledger.db'}"
    with DatasetStore(url, "qa-loop-ner", dataset_folder(config)) as store:
        store.commit(None, [store.write_part(rows("base", 10))], ["a", "b"], "run-1", "base data")
    (loop / "mlflow.db").touch()
    fixes = land_rows(loop, "fixes.csv", [("base 1", "b")])
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())

    config_arg = ["-c", "ner/ner.yaml"]
    for command in (["log"], ["batches"], ["relabel", str(fixes), "--reason", "x"], ["drop", "b1.txt", "--reason", "x"],
                    ["requeue", "b1.txt", "--reason", "x"]):
        assert main(["data", *command, *config_arg]) == 1, command
        out, err = capsys.readouterr()
        assert "no data version yet" not in out + err and "no batch ledger" not in out + err, command
        assert err == (f"tuneline: no MLflow store at {tmp_path / 'mlflow.db'}: run this in the folder where you "
                       "trained (the one holding mlflow.db), or pass --set "
                       "tracking.tracking_uri=sqlite:////path/to/mlflow.db\n"), command
    assert sorted(p.name for p in tmp_path.iterdir()) == before

    monkeypatch.chdir(loop)  # where the loop ran, the same command lists its version
    assert main(["data", "log", "-c", "ner.yaml"]) == 0
    assert "data versions of qa-loop-ner" in capsys.readouterr().out


def test_a_multilabel_batch_in_another_layout_is_said_so_not_listed_as_unseen_labels(tmp_path):
    """Config ``header: false`` with label ids; the batch a one-hot CSV with a header ``text,id,admiration,...``: it
    was refused in a 1,166-character line listing every comment id as an unseen label and advising label growth."""
    from tuneline.tasks.intake import UnreadableBatch, batch_labels

    labels = ["admiration", "amusement", "anger"]
    landing = tmp_path / "landing"
    landing.mkdir()
    onehot = ["text,id," + ",".join(labels)] + [f"comment number {i},ed{i:05d}x,1,0,0" for i in range(40)]
    (landing / "b6_onehot.csv").write_text("\n".join(onehot) + "\n")
    (landing / "b6_onehot.csv.done").touch()
    grown = [f"thanks a lot {i},gratitude" for i in range(6)] + [f"nice one {i},admiration" for i in range(6)]
    (landing / "b5_newlabel.csv").write_text("\n".join(grown) + "\n")
    (landing / "b5_newlabel.csv.done").touch()
    config_path = tmp_path / "ml.yaml"
    config_path.write_text(yaml.safe_dump({
        "task": "multilabel_classification", "work_dir": str(tmp_path / "out"),
        "data": {"path": "base.csv", "header": False, "text_column": "0", "label_column": "1",
                 "label_separator": ";", "labels": labels},
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}, "retrain": {"landing": str(landing)}}))
    config = load_config(config_path)
    with Ledger(f"sqlite:///{tmp_path / 'tuneline-ledger.db'}", config.registered_model_name) as ledger:
        batches = {b.name: b for b in ledger.scan(landing)}

    try:
        batch_labels(batches["b6_onehot.csv"], config)
    except UnreadableBatch as error:
        said = str(error)
    else:
        raise AssertionError("a one-hot batch read as 41 unseen labels was not refused for its layout")
    assert said.startswith("batch b6_onehot.csv cannot be read: its layout does not match the config's data.* "
                           "settings (header row, text and label columns): its first line names known labels as "
                           "columns (admiration, amusement, anger), a header; 41 of its label values are unseen and "
                           "nearly all distinct ('ed00000x', 'ed00001x', 'ed00002x' and 38 more), as ids are"), said
    assert "allow_label_growth" not in said and len(said) < 600, said
    # a batch with one new label is no layout problem: its labels go on to the unseen-label check (label growth)
    assert batch_labels(batches["b5_newlabel.csv"], config) == {"admiration": 6, "gratitude": 6}


def _ner_loop(tmp_path, landing, **data):
    config_path = tmp_path / "ner.yaml"
    config_path.write_text(yaml.safe_dump({
        "task": "token_classification", "work_dir": str(tmp_path / "out"),
        "data": {"path": "base.conll", "labels": ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"], **data},
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}, "retrain": {"landing": str(landing)}}))
    return load_config(config_path)


def _refusal(batch, config) -> str:
    from tuneline.tasks.intake import UnreadableBatch, batch_labels

    try:
        batch_labels(batch, config)
    except UnreadableBatch as error:
        return str(error)
    raise AssertionError(f"{batch.name} was not refused for its layout")


def test_ner_batches_in_another_tag_scheme_or_column_are_refused_for_their_layout_not_grown(tmp_path):
    """An IOBES batch offered S-LOC, E-PER ... as unseen labels, "did you mean 'I-LOC' for 'S-LOC'" and label
    growth; grown, the head held 17 labels that seqeval refused at every later evaluation, even after a drop (loop
    QA). A tag-first CoNLL batch offered its 400 words as labels. Both are the batch's layout; a new entity type
    (B-PROD) is still a label to grow."""
    landing = tmp_path / "landing"
    landing.mkdir()
    sentences = {
        "iobes.conll": [[("Anna", "S-PER"), ("visits", "O"), ("New", "B-LOC"), ("York", "E-LOC")]] * 6,
        "tagfirst.conll": [[("B-PER", "Anna"), ("O", "visits"), ("B-LOC", "Rome"), ("O", "today")],
                           [("B-LOC", "Paris"), ("O", "is"), ("O", "big")]] * 3,
        "product.conll": [[("Anna", "B-PER"), ("buys", "O"), ("an", "O"), ("iPhone", "B-PROD")]] * 6}
    for name, sents in sentences.items():
        (landing / name).write_text("\n\n".join("\n".join(f"{a} {b}" for a, b in s) for s in sents) + "\n")
        (landing / f"{name}.done").touch()
    config = _ner_loop(tmp_path, landing)
    with Ledger(f"sqlite:///{tmp_path / 'tuneline-ledger.db'}", config.registered_model_name) as ledger:
        batches = {b.name: b for b in ledger.scan(landing)}

    said = _refusal(batches["iobes.conll"], config)
    assert said.startswith("batch iobes.conll cannot be read: its layout does not match the config's data.* "
                           "settings: its tags 'E-LOC', 'S-PER' are IOBES/BILOU tags (S-, E-, U-, L-), and the model's "
                           "are IOB2 (B-, I-, O); only this batch is rejected"), said
    assert said.endswith("(or, if every batch will look like this one from now on: set data.bioes_to_iob2: true to "
                         "read them as IOB2)"), said
    assert "allow_label_growth" not in said and "did you mean" not in said
    said = _refusal(batches["tagfirst.conll"], config)
    assert ("its layout does not match the config's data.* settings: 7 of its tags are no IOB2 tags ('Anna', 'Paris', "
            "'Rome', 'big', 'is' and 2 more; a tag is O, B-TYPE or I-TYPE): if these are words, the tags are in "
            "another column than the one read; only this batch is rejected") in said, said
    assert said.endswith("set data.conll_tag_column to the tags' column (it is -1; a tag-first CoNLL file has them in "
                         "column 0), or data.tags_column for a table)"), said
    assert batch_labels_of(batches["product.conll"], config) == {"B-PER": 6, "B-PROD": 6, "O": 12}
    # read as IOB2, the IOBES batch is labels the model knows
    converted = _ner_loop(tmp_path, landing, bioes_to_iob2=True)
    assert batch_labels_of(batches["iobes.conll"], converted) == {"B-LOC": 6, "B-PER": 6, "I-LOC": 6, "O": 6}


def batch_labels_of(batch, config) -> dict[str, int]:
    from tuneline.tasks.intake import batch_labels

    return batch_labels(batch, config)


def test_a_header_row_above_a_headerless_batch_is_named_not_grown(tmp_path):
    """``data.header: false`` (GoEmotions' layout) and a batch whose producer wrote ``text<TAB>labels<TAB>id`` above
    its rows: refused for the unseen label 'labels' with the advice to grow the head by it (loop QA)."""
    labels = ["admiration", "amusement", "anger"]
    landing = tmp_path / "landing"
    landing.mkdir()
    body = "".join(f"comment number {i}\t{i % 3}\tid{i}\n" for i in range(30))
    (landing / "with_header.tsv").write_text("text\tlabels\tid\n" + body)
    (landing / "with_header.tsv.done").touch()
    names = tmp_path / "labels.txt"
    names.write_text("\n".join(labels) + "\n")
    config_path = tmp_path / "ml.yaml"
    config_path.write_text(yaml.safe_dump({
        "task": "multilabel_classification", "work_dir": str(tmp_path / "out"),
        "data": {"path": "base.tsv", "header": False, "text_column": "0", "label_column": "1",
                 "label_separator": ",", "label_names": str(names), "labels": labels},
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}, "retrain": {"landing": str(landing)}}))
    config = load_config(config_path)
    with Ledger(f"sqlite:///{tmp_path / 'tuneline-ledger.db'}", config.registered_model_name) as ledger:
        [batch] = ledger.scan(landing)
    said = _refusal(batch, config)
    assert said.startswith("batch with_header.tsv cannot be read: its layout does not match the config's data.* "
                           "settings: its first line looks like a header row ('text' / 'labels'), the only row with an "
                           "unseen label, and data.header is false (the files have no header): remove that line from "
                           "the batch"), said


def test_dropping_an_ner_batch_takes_out_the_tags_no_remaining_type_needs(tmp_path):
    """A drop kept every grown tag whose entity type other rows still carry: S-LOC stayed beside B-LOC (loop QA),
    so the next model learned a head for tags without rows. A type's own B-/I- tags stay while its rows remain."""
    import pandas as pd

    from tuneline.cli_loop import _labels_still_carried
    from tuneline.tasks.intake import dataset_folder

    landing = tmp_path / "landing"
    landing.mkdir()
    config = _ner_loop(tmp_path, landing)
    base = pd.DataFrame({"tokens": [["Anna", "in", "Rome"]] * 4, "tags": [["B-PER", "O", "B-LOC"]] * 4,
                         "split": ["train"] * 4})
    grown = pd.DataFrame({"tokens": [["New", "York", "Anna", "iPhone"]] * 4,
                          "tags": [["B-LOC", "E-LOC", "S-PER", "B-PROD"]] * 4, "split": ["train"] * 4})
    url = f"sqlite:///{tmp_path / 'tuneline-ledger.db'}"
    with DatasetStore(url, config.registered_model_name, dataset_folder(config)) as store:
        first = store.write_part(base)
        v1 = store.commit(None, [first], ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"], "run-1", "base")
        part = store.write_part(grown)
        v2 = store.commit(v1, [first, part], [*v1.labels, "E-LOC", "S-PER", "B-PROD", "I-PROD"], "run-2", "grown")
        assert _labels_still_carried(config, store, v2, part) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
        kept = store.write_part(grown.assign(tags=[["O", "O", "O", "B-PROD"]] * 4))  # data drop --keep-copies
        assert _labels_still_carried(config, store, v2, part, kept) == [
            "O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-PROD", "I-PROD"]
