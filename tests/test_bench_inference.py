"""benchmarks/inference_speed.py in smoke mode: it runs, and its JSON reports every field with sane values.

Not a timed test: a smoke run on tiny random models says nothing about speed, only that the script works end to end
(both predictors, both pipelines, agreement, the table). Once on the shared data, once without it (generated texts).
Also the option behind the speed-up it measures: how every pyfunc file picks its inference precision.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "inference_speed.py"
VARIANTS = {"pyfunc", "pipeline"}


def run_smoke(tmp_path: Path, *extra: str) -> tuple[dict, str]:
    output = tmp_path / "inference_speed.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--output", str(output), *extra],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(output.read_text()), done.stdout


def check_result(result: dict, stdout: str) -> None:
    assert result["benchmark"] == "inference_speed" and result["mode"] == "smoke" and result["when"]
    host = result["machine"]
    assert host["cpu_count"] >= 1 and host["usable_cores"] >= 1 and host["torch_threads"] >= 1
    assert host["torch"] and host["transformers"] and isinstance(host["cpu_native_bf16"], bool)
    assert host["load_average_1m_before"] is None or host["load_average_1m_before"] >= 0
    assert set(result["tasks"]) == {"classification", "ner"}
    for task, r in result["tasks"].items():
        assert r["n_texts"] > 0 and r["batch_size"] == 8 and r["rounds"] == 3, task
        assert r["pyfunc_precision"] in ("fp32", "bf16") and r["data"] and r["model"]["source"]
        speeds = r["texts_per_s"]
        expected = VARIANTS | ({"pyfunc_fp32"} if r["pyfunc_precision"] != "fp32" else set())
        assert set(speeds) == expected == set(r["seconds_per_round"]), task
        for name, value in speeds.items():
            assert math.isfinite(value) and value > 0, (task, name)
            assert len(r["seconds_per_round"][name]) == 3 and all(s > 0 for s in r["seconds_per_round"][name])
        assert r["ratio"] == pytest.approx(speeds["pyfunc"] / speeds["pipeline"])
        assert set(r["texts_per_cpu_s"]) == expected == set(r["cpu_seconds_per_round"])
        assert all(v > 0 and math.isfinite(v) for v in r["texts_per_cpu_s"].values())
        assert r["ratio_cpu_time"] == pytest.approx(r["texts_per_cpu_s"]["pyfunc"] / r["texts_per_cpu_s"]["pipeline"])
        assert r["ratio_fp32"] == pytest.approx(speeds.get("pyfunc_fp32", speeds["pyfunc"]) / speeds["pipeline"])
        assert set(r["agreement_with_pipeline"]) == expected - {"pipeline"}
        assert r["agreement"] == r["agreement_with_pipeline"]["pyfunc"]
        assert all(0 <= v <= 1 for v in r["agreement_with_pipeline"].values()), task
        assert r["pipeline"]["task"] in ("text-classification", "token-classification")
        assert f"| {task} | {r['n_texts']} | 8 |" in stdout  # its row of the Markdown table
    cls, ner = result["tasks"]["classification"], result["tasks"]["ner"]
    assert 0 <= cls["pyfunc_accuracy_vs_gold"] <= 1 and 0 <= cls["pipeline_accuracy_vs_gold"] <= 1
    assert 0.5 <= cls["pyfunc_median_top_probability"] <= 1 and 0 <= cls["pyfunc_share_near_tie"] <= 1
    assert ner["pipeline"]["aggregation_strategy"] == "first" and ner["n_words"] > 0
    assert all(0 <= v <= 1 for v in ner["entity_agreement_with_pipeline"].values())
    gold = ner["pyfunc_word_type_accuracy_vs_gold"]
    assert gold is None or 0 <= gold <= 1


def test_smoke_run_reports_every_field(tmp_path):
    result, stdout = run_smoke(tmp_path)
    check_result(result, stdout)


def test_smoke_run_without_shared_data_uses_generated_texts_and_says_so(tmp_path):
    result, stdout = run_smoke(tmp_path, "--data-dir", str(tmp_path / "absent"))
    check_result(result, stdout)
    assert all("generated" in r["data"] for r in result["tasks"].values())
    assert "measured on generated sentences" in stdout


@pytest.mark.parametrize("module", ["text_classifier", "token_tagger", "pair_classifier", "multilabel_classifier"])
def test_every_pyfunc_resolves_its_inference_precision_alike(module, monkeypatch):
    """The speed lever the benchmark measures: bf16 autocast by default only on a CPU with native bf16; the
    constructor's choice wins over ``$TUNELINE_INFERENCE_PRECISION``, which wins over ``auto``."""
    import importlib

    pyfunc = importlib.import_module(f"tuneline.pyfunc.{module}")
    monkeypatch.delenv(pyfunc.PRECISION_ENV, raising=False)
    native = pyfunc.cpu_has_native_bf16()
    assert pyfunc.resolve_precision(None, "cpu") == ("bf16" if native else "fp32")
    assert pyfunc.resolve_precision("auto", "cuda") == pyfunc.resolve_precision(None, "cuda:0") == "fp32"
    monkeypatch.setenv(pyfunc.PRECISION_ENV, "FP32")
    assert pyfunc.resolve_precision(None, "cpu") == "fp32" and pyfunc.resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="precision"):
        pyfunc.resolve_precision("fp16", "cpu")
