"""Validate NER sentences: the token contract per split, a quarantine that points at the token, the bad-fraction stop.

Same mechanics as :mod:`tuneline.tasks.validate` (pandera failure cases → one quarantine row per sentence and rule,
written before the threshold is checked), plus a ``detail`` naming the 1-based token position and what is wrong
there, so a user can fix the file without re-reading the rule. With ``data.iob1_to_iob2`` the tags are converted
from IOB1 to IOB2 first, instead of every IOB1 sentence being rejected for an I- tag that starts an entity.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tuneline.config import DataConfig
from tuneline.schemas.token_classification import (
    first_problem,
    iob1_to_iob2,
    is_string_list,
    labels_from_tags,
    split_tag,
    token_schema,
)
from tuneline.tasks.common import pipeline_task, task_logger
from tuneline.tasks.load import QUARANTINE_COLUMNS, LoadedData
from tuneline.tasks.tracking import RunContext
from tuneline.tasks.validate import (
    LABEL_SOURCE_ROLES,
    DataValidationError,
    ValidatedData,
    count_rejected,
    enforce_bad_fraction,
    validate_frames,
    write_quarantine,
)


def convert_iob1(frame: pd.DataFrame) -> pd.DataFrame:
    """Rewrite IOB1 tags as IOB2 (rows whose tags are not a list of strings are left for the contract)."""
    return frame.assign(tags=frame["tags"].map(lambda t: iob1_to_iob2(t) if is_string_list(t) else t))


def token_labels(frames: dict[str, pd.DataFrame], configured: list[str] | None) -> list[str]:
    """The configured label set, else the one implied by train's tags ('O', then B-/I- per type); frozen for the run."""
    if configured:
        labels = list(dict.fromkeys(str(label) for label in configured))
        bad = [label for label in labels if split_tag(label)[0] == "?"]
        if bad or "O" not in labels:
            raise DataValidationError(f"data.labels must be IOB2 tags including 'O' (like O, B-PER, I-PER); "
                                      f"{'got ' + str(bad) if bad else 'O is missing'}")
        return labels
    source = next((frames[r] for r in LABEL_SOURCE_ROLES if r in frames), None)
    labels = labels_from_tags(source["tags"]) if source is not None else ["O"]
    if len(labels) < 3:
        raise DataValidationError("found no entity tag (B-X/I-X) in the training data; check data.tags_column / "
                                  "data.conll_tag_column, or set data.labels")
    return labels


def add_positions(quarantine: pd.DataFrame, frames: dict[str, pd.DataFrame], labels: list[str]) -> pd.DataFrame:
    """Fill each quarantine row's ``detail`` with the token position and reason for its rule."""
    if quarantine.empty:
        return quarantine
    lookup = {(role, f, r): (tokens, tags) for role, frame in frames.items()
              for f, r, tokens, tags in zip(frame["source_file"], frame["source_row"], frame["tokens"], frame["tags"])}
    details = [first_problem(rule, *lookup.get((split, f, r), (None, None)), labels)
               for split, f, r, rule in zip(quarantine["split"], quarantine["source_file"], quarantine["source_row"],
                                            quarantine["rule"])]
    return quarantine.assign(detail=details)


@pipeline_task(name="validate-token-data")
def validate_token_data(loaded: LoadedData, config: DataConfig, run_dir: Path,
                        run: RunContext | None = None) -> ValidatedData:
    """Apply the NER contract; write the quarantine; fail when more than ``max_bad_fraction`` is rejected."""
    log = task_logger()
    frames = {role: convert_iob1(frame) if config.iob1_to_iob2 else frame for role, frame in loaded.frames.items()}
    labels = token_labels(frames, config.labels)
    clean, quarantine = validate_frames(frames, labels, token_schema, value_column="text", key_column="text")
    quarantine = add_positions(quarantine, {r: f.reset_index(drop=True) for r, f in frames.items()}, labels)
    quarantine = pd.concat([q for q in (loaded.malformed, quarantine) if len(q)] or [quarantine],
                           ignore_index=True)[QUARANTINE_COLUMNS]
    path = write_quarantine(quarantine, run_dir, run)
    log.info("validated %d sentences: %d rejected (quarantine: %s); labels %s", loaded.total_records,
             count_rejected(quarantine), path, labels)
    enforce_bad_fraction(quarantine, loaded.total_records, config.max_bad_fraction, path, run)
    return ValidatedData(frames=clean, labels=labels, quarantine=quarantine, quarantine_path=path,
                         total_records=loaded.total_records)
