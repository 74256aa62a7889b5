"""Training speed: ``tuneline train`` against the plain-``Trainer`` peers, side by side, on the same data and seeds.

Every variant runs in a fresh process, in rounds (one run of every variant per seed, the order rotated each round) so
that the machine's noise falls on all variants alike; ratios are taken within the benchmark's own runs.

Variants (``--variants``; default all):
- ``peer_pad128``   plain Trainer, every sequence padded to max_length
- ``peer_dynamic``  + dynamic padding (pad each batch to its longest)
- ``peer_grouped``  + length grouping (``train_sampling_strategy="group_by_length"``): the peer on a CPU that
                    emulates bf16 (``--peer auto``, the default)
- ``peer_bf16``     + ``bf16=True``: THE peer of the targets where the CPU multiplies bf16 natively (no evaluation or
                    saving during training)
- ``peer_bf16_eager`` the same with the eager attention (``attn_implementation="eager"``): one tuneline lever alone
- ``peer_bf16_pad8`` the peer with batches padded to a multiple of 8 tokens (fewer distinct shapes): one lever alone
- ``peer_bf16_frozen`` / ``peer_bf16_frozen_no_dropout`` the peer with recipe levers (embeddings frozen; and the
                    model's dropout off): what they are worth in a plain script's whole run, not only per step
- ``tuneline``      ``tuneline train`` with the same settings (precision auto: bf16 where the CPU has AMX/AVX512-BF16;
                    evaluates on its validation rows and checkpoints once per epoch, as it does by default)
- ``tuneline_lora`` the same with ``--set model.strategy=lora`` (LoRA's own defaults: learning rate 5e-4, dropout 0)
- ``tuneline_all_positions`` / ``tuneline_lora_all_positions`` tuneline (full, LoRA) with its last layer computing
                    every position (``model.head_token_only=false``, as before 2026-12-03): that one lever alone
- ``tuneline_full_vocabulary`` tuneline training its whole word-embedding table (``train.compact_vocabulary=false``,
                    as before 2026-12-06): that one lever alone
- ``tuneline_lora_top3`` / ``tuneline_lora_top2`` LoRA on the top 3 / 2 encoder layers only (``model.lora.top_layers``,
                    a recipe option: the backward pass stops below them)
- ``tuneline_lora_dropout`` LoRA with ``model.lora.dropout=0.1`` (the default before; its accuracy is in the table)
- ``tuneline_frozen_embeddings`` the same with the embeddings frozen (a recipe change: its accuracy is in the table)
- ``tuneline_frozen_bottom2`` / ``tuneline_frozen_bottom3`` the embeddings and the bottom 2 / 3 encoder layers frozen
                    (recipe changes: the backward pass stops part way up the encoder)

Data: a seeded ``--train-rows`` sample of SST-2 train (and a disjoint 500-row validation file for tuneline), scored
on the GLUE dev set (872 rows); ``--smoke`` uses a tiny random BERT and generated sentences (seconds, for the test
suite). Writes JSON (every run, with its dev predictions' accuracy, and the summary) and a Markdown table.

    .venv/bin/python benchmarks/train_speed.py                       # 3 seeds, 4,000 rows, all variants
    .venv/bin/python benchmarks/train_speed.py --seeds 1 --variants peer_bf16,tuneline
    .venv/bin/python benchmarks/train_speed.py --smoke --output /tmp/train_speed.json

Useful model FLOPs (reported per run, and as a fraction of the matmul peak measured in the same run: the bf16 peak
where the CPU multiplies bf16 natively (AMX / AVX512-BF16), else the fp32 peak, since emulated bf16 is slower than
fp32 and ``tuneline train`` trains in fp32 there; the JSON names it as ``peak.reference``):
training costs 6·N FLOPs per real (non-padding) token for the N non-embedding weights of the encoder layers (forward
2·N, backward 4·N) plus the attention matmuls, 12·L·d·n per token of a sequence of n real tokens (L layers, width d).
Padding is not useful work, so a run that pads more does the same useful FLOPs in more time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PEER = REPO / "benchmarks" / "peer_trainer.py"
PEERS = {
    "peer_pad128": ["--padding", "max_length"],
    "peer_dynamic": ["--padding", "dynamic"],
    "peer_grouped": ["--padding", "dynamic", "--group"],
    "peer_bf16": ["--padding", "dynamic", "--group", "--bf16"],
    "peer_bf16_eager": ["--padding", "dynamic", "--group", "--bf16", "--attention", "eager"],
    "peer_bf16_pad8": ["--padding", "dynamic", "--group", "--bf16", "--pad-multiple", "8"],
    "peer_bf16_frozen": ["--padding", "dynamic", "--group", "--bf16", "--freeze-embeddings"],
    "peer_bf16_frozen_no_dropout": ["--padding", "dynamic", "--group", "--bf16", "--freeze-embeddings",
                                    "--no-dropout"],
}
TUNELINE = {"tuneline": [], "tuneline_lora": ["--set", "model.strategy=lora"],
            # LoRA's default before 2026-11-30: dropout 0.1 on the input of each of its 37 adapters, whose random
            # draws were 32% of a CPU LoRA step (results/step_profile.json)
            "tuneline_lora_dropout": ["--set", "model.strategy=lora", "--set", "model.lora.dropout=0.1"],
            "tuneline_lora_top3": ["--set", "model.strategy=lora", "--set", "model.lora.top_layers=3"],
            "tuneline_lora_top2": ["--set", "model.strategy=lora", "--set", "model.lora.top_layers=2"],
            # a recipe lever, not a default: the embedding table (12M of MiniLM's 23M weights) stays as pretrained,
            # so the optimizer, the gradient clipping and the backward pass skip half the weights
            "tuneline_frozen_embeddings": ["--set", "model.strategy=freeze", "--set", "model.freeze.embeddings=true"],
            # recipe levers: the embeddings and the bottom 2 or 3 of MiniLM's 6 layers stay as pretrained, so the
            # backward pass stops part way up (as LoRA on the top layers does) and the optimizer updates the rest
            # one lever undone: PyTorch's SDPA attention instead of the eager attention model.attention=auto picks on
            # a CPU for up to 128 tokens
            "tuneline_sdpa": ["--set", "model.attention=sdpa"],
            "tuneline_all_positions": ["--set", "model.head_token_only=false"],
            # one lever undone: the whole word-embedding table trains (before 2026-12-06), not only the rows the
            # training rows use
            "tuneline_full_vocabulary": ["--set", "train.compact_vocabulary=false"],
            "tuneline_lora_all_positions": ["--set", "model.strategy=lora", "--set", "model.head_token_only=false"],
            "tuneline_frozen_bottom2": ["--set", "model.strategy=freeze", "--set", "model.freeze.embeddings=true",
                                        "--set", "model.freeze.bottom_layers=2"],
            "tuneline_frozen_bottom3": ["--set", "model.strategy=freeze", "--set", "model.freeze.embeddings=true",
                                        "--set", "model.freeze.bottom_layers=3"]}
THE_PEER = "peer_bf16"  # the peer, where the CPU multiplies bf16 natively


def the_peer(choice: str, peak: dict) -> str:
    """The peer the ratios are taken against. ``auto``: the script a user would hand-tune on THIS machine, so
    ``peer_bf16`` where bf16 is the faster matmul (AMX / AVX512-BF16), else ``peer_grouped`` (the same script in
    fp32): on a CPU that emulates bf16, ``bf16=True`` made the same step 18x slower
    (``results/step_profile_without_native_bf16.json``), and a ratio against that would flatter every contender."""
    if choice != "auto":
        return choice
    return THE_PEER if peak["reference"] == "bf16" else "peer_grouped"


# --- data and model ---------------------------------------------------------------------------------------------

def write_tsv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        writer.writerow(["sentence", "label"])
        writer.writerows(rows)


def read_tsv(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        return [(row[0], row[1]) for row in reader if len(row) >= 2]


def prepare_sst2(data_dir: Path, rows: int, folder: Path) -> dict[str, Path]:
    """A seeded sample of SST-2 train (``rows`` for training, 500 more for validation) and the GLUE dev set."""
    train = read_tsv(data_dir / "sst2" / "train.tsv")
    sample = random.Random(0).sample(train, rows + 500)
    paths = {"train": folder / "train.tsv", "validation": folder / "validation.tsv",
             "test": data_dir / "sst2" / "dev.tsv"}
    write_tsv(paths["train"], sample[:rows])
    write_tsv(paths["validation"], sample[rows:])
    return paths


def prepare_smoke(folder: Path, rows: int) -> dict[str, Path]:
    """Generated two-class sentences (the word decides the label), for the smoke mode."""
    rng = random.Random(0)
    good, bad = ["great", "lovely", "superb", "fine"], ["awful", "dull", "poor", "bad"]
    filler = "the film was quite a long ride for everyone in the room that night".split()

    def sample(n: int) -> list[tuple[str, str]]:
        out = []
        for _ in range(n):
            label = rng.randint(0, 1)
            words = rng.sample(filler, rng.randint(3, 10)) + [rng.choice(good if label else bad)]
            rng.shuffle(words)
            out.append((" ".join(words), str(label)))
        return out

    paths = {split: folder / f"{split}.tsv" for split in ("train", "validation", "test")}
    for split, n in (("train", rows), ("validation", 40), ("test", 60)):
        write_tsv(paths[split], sample(n))
    return paths


def tiny_model(folder: Path) -> Path:
    """A 2-layer random BERT with its own word-level vocabulary, saved to ``folder`` (no download)."""
    import transformers

    words = ("the film was quite a long ride for everyone in the room that night great lovely superb fine awful "
             "dull poor bad").split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(words))]
    transformers.BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True).save_pretrained(folder)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    transformers.BertModel(config).save_pretrained(folder)
    return folder


def encoder_shape(model_dir: str) -> dict[str, int]:
    """The numbers the FLOPs formula needs: non-embedding weights of the encoder layers, layers, width."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(model_dir)
    d, layers, inner = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    per_layer = 4 * d * d + 4 * d + 2 * d * inner + inner + d + 4 * d  # attention, FFN, two LayerNorms
    return {"non_embedding_params": layers * per_layer, "layers": layers, "hidden": d}


def useful_flops(lengths: list[int], shape: dict[str, int], epochs: float) -> float:
    """Training FLOPs on real tokens: 6·N per token plus 12·L·d·n per token of an n-token sequence."""
    n_params, layers, d = shape["non_embedding_params"], shape["layers"], shape["hidden"]
    per_epoch = sum(6 * n_params * n + 12 * layers * d * n * n for n in lengths)
    return per_epoch * epochs


def token_lengths(model_dir: str, texts: list[str], max_length: int) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]


def matmul_peak(seconds: float = 3.0, size: int = 2048) -> dict[str, float]:
    """FLOP/s of square bf16 and fp32 matmuls on this machine, now, with torch's threads: the best of sizes
    ``size/4``, ``size/2`` and ``size`` (on an AMD EPYC without AVX512 a 2048-wide fp32 matmul ran at 89 GFLOP/s and
    MiniLM's own narrower ones at 117: one size is no ceiling). A size whose first product takes longer than
    ``seconds`` (emulated bf16: about 60 s at 2048) ends that precision's search."""
    import torch

    out = {}
    for dtype, name in ((torch.bfloat16, "bf16"), (torch.float32, "fp32")):
        best = 0.0
        for n in (size // 4, size // 2, size):
            a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
            started = time.perf_counter()
            a @ b
            first = time.perf_counter() - started
            best = max(best, 2 * n ** 3 / first)
            if first > seconds:
                break
            a @ b
            runs, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                a @ b
                runs += 1
            best = max(best, 2 * n ** 3 * runs / (time.perf_counter() - started))
        out[f"{name}_flops_per_s"] = best
    out["threads"] = torch.get_num_threads()
    # the fastest matmul this machine offers is the ceiling: on a CPU without native bf16 the bf16 "peak" measures an
    # emulation slower than fp32, and a model trained in fp32 there ran at 1.2-1.5x that "peak"
    out["reference"] = "bf16" if out["bf16_flops_per_s"] >= out["fp32_flops_per_s"] else "fp32"
    out["reference_flops_per_s"] = out[f"{out['reference']}_flops_per_s"]
    return out


# --- running the variants ---------------------------------------------------------------------------------------

def run_peer(variant: str, paths: dict[str, Path], model_dir: str, seed: int, args: argparse.Namespace,
             work: Path) -> dict:
    out = work / f"{variant}-s{seed}.json"
    command = [sys.executable, str(PEER), "--train", str(paths["train"]), "--dev", str(paths["test"]),
               "--model", model_dir, "--max-length", str(args.max_length), "--batch-size", str(args.batch_size),
               "--epochs", str(args.epochs), "--lr", str(args.lr), "--seed", str(seed),
               "--work-dir", str(work / f"{variant}-s{seed}"), "--out", str(out), *PEERS[variant]]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr[-3000:]}")
    result = json.loads(out.read_text())
    result["variant"] = variant
    result["process_wall_s"] = time.monotonic() - started
    return result


def tuneline_config(paths: dict[str, Path], model_base: str, seed: int, args: argparse.Namespace, work: Path) -> Path:
    import yaml

    config = {
        "task": "classification",
        "work_dir": str(work / "tuneline-output"),
        "data": {"train": str(paths["train"]), "validation": str(paths["validation"]), "test": str(paths["test"]),
                 "text_column": "sentence", "label_column": "label", "labels": ["0", "1"],
                 "label_descriptions": {"0": "a negative movie review", "1": "a positive movie review"}},
        "model": {"base": model_base},
        "tokenize": {"max_length": args.max_length},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "seed": seed},
        "tracking": {"tracking_uri": f"sqlite:///{work / 'mlflow.db'}", "experiment": "train-speed",
                     "registered_model": "train-speed"},
        "gate": {"primary_metric": "accuracy", "min_metric": 0.0},
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_tuneline(variant: str, paths: dict[str, Path], model_base: str, seed: int, args: argparse.Namespace,
                 work: Path) -> dict:
    folder = work / f"{variant}-s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    config = tuneline_config(paths, model_base, seed, args, folder)
    overrides = list(TUNELINE[variant])
    if args.smoke:  # the smoke mode's tiny BERT has 2 layers
        overrides = [re.sub(r"model\.lora\.top_layers=\d+", "model.lora.top_layers=1", o) for o in overrides]
    if "lora" not in variant:  # LoRA keeps its own default learning rate
        overrides += ["--set", f"train.learning_rate={args.lr}"]
    tuneline = Path(sys.executable).with_name("tuneline")
    command = [str(tuneline) if tuneline.exists() else "tuneline", "train", "--config", str(config), *overrides]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    summary_path = next((folder / "tuneline-output" / "runs").glob("*/summary.json"))
    summary = json.loads(summary_path.read_text())
    timings = json.loads((summary_path.parent / "timings.json").read_text())
    train_rows = len(read_tsv(paths["train"]))
    return {
        "variant": variant, "train_rows": train_rows, "epochs": args.epochs, "seed": seed,
        "train_runtime_s": summary["train_runtime_s"],
        "train_samples_per_s": train_rows * args.epochs / summary["train_runtime_s"],
        "process_wall_s": wall, "wall_s": timings["total_s"],
        "dev_accuracy": summary["comparison"]["fine_tuned"]["accuracy"],
        "overhead_fraction": timings["outside_training_fraction"], "timings": timings,
        "time_line": summary.get("time", ""),
    }


def summarize(runs: list[dict], variants: list[str], flops: dict[str, float], peak: dict[str, float],
              peer: str = THE_PEER) -> dict:
    by = {v: [r for r in runs if r["variant"] == v] for v in variants}
    table = {}
    peer_rate = statistics.median(r["train_samples_per_s"] for r in by[peer]) if by.get(peer) else None
    for variant, rows in by.items():
        if not rows:
            continue
        rate = statistics.median(r["train_samples_per_s"] for r in rows)
        runtime = statistics.median(r["train_runtime_s"] for r in rows)
        accuracy = [r["dev_accuracy"] for r in rows]
        model_flops = flops["per_run"] / runtime
        table[variant] = {
            "runs": len(rows), "train_samples_per_s_median": round(rate, 2),
            "ratio_to_peer": round(rate / peer_rate, 3) if peer_rate else None,
            "dev_accuracy_mean": round(statistics.mean(accuracy), 4),
            "dev_accuracy_min": round(min(accuracy), 4), "dev_accuracy_max": round(max(accuracy), 4),
            "train_runtime_s_median": round(runtime, 2),
            # three significant digits, not decimals: a smoke run's tiny model is a few millionths of the peak
            "useful_tflops_per_s": float(f"{model_flops / 1e12:.3g}"),
            "fraction_of_peak": float(f"{model_flops / peak['reference_flops_per_s']:.3g}"),
            **({"overhead_fraction_median": round(statistics.median(r["overhead_fraction"] for r in rows), 4),
                "wall_s_median": round(statistics.median(r["wall_s"] for r in rows), 1)}
               if "overhead_fraction" in rows[0] else {}),
        }
    return table


def markdown(table: dict, meta: dict) -> str:
    lines = [f"Training speed, {meta['when'][:10]}, {meta['machine']['usable_cores']} cores, "
             f"{meta['data']['train_rows']} rows x {meta['settings']['epochs']} epoch, seeds {meta['seeds']}; "
             f"matmul peak bf16 {meta['peak']['bf16_flops_per_s'] / 1e12:.3g} TFLOP/s, "
             f"fp32 {meta['peak']['fp32_flops_per_s'] / 1e12:.3g} TFLOP/s; "
             f"FLOPs against the {meta['peak']['reference']} peak; ratios against {meta['peer']}", "",
             f"| variant | samples/s (median) | x {meta['peer']} | dev accuracy mean [min, max] | useful TFLOP/s | "
             "% of peak | tuneline overhead |", "|---|---|---|---|---|---|---|"]
    for variant, row in table.items():
        overhead = f"{100 * row['overhead_fraction_median']:.0f}% of {row['wall_s_median']:.0f} s" \
            if "overhead_fraction_median" in row else ""
        lines.append(f"| {variant} | {row['train_samples_per_s_median']:.1f} | {row['ratio_to_peer']} | "
                     f"{row['dev_accuracy_mean']:.4f} [{row['dev_accuracy_min']:.4f}, {row['dev_accuracy_max']:.4f}] | "
                     f"{row['useful_tflops_per_s']:.3f} | {100 * row['fraction_of_peak']:.1f}% | {overhead} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="tuneline train against plain-Trainer peers, side by side.")
    parser.add_argument("--variants", default=",".join([*PEERS, *TUNELINE]))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train-rows", type=int, default=4000)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--smoke", action="store_true", help="tiny random model and generated data: seconds")
    parser.add_argument("--output", type=Path, default=RESULTS / "train_speed.json")
    parser.add_argument("--peer", default="auto",
                        help=f"the variant ratios are taken against; auto: {THE_PEER} where the CPU multiplies bf16 "
                             "natively, else peer_grouped (the same script in fp32)")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = (set(variants) | ({args.peer} - {"auto"})) - set(PEERS) - set(TUNELINE)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {[*PEERS, *TUNELINE]}")
    if args.peer != "auto" and args.peer not in variants:
        parser.error(f"--peer {args.peer} is not among --variants: add it, or the ratios have nothing to divide by")

    from tuneline.runtime import resolve_base_model

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="train-speed-") as tmp:
        work = Path(tmp)
        if args.smoke:
            paths = prepare_smoke(work, rows=min(args.train_rows, 96))
            model_base = model_dir = str(tiny_model(work / "tiny-model"))
            args.max_length = min(args.max_length, 32)
        else:
            if not (args.data_dir / "sst2" / "train.tsv").is_file():
                parser.error(f"SST-2 not found under {args.data_dir}: pass --data-dir, or --smoke")
            paths = prepare_sst2(args.data_dir, args.train_rows, work)
            model_base, model_dir = "minilm", resolve_base_model("minilm")
        texts = [text for text, _ in read_tsv(paths["train"])]
        lengths = token_lengths(model_dir, texts, args.max_length)
        shape = encoder_shape(model_dir)
        flops = {"per_run": useful_flops(lengths, shape, args.epochs), **shape,
                 "real_tokens_per_epoch": sum(lengths), "padded_tokens_pad128_per_epoch": len(lengths) * args.max_length}
        peak = matmul_peak(seconds=0.5 if args.smoke else 3.0, size=256 if args.smoke else 2048)
        peer = the_peer(args.peer, peak)
        if peer not in variants:  # known only now: auto picks by the measured peak
            sys.exit(f"train_speed: --peer auto chose {peer} on this machine ({peak['reference']} is the faster "
                     f"matmul), but --variants leaves it out: add {peer}")
        runs: list[dict] = []
        for round_number in range(args.seeds):
            seed = 42 + round_number
            order = variants[round_number % len(variants):] + variants[:round_number % len(variants)]
            for variant in order:
                print(f"round {round_number + 1}/{args.seeds}: {variant} (seed {seed})", flush=True)
                if variant in PEERS:
                    result = run_peer(variant, paths, model_dir, seed, args, work)
                else:
                    result = run_tuneline(variant, paths, model_base, seed, args, work)
                result.pop("dev_predictions", None)
                runs.append(result)
                print(f"  {result['train_samples_per_s']:.1f} samples/s, dev accuracy {result['dev_accuracy']:.4f}"
                      + (f"; {result['time_line']}" if result.get("time_line") else ""), flush=True)
        table = summarize(runs, variants, flops, peak, peer)
    import torch
    import transformers

    meta = {
        "benchmark": "train_speed", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"cpu_count": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "transformers": transformers.__version__,
                    "load_average_1m_before": load_before, "load_average_1m_after": os.getloadavg()[0]},
        "data": {"source": "generated (smoke)" if args.smoke else "SST-2 train sample (seed 0) / GLUE dev",
                 "train_rows": len(texts), "validation_rows_tuneline": 40 if args.smoke else 500},
        "settings": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr,
                     "max_length": args.max_length, "model": "tiny random BERT" if args.smoke else "MiniLM-L6"},
        "seeds": [42 + i for i in range(args.seeds)], "peak": peak, "flops": flops, "peer": peer,
        "flops_formula": "6*N*n + 12*L*d*n^2 per sequence of n real tokens (N non-embedding weights, L layers, "
                         "width d), times epochs",
    }
    result = {**meta, "table": table, "runs": runs}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    text = markdown(table, meta)
    args.output.with_suffix(".md").write_text(text + "\n")
    print(text)
    print(f"\nwritten: {args.output} and {args.output.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
