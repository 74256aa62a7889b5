"""The versioned dataset of the retraining loop: accepted rows, appended batch by batch, every version kept.

A *part* is one set of accepted rows (the base data of the config, or one landed batch after validation), stored
once as ``<data_dir>/parts/<sha256>.parquet`` where the hash is taken over the rows themselves, so a part is
immutable and can be shared by every version that contains it. A *version* is an ordered list of parts; its content
hash is the SHA-256 over its parts' hashes, so two versions with the same rows have the same hash. Versions are rows
of the table ``tuneline_data_versions`` in the ledger database (SQLite by default, PostgreSQL when scaled), numbered
1, 2, ... per registered model; a new version is committed with compare-and-set on its parent (the unique
``(model, number)`` index refuses a second version 5 from a concurrent run), so two runs can never both extend the
same version and silently drop each other's rows. Nothing is ever deleted: every model version records the data
version it was trained and tested on, and that version can be read back.

Every row carries the ``split`` it was assigned when its part was made, by the same salted hash of its key as the
training flow uses (:mod:`tuneline.tasks.split`), so a row never moves between train and test across versions; and
``part``, the hash of the part it came from (which batch it landed in).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError

from tuneline.errors import UserError
from tuneline.ledger import LedgerDatabase, _UTCDateTime
from tuneline.runtime import redact

PARTS_FOLDER = "parts"

_metadata = MetaData()
VERSIONS = Table(
    "tuneline_data_versions", _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(255), nullable=False),
    Column("number", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("parent", Integer),                     # the number of the version this one extends (None: the first)
    Column("parts", Text, nullable=False),         # JSON list of part hashes, in order
    Column("labels", Text, nullable=False),        # JSON list: the label set in the model's order
    Column("rows", Integer, nullable=False),
    Column("split_rows", Text, nullable=False),    # JSON {"train": n, "validation": n, "test": n}
    Column("created_at", _UTCDateTime, nullable=False),
    Column("created_by", Text),                    # the MLflow run that made it
    Column("note", Text),                          # what was added: "base data x.csv", "batch b-07.csv (+120 rows)"
)
Index("ux_tuneline_data_versions_number", VERSIONS.c.model, VERSIONS.c.number, unique=True)

PARTS = Table(
    "tuneline_data_parts", _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(255), nullable=False),
    Column("part", String(64), nullable=False),
    Column("batch_hash", String(64), nullable=False),   # the ledger's content hash of the batch it came from
    Column("rows", Integer, nullable=False),
    Column("created_at", _UTCDateTime, nullable=False),
)
Index("ux_tuneline_data_parts_batch", PARTS.c.model, PARTS.c.batch_hash, unique=True)


class DataVersionConflict(UserError):
    """Another run committed a data version on the same parent first; nothing was written."""


@dataclass(frozen=True)
class DataVersion:
    model: str
    number: int
    content_hash: str
    parent: int | None
    parts: tuple[str, ...]
    labels: tuple[str, ...]
    rows: int
    split_rows: dict[str, int]
    created_at: datetime
    created_by: str | None
    note: str | None

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]


def part_hash(frame: pd.DataFrame) -> str:
    """SHA-256 over the rows (columns in sorted order, values as JSON): equal rows, equal hash, however the parquet
    file encodes them. The rows include their provenance (``source_file``, ``source_row``), so the same data read
    from another path is another part: a version's hash names where its rows came from, not only their content."""
    from tuneline.common import sha256_text

    columns = sorted(frame.columns)
    records = frame[columns].to_dict(orient="records")
    return sha256_text("tuneline-part", json.dumps(columns), *(json.dumps(r, sort_keys=True, default=_plain)
                                                               for r in records))


def _plain(value: object) -> object:
    return value.tolist() if hasattr(value, "tolist") else str(value)


def version_hash(parts: list[str]) -> str:
    from tuneline.common import sha256_text

    return sha256_text("tuneline-data-version", *parts)


class DatasetStore(LedgerDatabase):
    """The versions of one registered model's dataset: part files under ``folder``, versions in the database."""

    WHAT = "dataset store"
    METADATA = _metadata

    def __init__(self, url: str, model: str, folder: Path | str) -> None:
        self.folder = Path(folder)
        super().__init__(url, model)

    # -- parts ----------------------------------------------------------------------------------------------------
    def part_path(self, digest: str) -> Path:
        return self.folder / PARTS_FOLDER / f"{digest}.parquet"

    def write_part(self, frame: pd.DataFrame, batch_hash: str | None = None) -> str:
        """Store accepted rows (with their ``split``) once; return the part's hash. Written to a temporary name and
        renamed, so a killed run never leaves a half part under a real hash. With ``batch_hash``, the part is
        indexed as that batch's accepted rows (see :meth:`part_of_batch`)."""
        if "split" not in frame.columns:
            raise ValueError("a dataset part needs the split column (assigned by hash when the part is made)")
        frame = frame.drop(columns=["part"], errors="ignore").reset_index(drop=True)
        digest = part_hash(frame)
        path = self.part_path(digest)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        if batch_hash is not None and self.part_of_batch(batch_hash) is None:
            try:
                with self._engine.begin() as conn:
                    conn.execute(insert(PARTS).values(model=self.model, part=digest, batch_hash=batch_hash,
                                                      rows=len(frame), created_at=datetime.now(timezone.utc)))
            except IntegrityError:  # recorded meanwhile by a run that validated the same batch: same rows
                pass
        return digest

    def part_in_version(self, batch_hash: str, version: DataVersion) -> str | None:
        """The part of ``version`` that holds a batch's rows: the part its validation stored, or, after a
        relabelling wrote that part anew, the part whose rows name the batch (``batch`` column)."""
        part = self.part_of_batch(batch_hash)
        if part is None or part in version.parts:
            return part
        import pyarrow.parquet as pq

        for candidate in version.parts:
            path = self.part_path(candidate)
            if "batch" in pq.read_schema(path).names and \
                    (pd.read_parquet(path, columns=["batch"])["batch"] == batch_hash).any():
                return candidate
        return part

    def part_of_batch(self, batch_hash: str) -> str | None:
        """The part holding a validated batch's accepted rows: how a run that takes over a batch validated by a
        run that died finds its rows without validating it again."""
        with self._engine.connect() as conn:
            return conn.execute(select(PARTS.c.part).where(PARTS.c.model == self.model,
                                                           PARTS.c.batch_hash == batch_hash)).scalar()

    def read_part(self, digest: str) -> pd.DataFrame:
        path = self.part_path(digest)
        if not path.is_file():
            raise UserError(f"data part {digest[:12]} is missing from {path.parent}: the dataset folder "
                            f"(retrain.data_dir) was moved or pruned; restore it or start a new registered model")
        frame = pd.read_parquet(path)
        for column in frame.columns:  # parquet gives numpy arrays for list columns; the kinds expect lists
            if len(frame) and hasattr(frame[column].iloc[0], "tolist") and frame[column].dtype == object:
                frame[column] = [v.tolist() if hasattr(v, "tolist") else v for v in frame[column]]
        return frame.assign(part=digest)

    # -- versions -------------------------------------------------------------------------------------------------
    def versions(self) -> list[DataVersion]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(VERSIONS).where(VERSIONS.c.model == self.model)
                                .order_by(VERSIONS.c.number)).all()
        return [_version(r) for r in rows]

    def current(self) -> DataVersion | None:
        versions = self.versions()
        return versions[-1] if versions else None

    def get(self, number: int) -> DataVersion:
        for version in self.versions():
            if version.number == number:
                return version
        raise UserError(f"registered model {self.model!r} has no data version {number} in {redact(self.url)}")

    def frame(self, version: DataVersion) -> pd.DataFrame:
        """All rows of a version, in part order, with ``split`` and ``part``."""
        frames = [self.read_part(p) for p in version.parts]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def commit(self, parent: DataVersion | None, new_parts: list[str], labels: list[str], run_id: str | None,
               note: str, *, without: str | None = None, replacing: dict[str, str] | None = None) -> DataVersion:
        """Append ``new_parts`` to ``parent`` as the next version (compare-and-set: fails if another run committed
        on the same parent first). ``without``: a part of ``parent`` left out (a batch taken back, see
        :meth:`drop_part`); ``replacing``: parts of ``parent`` each replaced, in place, by another (the same rows
        relabelled, :mod:`tuneline.tasks.relabel`); versions are never rewritten, so the rows stay in the earlier
        versions that had them."""
        replacing = replacing or {}
        parts = [*(replacing.get(p, p) for p in (parent.parts if parent else ()) if p != without), *new_parts]
        rows = pd.concat([pd.read_parquet(self.part_path(p), columns=["split"]) for p in parts], ignore_index=True)
        counts = {s: int((rows["split"] == s).sum()) for s in ("train", "validation", "test")}
        number = (parent.number + 1) if parent else 1
        values = dict(model=self.model, number=number, content_hash=version_hash(parts),
                      parent=parent.number if parent else None, parts=json.dumps(parts), labels=json.dumps(labels),
                      rows=len(rows), split_rows=json.dumps(counts), created_at=datetime.now(timezone.utc),
                      created_by=run_id, note=note)
        try:
            with self._engine.begin() as conn:
                newest = conn.execute(select(VERSIONS.c.number).where(VERSIONS.c.model == self.model)
                                      .order_by(VERSIONS.c.number.desc()).limit(1)).scalar()
                if newest != (parent.number if parent else None):
                    raise DataVersionConflict(
                        f"data version {newest} of {self.model!r} was committed by another run while this one "
                        f"extended version {parent.number if parent else 'none'}; re-run to build on it")
                conn.execute(insert(VERSIONS).values(**values))
        except IntegrityError:
            raise DataVersionConflict(f"another run committed data version {number} of {self.model!r} first; "
                                      "re-run to build on it") from None
        return self.get(number)


    def drop_part(self, part: str, actor: str, note: str, labels: list[str] | None = None) -> DataVersion:
        """A new version: the current one without ``part`` (a batch whose rows turned out wrong). The next
        retraining trains, tests and drift-checks on data without them; earlier versions keep them, so the models
        trained on those stay reproducible. ``labels``: the new version's label set (default: the current one's)."""
        parent = self.current()
        if parent is None or part not in parent.parts:
            versions = self.versions()
            had = {v.number for v in versions if part in v.parts}
            dropped = next((v for v in reversed(versions) if v.parent in had and part not in v.parts), None)
            when = (f": version {dropped.number} already left it out ({dropped.note})" if dropped is not None else
                    ": no version ever held it" if not had else "")
            raise UserError(f"data part {part[:12]} is not in the current data version of {self.model!r}{when}; "
                            "nothing to drop")
        return self.commit(parent, [], list(parent.labels if labels is None else labels), actor, note, without=part)


def _version(row) -> DataVersion:  # noqa: ANN001 - a SQLAlchemy Row
    m = row._mapping
    return DataVersion(model=m["model"], number=m["number"], content_hash=m["content_hash"], parent=m["parent"],
                       parts=tuple(json.loads(m["parts"])), labels=tuple(json.loads(m["labels"])), rows=m["rows"],
                       split_rows=json.loads(m["split_rows"]), created_at=m["created_at"], created_by=m["created_by"],
                       note=m["note"])
