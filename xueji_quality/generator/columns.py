"""Whole-column helpers of the generator: digits, text, day numbers and the spellings of dates.

Days are day numbers (days since 1970-01-01, int64); text columns are NumPy unicode arrays.
"""

from __future__ import annotations

import numpy as np

EPOCH_TO_EXCEL = 25569  # days from 1899-12-30 (Excel's day 0) to 1970-01-01


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8 ASCII digits of non-negative integers, zero-padded."""
    v = np.asarray(values, dtype=np.int64).copy()
    out = np.empty((len(v), width), dtype=np.uint8)
    for k in range(width - 1, -1, -1):
        out[:, k] = v % 10 + 48
        v //= 10
    return out


def ascii_text(matrix: np.ndarray) -> np.ndarray:
    """Rows of an ASCII byte matrix as a unicode array."""
    width = matrix.shape[1]
    if len(matrix) == 0:
        return np.array([], dtype=f"U{width}")
    return np.ascontiguousarray(matrix).view(f"S{width}").ravel().astype(f"U{width}")


def cat(*parts: np.ndarray | str) -> np.ndarray:
    """Element-wise concatenation of text columns and constants."""
    out = np.asarray(parts[0])
    for part in parts[1:]:
        out = np.char.add(out, np.asarray(part))
    return out


def zipf(n: int, exponent: float = 1.0) -> np.ndarray:
    """Probabilities of ranks 1..n falling off as 1 / rank ** exponent."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) of day numbers."""
    d = np.asarray(days, dtype="int64").astype("M8[D]")
    months = d.astype("M8[M]")
    year = d.astype("M8[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (d - months.astype("M8[D]")).astype(np.int64) + 1
    return year, month, day


def day_number(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Day numbers of (year, month, day); a day past the month's end runs into the next."""
    months = (np.asarray(year, dtype=np.int64) - 1970) * 12 + np.asarray(month) - 1
    return months.astype("M8[M]").astype("M8[D]").astype(np.int64) + np.asarray(day) - 1


def grade_window(grade: np.ndarray, school_year: int) -> tuple[np.ndarray, np.ndarray]:
    """Nominal birth window of each grade: 1 Sep (Y-g-6) .. 31 Aug (Y-g-5), as day numbers."""
    start_year = school_year - np.asarray(grade, dtype=np.int64) - 6
    start = day_number(start_year, np.full_like(start_year, 9), np.ones_like(start_year))
    end = day_number(start_year + 1, np.full_like(start_year, 9), np.ones_like(start_year)) - 1
    return start, end


def yyyymmdd(days: np.ndarray) -> np.ndarray:
    """Day numbers as integers YYYYMMDD."""
    y, m, d = ymd(days)
    return y * 10000 + m * 100 + d


def render_dates(days: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Dates as exports write them: 0 YYYY-MM-DD, 1 YYYY/M/D, 2 YYYYMMDD, 3 Excel serial."""
    y, m, d = ymd(days)
    out = np.empty(len(days), dtype="U10")
    iso = np.empty((len(days), 10), dtype=np.uint8)
    iso[:, 0:4] = digits(y, 4)
    iso[:, 4] = ord("-")
    iso[:, 5:7] = digits(m, 2)
    iso[:, 7] = ord("-")
    iso[:, 8:10] = digits(d, 2)
    out[:] = ascii_text(iso)
    compact = style == 2
    out[compact] = ascii_text(iso[compact][:, [0, 1, 2, 3, 5, 6, 8, 9]])
    slash = np.flatnonzero(style == 1)
    out[slash] = cat(y[slash].astype(str), "/", m[slash].astype(str), "/", d[slash].astype(str))
    serial = style == 3
    out[serial] = (np.asarray(days)[serial] + EPOCH_TO_EXCEL).astype(str)
    return out


def render_months(year: np.ndarray, month: np.ndarray, style: np.ndarray) -> np.ndarray:
    """入学年月: 0 YYYY-MM, 1 YYYY/M, 2 YYYYMM, 3 YYYY-MM-DD, 4 Excel serial of the 1st."""
    n = len(year)
    matrix = np.empty((n, 10), dtype=np.uint8)
    matrix[:, 0:4] = digits(year, 4)
    matrix[:, 4] = ord("-")
    matrix[:, 5:7] = digits(month, 2)
    matrix[:, 7:10] = np.frombuffer(b"-01", dtype=np.uint8)
    out = np.empty(n, dtype="U10")
    out[:] = ascii_text(matrix[:, :7])
    sel = style == 1
    out[sel] = cat(year[sel].astype(str), "/", month[sel].astype(str))
    sel = style == 2
    out[sel] = ascii_text(matrix[sel][:, [0, 1, 2, 3, 5, 6]])
    sel = style == 3
    out[sel] = ascii_text(matrix[sel])
    sel = style == 4
    out[sel] = (day_number(year[sel], month[sel], 1) + EPOCH_TO_EXCEL).astype(str)
    return out
