"""Deterministic support-ticket batches in the tiny test BERT's vocabulary, for the retraining-loop tests."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

TOPICS = {
    "billing": "invoice bill charge payment refund subscription fee receipt card money credit promo code discount".split(),
    "shipping": "parcel delivery order package courier tracking shipment address damaged arrived box return express".split(),
    "technical": "app login page website crash crashing error slow load bug freeze screen blank laptop update".split(),
    "account": "password email username account profile settings reset change delete close verify sign membership".split(),
}
FILLER = "the a my your is was not it to for of on in at and or can you please why how when where what help need".split()


def tickets(counts: dict[str, int], seed: int) -> pd.DataFrame:
    """``counts[label]`` distinct texts per label; the same seed gives the same rows, other seeds other rows."""
    rng = random.Random(seed)
    rows, seen = [], set()
    for label, n in counts.items():
        while sum(1 for r in rows if r["label"] == label) < n:
            words = rng.sample(TOPICS[label], 2) + rng.sample(FILLER, 3)
            rng.shuffle(words)
            text = " ".join(words) + f" {rng.choice(TOPICS[label])}"
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "label": label})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def land(folder: Path, name: str, frame: pd.DataFrame, complete: bool = True) -> Path:
    """Write a batch CSV, then (when complete) its ``.done`` marker, as a producer following the rule does."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.to_csv(path, index=False)
    if complete:
        (folder / f"{name}.done").touch()
    return path
