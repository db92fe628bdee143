"""How one file's columns map to the roster (headers matched against the aliases), and the block
of rows a reader yields under that layout."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xueji_quality import normalize, schema
from xueji_quality.errors import InputError

RESERVED = set(schema.ROW_COLUMNS) | set(schema.FIELDS) | {"grade_level"}

FIELD_LABELS = {field: "/".join(aliases[:3]) for field, aliases in schema.HEADER_ALIASES.items()}


@dataclass
class Layout:
    """How one file's columns map to the roster."""

    file: str
    columns: list[str]  # the file's headers, duplicates renamed "<header>#2"
    targets: list[str]  # roster column of each file column (canonical field or header)
    notes: list[str] = field(default_factory=list)


@dataclass
class FileBlock:
    """Rows a reader read from one file, as text, under the file's layout."""

    frame: pd.DataFrame  # the file's columns (by Layout.columns), all string
    rows: np.ndarray  # source_row of each frame row


def normalize_header(text: str) -> str:
    """Header text as matched against aliases: NFKC, BOM and every blank removed."""
    return re.sub(normalize.BLANK_CHARS, "", unicodedata.normalize("NFKC", str(text)))


def column_layout(file: str, headers: list[str]) -> Layout:
    """The roster column of each header; a file without the required headers is refused."""
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
    return Layout(file=file, columns=columns, targets=targets, notes=notes)
