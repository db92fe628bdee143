"""What a published run keeps for the next run of the same input: its staged roster, validation
problems and linkage result, so that a re-run (one county after a correction, ``--force`` after
answers were imported) does not read, validate and link an unchanged province again.

Layout, for the run's account only (folders 0700, files 0600: every child's identity):
``<out>/.state/current.json`` is the key of the kept state, the run that computed it and its
folder, ``<out>/.state/<run_id>/``: ``roster/`` (the staged store's files, moved there, never
copied), ``store.json`` and ``quarantine.parquet`` (what the store knows without reading its
files), ``problems.parquet`` and ``data_docs/`` (validation's, roster suites only),
``duplicates.parquet``, ``pairs.parquet`` and ``linkage.json`` (linkage's result and figures).

The key says when the state may be reused: every export file's name and SHA-256 in reading order
(names count: the lists name the file a record came from), the province, the run date (age and
grade checks count by it), the rule suites and linkage parameters by content and the program's
version (pieces of ``xueji_quality.run_fingerprint``). Counties, schools, masking, answers and the
police and national files are not in it: they act after linkage, and those stages run on a reused
store as on a fresh one. Inputs are hashed before ingest only when a state exists and the rest of
the key matches, and once per process (remembered by size, mtime and inode, so the command line's
unchanged-input check pays for it).

A run builds its state in ``<out>/.tmp-state-<pid>`` (removed like any staging folder if the run
dies) and, once its reports are published and only then, moves the staged roster into it, renames
it into ``.state/`` and replaces ``current.json`` (written beside, renamed): a failed run leaves
the previous state current. Older state folders are removed afterwards (one a crash left, by the
next run that keeps its state). Before reuse every staged file must be there with the rows it had
(Parquet footers; the tables' footers readable), so row conservation is checked on the counts the
state was saved with; a state that fails this is not used, and the run checks everything.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xueji_quality import run_fingerprint
from xueji_quality.files import cached_sha256
from xueji_quality.ingest.sources import source_name
from xueji_quality.reports.publish import STAGING_PREFIX, clean_stale_staging
from xueji_quality.staging import Part, StagedStore

STATE_DIR = ".state"
CURRENT = "current.json"
FORMAT = 1
DIR_MODE = 0o700
FILE_MODE = 0o600
KEY_WORDS = {"format": "状态格式", "inputs": "导出文件", "province": "省份", "run_date": "运行日期"}
KEY_WORDS |= {"rules": "规则套件", "linkage": "查重参数", "version": "程序版本"}


@dataclass
class LinkTables:
    """A kept linkage result: what the run uses of ``linkage.LinkResult`` (whose import costs
    seconds a reused run does not need to pay)."""

    pairs: pd.DataFrame
    duplicates: pd.DataFrame
    stats: dict = field(default_factory=dict)


@dataclass
class KeptState:
    """A state that matched this run's key: where it is, which run computed it, its store."""

    folder: Path
    run_id: str
    store: StagedStore

    def validation(self, data_docs: Path) -> pd.DataFrame:
        """Validation's problems; its Data Docs are copied into ``data_docs``."""
        if (self.folder / "data_docs").is_dir():
            shutil.copytree(self.folder / "data_docs", data_docs, dirs_exist_ok=True)
        return _read(self.folder / "problems.parquet")

    def link_result(self) -> LinkTables:
        stats = json.loads((self.folder / "linkage.json").read_text(encoding="utf-8"))
        return LinkTables(
            _read(self.folder / "pairs.parquet"), _read(self.folder / "duplicates.parquet"), stats
        )


def input_hashes(paths: list[Path]) -> list[str]:
    return [cached_sha256(Path(p)) for p in paths]


def state_key(
    inputs: list[tuple[str, str]],
    *,
    province: str,
    run_date: date,
    suites_dir: str | Path | None = None,
    linkage_config: str | Path | None = None,
) -> dict:
    """The key of a state computed from ``inputs`` ((name, sha256) in reading order)."""
    options = run_fingerprint.options_fingerprint(
        province=province, run_date=run_date, suites_dir=suites_dir, linkage_config=linkage_config
    )
    return {
        "format": FORMAT,
        "inputs": [{"name": name, "sha256": sha} for name, sha in inputs],
        "province": province,
        "run_date": run_date.isoformat(),
        "rules": options["rules"],
        "linkage": options["linkage"],
        "version": options["version"],
    }


def _current(out_root: Path) -> dict | None:
    try:
        return json.loads((Path(out_root) / STATE_DIR / CURRENT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def reusable(
    out_root: Path,
    paths: list[Path],
    province: str,
    run_date: date,
    suites_dir: str | Path | None = None,
    linkage_config: str | Path | None = None,
) -> tuple[KeptState | None, str]:
    """The kept state of ``out_root`` if it was computed from these exports with these options
    (else None), and a line for the run's log saying which and why."""
    kept, why_not = _matching(out_root, paths, province, run_date, suites_dir, linkage_config)
    if kept is None:
        return None, f"不复用上次运行的状态（{why_not}）：完整读入、校验与查重"
    return kept, (
        f"复用上次运行 {kept.run_id} 的读入、校验与查重结果：导出文件（SHA-256）、省份、运行日期、"
        "规则与查重参数均相同（--no-reuse 可完整重查）"
    )


def _matching(
    out_root: Path,
    paths: list[Path],
    province: str,
    run_date: date,
    suites_dir: str | Path | None,
    linkage_config: str | Path | None,
) -> tuple[KeptState | None, str]:
    current = _current(out_root)
    if current is None:
        return None, "没有上次运行保存的状态"
    options = {"suites_dir": suites_dir, "linkage_config": linkage_config}
    used: set[str] = set()
    names = [source_name(Path(p), used) for p in paths]  # as ingest names them
    kept_key = current.get("key", {})
    key = state_key([], province=province, run_date=run_date, **options)
    differ = [KEY_WORDS[k] for k in key if k != "inputs" and key[k] != kept_key.get(k)]
    if differ or [i["name"] for i in kept_key.get("inputs", [])] != names:
        return None, "与上次运行不同：" + "、".join(differ or [KEY_WORDS["inputs"]])
    key["inputs"] = [
        {"name": n, "sha256": s} for n, s in zip(names, input_hashes(paths), strict=True)
    ]
    if key != kept_key:
        return None, f"与上次运行不同：{KEY_WORDS['inputs']}（SHA-256）"
    folder = Path(out_root) / STATE_DIR / current["folder"]
    try:
        store = open_store(folder, paths)
    except (OSError, ValueError, KeyError) as damaged:
        return None, f"上次运行保存的状态不完整（{damaged}）"
    return KeptState(folder, current["run_id"], store), ""


def open_store(folder: Path, paths: list[Path]) -> StagedStore:
    """The store kept in ``folder``; raises ValueError when a staged file lacks rows it had.
    ``paths`` are this run's exports (same names and content): the manifest names them."""
    facts = json.loads((folder / "store.json").read_text(encoding="utf-8"))
    roster = folder / "roster"
    parts = [Part(str(roster / rel), county, rows) for rel, county, rows in facts["parts"]]
    for part in parts:
        if pq.read_metadata(part.path).num_rows != part.rows:
            raise ValueError(f"{Path(part.path).relative_to(folder)} 行数与保存时不同")
    for name in ("problems", "duplicates", "pairs"):
        pq.read_metadata(folder / f"{name}.parquet")  # a file cut short has no footer
    quarantine = _read(folder / "quarantine.parquet")
    files = [dict(entry, path=str(path)) for entry, path in zip(facts["files"], paths, strict=True)]
    if len(quarantine) != sum(f["rows_quarantined"] for f in files):
        raise ValueError("quarantine.parquet 行数与保存时不同")
    return StagedStore(
        folder=str(roster),
        parts=parts,
        columns=facts["columns"],
        quarantine=quarantine,
        normalized_values=facts["normalized_values"],
        files=files,
        rows_read=facts["rows_read"],
        renamed_record_ids=facts["renamed_record_ids"],
        record_ids_unique=facts["record_ids_unique"],
        notes=facts["notes"],
    )


def pending_folder(out_root: Path) -> Path:
    """Where this run builds its state (``<out>/.tmp-state-<pid>``, created afresh)."""
    clean_stale_staging(out_root)
    folder = Path(out_root) / f"{STAGING_PREFIX}state-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=DIR_MODE)
    os.chmod(folder, DIR_MODE)
    return folder


def save_validation(pending: Path, problems: pd.DataFrame, data_docs: Path) -> None:
    """Validation's problems and Data Docs (before any police or national pages join them)."""
    _write(problems, pending / "problems.parquet")
    if data_docs.is_dir():
        shutil.copytree(data_docs, pending / "data_docs")


def save_linkage(pending: Path, result) -> None:
    """A linkage result (``linkage.LinkResult`` or ``LinkTables``)."""
    _write(result.duplicates, pending / "duplicates.parquet")
    _write(result.pairs, pending / "pairs.parquet")
    text = json.dumps(result.stats, ensure_ascii=False, default=_plain)
    (pending / "linkage.json").write_text(text, encoding="utf-8")


def keep(
    pending: Path,
    out_root: Path,
    run_id: str,
    store: StagedStore,
    province: str,
    run_date: date,
    suites_dir: str | Path | None = None,
    linkage_config: str | Path | None = None,
) -> Path:
    """Make ``pending`` (with ``store`` moved into it) the current state; returns its folder.
    Called once the run is published, and only then: ``store``'s files are moved. On an error
    ``pending`` is removed and the previous state stays current."""
    try:
        key = state_key(
            [(f["name"], f["sha256"]) for f in store.files],  # hashed by ingest as it read
            province=province,
            run_date=run_date,
            suites_dir=suites_dir,
            linkage_config=linkage_config,
        )
        return _keep(pending, out_root, run_id, store, key)
    except BaseException:
        shutil.rmtree(pending, ignore_errors=True)
        raise


def _keep(pending: Path, out_root: Path, run_id: str, store: StagedStore, key: dict) -> Path:
    roster = Path(store.folder)
    os.rename(roster, pending / "roster")
    facts = {
        "parts": [[os.path.relpath(p.path, roster), p.county_code, p.rows] for p in store.parts],
        "columns": store.columns,
        "normalized_values": store.normalized_values,
        "files": store.files,
        "rows_read": store.rows_read,
        "renamed_record_ids": store.renamed_record_ids,
        "record_ids_unique": store.record_ids_unique,
        "notes": store.notes,
    }
    text = json.dumps(facts, ensure_ascii=False, default=_plain)
    (pending / "store.json").write_text(text, encoding="utf-8")
    _write(store.quarantine, pending / "quarantine.parquet")
    _seal(pending)
    states = Path(out_root) / STATE_DIR
    states.mkdir(mode=DIR_MODE, exist_ok=True)
    os.chmod(states, DIR_MODE)
    target = states / run_id
    shutil.rmtree(target, ignore_errors=True)
    os.rename(pending, target)
    current = {"key": key, "run_id": run_id, "folder": run_id}
    temporary = states / f".{CURRENT}.{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(current, ensure_ascii=False, indent=1))
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, FILE_MODE)
    os.replace(temporary, states / CURRENT)
    for old in states.iterdir():
        if old.is_dir() and old.name != run_id:
            shutil.rmtree(old, ignore_errors=True)
    return target


def _seal(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        os.chmod(root, DIR_MODE)
        for name in files:
            os.chmod(os.path.join(root, name), FILE_MODE)


def _write(frame: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def _read(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def _plain(value: object) -> object:
    """JSON form of numpy scalars and other values json does not know."""
    return value.item() if hasattr(value, "item") else str(value)
