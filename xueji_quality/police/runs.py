"""The police cross-check inside a provincial run, and the request file of a finished run.

A run hands the check its staged roster (only the columns the check reads) and gets back the
police problems, which then are items like any other: the same problem table, ledger identity,
county workbooks and answers. What the manifest keeps of the police files is their name, SHA-256
and row count (``manifest_facts``), never a row.

A finished run keeps no copy of the roster (its staged files are removed when it ends); its
manifest names every export it read with the export's SHA-256. ``request_from_run`` reads those
exports again, refusing one that changed since, so the request sent to the police holds exactly
the students that run checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from xueji_quality.errors import InputError
from xueji_quality.files import sha256_file
from xueji_quality.police.check import (
    ROSTER_COLUMNS,
    PoliceOutcome,
    combined,
    file_facts,
    findings,
    outcome,
)
from xueji_quality.police.exchange import read_results, request_table
from xueji_quality.police.registry_index import load_registry
from xueji_quality.police.tables import read_ahead

# Records checked at a time: the registry is held whole (compact), the roster a chunk at a time.
CHUNK_ROWS = 1_000_000


def check_staged(
    store,
    *,
    registry: Path | None = None,
    results: Path | None = None,
    suites_dir: Path | None = None,
    data_docs_dir: Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> PoliceOutcome:
    """The police cross-check of a staged roster (``staging.StagedStore``) against a registry
    extract or a result file, read once; the roster is read a chunk of about ``chunk_rows``
    records at a time (only the seven columns the check reads), so memory is bounded by the
    registry's compact columns (``registry_index``) and one chunk, not by the province. The
    records with something to report go through the police suite once, with its Data Docs in
    ``data_docs_dir``."""
    if (registry is None) == (results is None):
        raise ValueError("check_staged 需要公安人口信息库摘录或比对结果文件之一")
    if registry is not None:
        held = load_registry(registry)
        files = [file_facts(registry, held.rows)]
        answer = {"registry": held}
    else:
        table = read_results(results)
        files = [file_facts(results, table.num_rows)]
        answer = {"results": table}
    # Each chunk is read on a thread while the one before is checked.
    chunks = (
        store.read(list(ROSTER_COLUMNS), parts=chunk) for chunk in store.chunks(chunk_rows) or [[]]
    )
    parts = [findings(roster, **answer) for roster in read_ahead(chunks)]
    return outcome(combined(parts, answer.get("registry")), files, suites_dir, data_docs_dir)


def manifest_facts(outcome: PoliceOutcome) -> dict:
    """What a run's manifest says of its police check: files (name, sha256, rows), how many
    records were sent, how many are pending (比对失败 or not answered) per county, and the
    items per rule."""
    pending = outcome.pending
    by_county = pending.groupby("county_code", dropna=False).size() if len(pending) else None
    return {
        "files": outcome.files,
        "records_sent": int(outcome.sent),
        "pending": int(len(pending)),
        "pending_by_county": {}
        if by_county is None
        else {str(k): int(v) for k, v in by_county.items()},
        "items_by_rule": {
            str(k): int(v) for k, v in outcome.problems["rule"].value_counts().sort_index().items()
        },
    }


def _run_manifest(run_dir: Path) -> dict:
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise InputError(str(run_dir), "不是一次运行的报告目录（缺少 manifest.json）")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(str(path), f"无法读取运行清单：{exc}") from None


def run_exports(run_dir: Path) -> tuple[list[Path], str]:
    """The exports a run read (as its manifest names them) and its province; an export that is
    gone or changed since (another SHA-256) is an input error."""
    manifest = _run_manifest(run_dir)
    paths = []
    for entry in manifest.get("inputs", []):
        path = Path(entry["path"])
        if not path.is_file():
            raise InputError(str(path), "该次运行读取的导出文件已不存在")
        if sha256_file(path) != entry["sha256"]:
            raise InputError(
                str(path), "该次运行之后导出文件已改变（SHA-256 不同），请重新运行后再生成"
            )
        paths.append(path)
    if not paths:
        raise InputError(str(run_dir), "运行清单中没有导出文件")
    return paths, str(manifest["province"])


def request_from_run(run_dir: Path) -> pd.DataFrame:
    """The police request of a finished run: one row per distinct (ID, name) of its valid
    resident IDs (请求编号, 公民身份号码, 姓名; see ``exchange.request_table``)."""
    from xueji_quality import ingest

    paths, province = run_exports(run_dir)
    staged = ingest.read_exports(paths, province)
    roster = staged.roster
    wanted = [c for c in ROSTER_COLUMNS if c in roster.columns]
    return request_table(roster[wanted])
