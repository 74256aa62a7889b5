"""Tokenize: ``datasets`` + the model's fast tokenizer, batched, truncated, never padded here.

Padding happens per batch in the data collator (dynamic padding), which on short texts is several times faster than
padding everything to ``max_length``. The tokenized splits are ``datasets`` cache files named by a key made of the
split's content hash, the tokenizer's own serialisation and every setting that changes the output, so re-running on
the same data loads them instead of tokenizing again, and any change to data, tokenizer or settings misses the cache.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict
from datasets.table import InMemoryTable

from tuneline.common import pipeline_task, sha256_text, task_logger
from tuneline.config import TunelineConfig
from tuneline.kinds import kind_of
from tuneline.runtime import check_max_length, position_limit
from tuneline.tasks.split import DataSplits

#: Bump when an encoder's output changes for the same input, to invalidate old cache files.
ENCODER_VERSION = "2"
#: Seconds between two progress lines (rows done, elapsed, ETA) while a split is tokenized; a split that takes less
#: logs none.
PROGRESS_EVERY_S = 10.0


class _Progress:
    """The encoder, counting the rows it has encoded and logging, at most every :data:`PROGRESS_EVERY_S` seconds,
    how far the split is and when it will be done (a million texts take minutes on a small machine)."""

    def __init__(self, encode: Any, log: Any, name: str, total: int) -> None:
        self.encode, self.log, self.name, self.total = encode, log, name, total
        self.done = 0
        self.started = self.last = time.monotonic()

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        out = self.encode(batch)
        self.done = min(self.total, self.done + len(next(iter(batch.values()), [])))
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S and self.done < self.total:
            self.last = now
            elapsed = now - self.started
            eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
            self.log.info("tokenize %s: %s of %s rows (%d%%), %.0f s, ETA %.0f s", self.name, f"{self.done:,}",
                          f"{self.total:,}", 100 * self.done // self.total, elapsed, eta)
        return out


#: above this share of a split's rows cut at max_length, the run warns (a few long outliers are normal)
TRUNCATION_WARN_SHARE = 0.05
#: above this share of unknown tokens in train, the run warns (a few rare symbols are normal)
UNKNOWN_WARN_SHARE = 0.05


@dataclass
class TokenizedData:
    datasets: DatasetDict
    cache_keys: dict[str, str]
    cache_hits: dict[str, bool]
    truncated: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    #: what the encoder gives the model beyond the tokenizer's inputs (``kind.model_inputs``): build_model adapts
    #: the model to it, so the model takes what the data was encoded with
    model_inputs: dict[str, Any] = field(default_factory=dict)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of the fast tokenizer's full serialisation (vocab, normaliser, special tokens).

    The backend's ``truncation`` and ``padding`` entries are left out: they are per-call state that every
    ``tokenizer(..., truncation=True, max_length=n)`` call overwrites, so including them would give the same tokenizer
    a different key after each call (and miss the cache on every re-tokenization in one process). The settings that
    do change the output (max_length, ...) are part of the cache key already.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TypeError("tuneline needs a fast (Rust) tokenizer: the model's tokenizer has no backend_tokenizer")
    state = json.loads(backend.to_str())
    state.pop("truncation", None)
    state.pop("padding", None)
    return sha256_text(json.dumps(state, sort_keys=True),
                       json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str))


@pipeline_task(name="tokenize")
def tokenize_splits(splits: DataSplits, tokenizer: Any, config: TunelineConfig, lineage: dict[str, Any],
                    cache_dir: Path | None = None) -> TokenizedData:
    """Tokenize each split through a content-keyed ``datasets`` cache file; report truncation per split.

    The kind supplies the encoder (``labels`` + a ``truncated`` count per row); ``lineage`` gives each split's
    content hash (a :class:`~tuneline.tasks.lineage.SplitLineage` or the hash itself); the cache lives under
    ``<work_dir>/cache/tokenized`` unless ``cache_dir`` says otherwise.
    """
    content_hashes = {name: getattr(item, "content_hash", item) for name, item in lineage.items()}
    log = task_logger()
    kind = kind_of(config)
    max_length = config.tokenize.max_length
    limit = position_limit(getattr(tokenizer, "model_max_length", None))
    check_max_length(config.model.base, max_length, limit)
    label2id = {label: i for i, label in enumerate(splits.labels)}
    model_inputs = kind.model_inputs(config, tokenizer)  # resolved once: the encoder and build_model share it
    encode, columns = kind.encoder(tokenizer, max_length, label2id, config, model_inputs)
    settings = json.dumps({"task": kind.name, "max_length": max_length, "label2id": label2id,
                           **kind.encoder_settings(config), "encoder": ENCODER_VERSION}, sort_keys=True)
    tok_hash = tokenizer_fingerprint(tokenizer)
    cache_dir = Path(cache_dir) if cache_dir is not None else Path(config.work_dir) / "cache" / "tokenized"
    cache_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Dataset] = {}
    keys: dict[str, str] = {}
    hits: dict[str, bool] = {}
    truncated: dict[str, int] = {}
    rows: dict[str, int] = {}
    for name, frame in splits.items():
        key = sha256_text(content_hashes[name], tok_hash, settings)[:32]
        cache_file = cache_dir / f"{name}-{key}.arrow"
        hits[name] = cache_file.is_file()
        started = time.monotonic()
        # The split's content hash is its fingerprint: datasets would otherwise hash the whole table again.
        raw = Dataset(InMemoryTable.from_pandas(frame[columns].reset_index(drop=True), preserve_index=False),
                      fingerprint=f"raw-{key}")
        encoded = raw.map(_Progress(encode, log, name, len(raw)), batched=True, batch_size=1000,
                          remove_columns=raw.column_names, cache_file_name=str(cache_file), load_from_cache_file=True,
                          new_fingerprint=key, desc=f"tokenize {name}")
        # rows cut (the NER encoder gives the words cut per sentence); for a kind whose evaluation and serving do not
        # cut (NER), only train's rows lose anything
        truncated[name] = int(np.count_nonzero(encoded["truncated"])) if name == "train" or kind.serving_truncates \
            else 0
        augmentation = kind.train_augmentation(config, model_inputs) if name == "train" else None
        if augmentation is not None:
            augment, augment_settings = augmentation
            augmented_key = sha256_text(key, json.dumps(augment_settings, sort_keys=True))[:32]
            encoded = encoded.map(augment, batched=True, batch_size=1000, with_indices=True,
                                  cache_file_name=str(cache_dir / f"{name}-{augmented_key}.arrow"),
                                  load_from_cache_file=True, new_fingerprint=augmented_key, desc=f"augment {name}")
            log.info("train augmentation: %s", ", ".join(f"{k}={v}" for k, v in augment_settings.items()))
        result[name] = encoded.remove_columns("truncated")
        keys[name] = key
        rows[name] = len(encoded)
        log.info("tokenized %s: %d rows, %d truncated at %d tokens%s", name, len(encoded), truncated[name],
                 max_length, " (from cache)" if hits[name] else f" in {time.monotonic() - started:.0f} s")
        if len(encoded) and truncated[name] / len(encoded) > TRUNCATION_WARN_SHARE:
            higher = min(2 * max_length, limit or 512)
            log.warning("%d of %d %s rows (%.0f%%) are longer than tokenize.max_length=%d tokens and are cut: %s",
                        truncated[name], len(encoded), name, 100 * truncated[name] / len(encoded), max_length,
                        f"raise it (--set tokenize.max_length={higher}) if the cut part carries the label"
                        if higher > max_length else "that is all the model reads; shorten or split the texts if the "
                        "cut part carries the label")
    share = unknown_token_share(result["train"], tokenizer) if "train" in result else 0.0
    if share > UNKNOWN_WARN_SHARE:
        log.warning("%.0f%% of the train tokens are unknown to the tokenizer of model.base (%s): the model sees them "
                    "all as one token; a base model whose vocabulary covers this text's language or characters would "
                    "learn more", 100 * share, tokenizer.unk_token)
    return TokenizedData(datasets=DatasetDict(result), cache_keys=keys, cache_hits=hits, truncated=truncated,
                         rows=rows, model_inputs=model_inputs)


def unknown_token_share(dataset: Dataset, tokenizer: Any, sample: int = 2000) -> float:
    """The share of the unknown token among the (non-special) tokens of the first ``sample`` rows: a vocabulary that
    does not cover the text's script (an English WordPiece vocabulary on Thai, emoji, ...) maps most of it to one
    token, and the model learns little, with no error anywhere."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None or not len(dataset):
        return 0.0
    special = set(getattr(tokenizer, "all_special_ids", [])) - {unk}
    ids = [i for row in dataset.select(range(min(sample, len(dataset))))["input_ids"] for i in row if i not in special]
    return sum(i == unk for i in ids) / len(ids) if ids else 0.0


def truncation_line(tokenized: TokenizedData, max_length: int) -> str:
    """The summary's line on cut texts (empty when none was cut): per split, how many rows lost their end."""
    parts = [f"{name} {cut:,} of {tokenized.rows.get(name, 0):,}" for name, cut in tokenized.truncated.items() if cut]
    return f"cut at tokenize.max_length={max_length}: " + ", ".join(parts) if parts else ""
