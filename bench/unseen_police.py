"""The police side of bench/unseen.py: a registry extract made without the project's generator
(the true identities of a roster's students, residents not in school, planted police classes)
and the scoring of a run's police items against it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from unseen_roster import GIVEN, HOMOPHONES, SURNAMES, days_to_ymd, with_check

# Characters and the traditional or variant form a registry holds for them (形近字/异体字/繁简).
VARIANTS = {"伟": "偉", "丽": "麗", "华": "華", "军": "軍", "红": "紅", "辉": "輝", "杰": "傑",
            "涛": "濤", "鹏": "鵬", "晓": "曉", "静": "靜", "凯": "凱", "刚": "剛", "国": "國"}
RARE = ["堃", "喆", "昇", "淼", "犇", "燚", "垚", "鑫"]
POLICE_KINDS: dict[str, str | None] = {
    "absent": "POLICE_ID_NOT_FOUND",
    "homophone": "POLICE_NAME_MISMATCH",
    "variant": "POLICE_NAME_MISMATCH",
    "rare_placeholder": "POLICE_NAME_MISMATCH",
    "different": "POLICE_NAME_MISMATCH",
    "cancelled": "POLICE_ID_CANCELLED",
    "dead": "POLICE_ID_CANCELLED",
    "separator": None,
    "moved": None,
}
POLICE_RATE = 0.001  # per kind


def make_registry(roster: pd.DataFrame, clean: np.ndarray, rng: np.random.Generator,
                  out: Path) -> None:
    """registry.parquet: the true identity of every resident ID of the roster (mainland type 1,
    valid shape), residents not in school (30% more), and planted police classes; the roster
    changes only where a placeholder stands for a rare character. truth_police.csv lists them."""
    # The number as the police hold it: the export's full-width digits and lowercase x undone.
    ids = (roster["id_number"].astype(str)
           .str.translate(str.maketrans("０１２３４５６７８９ｘ", "0123456789X")).str.upper())
    resident = (roster["id_type"] == "1") & ids.str.fullmatch(r"[0-9]{17}[0-9X]")
    people = roster[resident]
    registry = pd.DataFrame({
        "公民身份号码": ids[resident].to_numpy(), "姓名": people["name"].to_numpy(),
        "性别": np.where(people["sex"] == "1", "男", "女"),
        "出生日期": people["id_number"].str.slice(6, 14).to_numpy(),
        "人员状态": "正常", "record_id": people["record_id"].to_numpy(),
    }).drop_duplicates("公民身份号码")
    # The registry holds the name as it should be written: no blanks, no stray letters, the
    # middle dot itself.
    registry["姓名"] = (registry["姓名"].str.replace("[ \u3000?A2x]", "", regex=True)
                      .str.replace("[•・.．]", "·", regex=True))
    eligible = np.flatnonzero(registry["record_id"].isin(roster.loc[clean, "record_id"]).to_numpy())
    taken = np.zeros(len(registry), dtype=bool)
    truth = []
    names = registry["姓名"].to_numpy().astype(object)
    status = registry["人员状态"].to_numpy().astype(object)
    keep = np.ones(len(registry), dtype=bool)
    for kind in POLICE_KINDS:
        pool = eligible[~taken[eligible]]
        if kind in ("homophone", "variant"):
            table = HOMOPHONES if kind == "homophone" else VARIANTS
            pool = pool[[any(c in table for c in n[1:]) for n in names[pool]]]
        if kind == "separator":
            pool = pool[["·" in n for n in names[pool]]]
        else:
            pool = pool[["·" not in n for n in names[pool]]]
        k = min(len(pool), max(1, int(len(roster) * POLICE_RATE)))
        rows_k = rng.choice(pool, k, replace=False)
        taken[rows_k] = True
        for r in rows_k:
            n = names[r]
            if kind == "absent":
                keep[r] = False
            elif kind in ("homophone", "variant"):
                table = HOMOPHONES if kind == "homophone" else VARIANTS
                i = next(j for j in range(1, len(n)) if n[j] in table)
                names[r] = n[:i] + table[n[i]] + n[i + 1:]
            elif kind == "rare_placeholder":
                names[r] = n[0] + rng.choice(RARE)
            elif kind == "different":
                names[r] = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN, 2))
                while names[r] == n:
                    names[r] = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN, 2))
            elif kind == "cancelled":
                status[r] = "注销"
            elif kind == "dead":
                status[r] = "死亡"
            elif kind == "separator":
                names[r] = n.replace("·", rng.choice(["", "•", "・"]))
            elif kind == "moved":
                status[r] = "迁出"
        ids_k = registry["record_id"].to_numpy()[rows_k]
        truth.append(pd.DataFrame({"record_id": ids_k, "kind": kind,
                                   "registry_name": names[rows_k]}))
        if kind == "rare_placeholder":
            # The roster typed a box for the character its keyboard lacked.
            at = roster["record_id"].isin(ids_k)
            roster.loc[at, "name"] = roster.loc[at, "name"].str.slice(0, 1) + "□"
    registry["姓名"] = names
    registry["人员状态"] = status
    registry = registry[keep].drop(columns="record_id")
    extra = int(len(registry) * 0.3)
    born = np.datetime64("2008-01-01") + rng.integers(0, 365 * 12, extra)
    body = np.char.add(np.char.add(rng.choice(["440103", "440305", "441900", "445102"], extra),
                                   np.char.replace(days_to_ymd(born), "-", "")),
                       np.char.zfill(rng.integers(0, 1000, extra).astype(str), 3))
    odd = pd.Series(body).str.slice(16, 17).astype(int).to_numpy() % 2 == 1
    residents = pd.DataFrame({
        "公民身份号码": with_check(body),
        "姓名": np.char.add(rng.choice(SURNAMES, extra),
                          np.char.add(rng.choice(GIVEN, extra), rng.choice(GIVEN, extra))),
        "性别": np.where(odd, "男", "女"),
        "出生日期": np.char.replace(days_to_ymd(born), "-", ""), "人员状态": "正常",
    })
    residents = residents[~residents["公民身份号码"].isin(roster["id_number"])]
    registry = pd.concat([registry, residents], ignore_index=True).sample(frac=1.0, random_state=1)
    registry.to_parquet(out / "registry.parquet", index=False)
    residents[["公民身份号码", "姓名"]].to_csv(out / "truth_registry_only.csv", index=False)
    pd.concat(truth, ignore_index=True).to_csv(out / "truth_police.csv", index=False)
    print(f"registry {len(registry)} rows ({len(residents)} not in school); police classes "
          + ", ".join(f"{t['kind'].iloc[0]} {len(t)}" for t in truth if len(t)))


def score_police(run_dir: Path, truth: Path) -> None:
    problems = pd.read_parquet(run_dir / "province" / "problems.parquet")
    planted = pd.read_csv(truth / "truth_police.csv", dtype=str)
    police = problems[problems["rule"].str.startswith("POLICE_")]
    print("police classes (recall goal >= 0.99; separator and moved never flagged):")
    for kind, rule in POLICE_KINDS.items():
        ids = planted.loc[planted["kind"] == kind, "record_id"]
        flagged = police[police["record_id"].isin(ids)]
        if rule is None:
            print(f"  {kind:18s} flagged {flagged['record_id'].nunique()}/{len(ids)} (goal 0)")
        else:
            hit = flagged.loc[flagged["rule"] == rule, "record_id"].nunique()
            print(f"  {kind:18s} {rule:22s} {hit}/{len(ids)} = {hit / max(len(ids), 1):.4f}")
    errors = pd.read_csv(truth / "truth_errors.csv", dtype=str)
    dups = pd.read_csv(truth / "truth_duplicates.csv", dtype=str)
    roster_ids = pd.read_csv(truth / "roster.csv", dtype=str, usecols=["序号"])["序号"]
    special = set(errors["record_id"]) | set(dups["record_id_b"]) | set(planted["record_id"])
    clean = roster_ids[~roster_ids.isin(special)]
    false = police[(police["severity"] == "E") & police["record_id"].isin(clean)]
    print(f"clean records with a police error: {false['record_id'].nunique()} "
          f"({false['record_id'].nunique() / max(len(clean), 1):.4%}; goal <= 0.1%)")
    different = planted.loc[planted["kind"] == "different", "registry_name"]
    text = " ".join(police["message"].fillna("")) + " " + " ".join(police["suggestion"].fillna(""))
    shown = sum(name in text for name in different)
    print(f"registry names of a completely different name shown: {shown} (goal 0)")
    only = pd.read_csv(truth / "truth_registry_only.csv", dtype=str)
    blobs = b"".join(p.read_bytes() for p in run_dir.rglob("*.parquet"))
    leaked = sum(number.encode() in blobs for number in only["公民身份号码"].head(2000))
    print(f"registry-only IDs found in the run's Parquet files: {leaked} of 2000 looked for")
