"""ISO 7064 MOD 11-2: the check character of the resident ID number (GB 11643), of the
residence permits issued under it and of the 2023 foreign permanent residence number.

Over the 17 digits before the check character, with weights W_i = 2^(18-i) mod 11::

    S = sum(d_i * W_i),  W = 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2,  check = (12 - S mod 11) mod 11

a check value of 10 is written X (the table "10X98765432"[S mod 11] says the same). Worked
example of GB 11643: 34052419800101001X has S = 189, 189 mod 11 = 2, check X.

>>> check_digit("34052419800101001")
'X'
>>> is_valid("34052419800101001X"), is_valid("340524198001010010")
(True, False)
>>> validate("340524198001010010")
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidChecksum: 校验码应为 X，不是 0

MOD 11-2 catches every single-digit substitution and every swap of two adjacent characters
(weights of neighbours differ and 11 is prime). So a number failing its check has few valid
numbers one typo away, and they can be computed rather than searched for: for each position the
one digit that makes the sum right is solved for with the inverse of its weight mod 11.

>>> rows, found = one_edit_valid_neighbours(digit_rows(["340524198001010010"]))
>>> texts = ["".join(CHECK_CHARS[v] for v in row) for row in found]
>>> len(texts), all(is_valid(t) for t in texts), "34052419800101001X" in texts
(18, True, True)
"""

from __future__ import annotations

import numpy as np
from stdnum.exceptions import InvalidChecksum, InvalidFormat

from xueji_quality.standards import accepts

LENGTH = 18  # the numbers here: 17 digits and the check character
WEIGHTS = np.array([pow(2, LENGTH - 1 - k, 11) for k in range(LENGTH - 1)], dtype=np.int64)
CHECK_CHARS = "0123456789X"  # check value (0..10) -> character
_INVERSE = np.array([pow(int(w), -1, 11) for w in WEIGHTS], dtype=np.int64)


def _weighted_sum(body: str) -> int:
    n = len(body)
    return sum(int(d) * pow(2, n - k, 11) for k, d in enumerate(body))


def check_digit(body: str) -> str:
    """The check character of the digits ``body`` (all but the check character)."""
    if not (body.isascii() and body.isdigit()):
        raise InvalidFormat(f"校验码只能由数字算出: {body!r}")
    return CHECK_CHARS[(12 - _weighted_sum(body) % 11) % 11]


def validate(number: str) -> str:
    """``number`` if its last character is the right check character of the digits before it."""
    if len(number) < 2 or not (number[:-1].isascii() and number[:-1].isdigit()):
        raise InvalidFormat(f"校验码前应全为数字: {number!r}")
    if number[-1] not in CHECK_CHARS:
        raise InvalidFormat(f"校验码应为数字或 X，不是 {number[-1]!r}")
    expected = check_digit(number[:-1])
    if number[-1] != expected:
        raise InvalidChecksum(f"校验码应为 {expected}，不是 {number[-1]}")
    return number


def is_valid(number: str) -> bool:
    """Whether the last character of ``number`` is the right check character."""
    return accepts(validate, number)


# --- columns -----------------------------------------------------------------------------------


def digit_rows(numbers: list[str]) -> np.ndarray:
    """(n, 18) digit values (X = 10) of a few 18-character numbers typed in code or tests."""
    return np.array([[CHECK_CHARS.index(c) for c in n] for n in numbers], dtype=np.uint8)


def check_values(digits: np.ndarray) -> np.ndarray:
    """uint8 check value (0..10, 10 = X) of the first 17 digit values of each row, a column at
    a time (no int64 matrix)."""
    total = np.zeros(len(digits), dtype=np.int32)
    for k, weight in enumerate(WEIGHTS.tolist()):
        total += digits[:, k].astype(np.int32) * weight
    return ((12 - total % 11) % 11).astype(np.uint8)


def check_ok_column(digits: np.ndarray) -> np.ndarray:
    """True where the 18th digit value is the check value of the first 17."""
    return check_values(digits) == digits[:, LENGTH - 1]


def check_digit_column(digits: np.ndarray) -> np.ndarray:
    """The check character of the first 17 digit values of each row, as a U1 array."""
    return np.array(list(CHECK_CHARS))[check_values(digits)]


def one_edit_valid_neighbours(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numbers passing MOD 11-2 one edit away from each row of ``digits`` ((n, 18) digit values,
    X = 10, each failing its check): (row index of each, (m, 18) uint8 digit values).

    The edits: one of the 17 digits substituted (at most one digit per position can make the sum
    right), the check character replaced by the right one, one of 17 adjacent pairs swapped (the
    last pair is the 17th digit and the check character; an X cannot move into the digits).
    Results come edit by edit, rows ascending within an edit.
    """
    d = np.asarray(digits).astype(np.int64)
    n = len(d)
    last = LENGTH - 1
    total = d[:, :last] @ WEIGHTS
    check = d[:, last]
    rows, made = [], []
    for p in range(last):
        need = (_INVERSE[p] * ((1 - check - total + d[:, p] * WEIGHTS[p]) % 11)) % 11
        ok = (need <= 9) & (need != d[:, p])
        new = d[ok].copy()
        new[:, p] = need[ok]
        rows.append(np.flatnonzero(ok))
        made.append(new)
    new = d.copy()
    new[:, last] = (1 - total) % 11
    rows.append(np.arange(n))
    made.append(new)
    for p in range(last):
        q = p + 1
        if q < last:
            swapped = total - d[:, p] * WEIGHTS[p] - d[:, q] * WEIGHTS[q]
            swapped = swapped + d[:, q] * WEIGHTS[p] + d[:, p] * WEIGHTS[q]
            ok = (d[:, p] != d[:, q]) & ((swapped + check) % 11 == 1)
        else:
            swapped = total - d[:, p] * WEIGHTS[p] + check * WEIGHTS[p]
            ok = (check <= 9) & (check != d[:, p]) & ((swapped + d[:, p]) % 11 == 1)
        new = d[ok].copy()
        new[:, [p, q]] = new[:, [q, p]]
        rows.append(np.flatnonzero(ok))
        made.append(new)
    return np.concatenate(rows), np.concatenate(made).astype(np.uint8)
