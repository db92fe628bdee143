"""validate_roster end to end through Great Expectations: planted cases, suites as JSON, Data Docs,
and recall/false positives against the sample generator's truth."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest

from xueji_quality import schema
from xueji_quality.datadocs_index import windows_safe_name
from xueji_quality.rules.synthetic import clean_roster
from xueji_quality.standards import resident_id
from xueji_quality.validate import (
    DEFAULT_SUITES_DIR,
    default_workers,
    load_suites,
    rule_catalogue,
    validate_roster,
    validate_stage,
)

AS_OF = date(2026, 11, 28)


def make_id(address: str, yyyymmdd: str, sequence: int) -> str:
    body = f"{address}{yyyymmdd}{sequence:03d}"
    return body + resident_id.check_digit(body)


def replace_id(frame: pd.DataFrame, row: int, number: str, *, student_no: bool = True) -> None:
    frame.loc[row, "id_number"] = number
    if student_no:
        frame.loc[row, "student_no"] = "G" + number


def same_person_id(frame: pd.DataFrame, row: int, address: str) -> str:
    """A valid number with another address code, same birth date and sex as the row."""
    ymd = frame.loc[row, "birth_date"].replace("-", "")
    return make_id(address, ymd, 123 if frame.loc[row, "sex"] == "1" else 124)


def planted() -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """A clean roster with one planted case per row; expected rules per record_id."""
    frame = clean_roster(60, seed=3, as_of=AS_OF)
    expected: dict[str, set[str]] = {}

    def case(row: int, rules: set[str]) -> None:
        expected[frame.loc[row, "record_id"]] = rules

    good = frame.loc[1, "id_number"]
    frame.loc[1, "id_number"] = good[:17] + ("0" if good[17] != "0" else "1")
    case(1, {"ID_CHECKSUM"})
    frame.loc[2, "id_number"] = "4.40106E+17"
    case(2, {"ID_SPREADSHEET_DAMAGE"})
    zeroed = next(
        r for r in range(3, 60) if not resident_id.is_valid(frame.loc[r, "id_number"][:15] + "000")
    )
    frame.loc[zeroed, "id_number"] = frame.loc[zeroed, "id_number"][:15] + "000"
    case(zeroed, {"ID_SPREADSHEET_DAMAGE"})
    rows = iter(r for r in range(3, 60) if r != zeroed)

    row = next(rows)
    frame.loc[row, "id_number"] = (
        frame.loc[row, "id_number"][:6] + frame.loc[row, "id_number"][8:17]
    )
    case(row, {"ID_FORMAT"})
    row = next(rows)
    frame.loc[row, "id_number"] = frame.loc[row, "id_number"][:14] + "***X"
    case(row, {"ID_FORMAT"})
    row = next(rows)
    frame.loc[row, "id_number"] = pd.NA
    case(row, {"ID_MISSING"})
    row = next(rows)
    frame.loc[row, ["id_type", "id_number"]] = ["6", pd.NA]
    case(row, set())
    row = next(rows)
    replace_id(frame, row, make_id("440106", "20150230", 123))
    frame.loc[row, "sex"] = "1"
    case(row, {"ID_DATE"})
    row = next(rows)
    shown = pd.Timestamp(frame.loc[row, "birth_date"]) + pd.Timedelta(days=1)
    frame.loc[row, "birth_date"] = shown.strftime("%Y-%m-%d")
    frame.loc[row, "grade_level"] = pd.NA
    case(row, {"BIRTHDATE_MISMATCH"})
    row = next(rows)
    frame.loc[row, "sex"] = "2" if frame.loc[row, "sex"] == "1" else "1"
    case(row, {"SEX_MISMATCH"})
    row = next(rows)
    replace_id(frame, row, same_person_id(frame, row, "449999"))
    case(row, {"ID_REGION_UNKNOWN"})
    row = next(rows)
    replace_id(frame, row, same_person_id(frame, row, "999999"))
    case(row, {"ID_PROVINCE_UNKNOWN"})
    row = next(rows)
    replace_id(frame, row, same_person_id(frame, row, "200106"))
    frame.loc[row, "id_type"] = pd.NA  # no type: judged as a resident ID
    case(row, {"ID_PROVINCE_UNKNOWN", "REQUIRED_MISSING"})
    row = next(rows)
    replace_id(frame, row, same_person_id(frame, row, "944840"))  # a foreigner's PR number
    case(row, {"ID_PROVINCE_UNKNOWN"})
    row = next(rows)
    frame.loc[row, "id_type"] = "9"
    replace_id(frame, row, same_person_id(frame, row, "944840"), student_no=False)
    case(row, set())
    row = next(rows)
    frame.loc[row, "id_type"] = "9"
    broken = same_person_id(frame, row, "944840")
    replace_id(frame, row, broken[:17] + ("0" if broken[17] != "0" else "1"), student_no=False)
    case(row, {"FOREIGN_PR_FORMAT"})
    row = next(rows)
    frame.loc[row, "id_type"] = "7"
    replace_id(frame, row, same_person_id(frame, row, "820000"), student_no=False)
    case(row, set())
    row = next(r for r in rows if frame.loc[r, "birth_date"] >= "2015")
    replace_id(frame, row, same_person_id(frame, row, "511422"))  # 彭山县 2000-2014
    case(row, {"ID_REGION_ERA"})
    row = next(rows)
    replace_id(frame, row, same_person_id(frame, row, "810000"))
    case(row, set())
    row = next(rows)
    frame.loc[row, "student_no"] = "G123"
    case(row, {"STUDENT_NO_FORMAT"})
    row = next(rows)
    frame.loc[row, "student_no"] = "G" + same_person_id(frame, row, "440106")
    case(row, {"STUDENT_NO_MISMATCH"})
    row = next(rows)
    frame.loc[row, "student_no"] = "L440106" + "20000101" + "1234"
    case(row, {"STUDENT_NO_MISMATCH"})
    row = next(rows)
    frame.loc[row, "student_no"] = (
        "L440106" + frame.loc[row, "birth_date"].replace("-", "") + "1234"
    )
    case(row, set())
    for column, value, rule in [
        ("sex", "3", "SEX_CODE"),
        ("ethnicity", "99", "ETHNICITY_CODE"),
        ("id_type", "B", "ID_TYPE_CODE"),
        ("school_code", "214400012", "SCHOOL_CODE_FORMAT"),
        ("school_code", "2143000123", "SCHOOL_PROVINCE"),
        ("county_code", "430102", "COUNTY_UNKNOWN"),
        ("county_code", "441900", None),  # 东莞: a prefecture-level city without districts
        ("county_code", "442000", None),  # 中山
        ("name", "张 三", "NAME_CHARS"),
        ("name", "艾力.买买提", "NAME_CHARS"),
        ("name", pd.NA, "REQUIRED_MISSING"),
        ("guardian_name", "", "REQUIRED_MISSING"),
        ("enroll_date", "2030-09", "ENROLL_DATE"),
        ("enroll_date", "2026-13", "ENROLL_DATE"),
        ("phone", "12345", "PHONE_FORMAT"),
        ("name", "艾力·买买提", None),
        ("phone", "020-12345678", None),
        ("phone", pd.NA, None),
    ]:
        row = next(rows)
        frame.loc[row, column] = value
        case(row, {rule} if rule else set())
    row = next(rows)
    frame.loc[row, "grade_level"] = (
        frame.loc[row, "grade_level"] + 3 if frame.loc[row, "grade_level"] < 9 else 1
    )
    case(row, {"AGE_GRADE"})
    return frame, expected


@pytest.fixture(scope="module")
def planted_run():
    frame, expected = planted()
    return frame, expected, validate_roster(frame, "44", AS_OF)


def found_rules(problems: pd.DataFrame) -> dict[str, set[str]]:
    return problems.groupby("record_id")["rule"].agg(set).to_dict()


def test_each_planted_case_gives_exactly_its_rule(planted_run):
    frame, expected, problems = planted_run
    found = found_rules(problems)
    for record_id, rules in expected.items():
        assert found.get(record_id, set()) == rules, record_id
    untouched = set(frame["record_id"]) - set(expected)
    assert not untouched & set(found)


def test_problem_table_shape(planted_run):
    frame, _, problems = planted_run
    assert tuple(problems.columns) == schema.PROBLEM_COLUMNS
    assert all(str(problems[c].dtype) == "string" for c in problems.columns)
    assert not problems.duplicated(["record_id", "rule", "field"]).any()
    assert set(problems["severity"]) <= {"E", "W"}
    assert problems["message"].notna().all() and problems["suggestion"].notna().all()
    damaged = problems[problems["rule"] == "ID_SPREADSHEET_DAMAGE"]
    assert "4.40106E+17" in set(damaged["value"])
    missing = problems[problems["rule"] == "REQUIRED_MISSING"]
    assert set(missing["field"]) == {"name", "guardian_name", "id_type"}
    county = problems[problems["rule"] == "COUNTY_UNKNOWN"].iloc[0]
    row = frame.set_index("record_id").loc[county["record_id"]]
    assert county["county_code"] == "430102"
    assert county["value"] == row["school_county"]
    warn = problems[problems["rule"].isin(["ID_REGION_ERA", "PHONE_FORMAT", "AGE_GRADE"])]
    assert set(warn["severity"]) == {"W"}


def test_rule_catalogue_lists_every_rule():
    catalogue = rule_catalogue()
    assert list(catalogue.columns[:6]) == [
        "rule",
        "severity",
        "field",
        "message",
        "suggestion",
        "enabled",
    ]
    codes = set(catalogue["rule"])
    assert {
        "ID_FORMAT",
        "ID_SPREADSHEET_DAMAGE",
        "ID_CHECKSUM",
        "ID_DATE",
        "BIRTHDATE_MISMATCH",
        "BIRTHDATE_INVALID",
        "SEX_MISMATCH",
        "ID_REGION_UNKNOWN",
        "ID_REGION_ERA",
        "ID_PROVINCE_UNKNOWN",
        "FOREIGN_PR_FORMAT",
        "ID_MISSING",
        "STUDENT_NO_FORMAT",
        "STUDENT_NO_MISMATCH",
        "SEX_CODE",
        "ETHNICITY_CODE",
        "ID_TYPE_CODE",
        "SCHOOL_CODE_FORMAT",
        "SCHOOL_PROVINCE",
        "COUNTY_UNKNOWN",
        "NAME_CHARS",
        "REQUIRED_MISSING",
        "AGE_GRADE",
        "ENROLL_DATE",
        "PHONE_FORMAT",
        "POLICE_ID_NOT_FOUND",
        "POLICE_NAME_MISMATCH",
        "POLICE_ID_CANCELLED",
        "DUP_CROSS_PROVINCE",
    } == codes
    assert set(catalogue.loc[catalogue["rule"] == "REQUIRED_MISSING", "field"]) == set(
        schema.REQUIRED_VALUES
    )
    assert catalogue["enabled"].all()


def test_switching_a_rule_off_in_json_removes_its_problems(tmp_path, planted_run):
    frame, _, problems = planted_run
    suites = tmp_path / "expectations"
    shutil.copytree(DEFAULT_SUITES_DIR, suites)
    for path in suites.glob("*.json"):
        spec = json.loads(path.read_text(encoding="utf-8"))
        for expectation in spec["expectations"]:
            if expectation["meta"]["rule"] == "NAME_CHARS":
                expectation["meta"]["enabled"] = False
            if expectation["meta"]["rule"] == "PHONE_FORMAT":
                # a wider pattern that also accepts the planted 12345
                expectation["kwargs"]["pattern"] += "|[0-9]{5}"
        path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    again = validate_roster(frame, "44", AS_OF, suites_dir=suites)
    assert "NAME_CHARS" in set(problems["rule"]) and "NAME_CHARS" not in set(again["rule"])
    assert "PHONE_FORMAT" in set(problems["rule"]) and "PHONE_FORMAT" not in set(again["rule"])
    rest = problems[~problems["rule"].isin(["NAME_CHARS", "PHONE_FORMAT"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(rest, again.reset_index(drop=True))
    catalogue = rule_catalogue(suites)
    assert not catalogue.loc[catalogue["rule"] == "NAME_CHARS", "enabled"].any()


def test_data_docs_are_built_outside_the_repository(tmp_path):
    frame, _ = planted()
    docs = tmp_path / "data_docs"
    problems = validate_roster(frame.head(30), "44", AS_OF, data_docs_dir=docs)
    assert (docs / "index.html").is_file()
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == 3
    assert "ID_CHECKSUM" in set(problems["rule"])
    assert not (DEFAULT_SUITES_DIR.parent / "gx").exists()


def test_arbitrary_text_in_every_field_never_crashes_a_run():
    frame = clean_roster(12, seed=5, as_of=AS_OF)
    weird = ["\ud800", "", "\u3000", "𠮷", "1e99", "x" * 300, "０１", None, "NaN", "-", "٣", "G"]
    for column in frame.columns:
        if column not in ("source_row", "grade_level", "record_id"):
            frame[column] = pd.array(np.roll(weird, len(column)), dtype="string")
    problems = validate_roster(frame, "44", AS_OF)
    assert tuple(problems.columns) == schema.PROBLEM_COLUMNS
    assert len(problems) > 0


def test_parallel_and_single_process_agree(planted_run):
    frame, _, problems = planted_run
    split = validate_roster(frame, "44", AS_OF, workers=2)
    pd.testing.assert_frame_equal(problems, split)


@pytest.fixture(scope="module")
def parallel_docs(tmp_path_factory, planted_run):
    """Data Docs of the planted roster validated in two row ranges by two workers."""
    frame, _, _ = planted_run
    docs = tmp_path_factory.mktemp("parallel") / "data_docs"
    split = validate_roster(frame, "44", AS_OF, data_docs_dir=docs, workers=2)
    return docs, split


def page_text(path) -> str:
    """What a reader sees of a page: its text without markup, scripts or styles."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


def test_parallel_run_with_data_docs_agrees_and_documents_both_ranges(planted_run, parallel_docs):
    _, _, problems = planted_run
    docs, split = parallel_docs
    pd.testing.assert_frame_equal(problems, split)
    index = (docs / "index.html").read_text(encoding="utf-8")
    suites = {suite.name for suite in load_suites()}
    pages = list((docs / "validations").rglob("*.html"))
    ranges = {"rows 1-30 of 60", "rows 31-60 of 60"}
    # validations/<suite>/<run name>/<run time>/<batch>.html: each suite once per range
    found = {(p.relative_to(docs / "validations").parts[0], p.parent.parent.name) for p in pages}
    assert found == {(suite, name) for suite in suites for name in ranges}
    assert len(pages) == len(suites) * len(ranges)
    assert all(name in index for name in ranges)
    assert not (DEFAULT_SUITES_DIR.parent / "gx").exists()
    # Every folder and file name is one Windows accepts (the site is copied to file servers).
    names = {part for path in docs.rglob("*") for part in path.relative_to(docs).parts}
    assert {name for name in names if windows_safe_name(name) != name} == set()


def _validation_page(docs, suite: str, run_name: str):
    return next((docs / "validations" / suite / run_name).rglob("*.html"))


def test_data_docs_pages_show_rule_codes_and_messages_not_raw_calls(parallel_docs):
    docs, _ = parallel_docs
    text = page_text(_validation_page(docs, "roster_id_number", "rows 1-30 of 60"))
    catalogue = rule_catalogue()
    checksum = catalogue[catalogue["rule"] == "ID_CHECKSUM"].iloc[0]
    assert f"ID_CHECKSUM 身份证号校验码错误（错误） {checksum['message']}" in text
    assert "ID_MISSING 身份证号缺失" in text
    assert "expect_id_number_to_be_present" not in text and "(**{" not in text
    suite_page = page_text(docs / "expectations" / "roster_codes.html")
    assert "SEX_CODE 性别代码无效（错误）" in suite_page
    assert "修改建议" in suite_page


def test_data_docs_samples_name_records_and_mask_personal_data(planted_run, parallel_docs):
    frame, expected, _ = planted_run
    docs, _ = parallel_docs
    text = page_text(_validation_page(docs, "roster_id_number", "rows 1-30 of 60"))
    checksum_record = next(r for r, rules in expected.items() if rules == {"ID_CHECKSUM"})
    number = frame.set_index("record_id").loc[checksum_record, "id_number"]
    # The failing row by its record key, its number masked as a county list masks it.
    assert "Unexpected Value Count 记录号" in text
    assert (
        f"身份证件类型=1；身份证件号={number[:6]}********{number[-4:]} 1 {checksum_record}" in text
    )
    every_page = " ".join(page_text(p) for p in docs.rglob("*.html"))
    numbers = frame["id_number"].dropna()
    assert not [n for n in numbers if len(n) >= 15 and n in every_page]
    assert "张 三" not in every_page and "艾力.买买提" not in every_page
    assert "* *" in every_page and "**.***" in every_page  # NAME_CHARS: the spacing, no name


def test_data_docs_index_totals_agree_with_the_problems(planted_run, parallel_docs):
    frame, _, problems = planted_run
    docs, _ = parallel_docs
    totals = json.loads((docs / "totals.json").read_text(encoding="utf-8"))
    assert totals["records"] == len(frame)
    assert [part["name"] for part in totals["parts"]] == ["rows 1-30 of 60", "rows 31-60 of 60"]
    assert totals["expectations"] == sum(len(s.spec["expectations"]) for s in load_suites())
    assert totals["unexpected"] == len(problems)
    by_rule = pd.DataFrame(totals["rules"]).groupby("rule")["unexpected"].sum()
    expected = problems["rule"].value_counts()
    assert by_rule[by_rule > 0].sort_index().to_dict() == expected.sort_index().to_dict()
    index = page_text(docs / "index.html")
    assert "校验记录数 部分 规则（期望）数" in index
    assert "学籍校验 ID_CHECKSUM 身份证号校验码错误 错误 身份证件号 1 " in index
    links = re.findall(r'href="([^"]+)"', (docs / "index.html").read_text(encoding="utf-8"))
    pages = [link for link in links if link.startswith("validations/")]
    assert len(pages) == 2 * len(load_suites())
    assert all((docs / html.unescape(link)).is_file() for link in links)
    # GX's own index is kept, and its pages lead home to this one.
    assert (docs / "gx_index.html").is_file()


def test_recall_and_false_positives_against_the_generator(tmp_path):
    generator = pytest.importorskip("xueji_quality.generator")
    ingest = pytest.importorskip("xueji_quality.ingest")
    generator.write_sample(tmp_path, 20_000, 11, "44", "csv")
    staged = ingest.read_exports([tmp_path / "roster.csv"], "44")
    truth = pd.read_csv(tmp_path / "truth_errors.csv", dtype=str)
    problems = validate_roster(staged.roster, "44", AS_OF)
    found = set(zip(problems["record_id"], problems["rule"], strict=True))
    truth["found"] = [
        (r, k) in found for r, k in zip(truth["record_id"], truth["kind"], strict=True)
    ]
    recall = truth.groupby("kind")["found"].mean()
    assert (recall >= 0.99).all(), recall[recall < 0.99].to_dict()
    assert set(recall.index) >= {"ID_CHECKSUM", "ID_SPREADSHEET_DAMAGE", "REQUIRED_MISSING"}
    clean = set(staged.roster["record_id"]) - set(truth["record_id"])
    flagged = set(problems.loc[problems["record_id"].isin(clean), "record_id"])
    assert len(flagged) <= 0.001 * len(clean)


def _workers_in_child(queue) -> None:
    queue.put(default_workers(1_000_000))


def test_no_worker_processes_inside_a_daemonic_process():
    # A Dask worker is daemonic: it may not start children, its cluster spreads the work.
    import multiprocessing

    assert default_workers(1_000_000) > 1 or (os.cpu_count() or 1) == 1
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_workers_in_child, args=(queue,), daemon=True)
    child.start()
    assert queue.get(timeout=120) == 1
    child.join()


def test_a_later_stage_site_joins_the_run_front_page(tmp_path, parallel_docs):
    docs, _ = parallel_docs
    site = tmp_path / "data_docs"
    shutil.copytree(docs, site)
    returns = pd.DataFrame(
        {
            "record_id": ["N1", "N2", "N3"],
            "county_code": ["440103"] * 3,
            "national_match": ["id", "name", None],
            "id_number": ["44010320120101001X", "44010320120101002X", None],
            "name": ["张三", "李四", "王五"],
        }
    )
    found = validate_stage(returns, "national", data_docs_dir=site / "national")
    assert sorted(found["record_id"]) == ["N1", "N2"]
    index = page_text(site / "index.html")
    assert "学籍校验 60 2 " in index and "全国查重回执 3 1 2 2 2" in index
    assert "全国查重回执 DUP_CROSS_PROVINCE 外省已有学籍 错误 身份证件号 1 " in index
    links = re.findall(r'href="([^"]+)"', (site / "index.html").read_text(encoding="utf-8"))
    national = [link for link in links if link.startswith("national/validations/")]
    assert len(national) == 1 and (site / html.unescape(national[0])).is_file()
    assert (site / "national" / "index.html").is_file()
    national_pages = " ".join(page_text(p) for p in (site / "national").rglob("*.html"))
    assert "44010320120101001X" not in national_pages
