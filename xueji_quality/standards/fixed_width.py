"""Text columns as Arrow arrays, and fixed-width values as byte matrices.

Numbers of a standard have a fixed width (18 characters for an ID number, 19 for a 学籍号, 10 for
YYYY-MM-DD), so a column of them is read as an (n, width) uint8 matrix straight from the Arrow
buffers: a million values cost one copy, not a million Python strings, and checksums and dates
become matrix arithmetic.

>>> mask, raw = fixed_width_bytes(arrow_text(["2015-03-01", "2015-3-1", None]), 10)
>>> mask.tolist()
[True, False, False]
>>> bytes(raw[0]).decode()
'2015-03-01'
>>> values, is_digit = digit_values(raw)
>>> values[0, :4].tolist(), is_digit[0].tolist()
([2, 0, 1, 5], [True, True, True, True, False, True, True, False, True, True])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

ZERO = ord("0")
Column = pd.Series | pa.Array | pa.ChunkedArray | np.ndarray | Sequence[str | None]


def as_text(values: pd.Series) -> pd.Series:
    """The column as pyarrow-backed pandas strings (zero-copy when it already is); characters
    pyarrow cannot hold (lone surrogates from a broken decode) become U+FFFD."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        return values
    try:
        return values.astype("string[pyarrow]")
    except Exception:
        cleaned = values.map(
            lambda v: str(v).encode("utf-8", "replace").decode("utf-8"), na_action="ignore"
        )
        return cleaned.astype("string[pyarrow]")


def arrow_text(values: Column) -> pa.Array:
    """One pyarrow string array of the values (zero-copy for pyarrow-backed pandas strings;
    numpy unicode arrays are converted without Python strings)."""
    if isinstance(values, pa.ChunkedArray | pa.Array):
        array = values
    elif isinstance(values, np.ndarray) and values.dtype.kind == "U":
        array = pa.array(values, pa.string())
    else:
        series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        array = pa.array(as_text(series).array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array


def fixed_width_bytes(array: pa.Array, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask of the values that are exactly ``width`` ASCII characters, (n, width) uint8 bytes).

    Rows outside the mask are zero.
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


def digit_values(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(digit values as uint8, zero where the byte is no ASCII digit; mask of the digits).

    Kept in bytes: a million 19-character numbers are 19 MB, not 152 MB of int64, and the
    arithmetic that reads numbers from them widens as it goes (``dates.number_at``)."""
    values = raw - np.uint8(ZERO)  # a byte below '0' wraps to 208 or more
    is_digit = values <= 9
    return np.where(is_digit, values, np.uint8(0)), is_digit
