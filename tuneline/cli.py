"""The ``tuneline`` command line: train, demo, validate, predict, show-config, serve, watch, promote, rollback, history.

Errors the user can fix (config, data, files: :class:`tuneline.errors.UserError`) print one ``tuneline:`` line and
exit non-zero, with no traceback on the terminal; the Prefect run log and the MLflow run keep the full story.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from tuneline import runtime  # noqa: F401  (offline defaults first)
from tuneline import serving
from tuneline.config import ConfigError, TunelineConfig, UsageError, build_config, default_learning_rate, load_config
from tuneline.errors import UserError, bytes_shown
from tuneline.interrupts import (Terminated, interrupt_in, note_stop_signals, signal_of, stop_signals_noted,
                                 terminate_as_interrupt)
from tuneline.runtime import encoding_hint, redact, redact_for

EPILOG = "Overrides use dotted keys: --set train.learning_rate=3e-5 --set model.strategy=lora"


def _positive_seconds(text: str) -> float:
    """An argparse type: seconds, more than 0 and finite (``watch --interval -3`` scanned back to back, 110 ledger
    transactions a second, and ``0`` fell back to the config's interval without a word: operator QA)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds more than 0")
    return seconds


def _add_config_args(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--config", "-c", type=Path, required=required, help="YAML config file")
    parser.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value by dotted key (repeatable)")


def read_config(path: Path | str, overrides: list[str]) -> TunelineConfig:
    """:func:`tuneline.config.load_config`, after two mistakes it named in the wrong words: a config file that is
    empty or holds only comments ("invalid configuration: data: Field required") and one saved as UTF-16
    (PowerShell's ``>`` and Notepad's "Unicode" write it so: "byte 0xff is not UTF-8")."""
    import codecs

    from tuneline.config import read_yaml

    path = Path(path)
    try:
        data = path.read_bytes() if path.is_file() else None
    except OSError:
        data = None  # load_config names what is wrong with the path
    if data is not None:
        utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
            len(data) >= 4 and b"\x00" in data[:2] and data[:64].count(b"\x00") * 3 >= min(len(data), 64))
        if utf16:
            raise ConfigError(f"config file {path} is saved as UTF-16 (as PowerShell's > and Notepad's 'Unicode' "
                              "write it); save it as UTF-8 (YAML files are UTF-8), e.g. in PowerShell: "
                              f"(Get-Content '{path}') | Set-Content -Encoding utf8 '{path}'")
        try:
            empty = read_yaml(data.decode("utf-8-sig")) is None
        except Exception:  # noqa: BLE001 - not UTF-8, not YAML: load_config names the line
            empty = False
        if empty:
            raise ConfigError(f"config file {path} is empty (nothing but blank lines or comments); write the config "
                              "in it (at least data.path; `tuneline show-config` prints every key with its default)")
    return load_config(path, overrides)


class _Parser(argparse.ArgumentParser):
    """argparse with the user's words in its errors: a mistyped command gets its likely meaning (``did you mean
    train?``), and a command's internal name (``command``, ``data_command``) is never printed."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:
            import difflib

            close = difflib.get_close_matches(str(value), list(action.choices), n=1, cutoff=0.6)
            what = f"{self.prog} command".removeprefix("tuneline ")
            raise argparse.ArgumentError(None, f"unknown {what} {value!r}" + (f"; did you mean {close[0]}?" if close
                                                                              else "")
                                         + f" (choose from {', '.join(action.choices)})")
        super()._check_value(action, value)

    def error(self, message: str) -> Any:  # noqa: ANN401 - argparse's own signature (it exits)
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and action.dest:
                message = message.replace(f"required: {action.dest}",
                                          f"required: a command ({', '.join(action.choices)})")
        return super().error(message)


def _version() -> str:
    """The installed distribution's version (what pip installed), for ``tuneline --version``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"tuneline {version('tuneline')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "tuneline (not installed: no version recorded)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tuneline", description="Validated, tracked, registered and gated "
                     "fine-tuning of transformer encoders (Prefect + MLflow).", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=_version(),
                        help="print the installed tuneline's version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="fine-tune, evaluate, register and gate a model from a config",
                           description="Run the training flow on your data.", epilog=EPILOG)
    _add_config_args(train, required=True)

    demo = sub.add_parser("demo", help="run the full flow on the built-in demo data with MiniLM",
                          description="Generate the demo support-ticket dataset into the work folder and run the "
                          "training flow on it with the embedded defaults (MiniLM, local Prefect, SQLite MLflow).",
                          epilog=EPILOG)
    demo.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override one demo config value by dotted key (repeatable)")
    demo.add_argument("--write-config", type=Path, metavar="FILE",
                      help="do not train: write the demo data and a config for the retraining loop (landing "
                           "folder 'landing/' beside FILE) to FILE, for `tuneline retrain/serve/watch --config FILE`")
    demo.add_argument("--force", action="store_true",
                      help="with --write-config: overwrite FILE when it exists (without it, an existing FILE is "
                           "refused and left as it is)")

    show = sub.add_parser("show-config", help="print the fully resolved config (defaults filled in) as YAML",
                          description="Validate a config and print it with every default filled in; without "
                                      "--config, the demo's config.", epilog=EPILOG)
    _add_config_args(show, required=False)

    validate = sub.add_parser("validate", help="load, validate and split only (no model): a pre-flight data check",
                              description="Read every input file with the task kind's reader, apply its data "
                              "contract, split, write the quarantine and print the accounting per file and split. "
                              "Exits 1 when the rejected fraction is over data.max_bad_fraction.", epilog=EPILOG)
    _add_config_args(validate, required=True)
    validate.add_argument("--out", type=Path, default=None,
                          help="folder for quarantine.csv (default: <work_dir>/validate)")

    predict = sub.add_parser("predict", help="predict with a registered model",
                             description="Load models:/NAME@ALIAS (or any MLflow model URI) and predict. Inputs: "
                             "texts as arguments or stdin lines, or --input FILE (CSV, TSV, JSONL, Parquet or XLSX, "
                             "also gzip/bzip2/xz-compressed) with "
                             "the columns the model's task takes (text; text and text_pair; tokens lists), a text "
                             "file of one text a line, or for NER a CoNLL file of words.")
    predict.add_argument("--model", "-m", required=True, help="e.g. models:/tuneline-demo-intents@champion")
    predict.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI or sqlite:///./mlflow.db")
    predict.add_argument("--input", "-i", type=Path, help="a file of inputs, one row each, with the task's columns")
    predict.add_argument("--output", "-o", type=Path, help="with --input: write every row with its prediction, "
                         "model_name and model_version to this file (.csv, .tsv, .jsonl or .parquet), in chunks")
    predict.add_argument("--format", dest="input_format", default="auto",
                         choices=("auto", "csv", "tsv", "jsonl", "parquet", "xlsx", "conll", "lines"),
                         help="the --input file's format (default: from its name; a .txt file is one text a line, "
                         "or for an NER model CoNLL words when it has sentences between blank lines)")
    predict.add_argument("--skip-lines", type=int, default=0, metavar="N",
                         help="CSV/TSV --input: the N lines above the header that are no part of the table (a "
                         "title, export notes); default 0")
    predict.add_argument("--encoding", default="utf-8",
                         help="the --input file's (or stdin's) text encoding (default utf-8; a byte-order mark "
                         "overrides it)")
    predict.add_argument("--batch-size", type=int, default=1000, help="with --output: rows per chunk (default 1000)")
    predict.add_argument("--pair", action="append", default=[], metavar="TEXT",
                         help="sentence-pair models: the second text of each positional text (repeat, in order)")
    predict.add_argument("texts", nargs="*", help="texts (default: one per line on stdin)")

    doctor = sub.add_parser("doctor", help="find (and with --fix, neutralise) half-registered versions and stale "
                            "checkpoints", description="Registry: versions whose run died between registration and "
                            "gate, also a run killed outright that MLflow still shows RUNNING (tagged orphaned and "
                            "stripped of 'challenger' with --fix, the dead run closed KILLED; 'champion' is never "
                            "touched, but a champion tagged failed or orphaned is named), and versions whose gate is "
                            "still to come. Runs: a run MLflow shows RUNNING whose process is gone (killed "
                            "mid-training; closed KILLED with --fix). Ledger: batches held under a live lease by a "
                            "run whose process is gone (released with --fix). Prefect: the retraining's concurrency "
                            "slot counted with no run holding it, as a server restart leaves it (freed with --fix). "
                            "Work folder: checkpoint folders left "
                            "by failed runs and the tokenization cache, with their sizes (deleted with --fix; "
                            "checkpoints younger than an hour are kept, and counted).")
    doctor.add_argument("--model", "-m", action="append", default=[], help="registered model name (default: all, "
                        "or the config's)")
    doctor.add_argument("--tracking-uri", help="default: the config's, else $MLFLOW_TRACKING_URI or "
                        "sqlite:///./mlflow.db")
    doctor.add_argument("--work-dir", type=Path, default=None, help="default: the config's work_dir, else "
                        "./tuneline-output")
    _add_config_args(doctor, required=False)  # the loop's other commands take -c: its model, stores and work folder
    doctor.add_argument("--ledger-url", help="the batch ledger's database: default $TUNELINE_LEDGER_URL, else "
                        "tuneline-ledger.db beside a SQLite MLflow store")
    doctor.add_argument("--fix", action="store_true", help="apply the fixes instead of only reporting")

    serve = sub.add_parser("serve", help="serve the retraining loop's Prefect deployments for a config",
                           description="Serve train, retrain-scheduled (retrain.cron), retrain-on-batch (on each "
                           "landed batch), watch-landing (retrain.landing) and predict-batch until Ctrl-C (needs a "
                           "Prefect API: `prefect server start` and PREFECT_API_URL).", epilog=EPILOG)
    _add_config_args(serve, required=True)
    serve.add_argument("--cron", help="override retrain.cron, e.g. '0 3 * * *' (read in retrain.timezone)")
    deploy = sub.add_parser("deploy", help="deploy the retraining loop's Prefect deployments to a work pool",
                            description="Register the deployments `tuneline serve` serves (train, retrain-scheduled, "
                            "retrain-on-batch, watch-landing, predict-batch) with the Prefect API for a work pool's "
                            "workers to run (`prefect worker start --pool NAME`), the flows loaded from --source. "
                            "Creates the pool (type process) when absent. Needs PREFECT_API_URL.", epilog=EPILOG)
    _add_config_args(deploy, required=True)
    deploy.add_argument("--pool", required=True, help="work pool name (created as a process pool when absent)")
    deploy.add_argument("--source", type=Path, help="folder holding tuneline's flows/, at the same path here and "
                        "for the workers (default: the one this tuneline is imported from)")
    watch = sub.add_parser("watch", help="scan the landing folder and announce new batches to Prefect",
                           description="Every interval, record the complete batches in retrain.landing in the batch "
                           "ledger and emit tuneline.batch.landed for each new one (which triggers retrain-on-batch "
                           "of `tuneline serve`). Needs PREFECT_API_URL. Ctrl-C stops it.", epilog=EPILOG)
    _add_config_args(watch, required=True)
    watch.add_argument("--once", action="store_true", help="scan once and exit")
    watch.add_argument("--interval", type=_positive_seconds, metavar="S", help="seconds between scans "
                       "(default: retrain.watch_interval_s)")
    _add_promotion_parsers(sub)
    serving.add_parser(sub)
    from tuneline import cli_loop

    cli_loop.add_parsers(sub, _add_config_args, EPILOG)
    return parser


def _add_promotion_parsers(sub) -> None:  # noqa: ANN001 - argparse's private subparsers action
    stores = ("--tracking-uri: default $MLFLOW_TRACKING_URI or sqlite:///./mlflow.db; --ledger-url (the database "
              "of the promotion history): default $TUNELINE_LEDGER_URL, else tuneline-ledger.db beside a SQLite "
              "MLflow store. promote and rollback take the model's gate lock ($TUNELINE_LOCK_URL, else "
              "tuneline-locks.db beside the store), so a move never interleaves with a gate.")
    promote = sub.add_parser("promote", help="move a registered model's champion alias to a version, by hand",
                             description="Point NAME@champion at VERSION and record the move (who, when, from which "
                             "version, why) in the append-only promotion history. Compare-and-set: refused when "
                             "the champion moves meanwhile; refused for a version that does not exist, is tagged "
                             "tuneline.status=failed|orphaned, or that a tuneline run registered and its gate has "
                             "not scored yet. A version the gate kept out is promoted, with its reasons printed.",
                             epilog=stores)
    promote.add_argument("name", metavar="NAME", help="registered model name")
    promote.add_argument("version", metavar="VERSION", help="model version number to make champion, e.g. 3")
    promote.add_argument("--reason", required=True, help="why (kept in the history), e.g. 'hotfix for ticket 42'")
    rollback = sub.add_parser("rollback", help="move champion back to the version it replaced",
                              description="Point NAME@champion back at the version the current champion replaced "
                              "when it was promoted, as the promotion history records it, and record the rollback. "
                              "Rolling back again walks further back. An error when the history has no earlier "
                              "version.", epilog=stores)
    rollback.add_argument("name", metavar="NAME", help="registered model name")
    rollback.add_argument("--reason", help="why (kept in the history; default: 'rolled back from v<N>')")
    history = sub.add_parser("history", help="print every recorded move of a model's champion alias",
                             description="One line per move, oldest first: time (UTC), action (gate, promote, "
                             "rollback), from -> to, actor (run <id> or user <login>@<host>), reason. Warns when the "
                             "champion is not where the last recorded move put it.", epilog=stores)
    history.add_argument("name", metavar="NAME", help="registered model name")
    for command in (promote, rollback, history):
        command.add_argument("--tracking-uri", help="MLflow tracking/registry URI (see below)")
        command.add_argument("--ledger-url", help="database of the promotion history (see below)")
        command.add_argument("--config", "-c", type=Path, default=None,
                             help="take the tracking URI and the ledger from this config (the options above win)")


def _config_file(args: argparse.Namespace) -> str | None:
    """The config file a command was given, absolute: a worker's runs start in another folder, and their hints
    (``tuneline data drop -c CONFIG ...``) name it (:mod:`tuneline.config_hints`)."""
    path = getattr(args, "config", None)
    return str(Path(path).resolve()) if path else None


def _demo_config(overrides: list[str], write: bool = True) -> TunelineConfig:
    """The demo's config; ``write``: also generate its data file (show-config only prints, so it writes nothing and
    its standard output stays pure YAML)."""
    from tuneline.demo import demo_config_dict, write_demo_csv

    data_keys = [item.split("=", 1)[0].strip() for item in overrides
                 if item.split("=", 1)[0].strip() in ("data.path", "data.train", "data.validation", "data.test")]
    if data_keys:  # it was overwritten below without a word: show-config printed, and demo ran on, the demo's data
        raise ConfigError(f"--set {data_keys[0]} needs a config: the demo makes its own data. Train on your file with "
                          "tuneline train --config FILE (tuneline demo --write-config FILE writes one to start from)")
    config = build_config(demo_config_dict(Path("support_tickets.csv")), overrides)
    config.data.path = (Path(config.work_dir) / "demo" / "support_tickets.csv").resolve()  # inside the work folder
    if write:
        from tuneline.runtime import check_work_dir

        check_work_dir(config.work_dir)  # the demo's data goes there first
        print(f"demo data written to {write_demo_csv(config.data.path)}")
    return config


def _check_demo_config_target(path: Path, force: bool) -> None:
    """Before the demo data is written: ``--write-config FILE`` must be a file that can be written, and an existing
    one is kept unless ``--force`` (it silently replaced a user's own config; a folder failed after the data was
    written)."""
    if path.is_dir():
        raise UsageError(f"--write-config {path} is a folder; give a file name in it, e.g. "
                         f"--write-config {shlex.quote(str(path / 'demo-loop.yaml'))}")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UsageError(f"--write-config {path}: {parent} is a file, not a folder; give a path in a folder")
    if path.exists() and not force:
        raise UsageError(f"--write-config {path} exists; give another file name, or add --force to overwrite it")


def _write_demo_loop_config(config: TunelineConfig, given: Path) -> int:
    """The demo config with a landing folder, as a YAML file: the start of the retraining-loop walkthrough."""
    import yaml

    path = given.resolve()
    landing = path.parent / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    config.retrain.landing = str(landing)
    config.work_dir = (path.parent / config.work_dir).resolve() if not config.work_dir.is_absolute() else config.work_dir
    raw = config.model_dump(mode="json", exclude_defaults=True)
    raw["task"], raw["retrain"]["landing"] = config.task, "landing"
    if config.train.learning_rate == default_learning_rate(config.model):
        # filled from the strategy, not chosen: pinned in the file, `--set model.strategy=lora` trained the adapters
        # at full fine-tuning's 5e-5 and learned nothing (user trial of the walkthrough)
        raw["train"].pop("learning_rate", None)
    raw["data"]["path"] = str(config.data.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    # the next commands as they run from here: the file as given, its landing folder beside it, shell-quoted
    print(f"retraining-loop config written to {path} (landing folder {landing})\n"
          f"next: tuneline retrain --config {shlex.quote(str(given))}   then   "
          f"tuneline demo-batch {shlex.quote(str(given.parent / 'landing'))} -n 1")
    return 0


#: warnings the printed summary lists (summary.json has them all)
WARNINGS_SHOWN = 5
#: how many labels `tuneline validate` lists before "..."
SHOWN_LABELS = 60


def excerpt_line(message: str, width: int = 160) -> str:
    """A warning on one line of at most ``width`` characters (the log above has it whole)."""
    flat = " ".join(message.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def print_warnings(warned: list[str] | None, kept_in: str | None) -> None:
    """The run's warnings in a summary: how many, the first :data:`WARNINGS_SHOWN` on a line each (all of them in
    the file ``kept_in``, where the run wrote one)."""
    if not warned:
        return
    print(f"  warnings          : {len(warned)} (logged above" + (f"; all in {kept_in})" if kept_in else ")"))
    for message in warned[:WARNINGS_SHOWN]:
        print(f"    - {excerpt_line(message)}")
    if len(warned) > WARNINGS_SHOWN:
        print(f"    ... and {len(warned) - WARNINGS_SHOWN} more")


def _print_summary(summary) -> None:
    print("\n" + "=" * 72)
    print("tuneline run finished")
    named = getattr(summary, "experiment", "")
    print(f"  MLflow run        : {summary.run_id} (experiment "
          + (f"{named!r}, id {summary.experiment_id})" if named else f"{summary.experiment_id})"))
    print(f"  tracking store    : {summary.tracking_uri}")
    print(f"  registered model  : {summary.registered_model} version {summary.version} "
          f"(aliases: {', '.join(summary.aliases) or 'none'})")
    print(f"  gate              : {'PROMOTED to champion' if summary.promoted else 'not promoted'} - "
          + (getattr(summary, "gate_line", "") or "; ".join(summary.gate_reasons)))
    if getattr(summary, "split_rows", None):
        print(f"  data              : {summary.records_read:,} records read; "
              + ", ".join(f"{name} {rows:,}" for name, rows in summary.split_rows.items()) + " rows")
    print(f"  quarantine        : {summary.rejected_records} rejected record{'s' * (summary.rejected_records != 1)} "
          f"({summary.duplicate_records} of "
          f"them copies: of an earlier record, or test/validation rows also in train) in {summary.quarantine_file}")
    print(f"  reports           : {summary.run_dir}")
    if resumed := resumed_line(summary):
        print(resumed)
    if getattr(summary, "truncation", ""):
        print(f"  truncation        : {summary.truncation}")
    if getattr(summary, "time", ""):
        print(f"  {summary.time}")
    print_warnings(getattr(summary, "warnings", None), "summary.json")
    print(f"  test {summary.primary_metric} (before vs after):")
    for name, metrics in summary.comparison.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        print(f"    {name:<12} {shown}")
    print(f"  browse            : mlflow ui --backend-store-uri {shlex.quote(summary.tracking_uri)}")
    print(f"  load              : mlflow.pyfunc.load_model('models:/{summary.registered_model}@"
          f"{'champion' if summary.promoted else 'challenger'}')")
    print("=" * 72)


#: the commands that run a training flow in this process: SIGTERM stops them as a Ctrl-C does, with their own last
#: line (``serve``, ``serve-model`` and ``watch`` handle SIGTERM themselves; the rest have nothing to clean up)
TERMINATE_AS_INTERRUPT = ("train", "demo", "retrain")
#: for a command of :data:`TERMINATE_AS_INTERRUPT`, how many stop signals the process had noted before it began: one
#: that ends with 0 although a SIGINT or SIGTERM reached it since ends as stopped (:func:`main`)
_NOTED_FROM: list[int] = []


def _exit_at_next_ctrl_c(code: int) -> None:
    """After a Ctrl-C was handled, a further SIGINT ends the process at once with ``code``.

    What is left to run is cleanup: Prefect stopping its temporary API server at exit, threads draining logs. A
    second Ctrl-C there (or a SIGINT still pending from the first) raised KeyboardInterrupt in an atexit callback
    (a traceback after the one-line message) or escaped the interpreter's shutdown, which then killed the process
    with SIGINT (exit -2, not 130: one such run in CI). The temporary server is stopped by
    :mod:`tuneline.parent_watch` when this process is gone.
    """
    import os

    def exit_now(_signum: int, _frame: object) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, exit_now)
        signal.signal(signal.SIGTERM, exit_now)  # a service manager that asks again ends it with the same code


def main(argv: list[str] | None = None) -> int:
    """The ``tuneline`` command; a stop that a finalizer swallowed (:func:`tuneline.interrupts.kept_lost_interrupts`)
    still ends it as stopped: 143 for SIGTERM, 130 for Ctrl-C, after what the command finished."""
    from tuneline.interrupts import kept_lost_interrupts

    _NOTED_FROM.clear()
    with kept_lost_interrupts() as lost:
        code = _main(argv)
    if code == 0 and not lost and _NOTED_FROM:  # a stop whose exception something lost or swallowed on the way
        lost = stop_signals_noted()[_NOTED_FROM[0]:]
    if code == 0 and lost:
        term = lost[0] == signal.SIGTERM
        print(f"tuneline: {'terminated (SIGTERM)' if term else 'interrupted'} as it was finishing; what it printed "
              "above was done", file=sys.stderr)
        return 143 if term else 130
    return code


def _main(argv: list[str] | None = None) -> int:
    from tuneline.deployments.zombies import emit_heartbeats_from_this_process

    emit_heartbeats_from_this_process()  # before Prefect reads its settings: runs of every command beat often enough
    parser = build_parser()
    # `predict "A" --pair a "B" --pair b`: argparse takes the positional texts in one run, so "B" is left over;
    # for predict such left-over words are more texts, in order (the other commands refuse them as before)
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "command", None) == "predict" and not any(e.startswith("-") for e in extra):
        args.texts = [*args.texts, *extra]
    elif extra:
        parser.parse_args(argv)  # argparse's own "unrecognized arguments" message and exit 2
    if getattr(args, "command", None) in TERMINATE_AS_INTERRUPT:
        terminate_as_interrupt()
        if note_stop_signals():
            _NOTED_FROM.append(len(stop_signals_noted()))
    try:
        if args.command == "show-config":
            return _show_config(args)
        if args.command == "predict":
            return _predict(args)
        if args.command == "doctor":
            return _doctor(args)
        if args.command in ("promote", "rollback", "history"):
            return _promotions(args)
        if args.command == "serve-model":
            return serving.serve_model_command(args)
        from tuneline import cli_loop

        handled = cli_loop.run(args, lambda a: secrets_as_references(read_config(a.config, a.overrides)))
        if handled is not None:
            return handled
        if args.command == "demo" and args.write_config is not None:  # before the demo data is written
            _check_demo_config_target(args.write_config, args.force)
        elif args.command == "demo" and args.force:
            raise UsageError("--force goes with --write-config FILE (it lets FILE be overwritten)")
        config = _demo_config(args.overrides) if args.command == "demo" else read_config(args.config, args.overrides)
        if args.command == "demo" and args.write_config is not None:
            return _write_demo_loop_config(config, args.write_config)
        if args.command == "validate":
            return _validate(config, args.out)
        if args.command == "serve":
            from tuneline.deployments.loop import serve_loop, with_cron
            from tuneline.events import require_prefect_api

            config = with_cron(config, args.cron)  # a bad --cron is a config error, API or not
            # without a reachable API Prefect would serve on a private throwaway server no watcher or UI can reach
            require_prefect_api("serve the loop's deployments on", "(the API `tuneline watch` and the UI use)")
            serve_loop(config, _config_file(args))
            return 0
        if args.command == "deploy":
            from tuneline.deployments.deploy import deploy_command

            return deploy_command(config, args.pool, args.source, _config_file(args))
        if args.command == "watch":
            return _watch(config, args.interval, args.once)
        from tuneline import timings
        from tuneline.early_api import start_ephemeral_api_early

        timings.mark_command_start()
        timings.moment("config loaded")
        from tuneline.runtime import check_run_can_write

        if args.command == "train":  # before the API starts: a refusal leaves no server to stop
            from tuneline.runtime import check_base_model, check_strategy

            check_base_model(config.model.base, config.tokenize.max_length)
            check_strategy(config)
        check_run_can_write(config)
        wait_for_api = start_ephemeral_api_early()  # comes up while the flow's modules import
        from tuneline.errors import quiet_user_error_tracebacks
        from tuneline.heap import import_without_collections

        train_flow = import_without_collections("tuneline.flows.train").train_flow

        timings.moment("flow imported")
        wait_for_api()
        timings.moment("Prefect API ready")
        quiet_user_error_tracebacks()
        _print_summary(train_flow(secrets_as_references(config)))
        return 0
    except ConfigError as error:
        print(f"tuneline: {_scrubbed(error, args)}", file=sys.stderr)
        return 2
    except UserError as error:
        print(f"tuneline: {_scrubbed(error, args)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        return _stopped(143 if isinstance(stop, Terminated) else 130, args)  # what a shell reports: SIGTERM / SIGINT
    except BrokenPipeError:  # `tuneline data log | head`: the reader stopped reading, as it may
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout at exit, into the closed pipe
        except OSError:
            pass
        return 141  # 128 + SIGPIPE, what a shell reports for a command cut short by its pipe
    except Exception as error:  # a bug or an outage: its traceback is above (Prefect) and in the MLflow run
        from tuneline.errors import FREE_SPACE, out_of_space

        if (stop := interrupt_in(error)) is not None:  # raised while handling a Ctrl-C or SIGTERM: that stop
            return _stopped(143 if signal_of(type(stop)) == signal.SIGTERM else 130, args)
        if full := out_of_space(error):
            print(f"tuneline: {full}: {FREE_SPACE}", file=sys.stderr)
            return 1
        if isinstance(error, OSError) and error.filename is not None:
            # a path the machine refused (permissions, a file where a folder should be, a full disk): the user's to fix
            print(f"tuneline: {error.strerror or type(error).__name__}: {error.filename}"
                  + (f" -> {error.filename2}" if error.filename2 else "")
                  + ": check that path, its permissions and the free disk space", file=sys.stderr)
            return 1
        hint = next((h for url in _store_urls(args) if (h := encoding_hint(url))), "")
        if hint:  # a store URL whose password does not parse as written: the config's problem after all
            print(f"tuneline: {type(error).__name__}: {_scrubbed(error, args)}{hint}", file=sys.stderr)
            return 1
        print(f"tuneline: {type(error).__name__}: {_scrubbed(error, args)}\n"
              "tuneline: this is not a problem with your data or config; the full traceback is in the Prefect run "
              "log and on the MLflow run (tag tuneline.error)", file=sys.stderr)
        return 1


def _stopped(code: int, args: argparse.Namespace) -> int:
    """The end of a command stopped by a Ctrl-C (``code`` 130) or a SIGTERM (143): its own line, what comes next."""
    _exit_at_next_ctrl_c(code)
    command = getattr(args, "command", None)
    print("tuneline: " + ("terminated (SIGTERM)" if code == 143 else "interrupted") + (
        "; any batches it had claimed were given back: the next retrain takes them" if command == "retrain" else
        "; a re-run of the same config resumes from the last checkpoint training saved (if none yet, from the "
        "start)" if command in ("train", "demo") else ""), file=sys.stderr)
    return code


def _store_urls(args: argparse.Namespace | None) -> list[str]:
    """The database and server URLs a command may have opened: the environment's and the command line's."""
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "TUNELINE_LEDGER_URL", "TUNELINE_LOCK_URL")
    given = [getattr(args, key, None) for key in ("tracking_uri", "ledger_url")] if args is not None else []
    return [url for url in [*(os.environ.get(name) for name in names), *given] if isinstance(url, str) and url]


def _scrubbed(error: object, args: argparse.Namespace | None) -> str:
    """``redact(error)``, with the pieces of every store URL's password hidden too (:func:`redact_for`): a password
    holding a raw ``@`` or ``:`` is quoted in part by the parser's or the driver's error (operator QA)."""
    text = redact(error)
    for url in _store_urls(args):
        text = redact_for(text, url)
    return text


def _show_config(args: argparse.Namespace) -> int:
    """Print the resolved config as YAML with every literal password as ``***`` (:func:`redact`, as every other
    command logs it: operator QA saw ``ledger.url``'s password printed in clear). A secret written as ``${VAR}`` is
    printed as written: it names where the secret is, and is none."""
    import re

    import yaml

    #: ``scheme://user:${PW}@`` and ``password=${PW}``: a secret given only as references
    reference = r"(?:\$\{[A-Za-z_][A-Za-z0-9_]*\})+"
    url_reference = re.compile(rf"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^\s:/@]*:{reference}@")
    query_reference = re.compile(rf"=({reference})(?=&|\s|$)")

    def shown(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: shown(item) for key, item in value.items()}
        if isinstance(value, list):
            return [shown(item) for item in value]
        if not isinstance(value, str):
            return value
        literal = query_reference.sub("=", url_reference.sub(r"\g<scheme>", value))  # the references left out
        return value if redact(literal) == literal else redact(value)

    config = read_config(args.config, args.overrides) if args.config else _demo_config(args.overrides, False)
    dumped = config.model_dump(mode="json")
    dumped["tracking"]["registered_model"] = config.registered_model_name  # tuneline-<task>, not null (README QA)
    print(yaml.safe_dump(shown(dumped), sort_keys=False))
    if config.tracking.tracking_uri is None:  # null shown, but the environment or the folder decides (CLI QA)
        from tuneline.runtime import resolve_tracking_uri

        source = "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else "the current folder"
        print(f"# tracking.tracking_uri is null: a run from here uses {redact(resolve_tracking_uri(None))} "
              f"({source})")
    return 0


def secrets_as_references(config: TunelineConfig) -> TunelineConfig:
    """Keep a literal tracking-URI secret out of the parameters Prefect stores for the flow run: the URI moves to
    the process environment and the config refers to it as ``${TUNELINE_TRACKING_URI}``."""
    import os

    from tuneline.runtime import has_credentials

    uri = config.tracking.tracking_uri
    if not has_credentials(uri):
        return config
    os.environ["TUNELINE_TRACKING_URI"] = uri
    safe = config.model_copy(deep=True)
    safe.tracking.tracking_uri = "${TUNELINE_TRACKING_URI}"
    return safe


def _is_registered(client: Any, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def _existing_store(uri: str) -> str:
    """``uri``, unless it names a local SQLite file that is not there: opening it would create an empty store (and a
    lock register and ledger beside it) in whatever folder the command ran from, and then report the model missing."""
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        raise UserError(f"no MLflow store at {uri[len('sqlite:///'):]}: run this in the folder where you trained "
                        "(the one holding mlflow.db), or pass --tracking-uri")
    from tuneline.runtime import require_tracking_server

    return require_tracking_server(uri)


def _require_registered(client: Any, uri: str, names: list[str], option: str) -> None:
    """A one-line error naming the registered models that are there, when one of ``names`` is not."""
    missing = [name for name in names if not _is_registered(client, name)]
    if missing:
        known = [m.name for m in client.search_registered_models(max_results=20)]
        raise UserError(f"registry {redact(uri)} has no registered model {', '.join(map(repr, missing))} (it has: "
                        f"{', '.join(known) or 'none'}); check {option} and --tracking-uri")


def _doctor(args: argparse.Namespace) -> int:
    """Report (and with --fix repair) orphaned versions and stale work-folder state."""
    import shutil
    import time

    from mlflow.tracking import MlflowClient

    from tuneline.locking import unheld_retraining_slot
    from tuneline.promotions import NEVER_CHAMPION, champion_version
    from tuneline.registry import STATUS, find_orphans, find_pending, neutralise_orphans
    from tuneline.run_process import ALIVE, close_dead_run, dead_runs
    from tuneline.runtime import resolve_tracking_uri

    if args.config is not None:  # what the flags leave unsaid comes from the config, as the loop's commands read it
        config = read_config(args.config, args.overrides)
        args.model = args.model or [config.registered_model_name]
        args.tracking_uri = args.tracking_uri or config.tracking.tracking_uri
        args.work_dir = args.work_dir or Path(config.work_dir)
        args.ledger_url = args.ledger_url or config.ledger.url
    args.work_dir = args.work_dir or Path("tuneline-output")
    uri = _existing_store(resolve_tracking_uri(args.tracking_uri))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    unregistered: list[str] = []
    if args.config is not None and args.model and not _is_registered(client, args.model[0]):
        # the config's model before its first version: a first training killed mid-run left a RUNNING run and a
        # checkpoint, which doctor refused to look at ("has no registered model", training QA)
        unregistered = list(args.model)
    else:
        _require_registered(client, uri, args.model, "--model")
    names = [n for n in args.model if n not in unregistered] if args.model else [
        m.name for m in client.search_registered_models()]
    print(f"registry {redact(uri)}: {len(names)} registered model(s)")
    for name in unregistered:
        print(f"  {name}: no registered version yet")
    for name in names:
        orphans = (neutralise_orphans if args.fix else find_orphans)(client, name)
        for orphan in orphans:
            print(f"  {name} v{orphan.version}: run {orphan.run_id} {orphan.run_status}, gate never finished"
                  + (" (held challenger)" if orphan.had_challenger else "") + (": fixed" if args.fix else ""))
        if not orphans:  # those fixed before are named: "no orphaned versions" read as if none had ever been found
            tagged = sorted((int(v.version) for v in client.search_model_versions(f"name = '{name}'")
                             if (v.tags or {}).get(STATUS) == "orphaned"))
            print(f"  {name}: no orphaned versions" + (
                f" left to fix (tagged orphaned earlier, not promotable: {', '.join(f'v{v}' for v in tagged)})"
                if tagged else ""))
        for pending in find_pending(client, name):
            where = ("its process is alive" if pending.liveness == ALIVE else
                     f"its process {pending.process} cannot be checked from this host")
            print(f"  {name} v{pending.version}: run {pending.run_id} RUNNING, gate not finished yet ({where})")
        _doctor_promotions(client, uri, name, args)
        _doctor_leases(client, uri, name, args)
        if slot := unheld_retraining_slot(name, uri, fix=args.fix):
            print(f"  {name}: {slot}")
        champion = champion_version(client, name)
        _doctor_model_files(client, name, uri)
        status = (client.get_model_version(name, champion).tags or {}).get(STATUS) if champion else None
        if status in NEVER_CHAMPION:  # promoted before tuneline refused such versions, or moved outside tuneline
            print(f"  {name} v{champion} is the champion but tagged {STATUS}={status}: promote a gated version "
                  f"(tuneline promote {name} VERSION --reason ...) or roll back (tuneline rollback {name})")

    for run, process in dead_runs(client):  # killed before registering: no version, no batch named it
        model = (run.data.params or {}).get("tracking.registered_model")
        if args.model and model is not None and model not in args.model:
            continue  # another model's run: `doctor -m NAME --fix` closed it too (training QA)
        print(f"run {run.info.run_id} ({run.info.run_name}) is RUNNING in MLflow, but its process {process} is gone"
              + (": closed KILLED" if args.fix else " (--fix closes it KILLED)"))
        if args.fix:
            close_dead_run(client, run.info.run_id, process)

    def size(path: Path) -> int:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())

    if not args.work_dir.is_dir():  # "0 stale checkpoint folder(s)" read as a clean folder, for a mistyped path
        what = "is a file, not a folder" if args.work_dir.exists() else "does not exist"
        print(f"work folder {args.work_dir} {what}: no checkpoints or tokenization cache to check there (give "
              "--work-dir the work_dir of your runs, or -c CONFIG)")
        return 0
    folders = sorted((args.work_dir / "checkpoints").glob("*"))
    stale = [p for p in folders if time.time() - p.stat().st_mtime > 3600]
    recent = [p for p in folders if p not in stale]
    cache = args.work_dir / "cache"
    print(f"work folder {args.work_dir}: {len(stale)} stale checkpoint folder(s), "
          f"{sum(map(size, stale)) / 1e6:.1f} MB; tokenization cache {size(cache) / 1e6 if cache.is_dir() else 0:.1f} MB")
    if recent:  # a run at work writes them, or a re-run of a killed one resumes from them: kept either way
        print(f"  {len(recent)} checkpoint folder(s) younger than an hour kept ({sum(map(size, recent)) / 1e6:.1f} MB:"
              f" a run at work, or one a re-run of the same config resumes from)")
    if args.fix:
        for path in [*stale, cache]:
            shutil.rmtree(path, ignore_errors=True)
        print("  removed")
    elif stale or cache.is_dir():
        what = (["the stale checkpoint folders"] if stale else []) + (["the tokenization cache"] if cache.is_dir()
                                                                       else [])
        print(f"  run with --fix to remove {' and '.join(what)}")
    return 0


def resumed_line(summary: Any) -> str | None:
    """The summary's line for a run that resumed from a checkpoint (the time line's "training 0 s" after a resume
    that found every step done reads as if nothing trained); None for a fresh start. For train and retrain alike."""
    if not getattr(summary, "resumed_from", ""):
        return None
    return (f"  resumed           : from {summary.resumed_from} (left by an interrupted run of the same config and "
            "data; its steps were not trained again)")


def _doctor_model_files(client: Any, name: str, uri: str) -> None:
    """The versions an alias points at whose model files are gone from the artifact store: the endpoint, the gate
    and the retraining loop all load them, and each failed with MLflow's ``No such artifact: ''``."""
    from tuneline.loaded_versions import files_missing, missing_files_message

    aliases = client.get_registered_model(name).aliases or {}
    for alias, version in sorted(aliases.items()):
        if files_missing(f"models:/{name}/{version}", uri):
            source = client.get_model_version(name, str(version)).source
            print(f"  {name}@{alias} (v{version}): {missing_files_message(name, version, source)}")


def _doctor_promotions(client: Any, uri: str, name: str, args: argparse.Namespace) -> None:
    """A gate whose run died while promoting: its version still reads ``promoting`` (``--fix``: ``promoted`` where
    the alias moved, else ``interrupted``), and a move whose history row was lost (``--fix`` writes it from the
    version's gate tags, under the model's lock, as the gate would have)."""
    from tuneline.ledger import ledger_url_for, sqlite_file_missing
    from tuneline.locking import default_lock_url, model_lock
    from tuneline.promotions import PromotionLog, champion_version, record_lost_gate_move, unrecorded_move
    from tuneline.registry import find_interrupted_promotions, settle_promotions

    for item in (settle_promotions if args.fix else find_interrupted_promotions)(client, name):
        happened = ("after making it champion" if item.moved else "before making it champion (it never served)")
        fixed = ("tagged promoted" if item.moved else "tagged interrupted") if args.fix else "--fix tags it " + (
            "promoted" if item.moved else "interrupted")
        print(f"  {name} v{item.version}: its gate passed it, but run {item.run_id} died {happened}: {fixed}")
    url = ledger_url_for(args.ledger_url, uri)
    if sqlite_file_missing(url):  # no promotion recorded here yet: opening it would create the file
        return
    with PromotionLog(url, name, client=client) as log:
        if args.fix:
            with model_lock(name, default_lock_url(uri)):
                written = record_lost_gate_move(client, log)
            if written is not None:
                print(f"  {name}: the gate's move {written.line()} had no history row (its run died after moving "
                      "the alias): written")
        warning = unrecorded_move(client, log)
        latest = log.latest()
    if warning and latest is not None and champion_version(client, name) is None:
        # the alias deleted by hand: nothing --fix can write (operator QA: it offered to and fixed nothing)
        print(f"  {name}: {warning}; the {log.alias} alias was removed outside tuneline: restore it with "
              f"tuneline promote {name} {latest.to_version} --reason ..., or promote another version")
    elif warning:
        print(f"  {name}: {warning}; the history cannot say who moved it" + (
            "" if args.fix else " (a gate's move its run did not record: --fix writes the row)"))


def _doctor_leases(client: Any, uri: str, name: str, args: argparse.Namespace) -> None:
    """Batches of ``name`` held under a live lease by a run whose process is gone (killed outright): they would wait
    for the lease to run out; ``--fix`` gives them back now (or marks them used by the version the run's gate had
    scored) and closes the run KILLED (:func:`tuneline.registry.settle_dead_holders`)."""
    from tuneline.ledger import Ledger, ledger_url_for, sqlite_file_missing
    from tuneline.registry import settle_dead_holders
    from tuneline.run_process import dead_holders

    url = ledger_url_for(args.ledger_url, uri)
    if sqlite_file_missing(url):  # no retraining loop here: opening it would create the file
        return
    with Ledger(url, name) as ledger:
        found = ({h.run_id: (h.process, h.batches, h.used_by) for h in settle_dead_holders(client, ledger, name)}
                 if args.fix else {run_id: (*held, None) for run_id, held in dead_holders(ledger, client).items()})
    for run_id, (process, batches, used_by) in found.items():
        until = max(b.lease_expires_at for b in batches).strftime("%H:%M:%S")
        fixed = (f": marked used by v{used_by} (they made it, and its gate had scored it), run closed KILLED"
                 if used_by is not None else ": released, run closed KILLED; " + _retry_hint(args))
        print(f"  {name}: run {run_id} holds {', '.join(b.name for b in batches)} under a lease until {until} "
              f"UTC, but its process {process} is gone" + (fixed if args.fix else " (--fix releases them now)"))


def _retry_hint(args: argparse.Namespace) -> str:
    """When batches ``doctor --fix`` released are trained on: no event wakes a run for them, so without this the
    operator learned it only when the watcher's stranded rule took them, eleven minutes later (operator QA)."""
    from tuneline.locking import prefect_api_url

    config = args.config if args.config is not None else "CONFIG"
    # the killed run's slot of the Prefect limit is Prefect's to free when its lease runs out: the "now" waited 271 s
    # for it (loop QA), which doctor cannot tell from a live run's without a lock database every run shares
    # (with a lock database every run shares, this same --fix may free that slot: said on the slot's own line below,
    # so "waits up to 5 minutes" is not stated as a fact before "one freed" (operator QA))
    slot = ("; unless the slot line below says it was freed, the retraining run waits for the killed run's Prefect "
            "concurrency slot until Prefect's lease on it runs out (up to 5 minutes after the kill)"
            if prefect_api_url() else "")
    return (f"run `tuneline watch -c {config} --once` to retrain on them now (else a running watcher announces them "
            f"once they and the last retraining run's end are retrain.reannounce_after_s old){slot}")


def _cli_actor() -> str:
    """``user <login>@<host>``: who moved an alias by hand, for the promotion history."""
    import getpass
    import os
    import socket

    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment (e.g. a container's anonymous uid)
        login = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"user {login}@{socket.gethostname()}"


def _promotions(args: argparse.Namespace) -> int:
    """promote / rollback / history of a registered model's champion alias."""
    from mlflow.tracking import MlflowClient

    from tuneline.ledger import ledger_url_for
    from tuneline.locking import default_lock_url
    from tuneline.promotions import (PROMOTE, PromotionLog, champion_version, gate_verdict, move_champion,
                                     rollback_champion, unrecorded_move)
    from tuneline.runtime import resolve_tracking_uri

    if not str(args.name).strip():
        raise UserError(f"{args.command}: the model name is empty; give the registered model's name")
    if args.command == "promote" and not re.fullmatch(r"\s*[vV]?\d+\s*", str(args.version)):
        # before the store is opened: a misuse of the command line, as argparse's own errors (exit 2)
        raise UsageError(f"promote: VERSION {args.version!r} is not a model version number; give the number, "
                         f"e.g. tuneline promote {shlex.quote(args.name)} 3 --reason ...")
    if args.config is not None:  # the loop's own stores, without repeating them as options
        config = read_config(args.config, [])
        args.tracking_uri = args.tracking_uri or config.tracking.tracking_uri
        args.ledger_url = args.ledger_url or config.ledger.url
    uri = _existing_store(resolve_tracking_uri(args.tracking_uri))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    _say_lock_waits()
    if args.command != "history":  # the history is readable without the registry (a deleted model's too)
        _require_registered(client, uri, [args.name], "the model name")
    ledger_url = ledger_url_for(args.ledger_url, uri)
    from tuneline.ledger import LEDGER_URL_ENV, sqlite_file_missing

    if args.command != "history" and not args.ledger_url and not os.environ.get(LEDGER_URL_ENV) \
            and not uri.startswith("sqlite:") and sqlite_file_missing(ledger_url) \
            and champion_version(client, args.name) is not None:
        # an MLflow server keeps no ledger beside it: the default is a file in this folder, and a move recorded in a
        # new one there was missing from the loop's history, its lock not the gate's (loop QA)
        raise UserError(f"{args.name} has a champion, but this folder holds no promotion history "
                        f"({shown_url(ledger_url)}): with an MLflow server the history is where the loop keeps it; "
                        "run this in the folder you deployed from, or give -c CONFIG, --ledger-url or "
                        "TUNELINE_LEDGER_URL")

    if args.command != "history" and args.ledger_url and sqlite_file_missing(ledger_url) and (
            args.command == "rollback" or champion_version(client, args.name) is not None):
        # a model with a champion has a history somewhere: opening a new file would create an empty ledger, and
        # the move would be recorded where no history reads it (a first promotion may start a new one)
        raise UserError(f"--ledger-url {shown_url(ledger_url)}: no such ledger file; give the URL of the ledger "
                        "promotions are recorded in (by default the one beside the tracking store)")
    stores = dict(ledger_url=ledger_url, lock_url=default_lock_url(uri))
    if args.command == "promote":
        if not args.reason.strip():
            raise UserError("promote --reason must say why the champion moves (it is kept in the history)")
        current = champion_version(client, args.name)
        if current is not None and str(args.version).strip().lstrip("v") == current:
            # the state asked for already holds (a script re-run, a gate that promoted it first): no error
            print(f"{args.name} v{current} is already the champion; nothing to do")
            return 0
        try:  # a refused move took the lock's slot too: its events are flushed before the one-line error
            moved = move_champion(client, args.name, args.version, expected_from=current,
                                  actor=_cli_actor(), action=PROMOTE, reason=args.reason, **stores)
        finally:
            _flush_prefect_events()
        verdict = gate_verdict(client, args.name, moved.to_version)
        if verdict:  # a person may overrule the gate; they should not do it unawares
            print(f"tuneline: warning: promoted against its gate's verdict: {verdict}", file=sys.stderr)
            # its tags said only gate.decision=kept_champion while it served (training QA): who overruled, and why
            client.set_model_version_tag(args.name, moved.to_version, "gate.overruled_by",
                                         f"{_cli_actor()}: {args.reason.strip()}"[:5000])
    elif args.command == "rollback":
        try:
            moved = rollback_champion(client, args.name, actor=_cli_actor(), reason=args.reason, **stores)
        finally:
            _flush_prefect_events()
        verdict = gate_verdict(client, args.name, moved.to_version)
        if verdict:  # the version rolled back to may be one a person promoted against its gate
            print(f"tuneline: warning: v{moved.to_version} is champion again, against its gate's verdict: "
                  f"{verdict.rstrip('.')}; "
                  f"promote the version you want with tuneline promote {args.name} VERSION --reason ...",
                  file=sys.stderr)
    else:
        if sqlite_file_missing(ledger_url):  # opening it would create an empty ledger where the user mistyped a path
            if args.ledger_url:
                raise UserError(f"--ledger-url {shown_url(ledger_url)}: no such ledger file; give the URL of the ledger "
                                "promotions were recorded in (by default the one beside the tracking store)")
            if not _is_registered(client, args.name):
                _require_registered(client, uri, [args.name], "the model name")
            print(f"no recorded moves of {args.name}@champion: no ledger at {shown_url(ledger_url)} yet")
            return 0
        with PromotionLog(ledger_url, args.name, client=client) as log:
            rows = log.history()
            for row in rows:
                print(row.line())
            if not rows and not _is_registered(client, args.name):  # a typo read as an empty history
                _require_registered(client, uri, [args.name], "the model name")
            if not rows:
                print(f"no recorded moves of {args.name}@champion in {shown_url(ledger_url)}")
            try:
                warning = unrecorded_move(client, log)
            except Exception as error:  # noqa: BLE001 - the history is readable without the registry
                warning = f"could not compare with the registry {redact(uri)}: {redact(error)}"
        if warning:
            print(f"tuneline: warning: {warning}", file=sys.stderr)
        return 0
    print(f"{args.name}@champion: {moved.line()}")
    return 0


class _LockWaitsToStderr(logging.Handler):
    """The lock's "waiting for ..." lines, written to ``sys.stderr`` as it is when the line comes (a stream taken once
    goes stale where it is swapped, as tests and embedding programs do)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("waiting for "):
            print(f"tuneline: {record.getMessage()}", file=sys.stderr, flush=True)


def _say_lock_waits() -> None:
    """Print the lock's "waiting for the gate lock of model ... (held by ...)" line: logged at INFO, which these
    commands do not show, so a promote behind a gate sat silent for up to its 10-minute timeout (training QA)."""
    lock_logger = logging.getLogger("tuneline.locking")
    if any(isinstance(h, _LockWaitsToStderr) for h in lock_logger.handlers):
        return
    lock_logger.addHandler(_LockWaitsToStderr())
    if lock_logger.getEffectiveLevel() > logging.INFO:
        lock_logger.setLevel(logging.INFO)


def shown_url(url: str) -> str:
    """A store URL as people read it: :func:`redact`, and a SQLite file's path decoded (the ledger's URL beside
    ``sqlite:////tmp/demo run ü/mlflow.db`` printed as ``demo run %C3%BC/...``, a path that is not there)."""
    from urllib.parse import unquote

    return redact(unquote(url) if url.startswith("sqlite:") else url)


def _flush_prefect_events() -> None:
    """With a Prefect API, the gate lock's concurrency slot sends events; a command that exits right after left
    Prefect's events worker warning "Still processing items" on every promote and rollback, a refused one too (a
    rollback with nothing to roll back to printed that warning under its one-line error)."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        from tuneline.events import flush_events, prefect_api_answers

        if prefect_api_answers(PREFECT_API_URL.value()):  # else nothing was sent, and the worker would only retry
            flush_events()


def _watch(config: TunelineConfig, interval: float | None, once: bool) -> int:
    from tuneline.events import landing_folder, require_prefect_api, watch

    landing, url = landing_folder(config), require_prefect_api()
    stop = threading.Event()

    def on_ctrl_c(_signum: int, _frame: object) -> None:
        """First Ctrl-C: finish the scan in progress, then stop; a second one stops at once."""
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, on_ctrl_c)  # before the line that tells the user Ctrl-C works
    print(f"watching {landing} for {config.registered_model_name}, announcing to {redact(url)}"
          + ("" if once else " (Ctrl-C stops)"), flush=True)
    try:
        watch(config, interval_s=interval, once=once, echo=lambda line: print(line, flush=True), stop=stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        signal.signal(signal.SIGINT, previous)
    if stop.is_set():
        print("tuneline: watch stopped", flush=True)
    return 0


def _validate(config: TunelineConfig, out: Path | None) -> int:
    """Load → validate → split, no model; print the accounting; exit 1 over the bad-fraction limit."""
    from tuneline.tasks.load import load_data
    from tuneline.tasks.split import split_data
    from tuneline.tasks.validate import DataValidationError, validate_data

    folder = (out or Path(config.work_dir) / "validate").resolve()
    quarantine_file, previous = folder / "quarantine.csv", folder / ".quarantine.csv.previous"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as error:
        why = "it is a file, not a folder" if folder.is_file() else (error.strerror or str(error))
        raise UserError(f"cannot write the quarantine into {folder}: {why}; give --out a folder you can write "
                        "to") from None
    # An earlier check's quarantine stays until this one has judged the data: a check that could not read its
    # input (a mistyped data.path) had deleted it first. Set aside while the rules run, so that a stale one is
    # never reported as this check's, and put back if they fail in a way that judged nothing.
    try:
        loaded = load_data.fn(config)
    except UserError:  # a mistyped path, an unreadable file: nothing judged, the last check's quarantine stays
        if quarantine_file.is_file():
            print(f"  quarantine: {quarantine_file} is the previous check's (this one could not read its input)")
        raise
    if quarantine_file.is_file():
        os.replace(quarantine_file, previous)
    failure: DataValidationError | None = None
    try:
        validated = validate_data.fn(loaded, config, folder)
    except DataValidationError as error:
        failure, validated = error, None
    except BaseException:
        if previous.is_file() and not quarantine_file.exists():
            os.replace(previous, quarantine_file)
        raise
    import pandas as pd

    print(f"task {config.task}: {loaded.total_records} records in {len(loaded.sources)} file(s)")
    if not quarantine_file.is_file():  # the label set failed before any record was judged: the last one stays
        for source in loaded.sources:
            print(f"  {source.role:<10} {source.path}: read {source.records}")
        if previous.is_file():
            os.replace(previous, quarantine_file)
            print(f"  quarantine: {quarantine_file} is the previous check's (this one judged no record)")
        print(f"tuneline: {failure}", file=sys.stderr)
        return 1
    previous.unlink(missing_ok=True)  # the data was judged: this check's quarantine is the one to read
    quarantine = pd.read_csv(folder / "quarantine.csv")
    for source in loaded.sources:
        rejected = quarantine[(quarantine["source_file"] == str(source.path))  # one file may serve two roles
                              & (quarantine["split"].astype(str) == source.role)]
        rules = ", ".join(f"{rule} {n}" for rule, n in rejected["rule"].value_counts().items()) or "none"
        kept = source.records - rejected[["source_row"]].drop_duplicates().shape[0]
        print(f"  {source.role:<10} {source.path}: read {source.records}, kept {kept}, "
              f"quarantined {source.records - kept} ({rules})")
    for line in _quarantine_examples(quarantine):
        print(line)
    print(f"  quarantine: {folder / 'quarantine.csv'}")
    if failure is not None:
        print(f"tuneline: {failure}", file=sys.stderr)
        return 1
    splits = split_data.fn(validated.frames, validated.labels, config.data.split, kind=config.task,
                           quarantine_path=folder / "quarantine.csv")
    plain = all(label == label.strip() and "," not in label and label.isprintable() for label in validated.labels)
    # a label holding a comma or an edge space printed bare read as two labels, or as another one: quoted then
    shown = validated.labels[:SHOWN_LABELS]  # GoEmotions' 28 were cut at 20: the whole set, up to a size one reads
    print(f"  labels ({len(validated.labels)}): {', '.join(shown if plain else map(repr, shown))}"
          + (" ..." if len(validated.labels) > SHOWN_LABELS else ""))
    print("  splits: " + ", ".join(f"{name} {len(frame)}" for name, frame in splits.items()))
    return 0


def _quarantine_examples(quarantine: Any, rules: int = 5) -> list[str]:
    """One record of each of the most frequent rules, where it is and why (``  e.g. RULE: FILE line L: DETAIL``): a
    pre-flight check that said only "label_in_label_set 3" sent the user into quarantine.csv for what to fix."""
    import pandas as pd

    from tuneline.errors import excerpt
    from tuneline.tasks.validate import where_in_file

    lines = []
    for rule in quarantine["rule"].value_counts().index[:rules]:
        record = quarantine[quarantine["rule"] == rule].iloc[0]
        detail = record.get("detail")
        if not isinstance(detail, str) or not detail:
            value, column = record.get("value"), record.get("column")
            detail = "(no value)" if pd.isna(value) else excerpt(value) if not isinstance(column, str) or not column \
                else f"{column} = {excerpt(value)}"
        where = where_in_file(record)
        if where.endswith(f" line {record.get('source_line')}"):  # "bs.csv line 62: line 62: a quote ..." (QA)
            detail = detail.removeprefix(f"line {record.get('source_line')}: ")
        shown = detail if len(detail) <= 200 else detail[:200].rsplit(" ", 1)[0] + " …"  # not mid-word
        lines.append(f"  e.g. {rule}: {where}: {shown}")
    return lines


def _predict_to_file(args: argparse.Namespace) -> int:
    """``predict --input F --output O``: the batch prediction flow (alias resolved once, chunks, atomic write)."""
    import os

    from tuneline.early_api import detach_ephemeral_api_from_terminal, require_configured_api
    from tuneline.errors import quiet_user_error_tracebacks
    from tuneline.heap import import_without_collections
    from tuneline.runtime import has_credentials

    if args.input is None:
        raise UsageError("--output writes the predictions of an input file: give it with --input FILE")
    if Path(args.output).resolve() == Path(args.input).resolve():  # found only after a server and the model came up
        raise UsageError(f"--output {args.output} is the --input file; give another output path (the input is "
                         "read while the predictions are written)")
    _check_output_path(Path(args.output))
    batch_predict_flow = import_without_collections("tuneline.flows.predict").batch_predict_flow

    detach_ephemeral_api_from_terminal()  # Ctrl-C stops the job, not the API it reports to

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, not {args.batch_size}")
    require_configured_api()  # a PREFECT_API_URL that does not answer: one line now, not a crashed flow
    uri = args.tracking_uri
    if has_credentials(uri):  # Prefect stores flow parameters: pass the secret by reference
        os.environ["TUNELINE_TRACKING_URI"], uri = uri, "${TUNELINE_TRACKING_URI}"
    quiet_user_error_tracebacks()
    done = batch_predict_flow(args.model, str(args.input), str(args.output), uri, args.batch_size, args.encoding,
                              args.input_format, args.skip_lines)
    print(f"wrote {done.rows} rows predicted by {done.model_name} version {done.model_version} to {done.output_path}")
    return 0


def _check_output_path(output: Path) -> None:
    """Before the flow starts (a Prefect API, a model load): an output the run could never write is a one-line
    error now, not four tracebacks after the model has loaded."""
    import os

    from tuneline.tasks.predict_batch import output_format

    try:
        output_format(output)
    except UserError as error:  # the extension picks the format: a command line that cannot run as given
        raise UsageError(str(error)) from None
    folder = output.parent
    if output.is_dir():
        raise UserError(f"--output {output} is a folder; give a file name in it (e.g. {output / 'predictions.parquet'})")
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise UserError(f"--output {output}: its folder {folder} {what}; create the folder or choose another path")
    if not os.access(folder, os.W_OK):
        raise UserError(f"--output {output}: the folder {folder} is not writable; choose another path")


def _registry_reference(model: str) -> str:
    """``NAME@ALIAS`` and ``NAME/VERSION`` as ``models:/...`` (serve-model takes both forms; predict read a bare one as
    a local folder: "No such artifact"). A path that exists stays a path."""
    import re

    if "://" in model or ":/" in model or Path(model).exists():
        return model
    if re.fullmatch(r"[^@/\s]+@[^@/\s]+|[^@\s]+/\d+", model):
        return f"models:/{model}"
    if re.fullmatch(r"[\w.\-]+", model):  # a bare name: neither a folder here nor a version of it
        raise UserError(f"-m {model}: no folder of that name here; a registered model is named with its alias or "
                        f"version: -m {model}@champion or -m {model}/3 (models:/ optional)")
    return model


def _model_task(model: str, tracking_uri: str | None, loaded: Any) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """The kind a model serves and the training data's names of its input columns: the registry version's tags,
    else (a ``runs:/`` or path URI) what its signature says (two inputs: a sentence pair); None when neither tells."""
    if model.startswith("models:/"):
        from tuneline.tasks.predict_batch import resolve_model_version

        resolved = resolve_model_version.fn(model, tracking_uri)
        return resolved.task, resolved.trained_columns
    from tuneline.kinds import KINDS

    schema = loaded.metadata.get_input_schema()
    two_texts = [kind.name for kind in KINDS.values() if kind.second_text_column]
    return (two_texts[0] if schema is not None and len(schema.inputs) == 2 and len(two_texts) == 1 else None), ()


def _input_file_rows(model: str, path: Path, task: str | None, encoding: str = "utf-8",
                     trained_columns: tuple[tuple[str, str], ...] = (),
                     input_format: str = "auto", skip_lines: int = 0
                     ) -> tuple[Any, list[str], dict[str, str], list[int] | None]:
    """The rows of ``--input`` as the model's kind reads them (its columns checked, every row kept), the columns
    the model reads, in its order, the file's names of them, and each row's line (a registry reference only): for a
    registry reference the version's task tag (``task``, resolved once by the caller) names them, as batch
    prediction does; other URIs get the file as is."""
    from tuneline.readers import PROVENANCE_COLUMNS, detect_format
    from tuneline.tasks.predict_batch import read_prediction_inputs, read_prediction_table

    if model.startswith("models:/") and task is not None:
        inputs = read_prediction_inputs.fn(path, task, encoding, trained_columns, input_format, skip_lines)
        return inputs.frame, list(inputs.model_columns), inputs.file_names, inputs.lines
    fmt = detect_format(path, "auto") if input_format == "auto" else input_format
    if fmt in ("conll", "lines"):
        raise UserError(f"{path}: a {fmt} file is read for a registered model (models:/NAME@ALIAS), whose task says "
                        "what a line holds; give a CSV, TSV, JSONL or Parquet file for this model")
    table = read_prediction_table(path, fmt, encoding, skip_lines).frame
    table = table.drop(columns=[c for c in PROVENANCE_COLUMNS if c in table.columns])
    return table, list(table.columns), {}, None


def _stdin_lines(encoding: str) -> list[str]:
    """The lines of stdin, decoded with ``--encoding`` (default utf-8; a byte-order mark overrides it, as for a file),
    without their line ends. Bytes that are not valid in it are a :class:`UserError` naming the line, the byte offset
    and ``--encoding``, as for an ``--input`` file: the text stream decoded them with the locale's codec, raising a
    bare UnicodeDecodeError, or in a C locale passing on ``'caf\\udce9'``, which the model refused with "surrogates
    not allowed" and no line."""
    import codecs

    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text stream without bytes under it (an embedding program's, a test's): already text
        return [line.rstrip("\r\n") for line in sys.stdin]
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise UserError(f"--encoding {encoding!r} is no encoding Python knows; give a codec name such as utf-8, "
                        "latin-1 or cp1252") from None
    data, name, skipped = buffer.read(), codec.name, 0
    for mark, marked in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                         (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(mark):
            data, name, skipped = data[len(mark):], marked, len(mark)
            break
    from tuneline.readers import (DataLoadError, _check_not_utf8, _decode_mixed, _is_8bit, _physical_lines,
                                  _without_eof_mark, split_setting_advice)

    codec = codecs.lookup(name)
    try:  # as for an --input file: UTF-8 read as latin-1 is "cafÃ©", without any error
        _check_not_utf8(Path("stdin"), data, codec, encoding)
    except DataLoadError as error:
        raise UserError(f"{split_setting_advice(str(error))[0]}: leave --encoding out, stdin is read as UTF-8") \
            from None
    try:
        text = _decode_mixed(Path("stdin"), data, codec) if _is_8bit(codec) else data.decode(name)
    except UnicodeDecodeError as error:
        before = data[:error.start].decode(name, errors="replace")
        line = before.count("\n") + before.count("\r") - before.count("\r\n") + 1  # as the lines below are cut
        bad = data[error.start:error.end]
        raise UserError(f"stdin line {line}, byte offset {error.start + skipped}: {bytes_shown(bad)} "
                        f"{'is' if len(bad) == 1 else 'are'} not valid {name if skipped else encoding} "
                        f"({error.reason}); give the input's encoding with --encoding (e.g. cp1252 or latin-1), or convert it to UTF-8 (e.g. "
                        "iconv -f cp1252 -t utf-8)") from None
    # the file readers' line ends: a lone \r inside a line (pandas writes a cell "a\rb" unquoted) is a character,
    # not a line end, which split one input into two predictions and shifted every later one against its line;
    # a DOS end-of-file mark ending the input is no text
    return [line.rstrip("\r\n") for line in _physical_lines(_without_eof_mark(text))]


def _predict(args: argparse.Namespace) -> int:
    args.model = _registry_reference(args.model)
    if args.skip_lines < 0 or (args.skip_lines and args.input is None):
        raise UserError(f"--skip-lines {args.skip_lines}: give the number (0 or more) of lines above the header of "
                        "an --input CSV/TSV file" if args.skip_lines < 0 else
                        "--skip-lines skips lines above the header of an --input file: give it with --input FILE")
    if args.input is not None and (args.texts or args.pair):
        what = "texts" if args.texts else "--pair texts"
        raise UserError(f"--input {args.input} and {what} on the command line: predict reads one or the other (the "
                        f"{what} would be left out); give the texts in the file, or drop --input")
    if args.output is not None:
        return _predict_to_file(args)
    import mlflow
    import pandas as pd

    from tuneline.runtime import resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    mlflow.set_tracking_uri(_existing_store(uri) if args.model.startswith("models:/") else uri)
    from_stdin = args.input is None and not args.texts
    texts = args.texts or (_stdin_lines(args.encoding) if from_stdin else [])
    if from_stdin:
        blank = next((n for n, t in enumerate(texts, 1) if not t.strip()), None)
        if blank is not None and any(t.strip() for t in texts[blank:]):  # trailing blank lines are harmless
            raise UserError(f"stdin line {blank} is blank: every line is one input and gets one output line, so a "
                            "blank line would shift them; remove blank lines (e.g. grep -v '^\\s*$') first")
        while texts and not texts[-1].strip():
            texts.pop()
    if args.input is None and not texts:
        raise UserError("nothing to predict: give texts as arguments, one per line on stdin, or --input FILE")
    from tuneline.pyfunc.text_classifier import invisible_only  # the registered models' own rule

    for what, given in (("text", args.texts), ("--pair text", args.pair)):
        # the model numbers its inputs from 0 (an HTTP list's index); on a command line they are counted from 1
        blank = next((n for n, t in enumerate(given or [], 1) if not t.strip()), None)
        if blank is not None:
            raise UserError(f"{what} {blank} of {len(given)} on the command line is empty; every input needs some "
                            "text")
    # only invisible characters (a zero-width space): --input refuses them, and the model would answer a label for
    # no text at all
    for where, given in (("on the command line", args.texts), ("as --pair", args.pair), ("on stdin", texts)):
        unseen = next((n for n, t in enumerate(given or [], 1) if invisible_only(t)), None)
        if unseen is not None:
            raise UserError(f"text {unseen} {where} has no visible text (only invisible characters: "
                            f"{given[unseen - 1]!r}); every input needs some text")
    try:
        model = mlflow.pyfunc.load_model(args.model)
    except mlflow.exceptions.MlflowException as error:
        from tuneline.loaded_versions import files_missing

        why = error.message
        if "No such artifact" in why and files_missing(args.model):
            why = ("its model files are missing from the artifact store (restore them from a backup, or make another "
                   "version champion: tuneline promote NAME VERSION --reason ...)")
        raise UserError(f"cannot load {args.model} from {redact(mlflow.get_tracking_uri())}: {why}") from None
    task, trained_columns = _model_task(args.model, args.tracking_uri, model)
    from tuneline.kinds import KINDS

    second_column = KINDS[task].second_text_column if task in KINDS else None
    pairs = second_column is not None
    if args.pair and not pairs:
        raise UserError(f"--pair is for sentence-pair models; {args.model} reads one text per input: drop --pair")
    row_lines = None
    if args.input is not None:
        rows, model_columns, file_names, row_lines = _input_file_rows(args.model, args.input, task, args.encoding,
                                                           trained_columns, args.input_format, args.skip_lines)
        from tuneline.tasks.predict_batch import without_foreign_tags

        rows = without_foreign_tags(rows, model, args.input, args.model)  # chunk tags: input_tags, as -o writes
        shown = rows.rename(columns=file_names).to_dict(orient="records")  # under the file's own column names
        # Only the model's columns, in its order: the registered signature's inputs are unnamed, so MLflow keeps a
        # frame's FIRST columns by position (an ``id,text`` file would have been predicted on its ids).
        inputs = rows[model_columns]
    else:
        second = list(args.pair)
        if pairs and from_stdin:  # one pair a line: text<TAB>second text
            if any("\t" not in line for line in texts):
                line = next(i for i, t in enumerate(texts, 1) if "\t" not in t)
                raise UserError(f"{args.model} is a sentence-pair model: give one pair a line on stdin as "
                                f"TEXT<TAB>SECOND TEXT (line {line} has no tab), or --input FILE with text and "
                                f"text_pair columns")
            extra = next((i for i, t in enumerate(texts, 1) if t.count("\t") > 1), None)
            if extra is not None:  # a TSV row with more columns would be predicted on its first two
                raise UserError(f"stdin line {extra} has {texts[extra - 1].count(chr(9)) + 1} tab-separated fields; "
                                "give exactly TEXT<TAB>SECOND TEXT per line (cut -f to pick two columns), or "
                                "--input FILE with text and text_pair columns")
            texts, second = [t.split("\t", 1)[0] for t in texts], [t.split("\t", 1)[1] for t in texts]
            for n, (first, other) in enumerate(zip(texts, second), 1):
                if not first.strip() or not other.strip():
                    raise UserError(f"stdin line {n} has an empty {'first' if not first.strip() else 'second'} "
                                    "text; every pair needs two texts")
        elif pairs and not second:
            raise UserError(f"{args.model} is a sentence-pair model: give the second text of each text with --pair "
                            f"TEXT (repeat, in order), pairs as TEXT<TAB>SECOND TEXT lines on stdin, or --input FILE "
                            f"with text and text_pair columns")
        if second and len(second) != len(texts):
            raise UserError(f"--pair was given {len(second)} time(s) for {len(texts)} text(s); give one per text")
        inputs = pd.DataFrame({"text": texts, second_column: second}) if pairs else texts
        shown = [{"text": t, **({second_column: p} if pairs else {})}
                 for t, p in zip(texts, second or [None] * len(texts))]
    try:
        output = model.predict(inputs)
    except mlflow.exceptions.MlflowException as error:
        if error.error_code != "INVALID_PARAMETER_VALUE":
            raise
        if row_lines:
            from tuneline.tasks.predict_batch import refused_record

            raise UserError(f"{args.model} refused {refused_record(error.message, row_lines)} of {args.input}: "
                            f"{error.message}") from None
        raise UserError(f"{args.model} refused the input: {error.message}") from None
    frame = output if isinstance(output, pd.DataFrame) else pd.DataFrame(output)
    if len(frame) != len(shown):
        raise RuntimeError(f"{args.model} returned {len(frame)} predictions for {len(shown)} inputs")
    # as batch prediction writes them (tasks/predict_batch.output_rows): an echo of a model input column is dropped,
    # and a prediction column the input also has (a gold ``label`` column) is written as predicted_<name>, never
    # hidden behind the input's value
    from tuneline.tasks.predict_batch import json_ready, output_name

    echoes = set(model_columns) if args.input is not None else {"text", second_column}
    for given, (_, row) in zip(shown, frame.iterrows()):
        predicted = {output_name(k, given): v for k, v in row.items() if k not in echoes}
        print(json.dumps(json_ready({**given, **predicted}), default=str, ensure_ascii=False))  # NaN is no JSON: null
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
