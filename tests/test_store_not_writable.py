"""A local MLflow store that cannot be written (a run started in a read-only folder) is one line naming the settings
that move it, not a Prefect ERROR with a 40-line traceback through the lock file's creation (QA)."""

from __future__ import annotations

from conftest import working_in
from tuneline.cli import main
from tuneline.demo import demo_config_dict, write_demo_csv


def test_a_store_in_a_folder_that_cannot_be_written_is_one_line(tmp_path, tiny_bert, capsys):
    import yaml

    (tmp_path / "afile").write_text("not a folder")  # root writes anywhere: a file in the path fails as EROFS does
    with working_in(tmp_path):
        data = write_demo_csv(tmp_path / "tickets.csv", realistic=False)
        config = demo_config_dict(data)
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
        code = main(["train", "-c", "c.yaml", "--set", f"model.base={tiny_bert}", "--set", "train.max_steps=2",
                     "--set", f"tracking.tracking_uri=sqlite:///{tmp_path}/afile/mlflow.db"])
    err = capsys.readouterr().err
    assert code == 1
    said = [line for line in err.splitlines() if line.startswith("tuneline: ")]
    assert said == [f"tuneline: cannot write the local MLflow store sqlite:///{tmp_path}/afile/mlflow.db (Not a "
                    f"directory: {tmp_path}/afile/tuneline-locks.d): run from a folder you can write to, or point "
                    "tracking.tracking_uri (e.g. sqlite:////data/mlflow.db) and work_dir at one"], err[-3000:]
    assert "Traceback" not in err
