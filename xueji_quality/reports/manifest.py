"""manifest.json: what a run read, what it found and which files it wrote, with their SHA-256.

The flow assembles the content (run id, inputs with their hashes, row counts and the row
conservation check, totals per rule and class, per-county files, versions, timing); this module
adds ``files``, a map from every file's path under the run folder (POSIX, relative) to its SHA-256
and size, so a reader can verify a copied run. The manifest is written last, as UTF-8 with the
Chinese left readable, keys sorted and indented, through a temporary file and an atomic rename.

Each county's entry carries its figures as its list states them (items, error_items,
warning_items, items_by_class, records_with_problems, duplicate_groups: see
:mod:`xueji_quality.reports.county_totals`); :func:`manifest_totals` adds them up for the
province and :func:`totals_lines` words them, so that what the command line prints after a run
is what the summary and the county lists say.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path, PurePath

import numpy as np

from xueji_quality.reports.county_totals import (
    ERRORS,
    GROUPS,
    ITEM_WORD,
    ITEMS,
    PROBLEM_CLASSES,
    STUDENTS,
    WARNINGS,
)
from xueji_quality.reports.tables import FILE_MODE, sha256_file

MANIFEST_NAME = "manifest.json"


def _plain(value: object) -> object:
    """JSON form of values json does not know (dates, paths, numpy scalars and arrays)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"manifest 中的值无法写成 JSON: {type(value).__name__}")


def file_hashes(run_dir: Path) -> dict[str, dict]:
    """Every file under ``run_dir`` except the manifest: relative path -> sha256, bytes."""
    run_dir = Path(run_dir)
    hashes = {}
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(run_dir).as_posix()
        if relative == MANIFEST_NAME:
            continue
        hashes[relative] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return hashes


def write_manifest(run_dir: Path, manifest: dict) -> Path:
    """Write ``run_dir/manifest.json``: ``manifest`` plus ``files`` (replaced if present)."""
    run_dir = Path(run_dir)
    content = dict(manifest)
    content["files"] = file_hashes(run_dir)
    text = json.dumps(content, ensure_ascii=False, sort_keys=True, indent=2, default=_plain)
    path = run_dir / MANIFEST_NAME
    temporary = run_dir / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, FILE_MODE)
    os.replace(temporary, path)
    return path


def read_manifest(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))


def verify_files(run_dir: Path) -> list[str]:
    """Paths whose hash no longer matches the manifest, or that are missing or unlisted."""
    listed = read_manifest(run_dir).get("files", {})
    present = file_hashes(run_dir)
    bad = [p for p, entry in listed.items() if present.get(p, {}).get("sha256") != entry["sha256"]]
    bad += [p for p in present if p not in listed]
    return sorted(bad)


def manifest_totals(manifest: dict) -> dict:
    """The province's figures from a manifest: items, error_items, warning_items,
    items_by_class, records_with_problems (sums of the county entries), duplicate_groups (each
    group once, from ``totals``; None when the manifest has no totals) and counties."""
    counties = manifest.get("counties", [])

    def total(key: str) -> int:
        return sum(int(county.get(key, 0)) for county in counties)

    by_class = {
        name: sum(int(county.get("items_by_class", {}).get(name, 0)) for county in counties)
        for name in PROBLEM_CLASSES
    }
    groups = manifest.get("totals", {}).get("duplicate_groups_by_class")
    return {
        "items": total("items"),
        "error_items": total("error_items"),
        "warning_items": total("warning_items"),
        "items_by_class": by_class,
        "records_with_problems": total("records_with_problems"),
        "duplicate_groups": None if groups is None else sum(int(v) for v in groups.values()),
        "counties": len(counties),
    }


def totals_lines(manifest: dict) -> list[str]:
    """The run's totals as the command line prints them, named as in the summary and the lists.

    >>> totals_lines({"counties": [{"items": 3, "error_items": 2, "warning_items": 1,
    ...     "records_with_problems": 2, "items_by_class": {"身份证号错误": 2, "警告": 1}}],
    ...     "totals": {"duplicate_groups_by_class": {}}})[0]
    '问题条目合计 3 条：错误合计 2 条，警告 1 条；涉及学生数 2 人；重复组数 0（1 个区县）'
    """
    figures = manifest_totals(manifest)
    groups = (
        "" if figures["duplicate_groups"] is None else f"；{GROUPS} {figures['duplicate_groups']}"
    )
    return [
        f"{ITEM_WORD}{ITEMS} {figures['items']} 条：{ERRORS} {figures['error_items']} 条，"
        f"{WARNINGS} {figures['warning_items']} 条；{STUDENTS} {figures['records_with_problems']} 人"
        f"{groups}（{figures['counties']} 个区县）",
        "按类别：" + "，".join(f"{k} {v}" for k, v in figures["items_by_class"].items()),
    ]
