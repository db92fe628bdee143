"""The sample-roster generator: its rosters look like exports and its truth tells the truth."""

from __future__ import annotations

import io
import re
import unicodedata
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
from pypinyin import lazy_pinyin
from stdnum.iso7064 import mod_11_2

from xueji_quality import normalize, schema
from xueji_quality.generator import (
    DEFAULT_RATES,
    DUPLICATE_KINDS,
    ERROR_KINDS,
    HARD_NEGATIVE_KINDS,
    NORMALISABLE_KINDS,
    SCHOOL_YEAR,
    build,
    generate,
    generate_roster,
    numbers,
    write_sample,
)
from xueji_quality.generator.names import HOMOPHONES
from xueji_quality.generator.piece import KEPT, Kind
from xueji_quality.standards import gb2260, iso7064, resident_id

ROWS, SEED, PROVINCE = 5000, 20261128, "44"
L = schema.FIELDS  # canonical field -> Chinese header


@pytest.fixture(scope="module")
def built():
    return generate(ROWS, SEED, PROVINCE, counties=6)


@pytest.fixture(scope="module")
def roster(built):
    return built.roster.set_index(L["export_key"], drop=False)


def _normalise_id(values: pd.Series) -> pd.Series:
    text = values.map(lambda v: unicodedata.normalize("NFKC", v))
    return text.str.replace(r"\s", "", regex=True).str.upper()


def _parse_dates(values: pd.Series) -> pd.Series:
    """Birth dates as exports write them: YYYY-MM-DD, YYYY/M/D, YYYYMMDD, Excel serial."""
    out = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
    for fmt in ("%Y/%m/%d", "%Y%m%d"):
        out = out.fillna(pd.to_datetime(values, format=fmt, errors="coerce"))
    serial = values.str.fullmatch(r"\d{5}")
    days = pd.to_numeric(values.where(serial), errors="coerce")
    from_serial = pd.Timestamp("1899-12-30") + pd.to_timedelta(days, unit="D")
    return out.where(~serial, from_serial)


def _sex_codes(values: pd.Series) -> pd.Series:
    return values.replace({"男": "1", "女": "2"})


# The resident ID's parts by resident_id's column forms, on the index of the column.
def checksum_ok(ids: pd.Series) -> pd.Series:
    return pd.Series(resident_id.parts(ids).check_ok, index=ids.index)


def has_format(ids: pd.Series) -> pd.Series:
    return pd.Series(resident_id.parts(ids).shaped, index=ids.index)


def birth_dates(ids: pd.Series) -> pd.Series:
    return pd.Series(resident_id.birth_date_column(ids), index=ids.index)


def sex_codes(ids: pd.Series) -> pd.Series:
    return pd.Series(resident_id.sex_column(ids), index=ids.index)


def address_codes(ids: pd.Series) -> pd.Series:
    return pd.Series(resident_id.address_code_column(ids), index=ids.index)


def _clean(built, roster) -> pd.DataFrame:
    touched = set(built.truth_errors["record_id"]) | set(built.truth_normalisable["record_id"])
    return roster[~roster.index.isin(touched)]


def test_same_seed_same_roster_other_seed_other_roster(built):
    again = generate(ROWS, SEED, PROVINCE, counties=6)
    pd.testing.assert_frame_equal(built.roster, again.roster)
    pd.testing.assert_frame_equal(built.truth_duplicates, again.truth_duplicates)
    pd.testing.assert_frame_equal(built.truth_errors, again.truth_errors)
    other = generate(ROWS, SEED + 1, PROVINCE, counties=6)
    assert not built.roster[L["id_number"]].equals(other.roster[L["id_number"]])


def test_generate_roster_returns_the_contract_triple(built):
    roster, duplicates, errors = generate_roster(ROWS, SEED, PROVINCE, counties=6)
    pd.testing.assert_frame_equal(roster, built.roster)
    assert list(duplicates.columns) == ["record_id_a", "record_id_b", "kind"]
    assert list(errors.columns) == ["record_id", "field", "kind"]


def test_headers_keys_and_all_values_are_text(built):
    frame = built.roster
    assert len(frame) == ROWS
    assert list(frame.columns) == [L["export_key"]] + [
        label for field, label in L.items() if field != "export_key"
    ]
    for column in frame.columns:
        assert isinstance(frame[column].dtype, pd.StringDtype)
        assert not frame[column].isna().any()
        assert all(type(v) is str for v in frame[column].iloc[::97])
    keys = frame[L["export_key"]]
    assert keys.is_unique
    assert keys.str.fullmatch(r"R\d{7}").all()


def test_counties_are_real_and_some_are_named(built):
    county = built.roster[L["school_county"]]
    live = gb2260.counties(PROVINCE)
    by_name = gb2260.county_name_to_code(PROVINCE)
    codes = county.map(lambda v: by_name.get(v, v))
    used = set(codes) & set(live["code"])
    assert 4 <= len(used) <= 6
    assert county.isin(list(by_name)).sum() > 0  # a share written as 天河区
    named = county[~county.str.fullmatch(r"[0-9]{6}")]
    assert named.isin(list(by_name)).all()  # whole names, never cut short
    assert codes.isin(live["code"]).mean() > 0.99


def test_truth_refers_to_existing_rows_and_known_kinds(built):
    keys = set(built.roster[L["export_key"]])
    for table in (built.truth_duplicates, built.truth_hard_negatives):
        assert set(table["record_id_a"]) <= keys and set(table["record_id_b"]) <= keys
        assert (table["record_id_a"] < table["record_id_b"]).all()
        assert not table.duplicated(["record_id_a", "record_id_b"]).any()
    for table in (built.truth_errors, built.truth_normalisable):
        assert set(table["record_id"]) <= keys
        assert set(table["field"]) <= set(schema.FIELDS)
    assert set(built.truth_duplicates["kind"]) == set(DUPLICATE_KINDS)
    assert set(built.truth_errors["kind"]) == set(ERROR_KINDS)
    assert set(built.truth_normalisable["kind"]) == set(NORMALISABLE_KINDS)
    assert set(built.truth_hard_negatives["kind"]) == set(HARD_NEGATIVE_KINDS)
    # One planted error per row, and a few percent of rows in all.
    assert built.truth_errors["record_id"].is_unique
    assert 0.01 < len(built.truth_errors) / ROWS < 0.06


def test_every_planted_kind_is_one_line_of_the_table():
    own = [kind.name for kind in build.PLANTED if kind.share is not KEPT]
    assert len(own) == len(set(own))
    assert set(DEFAULT_RATES) == set(own) | {"triple"}
    # middle_dot (a dotted name re-typed with '.' or '•') is planted by NAME_CHARS' line.
    assert set(DUPLICATE_KINDS) | set(HARD_NEGATIVE_KINDS) | set(ERROR_KINDS) | set(
        NORMALISABLE_KINDS
    ) - {"middle_dot"} == set(own)
    steps = ("pairs", "copies", "numbers", "text")
    assert [kind.step for kind in build.PLANTED] == sorted(
        (kind.step for kind in build.PLANTED), key=steps.index
    )
    # A kind planting on kept rows comes after the kind that kept them, in an earlier pass.
    for i, kind in enumerate(build.PLANTED):
        if kind.share is KEPT:
            earlier = [k for k in build.PLANTED[:i] if k.name == kind.name]
            assert earlier and steps.index(earlier[0].step) < steps.index(kind.step), kind.name


def test_a_kind_added_to_the_table_is_planted_on_rows_of_its_own(monkeypatch):
    def guardian_missing(piece, rows, kind):
        piece.text["guardian_name"][rows] = ""
        piece.errors.append((rows, "guardian_name", kind))

    added = Kind("text", "GUARDIAN_MISSING", 0.004, guardian_missing)
    monkeypatch.setattr(build, "PLANTED", build.PLANTED + (added,))
    monkeypatch.setattr(build, "DEFAULT_RATES", DEFAULT_RATES | {added.name: added.share})
    small = generate(2000, 5, PROVINCE, counties=2)
    errors = small.truth_errors
    planted = errors.loc[errors["kind"] == added.name, "record_id"]
    assert len(planted) == 8
    assert errors["record_id"].is_unique  # drawn from the pool: no row carries two problems
    by_key = small.roster.set_index(L["export_key"])
    assert (by_key.loc[planted, L["guardian_name"]] == "").all()
    assert (by_key.drop(planted)[L["guardian_name"]] != "").all()


def test_generated_check_characters_are_those_of_gb_11643():
    # Bodies made by the generator against the standard's column form and stdnum's MOD 11-2.
    bodies = np.random.default_rng(1).integers(10**16, 10**17, size=500)
    ids = pd.Series(numbers.id_text(bodies))
    assert checksum_ok(ids).all()
    assert [mod_11_2.calc_check_digit(v[:17]) for v in ids[:50]] == [v[17] for v in ids[:50]]
    assert all(iso7064.is_valid(v) for v in ids[:50])


def test_clean_rows_are_consistent(built, roster):
    clean = _clean(built, roster)
    resident = clean[clean[L["id_type"]].isin(["1", "居民身份证"])]
    ids = resident[L["id_number"]]
    assert checksum_ok(ids).all()
    birth = _parse_dates(resident[L["birth_date"]])
    assert (birth == birth_dates(ids)).all()
    assert (_sex_codes(resident[L["sex"]]) == sex_codes(ids)).all()
    assert (address_codes(ids) == resident[L["household_region"]]).all()
    assert gb2260.is_known(address_codes(ids)).all()
    student_no = resident[L["student_no"]]
    assert student_no.str.fullmatch(r"[GJL]\d{17}[\dX]").all()
    formal = student_no.str.startswith("G")
    assert formal.mean() > 0.9
    assert (student_no[formal].str.slice(1) == ids[formal]).all()
    assert (student_no.str.slice(7, 15) == ids.str.slice(6, 14)).all()
    assert clean[L["phone"]].str.fullmatch(r"1[3-9]\d{9}").all()
    assert clean[L["school_code"]].str.fullmatch(r"(21|31|34)44\d{6}").all()
    assert clean[L["grade"]].isin(list(schema.GRADE_LEVELS)).all()
    assert clean[L["sex"]].isin(list(schema.SEX_CODES)).all()
    assert clean[L["ethnicity"]].isin(list(schema.ETHNICITY_CODES)).all()
    assert clean[L["id_type"]].isin(list(schema.ID_TYPE_CODES)).all()
    names = clean[L["name"]]
    assert names.str.fullmatch("[\u4e00-\u9fff·]{2,}").all()


def test_clean_rows_are_of_age_for_their_grade(built, roster):
    clean = _clean(built, roster)
    level = clean[L["grade"]].map(schema.GRADE_LEVELS)
    birth = _parse_dates(clean[L["birth_date"]])
    start = pd.to_datetime((SCHOOL_YEAR - level - 6).astype(str) + "-09-01")
    end = pd.to_datetime((SCHOOL_YEAR - level - 5).astype(str) + "-08-31")
    assert (birth <= end).all()
    assert (birth >= start - pd.Timedelta(days=365)).all()


def test_distinct_students_never_share_an_id(built, roster):
    ids = _normalise_id(roster[L["id_number"]])
    ids = ids[checksum_ok(ids)]
    # Rows that share an ID must be registrations of one student, listed as a duplicate pair.
    same = set(
        zip(
            built.truth_duplicates["record_id_a"],
            built.truth_duplicates["record_id_b"],
            strict=True,
        )
    )
    for _, group in ids.groupby(ids):
        keys = sorted(group.index)
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                assert (a, b) in same


def test_planted_errors_break_their_rule(built, roster):
    errors = built.truth_errors
    for kind, group in errors.groupby("kind"):
        rows = roster.loc[group["record_id"]]
        ids = _normalise_id(rows[L["id_number"]])
        if kind == "ID_FORMAT":
            assert not has_format(ids).any()
        elif kind == "ID_SPREADSHEET_DAMAGE":
            scientific = ids.str.fullmatch(r"\d\.\d{5}E\+17")
            zeroed = ids.str.fullmatch(r"\d{15}000") & ~checksum_ok(ids)
            assert (scientific | zeroed).all() and scientific.any() and zeroed.any()
            # The 学籍号 still carries the intact number.
            intact = rows[L["student_no"]].str.slice(1)
            assert checksum_ok(intact).all()
            assert (intact.str.slice(0, 6) == ids.str.replace(".", "").str.slice(0, 6)).all()
        elif kind == "ID_CHECKSUM":
            assert has_format(ids).all() and not checksum_ok(ids).any()
        elif kind == "ID_DATE":
            assert checksum_ok(ids).all() and birth_dates(ids).isna().all()
        elif kind == "ID_REGION_UNKNOWN":
            assert checksum_ok(ids).all()
            assert not gb2260.is_known(address_codes(ids)).any()
        elif kind == "ID_MISSING":
            assert (ids == "").all() and rows[L["id_type"]].isin(["1", "居民身份证"]).all()
        elif kind == "BIRTHDATE_MISMATCH":
            assert (_parse_dates(rows[L["birth_date"]]) != birth_dates(ids)).all()
        elif kind == "SEX_MISMATCH":
            assert checksum_ok(ids).all()
            assert (_sex_codes(rows[L["sex"]]) != sex_codes(ids)).all()
        elif kind == "STUDENT_NO_FORMAT":
            assert not rows[L["student_no"]].str.fullmatch(r"[GJL]\d{17}[\dX]").any()
        elif kind == "STUDENT_NO_MISMATCH":
            student_no = rows[L["student_no"]]
            assert student_no.str.startswith("G").all()
            assert checksum_ok(student_no.str.slice(1)).all()
            assert (student_no.str.slice(1) != ids).all()
        elif kind == "SEX_CODE":
            assert not rows[L["sex"]].isin(list(schema.SEX_CODES)).any()
        elif kind == "ETHNICITY_CODE":
            assert not rows[L["ethnicity"]].isin(list(schema.ETHNICITY_CODES)).any()
        elif kind == "ID_TYPE_CODE":
            assert not rows[L["id_type"]].isin(list(schema.ID_TYPE_CODES)).any()
            assert checksum_ok(ids).all()
        elif kind == "SCHOOL_CODE_FORMAT":
            assert not rows[L["school_code"]].str.fullmatch(r"\d{10}").any()
        elif kind == "SCHOOL_PROVINCE":
            codes = rows[L["school_code"]]
            assert codes.str.fullmatch(r"\d{10}").all() and (codes.str.slice(2, 4) != "44").all()
        elif kind == "COUNTY_UNKNOWN":
            assert not rows[L["school_county"]].isin(gb2260.counties(PROVINCE)["code"]).any()
        elif kind == "NAME_CHARS":
            assert not rows[L["name"]].str.fullmatch("[\u4e00-\u9fff·]+").any()
        elif kind == "REQUIRED_MISSING":
            for record_id, field in zip(group["record_id"], group["field"], strict=True):
                assert roster.at[record_id, L[field]] == ""
        elif kind == "AGE_GRADE":
            level = rows[L["grade"]].map(schema.GRADE_LEVELS)
            birth = _parse_dates(rows[L["birth_date"]])
            start = pd.to_datetime((SCHOOL_YEAR - level - 6).astype(str) + "-09-01")
            end = pd.to_datetime((SCHOOL_YEAR - level - 5).astype(str) + "-08-31")
            outside = (birth < start - pd.Timedelta(days=366)) | (birth > end)
            assert outside.all()
            assert (birth == birth_dates(ids)).all() and checksum_ok(ids).all()
        elif kind == "ENROLL_DATE":
            year = rows[L["enroll_date"]].str.slice(0, 4).astype(int)
            born = _parse_dates(rows[L["birth_date"]]).dt.year
            assert ((year > SCHOOL_YEAR) | (year < born)).all()
        elif kind == "PHONE_FORMAT":
            assert not rows[L["phone"]].str.fullmatch(r"1[3-9]\d{9}").any()


def test_normalisable_values_are_clean_once_normalised(built, roster):
    table = built.truth_normalisable
    ids = roster.loc[table.loc[table["field"] == "id_number", "record_id"], L["id_number"]]
    assert (ids != _normalise_id(ids)).all()
    assert checksum_ok(_normalise_id(ids)).all()
    for field in ("phone", "school_code"):
        values = roster.loc[table.loc[table["field"] == field, "record_id"], L[field]]
        assert (values != values.str.strip()).all()
    names = roster.loc[table.loc[table["field"] == "name", "record_id"], L["name"]]
    fixed, _ = normalize.normalize_column(names, normalize.field_steps("name"), distinct=False)
    assert (names != fixed).all()
    assert fixed.str.fullmatch("[\u4e00-\u9fff]+(·[\u4e00-\u9fff]+)*").all()


def _pairs(table: pd.DataFrame, kind: str) -> list[tuple[str, str]]:
    part = table[table["kind"] == kind]
    return list(zip(part["record_id_a"], part["record_id_b"], strict=True))


def test_duplicates_are_the_same_student(built, roster):
    table = built.truth_duplicates
    for kind in DUPLICATE_KINDS:
        for a, b in _pairs(table, kind):
            x, y = roster.loc[a], roster.loc[b]
            assert x[L["guardian_name"]] == y[L["guardian_name"]], kind
            assert (
                _sex_codes(pd.Series([x[L["sex"]]]))[0] == _sex_codes(pd.Series([y[L["sex"]]]))[0]
            )
            id_x, id_y = _normalise_id(pd.Series([x[L["id_number"]], y[L["id_number"]]]))
            if kind.startswith("exact"):
                assert x[L["name"]] == y[L["name"]] and id_x == id_y
                same_school = x[L["school_code"]] == y[L["school_code"]]
                assert same_school == (kind == "exact_same_school")
            elif kind in ("id_digit", "id_transpose"):
                assert id_x != id_y and len(id_x) == len(id_y) == 18
                differ = [i for i in range(18) if id_x[i] != id_y[i]]
                assert len(differ) == (1 if kind == "id_digit" else 2)
            elif kind == "name_homophone":
                assert x[L["name"]] != y[L["name"]]
                assert lazy_pinyin(x[L["name"]]) == lazy_pinyin(y[L["name"]])
            elif kind == "name_noise":
                assert re.sub(r"\s", "", x[L["name"]]) == re.sub(r"\s", "", y[L["name"]])
                assert x[L["name"]] != y[L["name"]]
            elif kind == "date_swap":
                dx, dy = _parse_dates(pd.Series([x[L["birth_date"]], y[L["birth_date"]]]))
                assert dx != dy and (dx.day, dx.month) == (dy.month, dy.day)
                # Each 学籍号 embeds the date as typed on its registration.
                assert x[L["student_no"]][7:15] == dx.strftime("%Y%m%d")
                assert y[L["student_no"]][7:15] == dy.strftime("%Y%m%d")
            elif kind == "missing_id":
                assert (id_x == "") != (id_y == "")
                assert x[L["name"]] == y[L["name"]]


def test_a_student_registered_three_times_gives_three_pairs(built):
    table = built.truth_duplicates
    graph: dict[str, set[str]] = {}
    for a, b in zip(table["record_id_a"], table["record_id_b"], strict=True):
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set()).add(a)
    triangles = [k for k, v in graph.items() if len(v) == 2]
    assert triangles
    for k in triangles:
        a, b = sorted(graph[k])
        assert b in graph[a]


def test_twins_and_namesakes_are_two_valid_students(built, roster):
    table = built.truth_hard_negatives
    for a, b in _pairs(table, "twins"):
        x, y = roster.loc[a], roster.loc[b]
        ids = pd.Series([x[L["id_number"]], y[L["id_number"]]])
        assert checksum_ok(ids).all()
        assert ids[0][:14] == ids[1][:14]
        assert abs(int(ids[0][14:17]) - int(ids[1][14:17])) in (1, 2)
        for field in ("birth_date", "guardian_name", "household_region", "school_code"):
            assert x[L[field]] == y[L[field]] or field == "birth_date"
        assert x[L["name"]][0] == y[L["name"]][0] and x[L["name"]] != y[L["name"]]
    for a, b in _pairs(table, "same_name_birth"):
        x, y = roster.loc[a], roster.loc[b]
        ids = pd.Series([x[L["id_number"]], y[L["id_number"]]])
        assert checksum_ok(ids).all()
        assert x[L["name"]] == y[L["name"]]
        assert ids[0][6:14] == ids[1][6:14] and ids[0][:6] != ids[1][:6]
        assert x[L["school_county"]] != y[L["school_county"]]


def test_name_frequencies_repeat_like_real_names(built):
    names = built.roster[L["name"]]
    surnames = names.str.slice(0, 1).value_counts()
    assert list(surnames.index[:3]) == ["王", "李", "张"] or set(surnames.index[:5]) >= {"王", "李"}
    assert names.value_counts().iloc[0] >= 8
    assert names.isin(["张伟", "王芳", "王伟", "李娜"]).sum() >= 10


def test_homophones_read_the_same():
    for char, others in HOMOPHONES.items():
        for other in others:
            assert lazy_pinyin(char) == lazy_pinyin(other), (char, other)


def test_small_rosters_still_work():
    small = generate(300, 1, "11")
    assert len(small.roster) == 300
    assert set(small.truth_errors["record_id"]) <= set(small.roster[L["export_key"]])


@pytest.mark.parametrize("fmt", ["csv", "csv-gb18030", "xlsx", "parquet"])
def test_write_sample_formats_keep_every_value_as_text(tmp_path, fmt):
    summary = write_sample(tmp_path, 1200, 7, "44", fmt=fmt, counties=4)
    expected = generate(1200, 7, "44", counties=4).roster
    path = tmp_path / summary["roster"].rsplit("/", 1)[-1]
    if fmt.startswith("csv"):
        raw = path.read_bytes()
        encoding = "gb18030" if fmt == "csv-gb18030" else "utf-8"
        if fmt == "csv-gb18030":
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
        text = raw.decode(encoding)
        back = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    elif fmt == "xlsx":
        sheet = openpyxl.load_workbook(path, read_only=True).active
        values = list(sheet.iter_rows(values_only=True))
        assert all(isinstance(v, str) for row in values for v in row)
        back = pd.DataFrame(values[1:], columns=values[0])
    else:
        table = pq.read_table(path)
        assert all(str(t) == "string" for t in table.schema.types)
        back = table.to_pandas()
    assert list(back.columns) == list(expected.columns)
    np.testing.assert_array_equal(back.to_numpy(dtype=str), expected.to_numpy(dtype=str))
    assert summary["rows"] == 1200
    for name in ("truth_duplicates", "truth_errors", "truth_normalisable", "truth_hard_negatives"):
        assert (tmp_path / f"{name}.csv").exists()


def test_unknown_rate_or_format_is_refused(tmp_path):
    with pytest.raises(ValueError):
        generate(1000, 1, "44", rates={"no_such_kind": 0.1})
    with pytest.raises(ValueError):
        write_sample(tmp_path, 1000, 1, "44", fmt="ods")


def test_committed_sample_is_what_its_documented_command_writes(tmp_path):
    committed = Path(__file__).resolve().parents[1] / "data_samples" / "sample"
    write_sample(tmp_path, 5000, 20261128, "44", "csv", counties=6)
    for name in sorted(p.name for p in committed.glob("*.csv")):
        assert (tmp_path / name).read_bytes() == (committed / name).read_bytes(), name
