"""Config: YAML + dotted overrides, strict validation, redaction, and the CLI around it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tuneline.cli import main
from tuneline.config import ConfigError, build_config, load_config
from tuneline.runtime import redact, redact_params
from tuneline.tracking import config_params

VENV_BIN = Path(sys.executable).parent


def write_config(folder: Path, body: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cfg.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_relative_data_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path / "project" / "configs",
                        {"data": {"train": "../data/train.csv", "test": "test.csv", "validation": "/abs/val.csv"}})
    config = load_config(path)
    assert config.data.train == (tmp_path / "project" / "data" / "train.csv").resolve()
    assert config.data.test == (tmp_path / "project" / "configs" / "test.csv").resolve()
    assert config.data.validation == Path("/abs/val.csv")
    single = load_config(write_config(tmp_path / "other", {"data": {"path": "all.csv"}}))
    assert single.data.path == (tmp_path / "other" / "all.csv").resolve()


def test_a_work_dir_written_in_the_file_is_beside_the_file(tmp_path, monkeypatch):
    """README: paths in a config file are relative to the file; work_dir was relative to the shell's folder."""
    shell = tmp_path / "shell"
    shell.mkdir()
    monkeypatch.chdir(shell)
    path = write_config(tmp_path / "project", {"data": {"path": "d.csv"}, "work_dir": "out"})
    assert load_config(path).work_dir == (tmp_path / "project" / "out").resolve()
    assert load_config(path, ["work_dir=mine"]).work_dir == (shell / "mine").resolve()
    default = write_config(tmp_path / "other", {"data": {"path": "d.csv"}})
    assert load_config(default).work_dir == Path("tuneline-output")  # the default: where the command runs


def test_set_paths_are_relative_to_the_shell_folder_and_model_base_to_the_config(tmp_path, monkeypatch):
    """A path typed with --set is where the shell is; one written in the file (model.base included) is beside it."""
    shell = tmp_path / "shell"
    shell.mkdir()
    monkeypatch.chdir(shell)
    folder = tmp_path / "project"
    (folder / "models" / "my-bert").mkdir(parents=True)
    path = write_config(folder, {"data": {"train": "train.csv"}, "model": {"base": "models/my-bert"}})
    config = load_config(path, ["data.test=mine/test.csv"])
    assert config.data.train == (folder / "train.csv").resolve()
    assert config.data.test == (shell / "mine" / "test.csv").resolve()
    assert config.model.base == str((folder / "models" / "my-bert").resolve())
    # a Hugging Face id stays an id; "./x" given with --set is the shell's
    assert load_config(path, ["model.base=org/some-bert"]).model.base == "org/some-bert"
    assert load_config(path, ["model.base=./local"]).model.base == str((shell / "local").resolve())


def test_relative_stores_written_in_the_file_are_beside_the_file(tmp_path, monkeypatch):
    """A relative ``sqlite:///mlflow.db`` had been read against the shell's folder: `train` run from the project and
    `retrain` run from a cron job's home wrote two registries, the second without the champion."""
    folder = tmp_path / "project"
    path = write_config(folder, {"data": {"path": "d.csv"},
                                 "tracking": {"tracking_uri": "sqlite:///stores/mlflow.db"},
                                 "ledger": {"url": "sqlite:///stores/ledger.db?timeout=5"}})
    seen = set()
    for shell in ("a", "b"):
        (tmp_path / shell).mkdir()
        monkeypatch.chdir(tmp_path / shell)
        config = load_config(path)
        seen.add((config.tracking.tracking_uri, config.ledger.url))
    assert seen == {(f"sqlite:///{(folder / 'stores' / 'mlflow.db').resolve()}",
                     f"sqlite:///{(folder / 'stores' / 'ledger.db').resolve()}?timeout=5")}
    folder_store = load_config(write_config(tmp_path / "p2", {"data": {"path": "d.csv"},
                                                               "tracking": {"tracking_uri": "mlruns"}}))
    assert folder_store.tracking.tracking_uri == str((tmp_path / "p2" / "mlruns").resolve())
    # given with --set: the shell's folder, like a --set data path; servers, absolute paths and ${VAR}s untouched
    assert load_config(path, ["tracking.tracking_uri=sqlite:///x.db"]).tracking.tracking_uri == \
        f"sqlite:///{(tmp_path / 'b' / 'x.db').resolve()}"
    for url in ("http://127.0.0.1:5000", "sqlite:////abs/m.db", "sqlite:///${HOME}/m.db", "postgresql://u@h/db"):
        assert load_config(path, [f"tracking.tracking_uri={url}"]).tracking.tracking_uri == url


@pytest.mark.parametrize("overrides, message", [
    (["model.freeze.embeddings=true"], "model.freeze.embeddings is set but model.strategy is 'full'"),
    (["model.lora.r=4"], "model.lora.r is set but model.strategy is 'full'"),
    (["model.strategy=lora", "model.freeze.bottom_layers=2"], "model.freeze.bottom_layers is set but"),
    (["model.strategy=freeze"], "nothing is frozen"),
])
def test_strategy_options_without_their_strategy_are_errors(overrides, message):
    """Before, these trained the full model silently while the user believed it frozen or adapted."""
    with pytest.raises(ConfigError, match=message):
        build_config({"data": {"path": "/d.csv"}}, overrides)
    ok = build_config({"data": {"path": "/d.csv"}}, ["model.strategy=freeze", "model.freeze.embeddings=true"])
    assert ok.model.freeze.embeddings is True


def test_dotted_overrides_are_typed():
    config = build_config({"data": {"path": "/d.csv"}}, [
        "train.learning_rate=3e-5", "train.batch_size=8", "train.group_by_length=false",
        "model.lora.target_modules=[query, key, value]", "data.labels=[neg, pos]", "model.strategy=lora",
        "data.split.salt=abc"])
    assert config.train.learning_rate == pytest.approx(3e-5)
    assert isinstance(config.train.learning_rate, float)
    assert config.train.batch_size == 8 and isinstance(config.train.batch_size, int)
    assert config.train.group_by_length is False
    assert config.model.lora.target_modules == ["query", "key", "value"]
    assert config.data.labels == ["neg", "pos"]
    assert config.model.strategy == "lora"
    assert config.data.split.salt == "abc"


def test_override_values_yaml_would_drop_or_reject_are_taken_as_written():
    """``--set`` values are YAML, but a column named ``#1 String`` (MRPC's) is a YAML comment, ``|`` a block
    scalar and ``,`` a parse error: each came out None, '' or a traceback instead of the text the user typed."""
    config = build_config({"task": "pair_classification", "data": {"path": "/d.tsv"}}, [
        "data.text_column=#1 String", "data.text_pair_column=#2 String", "data.label_column=Quality"])
    assert (config.data.text_column, config.data.text_pair_column) == ("#1 String", "#2 String")
    for separator in ("|", ",", ">", ";"):
        config = build_config({"task": "multilabel_classification", "data": {"path": "/d.tsv"}},
                              [f"data.label_separator={separator}"])
        assert config.data.label_separator == separator
    config = build_config({"data": {"path": "/d.csv", "labels": ["a", "b"]}}, ["data.labels=null", "train.epochs=2"])
    assert config.data.labels is None and config.train.epochs == 2
    # a label with ': ' in it was a YAML mapping ("data.positive_label: Input should be a valid string", QA);
    # a mapping in braces is still one
    config = build_config({"task": "pair_classification", "data": {"path": "/d.tsv"}},
                          ["data.positive_label=is/para: yes?"])
    assert config.data.positive_label == "is/para: yes?"
    config = build_config({"data": {"path": "/d.csv"}}, ['data.label_descriptions={"0": a bad review}'])
    assert config.data.label_descriptions == {"0": "a bad review"}


def test_column_numbers_of_a_headerless_file_are_names():
    """``header: false`` names the columns "0", "1", ...: ``text_column: 0`` (YAML) and ``--set
    data.label_column=1`` were read as numbers and refused ("Input should be a valid string (got 0)")."""
    config = build_config({"data": {"path": "/d.tsv", "header": False, "text_column": 0}}, ["data.label_column=1"])
    assert (config.data.text_column, config.data.label_column) == ("0", "1")
    pair = build_config({"task": "pair_classification", "data": {"path": "/d.tsv"}},
                        ["data.text_column=3", "data.text_pair_column=4", "data.label_column=0"])
    assert (pair.data.text_column, pair.data.text_pair_column, pair.data.label_column) == ("3", "4", "0")
    with pytest.raises(ConfigError, match="max_bad_fraction"):
        build_config({"data": {"path": "/d.tsv"}}, ["data.max_bad_fraction=[1]"])
    ner = build_config({"task": "token_classification", "data": {"path": "/d.txt"}}, ["data.tokens_column=0"])
    assert ner.data.conll_tag_column == -1 and ner.data.tokens_column == "0"  # a number stays a number


def test_override_replaces_yaml_value(tmp_path):
    path = write_config(tmp_path, {"data": {"path": "d.csv"}, "train": {"epochs": 5}})
    assert load_config(path).train.epochs == 5
    assert load_config(path, ["train.epochs=1.5"]).train.epochs == 1.5


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigError) as info:
        build_config({"data": {"path": "/d.csv"}, "train": {"learning_rat": 1e-4}})
    assert "train.learning_rat" in str(info.value)
    assert "unknown key" in str(info.value)
    with pytest.raises(ConfigError, match=r"model\.stratgy"):
        build_config({"data": {"path": "/d.csv"}}, ["model.stratgy=lora"])


@pytest.mark.parametrize("raw, overrides, line", [
    ({}, ["train.learnig_rate=1e-4"], "train.learnig_rate: unknown key for task 'classification' (did you mean "
                                      "train.learning_rate?)"),
    ({"trian": {"epochs": 1}}, [], "trian: unknown key for task 'classification' (did you mean train?)"),
    ({}, ["data.label_colum=intent"], "(did you mean data.label_column?)"),
    # a key of another kind was "check the spelling" (and the nearest spelling here, data.text_column, misleads)
    ({}, ["data.text_pair_column=second"], "data.text_pair_column: unknown key for task 'classification' (a key of "
                                           "task 'pair_classification', not of 'classification'"),
    ({}, ["model.lora.zzz=3"], "model.lora.zzz: unknown key for task 'classification' (check the spelling"),
    # a model-level check was located as "(top level)"
    ({}, ["gate.primary_metric=f1"],
     "invalid configuration: gate.primary_metric: 'f1' is not computed for task 'classification'"),
])
def test_an_unknown_key_says_what_it_probably_is(raw, overrides, line):
    with pytest.raises(ConfigError) as info:
        build_config({"data": {"path": "/d.csv"}, **raw}, overrides)
    assert line in str(info.value)


def test_show_config_without_a_config_prints_only_yaml_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """It printed "demo data written to ..." first (so its output was no YAML) and generated the demo data."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # .ci/run sets it for the suite's server tests
    assert main(["show-config"]) == 0
    printed = capsys.readouterr().out
    shown = yaml.safe_load(printed)
    assert shown["task"] == "classification" and shown["data"]["path"].endswith("support_tickets.csv")
    assert list(tmp_path.iterdir()) == []
    # the store a run would use, where the config leaves it to the environment or the folder (CLI QA): a comment,
    # so the output is still the YAML it was
    assert shown["tracking"]["tracking_uri"] is None
    assert printed.rstrip().endswith(f"# tracking.tracking_uri is null: a run from here uses "
                                     f"sqlite:///{tmp_path / 'mlflow.db'} (the current folder)")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert main(["show-config"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(
        "# tracking.tracking_uri is null: a run from here uses http://127.0.0.1:5000 (MLFLOW_TRACKING_URI)")


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError) as info:
        build_config({"data": {"path": "/d.csv"}}, ["train.batch_size=many"])
    assert "train.batch_size" in str(info.value)
    assert "'many'" in str(info.value)
    with pytest.raises(ConfigError, match=r"model\.strategy"):
        build_config({"data": {"path": "/d.csv"}, "model": {"strategy": "everything"}})


def test_data_path_and_train_together_is_an_error():
    with pytest.raises(ConfigError, match="not both"):
        build_config({"data": {"path": "/d.csv", "train": "/t.csv"}})


def test_neither_data_path_nor_train_is_an_error():
    with pytest.raises(ConfigError, match="set data.path"):
        build_config({"data": {"test": "/t.csv"}})
    with pytest.raises(ConfigError, match="data"):
        build_config({})


def test_malformed_override_is_a_config_error():
    with pytest.raises(ConfigError, match="key.path=value"):
        build_config({"data": {"path": "/d.csv"}}, ["train.epochs"])


def test_redact_hides_url_credentials_and_secret_query_params():
    assert redact("postgresql://bob:s3cret@db:5432/mlflow") == "postgresql://***@db:5432/mlflow"
    assert redact("https://host/api?token=abc123&x=1") == "https://host/api?token=***&x=1"
    assert redact("https://host/?password=hunter2") == "https://host/?password=***"
    assert redact("sqlite:///tmp/mlflow.db") == "sqlite:///tmp/mlflow.db"
    assert redact_params({"tracking.api_key": "k", "tracking.uri": "http://u:p@h/"}) == {
        "tracking.api_key": "***", "tracking.uri": "http://***@h/"}
    # secret *words* in a param name, not letters: tokenize.max_length is a length, not a token
    assert redact_params({"tokenize.max_length": 128, "hf_token": "t", "tracking.password": "p", "model.base": "m"}) \
        == {"tokenize.max_length": "128", "hf_token": "***", "tracking.password": "***", "model.base": "m"}
    # the short SAS names (se=, sv=, sig=) are whole parameter names only: model.base=... stays readable
    assert redact("model.base=/models/bert was not found") == "model.base=/models/bert was not found"
    assert redact("db_password=hunter2 and ?se=2026&sig=abc") == "db_password=*** and ?se=***&sig=***"


def test_config_params_never_leak_a_tracking_password():
    config = build_config({"data": {"path": "/d.csv"},
                           "tracking": {"tracking_uri": "postgresql://bob:s3cret@db/mlflow"}})
    params = config_params(config)
    assert all("s3cret" not in str(v) for v in params.values())
    assert params["tracking.tracking_uri"] == "postgresql://***@db/mlflow"
    assert params["train.learning_rate"] == "5e-05"
    assert all("bob" not in str(v) for v in params.values())
    # the default strategy (full) uses neither LoRA's nor freeze's settings: they are not params of its runs
    assert params["model.strategy"] == "full"
    assert not [k for k in params if k.startswith(("model.lora.", "model.freeze."))]
    lora = config_params(build_config({"data": {"path": "/d.csv"}, "model": {"strategy": "lora"}}))
    assert lora["model.lora.target_modules"] == '["query", "key", "value", "dense"]' and lora["model.lora.r"] == "16"
    assert not [k for k in lora if k.startswith("model.freeze.")]
    frozen = config_params(build_config({"data": {"path": "/d.csv"}, "model": {"strategy": "freeze",
                                                                                     "freeze": {"bottom_layers": 2}}}))
    assert "model.freeze.bottom_layers" in frozen and not [k for k in frozen if k.startswith("model.lora.")]
    # unset, the gate uses the kind's metric: the run's params say which, not None (strategies QA)
    assert params["gate.primary_metric"] == "macro_f1"
    assert config_params(build_config({"task": "pair_classification", "data": {
        "path": "/d.csv", "text_pair_column": "b"}}))["gate.primary_metric"] == "f1_positive"


# --- CLI ------------------------------------------------------------------------------------------------------

def test_cli_entry_point_help():
    result = subprocess.run([str(VENV_BIN / "tuneline"), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("train", "demo", "show-config", "predict", "serve"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["train", "demo", "show-config"])
def test_cli_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: tuneline {command}" in out
    assert "--set" in out


def test_cli_show_config_prints_resolved_override(tmp_path, capsys):
    path = write_config(tmp_path, {"data": {"path": "d.csv"}})
    assert main(["show-config", "-c", str(path), "--set", "train.learning_rate=3e-5"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["train"]["learning_rate"] == pytest.approx(3e-5)
    assert shown["data"]["path"] == str(tmp_path / "d.csv")
    assert shown["train"]["batch_size"] == 32  # defaults filled in
    assert shown["gate"]["primary_metric"] == "macro_f1"  # the kind's default, not null


def test_cli_show_config_subprocess(tmp_path):
    path = write_config(tmp_path, {"data": {"path": "d.csv"}})
    result = subprocess.run([str(VENV_BIN / "tuneline"), "show-config", "-c", str(path), "--set",
                             "train.learning_rate=3e-5"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["train"]["learning_rate"] == pytest.approx(3e-5)


def test_cli_bad_override_exits_2_naming_the_key(tmp_path, capsys):
    path = write_config(tmp_path, {"data": {"path": "d.csv"}})
    assert main(["show-config", "-c", str(path), "--set", "train.learnin_rate=3e-5"]) == 2
    err = capsys.readouterr().err
    assert "train.learnin_rate" in err
    assert main(["show-config", "-c", str(path), "--set", "train.batch_size=lots"]) == 2
    assert "train.batch_size" in capsys.readouterr().err


def test_cli_missing_config_file_exits_2(tmp_path, capsys):
    assert main(["show-config", "-c", str(tmp_path / "absent.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_numeric_labels_written_unquoted_in_yaml_are_the_data_s_text_labels(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("data:\n  path: d.csv\n  labels: [0, 1, 2.0]\n  label_descriptions:\n    0: bad\n    1: good\n")
    config = load_config(path)
    assert config.data.labels == ["0", "1", "2"]
    assert config.data.label_descriptions == {"0": "bad", "1": "good"}
    assert build_config({"data": {"path": "d.csv"}}, ["data.labels=[3,4]"]).data.labels == ["3", "4"]
    path.write_text("data:\n  path: d.csv\n  labels: [yes, no]\n")
    with pytest.raises(ConfigError, match=r"data\.labels: YAML read a label as the boolean True: quote"):
        load_config(path)


@pytest.mark.parametrize("name", ["my model/v1", "team:model", " ", ".."])
def test_a_registered_model_name_mlflow_rejects_is_a_config_error_before_training(name):
    with pytest.raises(ConfigError, match=r"tracking\.registered_model: "):
        build_config({"data": {"path": "d.csv"}, "tracking": {"registered_model": name}})
    assert build_config({"data": {"path": "d.csv"}, "tracking": {"registered_model": "team.model v2"}}
                        ).registered_model_name == "team.model v2"


def test_a_yaml_mistake_is_one_line_naming_the_file_line_and_fix(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("data:\n\tpath: d.csv\n")
    with pytest.raises(ConfigError) as tab:
        load_config(path)
    assert str(tab.value) == (f"config file {path}, line 2, column 1: a tab character: YAML indents with spaces "
                              "only, replace the tab with spaces")
    path.write_text("data:\n  path: [d.csv\n")
    with pytest.raises(ConfigError) as bracket:
        load_config(path)
    assert "\n" not in str(bracket.value) and f"{path}, line 3" in str(bracket.value)
    assert "<unicode string>" not in str(bracket.value)


def test_a_path_starting_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    """``~/data/x.csv`` in a config (or with --set) is the user's home, as in a shell, not a folder named ``~``."""
    from tuneline.config import load_config

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config_file = tmp_path / "project" / "cfg.yaml"
    config_file.parent.mkdir()
    config_file.write_text("data:\n  path: ~/data/tickets.csv\n"
                           "retrain:\n  landing: ~/landing\n  data_dir: ~/versions\n", encoding="utf-8")
    config = load_config(config_file)
    assert config.data.path == tmp_path / "home" / "data" / "tickets.csv"
    assert config.retrain.landing == str(tmp_path / "home" / "landing")
    assert config.retrain.data_dir == tmp_path / "home" / "versions"


@pytest.mark.parametrize("overrides, ratio, words", [
    (["model.strategy=lora", "train.learning_rate=3e-5"], 3e-5 / 5e-4, "is 1/17 of the usual rate for model.strategy "
                                                                      "lora (0.0005): LoRA adapters at a full"),
    (["train.learning_rate=5e-4"], 10.0, "is 10x the usual rate for model.strategy full (5e-05)"),
    (["train.learning_rate=1e-4"], None, None),  # twice the default: a common recipe, no warning
    (["model.strategy=lora"], None, None),
])
def test_a_learning_rate_far_from_its_strategys_usual_one_is_warned_about(overrides, ratio, words, caplog):
    """The README's own example (LoRA at 3e-5) trained nothing (macro-F1 0.16 against the majority's 0.13) without
    a word about the learning rate."""
    from tuneline.tasks.train import warn_unusual_learning_rate

    config = build_config({"data": {"path": "/d.csv"}}, overrides)
    with caplog.at_level("WARNING", logger="tuneline"):
        got = warn_unusual_learning_rate(config)
    assert got == (pytest.approx(ratio) if ratio is not None else None)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert (words in warned[0]) if words else not warned


@pytest.mark.parametrize("rows, overrides, steps, words", [
    (286, [], 27, "takes only 27 optimizer steps (286 rows in batches of 32, 3 epochs): a fine-tune rarely learns "
                  "much in under 30 and may stay at the majority class; give it more with --set train.epochs=4 or "
                  "--set train.batch_size=16, or more rows"),
    # no batch of 4 rows or more gives 30 steps here (a quarter of it, 8, gave 13): only the epochs are suggested
    (100, ["train.epochs=1"], 4,
     "takes only 4 optimizer steps (100 rows in batches of 32, 1 epoch): a fine-tune rarely learns much in under 30 "
     "and may stay at the majority class; give it more with --set train.epochs=8, or more rows"),
    (60, ["train.epochs=1", "train.batch_size=16", "train.gradient_accumulation_steps=2"], 2,
     "takes only 2 optimizer steps (60 rows in batches of 32, 1 epoch): a fine-tune rarely learns much in under 30 "
     "and may stay at the majority class; give it more with --set train.epochs=15, or more rows"),
    (320, [], None, None),  # 10 steps an epoch, 3 epochs: 30
    (60, ["train.max_steps=4"], None, None),  # the steps were chosen, not fallen into
])
def test_too_few_optimizer_steps_from_the_base_model_are_warned_about(rows, overrides, steps, words, caplog):
    """286 SST-2 training rows at the default batch of 32 for 1 epoch (9 steps) left MiniLM at the majority class
    (test accuracy 0.50, majority 0.49) and the gate refused it as "learned too little", without saying why."""
    from tuneline.tasks.train import warn_few_steps

    config = build_config({"data": {"path": "/d.csv"}}, overrides)
    with caplog.at_level("WARNING", logger="tuneline"):
        got = warn_few_steps(config, rows)
    assert got == steps
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert (warned == [f"training from model.base {words}"]) if words else not warned


def test_a_model_base_that_cannot_be_read_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """It failed at the tokenizer step, after load, validate, split and lineage (about 25 s), in Hugging Face's words
    ("Repo id must be ..."), followed by a Prefect log line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("text,label\na,b\n")
    (tmp_path / "empty").mkdir()
    path = write_config(tmp_path, {"data": {"path": "d.csv"}, "work_dir": "out"})
    for base, words in [("no such/model id", "is neither a model folder nor a model id in the local Hugging Face"),
                        ("org/never-downloaded-bert", "is neither a model folder nor a model id"),
                        ("./absent", "there is no such folder"),
                        ("./empty", "is a folder without config.json")]:
        assert main(["train", "-c", str(path), "--set", f"model.base={base}"]) == 2  # a config error's code
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()  # refused before the run made anything


def test_a_seed_numpy_cannot_take_is_a_config_error(tmp_path, monkeypatch, capsys):
    """train.seed=-1 passed validation, then crashed in build_model ("Seed must be between 0 and 2**32 - 1") with a
    traceback and the line "this is not a problem with your data or config" (training QA)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("text,label\na,b\n")
    path = write_config(tmp_path, {"data": {"path": "d.csv"}, "work_dir": "out"})
    for seed in ("-1", str(2**32)):
        assert main(["show-config", "-c", str(path), "--set", f"train.seed={seed}"]) == 2
        assert capsys.readouterr().err.startswith("tuneline: invalid configuration: train.seed: ")
    assert main(["show-config", "-c", str(path), "--set", f"train.seed={2**32 - 1}"]) == 0


def test_a_max_length_beyond_the_models_positions_is_a_config_error(tmp_path, monkeypatch, capsys):
    """tokenize.max_length=1024 with MiniLM (512 positions) crashed in the Trainer with a traceback, or, when no
    training text was that long, registered a champion that crashed on the first long input."""
    from tuneline.runtime import check_max_length, position_limit

    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("text,label\na,b\n")
    path = write_config(tmp_path, {"data": {"path": "d.csv"}, "work_dir": "out"})
    assert main(["train", "-c", str(path), "--set", "tokenize.max_length=1024"]) == 2
    assert capsys.readouterr().err.strip() == ("tuneline: tokenize.max_length=1024 is more than model.base='minilm' "
                                               "can read (512 tokens); set tokenize.max_length to 512 or less")
    assert not (tmp_path / "out").exists()
    assert position_limit(int(1e30)) is None and position_limit(512) == 512
    check_max_length("minilm", 512, 512)  # the limit itself is fine
    with pytest.raises(ConfigError, match="can read \\(128 tokens\\)"):  # the flow's own check, from the tokenizer
        check_max_length("x", 129, position_limit(128))


@pytest.mark.parametrize("override", ["train.learning_rate=inf", "train.epochs=1e400", "train.weight_decay=nan",
                                      "train.epochs=.inf"])
def test_a_number_that_is_not_finite_is_refused_by_the_config(override):
    """``train.learning_rate=inf`` passed ``gt=0``: the run trained NaN weights, reported accuracy 0.80 (every row
    predicted the first class), registered the model and served NaN scores; ``train.epochs=inf`` crashed mid-run."""
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{re.escape(key)}: Input should be a finite number"):
        build_config({"data": {"path": "/d.csv"}}, [override])


@pytest.mark.parametrize("cron", ["0 3 * *", "61 3 * * *", "every night"])
def test_a_cron_that_is_not_one_is_refused_with_the_config(cron):
    """``retrain.cron: '0 3 * *'`` passed show-config and validate and was refused only by ``serve``, after it asked
    for a Prefect API (CLI QA); the time zone was already checked here."""
    with pytest.raises(ConfigError, match=re.escape(f"retrain.cron: {cron!r} is not a cron expression (five fields: "
                                                    "minute 0-59, hour 0-23, day of month, month, day of week; e.g. "
                                                    "'0 3 * * *' for 03:00 daily)")):
        build_config({"data": {"path": "/d.csv"}}, [f"retrain.cron={cron}"])
    assert build_config({"data": {"path": "/d.csv"}}, ["retrain.cron=0 3 * * 1-5"]).retrain.cron == "0 3 * * 1-5"


@pytest.mark.parametrize("override, key, expected", [
    ("tracking.run_name=123", ("tracking", "run_name"), "123"),  # "Input should be a valid string (got 123)"
    ("tracking.run_name=yes", ("tracking", "run_name"), "yes"),  # (got True)
    ("tracking.experiment=2024", ("tracking", "experiment"), "2024"),
    ("tracking.run_name=exp #3", ("tracking", "run_name"), "exp #3"),  # YAML's comment cut it to 'exp'
    ("tracking.run_name='exp #3'", ("tracking", "run_name"), "exp #3"),
    ("train.epochs=2", ("train", "epochs"), 2.0),  # a number where a number belongs stays one
])
def test_a_set_value_is_what_the_command_line_says_for_a_text_key(override, key, expected):
    """CLI QA: ``--set tracking.run_name=123`` was refused, ``=yes`` read as True, and ``'...=exp #3'`` became
    ``exp`` without a word."""
    config = build_config({"data": {"path": "/d.csv"}}, [override])
    assert getattr(getattr(config, key[0]), key[1]) == expected


def test_a_lora_or_freeze_setting_the_model_cannot_take_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """``model.lora.target_modules=[query, vaule]`` trained adapters on ``query`` alone, with ``["query", "vaule"]``
    logged as the run's params; ``[attention]`` printed peft's 13-line dump of the module, after the data had been
    loaded, with exit 1 (strategies QA). Each entry must name a linear layer of the model, and the encoder's layer
    counts bound top_layers and bottom_layers, checked before the run makes anything (exit 2: a config key)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("text,label\na,b\n")
    path = write_config(tmp_path, {"data": {"path": "d.csv"}, "work_dir": "out"})
    linear = "the encoder's linear layers are named dense, key, query, value"
    for overrides, said in [
            (["model.lora.target_modules=[query, vaule]"],
             f"model.lora.target_modules: 'vaule' names no layer of this model (did you mean 'value'?); {linear}"),
            (["model.lora.target_modules=[attention]"],
             f"model.lora.target_modules: 'attention' names a BertAttention, not a linear layer; {linear}"),
            (["model.lora.target_modules=[q_proj, v_proj]"],
             f"model.lora.target_modules: 'q_proj' names no layer of this model; {linear}"),
            # the head trains in full anyway: peft refused it only at build-model, with two tracebacks (QA)
            (["model.lora.target_modules=[query, classifier]"],
             f"model.lora.target_modules: 'classifier' names the task head, which trains in full under every "
             f"strategy; {linear}"),
            (["model.lora.top_layers=7"], "model.lora.top_layers=7 but the encoder has 6 layers")]:
        sets = [item for override in ["model.strategy=lora", *overrides] for item in ("--set", override)]
        assert main(["train", "-c", str(path), *sets]) == 2, overrides
        assert capsys.readouterr().err.strip() == f"tuneline: {said}"
    assert main(["train", "-c", str(path), "--set", "model.strategy=freeze", "--set",
                 "model.freeze.bottom_layers=9"]) == 2
    assert capsys.readouterr().err.strip() == "tuneline: model.freeze.bottom_layers=9 but the encoder has 6 layers"
    # every encoder part frozen the long way trained the head at 5e-5 and learned nothing on CoNLL, where
    # all_but_head (1e-3) learned (strategies QA): pointed at all_but_head
    assert main(["train", "-c", str(path), "--set", "model.strategy=freeze", "--set", "model.freeze.embeddings=true",
                 "--set", "model.freeze.bottom_layers=6"]) == 2
    assert capsys.readouterr().err.strip() == (
        "tuneline: model.freeze: embeddings and all 6 encoder layers frozen leaves only the head to train; set "
        "model.freeze.all_but_head=true instead (it also freezes the pooler and trains the head at its own learning "
        "rate, 1e-3)")
    assert not (tmp_path / "out").exists()  # refused before the run made anything
    # an empty list adapts nothing; a section's own check names its key once ("model: model.lora.r ..." before)
    assert main(["show-config", "-c", str(path), "--set", "model.strategy=lora", "--set",
                 "model.lora.target_modules=[]"]) == 2
    assert "model.lora.target_modules: List should have at least 1 item" in capsys.readouterr().err
    # all_but_head freezes the whole encoder: a part named beside it was ignored without a word (QA)
    assert main(["show-config", "-c", str(path), "--set", "model.strategy=freeze", "--set",
                 "model.freeze.all_but_head=true", "--set", "model.freeze.bottom_layers=3"]) == 2
    assert capsys.readouterr().err.strip() == (
        "tuneline: invalid configuration: model.freeze.all_but_head freezes the whole encoder, so "
        "model.freeze.bottom_layers=3 says nothing more: remove it, or set all_but_head=false to freeze only the parts "
        "named")
    assert main(["show-config", "-c", str(path), "--set", "model.lora.r=8"]) == 2
    assert capsys.readouterr().err.strip() == (
        "tuneline: invalid configuration: model.lora.r is set but model.strategy is 'full', which ignores it: add "
        "--set model.strategy=lora (or remove the model.lora setting)")


def test_the_walkthrough_config_leaves_the_learning_rate_to_the_strategy(tmp_path, monkeypatch):
    """`tuneline demo --write-config` pinned the learning rate the config had filled in from the default strategy
    (5e-5): `tuneline train -c loop.yaml --set model.strategy=lora` then trained the adapters at a full fine-tune's
    rate, learned nothing (macro-F1 0.17) and was refused by the gate (user trial)."""
    import yaml

    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--write-config", "loop.yaml"]) == 0
    written = yaml.safe_load((tmp_path / "loop.yaml").read_text())
    assert "learning_rate" not in written["train"] and written["train"]["epochs"] == 2
    assert load_config(tmp_path / "loop.yaml").train.learning_rate == 5e-5
    assert load_config(tmp_path / "loop.yaml", ["model.strategy=lora"]).train.learning_rate == 5e-4
