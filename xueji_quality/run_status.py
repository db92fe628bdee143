"""``<out>/status.json``: the state of the last run on an output folder, for a monitoring system.

A nightly job is watched by a program, not by a person at a terminal. Whatever the run's
outcome, this one small file in the output root says it, replaced atomically (written to a
temporary file, flushed, renamed over the old one), so a reader never sees half of it:

``state``
    运行中 (running, or killed: then ``pid`` no longer exists), 成功 or 失败;
``run_id``, ``province``, ``started_at``, ``finished_at`` (ISO 8601 with offset), ``pid``;
``stage`` / ``stage_label``
    the stage under way (运行中) or that failed (失败): ``validate`` / 校验 …; null on success;
``reason``
    one line: what failed (the same line the command prints), or what the run did;
``published``
    the run folder this run published, or null (a failure, or nothing new to check);
``last_published``
    ``{"run_id", "path"}`` of the run ``latest`` points at afterwards (null before the first);
``exit_status``
    the command's exit status when run from the command line (null under ``serve``);
``flow_run``
    the Prefect flow run's name and id, when there is one.

A run writes the file only while it holds the output folder's run lock, so a run refused
because another holds the folder leaves the holder's status alone. The flow writes 运行中 when it
starts and 成功/失败 when it ends; the command line then adds its exit status and, for a
failure, its one-line message (or writes the whole record when the run failed before the flow
started, e.g. an input refused by the checks).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from xueji_quality.reports.publish import LATEST, LATEST_TEXT
from xueji_quality.reports.tables import FILE_MODE

STATUS_NAME = "status.json"
RUNNING = "运行中"
SUCCEEDED = "成功"
FAILED = "失败"

# The stages a run can fail in, by code, as the status file and the progress bars name them.
STAGE_LABELS = {
    "preflight": "检查输入",
    "start": "启动",
    "ingest": "读入",
    "validate": "校验",
    "police": "公安比对",
    "national": "全国查重回执",
    "link": "查重",
    "answers": "答复",
    "report": "报告",
    "publish": "发布",
}

# What this process last wrote per output root: lets the command line amend the record the flow
# wrote in the same invocation (and only that one).
_written: dict[str, dict] = {}


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _key(out_root: Path) -> str:
    return str(Path(out_root).resolve())


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line (messages quoted from a library may span several), at most
    ``limit`` characters."""
    line = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def last_published(out_root: Path) -> dict | None:
    """``{"run_id", "path"}`` of the run ``latest`` points at, or None."""
    out_root = Path(out_root)
    run_id = None
    try:
        run_id = (out_root / LATEST_TEXT).read_text(encoding="utf-8").strip() or None
    except OSError:
        if (out_root / LATEST).is_symlink():
            run_id = os.readlink(out_root / LATEST)
    if run_id is None or not (out_root / run_id).is_dir():
        return None
    return {"run_id": run_id, "path": str((out_root / run_id).resolve())}


def read_status(out_root: Path) -> dict | None:
    """The status file's content, or None when there is none (or it cannot be read)."""
    try:
        return json.loads((Path(out_root) / STATUS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_status(out_root: Path, status: dict) -> Path:
    """Replace ``<out_root>/status.json`` with ``status`` atomically (mode 0o640)."""
    out_root = Path(out_root)
    path = out_root / STATUS_NAME
    temporary = out_root / f".{STATUS_NAME}.{os.getpid()}.tmp"
    text = json.dumps(status, ensure_ascii=False, indent=2, sort_keys=True)
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, FILE_MODE)
    os.replace(temporary, path)
    _written[_key(out_root)] = dict(status)
    return path


def forget(out_root: Path) -> None:
    """Start of a command: what this process wrote before is not this command's record."""
    _written.pop(_key(out_root), None)


def written(out_root: Path) -> dict | None:
    """The record this process wrote for ``out_root`` since :func:`forget`, if any."""
    found = _written.get(_key(out_root))
    return None if found is None else dict(found)


def begin(
    out_root: Path, run_id: str | None, *, province: str, flow_run: dict | None = None
) -> dict:
    """Write 运行中 for a run starting now."""
    status = {
        "state": RUNNING,
        "run_id": run_id,
        "province": province,
        "started_at": _now(),
        "finished_at": None,
        "stage": None,
        "stage_label": None,
        "reason": "正在运行",
        "published": None,
        "last_published": last_published(out_root),
        "exit_status": None,
        "pid": os.getpid(),
        "flow_run": flow_run,
    }
    write_status(out_root, status)
    return status


def at_stage(out_root: Path, stage: str) -> None:
    """Record the stage a running run has reached (the record this process wrote, if any)."""
    status = written(out_root)
    if status is None or status.get("state") != RUNNING:
        return
    status.update(stage=stage, stage_label=STAGE_LABELS.get(stage, stage))
    write_status(out_root, status)


def _base(out_root: Path, run_id: str | None, province: str | None) -> dict:
    found = written(out_root)
    if found is not None:
        return found
    return {
        "run_id": run_id,
        "province": province,
        "started_at": _now(),
        "stage": None,
        "exit_status": None,
        "pid": os.getpid(),
        "flow_run": None,
    }


def succeed(
    out_root: Path,
    reason: str,
    *,
    published: Path | None = None,
    run_id: str | None = None,
    province: str | None = None,
) -> dict:
    """Write 成功: ``published`` is the run folder published, None when nothing new was."""
    status = _base(out_root, run_id, province)
    status.update(
        state=SUCCEEDED,
        finished_at=_now(),
        stage=None,
        stage_label=None,
        reason=one_line(reason),
        published=None if published is None else str(Path(published).resolve()),
        last_published=last_published(out_root),
    )
    if run_id is not None:
        status["run_id"] = run_id
    write_status(out_root, status)
    return status


def fail(
    out_root: Path,
    reason: str,
    *,
    stage: str | None = None,
    exit_status: int | None = None,
    run_id: str | None = None,
    province: str | None = None,
) -> dict:
    """Write 失败. ``stage`` defaults to the one the record written in this command names
    (the flow's), else ``preflight`` for bad input (exit status 2) or ``start``."""
    status = _base(out_root, run_id, province)
    stage = stage or status.get("stage")
    if stage is None:
        stage = "preflight" if exit_status == 2 else "start"
    status.update(
        state=FAILED,
        finished_at=_now(),
        stage=stage,
        stage_label=STAGE_LABELS.get(stage, stage),
        reason=one_line(reason),
        published=None,
        last_published=last_published(out_root),
    )
    if exit_status is not None:
        status["exit_status"] = exit_status
    write_status(out_root, status)
    return status


def settle(out_root: Path, exit_status: int) -> dict | None:
    """Add the command's exit status to the record the flow wrote in this command, if any."""
    status = written(out_root)
    if status is None:
        return None
    status["exit_status"] = exit_status
    write_status(out_root, status)
    return status
