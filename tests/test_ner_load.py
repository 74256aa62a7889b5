"""CoNLL and JSONL readers: edge cases of real files, and CoNLL-2003 as published."""

from __future__ import annotations

import json
import re

import pytest
from conftest import shared_data

from tests_support import run_config
from tuneline.kinds.token_classification import TokenData
from tuneline.kinds.token_classification import read_token_file as read_sentences
from tuneline.tasks.load import DataLoadError, detect_format, load_data


def read_token_file(path, fmt, data):
    frame, bad, seen = read_sentences(path, fmt, data)
    assert seen == len(frame) + len(bad)  # every record accounted for
    return frame, bad


def DataConfig(**data):  # noqa: N802 - the NER data config, named as the tests read it
    return TokenData(**data)


def conll(tmp_path, body: str, name: str = "data.conll"):
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def test_conll_docstart_blank_and_whitespace_only_separators(tmp_path):
    path = conll(tmp_path, "-DOCSTART- -X- -X- O\n\n\nJohn B-PER\nSmith I-PER\n \t \nParis B-LOC\n. O\n"
                           "-DOCSTART- -X- O O\nacme B-ORG\n\n\n\n")
    frame, bad = read_token_file(path, "conll", DataConfig(train=path))
    assert bad == []
    assert frame["tokens"].tolist() == [["John", "Smith"], ["Paris", "."], ["acme"]]
    assert frame["tags"].tolist() == [["B-PER", "I-PER"], ["B-LOC", "O"], ["B-ORG"]]
    assert frame["text"].tolist() == ["John Smith", "Paris .", "acme"]
    assert frame["source_row"].tolist() == [1, 2, 3]  # sentence numbers, DOCSTART not counted
    assert set(frame["source_file"]) == {str(path)}


def test_a_docstart_line_typed_with_a_space_in_a_tab_separated_file_is_skipped(tmp_path):
    """Fields are split at tabs in a tab-separated file (a token may hold a space), so ``-DOCSTART- O`` was one
    field, counted as a sentence and quarantined as conll_line_has_no_tag_column at line 1."""
    path = conll(tmp_path, "-DOCSTART- O\r\n\r\nJohn\tB-PER\r\nlives\tO\r\n\r\nNew York\tB-LOC\r\n.\tO\r\n")
    frame, bad = read_token_file(path, "conll", DataConfig(train=path))
    assert bad == [] and frame["tokens"].tolist() == [["John", "lives"], ["New York", "."]]
    assert frame["source_row"].tolist() == [1, 2]


def test_one_line_without_a_tab_in_a_tab_separated_file_costs_only_its_sentence(tmp_path):
    """Every line held a tab but one ("lonely", its tag missing): the file was read as space-separated, and each
    "New York<TAB>B-LOC" became three fields, 30 of 63 sentences quarantined for one bad line."""
    body = "".join("New York\tB-LOC\nis\tO\nbig\tO\n\n" for _ in range(30)) + "lonely\n\n" + "Paris\tB-LOC\n"
    frame, bad = read_token_file(conll(tmp_path, body), "conll", DataConfig(train=tmp_path / "data.conll"))
    assert len(frame) == 31 and frame["tokens"].iloc[0] == ["New York", "is", "big"]
    assert [(b["rule"], b["source_line"]) for b in bad] == [("conll_line_has_no_tag_column", 121)]


def test_a_line_typed_with_a_space_in_a_tab_separated_file_is_told_to_take_a_tab(tmp_path):
    """QA: ``Germany B-LOC`` among ``word<TAB>tag`` lines was set aside as "has 1 field(s); the tag is read from column
    -1 (data.conll_tag_column)": a line that plainly shows two fields, and a config key that is not the fix."""
    body = "".join("New York\tB-LOC\nis\tO\nbig\tO\n\n" for _ in range(30)) + "Germany B-LOC\nwon\tO\n\n"
    frame, bad = read_token_file(conll(tmp_path, body), "conll", DataConfig(train=tmp_path / "data.conll"))
    assert len(frame) == 30 and [(b["rule"], b["source_line"]) for b in bad] == [("conll_line_has_no_tag_column", 121)]
    assert bad[0]["detail"] == ("in this sentence, line 121 ('Germany B-LOC') has no tab, while the file's other token "
                                "lines are split at tabs (a token may then hold spaces): put a tab between its fields")


def test_conll_without_trailing_newline_and_four_columns(tmp_path):
    path = conll(tmp_path, "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER", "four.txt")
    assert detect_format(path, "auto") == "conll"
    frame, _ = read_token_file(path, "conll", DataConfig(train=path))
    assert frame["tags"].tolist() == [["B-ORG", "O"], ["B-PER"]]
    frame, _ = read_token_file(path, "conll", DataConfig(train=path, conll_tag_column=1))
    assert frame["tags"].tolist() == [["NNP", "VBZ"], ["NNP"]]


def test_conll_line_without_tag_makes_its_sentence_malformed(tmp_path):
    path = conll(tmp_path, "John B-PER\n\nbroken\nline O\n\nParis B-LOC\n")
    frame, bad = read_token_file(path, "conll", DataConfig(train=path))
    assert frame["source_row"].tolist() == [1, 3]
    assert len(bad) == 1
    assert bad[0]["source_row"] == 2 and bad[0]["rule"] == "conll_line_has_no_tag_column"
    assert bad[0]["detail"].startswith("in this sentence, line 3 ('broken') has 1 field(s)")


def test_jsonl_token_lists_with_configured_columns(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [{"words": ["John", "lives"], "ner": ["B-PER", "O"]}, {"words": "not a list", "ner": ["O"]},
            {"ner": ["O"]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n{oops\n")
    config = DataConfig(train=path, tokens_column="words", tags_column="ner")
    frame, bad = read_token_file(path, "jsonl", config)
    assert frame["tokens"].tolist()[0] == ["John", "lives"]
    assert frame["text"].tolist() == ["John lives", None, None]
    assert frame["tokens"].tolist()[2] is None
    assert frame["source_row"].tolist() == [1, 2, 3]
    assert [b["rule"] for b in bad] == ["record_is_not_json"] and bad[0]["source_row"] == 5
    with pytest.raises(DataLoadError, match="data.tokens_column"):
        read_token_file(path, "jsonl", DataConfig(train=path))


def test_load_data_routes_ner_to_the_token_reader(tmp_path):
    path = conll(tmp_path, "John B-PER\n\nbroken\n")
    loaded = load_data.fn(run_config("token_classification", train=path))
    assert loaded.frames["train"]["tokens"].tolist() == [["John"]]
    assert loaded.malformed[["split", "source_row", "rule"]].values.tolist() == [
        ["train", 2, "conll_line_has_no_tag_column"]]
    assert loaded.total_records == 2


def test_conll2003_loads_as_published():
    folder = shared_data("conll2003")
    counts = {}
    for name, expected in (("train", 14041), ("valid", 3250), ("test", 3453)):
        path = folder / f"{name}.txt"
        frame, bad = read_token_file(path, detect_format(path, "auto"), DataConfig(train=path))
        assert bad == []
        counts[name] = len(frame)
        assert (frame["tokens"].map(len) == frame["tags"].map(len)).all()
    assert counts == {"train": 14041, "valid": 3250, "test": 3453}


def test_a_tab_separated_conll_file_keeps_tokens_with_spaces_and_comment_lines_are_no_tokens(tmp_path):
    """A tab-separated file with multi-word tokens ("Peter Blackburn<TAB>B-PER") lost 154 of 400 sentences as
    ragged lines; MultiCoNER's "# id ... domain=en" lines were read as a token '#' tagged 'domain=en', every sentence
    quarantined with advice to set data.labels. A hashtag token '#' heading a sentence stays a token."""
    from tuneline.readers import read_conll

    tabbed = tmp_path / "tab.txt"
    tabbed.write_text("Peter Blackburn\tB-PER\nvisited\tO\nNew York\tB-LOC\n\nHe\tO\nleft\tO\n")
    result = read_conll(tabbed)
    assert result.frame["tokens"].tolist() == [["Peter Blackburn", "visited", "New York"], ["He", "left"]]
    assert result.frame["tags"].tolist() == [["B-PER", "O", "B-LOC"], ["O", "O"]] and result.malformed == []
    commented = tmp_path / "multiconer.txt"
    commented.write_text("# id 1f6e\tdomain=en\nPeter _ _ B-PER\nran _ _ O\n\n"
                         "# id 2a7c\tdomain=en\n# _ _ O\nrocks _ _ O\n")
    result = read_conll(commented)
    assert result.frame["tokens"].tolist() == [["Peter", "ran"], ["#", "rocks"]] and result.malformed == []
    assert result.frame["source_line"].tolist() == [2, 6]
    spaced = tmp_path / "spaced.txt"  # no tab on every line: spaces separate, and a ragged line is still caught
    spaced.write_text("New York B-LOC\nis O\n\nfine O\n")
    assert len(read_conll(spaced).malformed) == 1
    trailing = tmp_path / "trailing-tab.txt"  # a stray tab ending every line separates nothing: space-separated
    trailing.write_text("EU B-ORG\t\nrejects O\t\n\nPeter B-PER\t\nBlackburn I-PER \t\n")
    result = read_conll(trailing)
    assert result.frame["tokens"].tolist() == [["EU", "rejects"], ["Peter", "Blackburn"]] and result.malformed == []
    assert result.frame["tags"].tolist() == [["B-ORG", "O"], ["B-PER", "I-PER"]]


@pytest.mark.parametrize("lines, said", [
    (["EU ORG", "rejects O", "German MISC", "", "Peter PER", "Blackburn PER"],
     "the tags have no B-/I- prefix ('MISC', 'ORG', 'PER': the IO scheme); write the first word of each entity as "
     "B-TYPE"),
    ([f"O word{i}" for i in range(30)] + ["B-PER Peter"],
     "the tag column holds 31 different words ('Peter', 'word0', 'word1', 'word10', ...), not tags: are the token "
     "and tag columns swapped?"),
    # a number among the words read as tags made it say "the tags are numbers (class ids ...)"
    ([f"O word{i}" for i in range(29)] + ["O 1996", "B-PER Peter"],
     "the tag column holds 31 different words ('1996', 'Peter', 'word0', 'word1', ...), not tags: are the token "
     "and tag columns swapped?"),
])
def test_tags_without_an_entity_say_whether_they_are_io_tags_or_words(tmp_path, lines, said):
    """Both ended in "found no entity tag (B-X/I-X) in the training data" and advice to check the tag column."""
    from tests_support import run_config
    from tuneline.tasks.load import load_data
    from tuneline.tasks.validate import DataValidationError, validate_data

    path = tmp_path / "train.txt"
    path.write_text("\n".join(lines) + "\n")
    config = run_config("token_classification", path=path)
    with pytest.raises(DataValidationError, match=re.escape(said)):
        validate_data.fn(load_data.fn(config), config, tmp_path / "run")
