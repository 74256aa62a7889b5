"""Bounded load test of a model endpoint started with ``tuneline serve-model``.

Starts the real command as a subprocess on a free 127.0.0.1 port, waits (bounded) for ``/ping``, sends a few
warm-up requests, then ``--requests`` POSTs to ``/invocations`` from ``--clients`` concurrent clients (threads, one
keep-alive connection each), stops the endpoint and writes latency percentiles, throughput and the error count, with
the machine and the model, to ``benchmarks/results/serve_load.json`` (or ``--output``).

    # a registered model (here the demo's champion, from a folder where `tuneline demo` ran)
    .venv/bin/python benchmarks/serve_load.py --model tuneline-demo-intents --tracking-uri sqlite:///mlflow.db
    # no registry at hand: a tiny random-weight BERT classifier registered in a temporary store
    .venv/bin/python benchmarks/serve_load.py --tiny
    # smoke mode, as the test suite runs it
    .venv/bin/python benchmarks/serve_load.py --tiny --requests 50 --clients 4 --output /tmp/serve_load.json

Request bodies are demo support tickets, ``--texts-per-request`` per request (``{"inputs": [...]}``; sentence-pair
models get ``{"dataframe_split": ...}``). The clients run on the same machine as the server, so on a small machine
they compete with it for cores: the numbers are the whole machine's, as the JSON says. Exit code 1 when any request
failed (the JSON is written all the same).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tuneline import runtime  # noqa: F401  (offline defaults first)
from tuneline.runtime import redact
from tuneline.serving import resolve_served_model, wait_until_serving

RESULTS = Path(__file__).resolve().parent / "results" / "serve_load.json"
TINY_NAME = "serve-load-tiny"
TINY_LABELS = ["billing", "shipping", "technical", "account"]


# --- the model --------------------------------------------------------------------------------------------------

def register_tiny_model(folder: Path) -> str:
    """A 2-layer random-weight BERT with a 4-intent head, registered through tuneline's own register task in a
    SQLite store in ``folder`` and made champion; the store's URI. Not trained: serving cost does not depend on
    the values of the weights, and this needs neither a download nor a Prefect server."""
    import mlflow
    import torch
    import transformers
    from mlflow.tracking import MlflowClient

    from tuneline.tasks.register import register_model
    from tuneline.tracking import RunContext

    torch.manual_seed(0)
    words = sorted({w.strip(".,!?'").lower() for text in demo_texts(300) for w in text.split()} - {""})
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-#$")
    vocab = list(dict.fromkeys(specials + words + chars + [f"##{c}" for c in chars]))
    model_dir = folder / "model"
    tokenizer = transformers.BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                                     num_labels=len(TINY_LABELS), id2label=dict(enumerate(TINY_LABELS)),
                                     label2id={label: i for i, label in enumerate(TINY_LABELS)})
    model = transformers.BertForSequenceClassification(config)
    model.config.tuneline_max_length = 64
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # log_model registers through the global registry URI, which an inherited
    mlflow.set_registry_uri(uri)  # $MLFLOW_REGISTRY_URI would otherwise point elsewhere
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("serve-load", artifact_location=(folder / "artifacts").as_uri())
    run = client.create_run(experiment)
    context = RunContext(run_id=run.info.run_id, experiment_id=experiment, tracking_uri=uri,
                         run_dir=folder / run.info.run_id)
    version = register_model.fn(model_dir, "classification", TINY_NAME, context, {"task": "classification"})
    client.set_registered_model_alias(TINY_NAME, "champion", version.version)
    client.set_terminated(run.info.run_id)
    return uri


def demo_texts(count: int) -> list[str]:
    from tuneline.demo import demo_tickets

    texts = [ticket.text for ticket in demo_tickets()]
    return [texts[i % len(texts)] for i in range(count)]


def request_bodies(task: str, count: int, texts_per_request: int) -> list[bytes]:
    """``count`` JSON bodies of demo tickets, each with ``texts_per_request`` inputs of the model's kind."""
    texts = demo_texts(count * texts_per_request + 1)
    bodies = []
    for i in range(count):
        chunk = texts[i * texts_per_request:(i + 1) * texts_per_request]
        if task == "pair_classification":
            pairs = texts[i * texts_per_request + 1:(i + 1) * texts_per_request + 1]
            body = {"dataframe_split": {"columns": ["text", "text_pair"], "data": [list(p) for p in zip(chunk, pairs)]}}
        else:
            body = {"inputs": chunk}
        bodies.append(json.dumps(body).encode())
    return bodies


# --- the endpoint -----------------------------------------------------------------------------------------------

def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start_endpoint(args: argparse.Namespace, tracking_uri: str, port: int, log_path: Path) -> subprocess.Popen:
    """``tuneline serve-model`` as users run it (this interpreter's tuneline), its output to ``log_path``."""
    which = ["--version", args.version] if args.version else ["--alias", args.alias]
    command = [sys.executable, "-m", "tuneline.cli", "serve-model", args.model, *which, "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(args.workers), "--tracking-uri", tracking_uri]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def stop_endpoint(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # serve-model stops its whole server, then exits
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()  # its server gets SIGTERM from the kernel when it dies (PR_SET_PDEATHSIG)
            process.wait()


# --- the load ---------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    latencies_s: list[float] = field(default_factory=list)
    status_counts: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    first_error: str | None = None


def send_all(port: int, bodies: list[bytes], clients: int, timeout_s: float) -> tuple[Outcome, float]:
    """Every body POSTed once, by ``clients`` threads that take the next body as soon as they are free; the
    outcome and the wall time of the whole load."""
    outcome, lock, pending = Outcome(), threading.Lock(), iter(range(len(bodies)))

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
        while True:
            with lock:
                index = next(pending, None)
            if index is None:
                break
            start, status, error = time.perf_counter(), None, None
            try:
                connection.request("POST", "/invocations", body=bodies[index],
                                   headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
                status = response.status
                if status != 200 or b'"predictions"' not in payload:
                    error = f"HTTP {status}: {payload[:300].decode(errors='replace')}"
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
            elapsed = time.perf_counter() - start
            with lock:
                key = str(status) if status is not None else "no response"
                outcome.status_counts[key] = outcome.status_counts.get(key, 0) + 1
                if error is None:
                    outcome.latencies_s.append(elapsed)
                else:
                    outcome.errors += 1
                    outcome.first_error = outcome.first_error or error
        connection.close()

    threads = [threading.Thread(target=client, name=f"client-{i}") for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), without numpy."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def machine() -> dict:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # others' work on a shared machine
    return {"cpu_count": os.cpu_count(), "usable_cores": usable, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
            "load_average_1m_before": load}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="registered model name")
    source.add_argument("--tiny", action="store_true", help="register a tiny random-weight classifier in a temp store")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--alias", default="champion", help="alias to serve (default champion)")
    which.add_argument("--version", help="version to serve instead of an alias")
    parser.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI or sqlite:///./mlflow.db")
    parser.add_argument("--requests", type=int, default=2000, help="requests to send (default 2000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--texts-per-request", type=int, default=1, help="inputs per request (default 1)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    parser.add_argument("--warmup", type=int, default=16, help="requests sent first and not counted (default 16)")
    parser.add_argument("--start-timeout", type=float, default=180.0, help="seconds to wait for /ping (default 180)")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="seconds per request (default 60)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)

    host = machine()  # before the endpoint starts: the load average then says what else ran
    with tempfile.TemporaryDirectory(prefix="serve-load-") as scratch:
        scratch = Path(scratch)
        if args.tiny:
            args.model, args.alias, args.version = TINY_NAME, "champion", None
            tracking_uri = register_tiny_model(scratch)
        else:
            tracking_uri = runtime.resolve_tracking_uri(args.tracking_uri)
        served = resolve_served_model(args.model, None if args.version else args.alias, args.version, tracking_uri)
        port, log_path = free_port(), scratch / "serve-model.log"
        print(f"load test of {served.name} v{served.version} ({served.task}): {args.requests} requests from "
              f"{args.clients} clients, {args.texts_per_request} input(s) each, on port {port}", flush=True)
        process = start_endpoint(args, tracking_uri, port, log_path)
        try:
            startup_s = wait_until_serving(f"http://127.0.0.1:{port}", args.start_timeout, process)
            warmup, _ = send_all(port, request_bodies(served.task, args.warmup, args.texts_per_request),
                                 args.clients, args.request_timeout)
            outcome, duration_s = send_all(port, request_bodies(served.task, args.requests,
                                                                args.texts_per_request),
                                           args.clients, args.request_timeout)
        except BaseException:
            print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            stop_endpoint(process)
        served_line = next((line for line in log_path.read_text(errors="replace").splitlines()
                            if line.startswith("serving ")), None)

    ms = [1000 * s for s in outcome.latencies_s]
    result = {
        "benchmark": "serve_load",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": served.name, "version": served.version, "task": served.task, "reference": served.reference,
                  "source": "tiny random-weight BERT (2 layers, hidden 32), registered in a temp store" if args.tiny
                  else f"registry {redact(tracking_uri)}", "served_log_line": served_line},
        "machine": host,
        "load": {"requests": args.requests, "clients": args.clients, "texts_per_request": args.texts_per_request,
                 "server_workers": args.workers, "warmup_requests": args.warmup, "client": "threads, http.client "
                 "keep-alive, same machine as the server"},
        "requests": args.requests,
        "errors": outcome.errors,
        "warmup_errors": warmup.errors,
        "status_counts": dict(sorted(outcome.status_counts.items())),
        "first_error": outcome.first_error,
        "latency_ms": {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
                       "mean": sum(ms) / len(ms) if ms else None, "max": max(ms) if ms else None},
        "throughput_rps": args.requests / duration_s if duration_s else None,
        "texts_per_s": args.requests * args.texts_per_request / duration_s if duration_s else None,
        "duration_s": duration_s,
        "startup_s": startup_s,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    latency = result["latency_ms"]
    shown = ", ".join(f"{k} {v:.1f} ms" for k, v in latency.items() if v is not None)
    print(f"{args.requests} requests in {duration_s:.1f} s: {result['throughput_rps']:.1f} req/s, {outcome.errors} "
          f"errors; latency {shown}; endpoint ready after {startup_s:.1f} s\nwrote {args.output}")
    if outcome.errors:
        print(f"first error: {outcome.first_error}", file=sys.stderr)
    return 1 if outcome.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
