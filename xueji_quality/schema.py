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
    "id_number": (
        "身份证件号",
        "身份证号",
        "身份证号码",
        "证件号码",
        "身份证件号码",
        "公民身份号码",
    ),
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

# 性别 (GB/T 2261.1): words an export may show instead of the code.
SEX_CODES: dict[str, str] = {"1": "1", "2": "2", "男": "1", "女": "2", "男性": "1", "女性": "2"}

# 民族 (GB 3304): code -> name; 97 and 98 are the common additions to the 56 names.
ETHNICITY_NAMES: dict[str, str] = {
    f"{i:02d}": name
    for i, name in enumerate(
        (
            "汉族 蒙古族 回族 藏族 维吾尔族 苗族 彝族 壮族 布依族 朝鲜族 满族 侗族 瑶族 白族 土家族 "
            "哈尼族 哈萨克族 傣族 黎族 傈僳族 佤族 畲族 高山族 拉祜族 水族 东乡族 纳西族 景颇族 "
            "柯尔克孜族 土族 达斡尔族 仫佬族 羌族 布朗族 撒拉族 毛南族 仡佬族 锡伯族 阿昌族 普米族 "
            "塔吉克族 怒族 乌孜别克族 俄罗斯族 鄂温克族 德昂族 保安族 裕固族 京族 塔塔尔族 独龙族 "
            "鄂伦春族 赫哲族 门巴族 珞巴族 基诺族"
        ).split(),
        start=1,
    )
} | {"97": "其他", "98": "外国血统中国籍人士"}

# Name (with or without 族, plus a few common short forms) or code (also unpadded) -> code.
ETHNICITY_CODES: dict[str, str] = (
    {name: code for code, name in ETHNICITY_NAMES.items()}
    | {name.removesuffix("族"): code for code, name in ETHNICITY_NAMES.items() if code < "97"}
    | {code: code for code in ETHNICITY_NAMES}
    | {str(int(code)): code for code in ETHNICITY_NAMES}
    | {"蒙族": "02", "维族": "05", "其它": "97", "外国血统": "98"}
)

# 身份证件类型: words an export may show instead of the code.
ID_TYPE_CODES: dict[str, str] = {
    **{code: code for code in ("1", "2", "6", "7", "8", "9", "A", "Z")},
    "a": "A",
    "z": "Z",
    "居民身份证": "1",
    "身份证": "1",
    "中华人民共和国居民身份证": "1",
    "户口簿": "2",
    "户口本": "2",
    "香港特区护照/身份证明": "6",
    "香港特区护照": "6",
    "香港特区身份证明": "6",
    "澳门特区护照/身份证明": "7",
    "澳门特区护照": "7",
    "澳门特区身份证明": "7",
    "台湾居民来往大陆通行证": "8",
    "境外永久居住证": "9",
    "护照": "A",
    "其他": "Z",
    "其它": "Z",
}
