"""The data path at scale (issue 13): the block reader, the hashed rules and the split give exactly what the careful
reader, the plain rules and the per-row SHA-256 gave; only memory and time change."""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests_support import run_config
from tuneline import common, readers
from tuneline.common import key_hashes, remembered_key_hashes, sha256_text
from tuneline.config import SplitConfig
from tuneline.readers import _read_delimited_careful, _read_delimited_fast, _with_object_columns, read_table
from tuneline.schemas import classification as classification_rules
from tuneline.schemas.classification import classification_schema
from tuneline.schemas.common import TrainKeys
from tuneline.tasks.load import load_data
from tuneline.tasks.split import assign_splits, hash_unit, split_data
from tuneline.tasks.validate import apply_schema, validate_data

PIECES = ["a", "b c", " ", "", ",", '"', '""', '"x,y"', "\n", "\r\n", "\r", "\t", "é", "\u3000", "\x1c", 'q"q',
          '"open', 'close"', "\x00", "long text here", "\u2028"]


def random_file(rng: random.Random, fmt: str) -> str:
    """A header and up to 60 lines of dirty pieces, in \\n or \\r\\n lines. One file in ten holds a lone \\r, and
    one in ten lines of both kinds: the block reader leaves both to the careful one (a lone \\r is a character
    inside a line, readers._physical_lines; a lone \\n may be one inside a cell, readers._rejoin_lone_lf_cells)."""
    sep = "," if fmt == "csv" else "\t"
    lone_cr, mixed = rng.random() < 0.1, rng.random() < 0.1
    end = rng.choice(["\n", "\r\n"])
    ends = ["\n", "\r\n", ""] if mixed else [end, end, ""]
    lines = [f"text{sep}label{end}"]
    pieces = [p for p in PIECES if (lone_cr or p != "\r") and (mixed or p not in ("\n", "\r\n") or p == end)]
    for i in range(rng.randint(1, 60)):
        if rng.random() < 0.6:
            lines.append(f"row {i}{sep}{rng.choice(['pos', 'neg', ''])}{end}")
        else:
            lines.append("".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
                         + rng.choice(ends + ["\r"] if lone_cr else ends))
    text = "".join(lines)
    return ("\ufeff" + text) if rng.random() < 0.1 else text


def assert_same_read(path: Path, fmt: str, encoding: str = "utf-8") -> bool:
    """The block reader's result equals the careful reader's (or both refuse the file); whether the fast one ran."""
    try:
        careful = _read_delimited_careful(path, fmt, encoding, True, "error")
    except readers.DataLoadError:
        assert _read_delimited_fast(path, fmt, encoding, "error") is None
        return False
    fast = _read_delimited_fast(path, fmt, encoding, "error")
    if fast is None:
        data = path.read_bytes()
        crlf = data.count(b"\r\n")
        assert data.count(b"\r") != crlf or (crlf and data.count(b"\n") > crlf), \
            "the block reader gave up on a file without a lone \\r or lines of both ends"
        return False
    compact = fast
    fast = _with_object_columns(fast)
    assert fast.records_seen == careful.records_seen
    assert fast.malformed == careful.malformed
    pd.testing.assert_frame_equal(fast.frame, careful.frame)
    assert len(compact.frame) + len(compact.malformed) == compact.records_seen
    return True


@pytest.mark.parametrize("seed", range(6))
def test_block_reader_matches_the_careful_reader_on_dirty_files(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    fast_runs = 0
    for trial in range(150):
        fmt = rng.choice(["csv", "tsv"])
        monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", rng.choice([1, 3, 16, 64, 1 << 20]))
        path = tmp_path / f"t{trial}.{fmt}"
        path.write_bytes(random_file(rng, fmt).encode("utf-8"))
        fast_runs += assert_same_read(path, fmt)
    assert fast_runs > 100


def test_block_reader_on_quotes_that_run_across_blocks(tmp_path, monkeypatch):
    rows = [f"{i},text {i},{'pos' if i % 2 else 'neg'}" for i in range(1, 400)]
    rows[50] = '51,"broken quote in row 51,neg'  # swallows lines up to the next quote
    rows[120] = '121,"a legit\nmulti-line text, quoted",pos'
    rows[200] = '201,"quoted, ""with"" quotes",neg'
    rows[330] = '331,"never closed until the end of the file,pos'
    rows[260] = '261,"Best" movie ever,pos'  # a quote closing mid-field: set aside by either reader, never unquoted
    path = tmp_path / "data.csv"
    path.write_text("id,text,label\n" + "\n".join(rows) + "\n" + "\n".join(f"{i},\"q {i}\",pos" for i in range(5)))
    for size in (1, 50, 333, 4096, 1 << 20):
        monkeypatch.setattr(readers, "FAST_BLOCK_BYTES", size)
        assert assert_same_read(path, "csv")
    stray = [m for m in read_table(path, "csv").malformed if m["rule"] == "field_has_stray_quote"]
    assert [m["source_line"] for m in stray] == [263]  # row 121 holds a line break
    assert stray[0]["detail"].startswith("field 2 opens a quote that closes before the field ends (") \
        and "('\"Best\" movie ever')" in stray[0]["detail"]  # the field itself, fixed in the advice


def test_block_reader_transcodes_single_byte_encodings_and_leaves_the_rest_to_the_careful_reader(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes("text,label\ncaf\xe9 cr\xe8me,pos\n\"na\xefve, quoted\",neg\n".encode("latin-1"))
    assert assert_same_read(path, "csv", "latin-1")
    assert read_table(path, "csv", encoding="latin-1").frame["text"].tolist() == ["café crème", "naïve, quoted"]
    # bytes that do not decode: the careful reader's error (or quarantine), not the block reader's
    assert _read_delimited_fast(path, "csv", "utf-8", "error") is None
    with pytest.raises(readers.DataLoadError, match="line 2"):
        read_table(path, "csv")
    quarantined = read_table(path, "csv", on_decode_error="quarantine", compact=True)
    assert [m["rule"] for m in quarantined.malformed] == ["record_not_decodable", "record_not_decodable"]
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("text,label\nhello,pos\n".encode("utf-16"))
    assert _read_delimited_fast(utf16, "csv", "utf-16", "error") is None
    assert read_table(utf16, "csv", encoding="utf-16").frame["text"].tolist() == ["hello"]


def test_compact_columns_hold_the_same_values(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('text,label\n"Hello, world",pos\nplain text,\n,neg\n')
    plain = read_table(path, "csv")
    compact = read_table(path, "csv", compact=True)
    assert plain.frame["text"].dtype == object and plain.frame["label"].tolist() == ["pos", None, "neg"]
    assert str(compact.frame["text"].dtype) == "str" and compact.frame["source_row"].dtype == "int64"
    assert compact.frame["text"].tolist()[:2] == ["Hello, world", "plain text"]
    assert compact.frame["text"].isna().tolist() == [False, False, True]
    assert compact.frame["label"].isna().tolist() == [False, True, False]
    assert compact.frame["text"].array.__arrow_array__().num_chunks == 1  # takes never concatenate chunks


# --- key hashes and the split -----------------------------------------------------------------------------------

KEYS = ["good movie", "  good movie ", "café", "\u3000spaced\u3000", "\x1cexotic\x1f", "", "   ", "x" * 1000,
        "ünïcödé 🚀", "tab\tinside"] + [f"example sentence {i}" for i in range(300)]


def old_hash_unit(keys, salt: str) -> np.ndarray:
    """The split's hash as it always was: a SHA-256 per row, its first 15 hex digits over 16**15."""
    from tuneline.tasks.split import split_key

    return np.array([int(sha256_text(salt, split_key(k))[:15], 16) / 16**15 for k in keys], dtype=np.float64)


@pytest.mark.parametrize("dtype", [object, "str"])
def test_hash_unit_and_split_assignment_are_unchanged(dtype):
    keys = pd.Series(KEYS, dtype=dtype)
    for salt in ("tuneline", "tests", "another salt"):
        assert hash_unit(keys, salt).tolist() == old_hash_unit(KEYS, salt).tolist()  # bit for bit
        config = SplitConfig(validation_fraction=0.1, test_fraction=0.2, salt=salt)
        unit = old_hash_unit(KEYS, salt)
        expected = np.where(unit < 0.2, "test", np.where(unit < 0.3, "validation", "train"))
        assert assign_splits(keys, config).tolist() == expected.tolist()
    tokens = pd.Series([["EU", "rejects"], ["Peter"]], dtype=object)
    assert hash_unit(tokens, "s").tolist() == old_hash_unit(tokens, "s").tolist()


def test_key_hashes_are_remembered_per_arrow_column_and_salt():
    keys = pd.Series(KEYS, dtype="str")
    first = key_hashes(keys, "one")
    assert remembered_key_hashes(keys, "one") is first
    assert remembered_key_hashes(keys.reset_index(drop=True), "one") is first  # same Arrow data
    assert remembered_key_hashes(keys, "two") is None
    assert remembered_key_hashes(keys[keys.str.len() > 3].reset_index(drop=True)) is None  # new data
    assert not first.flags.writeable


def test_each_row_is_hashed_once_from_load_to_split(tmp_path, monkeypatch):
    rows = [(f"ticket number {i} about my parcel", "a" if i % 3 else "b") for i in range(400)]
    rows += [rows[5], ("  " + rows[7][0], rows[7][1]), ("", "a"), (rows[10][0], "b")]  # row 10 is "a"
    train = write_csv(tmp_path / "train.csv", rows)
    test = write_csv(tmp_path / "test.csv", [(f"new ticket {i}", "a") for i in range(40)] + [rows[3]])
    hashed: list[int] = []
    real = common.sha256_prefixes
    monkeypatch.setattr(common, "sha256_prefixes", lambda salt, texts: hashed.append(len(texts := list(texts)))
                        or real(salt, texts))
    config = run_config("classification", train=train, test=test)
    loaded = load_data.fn(config)
    validated = validate_data.fn(loaded, config, tmp_path / "run")
    before = sum(hashed)
    splits = split_data.fn(validated.frames, validated.labels, config.data.split, kind="classification")
    assert before == len(rows) + 41  # every loaded row once, with the split's salt (leakage compares in Arrow)
    assert sum(hashed) == before  # the split reused them
    assert {r for r in validated.quarantine["rule"]} >= {"no_exact_duplicates", "no_conflicting_label_duplicates",
                                                         "text_not_in_train", "not_nullable"}
    assert str(splits.train["label"].dtype) == "str" and set(splits.train["label"]) == {"a", "b"}


def write_csv(path: Path, rows) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


# --- the rules on compact columns ---------------------------------------------------------------------------------

def random_rows(rng: random.Random, n: int) -> list[tuple[object, object]]:
    texts = [f"text {i}" for i in range(n // 3)] + ["", "  ", "\u3000", None]
    labels = ["pos", "neg", "meh", None]
    rows = []
    for _ in range(n):
        text = rng.choice(texts)
        if isinstance(text, str) and rng.random() < 0.2:
            text = f"  {text}\t"
        rows.append((text, rng.choice(labels)))
    return rows


def frames_of(rows, source="data.csv") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same rows as the careful loader makes them (objects) and as the block loader does (compact)."""
    objects = pd.DataFrame({"text": pd.Series([r[0] for r in rows], dtype=object),
                            "label": pd.Series([r[1] for r in rows], dtype=object),
                            "source_file": source, "source_row": pd.Series(range(1, len(rows) + 1), dtype="int64")})
    compact = pd.DataFrame({"text": pd.Series([r[0] for r in rows], dtype="str"),
                            "label": pd.Series(pd.Categorical([r[1] for r in rows])),
                            "source_file": pd.Categorical([source] * len(rows)),
                            "source_row": pd.Series(range(1, len(rows) + 1), dtype="int64")})
    return objects, compact


def outcome(frame: pd.DataFrame, train_texts=None, split="train"):
    clean, quarantine = apply_schema(frame, classification_schema(["pos", "neg"], train_texts), split)
    rejected = sorted((int(r), str(rule), str(v)) for r, rule, v in
                      zip(quarantine["source_row"], quarantine["rule"], quarantine["value"]))
    return clean["source_row"].tolist(), rejected


@pytest.mark.parametrize("seed", range(5))
def test_rules_on_compact_columns_match_the_rules_on_objects(seed):
    rng = random.Random(seed)
    rows = random_rows(rng, 300)
    objects, compact = frames_of(rows)
    assert outcome(compact) == outcome(objects)
    train_objects, train_compact = frames_of(random_rows(rng, 200), "train.csv")
    train = [r for r in train_objects["text"] if isinstance(r, str)]
    assert outcome(compact, TrainKeys(train_compact["text"].dropna().reset_index(drop=True)), "test") == \
        outcome(objects, train, "test")


def test_a_test_row_differing_from_train_only_in_case_or_spacing_is_leakage_on_both_paths():
    """"The film is  GREAT ." in test and "the film is great ." in train are one example: its test score would be
    inflated. Both column kinds (objects from JSONL, compact Arrow from CSV) reject it; a different word is kept."""
    train_rows = [("the film is great .", "pos"), ("a dull, dull\tmovie", "neg"), ("fine", "pos")]
    test_rows = [("The film is  GREAT .", "pos"), ("  A dull, dull movie ", "neg"), ("the film is grate .", "pos"),
                 ("fine!", "pos")]
    train_objects, train_compact = frames_of(train_rows, "train.csv")
    objects, compact = frames_of(test_rows, "test.csv")
    for frame, train in ((objects, list(train_objects["text"])),
                         (compact, TrainKeys(train_compact["text"].reset_index(drop=True)))):
        kept, rejected = outcome(frame, train, "test")
        assert kept == [3, 4]
        assert [(row, rule) for row, rule, _ in rejected] == [(1, "text_not_in_train"), (2, "text_not_in_train")]


def test_hash_collisions_are_settled_by_the_texts(monkeypatch):
    """With a hash that collides all the time, every hashed rule falls back to (or confirms on) the texts."""
    def coarse(keys, salt):
        return np.asarray(key_hashes(keys, salt)) % np.uint64(3)

    monkeypatch.setattr(classification_rules, "key_hashes", coarse)
    rng = random.Random(7)
    rows = random_rows(rng, 200)
    objects, compact = frames_of(rows)
    assert outcome(compact) == outcome(objects)
    train_objects, train_compact = frames_of(random_rows(rng, 100), "train.csv")
    train = [r for r in train_objects["text"] if isinstance(r, str)]
    assert outcome(compact, TrainKeys(train_compact["text"].dropna().reset_index(drop=True)), "test") == \
        outcome(objects, train, "test")


def test_csv_and_jsonl_of_the_same_rows_validate_and_split_alike(tmp_path):
    """The compact path (CSV) and the object path (JSONL) end in the same quarantine and the same splits."""
    rng = random.Random(3)
    rows = [(t if t is not None else "", lab if lab is not None else "") for t, lab in random_rows(rng, 600)]
    rows += [(f"unique text {i}", ["pos", "neg"][i % 2]) for i in range(600)]
    csv_path = write_csv(tmp_path / "data.csv", rows)
    jsonl_path = tmp_path / "data.jsonl"
    jsonl_path.write_text("".join(json.dumps({"text": t if t != "" else None, "label": lab if lab != "" else None})
                                  + "\n" for t, lab in rows))
    results = []
    for path in (csv_path, jsonl_path):
        config = run_config("classification", "data.max_bad_fraction=0.9", path=path, labels=["pos", "neg"])
        loaded = load_data.fn(config)
        validated = validate_data.fn(loaded, config, tmp_path / path.suffix)
        splits = split_data.fn(validated.frames, validated.labels, config.data.split, kind="classification")
        quarantine = sorted(zip(validated.quarantine["source_row"], validated.quarantine["rule"]))
        results.append((quarantine, {name: (f["text"].tolist(), f["label"].tolist(), f["source_row"].tolist())
                                     for name, f in splits.items()}))
    assert results[0] == results[1]


# --- tokenization progress ----------------------------------------------------------------------------------------

def test_tokenization_logs_progress_with_an_eta(tiny_bert, tmp_path, monkeypatch, caplog):
    from transformers import AutoTokenizer

    from tuneline.tasks import tokenize
    from tuneline.tasks.split import DataSplits

    monkeypatch.setattr(tokenize, "PROGRESS_EVERY_S", 0.0)
    frame = pd.DataFrame({"text": [f"my parcel {i} please help" for i in range(3500)], "label": "shipping",
                          "source_file": "x.csv", "source_row": range(1, 3501)})
    splits = DataSplits(train=frame, validation=frame.head(10), test=frame.head(10), labels=["shipping"])
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert), use_fast=True)
    config = run_config("classification", path="/unused.csv")
    with caplog.at_level(logging.INFO, logger="tuneline"):
        tokenize.tokenize_splits.fn(splits, tokenizer, config, {"train": "t", "validation": "v", "test": "x"},
                                    cache_dir=tmp_path)
    progress = [r.getMessage() for r in caplog.records if "ETA" in r.getMessage()]
    assert progress and progress[0].startswith("tokenize train: 1,000 of 3,500 rows (28%)")
