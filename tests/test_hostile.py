"""Hostile inputs: every damaged file or value either stops the run with a clear error naming the
file, or is read with the bad rows quarantined and no row lost.

The corpus is built by the tests themselves. Each case states the outcome it must have:
``error`` (an InputError naming the file, and the row or field where there is one) or ``run``
(read through, rows read = the data rows written, rows read = staged + quarantined, every
quarantined row with a reason). A handful go through the command line too: non-zero exit, the
message on stderr, nothing published and ``latest`` unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli import EXIT_INPUT_ERROR, main
from xueji_quality import ingest
from xueji_quality.errors import InputError

PROVINCE = "44"
AS_OF = "2026-11-28"
HEADER = ["记录号", "姓名", "性别", "出生日期", "身份证件号", "所在区县", "学校名称", "年级"]
IDS = ["44010620150301100X", "440106201503021002", "440106201503031003", "440106201503041004"]


def row(n: int, **values: str) -> list[str]:
    """A readable data row; keyword arguments replace fields by their header."""
    cells = dict(
        zip(
            HEADER,
            [f"R{n}", "张三", "男", "2015-03-01", IDS[n % 4], "440106", "第一小学", "三年级"],
            strict=True,
        )
    )
    cells.update(
        {{"name": "姓名", "birth": "出生日期", "id": "身份证件号"}[k]: v for k, v in values.items()}
    )
    return list(cells.values())


def csv_text(rows: list[list[str]], sep: str = ",", end: str = "\n", header=HEADER) -> str:
    return end.join(sep.join(r) for r in [header, *rows]) + end


def put(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def xlsx(folder: Path, name: str, rows: list[list[object]], header=HEADER) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for values in rows:
        sheet.append(values)
    path = folder / name
    workbook.save(path)
    return path


# ---------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], tuple[list[Path], int]]  # (inputs, data rows written)
    outcome: str  # "error" or "run"
    expect: str = ""  # error: text the message holds; run: text some quarantine reason holds
    quarantined: int = 0  # run: rows that must be quarantined
    check: Callable[[ingest.Staged], None] | None = None
    error_row: int | None = None  # error: the row the message must name


def _empty(d):
    return [put(d, "empty.csv", b"")], 0


def _headers_only(d):
    return [put(d, "headers.csv", csv_text([]))], 0


def _truncated(d):
    text = csv_text([row(1), row(2)]) + "R3,王五,男,2015-03"
    return [put(d, "truncated.csv", text)], 3


def _truncated_quote(d):
    text = csv_text([row(1), row(2)]) + 'R3,"王五,男'
    return [put(d, "truncated_quote.csv", text)], 3


def _semicolon(d):
    return [put(d, "semicolon.csv", csv_text([row(1), row(2)], sep=";"))], 2


def _tab(d):
    return [put(d, "tab.csv", csv_text([row(1), row(2), row(3)], sep="\t"))], 3


def _mixed_encoding(d):
    data = csv_text([row(1), row(2)]).encode("utf-8")
    data += ",".join(row(3, name="王小明")).encode("gb18030") + b"\n"
    data += csv_text([row(4)]).split("\n", 1)[1].encode("utf-8")
    return [put(d, "mixed.csv", data)], 4


def _nul(d):
    return [put(d, "nul.csv", csv_text([row(1), row(2, name="李\x00四"), row(3)]))], 3


def _crlf(d):
    return [put(d, "crlf.csv", csv_text([row(1), row(2), row(3)], end="\r\n"))], 3


def _lone_cr(d):
    return [put(d, "cr.csv", csv_text([row(1), row(2), row(3)], end="\r"))], 3


def _huge_field(d):
    return [
        put(d, "huge.csv", csv_text([row(1), row(2, name="张" * ((10 << 20) // 3)), row(3)]))
    ], 3


def _wide(d):
    extra = [f"附加{i}" for i in range(10_000)]
    header = [*HEADER, *extra]
    rows = [row(i) + [str(i)] * len(extra) for i in range(1, 4)]
    return [put(d, "wide.csv", csv_text(rows, header=header))], 3


def _duplicate_headers(d):
    header = [*HEADER, "学校名称", "备注", "备注"]
    rows = [row(1) + ["第二个校名", "a", "b"], row(2) + ["", "c", "d"]]
    return [put(d, "dupheaders.csv", csv_text(rows, header=header))], 2


def _duplicate_required_header(d):
    header = [*HEADER, "身份证号"]
    rows = [row(1) + ["110105194912310021"], row(2) + [""]]
    return [put(d, "dupid.csv", csv_text(rows, header=header))], 2


def _header_repeated(d):
    return [put(d, "rehead.csv", csv_text([row(1), HEADER, row(2), HEADER, row(3)]))], 5


def _xlsx_really_csv(d):
    return [put(d, "fake.xlsx", csv_text([row(1)]))], 1


def _xlsx_truncated(d):
    good = xlsx(d, "good.xlsx", [row(1), row(2)])
    data = good.read_bytes()
    good.unlink()
    return [put(d, "cut.xlsx", data[: len(data) // 2])], 2


def _xlsx_damaged_member(d):
    good = xlsx(d, "good.xlsx", [row(i) for i in range(1, 50)])
    damaged = d / "damaged.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                data = data[: len(data) // 3] + b"\x00\xff garbage <<<" + data[len(data) // 2 :]
            target.writestr(item, data)
    good.unlink()
    return [damaged], 49


def _xlsx_zip_bytes_flipped(d):
    good = xlsx(d, "flip.xlsx", [row(i) for i in range(1, 200)])
    data = bytearray(good.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    good.write_bytes(bytes(data))
    return [good], 199


def _parquet_wrong_schema(d):
    table = pa.table({"a": [1, 2], "b": ["x", "y"]})
    pq.write_table(table, d / "wrong.parquet")
    return [d / "wrong.parquet"], 2


def _parquet_odd_types(d):
    table = pa.table(
        {
            "姓名": ["张三", None],
            "身份证件号": pa.array([440106201503011000, None], pa.int64()),
            "所在区县": pa.array([440106.0, 440106.0]),
            "出生日期": pa.array([dt.date(2015, 3, 1), dt.date(1850, 1, 1)]),
            "标签": pa.array([["a", "b"], []], pa.list_(pa.string())),
            "结构": pa.array([{"k": 1}, {"k": None}]),
            "二进制": pa.array([b"\xff\x00", b"ok"], pa.binary()),
        }
    )
    pq.write_table(table, d / "odd.parquet")
    return [d / "odd.parquet"], 2


def _parquet_truncated(d):
    pq.write_table(
        pa.table({"姓名": ["a"], "身份证件号": ["1"], "所在区县": ["440106"]}), d / "t.parquet"
    )
    data = (d / "t.parquet").read_bytes()
    return [put(d, "t.parquet", data[:-20])], 1


def _missing_path(d):
    return [d / "no-such-export.csv"], 0


def _folder_without_exports(d):
    folder = d / "inbox"
    folder.mkdir()
    put(folder, "readme.txt", "not an export")
    put(folder, "old.xls", b"\xd0\xcf\x11\xe0")
    put(folder, ".hidden.csv", csv_text([row(1)]))
    return [folder], 0


def _xlsx_numbers_as_ids(d):
    rows = [row(1), row(2), row(3)]
    rows[0][4] = 440106201503011000
    rows[1][4] = 4.40106201503021e17
    rows[2][0] = 3  # the export key as a number
    return [xlsx(d, "numbers.xlsx", rows)], 3


def _check_line_endings(staged):
    roster = staged.roster
    assert roster["record_id"].tolist() == ["R1", "R2", "R3"]
    assert (roster["grade"] == "三年级").all() and (roster["grade_level"] == 3).all()
    assert not roster.isin(["\r"]).any().any()
    text = roster.drop(columns=["source_row", "grade_level"])
    assert not text.apply(lambda c: c.str.contains("\r", regex=False).fillna(False)).any().any()


def _check_xlsx_dates(staged):
    # Excel cannot hold a date before 1900: the cell is read as something that is not a date
    # (validation reports it), never as a wrong date. Later dates are kept.
    births = staged.roster["birth_date"].tolist()
    assert births[2:] == ["2199-12-31", "2958465"]  # a bare number past 2064 is no serial
    for value in births[:2]:
        assert not pd.isna(value)
        assert pd.to_datetime(value, format="%Y-%m-%d", errors="coerce") is pd.NaT


def _check_delimited(staged):
    roster = staged.roster
    assert roster["name"].notna().all() and (roster["county_code"] == "440106").all()
    assert roster["id_number"].tolist() == IDS[1 : len(roster) + 1]


def _check_numbers_as_ids(staged):
    roster = staged.roster
    assert roster["id_number"].tolist()[:2] == ["440106201503011000", "440106201503021000"]
    assert roster["record_id"].tolist()[2] == "3"


def _xlsx_error_cells(d):
    rows = [row(1), row(2), row(3)]
    rows[0][1] = "#N/A"
    rows[1][3] = "#VALUE!"
    rows[2][4] = "#REF!"
    return [xlsx(d, "errors.xlsx", rows)], 3


def _check_error_cells(staged):
    roster = staged.roster
    # What the clerk saw in the cell, so the problem list can name it.
    assert roster["name"][0] == "#N/A"
    assert roster["birth_date"][1] == "#VALUE!"
    assert roster["id_number"][2] == "#REF!"


def _xlsx_formulas(d):
    rows = [row(1), row(2), row(3)]
    rows[0][1] = "=1+1"
    rows[1][4] = "=A2"
    rows[2][5] = '="440"&"106"'
    return [xlsx(d, "formulas.xlsx", rows)], 3


def _check_formulas(staged):
    # No cached values (never opened in Excel): the cells are empty, never the formula text.
    assert not staged.roster.astype(str).apply(lambda c: c.str.startswith("=")).any().any()
    assert staged.quarantine["field"].tolist() == ["school_county"]


def _xlsx_odd_dates(d):
    rows = [row(1), row(2), row(3), row(4)]
    rows[0][3] = dt.datetime(1850, 1, 1)
    rows[1][3] = dt.date(1899, 12, 31)
    rows[2][3] = dt.datetime(2199, 12, 31)
    rows[3][3] = 2958465  # 9999-12-31, Excel's last day
    return [xlsx(d, "dates.xlsx", rows)], 4


def _csv_odd_dates(d):
    rows = [row(1, birth="1850-01-01"), row(2, birth="0001-01-01"), row(3, birth="2199-12-31")]
    rows.append(row(4, birth="99999999"))
    return [put(d, "dates.csv", csv_text(rows))], 4


def _check_csv_dates(staged):
    assert staged.roster["birth_date"].tolist() == [
        "1850-01-01",
        "0001-01-01",
        "2199-12-31",
        "99999999",
    ]


def _odd_code_points(d):
    rows = [
        row(1, name="张😀"),
        row(2, name="李\u0378\U000e0001"),  # unassigned, a tag character
        row(3, name="王\ue000\U0010fffd", id="4401062015030\U0001f600"),  # private use, emoji
        row(4, name="赵\uffff"),
    ]
    return [put(d, "codepoints.csv", csv_text(rows))], 4


def _check_code_points(staged):
    names = staged.roster["name"].tolist()
    assert names == ["张😀", "李\u0378\U000e0001", "王\ue000\U0010fffd", "赵\uffff"]


def _invisible(d):
    rows = [
        row(1, name="\u200f张三", id="\u202e44010620150301100X"),
        row(2, name="李\u200b四", id="4401062015\u200b03021002"),
        row(3, name="王五\ufeff", id="\u200d440106201503031003\u2060"),
    ]
    return [put(d, "invisible.csv", csv_text(rows))], 3


def _check_invisible(staged):
    roster = staged.roster
    assert roster["id_number"].tolist() == IDS[:3]
    assert roster["name"].tolist() == ["张三", "李四", "王五"]
    kinds = set(staged.normalizations["kind"])
    assert {"blank", "invisible"} <= kinds


def _apostrophes(d):
    rows = [row(1, id="'44010620150301100X"), row(2, id="''440106201503021002")]
    rows[0][0] = "'R1"
    return [put(d, "apostrophe.csv", csv_text(rows))], 2


def _check_apostrophes(staged):
    assert staged.roster["id_number"].tolist() == IDS[:2]
    assert "text_marker" in set(staged.normalizations["kind"])


def _utf16_tab(d):
    text = "\ufeff" + csv_text([row(1), row(2)], sep="\t", end="\r\n")
    return [put(d, "unicode.csv", text.encode("utf-16-le"))], 2


CASES: dict[str, Case] = {
    "empty_file": Case(_empty, "error", "文件为空"),
    "headers_only": Case(_headers_only, "run"),
    "truncated_mid_row": Case(_truncated, "run", "字段数", 1),
    "truncated_in_quotes": Case(_truncated_quote, "run", "", 1),
    "semicolon_delimiter": Case(_semicolon, "run", check=_check_delimited),
    "tab_delimiter": Case(_tab, "run", check=_check_delimited),
    "utf16_tab_text": Case(_utf16_tab, "run", check=_check_delimited),
    "gb18030_row_in_utf8": Case(_mixed_encoding, "run", "无法解码", 1),
    "nul_bytes": Case(_nul, "run", "NUL", 1),
    "crlf_endings": Case(_crlf, "run", check=_check_line_endings),
    "lone_cr_endings": Case(_lone_cr, "run", check=_check_line_endings),
    "ten_mb_field": Case(_huge_field, "run"),
    "ten_thousand_columns": Case(_wide, "run"),
    "duplicated_headers": Case(_duplicate_headers, "run"),
    "duplicated_required_header": Case(_duplicate_required_header, "run"),
    "header_repeated_inside": Case(_header_repeated, "run", "重复的表头行", 2),
    "xlsx_that_is_csv": Case(_xlsx_really_csv, "error", "不是 Excel"),
    "xlsx_truncated": Case(_xlsx_truncated, "error", "Excel"),
    "xlsx_damaged_sheet": Case(_xlsx_damaged_member, "error", "损坏"),
    "xlsx_zeroed_bytes": Case(_xlsx_zip_bytes_flipped, "error", "Excel"),
    "parquet_wrong_schema": Case(_parquet_wrong_schema, "error", "缺少必需的表头"),
    "parquet_odd_types": Case(_parquet_odd_types, "run"),
    "parquet_truncated": Case(_parquet_truncated, "error", "Parquet"),
    "path_missing": Case(_missing_path, "error", "路径不存在"),
    "folder_without_exports": Case(_folder_without_exports, "error", "没有可读取的导出文件"),
    "xlsx_ids_as_numbers": Case(_xlsx_numbers_as_ids, "run", check=_check_numbers_as_ids),
    "xlsx_error_cells": Case(_xlsx_error_cells, "run", check=_check_error_cells),
    "xlsx_formulas": Case(_xlsx_formulas, "run", "所在区县", 1, _check_formulas),
    "xlsx_dates_before_1900_and_far_future": Case(_xlsx_odd_dates, "run", check=_check_xlsx_dates),
    "csv_dates_before_1900_and_far_future": Case(_csv_odd_dates, "run", check=_check_csv_dates),
    "emoji_and_unassigned_code_points": Case(_odd_code_points, "run", check=_check_code_points),
    "rtl_and_zero_width_marks": Case(_invisible, "run", check=_check_invisible),
    "leading_apostrophes": Case(_apostrophes, "run", check=_check_apostrophes),
}

# Cases whose expected outcome the library does not reach yet: (reason) — strict, so a fix shows.
KNOWN_GAPS: dict[str, str] = {}


# ---------------------------------------------------------------- library level


@dataclass
class Outcome:
    kind: str  # "error" or "run"
    rows_written: int
    rows_read: int = 0
    rows_staged: int = 0
    rows_quarantined: int = 0
    message: str = ""


OUTCOMES: dict[str, Outcome] = {}


def attempt(name: str, folder: Path) -> tuple[Outcome, ingest.Staged | InputError, list[Path]]:
    """Read the case's inputs as a run does; any exception but InputError escapes (a crash)."""
    inputs, written = CASES[name].build(folder)
    try:
        staged = ingest.read_exports(ingest.find_exports(inputs), PROVINCE)
    except InputError as error:
        return Outcome("error", written, message=str(error)), error, inputs
    outcome = Outcome(
        "run",
        written,
        staged.rows_read,
        len(staged.roster),
        len(staged.quarantine),
    )
    return outcome, staged, inputs


def check_run(case: Case, outcome: Outcome, staged: ingest.Staged) -> None:
    assert outcome.rows_read == outcome.rows_written, "rows lost or invented while reading"
    assert staged.rows_read == len(staged.roster) + len(staged.quarantine)
    for info in staged.files:
        assert info["rows_read"] == info["rows_staged"] + info["rows_quarantined"]
    assert staged.roster["record_id"].is_unique
    assert len(staged.quarantine) == case.quarantined, staged.quarantine
    quarantine = staged.quarantine
    assert quarantine["reason"].notna().all() and (quarantine["reason"].str.len() > 0).all()
    assert (quarantine["source_row"] >= 2).all()
    if case.expect:
        assert quarantine["reason"].str.contains(case.expect, regex=False).any(), quarantine
    # Every value the roster holds is text pyarrow can store (reports write it as Parquet).
    for column in staged.roster.columns:
        if staged.roster[column].dtype == "string":
            pa.array(staged.roster[column].array)
    if case.check is not None:
        case.check(staged)


def check_error(case: Case, error: InputError, inputs: list[Path]) -> None:
    message = str(error)
    assert any(path.name in error.file for path in inputs), error.file
    assert error.file in message and case.expect in message
    if case.error_row is not None:
        assert error.row == case.error_row


def _case_params():
    for name in CASES:
        marks = []
        if name in KNOWN_GAPS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[name]))
        yield pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize("name", list(_case_params()))
def test_hostile_case(name, tmp_path):
    case = CASES[name]
    outcome, result, inputs = attempt(name, tmp_path)
    OUTCOMES[name] = outcome
    assert outcome.kind == case.outcome, outcome.message
    if isinstance(result, InputError):
        check_error(case, result, inputs)
    else:
        check_run(case, outcome, result)


def test_tally(tmp_path, capsys):
    """How many cases were tried, how many stopped with a clear error, how many were read with
    quarantine, and how many rows were lost (none)."""
    for name in CASES:
        if name not in OUTCOMES:
            folder = tmp_path / name
            folder.mkdir()
            OUTCOMES[name] = attempt(name, folder)[0]
    errors = [o for o in OUTCOMES.values() if o.kind == "error"]
    runs = [o for o in OUTCOMES.values() if o.kind == "run"]
    with_quarantine = [o for o in runs if o.rows_quarantined]
    lost = sum(o.rows_written - o.rows_staged - o.rows_quarantined for o in runs)
    lost += sum(o.rows_read - o.rows_staged - o.rows_quarantined for o in runs)
    figures = {
        "cases": len(OUTCOMES),
        "clear_errors": len(errors),
        "read_through": len(runs),
        "read_with_quarantine": len(with_quarantine),
        "rows_written_in_read_cases": sum(o.rows_written for o in runs),
        "rows_staged": sum(o.rows_staged for o in runs),
        "rows_quarantined": sum(o.rows_quarantined for o in runs),
        "rows_lost": lost,
    }
    with capsys.disabled():
        print("\nhostile corpus:", json.dumps(figures))
    assert figures["cases"] == len(CASES)
    assert len(errors) + len(runs) == len(CASES)
    assert all(o.message for o in errors)
    assert lost == 0


# ---------------------------------------------------------------- through the command line


def published_state(out: Path) -> dict:
    """Every entry of the output folder but hidden ones, and where ``latest`` points."""
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    latest = os.readlink(out / "latest") if (out / "latest").is_symlink() else None
    text = (out / "latest.txt").read_text() if (out / "latest.txt").exists() else None
    return {"names": names, "latest": latest, "latest_text": text}


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory, prefect_harness):
    """An output folder holding one published run made from hostile but readable files."""
    folder = tmp_path_factory.mktemp("hostile_inputs")
    inputs = []
    for name in ("gb18030_row_in_utf8", "nul_bytes", "header_repeated_inside", "lone_cr_endings"):
        sub = folder / name
        sub.mkdir()
        inputs += CASES[name].build(sub)[0]
    out = tmp_path_factory.mktemp("hostile_out")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect_home")))
        code = main(
            ["run", *map(str, inputs), "--province", PROVINCE, "--out", str(out), "--as-of", AS_OF]
        )
    return out, code


def test_cli_run_with_quarantine_publishes_and_conserves(cli_out):
    out, code = cli_out
    assert code == 0
    run_dir = out / os.readlink(out / "latest")
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    rows = manifest["rows"]
    assert rows["holds"] is True
    assert rows["rows_read"] == rows["rows_staged"] + rows["rows_quarantined"]
    assert rows["rows_read"] == 4 + 3 + 5 + 3  # the data rows of the four files
    assert rows["rows_quarantined"] == 1 + 1 + 2
    quarantine = pd.read_parquet(run_dir / "province" / "quarantine.parquet")
    assert len(quarantine) == 4 and quarantine["reason"].str.len().gt(0).all()


@pytest.mark.parametrize(
    "name",
    ["empty_file", "xlsx_damaged_sheet", "parquet_wrong_schema", "path_missing"],
)
def test_cli_refuses_with_a_clear_message_and_publishes_nothing(
    name, cli_out, tmp_path, capsys, monkeypatch
):
    out, _ = cli_out
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    before = published_state(out)
    inputs, _ = CASES[name].build(tmp_path)
    capsys.readouterr()
    code = main(
        ["run", *map(str, inputs), "--province", PROVINCE, "--out", str(out), "--as-of", AS_OF]
    )
    err = capsys.readouterr().err
    assert code == EXIT_INPUT_ERROR
    assert inputs[0].name in err and CASES[name].expect in err
    assert err.strip().splitlines()[-1].startswith("输入错误")
    assert published_state(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(ingest_staging_prefix())]


def ingest_staging_prefix() -> str:
    from xueji_quality.reports.publish import STAGING_PREFIX

    return STAGING_PREFIX
