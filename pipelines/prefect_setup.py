"""How the command line sets Prefect up: a writable home, no telemetry, and which of Prefect's
console lines reach the terminal (the command line reports a failure itself, in one line)."""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

# Prefect's console lines that report a failure the command line reports itself, in one line.
PREFECT_FAILURE_LINES = ("Finished in state Failed", "Finished in state Crashed", "Crash detected")
# Prefect's link to the run in its web UI, which the run's own server does not serve.
UI_LINK_LINE = "View at "

# "quiet": drop Prefect's failure reports (not with --debug); "closed": the command has said its
# last line; "bars": progress bars are on the terminal (Prefect's informational lines would tear
# them). Reset by each call of main(); a process that exits keeps it until Prefect's exit hooks
# have run.
_prefect_console = {"quiet": False, "closed": False, "bars": False}


def _keep_console_record(record: logging.LogRecord) -> bool:
    """Prefect's console lines, less those reporting a failure the command line reports in one
    line of its own (tracebacks, failed states), less those below a warning while progress bars
    show, less the link to a web UI the run's server does not serve, and nothing after the
    command's last word."""
    if _prefect_console["closed"]:
        return False
    if record.getMessage().startswith(UI_LINK_LINE):
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
    # Nor does the client report usage events home: a provincial machine sends nothing out.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Prefect gives its temporary server 20 s to answer; a nightly machine busy with other work
    # can take longer, and the run would fail for it.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if "PREFECT_HOME" in os.environ:
        # A home named but not made yet (a fresh machine, a new bench folder) is made here:
        # the run's own server writes its log there before Prefect would make it.
        Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
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
    """Start Prefect's server for this run (``prefect server start`` on a free local port, no UI,
    no scheduler) before Prefect is imported here, and return a function that waits until it
    answers.

    This is the server Prefect itself would start on the flow's first call when no
    ``PREFECT_API_URL`` is set, but Prefect would first import its whole server stack into this
    process (three seconds of CPU) and only then start the server: started here, the server boots
    on the other core while this process imports the flow. ``PREFECT_API_URL`` points the run at
    it; it is stopped when the process exits. When Prefect is imported already (a caller that set
    Prefect up itself) or ``PREFECT_API_URL`` is set, nothing is started.
    """
    if "prefect" in sys.modules or os.environ.get("PREFECT_API_URL"):
        return lambda: None
    server = _LocalServer()
    server.start()
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{server.port}/api"
    return server.wait_until_ready


class _LocalServer:
    """One ``prefect server start`` child: its port, its log (in ``PREFECT_HOME``) and its
    stop at exit."""

    STOP_WAIT_S = 10

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port = 0
        home = Path(os.environ.get("PREFECT_HOME", tempfile.gettempdir())).expanduser()
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "local-api.log"

    def start(self) -> None:
        self.port = _free_port()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--no-ui",
                    "--no-scheduler",
                    "--no-late-runs",
                    "--log-level",
                    "WARNING",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        atexit.register(self.stop)

    def wait_until_ready(self) -> None:
        """Wait until the server answers; one that ended (its port taken meanwhile) is started
        again on another port, one that does not answer within Prefect's own start-up limit is
        stopped and reported."""
        limit = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
        deadline = time.monotonic() + limit
        restarts = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if restarts == 2:
                    break
                restarts += 1
                self.start()
                os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{self.port}/api"
                continue
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/api/health", timeout=1
                ) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Prefect 本地服务未能在 {limit:.0f} 秒内启动（日志：{self.log}）")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=self.STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
