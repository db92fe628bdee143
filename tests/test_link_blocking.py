"""Blocking at scale: declared rules, sub-blocking of oversized blocks, bounded pairs, row order."""

from __future__ import annotations

import json
from pathlib import Path

import linkage_rows
import numpy as np
import pandas as pd
import pytest
from linkage_rows import valid_id

from xueji_quality.linkage import find_duplicates, load_config
from xueji_quality.linkage.blocks import pairs_in_blocks, sub_block_window
from xueji_quality.linkage.classify import check_blocking
from xueji_quality.linkage.index import candidate_pairs
from xueji_quality.linkage.keys import block_keys
from xueji_quality.linkage.records import prepare_records
from xueji_quality.linkage.text import take_rows
from xueji_quality.standards import resident_id


def roster(*rows: dict) -> pd.DataFrame:
    # pyarrow-backed, as the provincial run reads the staged roster
    return linkage_rows.roster(*rows, dtype=pd.StringDtype("pyarrow"))


def config_file(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "linkage.json"
    path.write_text(json.dumps(load_config() | changes), encoding="utf-8")
    return path


def pair_set(a: np.ndarray, b: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(a.tolist(), b.tolist(), strict=True))


def crowded_block(fillers: int) -> list[dict]:
    """One student registered twice (the copy without ID) among many 张伟 born the same day.

    The fillers share the student's name, birth date and household region and sit between the
    two registrations in row order; only the guardian tells the pair apart from them.
    """
    original = {
        "record_id": "orig",
        "name": "张伟",
        "id_number": valid_id(7),
        "guardian_name": "张建国",
        "household_region": "440106",
    }
    rows = [original]
    rows += [
        {
            "record_id": f"f{i:03d}",
            "name": "张伟",
            "id_number": valid_id(101 + 2 * i),
            "guardian_name": f"张{'甲乙丙丁戊己庚辛壬癸'[i % 10]}{'子丑寅卯辰巳午未申酉'[i // 10 % 10]}",
            "household_region": "440106",
        }
        for i in range(fillers)
    ]
    rows.append(original | {"record_id": "copy", "id_number": None})
    return rows


# --- the pair generator -----------------------------------------------------------------------


def test_oversized_block_is_windowed_in_each_order():
    keys = np.array([3] * 8 + [5, 5])
    near = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 0])  # orders the big block 0,4,1,5,2,6,3,7
    a, b, big_keys, big_sizes = pairs_in_blocks(keys, cap=3, orders=[near])
    found = pair_set(a, b)
    assert (8, 9) in found  # a small block is expanded in full
    assert big_keys.tolist() == [3] and big_sizes.tolist() == [8]
    # In the order 0,4,1,5,2,6,3,7 each member meets the next two only.
    assert found - {(8, 9)} == {
        (0, 4), (0, 1), (1, 4), (4, 5), (1, 5), (1, 2), (2, 5), (5, 6), (2, 6), (2, 3), (3, 6),
        (6, 7), (3, 7),
    }  # fmt: skip


def test_left_members_pair_with_their_whole_block_and_nothing_else():
    keys = np.array([1, 1, 1, 1, 2, 2, 3, 3])
    left = np.array([False, True, False, True, False, False, True, True])
    a, b, _, _ = pairs_in_blocks(keys, cap=10, left=left)
    # Block 1: the two left members with everyone; block 2 has no left member; block 3 once.
    assert pair_set(a, b) == {(0, 1), (1, 2), (1, 3), (0, 3), (2, 3), (6, 7)}


def test_pairs_stay_bounded_per_left_member_in_a_giant_block():
    rng = np.random.default_rng(1)
    n = 20_000
    keys = np.zeros(n, dtype=np.int64)  # one block of everybody
    left = rng.random(n) < 0.01
    order = rng.integers(0, 50, n)
    a, b, _, _ = pairs_in_blocks(keys, cap=20, left=left, orders=[order])
    assert len(a) <= 2 * 19 * left.sum()
    assert (a < b).all() and (left[a] | left[b]).all()
    assert len(np.unique(a * n + b)) == len(a)


def test_a_pair_budget_narrows_the_window_of_giant_blocks():
    # A roster of placeholders: everybody in one block, two orders.
    rng = np.random.default_rng(2)
    n = 50_000
    keys = np.zeros(n, dtype=np.int64)
    orders = [rng.integers(0, 3, n), rng.integers(0, 3, n)]
    assert sub_block_window(1000, 200_000, n, 2) == 2
    assert sub_block_window(1000, None, n, 2) == 1000
    assert sub_block_window(1000, 10**12, n, 2) == 1000
    a, b, big_keys, big_sizes = pairs_in_blocks(keys, cap=1000, orders=orders, pair_budget=200_000)
    assert big_sizes.tolist() == [n]
    assert len(np.unique(a * n + b)) <= 200_000
    # Each member still meets its neighbour in each order: equal order values come together.
    order = np.lexsort((np.arange(n), orders[0]))
    assert pair_set(a, b) >= {tuple(sorted(p)) for p in zip(order[:-1], order[1:], strict=True)}
    unbounded = pairs_in_blocks(keys[:5000], cap=1000, orders=[o[:5000] for o in orders])[0]
    assert len(unbounded) > 1_000_000  # what the budget prevents


def test_block_keys_combine_fields_and_missing_values():
    frame = roster(
        {"record_id": "a", "name": "张伟"},
        {"record_id": "b", "name": "张伟"},
        {"record_id": "c", "name": "张伟", "birth_date": "2012-03-16"},
        {"record_id": "d", "name": None},
        {"record_id": "e", "name": "张伟", "household_region": None},
    )
    records = prepare_records(frame)
    keys = block_keys(records, ["name", "birth_date", "household_region"])
    assert keys[0] == keys[1] != keys[2]
    assert keys[3] == -1 and keys[4] == -1
    # A record's key is the same whichever rows are asked for (keys are built a slice at a time).
    fields = ["name", "birth_date", "household_region"]
    assert block_keys(records, fields, np.array([2, 0])).tolist() == keys[[2, 0]].tolist()
    assert block_keys(records, fields, slice(1, 3)).tolist() == keys[1:3].tolist()


def test_id_values_round_trip_through_their_digits():
    number = valid_id(123)
    records = prepare_records(roster({"record_id": "a", "id_number": number}))
    digits = resident_id.values_to_digits(records.id_value)[0]
    assert "".join("0123456789X"[d] for d in digits) == number
    assert records.id_valid[0] and records.id_value[0] < 2**62


def test_take_rows_reads_across_chunks():
    import pyarrow as pa

    column = pa.chunked_array([pa.array(["a", "b"]), pa.array(["c"]), pa.array(["d", "e"])])
    assert take_rows(column, np.array([4, 0, 2, 2, 1])).to_pylist() == ["e", "a", "c", "c", "b"]


# --- declared rules ---------------------------------------------------------------------------


def test_a_block_above_the_cap_still_yields_its_true_pair(tmp_path: Path):
    fillers = 60
    frame = roster(*crowded_block(fillers))
    path = config_file(tmp_path, block_size_cap=10)
    result = find_duplicates(frame, path)
    assert set(zip(result.pairs["record_id_a"], result.pairs["record_id_b"], strict=True)) == {
        ("copy", "orig")
    }
    sub_blocked = [b for b in result.stats["oversized_blocks"] if b["pass"] == "name_birth"]
    assert sub_blocked == [
        {
            "pass": "name_birth",
            "key": "张伟|2012-03-15",
            "size": fillers + 2,
            "handled": "sub-blocked",
        }
    ]
    # Only the copy lacks a valid ID; in each of the two orders it meets at most 2 x 9 others.
    assert result.stats["pass_pairs"]["name_birth"] <= 2 * 2 * 9


def test_the_cap_does_not_change_what_small_blocks_give(tmp_path: Path):
    frame = roster(*crowded_block(6))
    small = find_duplicates(frame, config_file(tmp_path, block_size_cap=1000))
    assert small.stats["oversized_blocks"] == []
    # The copy (the one record without a valid ID) with each of the 7 others: all share its
    # household region. Pairs of two valid IDs are not formed.
    assert small.stats["pass_pairs"]["name_birth"] == 7
    assert small.pairs["record_id_a"].tolist() == ["copy"]


def test_pairs_need_a_record_without_valid_id_and_one_agreeing_field():
    rows = [
        # Two valid IDs consistent with their records (even sequence digit: female).
        {"record_id": "v1", "name": "王芳", "id_number": valid_id(22), "guardian_name": "王建"},
        {"record_id": "v2", "name": "王芳", "id_number": valid_id(24), "guardian_name": "王建"},
        {"record_id": "m1", "name": "王芳", "guardian_name": "王建"},  # no ID, all agrees
        {  # no ID, household region and guardian both differ from everyone
            "record_id": "m2",
            "name": "王芳",
            "guardian_name": "李明",
            "household_region": "440303",
        },
        {  # no ID, no household region: agrees by default
            "record_id": "m3",
            "name": "王芳",
            "guardian_name": "赵六",
            "household_region": None,
        },
    ]
    frame = roster(*(row | {"sex": "2"} for row in rows))
    config = load_config() | {"passes": ["name_birth"]}
    a, b, _ = candidate_pairs(prepare_records(frame), config)
    assert pair_set(a, b) == {(0, 2), (1, 2), (0, 4), (1, 4), (2, 4), (3, 4)}


def test_results_do_not_depend_on_row_order(tmp_path: Path):
    rows = crowded_block(30)
    rows += [
        {"record_id": "s1", "name": "刘洋", "birth_date": "2011-04-09", "guardian_name": "刘军"},
        {
            "record_id": "s2",
            "name": "刘阳",
            "birth_date": "2011-09-04",
            "id_number": valid_id(33, "20110409"),
            "guardian_name": "刘军",
        },
    ]
    path = config_file(tmp_path, block_size_cap=8)
    first = find_duplicates(roster(*rows), path)
    shuffled = [rows[i] for i in np.random.default_rng(5).permutation(len(rows))]
    second = find_duplicates(roster(*shuffled), path)
    pd.testing.assert_frame_equal(first.pairs, second.pairs)
    pd.testing.assert_frame_equal(first.duplicates, second.duplicates)
    assert len(first.pairs) == 2


def test_unknown_fields_and_a_lost_veto_are_refused(tmp_path: Path):
    config = load_config()
    bad_rule = config["blocking_rules"] | {"name_birth": {"on": ["name", "shoe_size"]}}
    with pytest.raises(ValueError, match="shoe_size"):
        candidate_pairs(
            prepare_records(roster({"record_id": "a"})), config | {"blocking_rules": bad_rule}
        )
    comparisons = json.loads(json.dumps(config["comparisons"]))
    comparisons["id"]["both_valid_different"]["m"] = 0.5
    with pytest.raises(ValueError, match="one_side_without_consistent_id"):
        check_blocking(config | {"comparisons": comparisons})
    # The key of earlier configs means the same and is checked the same way.
    earlier = {
        name: {
            ("one_side_without_valid_id" if k.startswith("one_side") else k): v
            for k, v in r.items()
        }
        for name, r in config["blocking_rules"].items()
    }
    with pytest.raises(ValueError, match="one_side_without_consistent_id"):
        check_blocking(config | {"comparisons": comparisons, "blocking_rules": earlier})
    check_blocking(config)


def test_student_numbers_other_than_g_plus_own_id_are_blocked():
    damaged = valid_id(41)[:-1] + ("1" if valid_id(41)[-1] != "1" else "2")  # fails its check
    frame = roster(
        # Two registrations sharing one temporary L number (different, valid IDs).
        {
            "record_id": "l1",
            "name": "李娜",
            "id_number": valid_id(61),
            "student_no": "L4401030001201203150001"[:19],
        },
        {
            "record_id": "l2",
            "name": "王芳",
            "id_number": valid_id(63),
            "student_no": "L4401030001201203150001"[:19],
        },
        # "G" + its own (invalid) ID, and a copy without ID that kept the same 学籍号.
        {"record_id": "g1", "name": "赵敏", "id_number": damaged, "student_no": "G" + damaged},
        {"record_id": "g2", "name": "赵敏", "id_number": None, "student_no": "G" + damaged},
        # "G" + own ID on both sides with one ID: the id pass has it, not this one.
        {
            "record_id": "s1",
            "name": "钱七",
            "id_number": valid_id(71),
            "student_no": "G" + valid_id(71),
        },
        {
            "record_id": "s2",
            "name": "钱七",
            "id_number": valid_id(71),
            "student_no": "G" + valid_id(71),
        },
    )
    records = prepare_records(frame)
    assert records.student_no_kind.tolist() == [2, 2, 1, 2, 1, 1]
    assert (
        records.student_no_at(np.array([2, 3])) == records.student_no_at(np.array([3, 2]))
    ).all()
    config = load_config() | {"passes": ["student_no"]}
    a, b, stats = candidate_pairs(records, config)
    assert pair_set(a, b) == {(0, 1), (2, 3)}
    subset = records.subset(np.array([3, 2]))
    assert subset.student_no_kind.tolist() == [2, 1]
    assert (
        subset.student_no_at(np.array([0, 1])).tolist()
        == records.student_no_at(np.array([3, 2])).tolist()
    )


def test_ids_are_read_as_the_standard_reads_them():
    import pyarrow as pa

    from xueji_quality.standards import iso7064

    values = [
        "11010519491231002X",
        "34052419800101001X",
        "110105194912310021",
        "1101051949123100x2",  # lower-case x inside
        "1101051949123100X2",
        "１１０１０５１９４９１２３１００２X",  # full-width: not ASCII
        "11010519491231002",
        "A1010519491231002X",
        "110105194912310:2X",
        "11010519491231002/",
        "11010519491231002:",  # ':' follows '9' in ASCII: no check character
        None,
        "",
    ]
    records = prepare_records(
        roster(*({"record_id": str(i), "id_number": v} for i, v in enumerate(values)))
    )
    digits, shape = resident_id.digit_matrix(pa.array(values, pa.large_string()))
    expected_values = np.where(shape, resident_id.digits_to_values(digits), -1)
    assert records.id_value.tolist() == expected_values.tolist()
    assert records.id_valid.tolist() == (shape & iso7064.check_ok_column(digits)).tolist()
    assert records.id_valid.tolist()[:3] == [True, True, False]
    assert records.id_value[10] == -1
