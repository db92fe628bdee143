"""The Great Expectations rule behind every police rule: a verdict column must not hold a verdict.

``police.check`` gives each record it has something to say about one verdict per question
(``police_id``: not_found / not_found_near; ``police_name``: the kind of name mismatch;
``police_status``: cancelled / dead). The suite ``expectations/roster_police.json`` (suite
``meta.stage`` = ``police``) declares each rule as this expectation over one column and one set
of verdicts, with its code, severity, Chinese message and suggestion in ``meta``, like every
other rule. Defining the classes registers them with GX; ``police.check`` imports this module
where it runs the suite.
"""

from __future__ import annotations

import pandas as pd
from great_expectations.core.suite_parameters import SuiteParameterDict  # noqa: TC002
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider
from great_expectations.expectations.metrics.map_metric_provider import column_condition_partial


def verdict_absent(column: pd.Series, verdicts: list[str]) -> pd.Series:
    """True where the value is none of ``verdicts`` (missing values pass)."""
    hit = column.astype("string[pyarrow]").isin(list(verdicts))
    return ~hit.fillna(False).astype(bool)


class ColumnValuesPoliceVerdictAbsent(ColumnMapMetricProvider):
    condition_metric_name = "column_values.police_verdict_absent"
    condition_value_keys = ("verdicts",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, verdicts, **kwargs):
        return verdict_absent(column, verdicts)


class ExpectPoliceVerdictToBeAbsent(ColumnMapExpectation):
    """Expect no value of the verdict column to be one of ``verdicts``."""

    verdicts: list | SuiteParameterDict
    map_metric = "column_values.police_verdict_absent"
    success_keys = ("verdicts", "mostly")
    args_keys = ("column", "verdicts")
