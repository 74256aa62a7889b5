"""The demo: a customer-support intent dataset that tuneline generates itself, and the config that trains on it.

The data is generated deterministically (fixed seed) from hand-written templates: 4 intents, 960 clean rows, plus a
handful of deliberately broken rows (empty text, missing or unknown label, conflicting and exact duplicates, a
malformed CSV record) so that the quarantine shows up in the demo run. Nothing is downloaded.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

INTENTS: dict[str, dict[str, list[str]]] = {
    "billing": {
        "subject": ["my invoice", "the last bill", "my credit card charge", "the monthly payment", "my refund",
                    "the subscription fee", "a double charge", "the VAT on my receipt", "my payment method",
                    "the promo code discount"],
        "frame": ["I was charged twice for {s}, can you fix it?", "Why is {s} higher than usual?",
                  "Please send me a copy of {s}.", "I need help understanding {s}.",
                  "There is a mistake on {s}, I want my money back.", "How do I update {s}?",
                  "Can you explain {s} to me?", "When will {s} be processed?"],
    },
    "shipping": {
        "subject": ["my parcel", "the delivery", "my order", "the package", "the courier", "the tracking number",
                    "the shipment to Berlin", "my express delivery", "the return label", "the box"],
        "frame": ["Where is {s}? It has not arrived yet.", "{S} was supposed to arrive on Monday.",
                  "Can I change the address for {s}?", "{S} arrived damaged.", "How long does {s} usually take?",
                  "The status of {s} has not changed for a week.", "Can you speed up {s}?",
                  "I never received {s}."],
    },
    "technical": {
        "subject": ["the app", "the login page", "the website", "the mobile app on Android", "the sync feature",
                    "the export button", "the desktop client", "the search function", "the update", "the dashboard"],
        "frame": ["{S} keeps crashing when I open it.", "{S} shows an error code 500.",
                  "{S} is extremely slow since yesterday.", "I cannot get {s} to load at all.",
                  "After the last release {s} freezes.", "{S} does not work on my laptop.",
                  "Is there a bug in {s}? Nothing happens when I click.", "{S} gives me a blank screen."],
    },
    "account": {
        "subject": ["my password", "my email address", "my username", "my account", "two-factor authentication",
                    "my profile", "my account settings", "the account of my team", "my phone number",
                    "my membership"],
        "frame": ["How do I reset {s}?", "I want to change {s}.", "I forgot {s} and cannot sign in.",
                  "Please delete {s} permanently.", "Can I transfer {s} to a colleague?",
                  "Someone else may have access to {s}.", "How can I verify {s}?", "I would like to close {s}."],
    },
}
OPENERS = ["", "", "", "Hi, ", "Hello, ", "Hey there. ", "Good morning, ", "Sorry to bother you, "]
CLOSERS = ["", "", "", " Thanks!", " Thank you.", " Regards, Sam", " Please help.", " Cheers."]
ROWS_PER_INTENT = 240


def _sentence(rng: random.Random, intent: str) -> str:
    spec = INTENTS[intent]
    subject = rng.choice(spec["subject"])
    body = rng.choice(spec["frame"]).format(s=subject, S=subject[:1].upper() + subject[1:])
    return f"{rng.choice(OPENERS)}{body}{rng.choice(CLOSERS)}".strip()


def demo_rows(seed: int = 7) -> list[dict[str, Any]]:
    """The clean rows (unique texts) followed by the deliberately broken ones."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for intent in INTENTS:
        made = 0
        while made < ROWS_PER_INTENT:
            text = _sentence(rng, intent)
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "intent": intent})
                made += 1
    rng.shuffle(rows)
    conflicting = rows[0]["text"]
    other = next(i for i in INTENTS if i != rows[0]["intent"])
    rows += [
        {"text": "", "intent": "billing"},                       # empty text
        {"text": "   ", "intent": "shipping"},                   # whitespace only
        {"text": "My order is late again.", "intent": None},     # missing label
        {"text": "Do you sell gift cards?", "intent": "sales"},   # label outside the label set
        {"text": conflicting, "intent": other},                  # same text, different label
        dict(rows[1]),                                           # exact duplicate
        dict(rows[2]),                                           # exact duplicate
    ]
    return rows


def write_demo_csv(path: Path, seed: int = 7) -> Path:
    """Write the demo CSV (plus one malformed record with an extra field) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        for row in demo_rows(seed):
            writer.writerow([row["text"], row["intent"] if row["intent"] is not None else ""])
        writer.writerow(["The app crashed", "technical", "unexpected third field"])
    return path


def demo_config_dict(data_file: Path) -> dict[str, Any]:
    """The demo's config: MiniLM, full fine-tuning, 2 epochs, label set given explicitly (so 'sales' is rejected)."""
    return {
        "task": "classification",
        "data": {"path": str(data_file), "text_column": "text", "label_column": "intent",
                 "labels": list(INTENTS), "max_bad_fraction": 0.05},
        "model": {"base": "minilm", "strategy": "full"},
        "tokenize": {"max_length": 64},
        "train": {"epochs": 2, "batch_size": 16, "learning_rate": 5e-5, "logging_steps": 10},
        "tracking": {"experiment": "tuneline-demo", "registered_model": "tuneline-demo-intents"},
        "gate": {"min_metric": 0.8, "tolerance": 0.01},
    }
