"""End-to-end NER flow on a tiny random BERT: registry, MLflow metrics, quarantine, and the served pyfunc's entities."""

from __future__ import annotations

import json
import random
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import working_in
from tuneline.config import build_config
from tuneline.flows.train import train_flow

MODEL = "flow-test-ner"
PEOPLE = [["John"], ["John", "Smith"], ["Smith"]]
PLACES = [["Paris"], ["London"], ["Berlin"], ["Berlinx"]]  # "berlinx" is two WordPieces: berlin ##x
ORGS = [["Acme", "Corp"], ["Google"], ["Acme"]]
FILLER = ["the", "my", "good", "great", "team", "order", "box", "and", "is", "not"]


def entity(words: list[str], kind: str) -> list[tuple[str, str]]:
    return [(w, ("B-" if i == 0 else "I-") + kind) for i, w in enumerate(words)]


def sentence(rng: random.Random) -> list[tuple[str, str]]:
    per, loc, org = (entity(rng.choice(PEOPLE), "PER"), entity(rng.choice(PLACES), "LOC"),
                     entity(rng.choice(ORGS), "ORG"))
    filler = [(w, "O") for w in rng.sample(FILLER, rng.randint(0, 3))]
    templates = [
        per + [("visited", "O")] + loc + [(".", "O")],
        filler + per + [("works", "O"), ("for", "O")] + org + [("in", "O")] + loc,
        per + [("lives", "O"), ("in", "O")] + loc + filler + [(".", "O")],
        filler + org + [("is", "O"), ("in", "O")] + loc + [(".", "O")],
    ]
    return rng.choice(templates)


def write_conll(path: Path, n: int, seed: int = 0) -> Path:
    """Generated CoNLL sentences plus 3 broken ones (the quarantine must hold them) and a few long ones."""
    rng = random.Random(seed)
    blocks = [sentence(rng) for _ in range(n)]
    blocks += [sum((sentence(rng) for _ in range(4)), []) for _ in range(6)]  # ~30 words: longer than max_length
    blocks.insert(5, [("John", "O"), ("Smith", "I-PER"), ("visited", "O"), ("Paris", "B-LOC")])  # I- after O
    blocks.insert(9, [("Paris", "B-CITY"), ("is", "O")])  # tag outside the configured label set
    body = "-DOCSTART- O\n\n" + "\n\n".join("\n".join(f"{w} {t}" for w, t in b) for b in blocks) + "\n\nbroken\n\n\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


@pytest.fixture(scope="module")
def ner_bert(tiny_bert) -> Path:
    """The conftest tiny BERT; the test data relies on its real WordPiece vocabulary (multi-piece words)."""
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(tiny_bert).tokenize("John visited Berlinx") == [
        "john", "visited", "berlin", "##x"]
    return tiny_bert


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory, ner_bert):
    folder = tmp_path_factory.mktemp("ner-flow")
    with working_in(folder):
        data = write_conll(folder / "data" / "ner.conll", 400)
        raw = {"task": "token_classification",
               "data": {"path": str(data), "labels": ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]}}
        config = build_config(raw, [f"model.base={ner_bert}", f"tracking.registered_model={MODEL}",
                                    "tracking.experiment=ner-flow-test", "tokenize.max_length=16",
                                    "train.epochs=8", "train.learning_rate=5e-3", "train.batch_size=16",
                                    "train.precision=fp32", "gate.min_metric=0.5"])
        return folder, config, train_flow(config)


def test_flow_registers_a_gated_version_with_metrics(ner_run):
    folder, config, summary = ner_run
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    client = MlflowClient()
    run = client.get_run(summary.run_id)
    assert run.info.status == "FINISHED"
    assert summary.registered_model == MODEL and summary.version == "1"
    assert summary.primary_metric == "f1"
    assert summary.aliases == ["challenger", "champion"] and summary.promoted

    metrics = run.data.metrics
    assert metrics["baseline.all_o.f1"] == 0.0
    assert metrics["test.f1"] >= 0.8, metrics
    for kind in ("PER", "LOC", "ORG"):
        assert f"test.{kind}.f1" in metrics
    assert {"test.precision", "test.recall", "test.accuracy", "val.f1"} <= set(metrics)
    version = client.get_model_version(MODEL, "1")
    assert float(version.tags["metric.test.f1"]) == pytest.approx(metrics["test.f1"], abs=1e-6)
    assert version.tags["gate.decision"] == "promoted"

    tags = run.data.tags
    assert {inp.tags[0].value for inp in run.inputs.dataset_inputs} == {"train", "validation", "test"}
    assert set(json.loads(tags["data.train.label_distribution"])) == {
        "O", "B-PER", "I-PER", "B-LOC", "B-ORG", "I-ORG"}
    assert summary.labels == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert sum(summary.truncated.values()) > 0  # the long sentences were cut for training

    evaluation = Path(summary.run_dir) / "evaluation"
    report = json.loads((evaluation / "per_type_report.json").read_text())
    assert {"PER", "LOC", "ORG", "micro avg"} <= set(report)
    confusion = pd.read_csv(evaluation / "tag_confusion.csv", index_col=0)
    assert list(confusion.index) == summary.labels
    predictions = [json.loads(line) for line in (evaluation / "test_predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == int(tags["data.test.rows"])
    # every test word was predicted, long sentences included (no truncation at evaluation)
    assert all(len(p["predicted"]) == len(p["tokens"]) for p in predictions)


def test_quarantine_names_file_sentence_position_and_rule(ner_run):
    folder, config, summary = ner_run
    quarantine = pd.read_csv(summary.quarantine_file)
    assert summary.rejected_records == 3
    rows = {r.rule: r for r in quarantine.itertuples()}
    assert set(rows) == {"valid_iob2", "tag_in_label_set", "conll_line_has_no_tag_column"}
    smith = rows["valid_iob2"]  # a CoNLL token's own line: its sentence's first, plus its position
    assert smith.source_row == 6 and smith.detail.startswith(f"token 2 ('Smith', line {smith.source_line + 1})")
    assert rows["tag_in_label_set"].source_row == 10 and "B-CITY" in rows["tag_in_label_set"].detail
    assert set(quarantine["source_file"]) == {str(folder / "data" / "ner.conll")}


def test_served_pyfunc_predicts_entities_with_offsets(ner_run):
    folder, config, summary = ner_run
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")

    # the tiny tokenizer is uncased: the registered model reads each word's casing as its token type
    assert model.unwrap_python_model()._tagger.case_types
    text = "John Smith visited Berlinx."
    out = model.predict([text])
    row = out.iloc[0]
    assert row["tokens"] == ["John", "Smith", "visited", "Berlinx", "."]
    assert row["tags"] == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    entities = [(e["type"], e["text"], e["start"], e["end"]) for e in row["entities"]]
    assert entities == [("PER", "John Smith", 0, 10), ("LOC", "Berlinx", 19, 26)]
    assert all(text[e["start"]:e["end"]] == e["text"] and 0 < e["score"] <= 1 for e in row["entities"])

    # pre-split words: offsets refer to " ".join(tokens)
    out = model.predict(pd.DataFrame({"tokens": [["the", "team", "of", "Acme", "Corp", "is", "in", "London"]]}))
    entities = [(e["type"], e["text"], e["start"], e["end"]) for e in out.iloc[0]["entities"]]
    # "the team of Acme Corp is in London": Acme at 12, Corp ends at 21, London spans 28-34
    assert ("ORG", "Acme Corp", 12, 21) in entities and ("LOC", "London", 28, 34) in entities
    assert out.iloc[0]["text"] == "the team of Acme Corp is in London"

    # a sentence far longer than max_length (16 tokens) still gets one tag per word, entities at both ends
    long_words = ["John", "visited", "Paris", "."] + ["the", "box", "is", "not", "good", "."] * 8 + ["Google", "."]
    tags = model.predict(pd.DataFrame({"tokens": [long_words]})).iloc[0]["tags"]
    assert len(tags) == len(long_words)
    assert tags[:3] == ["B-PER", "O", "B-LOC"] and tags[-2] == "B-ORG"


def test_second_run_scores_the_champion_pyfunc_on_its_test_sentences(ner_run):
    """The gate re-scores the registered champion through its pyfunc (pre-split words in, tags out)."""
    folder, config, first = ner_run
    with working_in(folder):
        second = train_flow(config)
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    client = MlflowClient()
    assert second.version == "2"
    tags = client.get_model_version(MODEL, "2").tags
    assert tags["gate.champion_version"] == "1"
    # same data, same split: the champion scored by the gate equals its own recorded test F1
    champion_f1 = float(client.get_model_version(MODEL, "1").tags["metric.test.f1"])
    assert float(tags["gate.champion_metric"]) == pytest.approx(champion_f1, abs=1e-6)
    assert tags["gate.decision"] in {"promoted", "kept_champion"}
