"""Every entry of KINDS, end to end, through the one flow on the tiny random BERT.

For each kind: a first run registers a version that becomes champion (metrics, baselines, artifacts, quarantine,
lineage), the registered model reloads through ``models:/`` with schema enforcement on and predicts from every
documented input form (longer and shorter than the input example), and a second run re-scores the champion on its
own test rows through the same metric code. A kind added to KINDS without an entry in ``kind_examples.EXAMPLES``
fails ``test_every_kind_has_an_end_to_end_example``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import working_in
from kind_examples import EXAMPLES
from tuneline.config import build_config
from tuneline.flows.train import train_flow
from tuneline.kinds import KINDS


def test_every_kind_has_an_end_to_end_example():
    assert sorted(EXAMPLES) == sorted(KINDS), "add an example for each new kind to tests/kind_examples.py"


@pytest.fixture(scope="module", params=sorted(KINDS))
def two_runs(request, tmp_path_factory, tiny_bert):
    """Two runs of one kind in their own store: the first becomes champion, the second is gated against it."""
    task = request.param
    example = EXAMPLES[task]
    folder = tmp_path_factory.mktemp(f"e2e-{task}")
    with working_in(folder):
        data = example.write(folder / "data")
        raw = {"task": task, "data": data}
        base = [f"model.base={tiny_bert}", f"tracking.registered_model=e2e-{task}", "tracking.experiment=e2e",
                "train.precision=fp32", "gate.min_metric=0.3", *example.overrides]
        first = train_flow(build_config(raw, base))
        second = train_flow(build_config(raw, [*base, "train.max_steps=2", "train.eval_steps=1"]))
    return task, folder, first, second


def test_first_run_registers_a_champion_with_metrics_artifacts_and_quarantine(two_runs):
    task, folder, first, _ = two_runs
    kind = KINDS[task]
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", registry_uri=f"sqlite:///{folder / 'mlflow.db'}")
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert {f"test.{m}" for m in kind.metrics} <= set(metrics)  # the kind's one metric function, all of it
    baselines = {key.split(".")[1] for key in metrics if key.startswith("baseline.")}
    assert baselines and all(f"baseline.{b}.{first.primary_metric}" in metrics for b in baselines)
    best_baseline = max(metrics[f"baseline.{b}.{first.primary_metric}"] for b in baselines)
    assert metrics[f"test.{first.primary_metric}"] > best_baseline  # it learned: "after" beats every "before"
    assert first.promoted and sorted(first.aliases) == ["challenger", "champion"]
    version = client.get_model_version(f"e2e-{task}", first.version)
    assert version.tags["task"] == task and version.tags["tuneline.status"] == "gated"
    assert float(version.tags[f"metric.test.{first.primary_metric}"]) == pytest.approx(
        metrics[f"test.{first.primary_metric}"], abs=1e-6)
    artifacts = {a.path for a in client.list_artifacts(first.run_id, "evaluation")}
    assert {"evaluation/before_vs_after.json", "evaluation/before_vs_after.md"} <= artifacts
    assert len(artifacts) >= 4  # plus the kind's own report files
    assert {inp.tags[0].value for inp in run.inputs.dataset_inputs} == {"train", "validation", "test"}
    quarantine = pd.read_csv(first.quarantine_file)
    assert first.rejected_records >= 1 and set(quarantine["rule"]) >= set(EXAMPLES[task].planted_rules)
    # the registered artifact holds weights as safetensors only: nothing that unpickles on load
    files = list(Path(mlflow.artifacts.download_artifacts(f"models:/e2e-{task}/{first.version}",
                                                          tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")).rglob("*"))
    assert any(f.suffix == ".safetensors" for f in files)
    assert not [f for f in files if f.suffix in (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")]
    # registered, so the checkpoints kept for a resume are gone
    assert not [p for p in (folder / "tuneline-output" / "checkpoints").glob("*") if any(p.iterdir())]


def test_registered_model_predicts_every_documented_input_form(two_runs):
    task, folder, first, _ = two_runs
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"models:/e2e-{task}/{first.version}")
    outputs = []
    for given, rows in EXAMPLES[task].inputs:
        output = model.predict(given)
        assert len(output) == rows, (given, output)
        predicted, _ = KINDS[task].predictions_from_output(output)
        outputs.append(predicted)
        EXAMPLES[task].check_output(given, output)
    # the same rows in different forms get the same predictions
    for same in EXAMPLES[task].equivalent:
        assert all(outputs[i] == outputs[same[0]] for i in same)


def test_second_run_rescored_the_champion_on_its_own_test_rows(two_runs):
    task, folder, first, second = two_runs
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", registry_uri=f"sqlite:///{folder / 'mlflow.db'}")
    tags = client.get_model_version(f"e2e-{task}", second.version).tags
    assert tags["gate.champion_version"] == first.version
    logged = client.get_run(first.run_id).data.metrics[f"test.{first.primary_metric}"]
    # same split salt and data: the champion's re-score through its registered pyfunc equals what its run logged
    assert float(tags["gate.champion_metric"]) == pytest.approx(logged, abs=1e-6)
    assert tags["gate.test"] in ("mcnemar", "paired_bootstrap") and re.search(r"p[=<]0", tags["gate.reasons"])
    champion = str(client.get_registered_model(f"e2e-{task}").aliases["champion"])
    assert champion == (second.version if second.promoted else first.version)
    assert Path(second.quarantine_file).is_file()


def test_predict_command_reads_the_kinds_columns_from_a_file(two_runs, capsys):
    task, folder, first, _ = two_runs
    from tuneline.cli import main

    rows = EXAMPLES[task].cli_rows
    path = folder / "inputs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["predict", "-m", f"models:/e2e-{task}/{first.version}", "--tracking-uri",
                 f"sqlite:///{folder / 'mlflow.db'}", "--input", str(path)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(printed) == len(rows)
    assert all(set(row) <= set(out) for row, out in zip(rows, printed))  # each output row echoes its input
    # an id column first changes nothing: the model's signature is unnamed, and MLflow cuts a frame to its first
    # columns by position, so the file's columns must be picked by name before (it predicted on the ids)
    with_ids = folder / "inputs-with-ids.jsonl"
    with_ids.write_text("".join(json.dumps({"id": f"row-{i}", **row}) + "\n" for i, row in enumerate(rows)))
    assert main(["predict", "-m", f"models:/e2e-{task}/{first.version}", "--tracking-uri",
                 f"sqlite:///{folder / 'mlflow.db'}", "--input", str(with_ids)]) == 0
    again = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [{k: v for k, v in out.items() if k != "id"} for out in again] == printed
    assert [out["id"] for out in again] == [f"row-{i}" for i in range(len(rows))]


def test_predict_command_tells_what_a_pair_model_needs(two_runs, capsys, monkeypatch):
    import io

    task, folder, first, _ = two_runs
    from tuneline.cli import main

    model, uri = f"models:/e2e-{task}/{first.version}", f"sqlite:///{folder / 'mlflow.db'}"
    text, pair = EXAMPLES["pair_classification"].cli_rows[0].values()
    if task != "pair_classification":
        assert main(["predict", "-m", model, "--tracking-uri", uri, "some text", "--pair", "ignored"]) == 1
        assert "--pair is for sentence-pair models" in capsys.readouterr().err
        return
    assert main(["predict", "-m", model, "--tracking-uri", uri, text]) == 1  # was MLflow's schema error
    err = capsys.readouterr().err
    assert "is a sentence-pair model: give the second text" in err and "Traceback" not in err
    assert main(["predict", "-m", model, "--tracking-uri", uri, text, "--pair", pair]) == 0
    by_flag = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{text}\t{pair}\n"))
    assert main(["predict", "-m", model, "--tracking-uri", uri]) == 0
    by_stdin = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert by_stdin == by_flag and by_flag[0]["text_pair"] == pair
    # a TSV row with more fields (GLUE's Quality, ids, strings) was predicted on its first field and the rest
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{text}\t{pair}\n1\t{text}\t{pair}\n"))
    assert main(["predict", "-m", model, "--tracking-uri", uri]) == 1
    err = capsys.readouterr().err
    assert "stdin line 2 has 3 tab-separated fields" in err and "Traceback" not in err
    # each text followed by its --pair (argparse left the second text over: "unrecognized arguments")
    other_text, other_pair = EXAMPLES["pair_classification"].cli_rows[1].values()
    assert main(["predict", "-m", model, "--tracking-uri", uri, text, "--pair", pair, other_text, "--pair",
                 other_pair]) == 0
    interleaved = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(r["text"], r["text_pair"]) for r in interleaved] == [(text, pair), (other_text, other_pair)]
    assert interleaved[0] == by_flag[0]
    assert main(["predict", "-m", model, "--tracking-uri", uri, text, "--pair", " "]) == 1
    assert "--pair text 1 of 1 on the command line is empty" in capsys.readouterr().err
    # a blank second text on stdin was the model's "row 1 of 'text_pair'", counted from 0
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{text}\t{pair}\n{other_text}\t \n"))
    assert main(["predict", "-m", model, "--tracking-uri", uri]) == 1
    assert "stdin line 2 has an empty second text" in capsys.readouterr().err
