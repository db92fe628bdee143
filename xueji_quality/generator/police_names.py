"""Names as the police registry of a generated roster holds them: the rare characters behind a
roster's ``?``, homophones and traditional forms of the planted mismatches, other people's names,
the separators of ``·`` names, and what a roster name is against the registry's (the truth)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xueji_quality import normalize
from xueji_quality.generator import names as nm
from xueji_quality.police import names

RARE_CHARS = "龑䶮堃淼犇垚赟翀琰瑄骉燚"
# Simplified characters of names and their traditional (or variant) form, as older registry
# entries keep them. Written out here rather than taken from OpenCC, so the check's tables are
# tested against a list they did not produce.
TRADITIONAL: dict[str, str] = dict(
    zip(
        "刘张陈杨黄赵吴郑韩冯邓许谢罗叶苏卢钟陆贾龙温孙马蒋吕谭韦邹贺顾龚万钱"
        "伟杰涛鹏强军华丽静颖红飞凯锋诚乐铭晓东达宁远钧书鸿云梦兰艳峰",
        "劉張陳楊黃趙吳鄭韓馮鄧許謝羅葉蘇盧鍾陸賈龍溫孫馬蔣呂譚韋鄒賀顧龔萬錢"
        "偉傑濤鵬強軍華麗靜穎紅飛凱鋒誠樂銘曉東達寧遠鈞書鴻雲夢蘭艷峯",
        strict=True,
    )
)
# Given-name characters of the people whose number a roster row wrongly holds: seldom seen in
# the roster's own names, so a test can look for them in every output.
OTHER_GIVEN = "瀚骞琨璟翊珩湛祺彧琛煦"
SEPARATORS = ("•", "・", ".", "．", " ", "")
# Text columns of a million rows are worked on as Arrow strings (the string functions run in
# Arrow, not once per value in Python).
ARROW_STRING = "string[pyarrow]"


def member(values: np.ndarray, choices) -> np.ndarray:
    """Boolean mask of ``values`` found in ``choices`` (hashed: text arrays are large)."""
    return pd.Series(values, dtype=object).isin(list(choices)).to_numpy(dtype=bool)


def same_names(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Position by position: equal once separators and blanks are removed (missing: False)."""
    left = names.name_key(a.reset_index(drop=True).astype("string"))
    right = names.name_key(b.reset_index(drop=True).astype("string"))
    return (left == right).fillna(False).to_numpy(dtype=bool)


def replace_one(values: np.ndarray, table: dict[str, str], rng: np.random.Generator) -> np.ndarray:
    """Each name with one of its characters found in ``table`` replaced by a choice of its
    entry (a string of alternatives); None where no character is in ``table``."""
    out = np.full(len(values), None, dtype=object)
    for i, name in enumerate(values):
        spots = [k for k, ch in enumerate(name) if ch in table]
        if spots:
            k = spots[int(rng.integers(0, len(spots)))]
            options = table[name[k]]
            out[i] = name[:k] + options[int(rng.integers(0, len(options)))] + name[k + 1 :]
    return out


def derived_names(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The registry's name for a roster name a NAME_CHARS error spoiled: ? is a rare
    character, a run of letters a common one, digits and other marks nothing."""
    text = pd.Series(values, dtype="string")
    rare = rng.choice(list(RARE_CHARS), size=len(values))
    out = text.str.replace("[A-Za-z]+", "明", regex=True).str.replace("[0-9]", "", regex=True)
    out = pd.Series(
        [v.replace("?", r) for v, r in zip(out.to_numpy(dtype=object), rare, strict=True)],
        dtype="string",
    )
    return out.str.replace(
        f"[^{normalize.HAN_CHARS[1:-1]}{normalize.MIDDLE_DOT}]", "", regex=True
    ).to_numpy(dtype=object)


def name_truth(roster_names: pd.Series, registry_names: pd.Series, homophone_copy: np.ndarray):
    """(kind, expected registry name or None) of roster names against the registry's, for rows
    whose number the registry holds, as the generator made them."""
    a = names.name_key(roster_names).to_numpy(dtype=object)
    b = names.name_key(registry_names).to_numpy(dtype=object)
    kind = np.full(len(a), "", dtype=object)
    differ = a != b
    keyed = pd.Series(a, dtype=ARROW_STRING)
    placeholder = keyed.str.contains(r"\?", regex=True).to_numpy(dtype=bool)
    latin = keyed.str.contains("[A-Za-z0-9]", regex=True).to_numpy(dtype=bool)
    kind[differ] = "unknown"
    kind[differ & homophone_copy] = "homophone"
    kind[differ & latin] = names.DIFFERENT
    kind[differ & placeholder & ~latin] = names.RARE_PLACEHOLDER
    # A letter that spells the reading of the registry's character is a placeholder too.
    spelled = np.flatnonzero(differ & latin)
    if len(spelled):
        kind[spelled] = names.classify(
            pd.Series(a[spelled], dtype=object), pd.Series(b[spelled], dtype=object)
        ).to_numpy(dtype=object)
    shown = member(kind, [names.HOMOPHONE, names.RARE_PLACEHOLDER])
    return kind, np.where(shown, registry_names.to_numpy(dtype=object), None)


def other_names(current: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Names of other people: a surname read unlike the student's, given names from
    ``OTHER_GIVEN``."""
    surnames = [s for s, _ in nm.SURNAMES if len(s) == 1]
    out = []
    for name in current:
        own = names.readings(name[0])
        choices = [s for s in surnames if not (names.readings(s) & own) and s != name[0]]
        surname = choices[int(rng.integers(0, len(choices)))]
        size = int(rng.integers(1, 3))
        out.append(surname + "".join(rng.choice(list(OTHER_GIVEN), size=size)))
    return np.asarray(out, dtype=object)
