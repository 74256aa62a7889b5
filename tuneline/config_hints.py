"""The ``-c CONFIG`` of a hint, named as the user's own config file wherever a retraining run's text shows.

A step deep in a run says what to run next (``tuneline data requeue -c CONFIG b05.csv --reason ...``, ``tuneline data
drop -c CONFIG ...``) but never knows which file the config came from: the config reaches it as an object. The
command that started the run does (``tuneline retrain -c loop.yaml``), and so do ``tuneline deploy`` and ``tuneline
serve``, which pass the file to each retraining run as its ``config_file`` parameter. Inside such a run, its log
lines (Prefect's run loggers) and its summary name the file; outside one, a command fills it in as it prints
(:func:`with_config`). Prod-stack QA: a run on a worker said ``-c CONFIG`` in its log and ``retrain_summary.json``.
"""

from __future__ import annotations

import logging
import shlex

PLACEHOLDER = "-c CONFIG "
#: the loggers of Prefect's run logs (``get_run_logger()``, ``log_prints``)
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


def with_config(text: str, config_path: str | None) -> str:
    """``text`` with its ``-c CONFIG`` hints naming ``config_path`` (unchanged without one)."""
    return text.replace(PLACEHOLDER, f"-c {shlex.quote(str(config_path))} ") if config_path else text


def run_config_file() -> str | None:
    """The ``config_file`` parameter of the flow run this thread works for, or None (no run, or not given)."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    value = (getattr(context, "parameters", None) or {}).get("config_file") if context is not None else None
    return str(value) if value else None


def named(text: str) -> str:
    """``text`` naming the current run's config file (:func:`run_config_file`)."""
    return with_config(text, run_config_file()) if PLACEHOLDER in text else text


class _NamedConfig(logging.Filter):
    """Rewrites a run log record's ``-c CONFIG`` into the run's config file (the record is formatted once here)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            if PLACEHOLDER in message and (path := run_config_file()):
                record.msg, record.args = with_config(message, path), None
        except Exception:  # noqa: BLE001 - a hint left as CONFIG must never lose the line
            pass
        return True


def name_config_in_run_logs() -> None:
    """Install :class:`_NamedConfig` on Prefect's run loggers (once)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NamedConfig) for f in logger.filters):
            logger.addFilter(_NamedConfig())
