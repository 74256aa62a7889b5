"""benchmarks/padding.py: the batch arithmetic on hand-made lengths, and its smoke mode end to end (cannot rot).

The padding shares of the real data (SST-2, CoNLL-2003 with MiniLM's tokenizer) are in the committed results.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import padding  # benchmarks/ is on the path (pyproject: pythonpath)

REPO = Path(__file__).resolve().parents[1]


def test_packing_fills_the_fewest_even_rows():
    assert sorted(padding.pack([5, 5, 5, 5], capacity=10)) == [10, 10]
    # 26 tokens need 3 rows of 10; the longest sequence (9) sets no wider row than needed
    assert sorted(padding.pack([9, 8, 5, 4], capacity=10)) == [8, 9, 9]
    assert padding.pack([7], capacity=10) == [7]


def test_counts_are_rows_times_the_longest_row():
    lengths = [4, 2, 3, 3]
    batches = [[0, 1], [2, 3]]
    assert padding.count(batches, lengths) == {"steps": 2, "token_positions": 2 * 4 + 2 * 3,
                                                "attention_positions": 2 * 16 + 2 * 9}
    assert padding.count(batches, lengths, pad_to=8)["token_positions"] == 4 * 8
    # packed into rows of at most 8: the first batch becomes one row of 6, the second one row of 6
    assert padding.count(batches, lengths, packed_capacity=8) == {"steps": 2, "token_positions": 12,
                                                                  "attention_positions": 72}


def test_token_budget_batches_keep_every_row_once_within_the_budget():
    lengths = [3, 30, 5, 7, 12, 2, 9, 4, 6, 8, 11, 3] * 10
    batches = padding.token_budget_batches(lengths, batch_size=4, seed=0)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    budget = 4 * sum(lengths) / len(lengths)
    assert all(len(b) * max(lengths[i] for i in b) <= budget or len(b) == 1 for b in batches)


def test_smoke_mode_writes_every_strategy(tmp_path):
    output = tmp_path / "padding.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "padding.py"), "--smoke", "--seeds", "2",
                           "--output", str(output)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    data = json.loads(output.read_text())["datasets"]["smoke"]
    rows = data["strategies"]
    assert set(rows) == set(padding.STRATEGIES)
    assert rows["pad_to_max"]["token_positions"] == data["rows"] * 128
    assert rows["pad_to_max"]["padding_share"] == round(1 - data["real_tokens"] / (data["rows"] * 128), 4)
    # each strategy pads less than the one before it; all but token_budget keep batches of 32 rows
    assert (rows["pad_to_max"]["padding_share"] > rows["dynamic"]["padding_share"]
            > rows["grouped"]["padding_share"] > 0)
    assert rows["grouped"]["steps"] == rows["dynamic"]["steps"] == -(-data["rows"] // 32)
    assert rows["grouped"]["token_positions_vs_grouped"] == 1.0
