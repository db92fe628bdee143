"""Data Docs sites point at vendored copies of their CDN assets and work offline."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

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
