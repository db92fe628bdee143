"""The answer ledger: every problem a run listed and every answer a county sent back.

An embedded SQLite file under the output root (default ``<out>/ledger.sqlite``). Each write (a
run's problems, one imported workbook) is one transaction: it lands whole or not at all, and a
process killed in the middle leaves the ledger as it was (SQLite's journal rolls it back).

Tables:

- ``runs``: seq (order of recording), run_id, province, run_date, recorded_at (when the run read
  the ledger: answers imported after that count for the next run), counts (JSON);
- ``problems``: one row per problem key ever listed: kind (``P`` problem row, ``D`` duplicate
  group), rule, field, severity, identity, first/last seen (run seq and date), opened_seq (the
  run that first listed it or listed it again after it was gone or re-opened), status
  (新增 / 未处理 / 已佐证 / 已答复待修正 / 已解决 / 重新出现) and the run that set it;
- ``problem_counties``: which counties' lists carry a key (a cross-county group has several);
- ``versions``: the fingerprints a key had and the runs each was seen in, so an answer given on an
  old workbook is judged against the records as that workbook showed them;
- ``imports``: each imported workbook: file name, sha256, run, county, time, answer count;
- ``answers``: each answer: key, county, run seq answered, action (佐证/变更/删除), 备注, the
  fingerprint it was given against, the import it came with.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

LEDGER_NAME = "ledger.sqlite"
SCHEMA_VERSION = 1

NEW = "新增"
OPEN = "未处理"
CONFIRMED = "已佐证"
ANSWERED_NOT_FIXED = "已答复待修正"
RESOLVED = "已解决"
REOPENED = "重新出现"
STATUSES: tuple[str, ...] = (NEW, OPEN, CONFIRMED, ANSWERED_NOT_FIXED, RESOLVED, REOPENED)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    province TEXT,
    run_date TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    counts TEXT
);
CREATE TABLE IF NOT EXISTS problems (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('P', 'D')),
    rule TEXT,
    field TEXT,
    severity TEXT,
    identity TEXT,
    first_seen_seq INTEGER NOT NULL REFERENCES runs(seq),
    first_seen_date TEXT NOT NULL,
    last_seen_seq INTEGER NOT NULL REFERENCES runs(seq),
    last_seen_date TEXT NOT NULL,
    opened_seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS problem_counties (
    key TEXT NOT NULL REFERENCES problems(key),
    county_code TEXT NOT NULL,
    PRIMARY KEY (key, county_code)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    first_seen_seq INTEGER NOT NULL,
    last_seen_seq INTEGER NOT NULL,
    PRIMARY KEY (key, first_seen_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS imports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    run_seq INTEGER NOT NULL REFERENCES runs(seq),
    county_code TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    answers INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    import_id INTEGER NOT NULL REFERENCES imports(id),
    key TEXT NOT NULL,
    county_code TEXT NOT NULL,
    run_seq INTEGER NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('佐证', '变更', '删除')),
    note TEXT,
    fingerprint TEXT,
    sheet TEXT,
    row INTEGER
);
CREATE INDEX IF NOT EXISTS answers_by_key ON answers (key, id);
CREATE INDEX IF NOT EXISTS problems_by_status ON problems (status);
"""


def ledger_path(out_root: Path, path: Path | None = None) -> Path:
    """The ledger of an output root: ``path`` if given, else ``<out_root>/ledger.sqlite``."""
    return Path(path) if path is not None else Path(out_root) / LEDGER_NAME


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create) the ledger; transactions are explicit (``BEGIN IMMEDIATE``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA journal_mode = DELETE")
    connection.execute("PRAGMA synchronous = FULL")
    with transaction(connection):
        for statement in filter(None, (s.strip() for s in SCHEMA.split(";"))):
            connection.execute(statement)
        connection.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
    return connection


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception (then re-raised)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def read_frame(connection: sqlite3.Connection, sql: str, params: tuple = ()) -> pd.DataFrame:
    cursor = connection.execute(sql, params)
    columns = [d[0] for d in cursor.description]
    return pd.DataFrame(cursor.fetchall(), columns=columns)


def run_seq(connection: sqlite3.Connection, run_id: str) -> int | None:
    row = connection.execute("SELECT seq FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else int(row[0])


def last_run(connection: sqlite3.Connection) -> dict | None:
    row = connection.execute(
        "SELECT seq, run_id, run_date, recorded_at FROM runs ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return {"seq": row[0], "run_id": row[1], "run_date": row[2], "recorded_at": row[3]}


def snapshot(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: lets a test (or an auditor) compare two states."""
    connection = sqlite3.connect(str(path))
    try:
        names = [
            r[0]
            for r in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            name: sorted(connection.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
            for name in sorted(names)
        }
    finally:
        connection.close()
