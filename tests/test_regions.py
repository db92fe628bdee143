"""County-level codes from GB/T 2260 (python-stdnum's loc.dat), 不设区的地级市 included."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from xueji_quality import ingest, schema
from xueji_quality.reports.county_report import write_county_reports
from xueji_quality.standards import gb2260, resident_id
from xueji_quality.validate import rule_catalogue, validate_roster

AS_OF = date(2026, 11, 28)


def codes_of(province: str, year: int = 2024) -> set[str]:
    return set(gb2260.counties(province, year)["code"])


def test_the_four_cities_without_districts_are_what_the_data_says():
    assert gb2260.cities_without_districts(2024) == gb2260.CITIES_WITHOUT_DISTRICTS
    assert gb2260.CITIES_WITHOUT_DISTRICTS == {"441900", "442000", "460400", "620200"}


@pytest.mark.parametrize(
    ("province", "code", "name"),
    [("44", "441900", "东莞市"), ("44", "442000", "中山市"), ("46", "460400", "儋州市")]
    + [("62", "620200", "嘉峪关市")],
)
def test_a_city_without_districts_is_a_county_of_its_province(province, code, name):
    table = gb2260.counties(province).set_index("code")
    assert table.loc[code, "name"] == name
    assert table.loc[code, "prefecture"] == name
    assert gb2260.county_name_to_code(province)[name] == code
    assert gb2260.county_names(pd.Series([code], dtype="string")).tolist() == [name]


def test_a_city_with_districts_is_not_a_county():
    guangdong = codes_of("44")
    assert "440100" not in guangdong and "440106" in guangdong  # 广州 and its 天河区
    assert "440000" not in guangdong and "440101" not in guangdong  # province, 市辖区
    assert not any(code.endswith("00") for code in guangdong - gb2260.CITIES_WITHOUT_DISTRICTS)


def test_cities_without_districts_follow_the_years():
    # 三沙 had no district until 西沙区/南沙区 (2020); 三亚 none until 2014; 儋州 is 460400 since 2015.
    assert {"460300", "460400"} <= codes_of("46", 2015)
    assert "460300" not in codes_of("46") and {"460302", "460303"} <= codes_of("46")
    assert "460200" in codes_of("46", 2010) and "460200" not in codes_of("46")
    assert "460400" not in codes_of("46", 2010) and "469003" in codes_of("46", 2010)


def test_a_county_whose_code_ends_in_01_is_a_county():
    # xx01 is 市辖区 in most prefectures, a real unit in these.
    assert "110101" in codes_of("11") and len(codes_of("11")) == 16  # 北京 东城区, 16 districts
    assert len(codes_of("31")) == 16 and len(codes_of("50")) == 38  # 上海, 重庆
    assert "419001" in codes_of("41")  # 济源市 (省直辖)
    assert {"469001", "659001", "522601"} <= codes_of("46") | codes_of("65") | codes_of("52")
    assert not gb2260.counties("44")["name"].isin(gb2260.PLACEHOLDER_NAMES).any()
    assert not any(code[2:4] == "90" and code[4:] == "00" for code in codes_of("46"))


def test_county_names_map_to_the_county_in_force_today():
    guangdong = gb2260.county_name_to_code("44")
    assert guangdong["东莞市"] == "441900"  # not 442502, the county-level 东莞市 of 1985-1988
    assert guangdong["中山市"] == "442000"
    assert guangdong["天河区"] == "440106"
    hebei = gb2260.county_name_to_code("13")
    assert "新华区" not in hebei and "桥西区" not in hebei  # two counties of 河北 each


def test_the_province_level_codes():
    assert len(gb2260.province_codes()) == 34
    assert {"11", "44", "65", "71", "81", "82"} <= gb2260.province_codes()
    assert not {"00", "20", "80", "83", "90", "99"} & gb2260.province_codes()


def make_id(address: str, yyyymmdd: str, sequence: int) -> str:
    body = f"{address}{yyyymmdd}{sequence:03d}"
    return body + resident_id.check_digit(body)


def test_dongguan_and_zhongshan_schools_get_their_own_county_lists(tmp_path: Path):
    header = "记录号,姓名,性别,出生日期,身份证件类型,身份证件号,所在区县,学校名称,年级"
    rows = [
        ("R1", "441900", "东莞市", "20150301", 1),
        ("R2", "441900", "441900", "20150302", 2),
        ("R3", "442000", "中山市", "20150303", 1),
        ("R4", "442000", "442000", "20150304", 2),
        ("R5", "440106", "天河区", "20150305", 1),
    ]
    lines = [header]
    for key, address, county, ymd, sex in rows:
        number = make_id(address, ymd, 120 + sex)
        born = f"{ymd[:4]}-{ymd[4:6]}-{ymd[6:]}"
        lines.append(f"{key},张三,{sex},{born},1,{number},{county},第一小学,三年级")
    path = tmp_path / "roster.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    staged = ingest.read_exports([path], "44")
    assert staged.quarantine.empty
    assert staged.roster["county_code"].tolist() == ["441900"] * 2 + ["442000"] * 2 + ["440106"]
    problems = validate_roster(staged.roster, "44", AS_OF)
    region_rules = {"COUNTY_UNKNOWN", "ID_REGION_UNKNOWN", "ID_REGION_ERA", "ID_PROVINCE_UNKNOWN"}
    assert not set(problems["rule"]) & region_rules

    counties = write_county_reports(
        tmp_path / "run",
        staged.roster,
        problems,
        pd.DataFrame(columns=list(schema.DUPLICATE_COLUMNS), dtype="string"),
        province="44",
        run_date=AS_OF,
        rule_catalogue=rule_catalogue(),
    )
    by_code = {c["county_code"]: c for c in counties}
    assert by_code["441900"]["county_name"] == "东莞市" and by_code["441900"]["records"] == 2
    assert by_code["442000"]["county_name"] == "中山市" and by_code["442000"]["records"] == 2
    for stem in ("441900/441900_东莞市", "442000/442000_中山市"):
        assert (tmp_path / "run" / "counties" / f"{stem}_问题学籍清单.xlsx").is_file()
