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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pypinyin import Style, pinyin

from xueji_quality import idcard

# Base-11 place values of the 18 ID positions (X = 10): an 18-character ID fits an int64.
PLACE = (11 ** np.arange(17, -1, -1, dtype=np.int64)).astype(np.int64)
_WEIGHT_INVERSE = np.array([pow(int(w), -1, 11) for w in idcard.WEIGHTS], dtype=np.int64)
_STUDENT_NO = r"^[GJL]\d{17}[\dX]$"
PASSES = ("id", "student_no", "id_neighbour", "name_birth", "pinyin_birth", "guardian_birth")


@dataclass
class Records:
    """Per-record keys and comparison inputs, computed once per roster (numpy, length n)."""

    n: int
    record_id: np.ndarray  # object array of str
    id_present: np.ndarray  # bool: the ID field holds something
    id_digits: np.ndarray  # (n, 18) uint8 digit values (X = 10) where id_shape, zeros elsewhere
    id_shape: np.ndarray  # bool: 17 digits + digit/X
    id_valid: np.ndarray  # bool: shape and check character right
    id_value: np.ndarray  # int64 base-11 value of the ID where id_shape, else -1
    student_no: np.ndarray  # int64 code of a 学籍号 of the right shape, else -1
    student_no_id: np.ndarray  # int64 base-11 value of a G 学籍号's tail when a valid ID, else -1
    name_code: np.ndarray  # int64 code of the cleaned name (-1 missing)
    names: list[str]  # cleaned name per code
    name_raw_code: np.ndarray  # int64 code of the name as given (-1 missing)
    names_raw: list[str]
    name_pinyin: np.ndarray  # int64 code of the default reading of the name (-1 missing)
    guardian_code: np.ndarray
    guardians: list[str]
    birth_year: np.ndarray  # int32, 0 when unknown
    birth_month: np.ndarray
    birth_day: np.ndarray
    sex: np.ndarray  # int8: 1, 2, 0 unknown
    region: np.ndarray  # int64 code of household_region (-1 missing)
    extra: dict = field(default_factory=dict)


# Blanks a name may carry (RE2 \s is ASCII only): NFKC has already turned U+3000 into a space.
_NAME_BLANKS = r"[\s\x{00a0}\x{200b}-\x{200d}\x{2060}\x{feff}]"
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


def default_readings(names: list[str]) -> list[str]:
    """The common reading of each name, syllables separated by blanks (key of the pinyin pass)."""
    chars = set("".join(names))
    for ch in chars:
        char_readings(ch)
    table = {ord(ch): _DEFAULT_READING[ch] + " " for ch in chars}
    return [name.translate(table) for name in names]


def _arrow(roster: pd.DataFrame, column: str) -> pa.Array:
    if column not in roster.columns:
        return pa.nulls(len(roster), pa.string())
    values = roster[column]
    if not isinstance(values.dtype, pd.StringDtype):
        values = values.astype("string")
    array = pa.array(values, type=pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _codes(array: pa.Array) -> tuple[np.ndarray, list]:
    """Dictionary codes (-1 for null or empty) and the distinct values."""
    encoded = pc.dictionary_encode(array)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    values = encoded.dictionary.to_pylist()
    if "" in values:  # an empty cell is a missing value, not a value shared by many records
        empty = values.index("")
        codes[codes == empty] = -1
    return codes, values


def _cleaned_codes(array: pa.Array) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """Codes of the cleaned values (NFKC, blanks removed, '.'/'•' → '·') and of the raw ones."""
    raw_codes, raw_values = _codes(array)
    dictionary = pa.array(raw_values, type=pa.string())
    cleaned = pc.utf8_normalize(dictionary, "NFKC")
    cleaned = pc.replace_substring_regex(cleaned, _NAME_BLANKS, "")
    cleaned = pc.replace_substring_regex(cleaned, r"[.•・]", "·")
    clean_codes, clean_values = _codes(cleaned)
    lookup = np.append(clean_codes, -1)
    return lookup[raw_codes], clean_values, raw_codes, raw_values


def _valid_and_value(digits: np.ndarray, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = shape & (idcard.check_digit_values(digits) == digits[:, 17])
    valid &= (digits[:, :17] <= 9).all(axis=1)
    value = np.where(shape, digits.astype(np.int64) @ PLACE, -1)
    return valid, value


def _birth_parts(birth: pa.Array, digits: np.ndarray, shape: np.ndarray) -> tuple:
    """Year, month, day from 'YYYY-MM-DD' (0 when unusable); the ID's date fills a missing one."""
    codes, values = _codes(birth)
    table = np.zeros((len(values) + 1, 3), dtype=np.int32)
    for i, text in enumerate(values):
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            parts = (text[:4], text[5:7], text[8:10])
            if all(p.isdigit() for p in parts):
                table[i] = [int(p) for p in parts]
    year, month, day = (table[codes, i] for i in range(3))
    d = digits.astype(np.int32)
    from_id = (
        d[:, 6] * 1000 + d[:, 7] * 100 + d[:, 8] * 10 + d[:, 9],
        d[:, 10] * 10 + d[:, 11],
        d[:, 12] * 10 + d[:, 13],
    )
    use_id = (year == 0) & shape
    year, month, day = (
        np.where(use_id, i, g) for g, i in zip((year, month, day), from_id, strict=True)
    )
    bad = (month < 1) | (month > 12) | (day < 1) | (day > 31)
    year, month, day = (np.where(bad, 0, p).astype(np.int32) for p in (year, month, day))
    return year, month, day


def prepare_records(roster: pd.DataFrame) -> Records:
    """Everything blocking and comparison need, computed column-wise from a canonical roster."""
    n = len(roster)
    ids = _arrow(roster, "id_number")
    digits, shape = idcard.id_digits(ids)
    valid, value = _valid_and_value(digits, shape)

    student_no = _arrow(roster, "student_no")
    sno_shape = pc.fill_null(pc.match_substring_regex(student_no, _STUDENT_NO), False)
    sno_codes, student_nos = _codes(pc.if_else(sno_shape, student_no, pa.scalar(None, pa.string())))
    g_number = pc.and_(sno_shape, pc.fill_null(pc.starts_with(student_no, "G"), False))
    tail = pc.if_else(
        g_number, pc.utf8_slice_codeunits(student_no, 1), pa.scalar(None, pa.string())
    )
    tail_digits, tail_shape = idcard.id_digits(tail)
    tail_valid, tail_value = _valid_and_value(tail_digits, tail_shape)

    name_code, names, name_raw_code, names_raw = _cleaned_codes(_arrow(roster, "name"))
    guardian_code, guardians, _, _ = _cleaned_codes(_arrow(roster, "guardian_name"))
    pinyin_codes, _ = pd.factorize(pd.Series(default_readings(names), dtype=object))
    name_pinyin = np.append(pinyin_codes, -1).astype(np.int64)[name_code]

    year, month, day = _birth_parts(_arrow(roster, "birth_date"), digits, shape)
    sex_text = _arrow(roster, "sex")
    sex = np.select(
        [
            pc.fill_null(pc.equal(sex_text, "1"), False).to_numpy(zero_copy_only=False),
            pc.fill_null(pc.equal(sex_text, "2"), False).to_numpy(zero_copy_only=False),
        ],
        [1, 2],
        0,
    ).astype(np.int8)
    region, _ = _codes(_arrow(roster, "household_region"))

    record_id = (
        roster["record_id"].astype("string").to_numpy(dtype=object)
        if "record_id" in roster.columns
        else np.array([str(i) for i in range(n)], dtype=object)
    )
    return Records(
        n=n,
        record_id=record_id,
        id_present=pc.fill_null(pc.greater(pc.utf8_length(ids), 0), False).to_numpy(
            zero_copy_only=False
        ),
        id_digits=digits,
        id_shape=shape,
        id_valid=valid,
        id_value=value.astype(np.int64),
        student_no=sno_codes,
        student_no_id=np.where(tail_valid, tail_value, -1).astype(np.int64),
        name_code=name_code,
        names=names,
        name_raw_code=name_raw_code,
        names_raw=names_raw,
        name_pinyin=name_pinyin,
        guardian_code=guardian_code,
        guardians=guardians,
        birth_year=year,
        birth_month=month,
        birth_day=day,
        sex=sex,
        region=region,
        extra={"student_nos": student_nos},
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
    order = np.argsort(keys)
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


def _combined(code: np.ndarray, date: np.ndarray) -> np.ndarray:
    """One int64 key from a value code and a date code (YYYYMMDD < 10^8); -1 if either is."""
    return np.where((code < 0) | (date < 0), -1, code * 100_000_000 + date)


def _id_text(value: int) -> str:
    digits = [(value // int(p)) % 11 for p in PLACE]
    return "".join("0123456789X"[d] for d in digits)


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
    keep = left_values >= 0
    left_rows, left_values = np.asarray(left_rows)[keep], np.asarray(left_values)[keep]
    order = np.argsort(right_values)
    right_rows, right_values = np.asarray(right_rows)[order], np.asarray(right_values)[order]
    low = np.searchsorted(right_values, left_values, side="left")
    high = np.searchsorted(right_values, left_values, side="right")
    count = high - low
    a = np.repeat(left_rows, count)
    starts = np.repeat(low, count)
    offsets = np.arange(len(a)) - np.repeat(np.cumsum(count) - count, count)
    b = right_rows[starts + offsets]
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
        a, b, bk, bs = pairs_in_blocks(records.id_value, cap)
        add("id", a, b, bk, bs, _id_text)

    if "student_no" in enabled:
        a, b, bk, bs = pairs_in_blocks(records.student_no, cap)
        has_tail = np.flatnonzero(records.student_no_id >= 0)
        valid = np.flatnonzero(records.id_valid)
        a2, b2 = _match_values(
            has_tail, records.student_no_id[has_tail], valid, records.id_value[valid]
        )
        keep = a2 != b2
        add(
            "student_no",
            np.r_[a, a2[keep]],
            np.r_[b, b2[keep]],
            bk,
            bs,
            lambda k: str(records.extra["student_nos"][k]),
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
            block_a, block_b, bk, bs = pairs_in_blocks(pd.factorize(masked)[0], cap, invalid)
            parts_a.append(block_a)
            parts_b.append(block_b)
            big_k += [f"第{k + 1}位掩码" for _ in bk]
            big_s += list(bs)
        for k in range(17):
            low, high = np.minimum(d[:, k], d[:, k + 1]), np.maximum(d[:, k], d[:, k + 1])
            canonical = v - d[:, k] * PLACE[k] - d[:, k + 1] * PLACE[k + 1]
            canonical = canonical + low * PLACE[k] + high * PLACE[k + 1]
            block_a, block_b, bk, bs = pairs_in_blocks(pd.factorize(canonical)[0], cap, invalid)
            parts_a.append(block_a)
            parts_b.append(block_b)
            big_k += [f"第{k + 1}、{k + 2}位互换" for _ in bk]
            big_s += list(bs)
        add("id_neighbour", np.concatenate(parts_a), np.concatenate(parts_b), big_k, big_s)

    if "name_birth" in enabled:
        keys = _combined(records.name_code, _date_codes(records, unordered=False))
        a, b, bk, bs = pairs_in_blocks(keys, cap)
        add("name_birth", a, b, bk, bs, _key_describer(records, keys, "name"))

    if "pinyin_birth" in enabled:
        keys = _combined(records.name_pinyin, _date_codes(records, unordered=True))
        a, b, bk, bs = pairs_in_blocks(keys, cap)
        add("pinyin_birth", a, b, bk, bs, _key_describer(records, keys, "name"))

    if "guardian_birth" in enabled:
        keys = _combined(records.guardian_code, _date_codes(records, unordered=True))
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


def _key_describer(records: Records, keys: np.ndarray, what: str):
    """Readable text of an oversized block's key (first member's name and birth date)."""

    def describe(key: int) -> str:
        row = int(np.flatnonzero(keys == key)[0])
        code = records.name_code[row] if what == "name" else records.guardian_code[row]
        label = (records.names if what == "name" else records.guardians)[code]
        date = f"{records.birth_year[row]:04d}-{records.birth_month[row]:02d}-{records.birth_day[row]:02d}"
        return f"{label}|{date}"

    return describe
