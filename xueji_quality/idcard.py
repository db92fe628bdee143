"""Older pandas spellings of the resident ID helpers, for the modules that still import them
(``police``, ``linkage.index``, ``generator.police``). Everything here is spelled with
``standards.resident_id``, ``standards.iso7064`` and ``standards.fixed_width``; new code imports
those, and this module goes once nothing imports it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from xueji_quality.standards import iso7064, resident_id
from xueji_quality.standards.fixed_width import arrow_text, fixed_width_bytes

__all__ = [
    "WEIGHTS",
    "check_digit",
    "check_digit_values",
    "checksum_ok",
    "digit_matrix",
    "fixed_width_bytes",
    "id_digits",
    "make_ids",
]

WEIGHTS = iso7064.WEIGHTS
BAD = 255
check_digit_values = iso7064.check_values
id_digits = resident_id.digit_matrix


def digit_matrix(numbers: pd.Series | pa.Array) -> np.ndarray:
    """(n, 18) uint8 digit values of 18-character values; X -> 10, any other character or any
    value that is not 18 ASCII characters -> 255 (BAD)."""
    mask, raw = fixed_width_bytes(arrow_text(numbers), resident_id.LENGTH)
    out = np.full(raw.shape, BAD, dtype=np.uint8)
    is_digit = (raw >= 48) & (raw <= 57) & mask[:, None]
    out[is_digit] = raw[is_digit] - 48
    out[(raw == ord("X")) & mask[:, None]] = 10
    return out


def check_digit(numbers: pd.Series) -> pd.Series:
    """The check character each number should end with (from its first 17 digits)."""
    return pd.Series(resident_id.check_digit_column(numbers), index=numbers.index, dtype="string")


def checksum_ok(numbers: pd.Series) -> pd.Series:
    """True where the number has the right shape and its check character is right."""
    return pd.Series(resident_id.parts(numbers).check_ok, index=numbers.index)


def make_ids(address: np.ndarray, birth_yyyymmdd: np.ndarray, sequence: np.ndarray) -> np.ndarray:
    """Valid numbers from parts: address codes, birth dates YYYYMMDD, sequences (0..999)."""
    bodies = np.char.add(
        np.char.add(np.asarray(address).astype(str), np.asarray(birth_yyyymmdd).astype(str)),
        np.char.zfill(np.asarray(sequence).astype(np.int64).astype(str), 3),
    )
    return resident_id.with_check_digit_column(bodies).astype(object)
