"""Start Prefect's temporary API while the command is still importing its flow.

Without ``PREFECT_API_URL`` a flow run starts Prefect's ephemeral API server (a uvicorn subprocess) when it creates
its first client, after the flow's imports (torch, transformers, MLflow, Prefect: seconds). The two do not depend on
each other, so ``tuneline train`` starts the server first, in a background thread that only waits on the
subprocess, imports meanwhile, and joins before the flow starts: the server comes up on the second core while the
first imports. Prefect keeps one ephemeral server per process (``SubprocessASGIServer`` is a per-port singleton), so
the flow's client finds this one running and does not start another.
"""

from __future__ import annotations

import os
import threading
from typing import Callable


def needs_ephemeral_api() -> bool:
    """Whether a flow run in this process would start Prefect's ephemeral API (no API URL configured)."""
    if os.environ.get("PREFECT_API_URL"):
        return False
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    return not PREFECT_API_URL.value() and bool(PREFECT_SERVER_EPHEMERAL_ENABLED.value())


def start_ephemeral_api_early() -> Callable[[], None]:
    """Start the ephemeral API in the background when this process will need one; returns ``wait()``, to call before
    the flow runs (a server still starting would answer the flow's first request with a refused connection).

    A failure here is not reported: the flow's own client then starts the server as usual and reports its error.
    """
    if not needs_ephemeral_api():
        return lambda: None

    def start() -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer

            SubprocessASGIServer().start()
        except Exception:  # noqa: BLE001 - the flow's client retries and reports
            try:
                from prefect.server.api.server import SubprocessASGIServer

                SubprocessASGIServer().running = False
            except Exception:  # noqa: BLE001
                pass

    thread = threading.Thread(target=start, name="tuneline-early-prefect-api", daemon=True)
    thread.start()
    return thread.join
