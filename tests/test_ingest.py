"""Reading exports: encodings, formats, headers, row numbers, record ids, quarantine, conservation."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xueji_quality import ingest, schema
from xueji_quality.errors import InputError
from xueji_quality.ingest import csv_reader

PROVINCE = "44"
HEADER = "记录号,姓名,性别,出生日期,身份证件号,所在区县,学校名称,年级"
ROWS = [
    "R1,张三,男,2015-03-01,44010620150301100X,440106,第一小学,三年级",
    "R2,李四,女,2015/3/2,440106201503021002,天河区,第一小学,初一",
    "R3,王五,1,20150303,440106201503031003,越秀区,第二小学,高三",
]


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def roster_csv(rows: list[str], header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def read(*paths: Path) -> ingest.Staged:
    staged = ingest.read_exports(list(paths), PROVINCE)
    check_invariants(staged)
    return staged


def check_invariants(staged: ingest.Staged) -> None:
    """Conservation, file counts and the roster's dtypes: true of every read."""
    assert staged.rows_read == len(staged.roster) + len(staged.quarantine)
    for info in staged.files:
        assert info["rows_read"] == info["rows_staged"] + info["rows_quarantined"]
    roster = staged.roster
    assert isinstance(roster.index, pd.RangeIndex) and roster.index.start == 0
    for column in roster.columns:
        expected = {"source_row": "int64", "grade_level": "Int8"}.get(column, "string")
        assert roster[column].dtype == expected, column
    assert list(roster.columns[:4]) == list(schema.ROW_COLUMNS)
    assert set(schema.FIELDS) <= set(roster.columns)
    assert roster["record_id"].is_unique
    assert list(staged.quarantine.columns) == list(schema.QUARANTINE_COLUMNS)
    assert staged.quarantine["source_row"].dtype == "int64"
    assert list(staged.normalizations.columns) == ["record_id", "field", "kind", "original"]
    assert staged.normalizations["record_id"].isin(roster["record_id"]).all()


@pytest.mark.parametrize(
    ("encoding", "reported"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030")],
)
def test_encodings(tmp_path, encoding, reported):
    path = write(tmp_path, "roster.csv", roster_csv(ROWS), encoding)
    staged = read(path)
    assert staged.files[0]["encoding"] == reported
    assert staged.roster["name"].tolist() == ["张三", "李四", "王五"]
    assert staged.roster.columns[4] == "name"  # the BOM did not end up in a header
    assert staged.rows_read == 3 and staged.quarantine.empty


def test_mostly_utf8_file_with_one_gb18030_line(tmp_path):
    rows = [
        f"R{i},学生{i},男,2015-03-01,44010620150301100X,440106,第一小学,三年级" for i in range(60)
    ]
    body = roster_csv(rows).encode("utf-8")
    bad = "R99,赵六,女,2015-03-01,44010620150301100X,440106,第一小学,三年级\n".encode("gb18030")
    path = tmp_path / "mixed.csv"
    path.write_bytes(body + bad)
    staged = read(path)
    assert len(staged.roster) == 60
    assert staged.quarantine["reason"].str.contains("无法解码的字节").tolist() == [True]
    assert staged.quarantine["source_row"].tolist() == [62]
    assert "含无法解码的字节" in staged.files[0]["encoding"]


def test_header_aliases_unknown_and_duplicated_columns(tmp_path):
    text = "姓名,证件号码,所在区县,备注,备注,身份证号\n张三,44010620150301100X,440106,a,b,c\n"
    staged = read(write(tmp_path, "a.csv", text))
    row = staged.roster.iloc[0]
    assert row["id_number"] == "44010620150301100X"
    assert row["备注"] == "a" and row["备注#2"] == "b"
    # A second column of the same field is kept under its own header, not merged.
    assert row["身份证号"] == "c"
    assert staged.files[0]["columns"]["证件号码"] == "id_number"
    assert any("备注#2" in note for note in staged.files[0]["notes"])
    assert pd.isna(row["birth_date"])  # a field the file lacks is <NA>


def test_full_width_and_spaced_headers(tmp_path):
    text = "\ufeff 姓 名 ,身份证号,区县代码\n张三,44010620150301100X,440106\n"
    staged = read(write(tmp_path, "a.csv", text))
    assert staged.roster["name"].tolist() == ["张三"]


def test_missing_required_header(tmp_path):
    path = write(tmp_path, "a.csv", "姓名,出生日期\n张三,2015-03-01\n")
    with pytest.raises(InputError) as error:
        ingest.read_exports([path], PROVINCE)
    assert error.value.file == "a.csv"
    assert "身份证件号" in error.value.message and "所在区县" in error.value.message


def test_dates_normalised_and_recorded(tmp_path):
    rows = [
        "R1,张三,男,42064,44010620150301100X,440106,第一小学,三年级",
        "R2,李四,女,2015/3/2,440106201503021002,440106,第一小学,三年级",
        "R3,王五,男,20150303,440106201503031003,440106,第一小学,三年级",
        "R4,赵六,男,2015-03-04,440106201503041004,440106,第一小学,三年级",
    ]
    staged = read(write(tmp_path, "a.csv", roster_csv(rows)))
    assert staged.roster["birth_date"].tolist() == [
        "2015-03-01",
        "2015-03-02",
        "2015-03-03",
        "2015-03-04",
    ]
    dates = staged.normalizations.query("field == 'birth_date'")
    assert dates[["record_id", "kind", "original"]].values.tolist() == [
        ["R1", "date_format", "42064"],
        ["R2", "date_format", "2015/3/2"],
        ["R3", "date_format", "20150303"],
    ]
    assert staged.roster["sex"].tolist() == ["1", "2", "1", "1"]
    assert staged.roster["grade_level"].tolist() == [3, 3, 3, 3]


def test_county_names_mapped_and_unknown_quarantined(tmp_path):
    rows = [
        "R1,张三,男,2015-03-01,44010620150301100X,天河区,第一小学,三年级",
        "R2,李四,女,2015-03-01,440106201503021002,某某区,第一小学,三年级",
        "R3,王五,男,2015-03-01,440106201503031003,,第一小学,三年级",
        "R4,赵六,男,2015-03-01,440106201503041004,１１０１０５,第一小学,三年级",
    ]
    staged = read(write(tmp_path, "a.csv", roster_csv(rows)))
    assert staged.roster["county_code"].tolist() == ["440106", "110105"]
    assert staged.roster["record_id"].tolist() == ["R1", "R4"]
    quarantine = staged.quarantine
    assert quarantine["source_row"].tolist() == [3, 4]
    assert quarantine["field"].tolist() == ["school_county", "school_county"]
    assert "'某某区' 不是本省区县名称" in quarantine["reason"][0]
    assert quarantine["raw"][0].startswith("R2,李四,")


def test_record_ids(tmp_path):
    rows = [
        "R1,张三,男,2015-03-01,44010620150301100X,440106,第一小学,三年级",
        ",李四,女,2015-03-01,440106201503021002,440106,第一小学,三年级",
        "R1,王五,男,2015-03-01,440106201503031003,440106,第一小学,三年级",
    ]
    first = write(tmp_path, "a.csv", roster_csv(rows))
    second = write(tmp_path, "b.csv", roster_csv(["R1,赵六,男,,1,440106,,"]))
    staged = read(first, second)
    assert staged.roster["record_id"].tolist() == ["R1", "a.csv:3", "R1@a.csv:4", "R1@b.csv:2"]
    assert staged.roster["source_row"].tolist() == [2, 3, 4, 2]


def test_record_id_fallback_without_key_column(tmp_path):
    text = "姓名,身份证号,所在区县\n张三,1,440106\n李四,2,440106\n"
    staged = read(write(tmp_path, "k.csv", text))
    assert staged.roster["record_id"].tolist() == ["k.csv:2", "k.csv:3"]
    assert staged.roster["export_key"].isna().all()


def test_same_file_name_in_two_folders(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    text = "姓名,身份证号,所在区县\n张三,1,440106\n"
    staged = read(write(tmp_path / "a", "r.csv", text), write(tmp_path / "b", "r.csv", text))
    assert staged.roster["source_file"].tolist() == ["r.csv", "b/r.csv"]
    assert staged.roster["record_id"].tolist() == ["r.csv:2", "b/r.csv:2"]


def test_wrong_field_counts_and_row_numbers(tmp_path):
    rows = [
        ROWS[0],
        "R2,李四,女",  # too few
        ROWS[1].replace("R2", "R3"),
        "R4,赵六,男,2015-03-01,440106201503041004,440106,第一小学,三年级,多余",  # too many
        '"R5","钱""七",男,2015-03-01,"44010620150305100\n5",440106,第一小学,三年级',
        ROWS[2].replace("R3", "R6"),
    ]
    staged = read(write(tmp_path, "a.csv", roster_csv(rows)))
    assert staged.roster["record_id"].tolist() == ["R1", "R3", "R5", "R6"]
    assert staged.roster["source_row"].tolist() == [2, 4, 6, 7]
    assert staged.roster["name"][2] == '钱"七'
    quarantine = staged.quarantine
    assert quarantine["source_row"].tolist() == [3, 5]
    assert quarantine["reason"].tolist() == ["字段数为 3，表头为 8 列", "字段数为 9，表头为 8 列"]
    assert quarantine["raw"][0] == "R2,李四,女"
    assert quarantine["field"].isna().all()


@pytest.mark.parametrize("chunk", [5, 6, 7, 8])
def test_encoding_found_whatever_chunk_cuts_a_character(tmp_path, monkeypatch, chunk):
    # Chunks of 5 to 8 bytes cut the three- and four-byte characters at every place.
    monkeypatch.setattr(csv_reader, "CHUNK_BYTES", chunk)
    text = "学籍号,姓名𠀀\nG1,张三\n"
    good = tmp_path / "good.csv"
    good.write_bytes(text.encode("utf-8"))
    assert csv_reader.detect_encoding(good)[:2] == ("utf-8", True)
    cut_short = tmp_path / "cut.csv"
    cut_short.write_bytes(text.encode("utf-8") + "张".encode()[:2])
    assert csv_reader.detect_encoding(cut_short)[:2] != ("utf-8", True)
    gb = tmp_path / "gb.csv"
    gb.write_bytes(text.replace("𠀀", "").encode("gb18030"))
    assert csv_reader.detect_encoding(gb)[0] == "gb18030"


def test_row_numbers_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_BYTES", 4096)
    rows = []
    for i in range(2, 2002):
        if i % 97 == 0:
            rows.append(f"B{i},坏行")
        else:
            rows.append(f"R{i},学生,男,2015-03-01,44010620150301100X,440106,第一小学,三年级")
    staged = read(write(tmp_path, "a.csv", roster_csv(rows)))
    assert len(staged.quarantine) == sum(1 for i in range(2, 2002) if i % 97 == 0)
    written = staged.quarantine["raw"].str.extract(r"^B(\d+),")[0].astype(int)
    assert (written == staged.quarantine["source_row"]).all()
    numbers = staged.roster["record_id"].str.slice(1).astype(int)
    assert (numbers == staged.roster["source_row"]).all()


def test_truncated_last_row_is_quarantined(tmp_path):
    text = roster_csv(ROWS[:2]) + "R3,王五,男,2015-03-03,4401062015"
    staged = read(write(tmp_path, "cut.csv", text))
    assert staged.rows_read == 3
    assert staged.roster["record_id"].tolist() == ["R1", "R2"]
    assert staged.quarantine["source_row"].tolist() == [4]
    assert staged.quarantine["raw"][0] == "R3,王五,男,2015-03-03,4401062015"


def test_truncated_inside_quotes_is_quarantined(tmp_path):
    text = roster_csv(ROWS[:2]) + 'R3,"王五'
    staged = read(write(tmp_path, "cut.csv", text))
    assert staged.rows_read == 3 and len(staged.quarantine) == 1


def test_nul_bytes_and_repeated_header_are_quarantined(tmp_path):
    rows = [ROWS[0], HEADER, ROWS[1].replace("李四", "李\x00四"), ROWS[2]]
    staged = read(write(tmp_path, "a.csv", roster_csv(rows)))
    assert staged.roster["record_id"].tolist() == ["R1", "R3"]
    assert staged.quarantine["source_row"].tolist() == [3, 4]
    assert staged.quarantine["reason"][0] == "重复的表头行"
    assert "NUL" in staged.quarantine["reason"][1]


def test_empty_file(tmp_path):
    with pytest.raises(InputError, match="文件为空"):
        ingest.read_exports([write(tmp_path, "empty.csv", "")], PROVINCE)


def test_blank_first_line(tmp_path):
    with pytest.raises(InputError, match="没有表头"):
        ingest.read_exports([write(tmp_path, "blank.csv", "\n\n")], PROVINCE)


def test_headers_only_file(tmp_path):
    staged = read(write(tmp_path, "h.csv", HEADER + "\n"))
    assert staged.rows_read == 0 and staged.roster.empty and staged.quarantine.empty
    assert staged.files[0]["rows_read"] == 0


def test_headers_only_without_newline(tmp_path):
    staged = read(write(tmp_path, "h.csv", HEADER))
    assert staged.rows_read == 0 and staged.roster.empty


def test_unsupported_extension(tmp_path):
    with pytest.raises(InputError, match="不支持的文件类型"):
        ingest.read_exports([write(tmp_path, "a.xls", "x")], PROVINCE)


def xlsx_rows() -> list[list[object]]:
    return [
        ["姓名", "身份证件号", "出生日期", "所在区县", "入学年月", "其他信息"],
        ["张三", 440106201503011000, dt.date(2015, 3, 1), "天河区", 44440, 3.5],
        [None, None, None, None, None, None],
        ["李四", "44010620150302100X", 42065, 440106, "2021-09", None],
        ["王五", 4.40103e17, dt.datetime(2015, 3, 3), "越秀区", dt.datetime(2021, 9, 1), True],
    ]


def test_xlsx_cells_read_as_text(tmp_path):
    workbook = openpyxl.Workbook()
    for row in xlsx_rows():
        workbook.active.append(row)
    path = tmp_path / "r.xlsx"
    workbook.save(path)
    staged = read(path)
    roster = staged.roster
    # The ID stored as a number keeps the digits Excel kept: spreadsheet damage, left as text.
    assert roster["id_number"].tolist() == [
        "440106201503011000",
        "44010620150302100X",
        "440103000000000000",
    ]
    assert roster["birth_date"].tolist() == ["2015-03-01", "2015-03-02", "2015-03-03"]
    assert roster["enroll_date"].tolist() == ["2021-09", "2021-09", "2021-09"]
    assert roster["county_code"].tolist() == ["440106", "440106", "440104"]
    assert roster["其他信息"].tolist() == ["3.5", "", "TRUE"]
    assert roster["source_row"].tolist() == [2, 4, 5]  # the empty sheet row 3 is skipped
    assert roster["record_id"].tolist() == ["r.xlsx:2", "r.xlsx:4", "r.xlsx:5"]
    assert staged.files[0]["format"] == "xlsx" and len(staged.files[0]["sha256"]) == 64


def test_xlsx_that_is_not_a_zip(tmp_path):
    path = write(tmp_path, "fake.xlsx", roster_csv(ROWS))
    with pytest.raises(InputError, match="不是 zip"):
        ingest.read_exports([path], PROVINCE)


def test_corrupt_xlsx(tmp_path):
    path = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(InputError, match="损坏"):
        ingest.read_exports([path], PROVINCE)


def test_parquet_columns_cast_to_text(tmp_path):
    table = pa.table(
        {
            "记录号": pa.array([1, 2], pa.int64()),
            "姓名": ["张三", None],
            "身份证号": pa.array([4.40106201503011e17, 12.5]),
            "区县代码": pa.array([440106.0, 440104.0]),
            "出生日期": pa.array([dt.date(2015, 3, 1), dt.date(2015, 3, 2)]),
        }
    )
    path = tmp_path / "r.parquet"
    pq.write_table(table, path)
    staged = read(path)
    roster = staged.roster
    assert roster["record_id"].tolist() == ["1", "2"]
    assert roster["name"].tolist() == ["张三", ""]
    assert roster["id_number"].tolist() == ["440106201503011000", "12.5"]
    assert roster["county_code"].tolist() == ["440106", "440104"]
    assert roster["birth_date"].tolist() == ["2015-03-01", "2015-03-02"]
    assert roster["source_row"].tolist() == [2, 3]


def test_parquet_that_cannot_be_opened(tmp_path):
    path = write(tmp_path, "bad.parquet", "not parquet at all")
    with pytest.raises(InputError, match="Parquet"):
        ingest.read_exports([path], PROVINCE)


def test_parquet_missing_required_columns(tmp_path):
    path = tmp_path / "few.parquet"
    pq.write_table(pa.table({"姓名": ["张三"]}), path)
    with pytest.raises(InputError, match="缺少必需的表头"):
        ingest.read_exports([path], PROVINCE)


def test_many_files_of_every_format(tmp_path):
    csv_path = write(tmp_path, "a.csv", roster_csv(ROWS), "gb18030")
    parquet_path = tmp_path / "b.parquet"
    pq.write_table(
        pa.table({"姓名": ["赵六"], "身份证号": ["1"], "所在区县": ["440106"], "籍贯": ["x"]}),
        parquet_path,
    )
    staged = read(csv_path, parquet_path)
    assert staged.roster["source_file"].tolist() == ["a.csv", "a.csv", "a.csv", "b.parquet"]
    assert staged.roster["籍贯"].tolist() == [pd.NA, pd.NA, pd.NA, "x"]
    assert [f["rows_read"] for f in staged.files] == [3, 1]


def test_empty_run_has_typed_columns():
    staged = ingest.read_exports([], PROVINCE)
    check_invariants(staged)
    assert staged.roster.empty and staged.rows_read == 0


def test_find_exports(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ("in/b.csv", "in/a.xlsx", "in/sub/c.parquet", "in/notes.txt", "in/~$a.xlsx"):
        (tmp_path / name).write_text("x")
    found = ingest.find_exports([tmp_path / "in"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "in/a.xlsx",
        "in/b.csv",
        "in/sub/c.parquet",
    ]
    with pytest.raises(InputError, match="路径不存在"):
        ingest.find_exports([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="没有可读取"):
        ingest.find_exports([tmp_path / "empty"])
