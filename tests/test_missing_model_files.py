"""A registered version whose model files are gone from the artifact store (a volume lost, a folder moved): the
retraining loop's champion scoring, `tuneline predict` and `doctor` said only MLflow's ``No such artifact: ''`` or
nothing at all (integrity QA). A real SQLite MLflow store and a real logged pyfunc model; nothing mocked."""

from __future__ import annotations

import shutil

import mlflow
import pytest

from tuneline.cli import main
from tuneline.loaded_versions import ModelFilesMissing, forget_loaded, load_version
from tests_support import store_client


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


@pytest.fixture
def lost_champion(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment("lost", artifact_location=(tmp_path / "art").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        mlflow.pyfunc.log_model(name="model", python_model=Echo(), registered_model_name="lost")
    client = store_client(uri)
    client.set_registered_model_alias("lost", "champion", "1")
    forget_loaded()
    assert load_version("lost", "1") is not None  # loads while its files are there
    forget_loaded()
    (folder,) = [p for p in (tmp_path / "art").rglob("MLmodel")]
    shutil.rmtree(folder.parent)
    yield uri, tmp_path
    forget_loaded()


def test_loading_a_version_whose_files_are_gone_names_the_version_and_what_to_do(lost_champion):
    with pytest.raises(ModelFilesMissing, match=r"the model files of lost v1 are missing from the artifact store "
                                                 r"\(nothing at models:/m-\w+\): restore them from a backup, or make "
                                                 r"another version champion \(tuneline promote lost VERSION"):
        load_version("lost", "1")


def test_doctor_and_predict_name_the_missing_files(lost_champion, capsys):
    uri, folder = lost_champion
    assert main(["doctor", "--model", "lost", "--tracking-uri", uri, "--work-dir", str(folder / "w")]) == 0
    assert "  lost@champion (v1): the model files of lost v1 are missing from the artifact store" in \
        capsys.readouterr().out
    assert main(["predict", "-m", "models:/lost@champion", "--tracking-uri", uri, "some text"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "its model files are missing from the artifact store" in err[0], err


def test_doctor_reads_the_files_in_the_store_it_was_given_not_mlflows_default(tmp_path, monkeypatch, capsys):
    """`doctor --tracking-uri URL` (or a config's MLflow server) called every champion's files missing, as MLflow
    resolved ``models:/`` in its default registry, ``./mlflow.db``, which it created empty (loop QA)."""
    store = tmp_path / "store"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment("kept", artifact_location=(store / "art").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        mlflow.pyfunc.log_model(name="model", python_model=Echo(), registered_model_name="kept")
    store_client(uri).set_registered_model_alias("kept", "champion", "1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    mlflow.set_tracking_uri("")  # MLflow's own default: what a fresh `tuneline doctor` process has
    mlflow.set_registry_uri("")
    assert main(["doctor", "--model", "kept", "--tracking-uri", uri, "--work-dir", str(elsewhere)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"registry {uri}: 1 registered model(s)") and "missing" not in out, out
    assert not (elsewhere / "mlflow.db").exists() and not (elsewhere / "mlruns").exists()
    shutil.rmtree(next((store / "art").rglob("MLmodel")).parent)  # and gone files are still found
    assert main(["doctor", "--model", "kept", "--tracking-uri", uri, "--work-dir", str(elsewhere)]) == 0
    assert "kept@champion (v1): the model files of kept v1 are missing from the artifact store" in \
        capsys.readouterr().out


def test_promote_behind_a_held_gate_lock_says_it_waits_and_for_whom(tmp_path, monkeypatch, capfd):
    """`promote` while another process held the model's gate lock printed nothing until it got it (up to 10
    minutes): the waiting line was logged at INFO, which the command does not show (training QA)."""
    import subprocess
    import sys
    import textwrap
    import time

    from tuneline.locking import default_lock_url

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment("held", artifact_location=(tmp_path / "art").as_uri())
    for _ in range(2):
        with mlflow.start_run(experiment_id=experiment):
            mlflow.pyfunc.log_model(name="model", python_model=Echo(), registered_model_name="held")
    ready = tmp_path / "holding"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import pathlib, time
        from tuneline.locking import model_lock
        with model_lock("held", {default_lock_url(uri)!r}, use_prefect=False, holder="a gate at work"):
            pathlib.Path({str(ready)!r}).touch()
            time.sleep(4)
    """)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists()
        assert main(["promote", "held", "2", "--reason", "by hand", "--tracking-uri", uri]) == 0
    finally:
        holder.wait(timeout=60)
    err = capfd.readouterr().err
    assert "tuneline: waiting for the gate lock of model 'held' in " in err and "a gate at work" in err, err
    assert str(store_client(uri).get_model_version_by_alias("held", "champion").version) \
        == "2"
