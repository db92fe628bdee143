"""The standards the roster's numbers follow: one module each, the only place where a check
character, a date inside a number or a region code is computed.

Each module explains its standard in its docstring (with doctests) and speaks the verbs of
python-stdnum for one value: ``compact``, ``validate`` (raises a ``ValueError`` subclass from
``stdnum.exceptions`` with a Chinese message saying what is wrong), ``is_valid``, ``format``, and
what the standard carries (``birth_date``, ``sex``, ``address_code``, ``check_digit`` ...). Beside
each scalar function stands its column form (suffix ``_column``): pandas Series or pyarrow arrays
in, numpy arrays out, read from the Arrow buffers, never a Python string per row.

- ``fixed_width``: text columns as Arrow arrays and fixed-width byte matrices.
- ``dates``: calendar dates (GB/T 7408) inside numbers and in YYYY-MM-DD / YYYY-MM columns.
- ``iso7064``: the ISO 7064 MOD 11-2 check character, and the valid numbers one typo away.
- ``resident_id``: 公民身份号码 (GB 11643-1999), 18 and 15 digits, and the spreadsheet damage it
  suffers.
- ``foreign_pr``: the 2023 外国人永久居留身份证 number.
- ``student_no``: the 全国学籍号 (G, J and L layouts).
- ``gb2260``: administrative division codes (GB/T 2260, from python-stdnum's ``cn/loc.dat``),
  and the county lists built on them.
"""

from __future__ import annotations

from collections.abc import Callable


def accepts(validate: Callable[..., str], *args: object) -> bool:
    """Whether ``validate(*args)`` returns rather than raising a ``ValueError``: python-stdnum's
    ``is_valid`` for every module here."""
    try:
        return bool(validate(*args))
    except ValueError:
        return False
