"""How much of a training epoch is padding, under each way of forming batches: the bound on what packing can buy.

The issue's levers "less padding (token-budget batches, exact length buckets)" and "sequence packing with
per-sequence attention" can only save the work spent on padding tokens. This benchmark counts that work exactly,
without training: it tokenizes the data as tuneline does, forms the batches each strategy would form and counts, per
epoch, the optimizer steps, the token positions the linear layers compute (rows x the batch's longest row) and the
attention-score positions (rows x longest row squared, per layer and head). Strategies:

- ``pad_to_max``   every row padded to ``max_length`` (``peer_pad128``)
- ``dynamic``      random batches padded to their longest row (``peer_dynamic``)
- ``grouped``      the Trainer's own ``group_by_length`` sampler (``get_length_grouped_indices``), padded to the
                   longest row: what tuneline and the peer do
- ``token_budget`` exact length buckets: rows sorted by length within the same megabatches, cut into batches of at
                   most ``batch_size x mean length`` token positions, so the epoch keeps about as many optimizer
                   steps (a larger budget is a larger batch, a recipe change measured in BENCHMARKS.md)
- ``packed``       each grouped batch's rows concatenated into as few, as even rows of at most ``max_length``
                   tokens as hold them (first-fit decreasing), with a block-diagonal mask: little padding, but
                   attention over the whole packed row unless a variable-length kernel skips the masked blocks
                   (none on the CPU)

Data: the train-speed benchmark's 4,000-row SST-2 sample, full SST-2 train and CoNLL-2003 train (words tokenized
as tuneline's NER kind does); ``--smoke`` uses generated sentences and a tiny vocabulary (seconds, for the test
suite). Writes JSON with a row per dataset and strategy, averaged over ``--seeds`` sampler seeds.

    .venv/bin/python benchmarks/padding.py                 # MiniLM's tokenizer, the shared data (about a minute)
    .venv/bin/python benchmarks/padding.py --smoke --output /tmp/padding.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from train_speed import prepare_smoke, read_tsv, tiny_model  # noqa: E402

STRATEGIES = ("pad_to_max", "dynamic", "grouped", "token_budget", "packed")


# --- batches ------------------------------------------------------------------------------------------------------

def grouped_order(lengths: list[int], batch_size: int, seed: int) -> list[int]:
    """The Trainer's own length-grouped order (the function its sampler calls), with a seeded generator."""
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    return get_length_grouped_indices(lengths, batch_size, generator=torch.Generator().manual_seed(seed))


def fixed_batches(order: list[int], batch_size: int) -> list[list[int]]:
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def token_budget_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Rows sorted by length within the Trainer's megabatches, cut when rows x longest would pass the budget."""
    budget = batch_size * statistics.fmean(lengths)
    batches: list[list[int]] = []
    current: list[int] = []
    for index in grouped_order(lengths, batch_size, seed):  # descending length within each megabatch
        longest = lengths[current[0]] if current else lengths[index]
        if current and (len(current) + 1) * max(longest, lengths[index]) > budget:
            batches.append(current)
            current = []
        current.append(index)
    return batches + ([current] if current else [])


def pack(row_lengths: list[int], capacity: int) -> list[int]:
    """The lengths of the fewest, most even packed rows of at most ``capacity`` tokens that hold these sequences.

    First-fit decreasing into as few rows as the tokens need, with the smallest row width that fits them: rows
    padded to the longest packed row, so an even packing pads least.
    """
    rows_needed = -(-sum(row_lengths) // capacity)
    width = max(max(row_lengths), -(-sum(row_lengths) // rows_needed))
    while True:
        rows: list[int] = []
        for n in sorted(row_lengths, reverse=True):
            for i, used in enumerate(rows):
                if used + n <= width:
                    rows[i] += n
                    break
            else:
                rows.append(n)
        if len(rows) <= rows_needed or width >= capacity:
            return rows
        width += 1


def count(batches: list[list[int]], lengths: list[int], *, pad_to: int | None = None,
          packed_capacity: int | None = None) -> dict[str, float]:
    """Steps, token positions and attention-score positions (per layer and head) of one epoch."""
    positions = attention = 0
    for batch in batches:
        sizes = [lengths[i] for i in batch]
        if packed_capacity:
            sizes = pack(sizes, packed_capacity)
        longest = pad_to or max(sizes)
        positions += len(sizes) * longest
        attention += len(sizes) * longest * longest
    return {"steps": len(batches), "token_positions": positions, "attention_positions": attention}


def measure(lengths: list[int], batch_size: int, max_length: int, seeds: list[int]) -> dict[str, dict]:
    real = sum(lengths)
    ideal_attention = sum(n * n for n in lengths)  # what per-sequence attention computes
    runs: dict[str, list[dict]] = {name: [] for name in STRATEGIES}
    for seed in seeds:
        order = list(range(len(lengths)))
        random.Random(seed).shuffle(order)
        grouped = fixed_batches(grouped_order(lengths, batch_size, seed), batch_size)
        runs["pad_to_max"].append(count(fixed_batches(order, batch_size), lengths, pad_to=max_length))
        runs["dynamic"].append(count(fixed_batches(order, batch_size), lengths))
        runs["grouped"].append(count(grouped, lengths))
        runs["token_budget"].append(count(token_budget_batches(lengths, batch_size, seed), lengths))
        runs["packed"].append(count(grouped, lengths, packed_capacity=max_length))
    out = {}
    for name, rows in runs.items():
        mean = {key: statistics.fmean(r[key] for r in rows) for key in rows[0]}
        out[name] = {"steps": round(mean["steps"], 1),
                     "token_positions": round(mean["token_positions"]),
                     "padding_share": round(1 - real / mean["token_positions"], 4),
                     "attention_positions": round(mean["attention_positions"]),
                     "attention_over_per_sequence": round(mean["attention_positions"] / ideal_attention, 3)}
    grouped_positions = out["grouped"]["token_positions"]
    for row in out.values():
        row["token_positions_vs_grouped"] = round(row["token_positions"] / grouped_positions, 4)
    return {"rows": len(lengths), "real_tokens": real, "mean_length": round(statistics.fmean(lengths), 2),
            "strategies": out}


# --- data ---------------------------------------------------------------------------------------------------------

def text_lengths(tokenizer, texts: list[str], max_length: int) -> list[int]:
    return [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]


def conll_sentences(path: Path) -> list[list[str]]:
    sentences, words = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if words:
                sentences.append(words)
            words = []
        else:
            words.append(line.split(" ")[0])
    return sentences + ([words] if words else [])


def datasets(args: argparse.Namespace, work: Path) -> dict[str, list[int]]:
    from transformers import AutoTokenizer

    if args.smoke:
        paths = prepare_smoke(work, rows=400)
        tokenizer = AutoTokenizer.from_pretrained(str(tiny_model(work / "tiny-model")))
        return {"smoke": text_lengths(tokenizer, [text for text, _ in read_tsv(paths["train"])], args.max_length)}
    sys.path.insert(0, str(REPO))
    from tuneline.runtime import resolve_base_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model("minilm"))
    train = read_tsv(args.data / "sst2" / "train.tsv")
    sample = random.Random(0).sample(train, 4500)[:4000]  # exactly train_speed.py's 4,000 training rows
    out = {"sst2_4000": text_lengths(tokenizer, [t for t, _ in sample], args.max_length),
           "sst2_train": text_lengths(tokenizer, [t for t, _ in train], args.max_length)}
    conll = args.data / "conll2003" / "train.txt"
    if conll.exists():
        encoded = tokenizer(conll_sentences(conll), is_split_into_words=True, truncation=True,
                            max_length=args.max_length)
        out["conll2003_train"] = [len(ids) for ids in encoded["input_ids"]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seeds", type=int, default=3, help="how many sampler seeds to average over")
    parser.add_argument("--smoke", action="store_true", help="generated data and a tiny tokenizer (seconds)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "padding.json")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        lengths = datasets(args, Path(tmp))
    seeds = list(range(42, 42 + args.seeds))
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(["benchmarks/padding.py", *sys.argv[1:]]),
              "settings": {"batch_size": args.batch_size, "max_length": args.max_length, "seeds": seeds},
              "datasets": {name: measure(values, args.batch_size, args.max_length, seeds)
                           for name, values in lengths.items()}}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    for name, data in result["datasets"].items():
        print(f"\n{name}: {data['rows']} rows, {data['real_tokens']} real tokens, mean length {data['mean_length']}")
        print("| strategy | steps | token positions vs grouped | padding | attention vs per-sequence |")
        print("|---|---|---|---|---|")
        for strategy, row in data["strategies"].items():
            print(f"| {strategy} | {row['steps']} | {row['token_positions_vs_grouped']} | "
                  f"{row['padding_share']:.1%} | {row['attention_over_per_sequence']} |")
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
