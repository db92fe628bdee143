"""Run ids, staging folders and atomic publishing of a run's reports.

A run writes everything under ``<out>/.tmp-<run_id>-<pid>`` and, once complete, renames that
folder to ``<out>/<run_id>`` in one ``os.rename``: a reader sees either no run or a whole run,
and a run that fails leaves the previous ones (and ``latest``) untouched. ``latest`` is a
relative symbolic link to the newest published run, swapped atomically (a temporary link renamed
over it with ``os.replace``); ``latest.txt`` holds the same run id for readers that cannot follow
links (Windows shares). Run ids are ``<province>-<yyyymmdd>``, then ``-2``, ``-3`` … for later
runs of the same day, counting published runs, staging folders of live processes and the runs
the answer ledger (``<out>/ledger.sqlite``) has recorded alike: an id is never given twice, even
after its folder was pruned (``reports.retention``) or deleted by hand.

Staging folders of processes that no longer exist are removed by the next run. Liveness is
checked by process id on this machine, so runs writing to one output folder must share a host.
Published files get mode 0o640 and folders 0o750.

One run at a time per output folder: ``run_lock`` holds an exclusive, non-blocking ``flock`` on
``<out>/.lock`` for the whole run, and a second run on the same folder is refused at once with a
message naming the folder and the holder's process id (it does not queue behind a run that may
take an hour). The kernel releases the lock when its process dies, however it dies, so a killed
run never leaves the folder locked. The lock is re-entrant within one process, so the command
line and the flow it calls may both take it.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: msvcrt locks a byte range instead
    fcntl = None  # type: ignore[assignment]
    import msvcrt

from xueji_quality.reports.tables import DIR_MODE, FILE_MODE, make_dirs

STAGING_PREFIX = ".tmp-"
LATEST = "latest"
LATEST_TEXT = "latest.txt"
LOCK_FILE = ".lock"
LEDGER_FILE = "ledger.sqlite"  # xueji_quality.answers.ledger.LEDGER_NAME
_PROVINCE = re.compile(r"[0-9A-Za-z]{1,12}")
RUN_ID_PATTERN = re.compile(r"[0-9A-Za-z]{1,12}-\d{8}(-\d+)?")


def _check_run_id(run_id: str) -> None:
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ValueError(f"运行编号格式不对: {run_id!r}")


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists on this machine (or it cannot be told)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill would terminate the process there; never guess it dead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _staging_entries(out_root: Path) -> list[tuple[Path, str, int]]:
    """(path, run_id, pid) of every staging folder under ``out_root``."""
    entries = []
    if not out_root.is_dir():
        return entries
    for path in out_root.iterdir():
        if not path.name.startswith(STAGING_PREFIX) or path.is_symlink() or not path.is_dir():
            continue
        run_id, _, pid = path.name[len(STAGING_PREFIX) :].rpartition("-")
        if run_id and pid.isdigit():
            entries.append((path, run_id, int(pid)))
    return entries


def clean_stale_staging(out_root: Path) -> list[Path]:
    """Remove staging folders and temporary links left by dead processes; return what went."""
    out_root = Path(out_root)
    removed = []
    for path, _, pid in _staging_entries(out_root):
        if not pid_alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if out_root.is_dir():
        for path in out_root.glob(f".{LATEST}-*"):
            pid = path.name.rpartition("-")[2].split(".")[0]
            if pid.isdigit() and not pid_alive(int(pid)):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def _ledger_run_ids(out_root: Path, base: str) -> set[str]:
    """Run ids starting with ``base`` that the answer ledger recorded (read-only; none when
    there is no ledger or it cannot be read)."""
    ledger = out_root / LEDGER_FILE
    if not ledger.is_file():
        return set()
    try:
        connection = sqlite3.connect(f"{ledger.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = connection.execute(
                "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ?", (len(base), base)
            ).fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        return set()
    return {row[0] for row in rows}


def new_run_id(out_root: Path, province: str, run_date: date) -> str:
    """``<province>-<yyyymmdd>``, or with ``-2``, ``-3`` … when that id is published, staging or
    recorded in the answer ledger."""
    if not _PROVINCE.fullmatch(province):
        raise ValueError(f"省级代码格式不对: {province!r}")
    out_root = Path(out_root)
    clean_stale_staging(out_root)
    base = f"{province}-{run_date:%Y%m%d}"
    taken = {run_id for _, run_id, _ in _staging_entries(out_root)}
    if out_root.is_dir():
        taken.update(p.name for p in out_root.iterdir() if not p.name.startswith("."))
        taken.update(_ledger_run_ids(out_root, base))
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


def staging_dir(out_root: Path, run_id: str) -> Path:
    """Create (afresh) and return ``out_root/.tmp-<run_id>-<pid>``, mode 0o750."""
    _check_run_id(run_id)
    out_root = make_dirs(Path(out_root))
    clean_stale_staging(out_root)
    path = out_root / f"{STAGING_PREFIX}{run_id}-{os.getpid()}"
    if path.exists():  # an earlier failed attempt of this very process
        shutil.rmtree(path)
    path.mkdir()
    os.chmod(path, DIR_MODE)
    return path


def _seal(folder: Path) -> None:
    """Modes 0o640/0o750 everywhere below ``folder``, and file contents flushed to disk."""
    os.chmod(folder, DIR_MODE)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), DIR_MODE)
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            os.chmod(path, FILE_MODE)
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def update_latest(out_root: Path, run_id: str) -> None:
    """Point ``latest`` (symlink) and ``latest.txt`` at ``run_id``, each replaced atomically."""
    out_root = Path(out_root)
    pid = os.getpid()
    link = out_root / f".{LATEST}-{pid}"
    link.unlink(missing_ok=True)
    try:
        os.symlink(run_id, link, target_is_directory=True)
    except OSError:  # no symlinks on this file system or for this user: latest.txt still works
        pass
    else:
        os.replace(link, out_root / LATEST)
    text = out_root / f".{LATEST}-{pid}.txt"
    with open(text, "w", encoding="utf-8") as handle:
        handle.write(run_id + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(text, FILE_MODE)
    os.replace(text, out_root / LATEST_TEXT)
    _fsync_dir(out_root)


def publish(staging: Path, out_root: Path, run_id: str) -> Path:
    """Rename the finished ``staging`` folder to ``out_root/run_id`` and point ``latest`` at it.

    Raises FileExistsError if that run id is already published (nothing is overwritten).
    """
    _check_run_id(run_id)
    staging = Path(staging)
    out_root = Path(out_root)
    target = out_root / run_id
    if staging.resolve().parent != out_root.resolve():
        raise ValueError(f"暂存目录必须位于输出目录下: {staging}")
    if target.exists() or target.is_symlink():
        raise FileExistsError(f"运行编号已发布: {target}")
    _seal(staging)
    try:
        os.rename(staging, target)
    except OSError as error:  # a concurrent run published the same id first
        if target.exists():
            raise FileExistsError(f"运行编号已发布: {target}") from error
        raise
    _fsync_dir(out_root)
    update_latest(out_root, run_id)
    return target


class RunLocked(Exception):
    """Another run is writing to the same output folder."""


_held: dict[str, int] = {}  # lock path -> nesting depth, for this process
_held_guard = threading.Lock()


def _try_lock(handle: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _unlock(handle: int) -> None:
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        os.lseek(handle, 0, os.SEEK_SET)
        msvcrt.locking(handle, msvcrt.LK_UNLCK, 1)


@contextmanager
def run_lock(out_root: Path) -> Iterator[Path]:
    """Hold ``out_root/.lock`` for the duration of a run; raise RunLocked if another run has it.

    The holder's process id is written into the lock file so the refusal can name it.
    """
    out_root = make_dirs(Path(out_root))
    path = out_root / LOCK_FILE
    key = str(path.resolve())
    with _held_guard:
        if key in _held:
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    handle = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        if not _try_lock(handle):
            holder = os.pread(handle, 32, 0).decode("ascii", "replace").strip() or "未知"
            raise RunLocked(
                f"输出目录 {out_root} 正被另一次运行使用（进程号 {holder}），"
                "未开始本次运行；请等那次运行结束后再试"
            )
        with _held_guard:
            _held[key] = 1
        try:
            os.ftruncate(handle, 0)
            os.pwrite(handle, f"{os.getpid()}\n".encode("ascii"), 0)
            yield path
        finally:
            with _held_guard:
                del _held[key]
            os.ftruncate(handle, 0)
            _unlock(handle)
    finally:
        os.close(handle)
