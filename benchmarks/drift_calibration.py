"""How often the loop's drift checks flag a batch that came from the same data, and whether they catch real faults,
per batch size: the numbers behind ``drift.min_length_rows``, ``LARGE_LENGTH_SHIFT`` and the label-shift check's
unit for NER (sentences per entity type, not tags).

A batch is drawn from the second half of each dataset's train file and checked against the first half (the
reference), as the loop calls the checks (``large_below`` = the label test's ``drift.min_rows``), in two ways:
*contiguous* slices (a batch as an exporter writes it: a day, a document) and *random* rows.

- Text length (:func:`tuneline.drift.text_length_shift`): flagged with the large-shift rule and by the test alone,
  KS D quantiles, and the share caught of two real faults: each text replaced by a 2-word ID (the pair QA's batch)
  and each text cut to half its words.
- Labels (:func:`tuneline.drift.label_shift`, each kind's ``shift_distribution``): flagged, and for CoNLL-2003 also
  counted per tag (before) against per sentence and entity type (now), with and without the kind's
  ``shift_min_effect``; caught: a batch whose labels were all set to one class (NER: every tag ``O``, as an exporter
  that lost the tags writes it; and every tag of one entity type lost).

Data: SST-2, MRPC (both texts' words together), GoEmotions (texts; labels per row) and CoNLL-2003 (sentence lengths
in tokens; tags) from ``../shared/data``; ``--smoke`` uses generated data (seconds, for the test suite).

    .venv/bin/python benchmarks/drift_calibration.py             # the shared data, about two minutes
    .venv/bin/python benchmarks/drift_calibration.py --smoke --output /tmp/drift_calibration.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SIZES = (30, 60, 100, 199, 400)
LABEL_SIZES = (200, 400, 1000)


def _words(text: object) -> int:
    return len(str(text).split())


def datasets(smoke: bool) -> dict[str, dict]:
    """Per dataset, in file order: ``lengths`` (words; tokens of a sentence for CoNLL), ``labels`` (one per row, a
    list per row for multi-label, a tag list per sentence for NER) and the kind whose ``shift_distribution``
    counts them."""
    if smoke:
        rng = np.random.default_rng(0)
        lengths = np.round(rng.lognormal(mean=2.5, sigma=0.6, size=4000)).astype(int) + 1
        tags = [[str(rng.choice(["O", "O", "O", "B-PER", "B-LOC"])) for _ in range(n)] for n in lengths]
        return {"smoke": {"lengths": lengths, "labels": list(rng.choice(["a", "b", "c"], 4000)),
                          "kind": "classification"},
                "smoke_ner": {"lengths": lengths, "labels": tags, "kind": "token_classification"}}
    import pandas as pd

    read = {"sep": "\t", "quoting": csv.QUOTE_NONE}
    sst2 = pd.read_csv(DATA / "sst2" / "train.tsv", **read)
    mrpc = pd.read_csv(DATA / "mrpc" / "train.tsv", encoding="utf-8-sig", **read)
    goemotions = pd.read_csv(DATA / "goemotions" / "train.tsv", header=None, **read)
    sentences, current = [], []
    with open(DATA / "conll2003" / "train.txt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                current.append(line.split()[-1])
            elif current:
                sentences.append(current)
                current = []
    if current:
        sentences.append(current)
    return {
        "sst2": {"lengths": sst2["sentence"].map(_words).to_numpy(), "labels": sst2["label"].astype(str).tolist(),
                 "kind": "classification"},
        "mrpc": {"lengths": (mrpc["#1 String"].map(_words) + mrpc["#2 String"].map(_words)).to_numpy(),
                 "labels": mrpc["Quality"].astype(str).tolist(), "kind": "pair_classification"},
        "goemotions": {"lengths": goemotions[0].map(_words).to_numpy(),
                       "labels": goemotions[1].astype(str).str.split(",").tolist(),
                       "kind": "multilabel_classification"},
        "conll2003": {"lengths": np.array([len(s) for s in sentences]), "labels": sentences,
                      "kind": "token_classification"},
    }


def _draws(rng: np.random.Generator, total: int, size: int, draws: int) -> dict[str, list[np.ndarray]]:
    starts = rng.integers(0, total - size, draws)
    return {"contiguous": [np.arange(s, s + size) for s in starts],
            "random": [rng.choice(total, size, replace=False) for _ in range(draws)]}


def measure_lengths(lengths: np.ndarray, draws: int, seed: int, min_rows: int) -> dict:
    from scipy.stats import ks_2samp

    from tuneline.drift import text_length_shift

    rng = np.random.default_rng(seed)
    reference, rest = lengths[: len(lengths) // 2], lengths[len(lengths) // 2:]
    rows = {}
    for size in SIZES:
        if size >= len(rest):
            continue
        row: dict = {}
        drawn = _draws(rng, len(rest), size, draws)
        for how, picks in drawn.items():
            batches = [rest[p] for p in picks]
            row[how] = {
                "flagged": _share(text_length_shift(reference, b, large_below=min_rows) for b in batches),
                "flagged_by_the_test_alone": _share(text_length_shift(reference, b) for b in batches),
                "ks_d_p50_p90_p99": [round(float(q), 3) for q in np.quantile(
                    [ks_2samp(reference, b).statistic for b in batches], [0.5, 0.9, 0.99])]}
        faults = {"ids": [np.full(size, 2) for _ in range(min(draws, 50))],
                  "halved": [np.maximum(1, rest[p] // 2) for p in drawn["contiguous"][:100]]}
        for fault, batches in faults.items():
            row[f"caught_{fault}"] = _share(text_length_shift(reference, b, large_below=min_rows) for b in batches)
        rows[str(size)] = row
    return {"texts": int(len(lengths)), "reference_median": float(np.median(reference)), "sizes": rows}


def measure_labels(labels: list, kind_name: str, draws: int, seed: int, min_rows: int) -> dict:
    import pandas as pd

    from tuneline.drift import label_shift
    from tuneline.kinds import KINDS

    kind = KINDS[kind_name]
    column = kind.target_column
    rng = np.random.default_rng(seed)
    reference, rest = labels[: len(labels) // 2], labels[len(labels) // 2:]
    ref_counts = kind.shift_distribution(pd.DataFrame({column: reference}))
    ner = kind_name == "token_classification"
    ref_tags = Counter(tag for tags in reference for tag in tags) if ner else None

    def check(batch: list) -> object:
        counts = kind.shift_distribution(pd.DataFrame({column: batch}))
        return label_shift(ref_counts, counts, min_rows=min_rows, batch_rows=len(batch),
                           reference_rows=len(reference), per_row=kind.labels_per_row_any,
                           min_effect=kind.shift_min_effect)

    def test_alone(batch: list) -> object:  # the same counts without the kind's min_effect
        counts = kind.shift_distribution(pd.DataFrame({column: batch}))
        return label_shift(ref_counts, counts, min_rows=min_rows, batch_rows=len(batch),
                           reference_rows=len(reference), per_row=kind.labels_per_row_any)

    def per_tag(batch: list) -> object:  # NER before: one chi-square over tag counts
        return label_shift(ref_tags, Counter(tag for tags in batch for tag in tags), min_rows=min_rows,
                           batch_rows=len(batch), reference_rows=len(reference))

    def one_class(batch: list) -> list:
        if ner:
            return [["O"] * len(tags) for tags in batch]
        if kind.labels_per_row_any:
            return [[str(batch[0][0])] for _ in batch]
        return [batch[0]] * len(batch)

    rows = {}
    for size in LABEL_SIZES:
        if size >= len(rest):
            continue
        row: dict = {}
        drawn = _draws(rng, len(rest), size, draws)
        for how, picks in drawn.items():
            batches = [[rest[i] for i in p] for p in picks]
            row[how] = {"flagged": _share(check(b) for b in batches)}
            if kind.shift_min_effect:
                row[how]["flagged_by_the_test_alone"] = _share(test_alone(b) for b in batches)
            if ner:
                row[how]["flagged_counting_tags"] = _share(per_tag(b) for b in batches)
        row["caught_one_class"] = _share(check(one_class([rest[i] for i in p]))
                                         for p in drawn["random"][:50])
        if ner:  # every tag of one entity type lost (written O): a type gone from the batch
            kinds = sorted({tag.split("-", 1)[1] for tags in reference for tag in tags if "-" in tag})
            row["caught_one_type_lost"] = _share(check([[t if not t.endswith(f"-{kinds[k % len(kinds)]}") else "O"
                                                        for t in rest[i]] for i in p])
                                                 for k, p in enumerate(drawn["random"][:40]))
        rows[str(size)] = row
    return {"rows": len(labels), "unit": "sentences per entity type" if ner else "rows per label", "sizes": rows}


def _share(checks) -> float:
    flags = [check.status != "ok" for check in checks]
    return round(float(np.mean(flags)), 4) if flags else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="generated data, few draws (for the test suite)")
    parser.add_argument("--draws", type=int, default=300, help="batches drawn per size and way (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "drift_calibration.json")
    args = parser.parse_args(argv)
    from tuneline.drift import DEFAULT_THRESHOLDS, LARGE_LENGTH_SHIFT

    if not args.smoke and not DATA.is_dir():
        parser.error(f"no shared data at {DATA}: run with --smoke, or where ../shared/data exists")
    min_rows = int(DEFAULT_THRESHOLDS["min_rows"])
    draws = min(args.draws, 30) if args.smoke else args.draws
    results = {}
    for name, data in datasets(args.smoke).items():
        results[name] = {"length": measure_lengths(data["lengths"], draws, args.seed, min_rows),
                         "labels": measure_labels(data["labels"], data["kind"], min(draws, 150), args.seed,
                                                  min_rows),
                         "kind": data["kind"]}
    report = {"benchmark": "drift_calibration", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
              "settings": {"alpha": DEFAULT_THRESHOLDS["alpha"], "min_rows": min_rows,
                           "min_length_rows": DEFAULT_THRESHOLDS["min_length_rows"],
                           "large_length_shift": LARGE_LENGTH_SHIFT, "draws": draws, "label_draws": min(draws, 150),
                           "seed": args.seed},
              "datasets": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for name, result in results.items():
        for size, row in result["length"]["sizes"].items():
            print(f"{name:>10} length {size:>4}: flagged contiguous {row['contiguous']['flagged']:.3f} "
                  f"(test alone {row['contiguous']['flagged_by_the_test_alone']:.3f}), random "
                  f"{row['random']['flagged']:.3f} (test alone {row['random']['flagged_by_the_test_alone']:.3f}); "
                  f"caught: ids {row['caught_ids']:.2f}, halved {row['caught_halved']:.2f}")
        for size, row in result["labels"]["sizes"].items():
            tags = (f" (test alone {row['contiguous']['flagged_by_the_test_alone']:.3f} / "
                    f"{row['random']['flagged_by_the_test_alone']:.3f}; counting tags: "
                    f"{row['contiguous']['flagged_counting_tags']:.3f} / {row['random']['flagged_counting_tags']:.3f};"
                    f" caught a type lost {row['caught_one_type_lost']:.2f})"
                    if "flagged_counting_tags" in row["random"] else "")
            print(f"{name:>10} labels {size:>4}: flagged contiguous {row['contiguous']['flagged']:.3f}, random "
                  f"{row['random']['flagged']:.3f}{tags}; caught one class {row['caught_one_class']:.2f}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
