"""Make Great Expectations Data Docs sites work without internet access.

The HTML pages that GX builds load Bootstrap, jQuery, bootstrap-table, Font Awesome and the Vega
chart libraries from public CDNs (jsdelivr, cdnjs, unpkg, code.jquery.com, bootstrapcdn) and the
navbar logo from an S3 bucket. Provincial education intranets have no route to those hosts, so
the pages render unstyled, tables lose sorting and filtering, and charts stay empty.

``localise_data_docs`` copies the vendored copies of those files (``data_docs_vendor/``, unmodified
npm release files listed with package, version and sha256 in ``MANIFEST.json``) into the site's
``static/vendor/`` folder and points every page at them with paths relative to the page, so the site
keeps working when opened from disk or served from any sub-path. ``integrity``/``crossorigin``
attributes are dropped from the rewritten tags: a ``crossorigin`` request for a ``file://`` URL is
blocked by browsers, and the files would be checked against hashes meant for the CDN copies.

Asset links (``src``/``href`` of ``script``, ``link``, ``img`` and similar tags) to other hosts are
left alone and returned as ``unmapped_urls``, so a GX upgrade that adds a new CDN file is noticed.
Plain hyperlinks (``<a href>``) to greatexpectations.io documentation are not assets and are kept.
Running the function again on the same site changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

VENDOR_DIR = Path(__file__).resolve().parent / "data_docs_vendor"
MANIFEST_PATH = VENDOR_DIR / "MANIFEST.json"

ASSET_TAGS = ("script", "link", "img", "source", "iframe", "embed", "video", "audio", "track")
_TAG_RE = re.compile(
    r"<(?P<name>" + "|".join(ASSET_TAGS) + r")\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>",
    re.IGNORECASE,
)
_URL_ATTR_RE = re.compile(
    r"(?P<lead>\s(?:src|href)\s*=\s*)(?P<quote>[\"']?)(?P<url>(?:https?:)?//[^\"'\s>]+)(?P=quote)",
    re.IGNORECASE,
)
_SRI_ATTR_RE = re.compile(
    r"\s(?:integrity|crossorigin)(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?(?=[\s/>])",
    re.IGNORECASE,
)
_CSS_URL_RE = re.compile(
    r"url\(\s*[\"']?(?P<url>(?:https?:)?//[^\"')\s]+)[\"']?\s*\)", re.IGNORECASE
)


@cache
def load_manifest() -> dict[str, Any]:
    """The parsed ``data_docs_vendor/MANIFEST.json``."""
    return json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))


def url_map() -> dict[str, str]:
    """CDN URL -> vendored file path (relative to the vendor folder)."""
    return {asset["url"]: asset["path"] for asset in load_manifest()["assets"]}


def _strip_query(url: str) -> str:
    return url.split("#", 1)[0].split("?", 1)[0]


def _relative(target: Path, page: Path) -> str:
    return Path(os.path.relpath(target, page.parent)).as_posix()


def _local_target(url: str, site_dir: Path, urls: dict[str, str]) -> Path | None:
    """The file in ``site_dir`` that replaces ``url``, or None when there is none."""
    manifest = load_manifest()
    if url in urls:
        return site_dir / manifest["vendor_dir"] / urls[url]
    images = manifest.get("site_images")
    if images and url.startswith(images["url_prefix"]):
        name = _strip_query(url)[len(images["url_prefix"]) :]
        candidate = site_dir / images["site_path"] / name
        if name and "/" not in name and candidate.is_file():
            return candidate
    return None


def copy_vendor_assets(site_dir: Path) -> int:
    """Copy the vendored files (with their licences) into ``site_dir``; the number of files."""
    target = Path(site_dir) / load_manifest()["vendor_dir"]
    copied = 0
    for source in sorted(VENDOR_DIR.rglob("*")):
        if not source.is_file() or source == MANIFEST_PATH or "__pycache__" in source.parts:
            continue
        destination = target / source.relative_to(VENDOR_DIR)
        if destination.is_file() and destination.read_bytes() == source.read_bytes():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        copied += 1
    return copied


def rewrite_page(html: str, page: Path, site_dir: Path) -> tuple[str, int, set[str], set[str]]:
    """Page text with CDN asset links made local.

    Returns the new text, the number of URLs replaced, the remote asset URLs left (query strings
    dropped) and the remote ``url(...)`` references left in inline styles.
    """
    urls = url_map()
    replaced = 0
    unmapped: set[str] = set()

    def tag(match: re.Match[str]) -> str:
        nonlocal replaced
        text = match.group(0)
        changed = False

        def attr(found: re.Match[str]) -> str:
            nonlocal replaced, changed
            url = found.group("url")
            local = _local_target(url, site_dir, urls)
            if local is None:
                unmapped.add(_strip_query(url))
                return found.group(0)
            replaced += 1
            changed = True
            quote = found.group("quote") or '"'
            return f"{found.group('lead')}{quote}{_relative(local, page)}{quote}"

        text = _URL_ATTR_RE.sub(attr, text)
        if changed:
            text = _SRI_ATTR_RE.sub("", text)
        return text

    new_html = _TAG_RE.sub(tag, html)
    css_left = {_strip_query(m.group("url")) for m in _CSS_URL_RE.finditer(new_html)}
    return new_html, replaced, unmapped, css_left


def localise_data_docs(site_dir: Path) -> dict[str, Any]:
    """Point every HTML page of a GX Data Docs site at local copies of its CDN assets.

    Copies the vendored assets to ``site_dir/static/vendor/`` and rewrites the pages in place.
    Returns ``html_files`` (pages seen), ``files_rewritten``, ``urls_replaced``, ``assets_copied``,
    ``unmapped_urls`` (remote ``src``/``href`` asset URLs not in the manifest, sorted) and
    ``unmapped_css_urls`` (remote ``url(...)`` references in inline styles, sorted). Idempotent.
    """
    site_dir = Path(site_dir)
    if not site_dir.is_dir():
        raise FileNotFoundError(f"Data Docs site not found: {site_dir}")
    copied = copy_vendor_assets(site_dir)
    pages = sorted(site_dir.rglob("*.html"))
    rewritten = 0
    replaced = 0
    unmapped: set[str] = set()
    css_left: set[str] = set()
    for page in pages:
        html = page.read_bytes().decode("utf-8")
        new_html, count, left, css = rewrite_page(html, page, site_dir)
        unmapped |= left
        css_left |= css
        replaced += count
        if new_html != html:
            page.write_bytes(new_html.encode("utf-8"))
            rewritten += 1
    if unmapped:
        log.warning(
            "Data Docs in %s still load %d remote asset(s) not in %s: %s",
            site_dir,
            len(unmapped),
            MANIFEST_PATH.name,
            ", ".join(sorted(unmapped)),
        )
    return {
        "html_files": len(pages),
        "files_rewritten": rewritten,
        "urls_replaced": replaced,
        "assets_copied": copied,
        "unmapped_urls": sorted(unmapped),
        "unmapped_css_urls": sorted(css_left),
    }
