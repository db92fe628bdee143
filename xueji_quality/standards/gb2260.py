"""Administrative division codes (GB/T 2260) from python-stdnum's ``cn/loc.dat``.

The file lists every 6-digit code ever issued with the names it carried and the years each name
was in force (``[1983-2005]东山区``). An ID number keeps the code of the household registration
at the time it was issued, so historical codes are legitimate in IDs of older registrations; a
code that was never issued at all is suspicious. Schools, on the other hand, sit in counties that
exist today: ``counties`` lists the county-level codes of a province in force in a given year,
the prefecture-level cities without districts (东莞 441900, 中山 442000) among them.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa

from xueji_quality.text_sets import is_in

OPEN_END = 9999
_ERA = re.compile(r"^\[(\d{4})?-(\d{4})?\](.*)$")


@cache
def region_eras() -> pd.DataFrame:
    """One row per (code, name, era): columns code, province, name, start, end (years, inclusive)."""
    text = resources.files("stdnum").joinpath("cn/loc.dat").read_text(encoding="utf-8")
    rows: list[tuple[str, str, str, int, int]] = []
    province_code = province_name = ""
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line.startswith(" "):
            province_code, rest = line.split(" ", 1)
            province_name = rest.split('"')[1]
            continue
        suffix, rest = line.strip().split(" ", 1)
        code = province_code + suffix
        for part in rest.split('"')[1].split(","):
            match = _ERA.match(part)
            if match:
                start = int(match.group(1) or 0)
                end = int(match.group(2) or OPEN_END)
                name = match.group(3)
            else:
                start, end, name = 0, OPEN_END, part
            rows.append((code, province_name, name, start, end))
    frame = pd.DataFrame(rows, columns=["code", "province", "name", "start", "end"])
    return frame.astype({"code": "string", "province": "string", "name": "string"})


@cache
def known_codes() -> frozenset[str]:
    """Every code the file lists, historical ones included."""
    return frozenset(region_eras()["code"].tolist())


@cache
def _known_array() -> pa.Array:
    return pa.array(sorted(known_codes()), pa.string())


def is_known(codes: pd.Series) -> pd.Series:
    """True where the 6-character code was ever issued."""
    return is_in(codes, _known_array())


def in_force(codes: pd.Series, years: pd.Series) -> pd.Series:
    """True where the code was in force in the given year (missing year: unknown, counted True)."""
    eras = region_eras()[["code", "start", "end"]]
    frame = pd.DataFrame(
        {"code": codes.astype("string").to_numpy(), "year": pd.to_numeric(years, errors="coerce")}
    )
    frame["pos"] = np.arange(len(frame))
    merged = frame.merge(eras, on="code", how="inner")
    hit = (merged["year"].isna()) | (
        (merged["year"] >= merged["start"]) & (merged["year"] <= merged["end"])
    )
    ok = np.zeros(len(frame), dtype=bool)
    ok[merged.loc[hit, "pos"].to_numpy()] = True
    return pd.Series(ok, index=codes.index)


# Names that stand for the urban districts of a prefecture taken together (xx01 市辖区, before
# 1984 often xx20 市区), and the prefecture-level slots of counties a province governs directly
# (xx9000 省直辖县级行政单位): neither is a county of its own.
PLACEHOLDER_NAMES: tuple[str, ...] = ("市辖区", "市区")
_DIRECTLY_GOVERNED = "直辖"
# 不设区的地级市: prefecture-level cities without districts, whose xx00 code is the county-level
# unit (schools carry it as 所在区县, residents' IDs as address code). ``counties`` derives them
# from the data (a city code with no county-level code under it in force in the year); these
# are the ones of today, named so that a change of the data shows up as a failing test.
CITIES_WITHOUT_DISTRICTS: frozenset[str] = frozenset({"441900", "442000", "460400", "620200"})


def _live(year: int) -> pd.DataFrame:
    eras = region_eras()
    return eras[(eras["start"] <= year) & (eras["end"] >= year)]


def ordinary_county(rows: pd.DataFrame) -> pd.Series:
    """Rows of county-level units under a prefecture (districts, counties, county-level cities).

    Decided by name, not by the last two digits: xx01 is 市辖区 in most prefectures but a real
    unit in many (110101 东城区, 419001 济源市, 522601 凯里市, 659001 石河子市).
    """
    code, name = rows["code"], rows["name"]
    placeholder = name.isin(PLACEHOLDER_NAMES) | name.str.contains(_DIRECTLY_GOVERNED, regex=False)
    under_prefecture = (code.str.slice(2, 4) != "00") & (code.str.slice(4, 6) != "00")
    return (under_prefecture & ~placeholder).fillna(False).astype(bool)


def _county_level(rows: pd.DataFrame) -> pd.Series:
    """Rows (all in force in one year) that are county-level units: the ordinary ones, and the
    prefecture-level cities with no ordinary unit under them that year (不设区的地级市)."""
    code, name = rows["code"], rows["name"]
    ordinary = ordinary_county(rows)
    has_units = code.str.slice(0, 4).isin(set(code[ordinary].str.slice(0, 4)))
    city = (
        (code.str.slice(2, 4) != "00")
        & (code.str.slice(4, 6) == "00")
        & name.str.endswith("市")
        & ~has_units
    )
    return (ordinary | city.fillna(False)).astype(bool)


@cache
def cities_without_districts(year: int = 2024) -> frozenset[str]:
    """Codes of the prefecture-level cities that had no districts in ``year`` (441900 东莞 ...)."""
    live = _live(year)
    county_level = _county_level(live)
    return frozenset(live.loc[county_level & live["code"].str.endswith("00"), "code"].tolist())


@cache
def counties(province: str, year: int = 2024) -> pd.DataFrame:
    """County-level codes of a province in force in ``year``: columns code, name, prefecture.

    A prefecture-level city without districts is its own county (its prefecture is itself).
    """
    live = _live(year)
    live = live[live["code"].str.startswith(province)]
    prefecture_names = dict(
        zip(
            live["code"].str.slice(0, 4).where(live["code"].str.endswith("00")),
            live["name"],
            strict=True,
        )
    )
    rows = live[_county_level(live)].drop_duplicates("code")
    out = pd.DataFrame(
        {
            "code": rows["code"].to_numpy(),
            "name": rows["name"].to_numpy(),
            "prefecture": rows["code"].str.slice(0, 4).map(prefecture_names).fillna("").to_numpy(),
        }
    )
    return out.reset_index(drop=True)


@cache
def province_codes() -> frozenset[str]:
    """The 34 province-level codes (two digits): the file's province lines, 71 台湾, 81 香港 and
    82 澳门 included."""
    provinces = set(region_eras()["code"].str.slice(0, 2).tolist())
    return frozenset(provinces | {"71", "81", "82"})


@cache
def province_name(province: str) -> str:
    eras = region_eras()
    hit = eras.loc[eras["code"] == f"{province}0000", "province"]
    if hit.empty:
        raise ValueError(f"未知的省级行政区划代码: {province!r}")
    return str(hit.iloc[0])


@cache
def county_name_to_code(province: str, year: int = 2024) -> dict[str, str]:
    """Name of a county of the province (as in force in ``year`` or earlier) -> its code.

    A name that one county-level unit carries in ``year`` maps to it, whatever older units
    carried the name (东莞市 is 441900, not the 442502 of 1985-1988). Other names map to the
    one code that ever carried them; a name that two counties share (城关区) maps to neither,
    so a county given only by an ambiguous name goes to quarantine instead of a wrong list.
    """
    current = counties(province, year)
    current_codes = current.groupby("name")["code"].agg(lambda s: sorted(set(s)))
    eras = region_eras()
    rows = eras[eras["code"].str.startswith(province) & (eras["start"] <= year)]
    rows = rows[ordinary_county(rows)]
    past_codes = rows.groupby("name")["code"].agg(lambda s: sorted(set(s)))
    by_name = {name: codes[0] for name, codes in past_codes.items() if len(codes) == 1}
    for name, codes in current_codes.items():
        if len(codes) == 1:
            by_name[name] = codes[0]
        else:
            by_name.pop(name, None)
    return by_name


def county_names(codes: pd.Series, year: int = 2024) -> pd.Series:
    """Current name of each county code (empty string where unknown)."""
    eras = region_eras()
    latest = eras.sort_values("end").drop_duplicates("code", keep="last").set_index("code")["name"]
    return codes.map(latest).fillna("").astype("string")
