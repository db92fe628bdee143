"""The answer ledger: every problem a run listed and every answer a county sent back.

An embedded SQLite file under the output root (default ``<out>/ledger.sqlite``), mode 0o640 like
every output whatever the umask. Each write (a run's problems, one imported workbook) is one
transaction: it lands whole or not at all, and a process killed in the middle leaves the ledger
as it was (SQLite's journal rolls it back).

It holds what answering needs and no more: problem keys (hashes that name a problem without its
values), counties, statuses, fingerprints (hashes) and the answers counties gave. No ID number,
name or other value of a record is stored; a ledger written before this (schema 1, which kept
each problem's identity: an ID number or a name with a birth date) loses that column when it is
first opened, and is vacuumed so the old pages go too. The answers carry no index by key: the
answer that counts for each record is found by one grouping over all of them, and an index kept
in random key order would cost every imported answer more than it saves there (a ledger that has
one drops it when opened).

Tables:

- ``runs``: seq (order of recording), run_id, province, run_date, recorded_at (when the run read
  the ledger: answers imported after that count for the next run), counts (JSON);
- ``problems``: one row per problem key ever listed: kind (``P`` problem row, ``D`` duplicate
  group), rule, field, severity, first/last seen (run seq and date), opened_seq (the
  run that first listed it or listed it again after it was gone or re-opened), status
  (新增 / 未处理 / 已佐证 / 已答复待修正 / 已解决 / 重新出现) and the run that set it;
- ``problem_counties``: which counties' lists carry a key (a cross-county group has several),
  and how many items of the county it is (1 for a problem row, the county's records for a group);
- ``versions``: the fingerprints a key had and the runs each was seen in, so an answer given on an
  old workbook is judged against the records as that workbook showed them;
- ``imports``: each imported workbook: file name, sha256, run, county, time, answer count;
- ``answers``: each answer: key, member (the record of a duplicate group it answers, empty for a
  problem row or a whole-group answer), county, run seq answered, action (佐证/变更/删除, and
  保留 for a record of a group), 更正后的值, 备注, the fingerprint it was given against, the
  import it came with.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

LEDGER_NAME = "ledger.sqlite"
SCHEMA_VERSION = 3
FILE_MODE = 0o640

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
    items INTEGER NOT NULL DEFAULT 1,
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
ANSWERS_TABLE
CREATE INDEX IF NOT EXISTS problems_by_status ON problems (status);
"""
ANSWERS_TABLE = """
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    import_id INTEGER NOT NULL REFERENCES imports(id),
    key TEXT NOT NULL,
    member TEXT,
    county_code TEXT NOT NULL,
    run_seq INTEGER NOT NULL,
    action TEXT NOT NULL
        CHECK (action = '佐证' OR action = '变更' OR action = '删除' OR action = '保留'),
    new_value TEXT,
    note TEXT,
    fingerprint TEXT,
    sheet TEXT,
    row INTEGER
);
"""
SCHEMA = SCHEMA.replace("ANSWERS_TABLE", ANSWERS_TABLE)
# Schema 1 → 2: answers per record of a group (member, 保留, 更正后的值), items per county, and
# no identity (an ID number, or a name with a birth date) kept with a problem.
_ANSWER_COLUMNS_V1 = (
    "id, import_id, key, county_code, run_seq, action, note, fingerprint, sheet, row"
)
MIGRATE_1_TO_2 = (
    "ALTER TABLE answers RENAME TO answers_v1",
    ANSWERS_TABLE,
    f"INSERT INTO answers ({_ANSWER_COLUMNS_V1}) SELECT {_ANSWER_COLUMNS_V1} FROM answers_v1",
    "DROP TABLE answers_v1",
    "ALTER TABLE problem_counties ADD COLUMN items INTEGER NOT NULL DEFAULT 1",
    "UPDATE problems SET identity = NULL",
    "ALTER TABLE problems DROP COLUMN identity",
)
# Schema 2 → 3: the answers' action checked by comparisons instead of ``IN (…)``, which SQLite
# evaluated through a temporary table for every inserted answer (two fifths of an import's
# writing). The table is rebuilt with its ids and its AUTOINCREMENT counter as they were.
MIGRATE_2_TO_3 = (
    "ALTER TABLE answers RENAME TO answers_v2",
    ANSWERS_TABLE,
    "INSERT INTO answers SELECT * FROM answers_v2",
    "DELETE FROM sqlite_sequence WHERE name = 'answers'",
    "INSERT INTO sqlite_sequence (name, seq)"
    " SELECT 'answers', seq FROM sqlite_sequence WHERE name = 'answers_v2'",
    "DROP TABLE answers_v2",
)


def ledger_path(out_root: Path, path: Path | None = None) -> Path:
    """The ledger of an output root: ``path`` if given, else ``<out_root>/ledger.sqlite``."""
    return Path(path) if path is not None else Path(out_root) / LEDGER_NAME


def _schema_version(connection: sqlite3.Connection) -> int | None:
    """The ledger's schema version; None for a new (empty) file."""
    known = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if known is None:
        return None
    row = connection.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def _create_private(path: Path) -> None:
    """An empty file of mode 0o640 for SQLite to fill, so the ledger is never readable by
    others, not even between its creation and a chmod (SQLite gives its journal the same mode)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(descriptor)


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create, or bring to the current schema) the ledger; transactions are explicit
    (``BEGIN IMMEDIATE``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _create_private(path)
    os.chmod(path, FILE_MODE)
    connection = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA journal_mode = DELETE")
    connection.execute("PRAGMA synchronous = FULL")
    # A run or an import touches keys all over the ledger's indexes: pages it has read once stay
    # in memory for the rest of the transaction (up to 256 MB), temporary tables never hit disk.
    connection.execute("PRAGMA cache_size = -262144")
    connection.execute("PRAGMA temp_store = MEMORY")
    # Deleted content is overwritten, not left in free pages.
    connection.execute("PRAGMA secure_delete = ON")
    migrated = False
    with transaction(connection):
        version = _schema_version(connection)
        if version == 1:
            # Creates the answers table of the current schema: nothing of 2 → 3 is left to do.
            for statement in MIGRATE_1_TO_2[:-1]:
                connection.execute(statement)
            try:
                connection.execute(MIGRATE_1_TO_2[-1])
            except sqlite3.OperationalError:  # SQLite before 3.35: the column stays, emptied
                pass
            migrated = True
        elif version == 2:
            for statement in MIGRATE_2_TO_3:
                connection.execute(statement)
        if version is not None and version < SCHEMA_VERSION:
            connection.execute(
                "UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION),)
            )
        elif version is not None and version > SCHEMA_VERSION:
            raise ValueError(f"答复台账 {path} 的格式（{version}）比本程序新，请升级本程序")
        for statement in filter(None, (s.strip() for s in SCHEMA.split(";"))):
            connection.execute(statement)
        connection.execute("DROP INDEX IF EXISTS answers_by_key")
        connection.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
    if migrated:
        connection.execute("VACUUM")
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
