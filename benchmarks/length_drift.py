"""How often the loop's text-length drift check flags a batch that came from the same data, and whether it catches
a batch of ID numbers, per batch size: the numbers behind ``drift.min_length_rows`` and ``LARGE_LENGTH_SHIFT``.

A batch is drawn from the second half of each dataset's train file and checked against the first half (the
reference), with :func:`tuneline.drift.text_length_shift` exactly as the loop calls it (``large_below`` = the label
test's ``drift.min_rows``), in two ways: *contiguous* slices (a batch as an exporter writes it: a day, a document)
and *random* rows. Also reported: the same check with the test alone (no effect size; what a batch of 30-199 rows
would get without the rule), the KS D quantiles, and the share caught of two real faults: each text replaced by a
2-word ID (the pair QA's batch) and each text cut to half its words.

Data: SST-2, MRPC (both texts' words together), GoEmotions (texts) and CoNLL-2003 (sentence lengths in tokens)
from ``../shared/data``; ``--smoke`` uses generated log-normal lengths (seconds, for the test suite).

    .venv/bin/python benchmarks/length_drift.py                 # the shared data, about a minute
    .venv/bin/python benchmarks/length_drift.py --smoke --output /tmp/length_drift.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SIZES = (30, 60, 100, 199, 400)


def _words(text: object) -> int:
    return len(str(text).split())


def datasets(smoke: bool) -> dict[str, np.ndarray]:
    """Each dataset's text lengths in file order (words; tokens of a sentence for CoNLL)."""
    if smoke:
        rng = np.random.default_rng(0)
        return {"smoke": np.round(rng.lognormal(mean=2.5, sigma=0.6, size=4000)).astype(int) + 1}
    import pandas as pd

    read = {"sep": "\t", "quoting": csv.QUOTE_NONE}
    sst2 = pd.read_csv(DATA / "sst2" / "train.tsv", **read)["sentence"].map(_words).to_numpy()
    mrpc = pd.read_csv(DATA / "mrpc" / "train.tsv", encoding="utf-8-sig", **read)
    pairs = (mrpc["#1 String"].map(_words) + mrpc["#2 String"].map(_words)).to_numpy()
    goemotions = pd.read_csv(DATA / "goemotions" / "train.tsv", header=None, **read)[0].map(_words).to_numpy()
    sentences, current = [], 0
    with open(DATA / "conll2003" / "train.txt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                current += 1
            elif current:
                sentences.append(current)
                current = 0
    if current:
        sentences.append(current)
    return {"sst2": sst2, "mrpc": pairs, "goemotions": goemotions, "conll2003": np.array(sentences)}


def measure(lengths: np.ndarray, sizes: tuple[int, ...], draws: int, seed: int, min_rows: int) -> dict:
    from scipy.stats import ks_2samp

    from tuneline.drift import text_length_shift

    rng = np.random.default_rng(seed)
    reference, rest = lengths[: len(lengths) // 2], lengths[len(lengths) // 2:]
    rows = {}
    for size in sizes:
        if size >= len(rest):
            continue
        starts = rng.integers(0, len(rest) - size, draws)
        batches = {"contiguous": [rest[s:s + size] for s in starts],
                   "random": [rng.choice(rest, size, replace=False) for _ in range(draws)]}
        row: dict = {}
        for how, drawn in batches.items():
            flagged = [text_length_shift(reference, b, large_below=min_rows).status != "ok" for b in drawn]
            test_alone = [text_length_shift(reference, b).status != "ok" for b in drawn]
            d = [ks_2samp(reference, b).statistic for b in drawn]
            row[how] = {"flagged": round(float(np.mean(flagged)), 4),
                        "flagged_by_the_test_alone": round(float(np.mean(test_alone)), 4),
                        "ks_d_p50_p90_p99": [round(float(q), 3) for q in np.quantile(d, [0.5, 0.9, 0.99])]}
        faults = {"ids": [np.full(size, 2) for _ in range(min(draws, 50))],
                  "halved": [np.maximum(1, b // 2) for b in batches["contiguous"][:100]]}
        for fault, drawn in faults.items():
            row[f"caught_{fault}"] = round(float(np.mean(
                [text_length_shift(reference, b, large_below=min_rows).status != "ok" for b in drawn])), 4)
        rows[str(size)] = row
    return {"texts": int(len(lengths)), "reference_median": float(np.median(reference)), "sizes": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="generated lengths, few draws (for the test suite)")
    parser.add_argument("--draws", type=int, default=300, help="batches drawn per size and way (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "length_drift.json")
    args = parser.parse_args(argv)
    from tuneline.drift import DEFAULT_THRESHOLDS, LARGE_LENGTH_SHIFT

    if not args.smoke and not DATA.is_dir():
        parser.error(f"no shared data at {DATA}: run with --smoke, or where ../shared/data exists")
    min_rows = int(DEFAULT_THRESHOLDS["min_rows"])
    draws = min(args.draws, 40) if args.smoke else args.draws
    results = {name: measure(lengths, SIZES, draws, args.seed, min_rows)
               for name, lengths in datasets(args.smoke).items()}
    report = {"benchmark": "length_drift", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
              "settings": {"alpha": DEFAULT_THRESHOLDS["alpha"], "min_rows": min_rows,
                           "min_length_rows": DEFAULT_THRESHOLDS["min_length_rows"],
                           "large_length_shift": LARGE_LENGTH_SHIFT, "draws": draws, "seed": args.seed},
              "datasets": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for name, result in results.items():
        for size, row in result["sizes"].items():
            print(f"{name:>10} {size:>4}: flagged contiguous {row['contiguous']['flagged']:.3f} "
                  f"(test alone {row['contiguous']['flagged_by_the_test_alone']:.3f}), random "
                  f"{row['random']['flagged']:.3f} (test alone {row['random']['flagged_by_the_test_alone']:.3f}); "
                  f"caught: ids {row['caught_ids']:.2f}, halved {row['caught_halved']:.2f}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
