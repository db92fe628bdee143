"""A population registry extract (人口信息库摘录) as the police give it to a province.

Columns, found by header alias (see ``ALIASES``): 公民身份号码, 姓名, 性别, 出生日期, 人员状态, and
optionally 户籍地址码. Only these are read; values are normalised the way roster values are
(``normalize.field_steps``: full-width folded, blanks removed, ``x`` to ``X``, 男/女 to 1/2, dates
to YYYY-MM-DD), so an ID in the extract equals the same ID in a roster.

人员状态 is given as a word or a code. The project's code set (the extracts seen use either the
words or these codes; other code sets must be mapped to it before reading):

====  ======  ==================================================
code  word    meaning for the check
====  ======  ==================================================
1     正常    in the registry, nothing to report
2     迁出    moved out of the household's registration: normal
3     注销    number cancelled: POLICE_ID_CANCELLED
4     死亡    registered dead: POLICE_ID_CANCELLED
====  ======  ==================================================

Codes may carry a leading zero (01-04), words a 已 (已注销). An empty status is read as 正常.
Any other value stops the reading with the row and the value.

The extract is the police's data: it is read into memory for the run and never written
anywhere (see ``xueji_quality.police``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality import normalize, schema
from xueji_quality.errors import InputError
from xueji_quality.police.tables import Columns, read_columns

NORMAL, MOVED, CANCELLED, DEAD = "normal", "moved", "cancelled", "dead"
STATUS_WORDS: dict[str, str] = {NORMAL: "正常", MOVED: "迁出", CANCELLED: "注销", DEAD: "死亡"}
STATUS_CODES: dict[str, str] = {NORMAL: "1", MOVED: "2", CANCELLED: "3", DEAD: "4"}
# Every accepted spelling of a status -> its canonical value.
STATUS_VALUES: dict[str, str] = (
    {"": NORMAL}
    | {word: status for status, word in STATUS_WORDS.items()}
    | {f"已{word}": status for status, word in STATUS_WORDS.items() if status != NORMAL}
    | {code: status for status, code in STATUS_CODES.items()}
    | {f"0{code}": status for status, code in STATUS_CODES.items()}
)

ALIASES: dict[str, tuple[str, ...]] = {
    "id_number": schema.HEADER_ALIASES["id_number"],
    "name": ("姓名",),
    "sex": schema.HEADER_ALIASES["sex"],
    "birth_date": ("出生日期", "出生年月日"),
    "status": ("人员状态", "人口状态", "状态"),
    "address_code": ("户籍地址码", "户籍地址代码", "户籍地行政区划代码", "户籍地区划代码"),
}
LABELS: dict[str, str] = {
    "id_number": "公民身份号码",
    "name": "姓名",
    "sex": "性别",
    "birth_date": "出生日期",
    "status": "人员状态",
    "address_code": "户籍地址码",
}
REQUIRED: list[tuple[str, ...]] = [
    ("id_number",),
    ("name",),
    ("sex",),
    ("birth_date",),
    ("status",),
]
COLUMNS: tuple[str, ...] = ("id_number", "name", "sex", "birth_date", "status", "address_code")
# What the check reads of an extract (户籍地址码 says nothing the number does not).
CHECKED_COLUMNS: tuple[str, ...] = COLUMNS[:5]


def _series(column: pa.ChunkedArray | pa.Array) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(pc.cast(column, pa.large_string())))


def normalized(values: pa.ChunkedArray | pa.Array, field: str) -> pa.Array:
    """One column normalised as roster values of ``field`` are."""
    series = _series(values)
    steps = normalize.field_steps(field)
    if steps:
        series, _ = normalize.normalize_column(
            series,
            steps,
            distinct=field not in normalize.MOSTLY_DISTINCT,
            candidates=normalize.MOSTLY_DISTINCT.get(field),
        )
    array = pa.array(series.array)
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    return pc.cast(array, pa.string())


def folded(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Values with full-width ASCII folded and every blank removed (words and codes)."""
    series = normalize.remove_blanks(normalize.to_halfwidth(_series(values)))
    array = pa.array(series.array)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def statuses(values: pa.Array, rows: np.ndarray, file: str, field: str = "人员状态") -> pa.Array:
    """Canonical status of each value; an unknown value is an error naming its row."""
    text = folded(values)
    keys = pa.array(list(STATUS_VALUES))
    found = pc.index_in(text, value_set=keys)
    unknown = pc.is_null(found).to_numpy(zero_copy_only=False)
    if unknown.any():
        first = int(np.flatnonzero(unknown)[0])
        raise InputError(
            file,
            f"人员状态“{text[first].as_py()}”无法识别（应为正常/迁出/注销/死亡或代码 1-4）",
            row=int(rows[first]),
            field=field,
        )
    return pc.take(pa.array(list(STATUS_VALUES.values())), found)


def normalized_table(found: Columns, fields: tuple[str, ...] = COLUMNS) -> pa.Table:
    """The ``fields`` of columns read from an extract (``tables.read_columns`` or one batch of
    ``read_column_batches``), normalised; ``status`` canonical (an unknown value is an error
    naming its row)."""
    table = found.table
    columns = {}
    for field in fields:
        if field not in table.column_names:
            continue
        values = table.column(field)
        if field == "status":
            columns[field] = statuses(values, found.rows, found.file)
        elif field == "address_code":
            columns[field] = normalized(values, "household_region")
        else:
            columns[field] = normalized(values, field)
    return pa.table(columns)


def read_registry(path: Path | str) -> pa.Table:
    """The extract at ``path`` as a table of ``COLUMNS`` (address_code only when the file has
    it), every column a normalised string; ``status`` is one of normal/moved/cancelled/dead.
    The check itself reads the extract a batch at a time (``registry_index.load_registry``)."""
    return normalized_table(read_columns(path, ALIASES, REQUIRED, LABELS))
