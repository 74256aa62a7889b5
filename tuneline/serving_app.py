"""The process ``tuneline serve-model`` starts: MLflow's scoring app for one registered version, naming that version
on every answer.

It does what ``mlflow models serve --env-manager local`` does (download the version's files once, then run
``mlflow.pyfunc.scoring_server.init`` on them under uvicorn), so requests, answers and errors are MLflow's own, and
adds what a rollout needs: which version answered. A client, a load balancer's log or a canary check reads it from
every response (``X-Model-Name``, ``X-Model-Version`` headers) or from ``GET /model``
(``{"name", "version", "task"}``), instead of trusting that the endpoint was restarted after the last promotion.

Started by :func:`tuneline.serving.serve_model` as ``python -m tuneline.serving_app --host H --port P --workers N``
with the version in ``$TUNELINE_SERVED_MODEL``/``$TUNELINE_SERVED_VERSION``/``$TUNELINE_SERVED_TASK`` and the
registry in ``$MLFLOW_TRACKING_URI``/``$MLFLOW_REGISTRY_URI``. With ``$TUNELINE_FOLLOW_S`` (``serve-model
--follow``) each worker also follows the alias in ``$TUNELINE_SERVED_ALIAS`` (:class:`FollowingApp`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any

NAME_ENV, VERSION_ENV, TASK_ENV = "TUNELINE_SERVED_MODEL", "TUNELINE_SERVED_VERSION", "TUNELINE_SERVED_TASK"
ALIAS_ENV, FOLLOW_ENV, FOLDER_ENV = "TUNELINE_SERVED_ALIAS", "TUNELINE_FOLLOW_S", "TUNELINE_SERVE_FOLDER"
MAX_REQUEST_ENV = "TUNELINE_MAX_REQUEST_MB"
#: The largest request body served (``serve-model --max-request-mb``): about 100,000 short texts. Without a limit one
#: client's mistaken upload (a whole table, a file of megabyte texts) held a worker, and its memory, for minutes.
DEFAULT_MAX_REQUEST_MB = 16.0
#: MLflow's limit on one request's time (its scoring app answers a 504 past it), which ``serve-model --timeout-s``
#: sets; MLflow's default is 60 s
TIMEOUT_ENV = "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"
#: the moment (``time.monotonic()``) past which the request being predicted was answered with MLflow's 504: the
#: pyfunc files read it between batches and stop (their ``_abandoned``), since nothing can stop MLflow's thread
REQUEST_DEADLINE: ContextVar[float | None] = ContextVar("tuneline_request_deadline", default=None)
#: after the limit, the moment the prediction is stopped: MLflow's own 504 comes first
DEADLINE_GRACE_S = 0.5

#: uvicorn's own logger: a switch of version reads like the server's other lines
log = logging.getLogger("uvicorn.error")


def create_app() -> Any:
    """uvicorn's app factory (run in every worker): MLflow's scoring app on the downloaded files, plus the served
    version's headers on every response and ``GET /model``."""
    from mlflow.pyfunc import scoring_server

    name, version, task = os.environ[NAME_ENV], os.environ[VERSION_ENV], os.environ.get(TASK_ENV, "")
    app = scoring_app(scoring_server.load_model_with_mlflow_config(os.environ[scoring_server._SERVER_MODEL_PATH]),
                      name, version, task)
    if not os.environ.get(FOLLOW_ENV):
        return app
    return FollowingApp(app, name, os.environ[ALIAS_ENV], version, task, float(os.environ[FOLLOW_ENV]),
                        Path(os.environ[FOLDER_ENV]))


def declared_params(model: Any) -> tuple[str, ...]:
    """The inference parameters ``model`` (a loaded PyFuncModel) declares in its signature, by name. MLflow's
    scoring server drops every other key of a request's ``params`` with only a log line ("This model does not define
    a params schema. Ignoring provided params"), so the served app refuses them instead (:func:`params_problem`)."""
    schema = model.metadata.get_params_schema() if getattr(model, "metadata", None) is not None else None
    return tuple(param.name for param in schema.params) if schema is not None else ()


def scoring_app(model: Any, name: str, version: str, task: str) -> Any:
    """MLflow's scoring app for ``model`` (a loaded PyFuncModel) as :func:`served` wraps it, with the request size
    limit of ``serve-model --max-request-mb`` and the params the model's signature declares."""
    from mlflow.pyfunc import scoring_server

    return served(scoring_server.init(model), name, version, task, max_request_mb=float(
        os.environ.get(MAX_REQUEST_ENV) or DEFAULT_MAX_REQUEST_MB), params=declared_params(model))


#: MLflow's REST path of ``MlflowClient.get_model_version_by_alias`` (GET, ``name`` and ``alias`` as parameters)
ALIAS_ENDPOINT = "/api/2.0/mlflow/registered-models/alias"
#: the longest a follower waits for one read of the alias, in seconds (at most one interval)
MAX_READ_TIMEOUT_S = 10.0


def read_timeout_s(interval_s: float) -> float:
    """How long one read of the alias may take: an answer later than the next check, or than 10 s, is an outage to
    report (MLflow's default waits 120 s for an answer)."""
    return max(1.0, min(interval_s, MAX_READ_TIMEOUT_S))


def read_alias(name: str, alias: str, timeout_s: float) -> Any:
    """The ModelVersion ``name@alias`` points at, asked once. Why not ``MlflowClient().get_model_version_by_alias``:
    over HTTP it retries a refused connection or a 503 for about 4 minutes (MLFLOW_HTTP_REQUEST_MAX_RETRIES, _BACKOFF_
    FACTOR, _TIMEOUT, read by MLflow for the whole process) before it raises, so a follower said nothing through a
    shorter outage. Here one request (no retries, ``timeout_s``) per check: the follower's next check is its retry.
    Other registries (``sqlite:///``) are read with MLflow's client, which does not retry them."""
    import mlflow
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.protos.model_registry_pb2 import GetModelVersionByAlias
    from mlflow.tracking import MlflowClient
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.proto_json_utils import parse_dict
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    uri = mlflow.get_registry_uri()
    if not uri.startswith(("http://", "https://")):
        return MlflowClient().get_model_version_by_alias(name, alias)
    response = http_request(get_default_host_creds(uri), ALIAS_ENDPOINT, "GET", params={"name": name, "alias": alias},
                            max_retries=0, backoff_factor=0, timeout=timeout_s)
    answer = GetModelVersionByAlias.Response()
    parse_dict(verify_rest_response(response, ALIAS_ENDPOINT).json(), answer)
    return ModelVersion.from_proto(answer.model_version)


def outage_reason(error: Exception, timeout_s: float) -> str:
    """Why the registry could not be read, in a few words with its address: MLflow's message is a paragraph of
    urllib3's retry state ("HTTPConnectionPool(...): Max retries exceeded with url: ... (Caused by ...)")."""
    import mlflow

    from tuneline.runtime import redact

    text = str(error)
    status = re.search(r"too many (\d{3}) error responses", text)
    if status:
        what = f"it answers HTTP {status.group(1)}"
    elif "Connection refused" in text:
        what = "connection refused"
    elif re.search(r"(?i)timed? ?out", text):
        what = f"no answer within {timeout_s:g} s"
    else:
        what = (text.strip().splitlines() or [type(error).__name__])[0][:200]
    return redact(f"{mlflow.get_registry_uri()}: {what}")


#: the longest wait between two tries of a champion version that did not load (``serve-model --follow``)
RETRY_FAILED_LOAD_MAX_S = 300.0


class FollowingApp:
    """The scoring app of the version an alias points at, switched without a restart when the alias moves.

    Why: after the gate or a person promotes a version (or rolls one back), an endpoint that keeps the version it
    started with serves the old champion until someone restarts it. A thread reads the alias every ``interval_s``;
    when it names another version of the same task, the thread downloads and loads that version and builds its
    scoring app *beside* the one serving, then swaps the two in one assignment: requests in flight finish on the
    old version, the next ones go to the new, and no request is refused meanwhile. A registry that cannot be read
    or a version that does not load is logged and the current version keeps serving (the registry read again at the
    next check; a version that did not load tried again at a wait doubling up to :data:`RETRY_FAILED_LOAD_MAX_S`,
    so a version whose files come back is served: QA saw one refused for good). Every answer names the version that gave it (``X-Model-Version``), so a switch is visible to clients.
    """

    def __init__(self, app: Any, name: str, alias: str, version: str, task: str, interval_s: float,
                 folder: Path) -> None:
        self.current, self.version = app, version
        self.name, self.alias, self.task, self.interval_s, self.folder = name, alias, task, interval_s, folder
        self._copy: Path | None = None  # the served version's files, when this thread downloaded them
        self._refused: str | None = None  # a version of another task: logged once, not at every check
        #: a version that failed to load (its files missing, a download cut): logged once, tried again with a wait
        #: doubling from one interval to :data:`RETRY_FAILED_LOAD_MAX_S` (version, when to try next, the wait)
        self._failed: tuple[str, float, float] | None = None
        self._gone = False  # the alias was removed: said once, not at every check, and once again when it is back
        self._down = False  # the registry cannot be read: said once per outage, and once when it can be read again
        self._stopped = threading.Event()
        threading.Thread(target=self._follow, name="tuneline-follow-alias", daemon=True).start()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await self.current(scope, receive, send)

    def _follow(self) -> None:
        timeout_s = read_timeout_s(self.interval_s)
        while not self._stopped.wait(self.interval_s):
            try:
                found = read_alias(self.name, self.alias, timeout_s)
            except Exception as error:  # noqa: BLE001 - a registry outage must not stop the serving version
                self._unreadable(error, timeout_s)
                continue
            self._readable(str(found.version))
            version = str(found.version)
            if version in (self.version, self._refused):
                continue
            if self._failed is not None and self._failed[0] == version and time.monotonic() < self._failed[1]:
                continue
            self._switch(version, (found.tags or {}).get("task", ""))

    def _readable(self, version: str) -> None:
        """Say once that the alias can be read again after a removal or an outage, naming where it points."""
        if self._gone:
            self._gone = False
            log.info("%s@%s is back: it points at version %s (serving version %s)", self.name, self.alias,
                     version, self.version)
        if self._down:
            self._down = False
            log.info("%s@%s can be read again: it points at version %s (serving version %s)", self.name,
                     self.alias, version, self.version)

    def _unreadable(self, error: Exception, timeout_s: float = 10.0) -> None:
        """Log why the alias could not be read, once: a removed alias (and once when it is back, by
        :meth:`_readable`), or an outage of the registry (and once when it can be read again). Repeated at every
        check, either filled the log with one warning per interval while nothing changed."""
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if "alias" in reason.lower() and "not found" in reason.lower():
            if not self._gone:
                self._gone = True
                log.warning("%s@%s was removed (%s); still serving version %s, and reading the alias every %g s: "
                            "the log says so when it is back", self.name, self.alias, reason, self.version,
                            self.interval_s)
            return
        if not self._down:
            self._down = True
            log.warning("cannot read %s@%s (%s); still serving version %s, retrying every %g s: the log says so "
                        "when it can read it again", self.name, self.alias, outage_reason(error, timeout_s),
                        self.version, self.interval_s)

    def _switch(self, version: str, task: str) -> None:
        """Serve ``version`` from now on, or log why not and keep the current one."""
        from mlflow.artifacts import download_artifacts
        from mlflow.pyfunc import scoring_server

        if task != self.task:
            self._refused = version
            log.warning("%s@%s now points at version %s, a %r model, not %r as this endpoint serves; still serving "
                        "version %s (start another endpoint for it)", self.name, self.alias, version, task,
                        self.task, self.version)
            return
        copy = Path(tempfile.mkdtemp(prefix=f"v{version}-", dir=self.folder))
        try:
            path = download_artifacts(f"models:/{self.name}/{version}", dst_path=str(copy))
            app = scoring_app(scoring_server.load_model_with_mlflow_config(path), self.name, version, self.task)
        except Exception as error:  # noqa: BLE001 - a broken version must not take the endpoint down
            shutil.rmtree(copy, ignore_errors=True)
            again = self._failed is not None and self._failed[0] == version
            wait_s = min(2 * self._failed[2], RETRY_FAILED_LOAD_MAX_S) if again else self.interval_s
            self._failed = (version, time.monotonic() + wait_s, wait_s)
            if not again:  # said once; tried again until it loads (its files restored, say)
                log.warning("%s@%s moved to version %s, which did not load (%s); still serving version %s, and "
                            "trying version %s again at a growing interval (up to every %g s)", self.name,
                            self.alias, version, str(error).splitlines()[0] if str(error) else type(error).__name__,
                            self.version, version, RETRY_FAILED_LOAD_MAX_S)
            return
        previous, old_copy = self.version, self._copy
        self.current, self.version, self._copy, self._refused, self._failed = app, version, copy, None, None
        log.info("%s@%s moved: serving version %s (was version %s)", self.name, self.alias, version, previous)
        if old_copy is not None:  # the old model is in memory; its files are no longer read
            shutil.rmtree(old_copy, ignore_errors=True)


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


#: The request body types a tuneline model's ``POST /invocations`` takes (JSON; a Parquet frame with the model's
#: columns works for every kind too). MLflow's scoring app also lists ``text/csv``, but parses a CSV body with the
#: signature's column types, and every tuneline signature has ``Any`` columns, which have no pandas type: each CSV
#: request failed with "Failed to get pandas types as some of the inputs types are not DataType." (a 400 that read
#: as if the CSV were broken).
ACCEPTED_CONTENT_TYPES = ("application/json", "application/vnd.apache.parquet")
#: A JSON body to send instead, by task, quoted in a refused content type's message.
JSON_EXAMPLES = {"pair_classification": '{"inputs": [["first text", "second text"]]}',
                 "token_classification": '{"inputs": ["John lives in Paris", ["John", "Smith"]]}'}
JSON_EXAMPLE = '{"inputs": ["a text", "another text"]}'


def normalized_content_type(content_type: str) -> str:
    """``content_type`` as MLflow's scoring app can compare it: the media type and the parameter names in lower case,
    a UTF-8 charset spelled ``utf-8``, quotes and empty parameters dropped (``Application/JSON; Charset="UTF8";`` →
    ``application/json; charset=utf-8``). Media types, parameter names and charset names are case-insensitive (RFC
    9110 §8.3.1), but MLflow compares them as written: ``Application/JSON`` or ``application/JSON; charset=UTF-8``,
    as some clients and proxies send them, got a text/plain 415 ("only supports the following content types")."""
    import codecs

    mime, *parameters = (part.strip() for part in content_type.split(";"))
    parts = [mime.lower()]
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        name, value = name.strip().lower(), value.strip().strip('"')
        if not name:
            continue  # "application/json;": MLflow refused the empty parameter as "unrecognized"
        if name == "charset":
            try:
                value = "utf-8" if codecs.lookup(value).name == "utf-8" else value.lower()
            except LookupError:
                value = value.lower()
        parts.append(f"{name}={value}")
    return "; ".join(parts)


def content_type_problem(content_type: str | None, task: str = "") -> str | None:
    """Why ``POST /invocations`` cannot take a body of this ``Content-Type`` (one line naming the accepted types and
    a JSON body for ``task``), or None when it can. A missing header made MLflow's app fail with a 500
    (``None.split``); ``text/csv`` with the pandas-type error above; any other type, or a charset other than UTF-8,
    with a text/plain 415 (the former listing ``text/csv`` as if it worked). The type is compared in lower case
    (:func:`normalized_content_type`)."""
    mime, *parameters = normalized_content_type(content_type or "").split("; ")
    fix = (f"accepted content types: {', '.join(ACCEPTED_CONTENT_TYPES)}; send e.g. "
           f"{JSON_EXAMPLES.get(task, JSON_EXAMPLE)} as application/json")
    if not mime:
        return f"the request has no Content-Type header; {fix}"
    if mime == "text/csv":
        return f"Content-Type text/csv is not accepted (MLflow cannot read this model's inputs from CSV); {fix}"
    if mime not in ACCEPTED_CONTENT_TYPES:
        return f"Content-Type {mime} is not accepted; {fix}"
    charset = next((p.partition("=")[2] for p in parameters if p.startswith("charset=")), "utf-8")
    if charset != "utf-8":
        return (f"Content-Type {content_type} names the charset {charset}; the server reads UTF-8 only: send the body "
                f"in UTF-8 (charset=utf-8, or no charset)")
    return None


#: MLflow's input fields: the top-level key of a JSON request that holds its inputs (exactly one of them).
INPUT_FIELDS = ("inputs", "instances", "dataframe_split", "dataframe_records")
#: What else MLflow's scoring server reads from a JSON request (its inference parameters)
OTHER_FIELDS = ("params",)
#: The kinds that read fewer: an NER model's signature comes from its type hint, and MLflow then reads ``inputs`` only.
TASK_INPUT_FIELDS = {"token_classification": ("inputs",)}


def input_field_problem(payload: Any, task: str) -> str | None:
    """Why a JSON request names no input field this model reads (one line with the fields it reads and the keys
    that were sent), or None.

    A misspelled field (``{"input": [...]}``, ``{"text": [...]}``) was answered by whatever MLflow made of it: "must
    be a JSON dictionary with exactly one of the input fields ... Received dictionary with input fields: []" and a
    paragraph on MLflow 2.0 (it lists only the known keys it found: none), or, for ``input``, MLflow's LLM request
    format: "predict got a column named 'input'" from a classifier, "the signature declares 2 inputs" from a pair
    model, and a 200 with the field's texts tagged from an NER model."""
    accepted = TASK_INPUT_FIELDS.get(task, INPUT_FIELDS)
    names = (f"the input field {accepted[0]!r}" if len(accepted) == 1 else "one of the input fields "
             + ", ".join(repr(field) for field in accepted[:-1]) + f" or {accepted[-1]!r}")
    example = JSON_EXAMPLES.get(task, JSON_EXAMPLE)
    if not isinstance(payload, dict):
        what = {list: "a JSON list", str: "a JSON string"}.get(type(payload), f"the JSON value {payload!r:.40}")
        return f"the request body is {what}, not an object: send the inputs under {names}, e.g. {example}"
    given = [key for key in payload if key in INPUT_FIELDS]
    unknown = [str(key) for key in payload if key not in INPUT_FIELDS and key not in OTHER_FIELDS]
    if len(given) == 1 and given[0] in accepted and unknown:
        import difflib

        close = [m for key in unknown for m in difflib.get_close_matches(key.lower(), OTHER_FIELDS, n=1)]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (f"the request has a field this endpoint does not read: {', '.join(map(repr, unknown[:5]))}{hint}; "
                f"send only {given[0]!r} (and 'params'), e.g. {example}: a setting sent beside the inputs would "
                "otherwise be ignored without a word")
    if len(given) == 1 and given[0] in accepted:
        return None
    if len(given) > 1:
        return (f"the request has {len(given)} input fields ({', '.join(map(repr, given))}); send the inputs under "
                f"exactly {names}, e.g. {example}")
    if given:
        return f"a {task} model reads its inputs from {names} only, not {given[0]!r}: send e.g. {example}"
    import difflib

    keys = [str(key) for key in payload]
    close = [match for key in keys for match in difflib.get_close_matches(key.lower(), accepted, n=1)]
    sent = f"its keys are {', '.join(map(repr, keys))}" if keys else "it is an empty object"
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"the request has no input field: {sent}{hint}; send the inputs under {names}, e.g. {example}"


#: What one input of each kind is, for "send at least one ..."
INPUT_NOUNS = {"pair_classification": "pair of texts", "token_classification": "text or word list"}


def empty_input_problem(payload: Any, task: str) -> str | None:
    """Why a JSON request that names its input field holds no input at all (``{"inputs": []}``, an empty
    ``dataframe_split``), or None. MLflow's schema enforcement answered it with its own words ("Model is missing
    inputs ['...']" or a failure to read an empty frame's types), which say nothing about sending a text; the NER
    pyfunc's own check (the same sentence as here) is reached only by that kind."""
    if not isinstance(payload, dict):
        return None
    field = next((key for key in INPUT_FIELDS if key in payload), None)
    if field is None:
        return None
    value = payload[field]
    if field == "dataframe_split" and isinstance(value, dict):
        value = value.get("data", [])
    if value not in ([], {}, None):
        return None
    noun = INPUT_NOUNS.get(task, "text")
    return f"predict got no inputs; send at least one {noun}, e.g. {JSON_EXAMPLES.get(task, JSON_EXAMPLE)}"


#: The kinds whose every input is one text: a list in its place is a mistake (other kinds take lists: a pair, words)
ONE_TEXT_TASKS = ("classification", "multilabel_classification")


def nested_input_problem(payload: Any, task: str) -> str | None:
    """Why a JSON request to a one-text model cannot be answered as sent, or None: an input that is a list
    (``{"inputs": [["a", "b"]]}``, a batch wrapped once too often). MLflow's scoring server turned it into a table
    with a column per text and its schema enforcement kept the first column: one label, for the first text alone.
    The model never sees the list, so the served app looks at the request itself."""
    if task not in ONE_TEXT_TASKS or not isinstance(payload, dict):
        return None
    inputs = payload.get("inputs", payload.get("instances"))
    if not isinstance(inputs, list):
        return None
    position = next((i for i, value in enumerate(inputs) if isinstance(value, list)), None)
    if position is None:
        return None
    from tuneline.errors import excerpt

    return (f"input {position} is a list ({excerpt(inputs[position], 80)}), not a text: send one string per input, e.g. {JSON_EXAMPLE} "
            "(a list in its place reached the model as its first text only)")


#: The columns of a pair model's input (``pair_classifier.TEXT``, ``PAIR``), and how to send pairs, as the README says.
PAIR_COLUMNS = ("text", "text_pair")
PAIR_SHAPE = ('send each pair as a list of its two texts or an object with "text" and "text_pair", e.g. '
              f'{JSON_EXAMPLES["pair_classification"]} or {{"inputs": [{{"text": "first text", "text_pair": "second '
              'text"}]}')
PAIR_FRAME = '{"dataframe_split": {"columns": ["text", "text_pair"], "data": [["first text", "second text"]]}}'


def pair_shape_problem(payload: Any, task: str) -> str | None:
    """Why a JSON request to a pair model holds no pairs (one line naming the input and the shape to send), or None.

    A flat list of texts, a list of one or three texts, an object or a frame without ``text_pair`` (or ``text``)
    reached MLflow's schema enforcement as one or three columns for the signature's two: "Model inference is missing
    inputs. The model signature declares 2 inputs but the provided value only has 1 inputs", with no word on which
    input or on what a pair looks like; three texts were answered 200 on the first two. The model never sees such a
    request whole, so the served app looks at the request itself."""
    if task != "pair_classification" or not isinstance(payload, dict):
        return None
    from tuneline.errors import excerpt

    if isinstance(payload.get("dataframe_split"), dict):
        columns = payload["dataframe_split"].get("columns")
        if isinstance(columns, list) and not set(PAIR_COLUMNS) <= {c for c in columns if isinstance(c, str)}:
            return (f"dataframe_split has the columns {excerpt(columns, 80)}; a pair model reads two columns named "
                    f"'text' and 'text_pair', e.g. {PAIR_FRAME}")
        return None
    if isinstance(payload.get("dataframe_records"), list):
        for position, record in enumerate(payload["dataframe_records"]):
            missing = [c for c in PAIR_COLUMNS if c not in record] if isinstance(record, dict) else []
            if missing:
                return (f"record {position} of dataframe_records has no {missing[0]!r} (its keys: "
                        f"{excerpt(list(record), 60)}); every record needs 'text' and 'text_pair', e.g. "
                        '{"dataframe_records": [{"text": "first text", "text_pair": "second text"}]}')
        return None
    field = next((key for key in ("inputs", "instances") if key in payload), None)
    if field is None:
        return None
    inputs = payload[field]
    if isinstance(inputs, dict):
        return (f"{field} is an object of columns ({excerpt(list(inputs), 60)}), which MLflow cannot read for a pair "
                f"model; {PAIR_SHAPE}, or {PAIR_FRAME}")
    if not isinstance(inputs, list):
        return f"{field} is {excerpt(inputs, 60)}, not a list of pairs; {PAIR_SHAPE}"
    for position, item in enumerate(inputs):
        if isinstance(item, list) and len(item) != 2:
            return (f"input {position} is a list of {len(item)} text{'s' * (len(item) != 1)} ({excerpt(item, 80)}), "
                    f"not a pair; {PAIR_SHAPE}")
        if isinstance(item, dict) and not set(PAIR_COLUMNS) <= set(item):
            missing = next(c for c in PAIR_COLUMNS if c not in item)
            return f"input {position} has no {missing!r} (its keys: {excerpt(list(item), 60)}); {PAIR_SHAPE}"
        if not isinstance(item, (list, dict)):
            one = json.dumps({field: [inputs]}, ensure_ascii=False)  # two texts: one pair, unwrapped?
            one = (f" (for one pair send {one})" if len(inputs) == 2 and all(isinstance(v, str) for v in inputs)
                   and len(one) <= 160 else "")
            return f"input {position} is {excerpt(item, 60)}, not a pair{one}; {PAIR_SHAPE}"
    # MLflow's frame of lists beside objects holds an object's key names as its pair: answered 200 (serving QA)
    return mixed_shapes_problem(inputs, "a list", PAIR_SHAPE)


def mixed_shapes_problem(inputs: list, other: str, shape: str) -> str | None:
    """Why a list of inputs mixing objects with ``other`` items (texts, or a pair's lists) cannot be read, or None:
    MLflow builds one frame from them, where an object's row is garbled or its key names are read as texts."""
    objects = [isinstance(item, dict) for item in inputs]
    if not any(objects) or all(objects):
        return None
    position = objects.index(not objects[0])
    what, first = (other, "an object") if objects[0] else ("an object", other)
    return f"input {position} is {what} but input 0 is {first}: one request takes one shape; {shape}"


#: MLflow-style error codes (its enum has none for these statuses): the standard library's names of the statuses
TOO_LARGE_CODE, MEDIA_TYPE_CODE = "REQUEST_ENTITY_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"
TIMEOUT_CODE = "REQUEST_TIMEOUT"
#: The deepest nesting of lists and objects a request may have: a request holds at most a frame of word lists (5
#: levels). A body nested 1,500 deep made Python's JSON parser (and MLflow's, after it) raise a RecursionError: a
#: text/plain 500 without the version headers.
MAX_JSON_DEPTH = 32
#: Half of a UTF-16 surrogate pair: JSON's ``"\ud83d"`` escape alone parses to it, and no UTF-8 encoder takes it
_SURROGATE = re.compile("[\ud800-\udfff]")
#: What :func:`parsed_json` returns for a body that is no JSON (``null`` is JSON, and refused as no object)
NOT_JSON = object()


class RepeatedKey(ValueError):
    """A JSON object that names one key twice (``json.loads`` would keep the last value without a word)."""

    def __init__(self, key: str, keys: list[str]) -> None:
        super().__init__(key)
        self.key, self.keys = key, keys


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: the object, or :class:`RepeatedKey` for a key given twice (JSON objects
    are read by key, so ``{"inputs": ["a"], "inputs": ["b", "c"]}`` was answered on ``["b", "c"]`` alone)."""
    found = dict(pairs)
    if len(found) < len(pairs):
        seen: set[str] = set()
        key = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise RepeatedKey(key, [key for key, _ in pairs])
    return found


def nesting_depth(payload: Any) -> int:
    """How many lists and objects deep ``payload`` goes (counted without recursion: the value may be deep)."""
    deepest, stack = 0, [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parsed_json(body: bytes, task: str) -> tuple[Any, str | None]:
    """The JSON request and None, or (None, why it cannot be read as sent): a key given twice in one object
    (:class:`RepeatedKey`) or nesting deeper than :data:`MAX_JSON_DEPTH`. A body that is no JSON at all is
    ``(NOT_JSON, None)``: MLflow's own parser says what is wrong with it."""
    example = JSON_EXAMPLES.get(task, JSON_EXAMPLE)
    too_deep = (f"the JSON is nested too deeply (more than {MAX_JSON_DEPTH} levels of lists and objects); send a "
                f"list of inputs, e.g. {example}")
    try:
        payload = json.loads(body, object_pairs_hook=_unique_keys)
    except RepeatedKey as error:
        from tuneline.errors import excerpt

        return None, (f"the request repeats the key {excerpt(error.key, 40)} in one JSON object (its keys: "
                      f"{excerpt(error.keys, 80)}); only the last value would be read: send each key once")
    except RecursionError:
        return None, too_deep
    except UnicodeDecodeError as error:  # MLflow's parser echoed the whole body, and named no encoding to use
        return None, (f"the request body is not UTF-8: the byte at offset {error.start} (0x{body[error.start]:02x}) "
                      "begins no UTF-8 character, as in Latin-1 or Windows-1252 text; send the JSON encoded as UTF-8")
    except ValueError:
        return NOT_JSON, None
    return (None, too_deep) if nesting_depth(payload) > MAX_JSON_DEPTH else (payload, None)


def params_problem(payload: Any, declared: tuple[str, ...] | list[str]) -> str | None:
    """Why a request's ``params`` cannot be applied (one line naming the keys the model does not declare), or None.
    MLflow's scoring server drops params the model's signature does not declare, logging only "This model does not
    define a params schema. Ignoring provided params": ``{"params": {"threshold": 0.99}}`` was answered 200, as if
    the threshold had been applied."""
    if not isinstance(payload, dict) or "params" not in payload:
        return None
    from tuneline.errors import excerpt

    params = payload["params"]
    takes = (f"this model takes only {', '.join(map(repr, declared))}" if declared
             else "this model declares no params")
    if not isinstance(params, dict):
        return (f"params is {excerpt(params, 60)}, not a JSON object ({takes}): send params as an object of named "
                'settings, e.g. {"params": {"name": value}}, or leave it out')
    unknown = [key for key in params if key not in declared]
    if not unknown:
        return None
    return (f"params {', '.join(excerpt(key, 40) for key in unknown[:5])} {'is' if len(unknown) == 1 else 'are'} "
            f"not declared by this model ({takes}): leave {'it' if len(unknown) == 1 else 'them'} out (MLflow would "
            "ignore it without a word)")


def input_items(payload: dict) -> list[Any]:
    """The request's inputs in order (a frame's rows, a dict of columns' values row by row): what "input N" names."""
    field = next((key for key in INPUT_FIELDS if key in payload), None)
    value = payload.get(field) if field else None
    if field == "dataframe_split" and isinstance(value, dict):
        value = value.get("data")
    if isinstance(value, dict):  # {"inputs": {"text": [...], ...}}: column by column, row N of each is input N
        columns = [column if isinstance(column, list) else [column] for column in value.values()]
        return [[column[row] for column in columns if row < len(column)]
                for row in range(max(map(len, columns), default=0))]
    return value if isinstance(value, list) else [value]


def _half_surrogate(value: Any) -> str | None:
    """The first string in ``value`` (keys too) that holds half of a UTF-16 surrogate pair, or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return item
        elif isinstance(item, dict):
            stack.extend([*item.values(), *item.keys()])
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return None


def surrogate_problem(payload: Any) -> str | None:
    """Why a request holds a text no encoder can write (one line naming the input), or None: JSON's ``"\ud83d"``
    escape without its second half (a client that cut an emoji in two) parsed to a lone surrogate, which failed
    later as "'utf-8' codec can't encode character '\ud83d' in position 0", naming no input (NER: a generic MLflow
    error)."""
    if not isinstance(payload, dict):
        return None
    from tuneline.errors import excerpt

    fix = ('send the whole character (both halves, e.g. "\\ud83d\\ude00" for an emoji) or the character itself '
           "in UTF-8")
    for position, item in enumerate(input_items(payload)):
        text = _half_surrogate(item)
        if text is not None:
            return f"input {position} holds half of a UTF-16 surrogate pair ({excerpt(text, 60)}), no character: {fix}"
    text = _half_surrogate(payload)
    if text is not None:
        return f"the request holds half of a UTF-16 surrogate pair ({excerpt(text, 60)}), no character: {fix}"
    return None


#: How to send inputs to a one-text model, quoted by :func:`one_text_shape_problem`
ONE_TEXT_SHAPE = ('send each input as a text, e.g. {"inputs": ["a text", "another text"]}, or every one as an '
                  'object with "text", e.g. {"inputs": [{"text": "a text"}]}')


def _has_no_text(item: dict, where: str) -> str:
    """``where`` has no ``text``: what its keys are."""
    from tuneline.errors import excerpt

    keys = f"its keys: {excerpt(list(item), 60)}" if item else "it is an empty object"
    return f"{where} has no 'text' ({keys})"


def one_text_shape_problem(payload: Any, task: str) -> str | None:
    """Why a JSON request to a one-text model (:data:`ONE_TEXT_TASKS`) is not one text per input (one line naming
    the input and the shape to send), or None. Each of these got MLflow's own words: objects mixed with texts
    ("dictionary update sequence element #0 has length 1; 2 is required"), an object without ``text`` ("input 1 is
    missing (nan)", or for ``[{}]`` "Model inference is missing inputs"), a dict of columns ("un-named model
    signature which expects a single n-dimensional array"), a frame naming ``text`` twice ("Length of values (2)
    does not match length of index (1)")."""
    if task not in ONE_TEXT_TASKS or not isinstance(payload, dict):
        return None
    from tuneline.errors import excerpt

    if isinstance(payload.get("dataframe_records"), list):
        for position, record in enumerate(payload["dataframe_records"]):
            if isinstance(record, dict) and "text" not in record:
                return (f"{_has_no_text(record, f'record {position} of dataframe_records')}; every record needs "
                        "'text', e.g. {\"dataframe_records\": [{\"text\": \"a text\"}]}")
        return None
    field = next((key for key in ("inputs", "instances") if key in payload), None)
    inputs = payload.get(field)
    if isinstance(inputs, dict) and any(isinstance(value, list) for value in inputs.values()):
        return (f"{field} is an object of columns ({excerpt(list(inputs), 60)}), which MLflow cannot read for this "
                f"model; {ONE_TEXT_SHAPE}")
    if not isinstance(inputs, list):
        return None
    if mixed := mixed_shapes_problem(inputs, "a text", ONE_TEXT_SHAPE):
        return mixed
    for position, item in enumerate(inputs):
        if isinstance(item, dict) and "text" not in item:
            return f"{_has_no_text(item, f'input {position}')}; {ONE_TEXT_SHAPE}"
        if item is None or isinstance(item, dict) and item.get("text") is None:  # pandas makes it NaN: "input 1
            # is missing (nan)", for a null the client sent
            where = f"input {position}" + ("" if item is None else "'s text")
            return f"{where} is null: every input needs a text; {ONE_TEXT_SHAPE}"
    return None


def uneven_columns_problem(payload: Any, task: str) -> str | None:
    """Why an ``inputs`` object of columns cannot be read as a frame (its lists differ in length), or None: an NER
    model answered MLflow's "Failed to enforce the model input schema ...: All arrays must be of the same length",
    where the other kinds name the shape to send (serving QA)."""
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    if task != "token_classification" or not isinstance(inputs, dict):
        return None
    lengths = {str(key): len(value) for key, value in inputs.items() if isinstance(value, list)}
    if len(set(lengths.values())) < 2:
        return None
    from tuneline.errors import excerpt

    return (f"inputs is an object of columns of different lengths ({excerpt(lengths, 80)}); send a list of texts "
            f"or word lists, e.g. {JSON_EXAMPLES[task]}")


def repeated_column_problem(payload: Any, task: str) -> str | None:
    """Why a ``dataframe_split`` cannot be read (it names a column twice), or None: ``["text", "text"]`` got pandas'
    "Length of values (2) does not match length of index (1)"."""
    split = payload.get("dataframe_split") if isinstance(payload, dict) else None
    columns = split.get("columns") if isinstance(split, dict) else None
    if not isinstance(columns, list):
        return None
    named = [column for column in columns if isinstance(column, str)]
    twice = next((column for position, column in enumerate(named) if column in named[:position]), None)
    if twice is None:
        return None
    example = PAIR_FRAME if task == "pair_classification" else \
        '{"dataframe_split": {"columns": ["text"], "data": [["a text"]]}}'
    return f"dataframe_split names the column {twice!r} twice; name each column once, e.g. {example}"


#: The columns a model reads from a record, an object or a frame, by task (others: none, the input as it is)
MODEL_COLUMNS = {"classification": ("text",), "multilabel_classification": ("text",),
                 "pair_classification": PAIR_COLUMNS}


def unnamed_frame_problem(payload: Any, task: str) -> str | None:
    """Why a ``dataframe_split`` without ``columns`` cannot be answered, or None. MLflow reads such a frame's values
    by position for the signature's unnamed inputs: ``[id, text, text_pair]`` was answered 200 as the pair ``(id,
    text)``, and ``[id, text]`` with the score of the id (serving QA), while the same frame with its columns named
    is read by name. Refused, with the names to give."""
    columns = MODEL_COLUMNS.get(task)
    split = payload.get("dataframe_split") if isinstance(payload, dict) else None
    if columns is None or not isinstance(split, dict) or split.get("columns") is not None:
        return None
    example = PAIR_FRAME if task == "pair_classification" else \
        '{"dataframe_split": {"columns": ["text"], "data": [["a text"]]}}'
    named = " and ".join(repr(column) for column in columns)
    return (f"dataframe_split has no 'columns', so its values would be read by position (an id in front taken for "
            f"the text); name the columns (the model reads {named}; others, such as an id, are ignored), e.g. "
            f"{example}")


def parquet_request(body: bytes, task: str) -> tuple[str | None, bytes | None]:
    """``(why, None)`` for a Parquet frame without the model's columns, else ``(None, the frame cut to them)``
    (``None`` when it is already). JSON frames are read by column name (:func:`model_columns_only`); a Parquet one
    reached the model as it was: ``[id, text]`` was refused ("predict got a column named 'id'") though it holds
    ``text``, and an NER frame with one column of any name was tagged as if it were ``text`` (serving QA). A body
    pandas cannot read is left to MLflow's parser, whose message says what is wrong with it."""
    import io

    import pyarrow.parquet as pq

    from tuneline.errors import excerpt

    try:  # the names from the file's footer: the columns are read (by MLflow) once, or here only when cut
        schema = pq.ParquetFile(io.BytesIO(body)).schema_arrow
    except Exception:  # noqa: BLE001 - MLflow's own parser answers it
        return None, None
    index = {column for column in ((schema.pandas_metadata or {}).get("index_columns", []) if schema.metadata else [])
             if isinstance(column, str)}  # a RangeIndex is a dict of its range, stored as no column
    names = [name for name in schema.names if name not in index]  # pandas writes a frame's index as a column too
    if task == "token_classification":
        wanted = next(([column] for column in ("tokens", "text") if column in names), None)
        needed = "a 'text' column (raw texts) or a 'tokens' column (word lists)"
    elif (columns := MODEL_COLUMNS.get(task)) is not None:
        wanted = list(columns) if set(columns) <= set(names) else None
        needed = f"the column{'s' * (len(columns) > 1)} {' and '.join(repr(column) for column in columns)}"
    else:
        return None, None
    if wanted is None:
        return (f"the Parquet frame has the columns {excerpt(names, 80)}; the model reads {needed} (others, such as "
                "an id, are ignored)"), None
    if names == wanted:
        return None, None
    out = io.BytesIO()
    pq.write_table(pq.read_table(io.BytesIO(body), columns=wanted).replace_schema_metadata(None), out)
    return None, out.getvalue()


def _selected(item: Any, columns: tuple[str, ...]) -> Any:
    """A record or object cut to ``columns``, in that order (unchanged when it is no object or lacks one)."""
    if not isinstance(item, dict) or not set(columns) <= set(item) or list(item) == list(columns):
        return item
    return {column: item[column] for column in columns}


def model_columns_only(payload: Any, task: str) -> Any:
    """``payload`` with only the model's columns (:data:`MODEL_COLUMNS`), by name, of every record, object and
    ``dataframe_split``; ``payload`` itself when nothing was cut. The signature's inputs are unnamed, so MLflow kept
    a frame's FIRST columns: ``{"text": "a", "id": 5}`` was answered and ``{"id": 5, "text": "a"}`` refused ("predict
    got a column named 'id'"), though JSON objects are unordered. MLflow ignores extra keys for a named signature;
    the served app does the same for these."""
    columns = MODEL_COLUMNS.get(task)
    if columns is None or not isinstance(payload, dict):
        return payload
    out = dict(payload)
    for field in ("inputs", "instances", "dataframe_records"):
        if isinstance(payload.get(field), list):
            out[field] = [_selected(item, columns) for item in payload[field]]
    split = payload.get("dataframe_split")
    if isinstance(split, dict) and isinstance(split.get("columns"), list) and isinstance(split.get("data"), list):
        names = split["columns"]
        if set(columns) <= {name for name in names if isinstance(name, str)} and names != list(columns):
            where = [names.index(column) for column in columns]
            out["dataframe_split"] = {**split, "columns": list(columns), "data": [
                [row[i] for i in where] if isinstance(row, list) and len(row) == len(names) else row
                for row in split["data"]]}
    return payload if out == payload else out


def json_request(body: bytes, task: str, params: tuple[str, ...] | list[str] = ()) -> tuple[str | None, bytes | None]:
    """``(why, None)`` for a JSON request body that cannot be answered as sent (see :func:`parsed_json`,
    :func:`input_field_problem`, :func:`params_problem`, :func:`empty_input_problem`, :func:`surrogate_problem`,
    :func:`nested_input_problem`, :func:`repeated_column_problem`, :func:`one_text_shape_problem`,
    :func:`pair_shape_problem`), else ``(None, the body
    for MLflow's app)``: None when it is unchanged, the body with the model's columns only
    (:func:`model_columns_only`) when not. ``params``: the names the model's signature declares. A body that is no
    JSON is left to MLflow's own parser, whose message says what is wrong with it."""
    payload, problem = parsed_json(body, task)
    if problem is not None or payload is NOT_JSON:
        return problem, None
    problem = (input_field_problem(payload, task) or params_problem(payload, params)
               or empty_input_problem(payload, task) or surrogate_problem(payload)
               or nested_input_problem(payload, task) or uneven_columns_problem(payload, task)
               or repeated_column_problem(payload, task)
               or unnamed_frame_problem(payload, task) or one_text_shape_problem(payload, task)
               or pair_shape_problem(payload, task))
    if problem is not None:
        return problem, None
    selected = model_columns_only(payload, task)
    return None, None if selected is payload else json.dumps(selected, ensure_ascii=False).encode("utf-8")


def json_request_problem(body: bytes, task: str, params: tuple[str, ...] | list[str] = ()) -> str | None:
    """Why a JSON request body cannot be answered as sent (:func:`json_request`), or None."""
    return json_request(body, task, params)[0]


def too_large_problem(size: int | None, max_request_mb: float) -> str | None:
    """Why a request body of ``size`` bytes is refused (413), or None; ``size`` None: a body sent without its length
    whose reading stopped at the limit."""
    limit = f"({max_request_mb:g} MB, serve-model --max-request-mb): send the inputs in smaller batches"
    if size is None:
        return f"the request body is more than this endpoint takes {limit}"
    if size <= max_request_mb * 1024 * 1024:
        return None
    return f"the request body is {size / 1024 / 1024:.1f} MB, more than this endpoint takes {limit}"


async def body_within(request: Any, limit_bytes: float) -> bytes | None:
    """The request body, counted as it is read, or None as soon as it passes ``limit_bytes`` (the rest is not
    read). A body sent without a Content-Length (chunked) was read whole before its size was checked: a 300 MB
    body grew the worker by 570 MB before the 413. A body within the limit is cached where Starlette's
    ``Request.body()`` caches it, which ``BaseHTTPMiddleware`` replays to MLflow's app."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            return None
        chunks.append(chunk)
    request._body = b"".join(chunks)
    return request._body


def encoding_problem(content_encoding: str | None) -> str | None:
    """Why a body with this ``Content-Encoding`` is refused (415), or None. MLflow's app decodes the bytes as they
    come: a gzip body failed with a UnicodeDecodeError that echoed the compressed bytes."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return None
    return (f"Content-Encoding {encoding} is not accepted: send the body uncompressed (no Content-Encoding header), "
            "as application/json or Parquet")


def header_value(text: str) -> str:
    """``text`` as an HTTP header can carry it: itself when it is printable ASCII, else percent-encoded UTF-8
    (``urllib.parse.unquote`` reads it back). A registered model name such as ``qa 名前 ü`` (MLflow takes it) made
    every answer, ``/ping`` too, a 500: header values are Latin-1."""
    if all(" " <= character <= "~" for character in text):
        return text
    from urllib.parse import quote

    return quote(text, safe="")


def _refusal(status: int, message: str, **headers: str) -> Any:
    """A refusal as MLflow's scoring app words its own: ``{"error_code", "message"}`` with a code for the status."""
    from starlette.responses import JSONResponse

    code = {413: TOO_LARGE_CODE, 415: MEDIA_TYPE_CODE, 504: TIMEOUT_CODE}.get(status, "BAD_REQUEST")
    return JSONResponse({"error_code": code, "message": message}, status_code=status, headers=headers or None)


async def invocation_problem(request: Any, task: str, max_request_mb: float, params: tuple[str, ...]) -> Any:
    """The refusal (a response) of a ``POST /invocations`` the model cannot answer as sent, or None; a JSON body is
    read (and cached for MLflow's app, cut to the model's columns: :func:`json_request`)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and too_large_problem(int(declared), max_request_mb):
        async for _chunk in request.stream():  # read and dropped, not held: a client still sending would get a
            pass  # broken pipe instead of the answer
        return _refusal(413, too_large_problem(int(declared), max_request_mb))
    content_type = request.headers.get("content-type")
    problem = content_type_problem(content_type, task) or encoding_problem(request.headers.get("content-encoding"))
    if problem is not None:
        return _refusal(415, problem)
    normal = normalized_content_type(content_type)
    if normal != content_type:  # MLflow's app reads the header from the scope, compared as written
        request.scope["headers"] = [(key, normal.encode("latin-1", "replace") if key == b"content-type" else value)
                                    for key, value in request.scope["headers"]]
    body = await body_within(request, max_request_mb * 1024 * 1024)
    if body is None:  # a chunked body past the limit: the rest is not read, and the connection not kept
        return _refusal(413, too_large_problem(None, max_request_mb), Connection="close")
    if normal.startswith(("application/json", "application/vnd.apache.parquet")):
        problem, rewritten = json_request(body, task, params) if normal.startswith("application/json") else \
            parquet_request(body, task)
        if problem is not None:
            return _refusal(400, problem)
        if rewritten is not None:
            request._body = rewritten
            request.scope["headers"] = [(key, str(len(rewritten)).encode() if key == b"content-length" else value)
                                        for key, value in request.scope["headers"]]
    return None


def request_timeout_s() -> float:
    """MLflow's limit on one request's time, as its scoring app reads it (``$MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT``)."""
    from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT

    return float(MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get())


def timeout_problem(timeout_s: float) -> str:
    """The 504's message: MLflow's said only "Request processing time exceeded limit", in plain text."""
    return (f"the request took longer than the server's limit of {timeout_s:g} s and was stopped: send fewer inputs "
            "per request (or shorter texts), or start serve-model with a larger --timeout-s")


def served(app: Any, name: str, version: str, task: str, max_request_mb: float = DEFAULT_MAX_REQUEST_MB,
           params: tuple[str, ...] = ()) -> Any:
    """``app`` (MLflow's scoring app) with the served version's headers on every response (a name that is not
    printable ASCII percent-encoded: :func:`header_value`), ``GET /model``, a request body of a type (or encoding)
    the model cannot take refused with a 415 that names the accepted ones (see :func:`content_type_problem`; an
    accepted type in any letter case is served), a body over ``max_request_mb`` with a 413, a JSON request it cannot
    answer as sent (``params`` other than those the model declares, too) refused with a 400 that says what to send
    (:func:`json_request`), and client errors (4xx) cut to what to fix: no echo of the request, no server stack
    trace."""
    from starlette.responses import JSONResponse, Response

    headers = {"X-Model-Name": header_value(name), "X-Model-Version": header_value(version)}

    timeout_s = request_timeout_s()

    @app.middleware("http")
    async def accepted_content_types(request, call_next):  # noqa: ANN001, ANN202 - Starlette's middleware signature
        if request.method == "POST" and request.url.path.rstrip("/") == "/invocations":
            refusal = await invocation_problem(request, task, max_request_mb, tuple(params))
            if refusal is not None:
                return refusal
            REQUEST_DEADLINE.set(time.monotonic() + timeout_s + DEADLINE_GRACE_S)  # read by the model's thread
            response = await call_next(request)
            if response.status_code == 504:  # MLflow's: plain text under a JSON type, no hint
                return _refusal(504, timeout_problem(timeout_s))
            return response
        return await call_next(request)

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
            return Response(body, status_code=response.status_code, media_type=response.media_type,
                            headers={k: v for k, v in response.headers.items() if k.lower() == "connection"})
        payload.pop("stack_trace", None)  # the server's traceback is the server's log's business, not the client's
        if isinstance(payload.get("message"), str):
            payload["message"] = concise(payload["message"])
        return JSONResponse(payload, status_code=response.status_code,
                            headers={k: v for k, v in response.headers.items() if k.lower() == "connection"})

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
            os.environ[FOLDER_ENV] = folder  # where a followed alias's next versions are downloaded too
            os.environ[scoring_server._SERVER_MODEL_PATH] = mlflow.artifacts.download_artifacts(uri, dst_path=folder)
            uvicorn.run("tuneline.serving_app:create_app", factory=True, host=args.host, port=args.port,
                        workers=args.workers)
    except KeyboardInterrupt:
        pass


def _exit_quietly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    main()
