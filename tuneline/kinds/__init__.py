"""The registry of task kinds: the single source of ``task:`` values.

A kind is one module (config keys, reader, contract, encoder, head, metrics, baselines, report, pyfunc file); adding
one is one import and one entry below. :func:`tuneline.kinds.base.check_kind` rejects, at import, a kind that lacks
a part, naming the part.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Field, TypeAdapter

from tuneline.kinds.base import Evaluation, TaskKind, check_kind
from tuneline.kinds.classification import ClassificationKind
from tuneline.kinds.multilabel_classification import MultilabelKind
from tuneline.kinds.pair_classification import PairClassificationKind
from tuneline.kinds.token_classification import TokenClassificationKind

if TYPE_CHECKING:
    from tuneline.config import TunelineConfig

KINDS: dict[str, TaskKind] = {kind.name: check_kind(kind) for kind in (
    ClassificationKind(),
    TokenClassificationKind(),
    MultilabelKind(),
    PairClassificationKind(),
)}


def kind_of(config: "TunelineConfig | str") -> TaskKind:
    """The kind of a config (or a ``task`` name)."""
    task = config if isinstance(config, str) else config.task
    try:
        return KINDS[task]
    except KeyError:
        raise ValueError(f"task {task!r} is not a task kind; choose one of {', '.join(KINDS)}") from None


#: Any kind's config, picked by ``task`` (a pydantic discriminated union): the type of the flow's ``config``
#: parameter, so a deployment's stored parameters validate back into the right kind's config.
AnyConfig = Annotated[Union[tuple(kind.config_model for kind in KINDS.values())], Field(discriminator="task")]


@cache
def config_adapter() -> TypeAdapter:
    """Validates a raw config into the config model of its ``task``."""
    return TypeAdapter(AnyConfig)


__all__ = ["KINDS", "AnyConfig", "Evaluation", "TaskKind", "config_adapter", "kind_of"]
