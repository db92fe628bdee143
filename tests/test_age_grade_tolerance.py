"""Warnings are not homework: AGE_GRADE flags only ages a school would want to check, with its
tolerance in the suite (expectations/roster_person.json), not in code.

Defaults: more than one year older or younger than the grade's nominal window (a deferral, a
repeated year or a local cut-off date a few months later are ordinary), and never in a special
education school (学校标识码 category 51), whose pupils span many ages.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from xueji_quality import generator, ingest, validate

AS_OF = date(2026, 11, 28)  # school year 2026: 三年级 born 2017-09-01 .. 2018-08-31
SUITES = Path(__file__).parents[1] / "expectations"
# record → (birth date, school category), all in 三年级
CASES = {
    "eleven months older": ("2016-10-01", "21"),
    "two years older": ("2015-06-01", "21"),
    "two years older, special education": ("2015-06-01", "51"),
    "two months younger": ("2018-11-01", "21"),
    "over a year younger": ("2019-10-01", "21"),
    "two years older, no school code": ("2015-06-01", None),
    "inside the window": ("2018-01-15", "21"),
}


@pytest.fixture(scope="module")
def roster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("age_grade")
    generator.write_sample(folder, 300, 3, "44", "csv", counties=1)
    frame = ingest.read_exports([folder / "roster.csv"], "44").roster.iloc[: len(CASES)].copy()
    frame["record_id"] = list(CASES)
    frame["birth_date"] = [birth for birth, _ in CASES.values()]
    frame["grade"] = "三年级"
    frame["grade_level"] = pd.array([3] * len(CASES), dtype=frame["grade_level"].dtype)
    codes = [None if c is None else c + "44000001" for _, c in CASES.values()]
    frame["school_code"] = pd.array(codes, dtype=frame["school_code"].dtype)
    return frame.reset_index(drop=True)


def flagged(roster, suites_dir: Path | None = None) -> set[str]:
    problems = validate.validate_roster(roster, "44", AS_OF, suites_dir=suites_dir, workers=1)
    return set(problems.loc[problems["rule"] == "AGE_GRADE", "record_id"])


def test_defaults_flag_only_what_a_school_would_check(roster):
    assert flagged(roster) == {
        "two years older",
        "over a year younger",
        "two years older, no school code",
    }


def test_the_tolerance_is_data_in_the_suite(roster, tmp_path):
    suites = tmp_path / "suites"
    shutil.copytree(SUITES, suites)
    path = suites / "roster_person.json"
    spec = json.loads(path.read_text(encoding="utf-8"))
    (rule,) = [e for e in spec["expectations"] if e["meta"]["rule"] == "AGE_GRADE"]
    rule["kwargs"].update(older_years=0, younger_years=0)
    del rule["kwargs"]["row_condition"]
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    assert flagged(roster, suites) == set(CASES) - {"inside the window"}
