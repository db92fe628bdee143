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

from collections.abc import Iterator
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
    "Screened",
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
    "stage_screened",
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


def _county_text(frame: pd.DataFrame, layout: Layout) -> pd.Series:
    """The block's 所在区县 normalised (the one field that decides a row's county)."""
    if "school_county" not in layout.targets:
        return pd.Series(pd.NA, index=frame.index, dtype=STRING)
    column = frame.iloc[:, layout.targets.index("school_county")].rename("school_county")
    normalized, _ = normalize.normalize_roster(column.to_frame())
    return normalized["school_county"]


def _screen(
    block: FileBlock, layout: Layout, county_text: pd.Series, province: str
) -> tuple[np.ndarray, pd.Series, list[pd.DataFrame]]:
    """Which rows of a block are staged: (keep, county code of each row, quarantine parts).

    A row is quarantined when it cannot be staged as read (:func:`row_problems`) or its county
    cannot be decided from the normalised 所在区县 (``county_text``); every other row is staged.
    """
    frame = block.frame
    reason = row_problems(frame, layout)
    county, county_reason = normalize.county_codes(county_text, province)
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
    return ~quarantined, county, parts


def _stage_block(
    block: FileBlock,
    layout: Layout,
    province: str,
    offset: int,
    screened: tuple[np.ndarray, pd.Series] | None = None,
) -> tuple[pd.DataFrame, list[pd.DataFrame], pd.DataFrame]:
    """(staged rows, quarantine parts, changes with ``row`` = run-wide staged position).

    ``screened`` is (keep, county) from :func:`_screen` when the block was screened already
    (then no quarantine parts come back: the screen gave them).
    """
    frame = block.frame
    frame.index = pd.RangeIndex(len(frame))
    renamed = frame.set_axis(layout.targets, axis=1)
    for field_name in schema.FIELDS:
        if field_name not in renamed.columns:
            renamed[field_name] = pd.Series(pd.NA, index=renamed.index, dtype=STRING)
    normalized, changes = normalize.normalize_roster(renamed)
    if screened is None:
        keep, county, parts = _screen(block, layout, normalized["school_county"], province)
    else:
        (keep, county), parts = screened, []
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
class Screened:
    """A block as read, with the rows it stages decided (:func:`_screen`) but not yet staged:
    what the reading process hands to a worker process, which stages it with
    :func:`stage_screened`."""

    block: FileBlock
    layout: Layout
    keep: np.ndarray  # bool per row read: staged, else quarantined
    county: pd.Series  # county code of each row read

    @property
    def rows(self) -> int:
        return int(np.count_nonzero(self.keep))


@dataclass
class Block:
    """One block of a file: rows staged, rows quarantined, normalisations (``row`` is the
    run-wide staged position of the changed row). A block read with ``stage=False`` has no
    roster and no changes yet, only ``screened``: its staged rows are ``rows``."""

    roster: pd.DataFrame | None
    quarantine: list[pd.DataFrame]
    changes: pd.DataFrame | None
    screened: Screened | None = None

    @property
    def rows(self) -> int:
        """Rows the block stages."""
        if self.roster is not None:
            return len(self.roster)
        return 0 if self.screened is None else self.screened.rows


def _staged_block(
    block: FileBlock,
    layout: Layout,
    province: str,
    offset: int = 0,
    screened: tuple[np.ndarray, pd.Series] | None = None,
) -> tuple[pd.DataFrame, list[pd.DataFrame], pd.DataFrame]:
    """:func:`_stage_block` with grade levels."""
    staged, parts, changes = _stage_block(block, layout, province, offset, screened)
    staged["grade_level"] = normalize.grade_levels(staged["grade"])
    return staged, parts, changes


def stage_screened(
    screened: Screened, province: str, offset: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(staged rows, changes) of a screened block whose first staged row is at run-wide
    position ``offset``: the same rows and changes as the block staged whole."""
    staged, _, changes = _staged_block(
        screened.block, screened.layout, province, offset, (screened.keep, screened.county)
    )
    return staged, changes


def staged_blocks(
    paths: list[Path],
    province: str,
    files: list[dict],
    extra: list[str],
    *,
    stage: bool = True,
) -> Iterator[Block]:
    """Stage every export block by block (a block is a few MB of a file).

    Appends each file's info to ``files`` once it is read, and the roster columns that are not
    canonical fields (the files' own extra headers) to ``extra``. Rows keep run order: files in
    the order given, rows in file order; the quarantine of rows the reader could not split comes
    with the file's last block.

    With ``stage=False`` the blocks are only screened (:class:`Screened`): the quarantine and
    the number of rows each block stages are known here, and the staging itself (normalising,
    record ids, the heavier part) is left to whoever takes the block, in another process.
    """
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
        for block in READERS[kind](path, layout_of, info, bad_rows):
            layout = holder["layout"]
            if stage:
                staged, parts, changes = _staged_block(block, layout, province)
                changes = changes.assign(row=changes["row"].to_numpy() + offset)
                result = Block(staged, [typed_quarantine(p) for p in parts], changes)
            else:
                block.frame.index = pd.RangeIndex(len(block.frame))
                keep, county, parts = _screen(
                    block, layout, _county_text(block.frame, layout), province
                )
                screened = Screened(block, layout, keep, county)
                result = Block(None, [typed_quarantine(p) for p in parts], None, screened)
            read += len(block.frame)
            staged_count += result.rows
            quarantined_count += sum(len(p) for p in result.quarantine)
            offset += result.rows
            yield result
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
                empty_roster().iloc[:0] if stage else None,
                [typed_quarantine(pd.DataFrame(bad_rows))],
                normalize.empty_changes() if stage else None,
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
