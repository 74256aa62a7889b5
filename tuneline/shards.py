"""A dataset written as several files: a folder or a glob pattern where a config names a data file.

Hugging Face datasets come as shards (``data/train-00000-of-00004.parquet``), Spark and Hive jobs write a folder of
``part-*`` files beside a ``_SUCCESS`` marker, and exports are often split by day. ``data.train: data/train-*.parquet``
or ``data.train: exports/`` reads every shard, in name order (the shard numbers' order), as one table: each record
keeps its own file and row for the quarantine, and the lineage hashes every shard.

A folder is read without descending into subfolders; a pattern may use ``**`` for that. Only data files are taken
from a folder: files starting with ``.`` or ``_`` (``_SUCCESS``, ``.part-0.crc``), Hadoop's ``.crc`` checksums and
the notes datasets ship (README, LICENSE, Hugging Face's ``dataset_info.json``, ``state.json``) are skipped, and
with ``data.format: auto`` so are files whose name says a format the task does not read.
"""

from __future__ import annotations

import glob
from pathlib import Path

from tuneline.readers import DataLoadError, detect_format

#: characters that make a configured path a glob pattern (``glob`` syntax: ``*``, ``?``, ``[abc]``, ``**``)
PATTERN_CHARS = frozenset("*?[")
#: files a dataset folder holds beside its data: markers, checksums, notes and metadata
_NOT_DATA_NAMES = ("readme", "license", "licence", "notice", "changelog", "citation")
_NOT_DATA_FILES = frozenset({"dataset_info.json", "state.json", "dataset_dict.json", "dataset_infos.json"})
_NOT_DATA_SUFFIXES = frozenset({".crc", ".md", ".yaml", ".yml", ".py", ".lock", ".sha256", ".md5", ".pdf", ".html"})

__all__ = ["PATTERN_CHARS", "input_files", "is_pattern", "is_several", "not_data_file"]


def is_pattern(path: Path | str) -> bool:
    """Whether a configured path is a glob pattern (and no file of that very name exists)."""
    return bool(PATTERN_CHARS & set(str(path))) and not Path(path).exists()


def is_several(path: Path | str) -> bool:
    """Whether a configured path stands for several files: a folder or a pattern."""
    return Path(path).is_dir() or is_pattern(path)


def not_data_file(name: str) -> bool:
    """Whether a file of a dataset folder, by its name, is no data: a marker or hidden file, a checksum, notes, or
    datasets' metadata."""
    name = name.lower()
    return (name.startswith((".", "_")) or name in _NOT_DATA_FILES or Path(name).suffix in _NOT_DATA_SUFFIXES
            or name.split(".", 1)[0] in _NOT_DATA_NAMES)


def _format_or_none(path: Path, configured: str) -> str | None:
    try:
        return detect_format(path, configured)
    except DataLoadError:
        return None


def input_files(path: Path, configured_format: str, formats: tuple[str, ...], key: str = "data.train") -> list[Path]:
    """The files ``path`` (the value of config key ``key``) stands for: itself; a folder's data files; a pattern's
    matches. Sorted by name, so ``-00002-of-`` follows ``-00001-of-``. A one-line :class:`DataLoadError` when a folder
    or pattern gives no data file, or files of several formats (which one table cannot be read from)."""
    path = Path(path)
    if not is_several(path):
        return [path]
    if path.is_dir():
        entries = sorted(p for p in path.iterdir())
        if (path / "dataset_dict.json").is_file():  # datasets' DatasetDict.save_to_disk: a folder for each split
            splits = [p.name for p in entries if p.is_dir()]
            keys = {"train": "train", "validation": "validation", "valid": "validation", "dev": "validation",
                    "test": "test"}
            advice = ", ".join(f"data.{keys[s]}: {path / s}" for s in splits if s in keys) or \
                f"data.train: {path / (splits[0] if splits else 'train')}"
            raise DataLoadError(f"{key} is the folder {path}, a Hugging Face DatasetDict with the splits "
                                f"{', '.join(splits) or 'none'}: point each split's key at its folder ({advice}"
                                f"{'; leave data.path out' if key == 'data.path' else ''})")
        files = [p for p in entries if p.is_file() and not not_data_file(p.name)]
        where = f"{key} is the folder {path}, which"
        if configured_format == "auto":
            readable = [p for p in files if _format_or_none(p, "auto") in formats]
            if not readable:
                held = ", ".join(p.name + ("/" if p.is_dir() else "") for p in entries[:6]) or "nothing"
                more = f" and {len(entries) - 6} more" if len(entries) > 6 else ""
                sub = (f"; for files in its subfolders give a pattern such as {path / '**' / ('*.' + formats[0])}"
                       if any(p.is_dir() for p in entries) else "")
                raise DataLoadError(f"{where} holds no data file tuneline can read for this task "
                                    f"({', '.join(formats)}): it holds {held}{more}{sub}")
            files = readable
        elif not files:
            raise DataLoadError(f"{where} holds no data file (it holds {len(entries)} entries, none a data file)")
    else:
        files = sorted(p for p in map(Path, glob.glob(str(path), recursive=True)) if p.is_file())
        if not files:
            raise DataLoadError(f"{key} is the pattern {path}, which matches no file; check the pattern (paths in a "
                                "config file are relative to the file) or give one file")
        where = f"{key} is the pattern {path}, which"
    found = {p: _format_or_none(p, configured_format) for p in files}
    kinds = sorted({f for f in found.values() if f is not None})
    if len(kinds) > 1:
        examples = ", ".join(next(p.name for p, f in found.items() if f == k) for k in kinds)
        raise DataLoadError(f"{where} gives files of {len(kinds)} formats ({', '.join(kinds)}: {examples}); one "
                            "table is read from one format: give a pattern that picks one, such as "
                            f"{(path if path.is_dir() else path.parent) / ('*.' + kinds[0])}")
    return files
