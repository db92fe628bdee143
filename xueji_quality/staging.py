"""The run's roster on disk: Parquet files partitioned by county, read a piece at a time.

A province holds up to 20 million records; held as one table in one process that is 14 GB of
strings before any work is done. Ingest therefore writes what it stages to
``<folder>/county=<code>/part-<n>.parquet`` as it reads (a file per county and flush of about a
million rows), and every later stage reads only what it needs: validation a chunk of files at a
time, linkage only the columns it compares, county lists only the records they name.

Values ingest normalised go to ``<folder>/normalizations/`` (a province's mixed date formats
alone are tens of millions of them); the run keeps only their counts.

The files carry every roster column, plus ``_pos``, the record's run-wide staged position (file
order), which keeps the normalisations and the "first one keeps its key" rule of duplicate
record keys in the order a clerk knows. Files written from different exports may lack each
other's extra columns; they are read under one schema, the missing ones as null.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from xueji_quality import ingest, normalize
from xueji_quality.files import remember_hashes

STRING = normalize.STRING
POSITION = "_pos"
NORMALIZATIONS = "normalizations"
# Staged rows held before they are cut by county and written: bounds ingest's memory to about
# this many rows, and keeps part files large enough to read quickly.
FLUSH_ROWS = 1_000_000
# Columns whose values are (nearly) one per record: Parquet would build a dictionary page for
# each and then abandon it. The other columns (codes, schools, grades, dates) repeat and stay
# dictionary-encoded.
_UNIQUE_PER_RECORD = frozenset(
    ("record_id", "export_key", "source_row", "name", "id_number", "student_no", "guardian_name")
    + ("phone", POSITION)
)
# The columns reads filter parts on: only their statistics can spare reading a part. Minimum and
# maximum of every other text column cost a fifth of writing the roster.
_FILTERED_COLUMNS = ["record_id", "school_code"]
_TYPES = {
    pa.large_string(): STRING,
    pa.string(): STRING,
    pa.int8(): pd.Int8Dtype(),
}


@dataclass
class Part:
    path: str
    county_code: str
    rows: int


@dataclass
class StagedStore:
    """What ingest staged: the roster's files and what it knows without reading them again.

    Pickles small (paths and counts, the quarantine and the normalisations): tasks and worker
    processes pass it instead of the roster.
    """

    folder: str
    parts: list[Part]
    columns: list[str]
    quarantine: pd.DataFrame
    # "field:kind" -> values normalised (the full table is on disk: read_normalizations).
    normalized_values: dict[str, int]
    files: list[dict]
    rows_read: int
    renamed_record_ids: int = 0
    record_ids_unique: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def rows_staged(self) -> int:
        return sum(p.rows for p in self.parts)

    def county_rows(self) -> pd.Series:
        """Staged records per county code (int64, indexed by code, sorted)."""
        counts: dict[str, int] = {}
        for part in self.parts:
            counts[part.county_code] = counts.get(part.county_code, 0) + part.rows
        return pd.Series(counts, dtype="int64").sort_index()

    def counties(self) -> list[str]:
        return sorted({p.county_code for p in self.parts})

    def schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field(
                    c,
                    pa.int64()
                    if c in ("source_row", POSITION)
                    else pa.int8()
                    if c == "grade_level"
                    else pa.large_string(),
                )
                for c in [*self.columns, POSITION]
            ]
        )

    def dataset(self, parts: Iterable[Part] | None = None) -> ds.Dataset:
        chosen = self.parts if parts is None else list(parts)
        return ds.dataset([p.path for p in chosen], schema=self.schema(), format="parquet")

    def read(
        self,
        columns: Iterable[str] | None = None,
        *,
        parts: Iterable[Part] | None = None,
        filter: pc.Expression | None = None,
    ) -> pd.DataFrame:
        """Rows of the given parts (all by default) as a roster: string columns pyarrow-backed,
        RangeIndex. Columns the roster does not have are left out."""
        known = [*self.columns, POSITION]
        wanted = self.columns if columns is None else [c for c in columns if c in known]
        table = self.dataset(parts).to_table(columns=wanted, filter=filter)
        return to_roster(table)

    def records(self, record_ids: Iterable[str], columns: Iterable[str] | None = None):
        """The roster rows of these record ids (every column by default), in store order."""
        ids = pa.array(pd.Series(list(record_ids), dtype="string").dropna().unique(), pa.string())
        if len(ids) == 0:
            return self.read(columns, parts=[])
        return self.read(columns, filter=pc.field("record_id").isin(ids))

    def chunks(self, rows: int) -> list[list[Part]]:
        """The parts in order, grouped into chunks of about ``rows`` rows (a part is never cut)."""
        chunks: list[list[Part]] = []
        size = 0
        for part in self.parts:
            if not chunks or size + part.rows > rows and size > 0:
                chunks.append([])
                size = 0
            chunks[-1].append(part)
            size += part.rows
        return chunks

    def without_tables(self) -> StagedStore:
        """The same store without quarantine and normalisations: what a worker process needs to
        read the files, cheap to pickle."""
        return replace(self, quarantine=self.quarantine.iloc[:0], files=[])

    def read_normalizations(self) -> pd.DataFrame:
        """Every value ingest normalised: record_id, field, kind, original (run order)."""
        paths = sorted(Path(self.folder, NORMALIZATIONS).glob("*.parquet"))
        if not paths:
            return ingest.empty_normalizations()
        changes = pq.read_table(paths).to_pandas(types_mapper=_TYPES.get)
        ids = self.dataset().to_table(columns=["record_id", POSITION]).sort_by(POSITION)
        return ingest.normalizations_table(
            pd.arrays.ArrowStringArray(ids["record_id"].combine_chunks()), changes
        )

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def to_roster(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas(types_mapper=_TYPES.get, self_destruct=True)
    return frame.reset_index(drop=True)


class _Writer:
    """Buffers staged blocks and writes them out by county, their normalisations beside them."""

    def __init__(self, folder: Path, flush_rows: int) -> None:
        self.folder = folder
        self.flush_rows = flush_rows
        self.blocks: list[pd.DataFrame] = []
        self.changes: list[pd.DataFrame] = []
        self.counts: dict[str, int] = {}
        self.buffered = 0
        self.flushes = 0
        self.parts: list[Part] = []

    def add(self, roster: pd.DataFrame, changes: pd.DataFrame) -> None:
        if len(changes):
            self.changes.append(changes)
            counts = changes.groupby(["field", "kind"], observed=True).size()
            for (name, kind), n in counts.items():
                key = f"{name}:{kind}"
                self.counts[key] = self.counts.get(key, 0) + int(n)
        if len(roster) == 0:
            return
        self.blocks.append(roster)
        self.buffered += len(roster)
        if self.buffered >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if self.changes:
            changes = pd.concat(self.changes, ignore_index=True).astype(
                {c: STRING for c in ingest.CHANGE_FIELDS}
            )
            self.changes = []
            path = self.folder / NORMALIZATIONS / f"part-{self.flushes:05d}.parquet"
            path.parent.mkdir(exist_ok=True)
            pq.write_table(pa.Table.from_pandas(changes, preserve_index=False), path)
        if not self.blocks:
            self.flushes += 1
            return
        frame = pd.concat(self.blocks, ignore_index=True)
        self.blocks, self.buffered = [], 0
        codes, uniques = pd.factorize(frame["county_code"], use_na_sentinel=True)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(-1, len(uniques) + 1))
        # One take of the whole table, then zero-copy slices: a take per county from the blocks'
        # many chunks costs more than parsing them did.
        table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks().take(order)
        del frame
        for i, code in enumerate([None, *uniques]):
            lo, hi = bounds[i], bounds[i + 1]
            if hi <= lo:
                continue
            label = "_" if code is None else str(code)
            path = self.folder / f"county={label}" / f"part-{self.flushes:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_part(table.slice(lo, hi - lo), path)
            self.parts.append(Part(str(path), "" if code is None else str(code), int(hi - lo)))
        self.flushes += 1


def _write_part(table: pa.Table, path: Path) -> None:
    """One part of the staged roster as Parquet (snappy)."""
    names = table.column_names
    pq.write_table(
        table,
        path,
        compression="snappy",
        use_dictionary=[c for c in names if c not in _UNIQUE_PER_RECORD],
        write_statistics=[c for c in _FILTERED_COLUMNS if c in names],
    )


def stage_exports(
    paths: list[Path],
    province: str,
    folder: Path,
    *,
    flush_rows: int = FLUSH_ROWS,
    processes: int = 1,
    hashes: dict[tuple, str] | None = None,
) -> StagedStore:
    """Read every export (see :mod:`xueji_quality.ingest`) into Parquet files under ``folder``.

    Same rows, quarantine, normalisations and record ids as :func:`ingest.read_exports`, with
    memory bounded by ``flush_rows`` instead of the roster. With ``processes`` > 1 that many
    worker processes stage the blocks and write them (:func:`_stage_in_workers`) while this one
    reads the next ones. ``hashes``: the exports' sha256 as another process computed them
    (:func:`xueji_quality.files.known_hashes`), used while the files stay as they were.
    """
    remember_hashes(hashes or {})
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    # Every student's record: readable by the run's own account only.
    os.chmod(folder, 0o700)
    try:
        quarantine_parts: list[pd.DataFrame] = []
        files: list[dict] = []
        extra: list[str] = []
        if processes > 1:
            parts, counts = _stage_in_workers(
                paths, province, folder, flush_rows, processes, quarantine_parts, files, extra
            )
        else:
            writer = _Writer(folder, flush_rows)
            offset = 0
            for block in ingest.staged_blocks(paths, province, files, extra):
                roster = block.roster
                roster[POSITION] = np.arange(offset, offset + len(roster), dtype=np.int64)
                offset += len(roster)
                writer.add(roster, block.changes)
                quarantine_parts.extend(block.quarantine)
            writer.flush()
            parts, counts = writer.parts, writer.counts
        store = StagedStore(
            folder=str(folder),
            parts=sorted(parts, key=lambda p: (p.county_code, p.path)),
            columns=[*schema_columns(extra)],
            quarantine=ingest.sort_quarantine(quarantine_parts, files),
            normalized_values=dict(sorted(counts.items())),
            files=files,
            rows_read=sum(f["rows_read"] for f in files),
        )
        _unique_record_ids(store)
    except BaseException:
        # A refused export leaves nothing behind.
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return store


def _stage_in_workers(
    paths: list[Path],
    province: str,
    folder: Path,
    flush_rows: int,
    processes: int,
    quarantine_parts: list[pd.DataFrame],
    files: list[dict],
    extra: list[str],
) -> tuple[list[Part], dict[str, int]]:
    """Stage and write the exports in ``processes`` worker processes: (parts, counts of values
    normalised).

    This process only reads the blocks and screens them (:func:`ingest.staged_blocks` with
    ``stage=False``): it decides which rows are quarantined, so it knows how many rows each
    block stages, and with that the run-wide position (``_pos``) of the block's first staged
    row before anyone stages it. The blocks go to the workers in batches of about
    ``flush_rows / processes`` rows read, each with its first position; a worker stages a
    batch, cuts it by county and writes its files itself (``part-<batch>.parquet``, batches
    numbered in run order, so a county's files in name order hold its rows in position
    order, as when one process writes them), and hands back only their paths and row counts
    and the counts of values normalised. The rows, positions, record ids, quarantine and
    normalisations are those of staging in one process; the files are cut at other rows.

    Memory: at most ``processes`` batches are with the workers (one each) while this process
    reads the next, so the rows buffered across the workers stay about ``flush_rows``.
    """
    from xueji_quality import workers

    batch_rows = max(1, flush_rows // (2 * processes))
    parts: list[Part] = []
    counts: dict[str, int] = {}

    def collect(done: set[Future]) -> None:
        for future in done:
            batch_parts, batch_counts = future.result()
            parts.extend(batch_parts)
            for key, n in batch_counts.items():
                counts[key] = counts.get(key, 0) + n

    context = workers.nested_context(("xueji_quality.staging",))
    pool = ProcessPoolExecutor(processes, mp_context=context)
    # The workers start (their forkserver imports pandas and pyarrow first: seconds) while this
    # process reads the first batch, instead of when it hands it over.
    warm = threading.Thread(target=lambda: [pool.submit(int) for _ in range(processes)])
    warm.start()
    try:
        pending: set[Future] = set()
        batch: list[tuple[ingest.Screened, int]] = []
        rows = offset = number = 0

        def submit() -> None:
            nonlocal pending, batch, rows, number
            if len(pending) >= processes:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
            pending.add(pool.submit(_stage_batch, batch, province, str(folder), number))
            batch, rows, number = [], 0, number + 1

        for block in ingest.staged_blocks(paths, province, files, extra, stage=False):
            quarantine_parts.extend(block.quarantine)
            if block.screened is None or block.rows == 0:
                continue
            batch.append((block.screened, offset))
            offset += block.rows
            rows += len(block.screened.keep)
            if rows >= batch_rows:
                submit()
        if batch:
            submit()
        collect(wait(pending).done)
    except BrokenProcessPool as error:
        raise workers.WorkerDied("stage_exports") from error
    finally:
        warm.join()
        # On a failure the workers finish what they hold before the caller removes the folder.
        pool.shutdown(wait=True, cancel_futures=True)
    return parts, counts


def _stage_batch(
    batch: list[tuple[ingest.Screened, int] | None], province: str, folder: str, number: int
) -> tuple[list[Part], dict[str, int]]:
    """In a worker process: stage screened blocks (each with the run-wide position of its first
    staged row) and write them as flush ``number`` of the store; (parts written, counts of
    values normalised)."""
    writer = _Writer(Path(folder), sys.maxsize)
    writer.flushes = number
    for i, item in enumerate(batch):
        assert item is not None
        batch[i] = None  # the block as read goes once staged
        screened, offset = item
        roster, changes = ingest.stage_screened(screened, province, offset)
        del screened, item
        roster[POSITION] = np.arange(offset, offset + len(roster), dtype=np.int64)
        writer.add(roster, changes)
    writer.flush()
    return writer.parts, writer.counts


def schema_columns(extra: list[str]) -> list[str]:
    return ingest.roster_columns(extra)


def all_distinct(values: pa.ChunkedArray | pa.Array) -> bool:
    """Whether no two values are equal and none is missing.

    Sorted, equal values are neighbours: one sort and one comparison of neighbours, five times
    faster than Arrow's count of distinct values (a hash table per chunk, merged) on 20 million
    record ids of a few thousand chunks, in a process that waits for nothing else.
    """
    if values.null_count:
        return False
    if len(values) < 2:
        return True
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    ordered = values.take(pc.sort_indices(values))
    return not pc.any(pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))).as_py()


def _unique_record_ids(store: StagedStore) -> None:
    """Make record ids unique across the run as ingest does (later repeats get "@file:row").

    A repeated key is rare: the ids are counted in Arrow, and only the files holding a repeat
    are rewritten.
    """
    table = store.dataset().to_table(columns=["record_id", POSITION])
    if all_distinct(table["record_id"]):
        return  # one sort; counting per id is many times slower
    counts = table.group_by("record_id").aggregate([(POSITION, "count")])
    repeated = counts.filter(pc.greater(counts[f"{POSITION}_count"], 1))["record_id"]
    del table, counts
    if len(repeated) == 0:
        return
    involved = store.read(
        ["record_id", "source_file", "source_row", POSITION],
        filter=pc.field("record_id").isin(repeated),
    ).sort_values(POSITION, kind="stable")
    fixed = ingest.unique_record_ids(involved.reset_index(drop=True))
    changed = involved.assign(new_id=fixed.to_numpy())
    changed = changed[changed["new_id"] != changed["record_id"]]
    new_of = dict(zip(changed[POSITION].tolist(), changed["new_id"].tolist(), strict=True))
    positions = pa.array(list(new_of), pa.int64())
    for part in store.parts:
        part_table = pq.read_table(part.path)
        hit = pc.is_in(part_table[POSITION], positions)
        if not pc.any(hit).as_py():
            continue
        frame = part_table.to_pandas(types_mapper=_TYPES.get)
        at = frame[POSITION].map(new_of)
        frame["record_id"] = frame["record_id"].where(at.isna(), at).astype(STRING)
        _write_part(pa.Table.from_pandas(frame, preserve_index=False), part.path)
    store.renamed_record_ids = len(new_of)
    ids = store.dataset().to_table(columns=["record_id"])["record_id"]
    store.record_ids_unique = all_distinct(ids)


def find_duplicates(
    store: StagedStore, config_path: Path | None = None, as_of: date | str | None = None
):
    """Linkage (:func:`xueji_quality.linkage.find_duplicates`) of a staged roster, reading only
    the columns linkage compares; ``as_of`` is the run date (the school year of its age check)."""
    from xueji_quality import linkage

    return linkage.find_duplicates(store.read(linkage.COLUMNS_USED), config_path, as_of)
