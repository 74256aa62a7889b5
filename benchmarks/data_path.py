"""Data path at scale: load → validate → split of generated classification CSVs, plus tokenization.

Writes ``--rows`` realistic support-ticket rows (default 10,000,000: 90 % in ``train.csv``, 10 % in ``test.csv``)
into a temporary folder, with what real files carry: quoted texts holding commas and quotes, a few legitimate
multi-line texts, exact and whitespace-padded duplicates, the same text under two labels, empty and blank texts,
missing and unknown labels, records with an extra field, blank lines, two broken quotes per file, and test rows
that repeat a train text (leakage). Then runs tuneline's own task functions (``load_data.fn``, ``validate_data.fn``,
``split_data.fn``, as the train flow calls them, every result kept alive as the flow keeps it) in a child process
and reports seconds and resident memory per stage, the child's peak RSS, and the rows in (records the files hold),
out (rows in train/validation/test) and quarantined (records in the quarantine), which must add up.

A second child tokenizes ``--tokenize-rows`` short texts (default 1,000,000) with ``tokenize_splits.fn`` and the
installed MiniLM tokenizer (``model.base: minilm``, offline) into a temporary cache, and reports seconds, peak RSS
and the progress lines (with ETA) the task logged.

    .venv/bin/python benchmarks/data_path.py                     # 10M rows + 1M texts tokenized (minutes)
    .venv/bin/python benchmarks/data_path.py --rows 1000000 --tokenize-rows 0
    .venv/bin/python benchmarks/data_path.py --smoke --output /tmp/data_path.json   # seconds, as the tests run it

Each child is a fresh interpreter whose peak RSS is the kernel's high-water mark (VmHWM), reset when the child
starts and before each stage, so that a stage's own peak can be read and the parent's memory does not count
(``getrusage`` in a child starts from the parent's peak at fork time; it is the fallback where /proc is missing);
imports count. Writes ``benchmarks/results/data_path.json`` (or ``--output``) with the machine (cores, memory, load
average before) and prints a Markdown table. Exit code 1 when rows do not add up (the JSON is written all the same).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "data_path.json"
RESETTABLE = False  # whether this process's peak RSS can be reset (and so read per stage)
LABELS = ["account", "billing", "cancellation", "delivery", "refund", "technical"]
LABEL_WEIGHTS = [0.22, 0.24, 0.08, 0.2, 0.14, 0.12]
SMOKE_ROWS, SMOKE_TOKENIZE_ROWS = 20_000, 5_000

# Per-row rates of each kind of trouble (of all rows); broken quotes and multi-line texts are counts per file.
RATES = {"duplicate": 0.02, "padded_duplicate": 0.002, "conflicting_label": 0.001, "empty_text": 0.0005,
         "blank_text": 0.0005, "missing_label": 0.0005, "unknown_label": 0.0005, "extra_field": 0.0005,
         "blank_line": 0.0002}
TEST_LEAK_RATE = 0.01
BROKEN_QUOTES_PER_FILE = 2
MULTILINE_PER_MILLION = 5

OPENERS = ["hi,", "hello", "hey team", "good morning", "urgent:", "quick question:", "please help:", "dear support,",
           "", "", "", "why", "how do i", "i need to", "can you"]
TOPIC_WORDS = {
    "account": ["password", "login", "email", "username", "profile", "two-factor code", "account settings"],
    "billing": ["invoice", "charge", "payment", "card", "receipt", "subscription fee", "vat number"],
    "cancellation": ["cancel", "subscription", "plan", "contract", "membership", "auto-renewal"],
    "delivery": ["parcel", "courier", "tracking number", "delivery", "package", "shipping address"],
    "refund": ["refund", "money back", "return", "chargeback", "credit note", "reimbursement"],
    "technical": ["app", "crash", "error 500", "sync", "update", "dashboard", "blank screen"],
}
VERBS = ["is not working", "was wrong", "is missing", "keeps failing", "changed", "never arrived", "is late",
         "shows an error", "was charged twice", "needs an update", "is broken", "got stuck"]
TAILS = ["thanks", "thank you", "asap please", "any update?", "still waiting", "regards", "cheers", "", "", ""]


# --- the data ---------------------------------------------------------------------------------------------------

def ticket_texts(count: int, rng, start_id: int = 0) -> tuple[list[str], list[str]]:
    """``count`` distinct ticket texts (an order number makes each one unique) and their labels."""
    import numpy as np

    label_ids = rng.choice(len(LABELS), size=count, p=LABEL_WEIGHTS).tolist()
    opener = rng.integers(0, len(OPENERS), count).tolist()
    word_a, word_b = rng.integers(0, 7, count).tolist(), rng.integers(0, 7, count).tolist()
    verb, tail = rng.integers(0, len(VERBS), count).tolist(), rng.integers(0, len(TAILS), count).tolist()
    comma = (rng.random(count) < 0.05).tolist()  # ", " inside the text: the CSV field is quoted
    quote = (rng.random(count) < 0.005).tolist()  # a quoted word: doubled quotes inside a quoted field
    order = (start_id + np.arange(count) * 7 + rng.integers(0, 7, count)).tolist()
    texts, labels = [], []
    for i in range(count):
        label = LABELS[label_ids[i]]
        words = TOPIC_WORDS[label]
        word = words[word_a[i] % len(words)]
        word = f'"{word}"' if quote[i] else word
        text = (f"{OPENERS[opener[i]]} my {word} {VERBS[verb[i]]}{',' if comma[i] else ''} about the "
                f"{words[word_b[i] % len(words)]} on order {order[i]:09d} {TAILS[tail[i]]}").strip()
        texts.append(text)
        labels.append(label)
    return texts, labels


def csv_field(value: str) -> str:
    if any(c in value for c in ',"\n\r') or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value


def write_file(path: Path, texts: list[str], labels: list[str], rng, leak_from: list[str] | None = None,
               leak_labels: list[str] | None = None) -> dict[str, int]:
    """Write ``text,label`` rows with the RATES of trouble mixed in; counts of what was planted."""
    n = len(texts)
    planted = {name: 0 for name in [*RATES, "multiline_text", "broken_quote", "leaked_from_train"]}
    kinds = list(RATES)
    draw = rng.random(n).tolist()
    bounds, total = [], 0.0
    for name in kinds:
        total += RATES[name]
        bounds.append(total)
    multiline_rows = set(rng.choice(n, size=min(n, max(1, n * MULTILINE_PER_MILLION // 1_000_000)),
                                    replace=False).tolist())
    broken_rows = set(rng.choice(n, size=min(n, BROKEN_QUOTES_PER_FILE), replace=False).tolist()) - multiline_rows
    leak = (rng.random(n) < TEST_LEAK_RATE).tolist() if leak_from else None
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("text,label\n")
        block = []
        for i in range(n):
            text, label = texts[i], labels[i]
            kind = None
            if i in broken_rows:  # no other quote in the line: it stays open until the next quoted field
                line = f'"{text.replace(chr(34), chr(39))} (quote never closed),{label}\n'
                planted["broken_quote"] += 1
            elif i in multiline_rows:
                line = f"{csv_field(text + chr(10) + 'second line of the same ticket')},{label}\n"
                planted["multiline_text"] += 1
            else:
                if leak is not None and leak[i]:
                    j = int(rng.integers(0, len(leak_from)))
                    text, label = leak_from[j], leak_labels[j]
                    planted["leaked_from_train"] += 1
                elif i > 0 and draw[i] < bounds[-1]:
                    kind = kinds[sum(draw[i] >= b for b in bounds)]
                    planted[kind] += 1
                    j = int(rng.integers(0, i))
                    if kind == "duplicate":
                        text, label = texts[j], labels[j]
                    elif kind == "padded_duplicate":
                        text, label = f"  {texts[j]} ", labels[j]
                    elif kind == "conflicting_label":
                        text, label = texts[j], LABELS[(LABELS.index(labels[j]) + 1) % len(LABELS)]
                    elif kind == "empty_text":
                        text = ""
                    elif kind == "blank_text":
                        text = "   "
                    elif kind == "missing_label":
                        label = ""
                    elif kind == "unknown_label":
                        label = "spam"
                if kind == "extra_field":
                    line = f"{csv_field(text)},unquoted extra field,{label}\n"
                elif kind == "blank_line":
                    line = f"\n{csv_field(text)},{label}\n"
                else:
                    line = f"{csv_field(text)},{label}\n"
            block.append(line)
            if len(block) >= 100_000:
                handle.write("".join(block))
                block = []
        handle.write("".join(block))
    return planted


def generate(folder: Path, rows: int, seed: int = 13) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    n_test = max(1, rows // 10)
    n_train = rows - n_test
    started = time.perf_counter()
    train_texts, train_labels = ticket_texts(n_train, rng)
    train = write_file(folder / "train.csv", train_texts, train_labels, rng)
    test_texts, test_labels = ticket_texts(n_test, rng, start_id=7 * n_train + 100)
    test = write_file(folder / "test.csv", test_texts, test_labels, rng, leak_from=train_texts,
                      leak_labels=train_labels)
    sizes = {name: (folder / f"{name}.csv").stat().st_size for name in ("train", "test")}
    return {"rows": rows, "train_rows": n_train, "test_rows": n_test, "seed": seed,
            "bytes": sum(sizes.values()), "files": {name: {"rows": n, "bytes": sizes[name], "planted": planted}
                                                    for name, n, planted in (("train", n_train, train),
                                                                             ("test", n_test, test))},
            "generate_s": round(time.perf_counter() - started, 2)}


# --- the children -----------------------------------------------------------------------------------------------

def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """The process's peak RSS since the last :func:`reset_peak`: VmHWM where /proc has it, else getrusage (which
    cannot be reset and, in a child, starts from the parent's peak at fork time)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Reset the high-water mark (Linux: 5 > /proc/self/clear_refs), so the next stage's own peak can be read."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def key_digests(texts) -> set[bytes]:
    """8-byte digests of the stripped texts (the split key), a chunk at a time: which texts two splits share."""
    import hashlib

    values, out = texts.tolist(), set()
    for start in range(0, len(values), 1 << 20):
        out.update(hashlib.blake2b(str(v).strip().encode(), digest_size=8).digest()
                   for v in values[start:start + (1 << 20)])
    return out


def child_pipeline(folder: Path) -> dict:
    import logging

    logging.getLogger("tuneline").setLevel(logging.WARNING)  # one INFO line per task would be noise here
    from tuneline import runtime  # noqa: F401  (offline defaults first)
    from tuneline.config import build_config
    from tuneline.tasks.load import load_data
    from tuneline.tasks.split import split_data
    from tuneline.tasks.validate import count_rejected, validate_data

    config = build_config({"task": "classification",
                           "data": {"train": str(folder / "train.csv"), "test": str(folder / "test.csv"),
                                    "labels": LABELS}}, [])
    stages: dict[str, dict] = {}
    resettable = RESETTABLE
    setup_peak = peak_mb()  # interpreter, imports, config
    baseline = rss_mb()
    started = time.perf_counter()

    def stage(name, function, *args, **kwargs):
        reset_peak()
        t0 = time.perf_counter()
        result = function(*args, **kwargs)
        stages[name] = {"seconds": round(time.perf_counter() - t0, 3), "rss_after_mb": round(rss_mb(), 1),
                        "peak_mb": round(peak_mb(), 1) if resettable else None}
        return result

    # Every result stays referenced, as in the train flow (loaded → validated → splits).
    loaded = stage("load", load_data.fn, config)
    validated = stage("validate", validate_data.fn, loaded, config, folder / "run")
    splits = stage("split", split_data.fn, validated.frames, validated.labels, config.data.split, kind=config.task)
    total_s = time.perf_counter() - started
    peak = (max([setup_peak, *(stage["peak_mb"] for stage in stages.values())]) if resettable
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    rows_in = sum(source.records for source in loaded.sources)
    rows_out = sum(len(frame) for _, frame in splits.items())
    quarantined = count_rejected(validated.quarantine)
    keys = {name: key_digests(frame["text"]) for name, frame in splits.items()}
    in_two = sum(len(keys[a] & keys[b])
                 for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")))
    return {
        "stages": stages, "total_s": round(total_s, 3),
        "peak_rss_mb": round(peak, 1),
        "peak_source": "VmHWM" if resettable else "getrusage",
        "rss_before_mb": round(baseline, 1),
        "rows_in": rows_in, "rows_out": rows_out, "quarantined": quarantined,
        "loaded": sum(source.loaded for source in loaded.sources),
        "malformed": sum(source.malformed for source in loaded.sources),
        "duplicates": validated.duplicate_records,
        "split_rows": {name: len(frame) for name, frame in splits.items()},
        "quarantine_rules": {str(k): int(v) for k, v in validated.quarantine["rule"].value_counts().items()},
        "texts_in_two_splits": in_two,
        "dtypes": {column: str(dtype) for column, dtype in splits.train.dtypes.items()},
    }


def child_tokenize(rows: int, progress_every_s: float | None = None) -> dict:
    import logging

    import pandas as pd

    from tuneline import runtime  # noqa: F401
    import numpy as np

    from tuneline.config import build_config
    from tuneline.tasks.model import load_tokenizer
    from tuneline.tasks.split import DataSplits
    from tuneline.tasks import tokenize as tokenize_module
    from tuneline.tasks.tokenize import tokenize_splits

    if progress_every_s is not None and hasattr(tokenize_module, "PROGRESS_EVERY_S"):
        tokenize_module.PROGRESS_EVERY_S = progress_every_s  # smoke mode: a few seconds' work still shows lines

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("tuneline")
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    texts, labels = ticket_texts(rows, np.random.default_rng(7))
    frame = pd.DataFrame({"text": texts, "label": labels, "source_file": "bench.csv",
                          "source_row": np.arange(1, rows + 1)})
    del texts, labels
    n_val = n_test = max(1, rows // 20)
    splits = DataSplits(train=frame.iloc[n_val + n_test:].reset_index(drop=True),
                        validation=frame.iloc[:n_val].reset_index(drop=True),
                        test=frame.iloc[n_val:n_val + n_test].reset_index(drop=True), labels=LABELS)
    del frame
    config = build_config({"task": "classification", "data": {"path": "/unused.csv"}}, [])
    tokenizer = load_tokenizer.fn(config.model)
    with tempfile.TemporaryDirectory(prefix="data-path-tok-") as cache:
        stamp = f"bench-{time.time_ns()}"  # a content hash no cache holds: every split is tokenized
        lineage = {name: f"{stamp}-{name}" for name, _ in splits.items()}
        setup_peak = peak_mb()  # imports, the texts, the tokenizer
        reset_peak()
        before = rss_mb()
        started = time.perf_counter()
        tokenized = tokenize_splits.fn(splits, tokenizer, config, lineage, cache_dir=Path(cache))
        seconds = time.perf_counter() - started
        cache_bytes = sum(p.stat().st_size for p in Path(cache).rglob("*") if p.is_file())
        tokens = int(sum(len(ids) for ids in tokenized.datasets["test"]["input_ids"]))
    progress = [line for line in lines if "ETA" in line]
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds, 1),
            "rss_before_mb": round(before, 1), "peak_mb": round(peak_mb(), 1),  # the tokenization's own
            "peak_rss_mb": round(max(setup_peak, peak_mb()) if RESETTABLE else
                                 resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_source": "VmHWM" if RESETTABLE else "getrusage",
            "split_rows": {name: len(ds) for name, ds in tokenized.datasets.items()},
            "truncated": tokenized.truncated, "max_length": config.tokenize.max_length,
            "test_tokens_per_text": round(tokens / len(tokenized.datasets["test"]), 1),
            "cache_mb": round(cache_bytes / 2**20, 1), "progress_lines": len(progress),
            "progress_first": progress[0] if progress else None,
            "progress_last": progress[-1] if progress else None}


def run_child(kind: str, argument: str, timeout: float, *extra: str) -> dict:
    """This script as a fresh child process; its JSON result (or the error and the output's tail)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    try:
        done = subprocess.run([sys.executable, __file__, "--child", kind, argument, "--child-output", str(out),
                               *extra], capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not out.stat().st_size:
            return {"error": f"child {kind} exited {done.returncode}", "output": (done.stdout + done.stderr)[-4000:]}
        return json.loads(out.read_text())
    except subprocess.TimeoutExpired:
        return {"error": f"child {kind} ran past {timeout:.0f} s"}
    finally:
        out.unlink(missing_ok=True)


def machine() -> dict:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # others' work on a shared machine
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        total = None
    return {"cpu_count": os.cpu_count(), "usable_cores": usable, "memory_gb": round(total, 1) if total else None,
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "load_average_1m_before": load}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("pandas", "pyarrow", "numpy", "pandera", "datasets", "tokenizers", "prefect"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def table(result: dict) -> str:
    rows = ["| stage | seconds | RSS after (MB) | stage peak (MB) |", "|---|---:|---:|---:|"]
    pipeline = result["pipeline"] or {"error": "not run"}
    if "error" not in pipeline:
        for name, stage in pipeline["stages"].items():
            peak = stage["peak_mb"] if stage["peak_mb"] is not None else "-"
            rows.append(f"| {name} | {stage['seconds']:.1f} | {stage['rss_after_mb']:.0f} | {peak} |")
        rows.append(f"| **load → validate → split** | **{pipeline['total_s']:.1f}** | | "
                    f"**{pipeline['peak_rss_mb']:.0f}** (process peak) |")
    tokenize = result.get("tokenize")
    if tokenize and "error" not in tokenize:
        rows.append(f"| tokenize {tokenize['rows']:,} texts | {tokenize['seconds']:.1f} | | "
                    f"{tokenize['peak_rss_mb']:.0f} (process peak) |")
    lines = ["\n".join(rows)]
    if "error" not in pipeline:
        lines.append(f"\nrows in {pipeline['rows_in']:,} = out {pipeline['rows_out']:,} + quarantined "
                     f"{pipeline['quarantined']:,} ({pipeline['malformed']:,} unparseable, "
                     f"{pipeline['duplicates']:,} duplicate copies): {'ok' if result['rows_add_up'] else 'MISMATCH'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to generate (default 10,000,000)")
    parser.add_argument("--tokenize-rows", type=int, default=1_000_000,
                        help="short texts to tokenize (default 1,000,000; 0: skip)")
    parser.add_argument("--smoke", action="store_true",
                        help=f"tiny run for the tests: {SMOKE_ROWS:,} rows, {SMOKE_TOKENIZE_ROWS:,} texts")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it (default: a temp folder)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per child (default 1800)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    parser.add_argument("--child", choices=["generate", "pipeline", "tokenize"], help=argparse.SUPPRESS)
    parser.add_argument("child_argument", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--child-output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--progress-every", type=float, help="seconds between tokenization progress lines "
                        "(default: the task's own; smoke mode 0: every batch)")
    args = parser.parse_args(argv)

    if args.child:
        global RESETTABLE
        RESETTABLE = reset_peak()  # the child's own peak from here, not the parent's (inherited at fork)
        if args.child == "generate":
            result = generate(Path(args.child_argument), args.rows, args.seed)
        elif args.child == "pipeline":
            result = child_pipeline(Path(args.child_argument))
        else:
            result = child_tokenize(int(args.child_argument), args.progress_every)
        args.child_output.write_text(json.dumps(result))
        return 0

    if args.smoke:
        args.rows, args.tokenize_rows = SMOKE_ROWS, min(args.tokenize_rows, SMOKE_TOKENIZE_ROWS)
    host = machine()  # before anything runs: the load average then says what else ran
    data = pipeline = tokenize = None
    if args.rows > 0:
        with tempfile.TemporaryDirectory(prefix="data-path-") as scratch:
            folder = args.keep or Path(scratch)
            folder.mkdir(parents=True, exist_ok=True)
            print(f"generating {args.rows:,} rows in {folder} ...", flush=True)
            # in a child too: ten million Python strings would stay in this process's memory beside the measurement
            data = run_child("generate", str(folder), args.timeout, "--rows", str(args.rows), "--seed",
                             str(args.seed))
            if "error" in data:
                print(f"generating failed: {data['error']}\n{data.get('output', '')}", file=sys.stderr)
                return 1
            print(f"  {data['bytes'] / 2**20:.0f} MiB in {data['generate_s']:.0f} s; load → validate → split in a "
                  "child process ...", flush=True)
            pipeline = run_child("pipeline", str(folder), args.timeout)
    if args.tokenize_rows > 0:
        print(f"tokenizing {args.tokenize_rows:,} short texts in a child process ...", flush=True)
        every = args.progress_every if args.progress_every is not None else (0.0 if args.smoke else None)
        tokenize = run_child("tokenize", str(args.tokenize_rows), args.timeout,
                             *(["--progress-every", str(every)] if every is not None else []))
    ran = pipeline is not None and "error" not in pipeline
    adds_up = ran and pipeline["rows_in"] == pipeline["rows_out"] + pipeline["quarantined"]
    result = {
        "benchmark": "data_path",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": host,
        "versions": versions(),
        "mode": "smoke" if args.smoke else "full",
        "data": data,
        "pipeline": pipeline,
        "rows_add_up": adds_up,
        "tokenize": tokenize,
        "targets": {"rows": 10_000_000, "total_s": 120, "peak_rss_mb": 4096},
    }
    if ran:
        result["meets_targets"] = (args.rows >= 10_000_000 and adds_up and pipeline["total_s"] < 120
                                   and pipeline["peak_rss_mb"] < 4096)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    for name, child in (("pipeline", pipeline), ("tokenize", tokenize)):
        if child and "error" in child:
            print(f"{name} child failed: {child['error']}\n{child.get('output', '')}", file=sys.stderr)
    print(f"wrote {args.output}")
    ok = (pipeline is None or adds_up) and not (tokenize and "error" in tokenize)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
