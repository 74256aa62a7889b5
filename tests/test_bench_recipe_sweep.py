"""benchmarks/recipe_sweep.py in smoke mode (MiniLM's bf16 copy, 32 rows of the real files): the sweep that chose
issue 13's recipes on a GPU cannot rot, and its entity F1 is conlleval's (checked against seqeval)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from conftest import shared_data
from recipe_sweep import entity_f1  # benchmarks/ is on the path (pyproject: pythonpath)

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "recipe_sweep.py"


def test_entity_f1_counts_chunks_as_conlleval_does():
    from seqeval.metrics import f1_score

    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    rng = random.Random(0)
    for _ in range(100):
        gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(10)]
        predicted = [[rng.choice(tags) for _ in sentence] for sentence in gold]
        assert abs(entity_f1(gold, predicted) - f1_score(gold, predicted)) < 1e-9
    # an I- tag after O starts a chunk, as in conlleval
    assert entity_f1([["O", "I-PER", "I-PER"]], [["O", "B-PER", "I-PER"]]) == 1.0


def test_smoke_sweep_trains_each_recipe_and_reseeds_the_best(tmp_path):
    sst2, conll = shared_data("sst2"), shared_data("conll2003")
    mini = tmp_path / "data"
    for folder, names in ((sst2, ("train.tsv", "dev.tsv")), (conll, ("train.txt", "valid.txt", "test.txt"))):
        (mini / folder.name).mkdir(parents=True)
        for name in names:
            lines = (folder / name).read_text(encoding="utf-8").splitlines(True)[:400]
            (mini / folder.name / name).write_text("".join(lines), encoding="utf-8")
    assets, out = tmp_path / "assets", tmp_path / "out"
    prepared = subprocess.run([sys.executable, str(SCRIPT), "--prepare", str(assets), "--data", str(mini)],
                              capture_output=True, text=True, timeout=300)
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    from safetensors import safe_open

    with safe_open(str(assets / "model" / "model.safetensors"), "pt") as weights:
        assert str(weights.get_tensor("embeddings.word_embeddings.weight").dtype) == "torch.bfloat16"

    done = subprocess.run([sys.executable, str(SCRIPT), "--assets", str(assets), "--out", str(out), "--smoke"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert not (out / "failures.log").exists(), (out / "failures.log").read_text()
    records = [json.loads(line) for line in (out / "sweep.jsonl").read_text().splitlines()]
    epochs = {(r["recipe"], r["seed"]) for r in records if "select" in r}
    # both recipes' first seed, then the SST-2 recipe (the only one, so the best) with seeds 43 and 44
    assert epochs == {("sst2_smoke_mean", 42), ("conll_smoke", 42), ("sst2_smoke_mean", 43), ("sst2_smoke_mean", 44)}
    for record in (r for r in records if "select" in r):
        assert 0 <= record["select"] <= 1 and 0 <= record["report"] <= 1 and record["epoch"] == 1.0
    summary = json.loads((out / "summary.json").read_text())
    ranked = {row["recipe"]: row for row in summary["recipes"]}
    assert ranked["sst2_smoke_mean"]["seeds"] == [42, 43, 44] and ranked["conll_smoke"]["seeds"] == [42]
