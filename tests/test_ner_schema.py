"""The NER data contract: IOB2 order, label set, lengths, empty tokens, leakage; IOB1 conversion; quarantine detail."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from tests_support import run_config
from tuneline.schemas.token_classification import iob1_to_iob2, iob2_violations, labels_from_tags, token_schema
from tuneline.tasks.load import QUARANTINE_COLUMNS, LoadedData
from tuneline.tasks.validate import DataValidationError, apply_schema, validate_data

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def sentences(rows: list[tuple[object, object]], source: str = "f.conll") -> pd.DataFrame:
    return pd.DataFrame({
        "tokens": [r[0] for r in rows], "tags": [r[1] for r in rows],
        "text": [" ".join(r[0]) if isinstance(r[0], list) else None for r in rows],
        "source_file": source, "source_row": list(range(1, len(rows) + 1))})


def test_iob2_violations_point_at_the_token():
    assert iob2_violations(["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]) == []
    assert [p for p, _ in iob2_violations(["I-PER", "O", "I-LOC", "B-PER", "I-LOC"])] == [0, 2, 4]


def test_iob1_to_iob2():
    # IOB1: I- everywhere, B- only where an entity directly follows one of the same type
    assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-PER"]) == [
        "B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-PER"]
    assert iob1_to_iob2(["B-PER", "I-PER", "I-LOC"]) == ["B-PER", "I-PER", "B-LOC"]
    assert iob1_to_iob2(["O", "O"]) == ["O", "O"]


def test_labels_from_tags_are_o_first_and_complete_per_type():
    assert labels_from_tags([["B-PER", "O"], ["B-LOC", "I-LOC"], ["PER"], None]) == LABELS


def test_schema_names_each_broken_rule():
    frame = sentences([
        (["John", "Smith"], ["B-PER", "I-PER"]),       # fine
        (["John", "Smith"], ["O", "I-PER"]),           # I- after O
        (["Paris"], ["B-CITY"]),                        # not in the label set
        (["Paris", "is"], ["B-LOC"]),                   # lengths differ
        (["Paris", " "], ["B-LOC", "O"]),               # whitespace token
        ("Paris", ["B-LOC"]),                           # not a list
    ])
    clean, quarantine = apply_schema(frame, token_schema(LABELS), "train")
    assert clean["source_row"].tolist() == [1]
    assert sorted(zip(quarantine["source_row"], quarantine["rule"])) == [
        (2, "valid_iob2"), (3, "tag_in_label_set"), (4, "tokens_and_tags_same_length"), (5, "no_empty_tokens"),
        (6, "tokens_are_list_of_strings")]


def test_a_token_of_only_invisible_characters_is_no_token():
    """A zero-width space or a soft hyphen as a token: the tokenizer makes no subword of it, so its tag (the B- of
    an entity) vanished from training and scoring while the sentence was kept as it was."""
    frame = sentences([(["\u00ad", "Smith", "left"], ["B-PER", "I-PER", "O"]),
                       (["a", "\u200b", "b"], ["O", "B-LOC", "O"]),
                       (["Jo\u00adhn", "left"], ["B-PER", "O"])])  # a soft hyphen inside a word is a word
    clean, quarantine = apply_schema(frame, token_schema(LABELS), "train")
    assert clean["source_row"].tolist() == [3]
    assert quarantine[["source_row", "rule"]].values.tolist() == [[1, "no_empty_tokens"], [2, "no_empty_tokens"]]


def test_a_token_of_only_replacement_or_private_use_characters_is_no_token():
    """U+FFFD (what a wrong decoding leaves) or a private-use character as a token: MiniLM's tokenizer makes no
    subword of either, so an entity tagged on it was never learnt (MISC recall 0, no warning: exploratory QA). A
    word with one such character inside is still a word, and the tokenizer keeps the rest of it."""
    from transformers import AutoTokenizer

    from tuneline.runtime import resolve_base_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model("minilm"))
    words = ["\ufffd", "\ue000\ue001", "\U000f0000", "caf\ufffd"]
    encoded = tokenizer(words, is_split_into_words=True)
    assert sorted({w for w in encoded.word_ids() if w is not None}) == [3]  # the premise: the first three vanish
    frame = sentences([(["Paris", "\ufffd"], ["B-LOC", "B-MISC"]), (["\ue000\ue001", "x"], ["B-MISC", "O"]),
                       (["\U000f0000"], ["O"]), (["caf\ufffd", "Paris"], ["O", "B-LOC"])])
    clean, quarantine = apply_schema(frame, token_schema([*LABELS, "B-MISC", "I-MISC"]), "train")
    assert clean["source_row"].tolist() == [4]
    assert quarantine[["source_row", "rule"]].values.tolist() == [[1, "no_empty_tokens"], [2, "no_empty_tokens"],
                                                                 [3, "no_empty_tokens"]]
    from tuneline.schemas.token_classification import _token_problems

    (position, said), = _token_problems(["Paris", "\ufffd"])
    assert position == 1 and "U+FFFD" in said and "data.encoding" in said
    assert "private-use" in _token_problems(["\ue000\ue001", "x"])[0][1]


def test_a_token_of_only_combining_marks_is_no_token():
    """An accent or an emoji's variation selector written apart as a token of its own: MiniLM's uncased tokenizer
    made no subword of it (word_ids skipped it), so its tag was dropped silently (exploratory QA). A word carrying
    its marks (a decomposed ``José``, ``❤️``) is a word."""
    frame = sentences([(["Paris", "\u0301", "London"], ["B-LOC", "O", "B-LOC"]),
                       (["I", "\ufe0f", "Berlin"], ["O", "O", "B-LOC"]),
                       (["Jose\u0301", "\u2764\ufe0f", "Paris"], ["B-PER", "O", "B-LOC"])])
    clean, quarantine = apply_schema(frame, token_schema(LABELS), "train")
    assert clean["source_row"].tolist() == [3]
    assert quarantine[["source_row", "rule"]].values.tolist() == [[1, "no_empty_tokens"], [2, "no_empty_tokens"]]
    from tuneline.schemas.token_classification import only_marks

    assert [only_marks(t) for t in ("\u0301", "\ufe0f\u200b", "Jose\u0301", "\u2764\ufe0f", "", "a")] == [
        True, True, False, False, False, False]


def test_raw_text_keeps_an_emoji_and_its_selector_one_word():
    from tuneline.pyfunc.token_tagger import split_words

    assert [w for w, _, _ in split_words("I \u2764\ufe0f Paris")] == ["I", "\u2764\ufe0f", "Paris"]
    assert [w for w, _, _ in split_words("Jose\u0301 called 1\u20e3")] == ["Jose\u0301", "called", "1\u20e3"]
    assert [(s, e) for _, s, e in split_words("I \u2764\ufe0f Paris")] == [(0, 1), (2, 4), (5, 10)]


def test_leakage_rule_for_test_sentences():
    frame = sentences([(["John", "Smith"], ["B-PER", "I-PER"]), (["Paris"], ["B-LOC"])])
    clean, quarantine = apply_schema(frame, token_schema(LABELS, ["John Smith"]), "test")
    assert clean["text"].tolist() == ["Paris"]
    assert quarantine["rule"].tolist() == ["sentence_not_in_train"]


def loaded(frames: dict[str, pd.DataFrame]) -> LoadedData:
    return LoadedData(frames=frames, sources=[], malformed=pd.DataFrame(columns=QUARANTINE_COLUMNS))


def good(n: int) -> list[tuple[list[str], list[str]]]:
    return [([f"w{i}", "Paris"], ["O", "B-LOC"]) for i in range(n)] + [(["John", "Smith"], ["B-PER", "I-PER"])]


def test_quarantine_carries_file_sentence_position_and_rule(tmp_path):
    train = sentences(good(30) + [(["Paris", "John", "Smith"], ["B-LOC", "O", "I-PER"])], "train.conll")
    test = sentences([(["John", "Smith"], ["B-PER", "I-PER"]), (["Rome"], ["B-LOC"])], "test.conll")
    result = validate_data.fn(loaded({"train": train, "test": test}),
                                    run_config("token_classification", train=tmp_path / "x", max_bad_fraction=0.2,
                                               min_examples_per_label=1), tmp_path)
    assert result.labels == LABELS
    q = pd.read_csv(result.quarantine_path)
    rows = {(r.split, r.source_file, r.source_row, r.rule): r.detail for r in q.itertuples()}
    assert set(rows) == {("train", "train.conll", 32, "valid_iob2"),
                         ("test", "test.conll", 1, "sentence_not_in_train")}
    assert rows[("train", "train.conll", 32, "valid_iob2")].startswith("token 3 ('Smith'): I-PER follows O")
    assert result.frames["test"]["text"].tolist() == ["Rome"]
    assert len(result.frames["train"]) == 31


def test_iob1_option_converts_instead_of_rejecting(tmp_path):
    iob1 = sentences([(["John", "Smith", "in", "Paris"], ["I-PER", "I-PER", "O", "I-LOC"])] * 3)
    with pytest.raises(DataValidationError, match="valid_iob2"):
        validate_data.fn(loaded({"train": iob1}), run_config("token_classification", train=tmp_path / "x"), tmp_path)
    result = validate_data.fn(loaded({"train": iob1}), run_config("token_classification", train=tmp_path / "x", iob1_to_iob2=True),
                                    tmp_path)
    assert result.rejected_records == 0
    assert result.frames["train"]["tags"].tolist()[0] == ["B-PER", "I-PER", "O", "B-LOC"]
    assert result.labels == LABELS


def test_configured_labels_must_be_iob2(tmp_path):
    with pytest.raises(DataValidationError, match="IOB2"):
        validate_data.fn(loaded({"train": sentences(good(2))}),
                               run_config("token_classification", train=tmp_path / "x", labels=["PER", "LOC"]), tmp_path)


# --- sentences without tokens or tags (JSONL null / missing field) ---------------------------------------------------


def write_jsonl(path: Path, records: list[dict]) -> Path:
    import json

    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def test_sentences_without_tags_or_tokens_are_quarantined_with_their_rule(tmp_path):
    """``"tags": null`` or no ``tags`` field (likewise tokens) used to pass the contract, whose nullable columns let
    pandera skip the list rules, and then broke label_distribution with a TypeError."""
    from tuneline.kinds import KINDS

    kind = KINDS["token_classification"]
    records = [{"tokens": tokens, "tags": tags} for tokens, tags in good(30)]  # rows 1-31
    records += [{"tokens": ["a", "b"], "tags": None},                         # 32: null tags
                {"tokens": ["c"]},                                           # 33: no tags field
                {"tokens": None, "tags": ["O"]},                             # 34: null tokens
                {"tags": ["O"]}]                                             # 35: no tokens field
    path = write_jsonl(tmp_path / "train.jsonl", records)
    config = run_config("token_classification", train=path, max_bad_fraction=0.2, min_examples_per_label=1)
    read = kind.read(path, "jsonl", config.data)
    result = validate_data.fn(loaded({"train": read.frame}), config, tmp_path)
    q = result.quarantine
    assert sorted(zip(q["source_row"], q["rule"], q["column"])) == [
        (32, "tags_are_list_of_strings", "tags"), (33, "tags_are_list_of_strings", "tags"),
        (34, "tokens_are_list_of_strings", "tokens"), (35, "tokens_are_list_of_strings", "tokens")]
    details = dict(zip(q["source_row"], q["detail"]))
    assert details[32].startswith("tags are missing (null, or no tags field in the record)")
    assert details[35].startswith("tokens are missing (null, or no tokens field in the record)")
    assert result.frames["train"]["source_row"].tolist() == list(range(1, 32))
    assert kind.label_distribution(result.frames["train"]) == {"B-LOC": 30, "B-PER": 1, "I-PER": 1, "O": 30}


def test_missing_token_fields_are_named_as_the_file_names_them(tmp_path):
    """With ``data.tokens_column: words`` a record without ``words`` was told it had "no tokens field"."""
    from tuneline.kinds import KINDS

    kind = KINDS["token_classification"]
    records = [{"words": tokens, "ner": tags} for tokens, tags in good(30)]
    records += [{"words": ["a", "b"]}, {"ner": ["O"]}, {"words": "a b", "ner": ["O", "O"]}]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    config = run_config("token_classification", train=path, max_bad_fraction=0.2, min_examples_per_label=1,
                        tokens_column="words", tags_column="ner")
    read = kind.read(path, "jsonl", config.data)
    q = validate_data.fn(loaded({"train": read.frame}), config, tmp_path).quarantine
    assert sorted(zip(q["source_row"], q["column"], q["detail"])) == [
        (32, "ner", "tags are missing (null, or no 'ner' field in the record): a sentence needs a tags list"),
        (33, "words", "tokens are missing (null, or no 'words' field in the record): a sentence needs a tokens list"),
        (34, "words", "tokens ('words') must be a non-empty list of strings, got 'a b'")]


def test_label_distribution_counts_only_tag_lists():
    """The landed-batch check counts tags before the contract: a sentence without a tag list adds nothing (it used
    to raise, and the whole batch's count came back empty)."""
    from tuneline.kinds import KINDS

    frame = sentences([(["John", "Smith"], ["B-PER", "I-PER"]), (["x"], None), (["y"], "O"), (["z"], float("nan")),
                       (["Paris"], ["B-LOC"])])
    assert KINDS["token_classification"].label_distribution(frame) == {"B-LOC": 1, "B-PER": 1, "I-PER": 1}


def test_null_tags_and_tokens_break_the_list_rules_in_the_contract():
    frame = sentences([(["John", "Smith"], ["B-PER", "I-PER"]), (["Paris"], None), (None, ["O"]),
                       (["Rome"], float("nan"))])
    clean, quarantine = apply_schema(frame, token_schema(LABELS), "train")
    assert clean["source_row"].tolist() == [1]
    assert sorted(zip(quarantine["source_row"], quarantine["rule"])) == [
        (2, "tags_are_list_of_strings"), (3, "tokens_are_list_of_strings"), (4, "tags_are_list_of_strings")]


def test_numeric_tags_are_named_as_the_reason_no_entity_tag_was_found(tmp_path):
    """Hugging Face exports ``ner_tags`` as class ids; the run said only "found no entity tag"."""
    from tuneline.kinds import KINDS

    kind = KINDS["token_classification"]
    path = write_jsonl(tmp_path / "train.jsonl", [{"tokens": tokens, "tags": [i % 3 for i in range(len(tokens))]}
                                                  for tokens, _ in good(30)])
    config = run_config("token_classification", train=path)
    read = kind.read(path, "jsonl", config.data)
    with pytest.raises(DataValidationError, match=r"found no entity tag \(B-X/I-X\) in the training data: the tags "
                                                  r"are numbers \(class ids"):
        validate_data.fn(loaded({"train": read.frame}), config, tmp_path)


def test_an_entity_type_mentioned_less_than_min_examples_is_refused_not_learned(tmp_path):
    """One mistyped tag (``Foo B-XYZ``) became the entity type XYZ: B-XYZ and I-XYZ in the registered model's labels,
    with only a warning that test had none. Like a stray classification label, it is now refused in one line; a
    mention is an entity as conlleval counts it, so an I-X that starts an entity counts too."""
    from tuneline.kinds.classification import LabelSetError
    from tuneline.kinds.token_classification import refuse_rare_types

    train = sentences(good(30) + [(["John", "Smith"], ["B-PER", "I-PER"])] * 2 + [(["Foo"], ["B-XYZ"])])
    with pytest.raises(DataValidationError, match=r"entity type\(s\) 'XYZ' \(1 mention\) occur fewer than "
                                                  r"data.min_examples_per_label=3 times .* list the real tags in "
                                                  r"data.labels"):
        validate_data.fn(loaded({"train": train}), run_config("token_classification", train=tmp_path / "x"), tmp_path)
    tags = [["I-ORG", "I-ORG", "O", "I-ORG"], ["B-ORG", "I-ORG", "B-ORG"]]  # 2 entities + 2 entities
    refuse_rare_types(tags, 4)
    with pytest.raises(LabelSetError, match=r"'ORG' \(4 mentions\)"):
        refuse_rare_types(tags, 5)
    configured = run_config("token_classification", train=tmp_path / "x", labels=[*LABELS, "B-XYZ", "I-XYZ"])
    result = validate_data.fn(loaded({"train": train}), configured, tmp_path / "configured")
    assert result.labels == [*LABELS, "B-XYZ", "I-XYZ"]  # a listed type is the user's decision


def test_a_rare_entity_type_names_its_tokens_lines_and_the_type_it_resembles(tmp_path):
    """A 'B-PERS' typo twice among thousands of CoNLL lines: the error named no line, so the user grepped (QA)."""
    from tuneline.tasks.load import load_data

    lines = ["-DOCSTART- O", ""]
    for i in range(30):
        lines += [f"John{i} B-PER", "met O", f"Acme{i} B-ORG", "Corp I-ORG", "in O", f"Paris{i} B-LOC", ""]
    lines[2 + 7 * 12 + 5] = "Berlin B-PERS"   # sentence 13's sixth token
    lines[2 + 7 * 20] = "Levy B-PERS"         # sentence 21's first token
    path = tmp_path / "train.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = run_config("token_classification", train=path)
    with pytest.raises(DataValidationError) as raised:
        validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    said = str(raised.value)
    assert "entity type(s) 'PERS' (2 mentions; 'PER'?) occur fewer than" in said
    assert said.endswith(f"(first rows: 'PERS' at {path} line {2 + 7 * 12 + 5 + 1}, line {2 + 7 * 20 + 1})")
    # the lines named are the typo's own lines
    named = [int(n) for n in re.findall(r"line (\d+)", said.rsplit("(first rows: ", 1)[1])]
    assert [lines[n - 1] for n in named] == ["Berlin B-PERS", "Levy B-PERS"]


def test_a_type_written_without_its_prefix_in_some_sentences_is_named_as_the_io_scheme(tmp_path):
    """'ORG' alone in every third sentence was "not in the label set ... set data.labels to change the set", advice
    that would make ORG a class of its own (QA)."""
    from tuneline.tasks.load import load_data

    blocks = [f"EU{i} B-ORG\nrejects O\nGerman{i} B-MISC\ncall O\nby O\nFischler{i} B-PER\n" for i in range(30)]
    blocks[4] = "EU ORG\nrejects O\nGerman MISC\ncall O\n"
    path = tmp_path / "train.txt"
    path.write_text("\n".join(blocks), encoding="utf-8")
    config = run_config("token_classification", path=path)
    result = validate_data.fn(load_data.fn(config), config, tmp_path / "run")
    (rule, detail), = result.quarantine[["rule", "detail"]].values.tolist()
    assert rule == "tag_in_label_set"
    assert detail == ("token 1 ('EU', line 29): tag 'ORG' has no B-/I- prefix, but ORG is an entity type of the set "
                      "(the IO scheme in this sentence): write the first word of each entity as B-ORG and the words "
                      "after it as I-ORG (IOB2) (+1 more in this sentence)")
