"""A terminal progress line per finished stage of the provincial run.

The flow logs each finished stage through its run logger with the figures attached to the log
record (``xueji_stage``, ``xueji_rows``, ``xueji_elapsed_s``, ``xueji_total_s``). A handler on
Prefect's flow-run logger turns exactly those records into one plain line each, whatever Prefect's
own console format is, so a long run shows where it is without reading Prefect's log lines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from prefect.logging.configuration import ensure_logging_setup

FLOW_RUN_LOGGER = "prefect.flow_runs"
PROGRESS_FORMAT = (
    "[进度] %(xueji_stage_label)s（%(xueji_stage)s）完成：%(xueji_rows)d 行，"
    "用时 %(xueji_elapsed_s).1f 秒，累计 %(xueji_total_s).1f 秒"
)


def _is_stage_record(record: logging.LogRecord) -> bool:
    return hasattr(record, "xueji_stage")


def stage_line_handler(stream: TextIO) -> logging.Handler:
    """A handler writing one progress line to ``stream`` per finished stage."""
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.INFO)
    handler.addFilter(_is_stage_record)
    handler.setFormatter(logging.Formatter(PROGRESS_FORMAT))
    return handler


def show_stage_progress(stream: TextIO) -> logging.Handler:
    """Print stage lines to ``stream`` from now on; returns the handler (to remove it later)."""
    # Prefect's logging setup replaces the handlers of its loggers; one added before it would be
    # dropped silently.
    ensure_logging_setup()
    handler = stage_line_handler(stream)
    logging.getLogger(FLOW_RUN_LOGGER).addHandler(handler)
    return handler


def hide_stage_progress(handler: logging.Handler) -> None:
    logging.getLogger(FLOW_RUN_LOGGER).removeHandler(handler)


@contextmanager
def stage_progress(stream: TextIO | None) -> Iterator[None]:
    """Stage lines to ``stream`` inside the block; nothing when ``stream`` is None."""
    if stream is None:
        yield
        return
    handler = show_stage_progress(stream)
    try:
        yield
    finally:
        hide_stage_progress(handler)
