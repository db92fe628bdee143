"""Duplicates with a second error: two valid, different IDs decide "two people" only when each
agrees with its record; twins and namesakes stay apart."""

from __future__ import annotations

import numpy as np
import pytest
from linkage_rows import roster, valid_id

from xueji_quality.linkage import find_duplicates, load_config
from xueji_quality.linkage.classify import classify
from xueji_quality.linkage.compare import LEVELS, compare_pairs
from xueji_quality.linkage.consistency import (
    CONFLICT_ADDRESS,
    CONFLICT_AGE,
    CONFLICT_BIRTH_INVALID,
    CONFLICT_DATE_MISMATCH,
    CONFLICT_ID_DATE,
    CONFLICT_SEX,
)
from xueji_quality.linkage.index import candidate_pairs
from xueji_quality.linkage.records import prepare_records

# School year 2026: grade 8 (初二) was born 1 Sep 2011 .. 31 Aug 2012, as BASE's 2012-03-15.
AS_OF = "2026-11-28"

ORIGINAL = {
    "record_id": "a",
    "name": "陈思远",
    "id_number": valid_id(31),  # odd sequence: male, as BASE's sex
    "guardian_name": "陈国强",
    "grade_level": "8",
}

# The copy of ORIGINAL in each compound-error kind, the conflict of its ID, and the clause of the
# reason that names it.
COMPOUND_COPIES = {
    # Birth date moved by four years together with the date inside a re-made, check-valid ID:
    # eleven years old is no age for 初二.
    "age_for_grade": (
        {"birth_date": "2016-03-15", "id_number": valid_id(31, birth="20160315")},
        CONFLICT_AGE,
        "身份证号不同（地址码、顺序码相同，出生日期码不同），但一方信息自相矛盾（出生日期与年级明显不符）",
    ),
    # An address code that was never issued, the check character made right.
    "unknown_address": (
        {"id_number": valid_id(31, address="449901")},
        CONFLICT_ADDRESS,
        "身份证号不同（出生日期码、顺序码相同，地址码不同），但一方信息自相矛盾（身份证号地址码不存在）",
    ),
    # The date inside the ID is not the 出生日期.
    "id_date_not_birth_date": (
        {"id_number": valid_id(31, birth="20120513")},
        CONFLICT_DATE_MISMATCH,
        "身份证号不同（地址码、顺序码相同，出生日期码不同），但一方信息自相矛盾（证内出生日期与出生日期不符）",
    ),
    # 出生日期 is no date, and the ID carries the same non-date.
    "invalid_birth_date": (
        {"birth_date": "2012-02-30", "id_number": valid_id(31, birth="20120230")},
        CONFLICT_BIRTH_INVALID | CONFLICT_ID_DATE,
        "身份证号不同（地址码、顺序码相同，出生日期码不同），但一方信息自相矛盾（证内出生日期无效、出生日期无效）",
    ),
    # A placeholder 出生日期 and an address code that names no province.
    "placeholder_birth_date_and_foreign_address": (
        {"birth_date": "0000-00-00", "id_number": valid_id(31, address="990103")},
        CONFLICT_ADDRESS | CONFLICT_BIRTH_INVALID,
        "身份证号不同（出生日期码、顺序码相同，地址码不同），但一方信息自相矛盾（身份证号地址码不存在、出生日期无效）",
    ),
    # A placeholder 出生日期 and the ID typed with another sequence number: one address code and
    # birth day as twins carry, but one name written alike, which twins never have.
    "placeholder_birth_date_and_new_sequence": (
        {"birth_date": "0000-00-00", "id_number": valid_id(35)},
        CONFLICT_BIRTH_INVALID,
        "身份证号不同（地址码、出生日期码相同，顺序码不同），但一方信息自相矛盾（出生日期无效）",
    ),
}


def bystanders() -> list[dict]:
    """Records around the pair: another pupil of the class and a namesake elsewhere."""
    return [
        {
            "record_id": "x",
            "name": "李明",
            "id_number": valid_id(51),
            "guardian_name": "李华",
            "grade_level": "8",
        },
        {
            "record_id": "y",
            "name": "陈思远",
            "id_number": valid_id(877, address="445302"),
            "guardian_name": "陈东",
            "household_region": "445302",
            "school_code": "3144000099",
            "grade_level": "8",
        },
    ]


def linked_ids(result) -> set[tuple[str, str]]:
    return set(zip(result.pairs["record_id_a"], result.pairs["record_id_b"], strict=True))


@pytest.mark.parametrize("kind", sorted(COMPOUND_COPIES))
def test_a_duplicate_with_an_inconsistent_valid_id_is_linked(kind):
    changes, conflict, reason = COMPOUND_COPIES[kind]
    copy = ORIGINAL | {"record_id": "b"} | changes
    frame = roster(ORIGINAL, copy, *bystanders())
    records = prepare_records(frame, AS_OF)
    assert records.id_valid[:2].all()
    assert records.id_conflict.tolist() == [0, conflict, 0, 0]
    result = find_duplicates(frame, as_of=AS_OF)
    assert linked_ids(result) == {("a", "b")}
    assert result.pairs["dup_class"].tolist() == ["DUP_FUZZY"]
    assert result.pairs["reason"][0].startswith(reason)
    assert result.stats["inconsistent_valid_ids"] == 1


def test_the_same_pair_with_both_ids_consistent_is_two_people():
    # The copy of the age case, its grade fitting the moved birth date: nothing contradicts.
    changes, _, _ = COMPOUND_COPIES["age_for_grade"]
    copy = ORIGINAL | {"record_id": "b", "grade_level": "4"} | changes
    frame = roster(ORIGINAL, copy)
    assert prepare_records(frame, AS_OF).id_conflict.tolist() == [0, 0]
    a, b, _ = candidate_pairs(prepare_records(frame, AS_OF), load_config())
    assert len(a) == 0  # not even formed: the veto would reject it
    assert find_duplicates(frame, as_of=AS_OF).pairs.empty


def test_the_run_date_decides_which_ages_fit_the_grade():
    changes, _, _ = COMPOUND_COPIES["age_for_grade"]
    frame = roster(ORIGINAL, ORIGINAL | {"record_id": "b", "grade_level": "4"} | changes)
    # Fitting in the school year of 2026; four school years later neither age fits its grade.
    assert prepare_records(frame, AS_OF).id_conflict.tolist() == [0, 0]
    later = prepare_records(frame, "2030-11-28")
    assert later.id_conflict.tolist() == [CONFLICT_AGE, CONFLICT_AGE]


def test_sex_digit_contradicting_the_record_makes_an_id_inconsistent():
    frame = roster(ORIGINAL, ORIGINAL | {"record_id": "b", "sex": "2"})
    assert prepare_records(frame, AS_OF).id_conflict.tolist() == [0, CONFLICT_SEX]


def test_blank_fields_contradict_nothing():
    frame = roster(
        ORIGINAL | {"birth_date": None, "sex": None, "grade_level": None},
        ORIGINAL | {"record_id": "b", "birth_date": None},  # ID date checked against the grade
    )
    records = prepare_records(frame, AS_OF)
    assert records.id_conflict.tolist() == [0, 0]
    assert records.birth_year.tolist() == [2012, 2012]  # the date inside the ID stands for it


# --- twins and namesakes ------------------------------------------------------------------------


def twins(second: dict) -> list[dict]:
    """Twin sisters: one birth day, surname, guardian and address, consecutive sequence numbers,
    names of one reading (张子涵/张梓涵), the second record changed as given."""
    first = {
        "record_id": "t1",
        "name": "张子涵",
        "sex": "2",
        "id_number": valid_id(14),
        "guardian_name": "张建华",
        "grade_level": "8",
    }
    return [
        first,
        first | {"record_id": "t2", "name": "张梓涵", "id_number": valid_id(16)} | second,
    ]


@pytest.mark.parametrize(
    "second",
    [
        {},  # both consistent
        {"grade_level": "3"},  # a wrong grade: the age contradicts it
        {"sex": "1"},  # a wrong 性别: the sex digit contradicts it
        {"birth_date": "2012-03-16"},  # a typo in 出生日期: the ID's date contradicts it
        {"birth_date": "0000-00-00"},  # no 出生日期 at all
    ],
)
def test_twins_stay_unlinked_when_one_record_has_an_error(second):
    frame = roster(*twins(second))
    records = prepare_records(frame, AS_OF)
    features = compare_pairs(records, np.array([0]), np.array([1]))
    assert LEVELS["id"][features["id"][0]] == "both_valid_different"
    assert not classify(features, load_config())["linked"].any()
    assert find_duplicates(frame, as_of=AS_OF).pairs.empty


def namesakes(second: dict) -> list[dict]:
    """Two 张伟 born the same day: other guardians, schools and household regions, valid IDs of
    other counties and sequences."""
    first = {
        "record_id": "n1",
        "name": "张伟",
        "id_number": valid_id(11),
        "guardian_name": "张建国",
        "grade_level": "8",
    }
    other = {
        "record_id": "n2",
        "name": "张伟",
        "id_number": valid_id(593, address="440606"),
        "guardian_name": "张志强",
        "household_region": "440606",
        "county_code": "440606",
        "school_code": "2144000777",
        "school_name": "佛山市顺德区第三小学",
        "grade_level": "8",
    }
    return [first, other | second]


@pytest.mark.parametrize(
    "second",
    [
        {},  # both consistent: the pair is not even formed
        {"sex": "2"},  # the sex digit contradicts 性别: formed, compared, rejected
        {"id_number": valid_id(593, address="449901")},  # unknown address code
    ],
)
def test_namesakes_with_far_apart_valid_ids_stay_unlinked(second):
    frame = roster(*namesakes(second))
    assert find_duplicates(frame, as_of=AS_OF).pairs.empty


def test_namesakes_with_consistent_ids_are_not_formed():
    records = prepare_records(roster(*namesakes({})), AS_OF)
    a, _, _ = candidate_pairs(records, load_config())
    assert len(a) == 0


# --- the model ---------------------------------------------------------------------------------


def test_inconsistent_levels_leave_the_decision_to_the_other_fields():
    config = load_config()
    weight = {level: np.log2(p["m"] / p["u"]) for level, p in config["comparisons"]["id"].items()}
    # A made-up number is weak evidence against; kept parts of a re-made one are strong for.
    assert -8 < weight["valid_different_inconsistent"] < 0
    assert weight["valid_different_parts_agree"] > 8
    assert weight["both_valid_different"] < -60


def test_rules_of_earlier_configs_form_the_compound_pairs_too():
    changes, _, _ = COMPOUND_COPIES["id_date_not_birth_date"]
    frame = roster(ORIGINAL, ORIGINAL | {"record_id": "b"} | changes)
    config = load_config()
    earlier = {
        name: {k.replace("consistent", "valid"): v for k, v in rule.items()}
        for name, rule in config["blocking_rules"].items()
    }
    renamed = [name for name, rule in earlier.items() if "one_side_without_valid_id" in rule]
    assert renamed == [
        name
        for name, rule in config["blocking_rules"].items()
        if "one_side_without_consistent_id" in rule
    ]
    assert "name_birth" in renamed
    a, b, stats = candidate_pairs(
        prepare_records(frame, AS_OF), config | {"blocking_rules": earlier}
    )
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 1)]
    assert stats["pass_pairs"]["name_birth"] == 1
