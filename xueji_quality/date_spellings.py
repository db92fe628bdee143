"""How dates are typed in roster exports, read into ISO dates where the reading is certain.

Year first (2012-3-4, 2012/03/04, 2012.3.4., 2012年3月4日 or 号, with or without a time of day),
YYYYMMDD, year last when one of the first two numbers can only be the day, and Excel serial
numbers from 18264 (1950-01-01) to 60000 (2064-04-08). ``xueji_quality.normalize`` explains what
is kept as typed and why; this module does the reading, with Arrow's regex kernels (pandas'
``str.extract`` calls Python once per value).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

STRING = pd.StringDtype("pyarrow")

EXCEL_ORIGIN = np.datetime64("1899-12-30")
MIN_EXCEL_SERIAL = 18264  # 1950-01-01: smaller bare numbers are placeholders or typos
MAX_EXCEL_SERIAL = 60000  # 2064-04-08: later "serials" are something else
# Separators of a date: ASCII, and the hyphens and dashes of other widths an input method gives.
_DATE_SEP = "[-/.\u2010-\u2015\u2212\ufe58\ufe63]"
# A time of day after the date (Excel's text of a date cell, database exports), with a zone.
_TIME = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
# Year first: 2012-3-4, 2012/03/04, 2012.3.4., 2012年3月4日 (号), and year-month alone.
_YEAR_FIRST = (
    f"^(?P<year>\\d{{4}})(?:{_DATE_SEP}|年)(?P<month>\\d{{1,2}})"
    f"(?:月|(?:{_DATE_SEP}|月)(?P<day>\\d{{1,2}})[日号.]?)?{_TIME}$"
)
# Year last: 13/3/2012 (day first) or 3/13/2012 (month first, Excel's US locale).
_YEAR_LAST = f"^(?P<a>\\d{{1,2}}){_DATE_SEP}(?P<b>\\d{{1,2}}){_DATE_SEP}(?P<year>\\d{{4}}){_TIME}$"


def _arrow(values: pd.Series) -> pa.Array | pa.ChunkedArray:
    return pa.array(values.astype(STRING).array)


def extract(values: pd.Series, pattern: str) -> pd.DataFrame:
    """``values.str.extract(pattern)`` computed by Arrow (pandas runs a Python call per value):
    one column per named group, <NA> where the value does not match or the group took no part.
    Every group of ``pattern`` must be named and match at least one character."""
    groups = list(re.compile(pattern).groupindex)
    found = pc.extract_regex(_arrow(values), pattern)
    columns = {}
    for name in groups:
        text = pc.if_else(
            pc.equal(pc.struct_field(found, name), ""), None, pc.struct_field(found, name)
        )
        columns[name] = pd.array(text, dtype=STRING)
    return pd.DataFrame(columns, index=values.index)


def _date_parts(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """(year, month, day, excel serial) text parts of every date spelling read with certainty;
    day is <NA> for a year and month alone, and everything is <NA> for an ambiguous
    day/month order."""
    first = extract(values, _YEAR_FIRST)
    compact = extract(values, r"^(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})?$")
    last = extract(values, _YEAR_LAST)
    serial = extract(values, r"^(?P<serial>\d{1,5})(?:\.\d+)?$")["serial"]
    a = pd.to_numeric(last["a"], errors="coerce")
    b = pd.to_numeric(last["b"], errors="coerce")
    # The number above 12 is the day; equal numbers read the same either way.
    day_first = ((a > 12) & (b <= 12) | (a == b)).fillna(False).astype(bool)
    month_first = ((b > 12) & (a <= 12)).fillna(False).astype(bool)
    year = first["year"].fillna(compact["year"]).fillna(last["year"].where(day_first | month_first))
    month = first["month"].fillna(compact["month"])
    month = month.fillna(last["b"].where(day_first, last["a"].where(month_first)))
    day = first["day"].where(first["year"].notna(), compact["day"])
    day = day.fillna(last["a"].where(day_first, last["b"].where(month_first)))
    return year, month, day, serial


def _from_serial(serial: pd.Series) -> pd.Series:
    number = pd.to_numeric(serial, errors="coerce")
    number = number.where((number >= MIN_EXCEL_SERIAL) & (number <= MAX_EXCEL_SERIAL))
    days = number.fillna(0).to_numpy(dtype="int64").astype("timedelta64[D]")
    dates = pd.Series((EXCEL_ORIGIN + days).astype("datetime64[s]"), index=serial.index)
    return dates.where(number.notna())


def parse_dates(values: pd.Series) -> pd.Series:
    """Timestamps of recognised full dates (NaT where the value is no valid date)."""
    year, month, day, serial = _date_parts(values)
    text = year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2)
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    return dates.fillna(_from_serial(serial))


def format_dates(values: pd.Series) -> pd.Series:
    """Dates as YYYY-MM-DD where recognised; other values kept as given."""
    dates = parse_dates(values)
    return dates.dt.strftime("%Y-%m-%d").astype(STRING).where(dates.notna(), values)


def format_months(values: pd.Series) -> pd.Series:
    """Year and month as YYYY-MM (from YYYY-MM, YYYY/M, YYYY年M月, YYYYMM, full dates, serials)."""
    year, month, day, serial = _date_parts(values)
    text = year + "-" + month.str.zfill(2) + "-" + day.fillna("1").str.zfill(2)
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    dates = dates.fillna(_from_serial(serial))
    return dates.dt.strftime("%Y-%m").astype(STRING).where(dates.notna(), values)
