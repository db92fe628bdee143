"""What a run's result depends on, so that a re-run of an unchanged input can say so.

A run's fingerprint (kept in its manifest as ``fingerprint``) is:

- ``inputs``: the SHA-256 of every export file read, sorted (names and folders do not count: the
  same export copied to tonight's inbox is the same input);
- ``options``: the province; the counties and schools filters; ``--mask-ids`` and
  ``--per-school``; the month of the run date (the age, grade and date checks count by it); the
  SHA-256 of the rule suites (``expectations/*.json`` or ``--suites``), of the linkage parameters
  (``config/linkage.json`` or ``--linkage-config``), of the police and national files given; and
  the program's version;
- ``answers``: a digest of the answer files imported into the output folder's ledger (a new
  import changes what the next run lists, so it is a change).

Two fingerprints equal means the run would publish the same lists again under a new run id:
the command line and the nightly run then say so and publish nothing (``--force`` runs anyway).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from datetime import date
from importlib import metadata
from pathlib import Path

from xueji_quality.files import sha256_file
from xueji_quality.reports.publish import LEDGER_FILE
from xueji_quality.run_status import last_published

# The linkage parameters a run uses by default: xueji_quality.linkage.DEFAULT_CONFIG, whose
# import (recordlinkage) would cost the command line two seconds before every run.
DEFAULT_LINKAGE_CONFIG = Path(__file__).resolve().parents[1] / "config" / "linkage.json"

OPTION_WORDS = {
    "province": "省份",
    "counties": "--counties",
    "schools": "--schools",
    "mask_ids": "--mask-ids",
    "per_school": "--per-school",
    "run_month": "运行月份",
    "rules": "规则套件",
    "linkage": "查重参数",
    "police_registry": "--police-registry",
    "police_results": "--police-results",
    "national_returns": "--national-returns",
    "version": "程序版本",
}


def _digest(parts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def _file_hash(path: str | Path | None) -> str | None:
    return None if path is None else sha256_file(Path(path))


def _rules_hash(suites_dir: str | Path | None) -> str:
    if suites_dir is None:
        from xueji_quality.validate_suites import DEFAULT_SUITES_DIR

        suites_dir = DEFAULT_SUITES_DIR
    files = sorted(Path(suites_dir).glob("*.json"))
    return _digest(f"{path.name} {sha256_file(path)}" for path in files)


def _version() -> str:
    try:
        return metadata.version("xueji-quality")
    except metadata.PackageNotFoundError:
        return "unknown"


def options_fingerprint(
    *,
    province: str,
    run_date: date,
    counties: list[str] | None = None,
    schools: list[str] | None = None,
    mask_ids: bool = False,
    per_school: bool = False,
    suites_dir: str | Path | None = None,
    linkage_config: str | Path | None = None,
    police_registry: str | Path | None = None,
    police_results: str | Path | None = None,
    national_returns: list[str] | list[Path] | None = None,
) -> dict:
    """The options part of a fingerprint (file options by content, not by name)."""
    return {
        "province": province,
        "counties": sorted(counties) if counties else None,
        "schools": sorted(schools) if schools else None,
        "mask_ids": bool(mask_ids),
        "per_school": bool(per_school),
        "run_month": f"{run_date:%Y-%m}",
        "rules": _rules_hash(suites_dir),
        "linkage": sha256_file(Path(linkage_config or DEFAULT_LINKAGE_CONFIG)),
        "police_registry": _file_hash(police_registry),
        "police_results": _file_hash(police_results),
        "national_returns": sorted(map(sha256_file, map(Path, national_returns)))
        if national_returns
        else None,
        "version": _version(),
    }


def answers_fingerprint(out_root: Path) -> str:
    """Digest of the answer files imported into ``<out_root>/ledger.sqlite`` ("" when none)."""
    ledger = Path(out_root) / LEDGER_FILE
    if not ledger.is_file():
        return ""
    try:
        connection = sqlite3.connect(f"{ledger.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT sha256 FROM imports ORDER BY id").fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        return ""
    return _digest(row[0] for row in rows) if rows else ""


def fingerprint(input_hashes: Iterable[str], options: dict, answers: str) -> dict:
    return {"inputs": sorted(input_hashes), "options": dict(options), "answers": answers}


def input_hashes(paths: Iterable[Path]) -> list[str]:
    return [sha256_file(Path(p)) for p in paths]


def differences(previous: dict | None, current: dict) -> list[str]:
    """What differs between two fingerprints, in words (empty when they are equal)."""
    if not previous:
        return ["上次运行没有记录其输入与选项"]
    found = []
    if sorted(previous.get("inputs", [])) != current["inputs"]:
        found.append("导出文件")
    before, now = previous.get("options", {}), current["options"]
    found += [OPTION_WORDS.get(k, k) for k in now if before.get(k) != now[k]]
    if previous.get("answers", "") != current["answers"]:
        found.append("新导入的答复")
    return found


def latest_manifest(out_root: Path) -> dict | None:
    """The manifest of the run ``latest`` points at, or None (no run yet, or unreadable)."""
    published = last_published(out_root)
    if published is None:
        return None
    try:
        return json.loads((Path(published["path"]) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def unchanged_since(manifest: dict | None, current: dict) -> str | None:
    """The run id of ``manifest`` when its fingerprint equals ``current``, else None."""
    if manifest is None or differences(manifest.get("fingerprint"), current):
        return None
    return manifest.get("run_id")
