"""Blocking (建立候选对): the passes whose union is the set of record pairs worth comparing.

Comparing every pair of a province is out of the question (10^12 pairs for a million rows), so
each pass groups records by a key and only records sharing a key become candidates:

- ``id``: the same normalised ID number (18 characters of ID shape) — the Ministry's class 1.
- ``student_no``: the same 学籍号, and a ``G`` 学籍号 whose 18 tail characters equal another
  record's ID number (a damaged ID field often sits next to an intact 学籍号).
- ``id_neighbour``: IDs that fail their MOD 11-2 check. A single substitution or a swap of two
  adjacent characters always breaks the check, so for such an ID every valid number one edit away
  is computed (at most 17 substitutions, the right check character, 17 swaps) and looked up among
  the valid IDs; two invalid IDs are matched on the ID with one position masked and on the ID with
  an adjacent pair put in canonical order. Valid IDs are never neighbour-matched: two valid,
  different numbers are two people.
- ``name_birth``: the cleaned name and the birth date (姓名+出生日期).
- ``pinyin_birth``: the reading of the name (zhang wei for 张伟 and 张玮) with the birth year and the
  unordered pair {month, day}, so homophones and day/month swaps fall into one block.
- ``guardian_birth``: guardian and birth date, kept only where one side has no valid ID (then
  name, sex, birth date and guardian have to carry the match).

Blocks larger than the configured cap are not expanded: they are listed in the stats (pass, key,
size) for a person to look at. Pairs are integer positions (a < b) into the roster, never labels.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pypinyin import Style, pinyin

from xueji_quality import idcard

# Base-11 place values of the 18 ID positions (X = 10): an 18-character ID fits an int64.
PLACE = (11 ** np.arange(17, -1, -1, dtype=np.int64)).astype(np.int64)
_WEIGHT_INVERSE = np.array([pow(int(w), -1, 11) for w in idcard.WEIGHTS], dtype=np.int64)
_BLANKS = r"[\s\u3000\u200b\u200c\u200d\u2060\ufeff]"
_STUDENT_NO = r"^[GJL]\d{17}[\dX]$"


@dataclass
class Records:
    """Per-record keys and comparison inputs, computed once per roster (all numpy, length n)."""

    n: int
    record_id: np.ndarray
    id_text: np.ndarray  # object array of str ('' when absent)
    id_digits: np.ndarray  # (n, 18) uint8, see idcard.digit_matrix
    id_shape: np.ndarray  # bool: 17 digits + digit/X
    id_valid: np.ndarray  # bool: shape and check character right
    id_value: np.ndarray  # int64 base-11 value of the ID (meaningful where id_shape)
    student_no: np.ndarray  # object array of str ('' when absent or not of 学籍号 shape)
    student_no_id: np.ndarray  # object: tail of a G 学籍号 when it is a valid ID, else ''
    name_raw: np.ndarray  # object (as given)
    name_code: np.ndarray  # int64 code of the cleaned name (-1 missing)
    names: list[str]  # cleaned name per code
    name_readings: list[tuple[frozenset[str], ...]]  # reading set per character, per code
    name_pinyin: np.ndarray  # int64 code of the default reading of the name (-1 missing)
    guardian_code: np.ndarray
    guardians: list[str]
    guardian_readings: list[tuple[frozenset[str], ...]]
    birth_year: np.ndarray  # int32, 0 when unknown
    birth_month: np.ndarray
    birth_day: np.ndarray
    sex: np.ndarray  # int8: 1, 2, 0 unknown
    region: np.ndarray  # int64 code of household_region (-1 missing)
    extra: dict = field(default_factory=dict)


def clean_name(text: str) -> str:
    """Name as compared: NFKC (full-width → half-width), blanks removed, '.'/'•' → '·'."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(
        ch for ch in text if not ch.isspace() and ch not in "\u200b\u200c\u200d\u2060\ufeff"
    )
    return text.replace("•", "·").replace(".", "·").replace("・", "·")


_READINGS: dict[str, frozenset[str]] = {}
_DEFAULT_READING: dict[str, str] = {}


def char_readings(ch: str) -> frozenset[str]:
    """Every reading of one character (heteronyms included: 单 → dan, shan, chan)."""
    found = _READINGS.get(ch)
    if found is None:
        readings = pinyin(ch, heteronym=True, style=Style.NORMAL)[0]
        found = frozenset(readings)
        _READINGS[ch] = found
        _DEFAULT_READING[ch] = readings[0]
    return found


def default_reading(name: str) -> str:
    """The common reading of a name, syllables separated by blanks (key of the pinyin pass)."""
    for ch in name:
        char_readings(ch)
    return " ".join(_DEFAULT_READING[ch] for ch in name)


def _codes_of_cleaned(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes of the cleaned values; cleaning runs once per distinct raw value."""
    raw_codes, raw_uniques = pd.factorize(values.astype("string"), use_na_sentinel=True)
    cleaned = [clean_name(str(v)) for v in raw_uniques]
    clean_codes, clean_uniques = pd.factorize(pd.Series(cleaned, dtype="string").replace("", pd.NA))
    lookup = np.append(clean_codes, -1).astype(np.int64)
    return lookup[np.where(raw_codes < 0, len(lookup) - 1, raw_codes)], list(clean_uniques)


def _birth_parts(birth: pd.Series, id_text: pd.Series, id_shape: np.ndarray) -> tuple:
    """Year, month, day from 'YYYY-MM-DD' (0 when unusable); the ID's date fills a missing one."""
    text = birth.astype("string")
    fallback = idcard.birth_date_text(id_text).where(pd.Series(id_shape, index=text.index))
    text = text.where(text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False), fallback)
    codes, uniques = pd.factorize(text)
    uniq = pd.Series(uniques, dtype="string")
    parts = []
    for start, stop in ((0, 4), (5, 7), (8, 10)):
        values = pd.to_numeric(uniq.str.slice(start, stop), errors="coerce").fillna(0)
        table = np.append(values.to_numpy(dtype=np.int32), 0)
        parts.append(table[np.where(codes < 0, len(table) - 1, codes)])
    year, month, day = parts
    bad = (month < 1) | (month > 12) | (day < 1) | (day > 31)
    year, month, day = (np.where(bad, 0, p).astype(np.int32) for p in (year, month, day))
    return year, month, day


def prepare_records(roster: pd.DataFrame) -> Records:
    """Everything blocking and comparison need, computed column-wise from a canonical roster."""
    n = len(roster)

    def column(name: str) -> pd.Series:
        if name in roster.columns:
            return roster[name].astype("string").reset_index(drop=True)
        return pd.Series(pd.NA, index=pd.RangeIndex(n), dtype="string")

    ids = column("id_number")
    digits = idcard.digit_matrix(ids)
    shape = idcard.has_format(ids).to_numpy()
    valid = shape & (idcard.check_digit_values(digits) == digits[:, 17])
    value = np.where(shape, digits.astype(np.int64) @ PLACE, -1)

    student_no = column("student_no")
    sno_shape = student_no.str.fullmatch(_STUDENT_NO).fillna(False).to_numpy(dtype=bool)
    tail = student_no.str.slice(1).where(
        student_no.str.startswith("G").fillna(False) & pd.Series(sno_shape)
    )
    tail_valid = idcard.checksum_ok(tail.fillna("")).to_numpy() & sno_shape

    name_code, names = _codes_of_cleaned(column("name"))
    guardian_code, guardians = _codes_of_cleaned(column("guardian_name"))
    name_readings = [tuple(char_readings(ch) for ch in nm) for nm in names]
    guardian_readings = [tuple(char_readings(ch) for ch in nm) for nm in guardians]
    pinyin_codes, _ = pd.factorize(pd.Series([default_reading(nm) for nm in names], dtype=object))
    pinyin_table = np.append(pinyin_codes, -1).astype(np.int64)
    name_pinyin = pinyin_table[np.where(name_code < 0, len(pinyin_table) - 1, name_code)]

    year, month, day = _birth_parts(column("birth_date"), ids, shape)
    sex_text = column("sex")
    sex = np.select(
        [(sex_text == "1").fillna(False).to_numpy(), (sex_text == "2").fillna(False).to_numpy()],
        [1, 2],
        0,
    ).astype(np.int8)
    region, _ = pd.factorize(column("household_region"))

    return Records(
        n=n,
        record_id=column("record_id").to_numpy(dtype=object),
        id_text=ids.fillna("").to_numpy(dtype=object),
        id_digits=digits,
        id_shape=shape,
        id_valid=valid,
        id_value=value.astype(np.int64),
        student_no=student_no.where(pd.Series(sno_shape), "").fillna("").to_numpy(dtype=object),
        student_no_id=tail.where(pd.Series(tail_valid), "").fillna("").to_numpy(dtype=object),
        name_raw=column("name").fillna("").to_numpy(dtype=object),
        name_code=name_code,
        names=names,
        name_readings=name_readings,
        name_pinyin=name_pinyin,
        guardian_code=guardian_code,
        guardians=guardians,
        guardian_readings=guardian_readings,
        birth_year=year,
        birth_month=month,
        birth_day=day,
        sex=sex,
        region=region.astype(np.int64),
    )


def pairs_in_blocks(
    keys: np.ndarray, cap: int, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All pairs of positions sharing a key (keys < 0 take no part).

    ``rows`` maps each key to its roster position (default: the key's own index). Returns
    (a, b, oversized_keys, oversized_sizes) with a < b; blocks above ``cap`` are not expanded.
    """
    keys = np.asarray(keys, dtype=np.int64)
    rows = np.arange(len(keys), dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
    used = keys >= 0
    keys, rows = keys[used], rows[used]
    order = np.argsort(keys, kind="stable")
    keys, rows = keys[order], rows[order]
    if len(keys) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    oversized = sizes > cap
    expand = (sizes >= 2) & ~oversized
    block_end = np.repeat(np.where(expand, starts + sizes, 0), sizes)
    position = np.arange(len(keys), dtype=np.int64)
    later = np.maximum(block_end - 1 - position, 0)
    total = int(later.sum())
    left = np.repeat(position, later)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(later) - later, later)
    right = left + 1 + offsets
    a, b = rows[left], rows[right]
    keep = a != b
    a, b = a[keep], b[keep]
    return (
        np.minimum(a, b),
        np.maximum(a, b),
        keys[starts[oversized]],
        sizes[oversized],
    )


def _text_codes(values: pd.Series | np.ndarray) -> np.ndarray:
    series = pd.Series(values, dtype="string").replace("", pd.NA)
    return pd.factorize(series)[0].astype(np.int64)


def _pair_keys(*codes: np.ndarray) -> np.ndarray:
    """One int64 code per combination of several code columns (-1 if any is -1)."""
    frame = pd.DataFrame({str(i): c for i, c in enumerate(codes)})
    combined = pd.MultiIndex.from_frame(frame).factorize()[0] if len(frame) else np.zeros(0)
    combined = np.asarray(combined, dtype=np.int64)
    missing = np.zeros(len(frame), dtype=bool)
    for c in codes:
        missing |= c < 0
    return np.where(missing, -1, combined)


def _date_codes(records: Records, unordered: bool) -> np.ndarray:
    known = records.birth_year > 0
    low = np.minimum(records.birth_month, records.birth_day) if unordered else records.birth_month
    high = np.maximum(records.birth_month, records.birth_day) if unordered else records.birth_day
    code = (records.birth_year.astype(np.int64) * 100 + low) * 100 + high
    return np.where(known, code, -1)


def _one_edit_valid_neighbours(digits: np.ndarray, value: np.ndarray) -> list[np.ndarray]:
    """For IDs failing MOD 11-2: base-11 values of every valid ID one substitution/swap away."""
    d = digits.astype(np.int64)
    total = d[:, :17] @ idcard.WEIGHTS
    check = d[:, 17]
    target = (12 - check) % 11  # the weighted sum (mod 11) a valid first-17 would need
    out = []
    for k in range(17):
        x = (d[:, k] + (target - total) * _WEIGHT_INVERSE[k]) % 11
        ok = x <= 9
        out.append(np.where(ok, value + (x - d[:, k]) * PLACE[k], -1))
    right_check = (12 - total % 11) % 11
    out.append(value + (right_check - check) * PLACE[17])
    for k in range(17):
        swapped = d.copy()
        swapped[:, [k, k + 1]] = swapped[:, [k + 1, k]]
        ok = (swapped[:, :17] <= 9).all(axis=1) & (swapped[:, k] != swapped[:, k + 1])
        ok &= idcard.check_digit_values(swapped) == swapped[:, 17]
        out.append(np.where(ok, swapped @ PLACE, -1))
    return out


def _match_values(left_rows, left_values, right_rows, right_values):
    """Pairs (left row, right row) with equal int64 values (>= 0)."""
    left = pd.DataFrame({"a": left_rows, "v": left_values})
    left = left[left["v"] >= 0]
    right = pd.DataFrame({"b": right_rows, "v": right_values})
    joined = left.merge(right, on="v", how="inner")
    a, b = joined["a"].to_numpy(np.int64), joined["b"].to_numpy(np.int64)
    return np.minimum(a, b), np.maximum(a, b)


def candidate_pairs(records: Records, config: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """Union of all blocking passes: (a, b) positions with a < b, and per-pass stats."""
    cap = int(config["block_size_cap"])
    enabled = set(config.get("passes", PASSES))
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    oversized: list[dict] = []

    def add(name: str, a, b, big_keys=(), big_sizes=(), describe=None) -> None:
        found[name] = (np.asarray(a, np.int64), np.asarray(b, np.int64))
        for key, size in zip(big_keys, big_sizes, strict=True):
            label = describe(int(key)) if describe is not None else str(key)
            oversized.append({"pass": name, "key": label, "size": int(size)})

    n = records.n
    if "id" in enabled:
        codes, uniques = pd.factorize(pd.Series(np.where(records.id_shape, records.id_text, None)))
        a, b, bk, bs = pairs_in_blocks(codes, cap)
        add("id", a, b, bk, bs, lambda k: str(uniques[k]))

    if "student_no" in enabled:
        codes, uniques = pd.factorize(pd.Series(records.student_no).replace("", None))
        a, b, bk, bs = pairs_in_blocks(codes, cap)
        has_tail = np.flatnonzero(records.student_no_id != "")
        valid = np.flatnonzero(records.id_valid)
        a2, b2 = _match_values(
            has_tail,
            _values_of(records.student_no_id[has_tail]),
            valid,
            records.id_value[valid],
        )
        keep = a2 != b2
        add(
            "student_no",
            np.r_[a, a2[keep]],
            np.r_[b, b2[keep]],
            bk,
            bs,
            lambda k: str(uniques[k]),
        )

    if "id_neighbour" in enabled:
        invalid = np.flatnonzero(records.id_shape & ~records.id_valid)
        valid = np.flatnonzero(records.id_valid)
        valid_values = records.id_value[valid]
        neighbours = _one_edit_valid_neighbours(
            records.id_digits[invalid], records.id_value[invalid]
        )
        values = np.concatenate(neighbours) if neighbours else np.zeros(0, np.int64)
        rows = np.tile(invalid, len(neighbours))
        a, b = _match_values(rows, values, valid, valid_values)
        parts_a, parts_b = [a], [b]
        d = records.id_digits[invalid].astype(np.int64)
        v = records.id_value[invalid]
        big_k: list[int] = []
        big_s: list[int] = []
        for k in range(18):
            masked = v - d[:, k] * PLACE[k]
            pa, pb, bk, bs = pairs_in_blocks(pd.factorize(masked)[0], cap, invalid)
            parts_a.append(pa)
            parts_b.append(pb)
            big_k += [f"第{k + 1}位掩码" for _ in bk]
            big_s += list(bs)
        for k in range(17):
            low, high = np.minimum(d[:, k], d[:, k + 1]), np.maximum(d[:, k], d[:, k + 1])
            canonical = v - d[:, k] * PLACE[k] - d[:, k + 1] * PLACE[k + 1]
            canonical = canonical + low * PLACE[k] + high * PLACE[k + 1]
            pa, pb, bk, bs = pairs_in_blocks(pd.factorize(canonical)[0], cap, invalid)
            parts_a.append(pa)
            parts_b.append(pb)
            big_k += [f"第{k + 1}、{k + 2}位互换" for _ in bk]
            big_s += list(bs)
        add("id_neighbour", np.concatenate(parts_a), np.concatenate(parts_b), big_k, big_s)

    if "name_birth" in enabled:
        keys = _pair_keys(records.name_code, _date_codes(records, unordered=False))
        a, b, bk, bs = pairs_in_blocks(keys, cap)
        add("name_birth", a, b, bk, bs, _key_describer(records, keys, "name"))

    if "pinyin_birth" in enabled:
        keys = _pair_keys(records.name_pinyin, _date_codes(records, unordered=True))
        a, b, bk, bs = pairs_in_blocks(keys, cap)
        add("pinyin_birth", a, b, bk, bs, _key_describer(records, keys, "name"))

    if "guardian_birth" in enabled:
        keys = _pair_keys(records.guardian_code, _date_codes(records, unordered=True))
        a, b, bk, bs = pairs_in_blocks(keys, cap)
        keep = ~(records.id_valid[a] & records.id_valid[b])
        add("guardian_birth", a[keep], b[keep], bk, bs, _key_describer(records, keys, "guardian"))

    all_a = np.concatenate([p[0] for p in found.values()]) if found else np.zeros(0, np.int64)
    all_b = np.concatenate([p[1] for p in found.values()]) if found else np.zeros(0, np.int64)
    codes = np.unique(all_a * n + all_b)
    stats = {
        "candidate_pairs": int(len(codes)),
        "pass_pairs": {name: int(len(np.unique(p[0] * n + p[1]))) for name, p in found.items()},
        "oversized_blocks": oversized,
    }
    return codes // n, codes % n, stats


def _values_of(id_texts: np.ndarray) -> np.ndarray:
    """Base-11 values of ID-shaped texts."""
    digits = idcard.digit_matrix(pd.Series(id_texts, dtype="string"))
    return digits.astype(np.int64) @ PLACE


def _key_describer(records: Records, keys: np.ndarray, what: str):
    """Readable text of an oversized block's key (first member's name and birth date)."""

    def describe(key: int) -> str:
        row = int(np.flatnonzero(keys == key)[0])
        code = records.name_code[row] if what == "name" else records.guardian_code[row]
        label = (records.names if what == "name" else records.guardians)[code]
        date = f"{records.birth_year[row]:04d}-{records.birth_month[row]:02d}-{records.birth_day[row]:02d}"
        return f"{label}|{date}"

    return describe


PASSES = ("id", "student_no", "id_neighbour", "name_birth", "pinyin_birth", "guardian_birth")
