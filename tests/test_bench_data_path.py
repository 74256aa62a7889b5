"""benchmarks/data_path.py in smoke mode: it runs, accounts for every row and reports every field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_data_path_benchmark_smoke(tmp_path):
    output = tmp_path / "data_path.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "data_path.py"), "--smoke", "--output",
                           str(output)], capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(output.read_text())

    assert result["benchmark"] == "data_path" and result["mode"] == "smoke"
    machine = result["machine"]
    assert machine["cpu_count"] >= 1 and "load_average_1m_before" in machine and result["when"]
    data = result["data"]
    assert data["rows"] == 20_000 and data["bytes"] > 0
    assert data["files"]["train"]["planted"]["broken_quote"] == 2  # the careful reader's cases are in the data

    pipeline = result["pipeline"]
    assert set(pipeline["stages"]) == {"load", "validate", "split"}
    for stage in pipeline["stages"].values():
        assert stage["seconds"] >= 0 and stage["rss_after_mb"] > 0
    assert pipeline["total_s"] > 0 and pipeline["peak_rss_mb"] > 0
    assert pipeline["rows_in"] == data["rows"]  # every generated record is seen
    assert pipeline["rows_in"] == pipeline["rows_out"] + pipeline["quarantined"]
    assert result["rows_add_up"] is True
    assert sum(pipeline["split_rows"].values()) == pipeline["rows_out"]
    assert pipeline["malformed"] > 0 and pipeline["duplicates"] > 0
    assert {"unbalanced_quote", "record_has_wrong_field_count", "no_exact_duplicates", "text_not_in_train",
            "no_conflicting_label_duplicates", "label_in_label_set", "not_nullable",
            "text_is_non_empty_string"} <= set(pipeline["quarantine_rules"])
    assert pipeline["texts_in_two_splits"] == 0  # no text leaks between splits
    assert pipeline["dtypes"]["text"] == "str"  # compact columns, not Python objects

    tokenize = result["tokenize"]
    assert tokenize["rows"] == 5_000 and sum(tokenize["split_rows"].values()) == 5_000
    assert tokenize["seconds"] > 0 and tokenize["peak_rss_mb"] > 0
    assert tokenize["progress_lines"] > 0 and "ETA" in tokenize["progress_first"]

    assert "| load |" in done.stdout and "rows in 20,000" in done.stdout
