"""Checks of a command's inputs that answer at once, before any flow, server or worker starts.

A run that cannot read its input should be refused in a second, not after Prefect's server has
started and the export has been half read. These checks read the head of each file only (the
first MiB of a CSV, of each member of an XLSX, the footer of a Parquet file), so they cost the
same for a roster of 100 rows and of 20 million. What they share with the run they take from
``ingest``: the list of export files and the names messages give them, the CSV encoding rules,
header reader and delimiter detection, the cell text of an XLSX header, and the header-to-field
mapping with its required headers (``schema.REQUIRED_HEADERS``), so a file that passes here has
headers the run reads the same way. Damage past the head (a corrupt block deep inside a large
file) is still found by the run, which stops with the same kind of message.

Only ingest's own imports (pandas, pyarrow) are loaded: never Prefect or Great Expectations.
"""

from __future__ import annotations

import codecs
import json
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from xml.etree import ElementTree

import pyarrow.parquet as pq

from xueji_quality.errors import InputError
from xueji_quality.ingest.csv_reader import csv_header
from xueji_quality.ingest.layout import column_layout
from xueji_quality.ingest.sources import FORMATS, find_exports, source_name
from xueji_quality.ingest.xlsx_reader import (
    PACKAGE_REL_NS,
    REL_NS,
    SHEET_NS,
    cell_position,
    cell_text,
)

HEAD_BYTES = 1 << 20
# Share of a text's first characters that may be control characters or undecodable bytes; a
# roster has almost none (a NUL or a stray GB18030 line is quarantined by the run, not refused).
BINARY_SHARE = 0.05
BINARY_SAMPLE_CHARS = 1 << 16
# A text whose NUL bytes are this share of its head, nearly all at even or all at odd offsets, is
# UTF-16 (every ASCII character carries a zero byte).
UTF16_NUL_SHARE = 0.05
UTF16_SAMPLE_BYTES = 4096
HEADERS_SHOWN = 8

OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# What a file's first bytes say it is, for the message when it is not what its extension says.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "zip 压缩包（xlsx 工作簿就是 zip 格式）"),
    (b"PK\x05\x06", "空的 zip 压缩包"),
    (OLE, "旧版 Office 文件（如 Excel 97-2003 的 .xls）或加了密码的工作簿"),
    (b"PAR1", "Parquet 文件"),
    (b"%PDF", "PDF 文档"),
    (b"\x89PNG", "PNG 图片"),
    (b"\xff\xd8\xff", "JPEG 图片"),
    (b"GIF8", "GIF 图片"),
    (b"\x1f\x8b", "gzip 压缩文件"),
    (b"Rar!", "RAR 压缩包"),
    (b"7z\xbc\xaf\x27\x1c", "7z 压缩包"),
    (b"SQLite format 3\x00", "SQLite 数据库"),
    (b"\x7fELF", "可执行程序"),
)

_SHEET = SHEET_NS
_REL = REL_NS
_PACKAGE_REL = PACKAGE_REL_NS
SHARED_STRINGS = "xl/sharedStrings.xml"


class OptionError(ValueError):
    """A command-line value that cannot work (a folder that cannot be written, a malformed code);
    the message names the option and the value."""


# ---------------------------------------------------------------- exports


def check_exports(inputs: Iterable[Path]) -> list[Path]:
    """The export files the run will read, each checked from its head; raise InputError naming
    the first file that cannot be read (and the row where there is one)."""
    paths = find_exports([Path(p) for p in inputs])
    used: set[str] = set()
    for path in paths:
        check_export(path, source_name(path, used))
    return paths


def check_export(path: Path, name: str) -> None:
    """One export file: it exists, is not empty, is in the format its extension names and carries
    the required headers. ``name`` is what messages call it (as the run does)."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        hint = "；请在 Excel 中另存为 .xlsx" if path.suffix.lower() in (".xls", ".et") else ""
        raise InputError(
            name,
            f"不支持的文件类型“{path.suffix or '无扩展名'}”（支持 csv、xlsx、parquet）{hint}",
        )
    if not path.is_file():
        raise InputError(name, "不是普通文件")
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as error:
        raise InputError(name, f"无法打开文件：{error.strerror or error}") from error
    if not head:
        raise InputError(name, "文件为空（0 字节）")
    {"csv": _check_csv, "xlsx": _check_xlsx, "parquet": _check_parquet}[kind](path, name, head)


def content_kind(head: bytes) -> str | None:
    """What the first bytes say a file is, in words; None when no known signature matches."""
    return next((kind for magic, kind in SIGNATURES if head.startswith(magic)), None)


def _decoded(head: bytes, encoding: str) -> str:
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(head)


def _binary_share(text: str) -> float:
    """Share of control characters (other than tab and line ends) and replacement characters."""
    sample = text[:BINARY_SAMPLE_CHARS]
    if not sample:
        return 0.0
    odd = sum(1 for c in sample if (c < " " and c not in "\t\n\r\f\v") or c == "\ufffd")
    return odd / len(sample)


def looks_like_text(head: bytes) -> bool:
    """Whether the head reads as text in one of the encodings a CSV export may have."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _utf16_without_bom(head):
        return True
    return min(_binary_share(_decoded(head, e)) for e in ("utf-8", "gb18030")) <= BINARY_SHARE


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 ("utf-16-le" or "utf-16-be") when the head is UTF-16 text without a byte order mark."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    sample = head[:UTF16_SAMPLE_BYTES]
    sample = sample[: len(sample) // 2 * 2]
    nul = sample.count(0)
    if len(sample) < 4 or nul < UTF16_NUL_SHARE * len(sample):
        return None
    at_odd = sample[1::2].count(0)
    if at_odd >= 0.9 * nul:
        return "utf-16-le"
    if nul - at_odd >= 0.9 * nul:
        return "utf-16-be"
    return None


def head_encoding(head: bytes, whole: bool) -> str:
    """The encoding ``ingest.csv_reader.detect_encoding`` chooses, judged from the head of the file.

    Where the whole-file rule could choose differently (a GB18030 body under an ASCII header),
    the header reads the same in either encoding, and the header is all this check reads.
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError:
        first_line = head.split(b"\n", 1)[0]
        try:
            header = first_line.decode("utf-8")
        except UnicodeDecodeError:
            return "gb18030"
        return "utf-8" if any(ord(c) > 0x7F for c in header) else "gb18030"
    return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"


def _check_csv(path: Path, name: str, head: bytes) -> None:
    kind = content_kind(head)
    if kind is not None:
        raise InputError(name, f"扩展名为 csv，但内容是{kind}，不是 CSV 文本（可能改过扩展名）")
    utf16 = _utf16_without_bom(head)
    if utf16 is not None:
        raise InputError(
            name,
            "是 UTF-16 编码的文本，但开头没有字节顺序标记（BOM），无法确定编码；"
            "请在 Excel 中另存为“CSV UTF-8（逗号分隔）”",
        )
    whole = len(head) < HEAD_BYTES
    encoding = head_encoding(head, whole)
    if _binary_share(_decoded(head, encoding)) > BINARY_SHARE:
        raise InputError(name, "不是 CSV 文本文件：内容是二进制数据（文件已损坏，或不是学籍导出）")
    headers, _, _ = csv_header(path, encoding, name)
    check_headers(name, headers, row=1)


def check_headers(name: str, headers: list[str], row: int | None) -> None:
    """The required headers are present (by the run's own alias mapping); the message lists the
    file's headers so a wrong file or a wrong header row shows at once."""
    try:
        column_layout(name, headers)
    except InputError as error:
        shown = [str(h).strip() for h in headers if str(h).strip()][:HEADERS_SHOWN]
        more = "等" if len([h for h in headers if str(h).strip()]) > HEADERS_SHOWN else ""
        found = f"（文件中的列：{'、'.join(shown)}{more}）" if shown else ""
        raise InputError(error.file, error.message + found, row=row) from None


# ---------------------------------------------------------------- XLSX


def _check_xlsx(path: Path, name: str, head: bytes) -> None:
    if not head.startswith(b"PK"):
        if head.startswith(OLE):
            raise InputError(
                name,
                "是旧版 Excel 97-2003（.xls）工作簿或加了密码的工作簿，不是 xlsx；"
                "请在 Excel 中另存为“Excel 工作簿(*.xlsx)”，不设密码",
            )
        kind = content_kind(head)
        if kind is None and looks_like_text(head):
            raise InputError(name, "不是有效的 Excel 文件（内容是文本，可能是改了扩展名的 CSV）")
        raise InputError(
            name, f"不是有效的 Excel 文件（内容是{kind or '无法识别的数据'}，不是 Excel 工作簿）"
        )
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(
            name, "Excel 工作簿已损坏或不完整（可能复制或下载时被截断），无法读取"
        ) from error
    with archive:
        members = {info.filename: info for info in archive.infolist()}
        if "xl/workbook.xml" not in members:
            raise InputError(
                name,
                "不是 Excel 工作簿：压缩包中没有 xl/workbook.xml（可能是 Word、WPS 文字或其他文件"
                "改了扩展名）",
            )
        heads = {member: _member_head(archive, info, name) for member, info in members.items()}
        sheet_name, member = _first_visible_sheet(heads, name)
        if member not in members:
            raise InputError(name, f"Excel 工作簿已损坏：找不到工作表“{sheet_name}”的数据")
        whole = members[member].file_size <= HEAD_BYTES
        header = _sheet_header(heads[member], whole, heads.get(SHARED_STRINGS), name, member)
    if header is None:
        if whole:
            raise InputError(name, f"工作表“{sheet_name}”为空，没有表头行")
        return  # the header lies past the head: the run reads it
    row, cells = header
    check_headers(name, cells, row=row)


def _member_head(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    """The first HEAD_BYTES of a member, decompressed; a member that fits is checked whole
    (zipfile compares its CRC at the end)."""
    try:
        with archive.open(info) as handle:
            return handle.read(HEAD_BYTES)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as error:
        raise InputError(
            name, f"Excel 工作簿已损坏，无法读取（{info.filename}：{error}）"
        ) from error
    except RuntimeError as error:  # an encrypted member
        raise InputError(name, f"Excel 工作簿加了密码，无法读取（{error}）") from error


def _xml(data: bytes, name: str, member: str) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise InputError(name, f"Excel 工作簿已损坏，无法读取（{member}：{error}）") from error


def _first_visible_sheet(heads: dict[str, bytes], name: str) -> tuple[str, str]:
    """(sheet name, zip member) of the sheet the run reads: the first visible one."""
    workbook = _xml(heads["xl/workbook.xml"], name, "xl/workbook.xml")
    sheets = list(workbook.iter(f"{_SHEET}sheet"))
    if not sheets:
        raise InputError(name, "Excel 工作簿中没有工作表")
    visible = [s for s in sheets if s.get("state") not in ("hidden", "veryHidden")] or sheets
    sheet = visible[0]
    relations_member = "xl/_rels/workbook.xml.rels"
    if relations_member not in heads:
        raise InputError(name, f"Excel 工作簿已损坏：缺少 {relations_member}")
    relations = _xml(heads[relations_member], name, relations_member)
    targets = {
        r.get("Id"): r.get("Target", "") for r in relations.iter(f"{_PACKAGE_REL}Relationship")
    }
    target = targets.get(sheet.get(f"{_REL}id"), "")
    member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return sheet.get("name", ""), member


def _cell_value(cell: ElementTree.Element) -> tuple[str, int | None]:
    """(text, None) of a cell, or ("", index) of a shared string still to be looked up."""
    kind = cell.get("t", "n")
    value = cell.find(f"{_SHEET}v")
    text = value.text if value is not None and value.text is not None else ""
    if kind == "s":
        return ("", int(text)) if text.strip().isdigit() else ("", None)
    if kind == "inlineStr":
        inline = cell.find(f"{_SHEET}is")
        return (_string_item(inline) if inline is not None else ""), None
    if kind == "b":
        return ("TRUE" if text == "1" else "FALSE" if text == "0" else text), None
    if kind == "n" and text:
        try:
            return cell_text(float(text)), None
        except ValueError:
            return text, None
    return text, None


def _string_item(item: ElementTree.Element) -> str:
    """Text of a shared or inline string: its runs, without the phonetic guide (rPh)."""
    parts = [t.text or "" for t in item.findall(f"{_SHEET}t")]
    parts += [t.text or "" for t in item.findall(f"{_SHEET}r/{_SHEET}t")]
    return "".join(parts)


def _pull(data: bytes, whole: bool, name: str, member: str):
    """Elements of an XML member's head as they end; a parse error is damage."""
    parser = ElementTree.XMLPullParser(events=("end",))
    step = 1 << 16
    try:
        for start in range(0, len(data), step):
            parser.feed(data[start : start + step])
            yield from (element for _, element in parser.read_events())
        if whole:
            parser.close()
            yield from (element for _, element in parser.read_events())
    except ElementTree.ParseError as error:
        raise InputError(name, f"Excel 工作簿已损坏，无法读取（{member}：{error}）") from error


def _sheet_header(
    sheet: bytes, whole: bool, shared: bytes | None, name: str, member: str
) -> tuple[int, list[str]] | None:
    """(row number, cell texts from column A) of the first row holding any text; None when the
    head holds no such row. The whole head is parsed, so damage inside it shows here."""
    candidates: list[tuple[int, dict[int, tuple[str, int | None]]]] = []
    row_count = 0
    for element in _pull(sheet, whole, name, member):
        if element.tag != f"{_SHEET}row":
            continue
        row_count += 1
        if len(candidates) < 20:
            number = int(element.get("r", row_count))
            cells: dict[int, tuple[str, int | None]] = {}
            for position, cell in enumerate(element.iter(f"{_SHEET}c")):
                reference = cell.get("r")
                column = cell_position(reference)[1] if reference else position
                value = _cell_value(cell)
                if value[0].strip() or value[1] is not None:
                    cells[column] = value
            if cells:
                candidates.append((number, cells))
        element.clear()
    if not candidates:
        return None
    wanted = {i for _, cells in candidates for _, i in cells.values() if i is not None}
    strings = _shared_strings(shared, max(wanted) if wanted else -1, name)
    for number, cells in candidates:
        texts = [""] * (max(cells) + 1)
        for column, (text, index) in cells.items():
            if index is not None:
                if index >= len(strings):
                    return None  # the string lies past the head: the run reads it
                text = strings[index]
            texts[column] = text
        if any(t.strip() for t in texts):
            return number, texts
    return None


def _shared_strings(data: bytes | None, last: int, name: str) -> list[str]:
    """Shared strings 0..last, as many as the head holds."""
    strings: list[str] = []
    if data is None or last < 0:
        return strings
    for element in _pull(data, False, name, SHARED_STRINGS):
        if element.tag == f"{_SHEET}si":
            strings.append(_string_item(element))
            element.clear()
            if len(strings) > last:
                break
    return strings


# ---------------------------------------------------------------- Parquet


def _check_parquet(path: Path, name: str, head: bytes) -> None:
    if not head.startswith(b"PAR1"):
        kind = content_kind(head)
        if kind is None and looks_like_text(head):
            raise InputError(name, "不是有效的 Parquet 文件（内容是文本，可能是改了扩展名的 CSV）")
        raise InputError(name, f"不是有效的 Parquet 文件（内容是{kind or '无法识别的数据'}）")
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(size - 8, 0))
        tail = handle.read(8)
    if size < 12 or tail[4:] != b"PAR1":
        raise InputError(name, "Parquet 文件不完整（结尾缺少 PAR1 标记，可能复制或下载时被截断）")
    if int.from_bytes(tail[:4], "little") + 12 > size:
        raise InputError(name, "Parquet 文件已损坏（文件结构信息的长度不对），无法读取")
    try:
        with pq.ParquetFile(path) as parquet:
            columns = list(parquet.schema_arrow.names)
    except Exception as error:  # pyarrow raises several types for damaged footers
        raise InputError(name, f"Parquet 文件已损坏，无法读取文件结构：{error}") from error
    check_headers(name, columns, row=None)


# ---------------------------------------------------------------- folders and settings


def check_output_folder(folder: Path, option: str = "--out") -> None:
    """``folder`` can hold the outputs: it is a writable folder, or can be created (its nearest
    existing parent is a writable folder). Nothing is left behind by the check."""
    folder = Path(folder)
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing == folder and not folder.is_dir():
        raise OptionError(f"{option} {folder}：已有同名文件，不是文件夹")
    if not existing.is_dir():
        raise OptionError(f"{option} {folder}：无法创建，{existing} 是文件，不是文件夹")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        where = "" if existing == folder else f"，上级文件夹 {existing} "
        raise OptionError(
            f"{option} {folder}：无法写入{where}（{error.strerror or error}）"
        ) from error


def check_folder(folder: Path, option: str, what: str) -> None:
    """An existing folder the command reads (an inbox, a run's folder)."""
    folder = Path(folder)
    if not folder.exists():
        raise OptionError(f"{option} {folder}：{what}不存在")
    if not folder.is_dir():
        raise OptionError(f"{option} {folder}：{what}应为文件夹，这是一个文件")


def check_json_file(path: Path) -> dict:
    """A settings file that exists and holds a JSON object (row and column named when not)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "文件不存在" if not path.exists() else "不是普通文件")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise InputError(str(path), "不是 UTF-8 编码的文本") from error
    except json.JSONDecodeError as error:
        raise InputError(
            str(path), f"不是有效的 JSON（第 {error.colno} 列：{error.msg}）", row=error.lineno
        ) from error
    if not isinstance(value, dict):
        raise InputError(str(path), "内容应为 JSON 对象（{…}）")
    return value


def check_suites(folder: Path) -> None:
    """A rule suite folder holding at least one suite file, each a JSON object."""
    check_folder(folder, "--suites", "规则套件目录")
    files = sorted(Path(folder).glob("*.json"))
    if not files:
        raise OptionError(f"--suites {folder}：文件夹中没有规则套件文件（*.json）")
    for path in files:
        check_json_file(path)


def check_counties(counties: Iterable[str], province: str) -> None:
    """County codes of ``--counties``: six digits within the province."""
    for code in counties:
        if len(code) != 6 or not code.isdigit():
            raise OptionError(f"--counties 中的“{code}”不是 6 位区县代码（如 440106）")
        if not code.startswith(province):
            raise OptionError(f"--counties 中的“{code}”不属于省级代码 {province} 的省份")
