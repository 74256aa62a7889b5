"""``tuneline show-config`` prints no literal password (operator QA: ``ledger.url``'s was printed in clear while every
other command redacts it), and prints a ``${VAR}`` reference as written: it is no secret."""

from __future__ import annotations

import subprocess
import sys

import yaml

from tuneline.cli import main

LEDGER = "postgresql+psycopg://tuneline:qaSecretPw4242@127.0.0.1:5432/tuneline"
TRACKING = "http://trainer:${TUNELINE_QA_PW}@127.0.0.1:5000"


def write_config(folder, ledger: str = LEDGER, tracking: str = TRACKING):
    path = folder / "cfg.yaml"
    path.write_text(yaml.safe_dump({"data": {"path": "d.csv"}, "ledger": {"url": ledger},
                                    "tracking": {"tracking_uri": tracking}}))
    return path


def test_a_literal_password_is_redacted_and_a_reference_printed_as_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TUNELINE_QA_PW", "envSecret77")
    assert main(["show-config", "-c", str(write_config(tmp_path))]) == 0
    out = capsys.readouterr().out
    shown = yaml.safe_load(out)
    assert shown["ledger"]["url"] == "postgresql+psycopg://***@127.0.0.1:5432/tuneline"
    assert shown["tracking"]["tracking_uri"] == TRACKING
    assert "qaSecretPw4242" not in out and "envSecret77" not in out


def test_a_secret_query_parameter_and_an_override_are_redacted_too(tmp_path, capsys):
    path = write_config(tmp_path, ledger="postgresql+psycopg://tuneline:${TUNELINE_QA_PW}@db/tuneline",
                        tracking="sqlite:///mlflow.db")
    assert main(["show-config", "-c", str(path), "--set", "tracking.tracking_uri=https://host/mlflow?token=tok3n"
                 ]) == 0
    out = capsys.readouterr().out
    shown = yaml.safe_load(out)
    assert shown["ledger"]["url"] == "postgresql+psycopg://tuneline:${TUNELINE_QA_PW}@db/tuneline"
    assert shown["tracking"]["tracking_uri"] == "https://host/mlflow?token=***"
    assert "tok3n" not in out


def test_the_installed_command_prints_no_password(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tuneline.cli", "show-config", "-c", str(write_config(tmp_path))],
                            capture_output=True, text=True, timeout=120, env={"TUNELINE_QA_PW": "envSecret77",
                                                                             "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "qaSecretPw4242" not in result.stdout + result.stderr
    assert "url: postgresql+psycopg://***@127.0.0.1:5432/tuneline" in result.stdout
