"""Reading CSV exports: the encoding detected (strict UTF-8 with or without BOM, else GB18030,
else read with replacement characters), the delimiter and header found, and the body parsed by
pyarrow in blocks, every column as text, with rows the parser cannot split quarantined."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from xueji_quality import normalize
from xueji_quality.errors import InputError
from xueji_quality.files import known_sha256
from xueji_quality.ingest.layout import FileBlock, Layout
from xueji_quality.ingest.quarantine import RAW_LIMIT
from xueji_quality.ingest.sources import CHUNK_BYTES

STRING = normalize.STRING
CSV_BLOCK_BYTES = 16 << 20
# A file is taken as UTF-8 with damaged lines when its valid non-ASCII characters outnumber the
# undecodable bytes this many times (GB18030 text read as UTF-8 is almost all undecodable).
MOSTLY_UTF8_RATIO = 20
# Tried in this order on the header line; the first that splits it is the file's delimiter.
DELIMITERS = (",", "\t", ";", "|")
DELIMITER_NAMES = {",": "逗号", "\t": "制表符", ";": "分号", "|": "竖线"}


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


def _whole_characters(data: bytes) -> tuple[bytes, bytes]:
    """``data`` cut before the last UTF-8 sequence if its end may have cut it short, and the
    rest (checked with the next chunk, or on its own at the end of the file)."""
    end = len(data)
    at = end - 1
    while at >= max(0, end - 3) and data[at] & 0xC0 == 0x80:
        at -= 1
    if at >= 0 and data[at] >= 0xC0:
        return data[:at], data[at:]
    return data, b""


def _valid_utf8(data: bytes) -> bool:
    """Arrow's UTF-8 check over the bytes as one string value: no Python text is made (a
    decode took three times as long as hashing the file)."""
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    value = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        value.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def detect_encoding(path: Path, *, digest: bool = True) -> tuple[str, bool, str | None]:
    """(encoding, strict, sha256) of a CSV file; no sha256 (None) with ``digest`` False.

    ``strict`` is False when the file must be read with replacement characters (some bytes are
    undecodable in the chosen encoding).
    """
    hashing = hashlib.sha256() if digest else None
    utf8_ok = True
    bom = None
    first = b""
    carried = b""  # the start of a character the previous chunk cut off
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            if bom is None:
                bom = chunk.startswith(codecs.BOM_UTF8)
                first = chunk[: 1 << 16]
            if hashing is not None:
                hashing.update(chunk)
            if utf8_ok:
                whole, carried = _whole_characters(carried + chunk)
                utf8_ok = _valid_utf8(whole)
        utf8_ok = utf8_ok and _valid_utf8(carried)
    sha = hashing.hexdigest() if hashing is not None else None
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


def csv_header(path: Path, encoding: str, file: str) -> tuple[list[str], bool, str]:
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


def read_csv(path: Path, layout_of, info: dict, quarantine: list[dict]) -> Iterator[FileBlock]:
    file = info["name"]
    # Hashed already when the run checked whether its input changed: not a second time.
    known = known_sha256(path)
    encoding, strict, sha = detect_encoding(path, digest=known is None)
    info["sha256"] = known or sha
    info["encoding"] = encoding if strict else f"{encoding}（含无法解码的字节）"
    headers, has_body, delimiter = csv_header(path, encoding, file)
    if delimiter != ",":
        info["notes"].append(f"分隔符为“{DELIMITER_NAMES[delimiter]}”")
    layout: Layout = layout_of(headers)
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
        yield FileBlock(frame.astype(STRING), rows)
    if isinstance(source, _Decoding):
        source.close()
