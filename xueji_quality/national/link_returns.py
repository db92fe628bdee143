"""The returns of the national linkage: decided pairs joined to their records, one row to each
side's province, written by the workers as ``returns/<province>.parquet``.

``suggested_keeper`` names the province of the registration to keep (学生在哪学籍在哪): the later
入学年月, then a graduating grade (六年级, 九年级, 高三), then the higher grade.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xueji_quality.national.link_pairs import CLASS_NAMES, DECIDED_META, match_keys
from xueji_quality.national.link_tokens import (
    RECORD_COLUMNS,
    STRING_DTYPE,
    record_rows,
    record_rows_meta,
)
from xueji_quality.schema import GRADUATING_LEVELS

RETURN_COLUMNS = (
    "record_key",
    "county_code",
    "other_province",
    "other_record_key",
    "other_county_code",
    "other_school_code",
    "other_grade",
    "other_enroll_date",
    "match_keys",
    "match_class",
    "suggested_keeper",
)
RETURNS = "returns"


def sides(decided: pd.DataFrame) -> pd.DataFrame:
    """Two rows per pair: each record with the other."""
    twice = {
        c: np.r_[decided[c].to_numpy(), decided[c].to_numpy()] for c in ("bits", "match_class")
    }
    return pd.DataFrame(
        {
            "rid": np.r_[decided["a"].to_numpy(), decided["b"].to_numpy()],
            "other_rid": np.r_[decided["b"].to_numpy(), decided["a"].to_numpy()],
            **twice,
        }
    )


def _grade_numbers(grades: pd.Series) -> np.ndarray:
    return pd.to_numeric(grades, errors="coerce").fillna(0).to_numpy(dtype=np.int64)


def keeper_side(
    enroll: pd.Series, grade: pd.Series, other_enroll: pd.Series, other_grade: pd.Series
) -> np.ndarray:
    """1 where this registration is the one to keep, -1 where the other is, 0 undecided: the
    later 入学年月 (YYYY-MM), then a graduating grade, then the higher grade."""
    mine = enroll.fillna("").astype(str).to_numpy(dtype=object)
    theirs = other_enroll.fillna("").astype(str).to_numpy(dtype=object)
    g, og = _grade_numbers(grade), _grade_numbers(other_grade)
    graduating = np.isin(g, list(GRADUATING_LEVELS)).astype(np.int64)
    other_graduating = np.isin(og, list(GRADUATING_LEVELS)).astype(np.int64)
    out = np.sign(g - og)
    out = np.where(graduating != other_graduating, np.sign(graduating - other_graduating), out)
    later = (mine > theirs).astype(np.int64) - (mine < theirs).astype(np.int64)
    return np.where(later != 0, later, out)


def return_rows(joined: pd.DataFrame) -> pd.DataFrame:
    """Rows of the returns files (RETURN_COLUMNS plus province and grade for ordering) from side
    rows joined to both records' columns (``other_*`` for the other record)."""
    keep = keeper_side(
        joined["enroll_date"], joined["grade"], joined["other_enroll_date"], joined["other_grade"]
    )
    keeper = np.where(
        keep > 0,
        joined["province"].astype(str).to_numpy(dtype=object),
        np.where(keep < 0, joined["other_province"].astype(str).to_numpy(dtype=object), ""),
    )
    out = pd.DataFrame(
        {
            "province": joined["province"].astype(STRING_DTYPE).to_numpy(),
            "grade": joined["grade"].astype(STRING_DTYPE).to_numpy(),
            **{
                c: joined[c].astype(STRING_DTYPE).to_numpy()
                for c in RETURN_COLUMNS
                if c in joined.columns and c not in ("match_keys", "match_class")
            },
            "match_keys": match_keys(joined["bits"].to_numpy()),
            "match_class": pd.Series(joined["match_class"].to_numpy()).map(CLASS_NAMES).to_numpy(),
            "suggested_keeper": keeper,
        }
    )
    return out.astype(STRING_DTYPE)


RETURN_META = return_rows(
    pd.DataFrame(
        {
            "bits": pd.Series(dtype=np.uint8),
            "match_class": pd.Series(dtype=np.int8),
            **{c: pd.Series(dtype=STRING_DTYPE) for c in RECORD_COLUMNS},
            **{f"other_{c}": pd.Series(dtype=STRING_DTYPE) for c in RECORD_COLUMNS},
        }
    )
)


def _graduating_first(frame: pd.DataFrame) -> pd.DataFrame:
    graduating = np.isin(_grade_numbers(frame["grade"]), list(GRADUATING_LEVELS))
    return (
        frame.assign(_first=~graduating)
        .sort_values(["_first", "county_code", "record_key", "other_province"], kind="stable")
        .drop(columns="_first")
    )


def write_returns(frame: pd.DataFrame, returns_dir: str) -> pd.DataFrame:
    """Write each province of a partition (every row of each) to ``<province>.parquet``;
    return (province, rows)."""
    written = []
    for province, rows in frame.groupby("province", sort=True, observed=True):
        write_return_file(Path(returns_dir), str(province), rows)
        written.append((str(province), len(rows)))
    return pd.DataFrame(written, columns=["province", "rows"]).astype({"rows": np.int64})


def write_return_file(returns_dir: Path, province: str, rows: pd.DataFrame) -> Path:
    """``returns_dir/<province>.parquet`` (RETURN_COLUMNS, graduating grades first), atomically."""
    rows = _graduating_first(rows) if len(rows) else rows
    table = pa.Table.from_pandas(
        rows.reindex(columns=list(RETURN_COLUMNS)).astype(STRING_DTYPE), preserve_index=False
    )
    table = table.cast(pa.schema([(c, pa.string()) for c in RETURN_COLUMNS]))
    path = returns_dir / f"{province}.parquet"
    temporary = returns_dir / f".{province}.parquet.{os.getpid()}.tmp"
    pq.write_table(table, temporary)
    os.replace(temporary, path)
    return path


def write_all_returns(dd, decided, pieces, returns_dir, provinces, total_pairs, workers) -> dict:
    """Join decided pairs to their records and write the returns files; rows per province."""
    written: dict[str, int] = dict.fromkeys(provinces, 0)
    if total_pairs:
        records = dd.from_map(record_rows, pieces, meta=record_rows_meta(), label="records")
        ids = dd.concat(
            [
                decided[["a"]].rename(columns={"a": "rid"}),
                decided[["b"]].rename(columns={"b": "rid"}),
            ]
        ).drop_duplicates(split_out=1)
        needed = ids.repartition(npartitions=max(1, -(-2 * total_pairs // 2_000_000)))
        involved = records.merge(needed, on="rid", how="inner", broadcast=True)
        other = involved.rename(columns={c: f"other_{c}" for c in involved.columns})
        side_rows = decided.map_partitions(sides, meta=sides(DECIDED_META))
        joined = side_rows.merge(involved, on="rid", how="inner", shuffle_method="p2p").merge(
            other, on="other_rid", how="inner", shuffle_method="p2p"
        )
        rows = joined.map_partitions(return_rows, meta=RETURN_META)
        by_province = rows.shuffle(
            on="province",
            npartitions=max(1, min(len(provinces), workers * 2)),
            shuffle_method="p2p",
        ).map_partitions(
            write_returns,
            str(returns_dir),
            meta=pd.DataFrame(
                {"province": pd.Series(dtype=object), "rows": pd.Series(dtype=np.int64)}
            ),
        )
        for province, count in by_province.compute().itertuples(index=False):
            written[str(province)] = int(count)
    for province in provinces:
        if written[province] == 0:
            write_return_file(returns_dir, province, RETURN_META)
    return written
