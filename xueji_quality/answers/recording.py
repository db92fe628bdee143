"""Writing a published run into the answer ledger (see :mod:`xueji_quality.answers.ledger`).

The run's items go into temporary tables once, in key order; every change to the ledger is then
one statement over them (problems listed or listed again, problems resolved, counties, fingerprint
versions), so the work per item is SQLite's, not a Python call's. All of it is one transaction.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality.answers import ledger

if TYPE_CHECKING:
    from xueji_quality.answers.status import LedgerResult

_TEMPORARY = (
    "CREATE TEMP TABLE run_items (key TEXT PRIMARY KEY, kind TEXT, rule TEXT, field TEXT,"
    " severity TEXT, status TEXT, reopen INTEGER, fingerprint TEXT) WITHOUT ROWID",
    "CREATE TEMP TABLE run_resolved (key TEXT PRIMARY KEY)",
    "CREATE TEMP TABLE run_counties (key TEXT, county_code TEXT)",
)
# ?1 run seq, ?2 run date. A key already known keeps first_seen; status_seq moves only when the
# status changes; opened_seq moves when the item was re-opened now (_REOPENED, after this).
_PROBLEMS = (
    "INSERT INTO problems (key, kind, rule, field, severity, first_seen_seq, first_seen_date,"
    " last_seen_seq, last_seen_date, opened_seq, status, status_seq)"
    " SELECT key, kind, rule, field, severity, ?1, ?2, ?1, ?2, ?1, status, ?1"
    " FROM run_items WHERE true ORDER BY key"
    " ON CONFLICT (key) DO UPDATE SET last_seen_seq = ?1, last_seen_date = ?2,"
    " status_seq = CASE WHEN status = excluded.status THEN status_seq ELSE ?1 END,"
    " status = excluded.status"
)
_REOPENED = (
    "UPDATE problems SET opened_seq = ?1 WHERE key IN (SELECT key FROM run_items WHERE reopen)"
)
_RESOLVED = (
    "UPDATE problems SET status = ?1, status_seq = ?2 WHERE key IN (SELECT key FROM run_resolved)"
)
_COUNTIES = (
    "INSERT INTO problem_counties (key, county_code, items)"
    " SELECT key, county_code, COUNT(*) FROM run_counties"
    " WHERE key IS NOT NULL AND county_code IS NOT NULL GROUP BY key, county_code"
    " ON CONFLICT (key, county_code) DO UPDATE SET items = excluded.items"
    " WHERE items != excluded.items"  # a row that stays as it was is not rewritten
)
# A key keeps its fingerprint version while it does not change between sightings; a changed
# (or first) fingerprint opens a version.
_VERSIONS_SEEN = (
    "UPDATE versions SET last_seen_seq = ?1"
    " WHERE key IN (SELECT key FROM run_items)"
    " AND fingerprint = (SELECT r.fingerprint FROM run_items r WHERE r.key = versions.key)"
    " AND first_seen_seq = (SELECT MAX(v.first_seen_seq) FROM versions v"
    " WHERE v.key = versions.key)"
)
_VERSIONS_NEW = (
    "INSERT INTO versions (key, fingerprint, first_seen_seq, last_seen_seq)"
    " SELECT r.key, r.fingerprint, ?1, ?1 FROM run_items r WHERE NOT EXISTS"
    " (SELECT 1 FROM versions v WHERE v.key = r.key AND v.last_seen_seq = ?1) ORDER BY r.key"
)


def _values(column: pd.Series, order: np.ndarray | None = None) -> list:
    """A column as Python values for SQLite (in ``order`` if given), missing values None."""
    values = column.astype(object).to_numpy()
    # Missing values found in the column's own order: the strings lie in memory as it made them.
    values = np.where(pd.isna(values), None, values)
    return (values if order is None else values[order]).tolist()


def _key_order(keys: pd.Series) -> np.ndarray:
    """Positions that sort the keys (UTF-8 bytes, SQLite's BINARY order)."""
    return pc.sort_indices(pa.array(keys.astype(object).to_numpy(), pa.string())).to_numpy()


def _load(connection, result: LedgerResult) -> None:
    """The run's items, resolved keys and items' (key, county) into temporary tables (the
    tables' keys put them in order, SQLite counts the items per county)."""
    for statement in ("run_items", "run_resolved", "run_counties"):
        connection.execute(f"DROP TABLE IF EXISTS temp.{statement}")
    for statement in _TEMPORARY:
        connection.execute(statement)
    items = result.items
    # In key order: each row is appended to the table's b-tree instead of inserted at random.
    order = _key_order(items["problem_key"])
    connection.executemany(
        "INSERT INTO run_items VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        zip(
            _values(items["problem_key"], order),
            _values(items["kind"], order),
            _values(items["rule"], order),
            _values(items["field"], order),
            _values(items["severity"], order),
            _values(items["status"], order),
            items["reopen"].astype(bool).to_numpy()[order].astype(int).tolist(),
            _values(items["fingerprint"], order),
            strict=True,
        ),
    )
    resolved = np.sort(result.resolved["problem_key"].astype(object).to_numpy().astype(str))
    connection.executemany("INSERT INTO run_resolved VALUES (?)", zip(resolved.tolist()))
    connection.executemany(
        "INSERT INTO run_counties VALUES (?, ?)",
        zip(
            _values(result.statuses["problem_key"]),
            _values(result.statuses["county_code"]),
            strict=True,
        ),
    )


def record_run(result: LedgerResult) -> int:
    """Write the run into the ledger in one transaction; return its seq.

    Call it after the run is published: a run that failed never enters the ledger.
    """
    run_date = result.run_date.isoformat()
    connection = ledger.connect(result.ledger_file)
    try:
        with ledger.transaction(connection):
            if ledger.run_seq(connection, result.run_id) is not None:
                raise ValueError(f"运行 {result.run_id} 已记入答复台账")
            cursor = connection.execute(
                "INSERT INTO runs (run_id, province, run_date, recorded_at, counts)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    result.run_id,
                    result.province,
                    run_date,
                    result.read_at
                    or datetime.now().astimezone().isoformat(timespec="microseconds"),
                    json.dumps(result.counts, ensure_ascii=False, sort_keys=True),
                ),
            )
            seq = int(cursor.lastrowid)
            _load(connection, result)
            connection.execute(_PROBLEMS, (seq, run_date))
            connection.execute(_REOPENED, (seq,))
            connection.execute(_RESOLVED, (ledger.RESOLVED, seq))
            connection.execute(_COUNTIES)
            connection.execute(_VERSIONS_SEEN, (seq,))
            connection.execute(_VERSIONS_NEW, (seq,))
            for table in ("run_items", "run_resolved", "run_counties"):
                connection.execute(f"DROP TABLE temp.{table}")
    finally:
        connection.close()
    return seq
