"""The provincial flow under Prefect's test harness, on a freshly generated roster."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from xueji_quality import generator

AS_OF = date(2026, 11, 28)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    generator.write_sample(out, 4000, 7, "44", "csv", counties=5)
    return out


@pytest.fixture(scope="module")
def run(sample, tmp_path_factory, prefect_harness) -> dict:
    from pipelines.provincial import provincial_run

    out = tmp_path_factory.mktemp("out")
    return provincial_run(
        inputs=[str(sample / "roster.csv")], province="44", out=str(out), as_of=AS_OF
    )


def _truth(sample: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(sample / name, dtype=str, keep_default_na=False)


def test_conservation_holds_and_is_in_the_manifest(run):
    manifest = json.loads((Path(run["run_dir"]) / "manifest.json").read_text(encoding="utf-8"))
    rows = manifest["rows"]
    assert rows["holds"] is True
    assert rows["rows_read"] == rows["rows_staged"] + rows["rows_quarantined"]
    assert rows["rows_read"] >= 4000


def test_every_exact_id_duplicate_is_found(run, sample):
    truth = _truth(sample, "truth_duplicates.csv")
    exact = truth[truth["kind"].str.startswith("exact")]
    assert len(exact) > 0
    dups = run["duplicates"]
    group_of = dups.drop_duplicates("record_id").set_index("record_id")["group_id"]
    same_group = exact["record_id_a"].map(group_of) == exact["record_id_b"].map(group_of)
    assert same_group.all(), exact[~same_group].head()


def test_every_bad_check_digit_is_reported(run, sample):
    truth = _truth(sample, "truth_errors.csv")
    bad = set(truth.loc[truth["kind"] == "ID_CHECKSUM", "record_id"])
    assert bad
    found = set(run["problems"].loc[run["problems"]["rule"] == "ID_CHECKSUM", "record_id"])
    assert bad <= found


def test_published_layout(run):
    run_dir = Path(run["run_dir"])
    assert (run_dir / "province" / "problems.parquet").exists()
    assert (run_dir / "province" / "summary.xlsx").exists()
    county_dirs = sorted((run_dir / "counties").iterdir())
    assert len(county_dirs) >= 5
    for county in county_dirs:
        assert list(county.glob(f"{county.name}_*_问题学籍清单.xlsx"))
        assert (county / "problems.parquet").exists()
    assert (run_dir.parent / "latest").resolve() == run_dir.resolve()


def test_the_staged_roster_is_removed_after_the_run(run):
    out_root = Path(run["run_dir"]).parent
    leftovers = [p.name for p in out_root.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []
