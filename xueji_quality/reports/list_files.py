"""Names and places of the list files in a run folder: ``<code>_<name>`` stems for county and
school workbooks, the run id a (staging) run folder stands for, and the workbooks a run wrote."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

UNKNOWN_COUNTY = "未知区县"
UNKNOWN_SCHOOL = "未知学校"
SCHOOLS_FOLDER = "schools"


_UNSAFE_NAME = re.compile(r"[\\/:*?\"<>|\x00-\x1f\x7f]|\.\.")
_COUNTY_CODE = re.compile(r"\d{6}")
_NOT_CODE = re.compile(r"[^0-9A-Za-z]")


def county_file_stem(county_code: str, county_name: str) -> str:
    """``<code>_<name>``: the code must be 6 digits; the name loses path separators, control
    characters and '..' (an empty name becomes 未知区县)."""
    if not isinstance(county_code, str) or not _COUNTY_CODE.fullmatch(county_code):
        raise ValueError(f"区县代码必须是 6 位数字: {county_code!r}")
    name = _UNSAFE_NAME.sub("", county_name or "").strip(" .")[:40]
    return f"{county_code}_{name or UNKNOWN_COUNTY}"


def school_file_stem(school_code: str, school_name: str) -> str:
    """``<学校标识码>_<学校名称>`` for a file name: the code keeps letters and digits only (a
    wrong code is a problem of the list, not a path), the name as for a county.

    >>> school_file_stem("2144010301", "广州市/荔湾区..第一小学")
    '2144010301_广州市荔湾区第一小学'
    >>> school_file_stem("", "")
    '无标识码_未知学校'
    """
    code = _NOT_CODE.sub("", school_code or "")[:20] or "无标识码"
    name = _UNSAFE_NAME.sub("", school_name or "").strip(" .")[:40]
    return f"{code}_{name or UNKNOWN_SCHOOL}"


def run_id_of(run_dir: Path) -> str:
    """The run id a run folder stands for: ``<run_id>`` or a staging ``.tmp-<run_id>-<pid>``."""
    name = Path(run_dir).name
    if name.startswith(".tmp-"):
        stem, _, pid = name[len(".tmp-") :].rpartition("-")
        if stem and pid.isdigit():
            return stem
    return name


def iter_county_workbooks(run_dir: Path) -> Iterator[Path]:
    """Every county workbook of a run folder."""
    yield from sorted(Path(run_dir).glob("counties/*/*_问题学籍清单.xlsx"))


def iter_school_workbooks(run_dir: Path, county_code: str = "*") -> Iterator[Path]:
    """Every school workbook of a run folder (of one county, if given)."""
    yield from sorted(Path(run_dir).glob(f"counties/{county_code}/{SCHOOLS_FOLDER}/*.xlsx"))
