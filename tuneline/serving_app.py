"""The process ``tuneline serve-model`` starts: MLflow's scoring app for one registered version, naming that version
on every answer.

It does what ``mlflow models serve --env-manager local`` does (download the version's files once, then run
``mlflow.pyfunc.scoring_server.init`` on them under uvicorn), so requests, answers and errors are MLflow's own, and
adds what a rollout needs: which version answered. A client, a load balancer's log or a canary check reads it from
every response (``X-Model-Name``, ``X-Model-Version`` headers) or from ``GET /model``
(``{"name", "version", "task"}``), instead of trusting that the endpoint was restarted after the last promotion.

Started by :func:`tuneline.serving.serve_model` as ``python -m tuneline.serving_app --host H --port P --workers N``
with the version in ``$TUNELINE_SERVED_MODEL``/``$TUNELINE_SERVED_VERSION``/``$TUNELINE_SERVED_TASK`` and the
registry in ``$MLFLOW_TRACKING_URI``/``$MLFLOW_REGISTRY_URI``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import tempfile
from typing import Any

NAME_ENV, VERSION_ENV, TASK_ENV = "TUNELINE_SERVED_MODEL", "TUNELINE_SERVED_VERSION", "TUNELINE_SERVED_TASK"


def create_app() -> Any:
    """uvicorn's app factory (run in every worker): MLflow's scoring app on the downloaded files, plus the served
    version's headers on every response and ``GET /model``."""
    from mlflow.pyfunc import scoring_server

    name, version, task = os.environ[NAME_ENV], os.environ[VERSION_ENV], os.environ.get(TASK_ENV, "")
    app = scoring_server.init(scoring_server.load_model_with_mlflow_config(
        os.environ[scoring_server._SERVER_MODEL_PATH]))
    return served(app, name, version, task)


#: a refusal longer than this is cut: what to fix is in its first lines, the rest repeats the request
MESSAGE_CHARS = 2000

#: MLflow's wrappers around the model's own refusal: they repeat the whole request ('<payload>'), which for a batch
#: of 2,000 texts made a 104 KB answer whose one useful line came last
_WRAPPED = re.compile(r"^Failed to (?:predict|enforce (?:the model input )?schema of) data '.*'(?: with schema '.*')?"
                      r"\.?\s*Error: ", re.DOTALL)


def concise(message: str) -> str:
    """The part of an error message that says what to fix: MLflow's "Failed to predict data '<the request>'.
    Error: input 3 is missing" becomes "input 3 is missing"."""
    match = _WRAPPED.match(message)
    message = message[match.end():].strip() if match else message
    # a body that is no JSON: MLflow appends the whole body ("\nInput: \n<80 KB>"), which the client sent itself
    message = message.split("\nInput: \n", 1)[0].strip()
    if len(message) > MESSAGE_CHARS:
        message = f"{message[:MESSAGE_CHARS]}... ({len(message) - MESSAGE_CHARS:,} more characters)"
    return message


def served(app: Any, name: str, version: str, task: str) -> Any:
    """``app`` (MLflow's scoring app) with the served version's headers on every response, ``GET /model``, and
    client errors (4xx) cut to what to fix: no echo of the request, no server stack trace."""
    from starlette.responses import JSONResponse, Response

    headers = {"X-Model-Name": name, "X-Model-Version": version}

    @app.middleware("http")
    async def concise_client_errors(request, call_next):  # noqa: ANN001, ANN202 - Starlette's middleware signature
        response = await call_next(request)
        if not 400 <= response.status_code < 500 or "json" not in response.headers.get("content-type", ""):
            return response
        body = b"".join([chunk async for chunk in response.body_iterator])
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return Response(body, status_code=response.status_code, media_type=response.media_type)
        payload.pop("stack_trace", None)  # the server's traceback is the server's log's business, not the client's
        if isinstance(payload.get("message"), str):
            payload["message"] = concise(payload["message"])
        return JSONResponse(payload, status_code=response.status_code)

    @app.middleware("http")
    async def name_the_version(request, call_next):  # noqa: ANN001, ANN202 - Starlette's middleware signature
        response = await call_next(request)
        response.headers.update(headers)
        return response

    @app.get("/model")
    async def served_model() -> dict[str, str]:
        return {"name": name, "version": version, "task": task}

    return app


def main(argv: list[str] | None = None) -> None:
    """Download the version's files into a temporary folder (removed when the server stops), then serve them."""
    import mlflow.artifacts
    import uvicorn
    from mlflow.pyfunc import scoring_server

    parser = argparse.ArgumentParser(prog="python -m tuneline.serving_app")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    uri = f"models:/{os.environ[NAME_ENV]}/{os.environ[VERSION_ENV]}"
    # uvicorn shuts down gracefully on SIGTERM and then raises the signal again under the handler it found: with
    # the default one the process would die there and leave the downloaded copy behind; this one unwinds instead
    signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        with tempfile.TemporaryDirectory(prefix="tuneline-serve-") as folder:
            os.environ[scoring_server._SERVER_MODEL_PATH] = mlflow.artifacts.download_artifacts(uri, dst_path=folder)
            uvicorn.run("tuneline.serving_app:create_app", factory=True, host=args.host, port=args.port,
                        workers=args.workers)
    except KeyboardInterrupt:
        pass


def _exit_quietly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    main()
