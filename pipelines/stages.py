"""The stages of the provincial run as everything that watches it sees them: the run's log, the
``xueji-progress`` artifact, ``<out>/status.json`` (the stage under way) and, through the figures
attached to the log records, the terminal's progress bars or lines (``pipelines.progress``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from xueji_quality import run_status

STAGES = ("ingest", "validate", "link", "answers", "report", "publish")
STAGE_LABELS = run_status.STAGE_LABELS


class StageLog:
    """Start and end of each stage; ``timings`` (seconds per finished stage) and ``current``
    (the stage under way, or the last one) for the manifest and the status file."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter, out_root: Path) -> None:
        self.logger = logger
        self.out_root = out_root
        self.timings: dict[str, float] = {}
        self.current = STAGES[0]
        self.flow_started = time.perf_counter()
        self.progress = create_progress_artifact(
            0.0, key="xueji-progress", description="省级查重查错进度"
        )

    def start(self, name: str, total: int | None = None) -> float:
        """Stage ``name`` starts (``total``: its countable steps, if any); returns the time."""
        self.current = name
        run_status.at_stage(self.out_root, name)
        self.logger.info(
            "阶段 %s 开始",
            name,
            extra={
                "xueji_stage_start": name,
                "xueji_stage_label": STAGE_LABELS[name],
                "xueji_stage_total": total,
            },
        )
        return time.perf_counter()

    def done(self, name: str, started: float, rows: int) -> None:
        self.timings[name] = time.perf_counter() - started
        if name in STAGES:
            update_progress_artifact(self.progress, 100.0 * (STAGES.index(name) + 1) / len(STAGES))
        total = time.perf_counter() - self.flow_started
        self.logger.info(
            "阶段 %s 完成：%d 行，用时 %.1f 秒（累计 %.1f 秒）",
            name,
            rows,
            self.timings[name],
            total,
            extra={
                "xueji_stage": name,
                "xueji_stage_label": STAGE_LABELS[name],
                "xueji_rows": rows,
                "xueji_elapsed_s": self.timings[name],
                "xueji_total_s": total,
            },
        )
