"""What the QA sessions of 2026-12-05 found with users' own files and configs, and in the loop's messages.

1. An HTML page saved under a data file's name (a GitHub page instead of its raw file, a download's error page) was
   read as CSV: "has no column 'text' (its columns: ['<!DOCTYPE html>'])", or "a header but no data records".
2. A boolean given for a number (``batch_size: true``) hid every other mistake of the config: fixing it revealed the
   next one.

Through the real commands (``tuneline validate``, ``tuneline predict``) and config loader.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneline.cli import main
from tuneline.config import ConfigError, load_config
from tuneline.errors import UserError
from tuneline.tasks.predict_batch import read_prediction_inputs

HTML_PAGES = {
    "github.csv": '<!DOCTYPE html>\n<html lang="en" data-color-mode="auto">\n<head><title>data.csv</title></head>\n'
                  "<body><table><tr><td>text,label</td></tr></table></body>\n</html>\n",
    "error.tsv": "\ufeff  <!-- served by nginx -->\n<HTML><head><title>404 Not Found</title></head></HTML>\n",
}


@pytest.mark.parametrize("name", list(HTML_PAGES))
def test_an_html_page_saved_as_a_data_file_is_named_as_one(tmp_path, capsys, name):
    page = tmp_path / name
    page.write_text(HTML_PAGES[name])
    config = tmp_path / "tuneline.yaml"
    config.write_text(f"task: classification\ndata:\n  path: {name}\nwork_dir: out\n")
    assert main(["validate", "-c", str(config)]) == 1
    said = (f"tuneline: input file {page} is an HTML page (a web page saved, or the error page of a failed "
            "download), not a data file: download the file itself (on GitHub, its 'Raw' link) and give that file\n")
    assert capsys.readouterr().err == said
    with pytest.raises(UserError) as refused:  # what predict reads its --input with
        read_prediction_inputs.fn(page, "classification")
    assert f"tuneline: {refused.value}\n" == said


def test_a_csv_whose_text_mentions_html_is_still_read(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"<html> tag number {i},{'ab'[i % 2]}\n" for i in range(40)))
    config = tmp_path / "tuneline.yaml"
    config.write_text("task: classification\ndata:\n  path: d.csv\nwork_dir: out\n")
    assert main(["validate", "-c", str(config)]) == 0


def test_a_boolean_for_a_number_is_listed_with_the_configs_other_mistakes(tmp_path):
    config = tmp_path / "tuneline.yaml"
    config.write_text("task: classification\ndata:\n  path: d.csv\ntrain:\n  epochs: two\n  batch_size: true\n"
                      "  max_steps: no\n")
    with pytest.raises(ConfigError) as error:
        load_config(config)
    assert str(error.value) == ("invalid configuration:\n"
                                "  train.batch_size: expected a number, got the boolean True\n"
                                "  train.epochs: Input should be a valid number, unable to parse string as a number "
                                "(got 'two')\n"
                                "  train.max_steps: expected a number, got the boolean False")
    config.write_text("task: classification\ndata:\n  path: d.csv\ntrain:\n  epochs: yes\n")
    with pytest.raises(ConfigError, match=r"^invalid configuration: train\.epochs: expected a number, got the "
                                          r"boolean True$"):
        load_config(config)
    assert load_config(config, ["train.epochs=2"]).train.epochs == 2


@pytest.mark.parametrize("name", ["reviews.csv", "reviews.parquet", "reviews.csv.gz"])
def test_a_data_file_given_as_the_config_is_named_as_a_data_file(tmp_path, capsys, name):
    """``tuneline validate -c reviews.csv`` said "line 23, column 35 is not valid YAML" (a Parquet file: "byte 0x.. is
    not UTF-8")."""
    data = tmp_path / name
    data.write_bytes(b"text,label\n\"a: b\", c: d,pos\n" if name.endswith(".csv") else b"PAR1\x00\x01PAR1")
    assert main(["validate", "-c", str(data)]) == 2
    assert capsys.readouterr().err == (
        f"tuneline: config file {data} is a data file ({name[name.index('.'):]}), not a YAML config: give the config "
        f"with --config and name the data in it (data.path: {name}); `tuneline show-config` shows every setting\n")


def test_validates_examples_cut_a_long_detail_between_words():
    """``validate``'s ``e.g.`` lines cut a detail at 200 characters, mid-word ("... inside a quoted fiel")."""
    import pandas as pd

    from tuneline.cli import _quarantine_examples

    detail = "a stray quote " + "word " * 60
    quarantine = pd.DataFrame({"rule": ["stray_quote"], "detail": [detail], "source_file": ["d.csv"], "source_line": [7]})
    [line] = _quarantine_examples(quarantine)
    assert line.endswith(" word …") and len(line) < 260, line
    assert line.startswith("  e.g. stray_quote: d.csv line 7: a stray quote word"), line


def test_watch_names_two_free_batches_of_one_file_name_with_their_content_hashes():
    """`watch --once` said "mutant.csv, mutant.csv are free" for a file landed again with new content (loop QA)."""
    from datetime import datetime, timezone

    from tuneline.events import _names
    from tuneline.ledger import Batch

    now = datetime.now(timezone.utc)

    def batch(path: str, content_hash: str) -> Batch:
        return Batch(1, "m", content_hash, path, "file", "csv", 10, 1, "landed", None, now, None, None, None, None,
                     None, None, (), None, None, None, now)

    assert _names([batch("/l/mutant.csv", "a" * 64), batch("/l/mutant.csv", "b" * 64), batch("/l/other.csv", "c" * 64)]
                  ) == f"mutant.csv ({'a' * 12}), mutant.csv ({'b' * 12}), other.csv"
    assert _names([batch("/l/one.csv", "a" * 64)]) == "one.csv"
