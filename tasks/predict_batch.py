"""Batch prediction: a file of inputs in, the same rows with a registered model's predictions out.

Three tasks, each callable alone:

1. :func:`resolve_model_version` turns ``NAME@ALIAS`` / ``NAME/VERSION`` (``models:/`` optional) into ONE version
   number before anything is predicted, so every row is predicted by the same version even if the alias moves
   while the job runs; the version's ``task`` tag says which kind (and so which input columns) it serves.
2. :func:`read_prediction_inputs` reads the file with the project's readers and checks it has, in every row, the
   columns the kind's model input is built from (``text``; ``text`` + ``text_pair``; ``tokens``).
3. :func:`predict_to_file` predicts in chunks of ``batch_size`` rows, logging progress, and writes the input
   columns, the pyfunc's prediction columns, ``model_name`` and ``model_version`` per row to a temporary file
   beside the output path, renamed onto it only when every row is written: the output path holds the whole
   result or nothing.

Nothing is logged to MLflow: this is inference, not a run.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import math
import re
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuneline.common import pipeline_task, task_logger
from tuneline.compressed import readable
from tuneline.errors import UserError, excerpt
from tuneline.kinds import KINDS, TaskKind, kind_of
from tuneline.kinds.base import COLUMN_TAG
from tuneline.pyfunc.text_classifier import invisible_only
from tuneline.readers import (DOCSTART, PROVENANCE_COLUMNS, DataLoadError, bom_encoding, csv_layout, detect_format,
                              has_sentence_breaks, head_sample, header_line_below, read_conll, read_table,
                              read_text_lines, split_setting_advice)
from tuneline.runtime import redact, resolve_tracking_uri

#: Columns batch prediction adds to every row besides the pyfunc's own.
MODEL_COLUMNS = ("model_name", "model_version")
#: Output formats by file extension.
OUTPUT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}
#: A prediction column whose name is already a (non-input) column of the file gets this prefix.
COLLISION_PREFIX = "predicted_"


@dataclass(frozen=True)
class ResolvedModel:
    """One concrete registered version: what every row of a batch is predicted with."""

    name: str
    version: str
    task: str
    reference: str       # as the user gave it, e.g. models:/intents@champion
    tracking_uri: str    # resolved (``${VAR}`` expanded): never logged unredacted
    trained_columns: tuple[tuple[str, str], ...] = ()  # (model column, the training data's name for it)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass
class PredictionInputs:
    """The input rows in file order: ``frame`` holds the file's columns, ``model_columns`` those the model reads."""

    path: Path
    frame: pd.DataFrame
    model_columns: list[str]
    lines: list[int]     # the physical line each row starts on, for error messages
    file_names: dict[str, str] = field(default_factory=dict)  # model column → the file's name for it, where renamed


@dataclass(frozen=True)
class BatchPrediction:
    """What a batch prediction wrote."""

    output_path: str
    rows: int
    model_name: str
    model_version: str


# --- 1. resolve -------------------------------------------------------------------------------------------------

def parse_model_reference(reference: str) -> tuple[str, str | None, str | None]:
    """``(name, alias, version)`` of ``NAME@ALIAS`` or ``NAME/VERSION``, with or without ``models:/``."""
    body = reference.strip()
    body = body[len("models:/"):] if body.startswith("models:/") else body
    if "@" in body:
        name, _, alias = body.rpartition("@")
        if name and alias and "/" not in alias:
            return name, alias, None
    elif "/" in body:
        name, _, version = body.rpartition("/")
        if name and version.isdigit():
            return name, None, version
    name = body.split("@")[0].rsplit("/", 1)[0] or "NAME"
    raise UserError(f"model reference {reference!r} is neither NAME@ALIAS nor NAME/VERSION; give e.g. "
                    f"models:/{name}@champion or models:/{name}/3")


@pipeline_task(name="resolve-model-version")
def resolve_model_version(reference: str, tracking_uri: str | None = None) -> ResolvedModel:
    """Resolve the reference to one version number now (aliases are read once) and the kind it serves."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
    from mlflow.tracking import MlflowClient

    name, alias, version = parse_model_reference(reference)
    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    where = redact(uri)
    try:
        registered = client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        known = sorted(m.name for m in client.search_registered_models(max_results=20))
        raise UserError(f"there is no registered model {name!r} in {where} (models there: "
                        f"{', '.join(known) or 'none'}); check --model and --tracking-uri") from None
    aliases = {a: str(v) for a, v in (registered.aliases or {}).items()}
    try:
        found = (client.get_model_version_by_alias(name, alias) if alias is not None
                 else client.get_model_version(name, version))
    except MlflowException as error:
        if error.error_code not in (ErrorCode.Name(RESOURCE_DOES_NOT_EXIST), "INVALID_PARAMETER_VALUE"):
            raise
        held = ", ".join(f"{a} -> v{v}" for a, v in sorted(aliases.items())) or "none"
        missing = f"alias {alias!r}" if alias is not None else f"version {version}"
        raise UserError(f"registered model {name!r} has no {missing} (its aliases: {held}); use one of them or "
                        f"models:/{name}/<version>") from None
    tags = found.tags or {}
    task = tags.get("task")
    if task not in KINDS:
        raise UserError(f"{name} v{found.version} has no tuneline 'task' tag (found {task!r}), so the columns it "
                        f"reads are unknown; batch prediction takes models registered by tuneline ({', '.join(KINDS)})")
    log = task_logger()
    if tags.get("tuneline.status") in ("orphaned", "failed"):
        log.warning("%s v%s is marked %s: its training run never finished the gate", name, found.version,
                    tags["tuneline.status"])
    log.info("model %s resolved to %s v%s (%s)", reference, name, found.version, task)
    trained = tuple((key.removeprefix(COLUMN_TAG), value) for key, value in sorted(tags.items())
                    if key.startswith(COLUMN_TAG))
    return ResolvedModel(name=name, version=str(found.version), task=task, reference=reference, tracking_uri=uri,
                         trained_columns=trained)


# --- 2. read ----------------------------------------------------------------------------------------------------

def model_input_columns(kind: TaskKind) -> list[str]:
    """The columns ``kind.model_input`` reads, in its order: found by calling it on empty frames, so the kind's
    serving code stays the one place that knows them."""
    probe = pd.DataFrame()
    for _ in range(16):
        try:
            kind.model_input(probe)
            return list(probe.columns)
        except KeyError as error:
            probe[str(error.args[0])] = pd.Series(dtype=object)
    raise RuntimeError(f"cannot tell which columns the {kind.name} kind's model_input reads")  # pragma: no cover


def prediction_columns(kind: TaskKind) -> tuple[str, ...]:
    """The columns the kind's registered pyfunc returns (``OUTPUT_COLUMNS`` of its file in ``tuneline/pyfunc``, which
    builds its output frame from them), so the input check below and the model cannot disagree."""
    module = importlib.import_module(f"tuneline.pyfunc.{Path(kind.pyfunc_file).stem}")
    return tuple(module.OUTPUT_COLUMNS)


def clashing_columns(kind: TaskKind, model_columns: list[str], file_columns: list[str]) -> list[str]:
    """The file's columns (under its own names, as the output keeps them) that batch prediction writes a value of
    its own under: ``model_name``, ``model_version`` and ``predicted_<name>`` for each column the pyfunc returns
    (those that echo a model column, dropped from the output, aside).

    Such a column was written twice (CSV), overwritten by the prediction (JSONL: the input's value lost) or refused
    by pyarrow mid-run (Parquet). A column named like a prediction column itself (a gold ``label``, a ``score``) is
    no clash: its prediction is written as ``predicted_<name>`` (README, "Batch prediction"). ``predicted_<name>``
    is reserved even where the file has no ``<name>``: the prediction would then be ``<name>`` beside an input
    column that reads as the prediction (a previous run's output fed back in)."""
    predicted = [f"{COLLISION_PREFIX}{c}" for c in prediction_columns(kind) if c not in model_columns]
    reserved = {header_key(c) for c in (*MODEL_COLUMNS, *predicted)}  # `Model_Version` too: training reads it so
    return [c for c in file_columns if header_key(c) in reserved]


def header_key(name: Any) -> str:
    """A column name as training compares headers, case and surrounding spaces aside: a file's ``Label`` is its
    ``label`` column to a training run, so an output that fed back in must not hold a second one."""
    return str(name).strip().casefold()


def output_name(column: str, input_columns: Any) -> str:
    """The name a prediction column is written under: ``predicted_<column>`` when the input has a column of that name
    in any spelling (``Label``, `` LABEL ``), else ``column``. Written beside a gold ``Label`` as ``label``, the
    prediction was what training with ``label_column: label`` read as the gold label."""
    return f"{COLLISION_PREFIX}{column}" if header_key(column) in {header_key(c) for c in input_columns} else column


def _is_missing(value: Any) -> bool:
    """None, NaN or a text of only whitespace: a cell the model would refuse by its row position, not its line."""
    return (value is None or (isinstance(value, float) and math.isnan(value))
            or (isinstance(value, str) and not value.strip()))


def _is_invisible(value: Any) -> bool:
    """A text of only invisible characters (zero-width spaces or joiners, a soft hyphen, a byte-order mark, control
    or private-use characters, U+FFFD) and whitespace (the registered models' own rule): it looks empty, and a BERT tokenizer drops such characters, so the model would answer
    for an empty input with a label and a score as if it had read something."""
    return isinstance(value, str) and invisible_only(value)


#: the column a CoNLL input's last field goes to when it is no entity tagging (part-of-speech tags: ``Paris NNP``)
INPUT_TAGS = "input_tags"
_ENTITY_TAG = re.compile(r"(?i)^(o|[bies][-_]\S+)$")
_ENTITY_TYPE = re.compile(r"(?i)^[bies][-_](\S+)$")


def entity_tagging(tags: Any, share: float = 0.9) -> bool:
    """Whether a CoNLL file's tag column reads as entity tags (``O``, ``B-X``, ``I-X``; at least ``share`` of them):
    a file of words and part-of-speech tags (``Paris NNP``) had its POS tags kept as the gold ``tags`` and the
    model's answer moved to ``predicted_tags``, as if it were a test file."""
    flat = [tag for row in tags if row is not None for tag in row]
    return bool(flat) and sum(bool(_ENTITY_TAG.match(str(tag))) for tag in flat) >= share * len(flat)


def foreign_entity_tags(tags: Any, labels: list[str] | None, share: float = 0.5) -> list[str]:
    """The entity types of a CoNLL input's tag column that ``labels`` (the model's tags) do not know, when fewer than
    ``share`` of its B-/I- tags are of a type the model knows (else empty): chunk tags (``B-NP``, ``I-VP``: CoNLL-2000
    and the third column of CoNLL-2003) look like entity tags, and were kept as the gold ``tags`` beside the model's
    answer, as if the file were a test file of this model."""
    known = {match.group(1).upper() for label in labels or [] if (match := _ENTITY_TYPE.match(str(label)))}
    typed = [match.group(1).upper() for row in tags if row is not None for tag in row
             if (match := _ENTITY_TYPE.match(str(tag)))]
    if not known or not typed or sum(t in known for t in typed) >= share * len(typed):
        return []
    return sorted(set(typed) - known)


def model_tags(pyfunc: Any) -> list[str] | None:
    """The tags an NER pyfunc (``token_tagger.py``) predicts; None for another model or one that does not say."""
    try:
        labels = getattr(getattr(pyfunc.unwrap_python_model(), "_tagger", None), "labels", None)
    except Exception:  # noqa: BLE001 - a model of another kind, or loaded another way: nothing to compare with
        return None
    return list(labels) if labels else None


def without_foreign_tags(frame: pd.DataFrame, pyfunc: Any, path: Path, model_name: str) -> pd.DataFrame:
    """``frame`` with a CoNLL input's ``tags`` renamed :data:`INPUT_TAGS` when they are of types the loaded model
    does not know (:func:`foreign_entity_tags`: chunk tags); else ``frame``. Needs the model's tags, so it runs once
    the model is loaded, in the batch path and the printed one alike: the printed one kept chunk tags as ``tags``
    and wrote the model's answer as ``predicted_tags``, another layout than ``-o`` wrote for the same file."""
    if "tags" not in frame.columns or not (foreign := foreign_entity_tags(frame["tags"], model_tags(pyfunc))):
        return frame
    task_logger().info("the last column of %s tags types %s model %s does not know (chunk tags?): kept as %r, not "
                       "as the gold tags beside the predicted ones", path, ", ".join(foreign[:5]), model_name,
                       INPUT_TAGS)
    return frame.rename(columns={"tags": INPUT_TAGS})


#: the name pandas stores an unnamed index of a frame under in a Parquet/Arrow file (``__index_level_0__``)
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


def pandas_index_columns(columns: Any) -> list[str]:
    """The columns of a Parquet file that hold a pandas frame's unnamed index, not data: ``df[mask].to_parquet(f)``
    stores the kept rows' index (1, 4, 9...) as ``__index_level_0__``, which pandas reads back as the index. Read as
    an input column it came out in every prediction file as data the user never wrote."""
    return [c for c in columns if isinstance(c, str) and _PANDAS_INDEX.fullmatch(c)]


def refused_record(message: str, lines: list[int], start: int = 0, count: int | None = None) -> str:
    """``the record on line L`` for a model's refusal that names ``input N`` of the rows from ``start`` (the kinds'
    pyfunc models count inputs from 0), else ``a record between lines F and L`` of those ``count`` rows. Serving
    QA: the refusal of one record named "input 1" (no file, no line) or a range covering the whole chunk."""
    count = len(lines) - start if count is None else count
    found = re.search(r"\binput (\d+)\b", message)
    if found is not None and int(found.group(1)) < count:
        return f"the record on line {lines[start + int(found.group(1))]}"
    return f"a record between lines {lines[start]} and {lines[start + count - 1]}"


def read_prediction_table(path: Path, fmt: str, encoding: str = "utf-8", skip_lines: int = 0,
                          header: bool = True) -> Any:
    """``read_table`` for prediction inputs: its hints name the training config (``data.encoding``, a quarantine of
    undecodable rows), which predict has as ``--encoding`` and not at all (every row needs its prediction).
    ``lines`` and ``conll`` (an NER model's words, gold tags optional) are the text files predict reads besides."""
    if skip_lines and fmt not in ("csv", "tsv", "xlsx"):
        raise UserError(f"--skip-lines is for CSV, TSV and XLSX input (lines or rows above the header); {path} is "
                        f"read as {fmt}")
    try:
        if fmt == "lines":
            return read_text_lines(path, encoding=encoding)
        if fmt == "conll":
            result = read_conll(path, encoding=encoding, tags_optional=True)
            if "tags" in result.frame.columns and not entity_tagging(result.frame["tags"]):
                result.frame.rename(columns={"tags": INPUT_TAGS}, inplace=True)
                task_logger().info("the last column of %s holds no entity tags (O, B-X, I-X) but e.g. %s: kept as "
                                   "%r, not as the gold tags beside the predicted ones", path,
                                   ", ".join(sorted({t for tags in result.frame[INPUT_TAGS] for t in tags})[:5]),
                                   INPUT_TAGS)
            return result
        result = read_table(path, fmt, encoding=encoding, skip_lines=skip_lines, header=header)
        if fmt == "parquet":
            result.frame.drop(columns=pandas_index_columns(result.frame.columns), inplace=True)
        return result
    except DataLoadError as error:
        cut, advice = split_setting_advice(str(error))
        if advice is None:
            raise
        if "data.encoding" not in advice:  # predict has no config: its options, or no setting at all
            if "data.header" in advice:  # a header and no record: predict reads every file with its header
                raise UserError(f"{cut}; give a file with at least one record below the header") from None
            for setting, option in (("data.format", "--format"), ("data.skip_lines", "--skip-lines")):
                advice = re.sub(rf"{re.escape(setting)}(:\s*|\b)", lambda m: option + (" " if m.group(1) else ""),
                                advice)
            if "data." in advice:
                raise
            raise UserError(f"{cut}; {advice.replace('set --', 'give --')}") from None
        named = re.match(r"set data\.encoding: ([\w-]+)", advice)
        fix = (f"give --encoding {named.group(1)}" if named else
               "give the file's encoding with --encoding (e.g. cp1252 or latin-1), or save it as UTF-8")
        raise UserError(f"{cut}; {fix}") from None


def blank_line_between_records(path: Path, fmt: str, encoding: str, skip_lines: int = 0) -> int | None:
    """The first line of a CSV/TSV file that is blank (or holds only empty fields) with a record after it; None when
    there is none (blank lines at the end are harmless).

    The reader treats such a line as no record, as a training file must. For predictions it dropped the line
    silently: 5 lines in, ``wrote 3 rows``, and the output no longer lined up with the input by position (stdin
    refuses a blank line for that reason)."""
    delimiter, skip = csv_layout(path, encoding, skip_lines) if fmt == "csv" else ("\t", skip_lines)
    try:
        text = path.read_text(encoding=bom_encoding(path, encoding), errors="replace").removeprefix("\ufeff")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                            quoting=csv.QUOTE_MINIMAL if fmt == "csv" else csv.QUOTE_NONE)
        for _ in range(skip):
            next(reader, None)
        header = next(reader, None)
        while header is not None and not any(field.strip() for field in header):
            header = next(reader, None)
        blank = None
        for row in reader:
            if not any(field.strip() for field in row):
                blank = blank or reader.line_num
            elif blank is not None:
                return blank
    except (csv.Error, OSError, LookupError):  # the reader has said what is wrong with such a file
        return None
    return None


#: what :func:`_title_lines_hint` says of a header repeated below the records (not a header below a title)
REPEATS_THE_HEADER = "repeats the header"


def _title_lines_hint(path: Path, fmt: str, encoding: str, kind: Any, skip_lines: int = 0,
                      trained_columns: tuple[tuple[str, str], ...] = ()) -> str:
    """``; line 3 names the columns ...`` when a CSV/TSV file's header is below a title or notes an export wrote
    above it (the first line is read as the header, and every record then has the wrong field count); else ''.
    The header may name the columns as the model does or as its training data did (``review``, in any spelling, as
    the columns are matched): a file laid out like the training data is the one most often exported with a title.
    Where the header line already names them, the line below repeats it (files joined with ``cat``): that line is
    to be deleted, and skipping lines would drop the records above it."""
    if fmt not in ("csv", "tsv", "xlsx"):
        return ""
    columns = model_input_columns(kind)
    trained = [name for column, name in trained_columns if column in columns or column == kind.raw_text_column]
    if trained and all(name.isdigit() for name in trained):  # columns named by position (no header in training):
        trained = []  # a record holding the value '0' is no header line (it advised --skip-lines 1: loop QA)
    for names in (columns, [kind.raw_text_column] if kind.raw_text_column else [], trained):
        line = header_line_below(path, fmt, encoding, names, skip_lines) if names else None
        if line is not None and header_line_below(path, fmt, encoding, names, skip_lines, from_header=True) \
                == skip_lines + 1:  # the header is where it is read from: this line repeats it
            return (f"; line {line} {REPEATS_THE_HEADER} of line {skip_lines + 1} (files joined with cat repeat "
                    f"theirs): delete line {line}")
        if line is not None:
            return (f"; line {line} names the columns {', '.join(map(repr, names))}: the header is read from line "
                    f"{skip_lines + 1}, so give --skip-lines {line - 1} (or delete the {line - 1} line(s) above line "
                    f"{line})")
    return ""


def written_without_header(path: Path, fmt: str, encoding: str, skip_lines: int, kind: Any,
                           trained_columns: tuple[tuple[str, str], ...]) -> bool:
    """Whether a CSV/TSV file is to be read without a header row, as the model's training data was
    (``data.header: false``, so its columns are registered by position: ``text`` = ``0``): its first line names
    none of the model's columns and is not the numbered header (``0,1,2``) those positions would give.

    Such a model was trained on files like GoEmotions' TSV, and ``predict`` read the first record of the same kind
    of file as its header, then refused the file for lacking a column ``text``."""
    positions = [int(name) for _column, name in trained_columns if name.isdigit()]
    if fmt not in ("csv", "tsv") or not positions or len(positions) != len(trained_columns):
        return False
    sample = head_sample(path, bom_encoding(path, encoding), skip_lines)
    if not sample:
        return False
    delimiter = "\t" if fmt == "tsv" else ","
    first = [field.strip() for field in next(csv.reader([sample[0]], delimiter=delimiter))]
    names = {header_key(name) for name in (*model_input_columns(kind), kind.raw_text_column) if name}
    if any(header_key(field) in names for field in first):
        return False
    if names_other_columns(first, sample[1:], positions[0], delimiter):
        return False
    return not all(position < len(first) and first[position] == str(position) for position in positions)


#: a column name as headers write them: a word (``comment``, ``review_text``, ``Label``), no spaces
_COLUMN_NAME = re.compile(r"[^\W\d][\w.\-]{0,39}")


def names_other_columns(first: list[str], records: list[str], text_position: int, delimiter: str) -> bool:
    """Whether ``first`` is a header that names other columns than the model's (``comment,id``): every field is a
    column name (a word without spaces) and the records below hold texts with spaces at the text's position.

    Read as a record, as a model trained without a header row reads a file, that header was predicted on as a
    text, one row more than the file's records, with no word of it (QA)."""
    if not first or not all(_COLUMN_NAME.fullmatch(field) for field in first):
        return False
    for line in records[:20]:
        fields = next(csv.reader([line], delimiter=delimiter), [])
        if text_position < len(fields) and " " in fields[text_position].strip():
            return True
    return False


def conll_layout(path: Path, encoding: str, names: list[str], skip_lines: int = 0) -> tuple[int, str, int] | None:
    """``(first line, its text, a blank line between sentences)`` when a CSV/TSV file reads as CoNLL (a word a line
    with the same few fields on each, blank lines between sentences: ``eng.testb.tsv``) and its first line names none
    of ``names`` (the columns a tagger's table would need); else None.

    Read as a table, such a file gave "line 10 is blank ... remove the line" or "duplicate column names ['-X-']"
    (its ``-DOCSTART- -X- -X- O`` line taken for a header), nothing about the format it is in. The layout is told,
    not guessed on: a table's header naming its text column is never CoNLL."""
    try:
        if not has_sentence_breaks(path, encoding):
            return None
        text = path.read_text(encoding=bom_encoding(path, encoding), errors="replace").removeprefix("\ufeff")
    except (UserError, OSError, LookupError, UnicodeError):  # the table reader says what is wrong with the file
        return None
    lines = text.splitlines()
    filled = [n for n in range(skip_lines, len(lines)) if lines[n].strip()]
    if not filled:
        return None
    first = filled[0]
    wanted = {header_key(name) for name in names}
    if any(header_key(f.strip('"\'')) in wanted for f in re.split(r"[\t,;| ]+", lines[first])):
        return None
    counts = [len(lines[n].split()) for n in filled if not lines[n].lstrip().startswith(DOCSTART)]
    usual = max(set(counts), key=counts.count) if counts else 0
    if not 1 <= usual <= 4 or counts.count(usual) < 0.9 * len(counts):
        return None
    blank = next((n for n in range(first, filled[-1]) if not lines[n].strip()), None)
    return None if blank is None else (first + 1, lines[first], blank + 1)


#: ``--format`` of ``tuneline predict --input``: ``lines`` is a plain text file of one text a line
INPUT_FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet", "xlsx", "conll", "lines")


def prediction_format(path: Path, configured: str, kind: Any, encoding: str = "utf-8",
                      source: Path | None = None) -> str:
    """The format to read an input file in: ``configured`` unless ``auto``; then the file name's, where a ``.txt``
    file (which training reads as CoNLL) is CoNLL for an NER model when it has sentences between blank lines, and
    otherwise one text a line (``lines``), the file people write by hand or with ``cut``."""
    if configured != "auto":
        return configured
    try:
        fmt = detect_format(path, "auto")
    except DataLoadError:  # its advice names data.format / data.train, the training config's keys
        if path.suffix.lower() in (".xls", ".ods", ".numbers"):
            raise UserError(f"input file {path} is a spreadsheet workbook in a format tuneline does not read (it "
                            "reads .xlsx): save it as .xlsx, or the sheet as CSV UTF-8 (Excel: File > Save As > 'CSV "
                            "UTF-8'), and give that file") from None
        raise UserError(f"cannot tell the format of input file {path} from its name; give --format ("
                        f"{', '.join(INPUT_FORMATS[1:])}; lines: one text a line)") from None
    if fmt == "conll" and path.suffix.lower() != ".conll":
        tagger = "conll" in kind.formats
        fmt = "conll" if tagger and has_sentence_breaks(source or path, encoding) else "lines"
    return fmt


def header_fields(line: str, names: list[str]) -> list[str] | None:
    """The header's fields, the model column's name first, when a line of a one-text-a-line file is a table's header
    (``text,label``; ``sentence``) naming one of ``names``; else None. A CSV read as lines would predict on its header
    and on every record's label along with its text."""
    wanted = {name.strip().lower() for name in names if name}
    for delimiter in (",", "\t", ";", "|"):
        fields = [f.strip().strip('"\'').strip().lower() for f in line.split(delimiter)]
        hit = next((f for f in fields if f in wanted), None)
        if hit is not None and (len(fields) > 1 or delimiter == ","):
            return [hit, *(f for f in fields if f != hit)]
    return None


@pipeline_task(name="read-prediction-inputs")
def read_prediction_inputs(input_path: str | Path, task: str, encoding: str = "utf-8",
                           trained_columns: tuple[tuple[str, str], ...] = (),
                           input_format: str = "auto", skip_lines: int = 0) -> PredictionInputs:
    """Read every row of a CSV/TSV/JSONL/Parquet file; refuse unreadable records, missing columns and empty cells
    (a batch drops no row silently). ``encoding`` is the text files' (a byte-order mark overrides it).

    Every refusal names the file (and the line, for a record) and comes before the model is loaded:

    * a column the output writes a value of its own under (:func:`clashing_columns`);
    * a text cell that is empty, only whitespace, or only invisible characters (a zero-width space): the policy for
      an empty text, which the model refuses too (by row position, not line), extended to text the tokenizer
      reduces to nothing, where the model would answer with a confident label for no input at all;
    * a word list (``tokens``) that is empty or holds an empty word, which training quarantines and the model refuses.

    ``trained_columns`` (:attr:`ResolvedModel.trained_columns`) are the names the training data gave the model's
    columns: a file laid out like it (``sentence``; MRPC's ``#1 String``) is read without renaming.

    ``input_format`` (:data:`INPUT_FORMATS`, :func:`prediction_format`): besides the tables, a text file of one text
    a line (``lines``) for a model of one text, and a CoNLL file of words (one a line; gold tags beside them kept as
    the input's ``tags``) for an NER model."""
    path = Path(input_path)
    kind = kind_of(task)
    if path.is_dir():
        raise UserError(f"input path {path} is a folder; give one file to predict (--input, or the predict-batch "
                        "deployment's input_path)")
    if not path.is_file():
        raise UserError(f"input file {path} does not exist{'' if not path.exists() else ' as a regular file'}; check "
                        "the path (--input, or the predict-batch deployment's input_path)")
    with readable(path) as source:  # a compressed file (batch.csv.gz) is read as the file inside it
        return _read_prediction_inputs(path, source, kind, task, encoding, trained_columns, input_format, skip_lines)


def _read_prediction_inputs(path: Path, source: Path, kind: TaskKind, task: str, encoding: str,
                            trained_columns: tuple[tuple[str, str], ...], input_format: str,
                            skip_lines: int) -> PredictionInputs:
    """:func:`read_prediction_inputs` of ``source``, the file to read (``path`` itself, or its uncompressed copy);
    every message names ``path``."""
    fmt = prediction_format(path, input_format, kind, encoding, source)
    usable = [f for f in kind.formats if f != "conll"]
    if kind.raw_text_column is not None:
        usable += [f for f in ("csv", "tsv") if f not in usable]
    if "conll" in kind.formats:
        usable.append("conll")
    if kind.second_text_column is None:
        usable.append("lines")
    if fmt not in usable:
        raise UserError(f"input file {path} is read as {fmt}, which cannot hold the rows of a {task} model; give "
                        f"{', '.join(usable)} (--format; lines: a text file of one text a line)")
    if fmt in ("csv", "tsv") and "conll" in kind.formats:  # a tagger's CoNLL file named .tsv (eng.testb.tsv)
        names = [*model_input_columns(kind), *([kind.raw_text_column] if kind.raw_text_column else []),
                 *(trained for _column, trained in trained_columns)]
        if (layout := conll_layout(source, encoding, names, skip_lines)) is not None:
            line, text, blank = layout
            raise UserError(f"input file {path} reads as a CoNLL file (a word a line, a blank line between "
                            f"sentences), not a table: line {line} ({excerpt(text, 40)}) names no column a {task} "
                            f"model reads ({', '.join(map(repr, names))}) and line {blank} is blank between "
                            "sentences; give --format conll to tag its words")
    header = not written_without_header(source, fmt, encoding, skip_lines, kind, trained_columns)
    if not header:
        task_logger().info("%s has no header row, as the model's training data had none (data.header: false): its "
                           "columns are read by position (%s)", path,
                           ", ".join(f"{column} = column {name}" for column, name in trained_columns))
    result = read_prediction_table(source, fmt, encoding, skip_lines, header)  # a text file of lines: its column
    # is "text"
    if fmt == "lines" and not result.frame.empty:
        names = [*model_input_columns(kind), *([kind.raw_text_column] if kind.raw_text_column else []),
                 *(trained for _column, trained in trained_columns)]
        if (header := header_fields(str(result.frame["text"].iloc[0]), names)) is not None:
            others = ("the header would get a prediction and the other fields of every line would be read as part of "
                      "its text" if len(header) > 1 else "the header would get a prediction")
            raise UserError(f"input file {path}: line 1 ({excerpt(result.frame['text'].iloc[0], 60)}) is a header "
                            f"naming the column {header[0]!r}, but the file is read as one text a line (lines), so "
                            f"{others}: give --format csv or tsv (or auto, for a .csv/.tsv file), or delete line 1")
    title = _title_lines_hint(source, fmt, encoding, kind, skip_lines, trained_columns)
    if result.malformed:
        first = result.malformed[0]
        one_column = [c for c in result.frame.columns if c not in PROVENANCE_COLUMNS] == ["text"]
        if REPEATS_THE_HEADER in title:  # no title lines to skip: a line to delete
            raise UserError(f"input file {path}: {title.removeprefix('; ')}, then every row gets a prediction")
        if title:
            raise UserError(f"input file {path}: {title.removeprefix('; ')} (read as the header, it left "
                            f"{len(result.malformed)} record(s) unreadable)")
        hint = ("; a text holding the delimiter must be quoted (\"good, really good\"), or give one text a line on "
                "stdin" if one_column and first.get("rule") == "record_has_wrong_field_count" else "")
        detail = first.get("detail") or ""
        # a record's detail names the training config's setting; predict's is its option (dirty-data QA, D4)
        detail = re.sub(r"data\.format(:\s*|\b)", lambda m: "--format" + (" " if m.group(1) else ""), detail)
        if fmt == "conll":  # predict has no data.conll_tag_column: the word is the first field, a tag the last
            detail = detail.replace(" (data.conll_tag_column)", "")
            hint = ("; a CoNLL file to tag holds a word a line, with its tag after it on every line or on none, and "
                    "a blank line after each sentence")
        where = "the sentence starting at line" if fmt == "conll" else "line"
        raise UserError(f"input file {path} has {len(result.malformed)} unreadable record(s), first at {where} "
                        f"{first.get('source_line')} ({first.get('rule')}: {detail}){hint}; fix them so that every "
                        "row gets a prediction")
    gaps = np.flatnonzero(np.diff(result.frame["source_line"].to_numpy()) > 1) if fmt == "xlsx" else []
    if len(gaps):  # a workbook's empty rows are no records (its lines are the sheet's row numbers)
        gap = int(result.frame["source_line"].iloc[gaps[0]]) + 1
        raise UserError(f"input file {path}: row {gap} of its first sheet is empty between records: a batch "
                        "prediction writes one row per input row, in order, so the row would be dropped and the "
                        "output would no longer line up with the sheet; delete the row or fill it")
    if fmt in ("csv", "tsv") and (blank := blank_line_between_records(source, fmt, encoding, skip_lines)) is not None:
        if title:  # a title and a blank line above the header: the blank is no gap
            raise UserError(f"input file {path}: {title.removeprefix('; ')}")
        raise UserError(f"input file {path}: line {blank} is blank (or holds only empty fields) between records: "
                        "a batch prediction writes one row per input row, in order, so the line would be dropped "
                        "and the output would no longer line up with the input; remove the line or fill it")
    columns = model_input_columns(kind)
    found = [c for c in result.frame.columns if c not in PROVENANCE_COLUMNS]
    spelled = {c.strip().lower() for c in found}
    if kind.raw_text_column is not None and columns[0] not in spelled and kind.raw_text_column in spelled:
        columns = [kind.raw_text_column]  # raw text instead of the words (NER: the model splits it)
    renames = {c: c.strip().lower() for c in found  # a ``Text`` header is the ``text`` column, as training reads it
               if c not in columns and c.strip().lower() in columns and c.strip().lower() not in found}
    for column, trained in trained_columns:  # the training data's own name, where the file lacks the model's; in
        # any spelling (``Review``), as the model's own names are matched and as training read the header
        given = next((c for c in found if header_key(c) == header_key(trained) and c not in renames), None)
        if column in columns and column not in found and column not in renames.values() and given is not None:
            renames[given] = column
    as_written = list(found)  # the file's own names, for messages
    if renames:
        result.frame.rename(columns=renames, inplace=True)
        found = [renames.get(c, c) for c in found]
    for column in columns:
        if column not in found:
            raw = f", or {kind.raw_text_column!r} of raw text" if kind.raw_text_column is not None else ""
            trained = [name for model_column, name in trained_columns if model_column in columns]
            raw += f"; or, as its training data named them, {', '.join(map(repr, trained))}" if trained else ""
            advice = title or "; rename the column or pick the right model"
            if not title and trained and all(name.isdigit() for name in trained):
                # columns named by position: the training files had no header row (data.header: false), and the
                # "columns" listed are this file's first record (loop QA: a GoEmotions dev file)
                advice = (f"; the model was trained on files without a header row (data.header: false), and this "
                          f"file's first line is read as its header: put a header line above the records, naming "
                          f"the text column {columns[0]!r}")
            raise UserError(f"input file {path} has no column {column!r}, which a {task} model reads (it needs "
                            f"{', '.join(map(repr, columns))}{raw}; the file has {', '.join(map(repr, as_written))})"
                            f"{advice}")
    clash = clashing_columns(kind, columns, as_written)
    if clash:
        why = "; ".join(f"{c!r} names the model that predicted each row" if header_key(c) in MODEL_COLUMNS else
                        f"{c!r} holds the model's {header_key(c).removeprefix(COLLISION_PREFIX)!r} where the file has "
                        "its own"
                        for c in clash)
        raise UserError(f"input file {path} already has column(s) {', '.join(map(repr, clash))}, which batch "
                        f"prediction writes itself ({why}); rename or drop {'it' if len(clash) == 1 else 'them'}")
    if result.frame.empty:
        raise UserError(f"input file {path} holds no records; give a file with at least one row")
    lines = [int(n) for n in result.frame["source_line"]]
    as_named = {model: given for given, model in renames.items()}  # messages name the column as the file does
    # the first empty record by line over every column, and how many there are: a pair file with an empty second
    # text on line 3 and an empty first text on line 4 was refused for line 4 alone, then for line 3 (predict QA)
    missing = {column: [i for i, v in enumerate(result.frame[column]) if _is_missing(v)] for column in columns}
    first_missing = sorted((rows[0], position) for position, rows in enumerate(missing.values()) if rows)
    empty_rows = len(set().union(*missing.values())) if missing else 0
    for column in ([columns[first_missing[0][1]]] if first_missing else []) + list(columns):
        named = as_named.get(column, column)
        empty = missing[column][0] if missing[column] else None
        if empty is not None:
            if column == "tokens" and "text" in result.frame.columns \
                    and not _is_missing(result.frame["text"].iloc[empty]):
                # serving QA: "no value in column 'tokens' (empty or only spaces)" of a record holding a text
                raise UserError(f"input file {path}: the record on line {lines[empty]} has a 'text' but no "
                                f"{named!r}, while other records have {named!r}: one file gives every record as "
                                f"word lists ({named!r}) or every one as raw text ('text'); split the file in two, or "
                                "write the word lists as text")
            others = (f" ({empty_rows} records lack one; the others are on lines "
                      f"{', '.join(str(lines[i]) for i in sorted(set().union(*missing.values()))[1:6])}"
                      f"{', ...' if empty_rows > 6 else ''})" if empty_rows > 1 else "")
            raise UserError(f"input file {path}: the record on line {lines[empty]} has no value in column "
                            f"{named!r} (empty or only spaces){others}; every row needs one (fill it or drop the row)")
        unseen = next((i for i, v in enumerate(result.frame[column]) if _is_invisible(v)), None)
        if unseen is not None:
            raise UserError(f"input file {path}: the record on line {lines[unseen]} has no visible text in column "
                            f"{named!r} (only invisible characters: {excerpt(result.frame[column][unseen], 40)}); "
                            "every row needs some text (fill it or drop the row)")
    for column in columns:  # a list cell in a text column (JSONL) would be flattened or tagged as garbage; a
        # boolean or an object no text ("input 1 is True", counted from 0, no file or line)
        wrong = next((i for i, v in enumerate(result.frame[column])
                      if (column == "tokens") != isinstance(v, (list, tuple, np.ndarray))
                      or isinstance(v, (bool, np.bool_, dict))), None)
        if wrong is not None:
            want = "a list of words (JSONL/Parquet list)" if column == "tokens" else "one text"
            raise UserError(f"input file {path}: the record on line {lines[wrong]} has "
                            f"{excerpt(result.frame[column][wrong])} in column {as_named.get(column, column)!r}, "
                            f"which must hold {want} per row"
                            + ("; a CSV/TSV cannot hold word lists: give a 'text' column of raw text, or JSONL"
                               if column == "tokens" else ""))
    if "tokens" in columns:  # what training quarantines (tokens_are_list_of_strings, no_empty_tokens); a word that
        # is no string is left to the model, whose refusal names it
        for row, words in enumerate(result.frame["tokens"]):
            blank = next((n for n, w in enumerate(words) if isinstance(w, str) and (not w.strip() or
                                                                                   _is_invisible(w))), None)
            if len(words) == 0 or blank is not None:
                unseen = "; invisible characters alone are no word" if len(words) and words[blank].strip() else ""
                what = ("an empty word list" if len(words) == 0 else
                        f"an empty word at position {blank} ({words[blank]!r}{unseen})")
                raise UserError(f"input file {path}: the record on line {lines[row]} has {what} in column "
                                f"{as_named.get('tokens', 'tokens')!r}; "
                                "every row needs at least one word and every word some text (fix or drop the row)")
    frame = result.frame[found].reset_index(drop=True)
    task_logger().info("read %d rows from %s (columns for the model: %s)", len(frame), path, ", ".join(columns))
    return PredictionInputs(path=path, frame=frame, model_columns=columns, lines=lines, file_names=as_named)


# --- 3. predict and write ---------------------------------------------------------------------------------------

def output_format(path: Path) -> str:
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"output file {path} must end in {', '.join(OUTPUT_FORMATS)}; the extension picks the format")
    return fmt


def tsv_cell_problem(frame: pd.DataFrame, lines: list[int] | None = None) -> str | None:
    """Where a value holds a tab or a line break, which a TSV cell cannot hold (tuneline reads TSV, as GLUE writes it,
    without quote processing), or None. Quoting such cells, as pandas does by default, made an output that read back
    with its quotes doubled inside the texts."""
    for column in frame.columns:
        if column in PROVENANCE_COLUMNS:
            continue
        for position, value in enumerate(frame[column]):
            if isinstance(value, str) and ("\t" in value or "\n" in value or "\r" in value):
                where = f"line {lines[position]}" if lines else f"row {position + 1}"
                return f"the value of column {column!r} on {where} holds a tab or a line break"
    return None


def json_ready(value: Any) -> Any:
    """A JSON-ready Python value (numpy scalars and arrays unwrapped; NaN as null)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class _TableWriter:
    """Appends chunks to a temporary file; :meth:`commit` renames it onto the final path, :meth:`abort` removes it."""

    def __init__(self, final: Path, fmt: str) -> None:
        self.final, self.fmt = final, fmt
        self.temp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.partial")
        self._handle = None if fmt == "parquet" else self.temp.open("w", encoding="utf-8", newline="")
        self._tables: list[Any] = []
        self._header = True

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "parquet":
            import pyarrow as pa

            self._tables.append(pa.Table.from_pandas(frame, preserve_index=False))
        elif self.fmt == "jsonl":
            for record in frame.to_dict(orient="records"):
                self._handle.write(json.dumps(json_ready(record), ensure_ascii=False) + "\n")
        else:
            cells = frame.apply(lambda col: col.map(
                lambda v: json.dumps(json_ready(v), ensure_ascii=False)
                if isinstance(v, (dict, list, tuple, np.ndarray)) else v))
            if self.fmt == "tsv":  # no quoting: a TSV reads back as written (tabs and line breaks were refused)
                if (problem := tsv_cell_problem(cells)) is not None:
                    raise UserError(f"{problem}, which a TSV cell cannot hold; write the output as .csv, .jsonl or "
                                    ".parquet")
                cells.to_csv(self._handle, sep="\t", index=False, header=self._header, quoting=csv.QUOTE_NONE)
            else:
                cells.to_csv(self._handle, sep=",", index=False, header=self._header)
            self._header = False

    def commit(self) -> None:
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.concat_tables(self._tables, promote_options="permissive"), self.temp)
        else:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
        os.replace(self.temp, self.final)

    def abort(self) -> None:
        if self._handle is not None and not self._handle.closed:
            self._handle.close()
        self.temp.unlink(missing_ok=True)


@contextmanager
def atomic_table_writer(path: Path) -> Iterator[_TableWriter]:
    """A writer whose file appears under ``path`` whole, at the end, or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = _TableWriter(path, output_format(path))
    try:
        yield writer
        writer.commit()
    except BaseException:
        writer.abort()
        raise


def output_rows(chunk: pd.DataFrame, output: Any, model_columns: list[str], model: ResolvedModel,
                file_names: dict[str, str] | None = None) -> pd.DataFrame:
    """The chunk's input columns under the file's own names (``file_names``), then the prediction columns (an echo of
    a model column dropped; a name the file already uses prefixed ``predicted_``), then ``model_name`` and
    ``model_version``."""
    predicted = output if isinstance(output, pd.DataFrame) else pd.DataFrame(output)
    if len(predicted) != len(chunk):
        raise RuntimeError(f"{model.uri} returned {len(predicted)} predictions for {len(chunk)} rows")
    if file_names:
        chunk = chunk.rename(columns=file_names)
    predicted = predicted.drop(columns=[c for c in predicted.columns if c in model_columns]).reset_index(drop=True)
    predicted.columns = [output_name(c, chunk.columns) for c in predicted.columns]
    # read_prediction_inputs refused these names up front; a model registered with another pyfunc version may
    # return other columns, and a duplicate name (in any spelling: training reads `Label` as `label`) must never
    # reach a file (CSV twice, JSONL overwritten, Parquet)
    taken = {header_key(c) for c in chunk.columns}
    twice = [c for c in [*predicted.columns, *MODEL_COLUMNS] if header_key(c) in taken]
    if twice:
        raise UserError(f"the input already has column(s) {', '.join(map(repr, twice))}, which {model.uri} "
                        "predicts into; rename or drop them")
    rows = pd.concat([chunk.reset_index(drop=True), predicted], axis=1)
    return rows.assign(model_name=model.name, model_version=model.version)


@pipeline_task(name="predict-to-file")
def predict_to_file(model: ResolvedModel, inputs: PredictionInputs, output_path: str | Path,
                    batch_size: int = 1000) -> BatchPrediction:
    """Predict every row with ``model`` (the resolved version, whatever its alias says meanwhile), ``batch_size``
    rows at a time, and write them in input order to ``output_path`` atomically."""
    import mlflow
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    log = task_logger()
    output = Path(output_path)
    if output_format(output) == "tsv" and (problem := tsv_cell_problem(inputs.frame, inputs.lines)) is not None:
        raise UserError(f"input file {inputs.path}: {problem}, which a TSV cell cannot hold; write the output as "
                        f".csv, .jsonl or .parquet (nothing was predicted)")
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, not {batch_size}")
    if output.resolve() == inputs.path.resolve():
        raise UserError(f"output file {output} is the input file; give another output path")
    mlflow.set_tracking_uri(model.tracking_uri)
    mlflow.set_registry_uri(model.tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(model.uri)
    inputs = replace(inputs, frame=without_foreign_tags(inputs.frame, pyfunc, inputs.path, model.name))
    total, started = len(inputs.frame), time.monotonic()
    with atomic_table_writer(output) as writer:
        for start in range(0, total, batch_size):
            chunk = inputs.frame.iloc[start:start + batch_size]
            try:
                predicted = pyfunc.predict(chunk[inputs.model_columns].reset_index(drop=True))
            except MlflowException as error:
                if error.error_code != "INVALID_PARAMETER_VALUE":
                    raise
                where = refused_record(error.message, inputs.lines, start, len(chunk))
                raise UserError(f"{model.uri} refused {where} of {inputs.path}: {error.message}; fix that record and "
                                f"run again (nothing was written to {output})") from None
            writer.write(output_rows(chunk, predicted, inputs.model_columns, model, inputs.file_names))
            done, elapsed = start + len(chunk), time.monotonic() - started
            log.info("predicted %d/%d rows (%.0f%%), %.1f rows/s", done, total, 100 * done / total,
                     done / elapsed if elapsed > 0 else float("inf"))
    log.info("wrote %d rows predicted by %s v%s to %s in %.1fs", total, model.name, model.version, output,
             time.monotonic() - started)
    return BatchPrediction(output_path=str(output), rows=total, model_name=model.name, model_version=model.version)
