"""Evaluate a tagger: the fine-tuned model and the all-'O' baseline, scored per original word on the test split.

The fine-tuned model is run through :class:`~tuneline.pyfunc.token_tagger.TokenTagger`, the code that serves it from
the registry, on the test sentences' own words. Nothing is truncated: long sentences are tagged in overlapping
windows, so every gold word is compared with a prediction. The "before" baseline is the majority tag, 'O' for every
word: its word accuracy is high and its entity F1 is 0, which is what fine-tuning has to beat.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tuneline.pyfunc.token_tagger import TokenTagger
from tuneline.tasks.common import pipeline_task, task_logger
from tuneline.tasks.evaluate import Evaluation
from tuneline.tasks.metrics_tokens import seqeval_scores


@pipeline_task(name="evaluate-tagger")
def evaluate_tagger(model_dir: Path, test: pd.DataFrame, batch_size: int = 64) -> Evaluation:
    """Tag the test sentences with the saved model and score them (seqeval, strict IOB2, per word)."""
    frame = TokenTagger(str(model_dir)).predict_frame(pd.DataFrame({"tokens": test["tokens"].tolist()}),
                                                      batch_size=batch_size)
    predicted = [list(t) for t in frame["tags"]]
    metrics = seqeval_scores([list(t) for t in test["tags"]], predicted)
    task_logger().info("fine-tuned on test: %s", ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return Evaluation("fine_tuned", metrics, predicted)


@pipeline_task(name="all-o-baseline")
def all_outside_baseline(test: pd.DataFrame) -> Evaluation:
    """Tag every word 'O' (the majority tag of any NER corpus)."""
    predicted = [["O"] * len(tags) for tags in test["tags"]]
    return Evaluation("all_o", seqeval_scores([list(t) for t in test["tags"]], predicted), predicted)
