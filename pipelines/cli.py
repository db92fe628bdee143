"""Command line: the top floor, the one place that reaches both the library and the Prefect flows.

xueji-quality [--debug] sample   --rows N --seed S --province CODE --out DIR [--format ...]
                                 [--counties N] [--chunk-rows N]
xueji-quality [--debug] run      INPUT... --province CODE --out DIR [--as-of YYYY-MM-DD]
                                 [--counties ...] [--schools ...] [--mask-ids] [--progress]
                                 [--task-runner threads|dask]
xueji-quality [--debug] serve    --province CODE --inbox DIR --out DIR [--cron "0 2 * * *"]
xueji-quality [--debug] evaluate RUN_DIR --truth DIR
xueji-quality [--debug] import-answers FILE.xlsx... --out DIR [--ledger FILE]

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

README.md has the whole reference.
"""

from __future__ import annotations

import argparse
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
)
from pipelines.prefect_setup import _keep_console_record as _keep_console_record
from pipelines.prefect_setup import _prefect_console
from xueji_quality import preflight
from xueji_quality.errors import ConservationError, InputError
from xueji_quality.reports.publish import RunLocked
from xueji_quality.workers import WorkerDied

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


def _internal_failure(args: argparse.Namespace, argv: list[str], exc: BaseException) -> int:
    first_line = next(iter(str(exc).strip().splitlines()), "")
    what = f"{type(exc).__name__}: {first_line[:200]}" if first_line else type(exc).__name__
    line = f"内部错误（程序缺陷，不是输入的问题）：{what}"
    if args.debug:
        traceback.print_exception(exc, file=sys.stderr)
        _say(line)
        return EXIT_INTERNAL_ERROR
    try:
        log = _write_traceback(args, argv, exc)
    except OSError:
        traceback.print_exception(exc, file=sys.stderr)
        _say(f"{line}；日志文件无法写入，回溯见上")
        return EXIT_INTERNAL_ERROR
    _say(f"{line}；详细信息已写入 {log}（请交给维护人员；加 --debug 可在终端显示）")
    return EXIT_INTERNAL_ERROR


# Failures a user can act on: (type, start of the line, exit status). Anything else is internal.
KNOWN_FAILURES: tuple[tuple[type[Exception], str, int], ...] = (
    (InputError, "输入错误：", EXIT_INPUT_ERROR),
    (preflight.OptionError, "参数错误：", EXIT_INPUT_ERROR),
    (ConservationError, "运行失败，未发布任何报告：", EXIT_RUN_FAILED),
    (RunLocked, "", EXIT_BUSY),
    (WorkerDied, "运行失败：", EXIT_WORKER_DIED),
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    _prefect_console.update(quiet=False, closed=False)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        _say("已中断")
        return EXIT_INTERRUPTED
    except Exception as exc:
        for kind, start, status in KNOWN_FAILURES:
            if isinstance(exc, kind):
                if args.debug:
                    traceback.print_exception(exc, file=sys.stderr)
                _say(f"{start}{exc}")
                return status
        return _internal_failure(args, argv, exc)


if __name__ == "__main__":
    sys.exit(main())
