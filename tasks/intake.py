"""Intake for the retraining loop: claim landed batches, validate each once, and append them as a data version.

Each claimed batch is read with the task kind's reader and checked with the kind's pandera contract exactly as the
training flow checks its files; its rejected records go to its own quarantine file
(``<run folder>/batches/<hash>/quarantine.csv``). A batch over ``data.max_bad_fraction`` is ``rejected`` in the
ledger (final, with the reasons); otherwise it is ``validated``, and its accepted rows are stored as an immutable
dataset part. Rows whose key is already in the data (an earlier version, or an earlier batch of this run; case and
runs of whitespace aside, as the leakage rule compares texts) are quarantined as ``duplicate_of_earlier_data``: data already learned is not learned twice, and a test row can never
come back as a training row. Every row's split is assigned by the salted hash of its key (the training flow's rule),
so it never moves between versions.

A batch already ``validated`` by a run that died is not validated again: its part is read back from the store.

A batch is read from a copy in the dataset folder, checked against the content hash the ledger recorded
(:func:`tuneline.ledger.fetch_batch`). One that cannot be read (changed or removed after it landed, or refused by the
kind's reader: a wrong header, bytes in another encoding) is ``rejected`` with a reason naming that batch
(:class:`UnreadableBatch`); the other batches go on, so one bad file never blocks the loop.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuneline.common import pipeline_task, sha256_file, task_logger
from tuneline.config import TunelineConfig
from tuneline.errors import excerpt
from tuneline.dataset_store import DataVersion, DatasetStore
from tuneline.kinds import kind_of
from tuneline.ledger import VALIDATED, Batch, BatchChanged, Ledger, fetch_batch
from tuneline.readers import DataLoadError, EmptyInput, detect_format, split_setting_advice
from tuneline.run_warnings import SAID_IN_SUMMARY, logged_as
from tuneline.shards import input_files
from tuneline.tasks.load import QUARANTINE_COLUMNS, LoadedData, SourceFile, load_data, role_sources
from tuneline.tasks.split import DataSplits, assign_splits, example_key, split_data
from tuneline.tasks.validate import (
    DataValidationError,
    ValidatedData,
    apply_contract,
    enforce_bad_fraction,
    split_duplicates,
    validate_data,
    where_in_file,
    with_source_lines,
    write_quarantine,
)
from tuneline.tracking import RunContext, set_tags

DUPLICATE_OF_EARLIER = "duplicate_of_earlier_data"
#: how much of a repeated record's text its quarantine row shows (``data drop`` matches copies on it)
QUARANTINE_VALUE_CHARS = 500
CONFLICTS_WITH_EARLIER = "conflicts_with_earlier_label"  # the same example, another label: a correction, or a slip


class UnreadableBatch(DataLoadError):
    """A claimed batch cannot be read; the message names the batch and says what to do. The run rejects that batch
    with this message and goes on with the others."""


@dataclass
class AcceptedBatch:
    """One batch that passed validation: its ledger record, its stored part and its rows (with ``split``)."""

    batch: Batch
    part: str
    frame: pd.DataFrame
    quarantine_path: Path | None
    rejected_rows: int


@dataclass
class Intake:
    accepted: list[AcceptedBatch] = field(default_factory=list)
    rejected: list[tuple[Batch, list[str]]] = field(default_factory=list)
    quarantines: dict[str, str] = field(default_factory=dict)  # a rejected batch's name -> its quarantine file

    def as_validated(self, labels: list[str], total_records: int, run: RunContext) -> ValidatedData:
        """The run's quarantine as the training flow reports it: every accepted batch's rejected records in one
        ``quarantine.csv`` in the run folder (each row names its batch file), and the base data's when this run
        made data version 1 from it (they were in ``base/quarantine.csv`` alone, and the run's file was empty)."""
        files = [Path(a.quarantine_path) for a in self.accepted if a.quarantine_path is not None]
        files.insert(0, run.run_dir / "base" / "quarantine.csv")  # written by ingest_base, in this run only
        frames = [frame for frame in (pd.read_csv(path) for path in files if path.is_file()) if len(frame)]
        quarantine = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=QUARANTINE_COLUMNS)
        # reindex: a batch validated by an earlier version wrote no source_line column
        path = write_quarantine(quarantine.reindex(columns=QUARANTINE_COLUMNS), run.run_dir, run)
        return ValidatedData(frames={}, labels=list(labels), quarantine=quarantine, quarantine_path=path,
                             total_records=total_records)


def dataset_folder(config: TunelineConfig) -> Path:
    return Path(config.retrain.data_dir or Path(config.work_dir) / "datasets" / config.registered_model_name).resolve()


class LeaseKeeper:
    """Renews the run's ledger lease in the background while the run holds batches (training can outlast a lease).

    A run killed outright stops renewing, so its lease runs out and the next run takes its batches over."""

    def __init__(self, ledger: Ledger, run_id: str) -> None:
        self._ledger, self._run_id = ledger, run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="tuneline-lease", daemon=True)

    def _renew(self) -> None:
        while not self._stop.wait(self._ledger.lease_s / 3):
            try:
                self._ledger.heartbeat(self._run_id)
            except Exception as error:  # noqa: BLE001 - reported; mark_used refuses later if the lease was lost
                task_logger().warning("could not renew the ledger lease: %s", error)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def frame_with_splits(frames: dict[str, pd.DataFrame], config: TunelineConfig) -> pd.DataFrame:
    """One frame with a ``split`` column: explicit roles kept, a single file (``all``) split by key hash."""
    kind = kind_of(config)
    parts = []
    for role, frame in frames.items():
        if role == "all":
            frame = frame.assign(split=assign_splits(frame[kind.key_column], config.data.split))
        else:
            frame = frame.assign(split=role)
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


@pipeline_task(name="ingest-base-data")
def ingest_base(config: TunelineConfig, store: DatasetStore, run: RunContext) -> DataVersion:
    """Data version 1: the config's own data files, loaded, validated and split as the training flow does."""
    loaded = load_data.fn(config)
    validated = validate_data.fn(loaded, config, run.run_dir / "base", run)
    splits = split_data.fn(validated.frames, validated.labels, config.data.split, kind=config.task,
                           quarantine_path=validated.quarantine_path)
    frame = pd.concat([f.assign(split=name) for name, f in splits.items()], ignore_index=True)
    part = store.write_part(frame)
    files = ", ".join(Path(s.path).name + (f" ({s.files} files)" if s.files > 1 else "")
                      for s in role_sources(loaded.sources).values())
    version = store.commit(None, [part], list(validated.labels), run.run_id, f"base data {files} ({len(frame)} rows)")
    task_logger().info("data version 1 (#%s): the base data, %d rows", version.short_hash, version.rows)
    record = dataset_folder(config) / BASE_FILES
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({str(path): _file_state(path) for path in base_files(config)}, indent=1))
    return version


#: the base data files' SHA-256 when they became data version 1, beside the stored data
BASE_FILES = "base-files.json"


def _file_state(path: Path, digest: str | None = None) -> dict[str, Any]:
    """A file's size, modification time and SHA-256 (``digest`` when already known)."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest or sha256_file(path)}


def base_files(config: TunelineConfig) -> list[Path]:
    """The base data's files: each configured one, and every shard of a configured folder or pattern."""
    data = config.data
    files: list[Path] = []
    for key in ("path", "train", "validation", "test"):
        if (given := getattr(data, key)) is None:
            continue
        try:
            files += input_files(Path(given), data.format, kind_of(config).formats, f"data.{key}")
        except DataLoadError:  # a folder emptied or a pattern that no longer matches: its recorded shards are gone
            continue
    return [Path(p).resolve() for p in files]


@pipeline_task(name="check-base-data")
def base_data_changed(config: TunelineConfig, parent: DataVersion) -> list[str]:
    """The base data files (``data.path``, ``data.train``, ...) whose content changed since they became data version 1,
    each warned about: the loop trains on the stored version, so an edited file (labels corrected in place) was
    silently not read, run after run."""
    record = dataset_folder(config) / BASE_FILES
    if not record.is_file():
        return []
    recorded = json.loads(record.read_text())
    changed = []
    now_there = base_files(config)
    for path in [*now_there, *(Path(p) for p in recorded if Path(p) not in now_there)]:
        then = recorded.get(str(path))
        if not isinstance(then, dict):  # a shard added to a configured folder or pattern since version 1
            changed.append(str(path))
            task_logger().warning(
                "%s was added to the base data's files since they became data version 1: the retraining loop trains "
                "on the stored data versions (now %d, #%s), never on the base files again, so it is not read; land "
                "it as a batch in retrain.landing", path, parent.number, parent.short_hash)
            continue
        if path.is_file():  # hashed again only when its size or time moved: every run checks, most find it unchanged
            stat = path.stat()
            same_stat = (stat.st_size, stat.st_mtime_ns) == (then.get("size"), then.get("mtime_ns"))
            now = then["sha256"] if same_stat else sha256_file(path)
        else:
            now = None
        if now != then.get("sha256"):
            changed.append(str(path))
            task_logger().warning(
                "%s %s since it became data version 1: the retraining loop trains on the stored data versions "
                "(now %d, #%s), never on the file again, so the edit is not read; land new or corrected rows as a "
                "batch in retrain.landing (a row whose text is already stored with another label is quarantined as "
                "conflicts_with_earlier_label)", path, "changed" if now else "is gone", parent.number,
                parent.short_hash)
    return changed


def _read_batch(batch: Batch, config: TunelineConfig) -> LoadedData:
    """Read a recorded batch with the kind's reader, from its copy in the dataset folder: the content the ledger
    recorded, checked by hash (a remote batch is fetched once, a local one copied once). :class:`UnreadableBatch`
    when the batch changed or vanished after it landed, or its files cannot be read as the model's data is read."""
    kind = kind_of(config)
    cache = dataset_folder(config) / "landed" / batch.content_hash
    try:
        files = fetch_batch(batch.path, batch.kind, cache, batch.content_hash)
    except BatchChanged as error:
        raise UnreadableBatch(f"batch {batch.name}: {error}") from None
    frames, sources, malformed, lines = [], [], [], {}
    try:
        for path in files:
            landed = landed_path(batch, cache, path)  # the quarantine and the log name the file the producer landed
            with logged_as({str(path): landed}):
                try:
                    read = kind.read_file(path, detect_format(path, config.data.format), config.data)
                except EmptyInput:
                    if len(files) == 1:
                        raise
                    continue  # an empty part file of a landed folder holds no records (as a data folder's shard)
            for row in read.malformed:
                malformed.append({"split": "batch", "column": None,
                                  **{k: v for k, v in row.items() if k in QUARANTINE_COLUMNS}, "source_file": landed})
            frames.append(_named(read.frame, landed))
            if read.source_lines is not None:
                lines[landed] = read.source_lines
            sources.append(SourceFile(role="all", path=path, sha256=batch.content_hash, records=read.records_seen,
                                      loaded=len(read.frame), malformed=len(read.malformed)))
        if not frames and len(files) > 1:
            raise EmptyInput(f"{batch.path} holds no records: all {len(files)} of its files are empty")
    except DataLoadError as error:
        shown = str(files[0]) if batch.kind == "file" and files else str(cache)
        raise UnreadableBatch(unreadable_reason(batch, str(error).replace(shown, batch.path))) from None
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return LoadedData(frames={"all": frame}, sources=sources,
                      malformed=pd.DataFrame(malformed, columns=QUARANTINE_COLUMNS), source_lines=lines)


def landed_path(batch: Batch, cache: Path, path: Path) -> str:
    """Where ``path``, a file of the batch's checked copy under ``cache``, was landed: the batch's own path for a
    one-file batch, else that folder joined with the file's place in it."""
    if batch.kind == "file":
        return batch.path
    return batch.path.rstrip("/") + "/" + path.relative_to(cache).as_posix()


def _named(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """``frame`` with every ``source_file`` set to ``source`` (a categorical column stays categorical)."""
    if "source_file" not in frame.columns or not len(frame):
        return frame
    if isinstance(frame["source_file"].dtype, pd.CategoricalDtype):
        codes = np.zeros(len(frame), dtype=np.int8)
        return frame.assign(source_file=pd.Categorical.from_codes(codes, [source]))
    return frame.assign(source_file=source)


def unreadable_reason(batch: Batch, message: str) -> str:
    """The rejection reason of a batch the kind's reader refuses. The reader speaks of data files in general and
    may advise changing a ``data.*`` setting; but that setting reads every later batch too, so the reason says that
    only this batch is rejected, how to land it again, and gives the reader's advice for when all batches changed."""
    message = message.replace(" and point data at the uncompressed file", "")  # the reason below says how to land
    what, advice = split_setting_advice(message)
    reason = (f"batch {batch.name} cannot be read: {what}; only this batch is rejected: fix the file to suit the "
              f"model's data.* settings and land it as a new batch")
    return reason + (f" (or, if every batch will look like this one from now on: {advice})" if advice else "")


def batch_labels(batch: Batch, config: TunelineConfig, loaded: LoadedData | None = None) -> dict[str, int]:
    """The label distribution of a batch as landed (before the contract): what the unseen-label check looks at.
    ``loaded``: the batch as already read (the run reads each batch once; the label check and validation share it)."""
    kind = kind_of(config)
    loaded = loaded if loaded is not None else _read_batch(batch, config)
    frames = kind.prepare({k: f.copy() for k, f in loaded.frames.items()}, config.data, quiet=True)  # validation
    # prepares (and logs) the same rows once more, from the untouched read
    try:
        distribution = kind.label_distribution(frames["all"])
    except Exception:  # noqa: BLE001 - malformed label values are the contract's to report, not this count's
        return {}
    known = list(getattr(config.data, "labels", None) or [])
    if known and (mismatch := layout_mismatch(distribution, known, len(frames["all"]), loaded, kind, config.data,
                                              frames["all"])):
        raise UnreadableBatch(unreadable_reason(batch, mismatch))
    return distribution


def layout_mismatch(distribution: dict[str, int], known: list[str], rows: int, loaded: LoadedData,
                    kind: Any = None, data: Any = None, prepared: pd.DataFrame | None = None) -> str | None:
    """Why a batch's "unseen labels" are no labels but another column (a batch in another layout than the config),
    or None. A one-hot CSV with a header landed for a ``header: false`` label-ids config was refused with 100 comment
    ids listed as unseen labels and the advice to grow the head by them (loop QA). Said so when the unseen values are
    many and nearly all distinct (labels repeat, ids do not), or the batch's first line names known labels as
    columns (a header the config does not expect), or holds the only unseen label of a ``header: false`` batch (a
    header row: ``text, labels, id``), or the kind says they are no labels of its own (``kind``: NER's IOBES tags,
    words read as tags)."""
    unseen = {label: count for label, count in distribution.items() if count > 0 and label not in known}
    if not unseen:
        return None
    if kind is not None and (why_not := kind.labels_no_head_can_learn(sorted(unseen), data)):
        return f"its layout does not match the config's data.* settings: {why_not}"
    if (header := _header_row_read_as_a_record(unseen, kind, data, prepared)) is not None:
        return header
    if len(unseen) < 2:
        return None
    once = sum(1 for count in unseen.values() if count == 1)
    distinct = len(unseen) >= 5 and len(unseen) * 2 >= rows and once * 5 >= len(unseen) * 4
    header = _first_line_names(loaded, known)
    if not distinct and len(header) < 2:
        return None
    shown = sorted(unseen, key=lambda label: (-unseen[label], label))
    listed = ", ".join(repr(label) for label in shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")
    why = [f"its first line names known labels as columns ({', '.join(header[:3])}), a header"] if len(header) >= 2 \
        else []
    if distinct:
        why.append(f"{len(unseen)} of its label values are unseen and nearly all distinct ({listed}), as ids are")
    else:
        why.append(f"its label values {listed} are unseen")
    return ("its layout does not match the config's data.* settings (header row, text and label columns): "
            + "; ".join(why))


def _header_row_read_as_a_record(unseen: dict[str, int], kind: Any, data: Any,
                                  prepared: pd.DataFrame | None) -> str | None:
    """With ``data.header: false``, a batch whose unseen labels are all in its first record (``text labels id``
    above the rows: a header its producer wrote) was refused for the "unseen label" ``labels`` with the advice to
    grow the head by it (loop QA)."""
    if kind is None or prepared is None or getattr(data, "header", True) or not len(prepared) or \
            any(count != 1 for count in unseen.values()):
        return None
    first = prepared.iloc[:1]
    try:
        in_first = {label for label, count in kind.label_distribution(first).items() if count > 0}
    except Exception:  # noqa: BLE001 - a malformed first record is the contract's to report
        return None
    if not set(unseen) <= in_first:
        return None
    text = first[kind.value_column].iloc[0] if kind.value_column in first else None
    shown = f" ({excerpt(text, 60)} / {', '.join(map(repr, unseen))})" if text is not None else ""
    return ("its layout does not match the config's data.* settings: its first line looks like a header row"
            f"{shown}, the only row with an unseen label, and data.header is false (the files have no header): "
            "remove that line from the batch")


def _first_line_names(loaded: LoadedData, known: list[str]) -> list[str]:
    """The known labels that the first line of the batch's first file names as fields (a header row), in order."""
    import re

    if not loaded.sources:
        return []
    try:
        with Path(loaded.sources[0].path).open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline(100_000)
    except OSError:
        return []
    fields = [f.strip().strip('"').strip() for f in re.split(r"[,\t;|]", first.lstrip("\ufeff"))]
    return [f for f in fields if f in set(known)]


@pipeline_task(name="validate-batches")
def validate_batches(batches: list[Batch], labels: list[str], config: TunelineConfig, ledger: Ledger,
                     store: DatasetStore, reference: pd.DataFrame, run: RunContext,
                     read: dict[str, LoadedData] | None = None) -> Intake:
    """Validate every claimed batch against the label set; record each outcome in the ledger; store the parts.
    ``read``: batches the label check already read, by content hash (taken from it, so each is held once and
    dropped after its validation; a batch not in it is read here)."""
    read = read if read is not None else {}
    log = task_logger()
    kind = kind_of(config)
    checked = config.model_copy(deep=True)
    checked.data.labels = list(labels)  # a batch never redefines the label set; growth is decided before
    seen = {example_key(k) for k in reference[kind.key_column]} if len(reference) else set()
    intake = Intake()
    for batch in batches:
        folder = run.run_dir / "batches" / batch.content_hash[:12]
        part = store.part_of_batch(batch.content_hash) if batch.state == VALIDATED else None
        if part is not None:
            frame = store.read_part(part)
            log.info("batch %s was validated by an earlier run: %d rows, not validated again", batch.name, len(frame))
            intake.accepted.append(AcceptedBatch(batch, part, frame, Path(batch.quarantine_path) if
                                                 batch.quarantine_path else None, batch.rows_rejected or 0))
            seen.update(example_key(k) for k in frame[kind.key_column])
            continue
        loaded = None
        try:
            loaded = read.pop(batch.content_hash, None) or _read_batch(batch, checked)
            validated = _validate_batch(loaded, labels, checked, folder, batch.name)
        except (DataValidationError, DataLoadError) as error:
            quarantine = folder / "quarantine.csv"
            ledger.mark_rejected(run.run_id, batch.content_hash, [str(error)],
                                 quarantine if quarantine.is_file() else None,
                                 rows_read=loaded.total_records if loaded is not None else None)
            intake.rejected.append((batch, [str(error)]))
            if quarantine.is_file():
                intake.quarantines[batch.name] = str(quarantine)
            log.warning("batch %s rejected: %s", batch.name, error, extra=SAID_IN_SUMMARY)
            continue
        frame = frame_with_splits(validated.frames, checked)
        keys = frame[kind.key_column].map(example_key)
        repeated = keys.isin(seen).to_numpy()
        quarantine = validated.quarantine
        if repeated.any():
            again = frame[repeated]
            earlier = _earlier_labels(set(keys[repeated]), [reference, *(a.frame for a in intake.accepted)], kind)
            names = {b.content_hash: b.name for b in ledger.batches()}
            rules, details = [], []
            for key, label in zip(keys[repeated], again[kind.target_column]):
                before, origin = earlier.get(key, (None, None))
                if before is not None and str(before) != str(label):
                    rules.append(CONFLICTS_WITH_EARLIER)
                    details.append(f"already in the data with label {str(before)[:100]!r}; this batch says "
                                   f"{str(label)[:100]!r}: {_how_to_correct(origin, names)}")
                else:  # where the copy's original came from: a producer resending rows wants to know whose
                    rules.append(DUPLICATE_OF_EARLIER)
                    details.append("already in an earlier data version or batch: not added again" if before is None
                                   else f"already in the data: it came with {_origin(origin, names)}; not added "
                                   "again")
            if (second := kind.second_text_column) and second in again.columns:
                # the value is a pair's first text: its second one, as the contract's rows show it (pair QA, D8)
                title = getattr(checked.data, f"{second}_column", second)
                details = [f"{detail}; {title}: {str(pair)[:300]}" for detail, pair in zip(details, again[second])]
            if conflicts := rules.count(CONFLICTS_WITH_EARLIER):
                log.warning("batch %s: %d row(s) repeat an earlier example with another label (rule %s in the "
                            "quarantine): the earlier labels are kept", batch.name, conflicts, CONFLICTS_WITH_EARLIER)
            quarantine = with_source_lines(pd.concat([quarantine, pd.DataFrame({
                "split": again["split"], "source_file": again["source_file"], "source_row": again["source_row"],
                "rule": rules, "column": kind.key_column,
                "value": [str(v)[:QUARANTINE_VALUE_CHARS] for v in again[kind.value_column]],
                "detail": details})], ignore_index=True), loaded.source_lines)
            frame = frame[~repeated].reset_index(drop=True)
        quarantine_path = write_quarantine(quarantine, folder, None)
        if contradicted := _too_many_conflicts(quarantine, loaded.total_records, config, quarantine_path, batch.name):
            ledger.mark_rejected(run.run_id, batch.content_hash, [contradicted], quarantine_path,
                                 rows_read=loaded.total_records)
            intake.rejected.append((batch, [contradicted]))
            intake.quarantines[batch.name] = str(quarantine_path)
            log.warning("batch %s rejected: %s", batch.name, contradicted, extra=SAID_IN_SUMMARY)
            continue
        seen.update(keys[~repeated])
        rejected_rows = int(quarantine[["source_file", "source_row"]].drop_duplicates().shape[0])
        if frame.empty:
            reason = f"no new rows: all {loaded.total_records} records were rejected or already in the data"
            ledger.mark_rejected(run.run_id, batch.content_hash, [reason], quarantine_path,
                                 rows_read=loaded.total_records)
            intake.rejected.append((batch, [reason]))
            intake.quarantines[batch.name] = str(quarantine_path)
            log.warning("batch %s rejected: %s", batch.name, reason, extra=SAID_IN_SUMMARY)
            continue
        part = store.write_part(frame.assign(batch=batch.content_hash), batch.content_hash)
        ledger.mark_validated(run.run_id, batch.content_hash, len(frame), rejected_rows, quarantine_path)
        log.info("batch %s: %d rows accepted, %d rejected (%s)", batch.name, len(frame), rejected_rows,
                 quarantine_path)
        intake.accepted.append(AcceptedBatch(batch, part, store.read_part(part), quarantine_path, rejected_rows))
    return intake


def _too_many_conflicts(quarantine: pd.DataFrame, total: int, config: TunelineConfig, path: Path,
                        name: str) -> str | None:
    """Why the batch is rejected when its broken records and its rows that contradict an earlier label
    (``conflicts_with_earlier_label``) are together over ``data.max_bad_fraction``; None when they are not.

    A contradiction is not a copy: the batch says another label for an example the data already holds. A few are
    corrections or slips; many mean a labelling job gone wrong (a label map swapped, the wrong column exported), and
    the batch's *new* rows were labelled the same way. They were set aside one by one and the rest trained on: a
    batch with 16% of its rows contradicting the data was used. Plain copies (``duplicate_of_earlier_data``) are not
    counted: a producer resending rows is harmless."""
    counted = quarantine[quarantine["rule"] != DUPLICATE_OF_EARLIER]
    conflicting = counted[counted["rule"] == CONFLICTS_WITH_EARLIER]
    if conflicting.empty or not total:
        return None  # the contract's own count already passed
    bad, _copies = split_duplicates(counted)  # a contradiction counts as a broken record, a copy does not
    if bad <= 1 or bad / total <= config.data.max_bad_fraction:  # one record alone never stops a batch
        return None
    others = bad - len(conflicting)
    first = conflicting.iloc[0]
    return (f"{len(conflicting)} of {total} records give another label to an example the data already holds "
            f"({CONFLICTS_WITH_EARLIER})" + (f" and {others} more broke the data contract" if others else "")
            + f": {bad / total:.1%} of the batch, more than data.max_bad_fraction="
            f"{config.data.max_bad_fraction:.1%}, so its new rows are not trusted either; e.g. "
            f"{where_in_file(first)}: {str(first['detail'])[:160].split(': it came')[0]}. If the batch's labels "
            "are right, correct the earlier ones (tuneline data relabel FILE -c CONFIG --reason ..., FILE holding "
            f"those rows), then tuneline data requeue -c CONFIG {name} --reason ...; if they are wrong, fix the "
            f"labelling and land the batch again. Every row, with its line and both labels, is in {path}")


def _earlier_labels(wanted: set[str], frames: list[pd.DataFrame], kind: Any) -> dict[str, tuple[Any, str | None]]:
    """The label each of the ``wanted`` example keys has in the data before this batch (the first one seen), with
    the content hash of the batch that brought it (None: the base data): only asked for when a batch repeats
    examples, so the whole table is not held as a dictionary every run."""
    found: dict[str, tuple[Any, str | None]] = {}
    for frame in frames:
        if not len(frame) or kind.target_column not in frame.columns:
            continue
        keys = frame[kind.key_column].map(example_key)
        mask = keys.isin(wanted).to_numpy()
        batches = frame["batch"].to_numpy()[mask] if "batch" in frame.columns else [None] * int(mask.sum())
        for key, label, batch in zip(keys[mask], frame[kind.target_column].to_numpy()[mask], batches):
            found.setdefault(key, (label, batch if isinstance(batch, str) and batch else None))
    return found


def _origin(batch_hash: str | None, names: dict[str, str]) -> str:
    """Where a stored example came from, in words: ``batch good.csv``, or the base data."""
    return (f"batch {names.get(batch_hash, f'#{batch_hash[:12]}')}" if batch_hash is not None
            else "the base data (data version 1)")


def _how_to_correct(batch_hash: str | None, names: dict[str, str]) -> str:
    """What a person does to replace an earlier label: relabel the row (``tuneline data relabel``), wherever it came
    from (the base data could not be corrected before: the loop had to start over)."""
    if batch_hash is None:
        return ("it came with the base data (data version 1): the earlier label is kept (to correct it: tuneline "
                "data relabel FILE -c CONFIG --reason ..., FILE holding the rows with their right labels)")
    name = names.get(batch_hash, f"#{batch_hash[:12]}")
    return (f"it came with batch {name}: the earlier label is kept (to correct it: tuneline data relabel FILE -c "
            "CONFIG --reason ..., FILE holding the rows with their right labels)")


def _validate_batch(loaded: LoadedData, labels: list[str], config: TunelineConfig, folder: Path,
                    name: str) -> ValidatedData:
    """The training flow's contract on one batch, against the model's label set as it is (a batch may hold only
    some of the labels: it is not a training set on its own, so the every-label-present rule does not apply)."""
    frames = kind_of(config).prepare(loaded.frames, config.data, source=f" in batch {name}")
    clean, quarantine = apply_contract(frames, labels, loaded.malformed, config, loaded.source_lines)
    quarantine = with_source_lines(quarantine, loaded.source_lines)
    path = write_quarantine(quarantine, folder, None)
    enforce_bad_fraction(quarantine, loaded.total_records, config.data.max_bad_fraction, path, None,
                         config.data.max_duplicate_fraction)
    return ValidatedData(frames=clean, labels=labels, quarantine=quarantine, quarantine_path=path,
                         total_records=loaded.total_records)


#: the rule of a row whose label the model has never seen, in the quarantine of a batch refused for it
UNSEEN_LABEL = "unseen_label"


def quarantine_unseen_labels(loaded: LoadedData, known: list[str], config: TunelineConfig, folder: Path,
                             name: str) -> Path | None:
    """Add to ``folder/quarantine.csv`` (a refused batch's other problems, as its validation with the unseen labels
    taken as known wrote it) the rows that carry an unseen label, each with rule ``unseen_label`` and the label in
    its detail; returns the file, or None when the batch has no quarantined row at all.

    Why: a batch rejected only for an unseen label had no quarantine file (operator QA: 8 ``nonsense`` rows of 48),
    so the person fixing it searched the batch by hand for the rows ``data batches`` did not list. The rows are
    found by the kind's own contract run against the known labels only: what it quarantines besides the other
    problems is what the unseen labels broke, for every kind (a class, a label of a set, an entity type)."""
    path = folder / "quarantine.csv"
    others = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    checked = config.model_copy(deep=True)
    checked.data.labels = list(known)
    kind = kind_of(checked)
    frames = kind.prepare({k: f.copy() for k, f in loaded.frames.items()}, checked.data, quiet=True)
    _clean, strict = apply_contract(frames, list(known), loaded.malformed, checked, loaded.source_lines)
    strict = with_source_lines(strict, loaded.source_lines)
    seen = set(zip(others["source_file"].astype(str), others["source_row"].astype(str), others["rule"].astype(str)))
    fresh = [(f, r, rule) not in seen for f, r, rule in zip(strict["source_file"].astype(str),
                                                            strict["source_row"].astype(str),
                                                            strict["rule"].astype(str))]
    second = getattr(checked.data, f"{kind.second_text_column}_column", None) if kind.second_text_column else None
    unseen = strict[fresh].assign(rule=UNSEEN_LABEL, detail=lambda rows: rows["detail"].map(
        lambda detail: _unseen_detail(detail, second)))
    if unseen.empty and others.empty:
        return None
    return write_quarantine(pd.concat([q for q in (others.reindex(columns=QUARANTINE_COLUMNS), unseen) if len(q)],
                                      ignore_index=True), folder, None)


def _unseen_detail(contract: object, second: str | None = None) -> str:
    """The contract's detail of an unseen-label row (it names the label), with the loop's remedy instead of the
    contract's (``add the label to data.labels``, which the loop does not read after its first data version)."""
    said = contract.split(": fix")[0] if isinstance(contract, str) and contract else "its label is not in the label set"
    # a pair's second text, which the contract's detail ends with (``; #2 String: ...``), is kept (pair QA, D8)
    at = contract.rfind(f"; {second}: ") if second and isinstance(contract, str) else -1
    return (f"{said}: new to the model, and drift.allow_label_growth is off; fix the row and land the batch again, "
            f"or set drift.allow_label_growth: true and requeue the batch{contract[at:] if at >= 0 else ''}")


def parent_batches_held_elsewhere(parent: DataVersion, ledger: Ledger, store: DatasetStore, run_id: str
                                  ) -> list[Batch]:
    """Batches whose rows are already in ``parent`` but which another run holds under a live lease: that run
    committed the version and then died (its lease not run out yet) or is still training on it. Training on
    ``parent`` now would train on those rows without them being this run's batches: the model version's tags would
    name the wrong batches (found by killing a worker mid-training). The batch goes free when the lease runs out."""
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    parts = set(parent.parts)
    return [b for b in ledger.batches(VALIDATED)
            if b.claimed_by not in (None, run_id) and b.lease_expires_at is not None and b.lease_expires_at > now
            and store.part_of_batch(b.content_hash) in parts]


@pipeline_task(name="commit-data-version")
def commit_version(parent: DataVersion, intake: Intake, labels: list[str], store: DatasetStore,
                   run: RunContext) -> DataVersion:
    """The next data version: the parent's parts plus the accepted batches' (the parent itself when none).

    A part already in the parent is not added again: a run that died after committing its version gave its batches
    back as ``validated``, and the run that takes them over finds their rows already in the data."""
    fresh = [a for a in intake.accepted if a.part not in parent.parts]
    if not fresh:
        return parent
    version = store.commit(parent, [a.part for a in fresh], list(labels), run.run_id,
                           ", ".join(f"{a.batch.name} (+{len(a.frame)} rows)" for a in fresh))
    task_logger().info("data version %d (#%s): %d rows", version.number, version.short_hash, version.rows)
    return version


def version_sources(store: DatasetStore, version: DataVersion, frame: pd.DataFrame) -> list[SourceFile]:
    """A data version's parts as lineage sources (the part file, its hash, its rows)."""
    return [SourceFile(role="all", path=store.part_path(p), sha256=p, records=int((frame["part"] == p).sum()))
            for p in version.parts]


def retrain_tags(version: DataVersion, intake: Intake, continual: bool, trigger: str, run: RunContext
                 ) -> dict[str, str]:
    """The data version and the batches on the run and on the model version: what it was trained and tested on."""
    tags = {"data.version": str(version.number), "data.version_hash": version.content_hash,
            "retrain.strategy": "continual" if continual else "full", "retrain.trigger": trigger,
            "retrain.batches": ", ".join(a.batch.name for a in intake.accepted) or "-"}
    set_tags(run, tags)
    return tags


def splits_of(frame: pd.DataFrame, labels: list[str]) -> DataSplits:
    """A data version's rows as the training flow's splits (by their stored ``split``)."""
    parts = {name: frame[frame["split"] == name].reset_index(drop=True) for name in ("train", "validation", "test")}
    return DataSplits(train=parts["train"], validation=parts["validation"], test=parts["test"], labels=list(labels))
