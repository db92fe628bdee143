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
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from xueji_quality import normalize, schema
from xueji_quality.errors import InputError
from xueji_quality.files import sha256_file

STRING = normalize.STRING
CHANGE_FIELDS = ("field", "kind", "original")
FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}
RAW_LIMIT = 2000
CHUNK_BYTES = 8 << 20
CSV_BLOCK_BYTES = 16 << 20
XLSX_BLOCK_ROWS = 100_000
PARQUET_BATCH_ROWS = 200_000
# A file is taken as UTF-8 with damaged lines when its valid non-ASCII characters outnumber the
# undecodable bytes this many times (GB18030 text read as UTF-8 is almost all undecodable).
MOSTLY_UTF8_RATIO = 20
ROW_COLUMNS_DTYPES = {"record_id": STRING, "source_file": STRING, "source_row": "int64"}
# Tried in this order on the header line; the first that splits it is the file's delimiter.
DELIMITERS = (",", "\t", ";", "|")
DELIMITER_NAMES = {",": "逗号", "\t": "制表符", ";": "分号", "|": "竖线"}
RESERVED = set(schema.ROW_COLUMNS) | set(schema.FIELDS) | {"grade_level"}

FIELD_LABELS = {field: "/".join(aliases[:3]) for field, aliases in schema.HEADER_ALIASES.items()}


@dataclass
class Staged:
    roster: pd.DataFrame
    quarantine: pd.DataFrame
    normalizations: pd.DataFrame
    files: list[dict]
    rows_read: int


@dataclass
class _Layout:
    """How one file's columns map to the roster."""

    file: str
    columns: list[str]  # the file's headers, duplicates renamed "<header>#2"
    targets: list[str]  # roster column of each file column (canonical field or header)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Block:
    frame: pd.DataFrame  # the file's columns (by _Layout.columns), all string
    rows: np.ndarray  # source_row of each frame row


# ---------------------------------------------------------------- finding and hashing files


def find_exports(inputs: list[Path]) -> list[Path]:
    """Export files named by ``inputs``: files as given, folders expanded (recursively) to the
    csv/xlsx/parquet files inside, sorted. Hidden files and Excel lock files are skipped."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if not item.exists():
            raise InputError(str(item), "路径不存在")
        if item.is_dir():
            inside = sorted(
                p
                for p in item.rglob("*")
                if p.is_file()
                and p.suffix.lower() in FORMATS
                and not any(part.startswith((".", "~$")) for part in p.relative_to(item).parts)
            )
            if not inside:
                raise InputError(str(item), "文件夹中没有可读取的导出文件（csv、xlsx、parquet）")
            found.extend(inside)
        else:
            found.append(item)
    unique: list[Path] = []
    seen: set[Path] = set()
    for path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


# ---------------------------------------------------------------- headers


def normalize_header(text: str) -> str:
    """Header text as matched against aliases: NFKC, BOM and every blank removed."""
    return re.sub(normalize.BLANK_CHARS, "", unicodedata.normalize("NFKC", str(text)))


def _layout(file: str, headers: list[str]) -> _Layout:
    columns: list[str] = []
    targets: list[str] = []
    notes: list[str] = []
    seen_headers: dict[str, int] = {}
    taken: set[str] = set()
    for position, raw in enumerate(headers, start=1):
        header = str(raw).replace("\ufeff", "").strip()
        if not header:
            header = f"列{position}"
            notes.append(f"第 {position} 列没有表头，记为“{header}”")
        count = seen_headers.get(header, 0) + 1
        seen_headers[header] = count
        column = header if count == 1 else f"{header}#{count}"
        if count > 1:
            notes.append(f"表头“{header}”重复，第 {count} 次出现的列记为“{column}”")
        field_name = schema.ALIAS_TO_FIELD.get(normalize_header(header)) if count == 1 else None
        if field_name is not None and field_name in taken:
            notes.append(f"列“{header}”与前面的列同为“{schema.FIELDS[field_name]}”，按原表头保留")
            field_name = None
        if field_name is not None:
            target = field_name
        else:
            target = column
            while target in RESERVED or target in taken:
                target = f"{target}#原列"
        taken.add(target)
        columns.append(column)
        targets.append(target)
    missing = [f for f in schema.REQUIRED_HEADERS if f not in taken]
    if missing:
        names = "、".join(f"“{FIELD_LABELS[f]}”" for f in missing)
        raise InputError(file, f"缺少必需的表头：{names}")
    absent = [schema.FIELDS[f] for f in schema.FIELDS if f not in taken]
    if absent:
        notes.append(f"文件中没有这些字段（按空值处理）：{'、'.join(absent)}")
    return _Layout(file=file, columns=columns, targets=targets, notes=notes)


# ---------------------------------------------------------------- CSV


class _Decoding(io.RawIOBase):
    """A byte stream decoded with replacement characters and re-encoded as UTF-8."""

    def __init__(self, path: Path, encoding: str) -> None:
        self._handle = path.open("rb")
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while not self._pending and not self._done:
            chunk = self._handle.read(CHUNK_BYTES)
            self._done = not chunk
            self._pending = self._decoder.decode(chunk, final=self._done).encode("utf-8")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        self._handle.close()
        super().close()


def detect_encoding(path: Path) -> tuple[str, bool, str]:
    """(encoding, strict, sha256) of a CSV file.

    ``strict`` is False when the file must be read with replacement characters (some bytes are
    undecodable in the chosen encoding).
    """
    digest = hashlib.sha256()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    utf8_ok = True
    bom = None
    first = b""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            if bom is None:
                bom = chunk.startswith(codecs.BOM_UTF8)
                first = chunk[: 1 << 16]
            digest.update(chunk)
            if utf8_ok:
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError:
                    utf8_ok = False
        if utf8_ok:
            try:
                utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8_ok = False
    sha = digest.hexdigest()
    if utf8_ok:
        return ("utf-8-sig" if bom else "utf-8"), True, sha
    if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", True, sha  # Excel's "Unicode text"; damage shows when it is read
    header = first.split(b"\n", 1)[0]
    try:
        header_text = header.decode("utf-8")
    except UnicodeDecodeError:
        header_text = ""
    if any(ord(c) > 0x7F for c in header_text):
        # Chinese headers that are valid UTF-8: GB18030 text almost never is, so the file is
        # UTF-8 with damaged lines, however few its other non-ASCII characters.
        return "utf-8", False, sha
    loose = codecs.getincrementaldecoder("utf-8")(errors="replace")
    gb = codecs.getincrementaldecoder("gb18030")()
    gb_ok = True
    bad = good = 0
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(CHUNK_BYTES)
            final = not chunk
            text = loose.decode(chunk, final=final)
            bad += text.count("\ufffd")
            code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
            good += int(np.count_nonzero(code_points > 0x7F))
            if gb_ok:
                try:
                    gb.decode(chunk, final=final)
                except UnicodeDecodeError:
                    gb_ok = False
            if final:
                break
    good -= bad
    if good >= MOSTLY_UTF8_RATIO * bad:
        return "utf-8", False, sha
    return "gb18030", gb_ok, sha


def _first_record(text: str, delimiter: str, file: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error as error:
        raise InputError(file, f"表头行无法解析：{error}", row=1) from error


def _csv_header(path: Path, encoding: str, file: str) -> tuple[list[str], bool, str]:
    """The header row, whether anything follows it, and the delimiter.

    The delimiter is the comma unless the header holds no comma and splits on a tab (Excel's
    "Unicode text"), a semicolon (Excel in European locales) or a vertical bar. Lines may end
    in CRLF, LF or a lone CR (old Mac exports).
    """
    size = path.stat().st_size
    if size == 0:
        raise InputError(file, "文件为空（0 字节）")
    with path.open("rb") as handle:
        head = handle.read(1 << 20)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head).lstrip("\ufeff")
    delimiter = ","
    for candidate in DELIMITERS:
        if len(_first_record(text, candidate, file)) > 1:
            delimiter = candidate
            break
    first = _first_record(text, delimiter, file)
    if not any(cell.strip() for cell in first):
        raise InputError(file, "没有表头行（第 1 行为空）")
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    next(records)
    try:
        has_body = size > len(head) or any(any(cell.strip() for cell in row) for row in records)
    except csv.Error:  # a damaged line after the header: pyarrow reads and quarantines it
        has_body = True
    return first, has_body, delimiter


def _read_csv(path: Path, layout_of, info: dict, quarantine: list[dict]) -> Iterator[_Block]:
    file = info["name"]
    encoding, strict, info["sha256"] = detect_encoding(path)
    info["encoding"] = encoding if strict else f"{encoding}（含无法解码的字节）"
    headers, has_body, delimiter = _csv_header(path, encoding, file)
    if delimiter != ",":
        info["notes"].append(f"分隔符为“{DELIMITER_NAMES[delimiter]}”")
    layout: _Layout = layout_of(headers)
    if not has_body:
        return
    invalid: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        number = row.number if row.number is not None else -1
        invalid.append(number)
        quarantine.append(
            {
                "source_file": file,
                "source_row": number,
                "field": None,
                "reason": f"字段数为 {row.actual_columns}，表头为 {row.expected_columns} 列",
                "raw": row.text[:RAW_LIMIT],
            }
        )
        return "skip"

    source: object = path if strict else _Decoding(path, encoding)
    read_options = pacsv.ReadOptions(
        column_names=layout.columns,
        skip_rows=1,
        block_size=CSV_BLOCK_BYTES,
        use_threads=False,  # the invalid-row handler gets row numbers only single-threaded
        encoding="utf8" if not strict or encoding.startswith("utf-8") else encoding,
    )
    parse_options = pacsv.ParseOptions(
        delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
    )
    convert_options = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in layout.columns},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        null_values=[],
    )
    try:
        reader = pacsv.open_csv(
            source,
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
    except pa.ArrowInvalid as error:
        if "Empty CSV file" in str(error):
            return
        raise InputError(file, f"无法读取 CSV：{error}") from error
    next_row = 2
    first_pending = 0  # invalid rows are reported in file order; earlier ones are settled
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (pa.ArrowInvalid, UnicodeDecodeError) as error:
            raise InputError(file, f"CSV 解析失败：{error}", row=next_row) from error
        # The rows of this batch are the first ``count`` numbers from next_row that pyarrow did
        # not report as invalid.
        count = batch.num_rows
        pending = np.asarray(invalid[first_pending:], dtype=np.int64)
        candidates = np.arange(next_row, next_row + count + len(pending), dtype=np.int64)
        rows = candidates[~np.isin(candidates, pending)][:count]
        if count:
            next_row = int(rows[-1]) + 1
        while first_pending < len(invalid) and invalid[first_pending] < next_row:
            first_pending += 1
        frame = batch.to_pandas(types_mapper={pa.string(): STRING}.get)
        frame.columns = layout.columns
        yield _Block(frame.astype(STRING), rows)
    if isinstance(source, _Decoding):
        source.close()


# ---------------------------------------------------------------- XLSX


def cell_text(value: object) -> str:
    """The text an Excel cell displayed, as near as the stored value tells."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer():
            if abs(value) < 1e15:
                return str(int(value))
            # Excel keeps 15 significant digits; repr gives them back without binary noise.
            return format(Decimal(repr(value)), "f")
        return format(value, ".15g")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if value is None:
        return ""
    return str(value)


_SHEET_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PACKAGE_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"


def _cell_position(reference: str) -> tuple[int, int]:
    """(row, column), 0-based, of an A1-style reference."""
    letters = reference.rstrip("0123456789")
    column = 0
    for letter in letters:
        column = column * 26 + ord(letter.upper()) - ord("A") + 1
    return int(reference[len(letters) :]) - 1, column - 1


def error_cells(path: Path, sheet_name: str) -> dict[tuple[int, int], str]:
    """Excel error values (#N/A, #VALUE!, #REF! …) of a sheet by (row, column), 0-based.

    calamine reads an error cell as empty; the clerk saw "#N/A" in it, and the problem list must
    say so rather than report a value as missing. The sheet's XML is searched first and parsed
    only when it holds an error cell, so ordinary workbooks cost one decompression.
    """
    with zipfile.ZipFile(path) as archive:
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        relations = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
        targets = {
            r.get("Id"): r.get("Target", "")
            for r in relations.iter(f"{_PACKAGE_REL_NS}Relationship")
        }
        target = next(
            (
                targets.get(sheet.get(f"{_REL_NS}id"), "")
                for sheet in workbook.iter(f"{_SHEET_NS}sheet")
                if sheet.get("name") == sheet_name
            ),
            "",
        )
        member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        if member not in archive.namelist():
            return {}
        tail = b""
        with archive.open(member) as handle:
            while chunk := handle.read(CHUNK_BYTES):
                if b't="e"' in tail + chunk:
                    break
                tail = chunk[-8:]
            else:
                return {}
        found: dict[tuple[int, int], str] = {}
        with archive.open(member) as handle:
            for _, element in ElementTree.iterparse(handle):
                if element.tag != f"{_SHEET_NS}c":
                    continue
                value = element.find(f"{_SHEET_NS}v")
                if element.get("t") == "e" and element.get("r") and value is not None:
                    found[_cell_position(element.get("r", ""))] = value.text or ""
                element.clear()
        return found


def _read_xlsx(path: Path, layout_of, info: dict, quarantine: list[dict]) -> Iterator[_Block]:
    from python_calamine import CalamineWorkbook

    file = info["name"]
    info["sha256"] = sha256_file(path)
    info["encoding"] = None
    if not zipfile.is_zipfile(path):
        raise InputError(file, "扩展名为 xlsx，但文件不是 Excel 工作簿（不是 zip 格式）")
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        visible = [
            m.name for m in workbook.sheets_metadata if str(m.visible).endswith(".Visible")
        ] or workbook.sheet_names
        sheet = workbook.get_sheet_by_name(visible[0])
        cells = sheet.to_python(skip_empty_area=False)
    except Exception as error:  # calamine raises its own error types for damaged workbooks
        raise InputError(file, f"Excel 工作簿已损坏，无法读取：{error}") from error
    try:
        errors = error_cells(path, sheet.name)
    except (KeyError, OSError, ElementTree.ParseError, zipfile.BadZipFile) as error:
        raise InputError(file, f"Excel 工作簿已损坏，无法读取：{error}") from error
    for (row_index, column_index), text in errors.items():
        if row_index < len(cells) and column_index < len(cells[row_index]):
            cells[row_index][column_index] = text
    if len(workbook.sheet_names) > 1:
        info["notes"].append(f"工作簿有 {len(workbook.sheet_names)} 个工作表，只读取“{sheet.name}”")
    header_index = next(
        (i for i, row in enumerate(cells) if any(cell_text(c).strip() for c in row)), None
    )
    if header_index is None:
        raise InputError(file, "工作表为空，没有表头行")
    header_cells = [cell_text(c) for c in cells[header_index]]
    while header_cells and not header_cells[-1].strip():
        header_cells.pop()
    width = len(header_cells)
    body = cells[header_index + 1 :]
    if any(len(row) > width and any(cell_text(c).strip() for c in row[width:]) for row in body):
        # Data beyond the last header: keep it under generated names rather than drop it.
        width = max(len(row) for row in body)
        header_cells += [""] * (width - len(header_cells))
    layout: _Layout = layout_of(header_cells)
    del header_cells
    for start in range(0, len(body), XLSX_BLOCK_ROWS):
        part = body[start : start + XLSX_BLOCK_ROWS]
        texts = [[cell_text(c) for c in row[:width]] + [""] * (width - len(row)) for row in part]
        keep = [i for i, row in enumerate(texts) if any(t.strip() for t in row)]
        rows = np.asarray(keep, dtype=np.int64) + start + header_index + 2
        columns = list(zip(*[texts[i] for i in keep], strict=True)) if keep else [()] * width
        frame = pd.DataFrame(
            {
                c: pd.array(list(v), dtype=STRING)
                for c, v in zip(layout.columns, columns, strict=True)
            }
        )
        yield _Block(frame, rows)


# ---------------------------------------------------------------- Parquet


def _arrow_text(column: pa.ChunkedArray | pa.Array) -> pd.Series:
    """A Parquet column as text ('' for nulls); integral floats as integer text."""
    if pa.types.is_floating(column.type):
        values = pd.Series(column.to_numpy(zero_copy_only=False), dtype="float64")
        text = pd.Series(column.cast(pa.string()).to_pandas(), dtype=STRING)
        integral = values.notna() & np.isfinite(values) & (values == np.floor(values))
        small = integral & (values.abs() < 1e15)
        text[small] = values[small].astype("int64").astype(str).astype(STRING)
        big = integral & ~small
        if big.any():
            text[big] = [cell_text(float(v)) for v in values[big]]
        return text.fillna("")
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        cast = column
    else:
        try:
            cast = column.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            cast = pa.array(
                [None if v is None else str(v) for v in column.to_pylist()], pa.string()
            )
    return pd.Series(cast.to_pandas(), dtype=STRING).fillna("")


def _read_parquet(path: Path, layout_of, info: dict, quarantine: list[dict]) -> Iterator[_Block]:
    file = info["name"]
    info["sha256"] = sha256_file(path)
    info["encoding"] = None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for files that are not Parquet
        raise InputError(file, f"无法打开 Parquet 文件：{error}") from error
    layout: _Layout = layout_of(list(parquet.schema_arrow.names))
    next_row = 2
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            frame = pd.DataFrame(
                {c: _arrow_text(batch.column(i)).to_numpy() for i, c in enumerate(layout.columns)}
            ).astype(STRING)
            rows = np.arange(next_row, next_row + batch.num_rows, dtype=np.int64)
            next_row += batch.num_rows
            yield _Block(frame, rows)
    except (OSError, pa.ArrowException) as error:
        raise InputError(file, f"Parquet 文件已损坏，无法读取：{error}", row=next_row) from error


READERS = {"csv": _read_csv, "xlsx": _read_xlsx, "parquet": _read_parquet}


# ---------------------------------------------------------------- staging a block


def _joined(frame: pd.DataFrame) -> pd.Series:
    """Each row's values joined with commas (the quarantine's raw text)."""
    if frame.shape[1] == 0:
        return pd.Series("", index=frame.index, dtype=STRING)
    text = frame.iloc[:, 0].fillna("")
    for column in frame.columns[1:]:
        text = text + "," + frame[column].fillna("")
    return text.str.slice(0, RAW_LIMIT)


def _row_problems(frame: pd.DataFrame, layout: _Layout) -> pd.Series:
    """Why each row cannot be staged as read (<NA> where it can)."""
    reason = pd.Series(pd.NA, index=frame.index, dtype=STRING)
    if frame.empty:
        return reason
    undecodable = np.zeros(len(frame), dtype=bool)
    nul = np.zeros(len(frame), dtype=bool)
    header_hits = np.zeros(len(frame), dtype=np.int64)
    for column in frame.columns:
        values = frame[column]
        odd = normalize.contains(values, "[\ufffd\x00]", regex=True)
        if odd.any():
            undecodable |= normalize.contains(values, "\ufffd")
            nul |= normalize.contains(values, "\x00")
        header = re.sub(r"#\d+$", "", column)
        arrow = pa.array(values.array)
        same = pc.or_(pc.equal(arrow, header), pc.equal(arrow, normalize_header(header)))
        header_hits += pc.fill_null(same, False).to_numpy(zero_copy_only=False)
    repeated = header_hits >= max(2, (len(frame.columns) + 1) // 2)
    reason[repeated] = "重复的表头行"
    reason[nul] = "行内含 NUL 字节（\\0），文件可能已损坏"
    reason[undecodable] = "无法解码的字节（文件编码混杂或已损坏）"
    return reason


def _stage_block(
    block: _Block, layout: _Layout, province: str, offset: int
) -> tuple[pd.DataFrame, list[pd.DataFrame], pd.DataFrame]:
    """(staged rows, quarantine parts, changes with ``row`` = run-wide staged position)."""
    frame = block.frame
    frame.index = pd.RangeIndex(len(frame))
    reason = _row_problems(frame, layout)
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
                    "raw": _joined(frame[quarantined]).to_numpy(),
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


def empty_quarantine() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series([], dtype=STRING) for c in schema.QUARANTINE_COLUMNS})
    return frame.astype({"source_row": "int64"})


def _typed_quarantine(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[list(schema.QUARANTINE_COLUMNS)]
    return frame.astype({c: "int64" if c == "source_row" else STRING for c in frame.columns})


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


def _source_name(path: Path, used: set[str]) -> str:
    """The file's name, made unique in the run by its parent folder when two files share it."""
    for candidate in (path.name, f"{path.parent.name}/{path.name}", str(path)):
        if candidate not in used:
            used.add(candidate)
            return candidate
    used.add(str(path.resolve()))
    return str(path.resolve())


@dataclass
class Block:
    """One staged block of a file: rows staged, rows quarantined, normalisations (``row`` is the
    run-wide staged position of the changed row)."""

    roster: pd.DataFrame
    quarantine: list[pd.DataFrame]
    changes: pd.DataFrame


def staged_blocks(
    paths: list[Path], province: str, files: list[dict], extra: list[str]
) -> Iterator[Block]:
    """Stage every export block by block (a block is a few MB of a file).

    Appends each file's info to ``files`` once it is read, and the roster columns that are not
    canonical fields (the files' own extra headers) to ``extra``. Rows keep run order: files in
    the order given, rows in file order; the quarantine of rows the reader could not split comes
    with the file's last block.
    """
    used_names: set[str] = set()
    offset = 0
    for path in map(Path, paths):
        name = _source_name(path, used_names)
        kind = FORMATS.get(path.suffix.lower())
        if kind is None:
            raise InputError(
                name, f"不支持的文件类型“{path.suffix or '无扩展名'}”（支持 csv、xlsx、parquet）"
            )
        if not path.is_file():
            raise InputError(name, "文件不存在")
        info: dict = {"path": str(path), "name": name, "format": kind, "notes": []}
        holder: dict[str, _Layout] = {}

        def layout_of(headers: list[str], name: str = name, holder: dict = holder) -> _Layout:
            holder["layout"] = _layout(name, headers)
            return holder["layout"]

        bad_rows: list[dict] = []
        read = staged_count = quarantined_count = 0
        for block in READERS[kind](path, layout_of, info, bad_rows):
            layout = holder["layout"]
            staged, parts, changes = _stage_block(block, layout, province, offset)
            staged["grade_level"] = normalize.grade_levels(staged["grade"])
            read += len(block.frame)
            staged_count += len(staged)
            quarantined_count += sum(len(p) for p in parts)
            offset += len(staged)
            yield Block(staged, [_typed_quarantine(p) for p in parts], changes)
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
                [_typed_quarantine(pd.DataFrame(bad_rows))],
                normalize.empty_changes(),
            )


def sort_quarantine(quarantine_parts: list[pd.DataFrame], files: list[dict]) -> pd.DataFrame:
    """The run's quarantine in run order: files as given, rows in file order."""
    quarantine = (
        pd.concat(quarantine_parts, ignore_index=True) if quarantine_parts else empty_quarantine()
    )
    file_order = {info["name"]: i for i, info in enumerate(files)}
    return quarantine.sort_values(
        ["source_file", "source_row"],
        key=lambda c: c.map(file_order) if c.name == "source_file" else c,
        kind="stable",
    ).reset_index(drop=True)


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
