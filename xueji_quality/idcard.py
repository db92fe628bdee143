"""Resident identity numbers (公民身份号码, GB 11643-1999), checked a column at a time.

An 18-character number is a 6-digit address code (GB/T 2260), an 8-digit birth date YYYYMMDD,
a 3-digit sequence whose last digit is odd for men and even for women, and a check character
computed with ISO 7064 MOD 11-2 over the first 17 digits::

    S = sum(d_i * W_i),  W = 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2,  check = "10X98765432"[S % 11]

Standard examples: 11010519491231002X and 34052419800101001X (S = 189).

MOD 11-2 catches every single-digit substitution and every swap of two adjacent characters, so a
number that passes its check is not a one-typo copy of another number that passes.

Numbers are handled as an (n, 18) uint8 matrix of digit values (X = 10, anything else = 255), so a
checksum over a million numbers is one matrix product.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
CHECK_CHARS = "10X98765432"
BAD = 255
ID_PATTERN = r"^\d{17}[\dX]$"


def digit_matrix(numbers: pd.Series, width: int = 18) -> np.ndarray:
    """(n, width) uint8 digit values; X -> 10, any other character or a missing position -> 255."""
    text = numbers.astype("string").fillna("")
    padded = text.str.slice(0, width).str.pad(width, side="right", fillchar="\x00")
    raw = (
        np.frombuffer("".join(padded.tolist()).encode("utf-32-le"), dtype=np.uint32).reshape(
            len(text), width
        )
        if len(text)
        else np.zeros((0, width), dtype=np.uint32)
    )
    out = np.full(raw.shape, BAD, dtype=np.uint8)
    is_digit = (raw >= 48) & (raw <= 57)
    out[is_digit] = (raw[is_digit] - 48).astype(np.uint8)
    out[raw == ord("X")] = 10
    return out


def check_digit_values(digits: np.ndarray) -> np.ndarray:
    """MOD 11-2 check value (0..10, 10 = X) of the first 17 digits of each row."""
    return ((12 - (digits[:, :17].astype(np.int64) @ WEIGHTS) % 11) % 11).astype(np.uint8)


def check_digit(numbers: pd.Series) -> pd.Series:
    """The check character each number should end with (from its first 17 digits)."""
    digits = digit_matrix(numbers)
    values = check_digit_values(digits)
    chars = np.array(list("0123456789X"))[values]
    return pd.Series(chars, index=numbers.index, dtype="string")


def has_format(numbers: pd.Series) -> pd.Series:
    """17 digits followed by a digit or X."""
    return numbers.astype("string").str.fullmatch(ID_PATTERN).fillna(False).astype(bool)


def checksum_ok(numbers: pd.Series) -> pd.Series:
    """True where the number has the right shape and its check character is right."""
    digits = digit_matrix(numbers)
    shaped = has_format(numbers).to_numpy()
    ok = shaped & (check_digit_values(digits) == digits[:, 17])
    return pd.Series(ok, index=numbers.index)


def birth_dates(numbers: pd.Series) -> pd.Series:
    """Birth date inside each number as datetime64 (NaT when impossible)."""
    text = numbers.astype("string").str.slice(6, 14)
    return pd.to_datetime(text, format="%Y%m%d", errors="coerce")


def birth_date_text(numbers: pd.Series) -> pd.Series:
    """Birth date inside each number as YYYY-MM-DD text, exactly as written (even if impossible)."""
    text = numbers.astype("string")
    return text.str.slice(6, 10) + "-" + text.str.slice(10, 12) + "-" + text.str.slice(12, 14)


def sex_codes(numbers: pd.Series) -> pd.Series:
    """'1' (male) or '2' (female) from the parity of the 17th character; <NA> when not a digit."""
    seventeenth = pd.to_numeric(numbers.astype("string").str.slice(16, 17), errors="coerce")
    out = pd.Series(pd.NA, index=numbers.index, dtype="string")
    out[seventeenth % 2 == 1] = "1"
    out[seventeenth % 2 == 0] = "2"
    return out


def address_codes(numbers: pd.Series) -> pd.Series:
    return numbers.astype("string").str.slice(0, 6)


def make_ids(address: np.ndarray, birth_yyyymmdd: np.ndarray, sequence: np.ndarray) -> np.ndarray:
    """Valid numbers from parts: address codes (str), birth dates (str YYYYMMDD), sequences (0..999)."""
    body = (
        pd.Series(address, dtype="string")
        + pd.Series(birth_yyyymmdd, dtype="string")
        + (pd.Series(sequence).astype(int).astype(str).str.zfill(3).astype("string"))
    )
    return (body + check_digit(body.str.pad(18, side="right", fillchar="0"))).to_numpy(dtype=object)
