"""The retraining loop with every task kind, not only text classification: one flow, one registry of kinds.

``test_retrain_loop.py`` walks the loop's whole scenario with text classification. Here each other kind takes the two
steps every loop starts with, on its own file format (CoNLL for NER, pair and multi-label tables): the base data
becomes data version 1 and the champion, then a batch lands and the next run validates it with the kind's contract,
appends its rows as data version 2 (NER and multi-label batches bring a new label: the label set and the model's head
grow, ``drift.allow_label_growth``), trains on from the champion (``retrain.strategy: continual``), measures what it
forgot on the earlier test rows, and registers a version tagged with the data version that predicts the kind's
documented input. Before this, no test ran a batch of these kinds through the loop.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import mlflow
import pytest
import yaml

from conftest import working_in
from kind_examples import EXAMPLES, _sentence
from tuneline.config import build_config
from tuneline.dataset_store import DatasetStore
from tuneline.ledger import Ledger, default_ledger_url
from tuneline.tasks.intake import dataset_folder
from tuneline.tasks.predict_batch import model_tags

pytestmark = pytest.mark.slow

#: the kind example's own settings make the tiny model learn (a champion to continue from); no zero-shot baseline
LOOP = ["evaluate.zero_shot_baseline=false", "drift.min_rows=20"]

#: batch rows (or sentences) moved from the end of the kind's example file into the landed batch
BATCH = 40


#: the labels a kind's batch brings (drift.allow_label_growth): the head grows while training on from the champion
GROWN = {"token_classification": ["B-MISC", "I-MISC"], "multilabel_classification": ["urgent"]}


def write_conll(path: Path, sentences: list[list[tuple[str, str]]]) -> None:
    """Sentences of (word, tag) as a CoNLL file: a word and its tag a line, a blank line between sentences."""
    path.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n", encoding="utf-8")


def split_off_batch(path: Path, batch: Path, task: str) -> None:
    """Write the batch in the base file's format: for a table, move :data:`BATCH` of its lines under the same
    header; for CoNLL, :data:`BATCH` new sentences (the example's sentences repeat a few templates, so a moved one
    would already be in the data, and the loop rightly takes no copy of a known example). Each row also carries the
    kind's :data:`GROWN` labels."""
    if path.suffix == ".conll":
        rng = random.Random(1)
        misc = [("Berlin", "B-MISC"), ("Google", "I-MISC")]  # words the tiny BERT knows, as a new entity type
        sentences = [_sentence(rng) + [("and", "O")] + misc + _sentence(rng) for _ in range(BATCH)]
        write_conll(batch, sentences)
        return
    header, *lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    middle = slice(len(lines) // 2, len(lines) // 2 + BATCH)  # the examples plant their broken rows at the end
    moved = [line.rstrip("\r\n") + "".join(f"|{label}" for label in GROWN.get(task, [])) + "\n"
             for line in lines[middle]]
    batch.write_text(header + "".join(moved), encoding="utf-8")
    del lines[middle]
    path.write_text(header + "".join(lines), encoding="utf-8")


@pytest.mark.parametrize("task", [k for k in EXAMPLES if k != "classification"])
def test_a_batch_of_every_kind_is_validated_versioned_and_trained_on(task, tmp_path, tiny_bert):
    from tuneline.flows.retrain import retrain_flow

    example = EXAMPLES[task]
    data = example.write(tmp_path / "data")
    base = Path(data["path"])
    landing = tmp_path / "landing"
    landing.mkdir()
    batch_file = landing / f"batch1{base.suffix}"
    split_off_batch(base, batch_file, task)
    config = build_config({"task": task, "data": data, "model": {"base": str(tiny_bert)},
                           "tracking": {"registered_model": f"loop-{task}"},
                           "retrain": {"landing": str(landing), "strategy": "continual"},
                           "drift": {"allow_label_growth": True}},
                          [*example.overrides, *LOOP])
    with working_in(tmp_path):
        first = retrain_flow(config, trigger="test")
        assert first.status == "retrained" and first.data_version == 1, first.message
        assert first.run.promoted, first.sentence  # the champion the next run continues from
        (landing / f"{batch_file.name}.done").touch()
        second = retrain_flow(config, trigger="test")
        assert second.status == "retrained" and second.batches_used == [batch_file.name], second.message
        assert second.data_version == 2 and not second.batches_rejected

        url = default_ledger_url(f"sqlite:///{tmp_path / 'mlflow.db'}")
        with DatasetStore(url, config.registered_model_name, dataset_folder(config)) as store:
            v1, v2 = store.get(1), store.get(2)
            kept = int(second.batch_rows[batch_file.name].split()[0])  # "38 rows kept, 2 quarantined (...)"
            assert 0 < kept <= BATCH and v2.rows == v1.rows + kept and v2.parent == 1
            assert v2.labels[:len(v1.labels)] == v1.labels  # the label set (the model's class ids) kept its order
            assert list(v2.labels[len(v1.labels):]) == GROWN.get(task, [])  # grown by the batch's new labels
            frame = store.frame(v2)
        with Ledger(url, config.registered_model_name) as ledger:
            (landed,) = ledger.batches()
            assert landed.state == "used" and landed.used_by_run == second.run.run_id
        # the batch's rows are in the version under its hash, each with a split (the kind's split rules applied)
        rows_of_batch = frame[frame["batch"] == landed.content_hash]
        assert len(rows_of_batch) == kept and rows_of_batch["split"].isin(["train", "validation", "test"]).all()
        # the label-shift test against the reference's rows (v1 here): a multi-label row counted once per label
        # tested, a sentence once per entity type it holds (both said "rows" of label occurrences before; a
        # sentence's tags are no independent draws)
        report = json.loads((Path(second.run.run_dir) / "drift" / f"{landed.content_hash[:12]}.json").read_text())
        (shift,) = [check["sentence"] for check in report["checks"] if check["name"] == "label_shift"]
        per_row = task in ("multilabel_classification", "token_classification")
        assert f"new vs {v1.rows:,} reference rows{' (' if per_row else ''}" in shift, shift
        assert ("per label, rows with it vs without" in shift) == per_row, shift

        client = mlflow.MlflowClient()
        tags = client.get_model_version(config.registered_model_name, second.run.version).tags
        assert tags["data.version"] == "2" and tags["data.version_hash"] == v2.content_hash
        # continued from the champion, and promoted only if it has not forgotten the earlier test rows
        assert tags["retrain.strategy"] == "continual"
        forgetting = second.forgetting
        assert forgetting is not None and forgetting["champion_version"] == first.run.version
        assert abs(forgetting["drop"] - (forgetting["champion"] - forgetting["candidate"])) < 1e-9
        if forgetting["drop"] > config.retrain.max_forgetting:
            assert not second.run.promoted and "forgetting on" in second.sentence, second.sentence
        model = mlflow.pyfunc.load_model(f"models:/{config.registered_model_name}/{second.run.version}")
        given, rows = example.inputs[0]
        output = model.predict(given)
        assert len(output) == rows
        example.check_output(given, output)
        if task == "token_classification":  # the grown head: the tagger has the new tags
            assert set(GROWN[task]) <= set(model_tags(model))
        if task == "multilabel_classification":  # a score for every label, the grown one too
            scores = output["scores"][0]
            assert set(json.loads(scores) if isinstance(scores, str) else scores) == set(v2.labels)
        if task == "token_classification":
            continued_after_a_drop(config, tmp_path, landing, batch_file, second.run.version)


def continued_after_a_drop(config, root: Path, landing: Path, batch_file: Path, grown_version: str) -> None:
    """The champion's head has the grown labels; the batch that brought them is dropped, and another batch lands.
    Before, every later continual run stopped ("the champion's labels ... must come first"), an unattended loop
    stuck until someone changed the config; now that run trains from model.base and says why."""
    from tuneline.cli import main
    from tuneline.flows.retrain import retrain_flow

    config_path = root / "loop.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    assert main(["promote", config.registered_model_name, grown_version, "--reason", "its head has MISC"]) == 0
    assert main(["data", "drop", batch_file.name, "--reason", "MISC was a mistake", "-c", str(config_path)]) == 0
    rng = random.Random(2)
    sentences = [_sentence(rng) + [("and", "O")] + _sentence(rng) + [("and", "O")] + _sentence(rng)
                 for _ in range(BATCH)]
    later = landing / "batch2.conll"
    write_conll(later, sentences)
    (landing / "batch2.conll.done").touch()
    third = retrain_flow(config, trigger="test")
    assert third.status == "retrained" and third.batches_used == ["batch2.conll"], third.message
    assert third.data_version == 4 and "B-MISC" not in third.run.labels
    tags = mlflow.MlflowClient().get_model_version(config.registered_model_name, third.run.version).tags
    assert tags["retrain.strategy"] == "full"
    assert any(w.startswith(f"retrain.strategy continual: champion v{grown_version} was trained with label(s) "
                            "['B-MISC', 'I-MISC']") for w in third.warnings), third.warnings
