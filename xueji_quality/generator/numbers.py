"""ID numbers for generated students, and the register of numbers a roster has given out.

An ID is held as its 17-digit body, one int64: address * 10**11 + YYYYMMDD * 1000 + sequence.
The check character comes from ``standards.iso7064`` (MOD 11-2 of GB 11643); nothing here
computes it on its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xueji_quality.generator.columns import ascii_text, digits, yyyymmdd
from xueji_quality.standards import iso7064

NONE = np.array([], dtype=np.int64)
_CHECK_ASCII = np.frombuffer(iso7064.CHECK_CHARS.encode(), dtype=np.uint8)


def id_body(address: np.ndarray, days: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """17-digit bodies of address codes, birth day numbers and sequence numbers."""
    return (
        np.asarray(address, dtype=np.int64) * 10**11
        + yyyymmdd(days) * 1000
        + np.asarray(seq, dtype=np.int64)
    )


def id_text(body: np.ndarray) -> np.ndarray:
    """18-character ID numbers from 17-digit bodies."""
    matrix = np.empty((len(body), 18), dtype=np.uint8)
    matrix[:, :17] = digits(body, 17)
    matrix[:, 17] = _CHECK_ASCII[iso7064.check_values(matrix[:, :17] - 48)]
    return ascii_text(matrix)


def member(taken: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which of ``values`` are in ``taken`` (sorted int64)."""
    values = np.asarray(values, dtype=np.int64)
    if not len(taken):
        return np.zeros(len(values), dtype=bool)
    if len(values) < 1000:
        pos = np.searchsorted(taken, values).clip(max=len(taken) - 1)
        return taken[pos] == values
    # Searched in sorted order, a large batch walks ``taken`` front to back: many times faster.
    order = np.argsort(values)
    found = np.empty(len(values), dtype=bool)
    pos = np.searchsorted(taken, values[order]).clip(max=len(taken) - 1)
    found[order] = taken[pos] == values[order]
    return found


class Issued:
    """Numbers a roster has given out so far, by kind, each kind a sorted int64 array.

    Kinds: ``body`` (the 17 digits of every resident ID and of every G 学籍号, planted wrong ones
    included), ``invalid`` (18-character ID numbers that fail the check, as base-11 values),
    ``L`` (temporary 学籍号 without the letter), ``J`` (self codes of J 学籍号, 17 digits) and
    ``foreign`` (numbers of other documents, type index * 10**8 + number). A roster built in
    pieces keeps one of these for all its pieces, so no number is given to two students.
    """

    def __init__(self) -> None:
        self._sorted: dict[str, np.ndarray] = {}

    def get(self, kind: str) -> np.ndarray:
        return self._sorted.get(kind, NONE)

    def has(self, kind: str, value: int) -> bool:
        return bool(member(self.get(kind), np.array([value]))[0])

    def add(self, kind: str, values: np.ndarray) -> None:
        # Sort and drop repeats: faster here than np.unique, which hashes.
        new = np.sort(np.asarray(values, dtype=np.int64))
        new = new[np.concatenate([[True], new[1:] != new[:-1]])] if len(new) else new
        old = self.get(kind)
        new = new[~member(old, new)]
        self._sorted[kind] = np.insert(old, np.searchsorted(old, new), new)


def distinct(
    base: np.ndarray, tail: np.ndarray, taken: np.ndarray, rng: np.random.Generator, span: int
) -> np.ndarray:
    """``base + tail``; where a value is in ``taken`` (sorted) or repeats an earlier one of the
    batch, its tail is drawn again from ``0 .. span - 1``."""
    base = np.asarray(base, dtype=np.int64)
    value = base + tail
    for _ in range(100):
        clash = member(taken, value) | pd.Series(value).duplicated(keep="first").to_numpy()
        if not clash.any():
            return value
        idx = np.flatnonzero(clash)
        value[idx] = base[idx] + rng.integers(0, span, size=len(idx))
    raise RuntimeError("could not find free numbers")


def free_bodies(
    taken: np.ndarray,
    body: np.ndarray,
    male: np.ndarray,
    rng: np.random.Generator,
    step: np.ndarray | None = None,
    issued: np.ndarray = NONE,
) -> np.ndarray:
    """Give rows whose body collides with ``taken`` or ``issued`` (both sorted) or each other a
    new sequence number.

    With ``step`` given, the rows come in consecutive pairs (twins) whose sequences must stay
    ``step`` apart, so both members are redrawn together.
    """
    body = body.copy()
    for _ in range(100):
        clash = member(taken, body) | member(issued, body)
        clash |= pd.Series(body).duplicated(keep="first").to_numpy()
        if not clash.any():
            return body
        if step is not None:
            pairs = np.flatnonzero(clash[0::2] | clash[1::2])
            first = body[2 * pairs]
            seq = 2 * rng.integers(0, 498, size=len(pairs)) + male[2 * pairs]
            body[2 * pairs] = first - first % 1000 + seq
            body[2 * pairs + 1] = first - first % 1000 + seq + step[pairs]
        else:
            idx = np.flatnonzero(clash)
            seq = 2 * rng.integers(0, 500, size=len(idx)) + male[idx]
            body[idx] = body[idx] - body[idx] % 1000 + seq
    raise RuntimeError("could not find free ID sequence numbers")
