"""Text columns as integer codes: Arrow dictionary codes, cleaned names, pinyin readings.

Linkage holds every text field as int32 codes into a dictionary of its distinct values, so a
million rows of names cost four bytes each and equal names are equal integers. The cleaned form
of a name (NFKC, blanks removed, '.'/'•' → '·') gets codes of its own beside the codes of the name
as given; readings come from pypinyin, once per distinct character.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality.character_readings import Style, pinyin

# Blanks a name may carry (RE2 \s is ASCII only): NFKC has already turned U+3000 into a space.
_NAME_BLANKS = r"[\s\x{00a0}\x{200b}-\x{200d}\x{2060}\x{feff}]"
_READINGS: dict[str, frozenset[str]] = {}
_DEFAULT_READING: dict[str, str] = {}


def char_readings(ch: str) -> frozenset[str]:
    """Every reading of one character (heteronyms included: 单 → dan, shan, chan)."""
    found = _READINGS.get(ch)
    if found is None:
        readings = pinyin(ch, heteronym=True, style=Style.NORMAL)[0]
        found = frozenset(readings)
        _READINGS[ch] = found
        _DEFAULT_READING[ch] = readings[0]
    return found


def default_readings(names: list[str]) -> list[str]:
    """The common reading of each name, syllables separated by blanks (key of the pinyin pass)."""
    chars = set("".join(names))
    for ch in chars:
        char_readings(ch)
    table = {ord(ch): _DEFAULT_READING[ch] + " " for ch in chars}
    return [name.translate(table) for name in names]


def code_texts(values, codes: np.ndarray) -> pa.Array:
    """The texts (Arrow string) of ``codes`` in a dictionary (Arrow array or list); code -1 gives
    ''."""
    codes = np.asarray(codes)
    if not isinstance(values, pa.Array):
        values = pa.array(list(values), type=pa.string())
    if len(values) == 0:
        texts = pa.nulls(len(codes), pa.string())
    else:
        texts = values.take(pa.array(np.where(codes >= 0, codes, 0).astype(np.int64)))
    # One text type whatever the dictionary's (large_string for a big one), as Arrow's
    # element-wise joins want.
    return pc.if_else(pa.array(codes >= 0), texts.cast(pa.string()), "")


def take_rows(column: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """``column[rows]`` taken chunk by chunk (Arrow's take on a chunked array first concatenates
    the whole column)."""
    rows = np.asarray(rows, dtype=np.int64)
    if column.num_chunks == 1:
        return column.chunk(0).take(pa.array(rows))
    if column.num_chunks == 0 or len(rows) == 0:
        return pa.array([], type=column.type)
    bounds = np.cumsum([0] + [len(c) for c in column.chunks])
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    cuts = np.searchsorted(ordered, bounds)
    parts = [
        column.chunk(i).take(pa.array(ordered[cuts[i] : cuts[i + 1]] - bounds[i]))
        for i in range(column.num_chunks)
        if cuts[i + 1] > cuts[i]
    ]
    taken = pa.concat_arrays(parts)
    return taken.take(pa.array(np.argsort(order, kind="stable")))


def python_text(values: pa.Array | pa.ChunkedArray) -> pd.Series:
    """Arrow text as the pandas column linkage's tables hold (dtype "string", Python-backed)."""
    return pd.Series(values.to_numpy(zero_copy_only=False), dtype="string")


def chunked_text(values: pd.Series) -> pa.ChunkedArray:
    """A text column as Arrow, without a copy when it is pyarrow-backed already."""
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        values = values.astype(pd.StringDtype("pyarrow"))
    array = values.array.__arrow_array__()
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])


def roster_text(roster: pd.DataFrame, column: str) -> pa.ChunkedArray:
    """The roster's column as Arrow text (nulls if the column is absent)."""
    if column not in roster.columns:
        return pa.chunked_array([pa.nulls(len(roster), pa.string())])
    return chunked_text(roster[column])


def dictionary_codes(array: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """int32 dictionary codes (-1 for null or empty) and the distinct values."""
    encoded = pc.dictionary_encode(array)
    if isinstance(encoded, pa.ChunkedArray):
        if len({len(c.dictionary) for c in encoded.chunks}) > 1:
            encoded = encoded.unify_dictionaries()
        chunks = encoded.chunks
    else:
        chunks = [encoded]
    if chunks:
        dictionary = chunks[0].dictionary
        codes = np.empty(sum(len(c) for c in chunks), dtype=np.int32)
        start = 0
        for chunk in chunks:
            part = pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)
            codes[start : start + len(part)] = part
            start += len(part)
    else:
        dictionary, codes = pa.array([], pa.string()), np.zeros(0, np.int32)
    empty = pc.index(dictionary, "").as_py() if len(dictionary) else -1
    if empty >= 0:  # an empty cell is a missing value, not a value shared by many records
        codes[codes == empty] = -1
    return codes, dictionary


def cleaned_codes(array: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array, np.ndarray, pa.Array]:
    """Codes of the cleaned values (NFKC, blanks removed, '.'/'•' → '·') and of the raw ones."""
    raw_codes, raw_values = dictionary_codes(array)
    cleaned = pc.utf8_normalize(raw_values, "NFKC")
    cleaned = pc.replace_substring_regex(cleaned, _NAME_BLANKS, "")
    cleaned = pc.replace_substring_regex(cleaned, r"[.•・]", "·")
    clean_codes, clean_values = dictionary_codes(cleaned)
    lookup = np.append(clean_codes, -1).astype(np.int32)
    return lookup[raw_codes], clean_values, raw_codes, raw_values


def reading_codes(values: pa.Array, batch: int = 100_000) -> np.ndarray:
    """int32 code of the default reading of each value of a dictionary, then -1 (the slot of code
    -1, a missing value); a batch of Python strings at a time, coded in Arrow."""
    readings = [
        pa.array(default_readings(values.slice(start, batch).to_pylist()), pa.string())
        for start in range(0, len(values), batch)
    ]
    codes, _ = dictionary_codes(pa.chunked_array(readings, type=pa.string()))
    return np.append(codes, -1).astype(np.int32)
