"""Worker processes for pure-Python, CPU-bound work that threads cannot share out.

Validating a roster piece, writing a county's workbook or reading an export block is Python
around library calls: threads take turns on one core while the machine's other cores sit idle. ``call`` runs such a function in a small pool of worker
processes that the whole run shares, so the per-county tasks (threads under Prefect's default
runner) each wait on a process of their own.

The pool starts its workers from a forkserver (a clean single-threaded process), never by forking
the caller: the caller is a multi-threaded Prefect run, and a fork copies locks other threads
may hold. The pool is module state because a run maps hundreds of short calls onto it; starting
processes per call would cost more than the work.
"""

from __future__ import annotations

import atexit
import multiprocessing
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")


class WorkerDied(RuntimeError):
    """A worker process ended without an answer: killed from outside, most often by the system
    when memory ran out."""

    def __init__(self, step: str) -> None:
        super().__init__(
            f"{step} 的工作进程异常退出（多为内存不足被系统终止，见系统日志 dmesg）；"
            "本次运行未发布，上一次发布的报告不受影响"
        )
        self.step = step

    def __reduce__(self):
        return (type(self), (self.step,))


_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()


# Imported once by the forkserver for every worker it starts: validation (Great Expectations
# takes seconds to import) and what it imports. Set before the server starts, whichever part of
# the run starts it first.
PRELOAD = ("xueji_quality.validate",)


def _preload() -> list[str]:
    """PRELOAD and the caller's main module: like spawn, a forkserver worker re-runs the main
    module (as ``__mp_main__``) before its task, which costs the main module's imports in every
    worker unless the server has them already."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name and name != "__main__" and not name.endswith(".__main__"):
        return [*PRELOAD, name]  # run as ``python -m package.module``
    if getattr(main, "__file__", None):
        return [*PRELOAD, "__main__"]  # a script: the server imports it by path
    return list(PRELOAD)


def mp_context() -> multiprocessing.context.BaseContext:
    """The start context of every worker process of a run (spawn where there is no forkserver)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_preload())
    return context


_context = mp_context


def nested_context(preload: tuple[str, ...]) -> multiprocessing.context.BaseContext:
    """The start context of a pool that a step opens: in a worker process (a step run alone),
    whose first pool starts a forkserver of its own, that server imports ``preload`` only, not
    PRELOAD (seconds of Great Expectations the step's workers would wait for). In the run's own
    process the run's forkserver is used as it is."""
    context = mp_context()
    if multiprocessing.parent_process() is not None and context.get_start_method() == "forkserver":
        context.set_forkserver_preload(list(preload))
    return context


def start() -> multiprocessing.context.BaseContext:
    """Start the forkserver now and return the start context.

    The server imports PRELOAD (seconds, mostly Great Expectations) while the caller goes on: a
    command that starts it before Prefect's server has both start-ups overlap on two cores.
    """
    context = mp_context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
    return context


def _shared_pool(processes: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != processes:
            if _pool is not None:
                _pool.shutdown(wait=True)
            _pool = ProcessPoolExecutor(processes, mp_context=_context())
            _pool_size = processes
        return _pool


def call(function: Callable[..., T], *args: Any, processes: int = 1, **kwargs: Any) -> T:
    """``function(*args, **kwargs)``, in a worker process when ``processes`` > 1.

    ``function`` and its arguments must pickle; exceptions come back as they were raised.
    """
    if processes <= 1:
        return function(*args, **kwargs)
    return _shared_pool(processes).submit(function, *args, **kwargs).result()


def call_alone(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)`` in a process of its own that ends with the call.

    For one large step (linking a province): the memory it took goes back to the system when it
    returns, instead of staying with a pooled worker (or the caller) for the rest of the run.
    """
    with ProcessPoolExecutor(1, mp_context=_context()) as pool:
        try:
            return pool.submit(function, *args, **kwargs).result()
        except BrokenProcessPool as error:
            raise WorkerDied(function.__name__) from error


@atexit.register
def shutdown() -> None:
    """Stop the shared pool (also at interpreter exit)."""
    global _pool, _pool_size
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
        _pool, _pool_size = None, 0
