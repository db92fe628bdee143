"""Administrative division codes (GB/T 2260) from python-stdnum's ``cn/loc.dat``.

The file lists every 6-digit code ever issued with the names it carried and the years each name
was in force (``[1983-2005]东山区``). An ID number keeps the code of the household registration
at the time it was issued, so historical codes are legitimate in IDs of older registrations; a
code that was never issued at all is suspicious. Schools, on the other hand, sit in counties that
exist today: ``counties`` lists the county-level codes of a province in force in a given year.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

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


def is_known(codes: pd.Series) -> pd.Series:
    """True where the 6-character code was ever issued."""
    return codes.isin(known_codes()).fillna(False).astype(bool)


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


def _is_county_level(code: str) -> bool:
    # 0000 is the province, xx00 a prefecture, xx01 a prefecture's 市辖区 placeholder.
    return code[2:4] != "00" and code[4:6] not in ("00", "01")


@cache
def counties(province: str, year: int = 2024) -> pd.DataFrame:
    """County-level codes of a province in force in ``year``: columns code, name, prefecture."""
    eras = region_eras()
    live = eras[
        eras["code"].str.startswith(province) & (eras["start"] <= year) & (eras["end"] >= year)
    ]
    prefecture_names = dict(
        zip(
            live["code"].str.slice(0, 4).where(live["code"].str.endswith("00")),
            live["name"],
            strict=True,
        )
    )
    rows = live[[_is_county_level(c) for c in live["code"]]].drop_duplicates("code")
    out = pd.DataFrame(
        {
            "code": rows["code"].to_numpy(),
            "name": rows["name"].to_numpy(),
            "prefecture": [prefecture_names.get(c[:4], "") for c in rows["code"]],
        }
    )
    return out.reset_index(drop=True)


@cache
def province_name(province: str) -> str:
    eras = region_eras()
    hit = eras.loc[eras["code"] == f"{province}0000", "province"]
    if hit.empty:
        raise ValueError(f"未知的省级行政区划代码: {province!r}")
    return str(hit.iloc[0])


@cache
def county_name_to_code(province: str) -> dict[str, str]:
    """Name of a county of the province (as in force now or earlier) -> its code.

    A name that two counties of the province share (市辖区 aside, e.g. 城关区) maps to neither,
    so a county given only by an ambiguous name goes to quarantine instead of a wrong list.
    """
    eras = region_eras()
    rows = eras[eras["code"].str.startswith(province)]
    rows = rows[[_is_county_level(c) for c in rows["code"]]]
    # Prefer the most recent era of each name.
    rows = rows.sort_values("end").drop_duplicates(["name", "code"], keep="last")
    by_name = rows.groupby("name")["code"].agg(lambda s: sorted(set(s)))
    return {name: codes[0] for name, codes in by_name.items() if len(codes) == 1}


def county_names(codes: pd.Series, year: int = 2024) -> pd.Series:
    """Current name of each county code (empty string where unknown)."""
    eras = region_eras()
    latest = eras.sort_values("end").drop_duplicates("code", keep="last").set_index("code")["name"]
    return codes.map(latest).fillna("").astype("string")
