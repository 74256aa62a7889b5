"""Run a module as ``python -m`` would, and stop it when the process that started it dies.

Prefect's ephemeral API server is a uvicorn subprocess that its parent stops at exit. A parent killed outright
(``kill -9``, the out-of-memory killer, a CI job cancelled) cannot stop it, and the server then ran on for ever,
holding its port and its SQLite database. ``PR_SET_PDEATHSIG`` is no help: it fires when the *thread* that started
the child ends, and tuneline starts the server from a short-lived background thread (``tuneline.early_api``).
So the server runs under this wrapper, which notices that it has been re-parented (``os.getppid()`` changes when the
parent dies) and stops it the way a terminal would: SIGTERM, which uvicorn handles by shutting down cleanly, then an
exit after a grace period. DDP training's ``torchrun`` runs under it too (it stops its workers on SIGTERM): a
``kill -9`` of ``tuneline train`` left it and its workers training on.

Usage: ``python -m tuneline.parent_watch PARENT_PID MODULE [ARGS...]``.
"""

from __future__ import annotations

import os
import re
import runpy
import signal
import sys
import threading
import time

POLL_S = 0.5
GRACE_S = 5.0


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_S)
    os._exit(1)  # still up after SIGTERM: nothing is left that could stop it


def _import_app(module: str, args: list[str]) -> None:
    """Import the ASGI app's module that uvicorn is about to import (``MODULE:ATTR`` among its arguments), with the
    collector off and the result frozen (:func:`tuneline.heap.import_without_collections`): Prefect's server made
    six full collections while it imported, 1.8 s of its start. uvicorn then finds the module imported. Anything
    that fails here is left for uvicorn to report."""
    if module != "uvicorn":
        return
    app = next((a for a in args if re.fullmatch(r"[\w.]+:[\w.]+", a)), None)
    if app is None:
        return
    from tuneline.heap import import_without_collections

    try:
        import_without_collections(app.split(":", 1)[0])
    except Exception:  # noqa: BLE001 - uvicorn imports it again and reports the error itself
        pass


def main(argv: list[str]) -> None:
    if len(argv) < 2 or not argv[0].isdigit():
        raise SystemExit("usage: python -m tuneline.parent_watch PARENT_PID MODULE [ARGS...]")
    parent_pid, module = int(argv[0]), argv[1]
    if os.getppid() != parent_pid:  # the parent died before this process got this far
        raise SystemExit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="tuneline-parent-watch", daemon=True).start()
    _import_app(module, argv[2:])
    sys.argv = [module, *argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
