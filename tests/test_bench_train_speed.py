"""benchmarks/train_speed.py in smoke mode (tiny random BERT, generated data): the benchmark code cannot rot.

The speed targets themselves are checked by the benchmark's committed results (benchmarks/BENCHMARKS.md), not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from train_speed import the_peer  # benchmarks/ is on the path (pyproject: pythonpath)

REPO = Path(__file__).resolve().parents[1]


def test_the_peer_is_the_script_a_user_would_tune_on_the_machine():
    # bf16 only where bf16 is the faster matmul: on a CPU that emulates it, the bf16 peer is 18x slower
    assert the_peer("auto", {"reference": "bf16"}) == "peer_bf16"
    assert the_peer("auto", {"reference": "fp32"}) == "peer_grouped"
    assert the_peer("peer_dynamic", {"reference": "bf16"}) == "peer_dynamic"


def test_a_peer_that_is_not_run_is_refused_before_any_training(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "train_speed.py"), "--smoke", "--variants",
                           "tuneline", "--peer", "peer_bf16", "--output", str(tmp_path / "out.json")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "--peer peer_bf16 is not among --variants" in done.stderr
    assert not (tmp_path / "out.json").exists()


def test_smoke_run_reports_every_variant_with_ratios_flops_and_overhead(tmp_path):
    # two variants (each one a process that imports transformers): the fp32 peer and tuneline; the peer is named, so
    # the run does not depend on which matmul this CPU does faster
    output = tmp_path / "train_speed.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "train_speed.py"), "--smoke", "--seeds", "1",
                           "--variants", "peer_grouped,tuneline", "--peer", "peer_grouped", "--output", str(output)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(output.read_text())
    table = result["table"]
    assert set(table) == {"peer_grouped", "tuneline"}
    peer = result["peer"]
    assert peer == "peer_grouped" and table[peer]["ratio_to_peer"] == 1.0
    for variant, row in table.items():
        assert row["train_samples_per_s_median"] > 0 and 0 <= row["dev_accuracy_mean"] <= 1
        # the ratio comes from the unrounded rates: recomputed from the rounded ones it may differ in the last digit
        assert row["ratio_to_peer"] == pytest.approx(row["train_samples_per_s_median"]
                                                     / table[peer]["train_samples_per_s_median"], abs=2e-3)
        assert 0 < row["fraction_of_peak"] < 1
    runs = {run["variant"]: run for run in result["runs"]}
    assert runs["peer_grouped"]["precision"] == "fp32"
    assert runs["peer_grouped"]["global_step"] == 3  # 96 rows, batch 32, one epoch
    timings = runs["tuneline"]["timings"]
    assert "train-model" in timings["stages"] and 0 < timings["outside_training_fraction"] < 1
    peak = result["peak"]
    assert peak["bf16_flops_per_s"] > 0 and result["flops"]["per_run"] > 0
    # the reference is the faster matmul: fp32 on a CPU that emulates bf16
    assert peak["reference_flops_per_s"] == max(peak["bf16_flops_per_s"], peak["fp32_flops_per_s"])
    assert output.with_suffix(".md").read_text().startswith("Training speed")
    assert f"| x {peer} |" in output.with_suffix(".md").read_text()
