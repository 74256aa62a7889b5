"""Load: read the labeled input files into frames with provenance, and hash every input.

Each record keeps ``source_file`` and ``source_row`` (1-based record number, header excluded; the line number for
JSONL) so that any row rejected later can be traced back to its place in the user's file. Records that cannot even be
parsed (a TSV line with a stray tab, say) are not dropped: they come back as ``malformed`` rows for the quarantine.
Input files are only ever opened for reading.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tuneline.config import DataConfig, TaskType
from tuneline.tasks.common import pipeline_task, sha256_file, task_logger

QUARANTINE_COLUMNS = ["split", "source_file", "source_row", "rule", "column", "value", "detail"]


class DataLoadError(ValueError):
    """An input file cannot be used as configured; the message says which file and what to change."""


@dataclass(frozen=True)
class SourceFile:
    role: str  # "all" (one file to split), "train", "validation" or "test"
    path: Path
    sha256: str
    records: int


@dataclass
class LoadedData:
    """Raw records per role, the input files' hashes, and records that could not be parsed."""

    frames: dict[str, pd.DataFrame]
    sources: list[SourceFile]
    malformed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=QUARANTINE_COLUMNS))

    @property
    def total_records(self) -> int:
        return sum(len(f) for f in self.frames.values()) + len(self.malformed)


def detect_format(path: Path, configured: str) -> str:
    if configured != "auto":
        return configured
    suffixes = [s.lower() for s in path.suffixes]
    for suffix, fmt in ((".tsv", "tsv"), (".csv", "csv"), (".jsonl", "jsonl"), (".json", "jsonl"),
                        (".parquet", "parquet"), (".pq", "parquet"), (".conll", "conll"), (".txt", "conll")):
        if suffix in suffixes:
            return fmt
    raise DataLoadError(f"cannot tell the format of {path} from its name; set data.format "
                        "(csv, tsv, jsonl, parquet or conll)")


def _read_delimited(path: Path, fmt: str) -> tuple[pd.DataFrame, list[dict]]:
    """CSV (RFC 4180 quoting) or GLUE-style TSV (no quote processing: quotes are part of the text)."""
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {"delimiter": ","}
    records: list[dict] = []
    malformed: list[dict] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, **dialect)
        header = next(reader, None)
        if header is None:
            raise DataLoadError(f"{path} is empty")
        header = [h.strip() for h in header]
        for number, fields in enumerate(reader, start=1):
            if not fields:
                continue  # a blank line is no record
            if len(fields) != len(header):
                malformed.append({"source_row": number, "rule": "record_has_wrong_field_count",
                                  "value": "\t".join(fields)[:500],
                                  "detail": f"{len(fields)} fields, header has {len(header)}"})
                continue
            records.append({**{h: (v if v != "" else None) for h, v in zip(header, fields)}, "source_row": number})
    frame = pd.DataFrame.from_records(records, columns=[*header, "source_row"])
    return frame, malformed


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, list[dict]]:
    records: list[dict] = []
    malformed: list[dict] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as error:
                malformed.append({"source_row": number, "rule": "record_is_not_json", "value": line[:500],
                                  "detail": str(error)})
                continue
            if not isinstance(obj, dict):
                malformed.append({"source_row": number, "rule": "record_is_not_an_object", "value": line[:500],
                                  "detail": "each JSONL line must be an object"})
                continue
            records.append({**obj, "source_row": number})
    return pd.DataFrame.from_records(records), malformed


def read_records(path: Path, fmt: str) -> tuple[pd.DataFrame, list[dict]]:
    """Read one file into a frame with a ``source_row`` column, plus the records it could not parse."""
    if not path.is_file():
        raise DataLoadError(f"input file {path} does not exist")
    if fmt in ("csv", "tsv"):
        return _read_delimited(path, fmt)
    if fmt == "jsonl":
        return _read_jsonl(path)
    if fmt == "parquet":
        frame = pd.read_parquet(path)
        frame["source_row"] = range(1, len(frame) + 1)
        return frame, []
    raise DataLoadError(f"format {fmt!r} is not a classification format; use csv, tsv, jsonl or parquet")


def _as_object(series: pd.Series) -> pd.Series:
    """Missing values become None; everything else keeps its Python type (the schema judges it)."""
    return series.astype(object).where(series.notna(), None)


def canonical_classification_frame(frame: pd.DataFrame, path: Path, config: DataConfig) -> pd.DataFrame:
    """Rename the configured text/label columns to ``text``/``label`` and attach provenance."""
    missing = [c for c in (config.text_column, config.label_column) if c not in frame.columns]
    if missing:
        found = [c for c in frame.columns if c != "source_row"]
        raise DataLoadError(f"{path} has no column {missing[0]!r} (its columns: {found}); "
                            "set data.text_column / data.label_column to the right names")
    labels = _as_object(frame[config.label_column])
    # Labels are names: 1 and "1" are the same class whichever format the file came in.
    labels = labels.map(lambda v: None if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer()
                                                         else str(v)))
    return pd.DataFrame({
        "text": _as_object(frame[config.text_column]),
        "label": labels,
        "source_file": str(path),
        "source_row": frame["source_row"].astype("int64"),
    })


def input_roles(config: DataConfig) -> dict[str, Path]:
    if config.path is not None:
        return {"all": config.path}
    return {role: path for role in ("train", "validation", "test") if (path := getattr(config, role)) is not None}


@pipeline_task(name="load-data")
def load_data(config: DataConfig, task: TaskType = "classification") -> LoadedData:
    """Read every configured input file; record its SHA-256 and its unparseable records."""
    log = task_logger()
    frames: dict[str, pd.DataFrame] = {}
    sources: list[SourceFile] = []
    malformed: list[dict] = []
    for role, path in input_roles(config).items():
        path = Path(path)
        fmt = detect_format(path, config.format)
        if task == "token_classification":
            from tuneline.tasks.load_tokens import read_token_file  # NER readers live beside this module

            frame, bad = read_token_file(path, fmt, config)
        else:
            raw, bad = read_records(path, fmt)
            frame = canonical_classification_frame(raw, path, config)
        for row in bad:
            malformed.append({"split": role, "source_file": str(path), "column": None, **row})
        frames[role] = frame
        sources.append(SourceFile(role=role, path=path, sha256=sha256_file(path), records=len(frame) + len(bad)))
        log.info("loaded %s: %d records (%d unparseable) from %s [%s]", role, len(frame), len(bad), path, fmt)
    malformed_frame = pd.DataFrame(malformed, columns=QUARANTINE_COLUMNS)
    return LoadedData(frames=frames, sources=sources, malformed=malformed_frame)
