"""frozen_heap: full collections inside skip what was alive on entry, and everything is collectable again after."""

from __future__ import annotations

import gc
import weakref

from tuneline.heap import frozen_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector can free it


def test_garbage_from_before_is_left_alone_inside_and_collected_after():
    made_before = Node()
    alive = weakref.ref(made_before)
    with frozen_heap():
        assert gc.get_freeze_count() > 0
        del made_before
        gc.collect()
        assert alive() is not None  # frozen: the full collection did not walk it
        made_inside = weakref.ref(Node())
        gc.collect()
        assert made_inside() is None  # what training makes is still collected
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None  # thawed: the garbage from before is freed after all


def test_a_heap_the_caller_froze_stays_frozen():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with frozen_heap():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
