"""benchmarks/drift_calibration.py in its smoke mode (cannot rot): every size and measure is reported, and on
generated same-distribution data the checks flag next to nothing while they catch every batch of ID numbers and
every batch of one class (NER: every tag O).

The shared data's numbers (SST-2, MRPC, GoEmotions, CoNLL-2003) are in the committed results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_smoke_mode_reports_false_alarms_and_caught_faults_per_size(tmp_path):
    output = tmp_path / "drift_calibration.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "drift_calibration.py"), "--smoke",
                           "--output", str(output)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["settings"]["min_rows"] == 200 and report["settings"]["large_length_shift"] == 0.6
    assert set(report["datasets"]) == {"smoke", "smoke_ner"}
    for name, result in report["datasets"].items():
        lengths = result["length"]["sizes"]
        assert list(lengths) == ["30", "60", "100", "199", "400"]
        for size, row in lengths.items():
            assert row["caught_ids"] == 1.0, (name, size, row)
            for how in ("contiguous", "random"):
                assert row[how]["flagged"] <= 0.1, (name, size, how, row)  # same distribution: about alpha
                assert row[how]["flagged"] <= row[how]["flagged_by_the_test_alone"] + 1e-9
                low, mid, high = row[how]["ks_d_p50_p90_p99"]
                assert 0 < low <= mid <= high < 0.6
        labels = result["labels"]["sizes"]
        assert list(labels) == ["200", "400", "1000"]
        for size, row in labels.items():
            assert row["caught_one_class"] == 1.0, (name, size, row)
            assert row["random"]["flagged"] <= 0.1 and row["contiguous"]["flagged"] <= 0.1, (name, size, row)
            assert ("flagged_counting_tags" in row["random"]) == (name == "smoke_ner")
