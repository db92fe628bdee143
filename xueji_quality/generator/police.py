"""The police's side of a generated roster: a registry extract, a result file, and the truth.

``write_police(out_dir, seed, province)`` reads the roster ``write_sample`` wrote into
``out_dir`` (and its truth files) and writes beside it:

- ``registry.parquet``: a population registry extract (公民身份号码, 姓名, 性别, 出生日期, 人员状态,
  户籍地址码): the students' true identities, plus residents not in school;
- ``police_results.csv``: the request/result form, one line per request line of the roster
  (请求编号, 公民身份号码, 姓名, 身份证号比对结果, 姓名比对结果 as codes 01-04, 人员状态 in words);
- ``truth_police.csv``: record_id, rule, kind, expected (the suggestion the check should give:
  the registry's name or number; empty where it must show none).

The roster and its truth files are not touched, and everything here is drawn from its own random
stream (``numpy.random.default_rng([seed, 16])``), so a roster is the same bytes with or without
its police files.

A roster of more than a million rows (``build.CHUNK_ROWS``, the pieces the roster generator
builds) is read and answered a piece at a time: ``police_pieces`` cuts it where no student's
rows are parted, each piece has its own stream (``[seed, 16, piece]`` after the first), and no
resident or near number takes a number the roster or an earlier piece's registry rows hold.
The files are appended piece by piece; rates are shares of each piece.

What the registry says about a student (the truth, by construction):

- a student's identity is the ID number of the roster (normalised as a run reads it) with sex
  and birth date from the number; a number shared by several rows is one person, whose name is
  that of a row with a clean name;
- numbers the roster generator made up (an address code never issued: ID_REGION_UNKNOWN) are
  not in the registry: POLICE_ID_NOT_FOUND, kind ``made_up``;
- a number failing its check character (ID_CHECKSUM) belongs to a person the registry holds
  under the right number (the original of a mistyped copy, or the number with its check
  character corrected): ID_CHECKSUM, kind ``registry_hint``, expected that number (the truth
  does not look for a namesake one edit away: in a registry of 25 million, about 1 hint in
  7,000 has one, and the check rightly suggests nothing there);
- a roster name with ``?`` (a NAME_CHARS error) stands for a rare character the registry has
  (龑 䶮 堃 …): POLICE_NAME_MISMATCH ``rare_placeholder``; a name with a Latin letter or a digit
  is ``different``; the copy of a ``name_homophone`` duplicate is ``homophone``.

Planted on students with no other problem and a number of their own, shares of the roster's
rows (``POLICE_RATES``; a class with a positive share is planted at least once from 1,000 rows):

========================  ======  ====================================================
kind                      share   registry side
========================  ======  ====================================================
absent                    0.002   the student is not in the registry
absent_near               0.001   not under this number; the same name, sex and birth
                                  date under a number two characters away
homophone                 0.002   one given-name character a homophone (伟/玮)
variant                   0.001   one character in its traditional form (温/溫)
different                 0.001   another person's name (the number may be theirs)
cancelled, dead           0.0005  人员状态 注销, 死亡
moved                     0.002   人员状态 迁出 (not a problem)
separator                 0.5     of the students with a ``·`` name: the registry writes
                                  the separator otherwise (• ・ . ． blank, or none):
                                  not a problem
pending                   0.001   of the request lines: 比对失败 (04) in the result file
residents                 0.3     residents not in school, per student in the registry
========================  ======  ====================================================

The registry's names come from ``police_names``; its residents, the near numbers and the result
file from ``police_registry``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xueji_quality import normalize
from xueji_quality.generator import names as nm
from xueji_quality.generator.build import CHUNK_ROWS
from xueji_quality.generator.police_names import (
    ARROW_STRING,
    SEPARATORS,
    TRADITIONAL,
    derived_names,
    member,
    name_truth,
    other_names,
    replace_one,
    same_names,
)
from xueji_quality.generator.police_pieces import (
    key_numbers,
    pieces,
    roster_plan,
)
from xueji_quality.generator.police_registry import (
    near_number,
    resident_people,
    result_file,
    sex_and_birth,
)
from xueji_quality.police import exchange, names, registry
from xueji_quality.police.keys import id_values
from xueji_quality.rules import checks
from xueji_quality.standards import resident_id

POLICE_RATES: dict[str, float] = {
    "absent": 0.002,
    "absent_near": 0.001,
    "homophone": 0.002,
    "variant": 0.001,
    "different": 0.001,
    "cancelled": 0.0005,
    "dead": 0.0005,
    "moved": 0.002,
    "separator": 0.5,
    "pending": 0.001,
    "residents": 0.3,
}
# Planted on whole students, in this order (each takes its rows from what the earlier left).
PLANTED_KINDS = ("absent", "absent_near", "homophone", "variant", "different")
STATUS_KINDS = {"cancelled": registry.CANCELLED, "dead": registry.DEAD, "moved": registry.MOVED}
TRUTH_COLUMNS = ("record_id", "rule", "kind", "expected")
REGISTRY_HEADERS = {
    "id_number": "公民身份号码",
    "name": "姓名",
    "sex": "性别",
    "birth_date": "出生日期",
    "status": "人员状态",
    "address_code": "户籍地址码",
}


@dataclass(frozen=True)
class PoliceSample:
    """Registry extract and result file (Chinese headers, text), and the truth about them."""

    registry: pd.DataFrame
    results: pd.DataFrame
    truth: pd.DataFrame


def _count(rate: float, rows: int) -> int:
    count = int(round(rate * rows))
    return max(count, 1) if rate > 0 and rows >= 1000 else count


def _truth(record_id, rule: str, kind: str, expected=None) -> pd.DataFrame:
    record_id = np.asarray(record_id, dtype=object)
    return pd.DataFrame(
        {
            "record_id": record_id,
            "rule": rule,
            "kind": kind,
            "expected": expected if expected is not None else pd.NA,
        },
        index=range(len(record_id)),
    )


def police_sample(
    roster: pd.DataFrame,
    truth_errors: pd.DataFrame,
    truth_duplicates: pd.DataFrame,
    seed: int,
    province: str,
    rates: dict[str, float] | None = None,
    *,
    piece: int = 0,
    elsewhere: np.ndarray | None = None,
) -> PoliceSample:
    """The registry extract, result file and truth of a canonical roster
    (``police_pieces.canonical_roster``) with the truth files the roster generator wrote (see the module docstring).

    For one piece of a large roster (``police_pieces``): ``piece`` numbers its random stream
    (0, the first, is the stream of a roster in one piece), and ``elsewhere`` (sorted int64) are the
    numbers of the whole roster and of the registry written so far, which no resident and no
    near number may take."""
    unknown = set(rates or {}) - set(POLICE_RATES)
    if unknown:
        raise ValueError(f"未知的比例键: {sorted(unknown)}")
    rates = POLICE_RATES | dict(rates or {})
    rng = np.random.default_rng([seed, 16] if piece == 0 else [seed, 16, piece])
    frame = roster.reset_index(drop=True)
    rows = len(frame)
    record = frame["record_id"].astype("string").to_numpy(dtype=object)
    ids = frame["id_number"].astype("string")
    sent = exchange.sendable(frame)
    erred = truth_errors.groupby("field")["record_id"].agg(set)
    id_error = member(record, list(erred.get("id_number", set())))
    any_error = member(record, truth_errors["record_id"].to_numpy(dtype=object))
    paired = member(
        record,
        np.r_[truth_duplicates["record_id_a"], truth_duplicates["record_id_b"]].astype(object),
    )
    homophone_pairs = truth_duplicates[truth_duplicates["kind"] == "name_homophone"]
    in_homophone_pair = member(
        record, np.r_[homophone_pairs["record_id_a"], homophone_pairs["record_id_b"]].astype(object)
    )
    key = names.name_key(frame["name"].astype("string"))
    clean = key.str.fullmatch(f"{normalize.HAN_CHARS}+").fillna(False).to_numpy(dtype=bool)

    # The students in the registry: one person per number, named after a row with a clean name.
    student = sent & ~id_error
    candidates = pd.DataFrame({"id": ids, "spoiled": ~clean, "pos": np.arange(rows)})[student]
    candidates = candidates.sort_values(["id", "spoiled", "pos"], kind="stable")
    first_of_id = candidates.drop_duplicates("id")["pos"].to_numpy()
    people = pd.DataFrame(
        {
            "id_number": ids.iloc[first_of_id].to_numpy(dtype=object),
            "name": frame["name"].iloc[first_of_id].to_numpy(dtype=object),
            "source": first_of_id,
        }
    )
    spoiled = ~clean[first_of_id]
    people.loc[spoiled, "name"] = derived_names(people.loc[spoiled, "name"].to_numpy(), rng)
    people["status"] = registry.NORMAL

    # Numbers failing their check: the person is in the registry under the right number.
    failing = (checks.id_status(frame["id_type"], frame["id_number"]) == checks.ID_BAD_CHECKSUM) & (
        checks.present(frame["name"]).to_numpy()
    )
    by_record = pd.Series(np.arange(rows), index=record)
    partner = pd.concat(
        [
            truth_duplicates.set_index("record_id_a")["record_id_b"],
            truth_duplicates.set_index("record_id_b")["record_id_a"],
        ]
    )
    partner = partner[~partner.index.duplicated()]
    failing_rows = np.flatnonzero(failing)
    partner_row = by_record.reindex(partner.reindex(record[failing_rows]).to_numpy()).to_numpy()
    copied = ~np.isnan(partner_row)
    corrected = ids.iloc[failing_rows].str.slice(0, 17)
    corrected = resident_id.with_check_digit_column(corrected).astype(object)
    partner_ids = np.full(len(failing_rows), None, dtype=object)
    partner_ids[copied] = ids.iloc[partner_row[copied].astype(int)].to_numpy(dtype=object)
    true_ids = np.where(copied, partner_ids, corrected)
    own = ~copied & ~pd.Series(corrected).isin(people["id_number"]).to_numpy()
    if own.any():
        people = pd.concat(
            [
                people,
                pd.DataFrame(
                    {
                        "id_number": corrected[own],
                        "name": derived_names(
                            frame["name"].iloc[failing_rows[own]].to_numpy(dtype=object), rng
                        ),
                        "source": failing_rows[own],
                        "status": registry.NORMAL,
                    }
                ),
            ],
            ignore_index=True,
        )

    # Students chosen for the planted kinds: a number and a clean name of their own.
    id_count = ids.map(ids.value_counts()).fillna(0).to_numpy()
    eligible = student & ~any_error & ~paired & (id_count == 1)
    plain = np.flatnonzero(eligible & clean)
    dotted = np.flatnonzero(
        eligible
        & frame["name"]
        .astype(ARROW_STRING)
        .str.contains(normalize.MIDDLE_DOT, regex=False)
        .fillna(False)
        .to_numpy(dtype=bool)
    )
    order = rng.permutation(plain)
    available = np.ones(len(order), dtype=bool)
    pool_names = frame["name"].iloc[order].astype(ARROW_STRING)
    fits = {
        "homophone": pool_names.str.slice(1).str.contains("[" + "".join(nm.HOMOPHONES) + "]"),
        "variant": pool_names.str.contains("[" + "".join(TRADITIONAL) + "]"),
    }
    registry_row = pd.Series(people.index, index=people["id_number"])
    truth_parts: list[pd.DataFrame] = []
    chosen: dict[str, np.ndarray] = {}
    for kind in (*PLANTED_KINDS, *STATUS_KINDS):
        can = available.copy()
        if kind in fits:
            can &= fits[kind].fillna(False).to_numpy(dtype=bool)
        picked = np.flatnonzero(can)[: _count(rates[kind], rows)]
        available[picked] = False
        chosen[kind] = order[picked]

    # Where each chosen student sits in the registry.
    def at(kind: str) -> np.ndarray:
        return registry_row.reindex(ids.iloc[chosen[kind]].to_numpy(dtype=object)).to_numpy()

    gone = np.r_[at("absent"), at("absent_near")].astype(int)
    truth_parts.append(_truth(record[chosen["absent"]], "POLICE_ID_NOT_FOUND", "absent"))
    near_ids = near_number(
        ids.iloc[chosen["absent_near"]].reset_index(drop=True),
        pd.concat([ids.dropna(), people["id_number"].astype("string")]),
        elsewhere,
    )
    has_near = near_ids.notna().to_numpy()
    twins = people.loc[at("absent_near")[has_near]].copy()
    twins["id_number"] = near_ids[has_near].to_numpy(dtype=object)
    truth_parts.append(
        _truth(
            record[chosen["absent_near"]],
            "POLICE_ID_NOT_FOUND",
            "absent_near",
            np.where(has_near, near_ids.to_numpy(dtype=object), None),
        )
    )
    for kind, table in (("homophone", nm.HOMOPHONES), ("variant", TRADITIONAL)):
        where = at(kind)
        current = people.loc[where, "name"].to_numpy(dtype=object)
        if kind == "homophone":  # the given name, never the surname
            given = replace_one(np.array([v[1:] for v in current], dtype=object), table, rng)
            changed = np.array(
                [v[:1] + g if g is not None else None for v, g in zip(current, given, strict=True)],
                dtype=object,
            )
        else:
            changed = replace_one(current, table, rng)
        people.loc[where, "name"] = changed
        truth_parts.append(_truth(record[chosen[kind]], "POLICE_NAME_MISMATCH", kind, changed))
    where = at("different")
    people.loc[where, "name"] = other_names(
        frame["name"].iloc[chosen["different"]].to_numpy(dtype=object), rng
    )
    truth_parts.append(_truth(record[chosen["different"]], "POLICE_NAME_MISMATCH", names.DIFFERENT))
    for kind, status in STATUS_KINDS.items():
        people.loc[at(kind), "status"] = status
        rule = "POLICE_ID_CANCELLED" if status in (registry.CANCELLED, registry.DEAD) else ""
        truth_parts.append(_truth(record[chosen[kind]], rule, kind))
    separated = dotted[rng.random(len(dotted)) < rates["separator"]]
    where = registry_row.reindex(ids.iloc[separated].to_numpy(dtype=object)).to_numpy()
    marks = rng.choice(len(SEPARATORS), size=len(where))
    people.loc[where, "name"] = [
        v.replace(normalize.MIDDLE_DOT, SEPARATORS[m])
        for v, m in zip(people.loc[where, "name"], marks, strict=True)
    ]
    truth_parts.append(_truth(record[separated], "", "separator"))
    people = pd.concat([people.drop(index=gone), twins], ignore_index=True)

    # What every other row sent gets: made-up numbers are not found; names as they differ.
    held = pd.Series(people["name"].to_numpy(), index=people["id_number"])
    held = held[~held.index.duplicated()]
    planted = member(record, pd.concat(truth_parts)["record_id"].to_numpy(dtype=object))
    made_up = sent & id_error & ~ids.isin(held.index).to_numpy()
    truth_parts.append(_truth(record[made_up], "POLICE_ID_NOT_FOUND", "made_up"))
    others = np.flatnonzero(sent & ~id_error & ~planted & ids.isin(held.index).to_numpy())
    kind, expected = name_truth(
        frame["name"].iloc[others].reset_index(drop=True).astype("string"),
        pd.Series(held.reindex(ids.iloc[others].to_numpy(dtype=object)).to_numpy(), dtype="string"),
        in_homophone_pair[others],
    )
    noted = kind != ""
    for k in np.unique(kind[noted]):
        mine = noted & (kind == k)
        truth_parts.append(
            _truth(
                record[others[mine]],
                "POLICE_NAME_MISMATCH" if k != "unknown" else "",
                k,
                expected[mine],
            )
        )
    hint = held.reindex(true_ids).to_numpy()
    hinted = pd.notna(hint) & same_names(
        pd.Series(hint, dtype="string"), frame["name"].iloc[failing_rows]
    )
    truth_parts.append(
        _truth(record[failing_rows[hinted]], "ID_CHECKSUM", "registry_hint", true_ids[hinted])
    )

    residents = resident_people(
        rng,
        int(round(rates["residents"] * len(people))),
        province,
        np.r_[ids.dropna().to_numpy(dtype=object), people["id_number"].to_numpy(dtype=object)],
        elsewhere,
    )
    sex, birth = sex_and_birth(people["id_number"].astype("string"))
    people = people.assign(sex=sex, birth_date=birth).drop(columns="source")
    table = pd.concat([people, residents], ignore_index=True)
    table = table.iloc[rng.permutation(len(table))].reset_index(drop=True)
    extract = pd.DataFrame(
        {
            REGISTRY_HEADERS["id_number"]: table["id_number"],
            REGISTRY_HEADERS["name"]: table["name"],
            REGISTRY_HEADERS["sex"]: table["sex"],
            REGISTRY_HEADERS["birth_date"]: table["birth_date"],
            REGISTRY_HEADERS["status"]: table["status"].map(registry.STATUS_WORDS),
            REGISTRY_HEADERS["address_code"]: table["id_number"]
            .astype(ARROW_STRING)
            .str.slice(0, 6)
            .astype("string"),
        }
    ).astype("string")

    results, pending = result_file(frame, table, rates["pending"], rng)
    truth_parts.append(_truth(record[pending], "", "pending"))
    truth = pd.concat(truth_parts, ignore_index=True)
    truth = truth.sort_values(["record_id", "rule", "kind"], ignore_index=True)
    return PoliceSample(extract, results, truth.astype("string"))


def write_police(
    out_dir: Path | str,
    seed: int,
    province: str,
    rates: dict[str, float] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> dict:
    """Write registry.parquet, police_results.csv and truth_police.csv beside the roster
    ``write_sample`` wrote into ``out_dir``; return their paths and counts.

    A roster of more than ``chunk_rows`` rows is read and answered a piece at a time
    (``police_pieces``), each piece's registry rows, result lines and truth appended to the
    files before the next piece is read, so memory is that of one piece and the numbers."""
    out_dir = Path(out_dir)
    plan = roster_plan(out_dir, chunk_rows)
    truth_errors = pd.read_csv(out_dir / "truth_errors.csv", dtype="string", keep_default_na=False)
    truth_duplicates = pd.read_csv(
        out_dir / "truth_duplicates.csv", dtype="string", keep_default_na=False
    )
    error_at = key_numbers(truth_errors["record_id"]) - 1
    pair_at = key_numbers(truth_duplicates["record_id_a"]) - 1
    paths = {
        "registry": out_dir / "registry.parquet",
        "police_results": out_dir / "police_results.csv",
        "truth_police": out_dir / "truth_police.csv",
    }
    held = plan.held if len(plan.cuts) else None
    counts = {"registry_rows": 0, "result_lines": 0}
    kinds: dict[str, int] = {}
    writer: pq.ParquetWriter | None = None
    try:
        for index, (first, roster) in enumerate(pieces(plan)):
            last = first + len(roster)
            if len(plan.cuts):
                errors = truth_errors[(error_at >= first) & (error_at < last)]
                duplicates = truth_duplicates[(pair_at >= first) & (pair_at < last)]
            else:
                errors, duplicates = truth_errors, truth_duplicates
            sample = police_sample(
                roster,
                errors,
                duplicates,
                seed,
                str(province).zfill(2),
                rates,
                piece=index,
                elsewhere=held,
            )
            table = pa.Table.from_pandas(sample.registry, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(paths["registry"], table.schema)
            writer.write_table(table.cast(writer.schema))
            more = {"mode": "a", "header": False} if index else {}
            with paths["police_results"].open("a" if index else "w", encoding="utf-8") as out:
                if not index:
                    out.write("\ufeff")  # UTF-8 with BOM, as Excel wants it
                sample.results.to_csv(out, index=False, header=not index)
            sample.truth.to_csv(paths["truth_police"], index=False, encoding="utf-8", **more)
            counts["registry_rows"] += len(sample.registry)
            counts["result_lines"] += len(sample.results)
            for kind, count in sample.truth["kind"].value_counts().items():
                kinds[str(kind)] = kinds.get(str(kind), 0) + int(count)
            if held is not None:
                given, _ = id_values(pa.array(sample.registry[REGISTRY_HEADERS["id_number"]].array))
                held = np.union1d(held, given[given >= 0])
            del sample, roster
    finally:
        if writer is not None:
            writer.close()
    return {
        **{name: str(path) for name, path in paths.items()},
        **counts,
        "truth_kinds": kinds,
    }
