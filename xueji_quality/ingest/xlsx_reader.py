"""Reading XLSX exports: the first visible sheet read by calamine, Excel error values (#N/A …)
put back from the sheet's XML, and every cell turned back into the text it displayed."""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd

from xueji_quality import normalize
from xueji_quality.errors import InputError
from xueji_quality.files import cached_sha256
from xueji_quality.ingest.layout import FileBlock, Layout
from xueji_quality.ingest.sources import CHUNK_BYTES

STRING = normalize.STRING
XLSX_BLOCK_ROWS = 100_000
SHEET_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PACKAGE_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"


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


def cell_position(reference: str) -> tuple[int, int]:
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
            for r in relations.iter(f"{PACKAGE_REL_NS}Relationship")
        }
        target = next(
            (
                targets.get(sheet.get(f"{REL_NS}id"), "")
                for sheet in workbook.iter(f"{SHEET_NS}sheet")
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
                if element.tag != f"{SHEET_NS}c":
                    continue
                value = element.find(f"{SHEET_NS}v")
                if element.get("t") == "e" and element.get("r") and value is not None:
                    found[cell_position(element.get("r", ""))] = value.text or ""
                element.clear()
        return found


def read_xlsx(path: Path, layout_of, info: dict, quarantine: list[dict]) -> Iterator[FileBlock]:
    from python_calamine import CalamineWorkbook

    file = info["name"]
    info["sha256"] = cached_sha256(path)
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
    layout: Layout = layout_of(header_cells)
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
        yield FileBlock(frame, rows)
