"""Small hand-made rosters for the linkage tests: rows differ from a shared base where stated."""

from __future__ import annotations

import pandas as pd

from xueji_quality.linkage import COLUMNS_USED
from xueji_quality.standards import resident_id

BASE = {
    "county_code": "440103",
    "sex": "1",
    "birth_date": "2012-03-15",
    "school_code": "2144000001",
    "school_name": "广州市第一小学",
    "household_region": "440103",
}


def valid_id(sequence: int, birth: str = "20120315", address: str = "440103") -> str:
    body = f"{address}{birth}{sequence:03d}"
    return body + resident_id.check_digit(body)


def roster(*rows: dict, dtype: object = "string") -> pd.DataFrame:
    """linkage.COLUMNS_USED of the given rows over BASE; columns no row names are missing."""
    frame = pd.DataFrame([BASE | row for row in rows])
    for column in COLUMNS_USED:
        if column not in frame.columns:
            frame[column] = pd.NA
    return frame[list(COLUMNS_USED)].astype(dtype)
