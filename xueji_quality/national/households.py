"""Where a record's household is registered (户口所在地), as the national tokens need it.

A child keeps its household registration wherever it goes to school, so two registrations of
one child in two provinces agree on it, while two children of one common name and birthday
mostly do not. Two grains:

- ``household_provinces``: the 2-digit province. A county code's first two digits; a region
  name only one province ever used; a text beginning with a province's name (湖南省长沙市…); the
  province of the county ``household_counties`` finds.
- ``household_counties``: the 6-digit county-level code. A county-level code as written (any
  era); a county's name where it is unambiguous, alone or after its province and prefecture
  (黎川县, 江西省黎川县, 抚州市黎川县, 江西省抚州市黎川县), mapped to the latest code that
  carried the name. A name two counties carried at once (朝阳区: Beijing and Changchun) gives
  no county.

Both take the ID's address code when the field is blank and the record has an ID (the place
the number was issued, which is the household's unless the family moved). Where neither gives
a value the result is ''. Everything is done over whole columns (Arrow kernels) against tables
built once from GB/T 2260 (``standards.gb2260``).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality.standards import gb2260

_DIGITS6 = r"^[0-9]{6}$"


@cache
def _province_lookup() -> tuple[pa.Array, pa.Array, tuple[tuple[str, str], ...]]:
    """(region names one province ever used, their provinces, (province name, code) pairs)."""
    eras = gb2260.region_eras()
    provinces = eras.assign(p=eras["code"].str[:2]).groupby("name")["p"].agg(set)
    unique = {str(name): next(iter(p)) for name, p in provinces.items() if len(p) == 1}
    names = dict.fromkeys(str(n) for n in eras["province"])
    prefixes = {str(n): str(c)[:2] for c, n in zip(eras["code"], eras["province"], strict=True)}
    return (
        pa.array(list(unique), pa.string()),
        pa.array(list(unique.values()), pa.string()),
        tuple((n, prefixes[n]) for n in names),
    )


@cache
def _county_lookup() -> tuple[pa.Array, pa.Array, pa.Array]:
    """(written forms of county names, the code of each form, county-level codes of any era)."""
    eras = gb2260.region_eras()
    county = eras[
        gb2260.ordinary_county(eras) | eras["code"].isin(gb2260.cities_without_districts())
    ]
    prefecture = eras[eras["code"].str.endswith("00") & (eras["code"].str[2:4] != "00")]
    prefecture = prefecture.assign(prefix=prefecture["code"].str[:4])[["prefix", "name"]]
    with_prefecture = county.assign(prefix=county["code"].str[:4]).merge(
        prefecture.rename(columns={"name": "prefecture"}), on="prefix", how="left"
    )
    with_prefecture["prefecture"] = with_prefecture["prefecture"].fillna("")
    name, province = with_prefecture["name"], with_prefecture["province"]
    pref = with_prefecture["prefecture"]
    forms = pd.concat(
        [
            with_prefecture.assign(form=name),
            with_prefecture.assign(form=province + name),
            with_prefecture.assign(form=pref + name),
            with_prefecture.assign(form=province + pref + name),
        ],
        ignore_index=True,
    )
    # A form carried by two codes at once is ambiguous; else it stands for the latest code.
    forms = forms.drop_duplicates(["form", "code", "start", "end"])
    latest = forms.groupby("form")["end"].transform("max")
    current = forms[forms["end"] == latest]
    codes_now = current.groupby("form")["code"].nunique()
    chosen = current[current["form"].map(codes_now) == 1].drop_duplicates("form")
    known = sorted(set(county["code"].astype(str)))
    return (
        pa.array(chosen["form"].astype(str).tolist(), pa.string()),
        pa.array(chosen["code"].astype(str).tolist(), pa.string()),
        pa.array(known, pa.string()),
    )


def _from_id(values: pa.Array, id_address: np.ndarray, width: int, allowed: pa.Array) -> pa.Array:
    """Where ``values`` is null: the first ``width`` digits of the ID's address code (-1: no
    ID) when they are in ``allowed``."""
    has = id_address >= 0
    value = np.where(has, id_address, 0) // 10 ** (6 - width)
    chars = np.empty((len(value), width), dtype=np.uint8)
    for k in range(width):
        chars[:, k] = value // 10 ** (width - 1 - k) % 10 + 48
    cut = pa.Array.from_buffers(pa.binary(width), len(value), [None, pa.py_buffer(chars.tobytes())])
    cut = cut.cast(pa.binary()).cast(pa.string())
    usable = pc.and_(pa.array(has), pc.is_in(cut, value_set=allowed))
    return pc.if_else(pc.and_(pc.is_null(values), usable), cut, values)


def _clean(household: pa.Array) -> pa.Array:
    cleaned = pc.replace_substring_regex(pc.utf8_normalize(household, "NFKC"), r"\s+", "")
    return pc.if_else(pc.equal(cleaned, ""), pa.scalar(None, pa.string()), cleaned)


def _per_value(household: pa.Array, of_values) -> pa.Array:
    """``of_values`` computed once per distinct value of ``household`` (nulls stay null)."""
    encoded = pc.dictionary_encode(household)
    return of_values(encoded.dictionary).take(encoded.indices)


def household_provinces(household: pa.Array, id_address: np.ndarray) -> pa.Array:
    """The 2-digit province of each 户口所在地 ('' when none); ``id_address``: the ID's 6-digit
    address code as an integer, -1 without an ID."""
    known = pa.array(sorted(gb2260.province_codes()), pa.string())
    given = _per_value(household, _provinces_of_values)
    return pc.fill_null(_from_id(given, id_address, 2, known), "")


def _provinces_of_values(household: pa.Array) -> pa.Array:
    names, name_provinces, province_names = _province_lookup()
    known = pa.array(sorted(gb2260.province_codes()), pa.string())
    text = _clean(household)
    is_code = pc.fill_null(pc.match_substring_regex(text, _DIGITS6), False)
    head = pc.utf8_slice_codeunits(text, 0, 2)
    by_code = pc.if_else(pc.is_in(head, value_set=known), head, "")
    found = pc.if_else(is_code, by_code, name_provinces.take(pc.index_in(text, value_set=names)))
    for name, code in province_names:
        begins = pc.fill_null(pc.starts_with(text, name), False)
        found = pc.if_else(pc.and_(begins, pc.is_null(found)), code, found)
    # A county's name without its province (抚州市黎川县): the county code's province.
    county = pc.utf8_slice_codeunits(pc.fill_null(_counties_of_values(household), ""), 0, 2)
    found = pc.if_else(pc.equal(pc.fill_null(found, ""), ""), county, found)
    return pc.if_else(pc.is_null(text), pa.scalar(None, pa.string()), found)


def household_counties(household: pa.Array, id_address: np.ndarray) -> pa.Array:
    """The 6-digit county-level code of each 户口所在地 ('' when none); ``id_address`` as in
    ``household_provinces``."""
    given = _per_value(household, _counties_of_values)
    return pc.fill_null(_from_id(given, id_address, 6, _county_lookup()[2]), "")


def _counties_of_values(household: pa.Array) -> pa.Array:
    forms, form_codes, known = _county_lookup()
    text = _clean(household)
    is_code = pc.fill_null(pc.match_substring_regex(text, _DIGITS6), False)
    by_code = pc.if_else(pc.is_in(text, value_set=known), text, "")
    found = pc.if_else(is_code, by_code, form_codes.take(pc.index_in(text, value_set=forms)))
    return pc.if_else(pc.is_null(text), pa.scalar(None, pa.string()), pc.fill_null(found, ""))
