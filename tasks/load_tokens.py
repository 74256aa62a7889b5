"""Load token-classification data: CoNLL column files and JSONL token/tag lists, one row per sentence.

Every sentence keeps ``source_file`` and ``source_row`` so a rejected sentence can be found again: for CoNLL the
1-based sentence number in the file (``-DOCSTART-`` lines are not sentences), for JSONL the line number (as for
classification JSONL). ``text`` is the tokens joined by single spaces: the key for splitting and leakage checks, and
the string the served model's character offsets refer to.

CoNLL conventions accepted: the token is the first whitespace-separated field, the tag is field
``data.conll_tag_column`` (default -1: the last, which reads both the 2-column and the original 4-column CoNLL-2003
layout); sentences end at a blank or whitespace-only line; ``-DOCSTART-`` lines are document markers and are
skipped; leading/trailing/repeated blank lines are fine. A line without the tag field makes its whole sentence a
``malformed`` record (a sentence with a hole in it cannot be trained on), with the line number in ``detail``.
Content problems (tag spelling, IOB2 order, unequal lengths) are left to the data contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from tuneline.config import DataConfig
from tuneline.tasks.load import DataLoadError, _read_jsonl

TOKEN_FRAME_COLUMNS = ["tokens", "tags", "text", "source_file", "source_row"]
DOCSTART = "-DOCSTART-"


def _conll_sentences(path: Path) -> Iterator[list[tuple[int, list[str]]]]:
    """Yield each sentence as its (line number, fields) pairs; blank lines and DOCSTART lines separate sentences."""
    sentence: list[tuple[int, list[str]]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields or fields[0] == DOCSTART:
                if sentence:
                    yield sentence
                sentence = []
                continue
            sentence.append((number, fields))
    if sentence:
        yield sentence


def read_conll(path: Path, tag_column: int = -1) -> tuple[pd.DataFrame, list[dict]]:
    """Read a CoNLL column file into sentences (tokens, tags) plus the sentences with a line lacking the tag."""
    records: list[dict] = []
    malformed: list[dict] = []
    for number, sentence in enumerate(_conll_sentences(path), start=1):
        short = [(line, fields) for line, fields in sentence
                 if len(fields) < 2 or not -len(fields) <= tag_column < len(fields)]
        tokens = [fields[0] for _, fields in sentence]
        if short:
            line, fields = short[0]
            malformed.append({"source_row": number, "rule": "conll_line_has_no_tag_column",
                              "value": " ".join(tokens)[:500],
                              "detail": f"line {line}: {' '.join(fields)!r} has {len(fields)} field(s); the tag is "
                                        f"read from column {tag_column} (data.conll_tag_column)"})
            continue
        tags = [fields[tag_column] for _, fields in sentence]
        records.append({"tokens": tokens, "tags": tags, "source_row": number})
    return pd.DataFrame.from_records(records, columns=["tokens", "tags", "source_row"]), malformed


def read_token_jsonl(path: Path, tokens_column: str, tags_column: str) -> tuple[pd.DataFrame, list[dict]]:
    """JSONL objects holding a token list and a tag list; their types are judged by the contract, not here."""
    raw, malformed = _read_jsonl(path)
    missing = [c for c in (tokens_column, tags_column) if c not in raw.columns]
    if len(raw) and missing:
        found = [c for c in raw.columns if c != "source_row"]
        raise DataLoadError(f"{path} has no field {missing[0]!r} in any record (its fields: {found}); "
                            "set data.tokens_column / data.tags_column to the right names")
    if not len(raw):
        return pd.DataFrame(columns=["tokens", "tags", "source_row"]), malformed
    frame = pd.DataFrame({"tokens": raw[tokens_column].astype(object), "tags": raw[tags_column].astype(object),
                          "source_row": raw["source_row"]})
    # A record without the field reads as NaN; make it None so the contract reports "not a list", not a float.
    for column in ("tokens", "tags"):
        frame[column] = pd.Series([None if isinstance(v, float) and v != v else v for v in frame[column]],
                                  index=frame.index, dtype=object)
    return frame, malformed


def _joined(tokens: object) -> str | None:
    """``" ".join(tokens)`` for a list of strings, None for anything else (the contract rejects that row)."""
    if isinstance(tokens, list) and all(isinstance(t, str) for t in tokens):
        return " ".join(tokens)
    return None


def read_token_file(path: Path, fmt: str, config: DataConfig) -> tuple[pd.DataFrame, list[dict]]:
    """Read one NER file into the canonical sentence frame (see the module docstring) plus unparseable records."""
    path = Path(path)
    if not path.is_file():
        raise DataLoadError(f"input file {path} does not exist")
    if fmt == "conll":
        frame, malformed = read_conll(path, config.conll_tag_column)
    elif fmt == "jsonl":
        frame, malformed = read_token_jsonl(path, config.tokens_column, config.tags_column)
    else:
        raise DataLoadError(f"format {fmt!r} is not a token-classification format; use conll (.conll/.txt column "
                            "files) or jsonl (token and tag lists), via data.format")
    # Built as an object column: pandas would infer a string dtype and turn the None of unusable rows into NaN.
    text = pd.Series([_joined(tokens) for tokens in frame["tokens"]], index=frame.index, dtype=object)
    frame = frame.assign(text=text, source_file=str(path))
    frame["source_row"] = frame["source_row"].astype("int64")
    return frame[TOKEN_FRAME_COLUMNS].reset_index(drop=True), malformed
