"""The nightly inbox: which exports to check tonight, and whether they were checked already.

Provincial systems drop an export (sometimes split into several files written together) into an
inbox folder. Tonight's batch is the newest file and every file written within ``BATCH_WINDOW`` of
it. A batch whose files (by sha256) are exactly the inputs of the last published run was already
processed: the nightly run then says so and does nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from xueji_quality.files import sha256_file

EXPORT_SUFFIXES = (".csv", ".xlsx", ".parquet")
BATCH_WINDOW_S = 3600.0


def newest_exports(inbox: Path) -> list[Path]:
    """Tonight's batch: the newest export and those written within the window before it."""
    files = [
        p
        for p in inbox.iterdir()
        if p.is_file() and p.suffix.lower() in EXPORT_SUFFIXES and not p.name.startswith(".")
    ]
    if not files:
        return []
    newest = max(p.stat().st_mtime for p in files)
    return sorted(p for p in files if newest - p.stat().st_mtime <= BATCH_WINDOW_S)


def processed_by(paths: list[Path], out_root: Path) -> str | None:
    """Run id of the last published run when it checked exactly these files, else None."""
    manifest = out_root / "latest" / "manifest.json"
    if not manifest.exists():
        return None
    try:
        published = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    done = sorted(entry.get("sha256", "") for entry in published.get("inputs", []))
    tonight = sorted(sha256_file(p) for p in paths)
    return published.get("run_id") if done == tonight else None
