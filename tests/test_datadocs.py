"""Data Docs sites point at vendored copies of their CDN assets and work offline; their folder
names are ones Windows accepts; sampled failing values are named by 记录号 and masked; the front
page joins the totals of later stages' sites."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xueji_quality import datadocs
from xueji_quality.datadocs import localise_data_docs, rewrite_page

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REMOTE_ATTR = re.compile(r"""\s(?:src|href)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", re.IGNORECASE)
LOCAL_ATTR = re.compile(r"""\s(?:src|href)\s*=\s*["']([^"'#:]+?)(?:[?#][^"']*)?["']""")
CDN_HOSTS = (
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
    "code.jquery.com",
    "maxcdn.bootstrapcdn.com",
    "stackpath.bootstrapcdn.com",
    "unpkg.com",
    "great-expectations-web-assets.s3",
)


def _build_site(root: Path) -> Path:
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    ctx = gx.get_context(mode="file", project_root_dir=root)
    batch = (
        ctx.data_sources.add_pandas("rosters")
        .add_dataframe_asset("roster")
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = ctx.suites.add(gx.ExpectationSuite(name="roster.basic"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="xm"))
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToBeBetween(column="age", min_value=5, max_value=20)
    )
    definition = ctx.validation_definitions.add(
        gx.ValidationDefinition(name="roster_check", data=batch, suite=suite)
    )
    checkpoint = ctx.checkpoints.add(
        gx.Checkpoint(
            name="roster_checkpoint",
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="docs")],
        )
    )
    frame = pd.DataFrame({"xm": ["张三", None, "王五"], "age": [7, 8, 30]})
    checkpoint.run(batch_parameters={"dataframe": frame})
    return root / "gx" / "uncommitted" / "data_docs" / "local_site"


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_site(tmp_path_factory.mktemp("gx"))


@pytest.fixture
def site(built_site: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "site"
    shutil.copytree(built_site, copy)
    return copy


def _pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def _snapshot(site: Path) -> dict[str, str]:
    return {
        path.relative_to(site).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(site.rglob("*"))
        if path.is_file()
    }


def test_manifest_matches_vendored_files() -> None:
    manifest = datadocs.load_manifest()
    listed = manifest["assets"] + manifest["support_files"]
    for entry in listed:
        path = datadocs.VENDOR_DIR / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], entry["path"]
        assert (datadocs.VENDOR_DIR / entry["license"]).is_file(), entry["license"]
        assert entry["package"] and entry["version"]
    urls = [entry["url"] for entry in manifest["assets"]]
    assert len(urls) == len(set(urls))
    total = sum(p.stat().st_size for p in datadocs.VENDOR_DIR.rglob("*") if p.is_file())
    assert total < 4 * 1024 * 1024


def test_manifest_covers_every_cdn_asset_of_the_installed_gx_templates() -> None:
    import great_expectations

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    found: set[str] = set()
    for template in templates.rglob("*.j2"):
        for tag in datadocs._TAG_RE.finditer(template.read_text(encoding="utf-8")):
            found.update(m.group(1) for m in REMOTE_ATTR.finditer(tag.group(0)))
    assert found, "no CDN asset links found in the GX templates"
    assert found <= set(datadocs.url_map())


def test_fontawesome_css_fonts_are_vendored() -> None:
    manifest = datadocs.load_manifest()
    css_entry = next(a for a in manifest["assets"] if a["path"].endswith("css/all.min.css"))
    css_path = datadocs.VENDOR_DIR / css_entry["path"]
    css = css_path.read_text(encoding="utf-8")
    faces = re.findall(r"@font-face\{[^}]*\}", css)
    assert faces
    for face in faces:
        urls = re.findall(r"url\(([^)]+)\)", face)
        woff2 = [u for u in urls if u.endswith(".woff2")]
        assert woff2, face
        for url in woff2:
            assert (css_path.parent / url).resolve().is_file(), url


def test_site_is_localised(site: Path) -> None:
    pages = _pages(site)
    depths = {len(p.relative_to(site).parts) for p in pages}
    assert len(depths) >= 3, "expected index, expectation and validation pages at different depths"

    result = localise_data_docs(site)

    assert result["html_files"] == len(pages)
    assert result["files_rewritten"] == len(pages)
    assert result["urls_replaced"] >= 15 * len(pages)
    assert result["unmapped_urls"] == []
    for page in pages:
        html = page.read_text(encoding="utf-8")
        remote = [u for u in REMOTE_ATTR.findall(html) if any(h in u for h in CDN_HOSTS)]
        assert remote == [], (page, remote)
        assert not re.search(r"\s(?:integrity|crossorigin)\s*=", html), page
        local = [u for u in LOCAL_ATTR.findall(html) if "static/vendor/" in u]
        assert len(local) >= 15, page
        for url in local:
            assert (page.parent / url).resolve().is_file(), (page, url)
        logo = re.search(r"<img[^>]*\ssrc=\"([^\"]+logo-long\.png)\"", html)
        assert logo and (page.parent / logo.group(1)).resolve().is_file(), page
    fonts = site / "static" / "vendor" / "fontawesome-free-6.6.0" / "webfonts"
    assert {p.name for p in fonts.glob("*.woff2")} >= {
        "fa-solid-900.woff2",
        "fa-regular-400.woff2",
        "fa-brands-400.woff2",
    }
    assert (site / "static" / "vendor" / "vega-5.33.1" / "LICENSE").is_file()


def test_running_twice_changes_nothing(site: Path) -> None:
    first = localise_data_docs(site)
    before = _snapshot(site)
    second = localise_data_docs(site)
    assert _snapshot(site) == before
    assert second["files_rewritten"] == 0
    assert second["urls_replaced"] == 0
    assert second["assets_copied"] == 0
    assert second["unmapped_urls"] == first["unmapped_urls"] == []


def test_unknown_cdn_asset_is_reported_and_links_are_kept(tmp_path: Path) -> None:
    page = tmp_path / "validations" / "a" / "b.html"
    page.parent.mkdir(parents=True)
    html = (
        '<script src="https://code.jquery.com/jquery-3.7.1.min.js" '
        'integrity="sha384-x" crossorigin="anonymous"></script>\n'
        '<script src="https://cdn.example.org/new-lib@1/lib.js"></script>\n'
        '<a href="https://greatexpectations.io">GX</a>\n'
    )
    page.write_text(html, encoding="utf-8")
    result = localise_data_docs(tmp_path)
    text = page.read_text(encoding="utf-8")
    assert '<script src="../../static/vendor/jquery-3.7.1/dist/jquery.min.js"></script>' in text
    assert "https://cdn.example.org/new-lib@1/lib.js" in text
    assert '<a href="https://greatexpectations.io">' in text
    assert result["unmapped_urls"] == ["https://cdn.example.org/new-lib@1/lib.js"]
    assert result["urls_replaced"] == 1


def test_rewrite_page_leaves_unrelated_markup_alone(tmp_path: Path) -> None:
    html = '<link rel="stylesheet" href="static/styles/own.css"><p>src="https://unpkg.com/x"</p>'
    new_html, replaced, unmapped, css = rewrite_page(html, tmp_path / "index.html", tmp_path)
    assert (new_html, replaced, unmapped, css) == (html, 0, set(), set())


def test_missing_site_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        localise_data_docs(tmp_path / "absent")


# --- names, samples and the front page ------------------------------------------------------

WINDOWS_REFUSED = set('<>:"/\\|?*')


def _windows_accepts(name: str) -> bool:
    from xueji_quality.datadocs_index import _RESERVED

    return (
        bool(name)
        and not (set(name) & WINDOWS_REFUSED)
        and all(ord(c) >= 32 for c in name)
        and not name.endswith((".", " "))
        and name.split(".", 1)[0].rstrip(" ").upper() not in _RESERVED
    )


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("part 1 of 3: rows 1-10 of 30", "part 1 of 3_ rows 1-10 of 30"),
        ('a<b>c:d"e/f\\g|h?i*j', "a_b_c_d_e_f_g_h_i_j"),
        ("tab\there\x00", "tab_here_"),
        ("rows 1-60 of 60. . ", "rows 1-60 of 60"),
        ("CON", "_CON"),
        ("nul.json", "_nul.json"),
        ("com1 .txt", "_com1 .txt"),
        ("CONSOLE", "CONSOLE"),
        ("...", "_"),
        ("学籍校验 第1部分", "学籍校验 第1部分"),
    ],
)
def test_windows_safe_name(name: str, safe: str) -> None:
    from xueji_quality.datadocs_index import windows_safe_name

    assert windows_safe_name(name) == safe
    assert _windows_accepts(safe)
    assert windows_safe_name(safe) == safe


def test_run_names_of_chunks_and_ranges_are_windows_safe() -> None:
    from types import SimpleNamespace

    from xueji_quality.validate_run import range_name
    from xueji_quality.validate_workers import chunk_name

    chunks = [
        [
            SimpleNamespace(rows=600, county_code="440103"),
            SimpleNamespace(rows=400, county_code="440111"),
        ],
        [SimpleNamespace(rows=500, county_code="440112")],
    ]
    names = [chunk_name(0, chunks, 0, 1500), chunk_name(1, chunks, 1000, 1500)]
    assert names == [
        "part 1 of 2, rows 1-1000 of 1500 (counties 440103-440111)",
        "part 2 of 2, rows 1001-1500 of 1500 (counties 440112)",
    ]
    assert all(_windows_accepts(n) for n in [*names, range_name(0, 30, 60)])


def test_masked_values_show_no_whole_number_or_name() -> None:
    from xueji_quality.datadocs_samples import masked

    ids = pd.Series(["44010320120101001X", "4.40106E+17", "", None], dtype="string")
    assert masked(ids, "id_number").tolist() == ["440103********001X", "*.*****E+**", "", pd.NA]
    student = pd.Series(["G44010320120101001X"], dtype="string")
    assert masked(student, "student_no").tolist() == ["G440103********001X"]
    names = pd.Series(["张 三", "艾力.买买提", "王五A", "ئەخمەت", None], dtype="string")
    assert masked(names, "guardian_name").tolist() == ["* *", "**.***", "**A", "******", pd.NA]
    assert masked(pd.Series(["13812345678", "12"]), "phone").tolist() == ["138********", "12"]
    assert masked(pd.Series(["2015-02-30"]), "birth_date").tolist() == ["2015-02-30"]


def test_documented_results_render_in_gx_with_record_keys() -> None:
    from great_expectations.render.util import build_count_and_index_table

    from xueji_quality.datadocs_samples import documented_results

    columns = pd.DataFrame(
        {
            "record_id": [f"K{i}" for i in range(30)],
            "id_type": ["1"] * 30,
            "id_number": ["44010320120101001X"] * 29 + [None],
        }
    )
    gx_result = {
        "element_count": 30,
        "unexpected_count": 25,
        "unexpected_percent": 25 / 30 * 100,
        "unexpected_list": [{"id_number": "44010320120101001X"}] * 25,
        "unexpected_index_list": list(range(5, 30)),
        "unexpected_index_query": "df.filter(items=[5, ...], axis=0)",
    }
    shown, passed = documented_results(
        [
            (gx_result, np.arange(5, 30), ["id_type", "id_number"]),
            ({"element_count": 30, "unexpected_count": 0, "unexpected_list": []}, [], ["x"]),
        ],
        columns,
    )
    assert passed == {"element_count": 30, "unexpected_count": 0}
    assert "unexpected_list" not in shown and "unexpected_index_query" not in shown
    assert (shown["element_count"], shown["unexpected_count"]) == (30, 25)
    assert len(shown["unexpected_index_list"]) == 20
    assert shown["unexpected_index_list"][0] == {
        "取值": "身份证件类型=1；身份证件号=440103********001X",
        "记录号": "K5",
    }
    assert "44010320120101001X" not in json.dumps(shown, ensure_ascii=False)
    header, rows = build_count_and_index_table(
        partial_unexpected_counts=shown["partial_unexpected_counts"],
        unexpected_index_list=shown["unexpected_index_list"],
        unexpected_count=shown["unexpected_count"],
        unexpected_index_column_names=shown["unexpected_index_column_names"],
    )
    # Fewer than all failing rows are shown: GX calls them a sample.
    assert header == ["Sampled Unexpected Values", "Count", "记录号"]
    assert rows[0][:2] == ["身份证件类型=1；身份证件号=440103********001X", 20]
    assert rows[0][2].startswith("K5, K6")


def _totals(stage: str, records: int, rule: str, unexpected: int) -> dict:
    return {
        "stage": stage,
        "records": records,
        "expectations": 1,
        "failed_expectations": 1,
        "unexpected": unexpected,
        "parts": [
            {
                "name": "rows 1-10 of 10",
                "records": records,
                "suites": [
                    {
                        "suite": f"roster_{stage}",
                        "page": "validations/x/rows 1-10 of 10/t/b.html",
                        "expectations": 1,
                        "failed": 1,
                        "unexpected": unexpected,
                    }
                ],
            }
        ],
        "rules": [
            {
                "rule": rule,
                "name": rule,
                "severity": "E",
                "field": "id_number",
                "messages": ["<说明>"],
                "unexpected": unexpected,
            }
        ],
    }


def test_front_page_joins_the_sites_of_later_stages(tmp_path: Path) -> None:
    from xueji_quality.datadocs_index import write_index, write_totals

    police = tmp_path / "police"
    police.mkdir()
    write_totals(tmp_path, _totals("roster", 1200, "ID_CHECKSUM", 7))
    write_totals(police, _totals("police", 40, "POLICE_ID_NOT_FOUND", 3))
    page = write_index(tmp_path).read_text(encoding="utf-8")
    assert "学籍校验</td><td class=n>1,200</td>" in page
    assert "公安比对</td><td class=n>40</td>" in page
    assert 'href="police/validations/x/rows 1-10 of 10/t/b.html"' in page
    assert 'href="validations/x/rows 1-10 of 10/t/b.html"' in page
    assert "&lt;说明&gt;" in page and "<说明>" not in page
    alone = write_index(police).read_text(encoding="utf-8")
    assert "公安比对" in alone and "学籍校验" not in alone


def test_masks_and_severity_words_are_the_county_lists_ones() -> None:
    # Validation does not load the reports package; the two must not drift apart.
    from xueji_quality import id_masks
    from xueji_quality.reports import county_rows, county_sheets
    from xueji_quality.validate_suites import SEVERITY_LABELS

    numbers = pd.Series(
        ["44010320120101001X", "G44010320120101001X", "4.40106E+17", "4401", "", None],
        dtype="string",
    )
    for ours, theirs in [
        (id_masks.mask_id_numbers, county_rows.mask_id_numbers),
        (id_masks.mask_student_numbers, county_rows.mask_student_numbers),
    ]:
        pd.testing.assert_series_equal(ours(numbers), theirs(numbers))
    assert SEVERITY_LABELS == county_sheets.SEVERITY_LABELS
