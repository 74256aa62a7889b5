"""The last encoder layer computed for the one position a sequence-classification head reads.

A BERT-family classifier reads a single position of the last layer: the first token ([CLS], or RoBERTa's <s>).
That layer still needs every position's keys and values, since the first token attends to all of them, but its
queries, attention output, feed-forward block and layer norms at every other position feed nothing the loss sees.
Computing them anyway is about a sixth of a 6-layer encoder's work per token, forward and backward. Here the last
layer computes keys and values for every position and everything else for the first one only: the logits and the
gradients are the full model's (equal to float rounding: a unit test compares them) for the same dropout draws, and
the saved weights are the same tensors, so nothing downstream changes. With dropout on (BERT's default), the layer
draws masks for one position where the full one draws them for all, so training takes another random path, as a run
with another seed would: equal in distribution, not bit for bit (QA compared the two). Measured on MiniLM, SST-2 batches of 32, fp32: 1.09x a training pass,
1.03x a whole ``tuneline train`` run and 1.12x one with LoRA (`benchmarks/BENCHMARKS.md`).

Only applied where it is known to be exact: a ``...ForSequenceClassification`` model whose head reads the first
token (BERT's pooler, the RoBERTa and ELECTRA heads) with the BERT layer layout, and eager or SDPA attention. Token
classification (NER) reads every position and is left alone. ``model.head_token_only: false`` turns it off.
"""

from __future__ import annotations

import functools
from typing import Any

from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.bert.modeling_bert import eager_attention_forward

#: model types whose sequence-classification head reads the first position of the last layer and nothing else
FIRST_TOKEN_HEADS = frozenset({"bert", "roberta", "xlm-roberta", "camembert", "electra"})
_ATTENTION = frozenset({"eager", "sdpa"})


def last_layer(model: Any) -> Any | None:
    """The last encoder layer, when the model is a first-token classifier of the BERT layout; else None."""
    config = getattr(model, "config", None)
    if config is None or not type(model).__name__.endswith("ForSequenceClassification"):
        return None
    if config.model_type not in FIRST_TOKEN_HEADS or getattr(config, "is_decoder", False):
        return None
    if getattr(config, "_attn_implementation", None) not in _ATTENTION:
        return None
    layers = getattr(getattr(model.base_model, "encoder", None), "layer", None)
    if not layers:
        return None
    layer = layers[-1]
    attention = getattr(layer, "attention", None)
    self_attention = getattr(attention, "self", None)
    parts = ("query", "key", "value", "attention_head_size", "scaling", "dropout")
    if (self_attention is None or not all(hasattr(self_attention, part) for part in parts)
            or not hasattr(attention, "output") or not hasattr(layer, "feed_forward_chunk")):
        return None
    return layer


def _first_position_forward(self: Any, hidden_states: Any, attention_mask: Any = None, *args: Any,
                            **kwargs: Any) -> Any:
    """BertLayer.forward for the first position only: keys and values from all positions, the rest from one."""
    for unused in ("cache", "past_key_values", "encoder_hidden_states", "encoder_attention_mask", "use_cache",
                   "output_attentions"):
        kwargs.pop(unused, None)
    attention = self.attention.self
    batch, length = hidden_states.shape[:2]
    first = hidden_states[:, :1]
    heads = (-1, attention.attention_head_size)
    query = attention.query(first).view(batch, 1, *heads).transpose(1, 2)
    key = attention.key(hidden_states).view(batch, length, *heads).transpose(1, 2)
    value = attention.value(hidden_states).view(batch, length, *heads).transpose(1, 2)
    if attention_mask is not None and attention_mask.dim() == 4 and attention_mask.shape[-2] > 1:
        attention_mask = attention_mask[:, :, :1, :]
    interface = ALL_ATTENTION_FUNCTIONS.get_interface(attention.config._attn_implementation, eager_attention_forward)
    context, _ = interface(attention, query, key, value, attention_mask,
                           dropout=attention.dropout.p if attention.training else 0.0, scaling=attention.scaling,
                           **kwargs)
    context = context.reshape(batch, 1, -1).contiguous()
    return self.feed_forward_chunk(self.attention.output(context, first))


def compute_head_token_only(model: Any) -> bool:
    """Make ``model``'s last layer compute only the position its head reads; False (unchanged) where not known exact.

    The layer's ``forward`` is replaced on the instance (it pickles, and a deep copy keeps it), so its weights, their names and ``save_pretrained`` stay as
    they were; a model loaded back from the saved folder computes every position again. The last layer then returns
    one position, so the model's ``last_hidden_state`` has length 1: only the logits are meant to be read.
    """
    layer = last_layer(model)
    if layer is None:
        return False
    # a partial of a module-level function, not a bound method: the model still pickles (DDP workers get it so)
    layer.forward = functools.partial(_first_position_forward, layer)
    return True


def computes_head_token_only(model: Any) -> bool:
    """Whether :func:`compute_head_token_only` was applied to ``model`` (or the model a peft wrapper holds)."""
    base = getattr(model, "get_base_model", lambda: model)()
    layer = last_layer(base)
    return layer is not None and "forward" in vars(layer)
