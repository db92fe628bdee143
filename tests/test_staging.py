"""The staged roster (Parquet by county) gives the same rows, problems and groups as the roster
read whole, however the rows are cut into files and chunks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from xueji_quality import generator, ingest, linkage, staging, validate
from xueji_quality.errors import InputError
from xueji_quality.ingest import csv_reader

AS_OF = date(2026, 11, 28)
KEY = ["record_id", "rule", "field"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> list[Path]:
    """Two exports: a generated roster and a second file repeating 300 of its keys, with a
    column of its own."""
    out = tmp_path_factory.mktemp("exports")
    generator.write_sample(out / "a", 3000, 11, "44", "csv", counties=4)
    first = pd.read_csv(out / "a" / "roster.csv", dtype=str, keep_default_na=False)
    second = first.iloc[:300].assign(备用列="x")
    (out / "b").mkdir()
    second.to_csv(out / "b" / "roster.csv", index=False)
    return [out / "a" / "roster.csv", out / "b" / "roster.csv"]


@pytest.fixture(scope="module")
def whole(exports) -> ingest.Staged:
    return ingest.read_exports(exports, "44")


@pytest.fixture(scope="module")
def store(exports, tmp_path_factory) -> staging.StagedStore:
    # A small flush size: many files per county, repeated keys across flushes.
    return staging.stage_exports(exports, "44", tmp_path_factory.mktemp("store"), flush_rows=700)


def test_staged_rows_are_the_rows_read_whole(whole, store):
    assert store.rows_read == whole.rows_read
    assert store.rows_staged == len(whole.roster)
    assert store.renamed_record_ids == 300
    assert store.record_ids_unique
    assert len({p.path for p in store.parts}) > len(store.counties())
    staged = store.read([*store.columns, staging.POSITION])
    staged = staged.sort_values(staging.POSITION).drop(columns=staging.POSITION)
    pd.testing.assert_frame_equal(whole.roster, staged.reset_index(drop=True))
    pd.testing.assert_frame_equal(whole.quarantine, store.quarantine)
    pd.testing.assert_frame_equal(whole.normalizations, store.read_normalizations())
    counts = whole.normalizations.groupby(["field", "kind"]).size()
    assert store.normalized_values == {f"{f}:{k}": int(n) for (f, k), n in counts.items()}
    counts = whole.roster["county_code"].value_counts().sort_index()
    assert store.county_rows().to_dict() == counts.to_dict()


def test_blocks_staged_in_worker_processes_give_the_same_store(
    whole, exports, tmp_path, monkeypatch
):
    # Small CSV blocks: several per file, staged two at a time in worker processes.
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_BYTES", 64 << 10)
    store = staging.stage_exports(exports, "44", tmp_path / "store", processes=2)
    staged = store.read([*store.columns, staging.POSITION])
    staged = staged.sort_values(staging.POSITION).drop(columns=staging.POSITION)
    pd.testing.assert_frame_equal(whole.roster, staged.reset_index(drop=True))
    pd.testing.assert_frame_equal(whole.quarantine, store.quarantine)
    # Normalisations come block by block, so in another order than from the file read whole.
    key = ["record_id", "field", "kind"]
    pd.testing.assert_frame_equal(
        whole.normalizations.sort_values(key, ignore_index=True),
        store.read_normalizations().sort_values(key, ignore_index=True),
    )


def test_each_file_holds_one_county(store):
    for part in store.parts:
        codes = store.read(["county_code"], parts=[part])["county_code"].unique().tolist()
        assert codes == [part.county_code]


def test_records_are_looked_up_by_id(whole, store):
    wanted = whole.roster["record_id"].iloc[[5, 2900, 3100]].tolist() + ["no-such-record"]
    found = store.records(wanted)
    assert sorted(found["record_id"]) == sorted(wanted[:3])
    assert list(found.columns) == store.columns


def test_chunks_keep_every_part_once(store):
    chunks = store.chunks(1000)
    assert len(chunks) > 1
    assert [p for chunk in chunks for p in chunk] == store.parts
    assert all(sum(p.rows for p in c) <= 1000 or len(c) == 1 for c in chunks)


def test_validation_by_chunk_finds_what_validation_whole_finds(whole, store, tmp_path):
    expected = validate.validate_roster(whole.roster, "44", AS_OF)
    found = validate.validate_store(
        store, "44", AS_OF, workers=1, chunk_rows=1200, data_docs_dir=tmp_path / "docs"
    )
    assert len(found) > 50
    pd.testing.assert_frame_equal(
        expected.sort_values(KEY).reset_index(drop=True),
        found.sort_values(KEY).reset_index(drop=True),
    )
    # Data Docs: one validation result per suite and chunk.
    runs = {p.parent.parent.name for p in (tmp_path / "docs" / "validations").rglob("*.html")}
    assert len(runs) == len(store.chunks(1200))


def test_linkage_of_the_staged_columns_finds_the_same_groups(whole, store):
    expected = linkage.find_duplicates(whole.roster[list(linkage.COLUMNS_USED)])
    found = staging.find_duplicates(store.without_tables())
    assert len(expected.pairs) > 10
    pd.testing.assert_frame_equal(expected.pairs, found.pairs)

    def groups(result: linkage.LinkResult) -> set[frozenset[str]]:
        members = result.duplicates.groupby("group_id")["record_id"].apply(frozenset)
        return set(members)

    assert groups(expected) == groups(found)


def test_workers_write_the_same_store_as_one_process(exports, tmp_path, monkeypatch):
    # Small CSV blocks and flushes: many batches, shared out to both workers.
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_BYTES", 64 << 10)
    one = staging.stage_exports(exports, "44", tmp_path / "one", flush_rows=1000)
    # From here this process must not write a roster file: the workers write them.
    written_here: list[int] = []
    monkeypatch.setattr(staging._Writer, "flush", lambda self: written_here.append(1))
    two = staging.stage_exports(exports, "44", tmp_path / "two", flush_rows=1000, processes=2)
    assert written_here == []
    assert len(two.parts) > len(two.counties())
    assert all(Path(p.path).is_relative_to(tmp_path / "two") for p in two.parts)

    def table(store: staging.StagedStore) -> pd.DataFrame:
        rows = store.read([*store.columns, staging.POSITION])
        return rows.sort_values(staging.POSITION, ignore_index=True)

    pd.testing.assert_frame_equal(table(one), table(two))
    pd.testing.assert_frame_equal(one.quarantine, two.quarantine)
    pd.testing.assert_frame_equal(one.read_normalizations(), two.read_normalizations())
    assert two.normalized_values == one.normalized_values
    assert two.county_rows().to_dict() == one.county_rows().to_dict()
    assert (two.renamed_record_ids, two.record_ids_unique) == (300, True)
    assert two.files == one.files
    # Within a county, the files in store order hold its rows in run order.
    for county in two.counties():
        positions = two.read(
            [staging.POSITION], parts=[p for p in two.parts if p.county_code == county]
        )
        assert positions[staging.POSITION].is_monotonic_increasing


def test_a_refused_export_leaves_nothing_when_workers_stage(exports, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(InputError):
        staging.stage_exports([*exports, bad], "44", tmp_path / "store", processes=2)
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    ("chunks", "distinct"),
    [
        ([["b", "a", "c"], ["d"]], True),
        ([["b", "a", "c"], ["d", "a"]], False),  # the repeat in another chunk
        ([["a", "a"]], False),
        ([["a", None]], False),  # a missing id is no id
        ([["a"], []], True),
        ([[]], True),
    ],
)
def test_all_distinct_sees_a_repeat_in_any_chunk(chunks, distinct):
    import pyarrow as pa

    values = pa.chunked_array([pa.array(c, pa.large_string()) for c in chunks])
    assert staging.all_distinct(values) is distinct


def test_an_export_hashed_before_is_not_hashed_again_unless_it_changed(exports, tmp_path):
    from xueji_quality import files

    export = tmp_path / "roster.csv"
    export.write_bytes(exports[1].read_bytes())
    assert files.known_hashes([export]) == {}  # not hashed by this process yet
    files.cached_sha256(export)
    # A hash handed over for the file as it is stands in for hashing it: the one the store names.
    told = dict.fromkeys(files.known_hashes([export]), "f" * 64)
    files._known.clear()
    store = staging.stage_exports([export], "44", tmp_path / "a", hashes=told)
    assert store.files[0]["sha256"] == "f" * 64
    # The file changed since: the hash handed over no longer holds.
    export.write_bytes(exports[1].read_bytes() + exports[1].read_bytes().splitlines(True)[1])
    store = staging.stage_exports([export], "44", tmp_path / "b", hashes=told)
    assert store.files[0]["sha256"] == files.sha256_file(export)
