"""The people of a roster as numbers: counties, schools, classes, birth days, households, IDs.

Counties come from GB/T 2260 through ``standards.gb2260`` (codes in force over the students' whole
lives); schools are sized by the students they receive, at least two per county and stage so
that a second registration can sit next door. A person is a row of a dict of equal-length
NumPy columns (``draw_people``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xueji_quality.generator import names as nm
from xueji_quality.generator.columns import ascii_text, cat, digits, grade_window, zipf
from xueji_quality.generator.numbers import NONE, Issued, free_bodies, id_body
from xueji_quality.standards import gb2260

# Population shares (not problems).
_SHARE_OTHER_ID_TYPE = 0.004
_SHARE_HOUSEHOLD_OTHER_COUNTY = 0.10
_SHARE_MIGRANT = 0.05
_SHARE_REPEATER = 0.01
_SHARE_DOT_NAME = 0.002
_SHARE_POPULAR_GIVEN = 0.3
_SHARE_ONE_CHAR_GIVEN = 0.15
_MIGRANT_PROVINCES = ("43", "45", "36", "51", "41", "42", "52", "35")
_STUDENTS_PER_SCHOOL = 800
_GRADE_WEIGHT = np.array([1.0] * 6 + [0.95] * 3 + [0.6] * 3)
_CLASS_SIZE = 45
# Codes that exist in GB/T 2260 for the whole life of the students (no "not in force" warnings).
_IN_FORCE_FROM, _IN_FORCE_TO = 2000, 2024

CN_NUMERALS = "一二三四五六七八九"
STAGE_OF_GRADE = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
STAGE_FIRST_GRADE = np.array([1, 7, 10])
_STAGE_CATEGORY = ("21", "31", "34")
_MOBILE_PREFIXES = np.array(
    [130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 150, 151, 152, 153, 155, 156, 157, 158]
    + [159, 166, 173, 175, 176, 177, 178, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189]
    + [191, 198, 199],
    dtype=np.int64,
)


@dataclass(frozen=True)
class Frame:
    """What every piece of one roster shares: province, counties, their weights and schools.

    ``schools`` is None for a roster built in one piece: its schools follow its own people.
    """

    province: str
    county_table: pd.DataFrame
    county_p: np.ndarray
    school_year: int
    schools: dict[str, np.ndarray] | None


# ----------------------------------------------------------------------------------------------
# counties


def stable_codes(prefix: str) -> pd.DataFrame:
    """County-level codes starting with ``prefix`` in force over the students' whole lives."""
    eras = gb2260.region_eras()
    rows = eras[eras["code"].str.startswith(prefix)]
    # Every year of the span must be covered: a code can lapse and be issued again (511403).
    covered = (
        rows["end"].clip(upper=_IN_FORCE_TO) - rows["start"].clip(lower=_IN_FORCE_FROM) + 1
    ).clip(lower=0)
    years = covered.groupby(rows["code"]).sum()
    stable = years[years >= _IN_FORCE_TO - _IN_FORCE_FROM + 1].index
    live = gb2260.counties(prefix[:2], _IN_FORCE_TO)
    live = live[live["code"].str.startswith(prefix) & live["code"].isin(stable)]
    return live.reset_index(drop=True)


def school_counties(province: str, counties: int | None, rng: np.random.Generator) -> pd.DataFrame:
    """The counties whose schools the roster lists (all stable ones, or ``counties`` of them)."""
    table = stable_codes(province)
    by_name = gb2260.county_name_to_code(province)
    # A county is written by name only where the name maps back to its code alone.
    table["named_ok"] = [
        by_name.get(n) == c for n, c in zip(table["name"], table["code"], strict=True)
    ]
    if table.empty:
        raise ValueError(f"省份代码 {province!r} 没有可用的区县")
    if counties is not None:
        if counties < 1:
            raise ValueError("counties 至少为 1")
        pick = np.sort(rng.choice(len(table), size=min(counties, len(table)), replace=False))
        table = table.iloc[pick]
    return table.reset_index(drop=True)


def unissued_codes(province: str) -> np.ndarray:
    """6-digit codes under the province that GB/T 2260 never issued."""
    known = gb2260.known_codes()
    candidates = [f"{province}{p:02d}{c:02d}" for p in (90, 91, 92, 97, 98) for c in range(2, 99)]
    return np.array([c for c in candidates if c not in known])


# ----------------------------------------------------------------------------------------------
# schools


def _schools(
    rng: np.random.Generator, province: str, county_table: pd.DataFrame, per_cell: np.ndarray
) -> dict[str, np.ndarray]:
    """Schools of ``per_cell[county * 3 + stage]`` per county and stage: codes, names, style."""
    n_counties = len(county_table)
    cell_first = np.concatenate([[0], np.cumsum(per_cell)[:-1]])
    n_schools = int(per_cell.sum())
    school_cell = np.repeat(np.arange(n_counties * 3), per_cell)
    school_county = school_cell // 3
    school_stage = school_cell % 3
    school_rank = np.arange(n_schools) - cell_first[school_cell]
    school_seq = rng.choice(1_000_000, size=n_schools, replace=False)
    school_code = cat(
        np.array(_STAGE_CATEGORY)[school_stage],
        province,
        ascii_text(digits(school_seq, 6)),
    )
    county_names = county_table["name"].to_numpy().astype(str)
    words = np.array(nm.SCHOOL_WORDS)
    word = words[(school_seq + school_rank) % len(words)]
    number = np.array([f"第{CN_NUMERALS[r % 9]}" for r in range(9)])[school_rank % 9]
    school_name = np.where(
        school_stage == 0,
        cat(county_names[school_county], word, "小学"),
        np.where(
            school_stage == 1,
            cat(county_names[school_county], number, "中学"),
            cat(county_names[school_county], number, "高级中学"),
        ),
    )
    # 七年级 or 初一: a school keeps one way of writing.
    school_junior_style = rng.integers(0, 2, size=n_schools)
    return {
        "county": school_county,
        "stage": school_stage,
        "code": school_code,
        "name": school_name,
        "junior_style": school_junior_style,
        "cell_first": cell_first,
        "per_cell": per_cell,
    }


def planned_schools(
    rng: np.random.Generator,
    province: str,
    county_table: pd.DataFrame,
    county_p: np.ndarray,
    people: int,
) -> dict[str, np.ndarray]:
    """Schools and classes for a roster built in pieces, sized by the whole roster's expected
    students per county, stage and grade (as ``draw_people`` sizes them by its own people)."""
    n_counties = len(county_table)
    grade_p = _GRADE_WEIGHT / _GRADE_WEIGHT.sum()
    stage_p = np.bincount(STAGE_OF_GRADE[1:], weights=grade_p, minlength=3)
    expected = people * np.repeat(county_p, 3) * np.tile(stage_p, n_counties)
    per_cell = np.maximum(2, np.ceil(expected / _STUDENTS_PER_SCHOOL).astype(np.int64))
    schools = _schools(rng, province, county_table, per_cell)
    n_schools = len(schools["code"])
    school_cell = schools["county"] * 3 + schools["stage"]
    grade = np.arange(1, 13)
    per_school = people * county_p[schools["county"]] / per_cell[school_cell]
    in_stage = STAGE_OF_GRADE[grade][None, :] == schools["stage"][:, None]
    students = per_school[:, None] * grade_p[None, :] * in_stage
    classes = np.ones((n_schools, 13), dtype=np.int64)
    classes[:, 1:] = np.maximum(1, np.ceil(students / _CLASS_SIZE).astype(np.int64))
    schools["classes"] = classes.ravel()
    return schools


def _placed(
    rng: np.random.Generator, frame: Frame, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(county, grade, school, class number) of ``n`` people, and the schools."""
    n_counties = len(frame.county_table)
    county = rng.choice(n_counties, size=n, p=frame.county_p)
    grade = rng.choice(np.arange(1, 13), size=n, p=_GRADE_WEIGHT / _GRADE_WEIGHT.sum())
    cell = county * 3 + STAGE_OF_GRADE[grade]
    if frame.schools is None:
        cell_size = np.bincount(cell, minlength=n_counties * 3)
        per_cell = np.maximum(2, np.ceil(cell_size / _STUDENTS_PER_SCHOOL).astype(np.int64))
        cell_first = np.concatenate([[0], np.cumsum(per_cell)[:-1]])
        school = cell_first[cell] + (rng.random(n) * per_cell[cell]).astype(np.int64)
        schools = _schools(rng, frame.province, frame.county_table, per_cell)
        group_size = np.bincount(school * 13 + grade, minlength=len(schools["code"]) * 13)
        classes = np.maximum(1, np.ceil(group_size / _CLASS_SIZE).astype(np.int64))
    else:
        schools = frame.schools
        per_cell, cell_first = schools["per_cell"], schools["cell_first"]
        school = cell_first[cell] + (rng.random(n) * per_cell[cell]).astype(np.int64)
        classes = schools["classes"]
    class_no = 1 + (rng.random(n) * classes[school * 13 + grade]).astype(np.int64)
    return county, grade, school, class_no, schools


# ----------------------------------------------------------------------------------------------
# people


def draw_people(
    rng: np.random.Generator, frame: Frame, n: int, issued: Issued
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``n`` people (columns by name) and the schools they attend."""
    province = frame.province
    county, grade, school, class_no, schools = _placed(rng, frame, n)

    male = (rng.random(n) < 0.52).astype(np.int64)
    start, end = grade_window(grade, frame.school_year)
    birth = start + (rng.random(n) * (end - start + 1)).astype(np.int64)
    repeater = rng.random(n) < _SHARE_REPEATER
    birth[repeater] -= rng.integers(1, 300, size=int(repeater.sum()))

    county_codes = frame.county_table["code"].to_numpy().astype(np.int64)
    province_codes = stable_codes(province)["code"].to_numpy().astype(np.int64)
    migrant_codes = np.concatenate(
        [
            stable_codes(p)["code"].to_numpy().astype(np.int64)
            for p in _MIGRANT_PROVINCES
            if p != province
        ]
    )
    household = county_codes[county].copy()
    draw = rng.random(n)
    other = draw < _SHARE_HOUSEHOLD_OTHER_COUNTY
    household[other] = rng.choice(province_codes, size=int(other.sum()))
    migrant = draw > 1 - _SHARE_MIGRANT
    household[migrant] = rng.choice(migrant_codes, size=int(migrant.sum()))

    seq = 2 * rng.integers(0, 500, size=n) + male
    body = free_bodies(NONE, id_body(household, birth, seq), male, rng, issued=issued.get("body"))

    surnames = np.array([s for s, _ in nm.SURNAMES])
    surname_p = np.array([w for _, w in nm.SURNAMES])
    surname = surnames[rng.choice(len(surnames), size=n, p=surname_p / surname_p.sum())]
    given = given_names(rng, male)
    dot = rng.random(n) < _SHARE_DOT_NAME
    dot_idx = rng.integers(0, len(nm.DOT_NAMES), size=int(dot.sum()))
    ethnicity = _ethnicities(rng, n)

    # Guardians: the father's surname is usually the child's.
    guardian_surname = np.where(
        rng.random(n) < 0.7,
        surname,
        surnames[rng.choice(len(surnames), size=n, p=surname_p / surname_p.sum())],
    )
    guardian_given = np.array(nm.GUARDIAN_GIVEN)[rng.integers(0, len(nm.GUARDIAN_GIVEN), size=n)]
    guardian = cat(guardian_surname, guardian_given)
    phone = _phones(rng, n)

    id_type = np.full(n, "1", dtype="U1")
    other_type = rng.random(n) < _SHARE_OTHER_ID_TYPE
    id_type[other_type] = rng.choice(np.array(list("678AZ")), size=int(other_type.sum()))

    people = {
        "county": county,
        "school": school,
        "grade": grade,
        "class_no": class_no,
        "male": male,
        "sex_shown": 2 - male,
        "birth": birth,
        "birth_shown": birth.copy(),
        "household": household,
        "body": body,
        "surname": surname.astype("U4"),
        "given": given.astype("U12"),
        "ethnicity": ethnicity,
        "guardian": guardian.astype("U6"),
        "phone": phone,
        "id_type": id_type,
        "student_no_kind": np.where(id_type == "1", "G", "J").astype("U1"),
    }
    _dotted_names(rng, people, np.flatnonzero(dot), dot_idx, issued)
    people["student_no_body"] = people["body"].copy()
    return people, schools


def _dotted_names(
    rng: np.random.Generator,
    people: dict[str, np.ndarray],
    dot_rows: np.ndarray,
    dot_idx: np.ndarray,
    issued: Issued,
) -> None:
    """Uyghur names (艾力·买买提) on ``dot_rows``: no surname, their own sex, ethnicity 05."""
    people["surname"][dot_rows] = ""
    people["given"][dot_rows] = np.array([x[0] for x in nm.DOT_NAMES])[dot_idx]
    male = np.array([x[1] == "1" for x in nm.DOT_NAMES], dtype=np.int64)[dot_idx]
    people["male"][dot_rows] = male
    people["sex_shown"][dot_rows] = 2 - male
    people["ethnicity"][dot_rows] = "05"
    # Sex changed for the dotted names: give them an ID of the right parity.
    body = people["body"]
    seq_dot = 2 * rng.integers(0, 500, size=len(dot_rows)) + male
    body[dot_rows] = body[dot_rows] - body[dot_rows] % 1000 + seq_dot
    others = np.ones(len(body), dtype=bool)
    others[dot_rows] = False
    body[dot_rows] = free_bodies(
        np.sort(body[others]), body[dot_rows], male, rng, issued=issued.get("body")
    )


def given_names(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    """Given names of one or two characters, popular ones often, by sex."""
    n = len(male)
    boys, girls = np.array(list(nm.BOY_CHARS)), np.array(list(nm.GIRL_CHARS))
    first_b = boys[rng.choice(len(boys), size=n, p=zipf(len(boys)))]
    second_b = boys[rng.choice(len(boys), size=n, p=zipf(len(boys), 0.8))]
    first_g = girls[rng.choice(len(girls), size=n, p=zipf(len(girls)))]
    second_g = girls[rng.choice(len(girls), size=n, p=zipf(len(girls), 0.8))]
    # A character is rarely used twice in a row: draw the second again where it repeats.
    again_b = boys[rng.choice(len(boys), size=n, p=zipf(len(boys), 0.8))]
    again_g = girls[rng.choice(len(girls), size=n, p=zipf(len(girls), 0.8))]
    second_b = np.where(second_b == first_b, again_b, second_b)
    second_g = np.where(second_g == first_g, again_g, second_g)
    one_char = rng.random(n) < _SHARE_ONE_CHAR_GIVEN
    boy_name = np.where(one_char, second_b, cat(first_b, second_b))
    girl_name = np.where(one_char, second_g, cat(first_g, second_g))
    given = np.where(male == 1, boy_name, girl_name).astype("U8")
    popular = rng.random(n) < _SHARE_POPULAR_GIVEN
    pop_b, pop_g = np.array(nm.BOY_POPULAR), np.array(nm.GIRL_POPULAR)
    pick_b = pop_b[rng.choice(len(pop_b), size=n, p=zipf(len(pop_b)))]
    pick_g = pop_g[rng.choice(len(pop_g), size=n, p=zipf(len(pop_g)))]
    given[popular] = np.where(male == 1, pick_b, pick_g)[popular]
    return given


def _ethnicities(rng: np.random.Generator, n: int) -> np.ndarray:
    codes = np.array([c for c, _, _ in nm.ETHNICITIES])
    share = np.array([s for _, _, s in nm.ETHNICITIES])
    return codes[rng.choice(len(codes), size=n, p=share / share.sum())].astype("U2")


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = _MOBILE_PREFIXES[rng.integers(0, len(_MOBILE_PREFIXES), size=n)]
    return prefix * 10**8 + rng.integers(0, 10**8, size=n)
