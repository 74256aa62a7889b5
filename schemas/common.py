"""Checks that every task's contract adds the same way (run-specific context on top of the static rules)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pandera.pandas as pa


def with_checks(schema: pa.DataFrameSchema, column: str, *checks: pa.Check) -> pa.DataFrameSchema:
    """``schema`` with ``checks`` appended to the column's own (``update_column`` would replace them)."""
    return schema.update_column(column, checks=[*schema.columns[column].checks, *checks])


def not_in_train(train_texts: Iterable[str], name: str) -> pa.Check:
    """Reject rows whose stripped text also occurs in train: a leaked text would inflate validation/test metrics."""
    seen = frozenset(str(t).strip() for t in train_texts)
    return pa.Check(lambda text: ~text.astype("string").str.strip().isin(seen).fillna(False).astype(bool),
                    name=name, ignore_na=True)


def non_empty_string(values: pd.Series) -> pd.Series:
    """True where a value is a string with something other than whitespace: the text rule of every text kind."""
    is_str = values.map(lambda value: isinstance(value, str))
    return is_str & (values.where(is_str, "").astype("string").str.strip().str.len() > 0)
