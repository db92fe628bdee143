"""Great Expectations custom expectations for the roster rules (GX 1.x, pandas engine).

Each rule is a metric provider (a column-map or multicolumn-map condition computed by the
vectorised functions in ``xueji_quality.rules.checks``) and an expectation using it. Defining the
classes registers them with GX, so importing this module is enough for suites to use them by
their snake_case names (e.g. ``expect_id_number_check_character_to_be_valid``).

Run parameters that vary per run (the reference date ``as_of``, the run's ``province``) are
suite parameters: the JSON says ``{"$PARAMETER": "as_of"}`` and the run supplies the value.
"""

from __future__ import annotations

from typing import ClassVar

from great_expectations.compatibility import pydantic
from great_expectations.core.suite_parameters import SuiteParameterDict  # noqa: TC002
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    MulticolumnMapMetricProvider,
    column_condition_partial,
    multicolumn_condition_partial,
)

from xueji_quality.rules import checks

Param = str | SuiteParameterDict

# --- column-map rules ------------------------------------------------------------------------


class _MissingPassesMetric(ColumnMapMetricProvider):
    """A column rule that leaves missing values alone (REQUIRED_MISSING names them) by judging
    them itself, so GX need not set them aside: its pandas engine does that by selecting the
    batch's other rows, a copy of every column of the batch for each metric of each rule on a
    column with a missing value (a fifth of validation's CPU)."""

    filter_column_isnull = False


def _missing_passes(column, ok):
    """``ok``, and True wherever the value is missing."""
    return ok | column.isna().to_numpy()


class ColumnValuesFullmatchPattern(_MissingPassesMetric):
    """Whole-value regular expression match, vectorised (RE2 through pyarrow)."""

    condition_metric_name = "column_values.fullmatch_pattern"
    condition_value_keys = ("pattern",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, pattern, **kwargs):
        return _missing_passes(column, checks.fullmatch(column, pattern))


class ExpectColumnValuesToFullmatchPattern(ColumnMapExpectation):
    """Expect each value to match ``pattern`` as a whole (missing values are not checked)."""

    pattern: Param
    map_metric = "column_values.fullmatch_pattern"
    success_keys = ("pattern", "mostly")
    args_keys = ("column", "pattern")


class ColumnValuesSchoolInProvince(_MissingPassesMetric):
    condition_metric_name = "column_values.school_in_province"
    condition_value_keys = ("province",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, province, **kwargs):
        return _missing_passes(column, checks.school_in_province(column, province))


class ExpectSchoolCodeToBeInProvince(ColumnMapExpectation):
    """Expect digits 3-4 of the school code to be the run's province."""

    province: Param
    map_metric = "column_values.school_in_province"
    success_keys = ("province", "mostly")
    args_keys = ("column", "province")


class ColumnValuesCountyOfProvince(_MissingPassesMetric):
    condition_metric_name = "column_values.county_of_province"
    condition_value_keys = ("province", "year")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, province, year, **kwargs):
        return _missing_passes(column, checks.county_of_province(column, province, int(year)))


class ExpectCountyCodeToBeCountyOfProvince(ColumnMapExpectation):
    """Expect the county code to be a county-level code of the province in force in ``year``."""

    province: Param
    year: int | SuiteParameterDict = 2024
    map_metric = "column_values.county_of_province"
    success_keys = ("province", "year", "mostly")
    args_keys = ("column", "province")


# --- multicolumn rules -----------------------------------------------------------------------
# column_list order is fixed per expectation (see each docstring); the metric reads by position
# so that a suite may point a rule at differently named columns.


class _RosterMulticolumnExpectation(MulticolumnMapExpectation):
    # Rows are judged by the rule itself: a missing value must reach it (e.g. ID_MISSING).
    ignore_row_if: str = pydantic.Field(default="never")
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)


class IdNumberPresent(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.id_number_present"
    condition_domain_keys = (
        "batch_id",
        "table",
        "column_list",
        "row_condition",
        "condition_parser",
        "ignore_row_if",
    )

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, **kwargs):
        return checks.id_present(column_list.iloc[:, 0], column_list.iloc[:, 1])


class ExpectIdNumberToBePresent(_RosterMulticolumnExpectation):
    """column_list: [id_type, id_number]. A resident ID type needs a number."""

    map_metric = "multicolumn_values.id_number_present"


class IdNumberNotDamaged(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.id_number_not_damaged"
    condition_domain_keys = IdNumberPresent.condition_domain_keys

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, **kwargs):
        return checks.id_not_damaged(column_list.iloc[:, 0], column_list.iloc[:, 1])


class ExpectIdNumberToNotBeSpreadsheetDamaged(_RosterMulticolumnExpectation):
    """column_list: [id_number, student_no]. Not a spreadsheet float (4.40106E+17, ...000)."""

    map_metric = "multicolumn_values.id_number_not_damaged"


class IdNumberFormat(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.id_number_format"
    condition_domain_keys = IdNumberPresent.condition_domain_keys

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, **kwargs):
        return checks.id_format_ok(column_list.iloc[:, 0], column_list.iloc[:, 1])


class ExpectIdNumberToHaveResidentIdFormat(_RosterMulticolumnExpectation):
    """column_list: [id_type, id_number]. 17 digits and a digit or X (GB 11643)."""

    map_metric = "multicolumn_values.id_number_format"


class IdNumberChecksum(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.id_number_checksum"
    condition_domain_keys = IdNumberPresent.condition_domain_keys

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, **kwargs):
        return checks.id_checksum_ok(column_list.iloc[:, 0], column_list.iloc[:, 1])


class ExpectIdNumberCheckCharacterToBeValid(_RosterMulticolumnExpectation):
    """column_list: [id_type, id_number]. ISO 7064 MOD 11-2 check character."""

    map_metric = "multicolumn_values.id_number_checksum"


class IdNumberProvince(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.id_number_province"
    condition_domain_keys = IdNumberPresent.condition_domain_keys
    condition_value_keys = ("foreign_form",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, foreign_form=None, **kwargs):
        return checks.id_province_known(
            column_list.iloc[:, 0],
            column_list.iloc[:, 1],
            None if foreign_form is None else bool(foreign_form),
        )


class ExpectIdNumberProvinceToExist(_RosterMulticolumnExpectation):
    """column_list: [id_type, id_number]. First two digits one of the 34 province-level codes.

    ``foreign_form``: true judges only numbers beginning with 9 (a 外国人永久居留身份证 number
    typed as a resident ID), false only the others, null all; a suite gives each its message.
    """

    foreign_form: bool | None | SuiteParameterDict = None
    map_metric = "multicolumn_values.id_number_province"
    success_keys = ("foreign_form", "mostly")


class ForeignPermanentResidenceNumber(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.foreign_pr_number"
    condition_domain_keys = IdNumberPresent.condition_domain_keys
    condition_value_keys = ("as_of",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, as_of, **kwargs):
        return checks.foreign_pr_ok(column_list.iloc[:, 0], column_list.iloc[:, 1], as_of)


class ExpectForeignPermanentResidenceNumberToBeValid(_RosterMulticolumnExpectation):
    """column_list: [id_type, id_number]. Type 9 numbers beginning with 9: the 2023 form."""

    as_of: Param
    map_metric = "multicolumn_values.foreign_pr_number"
    success_keys = ("as_of", "mostly")


class IdNumberDate(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.id_number_date"
    condition_domain_keys = IdNumberPresent.condition_domain_keys
    condition_value_keys = ("as_of",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, as_of, **kwargs):
        return checks.id_date_ok(column_list.iloc[:, 0], column_list.iloc[:, 1], as_of)


class ExpectIdNumberBirthDateToBePossible(_RosterMulticolumnExpectation):
    """column_list: [id_type, id_number]. Real date, not after ``as_of``."""

    as_of: Param
    map_metric = "multicolumn_values.id_number_date"
    success_keys = ("as_of", "mostly")


class BirthDateMatchesId(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.birth_date_matches_id"
    condition_domain_keys = IdNumberPresent.condition_domain_keys

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, **kwargs):
        c = column_list
        return checks.birth_date_matches_id(c.iloc[:, 0], c.iloc[:, 1], c.iloc[:, 2])


class ExpectBirthDateToMatchIdNumber(_RosterMulticolumnExpectation):
    """column_list: [id_type, id_number, birth_date]."""

    map_metric = "multicolumn_values.birth_date_matches_id"


class SexMatchesId(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.sex_matches_id"
    condition_domain_keys = IdNumberPresent.condition_domain_keys

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, **kwargs):
        c = column_list
        return checks.sex_matches_id(c.iloc[:, 0], c.iloc[:, 1], c.iloc[:, 2])


class ExpectSexToMatchIdNumber(_RosterMulticolumnExpectation):
    """column_list: [id_type, id_number, sex]."""

    map_metric = "multicolumn_values.sex_matches_id"


class IdRegionKnown(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.id_region_known"
    condition_domain_keys = IdNumberPresent.condition_domain_keys

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, **kwargs):
        return checks.id_region_known(column_list.iloc[:, 0], column_list.iloc[:, 1])


class ExpectIdNumberAddressCodeToBeKnown(_RosterMulticolumnExpectation):
    """column_list: [id_type, id_number]. Address code issued at some time (GB/T 2260)."""

    map_metric = "multicolumn_values.id_region_known"


class IdRegionInForce(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.id_region_in_force"
    condition_domain_keys = IdNumberPresent.condition_domain_keys

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, **kwargs):
        return checks.id_region_in_force(column_list.iloc[:, 0], column_list.iloc[:, 1])


class ExpectIdNumberAddressCodeToBeInForce(_RosterMulticolumnExpectation):
    """column_list: [id_type, id_number]. Address code in force in the birth year."""

    map_metric = "multicolumn_values.id_region_in_force"


class StudentNoMatches(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.student_no_matches"
    condition_domain_keys = IdNumberPresent.condition_domain_keys
    condition_value_keys = ("letters", "compare_id", "date_start")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, letters, compare_id, date_start, **kwargs):
        c = column_list
        return checks.student_no_matches(
            c.iloc[:, 0],
            c.iloc[:, 1],
            c.iloc[:, 2],
            c.iloc[:, 3],
            letters=list(letters),
            compare_id=bool(compare_id),
            date_start=int(date_start),
        )


class ExpectStudentNoToMatchIdNumber(_RosterMulticolumnExpectation):
    """column_list: [student_no, id_type, id_number, birth_date]."""

    letters: list | SuiteParameterDict = ["G"]
    compare_id: bool | SuiteParameterDict = True
    date_start: int | SuiteParameterDict = 7
    map_metric = "multicolumn_values.student_no_matches"
    success_keys = ("letters", "compare_id", "date_start", "mostly")


class BirthDateFitsGrade(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.birth_date_fits_grade"
    condition_domain_keys = IdNumberPresent.condition_domain_keys
    condition_value_keys = ("as_of", "older_years", "younger_years")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, as_of, older_years, younger_years, **kwargs):
        c = column_list
        return checks.birth_date_fits_grade(
            c.iloc[:, 0], c.iloc[:, 1], as_of, int(older_years), int(younger_years)
        )


class ExpectBirthDateToFitGrade(_RosterMulticolumnExpectation):
    """column_list: [birth_date, grade_level]."""

    as_of: Param
    older_years: int | SuiteParameterDict = 1
    younger_years: int | SuiteParameterDict = 0
    map_metric = "multicolumn_values.birth_date_fits_grade"
    success_keys = ("as_of", "older_years", "younger_years", "mostly")


class EnrollDatePlausible(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.enroll_date_plausible"
    condition_domain_keys = IdNumberPresent.condition_domain_keys
    condition_value_keys = ("as_of",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list, as_of, **kwargs):
        return checks.enroll_date_ok(column_list.iloc[:, 0], column_list.iloc[:, 1], as_of)


class ExpectEnrollDateToBePlausible(_RosterMulticolumnExpectation):
    """column_list: [enroll_date, birth_date]."""

    as_of: Param
    map_metric = "multicolumn_values.enroll_date_plausible"
    success_keys = ("as_of", "mostly")


class ColumnValuesBirthDateValid(_MissingPassesMetric):
    condition_metric_name = "column_values.birth_date_valid"
    condition_value_keys = ("as_of", "earliest")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, as_of, earliest=checks.EARLIEST_BIRTH_DATE, **kwargs):
        return _missing_passes(column, checks.birth_date_valid(column, as_of, earliest))


class ExpectBirthDateToBeValid(ColumnMapExpectation):
    """Expect 出生日期 to be a real YYYY-MM-DD date from ``earliest`` to ``as_of``."""

    as_of: Param
    earliest: Param = checks.EARLIEST_BIRTH_DATE
    map_metric = "column_values.birth_date_valid"
    success_keys = ("as_of", "earliest", "mostly")
    args_keys = ("column",)
