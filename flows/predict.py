"""The batch prediction flow: a registered model and a file of inputs in, one file of predictions out."""

from __future__ import annotations

from prefect import flow

from tuneline.errors import quiet_console
from tuneline.interrupts import cancelled_when_stopped
from tuneline.tasks.predict_batch import BatchPrediction, predict_to_file, read_prediction_inputs, resolve_model_version


@flow(name="tuneline-predict-batch", on_running=[quiet_console],
      on_crashed=[cancelled_when_stopped])
def batch_predict_flow(model: str, input_path: str, output_path: str, tracking_uri: str | None = None,
                       batch_size: int = 1000, encoding: str = "utf-8", input_format: str = "auto",
                       skip_lines: int = 0) -> BatchPrediction:
    """Predict every row of ``input_path`` with one registered version and write them to ``output_path``.

    1. resolve ``model`` (NAME@ALIAS or NAME/VERSION) to one version number, read once: an alias that moves while
       the job runs changes nothing
    2. read the input file (CSV, TSV, JSONL, Parquet, a text file of one text a line, CoNLL words for NER; text
       files in ``encoding``; ``input_format`` else the file name says which) and check the columns that version's
       task kind reads
    3. predict ``batch_size`` rows at a time (progress in the Prefect log) and write input columns, predictions,
       ``model_name`` and ``model_version`` to a temporary file renamed onto ``output_path`` at the end

    Inference only: nothing is logged to MLflow.
    """
    resolved = resolve_model_version(model, tracking_uri)
    inputs = read_prediction_inputs(input_path, resolved.task, encoding, resolved.trained_columns, input_format,
                                    skip_lines)
    return predict_to_file(resolved, inputs, output_path, batch_size)
