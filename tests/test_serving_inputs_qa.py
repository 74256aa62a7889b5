"""What a QA pass of registered models found in serving (the pyfunc ``predict``, ``tuneline predict``, the HTTP app).

* A text of only invisible characters (a zero-width space, a byte-order mark, a word joiner, a soft hyphen, control
  characters) was refused by ``tuneline predict`` but answered with a confident label by every kind's registered
  model, in-process and over HTTP. Each kind refuses it now, naming the input, with the rule the CLI uses.
* A misspelled input field (``{"input": [...]}``, ``{"text": [...]}``) got MLflow's "Received dictionary with input
  fields: []" and a paragraph on MLflow 2.0, a classifier's "column named 'input'", or an NER model's 200.
* A pair model sent no pairs (a flat list, three texts, an object without ``text_pair``) answered "The model
  signature declares 2 inputs but the provided value only has 1 inputs".
* ``Content-Type: Application/JSON`` (any letter case) got MLflow's text/plain 415.
* ``tuneline predict`` with undecodable bytes on stdin printed no line number (a traceback-like UnicodeDecodeError,
  or in a C locale "surrogates not allowed" from the model).
* The NER model refused a numpy array of texts or of word lists.

Tiny random heads on the conftest BERT, registered by tuneline's own register task and loaded back from the
registry; the app is the one ``tuneline serve-model`` runs. The random weights make the labels meaningless: what is
checked is the refusal (status, message) and that an accepted form answers what its list form answers.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from test_serving_inputs import CLASSES, register_every_kind, served_client, store  # noqa: F401 - store is a fixture

TEXTS = ["where is my parcel", "please reset my password"]
PAIRS = [["where is my parcel", "my parcel has not arrived"], ["reset my password", "refund the charge"]]
#: only invisible characters: a zero-width space, a BOM, a word joiner, a soft hyphen, control characters, and
#: zero-width characters between spaces
INVISIBLE = ["\u200b", "\ufeff", "\u2060", "\u00ad", "\x00\x01", " \u200b\t\u200d "]
PAIR_SHAPE = ('send each pair as a list of its two texts or an object with "text" and "text_pair", e.g. {"inputs": '
              '[["first text", "second text"]]} or {"inputs": [{"text": "first text", "text_pair": "second text"}]}')
REPO = Path(__file__).resolve().parents[1]


def flat(scores) -> list[float]:
    """Every label's score of every row, in order (``pytest.approx`` compares no list of dicts)."""
    return [value for row in scores for value in row.values()]


@pytest.fixture(scope="module")
def models(store, tiny_bert, tmp_path_factory):
    """One registered version of each kind, by task."""
    return register_every_kind(store, tiny_bert, tmp_path_factory, "qa-inputs")


@pytest.fixture
def client(models, monkeypatch):
    """``client(task)``: ``tuneline serve-model``'s app for that kind's model."""
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")  # scoring_server.init sets it in os.environ
    return lambda task: served_client(models[task], task)


# --- 1. a text of only invisible characters -----------------------------------------------------------------------

def test_every_pyfunc_copy_of_the_invisible_text_rule_is_the_clis_and_the_input_files():
    """Each pyfunc file is self-contained, so each carries the rule; ``tuneline predict`` imports the text
    classifier's; ``--input`` files are judged by ``label_spellings.visible`` (tasks/predict_batch)."""
    from tuneline.pyfunc import multilabel_classifier, pair_classifier, text_classifier, token_tagger
    from tuneline.schemas.common import nothing_visible, non_empty_string
    from tuneline.tasks.predict_batch import _is_invisible

    samples = [*INVISIBLE, "", "   ", "\t\n", "a", "\u200bpos", "caf\u00e9", "\u00a0",
               "\u202e", "x\x00", "\u3000\u200b", "\ufffd\ufffd", "\ue000", "caf\ufffd", "\U000f0000 \ufffd"]
    expected = [bool(s.strip()) and nothing_visible(s) for s in samples]
    assert expected == [True] * len(INVISIBLE) + [False] * 7 + [True, False, True, True, True, False, True]
    for module in (text_classifier, multilabel_classifier, pair_classifier, token_tagger):
        assert [module.invisible_only(s) for s in samples] == expected, module.__name__
    assert [_is_invisible(s) for s in samples] == expected
    # validation's rule, on an Arrow column (RE2) and on Python objects, quarantines what the models refuse
    for dtype in ("string[pyarrow]", object):
        kept = non_empty_string(pd.Series(samples, dtype=dtype))
        assert list(~kept) == [e or not s.strip() for s, e in zip(samples, expected)], dtype


@pytest.mark.parametrize("task, body, says", [
    ("classification", {"inputs": ["where is my parcel", "\u200b"]},
     "input 1 has no visible text (only invisible characters: '\\u200b'); every input needs some text"),
    ("multilabel_classification", {"inputs": ["\ufeff"]},
     "input 0 has no visible text (only invisible characters: '\\ufeff'); every input needs some text"),
    ("pair_classification", {"inputs": [PAIRS[0], ["fine", "\u2060"]]},
     "predict got no visible text at row 1 of 'text_pair' (only invisible characters: '\\u2060'); every pair "
     "needs two texts"),
    ("pair_classification", {"inputs": [{"text": "\x00\x01", "text_pair": "fine"}]},
     "predict got no visible text at row 0 of 'text' (only invisible characters: '\\x00\\x01'); every pair needs "
     "two texts"),
    ("token_classification", {"inputs": ["John lives in Paris", "\x00\x01"]},  # was tagged as two words
     "input 1 has no visible text (only invisible characters: '\\x00\\x01'); every input needs some text"),
    ("token_classification", {"inputs": [["\u00ad", "\u200b"]]},
     "input 0 has no visible text (only invisible characters: '\\xad \\u200b'); every input needs some text"),
])
def test_a_text_of_only_invisible_characters_is_a_400_naming_the_input(client, task, body, says):
    app = client(task)
    answer = app.post("/invocations", json=body)
    assert answer.status_code == 400, answer.text
    assert says in answer.json()["message"], answer.json()["message"]
    assert answer.headers["X-Model-Version"] == "3"
    ok = app.post("/invocations", json={"inputs": PAIRS if task == "pair_classification" else TEXTS})
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 2, ok.text  # visible texts: as before


@pytest.mark.parametrize("text", INVISIBLE)
def test_every_kind_refuses_an_invisible_text_in_process(models, text):
    """``load_model(...).predict`` is what the endpoint calls: MLflow's invalid-parameter error (HTTP 400)."""
    for task, served in models.items():
        bad = [["fine", text]] if task == "pair_classification" else ["fine", text]
        with pytest.raises(MlflowException, match="no visible text") as refused:
            served.model.predict(bad)
        assert refused.value.get_http_status_code() == 400
        assert repr(text[:20]) in refused.value.message and ("row 0 of 'text_pair'" if task == "pair_classification"
                                                             else "input 1 ") in refused.value.message
    # a visible text with an invisible character inside is a text (the tokenizer drops the character)
    assert models["classification"].model.predict(["where\u200b is my parcel"])["label"].iloc[0] in CLASSES


# --- 2. a misspelled input field ----------------------------------------------------------------------------------

FIELDS = "one of the input fields 'inputs', 'instances', 'dataframe_split' or 'dataframe_records'"


@pytest.mark.parametrize("task, body, message", [
    ("classification", {"input": TEXTS},
     "the request has no input field: its keys are 'input' (did you mean 'inputs'?); send the inputs under "
     f'{FIELDS}, e.g. {{"inputs": ["a text", "another text"]}}'),
    ("classification", {"text": TEXTS, "params": {"batch_size": 8}},
     f"the request has no input field: its keys are 'text', 'params'; send the inputs under {FIELDS}, e.g. "
     '{"inputs": ["a text", "another text"]}'),
    ("multilabel_classification", TEXTS,
     f'the request body is a JSON list, not an object: send the inputs under {FIELDS}, e.g. {{"inputs": '
     '["a text", "another text"]}'),
    ("pair_classification", {"instance": PAIRS},
     "the request has no input field: its keys are 'instance' (did you mean 'instances'?); send the inputs under "
     f'{FIELDS}, e.g. {{"inputs": [["first text", "second text"]]}}'),
    ("classification", {"inputs": TEXTS, "dataframe_split": {"columns": ["text"], "data": [["a"]]}},
     f"the request has 2 input fields ('inputs', 'dataframe_split'); send the inputs under exactly {FIELDS}, e.g. "
     '{"inputs": ["a text", "another text"]}'),
    # MLflow read "input" as its LLM request format and the NER model answered 200 on it
    ("token_classification", {"input": ["John lives in Paris"]},
     "the request has no input field: its keys are 'input' (did you mean 'inputs'?); send the inputs under the "
     'input field \'inputs\', e.g. {"inputs": ["John lives in Paris", ["John", "Smith"]]}'),
    ("token_classification", {"instances": ["John lives in Paris"]},
     "a token_classification model reads its inputs from the input field 'inputs' only, not 'instances': send "
     'e.g. {"inputs": ["John lives in Paris", ["John", "Smith"]]}'),
])
def test_a_misspelled_input_field_is_a_400_naming_the_fields_and_what_was_sent(client, task, body, message):
    answer = client(task).post("/invocations", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"error_code": "BAD_REQUEST", "message": message}
    assert answer.headers["X-Model-Name"] == "probe"


# --- 3. a pair model sent no pairs --------------------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    ({"inputs": ["where is my parcel", "my parcel has not arrived"]},
     "input 0 is 'where is my parcel', not a pair (for one pair send {\"inputs\": [[\"where is my parcel\", "
     f"\"my parcel has not arrived\"]]}}); {PAIR_SHAPE}"),
    ({"inputs": ["a", "b", "c"]}, f"input 0 is 'a', not a pair; {PAIR_SHAPE}"),
    ({"inputs": [PAIRS[0], ["a", "b", "c"]]}, f"input 1 is a list of 3 texts (['a', 'b', 'c']), not a pair; "
                                              f"{PAIR_SHAPE}"),
    ({"inputs": [["where is my parcel"]]}, f"input 0 is a list of 1 text (['where is my parcel']), not a pair; "
                                           f"{PAIR_SHAPE}"),
    ({"instances": [{"text": "where is my parcel"}]},
     f"input 0 has no 'text_pair' (its keys: ['text']); {PAIR_SHAPE}"),
    ({"inputs": "where is my parcel"}, f"inputs is 'where is my parcel', not a list of pairs; {PAIR_SHAPE}"),
    ({"inputs": {"text": ["a"]}},
     f"inputs is an object of columns (['text']), which MLflow cannot read for a pair model; {PAIR_SHAPE}, or "
     '{"dataframe_split": {"columns": ["text", "text_pair"], "data": [["first text", "second text"]]}}'),
    ({"dataframe_split": {"columns": ["text"], "data": [["a"]]}},
     "dataframe_split has the columns ['text']; a pair model reads two columns named 'text' and 'text_pair', e.g. "
     '{"dataframe_split": {"columns": ["text", "text_pair"], "data": [["first text", "second text"]]}}'),
    # serving QA: a list beside an object was answered 200, the object read as its key names ("text", "text_pair")
    ({"inputs": [PAIRS[0], {"text": "I like tea.", "text_pair": "Stocks fell."}]},
     f"input 1 is an object but input 0 is a list: one request takes one shape; {PAIR_SHAPE}"),
    ({"inputs": [{"text": "I like tea.", "text_pair": "Stocks fell."}, PAIRS[0]]},
     f"input 1 is a list but input 0 is an object: one request takes one shape; {PAIR_SHAPE}"),
    ({"dataframe_records": [{"text": "a", "text_pair": "b"}, {"text_pair": "c"}]},
     "record 1 of dataframe_records has no 'text' (its keys: ['text_pair']); every record needs 'text' and "
     "'text_pair', e.g. {\"dataframe_records\": [{\"text\": \"first text\", \"text_pair\": \"second text\"}]}"),
])
def test_a_pair_model_sent_no_pairs_says_what_shape_to_send(client, models, body, message):
    app = client("pair_classification")
    answer = app.post("/invocations", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"error_code": "BAD_REQUEST", "message": message}
    # every documented form is answered as before, with the registered model's predictions
    expected = models["pair_classification"].model.predict(pd.DataFrame(PAIRS, columns=["text", "text_pair"]))
    for good in ({"inputs": PAIRS}, {"instances": [{"text": a, "text_pair": b} for a, b in PAIRS]},
                 {"dataframe_split": {"columns": ["text", "text_pair"], "data": PAIRS}},
                 {"dataframe_records": [{"text": a, "text_pair": b} for a, b in PAIRS]}):
        ok = app.post("/invocations", json=good)
        assert ok.status_code == 200, (good, ok.text)
        assert flat(p["scores"] for p in ok.json()["predictions"]) == pytest.approx(flat(expected["scores"]))


# --- 4. the Content-Type's letter case ----------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["Application/JSON", "application/JSON; charset=UTF-8",
                                          "APPLICATION/JSON; Charset=\"utf8\"", "application/json;"])
def test_an_accepted_content_type_in_any_letter_case_is_answered(client, models, content_type):
    """Media types, parameter names and charset names are case-insensitive (RFC 9110 §8.3.1): MLflow answered these
    with a text/plain 415 ("only supports the following content types ... Got 'Application/JSON'")."""
    answer = client("classification").post("/invocations", content=json.dumps({"inputs": TEXTS}),
                                           headers={"Content-Type": content_type})
    assert answer.status_code == 200, answer.text
    expected = models["classification"].model.predict(TEXTS)
    assert [p["label"] for p in answer.json()["predictions"]] == expected["label"].tolist()
    assert [p["score"] for p in answer.json()["predictions"]] == pytest.approx(expected["score"].tolist())


def test_parquet_in_upper_case_is_answered_and_another_charset_is_a_json_415(client, models):
    app = client("multilabel_classification")
    parquet = io.BytesIO()
    pd.DataFrame({"text": TEXTS}).to_parquet(parquet)
    answer = app.post("/invocations", content=parquet.getvalue(),
                      headers={"Content-Type": "Application/Vnd.Apache.Parquet"})
    assert answer.status_code == 200, answer.text
    expected = models["multilabel_classification"].model.predict(TEXTS)
    assert flat(p["scores"] for p in answer.json()["predictions"]) == pytest.approx(flat(expected["scores"]))
    latin = app.post("/invocations", content=json.dumps({"inputs": TEXTS}).encode("latin-1"),
                     headers={"Content-Type": "application/json; charset=ISO-8859-1"})
    assert latin.status_code == 415  # MLflow's was text/plain "The scoring server only supports UTF-8"
    assert latin.json() == {"error_code": "UNSUPPORTED_MEDIA_TYPE", "message": (
        "Content-Type application/json; charset=ISO-8859-1 names the charset iso-8859-1; the server reads UTF-8 "
        "only: send the body in UTF-8 (charset=utf-8, or no charset)")}


# --- 5. undecodable bytes on stdin --------------------------------------------------------------------------------

def predict_command(models) -> list[str]:
    from mlflow import get_tracking_uri

    return ["predict", "-m", models["classification"].uri, "--tracking-uri", get_tracking_uri()]


def test_undecodable_stdin_names_the_line_and_byte_and_encoding_decodes_it(models, monkeypatch, capsys):
    """stdin as the shell gives it (bytes under a text stream): read with --encoding like an --input file."""
    from tuneline.cli import main

    latin = "where is my parcel\r\ncaf\u00e9 cr\u00e8me\r\n".encode("cp1252")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(latin), encoding="utf-8"))
    assert main(predict_command(models)) == 1
    err = capsys.readouterr().err
    assert err == ("tuneline: stdin line 2, byte offset 23: byte 0xe9 is not valid utf-8 (invalid continuation "
                   "byte); give the input's encoding with --encoding (e.g. cp1252 or latin-1), or convert it to "
                   "UTF-8 (e.g. iconv -f cp1252 -t utf-8)\n")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(latin), encoding="utf-8"))
    assert main([*predict_command(models), "--encoding", "cp1252"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["text"] for row in rows] == ["where is my parcel", "caf\u00e9 cr\u00e8me"]
    assert [row["label"] for row in rows] == models["classification"].model.predict(
        ["where is my parcel", "caf\u00e9 cr\u00e8me"])["label"].tolist()
    # a byte-order mark overrides --encoding, as for a file
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("caf\u00e9\n".encode("utf-8-sig"))))
    assert main([*predict_command(models), "--encoding", "cp1252"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "caf\u00e9"


def test_undecodable_stdin_through_a_pipe_is_one_line_without_a_traceback(models):
    """The command as a shell runs it, in a C locale too (where the bytes reached the model as surrogates)."""
    for locale in ("C.UTF-8", "C"):
        env = {**os.environ, "LC_ALL": locale, "PYTHONUTF8": "0"}
        done = subprocess.run([sys.executable, "-m", "tuneline.cli", *predict_command(models)],
                              input=b"fine\nstill fine\nna\xefve\n", capture_output=True, env=env, cwd=REPO,
                              timeout=300)
        assert done.returncode == 1, done.stderr[-2000:]
        lines = done.stderr.decode().splitlines()
        assert lines[-1] == ("tuneline: stdin line 3, byte offset 18: byte 0xef is not valid utf-8 (invalid "
                             "continuation byte); give the input's encoding with --encoding (e.g. cp1252 or "
                             "latin-1), or convert it to UTF-8 (e.g. iconv -f cp1252 -t utf-8)"), done.stderr
        assert "Traceback" not in done.stderr.decode() and not done.stdout


# --- 6. numpy arrays for the NER tagger ---------------------------------------------------------------------------

def test_the_tagger_takes_numpy_arrays_and_series_like_the_lists_they_hold(models):
    tagger = models["token_classification"].model
    texts = ["John Smith lives in Berlin", "Paris"]
    words = [["John", "Smith", "lives", "in", "Berlin"], ["Paris"]]
    by_list = tagger.predict(texts)
    by_words = tagger.predict(words)

    def same(out: pd.DataFrame, expected: pd.DataFrame) -> None:
        assert out["tokens"].tolist() == expected["tokens"].tolist()
        assert all(type(word) is str for tokens in out["tokens"] for word in tokens)  # not numpy's str_
        assert out["tags"].tolist() == expected["tags"].tolist()
        assert out["text"].tolist() == expected["text"].tolist()

    same(tagger.predict(np.array(texts)), by_list)                       # refused: "not ndarray"
    same(tagger.predict(np.array(texts, dtype=object)), by_list)
    word_lists = np.empty(2, dtype=object)
    word_lists[0], word_lists[1] = words
    same(tagger.predict(word_lists), by_words)
    word_arrays = np.empty(2, dtype=object)
    word_arrays[0], word_arrays[1] = np.array(words[0]), np.array(words[1])
    same(tagger.predict(word_arrays), by_words)
    same(tagger.predict(np.array([["John", "Smith"], ["Paris", "France"]])),
         tagger.predict([["John", "Smith"], ["Paris", "France"]]))
    same(tagger.predict(np.array("John Smith lives in Berlin")), by_list.iloc[:1])
    indexed = tagger.predict(pd.Series(texts, index=[7, 3]))
    same(indexed, by_list)
    assert indexed.index.tolist() == [7, 3]
    same(tagger.predict(pd.Series([np.array(w) for w in words])), by_words)
    with pytest.raises(MlflowException, match=r"input 0: expected a text \(str\) or a list of words"):
        tagger.predict(np.array([1.5, 2.5]))


@pytest.mark.parametrize("task", ["classification", "multilabel_classification"])
def test_a_dict_of_texts_in_process_is_refused_naming_the_list_and_its_first_text_whole(models, task):
    """``predict({"text": [...]})`` in-process reaches the model as one row holding the list (MLflow makes a frame of
    the dict first), and the refusal cut the list's repr at 60 characters, mid-text, with no closing quote (serving
    QA). It names the list's length and its first text, closed, and what to send instead."""
    texts = ["Thank you so much, this is amazing!", "I am so angry right now, nothing works and nobody answers"]
    with pytest.raises(MlflowException) as refused:
        models[task].model.predict({"text": texts})
    assert refused.value.get_http_status_code() == 400
    assert refused.value.message.startswith(
        "input 0 is a list of 2 values (['Thank you so much, this is amazing!', …]), not a text; pass one string "
        "per input (a list of texts, or a DataFrame with a 'text' column)"), refused.value.message
    assert len(models[task].model.predict(pd.DataFrame({"text": texts}))) == 2  # the frame the message points to
