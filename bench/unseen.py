"""A Guangdong-style roster made without the project's generator, and its scoring.

    python bench/unseen.py make --rows N --out DIR [--seed S]
    python bench/unseen.py score RUN_DIR --truth DIR [--police]
    python bench/unseen.py make-national --rows N --out DIR [--provinces 44,45,43]
    python bench/unseen.py score-national NATIONAL_DIR --truth DIR

``make`` (:mod:`unseen_roster`) writes DIR/roster.csv with header spellings of another
province's export and its truth files. It shares no code with ``xueji_quality.generator``: its
names, schools, dates, error forms and duplicate kinds are drawn by rules of its own, so a
project tuned to its own generator shows here where it is not yet right.

``score`` reads a run's province/problems.parquet and duplicates.parquet and prints: the share
of clean records (no planted error, normalisable values included) carrying an error, and the
rules behind them; field recall per planted error kind (a problem on that record and field with
one of the kind's accepted rules); duplicate pair precision and recall per kind (groups read as
equivalence classes); twins and namesakes linked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from unseen_roster import ERROR_KINDS, make


def _components(pairs: pd.DataFrame) -> dict[str, int]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(pairs.iloc[:, 0].astype(str), pairs.iloc[:, 1].astype(str), strict=True):
        parent[find(a)] = find(b)
    return {x: hash(find(x)) for x in list(parent)}


def score(run_dir: Path, truth: Path) -> None:
    problems = pd.read_parquet(run_dir / "province" / "problems.parquet")
    duplicates = pd.read_parquet(run_dir / "province" / "duplicates.parquet")
    errors = pd.read_csv(truth / "truth_errors.csv", dtype=str)
    dups = pd.read_csv(truth / "truth_duplicates.csv", dtype=str)
    negatives = pd.read_csv(truth / "truth_hard_negatives.csv", dtype=str)
    roster_ids = pd.read_csv(truth / "roster.csv", dtype=str, usecols=["序号"])["序号"]

    planted_records = set(errors["record_id"]) | set(dups["record_id_b"])
    if (truth / "truth_police.csv").exists():
        planted_records |= set(pd.read_csv(truth / "truth_police.csv", dtype=str)["record_id"])
    clean = roster_ids[~roster_ids.isin(planted_records)]
    hard = problems[problems["severity"] == "E"]
    false = hard[hard["record_id"].isin(clean)]
    print(f"clean records {len(clean)}; with an error {false['record_id'].nunique()} "
          f"({false['record_id'].nunique() / max(len(clean), 1):.4%}); goal <= 0.1%")
    for rule, count in false.groupby("rule")["record_id"].nunique().sort_values(ascending=False).head(8).items():
        sample = false[false["rule"] == rule].head(2)[["record_id", "value"]].to_dict("records")
        print(f"  {rule}: {count} records, e.g. {sample}")
    warned = problems[(problems["severity"] == "W") & problems["record_id"].isin(clean)]
    print(f"clean records with a warning: {warned['record_id'].nunique()} "
          f"({warned['record_id'].nunique() / max(len(clean), 1):.4%}) "
          + ", ".join(f"{k} {v}" for k, v in warned["rule"].value_counts().head(5).items()))

    print("field recall per planted kind (goal >= 0.99):")
    found_keys = set(zip(problems["record_id"], problems["field"], problems["rule"], strict=True))
    for kind, (field, rules) in ERROR_KINDS.items():
        rows = errors[errors["kind"] == kind]
        hit = sum(any((r, field, rule) in found_keys for rule in rules) for r in rows["record_id"])
        print(f"  {kind:22s} {field:14s} {hit}/{len(rows)} = {hit / max(len(rows), 1):.4f}")

    found = duplicates[["group_id", "record_id"]].astype(str)
    group_of = dict(zip(found["record_id"], found["group_id"], strict=True))
    truth_component = _components(dups)
    linked = [group_of.get(a) is not None and group_of.get(a) == group_of.get(b)
              for a, b in zip(dups["record_id_a"], dups["record_id_b"], strict=True)]
    dups["found"] = linked
    print(f"duplicate recall {np.mean(linked):.4f} ({sum(linked)}/{len(dups)}); goal >= 0.995")
    for kind, part in dups.groupby("kind"):
        print(f"  {kind:26s} {part['found'].mean():.4f} ({int(part['found'].sum())}/{len(part)})")
    correct = total = 0
    for _, members in found.groupby("group_id")["record_id"]:
        members = list(members)
        for b in members[1:]:
            total += 1
            a = members[0]
            correct += a in truth_component and truth_component.get(a) == truth_component.get(b)
    print(f"duplicate precision {correct / max(total, 1):.4f} ({correct}/{total}); goal >= 0.999")
    for kind, part in negatives.groupby("kind"):
        bad = sum(group_of.get(a) is not None and group_of.get(a) == group_of.get(b)
                  for a, b in zip(part["record_id_a"], part["record_id_b"], strict=True))
        print(f"  {kind} linked: {bad}/{len(part)} (goal 0)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("--rows", type=int, required=True)
    mk.add_argument("--out", type=Path, required=True)
    mk.add_argument("--seed", type=int, default=11)
    mk.add_argument("--police", action="store_true", help="also a registry extract")
    mn = sub.add_parser("make-national")
    mn.add_argument("--rows", type=int, required=True)
    mn.add_argument("--out", type=Path, required=True)
    mn.add_argument("--seed", type=int, default=11)
    mn.add_argument("--provinces", default="44,45,43")
    sn = sub.add_parser("score-national")
    sn.add_argument("national_dir", type=Path)
    sn.add_argument("--truth", type=Path, required=True)
    sc = sub.add_parser("score")
    sc.add_argument("run_dir", type=Path)
    sc.add_argument("--truth", type=Path, required=True)
    sc.add_argument("--police", action="store_true", help="also score the police check")
    args = parser.parse_args(argv)
    if args.command == "make-national":
        from unseen_national import make_national

        make_national(args.rows, args.out, args.seed, args.provinces.split(","))
        return 0
    if args.command == "score-national":
        from unseen_national import score_national

        score_national(args.national_dir, args.truth)
        return 0
    if args.command == "make":
        make(args.rows, args.out, args.seed, args.police)
    else:
        score(args.run_dir, args.truth)
        if args.police:
            from unseen_police import score_police

            score_police(args.run_dir, args.truth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
