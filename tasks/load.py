"""Load: read every configured input file with the task kind's reader, hash it, and account for every record.

Each record keeps ``source_file`` and ``source_row`` (1-based record number, header excluded; the line number for
JSONL; the sentence number for CoNLL) so that any row rejected later can be traced back to its place in the user's
file. Records that cannot be parsed are not dropped: they come back as ``malformed`` rows for the quarantine, and
per file the records seen = loaded + malformed (the reader counts records independently of the parser, so a broken
quote that swallows lines cannot make rows vanish). Input files are only ever opened for reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tuneline.common import pipeline_task, sha256_file, task_logger
from tuneline.config import DataConfig, TunelineConfig
from tuneline.kinds import kind_of
from tuneline.readers import DataLoadError, check_file, detect_format

#: ``source_row``: the record's number in its file (a CoNLL file: its sentence's); ``source_line``: the physical line
#: where it starts, what an editor shows (empty where not known, as for rows of a Parquet file)
QUARANTINE_COLUMNS = ["split", "source_file", "source_row", "source_line", "rule", "column", "value", "detail"]

__all__ = ["QUARANTINE_COLUMNS", "DataLoadError", "LoadedData", "SourceFile", "detect_format", "input_roles",
           "load_data", "release_unused_memory"]


@dataclass(frozen=True)
class SourceFile:
    role: str  # "all" (one file to split), "train", "validation" or "test"
    path: Path
    sha256: str
    records: int  # records seen in the file (loaded + malformed)
    loaded: int = 0
    malformed: int = 0


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
    by_role = {source.role: source for source in sources}
    validation, test = by_role.get("validation"), by_role.get("test")
    if validation is None or test is None:
        return
    if validation.path.resolve() == test.path.resolve():
        what = f"are the same file ({test.path})"
    elif validation.sha256 == test.sha256:
        what = f"are copies of one file ({validation.path}, {test.path}: the same SHA-256)"
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
    for role, path in input_roles(config.data).items():
        path = Path(path)
        check_file(path)  # a missing file or a folder says so, not "cannot tell the format from its name"
        fmt = detect_format(path, config.data.format)
        read = kind.read_file(path, fmt, config.data)
        if len(read.frame) + len(read.malformed) != read.records_seen:  # a reader bug must not lose rows silently
            raise DataLoadError(f"{path}: {read.records_seen} records seen but {len(read.frame)} loaded and "
                                f"{len(read.malformed)} quarantined; please report this file's layout")
        for row in read.malformed:
            malformed.append({"split": role, "source_file": str(path), "column": None,
                              **{k: v for k, v in row.items() if k in QUARANTINE_COLUMNS}})
        frames[role] = read.frame
        if read.source_lines is not None:
            lines[str(path)] = read.source_lines
        sources.append(SourceFile(role=role, path=path, sha256=sha256_file(path), records=read.records_seen,
                                  loaded=len(read.frame), malformed=len(read.malformed)))
        log.info("loaded %s: %d of %d records (%d unusable) from %s [%s]", role, len(read.frame), read.records_seen,
                 len(read.malformed), path, fmt)
    warn_test_is_validation(sources)
    release_unused_memory()
    return LoadedData(frames=frames, sources=sources,
                      malformed=pd.DataFrame(malformed, columns=QUARANTINE_COLUMNS), source_lines=lines)
