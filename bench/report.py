"""Time and peak memory of writing a province's reports (county lists, summary, manifest).

    python bench/report.py [rows] [--mask-ids] [--per-county] [--per-school] [--processes N]
        [--list-cap N] [--counties N]

Builds a synthetic roster of ``rows`` records (default 1,000,000) over ``--counties`` counties
(default 20; Guangdong has about 120) of province 44
with 4 % of records carrying problems (some two) and 1 % in duplicate groups (a tenth of them
spanning two counties), writes every report into a temporary folder, publishes it, and prints
per step the wall seconds and the CPU seconds of the process tree (this process and the worker
processes writing county workbooks, ``--processes``, default 2), the peak resident memory of the
tree (sampled every 0.2 s) and the load average before and after (the machine may be shared).
``--per-county`` also times one call per county, as the Prefect flow maps them; ``--per-school``
writes the school workbooks too; ``--list-cap`` sets the rows of one list a workbook shows.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from xueji_quality import schema
from xueji_quality.reports import (
    county_files,
    new_run_id,
    publish,
    staging_dir,
    write_county_reports,
    write_manifest,
    write_province_outputs,
)
from xueji_quality.standards import gb2260

sys.path.insert(0, str(Path(__file__).resolve().parent))
from province import TreeSampler  # noqa: E402  (bench/ is not a package)

RULES = (
    ("ID_CHECKSUM", "E", "id_number", "身份证件号校验码错误", "核对身份证件号并更正"),
    ("ID_BIRTH_MISMATCH", "E", "birth_date", "出生日期与身份证件号不符", "以户口簿为准更正"),
    ("NAME_CHARS", "E", "name", "姓名含非法字符", "去掉空格、数字或字母"),
    ("REQUIRED_MISSING", "E", "guardian_name", "必填项为空", "补填"),
    ("AGE_GRADE", "W", "birth_date", "年龄与年级不符", "核实出生日期和年级"),
    ("PHONE_FORMAT", "W", "phone", "联系电话格式不对", "核对电话号码"),
)


def rule_catalogue() -> pd.DataFrame:
    return pd.DataFrame(
        RULES, columns=["rule", "severity", "field", "message", "suggestion"]
    ).astype("string")


def synthetic_tables(rows: int, seed: int = 7, counties: int = 20) -> tuple[pd.DataFrame, ...]:
    """roster, problems, duplicates, quarantine with the contract's columns and dtypes."""
    rng = np.random.default_rng(seed)
    county_codes = gb2260.counties("44")["code"].head(counties).to_numpy(dtype=object)
    county = county_codes[rng.integers(0, len(county_codes), rows)]
    school_no = rng.integers(0, 40, rows)
    level = rng.integers(1, 13, rows)
    ids = pd.Series(county).astype(str) + pd.Series(rng.integers(10**11, 10**12, rows)).astype(str)
    record_id = pd.Series(np.arange(1, rows + 1)).astype(str).str.zfill(8)
    surnames = np.array(list("王李张刘陈杨黄赵吴周"), dtype=object)
    given = np.array(["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋"], dtype=object)
    grades = np.array([f"{n}年级" for n in range(1, 10)] + ["高一", "高二", "高三"], dtype=object)
    school_code = (
        "2144" + pd.Series(county).astype(str) + pd.Series(school_no).astype(str).str.zfill(2)
    )
    roster = pd.DataFrame(
        {
            "record_id": record_id,
            "source_file": "roster.csv",
            "source_row": np.arange(2, rows + 2, dtype=np.int64),
            "county_code": county,
            "name": surnames[rng.integers(0, 10, rows)] + given[rng.integers(0, 10, rows)],
            "sex": np.where(rng.random(rows) < 0.5, "1", "2"),
            "birth_date": "2012-05-01",
            "id_number": ids.to_numpy(),
            "student_no": ("G" + ids).to_numpy(),
            "school_code": school_code.to_numpy(),
            "school_name": ("第" + pd.Series(school_no).astype(str) + "学校").to_numpy(),
            "grade": grades[level - 1],
            "class_name": (pd.Series(rng.integers(1, 9, rows)).astype(str) + "班").to_numpy(),
        }
    ).astype("string")
    roster["source_row"] = roster["source_row"].astype("int64")
    roster["grade_level"] = pd.array(level, dtype="Int8")

    with_problem = rng.choice(rows, size=int(rows * 0.04), replace=False)
    second = with_problem[: len(with_problem) // 4]
    who = np.concatenate([with_problem, second])
    rule = rng.integers(0, len(RULES), len(who))
    table = rule_catalogue()
    problems = pd.DataFrame(
        {
            "record_id": roster["record_id"].to_numpy()[who],
            "county_code": roster["county_code"].to_numpy()[who],
            "rule": table["rule"].to_numpy()[rule],
            "severity": table["severity"].to_numpy()[rule],
            "field": table["field"].to_numpy()[rule],
            "value": roster["id_number"].to_numpy()[who],
            "message": table["message"].to_numpy()[rule],
            "suggestion": table["suggestion"].to_numpy()[rule],
        }
    ).astype("string")
    problems = problems.drop_duplicates(["record_id", "rule", "field"]).reset_index(drop=True)

    pairs = rng.choice(rows, size=(int(rows * 0.005), 2), replace=False)
    members = pairs.reshape(-1)
    group = np.repeat(np.arange(len(pairs)), 2)
    dup_class = np.where(rng.random(len(pairs)) < 0.5, "DUP_ID", "DUP_FUZZY")[group]
    duplicates = pd.DataFrame(
        {
            "group_id": pd.Series(group).map(lambda g: f"G{g:012x}").to_numpy(),
            "record_id": roster["record_id"].to_numpy()[members],
            "county_code": roster["county_code"].to_numpy()[members],
            "school_code": roster["school_code"].to_numpy()[members],
            "school_name": roster["school_name"].to_numpy()[members],
            "dup_class": dup_class,
            "score": rng.random(len(members)),
            "reason": np.where(dup_class == "DUP_ID", "身份证件号相同", "姓名同音，出生日期相同"),
        }
    )
    duplicates = duplicates.astype({c: "string" for c in duplicates.columns if c != "score"})
    quarantine = pd.DataFrame(
        {
            "source_file": "roster.csv",
            "source_row": np.arange(rows + 2, rows + 102, dtype=np.int64),
            "field": pd.NA,
            "reason": "列数与表头不符",
            "raw": "a,b,c",
        }
    ).astype({"source_file": "string", "field": "string", "reason": "string", "raw": "string"})
    assert list(quarantine.columns) == list(schema.QUARANTINE_COLUMNS)
    return roster, problems, duplicates, quarantine


def _option(name: str, default: int | None) -> int | None:
    if name not in sys.argv:
        return default
    return int(sys.argv[sys.argv.index(name) + 1])


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    options = {a for a in sys.argv[1:] if a.startswith("--")}
    values = {
        sys.argv[sys.argv.index(o) + 1] for o in ("--processes", "--list-cap") if o in options
    }
    rows = int(next((a for a in sys.argv[1:] if a.isdigit() and a not in values), 1_000_000))
    mask_ids = "--mask-ids" in sys.argv
    processes = _option("--processes", 2)
    list_cap = _option("--list-cap", None)
    county_count = _option("--counties", 20)
    cap = {} if list_cap is None else {"list_cap": list_cap}
    print(f"load before: {_load()}")
    sampler = TreeSampler(os.getpid())
    sampler.start()
    started = time.perf_counter()
    roster, problems, duplicates, quarantine = synthetic_tables(rows, counties=county_count)
    print(
        f"synthetic tables: {rows} roster rows, {len(problems)} problem rows, "
        f"{len(duplicates)} duplicate rows ({time.perf_counter() - started:.1f} s)"
    )
    run_date = date(2026, 11, 28)
    steps: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as out:
        out_root = Path(out)
        run_id = new_run_id(out_root, "44", run_date)
        staging = staging_dir(out_root, run_id)
        t0 = time.perf_counter()
        counties = write_county_reports(
            staging,
            roster,
            problems,
            duplicates,
            province="44",
            run_date=run_date,
            rule_catalogue=rule_catalogue(),
            mask_ids=mask_ids,
            per_school="--per-school" in sys.argv,
            processes=processes,
            **cap,
        )
        steps["county reports"] = (t0, time.perf_counter())
        if "--per-county" in sys.argv:
            # As the flow maps them: one call per county over the whole province's tables.
            t0 = time.perf_counter()
            for county in [c["county_code"] for c in counties]:
                write_county_reports(
                    staging / "again",
                    roster,
                    problems,
                    duplicates,
                    province="44",
                    run_date=run_date,
                    rule_catalogue=rule_catalogue(),
                    mask_ids=mask_ids,
                    counties=[county],
                    **cap,
                )
            steps["same, per county"] = (t0, time.perf_counter())
            shutil.rmtree(staging / "again")
        t0 = time.perf_counter()
        write_province_outputs(
            staging, roster, problems, duplicates, quarantine, province="44", run_date=run_date
        )
        steps["province outputs"] = (t0, time.perf_counter())
        t0 = time.perf_counter()
        write_manifest(staging, {"run_id": run_id, "counties": counties})
        steps["manifest"] = (t0, time.perf_counter())
        t0 = time.perf_counter()
        publish(staging, out_root, run_id)
        steps["publish"] = (t0, time.perf_counter())
        files = [p for p in (out_root / run_id).rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        workbooks = sum(p.suffix == ".xlsx" for p in files)
    time.sleep(0.3)  # one more sample after the last step
    sampler.stop()
    print(f"{'step':>18}  {'wall s':>7}  {'CPU s':>7}  {'peak tree RSS':>13}")
    for step, (start, end) in steps.items():
        peak, cpu = sampler.window(start, end)
        print(f"{step:>18}  {end - start:7.2f}  {cpu:7.2f}  {peak:10.0f} MB")
    first, last = min(s for s, _ in steps.values()), max(e for _, e in steps.values())
    peak, cpu = sampler.window(first, last)
    print(f"{'total':>18}  {last - first:7.2f}  {cpu:7.2f}  {peak:10.0f} MB")
    print(
        f"{len(counties)} counties, {workbooks} workbooks, {size / 1e6:.1f} MB; "
        f"--processes {processes} (a province of fewer than "
        f"{county_files.ROWS_FOR_PROCESSES:,} list rows is written without workers)"
    )
    print(f"load after: {_load()}")


if __name__ == "__main__":
    main()
