"""Pair QA with users' own data: no f1_positive without a positive class; reversed pairs are warned about.

1. An NLI task (entailment/neutral/contradiction) gated on macro_f1 reported ``f1_positive`` everywhere (console,
   before_vs_after.md, MLflow ``test.``/``val.``/``baseline.*.f1_positive``, the version's ``metric.test.f1_positive``
   tag): the F1 of 'entailment', second by the alphabet, which the pair module promises never to guess.
2. With ``data.symmetric: false`` a QQP-style file of 300 pairs and 60 swapped copies was read as 360 examples, with
   copies in train and test, and nothing said ("read 360, kept 360, quarantined 0").
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import f1_score

import tests_support
from conftest import working_in
from test_kind_pair import FILLERS, TOPICS, UNRELATED, make_pairs, nli_frame, pair_config, pair_frame
from tuneline.config import build_config
from tuneline.kinds import KINDS
from tuneline.kinds.pair_classification import PairData
from tuneline.run_warnings import RUN_LOGGERS
from tuneline.tasks.load import load_data
from tuneline.tasks.split import DataSplits, split_data
from tuneline.tasks.validate import validate_data

KIND = KINDS["pair_classification"]
NLI = ["contradiction", "entailment", "neutral"]
NLI_MODEL = "qa-nli-pairs"


class Lines(logging.Handler):
    """Every message the run's loggers write (INFO too: the f1_positive note is information, not a warning)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def logged_lines(run):
    """``run()``'s result and the messages logged while it ran."""
    handler, loggers = Lines(), [logging.getLogger(name) for name in RUN_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        return run(), handler.messages
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)


def make_nli(n: int, seed: int) -> list[list[str]]:
    """Pairs a tiny BERT learns: entailment when both texts name one topic, neutral when they name two topics,
    contradiction when one names an unrelated word. Unique in either order."""
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < n:
        label = rng.choice(NLI)
        topic = rng.choice(TOPICS)
        other = {"entailment": topic, "neutral": rng.choice([t for t in TOPICS if t != topic]),
                 "contradiction": rng.choice(UNRELATED)}[label]
        text, pair = f"{rng.choice(FILLERS)} {topic}", f"{rng.choice(FILLERS)} {other}"
        if (text, pair) in seen or (pair, text) in seen:
            continue
        seen.add((text, pair))
        rows.append([text, pair, label])
    return rows


def write_rows(path: Path, rows: list[list[str]], header=("premise", "hypothesis", "relation")) -> Path:
    return tests_support.write_rows(path, rows, header)


# --- 1. f1_positive only where there is a positive class ------------------------------------------------------------


@pytest.fixture(scope="module")
def nli_runs(tmp_path_factory, tiny_bert):
    """Two NLI runs in one store gated on macro_f1: the first becomes champion, the second is gated against it. The
    file also holds 6 reversed copies (NLI is directional: kept, and warned about)."""
    folder = tmp_path_factory.mktemp("qa-nli")
    rows = make_nli(420, seed=5)
    reversed_copies = [[pair, text, label] for text, pair, label in rows[:6]]
    data = write_rows(folder / "data" / "nli.csv", rows + reversed_copies)
    raw = {"task": "pair_classification",
           "data": {"path": str(data), "text_column": "premise", "text_pair_column": "hypothesis",
                    "label_column": "relation"}}
    base = [f"model.base={tiny_bert}", "tokenize.max_length=32", "train.epochs=12", "train.learning_rate=2e-3",
            "train.batch_size=32", "train.early_stopping_patience=4", "train.precision=fp32",
            "gate.primary_metric=macro_f1", "gate.min_metric=0.3", f"tracking.registered_model={NLI_MODEL}",
            "tracking.experiment=qa-nli"]
    from tuneline.flows.train import train_flow

    with working_in(folder):
        first, first_lines = logged_lines(lambda: train_flow(build_config(raw, base)))
        second, second_lines = logged_lines(lambda: train_flow(build_config(
            raw, [*base, "train.max_steps=2", "train.eval_steps=1"])))
    return folder, (first, first_lines), (second, second_lines)


def test_nli_run_reports_no_f1_positive_anywhere_and_says_why_once(nli_runs):
    folder, *runs = nli_runs
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
                          registry_uri=f"sqlite:///{folder / 'mlflow.db'}")
    note = ("f1_positive not reported: the pair labels ['contradiction', 'entailment', 'neutral'] have no positive "
            "class (3 labels have no single positive class); set data.positive_label to one of them to report one")
    for summary, lines in runs:
        assert summary.labels == NLI and summary.primary_metric == "macro_f1"
        assert [line for line in lines if "f1_positive" in line] == [note]  # once a run, and nothing else about it
        run = client.get_run(summary.run_id)
        metrics = run.data.metrics
        assert {"test.accuracy", "test.macro_f1", "baseline.majority.macro_f1", "val.macro_f1"} <= set(metrics)
        assert not [key for key in metrics if "f1_positive" in key]
        version = client.get_model_version(NLI_MODEL, summary.version)
        assert "metric.test.macro_f1" in version.tags and version.tags["gate.metric"] == "macro_f1"
        assert not [key for key in version.tags if "f1_positive" in key]
        # the console's before/after table and the report files
        assert {name: sorted(values) for name, values in summary.comparison.items()} == {
            "fine_tuned": ["accuracy", "macro_f1"], "majority": ["accuracy", "macro_f1"],
            "chance": ["accuracy", "macro_f1"]}
        evaluation = Path(summary.run_dir) / "evaluation"
        table = (evaluation / "before_vs_after.md").read_text()
        assert table.splitlines()[0] == "| model | accuracy | macro_f1 |" and "f1_positive" not in table
        assert "f1_positive" not in (evaluation / "before_vs_after.json").read_text()
        json.loads((evaluation / "before_vs_after.json").read_text())


def test_nli_gate_and_champion_comparison_work_without_f1_positive(nli_runs):
    folder, (first, _), (second, _) = nli_runs
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
                          registry_uri=f"sqlite:///{folder / 'mlflow.db'}")
    assert first.promoted, client.get_model_version(NLI_MODEL, first.version).tags.get("gate.sentence")
    gated = client.get_model_version(NLI_MODEL, second.version).tags
    assert gated["gate.champion_version"] == str(first.version)
    champion = client.get_run(second.run_id).data.metrics["gate.champion.macro_f1"]
    assert float(gated["gate.champion_metric"]) == pytest.approx(champion, abs=1e-6)
    # two steps of training trail the champion on macro_f1: the champion stays, compared on the gate's metric
    assert gated["gate.decision"] == "kept_champion" and float(gated["gate.candidate"]) < champion
    assert "macro_f1" in gated["gate.sentence"] and "f1_positive" not in gated["gate.sentence"]


def test_nli_reversed_copies_are_kept_and_warned_about_in_the_summary(nli_runs):
    _folder, (first, _), _ = nli_runs
    assert first.rejected_records == 0  # directional pairs: each order is its own example
    notes = [w for w in first.warnings if "also occur reversed" in w]
    assert len(notes) == 1 and notes[0].startswith("6 pair(s) also occur reversed"), first.warnings


def test_positive_class_comes_from_the_run_not_from_the_alphabet():
    """The same label set scores f1_positive or not as the run's config says; 0/1 keeps today's number exactly."""
    gold = ["same", "same", "different", "different", "same", "different"]
    predicted = ["same", "different", "different", "same", "same", "same"]
    frames = {"train": pair_frame([(f"a{i}", f"b{i}", label) for i in range(6) for label in ("same", "different")],
                                  False)}
    labels = KIND.label_set(frames, PairData(path=Path("-")), primary_metric="macro_f1")
    assert labels == ["different", "same"]
    assert set(KIND.score(gold, predicted, labels)) == {"accuracy", "macro_f1"}
    with pytest.raises(ValueError, match=r"no f1_positive for the pair labels \['different', 'same'\]: they have no "
                                         r"positive class; set data.positive_label to one of them"):
        KIND.subset_score(gold, predicted, labels, "f1_positive")
    labels = KIND.label_set(frames, PairData(path=Path("-"), positive_label="same"))
    scored = KIND.score(gold, predicted, labels)
    assert scored["f1_positive"] == pytest.approx(f1_score(gold, predicted, pos_label="same"))
    assert KIND.subset_score(gold, predicted, labels, "f1_positive")(np.arange(6)) == pytest.approx(
        scored["f1_positive"])
    # a two-label set whose names say the positive class reports it as before
    binary = ["1" if g == "same" else "0" for g in gold], ["1" if p == "same" else "0" for p in predicted]
    assert KIND.score(*binary, ["0", "1"])["f1_positive"] == pytest.approx(f1_score(*binary, pos_label="1"))


def test_nli_baselines_report_no_f1_positive():
    frame = nli_frame()
    splits = DataSplits(train=frame, validation=frame, test=frame, labels=NLI)
    config = pair_config("gate.primary_metric=macro_f1", "evaluate.zero_shot_baseline=false")
    baselines = KIND.baselines(splits, config)
    assert [(b.name, sorted(b.metrics)) for b in baselines] == [("majority", ["accuracy", "macro_f1"])]


def test_the_tokenizer_says_once_why_f1_positive_is_not_reported(tiny_bert):
    from transformers import AutoTokenizer

    config = pair_config("gate.primary_metric=accuracy")
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    _, lines = logged_lines(lambda: KIND.encoder(tokenizer, 32, {"different": 0, "same": 1}, config, {}))
    assert lines == ["f1_positive not reported: the pair labels ['different', 'same'] have no positive class (the "
                     "names do not say which one is positive); set data.positive_label to one of them to report one"]
    _, lines = logged_lines(lambda: KIND.encoder(tokenizer, 32, {"0": 0, "1": 1}, config, {}))
    assert lines == []


# --- 2. reversed pairs when data.symmetric is false -----------------------------------------------------------------


def reversed_note(pairs: int, straddling: int) -> str:
    return (f"{pairs} pair(s) also occur reversed (text and text_pair swapped), {straddling} of them in train and in "
            "validation or test: data.symmetric is false, so each order is its own example; if the relation does not "
            "depend on order (paraphrase, duplicate questions), set data.symmetric: true to make them one pair (a "
            "reversed copy is then a duplicate, or leakage across splits)")


def qqp_config(data: dict, *overrides: str):
    return build_config({"task": "pair_classification",
                         "data": {"text_column": "question1", "text_pair_column": "question2",
                                  "label_column": "is_duplicate", **data}},
                        ["gate.primary_metric=macro_f1", *overrides])


def validated_with_warnings(config, folder: Path):
    loaded = load_data.fn(config)
    validated, lines = logged_lines(lambda: validate_data.fn(loaded, config, folder))
    return validated, [line for line in lines if "also occur reversed" in line]


def straddling_in_split(splits: DataSplits, copies: list[list[str]]) -> int:
    """How many of the swapped copies ended in another split than their original, by the real split."""
    where = {(t, p): name for name, frame in splits.items() for t, p in zip(frame["text"], frame["text_pair"])}
    return sum(1 for text, pair, _ in copies if "train" in {where[(text, pair)], where[(pair, text)]}
               and where[(text, pair)] != where[(pair, text)])


def test_swapped_copies_in_one_file_are_kept_and_counted_with_the_ones_across_splits(tmp_path):
    rows = make_pairs(300, seed=11)
    copies = [[pair, text, label] for text, pair, label in rows if text != pair][:60]
    path = write_rows(tmp_path / "qqp.csv", rows + copies, header=("question1", "question2", "is_duplicate"))
    config = qqp_config({"path": str(path)})
    validated, notes = validated_with_warnings(config, tmp_path / "run")
    assert len(validated.quarantine) == 0 and sum(len(f) for f in validated.frames.values()) == 360
    splits = split_data.fn(validated.frames, validated.labels, config.data.split, kind=config.task)
    straddling = straddling_in_split(splits, copies)
    assert 0 < straddling < 60
    assert notes == [reversed_note(60, straddling)]

    # symmetric: the copies are duplicates, quarantined, and there is nothing to warn about
    validated, notes = validated_with_warnings(qqp_config({"path": str(path), "symmetric": True}), tmp_path / "sym")
    assert notes == [] and set(validated.quarantine["rule"]) == {"no_exact_duplicates"}
    assert len(validated.quarantine) == 60


def test_swapped_copies_in_the_test_file_all_straddle_and_case_does_not_hide_them(tmp_path):
    rows = make_pairs(200, seed=12)
    test_rows = make_pairs(40, seed=13, avoid={(t, p) for t, p, _ in rows})
    # written in capitals, the copies are still the same pairs reversed
    copies = [[pair.upper(), text, label] for text, pair, label in rows if text != pair][:10]
    same_text = [["the invoice", "The  invoice", "1"]]  # a pair of one text is its own reverse: not counted
    config = qqp_config({
        "train": str(write_rows(tmp_path / "train.csv", rows + same_text, ("question1", "question2", "is_duplicate"))),
        "test": str(write_rows(tmp_path / "test.csv", test_rows + copies, ("question1", "question2", "is_duplicate")))})
    validated, notes = validated_with_warnings(config, tmp_path / "run")
    assert notes == [reversed_note(10, 10)]
    assert "test" in validated.frames and len(validated.frames["test"]) == 50


def test_a_trainer_built_in_a_fresh_process_scores_the_configured_positive_class(tiny_bert, tmp_path):
    """A DDP worker builds its Trainer from the spec's config without validating or tokenizing: the positive class
    must be settled there too, or ``same``/``different`` with data.positive_label=same and a gate on f1_positive had
    no eval_f1_positive for the best checkpoint. Run in a subprocess, where nothing was settled before."""
    import subprocess
    import sys

    script = f"""
import json, numpy as np
from transformers import AutoModelForSequenceClassification, AutoTokenizer, EvalPrediction
from test_kind_pair import pair_config
from tuneline.kinds.pair_classification import SETTLED_POSITIVES
from tuneline.tasks.train import build_trainer
assert not SETTLED_POSITIVES
config = pair_config("data.positive_label=same", "model.base={tiny_bert}")
model = AutoModelForSequenceClassification.from_pretrained({str(tiny_bert)!r}, num_labels=2)
trainer = build_trainer(model, AutoTokenizer.from_pretrained({str(tiny_bert)!r}), [0] * 4, [0] * 4,
                        ["different", "same"], config, __import__("pathlib").Path({str(tmp_path)!r}), "fp32")
logits = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
print(json.dumps(trainer.compute_metrics(EvalPrediction(predictions=logits, label_ids=np.array([1, 0, 0, 1])))))
"""
    tests = Path(__file__).parent
    done = subprocess.run([sys.executable, "-c", script], cwd=tests, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(tests)})
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(done.stdout.strip().splitlines()[-1])
    assert metrics["f1_positive"] == pytest.approx(0.8)  # 'same': 2 right of 3 predicted, 2 of 2 found
