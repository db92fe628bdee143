"""Answering the county workbooks of bench/answers.py as clerks would, straight in their sheet XML.

``answered_copy`` copies a workbook the report writer wrote and fills 处理方式, 更正后的值 and
备注 on every row that can be answered (佐证 with a 备注, 变更 with a 更正后的值, 删除; a
duplicate group's own records 变更, or all 佐证), cell for cell in the writer's layout.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from xueji_quality import workbook


def _column_letter(position: int) -> str:
    letters = ""
    position += 1
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _inline(text: str) -> bytes:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<is><t xml:space="preserve">{escaped}</t></is>'.encode()


def _answer_for(key: str, draw: int) -> tuple[str, str, str] | None:
    """(处理方式, 更正后的值, 备注) for a row's 问题编号; None for a row not to answer."""
    parsed = workbook.parse_key(key)
    if parsed is None or not parsed[2]:
        return None
    if parsed[1] is not None:  # a record of a group: the whole group alike
        if int(parsed[0][1:3], 16) % 2:
            return "变更", "", "已转出重复学籍"
        return "佐证", "", "双胞胎，户口簿已核"
    if draw == 0:
        return "佐证", "", "经核实无误，户口簿复印件已存档"
    if draw == 1:
        return "变更", "440103201205010012", "已在学籍系统更正"
    return "删除", "", ""


def _answer_sheet(xml: bytes, header_row: int, columns: dict[str, int], rng) -> tuple[bytes, int]:
    """The sheet XML with every answerable row answered (the writer leaves the clerk's cells
    blank: ``<c r="Q7" s="9"/>``); the number of rows answered."""
    key_letter = _column_letter(columns["problem_key"]).encode()
    keys = re.findall(
        rb'<c r="' + key_letter + rb'(\d+)"[^>]*><is><t[^>]*>([^<]*)</t></is></c>', xml
    )
    draws = rng.integers(0, 3, len(keys))
    given = {}
    for (row, key), draw in zip(keys, draws.tolist(), strict=True):
        if int(row) > header_row:
            answer = _answer_for(key.decode(), draw)
            if answer is not None:
                given[row] = answer
    for at, field in enumerate(("action", "new_value", "note")):
        if field not in columns:
            continue
        letter = _column_letter(columns[field]).encode()

        def fill(match: re.Match, at: int = at) -> bytes:
            answer = given.get(match.group(1))
            if answer is None or not answer[at]:
                return match.group(0)
            return match.group(0)[:-2] + b' t="inlineStr">' + _inline(answer[at]) + b"</c>"

        xml = re.sub(rb'<c r="' + letter + rb'(\d+)"(?: s="\d+")?/>', fill, xml)
    return xml, len(given)


def answered_copy(path: Path, target: Path, seed: int) -> int:
    """Copy the county workbook ``path`` to ``target`` with every answerable row answered."""
    from python_calamine import CalamineWorkbook

    rng = np.random.default_rng(seed)
    book = CalamineWorkbook.from_path(str(path))
    headers: dict[int, tuple[int, dict[str, int]]] = {}
    for index, name in enumerate(book.sheet_names, start=1):
        rows = book.get_sheet_by_name(name).to_python(nrows=10)
        for at, row in enumerate(rows):
            cells = [str(c) for c in row]
            columns = workbook.find_columns(cells, ("problem_key", "action", "new_value", "note"))
            if "problem_key" in columns and "action" in columns:
                headers[index] = (at + 1, columns)
                break
    book.close()
    total = 0
    with (
        zipfile.ZipFile(path) as source,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as copy,
    ):
        for item in source.infolist():
            data = source.read(item.filename)
            sheet = re.fullmatch(r"xl/worksheets/sheet(\d+)\.xml", item.filename)
            if sheet and int(sheet.group(1)) in headers:
                header_row, columns = headers[int(sheet.group(1))]
                data, answered = _answer_sheet(data, header_row, columns, rng)
                total += answered
            copy.writestr(item, data)
    return total
