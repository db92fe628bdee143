"""Reading roster exports (CSV, XLSX, Parquet) into the canonical roster, without losing a row.

Every data row read ends up either staged (in the roster) or quarantined with a Chinese reason,
so rows read = rows staged + rows quarantined.

CSV encodings are detected, never asked for: the bytes are decoded as strict UTF-8 (with or
without BOM), else as strict GB18030 (a superset of GBK and GB2312). A file that is mostly UTF-8
with a few undecodable lines, or that neither decodes, is read with replacement characters and
the rows holding one are quarantined ("无法解码的字节"): a replacement would otherwise pass for
data. CSV is parsed by pyarrow in blocks, every column as text, empty cells as "".

Row numbers are what a clerk sees when opening the file in Excel: the header is row 1, the first
data row is row 2 (blank lines are skipped by the CSV reader and not counted). Parquet has no
header row; its rows are numbered the same way so a file converted from a sheet keeps them.

XLSX cells are turned back into the text they displayed: an integral number becomes integer text
without ".0"; an 18-digit ID stored as a number keeps the 15 significant digits Excel stored
("440106201503011000"), which validation reports as spreadsheet damage.

``record_id`` is the export's own key (记录号/序号) when the file has that column and the value is
not empty, else "<file name>:<row>". A key already used earlier in the run (duplicate keys in one
file or across files) becomes "<key>@<file name>:<row>" for the later rows, so record_id is
unique across the run and still leads a clerk to the row.

The readers live beside this module, one per format (``csv_reader``, ``xlsx_reader``,
``parquet_reader``); ``layout`` maps a file's headers to the roster, ``sources`` finds the export
files and names them, ``quarantine`` says why a row cannot be staged. This module stages the
blocks they read and assembles the run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xueji_quality import normalize, schema
from xueji_quality.errors import InputError
from xueji_quality.ingest.csv_reader import read_csv
from xueji_quality.ingest.layout import FileBlock, Layout, column_layout
from xueji_quality.ingest.parquet_reader import read_parquet
from xueji_quality.ingest.quarantine import (
    empty_quarantine,
    joined_values,
    row_problems,
    sort_quarantine,
    typed_quarantine,
)
from xueji_quality.ingest.sources import FORMATS, find_exports, source_name
from xueji_quality.ingest.xlsx_reader import read_xlsx

__all__ = [
    "CHANGE_FIELDS",
    "Block",
    "Staged",
    "concat_changes",
    "empty_normalizations",
    "empty_quarantine",
    "empty_roster",
    "find_exports",
    "normalizations_table",
    "read_exports",
    "roster_columns",
    "sort_quarantine",
    "staged_blocks",
    "unique_record_ids",
]

STRING = normalize.STRING
CHANGE_FIELDS = ("field", "kind", "original")
ROW_COLUMNS_DTYPES = {"record_id": STRING, "source_file": STRING, "source_row": "int64"}
READERS = {"csv": read_csv, "xlsx": read_xlsx, "parquet": read_parquet}


@dataclass
class Staged:
    roster: pd.DataFrame
    quarantine: pd.DataFrame
    normalizations: pd.DataFrame
    files: list[dict]
    rows_read: int


def _stage_block(
    block: FileBlock, layout: Layout, province: str, offset: int
) -> tuple[pd.DataFrame, list[pd.DataFrame], pd.DataFrame]:
    """(staged rows, quarantine parts, changes with ``row`` = run-wide staged position)."""
    frame = block.frame
    frame.index = pd.RangeIndex(len(frame))
    reason = row_problems(frame, layout)
    renamed = frame.set_axis(layout.targets, axis=1)
    for field_name in schema.FIELDS:
        if field_name not in renamed.columns:
            renamed[field_name] = pd.Series(pd.NA, index=renamed.index, dtype=STRING)
    normalized, changes = normalize.normalize_roster(renamed)
    county, county_reason = normalize.county_codes(normalized["school_county"], province)
    county_bad = reason.isna() & county_reason.notna()
    reason = reason.fillna(county_reason)
    quarantined = reason.notna().to_numpy(bool)
    parts = []
    if quarantined.any():
        parts.append(
            pd.DataFrame(
                {
                    "source_file": layout.file,
                    "source_row": block.rows[quarantined],
                    "field": pd.Series(
                        np.where(county_bad.to_numpy(bool), "school_county", None)[quarantined],
                        dtype=STRING,
                    ),
                    "reason": reason[quarantined].to_numpy(),
                    "raw": joined_values(frame[quarantined]).to_numpy(),
                }
            )
        )
    keep = ~quarantined
    staged = normalized[keep].reset_index(drop=True)
    staged.insert(0, "county_code", county[keep].to_numpy())
    staged.insert(0, "source_row", block.rows[keep])
    staged.insert(0, "source_file", pd.Series(layout.file, index=staged.index, dtype=STRING))
    key = staged["export_key"].fillna("")
    record_id = key.copy()
    no_key = (key == "").to_numpy(bool)
    if no_key.any():
        rows = pd.Series(block.rows[keep][no_key]).astype(str)
        record_id[no_key] = (layout.file + ":" + rows).to_numpy()
    staged.insert(0, "record_id", record_id.astype(STRING))
    positions = np.cumsum(keep) - 1 + offset
    changes = changes[keep[changes["row"].to_numpy()]]
    changes = changes.assign(row=positions[changes["row"].to_numpy()])
    return staged, parts, changes


# ---------------------------------------------------------------- the run


def roster_columns(extra: list[str]) -> list[str]:
    return [*schema.ROW_COLUMNS, *schema.FIELDS, "grade_level", *extra]


def empty_roster(extra: list[str] | None = None) -> pd.DataFrame:
    """A roster with no rows and every column in its dtype."""
    columns = roster_columns(extra or [])
    frame = pd.DataFrame({c: pd.Series([], dtype=STRING) for c in columns})
    return frame.astype({"source_row": "int64", "grade_level": "Int8"})


def unique_record_ids(roster: pd.DataFrame) -> pd.Series:
    """record_id made unique: later repeats of an id get "@<file>:<row>" (then "#n")."""
    ids = roster["record_id"]
    repeat = ids.duplicated(keep="first")
    if not repeat.any():
        return ids
    suffix = "@" + roster["source_file"] + ":" + roster["source_row"].astype(str).astype(STRING)
    ids = ids.where(~repeat, ids + suffix)
    repeat = ids.duplicated(keep="first")
    if repeat.any():
        nth = ids.groupby(ids).cumcount().astype(str).astype(STRING)
        ids = ids.where(~repeat, ids + "#" + nth)
    return ids


@dataclass
class Block:
    """One staged block of a file: rows staged, rows quarantined, normalisations (``row`` is the
    run-wide staged position of the changed row)."""

    roster: pd.DataFrame
    quarantine: list[pd.DataFrame]
    changes: pd.DataFrame


def _staged_block(
    block: FileBlock, layout: Layout, province: str
) -> tuple[pd.DataFrame, list[pd.DataFrame], pd.DataFrame]:
    """A block staged as if it were the run's first (changes at positions from 0), with grade
    levels: what a worker process hands back."""
    staged, parts, changes = _stage_block(block, layout, province, 0)
    staged["grade_level"] = normalize.grade_levels(staged["grade"])
    return staged, parts, changes


def _in_file_order(
    blocks: Iterator[FileBlock], holder: dict, province: str, pool: Executor | None, ahead: int
) -> Iterator[tuple[int, tuple[pd.DataFrame, list[pd.DataFrame], pd.DataFrame]]]:
    """(rows read, staged block) of every block, in file order. With ``pool`` up to ``ahead``
    blocks are staged at once in its processes while this one reads on: staging is Python
    around Arrow calls, which threads would take turns at."""
    pending: deque = deque()
    for block in blocks:
        if pool is None:
            yield len(block.frame), _staged_block(block, holder["layout"], province)
            continue
        pending.append(
            (len(block.frame), pool.submit(_staged_block, block, holder["layout"], province))
        )
        if len(pending) > ahead:
            rows, future = pending.popleft()
            yield rows, future.result()
    while pending:
        rows, future = pending.popleft()
        yield rows, future.result()


def staged_blocks(
    paths: list[Path],
    province: str,
    files: list[dict],
    extra: list[str],
    *,
    processes: int = 1,
) -> Iterator[Block]:
    """Stage every export block by block (a block is a few MB of a file).

    Appends each file's info to ``files`` once it is read, and the roster columns that are not
    canonical fields (the files' own extra headers) to ``extra``. Rows keep run order: files in
    the order given, rows in file order; the quarantine of rows the reader could not split comes
    with the file's last block. With ``processes`` > 1 that many worker processes stage blocks
    while this process reads the next ones.
    """
    if processes <= 1:
        yield from _staged_blocks(paths, province, files, extra, None, 0)
        return
    from xueji_quality import workers

    context = workers.nested_context(("xueji_quality.ingest",))
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        yield from _staged_blocks(paths, province, files, extra, pool, processes)


def _staged_blocks(
    paths: list[Path],
    province: str,
    files: list[dict],
    extra: list[str],
    pool: Executor | None,
    ahead: int,
) -> Iterator[Block]:
    used_names: set[str] = set()
    offset = 0
    for path in map(Path, paths):
        name = source_name(path, used_names)
        kind = FORMATS.get(path.suffix.lower())
        if kind is None:
            raise InputError(
                name, f"不支持的文件类型“{path.suffix or '无扩展名'}”（支持 csv、xlsx、parquet）"
            )
        if not path.is_file():
            raise InputError(name, "文件不存在")
        info: dict = {"path": str(path), "name": name, "format": kind, "notes": []}
        holder: dict[str, Layout] = {}

        def layout_of(headers: list[str], name: str = name, holder: dict = holder) -> Layout:
            holder["layout"] = column_layout(name, headers)
            return holder["layout"]

        bad_rows: list[dict] = []
        read = staged_count = quarantined_count = 0
        blocks = READERS[kind](path, layout_of, info, bad_rows)
        for rows_read, (staged, parts, changes) in _in_file_order(
            blocks, holder, province, pool, ahead
        ):
            changes = changes.assign(row=changes["row"].to_numpy() + offset)
            read += rows_read
            staged_count += len(staged)
            quarantined_count += sum(len(p) for p in parts)
            offset += len(staged)
            yield Block(staged, [typed_quarantine(p) for p in parts], changes)
        read += len(bad_rows)
        quarantined_count += len(bad_rows)
        layout = holder.get("layout")
        if layout is not None:
            info["notes"].extend(layout.notes)
            info["columns"] = dict(zip(layout.columns, layout.targets, strict=True))
            for target in layout.targets:
                if target not in schema.FIELDS and target not in extra:
                    extra.append(target)
        info.update(rows_read=read, rows_staged=staged_count, rows_quarantined=quarantined_count)
        files.append(info)
        if bad_rows:
            yield Block(
                empty_roster().iloc[:0],
                [typed_quarantine(pd.DataFrame(bad_rows))],
                normalize.empty_changes(),
            )


def normalizations_table(
    record_ids: pd.api.extensions.ExtensionArray, changes: pd.DataFrame
) -> pd.DataFrame:
    """The run's normalisations: record_id (by staged position), field, kind, original."""
    return pd.DataFrame(
        {
            "record_id": record_ids.take(changes["row"].to_numpy(dtype=np.int64)),
            "field": changes["field"].astype(STRING).array,
            "kind": changes["kind"].astype(STRING).array,
            "original": changes["original"].astype(STRING).array,
        }
    )


def empty_normalizations() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=STRING) for c in ("record_id", *CHANGE_FIELDS)})


def concat_changes(change_parts: list[pd.DataFrame]) -> pd.DataFrame:
    change_parts = [c for c in change_parts if len(c)]
    if not change_parts:
        return normalize.empty_changes()
    return pd.concat(change_parts, ignore_index=True)


def read_exports(paths: list[Path], province: str) -> Staged:
    """Read every export into one canonical roster, with quarantine, normalisations, file info."""
    staged_parts: list[pd.DataFrame] = []
    quarantine_parts: list[pd.DataFrame] = []
    change_parts: list[pd.DataFrame] = []
    files: list[dict] = []
    extra: list[str] = []
    for block in staged_blocks(paths, province, files, extra):
        staged_parts.append(block.roster)
        quarantine_parts.extend(block.quarantine)
        change_parts.append(block.changes)

    columns = roster_columns(extra)
    roster = pd.concat(staged_parts, ignore_index=True) if staged_parts else empty_roster(extra)
    for column in columns:
        if column not in roster.columns:
            roster[column] = pd.Series(pd.NA, index=roster.index, dtype=STRING)
    roster = roster[columns].astype(
        {c: STRING for c in columns if c not in ("source_row", "grade_level")}
    )
    roster["source_row"] = roster["source_row"].astype("int64")
    roster["grade_level"] = roster["grade_level"].astype("Int8")
    roster["record_id"] = unique_record_ids(roster)
    quarantine = sort_quarantine(quarantine_parts, files)
    normalizations = normalizations_table(roster["record_id"].array, concat_changes(change_parts))
    rows_read = sum(f["rows_read"] for f in files)
    return Staged(roster, quarantine, normalizations, files, rows_read)
