"""Frames reach a served model by column name, JSON or Parquet (serving QA of stop 54).

* A ``dataframe_split`` without ``columns`` was read by position: ``[id, text, text_pair]`` was answered 200 as the
  pair ``(id, text)``, ``[id, text]`` with the score of the id. It is refused now, naming the columns to give.
* A Parquet frame was not read by name: ``[id, text]`` was refused ("predict got a column named 'id'") though it has
  ``text``, which the same frame as JSON was answered by; an NER frame with one column of any name was tagged as if
  it were ``text``. Parquet frames are now cut to the model's columns by name, or refused naming them.

Tiny random heads on the conftest BERT, registered and loaded back from the registry; the app is
``tuneline serve-model``'s. The labels are meaningless: what is checked is the status, the message, and that an
accepted frame answers exactly what its plain form answers.
"""

from __future__ import annotations

import io

import pandas as pd
import pytest

from test_serving_inputs import served_client, store  # noqa: F401 - store is a fixture
from test_serving_inputs_qa import PAIRS, TEXTS, models  # noqa: F401 - models is a fixture


@pytest.fixture
def client(models, monkeypatch):  # noqa: F811 - the module's fixture of that name
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
    return lambda task: served_client(models[task], task)


def parquet(frame: pd.DataFrame) -> dict:
    body = io.BytesIO()
    frame.to_parquet(body, index=False)
    return {"content": body.getvalue(), "headers": {"Content-Type": "application/vnd.apache.parquet"}}


@pytest.mark.parametrize("task, rows, named", [
    ("classification", [["id-17", TEXTS[0]]], "'text'"),
    ("multilabel_classification", [["id-17", TEXTS[0]]], "'text'"),
    ("pair_classification", [["id-17", *PAIRS[0]]], "'text' and 'text_pair'"),
])
def test_a_frame_without_column_names_is_refused_not_read_by_position(client, task, rows, named):
    answer = client(task).post("/invocations", json={"dataframe_split": {"data": rows}})
    assert answer.status_code == 400, answer.text
    message = answer.json()["message"]
    assert message.startswith("dataframe_split has no 'columns', so its values would be read by position (an id in "
                              f"front taken for the text); name the columns (the model reads {named}; others, such "
                              "as an id, are ignored), e.g. {\"dataframe_split\": {\"columns\": [\"text\"")


@pytest.mark.parametrize("task, frame, plain", [
    ("classification", pd.DataFrame({"id": ["a", "b"], "text": TEXTS}), TEXTS),
    ("multilabel_classification", pd.DataFrame({"id": ["a", "b"], "text": TEXTS}), TEXTS),
    ("pair_classification", pd.DataFrame({"id": ["a", "b"], "text_pair": [p[1] for p in PAIRS],
                                          "text": [p[0] for p in PAIRS]}), PAIRS),
    ("token_classification", pd.DataFrame({"id": ["a", "b"], "text": TEXTS}), TEXTS),
])
def test_a_parquet_frame_is_read_by_column_name_as_json_frames_are(client, task, frame, plain):
    answer = client(task).post("/invocations", **parquet(frame))
    assert answer.status_code == 200, answer.text
    expected = client(task).post("/invocations", json={"inputs": plain})
    assert expected.status_code == 200, expected.text
    assert answer.json() == expected.json()


@pytest.mark.parametrize("task, frame, says", [
    ("classification", pd.DataFrame({"id": ["a"], "review": [TEXTS[0]]}),
     "the Parquet frame has the columns ['id', 'review']; the model reads the column 'text' (others"),
    ("pair_classification", pd.DataFrame({"text": [PAIRS[0][0]], "other": [PAIRS[0][1]]}),
     "the Parquet frame has the columns ['text', 'other']; the model reads the columns 'text' and 'text_pair'"),
    ("token_classification", pd.DataFrame({"sentence": [TEXTS[0]]}),
     "the Parquet frame has the columns ['sentence']; the model reads a 'text' column (raw texts) or a 'tokens' "
     "column (word lists)"),
])
def test_a_parquet_frame_without_the_models_columns_is_a_400_naming_them(client, task, frame, says):
    answer = client(task).post("/invocations", **parquet(frame))
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"].startswith(says)


def test_a_record_the_ner_model_refuses_is_named_by_its_line_and_a_mixed_file_says_so(models, tmp_path, capsys):
    """Serving QA: a record the reader let through and the model refused (a number among a JSONL record's words)
    was named "input 0" (counted from 0, no file, no line), or with --output "between lines 2 and 4" (the whole
    chunk); and a JSONL file mixing `text` and `tokens` records said a line holding a text had "no value in column
    'tokens' (empty or only spaces)"."""
    from mlflow import get_tracking_uri

    from tuneline.cli import main

    command = ["predict", "-m", models["token_classification"].uri, "--tracking-uri", get_tracking_uri()]
    numbers = tmp_path / "numbers.jsonl"
    numbers.write_text('{"tokens": ["Berlin", "is", "big"]}\n{"tokens": ["In", 2024, "Paris"]}\n{"tokens": ["Rome"]}\n')
    assert main([*command, "--input", str(numbers)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tuneline: {models['token_classification'].uri} refused the record on line 2 of {numbers}: ")
    assert "word 1 is int 2024" in err
    assert main([*command, "--input", str(numbers), "--output", str(tmp_path / "out.jsonl")]) == 1
    err = capsys.readouterr().err
    assert f"refused the record on line 2 of {numbers}: " in err and not (tmp_path / "out.jsonl").exists()

    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"tokens": ["Berlin"]}\n{"text": "Angela Merkel visited Paris ."}\n')
    assert main([*command, "--input", str(mixed)]) == 1
    assert capsys.readouterr().err == (
        f"tuneline: input file {mixed}: the record on line 2 has a 'text' but no 'tokens', while other records have "
        "'tokens': one file gives every record as word lists ('tokens') or every one as raw text ('text'); split the "
        "file in two, or write the word lists as text\n")
