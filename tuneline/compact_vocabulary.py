"""Train only the rows of the word-embedding table that the training rows use, then put the table back whole.

MiniLM's word-embedding table holds 30,522 rows x 384 (11.7 M of its 22.7 M weights), and a full fine-tune pays for
all of them at every step: the backward pass builds a dense gradient of the whole table, clipping takes its norm,
AdamW reads and writes it with two state tensors. A training set touches a fraction of the rows (a 4,000-row SST-2
sample 6,613, all of SST-2 11,573), and a row that no training batch holds gets a zero gradient at every step, so
AdamW changes it only by its decoupled weight decay (its moments stay zero, so its Adam step is exactly zero).

Here the model trains with a compact table: the rows the training data uses, plus one *sentinel* row of ones that no
token id reaches. After training the full table comes back with the trained rows in their places and every other row
multiplied by the sentinel: the optimizer decayed the sentinel exactly as it decayed every unused row, whatever the
learning-rate schedule, weight decay or skipped steps were (the decay of an unused row is linear in its value, for
AdamW's decoupled decay and for SGD's, momentum included). Logits, gradient norms and the saved model equal the full
table's to float rounding (``tests/test_compact_vocabulary.py`` trains both and compares every weight).

Validation rows may hold tokens the training rows do not: during evaluation those positions read the base table
(scaled by the sentinel, as their rows in a full table would be). A *training* batch with such a token is a bug in
how the compact table was built and fails loudly instead of training a wrong row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

logger = logging.getLogger(__name__)


class CompactWordEmbedding(nn.Embedding):
    """Stands in for a model's ``nn.Embedding`` of words while it trains (see the module docstring).

    ``lookup`` maps a full-table id to its compact row (persistent, so a checkpoint says which rows it holds);
    ``base`` is the full table as training found it (not saved: the model's own folder has it); ``weight``'s last row
    is the sentinel. An ``nn.Embedding`` to code that asks (the Trainer counts the model's non-embedding weights for
    its ``total_flos``), with its own forward; ``nn.Embedding.__init__`` is skipped, as it would allocate a table.
    """

    def __init__(self, full: nn.Embedding, kept_ids: torch.Tensor) -> None:
        nn.Module.__init__(self)
        self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse = None, 2.0, False, False
        kept = torch.unique(kept_ids.to(torch.long))
        if full.padding_idx is not None and not bool((kept == full.padding_idx).any()):
            kept = torch.unique(torch.cat([kept, torch.tensor([full.padding_idx])]))
        self.num_embeddings, self.embedding_dim = full.num_embeddings, full.embedding_dim
        self.full_padding_idx = full.padding_idx
        weight = full.weight.detach()
        lookup = torch.full((full.num_embeddings,), len(kept) + 1, dtype=torch.long, device=weight.device)
        lookup[kept.to(weight.device)] = torch.arange(len(kept), device=weight.device)
        self.register_buffer("lookup", lookup)
        # the table itself, not a copy: it left the model, and the optimizer (built after the swap) never sees it
        self.register_buffer("base", weight, persistent=False)
        sentinel = torch.ones(1, full.embedding_dim, dtype=weight.dtype, device=weight.device)
        self.weight = nn.Parameter(torch.cat([weight[kept.to(weight.device)], sentinel]),
                                   requires_grad=full.weight.requires_grad)
        self.padding_idx = None if full.padding_idx is None else int(lookup[full.padding_idx])
        self.train(full.training)

    @property
    def kept_rows(self) -> int:
        return self.weight.shape[0] - 1

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        rows = self.lookup[input_ids]
        outside = rows > self.kept_rows
        if self.training:
            # checked where it costs nothing (a GPU would wait for it at every step); an id outside the table is an
            # index past its end there, which fails too, in CUDA's words
            if rows.device.type == "cpu" and bool(outside.any()):
                missing = sorted(set(input_ids[outside].tolist()))[:10]
                raise RuntimeError(f"a training batch holds token ids {missing} that the compact word-embedding table "
                                   "was not built with (train.compact_vocabulary builds it from every training row); "
                                   "set train.compact_vocabulary=false and report this")
            return F.embedding(rows, self.weight, self.padding_idx)
        embedded = F.embedding(rows.clamp(max=self.kept_rows - 1), self.weight, self.padding_idx)
        if bool(outside.any()):
            scaled = F.embedding(input_ids, self.base) * self.weight[-1]
            embedded = torch.where(outside.unsqueeze(-1), scaled, embedded)
        return embedded

    def full_embedding(self) -> nn.Embedding:
        """The whole table: trained rows in their places, every other row decayed as the sentinel was."""
        with torch.no_grad():
            table = self.base * self.weight[-1].to(self.base.dtype)
            kept = (self.lookup <= self.kept_rows - 1).nonzero().squeeze(1)
            table[kept] = self.weight[self.lookup[kept]].to(table.dtype)
        restored = nn.Embedding(self.num_embeddings, self.embedding_dim, padding_idx=self.full_padding_idx,
                                device=table.device, dtype=table.dtype)
        restored.weight = nn.Parameter(table, requires_grad=self.weight.requires_grad)
        return restored.train(self.training)


def _input_embeddings(model: Any) -> nn.Module | None:
    getter = getattr(model, "get_input_embeddings", None)
    return getter() if callable(getter) else None


def why_not_compact(model: Any) -> str | None:
    """Why the model's word embeddings cannot train compactly, or None when they can."""
    embedding = _input_embeddings(model)
    if type(embedding) is not nn.Embedding:  # a compact table (an nn.Embedding too) is not compacted again
        return "the model's input embeddings are not a plain nn.Embedding"
    if not embedding.weight.requires_grad:
        return "the word embeddings do not train"
    if embedding.max_norm is not None or embedding.scale_grad_by_freq or embedding.sparse:
        return "the word embeddings use max_norm, scale_grad_by_freq or sparse gradients"
    output = getattr(model, "get_output_embeddings", lambda: None)()
    if output is not None and getattr(output, "weight", None) is embedding.weight:
        return "the word embeddings are tied to the output layer"
    return None


def token_ids(datasets: Iterable[Any], column: str = "input_ids") -> torch.Tensor:
    """Every distinct token id in the datasets' ``input_ids`` column (Hugging Face datasets), read from their Arrow
    tables without a Python object per token (1,000,000 rows of NER in a second). A dataset that is a selection of
    its table yields the ids of the whole table: a superset, which is safe."""
    import numpy as np
    import pyarrow.compute as pc

    seen = [np.asarray(pc.unique(pc.list_flatten(dataset.data.column(column))).to_numpy(zero_copy_only=False))
            for dataset in datasets]
    ids = np.unique(np.concatenate(seen)) if seen else np.zeros(0, dtype=np.int64)
    return torch.as_tensor(ids.astype(np.int64))


def compact_word_embeddings(model: Any, kept_ids: torch.Tensor) -> CompactWordEmbedding:
    """Swap the model's word embeddings for a compact table of ``kept_ids`` (and the padding row); returns it."""
    reason = why_not_compact(model)
    if reason:
        raise ValueError(f"cannot train a compact vocabulary: {reason}")
    compact = CompactWordEmbedding(_input_embeddings(model), kept_ids)
    model.set_input_embeddings(compact)
    return compact


def restore_word_embeddings(model: Any) -> bool:
    """Put the full table back where :func:`compact_word_embeddings` took it out; False when nothing was swapped."""
    compact = _input_embeddings(model)
    if not isinstance(compact, CompactWordEmbedding):
        return False
    model.set_input_embeddings(compact.full_embedding())
    return True


@contextmanager
def compact_while_training(model: Any, train_dataset: Any, enabled: bool = True) -> Iterator[CompactWordEmbedding | None]:
    """The model holds a compact word-embedding table of ``train_dataset``'s token ids inside the block, and its
    full table again after it (also when training fails or is interrupted). Yields the compact table, or None where
    the model trains its embeddings some other way (LoRA, frozen embeddings: nothing to save) or ``enabled`` is off."""
    reason = ("train.compact_vocabulary is false" if not enabled
              else "the training rows have no input_ids" if "input_ids" not in train_dataset.column_names
              else why_not_compact(model))
    if reason:
        logger.debug("training the whole word-embedding table: %s", reason)
        yield None
        return
    compact = compact_word_embeddings(model, token_ids([train_dataset]))
    from tuneline.common import task_logger

    task_logger().info("word embeddings: training the %s of %s rows the training rows use (train.compact_vocabulary; "
                       "the others come back decayed as the optimizer would have left them)",
                       f"{compact.kept_rows:,}", f"{compact.num_embeddings:,}")
    try:
        yield compact
    finally:
        restore_word_embeddings(model)
