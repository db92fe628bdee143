"""A province's returns from the national check, as problem rows (DUP_CROSS_PROVINCE).

``national_problems(returns, roster)`` turns the rows of ``returns/<province>.parquet`` into the
project's problem rows (``schema.PROBLEM_COLUMNS``), one per record of the province that another
province also holds:

1. a verdict per record, ``national_match``: ``id`` when any other registration has the same ID
   (身份证号重复：外省已注册有学籍), else ``name`` (疑似外省重复: name or reading, sex and birth
   date alike, the IDs one typo apart or one missing);
2. the suite ``expectations/roster_national.json`` (stage ``national``) validates these records
   through Great Expectations (``validate.validate_stage``), so the rule is declared, switched
   on and worded like every other rule;
3. the placeholders of its message and suggestion are filled per record: 〔外省学籍〕 names each
   other registration (province, county name and code, 学校标识码, grade, 入学年月) and
   〔建议保留〕 says which one to keep (学生在哪学籍在哪: the later 入学年月, then a graduating
   grade, then the higher grade), as the national run suggested it.

Records the returns name that the roster no longer holds (the roster changed since the export)
are left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from xueji_quality import schema
from xueji_quality.errors import InputError
from xueji_quality.files import sha256_file
from xueji_quality.national.link import RETURN_COLUMNS
from xueji_quality.standards import gb2260

STAGE = "national"
RULE = "DUP_CROSS_PROVINCE"
VERDICT = "national_match"
# Placeholders of the suite's messages and suggestions, filled per record from these columns.
TOKENS = {"other_registrations": "〔外省学籍〕", "keeper": "〔建议保留〕"}
_GRADE_TEXT = {
    **{str(g): f"{'一二三四五六'[g - 1]}年级" for g in range(1, 7)},
    "7": "初一",
    "8": "初二",
    "9": "初三",
    "10": "高一",
    "11": "高二",
    "12": "高三",
}


@dataclass(frozen=True)
class ReturnsOutcome:
    """``problems``: PROBLEM_COLUMNS rows of DUP_CROSS_PROVINCE; ``unknown_record_keys``: keys
    the returns name that the roster lacks; ``files``: name, sha256 and rows of each file read."""

    problems: pd.DataFrame
    unknown_record_keys: list[str]
    files: list[dict]


def read_returns(path: Path | str) -> pd.DataFrame:
    """A returns file (RETURN_COLUMNS, strings); InputError when it is none."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "全国查重回执文件不存在")
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several kinds for a file that is no Parquet
        raise InputError(str(path), f"不是 Parquet 文件（{error}）") from None
    missing = [c for c in RETURN_COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(str(path), f"不是全国查重回执：缺少列 {'、'.join(missing)}")
    frame = table.select(list(RETURN_COLUMNS)).to_pandas()
    return frame.astype({c: "string" for c in RETURN_COLUMNS})


def _province_names(codes: pd.Series) -> pd.Series:
    names = {}
    for code in codes.dropna().unique():
        try:
            names[code] = gb2260.province_name(str(code))
        except ValueError:
            names[code] = f"省份 {code}"
    return codes.map(names).fillna("").astype("string")


def _described(returns: pd.DataFrame) -> pd.Series:
    """One text per returns row: where the other registration is."""
    county = returns["other_county_code"].fillna("")
    county_name = gb2260.county_names(county)
    grade = returns["other_grade"].map(_GRADE_TEXT).fillna("")
    enroll = returns["other_enroll_date"].fillna("")
    text = (
        _province_names(returns["other_province"])
        + " "
        + county_name.where(county_name != "", "区县")
        + "（"
        + county
        + "）学校标识码 "
        + returns["other_school_code"].fillna("")
    )
    text = text + grade.where(grade == "", "，" + grade)
    text = text + enroll.where(enroll == "", "，入学 " + enroll)
    return text.astype("string")


def _keeper(returns: pd.DataFrame, own_province: pd.Series) -> pd.Series:
    keeper = returns["suggested_keeper"].fillna("")
    own = keeper == own_province
    text = pd.Series("无法从入学年月和年级判断保留哪一方，请与外省共同核实", index=returns.index)
    text = text.where(~own, "建议保留本省学籍（入学较晚或在毕业年级）")
    other = (keeper != "") & ~own
    text = text.where(
        ~other, "建议保留" + _province_names(keeper) + "的学籍（入学较晚或在毕业年级）"
    )
    return text.astype("string")


def national_verdicts(returns: pd.DataFrame, province: str) -> pd.DataFrame:
    """One row per record_key: county_code, national_match, other_registrations, keeper."""
    if returns.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype="string") for c in ("record_key", "county_code", VERDICT)}
            | {c: pd.Series(dtype="string") for c in TOKENS}
        )
    rows = returns.assign(
        described=_described(returns),
        keeper=_keeper(returns, pd.Series(str(province), index=returns.index)),
        is_id=(returns["match_class"] == "id").fillna(False).astype(bool),
    )
    # An ID match says more than a name match: shown first, and it decides the verdict.
    rows = rows.sort_values(["record_key", "is_id"], ascending=[True, False], kind="stable")
    grouped = rows.groupby("record_key", sort=True)
    verdicts = pd.DataFrame(
        {
            "county_code": grouped["county_code"].first(),
            VERDICT: np.where(grouped["is_id"].any(), "id", "name"),
            "other_registrations": grouped["described"].agg("；".join),
            "keeper": grouped["keeper"].first(),
        }
    ).reset_index()
    return verdicts.astype("string")


def _fill(text: pd.Series, token: str, values: pd.Series) -> pd.Series:
    """``text`` with ``token`` replaced by the row's value (texts share few distinct forms)."""
    out = text.copy()
    for form in text.dropna().unique():
        if token not in form:
            continue
        before, _, after = form.partition(token)
        rows = text == form
        out[rows] = before + values[rows].fillna("") + after
    return out


def national_problems(
    returns: pd.DataFrame | Path | str | list[Path | str],
    province: str,
    roster: pd.DataFrame | None = None,
    *,
    suites_dir: Path | None = None,
    data_docs_dir: Path | None = None,
) -> ReturnsOutcome:
    """Problem rows of the returns (a frame, or returns files) of ``province``'s records.

    ``roster``: the records of the run (record_id, county_code, id_number, name); with it the
    problem rows carry the record's own ID or name as ``value`` and records it lacks are left
    out. Without it the returns' county codes route the rows and ``value`` is empty.
    """
    files: list[dict] = []
    if not isinstance(returns, pd.DataFrame):
        paths = [returns] if isinstance(returns, str | Path) else list(returns)
        frames = []
        for path in map(Path, paths):
            frame = read_returns(path)
            frames.append(frame)
            files.append({"name": path.name, "sha256": sha256_file(path), "rows": len(frame)})
        returns = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame({c: pd.Series(dtype="string") for c in RETURN_COLUMNS})
        )
    verdicts = national_verdicts(returns, province)
    unknown: list[str] = []
    batch = verdicts.rename(columns={"record_key": "record_id"})
    if roster is not None:
        known = roster[
            [c for c in ("record_id", "county_code", "id_number", "name") if c in roster]
        ]
        known = known.astype("string").drop_duplicates("record_id")
        present = batch["record_id"].isin(known["record_id"])
        unknown = batch.loc[~present, "record_id"].tolist()
        batch = batch[present].drop(columns="county_code").merge(known, on="record_id", how="left")
    for column in ("id_number", "name"):
        if column not in batch.columns:
            batch[column] = pd.Series(pd.NA, index=batch.index, dtype="string")
    batch = batch.reset_index(drop=True)
    if batch.empty:
        empty = pd.DataFrame({c: pd.Series(dtype="string") for c in schema.PROBLEM_COLUMNS})
        return ReturnsOutcome(empty, unknown, files)
    from xueji_quality import validate

    problems = validate.validate_stage(
        batch[["record_id", "county_code", "id_number", "name", VERDICT]],
        STAGE,
        suites_dir=suites_dir,
        data_docs_dir=data_docs_dir,
    )
    if problems.empty:
        return ReturnsOutcome(problems, unknown, files)
    looked_up = batch.set_index("record_id").reindex(problems["record_id"]).reset_index(drop=True)
    out = problems.reset_index(drop=True)
    for column in ("message", "suggestion"):
        text = out[column].astype("string")
        for source, token in TOKENS.items():
            text = _fill(text, token, looked_up[source].astype("string"))
        out[column] = text
    out = out.astype({c: "string" for c in schema.PROBLEM_COLUMNS})
    return ReturnsOutcome(out, unknown, files)
