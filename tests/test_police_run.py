"""The police cross-check inside the provincial flow: its items reach problems.parquet and the
county workbooks, the manifest keeps only the police file's name, SHA-256 and row count, the
request of a finished run holds ID and name only, and no registry-only person leaves a trace."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from xueji_quality import generator
from xueji_quality.generator.police import write_police
from xueji_quality.police import runs

AS_OF = date(2026, 11, 28)
POLICE_RULES = {"POLICE_ID_NOT_FOUND", "POLICE_NAME_MISMATCH", "POLICE_ID_CANCELLED"}


@pytest.fixture(scope="module")
def police_run(tmp_path_factory, prefect_harness) -> dict:
    from pipelines.provincial import provincial_run

    sample = tmp_path_factory.mktemp("police_sample")
    generator.write_sample(sample, 2500, 23, "44", "csv", counties=3)
    write_police(sample, 23, "44")
    out = tmp_path_factory.mktemp("police_out")
    result = provincial_run(
        inputs=[str(sample / "roster.csv")],
        province="44",
        out=str(out),
        as_of=AS_OF,
        police_registry=str(sample / "registry.parquet"),
    )
    return {"sample": sample, "out": out, "run_dir": Path(result["run_dir"])}


def test_police_items_are_problems_of_the_run_and_of_the_county_lists(police_run):
    run_dir = police_run["run_dir"]
    problems = pd.read_parquet(run_dir / "province" / "problems.parquet")
    found = set(problems["rule"]) & POLICE_RULES
    assert found == POLICE_RULES
    in_workbooks = set()
    for book in (run_dir / "counties").glob("*/*.xlsx"):
        sheets = openpyxl.load_workbook(book, read_only=True)
        for sheet in sheets.worksheets:
            for row in sheet.iter_rows(values_only=True):
                in_workbooks |= {str(v) for v in row if v in POLICE_RULES}
    assert in_workbooks == POLICE_RULES


def test_the_manifest_keeps_only_the_police_files_facts(police_run):
    manifest = json.loads((police_run["run_dir"] / "manifest.json").read_text(encoding="utf-8"))
    police = manifest["police"]
    assert [sorted(f) for f in police["files"]] == [["name", "rows", "sha256"]]
    assert police["files"][0]["name"] == "registry.parquet"
    assert police["records_sent"] > 0
    assert sum(police["items_by_rule"].values()) == int(
        pd.read_parquet(police_run["run_dir"] / "province" / "problems.parquet")["rule"]
        .isin(POLICE_RULES)
        .sum()
    )


def test_no_registry_only_person_is_anywhere_in_the_output(police_run):
    registry = pd.read_parquet(police_run["sample"] / "registry.parquet")
    roster = pd.read_csv(police_run["sample"] / "roster.csv", dtype=str, keep_default_na=False)
    problems = pd.read_parquet(police_run["run_dir"] / "province" / "problems.parquet")
    suggested = " ".join(problems["suggestion"].dropna())
    outsiders = registry[
        ~registry["公民身份号码"].isin(roster["身份证件号"])
        & ~registry["姓名"].isin(roster["姓名"])
    ]
    # Suggestions name the student's own number; residents not in school are never named.
    outsiders = outsiders[[n not in suggested for n in outsiders["公民身份号码"]]]
    assert len(outsiders) > 100
    blobs = [p.read_bytes() for p in police_run["out"].rglob("*") if p.is_file()]
    xlsx_text = []
    for book in police_run["out"].rglob("*.xlsx"):
        for sheet in openpyxl.load_workbook(book, read_only=True).worksheets:
            for row in sheet.iter_rows(values_only=True):
                xlsx_text.extend(str(v) for v in row if v is not None)
    text = "\n".join(xlsx_text)
    # A name is looked for as a whole run of Chinese characters (何雅 is not inside 何雅宜).
    runs_of_han = set(re.findall(r"[\u3400-\u9fff·]+", text))
    for number, name in zip(outsiders["公民身份号码"], outsiders["姓名"], strict=True):
        assert not any(number.encode() in blob for blob in blobs), number
        assert number not in text
        assert name not in runs_of_han, name


def test_the_request_of_a_finished_run_holds_id_and_name_only(police_run, tmp_path):
    table = runs.request_from_run(police_run["run_dir"])
    assert list(table.columns) == ["请求编号", "公民身份号码", "姓名"]
    roster = pd.read_csv(police_run["sample"] / "roster.csv", dtype=str, keep_default_na=False)
    assert table["公民身份号码"].str.fullmatch(r"[0-9]{17}[0-9X]").all()
    assert 0.9 * len(roster) < len(table) <= len(roster)
    assert table["请求编号"].is_unique


def test_a_changed_export_refuses_the_request(police_run, tmp_path):
    from xueji_quality.errors import InputError

    manifest_path = police_run["run_dir"] / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    copy = tmp_path / "roster.csv"
    copy.write_bytes(Path(manifest["inputs"][0]["path"]).read_bytes() + b"\n")
    manifest["inputs"][0]["path"] = str(copy)
    run_copy = tmp_path / "run"
    run_copy.mkdir()
    (run_copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(InputError, match="已改变"):
        runs.request_from_run(run_copy)


def test_the_police_check_by_chunks_equals_the_check_in_one_piece(police_run, tmp_path):
    """A province is checked a chunk of its staged roster at a time; the items are the same."""
    from xueji_quality import staging

    sample = police_run["sample"]
    store = staging.stage_exports([sample / "roster.csv"], "44", tmp_path / "roster")
    try:
        whole = runs.check_staged(store, registry=sample / "registry.parquet")
        parts = runs.check_staged(
            store, registry=sample / "registry.parquet", chunk_rows=max(1, store.rows_staged // 3)
        )
    finally:
        store.remove()
    assert len(store.chunks(max(1, store.rows_staged // 3))) > 1
    key = ["record_id", "rule", "message", "suggestion"]
    assert len(whole.problems) > 0
    pd.testing.assert_frame_equal(
        whole.problems.sort_values(key).reset_index(drop=True)[key],
        parts.problems.sort_values(key).reset_index(drop=True)[key],
    )
    assert whole.sent == parts.sent
    assert len(whole.checksum_suggestions) == len(parts.checksum_suggestions)
