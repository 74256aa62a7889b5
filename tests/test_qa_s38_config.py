"""Config and command-line mistakes found by exploratory QA (session 38): each was read silently as something the
user did not mean, or answered with an error that blamed tuneline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tuneline.config import ConfigError, build_config, load_config, read_yaml


def tuneline(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuneline.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_numbers_with_leading_zeros_or_colons_are_text_not_yaml_1_1_octal_or_base_60(tmp_path):
    """``labels: [001, 002, 007]`` were read as 1, 2, 7 (the model predicted ``1`` where the data says ``001``),
    ``010`` as 8, ``1:30`` as 90."""
    assert read_yaml("labels: [001, 002, 007, 010]\nsize: 010\ntime: 1:30\nrate: 5.0e-5\nhex: 0x1F\nn: -3") == {
        "labels": ["001", "002", "007", "010"], "size": "010", "time": "1:30", "rate": 5e-5, "hex": 31, "n": -3}
    config_file = tmp_path / "tuneline.yaml"
    config_file.write_text("task: classification\ndata:\n  path: d.csv\n  labels: [001, 002, 010]\n"
                           "train:\n  batch_size: 010\n")
    config = load_config(config_file, ["data.text_column=010"])
    assert config.data.labels == ["001", "002", "010"]
    assert config.train.batch_size == 10 and config.data.text_column == "010"
    with pytest.raises(ConfigError, match=r"gate.min_metric: .*got '1:30'"):
        load_config(config_file, ["gate.min_metric=1:30"])


def test_labels_written_with_leading_zeros_train_as_written(tmp_path):
    rows = "".join(f"message {i} of {code},{code}\n" for i in range(30) for code in ("001", "002", "007"))
    (tmp_path / "d.csv").write_text("text,label\n" + rows)
    (tmp_path / "tuneline.yaml").write_text("task: classification\ndata:\n  path: d.csv\n  labels: [001, 002, 007]\n")
    done = tuneline("validate", "--config", "tuneline.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "labels (3): 001, 002, 007" in done.stdout and "→" not in done.stderr


def test_a_config_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    (tmp_path / "latin.yaml").write_bytes(b"task: classification\ndata:\n  path: d.csv\n"
                                          b"  label_descriptions: {a: caf\xe8}\n")
    done = tuneline("validate", "--config", "latin.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == ("tuneline: config file latin.yaml, line 4: byte 0xe8 is not UTF-8; save the file "
                                   "as UTF-8 (YAML files are UTF-8)")


def test_a_database_file_given_as_a_tracking_uri_says_to_write_sqlite(tmp_path):
    done = tuneline("history", "some-model", "--tracking-uri", "mlflow.db", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"tuneline: the MLflow tracking URI mlflow.db is a database file's path; write it "
                                   f"as a URL: sqlite:///mlflow.db (relative to the folder you run in) or "
                                   f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}")
    assert not (tmp_path / "mlflow.db").exists()


def test_the_demo_refuses_a_data_path_it_would_have_replaced_by_its_own(tmp_path):
    done = tuneline("show-config", "--set", "data.path=mine.csv", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("tuneline: --set data.path needs a config: the demo makes its own data")
    shown = tuneline("show-config", "--set", "train.epochs=2", cwd=tmp_path)
    assert shown.returncode == 0 and "epochs: 2" in shown.stdout


def test_predict_refuses_texts_beside_an_input_file_instead_of_dropping_them(tmp_path):
    (tmp_path / "in.csv").write_text("text\nhello\n")
    done = tuneline("predict", "-m", "models:/any@champion", "--input", "in.csv", "one more text", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == ("tuneline: --input in.csv and texts on the command line: predict reads one or the "
                                   "other (the texts would be left out); give the texts in the file, or drop --input")


def test_build_config_reads_override_values_with_the_same_rules():
    config = build_config({"task": "classification", "data": {"path": "d.csv"}}, ["data.labels=[007, 010]"])
    assert config.data.labels == ["007", "010"]


def test_a_section_given_with_set_is_merged_and_its_paths_are_the_shells(tmp_path, monkeypatch):
    """``--set 'train={epochs: 2}'`` dropped the file's batch_size; ``--set 'data={path: x.csv}'`` dropped its labels
    and resolved x.csv against the config's folder, not the shell's as a dotted --set does."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "other").mkdir()
    config_file = tmp_path / "sub" / "tuneline.yaml"
    config_file.write_text("task: classification\ndata:\n  path: d.csv\n  labels: [a, b]\n  max_bad_fraction: 0.2\n"
                           "train:\n  epochs: 1\n  batch_size: 16\n")
    monkeypatch.chdir(tmp_path / "other")
    config = load_config(config_file, ["train={epochs: 2}", "data={path: x.csv}"])
    assert (config.train.epochs, config.train.batch_size) == (2, 16)
    assert config.data.labels == ["a", "b"] and config.data.max_bad_fraction == 0.2
    assert config.data.path == tmp_path / "other" / "x.csv"


def test_environment_references_in_paths_with_defaults(tmp_path, monkeypatch):
    config_file = tmp_path / "tuneline.yaml"
    config_file.write_text("task: classification\ndata:\n  path: ${TL_DATA_DIR}/d.csv\n"
                           "tracking:\n  tracking_uri: ${TL_NO_SUCH_URI:-sqlite:///store.db}\n")
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "exports"))
    monkeypatch.delenv("TL_NO_SUCH_URI", raising=False)
    config = load_config(config_file)
    assert config.data.path == tmp_path / "exports" / "d.csv"
    from tuneline.runtime import resolve_tracking_uri

    # the default's relative file is beside the config, as the README says of relative SQLite files (README QA)
    assert resolve_tracking_uri(config.tracking.tracking_uri) == f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.delenv("TL_DATA_DIR")
    with pytest.raises(ConfigError, match=r"refers to \$\{TL_DATA_DIR\}, but the environment variable TL_DATA_DIR "
                                          "is not set"):
        load_config(config_file)


@pytest.mark.parametrize("override, hint", [
    ("epochs=1", "train.epochs"), ("train.max_length=64", "tokenize.max_length"),
    ("model.learning_rate=1e-4", "train.learning_rate"), ("train.lr=1e-4", "train.learning_rate"),
    ("gate.metric=accuracy", "gate.primary_metric"), ("labels=[a, b]", "data.labels")])
def test_a_key_at_the_wrong_level_or_under_another_name_is_named(override, hint):
    """A top-level ``epochs:`` or ``train.max_length`` got only "check the spelling"; ``gate.metric`` was taken for
    gate.min_metric."""
    with pytest.raises(ConfigError, match=rf"{override.split('=')[0]}: unknown key for task 'classification' \(did "
                                          rf"you mean {hint}\?\)"):
        build_config({"task": "classification", "data": {"path": "d.csv"}}, [override])


def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path):
    """``tuneline data log | head -1``: the closed pipe printed "BrokenPipeError ... this is not a problem with your
    data or config; the full traceback is in the Prefect run log" (there is no run)."""
    reader = subprocess.Popen([sys.executable, "-m", "tuneline.cli", "show-config"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.close()  # before it writes a line
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=120) == 141
    assert err == ""
