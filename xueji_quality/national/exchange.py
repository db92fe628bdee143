"""The province's exchange file for the national duplicate check: tokens, never identities.

``export_national(run_dir, key, out_path)`` writes one row per staged record of a published run
(quarantined rows are not records and are left out):

- ``record_key`` (the run's record_id: the export's own 记录号 when it has one), ``province``,
  ``county_code`` (the school's county), ``school_code``, ``grade`` (level 1-12, 初一 = 7, as
  text; empty when unknown), ``enroll_date`` (入学年月 as normalised, YYYY-MM): what the
  national side needs to decide and to route, none of it identifying by itself;
- ``id_state`` and the token columns of ``tokens.record_tokens`` (HMAC-SHA256 under the national
  key, cut to 128 bits).

No ID number, name, guardian, birth date or 学籍号 leaves the province in plain text.

What the export reads: a published run keeps no roster (its staged copy is removed when the run
ends, ``staging``), but its ``manifest.json`` names every input file with its SHA-256. The export
reads those files again (``inputs`` may point at their new place), refuses any whose SHA-256
differs from the manifest's, and stages them with the run's own ingest; so the record keys and
quarantine are the run's, and the staged row count is checked against the manifest's. The
staged copy lives in ``<out>/.tmp-roster-<pid>`` beside the run (mode 0700, as the run's own)
and is removed when the export ends, whatever happens.

Beside the file, ``<name>.manifest.json`` records the province, the run, row counts (exported,
staged, quarantined), token counts per kind, ID states, the key fingerprint and the file's
SHA-256; never the key. The same facts (but the SHA-256) sit in the Parquet file's footer
(key-value metadata ``xueji.national``), where the national run reads them.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xueji_quality import staging
from xueji_quality.errors import InputError
from xueji_quality.files import sha256_file
from xueji_quality.national.tokens import (
    ID_INVALID,
    ID_NONE,
    ID_VALID,
    SCHEME,
    TOKEN_LIST,
    TOKEN_TYPE,
    NationalKey,
    record_tokens,
)

METADATA_KEY = b"xueji.national"
# A published run's manifest (reports.manifest.MANIFEST_NAME; not imported, so that Dask workers
# reading exchange files never import the report writers).
MANIFEST_NAME = "manifest.json"
ROW_GROUP_ROWS = 100_000
# Staged rows tokenised at a time (bounds the export's memory).
CHUNK_ROWS = 1_000_000
RECORD_COLUMNS = ("record_key", "province", "county_code", "school_code", "grade", "enroll_date")
TOKEN_KINDS = (
    "id_token",
    "near_tokens",
    "name_tokens",
    "reading_tokens",
    "family_tokens",
    "family_county_tokens",
)
# Roster columns the export reads.
READ_COLUMNS = (
    "record_id",
    "county_code",
    "school_code",
    "grade_level",
    "enroll_date",
    "id_number",
    "student_no",
    "name",
    "sex",
    "birth_date",
    "guardian_name",
    "household_region",
)
EXCHANGE_SCHEMA = pa.schema(
    [(c, pa.string()) for c in RECORD_COLUMNS]
    + [
        ("id_state", pa.int8()),
        ("id_token", TOKEN_TYPE),
        ("near_tokens", TOKEN_LIST),
        ("name_tokens", TOKEN_LIST),
        ("reading_tokens", TOKEN_LIST),
        ("family_tokens", TOKEN_LIST),
        ("family_county_tokens", TOKEN_LIST),
    ]
)


def _text_column(frame: pd.DataFrame, column: str) -> pa.Array:
    if column not in frame.columns:
        return pa.nulls(len(frame), pa.string())
    values = frame[column].astype("string").to_numpy(dtype=object, na_value=None)
    return pa.array(values, pa.string())


def _grade_text(frame: pd.DataFrame) -> pa.Array:
    if "grade_level" not in frame.columns:
        return pa.nulls(len(frame), pa.string())
    level = pd.to_numeric(frame["grade_level"], errors="coerce")
    level = level.where((level >= 1) & (level <= 12))
    text = level.astype("Int64").astype("string")
    return pa.array(text.to_numpy(dtype=object, na_value=None), pa.string())


def exchange_table(roster: pd.DataFrame, province: str, key: NationalKey) -> pa.Table:
    """The exchange rows (EXCHANGE_SCHEMA) of a canonical roster frame (staged columns:
    record_id, county_code, school_code, grade_level, enroll_date, id_number, student_no, name,
    sex, birth_date; absent ones are empty)."""
    roster = roster.reset_index(drop=True)
    tokens = record_tokens(roster, key)
    columns = {
        "record_key": _text_column(roster, "record_id"),
        "province": pa.array([str(province)] * len(roster), pa.string()),
        "county_code": _text_column(roster, "county_code"),
        "school_code": _text_column(roster, "school_code"),
        "grade": _grade_text(roster),
        "enroll_date": _text_column(roster, "enroll_date"),
    }
    return pa.Table.from_arrays([*columns.values(), *tokens.columns], schema=EXCHANGE_SCHEMA)


def token_counts(table: pa.Table) -> dict[str, int]:
    """Tokens per kind and records per ID state in exchange rows."""
    counts = {"id_token": int(table["id_token"].null_count)}
    counts["id_token"] = len(table) - counts["id_token"]
    for column in TOKEN_KINDS[1:]:
        counts[column] = int(pc.sum(pc.list_value_length(table[column])).as_py() or 0)
    states = np.bincount(table["id_state"].to_numpy(), minlength=3)
    counts["id_state_none"] = int(states[ID_NONE])
    counts["id_state_valid"] = int(states[ID_VALID])
    counts["id_state_invalid"] = int(states[ID_INVALID])
    return counts


def _add(total: dict[str, int], more: dict[str, int]) -> None:
    for name, value in more.items():
        total[name] = total.get(name, 0) + value


def _manifest_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name.removesuffix(".parquet") + ".manifest.json")


def write_exchange(
    tables, out_path: Path, province: str, key: NationalKey, extra: dict | None = None
) -> dict:
    """Write exchange tables (an iterable of EXCHANGE_SCHEMA tables) to ``out_path`` atomically,
    with the metadata and the manifest beside it; return the manifest."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    counts: dict[str, int] = {}
    rows = 0
    try:
        with pq.ParquetWriter(temporary, EXCHANGE_SCHEMA, compression="zstd") as writer:
            for table in tables:
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                _add(counts, token_counts(table))
                rows += len(table)
            info = {
                "province": str(province),
                "rows": rows,
                "key_fingerprint": key.fingerprint,
                "scheme": SCHEME,
                "token_rows": sum(counts.get(c, 0) for c in TOKEN_KINDS),
                "tokens": counts,
                **(extra or {}),
            }
            # Known only at the end: the file's footer carries it (the national run reads it).
            writer.add_key_value_metadata(
                {METADATA_KEY: json.dumps(info, ensure_ascii=False, sort_keys=True)}
            )
        os.replace(temporary, out_path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    manifest = {
        **info,
        "file": out_path.name,
        "sha256": sha256_file(out_path),
        "bytes": out_path.stat().st_size,
        "created_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "columns": list(EXCHANGE_SCHEMA.names),
    }
    text = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True)
    manifest_path = _manifest_path(out_path)
    staged = manifest_path.with_name(f".{manifest_path.name}.{os.getpid()}.tmp")
    staged.write_text(text + "\n", encoding="utf-8")
    os.replace(staged, manifest_path)
    return manifest


def exchange_info(path: Path) -> dict:
    """What an exchange file says of itself (province, rows, key fingerprint, scheme, token
    counts) plus its SHA-256; InputError when it is no exchange file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "交换文件不存在")
    try:
        metadata = pq.ParquetFile(path).metadata
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(str(path), f"不是 Parquet 文件（{error}）") from None
    raw = (metadata.metadata or {}).get(METADATA_KEY)
    if raw is None or not set(EXCHANGE_SCHEMA.names) <= set(
        metadata.schema.to_arrow_schema().names
    ):
        raise InputError(str(path), "不是全国查重交换文件（缺少 xueji.national 元数据或令牌列）")
    info = json.loads(raw.decode("utf-8"))
    if info.get("scheme") != SCHEME:
        raise InputError(str(path), f"令牌方案 {info.get('scheme')} 不是本程序的 {SCHEME}")
    return info | {"sha256": sha256_file(path)}


# --- from a published run -------------------------------------------------------------------------


def _run_inputs(run_dir: Path, manifest: dict, inputs: list[Path] | None) -> list[Path]:
    """The run's input files, each checked against the SHA-256 the run recorded."""
    recorded = manifest.get("inputs") or []
    if not recorded:
        raise InputError(str(run_dir / MANIFEST_NAME), "运行清单中没有输入文件")
    if inputs is not None and len(inputs) != len(recorded):
        raise InputError(
            str(run_dir / MANIFEST_NAME),
            f"该次运行读入 {len(recorded)} 个文件，给出的输入文件有 {len(inputs)} 个",
        )
    paths = []
    for i, entry in enumerate(recorded):
        path = Path(inputs[i]) if inputs is not None else Path(entry["path"])
        if not path.is_file():
            raise InputError(
                str(path), "该次运行的输入文件已不在原处：请用 inputs 指明它现在的位置"
            )
        if entry.get("sha256") and sha256_file(path) != entry["sha256"]:
            raise InputError(
                str(path),
                "文件内容与该次运行读入时不同（SHA-256 不符）：请对新导出重新运行后再导出",
            )
        paths.append(path)
    return paths


def export_national(
    run_dir: Path | str,
    key: NationalKey,
    out_path: Path | str,
    *,
    inputs: list[Path | str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> dict:
    """Write the exchange file of the published run ``run_dir`` to ``out_path`` (see the module
    docstring); return its manifest. ``inputs``: the run's input files where they are now, in
    the manifest's order (default: where the manifest says)."""
    run_dir = Path(run_dir).resolve()
    manifest_file = run_dir / MANIFEST_NAME
    if not manifest_file.is_file():
        raise InputError(str(run_dir), "不是一次已发布的运行：没有 manifest.json")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    province = str(manifest["province"])
    paths = _run_inputs(run_dir, manifest, [Path(p) for p in inputs] if inputs else None)
    from xueji_quality import run_folders

    folder = run_folders.roster_folder(run_dir.parent)
    store = staging.stage_exports(paths, province, folder)
    try:
        expected = (manifest.get("rows") or {}).get("rows_staged")
        if expected is not None and int(expected) != store.rows_staged:
            raise InputError(
                str(manifest_file),
                f"重新读入得到 {store.rows_staged} 条记录，该次运行入库 {expected} 条：导出中止",
            )
        tables = (
            exchange_table(store.read(READ_COLUMNS, parts=chunk), province, key)
            for chunk in store.chunks(chunk_rows)
        )
        return write_exchange(
            tables,
            Path(out_path),
            province,
            key,
            extra={
                "run_id": manifest.get("run_id"),
                "run_date": manifest.get("run_date"),
                "rows_staged": store.rows_staged,
                "rows_quarantined": len(store.quarantine),
                "inputs": [
                    {"name": f.get("name"), "sha256": f.get("sha256")}
                    for f in manifest.get("inputs", [])
                ],
            },
        )
    finally:
        store.remove()


def export_roster(
    paths: list[Path | str], province: str, key: NationalKey, out_path: Path | str
) -> dict:
    """The exchange file of roster exports staged afresh (no run): what ``export_national`` does
    after checking the run's inputs. The staged copy sits beside ``out_path`` and is removed."""
    out_path = Path(out_path)
    folder = out_path.parent / f".tmp-roster-{os.getpid()}"
    store = staging.stage_exports([Path(p) for p in paths], province, folder)
    try:
        tables = (
            exchange_table(store.read(READ_COLUMNS, parts=chunk), province, key)
            for chunk in store.chunks(CHUNK_ROWS)
        )
        return write_exchange(
            tables,
            out_path,
            province,
            key,
            extra={"rows_staged": store.rows_staged, "rows_quarantined": len(store.quarantine)},
        )
    finally:
        store.remove()
