"""manifest.json: what a run read, what it found and which files it wrote, with their SHA-256.

The flow assembles the content (run id, inputs with their hashes, row counts and the row
conservation check, totals per rule and class, per-county files, versions, timing); this module
adds ``files``, a map from every file's path under the run folder (POSIX, relative) to its SHA-256
and size, so a reader can verify a copied run. The manifest is written last, as UTF-8 with the
Chinese left readable, keys sorted and indented, through a temporary file and an atomic rename.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path, PurePath

import numpy as np

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
