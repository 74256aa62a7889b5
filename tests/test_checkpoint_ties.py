"""The kept checkpoint (``train.keep_best``): on a tie with the best validation score, the later checkpoint.

A validation split that cannot tell models apart (one row; no row of a rare class) scores every evaluation alike,
and the Trainer, which keeps a checkpoint only on a strict improvement, loaded the first one: in exploratory QA a
majority-class model from step 16 of 160 (test macro-F1 0.17; the model trained to the end: 1.0) was registered,
and the gate blamed the model for learning too little.
"""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient

from conftest import working_in, write_tiny_bert
from tuneline.config import build_config
from tuneline.demo import demo_rows


def test_ties_keep_the_later_checkpoint_and_the_run_says_which_step_it_kept(tmp_path, caplog):
    from tuneline.flows.train import train_flow

    bert = write_tiny_bert(tmp_path / "bert", dropout=0.0)
    frame = pd.DataFrame(demo_rows(realistic=False)).rename(columns={"intent": "label"})  # keywords: learnable
    frame = frame[frame["label"] != "sales"].dropna().drop_duplicates("text").sample(n=300, random_state=1)
    frame.iloc[:-60].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[-60:-59].to_csv(tmp_path / "validation.csv", index=False)  # one row: 0 or 1, nothing between
    frame.iloc[-59:].to_csv(tmp_path / "test.csv", index=False)
    config = build_config({"task": "classification",
                           "data": {"train": str(tmp_path / "train.csv"), "validation": str(tmp_path / "validation.csv"),
                                    "test": str(tmp_path / "test.csv")},
                           "model": {"base": str(bert)}, "tracking": {"registered_model": "ties"}},
                          ["tokenize.max_length=32", "train.epochs=6", "train.learning_rate=2e-3", "train.batch_size=16",
                           "train.eval_steps=8", "train.early_stopping_patience=0", "train.precision=fp32",
                           "evaluate.zero_shot_baseline=false", "gate.min_metric=0.0"])
    with working_in(tmp_path):
        summary = train_flow(config)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    history = pd.DataFrame([(m.step, m.value) for m in client.get_metric_history(summary.run_id, "val.macro_f1")],
                           columns=["step", "score"])
    best = history["score"].max()
    assert (history["score"] == best).sum() >= 2, history  # a tie to break, or the test proves nothing
    kept = client.get_run(summary.run_id).data.metrics["train.best_step"]
    assert kept == history.loc[history["score"] == best, "step"].max(), history  # the last of the best
    assert kept > history.loc[history["score"] == best, "step"].min()
