"""The retraining loop's commands: ``tuneline retrain``, ``tuneline data ...`` and ``tuneline demo-batch``.

Kept apart from :mod:`tuneline.cli` (which dispatches to them) so that each command family stays readable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneline.config import TunelineConfig
from tuneline.config_hints import with_config
from tuneline.runtime import redact


def shown_url(url: str) -> str:
    """:func:`tuneline.cli.shown_url`: redacted, a SQLite path decoded."""
    from tuneline.cli import shown_url as shown

    return shown(url)

if TYPE_CHECKING:
    from tuneline.ledger import Batch


def add_parsers(sub: argparse._SubParsersAction, add_config_args, epilog: str) -> None:  # noqa: ANN001
    retrain = sub.add_parser(
        "retrain", help="run the retraining flow once: take the landed batches, validate, check drift, retrain, gate",
        description="Scan retrain.landing, claim every complete batch that is not used yet, validate each (its "
        "quarantine per batch), check drift against the current data version, append a new data version and "
        "retrain (retrain.strategy: full or continual), then gate with the forgetting bounds. The first run makes "
        "data version 1 from data.path and trains the first model. Without new batches it does nothing "
        "(retrain.when_no_new_data).", epilog=epilog)
    add_config_args(retrain, required=True)

    data = sub.add_parser("data", help="the versioned dataset of the retraining loop",
                          description="The data versions the retraining loop has built: list them (log), take a batch's rows back "
                          "out as a new version (drop), correct the labels of rows already in it (relabel), give a rejected batch "
                          "back to the next run (requeue), or list the landed batches and their fate (batches).")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    log = data_sub.add_parser("log", help="list the data versions (newest last) and the model versions trained on "
                              "each", description="One line per data version: number, content hash, rows per "
                              "split, what it added, when, and the registered model versions trained on it.",
                              epilog=epilog)
    add_config_args(log, required=True)
    listing = data_sub.add_parser(
        "batches", help="list the landed batches and what became of each (used, rejected and why, waiting, ...)",
        description="One line per batch the loop has recorded, in landing order: its name, content hash, state "
        "(landed, claimed, validated, used, rejected, duplicate, dropped), when it landed, its rows kept and "
        "quarantined, the model version trained on it; a rejected batch's reasons and every batch's quarantine file "
        "below it. Reads the ledger only.", epilog=epilog)
    listing.add_argument("--state", choices=["landed", "claimed", "validated", "used", "rejected", "duplicate",
                                             "dropped"], default=None, help="only the batches in this state")
    add_config_args(listing, required=True)
    drop = data_sub.add_parser("drop", help="take a landed batch's rows back out of the data (a new data version "
                               "without them)", description="Commit a new data version: the current one without the "
                               "rows a batch added (e.g. a batch with wrong labels that the gate refused, whose rows "
                               "would otherwise stay in every later train and test split). Earlier versions keep "
                               "them. A batch no data version holds yet (landed, not trained on) is only marked "
                               "dropped, so that no run takes it in. Then retrain on the cleaned data: tuneline "
                               "retrain -c CONFIG --set retrain.when_no_new_data=retrain.", epilog=epilog)
    drop.add_argument("batch", metavar="BATCH", help="the batch's file or folder name as landed (e.g. "
                      "tickets-batch-006.csv), or the start of its content hash")
    drop.add_argument("--reason", required=True, help="why (kept in the data version's note)")
    add_config_args(drop, required=True)
    relabel = data_sub.add_parser("relabel", help="correct the labels of rows already in the data (a new data "
                                  "version)", description="Commit a new data version in which the rows of FILE "
                                  "(a file laid out like the training data: the text and its right label) carry "
                                  "those labels: for wrong labels in the base data (data version 1) or in a batch "
                                  "already used, and for the rows a batch's quarantine lists as "
                                  "conflicts_with_earlier_label. Each row is found by its text (case and runs of "
                                  "whitespace aside) and keeps its split; earlier versions keep the old labels. "
                                  "Then retrain on it: tuneline retrain -c CONFIG --set "
                                  "retrain.when_no_new_data=retrain.", epilog=epilog)
    relabel.add_argument("file", metavar="FILE", type=Path, help="the rows with their right labels (CSV, TSV, "
                         "JSONL, Parquet or CoNLL, read with the config's data.* settings), or a batch's quarantine "
                         "file: its conflicts_with_earlier_label rows take the batch's labels")
    relabel.add_argument("--reason", required=True, help="why (kept in the data version's note)")
    add_config_args(relabel, required=True)
    requeue = data_sub.add_parser("requeue", help="land a rejected batch again (after changing what rejected it)",
                                  description="Move a rejected batch back to landed, so the next retraining run "
                                  "takes it as new: after a config change that would now accept it (e.g. "
                                  "drift.allow_label_growth: true for a batch with an unseen label). Landing the "
                                  "same bytes again would only be recorded as a duplicate.", epilog=epilog)
    requeue.add_argument("batch", metavar="BATCH", help="the batch's file or folder name as landed, or the start of "
                         "its content hash")
    requeue.add_argument("--reason", required=True, help="why (kept in the batch's event history)")
    add_config_args(requeue, required=True)

    batch = sub.add_parser("demo-batch", help="write a new labeled batch of demo tickets into a landing folder",
                           description="Write N new demo support tickets (texts never used before) as a CSV, then "
                           "its '.done' marker, into FOLDER: what a producer does to land a batch. The arguments are "
                           "checked before anything is written, and the CSV is written under a temporary name, then "
                           "renamed: a failed call leaves the folder as it was.")
    batch.add_argument("folder", type=Path, help="the landing folder (retrain.landing)")
    from tuneline.demo import MAX_BATCH_ROWS, MAX_BATCHES, MAX_ONE_LABEL_ROWS  # stdlib only: cheap

    batch.add_argument("--number", "-n", type=int, default=1, help=f"batch number, 1 to {MAX_BATCHES} (different "
                       "numbers, different texts; default 1)")
    batch.add_argument("--rows", type=int, default=300, help=f"rows in the batch (default 300); up to {MAX_BATCH_ROWS} "
                       f"always fit ({MAX_ONE_LABEL_ROWS} with --shift one_label), more if the batch's page has them")
    batch.add_argument("--shift", choices=["one_label", "new_label"], default=None,
                       help="write a shifted batch instead: mostly one label, or one with a label never seen")


def run(args: argparse.Namespace, config_for) -> int | None:  # noqa: ANN001
    """Run a loop command; None when ``args.command`` is not one of them."""
    if args.command == "retrain":
        return _retrain(config_for(args), str(args.config) if getattr(args, "config", None) else None)
    if args.command == "data" and args.data_command == "drop":
        return _data_drop(config_for(args), args.batch, args.reason, _retrain_command(args))
    if args.command == "data" and args.data_command == "relabel":
        return _data_relabel(config_for(args), args.file, args.reason, _retrain_command(args))
    if args.command == "data" and args.data_command == "requeue":
        return _data_requeue(config_for(args), args.batch, args.reason)
    if args.command == "data" and args.data_command == "batches":
        return _data_batches(config_for(args), args.state)
    if args.command == "data":
        return _data_log(config_for(args))
    if args.command == "demo-batch":
        return _demo_batch(args)
    return None


def _retrain(config: TunelineConfig, config_path: str | None = None) -> int:
    from tuneline.early_api import start_ephemeral_api_early

    from tuneline.runtime import check_base_model, check_run_can_write, check_strategy

    check_base_model(config.model.base, config.tokenize.max_length)  # before the API starts: a refusal leaves no server to stop
    check_strategy(config)
    check_run_can_write(config)
    _check_local_landing(config.retrain.landing)
    _check_landing_set(config)
    wait_for_api = start_ephemeral_api_early()  # comes up while the flow's modules import
    from tuneline.errors import UserError, quiet_user_error_tracebacks
    from tuneline.heap import import_without_collections
    from tuneline.timings import mark_command_start

    retrain_flow = import_without_collections("tuneline.flows.retrain").retrain_flow

    wait_for_api()
    quiet_user_error_tracebacks()
    mark_command_start()
    try:
        summary = retrain_flow(config, trigger="manual", config_file=config_path)
    except UserError as error:  # a stop's advice (`data requeue -c CONFIG ...`) names the config given, as the summary
        if config_path and "-c CONFIG " in str(error):
            error.args = (with_config(str(error), config_path),)
        raise
    print_retrain_summary(summary, config_path)
    # every landed batch rejected (its records broke the contract): nothing trained, as when drift stops a run (exit
    # 1), and a cron job or CI must see it the same way; it exited 0 (loop QA)
    return 1 if summary.status == "nothing_accepted" else 0


def _check_landing_set(config: TunelineConfig) -> None:
    """A run that could only skip because ``retrain.landing`` is not set: no batch can ever land, and the run said
    "no new batch has landed since the last retraining run" after about 20 s of starting a server. The first run
    (no data version yet), a run told to retrain without new data, and batches the ledger already holds free (a
    requeued one) need no landing folder, and go on."""
    from tuneline.config import ConfigError
    from tuneline.dataset_store import DatasetStore
    from tuneline.ledger import Ledger, ledger_url_for, sqlite_file_missing
    from tuneline.runtime import resolve_tracking_uri
    from tuneline.tasks.intake import dataset_folder

    if config.retrain.landing is not None or config.retrain.when_no_new_data != "skip":
        return
    url = ledger_url_for(config.ledger.url, resolve_tracking_uri(config.tracking.tracking_uri))
    if sqlite_file_missing(url):  # no loop ran here: the first run makes data version 1 from data.path
        return
    name = config.registered_model_name
    with DatasetStore(url, name, dataset_folder(config)) as store:
        if store.current() is None:
            return
    with Ledger(url, name) as ledger:
        if ledger.free_batches():
            return
    raise ConfigError("retrain.landing is not set, so no new batch can land and this run has nothing to do: set it "
                      "to the folder where labeled batches land (in the config, or --set "
                      "retrain.landing=/path/to/landing), or retrain on the current data with --set "
                      "retrain.when_no_new_data=retrain")


def _check_local_landing(landing: str | None) -> None:
    """A local ``retrain.landing`` that is not a folder, refused before the Prefect API starts: the flow refused it
    too, but only after about 20 s of starting a server and after opening (creating) the ledger database, for what is
    a typo in the config. A remote URL (``s3://``) is left to the flow, which opens its file system anyway."""
    from tuneline.config import ConfigError

    if landing is None or "://" in str(landing):
        return
    folder = Path(landing).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder; set" if folder.exists() else "does not exist; create it, or set"
        raise ConfigError(f"retrain.landing: the landing folder {folder} {what} retrain.landing to the folder where "
                          "labeled batches land")


def print_retrain_summary(summary: Any, config_path: str | None = None) -> None:
    """What a retraining run did, as ``tuneline retrain`` prints it at the end (``retrain_summary.json`` has it).
    ``config_path``: the config the command was given; the flow's hints say ``-c CONFIG`` (it never knows the
    file), and the printed summary names the user's own."""
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        _print_retrain_summary(summary)
    text = printed.getvalue()
    sys.stdout.write(with_config(text, config_path))


def _print_retrain_summary(summary: Any) -> None:
    from tuneline.cli import print_warnings, resumed_line

    print("\n" + "=" * 72)
    print(f"tuneline retrain: {summary.status}")
    if summary.batches_used:
        print(f"  batches used      : {', '.join(summary.batches_used)}")
    elif summary.status == "waiting" and summary.batch_rows:  # validated, and held back for retrain.min_new_rows
        print(f"  batches waiting   : {', '.join(summary.batch_rows)}")
    for name, rows in summary.batch_rows.items():
        print(f"    {name}: {rows}")
    for name, note in getattr(summary, "rewritten", {}).items():
        print(f"  rewritten file    : {name}: {note}")
    print_warnings(summary.warnings, "retrain_summary.json" if summary.run is not None else None)
    for name, shift in summary.drift.items():
        print(f"  drift             : {name}: {shift}")
    for name, original in summary.batches_duplicate.items():
        note = summary.duplicate_notes.get(name)
        print(f"  batch ignored     : {name}: the same content as {original}, "
              + (note if note else "landed before (never used twice)"))
    for name, reasons in summary.batches_rejected.items():
        reason = "; ".join(reasons)  # whole up to a point: a reason ends with what to do
        print(f"  batch rejected    : {name}: {reason if len(reason) <= 800 else reason[:800] + ' …'}")
        quarantine = getattr(summary, "rejected_quarantines", {}).get(name)
        if quarantine and quarantine not in reason[:800]:  # its rows, each with its rule, line and detail
            print(f"    quarantine: {quarantine}")
    for waiting in summary.waiting:  # a run that trains leaves these as a run with nothing to do says them
        print(f"  not read yet      : {waiting}")
    if summary.data_version is not None:
        print(f"  data version      : {summary.data_version} (#{summary.data_version_hash[:12]})")
    if summary.run is not None:
        run = summary.run
        print(f"  MLflow run        : {run.run_id} ({run.tracking_uri})")
        print(f"  registered model  : {run.registered_model} version {run.version} "
              f"(aliases: {', '.join(run.aliases) or 'none'})")
        if getattr(run, "rejected_records", 0):  # the base data's (first run) and the used batches' together
            print(f"  quarantine        : {run.rejected_records} rejected record{'s' * (run.rejected_records != 1)} in "
                  f"{run.quarantine_file}")
        print(f"  reports           : {run.run_dir}")
        if resumed := resumed_line(run):
            print(resumed)
        if run.time:
            print(f"  {run.time}")
    print(f"  {summary.message}")
    if refused := getattr(summary, "refused_rows", None):
        print(f"  {refused}")
    print("=" * 72)


def _no_store_here(uri: str, url: str) -> None:
    """A one-line :class:`UserError` when the loop's default SQLite ledger and the local MLflow store it sits beside
    are both missing: the store was resolved relative to the folder the command runs in, and not found there. Run
    from the folder above the config, ``data log`` answered "no data version yet" beside nine versions, which reads
    as a loop that never ran (loop QA); ``tuneline history`` names the missing store, and so do these now."""
    from tuneline.errors import UserError
    from tuneline.ledger import default_ledger_url, sqlite_file_missing

    if not uri.startswith("sqlite:///") or not sqlite_file_missing(url) or url != default_ledger_url(uri):
        return
    store = Path(uri[len("sqlite:///"):])
    if not store.is_file():
        raise UserError(f"no MLflow store at {store}: run this in the folder where you trained (the one holding "
                        "mlflow.db), or pass --set tracking.tracking_uri=sqlite:////path/to/mlflow.db")


def _data_log(config: TunelineConfig) -> int:
    from tuneline.dataset_store import DatasetStore
    from tuneline.ledger import ledger_url_for, sqlite_file_missing
    from tuneline.runtime import resolve_tracking_uri
    from tuneline.tasks.intake import dataset_folder
    from tuneline.tracking import open_store

    uri = resolve_tracking_uri(config.tracking.tracking_uri)
    name = config.registered_model_name
    url = ledger_url_for(config.ledger.url, uri)
    _no_store_here(uri, url)
    if sqlite_file_missing(url):
        versions = []  # a read-only command: opening the store would create the ledger file and its tables
    else:
        with DatasetStore(url, name, dataset_folder(config)) as store:
            versions = store.versions()
    if not versions:
        print(f"{name}: no data version yet in {shown_url(url)} (the first `tuneline retrain` makes version 1)")
        return 0
    trained: dict[str, list[str]] = {}
    try:
        client = open_store(uri)
        for mv in client.search_model_versions(f"name='{name}'"):
            if "data.version" in mv.tags:
                trained.setdefault(mv.tags["data.version"], []).append(f"v{mv.version}")
    except Exception as error:  # noqa: BLE001 - the log is still useful without the registry
        print(f"(registry not read: {redact(error)})")
    print(f"data versions of {name} ({shown_url(url)}):")
    for v in versions:
        splits = "/".join(str(v.split_rows.get(s, 0)) for s in ("train", "validation", "test"))
        models = ", ".join(sorted(trained.get(str(v.number), []), key=lambda s: int(s[1:]))) or "-"
        print(f"  {v.number:>3}  #{v.short_hash}  {v.created_at:%Y-%m-%d %H:%M:%S}Z  rows {v.rows} "
              f"(train/val/test {splits})  models {models}  {v.note or ''}")
    return 0


def _data_batches(config: TunelineConfig, state: str | None) -> int:
    """``tuneline data batches``: every recorded batch and its fate. ``data log`` lists data versions, so a rejected
    batch (which makes none) was seen only in the run's printout: a batch rejected by a scheduled run at night
    left no trace an operator could list in the morning."""
    from datetime import datetime, timezone

    from tuneline.ledger import (CLAIMED, DROPPED, DUPLICATE, LANDED, REJECTED, VALIDATED, Ledger, ledger_url_for,
                                 sqlite_file_missing)
    from tuneline.runtime import resolve_tracking_uri

    name = config.registered_model_name
    uri = resolve_tracking_uri(config.tracking.tracking_uri)
    url = ledger_url_for(config.ledger.url, uri)
    _no_store_here(uri, url)
    if sqlite_file_missing(url):  # read-only: opening it would create the ledger file
        print(f"{name}: no batch ledger at {shown_url(url)}: no batch has landed (run this where `tuneline retrain` "
              "ran, or set ledger.url / tracking.tracking_uri to that loop's stores)")
        return 0
    with Ledger(url, name) as ledger:
        every = ledger.batches()
        # why a batch was dropped is in its event history only: the listing showed "dropped" and no reason (pair QA)
        dropped = {e.content_hash: e.detail for e in ledger.history() if e.to_state == DROPPED and e.detail} \
            if any(b.state == DROPPED for b in every) else {}
    now = datetime.now(timezone.utc)
    shown = [b for b in every if state is None or b.state == state]
    if not shown:
        print(f"{name}: no {state + ' ' if state else ''}batch recorded in {shown_url(url)}")
        return 0
    names = {b.id: b.name for b in every}
    from collections import Counter

    counts = ", ".join(f"{n} {s}" for s, n in sorted(Counter(b.state for b in every).items()))
    if state is not None:  # the counts of every state under a filter read as if all of them were listed
        counts = f"{len(shown)} {state} shown, of {len(every)} ({counts})"
    print(f"batches of {name} ({shown_url(url)}): {counts}")
    width = min(max(len(b.name) for b in shown), 40)
    for b in shown:
        rows = ""
        if b.state in (LANDED, CLAIMED):  # not validated (again) yet: counts left by a requeued rejection are stale
            pass
        elif b.state == REJECTED and b.rows_rejected is not None:  # read, then rejected whole: none kept
            rows = f"  rows {b.rows_rejected} read, none kept{_rejected_rows(b)}"
        elif b.state == REJECTED and b.rows_accepted is None:  # the reader refused the file: no row was counted
            rows = "  not read (no row counted)"
        elif b.rows_accepted is not None or b.rows_rejected:
            rows = f"  rows {b.rows_accepted or 0} kept, {b.rows_rejected or 0} quarantined"
        model = f"  model v{b.model_version}" if b.model_version else ""
        copy = f"  copy of {names.get(b.duplicate_of, 'an earlier batch')}" if b.state == DUPLICATE else ""
        # a batch under a live lease is not free, whatever its state says: `watch --once` and `doctor` named its
        # holder, and this listing showed it as plain "validated" (loop QA)
        held = (f"  held by run {b.claimed_by} until {b.lease_expires_at:%Y-%m-%d %H:%M:%S}Z"
                if b.state in (CLAIMED, VALIDATED) and b.claimed_by and b.lease_expires_at
                and b.lease_expires_at > now else "")
        print(f"  {b.name:<{width}}  #{b.content_hash[:12]}  {b.state:<9}  landed {b.landed_at:%Y-%m-%d %H:%M:%S}Z"
              f"{rows}{model}{copy}{held}")
        for reason in b.reasons:
            print(f"      reason: {reason if len(reason) <= 600 else reason[:600] + ' …'}")
        if b.state == DROPPED and b.content_hash in dropped:
            print(f"      {dropped[b.content_hash]}")
        if b.quarantine_path:
            print(f"      quarantine: {b.quarantine_path}")
    return 0


def _rejected_rows(batch: Any) -> str:
    """``: 4 quarantined, 20 held back with the batch`` for a batch rejected whole: its quarantine lists only the
    rows that broke a rule, and the others were in neither the quarantine nor the data, with no count saying so
    (loop QA). "" when its quarantine holds every row it read, or cannot be read."""
    import pandas as pd

    path = Path(batch.quarantine_path) if batch.quarantine_path else None
    if path is None or not path.is_file():
        return ""
    try:
        quarantined = len(pd.read_csv(path, dtype=str, usecols=["split", "source_file", "source_row"])
                          .drop_duplicates())
    except (OSError, ValueError, pd.errors.ParserError):
        return ""
    held = batch.rows_rejected - quarantined
    return f": {quarantined} quarantined, {held} held back with the batch" if quarantined and held > 0 else ""


def _retrain_command(args: argparse.Namespace) -> str:
    """``tuneline retrain -c <the config given>``, as the user can paste it (it said ``-c CONFIG``: README QA)."""
    import shlex

    return f"tuneline retrain -c {shlex.quote(str(args.config))}" if getattr(args, "config", None) else \
        "tuneline retrain -c CONFIG"


def _data_drop(config: TunelineConfig, batch_name: str, reason: str, retrain: str = "tuneline retrain -c CONFIG"
               ) -> int:
    """``tuneline data drop BATCH``: a new data version without the rows that batch added."""
    import getpass

    from tuneline.dataset_store import DatasetStore
    from tuneline.errors import UserError
    from tuneline.ledger import CLAIMED, LANDED, VALIDATED, Ledger, LedgerConflict
    from tuneline.tasks.intake import dataset_folder

    name, url, batch = _landed_batch(config, batch_name, reason, "why the batch's rows are taken out")
    with DatasetStore(url, name, dataset_folder(config)) as store:
        parent = store.current()
        part = store.part_in_version(batch.content_hash, parent) if parent is not None else None
        if batch.state in (LANDED, CLAIMED, VALIDATED) and (part is None or parent is None
                                                           or part not in parent.parts):
            return _drop_before_use(name, url, batch, reason)
        if part is None:
            raise UserError(f"batch {batch.name} added no rows to the data (it is {batch.state}); nothing to drop")
        kept_part, kept_from = _rows_also_delivered(config, store, part, batch, url, name)
        if kept_from and sum(kept_from.values()) >= len(store.read_part(part)):
            # every row stays (the other batches brought them too): a new version equal to the last, the batch
            # marked dropped, a retrain advised for nothing, and a later drop of those batches would have kept the
            # rows of this "dropped" one (operator QA)
            others = ", ".join(kept_from)
            raise UserError(f"batch {batch.name}: all its {sum(kept_from.values())} rows in the data were also "
                            f"delivered by {others}, still in use (set aside there as copies of these), so dropping "
                            f"{batch.name} alone removes nothing; drop {others} first (tuneline data drop), then "
                            f"{batch.name}")
        labels = _labels_still_carried(config, store, parent, part, kept_part) if parent is not None else None
        holding = [v.number for v in store.versions() if part in v.parts]
        note = f"dropped batch {batch.name} (#{batch.content_hash[:12]}): {reason.strip()}"
        if kept_part is not None:
            note += "; kept its rows that " + ", ".join(f"{b} ({n})" for b, n in kept_from.items()) + " also delivered"
            version = store.commit(parent, [], list(labels), f"user {getpass.getuser()}", note,
                                   replacing={part: kept_part})
        else:
            version = store.drop_part(part, f"user {getpass.getuser()}", note, labels=labels)
    try:  # the ledger listed it "used" as if its rows were still trained on, and took a "landed" one again
        with Ledger(url, name) as ledger:
            ledger.mark_dropped(batch.content_hash, f"user {getpass.getuser()}",
                                f"data version {version.number}: {reason.strip()}")
    except LedgerConflict as error:
        print(f"warning: the batch ledger was not updated: {error}", file=sys.stderr)
    kept = (f" (but for {sum(kept_from.values())} that "
            + ", ".join(f"{b}" + (f" ({n})" if len(kept_from) > 1 else "") for b, n in kept_from.items())
            + " also delivered, which stay)") if kept_from else ""
    print(f"data version {version.number} (#{version.short_hash}) of {name}: version {version.parent} without the "
          f"rows of {batch.name}{kept}; {version.rows} rows. Retrain on it: {retrain} --set "
          "retrain.when_no_new_data=retrain")
    gone = [label for label in (parent.labels if parent is not None else ()) if label not in version.labels]
    if gone:
        restart = (" (from model.base where the champion's head has them: a head cannot lose labels, so a continual "
                   "run trains as retrain.strategy full does, and says so)" if config.retrain.strategy == "continual"
                   else "")
        print(f"label(s) {gone} leave the label set: the label growth that added them came with these rows, and no "
              f"row of the data carries them now; the next retraining learns {list(version.labels)}{restart}")
    _models_trained_on(config, holding, gone)
    return 0


def _models_trained_on(config: TunelineConfig, data_versions: list[int], gone: list[str]) -> None:
    """After a drop: the registered versions trained on data that held the batch's rows (the champion among them
    stays champion until a retrained version passes the gate), and, where the drop takes labels out that the
    champion predicts, that the gate keeps such a version out unless told the class is retired. Without this the
    drop printed only the new data version, and the next retrain's refusal came as a surprise."""
    from tuneline.promotions import champion_version
    from tuneline.runtime import resolve_tracking_uri
    from tuneline.tracking import open_store

    uri = resolve_tracking_uri(config.tracking.tracking_uri)
    name = config.registered_model_name
    try:
        client = open_store(uri)
        champion = champion_version(client, name)
        trained = sorted((int(mv.version) for mv in client.search_model_versions(f"name='{name}'")
                          if mv.tags.get("data.version", "").isdigit() and int(mv.tags["data.version"]) in
                          data_versions))
    except Exception as error:  # noqa: BLE001 - the drop is done; only the advice depends on the registry
        print(f"(registry not read: {redact(error)})")
        return
    if trained:
        shown = ", ".join(f"v{v}" + (" (champion)" if str(v) == champion else "") for v in trained)
        print(f"model version(s) of {name} trained on data holding these rows: {shown}")
        if champion is not None and int(champion) in trained:
            print(f"champion v{champion} was trained on them and stays champion until a version retrained without "
                  f"them passes the gate (or: tuneline rollback {name} --reason \"...\", to the champion before it)")
    if gone and champion is not None and int(champion) in trained:  # a champion from before the batch never had them
        print(f"the gate keeps out a version that cannot predict a label champion v{champion} predicts: to retire "
              f"{gone}, retrain with --set gate.allow_dropped_labels=true")


def _is_quarantine(path: Path) -> bool:
    """Whether ``path`` is a quarantine file tuneline wrote (its header names the rule and the source row)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            header = handle.readline().strip().split(",")
    except OSError:
        return False
    return {"rule", "source_file", "source_row", "value", "detail"} <= set(header)


def _conflicts_of_quarantine(path: Path, kind: Any, config: TunelineConfig, batches: list[Any]) -> Any:
    """The rows a batch's quarantine lists as ``conflicts_with_earlier_label``, read from the batch as it landed
    (its text and the batch's label, as the model's data is read): ``data relabel QUARANTINE`` takes the batch's
    side. The quarantine alone holds the text in ``value`` and both labels in ``detail``, cut and quoted; the README
    said to give it and the command refused it as a file without a 'label' column.

    The batch is the ledger's whose content hash the quarantine's folder is named after
    (``<run>/batches/<hash>/quarantine.csv``), read from its hash-checked copy (what the run validated). It had been
    read from the file now at the landing path: a producer's rewrite of that file gave labels nobody had given,
    silently, and a landing clean-up made the printed fix fail although the copy was there (operator QA)."""
    import pandas as pd

    from tuneline.errors import UserError
    from tuneline.kinds.base import ReadRecords
    from tuneline.tasks.intake import CONFLICTS_WITH_EARLIER, UnreadableBatch, _read_batch

    quarantine = pd.read_csv(path, dtype={"source_file": str})
    rows = quarantine[quarantine["rule"] == CONFLICTS_WITH_EARLIER]
    if rows.empty:
        raise UserError(f"{path} is a quarantine file without {CONFLICTS_WITH_EARLIER} rows: nothing in it "
                        "relabels the data; give a file of rows with their right labels")
    short = path.parent.name
    owners = [b for b in batches if short and b.content_hash.startswith(short)]
    if len(owners) != 1:
        raise UserError(f"{path} is not the quarantine of a batch of {config.registered_model_name} (its folder, "
                        f"{short!r}, names no landed batch): give the quarantine under <run>/batches/<hash>/, or a "
                        "file of the rows with their right labels")
    batch = owners[0]
    try:
        landed = _read_batch(batch, config).frames["all"]
    except UnreadableBatch as error:
        raise UserError(f"{path}: its batch {batch.name} can no longer be read as it landed ({error}); give a file "
                        "of the rows with their right labels instead") from None
    keys = set(zip(rows["source_file"].astype(str), rows["source_row"].astype(int)))
    found = landed[[(str(f), int(r)) in keys for f, r in zip(landed["source_file"], landed["source_row"])]]
    if len(found) != len(keys):
        raise UserError(f"{path}: its batch {batch.name} holds {len(found)} of the {len(keys)} rows it names; give "
                        "a file of the rows with their right labels instead")
    print(f"{path}: the batch's label for {len(found)} row(s) quarantined as {CONFLICTS_WITH_EARLIER} (read from "
          f"batch {batch.name} as it landed, #{batch.content_hash[:12]})")
    return ReadRecords(frame=found.reset_index(drop=True), malformed=[], records_seen=len(rows), source_lines=None)


def _drop_before_use(name: str, url: str, batch: "Batch", reason: str) -> int:
    """``data drop`` of a batch no data version holds yet (landed, validated and waiting for
    ``retrain.min_new_rows``, or left claimed by a run that died): there are no rows to take out, but the next run
    would take it in, so it is marked ``dropped`` in the ledger and no run ever claims it. Before, the command
    answered "nothing to drop" and the next run trained on the batch the user had just asked to drop. Refused
    (nothing changed) while a live run holds it: that run may commit its rows, which a drop then takes out."""
    import getpass

    from tuneline.errors import UserError
    from tuneline.ledger import Ledger, LedgerConflict

    try:
        with Ledger(url, name) as ledger:
            ledger.mark_dropped(batch.content_hash, f"user {getpass.getuser()}",
                                f"before any data version held its rows: {reason.strip()}")
    except LedgerConflict as error:
        raise UserError(f"{error}; let that run finish, then drop the batch (its rows are then in the data)") from None
    print(f"batch {batch.name} (#{batch.content_hash[:12]}) of {name} is dropped: it was {batch.state} and no data "
          "version holds its rows, so the data stays as it is and no retraining run will take the batch in")
    return 0


def _data_relabel(config: TunelineConfig, path: Path, reason: str, retrain: str = "tuneline retrain -c CONFIG"
                  ) -> int:
    """``tuneline data relabel FILE``: a new data version with the labels of FILE's rows (:mod:`tasks.relabel`)."""
    import getpass

    from tuneline.dataset_store import DatasetStore
    from tuneline.errors import UserError
    from tuneline.kinds import kind_of
    from tuneline.ledger import CLAIMED, VALIDATED, Ledger, ledger_url_for, sqlite_file_missing
    from tuneline.readers import DataLoadError, detect_format
    from tuneline.runtime import resolve_tracking_uri
    from tuneline.tasks.intake import dataset_folder
    from tuneline.tasks.relabel import refuse_broken_rows, relabel_rows, where_in

    if not reason.strip():
        raise UserError("--reason must say why the labels change")
    if not path.is_file():
        raise UserError(f"{path} does not exist (or is not a file); give the file of rows with their right labels")
    name = config.registered_model_name
    uri = resolve_tracking_uri(config.tracking.tracking_uri)
    url = ledger_url_for(config.ledger.url, uri)
    _no_store_here(uri, url)
    if sqlite_file_missing(url):
        raise UserError(f"{name}: no data version yet in {shown_url(url)}: the first `tuneline retrain` makes version 1")
    with Ledger(url, name) as ledger:  # a run between its claim and its "used" builds on the version it read
        batches = ledger.batches()
        busy = [b.name for b in batches if b.state in (CLAIMED, VALIDATED)]
    if busy:
        raise UserError(f"batch(es) {', '.join(busy)} of {name} are being taken in by a retraining run (or one that "
                        "died mid-way): let it finish (or run tuneline doctor --fix, then tuneline retrain), then "
                        "relabel")
    kind = kind_of(config)
    try:
        read = (_conflicts_of_quarantine(path, kind, config, batches) if _is_quarantine(path) else
                kind.read_file(path, detect_format(path, config.data.format), config.data))
    except DataLoadError as error:  # the reader's message names the file already: once is enough
        raise UserError(str(error) if str(path) in str(error) else f"{path}: {error}") from None
    if read.malformed:
        first = read.malformed[0]
        where = where_in(first["source_row"], read.source_lines)
        raise UserError(f"{path}: {len(read.malformed)} record(s) cannot be read, first at {where} "
                        f"({first.get('rule')}): fix them, so that no correction is lost")
    with DatasetStore(url, name, dataset_folder(config)) as store:
        parent = store.current()
        if parent is None:
            raise UserError(f"{name}: no data version yet in {shown_url(url)}: the first `tuneline retrain` makes "
                            "version 1")
        # the labels in the version's spelling, as a batch's are ('POSITIVE' and 'positive.' are its 'positive')
        spelled = config.data.model_copy(update={"labels": list(parent.labels)})
        frame = kind.prepare({"all": read.frame}, spelled, source=f" in {path.name}")["all"]
        if frame.empty:
            raise UserError(f"{path} holds no rows; give the rows to relabel with their right labels")
        refuse_broken_rows(frame, list(parent.labels), config.model_copy(update={"data": spelled}), path,
                           read.source_lines)
        done = relabel_rows(store, parent, frame, kind, path, f"user {getpass.getuser()}",
                            f"relabelled rows from {path.name}: {reason.strip()}", read.source_lines)
    per_split = ", ".join(f"{split} {count}" for split, count in sorted(done.splits.items()))
    print(f"data version {done.version.number} (#{done.version.short_hash}) of {name}: version {parent.number} with "
          f"{done.changed} row(s) relabelled ({per_split})" + (
              f"; {done.unchanged} row(s) of {path.name} already had their label" if done.unchanged else "")
          + f". Retrain on it: {retrain} --set retrain.when_no_new_data=retrain")
    return 0


def _rows_also_delivered(config: TunelineConfig, store: Any, part: str, batch: "Batch", url: str, name: str
                         ) -> tuple[str | None, dict[str, int]]:
    """The rows of a dropped batch's ``part`` that a batch still in use also delivered, as a new part to keep in its
    place (None when there are none), and how many each such batch delivered.

    A later batch's copy of a row the data already held was quarantined there as ``duplicate_of_earlier_data`` and
    not stored twice: dropping the first batch took the row out although the later batch, still "used", had brought
    it too (and after a relabel confirmed the later batch's labels, took those out). Matched as the loop matches
    copies (case and spacing aside); a quarantined value is cut at 500 characters, so a longer text matches on that
    start."""
    from collections import Counter

    import pandas as pd

    from tuneline.kinds import kind_of
    from tuneline.ledger import USED, Ledger
    from tuneline.tasks.intake import DUPLICATE_OF_EARLIER, QUARANTINE_VALUE_CHARS
    from tuneline.tasks.split import example_key

    kind = kind_of(config)
    if kind.key_column != kind.value_column:  # a pair's quarantine shows its first text only: no key to match
        return None, {}
    with Ledger(url, name) as ledger:
        others = [b for b in ledger.batches() if b.state == USED and b.content_hash != batch.content_hash
                  and b.quarantine_path and Path(b.quarantine_path).is_file()]
    whole: dict[str, str] = {}
    starts: list[tuple[str, str]] = []
    for other in others:
        quarantine = pd.read_csv(other.quarantine_path, dtype=str, keep_default_na=False)
        for value in quarantine.loc[quarantine["rule"] == DUPLICATE_OF_EARLIER, "value"]:
            if len(value) >= QUARANTINE_VALUE_CHARS:
                starts.append((example_key(value), other.name))
            else:
                whole.setdefault(example_key(value), other.name)
    if not whole and not starts:
        return None, {}
    rows = store.read_part(part)
    keys = rows[kind.key_column].map(example_key)
    owner = [whole.get(key) or next((b for start, b in starts if key.startswith(start)), None) for key in keys]
    mask = [o is not None for o in owner]
    if not any(mask):
        return None, {}
    return store.write_part(rows[mask].reset_index(drop=True)), dict(Counter(o for o in owner if o is not None))


def _labels_still_carried(config: TunelineConfig, store: Any, parent: Any, part: str,
                          kept_part: str | None = None) -> list[str]:
    """The label set of the version without ``part`` (with ``kept_part`` in its place): a label that label growth
    added and that no remaining row carries leaves it (a typo grown into a class and dropped with its batch would stay
    as an empty class, and the next model would learn a head for a label without rows). Version 1's labels always
    stay."""
    import pandas as pd

    from tuneline.kinds import kind_of

    kind = kind_of(config)
    rows = [store.read_part(kept_part if p == part else p) for p in parent.parts if p != part or kept_part]
    present = kind.label_distribution(pd.concat(rows, ignore_index=True)) if rows else {}
    base = set(store.get(1).labels)

    carried = {kind.label_class(label) for label, count in present.items() if count > 0} - {None}
    # a label of a class still carried stays only if the class needs it (NER: B-/I- of a type whose rows remain;
    # an IOBES S-LOC grown beside B-LOC stayed because LOC was carried: loop QA)
    needed = set(kind.labels_of_classes(sorted(carried)))
    return [label for label in parent.labels if label in base or present.get(label, 0) > 0 or label in needed]


def _landed_batch(config: TunelineConfig, batch_name: str, reason: str, why: str) -> tuple[str, str, "Batch"]:
    """(model name, ledger URL, the one original batch landed as ``batch_name`` or whose content hash starts with
    it), for a command that changes a batch's fate by hand and so must say ``why``."""
    from tuneline.errors import UserError
    from tuneline.ledger import Ledger, ledger_url_for, sqlite_file_missing
    from tuneline.runtime import resolve_tracking_uri

    if not reason.strip():
        raise UserError(f"--reason must say {why}")
    model = config.registered_model_name
    uri = resolve_tracking_uri(config.tracking.tracking_uri)
    url = ledger_url_for(config.ledger.url, uri)
    _no_store_here(uri, url)
    if sqlite_file_missing(url):
        # run from another folder (the default ledger sits beside ./mlflow.db): opening it created an empty ledger
        # there, and the answer "no landed batch is called X" sent the user looking for a typo in the name
        raise UserError(f"no batch ledger at {shown_url(url)}, so no batch of {model!r} has landed there: run this in "
                        "the folder where `tuneline retrain` ran (the one holding mlflow.db), or set ledger.url / "
                        "tracking.tracking_uri to that loop's stores")
    wanted = Path(batch_name.rstrip("/")).name or batch_name  # a path (landing/x.csv) names its batch x.csv
    with Ledger(url, model) as ledger:
        if config.retrain.landing is not None:
            # a complete batch no run has recorded yet (no watcher runs): recorded now, as the next run would, so it
            # can be dropped before that run trains on it (it had been "no landed batch is called X")
            try:
                ledger.scan(config.retrain.landing, data_format=config.data.format)
            except (OSError, ValueError):  # an unreachable landing: the batches recorded so far are all there is
                pass
        every = ledger.batches()
        originals = [b for b in every if b.duplicate_of is None]
    found = [b for b in originals
             if b.name == wanted or (len(batch_name) >= 8 and b.content_hash.startswith(batch_name))]
    if len(found) > 1:
        listed = "; ".join(f"#{b.content_hash[:12]} ({b.state}, landed {b.landed_at:%Y-%m-%d %H:%M:%S}Z)"
                           for b in found)
        raise UserError(f"{len(found)} landed batches of {model!r} are called {wanted!r}: {listed}; give the one "
                        "you mean by its content hash (the first 8 or more characters)")
    copy = next((b for b in every if b.duplicate_of is not None and b.name == wanted), None)
    if not found and copy is not None:
        original = next((b for b in originals if b.id == copy.duplicate_of), None)
        of = (f"batch {original.name} (#{original.content_hash[:12]}, {original.state})" if original is not None
              else "an earlier batch")
        raise UserError(f"{wanted!r} landed as a copy of {of} and was never used on its own; give that batch's name "
                        "instead")
    if not found:
        import difflib

        close = difflib.get_close_matches(wanted, sorted({b.name for b in originals}), n=3, cutoff=0.75)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        if not hint and len(batch_name) < 8 and any(b.content_hash.startswith(batch_name.lower()) for b in originals):
            hint = " (a content hash is given by its first 8 or more characters)"
        raise UserError(f"no landed batch of {model!r} is called {batch_name!r}{hint}; give its file or folder "
                        "name as landed, or the start of its content hash")
    return model, url, found[0]


def _data_requeue(config: TunelineConfig, batch_name: str, reason: str) -> int:
    """``tuneline data requeue BATCH``: a rejected batch back to landed."""
    import getpass

    from tuneline.errors import UserError
    from tuneline.ledger import LANDED, Ledger, LedgerConflict

    name, url, batch = _landed_batch(config, batch_name, reason, "why the batch is taken again")
    if batch.state == LANDED:  # what was asked for holds (a requeue run twice, e.g. again with --set): as promote
        print(f"batch {batch.name} (#{batch.content_hash[:12]}) of {name} is landed already: the next `tuneline "
              "retrain` takes it; nothing to do (a --set for that run goes on `tuneline retrain`)")
        return 0
    if batch.size_bytes == 0:  # it had been landed again, "change the data.* setting it names" (operator QA)
        raise UserError(f"batch {batch.name} (#{batch.content_hash[:12]}) is an empty file (0 bytes): no setting makes "
                        "it readable, so it stays rejected; land the data as a new file")
    try:
        with Ledger(url, name) as ledger:
            ledger.requeue(batch.content_hash, f"user {getpass.getuser()}", reason.strip())
    except LedgerConflict as error:
        raise UserError(str(error)) from None
    was = "; ".join(batch.reasons) or "no reason recorded"
    if len(was) > 300:
        was = was[:300].rsplit(" ", 1)[0] + " …"
    print(f"batch {batch.name} (#{batch.content_hash[:12]}) of {name} is landed again (it was rejected: {was}); "
          f"the next `tuneline retrain` takes it")
    again = _rejects_again(config, batch.reasons)
    if again:
        print(f"note: with this config the next run rejects it again for the same reason: run it with {again}")
    if any(" cannot be read: " in r for r in batch.reasons) and (still := _unreadable_now(config, batch)):
        print(f"note: with this config the batch still cannot be read ({still}); change the data.* setting it names "
              "(with --set on the next retrain, or in the config) before that run, or it is rejected again")
    if content := _content_rejection(batch.reasons):
        print(f"note: it was rejected for its content ({content}); the batch is the same bytes, so unless the data "
              "or the settings named in that reason changed meanwhile, the next run rejects it again: fix the file and "
              "land it as a new batch instead (or change the setting with --set on the next retrain)")
    return 0


def _content_rejection(reasons: list[str]) -> str | None:
    """What in a batch's rows rejected it (too many broken or contradicting rows, none new), or None: a requeue
    alone changes none of that, and it had been taken silently, to be rejected again the same way (operator QA)."""
    for reason in reasons:
        if reason.startswith("no new rows"):
            return "no new rows"
        for part in reason.split("; "):  # the clause that says it, not the reason's first (an unseen label's)
            if "more than data.max_bad_fraction" in part or "more than data.max_duplicate_fraction" in part:
                return part.removeprefix("besides, ")[:200]
    return None


def _unreadable_now(config: TunelineConfig, batch: "Batch") -> str | None:
    """Why the batch, rejected as unreadable, still cannot be read with ``config`` (read for real, from its
    hash-checked copy, as the next run reads it), or None when it now can."""
    from tuneline.tasks.intake import UnreadableBatch, _read_batch

    try:
        _read_batch(batch, config)
    except UnreadableBatch as error:
        text = str(error).split("; only this batch is rejected")[0]
        return text.split(" cannot be read: ", 1)[-1][:300]
    return None


def _rejects_again(config: TunelineConfig, reasons: list[str]) -> str | None:
    """The ``--set`` that the next retrain needs to take a requeued batch whose rejection this config would repeat
    (an unseen label without label growth, a drift stop), or None."""
    import re

    needed = []
    if any(r.startswith("unseen label(s)") for r in reasons) and not config.drift.allow_label_growth:
        needed.append("--set drift.allow_label_growth=true")
    # "drift (drift.on_drift=stop, drift.on_label_disagreement=stop): ...": every key the stop obeyed (only
    # drift.on_drift was read, so a requeued label-disagreement batch was rejected again without a word: loop QA)
    stopped = {key for r in reasons if (m := re.match(r"drift \(([^)]*)\)", r))
               for key in re.findall(r"(drift\.\w+)=stop", m[1])}
    for key, value in (("drift.on_drift", config.drift.on_drift),
                       ("drift.on_label_disagreement", config.drift.on_label_disagreement)):
        if key in stopped and value == "stop":
            needed.append(f"--set {key}=warn")
    return " ".join(needed) or None


#: name endings of a batch file or its marker: a FOLDER named so is the file the user meant to land, not a folder
_FILE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".pq", ".conll", ".txt", ".done")


def _demo_batch(args: argparse.Namespace) -> int:
    from tuneline.demo import write_demo_batch
    from tuneline.errors import UserError

    from tuneline.cli import UsageError
    from tuneline.demo import MAX_BATCHES

    folder: Path = args.folder
    if not 1 <= args.number <= MAX_BATCHES:
        raise UsageError(f"batch number must be between 1 and {MAX_BATCHES}, got {args.number} (-n/--number)")
    if args.rows < 1:
        raise UsageError(f"rows must be 1 or more, got {args.rows} (--rows)")
    # Checked before anything is written. A file there failed in the OS's words ("File exists: demo-loop.yaml: check
    # that path, its permissions and the free disk space"); a batch file's name (landing/b.csv) made a folder b.csv
    # inside the landing folder, which the scanner then listed as a folder batch waiting for its _SUCCESS forever.
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder: give the landing folder (retrain.landing) to write the "
                        f"batch into, e.g. tuneline demo-batch {folder.parent} -n {args.number}")
    if not folder.exists() and folder.name.lower().endswith(_FILE_SUFFIXES):
        raise UserError(f"{folder} names a file, not the landing folder: demo-batch names its file "
                        f"tickets-batch-NNN.csv itself; give the folder (retrain.landing), e.g. tuneline demo-batch "
                        f"{folder.parent} -n {args.number}")
    path = write_demo_batch(args.folder / f"tickets-batch-{args.number:03d}.csv", args.number, rows=args.rows,
                            shift=args.shift)
    marker = path.with_name(path.name + ".done")
    marker.touch()  # after the rename: the marker says the batch is complete
    print(f"landed {path} (marker {marker.name})")
    return 0
