"""Exit statuses of the command line, one per kind of failure, and the one line that says it.

0  success
1  an internal failure (a defect, not the input): the traceback is written to a log file
2  bad input: a file or folder that cannot be read, a wrong option or value
3  a run whose row counts did not add up (nothing is published)
4  another run holds the same output folder
5  a worker process was killed, most often by the system for want of memory
130  interrupted (Ctrl-C)
"""

from __future__ import annotations

from xueji_quality import preflight
from xueji_quality.errors import ConservationError, InputError
from xueji_quality.reports.publish import RunLocked
from xueji_quality.workers import WorkerDied

EXIT_INTERNAL_ERROR = 1
EXIT_INPUT_ERROR = 2
EXIT_RUN_FAILED = 3
EXIT_BUSY = 4
EXIT_WORKER_DIED = 5
EXIT_INTERRUPTED = 130

INTERNAL = "内部错误（程序缺陷，不是输入的问题）："
INTERRUPTED = "已中断"

# Failures a user can act on: (type, start of the line, exit status). Anything else is internal.
KNOWN_FAILURES: tuple[tuple[type[Exception], str, int], ...] = (
    (InputError, "输入错误：", EXIT_INPUT_ERROR),
    (preflight.OptionError, "参数错误：", EXIT_INPUT_ERROR),
    (ConservationError, "运行失败，未发布任何报告：", EXIT_RUN_FAILED),
    (RunLocked, "", EXIT_BUSY),
    (WorkerDied, "运行失败：", EXIT_WORKER_DIED),
)


def known_failure(exc: BaseException) -> tuple[str, int] | None:
    """(the line a user reads, the exit status) of a failure the user can act on, else None."""
    for kind, start, status in KNOWN_FAILURES:
        if isinstance(exc, kind):
            return f"{start}{exc}", status
    return None


def internal_failure_line(exc: BaseException) -> str:
    """``内部错误…：Type: first line of the message``."""
    first_line = next(iter(str(exc).strip().splitlines()), "")
    what = f"{type(exc).__name__}: {first_line[:200]}" if first_line else type(exc).__name__
    return f"{INTERNAL}{what}"


def failure_line(exc: BaseException) -> str:
    """The one line that says why a run failed, whatever the failure."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    known = known_failure(exc)
    return known[0] if known is not None else internal_failure_line(exc)
