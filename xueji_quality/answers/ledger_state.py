"""What a run reads of the answer ledger (see :mod:`xueji_quality.answers.ledger`): every problem
it knows with the answer that counts for it, and the counties of the keys a run may find gone.

Which answer counts (the rules are :mod:`xueji_quality.answers.status`'s): the latest answer to
each record of a key (an answer to a whole group is one record), given on a run since the key
was (re)opened; of those, a 删除 or 变更 (the latest), else a 佐证 (the latest), else a 保留. The
answers are read as stored and chosen by integer codes (a key's position among the problems, a
record's among the answered records): SQLite grouping the whole table by key and record in a
temporary b-tree cost several times the reading.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xueji_quality.answers import ledger


def known_problems(connection: sqlite3.Connection) -> pd.DataFrame:
    """Known problems, each with the answer that counts (see the module docstring): columns
    problem_key, previous_status, opened_seq, first_seen_date, last_seen_seq, action and
    answered_fingerprint (NaN where no answer decides)."""
    known = ledger.read_frame(
        connection,
        "SELECT key AS problem_key, status AS previous_status, opened_seq, first_seen_date,"
        " last_seen_seq FROM problems",
    )
    answers = connection.execute(
        "SELECT id, key, member, run_seq, action, fingerprint FROM answers ORDER BY id"
    ).fetchall()
    action = np.full(len(known), np.nan, dtype=object)
    answered_fingerprint = np.full(len(known), np.nan, dtype=object)
    if answers and len(known):
        ids, keys, members, run_seqs, actions, fingerprints = zip(*answers, strict=True)
        actions = np.array(actions, dtype=object)
        known_row, chosen = deciding_answers(
            known["problem_key"].to_numpy(dtype=object),
            known["opened_seq"].to_numpy(dtype=np.int64),
            np.array(ids, dtype=np.int64),
            keys,
            members,
            np.array(run_seqs, dtype=np.int64),
            actions,
        )
        action[known_row] = actions[chosen]
        answered_fingerprint[known_row] = np.array(fingerprints, dtype=object)[chosen]
    return known.assign(action=action, answered_fingerprint=answered_fingerprint)


def keys_of_counties(connection: sqlite3.Connection, counties: Sequence[str]) -> pd.Series:
    """The keys the ledger lists for any of these counties (each once)."""
    frame = ledger.read_frame(
        connection,
        "SELECT DISTINCT key FROM problem_counties"
        " WHERE county_code IN (SELECT value FROM json_each(?))",
        (json.dumps(sorted({str(c) for c in counties})),),
    )
    return frame["key"] if len(frame) else pd.Series([], dtype=object)


def counties_of(connection: sqlite3.Connection, keys: pd.Series) -> pd.DataFrame:
    """problem_key, county_code, items of the given keys' counties."""
    connection.execute("CREATE TEMP TABLE IF NOT EXISTS gone_keys (key TEXT PRIMARY KEY)")
    connection.execute("DELETE FROM gone_keys")
    values = np.sort(keys.astype(object).to_numpy().astype(str))
    connection.executemany("INSERT OR IGNORE INTO gone_keys VALUES (?)", zip(values.tolist()))
    frame = ledger.read_frame(
        connection,
        "SELECT c.key AS problem_key, c.county_code, c.items FROM gone_keys g"
        " JOIN problem_counties c ON c.key = g.key",
    )
    connection.execute("DROP TABLE temp.gone_keys")
    return frame


# Which answer to a group's records decides its status: acting first, then proving.
_ANSWER_RANK = {"删除": 0, "变更": 0, "佐证": 1, "保留": 2}


def deciding_answers(
    known_keys: np.ndarray,
    opened_seq: np.ndarray,
    ids: np.ndarray,
    keys: Sequence[str],
    members: Sequence[str | None],
    run_seqs: np.ndarray,
    actions: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The answer that decides each answered key (the rule is the module docstring's).

    ``known_keys`` / ``opened_seq``: the ledger's problems; the answers' columns in id order.
    Returns the deciding answers' keys as positions in ``known_keys`` and the answers' positions.
    """
    row = pc.index_in(pa.array(keys, pa.string()), value_set=pa.array(known_keys, pa.string()))
    row = row.fill_null(-1).to_numpy()
    since = np.flatnonzero((row >= 0) & (run_seqs >= opened_seq[row]))
    if len(since) == 0:
        return since, since
    member_codes = pc.dictionary_encode(pa.array(members, pa.string())).indices
    member = member_codes.fill_null(-1).to_numpy().astype(np.int64) + 1
    group = row.astype(np.int64) * (int(member.max(initial=0)) + 1) + member
    # A stable sort by record keeps each record's answers in id order: its last is its latest.
    by_record = since[np.argsort(group[since], kind="stable")]
    grouped = group[by_record]
    latest = by_record[np.r_[grouped[1:] != grouped[:-1], True]]
    rank = pd.Series(actions[latest]).map(_ANSWER_RANK).fillna(3).to_numpy()
    # Per key: the lowest rank first, the latest (highest id) of it first.
    order = np.lexsort((-ids[latest], rank, row[latest]))
    by_key = row[latest][order]
    chosen = latest[order[np.r_[True, by_key[1:] != by_key[:-1]]]]
    return row[chosen], chosen
