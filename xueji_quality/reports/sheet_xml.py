"""List rows written as SpreadsheetML built over whole columns (:class:`ListSheet`).

xlsxwriter writes a cell with a few Python calls of its own; a county list of a million rows and
twenty columns is twenty million of them, most of a report's time. Here a block of rows is built
with Arrow string kernels over whole columns: each cell's ``<c>`` element is the column's letter,
the row numbers, the cell's style index and its escaped text joined over the block's text columns
laid end to end (one run of the kernels for them all), and a row's elements are the columns
joined. The XML is what xlsxwriter itself writes for these cells
in its constant-memory mode (inline strings, no row spans), which tests compare byte for byte.

Text is escaped as xlsxwriter escapes it: ``&``, ``<`` and ``>``; a control character as
``_xHHHH_`` (and a literal ``_xHHHH_`` as ``_x005F_xHHHH_``, so Excel shows it unchanged); leading
or trailing white space kept with ``xml:space="preserve"``; a text longer than a cell holds
(32,767 UTF-16 units) cut to that length.

The header, column widths, frozen panes, filters, validation and print setup stay xlsxwriter's:
only the ``<sheetData>`` rows after the header come from here.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter
import xlsxwriter.workbook
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

# The longest text a cell holds, in UTF-16 code units (Excel's limit).
CELL_MAX_UNITS = 32_767
_CONTROL = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20))] + ["\ufffe", "\uffff"]
_CONTROL_PATTERN = "[\\x{00}-\\x{08}\\x{0b}-\\x{1f}\\x{fffe}\\x{ffff}]"
# Python's white space (what xlsxwriter tests for ``xml:space``: ``str.isspace``), each character
# written out for Arrow's trim. The control characters among it are escaped before the test.
SPACE_CHARACTERS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_ANY_ESCAPE_PATTERN = f"[&<>]|_x|{_CONTROL_PATTERN}"


# zlib's level for a workbook's parts. Its default (6) took a quarter of a county workbook's
# time; level 1 packs the same XML 2.5 times faster into a file some 30 % larger.
ZIP_LEVEL = 1


class _QuickZipFile(zipfile.ZipFile):
    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel or ZIP_LEVEL)

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        super().write(filename, arcname, compress_type, compresslevel or ZIP_LEVEL)


class ListWorkbook(xlsxwriter.Workbook):
    """An xlsxwriter workbook whose parts are packed at :data:`ZIP_LEVEL`."""

    def _store_workbook(self) -> None:
        # xlsxwriter takes its zip class from its module's namespace, with no level option.
        xlsxwriter.workbook.ZipFile = _QuickZipFile
        try:
            super()._store_workbook()
        finally:
            xlsxwriter.workbook.ZipFile = zipfile.ZipFile


class ListSheet(Worksheet):
    """A worksheet whose rows after the header arrive as XML blocks (:meth:`add_rows`), kept in
    a temporary file until the workbook is assembled; everything else is xlsxwriter's."""

    def __init__(self) -> None:
        super().__init__()
        self.row_blocks: io.BufferedRandom | None = None
        self.first_block_row = 0

    def add_rows(self, xml: pa.Buffer | bytes, first_row: int, last_row: int, width: int) -> None:
        """Rows ``first_row``..``last_row`` (0-based, inclusive) of ``width`` columns, as
        built by :func:`rows_xml`, after every row written before."""
        if last_row < first_row:
            return
        if self.row_blocks is None:
            self.row_blocks = tempfile.TemporaryFile(dir=self.tmpdir)  # noqa: SIM115
            self.first_block_row = first_row
        self.row_blocks.write(memoryview(xml))
        self._check_dimensions(first_row, 0)
        self._check_dimensions(last_row, width - 1)

    def _write_sheet_data(self) -> None:
        if self.row_blocks is None:
            super()._write_sheet_data()
            return
        self._xml_start_tag("sheetData")
        # The rows xlsxwriter holds itself (the header) come first.
        last_row, self.dim_rowmax = self.dim_rowmax, self.first_block_row - 1
        try:
            if self.dim_rowmax >= self.dim_rowmin:
                self._write_rows()
        finally:
            self.dim_rowmax = last_row
        self.row_blocks.seek(0)
        shutil.copyfileobj(io.TextIOWrapper(self.row_blocks, encoding="utf-8"), self.fh, 1 << 20)
        self.row_blocks = None
        self._xml_end_tag("sheetData")


def row_numbers(first_row: int, rows: int) -> pa.Array:
    """Excel's 1-based numbers of sheet rows ``first_row``… (0-based), as text."""
    return pc.cast(pa.array(np.arange(first_row + 1, first_row + rows + 1)), pa.string())


def style_attributes(xf_indices: np.ndarray, codes: np.ndarray) -> pa.Array:
    """The `` s="N"`` attribute of each cell: ``xf_indices[codes]`` (index 0, no format: none)."""
    labels = pa.array([f' s="{int(i)}"' if i else "" for i in xf_indices], pa.string())
    return labels.take(pa.array(np.asarray(codes, dtype=np.int64)))


def text_cells(
    column: int,
    numbers: pa.Array,
    values: np.ndarray | pa.Array,
    styles: pa.Array,
    written: np.ndarray,
) -> pa.Array:
    """Each row's ``<c>`` element of a text column: an inline string, an empty cell (only its
    format) where the text is empty, nothing where ``written`` is False."""
    return text_block_cells([column], numbers, [values], styles, written)[0]


def text_block_cells(
    columns: list[int],
    numbers: pa.Array,
    values: list[np.ndarray | pa.Array],
    styles: pa.Array,
    written: np.ndarray,
) -> list[pa.Array]:
    """:func:`text_cells` of several text columns of the same rows, one array per column.
    ``styles`` and ``written`` hold the columns' cells one column after the other.

    The columns' texts are laid end to end and built with one run of the Arrow kernels: a
    county's list is a few hundred rows, where each kernel call costs more to set up than its
    rows take, and a sheet has some twenty columns."""
    if not columns:
        return []
    rows = len(numbers)
    text = _cell_text(values)
    escaped, preserve = escape(text)
    opening = pc.if_else(
        pa.array(preserve),
        ' t="inlineStr"><is><t xml:space="preserve">',
        ' t="inlineStr"><is><t>',
    )
    string = pc.binary_join_element_wise(opening, escaped, "</t></is></c>", "")
    tail = pc.if_else(pc.equal(pc.binary_length(text), 0), "/>", string)
    letters = pa.array([f'<c r="{xl_col_to_name(column)}' for column in columns], pa.string())
    starts = letters.take(pa.array(np.repeat(np.arange(len(columns)), rows)))
    row_of = numbers.take(pa.array(np.tile(np.arange(rows), len(columns))))
    cells = pc.binary_join_element_wise(starts, row_of, '"', styles, tail, "")
    cells = _only_written(cells, written)
    return [cells.slice(at * rows, rows) for at in range(len(columns))]


def number_cells(
    column: int, numbers: pa.Array, values: np.ndarray, styles: pa.Array, written: np.ndarray
) -> pa.Array:
    """Each row's ``<c>`` element of a number column: its value, or only its format where the
    value is missing (NaN); nothing where ``written`` is False."""
    floats = np.asarray(values, dtype=float)
    present = ~np.isnan(floats)
    text = pc.cast(pa.array(np.where(present, floats, 0.0)), pa.string())
    valued = pc.binary_join_element_wise("><v>", text, "</v></c>", "")
    tail = pc.if_else(pa.array(present), valued, "/>")
    cells = pc.binary_join_element_wise(
        f'<c r="{xl_col_to_name(column)}', numbers, '"', styles, tail, ""
    )
    return _only_written(cells, written)


def _only_written(cells: pa.Array, written: np.ndarray) -> pa.Array:
    written = np.asarray(written, dtype=bool)
    if written.all():
        return cells
    return pc.if_else(pa.array(written), cells, "")


def rows_xml(numbers: pa.Array, cells: list[pa.Array], heights: np.ndarray | None) -> pa.Buffer:
    """The ``<row>`` elements of a block: each row's cells in column order, a row taller than
    the default (``heights`` in points, 0 for the default) marked as xlsxwriter marks it."""
    if heights is None:
        tall = pa.nulls(len(numbers), pa.string()).fill_null("")
    else:
        points = np.asarray(heights, dtype=float)
        attribute = pc.binary_join_element_wise(
            ' ht="', pc.cast(pa.array(points), pa.string()), '" customHeight="1"', ""
        )
        tall = pc.if_else(pa.array(points > 0), attribute, "")
    rows = pc.binary_join_element_wise('<row r="', numbers, '"', tall, ">", *cells, "</row>", "")
    return _joined(rows)


def escape(text: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """``text`` as the content of a ``<t>`` element, and whether it needs ``xml:space``."""
    # Most lists hold none of what needs escaping: one search over all their bytes tells.
    if _found_anywhere(text, _ANY_ESCAPE_PATTERN):
        text = _escaped(text)
    # White space at either end: trimming it shortens the text (a trim costs a fifth of a
    # regular expression's search of every text).
    trimmed = pc.utf8_trim(text, SPACE_CHARACTERS)
    preserve = pc.not_equal(pc.binary_length(trimmed), pc.binary_length(text))
    return text, preserve.to_numpy(zero_copy_only=False)


def _found_anywhere(text: pa.Array, pattern: str) -> bool:
    """Whether ``pattern`` occurs in the texts laid end to end, searched as one text: never a
    miss, and a match across two texts costs no more than the exact pass it calls for."""
    whole = _joined(text)
    offsets = pa.py_buffer(np.array([0, whole.size], dtype=np.int32))
    one = pa.Array.from_buffers(pa.string(), 1, [None, offsets, whole])
    return bool(pc.match_substring_regex(one, pattern)[0].as_py())


def _escaped(text: pa.Array) -> pa.Array:
    if pc.any(pc.match_substring(text, "_x")).as_py():
        text = pc.replace_substring_regex(text, "(_x[0-9a-fA-F]{4}_)", "_x005F\\1")
    if pc.any(pc.match_substring_regex(text, _CONTROL_PATTERN)).as_py():
        for character in _CONTROL:
            text = pc.replace_substring(text, character, f"_x{ord(character):04X}_")
    # After the control characters: their escapes hold no character escaped here.
    for character, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        if pc.any(pc.match_substring(text, character)).as_py():
            text = pc.replace_substring(text, character, entity)
    return text


def _cell_text(columns: list[np.ndarray | pa.Array]) -> pa.Array:
    """The columns' texts one after the other as Arrow strings (missing as empty), each cut to
    what a cell holds."""
    if all(isinstance(values, pa.Array) for values in columns):
        values = pa.concat_arrays([values.cast(pa.string()) for values in columns])
    else:
        as_objects = [
            values.to_numpy(zero_copy_only=False) if isinstance(values, pa.Array) else values
            for values in columns
        ]
        joined = np.concatenate([np.asarray(values, dtype=object) for values in as_objects])
        values = pa.array(joined, pa.string(), from_pandas=True)
    text = values.fill_null("")
    # A text of fewer than half the limit in code points cannot exceed it in UTF-16 units.
    long = np.flatnonzero(
        pc.greater(pc.utf8_length(text), CELL_MAX_UNITS // 2).to_numpy(zero_copy_only=False)
    )
    if len(long) == 0:
        return text
    # Rare (a field of over 16,383 characters): those cells alone are cut here.
    cut = text.to_numpy(zero_copy_only=False).astype(object)
    cut[long] = [_utf16_cut(value) for value in cut[long]]
    return pa.array(cut, pa.string())


def _utf16_cut(value: str) -> str:
    units = value.encode("utf-16-le")
    if len(units) <= 2 * CELL_MAX_UNITS:
        return value
    return units[: 2 * CELL_MAX_UNITS].decode("utf-16-le", errors="ignore")


def _joined(rows: pa.Array) -> pa.Buffer:
    """The texts of ``rows`` one after the other: the bytes Arrow holds them in already."""
    rows = pa.concat_arrays([rows]) if rows.offset else rows
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=len(rows) + 1)
    data = rows.buffers()[2]
    if data is None:
        return pa.py_buffer(b"")
    return data.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
