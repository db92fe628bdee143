"""Work sent to worker processes comes back as the caller would have got it in-process."""

from __future__ import annotations

import os

import pytest

from xueji_quality import workers
from xueji_quality.errors import InputError


def _pid_and_sum(values: list[int], *, offset: int) -> tuple[int, int]:
    return os.getpid(), sum(values) + offset


def _refuse(file: str) -> None:
    raise InputError(file, "无法读取", row=7, field="身份证件号")


def test_call_runs_in_another_process_with_the_same_result():
    pid, total = workers.call(_pid_and_sum, [1, 2, 3], offset=4, processes=2)
    assert total == 10
    assert pid != os.getpid()
    assert workers.call(_pid_and_sum, [1], offset=0, processes=1) == (os.getpid(), 1)


def test_an_input_error_crosses_the_process_boundary_intact():
    with pytest.raises(InputError) as raised:
        workers.call(_refuse, "roster.csv", processes=2)
    error = raised.value
    assert (error.file, error.row, error.field) == ("roster.csv", 7, "身份证件号")
    assert str(error) == "文件 roster.csv，第 7 行，字段 身份证件号：无法读取"


def _killed() -> None:
    import signal

    os.kill(os.getpid(), signal.SIGKILL)  # what the system's OOM killer does


def test_a_step_alone_runs_once_in_a_process_that_ends():
    pid, total = workers.call_alone(_pid_and_sum, [5], offset=1)
    assert total == 6 and pid != os.getpid()
    again, _ = workers.call_alone(_pid_and_sum, [5], offset=1)
    assert again != pid


def test_a_killed_step_says_so_instead_of_a_broken_pool():
    with pytest.raises(workers.WorkerDied) as raised:
        workers.call_alone(_killed)
    assert "_killed" in str(raised.value) and "内存不足" in str(raised.value)


def _pool_of_a_fresh_process(env: dict[str, str]) -> str:
    import subprocess
    import sys

    script = "import xueji_quality, pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_arrow_uses_the_system_allocator_unless_told_otherwise():
    import xueji_quality

    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    assert _pool_of_a_fresh_process(env) == xueji_quality.ARROW_POOL == "system"
    # Worker processes inherit the choice.
    assert workers.call(os.environ.get, "ARROW_DEFAULT_MEMORY_POOL") == os.environ.get(
        "ARROW_DEFAULT_MEMORY_POOL"
    )
    assert _pool_of_a_fresh_process({**env, "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}) in {
        "jemalloc",
        "mimalloc",  # a build without jemalloc falls back to its default
    }
