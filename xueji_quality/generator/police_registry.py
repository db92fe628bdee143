"""The people and lines of a generated police registry beyond the students' own entries: sex and
birth date from a number, residents not in school, numbers two characters away from a student's,
and the result file of the roster's request."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xueji_quality.generator import names as nm
from xueji_quality.generator.police_names import ARROW_STRING, same_names
from xueji_quality.generator.police_pieces import held_numbers
from xueji_quality.police import exchange, registry
from xueji_quality.standards import gb2260, resident_id


def sex_and_birth(ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    text = ids.astype(ARROW_STRING)
    odd = pd.to_numeric(text.str.slice(16, 17)).to_numpy() % 2 == 1
    birth = text.str.slice(6, 10) + "-" + text.str.slice(10, 12) + "-" + text.str.slice(12, 14)
    return np.where(odd, "1", "2"), birth.to_numpy(dtype=object)


def resident_people(
    rng: np.random.Generator,
    count: int,
    province: str,
    taken: np.ndarray,
    held: np.ndarray | None = None,
) -> pd.DataFrame:
    """People not in school: counties of the province, born 2005-2021, common names; no
    number among ``taken`` (text) or ``held`` (sorted int64, ``police_pieces.held_numbers``)."""
    counties = gb2260.counties(province)["code"].to_numpy(dtype=object)
    address = counties[rng.integers(0, len(counties), count)]
    days = rng.integers(
        np.datetime64("2005-01-01").astype(int), np.datetime64("2021-12-31").astype(int), count
    )
    born = pd.to_datetime(days, unit="D").strftime("%Y%m%d").to_numpy(dtype=object)
    sequence = rng.integers(0, 1000, count)
    bodies = np.char.add(
        np.char.add(np.asarray(address).astype(str), np.asarray(born).astype(str)),
        np.char.zfill(sequence.astype(str), 3),
    )
    ids = pd.Series(resident_id.with_check_digit_column(bodies), dtype="string")
    keep = ~ids.isin(taken).to_numpy() & ~ids.duplicated().to_numpy()
    keep &= ~held_numbers(ids, held)
    ids, sequence = ids[keep].reset_index(drop=True), sequence[keep]
    surname_chars = np.array([s for s, _ in nm.SURNAMES], dtype=object)
    weight = np.array([w for _, w in nm.SURNAMES], dtype=float)
    n = len(ids)
    surname = surname_chars[rng.choice(len(surname_chars), n, p=weight / weight.sum())]
    pool = np.where(sequence % 2 == 1, 0, 1)
    boy, girl = np.array(list(nm.BOY_CHARS)), np.array(list(nm.GIRL_CHARS))
    first = np.where(
        pool == 0, boy[rng.integers(0, len(boy), n)], girl[rng.integers(0, len(girl), n)]
    )
    second = np.where(
        pool == 0, boy[rng.integers(0, len(boy), n)], girl[rng.integers(0, len(girl), n)]
    )
    two = rng.random(n) < 0.6
    given = np.where(two, np.char.add(first.astype(str), second.astype(str)), first.astype(str))
    status = rng.choice(
        [registry.NORMAL, registry.MOVED, registry.CANCELLED, registry.DEAD],
        size=n,
        p=[0.97, 0.02, 0.005, 0.005],
    )
    sex, birth = sex_and_birth(ids)
    return pd.DataFrame(
        {
            "id_number": ids.to_numpy(dtype=object),
            "name": np.char.add(surname.astype(str), given).astype(object),
            "sex": sex,
            "birth_date": birth,
            "status": status,
        }
    )


def near_number(ids: pd.Series, taken: pd.Series, held: np.ndarray | None = None) -> pd.Series:
    """Each number with its 16th digit changed and the check character recomputed (two
    positions apart), the first change no other number holds (``taken``, text, or ``held``)."""
    text = ids.astype("string")
    out = pd.Series(pd.NA, index=ids.index, dtype="string")
    for step in range(1, 10):
        todo = out.isna()
        if not todo.any():
            break
        digit = (pd.to_numeric(text[todo].str.slice(15, 16)) + step) % 10
        body = text[todo].str.slice(0, 15) + digit.astype(str) + text[todo].str.slice(16, 17)
        number = pd.Series(
            resident_id.with_check_digit_column(body), index=body.index, dtype="string"
        )
        free = ~number.isin(taken) & ~number.isin(out.dropna()) & ~held_numbers(number, held)
        out[number.index[free.to_numpy()]] = number[free]
    return out


def result_file(
    frame: pd.DataFrame, table: pd.DataFrame, pending_share: float, rng: np.random.Generator
) -> tuple[pd.DataFrame, np.ndarray]:
    """The result file of the roster's request, and the roster rows whose line is 04."""
    request = exchange.request_table(frame)
    held = table.drop_duplicates("id_number").set_index("id_number")
    found = request["公民身份号码"].isin(held.index).to_numpy()
    registry_name = held["name"].reindex(request["公民身份号码"]).to_numpy(dtype=object)
    same = same_names(request["姓名"], pd.Series(registry_name, dtype="string"))
    codes = exchange.VERDICT_CODES
    id_verdict = np.where(found, codes[exchange.MATCH], codes[exchange.ABSENT]).astype(object)
    name_verdict = np.where(same, codes[exchange.MATCH], codes[exchange.MISMATCH]).astype(object)
    name_verdict[~found] = ""
    status = held["status"].reindex(request["公民身份号码"]).map(registry.STATUS_WORDS)
    status = status.fillna("").to_numpy(dtype=object)
    failed = rng.random(len(request)) < pending_share
    id_verdict[failed] = name_verdict[failed] = codes[exchange.FAILED]
    status[failed] = ""
    results = request.assign(
        身份证号比对结果=id_verdict, 姓名比对结果=name_verdict, 人员状态=status
    ).astype("string")
    lines = request.loc[failed, ["公民身份号码", "姓名"]]
    pending = np.flatnonzero(
        pd.MultiIndex.from_frame(frame[["id_number", "name"]].astype("string")).isin(
            pd.MultiIndex.from_frame(lines.astype("string"))
        )
        & exchange.sendable(frame)
    )
    return results, pending
