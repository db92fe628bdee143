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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from xueji_quality.errors import InputError
from xueji_quality.ingest.csv_reader import csv_header, detect_encoding
from xueji_quality.ingest.layout import normalize_header
from xueji_quality.ingest.xlsx_reader import cell_text

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


def _read_csv(path: Path, file: str, aliases) -> tuple[dict[str, int], pa.Table, np.ndarray]:
    encoding, strict, _ = detect_encoding(path)
    if not strict:
        raise InputError(file, "文件含有无法解码的字节（应为 UTF-8 或 GB18030 编码）")
    headers, has_body, delimiter = csv_header(path, encoding, file)
    found = _pick(headers, aliases)
    names = [f"c{i}" for i in range(len(headers))]
    if not has_body or not found:
        return found, pa.table({f: pa.array([], pa.string()) for f in found}), np.zeros(0, int)
    invalid: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row.number if row.number is not None else -1)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=names,
                skip_rows=1,
                use_threads=False,  # row numbers of invalid rows need a single thread
                encoding="utf8" if encoding.startswith("utf-8") else encoding,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=[names[i] for i in found.values()],
                column_types={names[i]: pa.string() for i in found.values()},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        # The message of a parse error quotes the row: name the problem, not the data.
        raise InputError(file, f"CSV 无法解析（{type(error).__name__}）") from None
    if invalid:
        raise InputError(file, "字段数与表头不一致", row=invalid[0])
    table = table.rename_columns([f for f, _ in sorted(found.items(), key=lambda kv: kv[1])])
    return found, table, np.arange(2, table.num_rows + 2, dtype=np.int64)


def _read_xlsx(path: Path, file: str, aliases) -> tuple[dict[str, int], pa.Table, np.ndarray]:
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
        return {}, pa.table({}), np.zeros(0, int)
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
    return found, pa.table(columns), rows


def _read_parquet(path: Path, file: str, aliases) -> tuple[dict[str, int], pa.Table, np.ndarray]:
    try:
        parquet = pq.ParquetFile(path)
        found = _pick(list(parquet.schema_arrow.names), aliases)
        names = parquet.schema_arrow.names
        table = parquet.read(columns=[names[i] for i in found.values()])
    except (OSError, pa.ArrowException):
        raise InputError(file, "无法读取 Parquet 文件（不是 Parquet 格式或已损坏）") from None
    columns = {}
    for field, position in found.items():
        column = table.column(names[position])
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            if pa.types.is_floating(column.type):
                raise InputError(
                    file, "这一列是小数类型，号码可能已被改写，请以文本导出", field=names[position]
                )
            column = pc.cast(column, pa.string())
        columns[field] = pc.fill_null(column, "")
    return found, pa.table(columns), np.arange(2, table.num_rows + 2, dtype=np.int64)


READERS = {"csv": _read_csv, "xlsx": _read_xlsx, "parquet": _read_parquet}


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
    found, table, rows = READERS[kind](path, file, aliases)
    _missing(file, found, required, labels)
    return Columns(table=table.combine_chunks(), rows=rows, file=file)
