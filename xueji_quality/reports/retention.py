"""Old runs kept to a number: after a run is published, the oldest published runs beyond the
newest ``keep`` are removed.

Runs are ordered by when they were published (``finished_at`` in their manifest, else the
manifest file's time), not by run id: a re-run of an earlier date is new. Only folders named like
a run id and holding a manifest are runs; the run ``latest`` points at (the link and
``latest.txt``) and the run just published are never removed, whatever their age.

Removal is atomic per run: the folder is first renamed into ``<out>/.tmp-trash-<pid>`` (one
rename, on the same disk), so a reader sees the whole run or none of it, and only then deleted.
A process killed while deleting leaves the trash folder, which the next run removes with the
other staging folders of dead processes (``publish.clean_stale_staging``). The answer ledger
keeps every run's counts, so the province summary's trend still covers pruned runs.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path

from xueji_quality.reports.publish import LATEST, LATEST_TEXT, RUN_ID_PATTERN, STAGING_PREFIX

DEFAULT_KEEP_RUNS = 10
TRASH = "trash"


def _published_at(run_dir: Path) -> float:
    manifest = run_dir / "manifest.json"
    try:
        finished = json.loads(manifest.read_text(encoding="utf-8")).get("finished_at")
        return datetime.fromisoformat(finished).timestamp()
    except (OSError, ValueError, TypeError):
        return manifest.stat().st_mtime


def published_runs(out_root: Path) -> list[Path]:
    """The published run folders under ``out_root``, newest first."""
    out_root = Path(out_root)
    runs = [
        path
        for path in out_root.iterdir()
        if RUN_ID_PATTERN.fullmatch(path.name)
        and not path.is_symlink()
        and path.is_dir()
        and (path / "manifest.json").is_file()
    ]
    return sorted(runs, key=lambda p: (_published_at(p), p.name), reverse=True)


def _pointed_at(out_root: Path) -> set[str]:
    names = set()
    link = out_root / LATEST
    if link.is_symlink():
        names.add(Path(os.readlink(link)).name)
    try:
        names.add((out_root / LATEST_TEXT).read_text(encoding="utf-8").strip())
    except OSError:
        pass
    return names


def prune_runs(out_root: Path, keep: int, *, protect: str | None = None) -> list[str]:
    """Remove the published runs beyond the newest ``keep`` (``keep`` 0: none); return their ids.

    Never removes the run ``latest`` points at nor ``protect`` (the run just published).
    """
    if keep <= 0:
        return []
    out_root = Path(out_root)
    spared = _pointed_at(out_root) | {protect}
    victims = [p for p in published_runs(out_root)[keep:] if p.name not in spared]
    if not victims:
        return []
    trash = out_root / f"{STAGING_PREFIX}{TRASH}-{os.getpid()}"
    trash.mkdir(exist_ok=True)
    removed = []
    try:
        for run_dir in victims:
            os.rename(run_dir, trash / run_dir.name)
            removed.append(run_dir.name)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
    return removed
