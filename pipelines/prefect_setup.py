"""How the command line sets Prefect up: a writable home, no telemetry, and which of Prefect's
console lines reach the terminal (the command line reports a failure itself, in one line)."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

# Prefect's console lines that report a failure the command line reports itself, in one line.
PREFECT_FAILURE_LINES = ("Finished in state Failed", "Finished in state Crashed", "Crash detected")

# "quiet": drop Prefect's failure reports (not with --debug); "closed": the command has said its
# last line; "bars": progress bars are on the terminal (Prefect's informational lines would tear
# them). Reset by each call of main(); a process that exits keeps it until Prefect's exit hooks
# have run.
_prefect_console = {"quiet": False, "closed": False, "bars": False}


def _keep_console_record(record: logging.LogRecord) -> bool:
    """Prefect's console lines, less those reporting a failure the command line reports in one
    line of its own (tracebacks, failed states), less those below a warning while progress bars
    show, and nothing after that line: the temporary server says it stops when the process
    exits, after the command's last word."""
    if _prefect_console["closed"]:
        return False
    if _prefect_console["bars"] and record.levelno < logging.WARNING:
        return False
    if not _prefect_console["quiet"]:
        return True
    if record.exc_info or (
        record.levelno >= logging.ERROR
        and record.name.startswith(("prefect.flow_runs", "prefect.task_runs"))
    ):
        return False
    return not record.getMessage().startswith(PREFECT_FAILURE_LINES)


def _filter_prefect_console(debug: bool) -> None:
    """Filter Prefect's console handlers (Prefect is imported, so its logging is set up). The
    records still reach Prefect's API; with ``--debug`` the console shows the failures too."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and (
                _keep_console_record not in handler.filters
            ):
                handler.addFilter(_keep_console_record)
    _prefect_console["quiet"] = not debug


def _prepare_prefect() -> None:
    """Prefect's embedded API needs a writable home; offline telemetry would log a false error."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect gives its temporary server 20 s to answer; a nightly machine busy with other work
    # can take longer, and the run would fail for it.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if "PREFECT_HOME" in os.environ:
        return
    home = Path.home() / ".xueji-quality" / "prefect"
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".writable"
        probe.touch()
        probe.unlink()
    except OSError:
        home = Path(tempfile.gettempdir()) / f"xueji-quality-prefect-{os.getuid()}"
        home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(home)


def start_local_api() -> Callable[[], None]:
    """Start Prefect's temporary local API server on a thread and return a function that waits
    until it answers.

    The flow's first call would start the same server (Prefect's embedded local API, when no
    ``PREFECT_API_URL`` is set) and wait for it; started here, the server process boots on the
    other core while this process imports the flow and its libraries. Wait before the flow is
    called: a client that finds the server starting uses it at once. A failure here is left to
    the flow's own start, which reports it.
    """

    def start() -> None:
        try:
            from prefect.settings import get_current_settings

            if get_current_settings().api.url:
                return
            from prefect.server.api.server import SubprocessASGIServer

            server = SubprocessASGIServer()
            try:
                server.start()
            except Exception:
                # Never leave a server process behind: the flow's own start begins afresh.
                server.stop()
                raise
        except Exception:  # noqa: BLE001 - the flow starts the server again and says why
            logging.getLogger(__name__).debug("提前启动 Prefect 本地服务失败", exc_info=True)

    thread = threading.Thread(target=start, name="prefect-local-api", daemon=True)
    thread.start()
    return thread.join
