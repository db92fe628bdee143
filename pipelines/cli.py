"""Command line: the top floor, the one place that reaches both the library and the Prefect flows.

xueji-quality --version
xueji-quality [--debug] sample   --rows N --seed S --province CODE --out DIR [--format ...]
                                 [--counties N] [--chunk-rows N]
xueji-quality [--debug] run      INPUT... --province CODE --out DIR [--as-of YYYY-MM-DD]
                                 [--counties ...] [--schools ...] [--mask-ids] [--progress]
                                 [--task-runner threads|dask] [--force] [--keep-runs N]
                                 [--notify-block SLUG]
xueji-quality [--debug] serve    --province CODE --inbox DIR --out DIR [--cron "0 2 * * *"]
xueji-quality [--debug] evaluate RUN_DIR --truth DIR
xueji-quality [--debug] import-answers FILE.xlsx... --out DIR [--ledger FILE]
(and police-request, export-national, national: see README.md)

Every failure ends in one line on stderr, in Chinese, naming the file (and the row and field where
known), preceded at most by the usage line of a mistyped command. Exit statuses:

0  success
1  an internal failure (a defect, not the input): the traceback is written to a log file under
   ``<out>/logs/`` (or the system's temporary folder) whose path the line names
2  bad input: a file or folder that cannot be read, a wrong option or value
3  a run whose row counts did not add up (nothing is published)
4  another run holds the same output folder
5  a worker process was killed, most often by the system for want of memory
130  interrupted (Ctrl-C)

``--debug`` (before or after the subcommand) prints tracebacks on the terminal instead, and leaves
Prefect's own failure logs on the console.

Inputs are checked (``xueji_quality.preflight``) before Prefect, its server or any worker starts,
so a file that cannot be read is refused in about a second.

``run`` leaves ``OUT/status.json`` (``xueji_quality.run_status``) for a monitoring system, with
the exit status and, for a failure, the same line; a run refused because another run holds the
folder (exit status 4) leaves the other run's record alone.

README.md has the whole reference.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import sys
import tempfile
import traceback
from datetime import datetime
from pathlib import Path

from pipelines.cli_commands import COMMANDS
from pipelines.cli_parser import PROG, _parser
from pipelines.exit_status import (
    EXIT_BUSY,
    EXIT_INPUT_ERROR,
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    EXIT_RUN_FAILED,
    EXIT_WORKER_DIED,
    INTERRUPTED,
    internal_failure_line,
    known_failure,
)
from pipelines.prefect_setup import _keep_console_record as _keep_console_record
from pipelines.prefect_setup import _prefect_console
from xueji_quality import run_status
from xueji_quality.reports.publish import RunLocked, run_lock

__all__ = [
    "EXIT_BUSY",
    "EXIT_INPUT_ERROR",
    "EXIT_INTERNAL_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_RUN_FAILED",
    "EXIT_WORKER_DIED",
    "COMMANDS",
    "main",
]

LOG_FOLDER = "logs"


# ---------------------------------------------------------------- failures


def _say(line: str) -> None:
    """The command's last word on stderr: nothing from Prefect's console may follow it."""
    _prefect_console["closed"] = True
    # Messages quoted from a library (pyarrow's, for one) may span lines.
    print(re.sub(r"\s*\n\s*", " ", line.strip()), file=sys.stderr, flush=True)


def _log_folder(args: argparse.Namespace) -> Path:
    """``<out>/logs`` when the command has an output folder that exists, else the temp folder."""
    out = getattr(args, "out", None)
    if out is not None and Path(out).is_dir():
        return Path(out) / LOG_FOLDER
    return Path(tempfile.gettempdir())


def _write_traceback(args: argparse.Namespace, argv: list[str], exc: BaseException) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{PROG}-{args.command}-{stamp}-{os.getpid()}.log"
    text = (
        f"{PROG} {' '.join(argv)}\n{datetime.now().astimezone().isoformat()}\n"
        f"Python {sys.version.split()[0]}\n\n" + "".join(traceback.format_exception(exc))
    )
    for folder in (_log_folder(args), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path.resolve()
        except OSError:
            continue
    raise OSError("无法写入日志文件")


def _internal_failure(args: argparse.Namespace, argv: list[str], exc: BaseException) -> str:
    """Report a defect; returns the line said."""
    line = internal_failure_line(exc)
    if args.debug:
        traceback.print_exception(exc, file=sys.stderr)
        _say(line)
        return line
    try:
        log = _write_traceback(args, argv, exc)
    except OSError:
        traceback.print_exception(exc, file=sys.stderr)
        line = f"{line}；日志文件无法写入，回溯见上"
    else:
        line = f"{line}；详细信息已写入 {log}（请交给维护人员；加 --debug 可在终端显示）"
    _say(line)
    return line


# ---------------------------------------------------------------- the status file


def _status_folder(args: argparse.Namespace) -> Path | None:
    """The output folder whose status.json a ``run`` reports to, when it is a folder."""
    if args.command != "run" or not Path(args.out).is_dir():
        return None
    return Path(args.out)


def _record_exit(args: argparse.Namespace, status: int, line: str | None) -> None:
    """Put the command's exit status (and for a failure its line) into ``OUT/status.json``.

    Never for a run refused because another holds the folder: that run's record stands."""
    out = _status_folder(args)
    if out is None or status == EXIT_BUSY:
        return
    try:
        with run_lock(out):
            if status == 0:
                run_status.settle(out, status)
            else:
                run_status.fail(
                    out, line or "", exit_status=status, province=getattr(args, "province", None)
                )
    except (OSError, RunLocked):
        pass  # the exit status and the line on stderr still say it


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    _prefect_console.update(quiet=False, closed=False, bars=False)
    if args.command == "run":
        run_status.forget(args.out)
    try:
        status = COMMANDS[args.command](args)
        line = None
    except KeyboardInterrupt:
        _say(INTERRUPTED)
        status, line = EXIT_INTERRUPTED, INTERRUPTED
    except Exception as exc:
        known = known_failure(exc)
        if known is None:
            status, line = EXIT_INTERNAL_ERROR, _internal_failure(args, argv, exc)
        else:
            line, status = known
            if args.debug:
                traceback.print_exception(exc, file=sys.stderr)
            _say(line)
    _record_exit(args, status, line)
    return status


def console() -> None:
    """The installed command: :func:`main`, then the process ends as soon as its exit hooks have
    run (the temporary Prefect server stopped, the run's logs sent).

    The interpreter's own teardown after that frees every object of the imported libraries one by
    one (Prefect's and Great Expectations' models: about three seconds) while the user waits for
    the prompt; nothing in it writes a file or a log, so the process ends without it."""
    exit_status = [EXIT_INTERNAL_ERROR]

    def end_process() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(exit_status[0])

    # Registered first, so it runs after every other exit hook.
    atexit.register(end_process)
    try:
        exit_status[0] = main()
    except SystemExit as stop:  # argparse's usage errors and --help
        code = stop.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
        exit_status[0] = code if isinstance(code, int) else int(code is not None)
    sys.exit(exit_status[0])


if __name__ == "__main__":
    console()
