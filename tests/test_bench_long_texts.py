"""The long-text tokenization benchmark's smoke mode runs (so the benchmark cannot rot) and checks its encodings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_long_texts_benchmark_smoke_run_writes_equal_encodings_and_ratios(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import long_texts
    finally:
        sys.path.pop(0)
    output = tmp_path / "long_texts.json"
    assert long_texts.main(["--smoke", "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert [row["characters"] for row in result["rows"]] == [200, 3000]
    assert all(row["encodings_equal"] and row["whole_s"] > 0 and row["cut_s"] > 0 for row in result["rows"])
    assert result["chars_per_token"] == 8 and result["tokenizer"] == "tiny"
