"""Reading a file the police sent (a registry extract or a result file): only the columns asked
for, found by header alias, every value as text, into Arrow.

Formats as for rosters: CSV (UTF-8 with or without BOM, or GB18030, detected as ingest does;
comma, tab, semicolon or vertical bar), XLSX (the first visible sheet, through python-calamine)
and Parquet. Headers are matched after ingest's header normalisation (NFKC, blanks and BOM
removed); the first column of a field wins. Columns nobody asked for are never read.

Errors name the file, and where there is one the row (the header is row 1, the first data row
row 2, as a clerk sees it in Excel) and the field; they never quote a row of the file, because
a message is printed and logged, and the file is the police's data.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from xueji_quality.errors import InputError
from xueji_quality.ingest.csv_reader import csv_header, detect_encoding
from xueji_quality.ingest.layout import normalize_header
from xueji_quality.ingest.xlsx_reader import cell_text

T = TypeVar("T")
_DONE = object()
BATCH_ROWS = 2_000_000
# Rows per batch when a file is read whole (Arrow's own batches are joined after).
WHOLE = 1 << 62
_NONE = np.zeros(0, dtype=np.int64)
FORMATS = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}


@dataclass(frozen=True)
class Columns:
    """The fields found in a file: ``table`` has one string column per field found (canonical
    names), ``rows`` the row number of each of its rows in the file."""

    table: pa.Table
    rows: np.ndarray
    file: str


def _pick(headers: list[str], aliases: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """Field -> position of the first header matching one of its aliases."""
    wanted = {normalize_header(a): f for f, names in aliases.items() for a in names}
    found: dict[str, int] = {}
    for position, header in enumerate(headers):
        field = wanted.get(normalize_header(str(header)))
        if field is not None and field not in found:
            found[field] = position
    return found


def _missing(file: str, found: dict[str, int], required: list[tuple[str, ...]], labels) -> None:
    """Each entry of ``required`` is a set of alternatives: one of them must be found."""
    for alternatives in required:
        if not any(field in found for field in alternatives):
            names = "或".join(f"“{labels[f]}”" for f in alternatives)
            raise InputError(file, f"缺少必需的表头：{names}")


Batch = tuple[pa.Table, np.ndarray]  # a table of rows and the row number of each in the file


def _numbered(tables: Iterator[pa.Table]) -> Iterator[Batch]:
    """Tables of consecutive data rows with their row numbers (the first data row is row 2)."""
    first = 2
    for table in tables:
        yield table, np.arange(first, first + table.num_rows, dtype=np.int64)
        first += table.num_rows


def _read_csv(path: Path, file: str, aliases, batch_rows: int):
    encoding, strict, _ = detect_encoding(path)
    if not strict:
        raise InputError(file, "文件含有无法解码的字节（应为 UTF-8 或 GB18030 编码）")
    headers, has_body, delimiter = csv_header(path, encoding, file)
    found = _pick(headers, aliases)
    names = [f"c{i}" for i in range(len(headers))]
    fields = [f for f, _ in sorted(found.items(), key=lambda kv: kv[1])]
    if not has_body or not found:
        return found, iter([(pa.table({f: pa.array([], pa.string()) for f in found}), _NONE)])
    invalid: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row.number if row.number is not None else -1)
        return "skip"

    options = {
        "read_options": pacsv.ReadOptions(
            column_names=names,
            skip_rows=1,
            use_threads=False,  # row numbers of invalid rows need a single thread
            encoding="utf8" if encoding.startswith("utf-8") else encoding,
        ),
        "parse_options": pacsv.ParseOptions(
            delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
        ),
        "convert_options": pacsv.ConvertOptions(
            include_columns=[names[i] for i in found.values()],
            column_types={names[i]: pa.string() for i in found.values()},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            null_values=[],
        ),
    }

    def tables() -> Iterator[pa.Table]:
        held: list[pa.RecordBatch] = []
        count = 0
        given = False
        try:
            for batch in pacsv.open_csv(path, **options):
                held.append(batch)
                count += batch.num_rows
                if count >= batch_rows:
                    yield _checked(held, invalid, fields, file)
                    held, count, given = [], 0, True
        except (pa.ArrowInvalid, UnicodeDecodeError) as error:
            # The message of a parse error quotes the row: name the problem, not the data.
            raise InputError(file, f"CSV 无法解析（{type(error).__name__}）") from None
        if held or invalid or not given:
            yield _checked(held, invalid, fields, file)

    return found, _numbered(tables())


def _checked(batches: list[pa.RecordBatch], invalid: list[int], fields, file: str) -> pa.Table:
    if invalid:
        raise InputError(file, "字段数与表头不一致", row=invalid[0])
    table = pa.Table.from_batches(batches) if batches else None
    if table is None:
        return pa.table({f: pa.array([], pa.string()) for f in fields})
    return table.rename_columns(fields)


def _read_xlsx(path: Path, file: str, aliases, batch_rows: int):
    from python_calamine import CalamineWorkbook

    if not zipfile.is_zipfile(path):
        raise InputError(file, "扩展名为 xlsx，但文件不是 Excel 工作簿（不是 zip 格式）")
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        visible = [
            m.name for m in workbook.sheets_metadata if str(m.visible).endswith(".Visible")
        ] or workbook.sheet_names
        cells = workbook.get_sheet_by_name(visible[0]).to_python(skip_empty_area=False)
    except Exception:  # calamine raises its own error types for damaged workbooks
        raise InputError(file, "Excel 工作簿已损坏，无法读取") from None
    header_index = next(
        (i for i, row in enumerate(cells) if any(cell_text(c).strip() for c in row)), None
    )
    if header_index is None:
        return {}, iter([(pa.table({}), _NONE)])
    found = _pick([cell_text(c) for c in cells[header_index]], aliases)
    body = cells[header_index + 1 :]
    keep = [i for i, row in enumerate(body) if any(cell_text(c).strip() for c in row)]
    columns = {}
    for field, position in found.items():
        values = [body[i][position] if position < len(body[i]) else "" for i in keep]
        columns[field] = pa.array(
            [v if isinstance(v, str) else cell_text(v) for v in values], pa.string()
        )
    rows = np.asarray(keep, dtype=np.int64) + header_index + 2
    # A sheet holds at most a million rows: it is read whole.
    return found, iter([(pa.table(columns), rows)])


def _read_parquet(path: Path, file: str, aliases, batch_rows: int):
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        found = _pick(list(names), aliases)
    except (OSError, pa.ArrowException):
        raise InputError(file, "无法读取 Parquet 文件（不是 Parquet 格式或已损坏）") from None
    for position in found.values():
        if pa.types.is_floating(parquet.schema_arrow.field(position).type):
            raise InputError(
                file, "这一列是小数类型，号码可能已被改写，请以文本导出", field=names[position]
            )
    wanted = [names[i] for i in found.values()]

    def tables() -> Iterator[pa.Table]:
        try:
            batches = parquet.iter_batches(batch_size=batch_rows, columns=wanted)
            for batch in batches:
                columns = {}
                for field, position in found.items():
                    column = batch.column(names[position])
                    if not (
                        pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
                    ):
                        column = pc.cast(column, pa.string())
                    columns[field] = pc.fill_null(column, "")
                yield pa.table(columns)
        except (OSError, pa.ArrowException):
            raise InputError(file, "无法读取 Parquet 文件（不是 Parquet 格式或已损坏）") from None

    return found, _numbered(tables())


READERS = {"csv": _read_csv, "xlsx": _read_xlsx, "parquet": _read_parquet}


def _opened(path: Path | str, aliases, required, labels, batch_rows: int):
    path = Path(path)
    file = path.name
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            file, f"不支持的文件格式 {path.suffix or '（无扩展名）'}：应为 CSV、XLSX 或 Parquet"
        )
    if not path.is_file():
        raise InputError(file, "文件不存在")
    if path.stat().st_size == 0:
        raise InputError(file, "文件为空（0 字节）")
    found, batches = READERS[kind](path, file, aliases, batch_rows)
    _missing(file, found, required, labels)
    return file, found, batches


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """The items of ``items``, each next one produced on a thread while the caller works on the
    one before (reading and decoding a file leave the interpreter free); at most two are held."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(next, items, _DONE)
        while True:
            ready = pending.result()
            if ready is _DONE:
                return
            pending = reader.submit(next, items, _DONE)
            yield ready
            del ready


def read_column_batches(
    path: Path | str,
    aliases: dict[str, tuple[str, ...]],
    required: list[tuple[str, ...]],
    labels: dict[str, str],
    batch_rows: int = BATCH_ROWS,
) -> Iterator[Columns]:
    """``read_columns`` of a file, a batch of about ``batch_rows`` rows at a time (CSV and
    Parquet are streamed; a sheet is read whole). The header is checked before the first batch
    is read."""
    file, found, batches = _opened(path, aliases, required, labels, batch_rows)

    def each() -> Iterator[Columns]:
        for table, rows in batches:
            yield Columns(table=_with_fields(table, found).combine_chunks(), rows=rows, file=file)

    return each()


def read_columns(
    path: Path | str,
    aliases: dict[str, tuple[str, ...]],
    required: list[tuple[str, ...]],
    labels: dict[str, str],
) -> Columns:
    """The fields of ``aliases`` found in the file at ``path`` (see the module docstring).

    ``required`` lists sets of alternative fields, one of each must be there; ``labels`` are the
    Chinese names used in messages.
    """
    file, found, batches = _opened(path, aliases, required, labels, WHOLE)
    parts = list(batches)
    if not parts:  # a Parquet file without rows
        fields = sorted(found, key=found.get)
        parts = [(pa.table({f: pa.array([], pa.string()) for f in fields}), _NONE)]
    table = pa.concat_tables([_with_fields(t, found) for t, _ in parts])
    rows = np.concatenate([r for _, r in parts])
    return Columns(table=table.combine_chunks(), rows=rows, file=file)


def _with_fields(table: pa.Table, found: dict[str, int]) -> pa.Table:
    """The table's columns in the order the fields appear in the file."""
    return table.select([f for f, _ in sorted(found.items(), key=lambda kv: kv[1])])
