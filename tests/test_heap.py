"""tuneline.heap: full collections skip what was alive before a flow or a training, and a command's imports run with
the collector off and are frozen, but only in a process that imports them for the first time."""

from __future__ import annotations

import gc
import sys
import weakref

import pytest

from tuneline.heap import frozen_heap, import_without_collections


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector can free it


@pytest.fixture
def thawed():
    """These tests need the heap as a process that froze nothing has it."""
    assert gc.get_freeze_count() == 0, "something left this process's heap frozen"
    yield
    gc.unfreeze()
    gc.enable()


def test_garbage_from_before_is_left_alone_inside_and_collected_after(thawed):
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


def test_a_heap_the_caller_froze_stays_frozen(thawed):
    kept = Node()
    alive = weakref.ref(kept)
    gc.freeze()
    del kept
    with frozen_heap():
        pass
    gc.collect()
    assert alive() is not None  # still frozen: frozen_heap did not thaw the caller's heap on its way out


def test_a_first_import_runs_without_collections_and_is_frozen(thawed, tmp_path, monkeypatch):
    (tmp_path / "tuneline_heap_probe.py").write_text(
        "import gc\nCOLLECTOR_ON_WHILE_IMPORTING = gc.isenabled()\nTABLE = [[i] for i in range(50_000)]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = import_without_collections("tuneline_heap_probe")
    try:
        assert module.COLLECTOR_ON_WHILE_IMPORTING is False
        assert gc.isenabled() and gc.get_freeze_count() >= 50_000
    finally:
        sys.modules.pop("tuneline_heap_probe", None)


def test_a_module_already_imported_leaves_the_heap_alone(thawed):
    """``tuneline.cli.main`` called in a process that has the flow imported (the tests) must not freeze it."""
    import tuneline.flows.train

    assert import_without_collections("tuneline.flows.train") is tuneline.flows.train
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_parent_watch_imports_uvicorns_app_module_that_way_first(thawed, tmp_path, monkeypatch):
    from tuneline.parent_watch import _import_app

    (tmp_path / "tuneline_heap_app.py").write_text("import gc\nON = gc.isenabled()\ndef create_app(): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        _import_app("http.server", ["tuneline_heap_app:create_app"])  # not uvicorn: nothing imported
        assert "tuneline_heap_app" not in sys.modules
        _import_app("uvicorn", ["--app-dir", str(tmp_path), "--factory", "tuneline_heap_app:create_app", "--port",
                                "1"])
        assert sys.modules["tuneline_heap_app"].ON is False and gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        sys.modules.pop("tuneline_heap_app", None)
