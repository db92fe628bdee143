"""A roster generated in pieces: one roster, its numbers unique across pieces, its truth true."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from xueji_quality import schema
from xueji_quality.generator import build, generate, generate_chunks, write_sample

PROVINCE = "44"
ROWS = 45_000
CHUNK = 15_000
TRUTH = ("truth_duplicates", "truth_errors", "truth_normalisable", "truth_hard_negatives")
_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])


def _col(field: str) -> str:
    return schema.FIELDS[field]


def _valid_ids(ids: pd.Series) -> pd.Series:
    shaped = ids.str.fullmatch(r"\d{17}[\dX]")
    digits = ids[shaped].str.slice(0, 17).apply(lambda s: [int(c) for c in s])
    values = (12 - np.stack(digits.to_numpy()) @ _WEIGHTS % 11) % 11
    check = pd.Series(np.array(list("0123456789X"))[values], index=digits.index)
    return (ids.str.slice(17) == check.reindex(ids.index)) & shaped


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    # One county: people crowd onto few birth days and address codes, so pieces drawn without
    # regard to each other would hand out the same ID numbers.
    folder = tmp_path_factory.mktemp("chunks")
    summary = write_sample(folder, ROWS, 3, PROVINCE, "csv", counties=1, chunk_rows=CHUNK)
    roster = pd.read_csv(folder / "roster.csv", dtype=str, keep_default_na=False)
    truth = {name: pd.read_csv(folder / f"{name}.csv", dtype=str) for name in TRUTH}
    return summary, roster, truth


def test_row_count_and_record_keys_run_on_across_pieces(written):
    summary, roster, _ = written
    assert len(roster) == ROWS == summary["rows"]
    keys = roster[_col("export_key")]
    assert keys.is_unique
    assert sorted(keys) == [f"R{i:07d}" for i in range(1, ROWS + 1)]


def test_truth_record_ids_exist_and_counts_add_up(written):
    summary, roster, truth = written
    keys = set(roster[_col("export_key")])
    for name, frame in truth.items():
        for column in [c for c in frame.columns if c.startswith("record_id")]:
            assert set(frame[column]) <= keys, name
    assert summary["duplicate_pairs"] == len(truth["truth_duplicates"])
    assert summary["error_cells"] == len(truth["truth_errors"])
    assert sum(summary["error_kinds"].values()) == len(truth["truth_errors"])
    # Each piece plants its own share: three pieces, three times one piece's count.
    assert (truth["truth_errors"]["kind"] == "ID_DATE").sum() == 3 * round(0.001 * CHUNK)
    # Truth files stay sorted by record id (each piece's ids follow the previous piece's).
    errors = truth["truth_errors"]["record_id"]
    assert errors.is_monotonic_increasing


def test_a_valid_id_is_shared_only_by_registrations_of_one_student(written):
    _, roster, truth = written
    ids = roster[_col("id_number")]
    valid = ids[_valid_ids(ids)]
    shared = valid[valid.duplicated(keep=False)]
    dups = truth["truth_duplicates"]
    pairs = set(zip(dups["record_id_a"], dups["record_id_b"], strict=True))
    keys = roster[_col("export_key")]
    for _, group in keys[shared.index].groupby(shared):
        rows = sorted(group)
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                assert (a, b) in pairs, (a, b)
    # Numbers of other documents are never shared.
    other = roster[~roster[_col("id_type")].isin(["1", "居民身份证"]) & (ids != "")]
    assert other[_col("id_number")].is_unique


def test_student_numbers_are_unique(written):
    _, roster, _ = written
    assert roster[_col("student_no")].is_unique


def test_pieces_share_one_set_of_schools_and_counties(written):
    _, roster, _ = written
    piece = np.arange(len(roster)) // CHUNK
    code = roster[_col("school_code")]
    plain = code.str.fullmatch(rf"(21|31|34){PROVINCE}\d{{6}}")
    schools = [set(code[plain & (piece == k)]) for k in range(3)]
    assert schools[0] == schools[1] == schools[2]
    # A school has one name in every piece.
    kept = plain & (roster[_col("school_name")] != "")
    named = roster[kept].groupby(code[kept])[_col("school_name")].nunique()
    assert (named == 1).all()


def test_pieces_are_different_people(written):
    _, roster, _ = written
    name = roster[_col("name")].to_numpy()
    assert (name[:CHUNK] != name[CHUNK : 2 * CHUNK]).mean() > 0.9


def test_one_piece_is_the_one_piece_roster(tmp_path):
    (only,) = list(generate_chunks(3000, 9, PROVINCE, counties=3, chunk_rows=3000))
    pd.testing.assert_frame_equal(only.roster, generate(3000, 9, PROVINCE, counties=3).roster)


def test_pieces_are_reproducible_and_parquet_appends(tmp_path):
    first = write_sample(tmp_path / "a", 9000, 4, PROVINCE, "parquet", counties=2, chunk_rows=4000)
    write_sample(tmp_path / "b", 9000, 4, PROVINCE, "parquet", counties=2, chunk_rows=4000)
    a = pq.read_table(first["roster"])
    assert a.num_rows == 9000
    assert a.equals(pq.read_table(tmp_path / "b" / "roster.parquet"))
    for name in TRUTH:
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (
            tmp_path / "b" / f"{name}.csv"
        ).read_bytes()


def test_chunk_rows_must_be_positive(tmp_path):
    with pytest.raises(ValueError):
        write_sample(tmp_path, 2000, 1, PROVINCE, chunk_rows=0)


def test_write_sample_drops_a_piece_before_the_next_is_built(tmp_path, monkeypatch):
    seen: list[weakref.ref] = []
    build_piece = build._build

    def checked(*args, **kwargs):
        # A piece starts: nothing may hold the previous one any more.
        assert all(ref() is None for ref in seen)
        piece = build_piece(*args, **kwargs)
        seen.append(weakref.ref(piece.roster))
        return piece

    monkeypatch.setattr(build, "_build", checked)
    summary = write_sample(tmp_path, 6000, 2, PROVINCE, counties=2, chunk_rows=2000)
    assert summary["rows"] == 6000 and len(seen) == 3
