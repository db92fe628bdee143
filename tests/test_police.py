"""The police cross-check: readers, request, name kinds, rules through GX, no-reveal, generator."""

from __future__ import annotations

import codecs
import hashlib
import stat

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from xueji_quality import ingest, schema
from xueji_quality.errors import InputError
from xueji_quality.generator import police as generated_police
from xueji_quality.generator import write_sample
from xueji_quality.generator.police_names import OTHER_GIVEN
from xueji_quality.police import check, exchange, names
from xueji_quality.police.registry import read_registry
from xueji_quality.standards import resident_id
from xueji_quality.validate import load_suites


def make_id(address: str, yyyymmdd: str, sequence: int) -> str:
    body = address + yyyymmdd + f"{sequence:03d}"
    return body + resident_id.check_digit(body)


def with_check(number17: str) -> str:
    return number17 + resident_id.check_digit(number17)


# --- a roster and registry written by hand ----------------------------------------------------

ROSTER = [
    # record, name, sex, birth, registry name, registry status (None: not in the registry)
    ("A01", "张伟", "1", "2015-03-01", "张伟", "正常"),
    ("A02", "阿依古丽·买买提", "2", "2014-05-02", "阿依古丽•买买提", "正常"),
    ("A03", "热依拉·吐尔逊", "2", "2014-06-03", "热依拉 吐尔逊", "1"),
    ("A04", "迪丽娜尔·阿不都", "2", "2013-07-04", "迪丽娜尔阿不都", "正常"),
    ("A05", "单丹", "2", "2015-08-05", "善丹", "正常"),
    ("A06", "温小明", "1", "2015-09-06", "溫小明", "正常"),
    ("A07", "李峰", "1", "2016-01-07", "李峯", "正常"),
    ("A08", "王己", "1", "2016-02-08", "王已", "正常"),
    ("A09", "王yan", "1", "2016-03-09", "王龑", "正常"),
    ("A10", "赵□", "2", "2016-04-10", "赵䶮", "正常"),
    ("A11", "陈晨", "1", "2016-05-11", "周建华", "正常"),
    ("A12", "刘洋", "1", "2016-06-12", "刘洋", "3"),
    ("A13", "黄丽", "2", "2016-07-13", "黄丽", "死亡"),
    ("A14", "吴迪", "1", "2016-08-14", "吴迪", "迁出"),
    ("A15", "孙悦", "2", "2016-09-15", None, None),
    ("A16", "马超", "1", "2016-10-16", None, None),  # a number two characters away is held
    ("A17", "曾静", "2", "2016-11-17", "曾靜", "正常"),  # sex differs in the registry, see below
    ("A18", "胡杰", "1", "2016-12-18", "胡杰", "正常"),  # check character mistyped in the roster
]


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hand")
    ids = [
        make_id("440106", birth.replace("-", ""), 11 + 2 * i + (sex == "2"))
        for i, (_, _, sex, birth, _, _) in enumerate(ROSTER)
    ]
    roster = pd.DataFrame(
        {
            "record_id": [r[0] for r in ROSTER],
            "county_code": "440106",
            "name": [r[1] for r in ROSTER],
            "sex": [r[2] for r in ROSTER],
            "birth_date": [r[3] for r in ROSTER],
            "id_type": "1",
            "id_number": ids,
        }
    ).astype("string")
    # Registry rows: every person with a registry name, under the roster's number.
    people = [(ids[i], r[4], r[2], r[3], r[5]) for i, r in enumerate(ROSTER) if r[4] is not None]
    a16 = ids[15]
    near = with_check(a16[:15] + str((int(a16[15]) + 3) % 10) + a16[16])
    people.append((near, "马超", "1", "2016-10-16", "正常"))
    people = [
        (number, name, "1" if record == "A17" else sex, birth, status)
        for (number, name, sex, birth, status), record in zip(
            people, [r[0] for r in ROSTER if r[4] is not None] + ["A16"], strict=True
        )
    ]
    people.append((make_id("440106", "20150101", 501), "钱多多", "1", "2015-01-01", "正常"))
    a18 = ids[17]
    roster.loc[17, "id_number"] = a18[:17] + ("0" if a18[17] != "0" else "1")
    registry = pd.DataFrame(
        people, columns=["身份证号", "姓名", "性别", "出生日期", "人员状态"], dtype="string"
    )
    registry.loc[registry["姓名"] == "张伟", "性别"] = "男"  # a word for the code
    csv_path = folder / "registry.csv"
    csv_path.write_bytes(registry.to_csv(index=False).encode("gb18030"))
    return roster, csv_path, {"near": near, "a18": a18, "resident": people[-1]}


@pytest.fixture(scope="module")
def hand_outcome(hand_made):
    roster, path, _ = hand_made
    return check.police_check(roster, registry=path)


def by_record(problems: pd.DataFrame) -> dict[str, pd.Series]:
    return {row.record_id: row for row in problems.itertuples(index=False)}


def test_registry_csv_in_gb18030_read_with_aliases_and_normalised(hand_made):
    _, path, facts = hand_made
    table = read_registry(path)
    assert set(table.column_names) == {"id_number", "name", "sex", "birth_date", "status"}
    frame = table.to_pandas()
    assert set(frame["sex"]) == {"1", "2"}
    assert set(frame["status"]) == {"normal", "moved", "cancelled", "dead"}
    assert facts["near"] in set(frame["id_number"])


def test_hand_made_roster_every_kind(hand_outcome):
    found = by_record(hand_outcome.problems)
    assert set(found) == {
        "A05", "A06", "A07", "A08", "A09", "A10", "A11", "A12", "A13", "A15", "A16", "A17"
    }  # fmt: skip
    kinds = {
        "A05": ("POLICE_NAME_MISMATCH", "E", "同音字", "善丹"),
        "A06": ("POLICE_NAME_MISMATCH", "E", "形近字/异体字/繁简", "溫小明"),
        "A07": ("POLICE_NAME_MISMATCH", "E", "形近字/异体字/繁简", "李峯"),
        "A08": ("POLICE_NAME_MISMATCH", "E", "形近字/异体字/繁简", "王已"),
        "A09": ("POLICE_NAME_MISMATCH", "W", "生僻字未录入", "王龑"),
        "A10": ("POLICE_NAME_MISMATCH", "W", "生僻字未录入", "赵䶮"),
        "A17": ("POLICE_NAME_MISMATCH", "E", "形近字/异体字/繁简", "曾靜"),
    }
    for record, (rule, severity, kind, shown) in kinds.items():
        row = found[record]
        assert (row.rule, row.severity, row.field) == (rule, severity, "name")
        assert kind in row.message and f"“{shown}”" in row.suggestion
        assert "〔" not in row.message + row.suggestion
    assert "姓名完全不同" in found["A11"].message and "周建华" not in "".join(
        map(str, found["A11"])
    )
    assert found["A12"].rule == found["A13"].rule == "POLICE_ID_CANCELLED"
    assert "注销" in found["A12"].message and "死亡" in found["A13"].message
    assert (
        found["A15"].rule == "POLICE_ID_NOT_FOUND" and "公安库中为" not in found["A15"].suggestion
    )
    assert found["A16"].rule == "POLICE_ID_NOT_FOUND"


def test_near_number_suggested_for_a_number_not_in_the_registry(hand_made, hand_outcome):
    _, _, facts = hand_made
    row = by_record(hand_outcome.problems)["A16"]
    assert row.suggestion.startswith(f"疑似录入错误，公安库中为 {facts['near']}")


def test_registry_sex_different_from_the_roster_is_said_without_its_value(hand_outcome):
    found = by_record(hand_outcome.problems)
    assert "公安库登记的性别与花名册不同" in found["A17"].message
    assert "不同" in found["A05"].message and "性别" not in found["A05"].message


def test_checksum_item_gets_the_registry_number_of_the_same_name(hand_made, hand_outcome):
    roster, _, facts = hand_made
    suggestions = hand_outcome.checksum_suggestions
    assert list(suggestions["record_id"]) == ["A18"]
    assert facts["a18"] in suggestions["suggestion"].iloc[0]
    problems = pd.DataFrame(
        {
            "record_id": ["A18", "A01"],
            "county_code": "440106",
            "rule": ["ID_CHECKSUM", "ID_CHECKSUM"],
            "severity": "E",
            "field": "id_number",
            "value": [roster.loc[17, "id_number"], roster.loc[0, "id_number"]],
            "message": "m",
            "suggestion": "对照户口簿逐位核对",
        },
        dtype="string",
    )
    updated = check.apply_checksum_suggestions(problems, suggestions)
    assert (
        updated["suggestion"].iloc[0].startswith("公安库核实")
        and facts["a18"] in (updated["suggestion"].iloc[0])
    )
    assert updated["suggestion"].iloc[1] == "对照户口簿逐位核对"


def test_separator_variants_exact_matches_and_moved_out_are_never_flagged(hand_outcome):
    assert not {"A01", "A02", "A03", "A04", "A14"} & set(hand_outcome.problems["record_id"])


def test_problem_rows_have_the_project_columns(hand_outcome):
    assert tuple(hand_outcome.problems.columns) == schema.PROBLEM_COLUMNS
    assert hand_outcome.files[0]["rows"] == 18
    assert len(hand_outcome.files[0]["sha256"]) == 64
    assert hand_outcome.pending.empty


def test_registry_only_people_appear_nowhere(hand_made, hand_outcome):
    _, _, facts = hand_made
    resident_id, resident_name = facts["resident"][:2]
    text = everything(hand_outcome)
    assert resident_id not in text and resident_name not in text and "周建华" not in text


def everything(outcome: check.PoliceOutcome) -> str:
    frames = (outcome.problems, outcome.checksum_suggestions, outcome.pending)
    return "\n".join(frame.astype("string").fillna("").to_csv(index=False) for frame in frames)


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("roster", "registry", "kind"),
    [
        ("张伟", "张伟", names.SAME),
        ("艾力·买买提", "艾力．买买提", names.SAME),
        ("艾力·买买提", "艾力・买买提", names.SAME),
        ("张 伟", "张伟", names.SAME),
        ("张伟", "张玮", names.HOMOPHONE),
        ("曾伟", "增伟", names.HOMOPHONE),  # 曾 read zeng as a surname
        ("解明", "谢明", names.HOMOPHONE),  # 解 read xie
        ("区华", "欧华", names.HOMOPHONE),  # 区 read ou
        ("覃红", "秦红", names.HOMOPHONE),  # 覃 read qin
        ("温丽", "溫丽", names.VARIANT),
        ("刘德华", "劉德華", names.VARIANT),
        ("戊明", "戌明", names.VARIANT),
        ("王?", "王龑", names.RARE_PLACEHOLDER),
        ("王*明", "王龑明", names.RARE_PLACEHOLDER),
        ("王〇", "王䶮", names.RARE_PLACEHOLDER),
        ("李YAN", "李龑", names.RARE_PLACEHOLDER),
        ("李xin", "李龑", names.DIFFERENT),
        ("李四", "王五", names.DIFFERENT),
        ("张伟", "张伟伟", names.DIFFERENT),
    ],
)
def test_name_kinds(roster, registry, kind):
    judged = names.classify(pd.Series([roster], dtype="string"), pd.Series([registry]))
    assert judged.iloc[0] == kind


# --- request and results -----------------------------------------------------------------------


def test_request_holds_distinct_sendable_pairs_only(hand_made, tmp_path):
    roster, _, _ = hand_made
    extra = pd.DataFrame(
        {
            "record_id": ["B1", "B2", "B3", "B4"],
            "county_code": "440106",
            "name": ["张伟", "李明", "王芳", "赵六"],
            "sex": "1",
            "birth_date": "2015-03-01",
            "id_type": ["1", "1", "6", "1"],
            "id_number": [roster.loc[0, "id_number"], "44010620150301001", "H1234567", None],
        },
        dtype="string",
    )
    request = exchange.request_table(pd.concat([roster, extra], ignore_index=True))
    assert tuple(request.columns) == exchange.REQUEST_COLUMNS
    # A18 fails its check character, B2 its format, B3 is no resident ID, B4 has none; B1
    # repeats A01's pair.
    assert len(request) == len(roster) - 1
    assert (
        request["请求编号"].is_unique and request["请求编号"].str.fullmatch("Q[0-9a-f]{16}").all()
    )
    again = exchange.request_table(roster.iloc[::-1])
    pd.testing.assert_frame_equal(request, again)
    path = exchange.write_request(request, tmp_path / "request.csv")
    assert path.read_bytes().startswith(codecs.BOM_UTF8)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    xlsx = exchange.write_request(request, tmp_path / "request.xlsx")
    assert stat.S_IMODE(xlsx.stat().st_mode) == 0o640


def results_file(path, lines: list[tuple], header=("请求编号", "身份证号比对结果", "姓名比对结果")):
    frame = pd.DataFrame(lines, columns=list(header), dtype="string")
    frame.to_csv(path, index=False, encoding="utf-8-sig")
    return path


def test_results_in_words_by_request_number(hand_made, tmp_path):
    roster, _, _ = hand_made
    request = exchange.request_table(roster).set_index("姓名")["请求编号"]
    verdicts = {"张伟": ("一致", "不一致"), "王yan": ("一致", "不一致"), "刘洋": ("库中无此号", "")}
    verdicts |= {"黄丽": ("比对失败", "")}
    lines = [(number, *verdicts.get(name, ("一致", "一致"))) for name, number in request.items()]
    path = results_file(tmp_path / "results.csv", lines)
    outcome = check.police_check(roster, results=path)
    found = by_record(outcome.problems)
    assert set(found) == {"A01", "A09", "A12"}
    assert found["A01"].severity == "E" and found["A01"].message.endswith("姓名不一致")
    assert found["A09"].severity == "W" and "疑似生僻字未录入" in found["A09"].message
    assert found["A12"].rule == "POLICE_ID_NOT_FOUND"
    # 比对失败 is pending, not a problem
    assert list(outcome.pending["record_id"]) == ["A13"]
    assert outcome.sent == len(roster) - 1


def test_results_in_codes_by_number_and_name_with_status(hand_made, tmp_path):
    roster, _, _ = hand_made
    request = exchange.request_table(roster)
    codes = {"A12": ("01", "01", "3"), "A13": ("1", "1", "04"), "A14": ("01", "01", "2")}
    codes |= {"A15": ("04", "04", "")}
    by_name = dict(zip(roster["name"], roster["record_id"], strict=True))
    lines = [
        (number, name, *codes.get(by_name[name], ("01", "01", "1")))
        for number, name in zip(request["公民身份号码"], request["姓名"], strict=True)
    ]
    lines = [line for line in lines if line[1] != "张伟"]  # A01's line did not come back
    header = ("身份证号", "姓名", "身份证号比对结果", "姓名比对结果", "人员状态")
    path = results_file(tmp_path / "results.csv", lines, header)
    outcome = check.police_check(roster, results=path)
    found = by_record(outcome.problems)
    assert set(found) == {"A12", "A13"}
    assert "注销" in found["A12"].message and "死亡" in found["A13"].message
    assert set(outcome.pending["record_id"]) == {"A01", "A15"}


@pytest.mark.parametrize(
    ("lines", "row", "value"),
    [
        ([("Q0", "一致", "一致"), ("Q1", "一至", "一致")], 3, "一至"),
        ([("Q0", "05", "01"), ("Q1", "01", "01")], 2, "05"),
        ([("Q0", "01", ""), ("Q1", "01", "01")], 2, ""),
    ],
)
def test_unknown_verdict_names_row_and_value(tmp_path, lines, row, value):
    path = results_file(tmp_path / "results.csv", lines)
    with pytest.raises(InputError) as error:
        exchange.read_results(path)
    assert error.value.row == row and f"“{value}”" in str(error.value)
    assert error.value.file == "results.csv"


def test_unknown_status_and_missing_header_are_input_errors(tmp_path):
    path = tmp_path / "registry.csv"
    path.write_text(
        "证件号码,姓名,性别,出生日期,人员状态\n1,张三,1,2015-01-01,正常\n2,李四,1,2015-01-01,失踪\n"
    )
    with pytest.raises(InputError) as error:
        read_registry(path)
    assert error.value.row == 3 and "失踪" in str(error.value) and error.value.field == "人员状态"
    path.write_text("证件号码,姓名,性别,人员状态\n1,张三,1,正常\n")
    with pytest.raises(InputError, match="出生日期"):
        read_registry(path)


def test_registry_from_xlsx_and_parquet(hand_made, tmp_path):
    _, path, _ = hand_made
    frame = pd.read_csv(path, encoding="gb18030", dtype="string")
    frame.to_excel(tmp_path / "registry.xlsx", index=False)
    frame.rename(columns={"身份证号": "公民身份号码"}).to_parquet(tmp_path / "registry.parquet")
    expected = read_registry(path).to_pandas()
    for name in ("registry.xlsx", "registry.parquet"):
        pd.testing.assert_frame_equal(read_registry(tmp_path / name).to_pandas(), expected)


def test_police_suite_runs_only_in_its_stage():
    assert "roster_police" not in {suite.name for suite in load_suites()}
    assert [suite.name for suite in load_suites(stage="police")] == ["roster_police"]


# --- check character help -------------------------------------------------------------------------


def test_a_mistyped_number_finds_its_original_under_the_same_name_only():
    rng = np.random.default_rng(3)
    bodies = [
        f"4401{rng.integers(0, 100):02d}20{rng.integers(10, 20)}0{rng.integers(1, 10)}"
        f"{rng.integers(10, 28)}{rng.integers(0, 1000):03d}"
        for _ in range(300)
    ]
    originals = [with_check(b) for b in bodies]
    typed = []
    for i, number in enumerate(originals):
        p = int(rng.integers(0, 16))
        if i % 2 and number[p] != number[p + 1]:
            typed.append(number[:p] + number[p + 1] + number[p] + number[p + 2 :])
        else:
            typed.append(number[:p] + str((int(number[p]) + 1 + i % 8) % 10) + number[p + 1 :])
    names_of = [f"学生{i}" for i in range(len(typed))]
    roster = pd.DataFrame(
        {"record_id": [f"T{i}" for i in range(len(typed))], "name": names_of, "id_type": "1"}
        | {"id_number": typed, "county_code": "440106", "sex": None, "birth_date": None},
        dtype="string",
    )
    registry = pa.table(
        {
            # every original; one in ten under another name, so it suggests nothing
            "id_number": originals,
            "name": [n if i % 10 else "别人" for i, n in enumerate(names_of)],
        }
    )
    suggestions = check.checksum_suggestions(roster, registry).set_index("record_id")
    expected = {f"T{i}": originals[i] for i in range(len(typed)) if i % 10}
    assert set(suggestions.index) == set(expected)
    assert all(expected[r] in suggestions.loc[r, "suggestion"] for r in expected)


# --- a generated roster, registry and result file ----------------------------------------------

POLICE_RATES = {"absent": 0.01, "absent_near": 0.005, "homophone": 0.01, "variant": 0.01}
POLICE_RATES |= {"different": 0.01, "cancelled": 0.003, "dead": 0.003, "pending": 0.005}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    write_sample(folder, 3000, 5, "44", "csv", rates={"NAME_CHARS": 0.02})
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    info = generated_police.write_police(folder, 5, "44", rates=POLICE_RATES)
    roster = ingest.read_exports([folder / "roster.csv"], "44").roster
    truth = pd.read_csv(info["truth_police"], dtype="string", keep_default_na=False)
    registry = pd.read_parquet(info["registry"])
    return folder, before, roster, truth, registry


@pytest.fixture(scope="module")
def generated_outcomes(generated):
    folder, _, roster, _, _ = generated
    return {
        "registry": check.police_check(roster, registry=folder / "registry.parquet"),
        "results": check.police_check(roster, results=folder / "police_results.csv"),
    }


NAME_KINDS = ("homophone", "variant", "rare_placeholder", "different")


@pytest.mark.parametrize("source", ["registry", "results"])
def test_generated_recall_of_every_class(generated, generated_outcomes, source):
    _, _, _, truth, _ = generated
    outcome = generated_outcomes[source]
    found = set(zip(outcome.problems["record_id"], outcome.problems["rule"], strict=True))
    pending = (
        set(truth.loc[truth["kind"] == "pending", "record_id"]) if source == "results" else set()
    )
    planted = truth[~truth["rule"].isin(["", "ID_CHECKSUM"]) & ~truth["record_id"].isin(pending)]
    kinds = planted.groupby("kind")
    assert {"absent", "absent_near", "made_up", "cancelled", "dead", *NAME_KINDS} <= set(
        kinds.groups
    )
    for kind, rows in kinds:
        hit = sum(
            (r, rule) in found for r, rule in zip(rows["record_id"], rows["rule"], strict=True)
        )
        assert hit / len(rows) >= 0.99, (kind, hit, len(rows))
    # the kind is named (registry) or only 不一致 is said (results)
    problems = outcome.problems.set_index("record_id")
    label = {
        "homophone": "同音字",
        "variant": "繁简",
        "rare_placeholder": "生僻字",
        "different": "完全不同",
    }
    for kind in NAME_KINDS:
        records = planted.loc[planted["kind"] == kind, "record_id"]
        messages = problems.loc[problems.index.isin(records), "message"]
        if source == "registry":
            assert messages.str.contains(label[kind]).all(), kind
        else:
            assert messages.str.contains("公安比对结果为姓名不一致").all(), kind
    if source == "results":
        assert set(outcome.pending["record_id"]) == pending and pending


@pytest.mark.parametrize("source", ["registry", "results"])
def test_generated_no_false_police_errors(generated, generated_outcomes, source):
    _, _, roster, truth, _ = generated
    outcome = generated_outcomes[source]
    expected = set(zip(truth["record_id"], truth["rule"], strict=True))
    false = [
        (r, rule)
        for r, rule in zip(outcome.problems["record_id"], outcome.problems["rule"], strict=True)
        if (r, rule) not in expected
    ]
    clean = len(roster) - truth["record_id"].nunique()
    assert len(false) <= 0.001 * clean, false[:5]
    quiet = truth.loc[truth["kind"].isin(["separator", "moved"]), "record_id"]
    assert len(quiet) and not set(quiet) & set(outcome.problems["record_id"])


def test_generated_suggestions_show_the_registry_for_the_same_person_only(
    generated, generated_outcomes
):
    _, _, _, truth, _ = generated
    outcome = generated_outcomes["registry"]
    suggestion = outcome.problems.set_index("record_id")["suggestion"]
    shown = truth[truth["kind"].isin(["homophone", "variant", "rare_placeholder", "absent_near"])]
    shown = shown[shown["expected"] != ""]
    assert len(shown) and all(
        expected in suggestion[record]
        for record, expected in zip(shown["record_id"], shown["expected"], strict=True)
    )
    hints = truth[truth["kind"] == "registry_hint"]
    given = outcome.checksum_suggestions.set_index("record_id")["suggestion"]
    assert len(hints) and all(
        record in given.index and expected in given[record]
        for record, expected in zip(hints["record_id"], hints["expected"], strict=True)
    )


def test_generated_registry_only_people_and_other_names_appear_nowhere(
    generated, generated_outcomes
):
    _, _, roster, truth, registry = generated
    roster_ids, roster_names = set(roster["id_number"].dropna()), set(roster["name"].dropna())
    shown = set(truth["expected"])
    residents = registry[~registry["公民身份号码"].isin(roster_ids | shown)]
    assert len(residents) > 0.2 * len(roster)
    hidden_names = set(residents["姓名"]) - roster_names - shown
    different = truth.loc[truth["kind"] == "different", "record_id"]
    other = registry[
        registry["公民身份号码"].isin(roster.loc[roster["record_id"].isin(different), "id_number"])
        & registry["姓名"].str.contains(f"[{OTHER_GIVEN}]")
    ]
    assert len(other) and not set(other["姓名"]) & roster_names
    hidden_names |= set(other["姓名"])
    for outcome in generated_outcomes.values():
        values = set()
        for frame in (outcome.problems, outcome.checksum_suggestions, outcome.pending):
            for column in frame.columns:
                values.update(frame[column].dropna().astype(str))
        text = "\n".join(values)
        assert not any(number in text for number in residents["公民身份号码"])
        # A name is never a value, nor quoted in a message or suggestion.
        assert not hidden_names & values
        assert not any(f"“{name}”" in text for name in hidden_names)


def test_police_files_leave_the_roster_untouched_and_repeat_with_the_seed(generated, tmp_path):
    folder, before, _, _, _ = generated
    assert {name: (folder / name).read_bytes() for name in before} == before
    write_sample(tmp_path, 3000, 5, "44", "csv", rates={"NAME_CHARS": 0.02})
    generated_police.write_police(tmp_path, 5, "44", rates=POLICE_RATES)
    for name in ("registry.parquet", "police_results.csv", "truth_police.csv", *before):
        digest = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert digest == hashlib.sha256((folder / name).read_bytes()).hexdigest(), name
    results = pd.read_csv(folder / "police_results.csv", dtype="string", keep_default_na=False)
    assert set(results["身份证号比对结果"]) <= {"01", "03", "04"}


def test_registry_table_may_be_passed_read(generated, generated_outcomes):
    folder, _, roster, _, _ = generated
    table = read_registry(folder / "registry.parquet")
    assert isinstance(table, pa.Table)
    again = check.police_check(roster, registry=table)
    pd.testing.assert_frame_equal(again.problems, generated_outcomes["registry"].problems)
    assert again.files == []


def test_a_prepared_registry_serves_a_roster_chunk_by_chunk(generated, generated_outcomes):
    folder, _, roster, _, _ = generated
    registry = check.prepared(read_registry(folder / "registry.parquet"))
    half = len(roster) // 2
    parts = [
        check.police_check(chunk, registry=registry)
        for chunk in (roster.iloc[:half], roster.iloc[half:])
    ]
    whole = generated_outcomes["registry"]
    for name in ("problems", "checksum_suggestions"):
        joined = pd.concat([getattr(p, name) for p in parts], ignore_index=True)
        expected = getattr(whole, name)
        columns = list(expected.columns)
        pd.testing.assert_frame_equal(
            joined.sort_values(columns, ignore_index=True),
            expected.sort_values(columns, ignore_index=True),
        )


def test_police_rules_have_data_docs_without_registry_names(hand_made, tmp_path):
    roster, path, _ = hand_made
    docs = tmp_path / "police_docs"
    check.police_check(roster, registry=path, data_docs_dir=docs)
    pages = list(docs.rglob("*.html"))
    assert (docs / "index.html").is_file() and any("roster_police" in str(p) for p in pages)
    text = "".join(p.read_text(encoding="utf-8") for p in pages)
    assert "POLICE_NAME_MISMATCH" in text or "police_name" in text
    assert "周建华" not in text and "钱多多" not in text
