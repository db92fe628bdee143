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
import pyarrow as pa
import pyarrow.compute as pc

WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
CHECK_CHARS = "10X98765432"
BAD = 255
ID_PATTERN = r"^\d{17}[\dX]$"


def fixed_width_bytes(array: pa.Array, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask of the values that are exactly ``width`` ASCII characters, (n, width) uint8 bytes).

    Read straight from the Arrow buffers, so a million values cost one copy, not a million
    Python strings. Rows outside the mask are zero.
    """
    n = len(array)
    nbytes = pc.binary_length(array).fill_null(-1).to_numpy(zero_copy_only=False)
    nchars = pc.utf8_length(array).fill_null(-1).to_numpy(zero_copy_only=False)
    mask = (nbytes == width) & (nchars == width)
    matrix = np.zeros((n, width), dtype=np.uint8)
    if mask.any():
        chosen = array.filter(pa.array(mask))
        offset_type = np.int64 if pa.types.is_large_string(chosen.type) else np.int32
        offsets = np.frombuffer(chosen.buffers()[1], dtype=offset_type)
        offsets = offsets[chosen.offset : chosen.offset + len(chosen) + 1]
        data = np.frombuffer(chosen.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        matrix[mask] = data.reshape(-1, width)
    return mask, matrix


def _arrow_text(numbers: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(numbers, pd.Series):
        numbers = pa.array(
            numbers.astype("string").to_numpy(dtype=object, na_value=None), pa.string()
        )
    if isinstance(numbers, pa.ChunkedArray):
        numbers = numbers.combine_chunks()
    return numbers


def digit_matrix(numbers: pd.Series | pa.Array) -> np.ndarray:
    """(n, 18) uint8 digit values of 18-character values; X -> 10, any other character or any
    value that is not 18 ASCII characters -> 255 (BAD)."""
    mask, raw = fixed_width_bytes(_arrow_text(numbers), 18)
    out = np.full(raw.shape, BAD, dtype=np.uint8)
    is_digit = (raw >= 48) & (raw <= 57) & mask[:, None]
    out[is_digit] = raw[is_digit] - 48
    out[(raw == ord("X")) & mask[:, None]] = 10
    return out


def id_digits(numbers: pd.Series | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(n, 18) digit values (X = 10) of values shaped like an ID number, zeros elsewhere, and
    the mask of those values (17 digits then a digit or X)."""
    digits = digit_matrix(numbers)
    shape = (digits[:, :17] <= 9).all(axis=1) & (digits[:, 17] <= 10)
    digits[~shape] = 0
    return digits, shape


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
    digits, shaped = id_digits(numbers)
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
