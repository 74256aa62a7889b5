"""Where one CPU training step goes: the operator profile of the step tuneline's Trainer runs, grouped by job.

The train-speed benchmark says how fast; this one says why. It runs the same step the Trainer does (bf16 autocast
forward, backward, gradient clipping at 1.0, fused AdamW, zero_grad) on length-grouped batches of 32 SST-2 rows,
with ``torch.profiler``, and groups the operators' self time into: matmuls, optimizer, weight casts (autocast copying
fp32 weights to bf16 every forward), gradient clipping, dropout draws, zero fills and everything else. It also times
the matmuls' FLOPs against the matmul peak measured in the same process (bf16 where the CPU has it natively, else
fp32).

Variants (``--variants``): ``full`` (full fine-tuning), ``full_fp32`` (the same step without bf16 autocast: what
``tuneline train``'s precision auto runs on a CPU without AMX/AVX512-BF16, where bf16 is emulated),
``frozen_embeddings`` (the embedding table frozen), ``lora`` (LoRA r=16 on every linear layer, dropout 0.1:
tuneline's old default), ``lora_no_dropout`` (dropout 0, the default now), ``lora_bf16_base`` (that, with the frozen
base's linear weights held in bf16, as tuneline trains).

    .venv/bin/python benchmarks/step_profile.py                 # MiniLM, SST-2 rows, all variants (about 2 minutes)
    .venv/bin/python benchmarks/step_profile.py --smoke --output /tmp/step_profile.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from train_speed import matmul_peak, prepare_smoke, read_tsv, tiny_model  # noqa: E402

VARIANTS = ("full", "full_fp32", "frozen_embeddings", "lora", "lora_no_dropout", "lora_bf16_base")
#: operator name → job; anything else is "other" (layer norms, GELU, softmax, views, adds of activations)
JOBS = {
    "aten::mm": "matmul", "aten::addmm": "matmul", "aten::bmm": "matmul",
    "aten::_fused_adamw_": "optimizer", "Optimizer.zero_grad#AdamW.zero_grad": "optimizer",
    "aten::copy_": "casts and copies", "aten::_to_copy": "casts and copies",
    "aten::linalg_vector_norm": "gradient clipping", "aten::_foreach_norm": "gradient clipping",
    "aten::mul_": "gradient clipping", "aten::_foreach_mul_": "gradient clipping",
    "aten::bernoulli_": "dropout draws", "aten::native_dropout": "dropout draws",
    "aten::fill_": "zero fills", "aten::zero_": "zero fills",
}


def build(model_dir: str, variant: str):
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2, attn_implementation="eager")
    if variant == "frozen_embeddings":
        for parameter in model.base_model.embeddings.parameters():
            parameter.requires_grad_(False)
    if variant.startswith("lora"):
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(
            r=16, lora_alpha=32, lora_dropout=0.1 if variant == "lora" else 0.0,
            target_modules=["query", "key", "value", "dense"], task_type="SEQ_CLS"))
        if variant == "lora_bf16_base":  # what tasks.train.frozen_weights_in_bf16 does while tuneline trains LoRA
            for module in model.modules():
                if isinstance(module, torch.nn.Linear) and not module.weight.requires_grad:
                    module.weight.data = module.weight.data.to(torch.bfloat16)
                    if module.bias is not None:
                        module.bias.data = module.bias.data.to(torch.bfloat16)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-5, weight_decay=0.01,
                                  fused=True)
    return model, optimizer


def profile_variant(model_dir: str, variant: str, texts: list[str], labels: list[int], steps: int,
                    batch_size: int) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = tokenizer(texts, truncation=True, max_length=128)
    by_length = sorted(range(len(texts)), key=lambda i: len(encoded["input_ids"][i]))
    batches = [by_length[i:i + batch_size] for i in range(0, len(by_length), batch_size)]
    random.Random(0).shuffle(batches)
    target = torch.tensor(labels)
    model, optimizer = build(model_dir, variant)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]

    def step(batch: list[int]) -> int:
        features = tokenizer.pad({k: [encoded[k][i] for i in batch] for k in keys}, return_tensors="pt")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant != "full_fp32"):
            loss = model(**features, labels=target[batch]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return int(features["attention_mask"].sum())

    warm = min(5, len(batches) // 4)
    for batch in batches[:warm]:
        step(batch)
    timed = batches[warm:warm + steps]
    started = time.perf_counter()
    real_tokens = sum(step(batch) for batch in timed)
    seconds = time.perf_counter() - started
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as profiler:
        for batch in timed:
            step(batch)
    jobs: dict[str, float] = {}
    matmul_flops, total_us = 0.0, 0.0
    for event in profiler.key_averages():
        if event.key.startswith("ProfilerStep"):
            continue
        job = JOBS.get(event.key, "other")
        jobs[job] = jobs.get(job, 0.0) + event.self_cpu_time_total
        total_us += event.self_cpu_time_total
        if job == "matmul":
            matmul_flops += event.flops or 0
    matmul_s = jobs.get("matmul", 0.0) / 1e6
    return {
        "variant": variant, "steps": len(timed), "steps_per_s": round(len(timed) / seconds, 3),
        "real_tokens_per_step": round(real_tokens / len(timed), 1),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "share_of_step": {job: round(us / total_us, 4) for job, us in sorted(jobs.items(), key=lambda kv: -kv[1])},
        "matmul_tflops_per_s": round(matmul_flops / matmul_s / 1e12, 4) if matmul_s else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Where one CPU training step goes, by job, per variant.")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--smoke", action="store_true", help="tiny random model and generated data: seconds")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "step_profile.json")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import tempfile

    import torch

    with tempfile.TemporaryDirectory(prefix="step-profile-") as tmp:
        if args.smoke:
            paths = prepare_smoke(Path(tmp), rows=96)
            model_dir = str(tiny_model(Path(tmp) / "tiny-model"))
            rows = read_tsv(paths["train"])
            args.steps = min(args.steps, 3)
        else:
            source = args.data_dir / "sst2" / "train.tsv"
            if not source.is_file():
                parser.error(f"SST-2 not found under {args.data_dir}: pass --data-dir, or --smoke")
            from tuneline.runtime import resolve_base_model

            model_dir = resolve_base_model("minilm")
            rows = random.Random(0).sample(read_tsv(source), args.rows)
        texts, labels = [t for t, _ in rows], [int(label) for _, label in rows]
        peak = matmul_peak(seconds=0.5 if args.smoke else 3.0, size=256 if args.smoke else 2048)
        results = [profile_variant(model_dir, v, texts, labels, args.steps, args.batch_size) for v in variants]
    for result in results:
        if result["matmul_tflops_per_s"] is not None:
            result["matmul_fraction_of_peak"] = round(result["matmul_tflops_per_s"] * 1e12
                                                      / peak["reference_flops_per_s"], 4)
    report = {
        "benchmark": "step_profile", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"usable_cores": len(os.sched_getaffinity(0)), "torch": torch.__version__,
                    "threads": torch.get_num_threads()},
        "model": "tiny random BERT" if args.smoke else "MiniLM-L6", "batch_size": args.batch_size,
        "peak": peak, "variants": results,
        "note": "share_of_step: self CPU time of the profiled operators, grouped by job (benchmarks/step_profile.py JOBS)",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    for result in results:
        shares = ", ".join(f"{job} {100 * share:.0f}%" for job, share in result["share_of_step"].items())
        print(f"{result['variant']}: {result['steps_per_s']:.2f} steps/s; {shares}")
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
