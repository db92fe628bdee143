"""The short Chinese name of every rule code: what a county list shows beside the code.

Rule codes (``ID_CHECKSUM``, ``AGE_GRADE``) are for machines and for talking about a rule; a
clerk filters a list by its name (校验码错误, 年龄与年级不符). The names are defined here once;
a code missing from the table is shown as itself.

>>> rule_names(pd.Series(["ID_CHECKSUM", "DUP_ID", "NEW_RULE", None], dtype="string")).tolist()
['身份证号校验码错误', '身份证号重复', 'NEW_RULE', <NA>]
"""

from __future__ import annotations

import pandas as pd

RULE_NAMES: dict[str, str] = {
    # 身份证件号
    "ID_MISSING": "身份证号缺失",
    "ID_SPREADSHEET_DAMAGE": "身份证号被表格损坏",
    "ID_FORMAT": "身份证号格式错误",
    "ID_CHECKSUM": "身份证号校验码错误",
    "ID_PROVINCE_UNKNOWN": "身份证号地址码不存在",
    "ID_DATE": "身份证号出生日期错误",
    "ID_REGION_UNKNOWN": "身份证号区县代码不明",
    "ID_REGION_ERA": "身份证号地址码已停用",
    "FOREIGN_PR_FORMAT": "永久居留证号码错误",
    "BIRTHDATE_MISMATCH": "出生日期与证件号不符",
    "SEX_MISMATCH": "性别与证件号不符",
    # 学籍号
    "STUDENT_NO_FORMAT": "学籍号格式错误",
    "STUDENT_NO_MISMATCH": "学籍号与证件号不符",
    # 其他字段
    "REQUIRED_MISSING": "必填项为空",
    "NAME_CHARS": "姓名含非法字符",
    "BIRTHDATE_INVALID": "出生日期无效",
    "AGE_GRADE": "年龄与年级不符",
    "ENROLL_DATE": "入学年月不合理",
    "PHONE_FORMAT": "联系电话格式不对",
    "SEX_CODE": "性别代码无效",
    "ETHNICITY_CODE": "民族代码无效",
    "ID_TYPE_CODE": "证件类型代码无效",
    "SCHOOL_CODE_FORMAT": "学校标识码格式错误",
    "SCHOOL_PROVINCE": "学校标识码非本省",
    "COUNTY_UNKNOWN": "学校区县代码无效",
    # 重复
    "DUP_ID": "身份证号重复",
    "DUP_FUZZY": "疑似重复",
    "DUP_CROSS_PROVINCE": "外省已有学籍",
    # 公安比对
    "POLICE_ID_NOT_FOUND": "身份证号不存在",
    "POLICE_NAME_MISMATCH": "身份证号与姓名不匹配",
    "POLICE_ID_CANCELLED": "身份证号已注销",
}


def rule_names(rules: pd.Series) -> pd.Series:
    """The short Chinese name of each rule code (the code itself where the table has none)."""
    codes = rules.astype("string")
    return codes.map(RULE_NAMES).fillna(codes).astype("string")
