"""List rows built over whole columns (sheet_xml) are the XML xlsxwriter writes cell by cell."""

import zipfile

import numpy as np
import openpyxl
import xlsxwriter

from xueji_quality.reports import sheet_xml
from xueji_quality.reports.sheet_xml import ListSheet

TEXTS = np.array(
    [
        "张伟",
        "",
        " leading blank",
        "trailing\u3000",
        "a&b<c>d\"e'",
        "bell\x07 and tab\tinside",
        "_x0041_ literal",
        "\ufffe",
        "阿依古丽·买买提",
        "\U00020000 rare",
        "x" * 40_000,
        "中" * 20_000,
        "\t",
    ],
    dtype=object,
)


def _list_rows(path) -> str:
    """The rows after the header (which xlsxwriter writes as a shared string, or inline when
    streaming)."""
    with zipfile.ZipFile(path) as parts:
        xml = parts.read("xl/worksheets/sheet1.xml").decode("utf-8")
    return xml[xml.index('<row r="2"') : xml.index("</sheetData>")]


def _by_xlsxwriter(path, rows, numbers, lines, written):
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    bold, red = book.add_format({"bold": True}), book.add_format({"font_color": "red"})
    sheet = book.add_worksheet()
    sheet.write_string(0, 0, "header", bold)
    for row in range(len(rows)):
        if lines[row] > 1:
            sheet.set_row(row + 1, 15.0 * lines[row])
        cell_format = red if row % 2 else bold
        if written[row]:
            if rows[row]:
                sheet.write_string(row + 1, 0, rows[row], cell_format)
            else:
                sheet.write_blank(row + 1, 0, None, cell_format)
        if np.isnan(numbers[row]):
            sheet.write_blank(row + 1, 1, None, bold)
        else:
            sheet.write_number(row + 1, 1, numbers[row], bold)
    book.close()


def _by_columns(path, rows, numbers, lines, written, chunk):
    book = xlsxwriter.Workbook(str(path))
    bold, red = book.add_format({"bold": True}), book.add_format({"font_color": "red"})
    sheet = book.add_worksheet(worksheet_class=ListSheet)
    sheet.write_string(0, 0, "header", bold)
    xf = np.array([bold._get_xf_index(), red._get_xf_index()])
    for first in range(0, len(rows), chunk):
        last = min(len(rows), first + chunk)
        at = sheet_xml.row_numbers(first + 1, last - first)
        codes = np.arange(first, last) % 2
        cells = [
            sheet_xml.text_cells(
                0, at, rows[first:last], sheet_xml.style_attributes(xf, codes), written[first:last]
            ),
            sheet_xml.number_cells(
                1,
                at,
                numbers[first:last],
                sheet_xml.style_attributes(xf, np.zeros(last - first, int)),
                np.ones(last - first, bool),
            ),
        ]
        heights = np.where(lines[first:last] > 1, 15.0 * lines[first:last], 0)
        sheet.add_rows(sheet_xml.rows_xml(at, cells, heights), first + 1, last, 2)
    book.close()


def test_rows_built_by_column_are_what_xlsxwriter_writes_cell_by_cell(tmp_path):
    rng = np.random.default_rng(7)
    rows = np.concatenate([TEXTS, rng.choice(TEXTS[:10], 500)])
    numbers = rng.choice([0.93, 1.0, 0.875, np.nan, 12.5], len(rows))
    lines = rng.choice([1, 1, 2, 3], len(rows))
    written = rng.random(len(rows)) < 0.8
    _by_xlsxwriter(tmp_path / "cells.xlsx", rows, numbers, lines, written)
    for chunk in (7, 1000):
        _by_columns(tmp_path / f"columns{chunk}.xlsx", rows, numbers, lines, written, chunk)
        expected = _list_rows(tmp_path / "cells.xlsx")
        assert _list_rows(tmp_path / f"columns{chunk}.xlsx") == expected

    sheet = openpyxl.load_workbook(tmp_path / "columns7.xlsx").active
    assert sheet.max_row == len(rows) + 1
    assert sheet.cell(2, 1).value == "张伟"
    assert sheet.cell(5, 1).value == "trailing\u3000"
    assert sheet.cell(6, 1).value == "a&b<c>d\"e'"
    assert sheet.cell(12, 1).value == "x" * 32_767  # cut to what a cell holds


def test_a_sheet_without_list_rows_is_xlsxwriters_own(tmp_path):
    book = xlsxwriter.Workbook(str(tmp_path / "empty.xlsx"))
    sheet = book.add_worksheet(worksheet_class=ListSheet)
    sheet.write_string(0, 0, "header")
    book.close()
    assert openpyxl.load_workbook(tmp_path / "empty.xlsx").active.max_row == 1


def test_a_list_workbook_packs_its_parts_at_the_quick_level(tmp_path):
    import zlib

    import xlsxwriter.workbook

    book = sheet_xml.ListWorkbook(str(tmp_path / "quick.xlsx"))
    sheet = book.add_worksheet()
    for row in range(2000):
        sheet.write_string(row, 0, f"学生{row % 37} 440103201001011234")
    book.close()
    assert xlsxwriter.workbook.ZipFile is zipfile.ZipFile
    with zipfile.ZipFile(tmp_path / "quick.xlsx") as parts:
        info = parts.getinfo("xl/worksheets/sheet1.xml")
        data = parts.read(info)
    packer = zlib.compressobj(sheet_xml.ZIP_LEVEL, zlib.DEFLATED, -15)
    assert info.compress_size == len(packer.compress(data) + packer.flush())


def test_space_characters_are_pythons_white_space():
    """xlsxwriter marks a text ``xml:space="preserve"`` by Python's ``\\s``: the same set."""
    python = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    assert sheet_xml.SPACE_CHARACTERS == python


def test_text_columns_built_together_are_each_built_alone():
    rows = np.array(["张伟", "", " a", "a&b", "_x0041_"], dtype=object)
    other = np.array(["x", None, "y\x07", "", "\u3000"], dtype=object)
    at = sheet_xml.row_numbers(1, len(rows))
    xf = np.array([0, 3, 4])
    codes = [np.array([0, 1, 2, 1, 0]), np.array([2, 2, 0, 1, 1])]
    written = [np.ones(len(rows), bool), np.array([True, False, True, True, True])]
    together = sheet_xml.text_block_cells(
        [0, 27],
        at,
        [rows, other],
        sheet_xml.style_attributes(xf, np.concatenate(codes)),
        np.concatenate(written),
    )
    alone = [
        sheet_xml.text_cells(column, at, values, sheet_xml.style_attributes(xf, code), where)
        for column, values, code, where in zip([0, 27], [rows, other], codes, written, strict=True)
    ]
    assert [c.to_pylist() for c in together] == [c.to_pylist() for c in alone]
    assert together[1][0].as_py() == '<c r="AB2" s="4" t="inlineStr"><is><t>x</t></is></c>'
