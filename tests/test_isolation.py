"""County isolation: a county's files hold its own students only.

The one exception is a duplicate group that spans counties: the county's list shows the other
side's records so the clerk can act, but only their school, county, name and masked ID number.
Everything is read back from the files a run publishes (Excel sheets and Parquet), on a generated
multi-county roster, and every file and folder has the modes the reports promise (0o640/0o750)
whatever the umask.
"""

from __future__ import annotations

import os
import re
import stat
from datetime import date
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from xueji_quality import generator, ingest, linkage, reports, validate
from xueji_quality.reports.county_rows import COUNTERPART_NOTE
from xueji_quality.workbook import DUPLICATE_SHEET, PROBLEM_SHEET

PROVINCE = "44"
AS_OF = date(2026, 11, 28)
# A number of the standard layout keeps its first six and last four; any other form (spreadsheet
# damage, a digit missing) shows no digit at all.
MASKED_ID = re.compile(r"^(\d{6}\*{8}[0-9X]{4}|[^0-9]+)$")


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict:
    sample = tmp_path_factory.mktemp("isolation_sample")
    generator.write_sample(sample, 4000, 23, PROVINCE, "csv", counties=4)
    staged = ingest.read_exports([sample / "roster.csv"], PROVINCE)
    problems = validate.validate_roster(staged.roster, PROVINCE, AS_OF)
    duplicates = linkage.find_duplicates(staged.roster).duplicates
    out = tmp_path_factory.mktemp("isolation_out")
    old_umask = os.umask(0)  # the most permissive umask: modes must not depend on it
    try:
        run_id = reports.new_run_id(out, PROVINCE, AS_OF)
        staging = reports.staging_dir(out, run_id)
        counties = reports.write_county_reports(
            staging,
            staged.roster,
            problems,
            duplicates,
            province=PROVINCE,
            run_date=AS_OF,
            rule_catalogue=validate.rule_catalogue(),
        )
        reports.write_province_outputs(
            staging,
            staged.roster,
            problems,
            duplicates,
            staged.quarantine,
            province=PROVINCE,
            run_date=AS_OF,
        )
        modes_before_publish = modes(staging)
        run_dir = reports.publish(staging, out, run_id)
    finally:
        os.umask(old_umask)
    return {
        "out": out,
        "run_dir": run_dir,
        "roster": staged.roster.set_index("record_id"),
        "duplicates": duplicates,
        "counties": [c["county_code"] for c in counties],
        "modes_before_publish": modes_before_publish,
    }


def modes(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): stat.S_IMODE(p.lstat().st_mode)
        for p in [folder, *folder.rglob("*")]
        if not p.is_symlink()
    }


def sheet_frames(path: Path) -> dict[str, pd.DataFrame]:
    """Every list sheet of a workbook as text, by sheet name (header = first row)."""
    workbook = openpyxl.load_workbook(path, read_only=True)
    frames = {}
    for sheet in workbook.worksheets:
        rows = [["" if v is None else str(v) for v in r] for r in sheet.iter_rows(values_only=True)]
        if sheet.title.startswith((PROBLEM_SHEET, DUPLICATE_SHEET)) and rows:
            frames[sheet.title] = pd.DataFrame(rows[1:], columns=rows[0], dtype="string")
        else:
            frames[sheet.title] = pd.DataFrame(rows, dtype="string")
    workbook.close()
    return frames


def county_folders(published: dict) -> list[Path]:
    folders = sorted((published["run_dir"] / "counties").iterdir())
    assert [f.name for f in folders] == sorted(published["counties"])
    return folders


def test_the_roster_spans_counties_and_some_groups_cross_them(published):
    assert len(published["counties"]) >= 4
    duplicates = published["duplicates"]
    spans = duplicates.groupby("group_id")["county_code"].nunique()
    assert (spans > 1).sum() >= 1, "the generated roster has no cross-county duplicate group"


def test_county_parquet_holds_only_its_own_records(published):
    roster = published["roster"]
    for folder in county_folders(published):
        code = folder.name
        problems = pd.read_parquet(folder / "problems.parquet")
        assert (problems["county_code"] == code).all()
        assert (roster.loc[problems["record_id"], "county_code"] == code).all()
        duplicates = pd.read_parquet(folder / "duplicates.parquet")
        own = duplicates["county_code"] == code
        assert (roster.loc[duplicates.loc[own, "record_id"], "county_code"] == code).all()
        # Other counties' rows only as counterparts in groups that hold one of this county's.
        groups_here = set(duplicates.loc[own, "group_id"])
        assert set(duplicates.loc[~own, "group_id"]) <= groups_here
        counterparts = duplicates[~own]
        assert (roster.loc[counterparts["record_id"], "county_code"] != code).all()
        assert list(duplicates.columns) == [
            "group_id",
            "record_id",
            "county_code",
            "school_code",
            "school_name",
            "dup_class",
            "score",
            "reason",
        ]


def test_county_workbook_rows_belong_to_the_county(published):
    roster = published["roster"]
    seen_counterparts = 0
    for folder in county_folders(published):
        code = folder.name
        (workbook,) = folder.glob("*_问题学籍清单.xlsx")
        sheets = sheet_frames(workbook)
        for name, frame in sheets.items():
            if name.startswith(PROBLEM_SHEET) and len(frame):
                records = roster.loc[frame["记录号"]]
                assert (records["county_code"] == code).all(), name
                assert (frame["身份证件号"].to_numpy() == records["id_number"].fillna("")).all()
            if name.startswith(DUPLICATE_SHEET) and len(frame):
                counterpart = frame["备注"] == COUNTERPART_NOTE
                own = frame[~counterpart]
                assert (roster.loc[own["记录号"], "county_code"] == code).all()
                other = frame[counterpart]
                seen_counterparts += len(other)
                assert not other["所在区县"].str.contains(f"（{code}）", regex=False).any()
                # Only school, county, name and masked ID: the rest is blank.
                for column in ("年级", "班级", "学籍号", "记录号"):
                    assert (other[column] == "").all(), column
                ids = other["身份证件号"]
                assert ids[ids != ""].str.match(MASKED_ID).all(), ids.tolist()
                assert set(other["组号"]) <= set(own["组号"])
    assert seen_counterparts >= 1


def test_no_other_county_identifier_appears_anywhere_in_a_county_workbook(published):
    """A full ID number, 学籍号 or record id of another county's student, in any cell of any
    sheet, is a leak (unless this county has a student with the same value)."""
    roster = published["roster"].reset_index()
    for folder in county_folders(published):
        code = folder.name
        here = roster[roster["county_code"] == code]
        elsewhere = roster[roster["county_code"] != code]
        foreign: set[str] = set()
        for column in ("id_number", "student_no", "record_id"):
            values = set(elsewhere[column].dropna()) - set(here[column].dropna())
            foreign |= {v for v in values if len(v) >= 6}
        (workbook,) = folder.glob("*_问题学籍清单.xlsx")
        for name, frame in sheet_frames(workbook).items():
            cells = set(pd.unique(frame.to_numpy().ravel()))
            leaked = cells & foreign
            assert not leaked, (code, name, sorted(leaked)[:5])


def test_files_and_folders_have_their_modes_whatever_the_umask(published):
    for label, found in (
        ("written", published["modes_before_publish"]),
        ("published", modes(published["run_dir"])),
    ):
        assert found, label
        for path, mode in found.items():
            is_dir = (published["run_dir"] / path).is_dir() if path != "." else True
            assert mode == (0o750 if is_dir else 0o640), (label, path, oct(mode))
    for name in ("latest.txt",):
        assert stat.S_IMODE((published["out"] / name).stat().st_mode) == 0o640
