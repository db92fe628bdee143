"""A generated roster read back in pieces for its police files, and the numbers held anywhere.

The police files of a roster of 20 million rows cannot be made from the whole roster in memory.
``roster_plan`` reads the roster's ID numbers and record keys once (a batch at a time) and cuts
it into pieces of about ``chunk_rows`` rows that never part two rows of one student: no planted
duplicate pair and no ID number has rows on both sides of a cut (the roster generator plants
pairs inside one of its pieces, so its own cuts are found again). It also gathers every number
the registry must not give to another person: the roster's numbers and, for numbers failing the
check character, the number with the right one (whose holder the registry has). ``pieces``
then yields each piece as ``canonical_roster`` would give it.

A roster whose record keys are not the generator's (R and the row number) is one piece.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from xueji_quality import schema
from xueji_quality.generator.build import CHUNK_ROWS
from xueji_quality.police import keys, registry
from xueji_quality.police.tables import read_column_batches
from xueji_quality.standards import iso7064, resident_id

ROSTER_FIELDS = ("export_key", "name", "sex", "birth_date", "id_type", "id_number")
BATCH_ROWS = 500_000


@dataclass(frozen=True)
class RosterPlan:
    """Where a roster is cut (row positions, ascending, without 0 and the end), its rows, and the
    sorted int64 numbers held by it (``held``)."""

    path: Path
    rows: int
    cuts: np.ndarray
    held: np.ndarray

    @property
    def bounds(self) -> list[tuple[int, int]]:
        edges = [0, *self.cuts.tolist(), self.rows]
        return list(zip(edges[:-1], edges[1:], strict=True))


def roster_file(out_dir: Path) -> Path:
    for name in ("roster.parquet", "roster.csv", "roster.xlsx"):
        if (out_dir / name).is_file():
            return out_dir / name
    raise FileNotFoundError(f"{out_dir} 中没有 roster.csv / roster.xlsx / roster.parquet")


def _batches(path: Path, fields: tuple[str, ...], batch_rows: int = BATCH_ROWS):
    return read_column_batches(
        path,
        {f: schema.HEADER_ALIASES[f] for f in fields},
        [("export_key",), ("name",), ("id_number",)],
        schema.FIELDS,
        batch_rows,
    )


def _canonical(table: pa.Table, fields: tuple[str, ...] = ROSTER_FIELDS) -> pd.DataFrame:
    out = {}
    for field in fields:
        if field not in table.column_names:
            out[field] = pd.Series(pd.NA, index=range(table.num_rows), dtype="string")
            continue
        column = registry.normalized(table.column(field), field)
        out[field] = pd.Series(pd.arrays.ArrowStringArray(column))
    frame = pd.DataFrame(out).rename(columns={"export_key": "record_id"})
    return frame.replace("", pd.NA).astype("string[pyarrow]")


def canonical_roster(path: Path | str) -> pd.DataFrame:
    """record_id, name, sex, birth_date, id_type, id_number of a roster export, normalised as
    a run reads them (record_id is the export's 记录号)."""
    parts = [_canonical(found.table) for found in _batches(Path(path), ROSTER_FIELDS, 1 << 62)]
    return pd.concat(parts, ignore_index=True)


def key_numbers(record_ids: pd.Series) -> np.ndarray:
    """The number in each generated record key (R0000123 -> 123; -1 for any other key)."""
    text = record_ids.astype("string[pyarrow]")
    shaped = text.str.fullmatch("R[0-9]{1,17}").fillna(False).to_numpy(dtype=bool)
    out = np.full(len(text), -1, dtype=np.int64)
    out[shaped] = pd.to_numeric(text[shaped].str.slice(1)).to_numpy(dtype=np.int64)
    return out


def _cuts(rows: int, spans: np.ndarray, chunk_rows: int) -> np.ndarray:
    """Cut positions near every ``chunk_rows`` rows (the generator's piece sizes) that fall
    inside no span (rows lo..hi together: a cut at c parts them when lo < c <= hi)."""
    if rows <= chunk_rows:
        return np.zeros(0, dtype=np.int64)
    covered = np.zeros(rows + 1, dtype=np.int32)
    np.add.at(covered, spans[:, 0] + 1, 1)
    np.add.at(covered, spans[:, 1] + 1, -1)
    free = np.flatnonzero(np.cumsum(covered)[:rows] == 0)
    free = free[free > 0]
    count = -(-rows // chunk_rows)
    sizes = [rows // count + (i < rows % count) for i in range(count)]
    wanted = np.cumsum(sizes)[:-1]
    at = np.searchsorted(free, wanted)
    return np.unique(free[at[at < len(free)]])


def roster_plan(out_dir: Path, chunk_rows: int = CHUNK_ROWS) -> RosterPlan:
    """How the roster ``write_sample`` wrote into ``out_dir`` is cut (see the module docstring)."""
    path = roster_file(out_dir)
    values, corrected, numbers = [], [], []
    for found in _batches(path, ("export_key", "name", "id_number")):
        frame = _canonical(found.table, ("export_key", "id_number"))
        value, digits = keys.id_values(pa.array(frame["id_number"].array))
        shaped = value != keys.NO_KEY
        fixed = digits[shaped].copy()
        fixed[:, 17] = iso7064.check_values(fixed)
        values.append(value)
        corrected.append(resident_id.digits_to_values(fixed))
        numbers.append(key_numbers(frame["record_id"]))
    value = np.concatenate(values) if values else np.zeros(0, np.int64)
    rows = len(value)
    held = np.unique(np.concatenate([value[value != keys.NO_KEY], *corrected]))
    number = np.concatenate(numbers) if numbers else np.zeros(0, np.int64)
    if not np.array_equal(number, np.arange(1, rows + 1)) or rows <= chunk_rows:
        return RosterPlan(path, rows, np.zeros(0, dtype=np.int64), held)
    duplicates = pd.read_csv(
        out_dir / "truth_duplicates.csv", dtype="string", keep_default_na=False
    )
    a = key_numbers(duplicates["record_id_a"]) - 1
    b = key_numbers(duplicates["record_id_b"]) - 1
    spans = [np.c_[np.minimum(a, b), np.maximum(a, b)]]
    shaped = np.flatnonzero(value != keys.NO_KEY)
    order = shaped[np.argsort(value[shaped], kind="stable")]
    run_start = np.r_[True, value[order][1:] != value[order][:-1]]
    group = np.cumsum(run_start) - 1
    first = np.minimum.reduceat(order, np.flatnonzero(run_start)) if len(order) else order
    last = np.maximum.reduceat(order, np.flatnonzero(run_start)) if len(order) else order
    shared = np.bincount(group) > 1 if len(order) else np.zeros(0, bool)
    spans.append(np.c_[first[shared], last[shared]])
    return RosterPlan(path, rows, _cuts(rows, np.concatenate(spans), chunk_rows), held)


def pieces(plan: RosterPlan) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first row, canonical roster) of each piece of ``plan``, read a batch at a time."""
    bounds = plan.bounds
    held: list[pa.Table] = []
    start = 0  # first row of ``held``
    index = 0
    for found in _batches(plan.path, ROSTER_FIELDS):
        held.append(found.table)
        end = start + sum(t.num_rows for t in held)
        while index < len(bounds) and bounds[index][1] <= end:
            lo, hi = bounds[index]
            table = pa.concat_tables(held)
            yield lo, _canonical(table.slice(lo - start, hi - lo))
            held, start = [table.slice(hi - start)], hi
            index += 1
    if index < len(bounds):  # a roster without rows
        yield 0, _canonical(pa.table({f: pa.array([], pa.string()) for f in ROSTER_FIELDS}))


def held_numbers(numbers: pd.Series | np.ndarray, held: np.ndarray | None) -> np.ndarray:
    """Boolean mask of the numbers (text) among ``held`` (sorted int64; None holds nothing)."""
    if held is None or not len(held):
        return np.zeros(len(numbers), dtype=bool)
    text = pd.Series(np.asarray(numbers, dtype=object), dtype="string")
    value, _ = keys.id_values(pa.array(text.array))
    at = np.searchsorted(held, value).clip(max=len(held) - 1)
    return (held[at] == value) & (value != keys.NO_KEY)
