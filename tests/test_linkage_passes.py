"""Blocking passes declared as data: each declared pass and key part yields the pairs it exists
for; unknown passes, kinds, options, fields and transforms are configuration errors; the passes
run as recordlinkage index algorithms and the fields as recordlinkage compare features."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import recordlinkage
from linkage_rows import roster, valid_id
from recordlinkage.base import BaseCompareFeature, BaseIndexAlgorithm

from xueji_quality.errors import InputError
from xueji_quality.linkage import compare as compare_module
from xueji_quality.linkage import find_duplicates, load_config
from xueji_quality.linkage.compare import comparator, compare_links, compare_pairs
from xueji_quality.linkage.index import candidate_index, candidate_links, candidate_pairs
from xueji_quality.linkage.passes import LinkageConfigError
from xueji_quality.linkage.records import pair_positions, prepare_records
from xueji_quality.standards import iso7064

AS_OF = "2026-11-28"


def changed(number: str, position: int, by: int = 3) -> str:
    """The number with one digit replaced (a single substitution always fails MOD 11-2)."""
    digit = str((int(number[position]) + by) % 10)
    return number[:position] + digit + number[position + 1 :]


def swapped(number: str, position: int) -> str:
    return number[:position] + number[position + 1] + number[position] + number[position + 2 :]


def two_failing_one_swap_apart() -> tuple[str, str]:
    """Two IDs failing their check that are equal once an adjacent pair is put in order."""
    base = changed(valid_id(25), 15)
    for position in range(6, 14):
        other = swapped(base, position)
        if other != base and not iso7064.is_valid(other):
            return base, other
    raise AssertionError("no swap keeps both numbers failing their check")


SWAP_A, SWAP_B = two_failing_one_swap_apart()

# One pair per declared pass, each made so that it is the pass's to find. Every record has a
# guardian of its own unless the pair shares one; all share BASE's birth date and household.
ROWS = [
    # id: one valid number on two records that share nothing else.
    {"record_id": "id_a", "name": "周子涵", "id_number": valid_id(11), "guardian_name": "周建"},
    {"record_id": "id_b", "name": "吴思琪", "id_number": valid_id(11), "guardian_name": "吴强"},
    # student_no: one temporary L number on two registrations with different, valid IDs.
    {
        "record_id": "sn_a",
        "name": "郑浩然",
        "id_number": valid_id(13),
        "student_no": "L" + valid_id(99, birth="20120401"),
        "guardian_name": "郑军",
    },
    {
        "record_id": "sn_b",
        "name": "冯雨桐",
        "id_number": valid_id(15),
        "student_no": "L" + valid_id(99, birth="20120401"),
        "guardian_name": "冯涛",
    },
    # carried_id(student_no): the ID field is empty, the G 学籍号 carries the other's number.
    {"record_id": "cid_a", "name": "陈子轩", "id_number": valid_id(17), "guardian_name": "陈刚"},
    {
        "record_id": "cid_b",
        "name": "褚一鸣",
        "id_number": None,
        "student_no": "G" + valid_id(17),
        "guardian_name": "褚平",
    },
    # one_edit_valid_neighbours: a typo of another record's valid number.
    {"record_id": "nb_a", "name": "卫嘉怡", "id_number": valid_id(21), "guardian_name": "卫东"},
    {
        "record_id": "nb_b",
        "name": "蒋欣然",
        "id_number": changed(valid_id(21), 10),
        "guardian_name": "蒋勇",
    },
    # masked_position: two typos of one number that is not in the roster, at one position.
    {
        "record_id": "mask_a",
        "name": "沈梓涵",
        "id_number": changed(valid_id(23), 8, by=3),
        "guardian_name": "沈磊",
    },
    {
        "record_id": "mask_b",
        "name": "韩子墨",
        "id_number": changed(valid_id(23), 8, by=5),
        "guardian_name": "韩斌",
    },
    # adjacent_pair_canonical: two failing numbers one adjacent swap apart.
    {"record_id": "swap_a", "name": "杨雨涵", "id_number": SWAP_A, "guardian_name": "杨帆"},
    {"record_id": "swap_b", "name": "朱浩宇", "id_number": SWAP_B, "guardian_name": "朱峰"},
    # name_birth: one name and birth date, one side without ID.
    {"record_id": "nb1", "name": "秦思远", "id_number": valid_id(27), "guardian_name": "秦刚"},
    {"record_id": "nb2", "name": "秦思远", "id_number": None, "guardian_name": "秦刚"},
    # pinyin_birth: homophone names (博/搏), day and month swapped, other guardians, one side
    # without ID.
    {
        "record_id": "py1",
        "name": "许文博",
        "birth_date": "2012-05-06",
        "id_number": valid_id(29, birth="20120506"),
        "guardian_name": "许明",
    },
    {"record_id": "py2", "name": "许文搏", "birth_date": "2012-06-05", "guardian_name": "何亮"},
    # guardian_birth: one guardian, day and month swapped, different names, one side without ID.
    {
        "record_id": "gb1",
        "name": "何雨萱",
        "birth_date": "2012-04-07",
        "id_number": valid_id(31, birth="20120407"),
        "guardian_name": "何志强",
    },
    {"record_id": "gb2", "name": "何晓雯", "birth_date": "2012-07-04", "guardian_name": "何志强"},
    # name_id_parts: birth date moved three years with a re-made ID (address and sequence kept):
    # no age for 初二, so the copy's valid ID is inconsistent.
    {
        "record_id": "parts1",
        "name": "施俊杰",
        "id_number": valid_id(33),
        "guardian_name": "施伟",
        "grade_level": "8",
    },
    {
        "record_id": "parts2",
        "name": "施俊杰",
        "birth_date": "2009-03-15",
        "id_number": valid_id(33, birth="20090315"),
        "guardian_name": "施伟",
        "grade_level": "8",
    },
    # name_id_birth: a placeholder 出生日期 and the sequence typed anew (address and date kept).
    {"record_id": "date1", "name": "孔令辉", "id_number": valid_id(35), "guardian_name": "孔丹"},
    {
        "record_id": "date2",
        "name": "孔令辉",
        "birth_date": "1900-01-01",
        "id_number": valid_id(37),
        "guardian_name": "孔丹",
    },
]
FRAME = roster(*ROWS)
POSITION = {row["record_id"]: i for i, row in enumerate(ROWS)}


def pair(x: str, y: str) -> tuple[int, int]:
    return tuple(sorted((POSITION[x], POSITION[y])))  # type: ignore[return-value]


# The pair each declared pass exists for; all but name_birth are found by no other pass
# (name_birth's pairs are a subset of pinyin_birth's on these rows: equal names read alike).
TARGETS = {
    "id": pair("id_a", "id_b"),
    "student_no": pair("sn_a", "sn_b"),
    "id_neighbour": pair("nb_a", "nb_b"),
    "name_birth": pair("nb1", "nb2"),
    "pinyin_birth": pair("py1", "py2"),
    "guardian_birth": pair("gb1", "gb2"),
    "name_id_parts": pair("parts1", "parts2"),
    "name_id_birth": pair("date1", "date2"),
}
ONLY_FOUND_BY_ITS_PASS = set(TARGETS) - {"name_birth"}


def found(config: dict) -> set[tuple[int, int]]:
    a, b, _ = candidate_pairs(prepare_records(FRAME, AS_OF), config)
    return set(zip(a.tolist(), b.tolist(), strict=True))


def with_rule(config: dict, name: str, **changes) -> dict:
    rules = json.loads(json.dumps(config["blocking_rules"]))
    rules[name] = rules[name] | changes
    return config | {"blocking_rules": rules}


def test_every_shipped_pass_has_a_target_here():
    assert list(TARGETS) == load_config()["passes"]


@pytest.mark.parametrize("name", list(TARGETS))
def test_each_declared_pass_yields_the_pairs_it_exists_for(name):
    config = load_config()
    assert TARGETS[name] in found(config | {"passes": [name]})
    if name in ONLY_FOUND_BY_ITS_PASS:
        others = [p for p in config["passes"] if p != name]
        assert TARGETS[name] not in found(config | {"passes": others})


def test_the_declared_passes_together_form_nothing_but_their_pairs():
    # Two unrelated records each: nothing joins groups of this roster.
    everything = found(load_config())
    extra = {pair("cid_a", "cid_b"), pair("mask_a", "mask_b"), pair("swap_a", "swap_b")}
    assert everything == set(TARGETS.values()) | extra


@pytest.mark.parametrize(
    "kind, part, target",
    [
        ("student_no", "student_no", pair("sn_a", "sn_b")),
        ("student_no", "carried_id(student_no)", pair("cid_a", "cid_b")),
        ("id_neighbour", "one_edit_valid_neighbours(id_number)", pair("nb_a", "nb_b")),
        ("id_neighbour", "masked_position(id_number)", pair("mask_a", "mask_b")),
        ("id_neighbour", "adjacent_pair_canonical(id_number)", pair("swap_a", "swap_b")),
    ],
)
def test_each_key_of_the_id_passes_is_declared_and_does_its_part(kind, part, target):
    config = load_config() | {"passes": [kind]}
    every = config["blocking_rules"][kind]["each_of"]
    assert part in every
    assert target in found(with_rule(config, kind, each_of=[part]))
    assert target not in found(with_rule(config, kind, each_of=[p for p in every if p != part]))


def test_a_new_pass_is_one_declaration():
    # A guardian written alike (pinyin) and the year and month of birth: no shipped pass holds
    # a pair whose names, guardians' characters and birth days all differ.
    rows = [
        {"record_id": "x", "name": "林静", "id_number": valid_id(41), "guardian_name": "林志明"},
        {
            "record_id": "y",
            "name": "梁雪",
            "birth_date": "2012-03-28",
            "guardian_name": "林志鸣",
        },
    ]
    records = prepare_records(roster(*rows), AS_OF)
    config = load_config()
    a, _, _ = candidate_pairs(records, config)
    assert len(a) == 0
    declared = config["blocking_rules"] | {
        "guardian_reading_month": {
            "on": ["pinyin(guardian)", "year_month(birth_date)"],
            "one_side_without_consistent_id": True,
            "agree_on_one_of": ["household_region"],
        }
    }
    config = config | {"blocking_rules": declared, "passes": ["guardian_reading_month"]}
    a, b, stats = candidate_pairs(records, config)
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 1)]
    assert stats["pass_pairs"] == {"guardian_reading_month": 1}


# --- configuration errors ---------------------------------------------------------------------


def records_of_one() -> object:
    return prepare_records(roster({"record_id": "a"}))


@pytest.mark.parametrize(
    "change, key, words",
    [
        ({"passes": ["id", "name_brith"]}, "passes", "name_brith"),
        (
            {"blocking_rules_name_birth": {"on": ["name", "shoe_size"]}},
            "blocking_rules.name_birth.on",
            "未知字段 shoe_size",
        ),
        (
            {"blocking_rules_name_birth": {"on": ["soundex(name)", "birth_date"]}},
            "blocking_rules.name_birth.on",
            "未知变换 soundex",
        ),
        (
            {"blocking_rules_name_birth": {"on": ["pinyin(birth_date)"]}},
            "blocking_rules.name_birth.on",
            "不适用于字段 birth_date",
        ),
        (
            {"blocking_rules_name_birth": {"on": ["masked_position(id_number)"]}},
            "blocking_rules.name_birth.on",
            "多个键",
        ),
        (
            {"blocking_rules_name_birth": {"on": ["name"], "agree_on_one_off": ["guardian"]}},
            "blocking_rules.name_birth.agree_on_one_off",
            "没有选项 agree_on_one_off",
        ),
        (
            {"blocking_rules_name_birth": {"kind": "fuzzy", "on": ["name"]}},
            "blocking_rules.name_birth.kind",
            "未知分块类型 fuzzy",
        ),
        (
            {"blocking_rules_name_birth": {"on": ["name"], "agree_on_one_of": ["guardian_pinyin"]}},
            "blocking_rules.name_birth.agree_on_one_of",
            "未知字段 guardian_pinyin",
        ),
        (
            {"blocking_rules_id_neighbour": {"kind": "id_neighbour", "each_of": ["id_number"]}},
            "blocking_rules.id_neighbour.each_of",
            "不能按 id_number 建键",
        ),
        (
            {"blocking_rules_id": {"on": ["id_number"], "oversized": "drop"}},
            "blocking_rules.id.oversized",
            "drop",
        ),
    ],
)
def test_unknown_names_are_configuration_errors(change, key, words):
    config = load_config()
    for name, value in change.items():
        if name.startswith("blocking_rules_"):
            rule = name.removeprefix("blocking_rules_")
            config = config | {"blocking_rules": config["blocking_rules"] | {rule: value}}
        else:
            config = config | {name: value}
    with pytest.raises(LinkageConfigError) as raised:
        candidate_pairs(records_of_one(), config)
    message = str(raised.value)
    assert message.startswith("文件 config/linkage.json，键 " + key + "：")
    assert words in message
    assert isinstance(raised.value, InputError) and isinstance(raised.value, ValueError)


def test_a_config_file_with_an_unknown_pass_is_named_before_linkage_runs(tmp_path: Path):
    path = tmp_path / "linkage.json"
    path.write_text(json.dumps(load_config() | {"passes": ["id", "nickname"]}), encoding="utf-8")
    with pytest.raises(
        LinkageConfigError, match=re.escape(f"文件 {path}，键 passes：分块 nickname")
    ):
        find_duplicates(roster({"record_id": "a"}, {"record_id": "b"}), path)


# --- recordlinkage as the frame ---------------------------------------------------------------


def test_candidates_come_from_a_recordlinkage_index_of_the_declared_passes():
    records = prepare_records(FRAME, AS_OF)
    config = load_config()
    indexer = candidate_index(records, config)
    assert isinstance(indexer, recordlinkage.Index)
    assert [alg.name for alg in indexer.algorithms] == config["passes"]
    assert all(isinstance(alg, BaseIndexAlgorithm) for alg in indexer.algorithms)
    pairs = indexer.index(records.frame())
    assert isinstance(pairs, pd.MultiIndex) and pairs.names == ["position_1", "position_2"]
    a, b, stats = candidate_pairs(records, config)
    left, right = pair_positions(pairs)
    assert sorted(zip(left.tolist(), right.tolist(), strict=True)) == list(
        zip(a.tolist(), b.tolist(), strict=True)
    )
    assert stats["pass_pairs"]["id"] == 1
    with pytest.raises(ValueError, match="Records.frame"):
        indexer.index(records.frame().iloc[1:])


def test_find_duplicates_runs_recordlinkage_index_and_compare(monkeypatch):
    # The real methods, watched: what each returned and how long it was.
    calls = []
    for cls, name in ((recordlinkage.Index, "index"), (recordlinkage.Compare, "compute")):
        original = getattr(cls, name)

        def watched(self, *args, _original=original, _name=name, **kwargs):
            result = _original(self, *args, **kwargs)
            calls.append((_name, type(result), len(result)))
            return result

        monkeypatch.setattr(cls, name, watched)
    result = find_duplicates(FRAME, as_of=AS_OF)
    candidates = result.stats["candidate_pairs"]
    assert candidates == len(TARGETS) + 3
    assert calls == [
        ("index", pd.MultiIndex, candidates),
        ("compute", pd.DataFrame, candidates),
    ]


def test_comparisons_are_recordlinkage_features_on_a_frame_of_codes():
    records = prepare_records(FRAME, AS_OF)
    pairs, _ = candidate_links(records, load_config())
    compare = comparator(records)
    assert isinstance(compare, recordlinkage.Compare)
    assert all(isinstance(f, BaseCompareFeature) for f in compare.features)
    a, b = pair_positions(pairs)
    frame = records.frame(np.unique(np.r_[a, b]))
    assert all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes)
    vectors = compare.compute(pairs, frame)
    assert vectors.index.equals(pairs)
    table = compare_links(records, pairs)
    for column in vectors.columns:
        assert vectors[column].tolist() == table[column].tolist()
    assert table[["a", "b"]].to_numpy().tolist() == np.c_[a, b].tolist()


def test_each_distinct_pair_of_names_is_compared_once(monkeypatch):
    records = prepare_records(
        roster(
            {"record_id": "1", "name": "张伟"},
            {"record_id": "2", "name": "张玮"},
            {"record_id": "3", "name": "张伟"},
            {"record_id": "4", "name": "张玮"},
        )
    )
    seen = []
    original = compare_module.text_similarity

    def counting(left, right):
        seen.append((left, right))
        return original(left, right)

    monkeypatch.setattr(compare_module, "text_similarity", counting)
    table = compare_pairs(records, np.array([0, 0, 2, 2, 0]), np.array([1, 3, 1, 3, 2]))
    assert sorted(seen) == [("张伟", "张伟"), ("张伟", "张玮")]
    assert table["name"].tolist() == [2, 2, 2, 2, 0]  # homophone four times, then equal
