"""The national side of bench/unseen.py: provinces made without the project's generator, with
students registered in two of them, twins and namesakes across them, and the scoring of a
national run's returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from unseen_roster import GIVEN, HOMOPHONES, OTHER_PROVINCE_COUNTIES, SURNAMES, make, with_check


def make_national(rows: int, out: Path, seed: int, provinces: list[str]) -> None:
    """One roster per province (``make``), then students registered in two provinces: a
    clean record of one province copied into the next one's roster at one of its schools, with
    the same ID, an ID with one digit changed, no ID, or a homophone name and no ID; and across
    the same two provinces twins (next sequence number, another given name) and namesakes (same
    name and birth date, another valid ID, guardian and school). truth_cross.csv and
    truth_cross_negatives.csv: province_a, key_a, province_b, key_b, kind."""
    rng = np.random.default_rng([seed, 17])
    for i, province in enumerate(provinces):
        make(rows, out / province, seed + i, province=province)
    _drop_ids_of_earlier_provinces(out, provinces)
    kinds = ["same_id", "id_typo", "missing_id", "homophone_missing_id"]
    # A twin's or namesake's new number must be nobody's yet (no repeated ID nobody planted).
    taken = set()
    for province in provinces:
        ids = pd.read_csv(out / province / "roster.csv", dtype=str, keep_default_na=False)[
            "身份证号码"
        ]
        taken |= set(ids[ids.str.len() == 18])
    truth, negatives = [], []
    per_kind = max(5, rows // 2000)
    for i, home in enumerate(provinces):
        away = provinces[(i + 1) % len(provinces)]
        folder = out / home
        roster = pd.read_csv(folder / "roster.csv", dtype=str, keep_default_na=False)
        planted = set(pd.read_csv(folder / "truth_errors.csv", dtype=str)["record_id"])
        for name in ("truth_duplicates.csv", "truth_hard_negatives.csv"):
            t = pd.read_csv(folder / name, dtype=str)
            planted |= set(t["record_id_a"]) | set(t["record_id_b"])
        clean = roster[
            ~roster["序号"].isin(planted)
            & (roster["证件类型"] == "1")
            & roster["身份证号码"].str.fullmatch(r"[0-9]{17}[0-9X]")
            & ~roster["学生姓名"].str.contains("·")
        ]
        chosen = clean.sample(per_kind * (len(kinds) + 2), random_state=seed + i)
        target = pd.read_csv(out / away / "roster.csv", dtype=str, keep_default_na=False)
        hosts = target.sample(len(chosen), random_state=seed + 100 + i, replace=True)
        copies = chosen.copy()
        for column in ("学校代码", "学校名称", "学校所在地", "班级名称"):
            copies[column] = hosts[column].to_numpy()
        copies["序号"] = [f"X{home}{n:07d}" for n in range(len(copies))]
        ids = copies["身份证号码"].to_numpy().astype(str)
        kind_of = np.repeat(kinds + ["twins", "namesakes"], per_kind)
        out_ids, names, guardians = (
            ids.astype(object),
            copies["学生姓名"].to_numpy().astype(object),
            copies["监护人"].to_numpy().astype(object),
        )
        for k, (kind, number, name) in enumerate(zip(kind_of, ids, names, strict=True)):
            if kind == "id_typo":
                p = int(rng.integers(0, 17))
                out_ids[k] = (
                    number[:p]
                    + str((int(number[p]) + 1 + int(rng.integers(0, 8))) % 10)
                    + number[p + 1 :]
                )
            elif kind in ("missing_id", "homophone_missing_id"):
                out_ids[k] = ""
                if kind == "homophone_missing_id":
                    j = next((j for j in range(1, len(name)) if name[j] in HOMOPHONES), None)
                    if j is None:
                        kind_of[k] = "missing_id"
                    else:
                        names[k] = name[:j] + HOMOPHONES[name[j]] + name[j + 1 :]
            elif kind == "twins":
                seq = int(number[14:17])
                while out_ids[k] in taken:
                    seq = (seq + 2) % 1000
                    out_ids[k] = str(with_check(np.array([number[:14] + f"{seq:03d}"]))[0])
                taken.add(out_ids[k])
                names[k] = name[0] + "".join(rng.choice(GIVEN, 2))
            elif kind == "namesakes":
                other = rng.choice([c for c in OTHER_PROVINCE_COUNTIES if c[:2] != number[:2]])
                seq = (int(number[14:17]) + 2 * int(rng.integers(50, 400))) % 1000
                out_ids[k] = str(with_check(np.array([other + number[6:14] + f"{seq:03d}"]))[0])
                while out_ids[k] in taken:
                    seq = (seq + 2) % 1000
                    out_ids[k] = str(with_check(np.array([other + number[6:14] + f"{seq:03d}"]))[0])
                taken.add(out_ids[k])
                guardians[k] = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN, 2))
        copies["身份证号码"] = out_ids
        copies["全国学籍号"] = ["G" + v if v else "" for v in out_ids]
        copies["学生姓名"] = names
        copies["监护人"] = guardians
        copies.loc[copies["身份证号码"] == "", "证件类型"] = "Z"
        pd.concat([target, copies], ignore_index=True).to_csv(
            out / away / "roster.csv", index=False, encoding="utf-8"
        )
        table = pd.DataFrame(
            {
                "province_a": home,
                "key_a": chosen["序号"].to_numpy(),
                "province_b": away,
                "key_b": copies["序号"].to_numpy(),
                "kind": kind_of,
            }
        )
        truth.append(table[~table["kind"].isin(["twins", "namesakes"])])
        negatives.append(table[table["kind"].isin(["twins", "namesakes"])])
    pd.concat(truth).to_csv(out / "truth_cross.csv", index=False)
    pd.concat(negatives).to_csv(out / "truth_cross_negatives.csv", index=False)
    print(
        f"provinces {provinces}; cross-province pairs {sum(map(len, truth))}; "
        f"twins and namesakes {sum(map(len, negatives))}"
    )


def _drop_ids_of_earlier_provinces(out: Path, provinces: list[str]) -> None:
    """Each province is made on its own, and households in other provinces' counties can give
    two students of two provinces one ID number by chance: a repeated ID nobody planted (the
    national check rightly reports it). Such rows of a later province are dropped, and the
    province's truth files with them."""
    seen: set[str] = set()
    for province in provinces:
        folder = out / province
        roster = pd.read_csv(folder / "roster.csv", dtype=str, keep_default_na=False)
        ids = roster["身份证号码"]
        repeated = (ids.str.len() == 18) & ids.isin(seen)
        seen |= set(ids[ids.str.len() == 18])
        if not repeated.any():
            continue
        dropped = set(roster.loc[repeated, "序号"])
        roster[~repeated].to_csv(folder / "roster.csv", index=False, encoding="utf-8")
        for name in ("truth_duplicates.csv", "truth_hard_negatives.csv", "truth_errors.csv"):
            table = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
            keys = [c for c in ("record_id", "record_id_a", "record_id_b") if c in table.columns]
            keep = ~table[keys].isin(dropped).any(axis=1)
            table[keep].to_csv(folder / name, index=False, encoding="utf-8")
        print(
            f"province {province}: {len(dropped)} rows dropped, their ID held in an earlier province"
        )


def _roots(pairs: list[tuple[tuple[str, str], tuple[str, str]]]):
    """One student per set of registrations linked by ``pairs`` (copies of copies included)."""
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    return find


def score_national(national_dir: Path, truth: Path) -> None:
    """Pairs of a national run's returns against truth_cross.csv and its negatives."""
    found = set()
    for path in (national_dir / "returns").glob("*.parquet"):
        returns = pd.read_parquet(path)
        province = path.stem
        for key, other_p, other_k in zip(
            returns["record_key"],
            returns["other_province"],
            returns["other_record_key"],
            strict=True,
        ):
            found.add(frozenset([(province, str(key)), (str(other_p), str(other_k))]))
    pairs = pd.read_csv(truth / "truth_cross.csv", dtype=str)
    wanted = {
        frozenset([(a, k), (b, m)])
        for a, k, b, m in zip(
            pairs["province_a"], pairs["key_a"], pairs["province_b"], pairs["key_b"], strict=True
        )
    }
    hit = len(found & wanted)
    print(
        f"cross-province recall {hit / max(len(wanted), 1):.4f} ({hit}/{len(wanted)}); goal >= 0.99"
    )
    for kind, part in pairs.groupby("kind"):
        keys = {
            frozenset([(a, k), (b, m)])
            for a, k, b, m in zip(
                part["province_a"], part["key_a"], part["province_b"], part["key_b"], strict=True
            )
        }
        print(f"  {kind:22s} {len(found & keys)}/{len(keys)}")
    # Copies of one student within a province (the roster's own duplicates) can meet the other
    # province's copy too, and a copy can be copied on into a third province: a found pair is
    # right when both sides are one student.
    extra = found - wanted
    links = []
    for prov_dir in truth.iterdir():
        if (prov_dir / "truth_duplicates.csv").exists():
            t = pd.read_csv(prov_dir / "truth_duplicates.csv", dtype=str)
            links += [
                ((prov_dir.name, a), (prov_dir.name, b))
                for a, b in zip(t["record_id_a"], t["record_id_b"], strict=True)
            ]
    links += [
        ((a, k), (b, m))
        for a, k, b, m in zip(
            pairs["province_a"], pairs["key_a"], pairs["province_b"], pairs["key_b"], strict=True
        )
    ]
    root = _roots(links)
    one_student = sum(len({root(s) for s in pair}) == 1 for pair in extra)
    correct = len(found & wanted) + one_student
    print(
        f"  found beyond the truth's pairs: {len(extra)}, of them one student (a copy of a copy, "
        f"or a province's own duplicate): {one_student}"
    )
    print(
        f"cross-province precision {correct / max(len(found), 1):.4f} ({correct}/{len(found)}); goal >= 0.999"
    )
    negatives = pd.read_csv(truth / "truth_cross_negatives.csv", dtype=str)
    for kind, part in negatives.groupby("kind"):
        keys = {
            frozenset([(a, k), (b, m)])
            for a, k, b, m in zip(
                part["province_a"], part["key_a"], part["province_b"], part["key_b"], strict=True
            )
        }
        print(f"  {kind} linked: {len(found & keys)}/{len(keys)} (goal 0)")
