"""``--progress``: one progress bar per stage of the provincial run on a terminal, one line per
finished stage elsewhere (a log file, a pipe).

The flow logs each stage's start and end through its run logger with figures attached to the
log record: ``xueji_stage_start`` (and ``xueji_stage_total`` where the stage has countable steps:
the counties of the report stage), ``xueji_stage_step`` for each step done, and ``xueji_stage``
with ``xueji_rows``, ``xueji_elapsed_s`` and ``xueji_total_s`` for a finished stage. Handlers on
Prefect's flow- and task-run loggers turn exactly those records into bars (rich, which Prefect
already uses for its console) or plain lines, whatever Prefect's own console format is. While the
bars show, Prefect's own informational console lines are held back (warnings still show), so the
terminal shows the bars instead of a stream of log lines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from prefect.logging.configuration import ensure_logging_setup
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from pipelines.prefect_setup import _prefect_console

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
FLOW_RUN_LOGGER = RUN_LOGGERS[0]
PROGRESS_FORMAT = (
    "[进度] %(xueji_stage_label)s（%(xueji_stage)s）完成：%(xueji_rows)d 行，"
    "用时 %(xueji_elapsed_s).1f 秒，累计 %(xueji_total_s).1f 秒"
)


def _is_stage_record(record: logging.LogRecord) -> bool:
    return hasattr(record, "xueji_stage")


def _add(handler: logging.Handler, loggers: tuple[str, ...]) -> logging.Handler:
    # Prefect's logging setup replaces the handlers of its loggers; one added before it would be
    # dropped silently.
    ensure_logging_setup()
    for name in loggers:
        logging.getLogger(name).addHandler(handler)
    return handler


def stage_line_handler(stream: TextIO) -> logging.Handler:
    """A handler writing one progress line to ``stream`` per finished stage."""
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.INFO)
    handler.addFilter(_is_stage_record)
    handler.setFormatter(logging.Formatter(PROGRESS_FORMAT))
    return handler


def show_stage_progress(stream: TextIO) -> logging.Handler:
    """Print stage lines to ``stream`` from now on; returns the handler (to remove it later)."""
    return _add(stage_line_handler(stream), (FLOW_RUN_LOGGER,))


def hide_stage_progress(handler: logging.Handler) -> None:
    for name in RUN_LOGGERS:
        logging.getLogger(name).removeHandler(handler)


def stage_bars(console: Console) -> Progress:
    """The bars' layout: state, stage, bar, steps done, time, what the stage did."""
    return Progress(
        SpinnerColumn(finished_text="[green]✓"),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        console=console,
        # Prefect's console lines are held back while the bars show; the flow prints nothing.
        redirect_stdout=False,
        redirect_stderr=False,
    )


class StageBars(logging.Handler):
    """A bar per stage, added when the stage starts, filled when it ends."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(logging.INFO)
        self.progress = progress
        self.bars: dict[str, TaskID] = {}

    def _bar(self, stage: str, label: str, total: int | None = None) -> TaskID:
        if stage not in self.bars:
            self.bars[stage] = self.progress.add_task(label, total=total, note="")
        return self.bars[stage]

    def emit(self, record: logging.LogRecord) -> None:
        label = getattr(record, "xueji_stage_label", "")
        if (stage := getattr(record, "xueji_stage_start", None)) is not None:
            self._bar(stage, label, getattr(record, "xueji_stage_total", None))
        elif (stage := getattr(record, "xueji_stage_step", None)) is not None:
            if stage in self.bars:
                self.progress.advance(self.bars[stage])
        elif (stage := getattr(record, "xueji_stage", None)) is not None:
            bar = self._bar(stage, label)
            total = next(t.total for t in self.progress.tasks if t.id == bar) or 1
            self.progress.update(
                bar,
                total=total,
                completed=total,
                note=f"{record.xueji_rows} 行，用时 {record.xueji_elapsed_s:.1f} 秒",
            )


def show_stage_bars(progress: Progress) -> logging.Handler:
    """Drive ``progress`` from the stage records from now on; returns the handler."""
    return _add(StageBars(progress), RUN_LOGGERS)


@contextmanager
def stage_progress(stream: TextIO | None) -> Iterator[None]:
    """Bars on ``stream`` when it is a terminal, else stage lines, inside the block; nothing when
    ``stream`` is None."""
    if stream is None:
        yield
        return
    if not stream.isatty():
        handler = show_stage_progress(stream)
        try:
            yield
        finally:
            hide_stage_progress(handler)
        return
    with stage_bars(Console(file=stream)) as progress:
        handler = show_stage_bars(progress)
        _prefect_console["bars"] = True
        try:
            yield
        finally:
            _prefect_console["bars"] = False
            hide_stage_progress(handler)
