"""Load: read every configured input file with the task kind's reader, hash it, and account for every record.

Each record keeps ``source_file`` and ``source_row`` (1-based record number, header excluded; the line number for
JSONL; the sentence number for CoNLL) so that any row rejected later can be traced back to its place in the user's
file. Records that cannot be parsed are not dropped: they come back as ``malformed`` rows for the quarantine, and
per file the records seen = loaded + malformed (the reader counts records independently of the parser, so a broken
quote that swallows lines cannot make rows vanish). Input files are only ever opened for reading.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tuneline.common import pipeline_task, sha256_file, task_logger
from tuneline.config import DataConfig, TunelineConfig
from tuneline.kinds import kind_of
from tuneline.readers import DataLoadError, EmptyInput, check_file, detect_format
from tuneline.shards import input_files, is_several

#: ``source_row``: the record's number in its file (a CoNLL file: its sentence's); ``source_line``: the physical line
#: where it starts, what an editor shows (empty where not known, as for rows of a Parquet file)
QUARANTINE_COLUMNS = ["split", "source_file", "source_row", "source_line", "rule", "column", "value", "detail"]

__all__ = ["QUARANTINE_COLUMNS", "DataLoadError", "LoadedData", "RoleSource", "SourceFile", "concat_shards",
           "detect_format", "input_roles", "load_data", "release_unused_memory", "role_sources"]


@dataclass(frozen=True)
class SourceFile:
    role: str  # "all" (one file to split), "train", "validation" or "test"
    path: Path
    sha256: str
    records: int  # records seen in the file (loaded + malformed)
    loaded: int = 0
    malformed: int = 0
    #: the configured folder or pattern this file is a shard of (:mod:`tuneline.shards`); None: the file itself
    given: Path | None = None


@dataclass(frozen=True)
class RoleSource:
    """What one configured input (``data.train``...) read, its shards taken together: a folder or pattern is named
    as configured, its SHA-256 is that of its shards' names and SHA-256 in order (any shard's change, addition or
    removal changes it), and its records are the shards' sum."""

    role: str
    path: Path
    sha256: str
    records: int
    malformed: int
    files: int


def role_sources(sources: list[SourceFile]) -> dict[str, RoleSource]:
    """The sources per role, each configured input's shards as one (:class:`RoleSource`)."""
    by_role: dict[str, list[SourceFile]] = {}
    for source in sources:
        by_role.setdefault(source.role, []).append(source)
    result = {}
    for role, parts in by_role.items():
        if len(parts) == 1 and parts[0].given is None:
            only = parts[0]
            result[role] = RoleSource(role, only.path, only.sha256, only.records, only.malformed, 1)
            continue
        digest = hashlib.sha256()
        for part in parts:
            digest.update(f"{part.path.name}\t{part.sha256}\n".encode())
        result[role] = RoleSource(role, parts[0].given or parts[0].path, digest.hexdigest(),
                                  sum(p.records for p in parts), sum(p.malformed for p in parts), len(parts))
    return result


@dataclass
class LoadedData:
    """Raw records per role, the input files' hashes and counts, and records that could not be parsed."""

    frames: dict[str, pd.DataFrame]
    sources: list[SourceFile]
    malformed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=QUARANTINE_COLUMNS))
    #: each record's physical line by record number, per ``source_file`` (``ReadRecords.source_lines``)
    source_lines: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def total_records(self) -> int:
        return sum(len(f) for f in self.frames.values()) + len(self.malformed)


def release_unused_memory() -> None:
    """Hand freed memory back to the system between stages of a large table: Arrow's pool and glibc's heap keep
    it for reuse otherwise, and the next stage's Arrow columns cannot reuse numpy's freed blocks (or the reverse)."""
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except Exception:  # noqa: BLE001 - only an optimisation
        pass
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if hasattr(libc, "malloc_trim"):  # glibc only
            libc.malloc_trim(0)
    except Exception:  # noqa: BLE001 - only an optimisation
        pass


def concat_shards(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One role's frames, shard after shard. A categorical column (a compact frame's ``source_file``) stays
    categorical over the union of the shards' categories, where ``pd.concat`` would turn it into objects."""
    if len(frames) == 1:
        return frames[0]
    from pandas.api.types import union_categoricals

    joined = pd.concat(frames, ignore_index=True)
    for column in frames[0].columns:
        if all(column in f.columns and isinstance(f[column].dtype, pd.CategoricalDtype) for f in frames):
            joined[column] = union_categoricals([f[column] for f in frames])
    return joined


def input_roles(config: DataConfig) -> dict[str, Path]:
    if config.path is not None:
        return {"all": config.path}
    return {role: path for role in ("train", "validation", "test") if (path := getattr(config, role)) is not None}


def warn_test_is_validation(sources: list[SourceFile]) -> None:
    """Warn (once, into the run's warnings) when data.validation and data.test are one file, or two copies of it.

    The run chooses its model on validation (early stopping, the best checkpoint, multi-label thresholds), so a test
    score on the same rows is optimistic, and nothing said so. A warning, not an error: a corpus with only a dev set
    is commonly scored so, and the leakage rule, which sets aside validation and test records that are also in train,
    is about what the model was trained on, not chosen by."""
    by_role = role_sources(sources)
    validation, test = by_role.get("validation"), by_role.get("test")
    if validation is None or test is None:
        return
    if validation.path.resolve() == test.path.resolve():
        what = f"are the same file ({test.path})"
    elif validation.sha256 == test.sha256:
        what = f"are copies of one file ({validation.path}, {test.path}: the same SHA-256)" if validation.files == 1 \
            else f"are copies of the same files ({validation.path}, {test.path}: the same SHA-256)"
    else:
        return
    task_logger().warning(
        "data.validation and data.test %s: the model is chosen on validation (early stopping, the best checkpoint, "
        "multi-label thresholds), so its test score on the same rows is optimistic; give a test file of its own, or "
        "leave data.test out to carve a test split from train (data.split.test_fraction)", what)


@pipeline_task(name="load-data")
def load_data(config: TunelineConfig) -> LoadedData:
    """Read every configured input file with the kind's reader; record its SHA-256 and its unparseable records."""
    log = task_logger()
    kind = kind_of(config)
    frames: dict[str, pd.DataFrame] = {}
    sources: list[SourceFile] = []
    malformed: list[dict] = []
    lines: dict[str, np.ndarray] = {}
    for role, given in input_roles(config.data).items():
        key = f"data.{'path' if role == 'all' else role}"
        shards = input_files(Path(given), config.data.format, kind.formats, key)
        parts = []
        empty: list[str] = []
        for path in shards:
            try:
                check_file(path)  # a missing file or a folder says so, not "cannot tell the format from its name"
                fmt = detect_format(path, config.data.format)
                read = kind.read_file(path, fmt, config.data)
            except EmptyInput as error:
                if len(shards) == 1:
                    raise
                # a shard of a folder or pattern may hold nothing (a Spark task that got no rows): no records, said
                log.info("loaded %s: no records in %s (%s)", role, path.name, str(error).split("; ")[0])
                empty.append(str(error))
                sources.append(SourceFile(role=role, path=path, sha256=sha256_file(path), records=0, loaded=0,
                                          malformed=0, given=Path(given)))
                continue
            if len(read.frame) + len(read.malformed) != read.records_seen:  # a reader bug must not lose rows
                raise DataLoadError(f"{path}: {read.records_seen} records seen but {len(read.frame)} loaded and "
                                    f"{len(read.malformed)} quarantined; please report this file's layout")
            known = read.source_lines
            for row in read.malformed:
                record = {"split": role, "source_file": str(path), "column": None,
                          **{k: v for k, v in row.items() if k in QUARANTINE_COLUMNS}}
                number = record.get("source_row")
                if record.get("source_line") is None and known is not None and number is not None \
                        and 1 <= int(number) <= len(known) and known[int(number) - 1] > 0:
                    # a kind's own rule on a read record (a label that is Infinity) names its line like the reader's
                    record["source_line"] = int(known[int(number) - 1])
                malformed.append(record)
            parts.append(read.frame)
            if read.source_lines is not None:
                lines[str(path)] = read.source_lines
            sources.append(SourceFile(role=role, path=path, sha256=sha256_file(path), records=read.records_seen,
                                      loaded=len(read.frame), malformed=len(read.malformed),
                                      given=Path(given) if is_several(given) else None))
            log.info("loaded %s: %d of %d records (%d unusable) from %s [%s]", role, len(read.frame),
                     read.records_seen, len(read.malformed), path, fmt)
        if not parts:
            raise EmptyInput(f"{key} ({given}) holds no records: all {len(shards)} of its files are empty; "
                             f"e.g. {empty[0]}")
        frames[role] = concat_shards(parts)
        if len(shards) > 1:
            log.info("loaded %s: %d records from %d files (%s)", role, len(frames[role]), len(shards), given)
    warn_test_is_validation(sources)
    release_unused_memory()
    return LoadedData(frames=frames, sources=sources,
                      malformed=pd.DataFrame(malformed, columns=QUARANTINE_COLUMNS), source_lines=lines)
