"""A registered version loads and predicts with MLflow, torch and transformers alone, as the README promises: every
kind's model, registered through tuneline's own register task, is loaded and asked for predictions (a text long
enough to be cut before tokenizing among them) in a process where ``import tuneline`` fails. The text and
multi-label classifiers imported ``tuneline.long_texts`` on their first predict (README QA), so a serving image
without tuneline failed on its first request."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest

from test_serving_inputs import HEADS, save_head
from tests_support import store_client
from tuneline.tasks.register import register_model
from tuneline.tracking import RunContext

KINDS = HEADS

#: Far over the 32-token model's cut (32 tokens x 8 characters, twice): the classifiers cut it before tokenizing.
LONG = "the parcel never arrived and nobody answers " * 40

PREDICT = """
import importlib.abc, json, sys

class NoTuneline(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tuneline" or name.startswith("tuneline."):
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: not installed here)")
        return None

sys.meta_path.insert(0, NoTuneline())
import mlflow.pyfunc

mlflow.set_tracking_uri({uri!r})
mlflow.set_registry_uri({uri!r})
inputs = {inputs!r}
answers = {{}}
for kind, name in {names!r}.items():
    model = mlflow.pyfunc.load_model(f"models:/{{name}}/1")
    answers[kind] = len(model.predict(inputs[kind]))
assert "tuneline" not in sys.modules
print(json.dumps(answers))
"""


def test_every_kind_predicts_where_tuneline_cannot_be_imported(tmp_path, tiny_bert):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store_client(uri)
    experiment = client.create_experiment("plain", artifact_location=(tmp_path / "artifacts").as_uri())
    saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    names = {}
    try:
        for kind, (head, labels) in KINDS.items():
            folder = save_head(tiny_bert, tmp_path / kind, head, labels, max_length=32)
            run = client.create_run(experiment)
            context = RunContext(run_id=run.info.run_id, experiment_id=experiment, tracking_uri=uri,
                                 run_dir=tmp_path / run.info.run_id)
            names[kind] = register_model.fn(folder, kind, f"plain-{kind.replace('_', '-')}", context,
                                            {"task": kind}).name
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])
    inputs = {"classification": ["where is my parcel", LONG],
              "multilabel_classification": ["where is my parcel", LONG],
              "pair_classification": [["where is my parcel", "it never came"], [LONG, "short"]],
              "token_classification": ["John lives in Paris", ["John", "Smith"]]}
    script = textwrap.dedent(PREDICT.format(uri=uri, inputs=inputs, names=names))
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {kind: 2 for kind in KINDS}


def test_the_pyfunc_copies_of_the_long_text_cut_are_the_library_one(tiny_bert):
    """Each self-contained pyfunc file carries its own copy of ``cut_long_texts``: the same cuts as the library's
    (which training and evaluation use), or the served model would read other tokens than the evaluated one."""
    from transformers import AutoTokenizer

    from tuneline import long_texts
    from tuneline.pyfunc import multilabel_classifier, text_classifier

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    texts = ["short", LONG, "x" * 2000, "word " * 300, "a\tb " * 400, None, 7]
    for max_length in (8, 32, 128):
        expected = long_texts.cut_long_texts(texts, tokenizer, max_length)
        assert expected != texts or max_length == 128
        for module in (text_classifier, multilabel_classifier):
            assert module.CHARS_PER_TOKEN == long_texts.CHARS_PER_TOKEN
            assert module.cut_long_texts(texts, tokenizer, max_length) == expected, module.__name__



@pytest.mark.parametrize("value, width", [("short", 50), ("é" * 80, 50), ("caf\xe9 " * 30, 60), (["a" * 70], 60),
                                          ({"text": ["x"]}, 60), (12345, 50)])
def test_the_pyfunc_copies_of_the_quoting_rule_are_the_library_one(value, width):
    """Each one-text pyfunc file quotes a value in its refusals with its own copy of ``tuneline.errors.excerpt``
    (the files import nothing of tuneline): the same text, so a message reads alike in-process, over HTTP and in
    the CLI."""
    from tuneline.errors import excerpt
    from tuneline.pyfunc import multilabel_classifier, text_classifier

    for module in (text_classifier, multilabel_classifier):
        assert module._quoted(value, width) == excerpt(value, width), module.__name__
