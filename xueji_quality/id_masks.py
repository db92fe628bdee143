"""How an ID number or 学籍号 is shown where the full number is not needed (``--mask-ids`` county
lists, Data Docs samples): the first digits and the last four, the birth date hidden.

>>> mask_id_numbers(pd.Series(["44010320120101001X", "5.20321E+17", "440103201201010"])).tolist()
['440103********001X', '*.*****E+**', '***************']
"""

from __future__ import annotations

import pandas as pd

MASK = "*" * 8
ID_LAYOUT = r"\d{17}[\dX]"
STUDENT_NO_LAYOUT = r"[A-Z]\d{17}[\dX]"


def mask_id_numbers(numbers: pd.Series, head: int = 6, layout: str = ID_LAYOUT) -> pd.Series:
    """A number of the standard ``layout``: first ``head`` characters, eight stars, last four.
    Anything else (spreadsheet damage, a digit missing or extra, a legacy 15-digit number): every
    digit a star, whatever its form, so no part of the number shows. Empty stays empty."""
    text = numbers.astype("string")
    standard = text.str.fullmatch(layout).fillna(False).astype(bool)
    kept = text.str.slice(0, head) + MASK + text.str.slice(-4)
    starred = text.str.replace(r"[0-9]", "*", regex=True)
    masked = kept.where(standard, starred).where(text.notna(), pd.NA)
    # An empty value stays empty: stars would suggest a number that is not there.
    return masked.where(text.fillna("").str.strip() != "", text).astype("string")


def mask_student_numbers(numbers: pd.Series) -> pd.Series:
    """学籍号 = a letter and an ID-like number: keep the letter and six, then as for IDs."""
    return mask_id_numbers(numbers, head=7, layout=STUDENT_NO_LAYOUT)
