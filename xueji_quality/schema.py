"""Canonical roster columns, the header spellings provinces use for them, and their Chinese labels.

Inside the code every field has an English snake_case name; exports and reports speak Chinese.
Every value of a roster is a string (identifiers above all: an ID must never become a number).
Columns an export carries that are not listed here are kept under their original header.
"""

from __future__ import annotations

# Canonical field -> Chinese label used in reports (the first spelling of each alias list).
FIELDS: dict[str, str] = {
    "name": "姓名",
    "sex": "性别",
    "birth_date": "出生日期",
    "ethnicity": "民族",
    "id_type": "身份证件类型",
    "id_number": "身份证件号",
    "student_no": "学籍号",
    "school_code": "学校标识码",
    "school_name": "学校名称",
    "school_county": "所在区县",
    "grade": "年级",
    "class_name": "班级",
    "enroll_date": "入学年月",
    "household_region": "户口所在地",
    "guardian_name": "监护人姓名",
    "phone": "联系电话",
    "export_key": "记录号",
}

# Header spellings seen in provincial exports, mapped to canonical fields. Matching is done after
# normalising the header (full-width to half-width, blanks and BOM stripped).
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "学生姓名"),
    "sex": ("性别", "性别码"),
    "birth_date": ("出生日期", "出生年月日", "出生年月"),
    "ethnicity": ("民族", "民族码"),
    "id_type": ("身份证件类型", "证件类型", "身份证件类型码"),
    "id_number": ("身份证件号", "身份证号", "身份证号码", "证件号码", "身份证件号码", "公民身份号码"),
    "student_no": ("学籍号", "全国学籍号", "学籍辅号"),
    "school_code": ("学校标识码", "学校代码", "学校识别码"),
    "school_name": ("学校名称", "学校", "就读学校"),
    "school_county": ("所在区县", "学校所在地", "区县代码", "所在区县代码", "学校所在区县", "区县"),
    "grade": ("年级", "年级名称", "当前年级"),
    "class_name": ("班级", "班级名称", "班号"),
    "enroll_date": ("入学年月", "入学日期", "入学时间"),
    "household_region": ("户口所在地", "户口所在地区划", "户籍所在地", "户口所在地行政区划"),
    "guardian_name": ("监护人姓名", "监护人", "监护人1姓名", "家长姓名"),
    "phone": ("联系电话", "监护人电话", "监护人联系电话", "手机号码"),
    "export_key": ("记录号", "序号", "记录ID", "学生ID"),
}

ALIAS_TO_FIELD: dict[str, str] = {
    alias: field for field, aliases in HEADER_ALIASES.items() for alias in aliases
}

# Columns every staged row carries besides the fields above.
ROW_COLUMNS: tuple[str, ...] = ("record_id", "source_file", "source_row", "county_code")

# A roster must carry these headers to be read at all; the rest may be absent.
REQUIRED_HEADERS: tuple[str, ...] = ("name", "id_number", "school_county")

# Fields that each record must have filled in (REQUIRED_MISSING).
REQUIRED_VALUES: tuple[str, ...] = (
    "name",
    "sex",
    "birth_date",
    "id_type",
    "school_code",
    "school_name",
    "grade",
    "guardian_name",
)

# Columns of problems.parquet, in order.
PROBLEM_COLUMNS: tuple[str, ...] = (
    "record_id",
    "county_code",
    "rule",
    "severity",
    "field",
    "value",
    "message",
    "suggestion",
)

# Columns of duplicates.parquet, in order.
DUPLICATE_COLUMNS: tuple[str, ...] = (
    "group_id",
    "record_id",
    "county_code",
    "school_code",
    "school_name",
    "dup_class",
    "score",
    "reason",
)

# Columns of quarantine.parquet, in order.
QUARANTINE_COLUMNS: tuple[str, ...] = ("source_file", "source_row", "field", "reason", "raw")

# Grade text as exports show it -> grade level 1..12 (初一 = 7, 高一 = 10).
GRADE_LEVELS: dict[str, int] = {}
_CN_DIGITS = "一二三四五六七八九十"
for _n in range(1, 10):
    _d = _CN_DIGITS[_n - 1]
    GRADE_LEVELS[f"{_d}年级"] = _n
    GRADE_LEVELS[f"{_n}年级"] = _n
for _n, _d in enumerate("一二三", start=1):
    GRADE_LEVELS[f"初{_d}"] = 6 + _n
    GRADE_LEVELS[f"高{_d}"] = 9 + _n
    GRADE_LEVELS[f"高中{_d}年级"] = 9 + _n
    GRADE_LEVELS[f"初中{_d}年级"] = 6 + _n
GRADE_LEVELS["十年级"] = 10
GRADE_LEVELS["十一年级"] = 11
GRADE_LEVELS["十二年级"] = 12
GRADE_LEVELS["10年级"] = 10
GRADE_LEVELS["11年级"] = 11
GRADE_LEVELS["12年级"] = 12

# Grades whose problems must be cleared before graduation (六年级, 九年级/初三, 高三).
GRADUATING_LEVELS: frozenset[int] = frozenset({6, 9, 12})
