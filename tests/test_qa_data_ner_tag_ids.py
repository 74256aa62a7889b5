"""NER tags written as class ids (Hugging Face datasets export ``"ner_tags": [3, 0, 7]``): the error ended "or set
data.labels", which maps nothing (every sentence was then quarantined as "tags must be a list of strings"). It now
names data.tag_names, the tags in id order, and following it reads the ids as their tags through validate; an id past
the last name is quarantined by sentence, saying so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests_support import run_config
from tuneline.cli import main
from tuneline.tasks.load import load_data
from tuneline.tasks.validate import DataValidationError, validate_data

TASK = "token_classification"
CONLL2003 = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
TAGS = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "O"], ["B-ORG", "O", "B-MISC", "I-MISC", "O"]]
TOKENS = [["John{i}", "Smith", "visited", "Paris", "and", "IBM", "."], ["EU{i}", "rejects", "German", "call", "."]]


def hf_rows(prefix: str, count: int) -> list[dict]:
    """Sentences as a Hugging Face ``datasets`` export writes them: ``ner_tags`` as ids into CONLL2003."""
    return [{"id": str(i), "tokens": [t.format(i=f"{prefix}{i}") for t in TOKENS[i % 2]],
             "ner_tags": [CONLL2003.index(tag) for tag in TAGS[i % 2]]} for i in range(count)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def hf_files(tmp_path: Path, train: list[dict] | None = None) -> dict[str, Path]:
    return {"train": write_jsonl(tmp_path / "train.jsonl", train or hf_rows("t", 30)),
            "validation": write_jsonl(tmp_path / "val.jsonl", hf_rows("v", 6)),
            "test": write_jsonl(tmp_path / "test.jsonl", hf_rows("x", 6))}


def validated(config, tmp_path: Path):
    return validate_data.fn(load_data.fn(config), config, tmp_path / "run")


HINT = (": the tags are numbers (class ids, as Hugging Face datasets export ner_tags: [3, 0, 7]); set data.tag_names "
        "to the tags in id order (the dataset's features['ner_tags'].feature.names, e.g. [O, B-PER, I-PER, B-ORG, "
        "I-ORG, B-LOC, I-LOC, B-MISC, I-MISC] for CoNLL-2003), or write the tags as names")


def test_integer_tags_name_data_tag_names_not_data_labels(tmp_path: Path):
    config = run_config(TASK, **hf_files(tmp_path), tags_column="ner_tags")
    with pytest.raises(DataValidationError) as raised:
        validated(config, tmp_path)
    assert str(raised.value) == "found no entity tag (B-X/I-X) in the training data" + HINT


def test_data_labels_beside_integer_tags_says_the_same_instead_of_quarantining_every_sentence(tmp_path: Path):
    config = run_config(TASK, f"data.labels=[{', '.join(CONLL2003)}]", **hf_files(tmp_path), tags_column="ner_tags")
    with pytest.raises(DataValidationError) as raised:
        validated(config, tmp_path)
    assert str(raised.value) == "data.labels lists tag names, and the training data has none" + HINT


def test_following_the_hint_reads_the_ids_as_their_tags(tmp_path: Path):
    config = run_config(TASK, f"data.tag_names=[{', '.join(CONLL2003)}]", **hf_files(tmp_path),
                        tags_column="ner_tags")
    result = validated(config, tmp_path)
    assert result.quarantine.empty
    assert result.frames["train"]["tags"].tolist()[:2] == TAGS
    assert result.frames["test"]["tags"].tolist()[:2] == TAGS
    assert sorted(result.labels) == sorted(["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC",
                                            "I-MISC"])


def test_tag_names_from_a_file_and_an_id_past_the_last_name_is_quarantined_by_sentence(tmp_path: Path):
    (tmp_path / "tags.txt").write_text("\n".join(CONLL2003) + "\n\n")
    train = hf_rows("t", 30)
    train[4]["ner_tags"][2] = 9  # CONLL2003 has ids 0-8
    config = run_config(TASK, **hf_files(tmp_path, train), tags_column="ner_tags",
                        tag_names=str(tmp_path / "tags.txt"))
    result = validated(config, tmp_path)
    assert result.quarantine[["split", "source_row", "rule"]].values.tolist() == [["train", 5, "tag_id_in_range"]]
    assert result.quarantine["detail"].iloc[0] == ("token 3: tag id 9 is past the last of the 9 names in "
                                                   "data.tag_names (ids 0-8): give a name for every id")
    assert len(result.frames["train"]) == 29
    assert result.frames["train"]["tags"].tolist()[:2] == TAGS


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_a_negative_tag_id_is_quarantined_not_read_as_the_last_name(tmp_path: Path, suffix):
    """Python's ``names[-1]``: a ``-1`` tag was kept as I-MISC, an entity no annotator wrote; ``-100`` (what a
    tokenized export writes on sub-word pieces) crashed with an IndexError (dirty-data QA)."""
    train = hf_rows("t", 30)
    train[4]["ner_tags"][2] = -1
    train[7]["ner_tags"][0] = -100
    files = hf_files(tmp_path, train)
    if suffix == "parquet":
        import pandas as pd

        pd.DataFrame(train).to_parquet(tmp_path / "train.parquet")
        files["train"] = tmp_path / "train.parquet"
    config = run_config(TASK, f"data.tag_names=[{', '.join(CONLL2003)}]", "data.max_bad_fraction=0.1", **files,
                        tags_column="ner_tags")
    result = validated(config, tmp_path)
    quarantined = result.quarantine[["source_row", "rule", "detail"]].values.tolist()
    assert quarantined == [
        [5, "tag_id_in_range", "token 3: tag id -1 is negative, and data.tag_names numbers its 9 names from 0 "
                               "(ids 0-8): give every word a tag id in that range"],
        [8, "tag_id_in_range", "token 1: tag id -100 is what a tokenized export writes on the sub-word pieces and "
                               "special tokens a loss ignores: give one tag id per word (the words before "
                               "tokenization), ids 0-8"]]
    assert len(result.frames["train"]) == 28
    assert all(tags in TAGS for tags in result.frames["train"]["tags"])  # every kept sentence as annotated


def test_the_validate_command_end_to_end_with_the_hint_followed(tmp_path: Path, capsys):
    hf_files(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"task": TASK, "work_dir": str(tmp_path / "out"), "data": {
        "train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl", "tags_column": "ner_tags"}}))
    assert main(["validate", "-c", str(config)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert "set data.tag_names to the tags in id order" in line and "data.labels" not in line
    assert main(["validate", "-c", str(config), "--set", f"data.tag_names=[{', '.join(CONLL2003)}]"]) == 0
    out = capsys.readouterr().out
    assert "labels (9): " in out and "B-MISC" in out


def test_tag_names_file_written_as_one_json_list_or_id2label_object_is_read_as_the_names(tmp_path: Path):
    """``json.dump(features["ner_tags"].feature.names, f)`` writes one line, ``["O", "B-PER", ...]``: read by line
    it was one name, and every sentence with an id past 0 was quarantined (exploratory QA). A model config's
    ``id2label`` object ({"0": "O", ...}) is read by id."""
    as_list = tmp_path / "names.json"
    as_list.write_text(json.dumps(CONLL2003))
    as_object = tmp_path / "id2label.json"
    as_object.write_text(json.dumps({str(i): tag for i, tag in reversed(list(enumerate(CONLL2003)))}, indent=2))
    for names in (as_list, as_object):
        config = run_config(TASK, **hf_files(tmp_path), tags_column="ner_tags", tag_names=str(names))
        result = validated(config, tmp_path / names.stem)
        assert result.quarantine.empty
        assert result.frames["train"]["tags"].tolist()[:2] == TAGS


def test_a_json_names_file_that_is_no_list_of_names_is_one_error_saying_what_to_write(tmp_path: Path):
    from tuneline.readers import DataLoadError

    bad = tmp_path / "names.json"
    bad.write_text(json.dumps([0, 1, 2]))
    config = run_config(TASK, **hf_files(tmp_path), tags_column="ner_tags", tag_names=str(bad))
    with pytest.raises(DataLoadError) as raised:
        validated(config, tmp_path)
    assert str(raised.value) == (f"{bad} is JSON but not a list of tag names (nor an object of ids to names): write "
                                 "[\"name 0\", \"name 1\", ...], or one tag name a line (line number = id)")


def test_a_tag_names_file_with_a_header_is_refused_and_one_of_id_tab_name_lines_is_read_by_id(tmp_path: Path):
    """A header line (``label``) shifted every id by one: every sentence was quarantined for tags it does not have,
    the names file never named; ``0<TAB>O`` lines were read as the tags ``0\\tO``, ... (dirty-data QA)."""
    from tuneline.readers import DataLoadError

    with_header = tmp_path / "header.txt"
    with_header.write_text("label\n" + "\n".join(CONLL2003) + "\n")
    config = run_config(TASK, **hf_files(tmp_path), tags_column="ner_tags", tag_names=str(with_header))
    with pytest.raises(DataLoadError) as raised:
        validated(config, tmp_path)
    assert str(raised.value) == (f"{with_header}: its first line 'label' looks like a header, not the tag of id 0: "
                                 "remove that line (data.tag_names: one tag a line, line number = id from 0, e.g. O, "
                                 "B-PER, I-PER, ...)")
    by_id = tmp_path / "by_id.tsv"
    by_id.write_text("".join(f"{i}\t{tag}\n" for i, tag in reversed(list(enumerate(CONLL2003)))))
    config = run_config(TASK, **hf_files(tmp_path), tags_column="ner_tags", tag_names=str(by_id))
    result = validated(config, tmp_path / "by_id")
    assert result.quarantine.empty
    assert result.frames["train"]["tags"].tolist()[:2] == TAGS
