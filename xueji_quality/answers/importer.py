"""Importing returned problem lists into the answer ledger.

A returned workbook is read by :mod:`xueji_quality.answers.answer_file` (what the file says
and what it contradicts by itself); here the ledger confirms the rest: the run is one this
output root recorded, and every answered key belongs to this county and was listed by that run.
Any failure rejects the whole file with every offending file, sheet and row named; otherwise all
its answers are written in one transaction. A file already imported (same SHA-256) is reported
and not read again.

Work per file is done in bulk: the answered keys go to SQLite as one JSON array in key order and
one query brings back what the ledger knows of them; the answers are written with one
``executemany``. Several large files are read by two worker processes while this process writes
the files already read, in the order given (a later file's answer to a record wins).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from pathlib import Path

import numpy as np
import pandas as pd

from xueji_quality.answers import ledger
from xueji_quality.answers.answer_file import (
    Answer,
    AnswerFile,
    AnswerFileError,
    read_answer_file,
)
from xueji_quality.workbook import ANSWER_ACTIONS

__all__ = [
    "Answer",
    "AnswerFile",
    "AnswerFileError",
    "ImportReport",
    "import_answers",
    "import_file",
    "read_answer_file",
    "read_answer_files",
]

# Files read in worker processes when a batch holds at least this many bytes of workbooks
# (below it, starting the workers costs more than it saves).
PARALLEL_BYTES = 16 * 2**20
READ_PROCESSES = 2


@dataclass
class ImportReport:
    file: str
    sha256: str
    run_id: str
    county_code: str
    answers: int
    by_action: dict[str, int]
    unanswered: int
    already_imported: bool = False


def _none_if_empty(values: pd.Series) -> np.ndarray:
    return np.where(values.to_numpy(dtype=object) == "", None, values.to_numpy(dtype=object))


def _known_keys(connection, keys: list[str]) -> set[str]:
    """The keys the ledger has listed at some time (for any county)."""
    if not keys:
        return set()
    rows = connection.execute(
        "SELECT w.value FROM json_each(?) w JOIN problems p ON p.key = w.value", (json.dumps(keys),)
    )
    return {row[0] for row in rows}


def _check_against_ledger(connection, answer_file: AnswerFile) -> tuple[int, np.ndarray]:
    """Run seq, and the fingerprint each answer's key had in that run (one per answer row);
    issues added in place."""
    seq = ledger.run_seq(connection, answer_file.run_id)
    if seq is None:
        answer_file.issues.insert(
            0, f"运行编号“{answer_file.run_id}”不是本输出目录产生的运行（或尚未记入答复台账）"
        )
        return -1, np.array([], dtype=object)
    table = answer_file.table
    # The file's keys go to SQLite as one JSON array, in key order so the lookups walk the
    # ledger's indexes from one end to the other: no row of them is bound one by one.
    keys = np.sort(table["key"].unique().astype(str))
    rows = connection.execute(
        "SELECT w.value,"
        " EXISTS (SELECT 1 FROM problem_counties c WHERE c.key = w.value AND c.county_code = ?),"
        " (SELECT v.fingerprint FROM versions v WHERE v.key = w.value"
        "  AND v.first_seen_seq <= ? AND v.last_seen_seq >= ?)"
        " FROM json_each(?) w",
        (answer_file.county_code, seq, seq, json.dumps(keys.tolist())),
    ).fetchall()
    facts = pd.DataFrame(rows, columns=["key", "ours", "fingerprint"], dtype=object)
    # A key this county's lists carry is a problem the ledger knows; only for the others does
    # it matter whether the ledger knows them at all (the message differs).
    known_keys = _known_keys(connection, facts.loc[facts["ours"].ne(1), "key"].tolist())
    found = facts.set_index("key").reindex(table["key"])
    ours = found["ours"].eq(1).to_numpy()
    known = ours | table["key"].isin(known_keys).to_numpy()
    fingerprint = found["fingerprint"].to_numpy(dtype=object)
    listed = pd.notna(fingerprint)
    failed = ~known | ~ours | ~listed
    if failed.any():
        where = "工作表“" + table["sheet"] + "”第 " + table["row"].astype(str) + " 行"
        key = "：问题编号“" + table["key"] + "”"
        message = np.select(
            [~known, ~ours],
            [
                (where + key + "不存在（被改动？）").to_numpy(dtype=object),
                (where + key + f"不属于区县 {answer_file.county_code}").to_numpy(dtype=object),
            ],
            (where + key + f"不在运行 {answer_file.run_id} 的清单中").to_numpy(dtype=object),
        )
        answer_file.issues.extend(message[failed].tolist())
    return seq, fingerprint


def _write_answers(connection, import_id: int, rows: list[list]) -> None:
    """Insert the answers of one import; ``rows`` holds their columns: key, member, county,
    run seq, action, 更正后的值, 备注, fingerprint, sheet, row."""
    connection.executemany(
        "INSERT INTO answers (import_id, key, member, county_code, run_seq, action, new_value,"
        " note, fingerprint, sheet, row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        zip(repeat(import_id), *rows),
    )


def _answer_rows(answer_file: AnswerFile, seq: int, fingerprints: np.ndarray) -> list[list]:
    table = answer_file.table
    return [
        table["key"].tolist(),
        table["member"].tolist(),
        [answer_file.county_code] * len(table),
        [seq] * len(table),
        table["action"].tolist(),
        _none_if_empty(table["new_value"]).tolist(),
        _none_if_empty(table["note"]).tolist(),
        fingerprints.tolist(),
        table["sheet"].tolist(),
        table["row"].tolist(),
    ]


def _report(path: Path, answer_file: AnswerFile) -> ImportReport:
    counts = answer_file.table["action"].value_counts()
    return ImportReport(
        file=str(path),
        sha256=answer_file.sha256,
        run_id=answer_file.run_id,
        county_code=answer_file.county_code,
        answers=len(answer_file.table),
        by_action={a: int(counts.get(a, 0)) for a in ANSWER_ACTIONS},
        unanswered=answer_file.unanswered,
    )


def _open_ledger(
    out_root: Path, ledger_file: Path | None, path: Path, answer_file: AnswerFile
) -> sqlite3.Connection:
    """The ledger of ``out_root``; an output root without one produced no run to answer."""
    ledger_file = ledger.ledger_path(out_root, ledger_file)
    if not ledger_file.is_file():
        raise AnswerFileError(
            str(path),
            [f"运行编号“{answer_file.run_id}”不是本输出目录产生的运行（无答复台账 {ledger_file}）"],
        )
    return ledger.connect(ledger_file)


def _write_file(connection, path: Path, answer_file: AnswerFile) -> ImportReport:
    """Check a read workbook against the ledger and write its answers (all, or nothing)."""
    report = _report(path, answer_file)
    with ledger.transaction(connection):
        seen = connection.execute(
            "SELECT 1 FROM imports WHERE sha256 = ?", (answer_file.sha256,)
        ).fetchone()
        if seen:
            report.already_imported = True
            return report
        seq, fingerprints = _check_against_ledger(connection, answer_file)
        if answer_file.issues:
            raise AnswerFileError(str(path), answer_file.issues)
        cursor = connection.execute(
            "INSERT INTO imports (file_name, sha256, run_seq, county_code, imported_at,"
            " answers) VALUES (?, ?, ?, ?, ?, ?)",
            (
                Path(path).name,
                answer_file.sha256,
                seq,
                answer_file.county_code,
                datetime.now().astimezone().isoformat(timespec="microseconds"),
                len(answer_file.table),
            ),
        )
        _write_answers(
            connection, int(cursor.lastrowid), _answer_rows(answer_file, seq, fingerprints)
        )
    return report


def import_file(out_root: Path, path: Path, *, ledger_file: Path | None = None) -> ImportReport:
    """Import one returned workbook into the ledger of ``out_root`` (all of it, or nothing)."""
    answer_file = read_answer_file(path)
    connection = _open_ledger(out_root, ledger_file, path, answer_file)
    try:
        return _write_file(connection, path, answer_file)
    finally:
        connection.close()


def _read(path: Path) -> AnswerFile | AnswerFileError:
    try:
        return read_answer_file(path)
    except AnswerFileError as error:
        return error


def read_answer_files(paths: list[Path]) -> Iterator[AnswerFile | AnswerFileError]:
    """Each file read (or why it cannot be), in the order given; by worker processes when the
    batch is large, the next files read while the caller writes this one."""
    sizes = [p.stat().st_size if p.is_file() else 0 for p in paths]
    workers = min(READ_PROCESSES, os.cpu_count() or 1, len(paths))
    if workers < 2 or sum(sizes) < PARALLEL_BYTES:
        yield from map(_read, paths)
        return
    # Spawned: the caller may hold threads, and a fork would copy their locks.
    context = multiprocessing.get_context("spawn")
    done = 0
    try:
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for answer_file in pool.map(_read, paths):
                yield answer_file
                done += 1
    except BrokenProcessPool:
        # A worker that could not start (a caller script without a main guard) or was killed:
        # the files not read yet are read here.
        yield from map(_read, paths[done:])


def import_answers(
    out_root: Path, paths: list[Path], *, ledger_file: Path | None = None
) -> tuple[list[ImportReport], list[AnswerFileError]]:
    """Import each file on its own: a rejected file leaves the others' answers in place."""
    paths = [Path(p) for p in paths]
    reports: list[ImportReport] = []
    rejected: list[AnswerFileError] = []
    # One connection for the batch: the ledger pages one file's keys brought into its cache
    # serve the next file's (each file is still a transaction of its own).
    connection = None
    try:
        for path, answer_file in zip(paths, read_answer_files(paths), strict=True):
            try:
                if isinstance(answer_file, AnswerFileError):
                    raise answer_file
                if connection is None:
                    connection = _open_ledger(out_root, ledger_file, path, answer_file)
                reports.append(_write_file(connection, path, answer_file))
            except AnswerFileError as exc:
                rejected.append(exc)
    finally:
        if connection is not None:
            connection.close()
    return reports, rejected
