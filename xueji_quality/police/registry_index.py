"""The registry extract as the check holds it: compact columns, sorted by ID number.

A registry extract is larger than the roster it is checked against (26 million people for a
province of 20 million students), and the check only looks things up in it. So it is read a
batch at a time (``tables.read_column_batches``), each batch normalised as ``read_registry``
normalises the whole file, and kept as

- the ID number as one int64 (``keys.id_values``: 17 digits and the check value), the entries
  sorted by it, so a look-up is a ``searchsorted`` and the sorted array is its own index;
  entries without the shape of an ID number are left out (no roster number can equal them);
- the name as a position in the list of distinct names (names repeat: 张伟 is many people);
- sex (1, 2; 0 unknown) and 出生日期 (YYYYMMDD; 0 unknown) as small integers, 人员状态 as a
  position in ``STATUSES``; 户籍地址码 is not read.

About 20 bytes per entry instead of the text of five columns. The people of a given birth date,
sex and name (for the numbers the registry lacks, ``verdicts.near_numbers``) are found by one
pass over the entries for all such numbers of the roster at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality.police import keys, names, registry
from xueji_quality.police.tables import BATCH_ROWS, Columns, read_ahead, read_column_batches
from xueji_quality.standards import dates, resident_id

# Entries gone through at a time when the registry is searched by birth date, sex and name.
SLICE = 4_000_000
STATUSES: tuple[str, ...] = (registry.NORMAL, registry.MOVED, registry.CANCELLED, registry.DEAD)
NO_STATUS = -1  # an extract without 人员状态 (only tables handed in by a caller)
_POSITIVE = np.uint64(0x7FFF_FFFF_FFFF_FFFF)
_SPREAD = np.uint64(0x9E37_79B9_7F4A_7C15)  # odd: multiplying by it spreads birth-sex keys


@dataclass
class Registry:
    """A registry extract ready for look-ups (see the module docstring); every array has one
    entry per person, in the order of ``values``."""

    rows: int  # data rows of the file, every one counted
    values: np.ndarray  # int64 ID numbers, ascending
    name_codes: np.ndarray  # int32 position in ``names``; -1 where there is no name
    names: pa.Array  # the distinct names, normalised as roster names are
    sex: np.ndarray  # int8
    born: np.ndarray  # int32
    status: np.ndarray  # int8 position in STATUSES, NO_STATUS
    _name_hashes: np.ndarray | None = None

    @property
    def by_id(self) -> keys.KeyIndex:
        return keys.KeyIndex(None, self.values)

    def name_at(self, rows: np.ndarray) -> pd.Series:
        """The names of the entries at ``rows`` (missing where there is none), as pyarrow-backed
        strings (RangeIndex)."""
        codes = self.name_codes[rows]
        taken = self.names.take(pa.array(np.where(codes >= 0, codes, 0), pa.int32()))
        taken = pc.if_else(pa.array(codes >= 0), taken, pa.scalar(None, pa.string()))
        return pd.Series(pd.arrays.ArrowStringArray(_large(taken)))

    def id_at(self, rows: np.ndarray) -> np.ndarray:
        """The ID numbers of the entries at ``rows`` as text."""
        return id_text(self.values[rows])

    def status_at(self, rows: np.ndarray) -> np.ndarray:
        """The status (``STATUSES``, None where unknown) of the entries at ``rows``."""
        words = np.array([*STATUSES, None], dtype=object)
        return words[self.status[rows]]  # NO_STATUS takes the last one

    def with_birth_name(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(entries, their key) of the entries whose ``birth_name_keys`` key (the birth date and
        sex inside their number, the hash of their name) is among ``wanted`` (sorted), where
        出生日期 and 性别 say the same as the number. The entries are gone through a slice at
        a time, so nothing of the registry's size is held for it."""
        found_rows, found_keys = [], []
        if len(wanted):
            hashes = self.name_hashes()
            for start in range(0, len(self.values), SLICE):
                values = self.values[start : start + SLICE]
                inside = resident_id.birth_numbers_from_values(values) * 10 + (
                    2 - (values // resident_id.SEQUENCE_PLACE % 10) % 2
                )
                born = self.born[start : start + SLICE].astype(np.int64)
                agree = born * 10 + self.sex[start : start + SLICE] == inside
                codes = self.name_codes[start : start + SLICE]
                named = codes >= 0
                key = birth_name_keys(inside, hashes[np.where(named, codes, 0)])
                at = np.searchsorted(wanted, key).clip(max=len(wanted) - 1)
                hit = np.flatnonzero(agree & named & (wanted[at] == key))
                found_rows.append(start + hit)
                found_keys.append(key[hit])
        if not found_rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(found_rows), np.concatenate(found_keys)

    def name_hashes(self) -> np.ndarray:
        """The ``name_hashes`` of the distinct names (computed once)."""
        if self._name_hashes is None:
            self._name_hashes = name_hashes(
                pd.Series(pd.arrays.ArrowStringArray(_large(self.names)))
            )
        return self._name_hashes


def id_text(values: np.ndarray) -> np.ndarray:
    """int64 ID numbers (``keys.id_values``) as 18-character text."""
    digits = resident_id.values_to_digits(values)
    chars = np.where(digits == 10, ord("X"), digits + 48).astype(np.uint8)
    return np.ascontiguousarray(chars).view("S18").ravel().astype("U18").astype(object)


def _large(array: pa.Array) -> pa.Array:
    return pc.cast(array, pa.large_string())


def name_hashes(values: pd.Series) -> np.ndarray:
    """uint64 hash of each name's ``names.name_key`` (0 where there is no name): the part of a
    ``birth_name_keys`` key a roster name and a registry name share when they are one name."""
    keyed = names.name_key(values)
    present = keyed.notna().to_numpy()
    out = np.zeros(len(keyed), dtype=np.uint64)
    if present.any():
        out[present] = pd.util.hash_array(keyed[present].to_numpy(dtype=object))
    return out


def birth_name_keys(birth_sex: np.ndarray, name_hash: np.ndarray) -> np.ndarray:
    """One non-negative int64 of (YYYYMMDD * 10 + sex, hash of the name); equal keys are
    checked again, so a clash of two hashes costs a comparison, never a wrong match."""
    spread = np.asarray(birth_sex, dtype=np.int64).astype(np.uint64) * _SPREAD
    return ((spread ^ name_hash) & _POSITIVE).view(np.int64)


def _status_codes(values: pa.Array) -> np.ndarray:
    found = pc.index_in(values, value_set=pa.array(list(STATUSES)))
    return pc.fill_null(found, NO_STATUS).to_numpy(zero_copy_only=False).astype(np.int8)


def _sex_numbers(values: pa.Array) -> np.ndarray:
    found = pc.index_in(values, value_set=pa.array(["1", "2"], values.type))
    return (pc.fill_null(found, -1).to_numpy(zero_copy_only=False) + 1).astype(np.int8)


def _compact(ids: pa.Array, names_: pa.Array, sex, born, status) -> dict:
    """The entries of normalised numbers and names with their sex, birth date and status
    codes, entries without an ID number's shape left out."""
    values, _ = keys.id_values(ids)
    shaped = values != keys.NO_KEY
    return {
        "values": values[shaped],
        "name": pc.cast(names_, pa.string()).filter(pa.array(shaped)),
        "sex": sex[shaped].astype(np.int8),
        "born": born[shaped].astype(np.int32),
        "status": status[shaped].astype(np.int8),
    }


def _entries(table: pa.Table) -> dict:
    """The compact columns of a table of normalised registry values (``read_registry``'s
    columns; status canonical)."""

    def column(name: str) -> pa.Array:
        if name in table.column_names:
            array = pc.cast(table.column(name), pa.string())
            return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        return pa.nulls(table.num_rows, pa.string())

    return _compact(
        column("id_number"),
        column("name"),
        _sex_numbers(column("sex")),
        dates.iso_date_numbers(column("birth_date")),
        _status_codes(column("status")),
    )


def _by_value(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """(distinct values in the order they first appear, position of each value among them)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    return encoded.dictionary, encoded.indices.to_numpy(zero_copy_only=False)


def _batch_entries(found: Columns) -> dict:
    """The entries of one batch of an extract's columns. Sex, 出生日期 and 人员状态 hold few
    distinct values: each is normalised and read once (a status no one knows is an error
    naming the first row that holds it)."""
    table = found.table
    sex, sex_at = _by_value(table.column("sex"))
    birth, birth_at = _by_value(table.column("birth_date"))
    status, status_at = _by_value(table.column("status"))
    distinct, first = np.unique(status_at, return_index=True)
    first_rows = np.zeros(len(status), dtype=np.int64)
    first_rows[distinct] = found.rows[first]
    statuses = registry.statuses(status, first_rows, found.file)
    return _compact(
        registry.normalized(table.column("id_number"), "id_number"),
        registry.normalized(table.column("name"), "name"),
        _sex_numbers(registry.normalized(sex, "sex"))[sex_at],
        dates.iso_date_numbers(registry.normalized(birth, "birth_date"))[birth_at],
        _status_codes(statuses)[status_at],
    )


def _assembled(parts: list[dict], rows: int) -> Registry:
    values = np.concatenate([p["values"] for p in parts]) if parts else np.zeros(0, np.int64)
    order = np.argsort(values, kind="stable")
    encoded = pc.dictionary_encode(pa.chunked_array([p["name"] for p in parts], pa.string()))
    dictionary = encoded.chunks[0].dictionary if encoded.num_chunks else pa.array([], pa.string())
    codes = np.concatenate(
        [
            pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
            for chunk in encoded.chunks
        ]
        or [np.zeros(0, np.int32)]
    )
    del encoded

    def joined(name: str, dtype) -> np.ndarray:
        return np.concatenate([p[name] for p in parts] or [np.zeros(0, dtype)])[order]

    return Registry(
        rows=rows,
        values=values[order],
        name_codes=codes[order],
        names=pc.cast(dictionary, pa.string()),
        sex=joined("sex", np.int8),
        born=joined("born", np.int32),
        status=joined("status", np.int8),
    )


def prepared(table: pa.Table | Registry) -> Registry:
    """A registry table (``read_registry``'s, or any table with id_number and optionally
    name, sex, birth_date, status) ready for look-ups; a Registry is returned as it is."""
    if isinstance(table, Registry):
        return table
    return _assembled([_entries(table)], table.num_rows)


def load_registry(path: Path | str, batch_rows: int = BATCH_ROWS) -> Registry:
    """The extract at ``path``, read and normalised a batch at a time (memory: the compact
    columns, plus one batch of text)."""
    parts = []
    rows = 0
    aliases = {field: registry.ALIASES[field] for field in registry.CHECKED_COLUMNS}
    batches = read_column_batches(path, aliases, registry.REQUIRED, registry.LABELS, batch_rows)
    for found in read_ahead(batches):
        parts.append(_batch_entries(found))
        rows += found.table.num_rows
    return _assembled(parts, rows)
