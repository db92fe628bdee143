"""Readings of Chinese names for the national tokens: every pypinyin heteronym reading of each
name (单 → dan, shan, chan), built over whole columns a character position at a time with the
readings of each distinct character looked up once.

pypinyin has no surname mode, so 单 曾 解 仇 区 查 朴 覃 are given every reading and the surname
reading is among them; a name whose combinations would pass ``MAX_READINGS`` keeps only the
common reading of its later characters.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality.character_readings import Style, pinyin

MAX_READINGS = 16


def expand(count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(parent, position within parent) for ``count[i]`` rows of each parent i."""
    count = np.asarray(count, dtype=np.int64)
    parent = np.repeat(np.arange(len(count), dtype=np.int64), count)
    starts = np.cumsum(count) - count
    return parent, np.arange(len(parent), dtype=np.int64) - starts[parent]


_READINGS: dict[str, tuple[str, ...]] = {}


def char_reading_list(ch: str) -> tuple[str, ...]:
    """Every tone-less reading of one character, the common one first (单 → dan, shan, chan)."""
    found = _READINGS.get(ch)
    if found is None:
        found = tuple(dict.fromkeys(pinyin(ch, heteronym=True, style=Style.NORMAL)[0]))
        _READINGS[ch] = found
    return found


def reading_combinations(names: pa.Array, limit: int = MAX_READINGS) -> tuple[np.ndarray, pa.Array]:
    """Every reading of each name: (name index, syllables joined by blanks), grouped by name in
    name order. Built a character position at a time over all names; readings are looked up
    once per distinct character. A name whose combinations would pass ``limit`` keeps only the
    common reading of its later characters."""
    n = len(names)
    lengths = pc.fill_null(pc.utf8_length(names), 0).to_numpy(zero_copy_only=False)
    combo_name = np.arange(n, dtype=np.int64)
    combo_text = pa.array([""] * n, pa.string()) if n else pa.array([], pa.string())
    count = np.ones(n, dtype=np.int64)
    for k in range(int(lengths.max()) if n else 0):
        chars = pc.utf8_slice_codeunits(names, k, k + 1)
        encoded = pc.dictionary_encode(pc.fill_null(chars, ""))
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        readings = [char_reading_list(c) if c else ("",) for c in encoded.dictionary.to_pylist()]
        sizes = np.array([len(r) for r in readings], dtype=np.int64)
        starts = np.cumsum(sizes) - sizes
        flat = pa.array([r for group in readings for r in group], pa.string())
        has = lengths > k
        options = np.where(has, sizes[codes], 1)
        options = np.where(count * options <= limit, options, 1)
        count *= options
        parent, within = expand(options[combo_name])
        combo_name = combo_name[parent]
        reading = flat.take(pa.array(starts[codes[combo_name]] + within))
        before = combo_text.take(pa.array(parent))
        joined = pc.binary_join_element_wise(before, reading, " ")
        joined = pc.if_else(pc.equal(before, ""), reading, joined)
        combo_text = pc.if_else(pa.array(has[combo_name]), joined, before)
    return combo_name, combo_text


def common_readings(names: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Code of each value's common reading (-1 for null) and the readings by code."""
    encoded = pc.dictionary_encode(names)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    combo_name, combo_text = reading_combinations(encoded.dictionary, limit=1)
    return codes, combo_text
