"""Blocking (建立候选对) through recordlinkage's Index: one index algorithm per pass kind.

Comparing every pair of a province is out of the question (10^12 pairs for a million rows), so
each pass groups records by a key and only records sharing a key become candidates. The passes
are declared in config/linkage.json (see ``linkage.passes``); each becomes an instance of one of
the classes below, subclasses of ``recordlinkage.base.BaseIndexAlgorithm``, added to a
``recordlinkage.Index``, whose ``index(frame)`` returns the union of their pairs as a MultiIndex
of roster positions (a < b). The frame is ``Records.frame()``, the positional view of the
records; the algorithms read the Records behind it.

The passes of the shipped config:

- ``id``: the same normalised ID number — the Ministry's class 1 (身份证号重复).
- ``student_no``: the same 学籍号, and a G 学籍号 carrying another record's ID number (a damaged
  ID field often sits next to an intact 学籍号).
- ``id_neighbour``: IDs failing their check, matched with the valid IDs one edit away and with
  each other on masked positions and canonical adjacent pairs (``linkage.neighbours``).
- ``name_birth``: the cleaned name and the birth date (姓名+出生日期).
- ``pinyin_birth``: the reading of the name (zhang wei for 张伟 and 张玮) with the birth year and
  the unordered pair {month, day}, so homophones and day/month swaps fall into one block.
- ``guardian_birth``: guardian and the birth year with the unordered {month, day}.
- ``name_id_parts``: the reading of the name with the address code and the sequence of the ID: a
  copy whose birth date moved together with the date inside a re-made (check-valid) ID keeps the
  other parts of the number, but falls into none of the birth-date blocks.
- ``name_id_birth``: the reading of the name with the address code and the date part of the ID.

The declared key passes form pairs around records without a valid, consistent ID (see
``consistency``): each such record is paired with the members of its block.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import recordlinkage
from recordlinkage.base import BaseIndexAlgorithm

from xueji_quality.linkage.blocks import (
    match_values,
    pairs_in_blocks,
    rows_where,
    sub_block_window,
)
from xueji_quality.linkage.keys import agree_or_missing, block_keys, part_codes
from xueji_quality.linkage.neighbours import KEY_FAMILIES, valid_neighbour_pairs
from xueji_quality.linkage.passes import DEFAULT_SOURCE, PassSpec, declared_passes
from xueji_quality.linkage.records import (
    STUDENT_NO_LETTERS,
    Records,
    pair_index,
    pair_positions,
)
from xueji_quality.linkage.text import code_texts
from xueji_quality.standards import resident_id


def _id_text(value: int) -> str:
    return "".join("0123456789X"[d] for d in resident_id.values_to_digits(np.array([value]))[0])


def _student_no_text(key: int) -> str:
    letter = {v: k for k, v in STUDENT_NO_LETTERS.items()}[key % 4]
    return letter + _id_text(key // 4)


class DeclaredPass(BaseIndexAlgorithm):
    """A declared pass over the Records behind the frame recordlinkage hands it.

    After ``index`` the pass keeps what it found for the stats: ``pair_count`` (its own pairs,
    before the union with the other passes) and ``oversized`` (its blocks above the cap).
    """

    def __init__(self, spec: PassSpec, records: Records) -> None:
        super().__init__(verify_integrity=True)
        self.spec, self.records = spec, records
        self.name = spec.name
        self.pair_count = 0
        self.oversized: list[dict] = []

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self.spec.name}>"

    def _dedup_index(self, frame: pd.DataFrame) -> pd.MultiIndex:
        if not frame.index.equals(pd.RangeIndex(self.records.n)):
            raise ValueError(f"{self!r}: the frame must be Records.frame() of the records indexed")
        self.oversized = []
        a, b = self._pairs()
        n = max(self.records.n, 1)
        codes = np.unique(np.asarray(a, np.int64) * n + np.asarray(b, np.int64))
        self.pair_count = len(codes)
        return pair_index(codes // n, codes % n)

    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _note_oversized(self, labels, sizes, handled: str = "skipped") -> None:
        for label, size in zip(labels, sizes, strict=True):
            self.oversized.append(
                {"pass": self.name, "key": label, "size": int(size), "handled": handled}
            )


class KeyPass(DeclaredPass):
    """Kind ``key``: records sharing the key built from the declared parts ``on``."""

    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        spec, records = self.spec, self.records
        rows, left = None, None
        if spec.one_side_without_consistent_id:
            # Only blocks holding a record without a valid, consistent ID can give pairs: their
            # keys first, then the records with such a key, found a slice of rows at a time.
            without = rows_where(records.n, lambda part: ~records.id_consistent(part))
            left_keys = block_keys(records, spec.parts, without)
            wanted = pd.Index(np.unique(left_keys[left_keys >= 0]))
            rows = rows_where(
                records.n,
                lambda part: wanted.get_indexer(block_keys(records, spec.parts, part)) >= 0,
            )
            left = ~records.id_consistent(rows)
        keys = block_keys(records, spec.parts, rows)
        agree = spec.agree_on_one_of
        orders = None
        if spec.oversized == "sub_block":
            orders = [part_codes(records, p, rows)[0] for p in agree]
            orders = orders or [np.zeros(len(keys), np.int8)]
        a, b, big_keys, big_sizes = pairs_in_blocks(
            keys, spec.size_cap, rows, left=left, orders=orders, pair_budget=spec.pair_budget
        )
        del orders
        if agree:
            keep = agree_or_missing(records, list(agree), a, b)
            a, b = a[keep], b[keep]
        handled = "skipped"
        if spec.oversized == "sub_block":
            members = int(np.sum(big_sizes))
            width = sub_block_window(spec.size_cap, spec.pair_budget, members, max(1, len(agree)))
            handled = "sub-blocked" if width == spec.size_cap else f"sub-blocked, window {width}"
        labels = [self._describe(keys, rows, int(key)) for key in big_keys]
        self._note_oversized(labels, big_sizes, handled)
        return a, b

    def _describe(self, keys: np.ndarray, rows: np.ndarray | None, key: int) -> str:
        """Readable text of an oversized block's key: the ID number of an ID block, else the
        first member's name (guardian, for a guardian key) and birth date."""
        first_part = self.spec.parts[0]
        if len(self.spec.parts) == 1 and first_part.field == "id_number":
            if first_part.transform is None:
                return _id_text(key)
        records = self.records
        first = int(np.flatnonzero(keys == key)[0])
        row = first if rows is None else int(rows[first])
        codes, values = (
            (records.guardian_code, records.guardians)
            if first_part.field == "guardian"
            else (records.name_code, records.names)
        )
        label = code_texts(values, codes[row : row + 1])[0].as_py()
        y, m, d = records.birth_year[row], records.birth_month[row], records.birth_day[row]
        return f"{label}|{y:04d}-{m:02d}-{d:02d}"


class StudentNumberPass(DeclaredPass):
    """Kind ``student_no``: the same 学籍号 (``student_no``), and a G 学籍号 carrying another
    record's valid ID (``carried_id(student_no)``).

    Two records holding "G" + their own ID and the same 学籍号 hold the same ID: the id pass has
    them. So blocks are formed around the other 学籍号 (kind 2) only.
    """

    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        records, keys_of = self.records, {p.text for p in self.spec.parts}
        other_rows, other_keys = records.student_no_rows, records.student_no_keys
        parts_a, parts_b = [], []
        if "student_no" in keys_of:
            wanted = pd.Index(np.unique(other_keys))
            own_rows = rows_where(
                records.n,
                lambda rows: (
                    (records.student_no_kind[rows] == 1)
                    & (wanted.get_indexer(records.id_value[rows] * 4 + 1) >= 0)
                ),
            )
            a, b, big_keys, big_sizes = pairs_in_blocks(
                np.r_[other_keys, records.id_value[own_rows] * 4 + 1],
                self.spec.size_cap,
                np.r_[other_rows, own_rows],
                left=np.r_[np.ones(len(other_rows), bool), np.zeros(len(own_rows), bool)],
            )
            parts_a.append(a)
            parts_b.append(b)
            self._note_oversized([_student_no_text(int(k)) for k in big_keys], big_sizes)
        if "carried_id(student_no)" in keys_of:
            carries = records.student_no_g_valid
            a, b = match_values(
                other_rows[carries], other_keys[carries] // 4, records.id_value, records.id_valid
            )
            keep = a != b
            parts_a.append(a[keep])
            parts_b.append(b[keep])
        return np.concatenate(parts_a), np.concatenate(parts_b)


class IdNeighbourPass(DeclaredPass):
    """Kind ``id_neighbour``: IDs failing their check, by the declared neighbour keys."""

    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        records = self.records
        invalid = rows_where(
            records.n, lambda rows: (records.id_value[rows] >= 0) & ~records.id_valid[rows]
        )
        parts_a, parts_b = [], []
        values, digits = None, None
        for part in self.spec.parts:
            if part.transform == "one_edit_valid_neighbours":
                a, b = valid_neighbour_pairs(records, invalid)
                parts_a.append(a)
                parts_b.append(b)
                continue
            if digits is None:
                values, digits = records.id_value[invalid], records.digits(invalid)
            labels, sizes = [], []
            for label, keys in KEY_FAMILIES[part.transform](values, digits):
                a, b, big_keys, big_sizes = pairs_in_blocks(
                    pd.factorize(keys)[0], self.spec.size_cap, invalid
                )
                parts_a.append(a)
                parts_b.append(b)
                labels += [label] * len(big_keys)
                sizes += list(big_sizes)
            self._note_oversized(labels, sizes)
        return np.concatenate(parts_a), np.concatenate(parts_b)


PASS_KINDS: dict[str, type[DeclaredPass]] = {
    "key": KeyPass,
    "student_no": StudentNumberPass,
    "id_neighbour": IdNeighbourPass,
}


def candidate_index(
    records: Records, config: dict, source: str = DEFAULT_SOURCE
) -> recordlinkage.Index:
    """A recordlinkage Index holding one algorithm per declared pass, in the order of ``passes``."""
    indexer = recordlinkage.Index()
    indexer.add([PASS_KINDS[spec.kind](spec, records) for spec in declared_passes(config, source)])
    return indexer


def candidate_links(
    records: Records, config: dict, source: str = DEFAULT_SOURCE
) -> tuple[pd.MultiIndex, dict]:
    """Union of all declared passes as a MultiIndex of positions (a < b, sorted), and per-pass
    stats (pairs per pass, oversized blocks)."""
    indexer = candidate_index(records, config, source)
    if records.n < 2 or not indexer.algorithms:  # no pair can be formed
        pairs = pair_index(np.zeros(0, np.int64), np.zeros(0, np.int64))
    else:
        pairs = indexer.index(records.frame())
    a, b = pair_positions(pairs)
    codes = a * max(records.n, 1) + b
    if len(codes) > 1 and not (codes[1:] > codes[:-1]).all():
        pairs = pairs[np.argsort(codes, kind="stable")]
    stats = {
        "candidate_pairs": int(len(pairs)),
        "pass_pairs": {alg.name: int(alg.pair_count) for alg in indexer.algorithms},
        "oversized_blocks": [entry for alg in indexer.algorithms for entry in alg.oversized],
    }
    return pairs, stats


def candidate_pairs(
    records: Records, config: dict, source: str = DEFAULT_SOURCE
) -> tuple[np.ndarray, np.ndarray, dict]:
    """``candidate_links`` as (a, b) position arrays with a < b, and the stats."""
    pairs, stats = candidate_links(records, config, source)
    a, b = pair_positions(pairs)
    return a, b, stats
