"""benchmarks/step_profile.py in smoke mode (tiny random BERT, generated data): the profile code cannot rot.

What a step's time is spent on is read from the committed MiniLM results (benchmarks/BENCHMARKS.md), not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_smoke_profile_splits_each_variants_step_into_jobs(tmp_path):
    output = tmp_path / "step_profile.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "step_profile.py"), "--smoke",
                           "--variants", "full,frozen_embeddings,lora", "--output", str(output)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(output.read_text())
    variants = {row["variant"]: row for row in result["variants"]}
    assert set(variants) == {"full", "frozen_embeddings", "lora"}
    for row in variants.values():
        assert row["steps"] == 3 and row["steps_per_s"] > 0
        assert abs(sum(row["share_of_step"].values()) - 1) < 0.01
        assert row["share_of_step"]["matmul"] > 0 and row["share_of_step"]["optimizer"] > 0
    # frozen embeddings and LoRA train fewer weights than full fine-tuning; LoRA's adapters draw dropout masks
    assert (variants["lora"]["trainable_parameters"] < variants["frozen_embeddings"]["trainable_parameters"]
            < variants["full"]["trainable_parameters"])
    assert "dropout draws" in variants["lora"]["share_of_step"]
    assert result["peak"]["bf16_flops_per_s"] > 0
