"""The request sent to the public security bureau and the result file it sends back.

Request (``request_table``): one line per distinct (ID number, name) among the roster's resident
ID numbers that are worth asking about (``sendable``: typed 居民身份证, 18 characters with a
right check character, a real birth date inside, not a Hong Kong/Macao/Taiwan residence permit,
and a name). Columns 请求编号, 公民身份号码, 姓名 and nothing else: the minimum necessary (PIPL
Art. 6), and students under 14 are sensitive personal information (Art. 28). Numbers failing
their format or check character are not sent: the roster rules report them already.

请求编号 is ``Q`` and 16 hex digits of a hash of (ID number, name) (pandas' fixed-key SipHash),
so the same pair gets the same number in every run and a result file that carries only the
request number still finds its roster rows after the roster was re-exported.

Result file (``read_results``): per line the request number, or the ID number and name, then
身份证号比对结果 and 姓名比对结果, in words or codes:

====  ==========  ===============================================================
code  word        meaning
====  ==========  ===============================================================
01    一致        the number exists / the name is the registry's
02    不一致      the name is not the registry's (on the number: no such number)
03    库中无此号  no such number
04    比对失败    not compared: pending, not a problem
====  ==========  ===============================================================

Codes may lose their leading zero (1-4) in a spreadsheet. 姓名比对结果 may be empty where the
number was not found or not compared. Optional 人员状态 as in a registry extract
(``registry.STATUS_VALUES``). Any other verdict stops the reading with its row and value.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality import schema
from xueji_quality.errors import InputError
from xueji_quality.police import registry
from xueji_quality.police.tables import read_columns
from xueji_quality.rules import checks
from xueji_quality.standards.fixed_width import arrow_text, fixed_width_bytes

REQUEST_COLUMNS: tuple[str, ...] = ("请求编号", "公民身份号码", "姓名")
OUTPUT_MODE = 0o640

MATCH, MISMATCH, ABSENT, FAILED = "match", "mismatch", "absent", "failed"
VERDICT_WORDS: dict[str, str] = {
    MATCH: "一致",
    MISMATCH: "不一致",
    ABSENT: "库中无此号",
    FAILED: "比对失败",
}
VERDICT_CODES: dict[str, str] = {MATCH: "01", MISMATCH: "02", ABSENT: "03", FAILED: "04"}
VERDICT_VALUES: dict[str, str] = (
    {word: verdict for verdict, word in VERDICT_WORDS.items()}
    | {"无此号": ABSENT, "查无此号": ABSENT}
    | {code: verdict for verdict, code in VERDICT_CODES.items()}
    | {code[1]: verdict for verdict, code in VERDICT_CODES.items()}
)

ALIASES: dict[str, tuple[str, ...]] = {
    "request_no": ("请求编号", "请求序号", "查询编号"),
    "id_number": schema.HEADER_ALIASES["id_number"],
    "name": ("姓名",),
    "id_verdict": (
        "身份证号比对结果",
        "公民身份号码比对结果",
        "身份证号码比对结果",
        "身份证比对结果",
        "号码比对结果",
    ),
    "name_verdict": ("姓名比对结果",),
    "status": registry.ALIASES["status"],
}
LABELS: dict[str, str] = {
    "request_no": "请求编号",
    "id_number": "公民身份号码",
    "name": "姓名",
    "id_verdict": "身份证号比对结果",
    "name_verdict": "姓名比对结果",
    "status": "人员状态",
}
REQUIRED: list[tuple[str, ...]] = [
    ("request_no", "id_number"),
    ("id_verdict",),
    ("name_verdict",),
]
RESULT_COLUMNS: tuple[str, ...] = (
    "request_no",
    "id_number",
    "name",
    "id_verdict",
    "name_verdict",
    "status",
)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def sendable(roster: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the roster rows whose (ID number, name) goes to the police."""
    id_type = roster["id_type"] if "id_type" in roster.columns else pd.Series(pd.NA, roster.index)
    ids = roster["id_number"]
    valid = checks.id_status(id_type, ids) == checks.ID_VALID
    parts = checks.id_parts(ids)
    address = parts.digits[:, :6].astype(np.int64) @ (10 ** np.arange(5, -1, -1))
    permit = np.isin(address, [int(c) for c in checks.PERMIT_ADDRESS_CODES])
    named = checks.present(roster["name"]).to_numpy()
    return valid & (parts.born > 0) & ~permit & named


def request_hashes(ids: pd.Series, names: pd.Series) -> np.ndarray:
    """uint64 hash of each (ID number, name): what a 请求编号 spells."""
    pair = pd.DataFrame(
        {
            "id": ids.astype("string").to_numpy(dtype=object, na_value=""),
            "name": names.astype("string").to_numpy(dtype=object, na_value=""),
        }
    )
    return pd.util.hash_pandas_object(pair, index=False).to_numpy(dtype=np.uint64)


def request_numbers(ids: pd.Series, names: pd.Series) -> pd.Series:
    """请求编号 of each (ID number, name): Q and 16 hex digits of their hash."""
    hashed = request_hashes(ids, names)
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    nibbles = ((hashed[:, None] >> shifts) & np.uint64(0xF)).astype(np.intp)
    text = np.empty((len(hashed), 17), dtype=np.uint8)
    text[:, 0] = ord("Q")
    text[:, 1:] = _HEX[nibbles]
    numbers = text.view("S17").ravel().astype("U17")
    return pd.Series(numbers, index=ids.index, dtype="string")


def request_keys(numbers: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(the hash each 请求编号 spells, as int64; mask of the numbers of that form)."""
    mask, raw = fixed_width_bytes(arrow_text(numbers), 17)
    is_digit = (raw >= ord("0")) & (raw <= ord("9"))
    is_hex = (raw >= ord("a")) & (raw <= ord("f"))
    nibble = np.where(is_digit, raw - ord("0"), np.where(is_hex, raw - ord("a") + 10, 255))
    valid = mask & (raw[:, 0] == ord("Q")) & (nibble[:, 1:] < 16).all(axis=1)
    value = np.zeros(len(raw), dtype=np.uint64)
    for k in range(1, 17):
        value = (value << np.uint64(4)) | np.where(valid, nibble[:, k], 0).astype(np.uint64)
    return value.view(np.int64), valid


def request_table(roster: pd.DataFrame) -> pd.DataFrame:
    """The request: 请求编号, 公民身份号码, 姓名, one line per distinct pair, by 请求编号."""
    chosen = roster.loc[sendable(roster), ["id_number", "name"]].drop_duplicates()
    table = pd.DataFrame(
        {
            "请求编号": request_numbers(chosen["id_number"], chosen["name"]),
            "公民身份号码": chosen["id_number"].astype("string"),
            "姓名": chosen["name"].astype("string"),
        }
    )
    return table.sort_values("请求编号", kind="stable", ignore_index=True)


def _private(path: Path) -> None:
    os.chmod(path, OUTPUT_MODE)


def write_request_csv(table: pd.DataFrame, path: Path | str) -> Path:
    """The request as CSV, UTF-8 with BOM (so Excel shows the Chinese), mode 0640."""
    path = Path(path)
    table.loc[:, list(REQUEST_COLUMNS)].to_csv(path, index=False, encoding="utf-8-sig")
    _private(path)
    return path


def write_request_xlsx(table: pd.DataFrame, path: Path | str) -> Path:
    """The request as XLSX, every cell a text cell (an ID must never become a number)."""
    import xlsxwriter

    path = Path(path)
    options = {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False}
    with xlsxwriter.Workbook(str(path), options) as book:
        sheet = book.add_worksheet("核查请求")
        text = book.add_format({"num_format": "@"})
        for col, name in enumerate(REQUEST_COLUMNS):
            sheet.write_string(0, col, name)
            sheet.set_column(col, col, 22 if col < 2 else 14, text)
        columns = [table[name].astype("string").fillna("").tolist() for name in REQUEST_COLUMNS]
        for row, values in enumerate(zip(*columns, strict=True), start=1):
            for col, value in enumerate(values):
                sheet.write_string(row, col, value, text)
    _private(path)
    return path


def write_request(table: pd.DataFrame, path: Path | str) -> Path:
    """The request in the format its file name says (.xlsx, else CSV)."""
    if Path(path).suffix.lower() == ".xlsx":
        return write_request_xlsx(table, path)
    return write_request_csv(table, path)


def _verdicts(values: pa.Array, rows: np.ndarray, file: str, field: str, blank_ok: np.ndarray):
    text = registry.folded(values)
    found = pc.index_in(text, value_set=pa.array(list(VERDICT_VALUES)))
    unknown = pc.is_null(found).to_numpy(zero_copy_only=False)
    blank = pc.equal(text, "").to_numpy(zero_copy_only=False)
    bad = unknown & ~(blank & blank_ok)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        value = text[first].as_py()
        raise InputError(
            file,
            f"比对结果“{value}”无法识别（应为 一致/不一致/库中无此号/比对失败 或代码 01-04）",
            row=int(rows[first]),
            field=LABELS[field],
        )
    return pc.take(pa.array(list(VERDICT_VALUES.values())), found)


def read_results(path: Path | str) -> pa.Table:
    """The result file at ``path`` as a table of ``RESULT_COLUMNS`` (those the file has; a
    file without 请求编号 must have 公民身份号码 and 姓名). Verdicts are match / mismatch / absent
    / failed (null: no name verdict where the number was not found or not compared); status as
    in ``registry``."""
    found = read_columns(path, ALIASES, REQUIRED, LABELS)
    table, rows, file = found.table, found.rows, found.file
    if "request_no" not in table.column_names and "name" not in table.column_names:
        raise InputError(file, "缺少必需的表头：“请求编号”，或“公民身份号码”和“姓名”")
    columns: dict[str, pa.Array] = {}
    if "request_no" in table.column_names:
        columns["request_no"] = registry.normalized(table.column("request_no"), "export_key")
    for field in ("id_number", "name"):
        if field in table.column_names:
            columns[field] = registry.normalized(table.column(field), field)
    id_verdict = _verdicts(
        table.column("id_verdict"), rows, file, "id_verdict", np.zeros(len(rows), dtype=bool)
    )
    no_name_expected = pc.is_in(id_verdict, pa.array([ABSENT, FAILED])).to_numpy(
        zero_copy_only=False
    )
    columns["id_verdict"] = id_verdict
    columns["name_verdict"] = _verdicts(
        table.column("name_verdict"), rows, file, "name_verdict", no_name_expected
    )
    if "status" in table.column_names:
        columns["status"] = registry.statuses(table.column("status"), rows, file)
    return pa.table(columns)
