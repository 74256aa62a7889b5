"""The generated demo data: deterministic, free of duplicates, imbalanced, noisy by the documented amount, and the
follow-up batches of the retraining walkthrough disjoint from it and from each other, shifted only when asked.

No model is trained here: these are properties of the files, checked in well under a second each.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest

from tuneline import demo
from tuneline.demo import (BASE_ROWS, DOMINANT_INTENT, INTENTS, LABEL_NOISE, LABEL_SHARES, NEW_INTENT, batch_tickets,
                           demo_config_dict, demo_tickets, write_demo_batch, write_demo_csv)
from tuneline.drift import label_shift, text_length_shift, unseen_labels


def key(text: str) -> str:
    return " ".join(text.casefold().split())


def words(text: str) -> set[str]:
    return set(re.findall(r"\b[a-z]+\b", text.casefold()))


def keys(tickets) -> set[str]:
    return {key(t.text) for t in tickets}


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_same_seed_writes_identical_bytes_and_another_seed_other_data(tmp_path):
    assert write_demo_csv(tmp_path / "a.csv").read_bytes() == write_demo_csv(tmp_path / "b.csv").read_bytes()
    assert write_demo_csv(tmp_path / "c.csv", seed=8).read_bytes() != (tmp_path / "a.csv").read_bytes()
    first, again = write_demo_batch(tmp_path / "b1.csv", 1), write_demo_batch(tmp_path / "b1-again.csv", 1)
    assert first.read_bytes() == again.read_bytes()
    shifted = write_demo_batch(tmp_path / "b1-shift.csv", 1, shift="new_label")
    assert shifted.read_bytes() == write_demo_batch(tmp_path / "b1-shift-again.csv", 1, shift="new_label").read_bytes()
    assert write_demo_batch(tmp_path / "b1-seed8.csv", 1, seed=8).read_bytes() != first.read_bytes()


def test_columns_and_label_set_are_what_the_demo_config_reads(tmp_path):
    config = demo_config_dict(tmp_path / "tickets.csv")
    assert config["data"]["labels"] == ["billing", "shipping", "technical", "account"] == INTENTS
    base = read_rows(write_demo_csv(tmp_path / "tickets.csv"))
    batch = read_rows(write_demo_batch(tmp_path / "batch.csv", 1))
    assert base[0] == batch[0] == [config["data"]["text_column"], config["data"]["label_column"]]
    assert {row[1] for row in batch[1:]} == set(INTENTS)


def test_base_file_has_unique_clean_texts_and_only_the_planted_broken_rows(tmp_path):
    tickets = demo_tickets()
    assert len(tickets) == BASE_ROWS and len(keys(tickets)) == BASE_ROWS  # unique even ignoring case and spaces
    rows = read_rows(write_demo_csv(tmp_path / "tickets.csv"))[1:]
    assert len(rows) == BASE_ROWS + 8  # 7 broken rows and one record with a third field
    texts = Counter(row[0] for row in rows)
    repeated = {text: n for text, n in texts.items() if n > 1}
    assert len(repeated) == 3 and set(repeated.values()) == {2}  # one conflicting pair, two exact duplicates


def test_keyword_variant_for_tiny_model_tests_is_the_earlier_demo_data_byte_for_byte(tmp_path):
    data = write_demo_csv(tmp_path / "keywords.csv", realistic=False)
    assert hashlib.sha256(data.read_bytes()).hexdigest() == \
        "622d1a7ee05447230c9f36856605aeb1603841ddac44b534dfdbbf6826c654ae"
    assert len(read_rows(data)) == 1 + BASE_ROWS + 8  # the same broken rows as the realistic file


def test_labels_are_imbalanced_but_every_label_has_enough_rows():
    counts = Counter(t.intent for t in demo_tickets())
    assert set(counts) == set(INTENTS)
    assert min(counts.values()) >= 130
    assert max(counts.values()) >= 1.8 * min(counts.values())
    for intent, share in LABEL_SHARES.items():
        assert counts[intent] / BASE_ROWS == pytest.approx(share, abs=0.04)


def test_label_noise_is_one_ticket_in_25_as_documented():
    tickets = demo_tickets()
    assert sum(t.mislabeled for t in tickets) == int(BASE_ROWS * LABEL_NOISE)  # 38 of 960
    assert all(t.intent in INTENTS for t in tickets)  # noise never invents a label
    batch = batch_tickets(1)
    assert sum(t.mislabeled for t in batch) / len(batch) == pytest.approx(LABEL_NOISE, abs=0.02)


def test_tickets_are_ambiguous_misspelt_of_varied_length_and_share_vocabulary():
    tickets = demo_tickets()
    assert 0.10 <= sum(t.ambiguous for t in tickets) / len(tickets) <= 0.20
    written = [*demo.TEMPLATES.values(), *demo.AMBIGUOUS.values(), *demo.SHORT.values(), *demo.DETAILS.values(),
               *demo.SLOTS.values(), demo.CONTEXT, demo.OPENERS, demo.CLOSERS, demo.SHORT_OPENERS, demo.SHORT_CLOSERS]
    vocabulary = set().union(*(words(text) for table in written for text in table)) | {"pls", "nr", "no"}
    misspelt = [t for t in tickets if words(t.text) - vocabulary]  # a word no template has: a typo
    assert 0.15 <= len(misspelt) / len(tickets) <= 0.35  # "about a quarter"
    lengths = [len(t.text.split()) for t in tickets]
    assert min(lengths) <= 2 and max(lengths) >= 30
    assert sum(n <= 5 for n in lengths) >= 0.05 * len(lengths) and sum(n >= 20 for n in lengths) >= 0.1 * len(lengths)
    clear = [t for t in tickets if not t.ambiguous and not t.mislabeled]
    for word in ("order", "account", "address", "plan", "update"):  # domain words, not only greetings
        intents_using_it = {t.intent for t in clear if word in words(t.text)}
        assert len(intents_using_it) >= 3, (word, intents_using_it)


def test_batches_are_disjoint_from_the_base_file_and_from_each_other_whatever_their_size():
    base = keys(demo_tickets())
    batches = [batch_tickets(1), batch_tickets(2, rows=600), batch_tickets(3), batch_tickets(4, shift="one_label"),
               batch_tickets(5, shift="new_label")]
    seen = set(base)
    for batch in batches:
        texts = keys(batch)
        assert len(texts) == len(batch)  # no duplicate within the batch
        assert not texts & seen
        seen |= texts
    # sizes do not matter: the largest batch 1 and batch 2 still share nothing
    assert not keys(batch_tickets(1, rows=900)) & keys(batch_tickets(2, rows=900))


def test_plain_batches_have_the_base_distribution():
    base = demo_tickets()
    reference = Counter(t.intent for t in base)
    for number in (1, 2, 3):
        batch = batch_tickets(number)
        assert len(batch) == 300
        assert label_shift(reference, Counter(t.intent for t in batch)).status == "ok"
        assert text_length_shift([len(t.text) for t in base], [len(t.text) for t in batch]).status == "ok"


def test_a_one_label_batch_is_dominated_by_that_label():
    reference = Counter(t.intent for t in demo_tickets())
    batch = Counter(t.intent for t in batch_tickets(1, shift="one_label"))
    assert batch[DOMINANT_INTENT] / sum(batch.values()) == pytest.approx(0.6, abs=0.01)
    assert reference[DOMINANT_INTENT] / sum(reference.values()) < 0.4
    assert set(batch) == set(INTENTS)
    assert label_shift(reference, batch).status == "warn"


def test_a_new_label_batch_brings_cancellation_which_the_base_data_never_has():
    reference = Counter(t.intent for t in demo_tickets())
    tickets = batch_tickets(1, shift="new_label")
    batch = Counter(t.intent for t in tickets)
    assert NEW_INTENT not in reference and batch[NEW_INTENT] == 75  # a quarter of 300
    assert unseen_labels(reference, batch, allow_growth=False).status == "stop"
    assert all("cancel" in key(t.text) for t in tickets if t.intent == NEW_INTENT)
    assert not any("cancel" in key(t.text) for t in demo_tickets())


def test_batch_arguments_are_checked_with_a_message_saying_what_to_change():
    with pytest.raises(ValueError, match="batch number"):
        batch_tickets(0)
    with pytest.raises(ValueError, match="rows must be"):
        batch_tickets(1, rows=0)
    with pytest.raises(ValueError, match="shift must be"):
        batch_tickets(1, shift="shipping")
    with pytest.raises(ValueError, match="ask for fewer rows"):
        batch_tickets(1, rows=1400, shift="one_label")


def test_a_failed_demo_batch_leaves_the_landing_folder_as_it_was(tmp_path, capsys):
    """`tuneline demo-batch` writes into a landing folder where batches have landed: bad arguments are refused with
    one line before anything is opened (an already-landed batch 3 is not truncated, batch 11 leaves no header-only
    file), and a good call writes under a temporary name, renames, then touches the marker."""
    from tuneline.cli import main

    landing = tmp_path / "landing"
    assert main(["demo-batch", str(landing), "-n", "3"]) == 0
    landed = landing / "tickets-batch-003.csv"
    marker = landing / "tickets-batch-003.csv.done"
    content = landed.read_bytes()
    assert len(read_rows(landed)) == 301 and marker.stat().st_mtime_ns >= landed.stat().st_mtime_ns
    capsys.readouterr()

    assert main(["demo-batch", str(landing), "-n", "3", "--rows", "5000"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tuneline: rows=5000") and "ask for fewer rows (up to 1200 always fit)" in err
    assert "\n" not in err  # one line, no traceback
    assert main(["demo-batch", str(landing), "-n", "11"]) == 2  # a usage error, as argparse's
    assert "batch number must be between 1 and 10, got 11" in capsys.readouterr().err
    assert landed.read_bytes() == content  # the landed batch is untouched
    assert sorted(p.name for p in landing.iterdir()) == ["tickets-batch-003.csv", "tickets-batch-003.csv.done"]
    assert main(["demo-batch", str(tmp_path / "never-made"), "-n", "0"]) == 2
    assert main(["demo-batch", str(tmp_path / "never-made"), "-n", "1", "--rows", "0"]) == 2
    assert "rows must be 1 or more, got 0 (--rows)" in capsys.readouterr().err
    assert not (tmp_path / "never-made").exists()  # nothing created for a refused call

    assert main(["demo-batch", str(landing), "-n", "3"]) == 0  # the same batch again: the same bytes, in place
    assert landed.read_bytes() == content and not list(landing.glob(".*"))


def test_the_row_range_in_the_help_fits_every_batch_number():
    """The -n/--rows ranges `tuneline demo-batch --help` states hold for every batch number and shift."""
    from tuneline.cli import build_parser

    for number in range(1, demo.MAX_BATCHES + 1):
        assert len(batch_tickets(number, rows=demo.MAX_BATCH_ROWS)) == demo.MAX_BATCH_ROWS
        assert len(batch_tickets(number, rows=demo.MAX_BATCH_ROWS, shift="new_label")) == demo.MAX_BATCH_ROWS
        assert len(batch_tickets(number, rows=demo.MAX_ONE_LABEL_ROWS, shift="one_label")) == demo.MAX_ONE_LABEL_ROWS
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    helps = " ".join(" ".join((a.help or "").split()) for a in sub.choices["demo-batch"]._actions)
    assert f"1 to {demo.MAX_BATCHES}" in helps and f"up to {demo.MAX_BATCH_ROWS} always fit" in helps
    assert f"({demo.MAX_ONE_LABEL_ROWS} with --shift one_label)" in helps
