"""Small data builders shared by tests (in memory, or a small CSV file where a test reads one)."""

from __future__ import annotations

import signal
from pathlib import Path

import pandas as pd

from tuneline.tasks.split import DataSplits

WORDS = {"billing": ["invoice", "bill", "refund", "charge"], "shipping": ["parcel", "delivery", "courier", "box"],
         "account": ["password", "email", "username", "profile"]}


def tiny_frame(rows_per_label: int, offset: int = 0) -> pd.DataFrame:
    records = []
    for label, words in WORDS.items():
        for i in range(offset, offset + rows_per_label):
            records.append({"text": f"my {words[i % len(words)]} {i} please help", "label": label,
                            "source_file": "mem", "source_row": len(records) + 1})
    return pd.DataFrame(records)


def tiny_splits() -> DataSplits:
    return DataSplits(train=tiny_frame(16), validation=tiny_frame(4, offset=100), test=tiny_frame(4, offset=200),
                      labels=sorted(WORDS))


def write_rows(path: Path, rows: list[tuple[object, ...]], header: tuple[str, ...] = ("text", "label")) -> Path:
    """A UTF-8 CSV of ``rows`` under ``header`` (written by the csv module: quoting as any spreadsheet does)."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run_config(task: str = "classification", *overrides: str, **data):
    """A validated run config of ``task`` with the given ``data`` keys (paths as given), plus dotted overrides."""
    from tuneline.config import build_config

    return build_config({"task": task, "data": data}, list(overrides))


def tiny_training(config, folder: Path):
    """The tiny splits tokenized and a model built for them, as the training flow prepares them before training:
    ``(splits, tokenizer, tokenized, model)``."""
    from tuneline.tasks.model import build_model, load_tokenizer
    from tuneline.tasks.tokenize import tokenize_splits

    splits = tiny_splits()
    tokenizer = load_tokenizer(config.model)
    tokenized = tokenize_splits.fn(splits, tokenizer, config, {n: n + "-hash" for n, _ in splits.items()},
                                   cache_dir=folder / "cache")
    model = build_model.fn(config.model, "classification", splits.labels).model
    return splits, tokenizer, tokenized, model


def default_ctrl_c() -> None:
    """``preexec_fn`` for a child that a test stops with SIGINT: a shell running the suite in the background (``cmd
    &``) starts it with SIGINT ignored, children inherit that, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def store_client(uri: str):  # noqa: ANN201 - an MlflowClient
    """A client of the MLflow store at ``uri``; a new SQLite file starts as a copy of MLflow's empty schema, as the
    commands make theirs (tuneline/store_template.py), instead of MLflow's ~50 migrations (1-4 s of CPU per store,
    paid by every test that built its own store)."""
    from mlflow.tracking import MlflowClient

    from tuneline.store_template import seed_new_store

    seed_new_store(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)
