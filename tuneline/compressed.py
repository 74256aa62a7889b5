"""Compressed input files (``train.csv.gz``, ``dev.tsv.bz2``, ``batch.jsonl.xz``) read as the file inside them.

Datasets are shipped compressed (Kaggle, dataset hubs, ``df.to_csv("x.csv.gz")``), and pandas reads them as they
are, so a user expects tuneline to. The readers (:mod:`tuneline.readers`) seek, sniff and scan files in blocks by
byte offset, which a compressed stream cannot do; so :func:`readable` writes the uncompressed bytes once to a
temporary file next to nothing of the user's (``TMPDIR``), hands that to the readers, and deletes it afterwards.
Every message and every record still names the file the user gave: an error raised while the copy is read has the
copy's path replaced by the original's. The file's SHA-256 (lineage, the landing ledger) stays that of the file as
given, since that is the file that landed.

gzip, bzip2 and xz are read with the standard library; zstd only where the ``zstandard`` package is installed
(otherwise the reader's one-line refusal says how to decompress it).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator

from tuneline.errors import UserError
from tuneline.readers import COMPRESSED_MAGIC, DataLoadError

#: how each compression of :data:`tuneline.readers.COMPRESSED_MAGIC` (the one table of their first bytes, which the
#: readers' refusal of a compressed file also uses) is opened; zstd only with the optional ``zstandard`` package
_OPENERS: dict[str, Callable[[Path], IO[bytes]]] = {"gzip": lambda path: gzip.open(path, "rb"),
                                                    "bzip2": lambda path: bz2.open(path, "rb"),
                                                    "xz": lambda path: lzma.open(path, "rb")}
#: suffixes that name a compression, dropped from the copy's name so the format is read from the rest
_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".zst", ".zstd")
#: bytes copied at a time
_CHUNK = 1 << 20


def _zstd_opener() -> Callable[[Path], IO[bytes]] | None:
    try:
        import zstandard
    except ImportError:
        return None
    return lambda path: zstandard.open(path, "rb")


def compression_of(path: Path) -> tuple[str, Callable[[Path], IO[bytes]]] | None:
    """(name, opener) of the compression ``path`` is written with, judged by its first bytes (a ``.csv`` that is
    really gzip is one too); None for an uncompressed file, an unreadable one (the readers say why) or zstd without
    the ``zstandard`` package."""
    try:
        with Path(path).open("rb") as handle:
            magic = handle.read(16)
    except OSError:
        return None
    for start, name, *_ in COMPRESSED_MAGIC:
        if magic.startswith(start):
            opener = _OPENERS.get(name) or (_zstd_opener() if name == "zstd" else None)
            return (name, opener) if opener is not None else None
    return None


def inner_name(path: Path) -> str:
    """The name of the file inside: ``train.csv.gz`` → ``train.csv``; a ``.csv`` that is really gzip keeps its
    name."""
    name = Path(path).name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)]
    return name


def _renamed(error: UserError, copy: Path, original: Path) -> UserError:
    """``error`` with every mention of the temporary copy (and its folder) replaced by the file the user gave."""
    error.args = tuple(arg.replace(str(copy), str(original)).replace(str(copy.parent), str(original.parent))
                       if isinstance(arg, str) else arg for arg in error.args)
    return error


@contextmanager
def readable(path: Path) -> Iterator[Path]:
    """``path`` itself for an uncompressed file; for a gzip, bzip2 or xz file (zstd with ``zstandard``), the path of
    an uncompressed copy that lives as long as the ``with`` block. A :class:`~tuneline.errors.UserError` raised in
    the block names ``path``, not the copy; a damaged or truncated archive is one, naming the file."""
    path = Path(path)
    found = compression_of(path)
    if found is None:
        yield path
        return
    name, opener = found
    with tempfile.TemporaryDirectory(prefix="tuneline-unpacked-") as folder:
        copy = Path(folder) / inner_name(path)
        try:
            with opener(path) as source, copy.open("wb") as target:
                shutil.copyfileobj(source, target, _CHUNK)
        except (EOFError, OSError, lzma.LZMAError, zlib.error, ValueError) as error:
            if isinstance(error, OSError) and error.errno is not None:  # disk full, permissions: not the file's fault
                raise DataLoadError(f"could not decompress {path} into {folder} ({error.strerror}); free space "
                                    "there or point TMPDIR at a folder with room for the uncompressed file") from None
            raise DataLoadError(f"{path} is {name}-compressed but is damaged or cut short ({error}); copy or "
                                "download it again") from None
        if copy.stat().st_size == 0:
            raise DataLoadError(f"input file {path} is {name}-compressed and holds nothing (0 bytes inside); give a "
                                "file with records")
        try:
            yield copy
        except UserError as error:
            raise _renamed(error, copy, path)
