"""Secrets never stored or printed; custom model code never run unless trusted; registered models hold safetensors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests_support import run_config
from tuneline.cli import main, secrets_as_references
from tuneline.config import ConfigError, ModelConfig
from tuneline.deployments.retrain import training_deployment
from tuneline.runtime import redact, resolve_tracking_uri
from tuneline.tasks.model import ModelBuildError, build_model, load_tokenizer


@pytest.mark.parametrize("secret_url, hidden", [
    ("postgresql://bob:p@ss/w0rd@db:5432/mlflow", "postgresql://***@db:5432/mlflow"),
    ("https://b.s3.amazonaws.com/m.bin?X-Amz-Signature=abcd&X-Amz-Credential=AKIA%2F1&part=1",
     "https://b.s3.amazonaws.com/m.bin?X-Amz-Signature=***&X-Amz-Credential=***&part=1"),
    ("https://acct.blob.core.windows.net/c/m?sv=2020-08-04&sig=Zm9v", "https://acct.blob.core.windows.net/c/m?sv=***&sig=***"),
])
def test_redaction_hides_passwords_with_at_and_slash_and_signed_urls(secret_url, hidden):
    assert redact(secret_url) == hidden
    assert redact(f"error talking to {secret_url} (timeout)") == f"error talking to {hidden} (timeout)"


def test_the_flow_run_parameters_hold_a_reference_not_the_password(monkeypatch):
    monkeypatch.delenv("TUNELINE_TRACKING_URI", raising=False)
    secret = "postgresql://bob:p@ss/w0rd@db:5432/mlflow"
    config = run_config("classification", f"tracking.tracking_uri={secret}", path="/d.csv")
    safe = secrets_as_references(config)
    stored = json.dumps(safe.model_dump(mode="json"))  # what Prefect stores as the flow run's parameter
    assert "w0rd" not in stored and "${TUNELINE_TRACKING_URI}" in stored
    assert resolve_tracking_uri(safe.tracking.tracking_uri) == secret  # the run still reaches the real store
    assert config.tracking.tracking_uri == secret  # the caller's config is untouched


def test_a_deployment_refuses_a_literal_secret_and_takes_a_reference(monkeypatch):
    config = run_config("classification", "tracking.tracking_uri=postgresql://bob:s3cret@db/mlflow", path="/d.csv")
    with pytest.raises(ConfigError, match=r"holds credentials"):
        training_deployment(config)
    referenced = run_config("classification", "tracking.tracking_uri=${MLFLOW_URI}", path="/d.csv")
    deployment = training_deployment(referenced)
    assert deployment.parameters["config"]["tracking"]["tracking_uri"] == "${MLFLOW_URI}"
    monkeypatch.delenv("MLFLOW_URI", raising=False)
    with pytest.raises(ConfigError, match="MLFLOW_URI is not set"):
        resolve_tracking_uri("${MLFLOW_URI}")


def test_a_cli_error_never_prints_the_password(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  path: absent.csv\ntracking:\n  tracking_uri: postgresql://bob:s3cret@db/mlflow\n"
                      "train:\n  epochs: [1]\n")
    assert main(["show-config", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "train.epochs" in err and "s3cret" not in err


def write_custom_code_model(folder: Path, tiny_bert: Path) -> Path:
    """A model folder whose config asks transformers to import its own Python file (which would leave a marker)."""
    import shutil

    shutil.copytree(tiny_bert, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "custom.CustomConfig",
                          "AutoModelForSequenceClassification": "custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config))
    marker = folder.parent / "custom-code-ran"
    (folder / "custom.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                      "from transformers import BertConfig as CustomConfig\n"
                                      "from transformers import BertForSequenceClassification as CustomModel\n")
    return folder


def test_a_model_folder_with_custom_code_is_refused_unless_trusted(tmp_path, tiny_bert):
    folder = write_custom_code_model(tmp_path / "custom", tiny_bert)
    with pytest.raises(ModelBuildError, match="trust_remote_code: true"):
        build_model.fn(ModelConfig(base=str(folder)), "classification", ["a", "b"])
    with pytest.raises(ModelBuildError, match="ships its own Python code"):
        load_tokenizer.fn(ModelConfig(base=str(folder)))
    assert not (tmp_path / "custom-code-ran").exists()  # its code never ran
    assert build_model.fn(ModelConfig(base=str(tiny_bert)), "classification", ["a", "b"]).trainable_parameters


def test_params_whose_name_ends_with_a_secret_word_are_hidden_and_others_are_not():
    """``model.head_token_only`` and ``data.tokens_column`` were logged to MLflow as ``***`` (a secret's word
    anywhere in the name): a run's own settings could not be read back."""
    from tuneline.runtime import redact_params

    params = {"model.head_token_only": True, "data.tokens_column": "words", "tokenize.max_length": 128,
              "hub.hf_token": "hf_abc", "auth.api_key": "k", "tracking.password": "p", "db.credentials": "c",
              "storage.secret": "s"}
    assert redact_params(params) == {"model.head_token_only": "True", "data.tokens_column": "words",
                                     "tokenize.max_length": "128", "hub.hf_token": "***", "auth.api_key": "***",
                                     "tracking.password": "***", "db.credentials": "***", "storage.secret": "***"}
