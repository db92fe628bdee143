"""Blocking keys built from declared parts: a field, or a transform of a field.

A part is written ``field`` or ``transform(field)`` in config/linkage.json:

- fields: ``name`` (cleaned: NFKC, blanks removed), ``guardian`` (cleaned likewise),
  ``birth_date`` (出生日期, or the date inside the ID where it is blank or no date), ``sex``,
  ``household_region``, ``id_number`` (the 18 characters of ID shape, as one value),
  ``student_no`` (学籍号: letter and 18 characters).
- transforms giving one code per record: ``pinyin`` (of name or guardian: the common reading,
  so 张伟 and 张玮 agree), ``unordered_month_day`` (of birth_date: the year with the unordered
  pair {month, day}, so a day/month swap agrees), ``year_month`` and ``year`` (of birth_date),
  ``address``, ``date`` and ``sequence`` (of id_number: the 6-digit address code, the YYYYMMDD
  part, the 3-digit sequence).
- transforms giving several keys per record, which only their pass kinds use (see
  ``linkage.index``): ``masked_position`` (the ID with one of its 18 positions masked),
  ``adjacent_pair_canonical`` (the ID with one adjacent pair put in ascending order),
  ``one_edit_valid_neighbours`` (the valid numbers one substitution or swap away from an ID
  failing its check), ``carried_id`` (of student_no: the ID a G 学籍号 carries).

The names of earlier configs are read the same way: ``name_pinyin``, ``birth_date_unordered``,
``id_address``, ``id_birth``, ``id_sequence``.

A key combines its parts' codes into one int64 per record; -1 where any part is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from xueji_quality.linkage.records import CHUNK_ROWS, Records
from xueji_quality.standards import resident_id

FIELDS: tuple[str, ...] = (
    "name",
    "guardian",
    "birth_date",
    "sex",
    "household_region",
    "id_number",
    "student_no",
)
# transform -> the fields it applies to
TRANSFORMS: dict[str, tuple[str, ...]] = {
    "pinyin": ("name", "guardian"),
    "unordered_month_day": ("birth_date",),
    "year_month": ("birth_date",),
    "year": ("birth_date",),
    "address": ("id_number",),
    "date": ("id_number",),
    "sequence": ("id_number",),
    "masked_position": ("id_number",),
    "adjacent_pair_canonical": ("id_number",),
    "one_edit_valid_neighbours": ("id_number",),
    "carried_id": ("student_no",),
}
# Transforms giving several keys per record: only the pass kinds built on them take them.
MULTI_KEY_TRANSFORMS = (
    "masked_position",
    "adjacent_pair_canonical",
    "one_edit_valid_neighbours",
    "carried_id",
)
ALIASES: dict[str, str] = {
    "name_pinyin": "pinyin(name)",
    "birth_date_unordered": "unordered_month_day(birth_date)",
    "id_address": "address(id_number)",
    "id_birth": "date(id_number)",
    "id_sequence": "sequence(id_number)",
}
_PART = re.compile(r"\s*(?:(?P<transform>\w+)\s*\(\s*(?P<inner>\w+)\s*\)|(?P<field>\w+))\s*")


class UnknownKeyPart(ValueError):
    """A key part names a field or a transform linkage does not know (message in Chinese)."""


@dataclass(frozen=True)
class KeyPart:
    field: str
    transform: str | None = None

    @property
    def text(self) -> str:
        return self.field if self.transform is None else f"{self.transform}({self.field})"

    @property
    def multi_key(self) -> bool:
        return self.transform in MULTI_KEY_TRANSFORMS


def parse_part(text: str) -> KeyPart:
    """The part a declared text names, or UnknownKeyPart saying what is unknown.

    >>> parse_part("pinyin(name)")
    KeyPart(field='name', transform='pinyin')
    >>> parse_part("birth_date_unordered").text
    'unordered_month_day(birth_date)'
    >>> parse_part("soundex(name)")
    Traceback (most recent call last):
        ...
    xueji_quality.linkage.keys.UnknownKeyPart: 未知变换 soundex（可用变换：pinyin、unordered_month_day、year_month、year、address、date、sequence、masked_position、adjacent_pair_canonical、one_edit_valid_neighbours、carried_id）
    """
    if not isinstance(text, str):
        raise UnknownKeyPart(f"键的组成应为文本（字段或 变换(字段)），不是 {text!r}")
    text = ALIASES.get(text.strip(), text)
    match = _PART.fullmatch(text)
    if match is None:
        raise UnknownKeyPart(f"无法识别的键组成 {text!r}：应写作 字段 或 变换(字段)")
    field = match["field"] or match["inner"]
    transform = match["transform"]
    if field not in FIELDS:
        raise UnknownKeyPart(f"未知字段 {field}（可用字段：{'、'.join(FIELDS)}）")
    if transform is None:
        return KeyPart(field)
    if transform not in TRANSFORMS:
        raise UnknownKeyPart(f"未知变换 {transform}（可用变换：{'、'.join(TRANSFORMS)}）")
    if field not in TRANSFORMS[transform]:
        allowed = "、".join(TRANSFORMS[transform])
        raise UnknownKeyPart(f"变换 {transform} 不适用于字段 {field}（只适用于 {allowed}）")
    return KeyPart(field, transform)


def _date_code(records: Records, unordered: bool, rows=None) -> np.ndarray:
    """Dense int32 code of the birth date (year, month, day; or year and {month, day}), -1 unknown."""
    if rows is None:
        out = np.empty(records.n, dtype=np.int32)
        for start in range(0, records.n, CHUNK_ROWS):
            part = slice(start, start + CHUNK_ROWS)
            out[part] = _date_code(records, unordered, part)
        return out
    year = records.birth_year[rows].astype(np.int32)
    month = records.birth_month[rows].astype(np.int32)
    day = records.birth_day[rows].astype(np.int32)
    if unordered:
        month, day = np.minimum(month, day), np.maximum(month, day)
    return np.where(year > 0, year * 372 + (month - 1) * 31 + (day - 1), -1).astype(np.int32)


def part_codes(records: Records, part: KeyPart, rows=None) -> tuple[np.ndarray, int]:
    """Integer codes of one single-key part at ``rows`` (all by default; -1 missing; the Records
    array itself where it can be) and the number of possible codes."""
    every = slice(None) if rows is None else rows
    field, transform = part.field, part.transform
    if field == "name" and transform is None:
        return records.name_code[every], len(records.names)
    if field == "name":
        table = records.pinyin_of_name
        return table[records.name_code[every]], int(table.max(initial=-1)) + 1
    if field == "guardian" and transform is None:
        return records.guardian_code[every], len(records.guardians)
    if field == "guardian":
        table = records.pinyin_of_guardian()
        return table[records.guardian_code[every]], int(table.max(initial=-1)) + 1
    if field == "birth_date" and transform in (None, "unordered_month_day"):
        return _date_code(records, transform is not None, rows), 10_000 * 372
    if field == "birth_date":
        year = records.birth_year[every].astype(np.int32)
        if transform == "year":
            return np.where(year > 0, year, -1), 10_000
        month = records.birth_month[every].astype(np.int32)
        return np.where(year > 0, year * 12 + month - 1, -1), 10_000 * 12
    if field == "sex":
        return records.sex[every] - 1, 2
    if field == "household_region":
        return records.region[every], records.extra["region_values"]
    if field == "id_number":
        value = records.id_value[every]
        if transform is None:
            return value, 11 * 10**17
        if transform == "address":
            return np.where(value >= 0, value // resident_id.ADDRESS_PLACE, -1), 10**6
        if transform == "date":
            return np.where(value >= 0, value // resident_id.BIRTH_PLACE % 10**8, -1), 10**8
        if transform == "sequence":
            return np.where(value >= 0, value // resident_id.SEQUENCE_PLACE % 1000, -1), 1000
    if field == "student_no" and transform is None:
        positions = np.arange(records.n)[every]
        return records.student_no_at(positions), 4 * 11 * 10**17
    raise UnknownKeyPart(f"键组成 {part.text} 每条记录给出多个键，只能用于其专用的分块类型")


def field_codes(records: Records, name: str, rows=None) -> tuple[np.ndarray, int]:
    """Integer codes of one declared part (``field`` or ``transform(field)``) at ``rows``."""
    return part_codes(records, parse_part(name), rows)


def block_keys(records: Records, parts: list[str] | list[KeyPart], rows=None) -> np.ndarray:
    """One int64 key per record (at ``rows``, all by default) from several parts; -1 where any
    is missing. The key of a record does not depend on which rows are asked for. Should the
    parts' code ranges multiply beyond 2^62, the partial key is folded (modulo): two blocks may
    then share a key, which adds candidate pairs and loses none."""
    parts = [p if isinstance(p, KeyPart) else parse_part(p) for p in parts]
    codes, size = part_codes(records, parts[0], rows)
    key = codes.astype(np.int64)
    for part in parts[1:]:
        codes, cardinality = part_codes(records, part, rows)
        cardinality = max(cardinality, 1)
        missing = key < 0
        missing |= codes < 0
        if size * cardinality >= 2**62:
            size = 2**62 // cardinality
            key %= size
        key *= cardinality
        key += codes
        key[missing] = -1
        size *= cardinality
    return key


def agree_or_missing(
    records: Records, parts: list[str] | list[KeyPart], a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """True where a pair agrees on at least one part, or one side lacks it."""
    keep = np.zeros(len(a), dtype=bool)
    for part in parts:
        part = part if isinstance(part, KeyPart) else parse_part(part)
        ca, _ = part_codes(records, part, a)
        cb, _ = part_codes(records, part, b)
        keep |= (ca == cb) | (ca < 0) | (cb < 0)
    return keep
