"""How a roster name differs from the name the police registry holds for the same ID number.

Kinds, from harmless to serious (``classify`` returns one per pair of names):

- ``same``: equal once the separators of minority and foreign names (``·`` and what is typed
  for it: ``•`` ``・`` ``.`` ``．`` …) and blanks are removed: 阿依古丽·买买提, 阿依古丽•买买提 and
  阿依古丽 买买提 are one name. Not a mismatch at all.
- ``variant`` (形近字/异体字/繁简): every differing character is the traditional or a variant
  form of the other (温/溫, 峰/峯), or a look-alike of it (己/已). Canonical forms come from
  OpenCC's traditional-to-simplified tables (the ``opencc`` package, data in its wheel) after
  NFKC (CJK compatibility ideographs); look-alikes from ``LOOK_ALIKES`` below.
- ``homophone`` (同音字): every differing character shares a reading with the other (张伟/张玮).
  Readings are pypinyin's with ``heteronym=True`` and without tones, compared as sets: pypinyin
  has no surname mode and reads 单 曾 解 仇 区 查 朴 覃 as common words (dan, ceng, jie …), but the
  surname reading (shan, zeng, xie …) is in the set. Tones are left out because a pinyin input
  method takes syllables without them: a wrong pick shares the syllable, not always the tone.
- ``rare_placeholder`` (生僻字未录入): the roster has a placeholder where the registry has a
  character: ``□`` ``?`` ``*`` ``〇`` ``○`` (one per character), or the character's pinyin in
  Latin letters (one run of letters per character, e.g. 王yan for 王龑); every other
  character is equal or a variant.
- ``different``: anything else. The number may be another person's: that person's name must
  never be shown.

A pair of names is judged once however many rows carry it. Names are compared as matrices of
code points (one row per distinct pair); readings and canonical forms are looked up once per
distinct character or character pair. Only pairs whose roster name holds a placeholder are
aligned one by one (they are a handful: a roster name with ``?`` is already a NAME_CHARS error).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality import normalize

SAME = "same"
VARIANT = "variant"
HOMOPHONE = "homophone"
RARE_PLACEHOLDER = "rare_placeholder"
DIFFERENT = "different"
KINDS: tuple[str, ...] = (SAME, VARIANT, HOMOPHONE, RARE_PLACEHOLDER, DIFFERENT)

# What is removed before two names are compared: blanks and the middle dot with its look-alikes.
SEPARATORS = f"{normalize.BLANK_CHARS}|{normalize.DOT_LOOKALIKES}|{normalize.MIDDLE_DOT}"
# Placeholders typed for a character the keyboard lacks (each stands for one character), and
# Latin letters (a run of them spells the character's pinyin).
PLACEHOLDER_CHARS = "□?*〇○"
LATIN = "A-Za-z"
PLACEHOLDER = f"[{re.escape(PLACEHOLDER_CHARS)}{LATIN}]"

# Characters commonly confused for one another by their look (形近字) in names; each group is
# one set of look-alikes. Traditional and variant forms are not listed: OpenCC knows them.
LOOK_ALIKES: tuple[str, ...] = (
    "己已巳",
    "戊戌戍",
    "未末",
    "土士",
    "侯候",
    "嬴赢",
    "汩汨",
    "祎袆",
    "刺剌",
    "茶荼",
    "日曰",
    "大太犬",
    "王玉壬",
    "干千于",
    "天夭",
    "免兔",
    "折拆",
    "雎睢",
    "毫亳",
    "崇祟",
    "径经",
    "候喉",
)


@cache
def _look_alike_groups() -> dict[str, int]:
    return {char: i for i, group in enumerate(LOOK_ALIKES) for char in group}


@cache
def _converter():
    import opencc

    return opencc.OpenCC("t2s.json")


@cache
def canonical(char: str) -> str:
    """The simplified standard form of one character (itself when it has no other form)."""
    folded = unicodedata.normalize("NFKC", char)
    if len(folded) != 1:
        folded = char
    return _converter().convert(folded)


@cache
def readings(char: str) -> frozenset[str]:
    """Toneless pinyin readings of one character, all of them (empty when pypinyin has none)."""
    from xueji_quality.character_readings import Style, pinyin

    found = pinyin(char, style=Style.NORMAL, heteronym=True, errors="ignore")
    return frozenset(r for group in found for r in group if r.isascii() and r.isalpha())


def _relation(a: str, b: str) -> str:
    """How two different characters relate: variant, homophone or different."""
    if canonical(a) == canonical(b):
        return VARIANT
    groups = _look_alike_groups()
    if a in groups and groups[a] == groups.get(b):
        return VARIANT
    if readings(a) & readings(b):
        return HOMOPHONE
    return DIFFERENT


def _arrow(values: pd.Series) -> pa.Array:
    array = pa.array(values.astype(normalize.STRING).array)
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    return pc.cast(array, pa.large_string())


def name_key(names: pd.Series) -> pd.Series:
    """Names with blanks and middle-dot separators removed, full-width ASCII folded (the form in
    which two spellings of one name are equal)."""
    text = normalize.to_halfwidth(names.astype(normalize.STRING))
    keyed = pc.replace_substring_regex(_arrow(text), SEPARATORS, "")
    return pd.Series(pd.arrays.ArrowStringArray(keyed), index=names.index)


def has_placeholder(names: pd.Series) -> np.ndarray:
    """Boolean mask of names holding a placeholder for a character (□ ? * 〇 ○ or letters)."""
    return normalize.contains(name_key(names), PLACEHOLDER, regex=True)


def _code_points(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint32 code points of strings no longer than ``width`` (zero-padded)."""
    fixed = np.asarray(values, dtype=f"<U{max(width, 1)}")
    return fixed.view(np.uint32).reshape(len(values), max(width, 1))


def _classify_aligned(roster: np.ndarray, registry: np.ndarray) -> np.ndarray:
    """Kinds of distinct pairs of names without placeholders, as a matrix of code points."""
    out = np.full(len(roster), DIFFERENT, dtype=object)
    lengths_a = np.char.str_len(roster.astype(str))
    lengths_b = np.char.str_len(registry.astype(str))
    even = np.flatnonzero((lengths_a == lengths_b) & (lengths_a > 0))
    if not len(even):
        return out
    width = int(lengths_a[even].max())
    a = _code_points(roster[even], width).astype(np.int64)
    b = _code_points(registry[even], width).astype(np.int64)
    unequal = a != b
    # One relation per distinct pair of differing characters.
    pair_codes = (a[unequal] << 21) | b[unequal]
    distinct, inverse = np.unique(pair_codes, return_inverse=True)
    relation = np.array(
        [_relation(chr(int(c >> 21)), chr(int(c & 0x1FFFFF))) for c in distinct], dtype=object
    )
    kind = np.full(a.shape, SAME, dtype=object)
    kind[unequal] = relation[inverse.reshape(-1)]
    different = (kind == DIFFERENT).any(axis=1)
    homophone = (kind == HOMOPHONE).any(axis=1)
    out[even] = np.where(different, DIFFERENT, np.where(homophone, HOMOPHONE, VARIANT))
    return out


_UNIT = re.compile(f"[{LATIN}]+|.", re.S)


def _placeholder_kind(roster: str, registry: str) -> str:
    """RARE_PLACEHOLDER when every placeholder of ``roster`` stands for one character of
    ``registry`` (letters spelling one of its readings) and the rest is equal or a variant."""
    units = _UNIT.findall(roster)
    if len(units) != len(registry):
        return DIFFERENT
    for unit, char in zip(units, registry, strict=True):
        if unit == char:
            continue
        if unit in PLACEHOLDER_CHARS:
            continue
        if unit.isascii() and unit.isalpha():
            if unit.lower() not in readings(char):
                return DIFFERENT
            continue
        if _relation(unit, char) != VARIANT:
            return DIFFERENT
    return RARE_PLACEHOLDER


def kind_codes(roster_names: pd.Series, registry_names: pd.Series) -> np.ndarray:
    """``classify`` as int8 positions in ``KINDS`` (by position; for a million pairs the kinds
    are better kept as numbers than as a million strings)."""
    left = _arrow(roster_names)
    right = _arrow(registry_names.reset_index(drop=True))  # by position
    # Most pairs are equal as written: only the others are keyed.
    equal = pc.fill_null(pc.equal(left, right), False).to_numpy(zero_copy_only=False)
    equal |= pc.and_(pc.is_null(left), pc.is_null(right)).to_numpy(zero_copy_only=False)
    codes = np.zeros(len(left), dtype=np.int8)  # SAME
    rest = np.flatnonzero(~equal)
    a = name_key(pd.Series(pd.arrays.ArrowStringArray(left.take(pa.array(rest)))))
    b = name_key(pd.Series(pd.arrays.ArrowStringArray(right.take(pa.array(rest)))))
    same = (a == b).fillna(False).to_numpy(dtype=bool) | (a.isna() & b.isna()).to_numpy()
    todo = rest[~same]
    if len(todo):
        a, b = a[~same], b[~same]
        pairs = pd.DataFrame({"a": a.fillna("").to_numpy(), "b": b.fillna("").to_numpy()})
        pair_codes, distinct = pd.factorize(pd.MultiIndex.from_frame(pairs))
        ours = np.asarray(distinct.get_level_values(0), dtype=object)
        theirs = np.asarray(distinct.get_level_values(1), dtype=object)
        judged = np.full(len(distinct), DIFFERENT, dtype=object)
        marked = normalize.contains(
            pd.Series(ours, dtype=normalize.STRING), PLACEHOLDER, regex=True
        )
        plain = np.flatnonzero(~marked)
        judged[plain] = _classify_aligned(ours[plain], theirs[plain])
        for i in np.flatnonzero(marked):
            judged[i] = _placeholder_kind(ours[i], theirs[i])
        position = {kind: i for i, kind in enumerate(KINDS)}
        codes[todo] = np.array([position[k] for k in judged], dtype=np.int8)[pair_codes]
    return codes


def classify(roster_names: pd.Series, registry_names: pd.Series) -> pd.Series:
    """Kind (one of ``KINDS``) of each pair of a roster name and the registry's name for the
    same ID number, on the index of ``roster_names``. A missing name on either side is
    ``different`` unless both are missing."""
    kinds = np.asarray(KINDS, dtype=object)[kind_codes(roster_names, registry_names)]
    return pd.Series(kinds, index=roster_names.index, dtype=normalize.STRING)
