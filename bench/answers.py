"""Time and peak memory of the answer ledger: statuses of a run, the ledger's writes, and importing
the county workbooks clerks send back.

    python bench/answers.py --answers N [--counties C] [--seed S] [--keep DIR] [--profile F]

Builds a synthetic province (roster, problem rows, duplicate groups; province 44, ``--counties``
counties) whose county lists hold ``N`` rows to answer: errors, and each county's own records of
duplicate groups (half of the groups are one ID number registered twice, a tenth span two
counties), with warnings on top that need no answer. Then, as the flow and the clerks do:

1. run 1: ``apply_ledger`` (keys and statuses, everything new), the county workbooks written by
   the report writer with their 状态 column, published, ``record_run`` (the ledger learns it);
2. every county workbook answered on every row it can be answered on (佐证 with a 备注, 变更
   with a 更正后的值, 删除; a duplicate group's own records 变更, or all 佐证), written straight
   into a copy of the workbook's sheet XML (the writer's layout, cell for cell: :mod:`answered_copies`);
3. ``import_answers`` over all the answered workbooks (one transaction per file): the target;
4. run 2: ``apply_ledger`` with the ledger now holding the answers, and ``record_run``.

Before the import, two floors of it, each on its own: inflating every part of every workbook
(zlib, this process) and reading the workbooks as the import reads them (calamine, in its reading
worker processes) without writing anything.

Printed per step: wall seconds, rows and rows per second, CPU seconds and peak RSS of the
process tree (this process and its children, such as the importer's reading workers, sampled
every 0.2 s as bench/province.py does); the answers imported, the ledger's size, and the load
average before and after (the CPU seconds say what a step costs when the machine is shared).
Steps 1 and 2 are preparation (their times are shown, not targets). ``--keep DIR`` keeps
everything in DIR and reuses a preparation made there for the same N, counties and seed (the
ledger is put back as it was before the import); ``--prepare-only`` stops after step 2.
``--profile F.txt`` records every step but the preparation with cProfile and writes each one's
heaviest functions to F.txt.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from answered_copies import answered_copy  # noqa: E402
from province import TreeSampler  # noqa: E402

from xueji_quality import answers, reports  # noqa: E402
from xueji_quality.normalize import STRING  # noqa: E402
from xueji_quality.reports import list_files  # noqa: E402
from xueji_quality.standards import gb2260  # noqa: E402

PROVINCE = "44"
DAY_ONE = date(2026, 11, 2)
DAY_TWO = date(2026, 11, 3)
# Real rule codes of the catalogue: errors a county answers, and warnings it only looks at.
ERRORS = (
    ("ID_CHECKSUM", "id_number", "身份证件号校验码错误", "对照户口簿逐位核对身份证件号并更正"),
    ("BIRTHDATE_MISMATCH", "birth_date", "出生日期与身份证件号不一致", "以户口簿为准更正"),
    ("NAME_CHARS", "name", "姓名含不允许的字符", "按户口簿更正姓名"),
    ("REQUIRED_MISSING", "guardian_name", "必填项“监护人姓名”为空", "补录监护人姓名"),
    ("ENROLL_DATE", "enroll_date", "入学年月不存在、晚于核查日期或早于出生日期", "更正入学年月"),
    ("SEX_CODE", "sex", "性别代码无效", "按 GB/T 2261.1 填写性别"),
)
WARNINGS = (
    ("AGE_GRADE", "birth_date", "出生日期与年级不相符", "核对出生日期和年级"),
    ("PHONE_FORMAT", "phone", "联系电话格式不对", "向监护人核实联系电话并更正"),
)


def rule_catalogue() -> pd.DataFrame:
    rows = [(r, "E", f, m, s) for r, f, m, s in ERRORS] + [
        (r, "W", f, m, s) for r, f, m, s in WARNINGS
    ]
    return pd.DataFrame(
        rows, columns=["rule", "severity", "field", "message", "suggestion"]
    ).astype("string")


def _digits(rng: np.random.Generator, count: int, width: int) -> pd.Series:
    return pd.Series(rng.integers(0, 10**width, count)).astype(str).str.zfill(width)


def synthetic_province(
    answerable: int, county_count: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """roster, problems, duplicates whose county lists hold ``answerable`` rows to answer."""
    rng = np.random.default_rng(seed)
    pairs = max(1, answerable // 20)
    errors = answerable - 2 * pairs
    rows = errors + 2 * pairs
    codes = gb2260.counties(PROVINCE)["code"].head(county_count).to_numpy(dtype=object)
    county = codes[rng.integers(0, len(codes), rows)]
    # The second record of a pair sits in the first one's county, but for a tenth of the pairs.
    first, second = errors + 2 * np.arange(pairs), errors + 2 * np.arange(pairs) + 1
    county[second] = county[first]
    moved = second[rng.random(pairs) < 0.1]
    county[moved] = codes[rng.integers(0, len(codes), len(moved))]
    level = rng.integers(1, 13, rows)
    birth_year = 2020 - level
    birth = pd.Series(birth_year).astype(str) + "-05-01"
    ids = pd.Series(county).astype(str) + pd.Series(birth_year).astype(str) + "0501"
    ids = ids + _digits(rng, rows, 3) + _digits(rng, rows, 1)
    # Half of the pairs are one ID number registered twice (身份证号重复).
    same_id = first[rng.random(pairs) < 0.5]
    ids.iloc[same_id + 1] = ids.iloc[same_id].to_numpy()
    surnames = np.array(list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"), dtype=object)
    given = np.array(list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"), dtype=object)
    school_no = rng.integers(0, 60, rows)
    school_code = (
        "21" + pd.Series(county).astype(str) + pd.Series(school_no).astype(str).str.zfill(2)
    )
    grades = np.array([f"{n}年级" for n in range(1, 10)] + ["高一", "高二", "高三"], dtype=object)
    roster = pd.DataFrame(
        {
            "record_id": pd.Series(np.arange(1, rows + 1)).astype(str).str.zfill(9).to_numpy(),
            "county_code": county,
            "name": surnames[rng.integers(0, 20, rows)]
            + given[rng.integers(0, 20, rows)]
            + given[rng.integers(0, 20, rows)],
            "sex": np.where(rng.random(rows) < 0.5, "1", "2"),
            "birth_date": birth.to_numpy(),
            "ethnicity": "01",
            "id_type": "1",
            "id_number": ids.to_numpy(),
            "student_no": ("G" + ids).to_numpy(),
            "school_code": school_code.to_numpy(),
            "school_name": ("第" + pd.Series(school_no).astype(str) + "学校").to_numpy(),
            "school_county": county,
            "grade": grades[level - 1],
            "class_name": (pd.Series(rng.integers(1, 9, rows)).astype(str) + "班").to_numpy(),
            "enroll_date": (pd.Series(birth_year + 6).astype(str) + "-09").to_numpy(),
            "household_region": county,
            "guardian_name": surnames[rng.integers(0, 20, rows)] + given[rng.integers(0, 20, rows)],
            "phone": ("13" + _digits(rng, rows, 9)).to_numpy(),
        }
    ).astype("string")
    roster["export_key"] = roster["record_id"]
    roster["grade_level"] = pd.array(level, dtype="Int8")

    rule = rng.integers(0, len(ERRORS), errors)
    warned = rng.choice(errors, size=answerable // 20, replace=False)
    warning = rng.integers(0, len(WARNINGS), len(warned))
    who = np.concatenate([np.arange(errors), warned])
    table = rule_catalogue()
    which = np.concatenate([rule, len(ERRORS) + warning])
    fields = table["field"].to_numpy()[which]
    values = roster["id_number"].to_numpy()[who]
    problems = pd.DataFrame(
        {
            "record_id": roster["record_id"].to_numpy()[who],
            "county_code": county[who],
            "rule": table["rule"].to_numpy()[which],
            "severity": table["severity"].to_numpy()[which],
            "field": fields,
            "value": np.where(fields == "id_number", values, ""),
            "message": table["message"].to_numpy()[which],
            "suggestion": table["suggestion"].to_numpy()[which],
        }
    ).astype("string")

    members = np.stack([first, second], axis=1).reshape(-1)
    group = np.repeat(np.arange(pairs), 2)
    shared = np.isin(first, same_id)[group]
    dup_class = np.where(shared, "DUP_ID", "DUP_FUZZY")
    duplicates = pd.DataFrame(
        {
            "group_id": ("G" + pd.Series(group).astype(str).str.zfill(9)).to_numpy(),
            "record_id": roster["record_id"].to_numpy()[members],
            "county_code": county[members],
            "school_code": roster["school_code"].to_numpy()[members],
            "school_name": roster["school_name"].to_numpy()[members],
            "dup_class": dup_class,
            "score": np.where(shared, 1.0, 0.93),
            "reason": np.where(shared, "身份证件号相同", "姓名、性别、出生日期相同"),
        }
    )
    duplicates = duplicates.astype({c: "string" for c in duplicates.columns if c != "score"})
    return roster, problems, duplicates


# --- the steps ------------------------------------------------------------------------------


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _prepare(work: Path, answerable: int, county_count: int, seed: int, timings: dict) -> dict:
    out_root = work / "out"
    returned = work / "returned"
    marker = work / "bench-answers.json"
    wanted = {"answers": answerable, "counties": county_count, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()).get("wanted") == wanted:
        state = json.loads(marker.read_text())
        shutil.copy2(work / "ledger.before-import", out_root / answers.LEDGER_NAME)
        print("preparation reused from", work)
        return state
    shutil.rmtree(out_root, ignore_errors=True)
    shutil.rmtree(returned, ignore_errors=True)
    started = time.perf_counter()
    roster, problems, duplicates = synthetic_province(answerable, county_count, seed)
    timings["synthetic tables"] = (time.perf_counter() - started, len(roster))
    state = {"wanted": wanted, "roster": len(roster), "problems": len(problems)}
    state["duplicate_rows"] = len(duplicates)
    _write_tables(work, roster, problems, duplicates)
    return {**state, "tables": True}


def _write_tables(work: Path, roster, problems, duplicates) -> None:
    for name, frame in (("roster", roster), ("problems", problems), ("duplicates", duplicates)):
        frame.to_parquet(work / f"{name}.parquet", index=False)


def _read_tables(work: Path) -> tuple[pd.DataFrame, ...]:
    """roster, problems, duplicates with the column types a run hands the ledger: the roster's
    text Arrow-backed as the staged store reads it, the others' as validation and linkage give
    them."""
    tables = [
        pd.read_parquet(work / f"{name}.parquet", dtype_backend="numpy_nullable")
        for name in ("roster", "problems", "duplicates")
    ]
    roster = tables[0]
    tables[0] = roster.astype(
        {c: STRING for c in roster.columns if c != "grade_level"} | {"grade_level": "Int8"}
    )
    return tuple(tables)


class Steps:
    """Wall time, rows and peak RSS of the process tree per named step (and a cProfile text of
    each step but the preparation when ``profile`` is set)."""

    def __init__(self, sampler: TreeSampler, profile: Path | None) -> None:
        self.sampler = sampler
        self.profile = profile
        self.profiles: list[str] = []
        self.figures: list[tuple[str, float, int, float, float]] = []

    def timed(self, name: str, rows: int, call):
        profiler = None
        if self.profile is not None and "preparation" not in name:
            profiler = cProfile.Profile()
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        try:
            result = call()
        finally:
            if profiler is not None:
                profiler.disable()
        ended = time.perf_counter()
        if profiler is not None:
            text = io.StringIO()
            stats = pstats.Stats(profiler, stream=text)
            stats.sort_stats("cumulative").print_stats(30)
            stats.sort_stats("tottime").print_stats(20)
            self.profiles.append(f"==== {name}: {ended - started:.2f} s\n{text.getvalue()}")
        time.sleep(0.25)  # one more sample inside the step's window
        peak, cpu = self.sampler.window(started, ended + 0.2)
        self.figures.append((name, ended - started, rows, peak, cpu))
        print(f"  {name}: {ended - started:.2f} s", file=sys.stderr, flush=True)
        return result


def _run(out_root: Path, tables: tuple, run_date: date, steps: Steps, label: str, write: bool):
    roster, problems, duplicates = tables
    items = len(problems) + len(duplicates)
    run_id = reports.new_run_id(out_root, PROVINCE, run_date)
    result = steps.timed(
        f"{label}: apply_ledger (keys, statuses)",
        items,
        lambda: answers.apply_ledger(
            out_root, run_id, run_date, problems, duplicates, roster, province=PROVINCE
        ),
    )
    if write:
        staging = reports.staging_dir(out_root, run_id)
        steps.timed(
            f"{label}: county workbooks (preparation)",
            items,
            lambda: reports.write_county_reports(
                staging,
                roster,
                result.problems,
                result.duplicates,
                province=PROVINCE,
                run_date=run_date,
                rule_catalogue=rule_catalogue(),
                statuses=result.statuses,
            ),
        )
        reports.publish(staging, out_root, run_id)
    steps.timed(f"{label}: record_run (ledger write)", items, lambda: answers.record_run(result))
    return run_id, result


def _inflate(paths: list[Path]) -> int:
    """Bytes of XML in the workbooks, every part inflated (what any reader of them must do)."""
    total = 0
    for path in paths:
        with zipfile.ZipFile(path) as archive:
            total += sum(len(archive.read(name)) for name in archive.namelist())
    return total


def _print(state: dict, paths: list[Path], counties: int, timings: dict, steps: Steps) -> None:
    print(
        f"province: {state['roster']} records, {state['problems']} problem rows, "
        f"{state['duplicate_rows']} duplicate rows, {counties} counties"
    )
    print(
        f"answered workbooks: {len(paths)} files, "
        f"{sum(p.stat().st_size for p in paths) / 1e6:.0f} MB, {state['answered_rows']} rows answered"
    )
    for name, (seconds, rows) in timings.items():
        print(f"{name:>46}: {seconds:7.2f} s  {rows:>9} rows")
    for name, seconds, rows, peak, cpu in steps.figures:
        rate = f"{rows / seconds:>10.0f} rows/s" if rows and seconds else " " * 17
        print(
            f"{name:>46}: {seconds:7.2f} s  {rows:>9} rows {rate}  "
            f"CPU {cpu:7.2f} s  peak {peak:6.0f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--counties", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args()
    load_before = _load()
    sampler = TreeSampler(os.getpid())
    sampler.start()
    steps = Steps(sampler, args.profile)
    temporary = None
    if args.keep is None:
        temporary = tempfile.TemporaryDirectory(prefix="bench-answers-")
        work = Path(temporary.name)
    else:
        work = args.keep
        work.mkdir(parents=True, exist_ok=True)
    out_root = work / "out"
    returned = work / "returned"
    marker = work / "bench-answers.json"
    timings: dict = {}
    state = _prepare(work, args.answers, args.counties, args.seed, timings)
    if state.pop("tables", False):
        _run(out_root, _read_tables(work), DAY_ONE, steps, "run 1", write=True)
        returned.mkdir(parents=True, exist_ok=True)
        run_dir = out_root / "latest"
        books = sorted(list_files.iter_county_workbooks(run_dir))

        def answer_all() -> int:
            return sum(
                answered_copy(book, returned / f"{book.parent.name}.xlsx", args.seed + n)
                for n, book in enumerate(books)
            )

        state["answered_rows"] = steps.timed("answering the workbooks (preparation)", 0, answer_all)
        shutil.copy2(out_root / answers.LEDGER_NAME, work / "ledger.before-import")
        marker.write_text(json.dumps(state))
    paths = sorted(returned.glob("*.xlsx"))
    if args.prepare_only:
        sampler.stop()
        _print(state, paths, args.counties, timings, steps)
        return
    steps.timed("floor: inflating the workbooks", state["answered_rows"], lambda: _inflate(paths))
    steps.timed(
        "floor: reading them (no ledger)",
        state["answered_rows"],
        lambda: sum(len(f.table) for f in answers.importer.read_answer_files(paths)),
    )
    imported, rejected = steps.timed(
        "import_answers (target)",
        state["answered_rows"],
        lambda: answers.import_answers(out_root, paths),
    )
    imported_answers = sum(r.answers for r in imported)
    name, seconds, _, peak, cpu = steps.figures[-1]
    steps.figures[-1] = (name, seconds, imported_answers, peak, cpu)
    # Read after the import, so the import's peak is its own, not the province tables'.
    _run(out_root, _read_tables(work), DAY_TWO, steps, "run 2", write=False)
    sampler.stop()
    if args.profile is not None:
        args.profile.write_text("\n".join(steps.profiles))

    _print(state, paths, args.counties, timings, steps)
    print(
        f"answers imported: {imported_answers} from {len(imported)} files, {len(rejected)} rejected"
    )
    for error in rejected[:3]:
        print(f"  rejected: {str(error)[:300]}")
    ledger_size = (out_root / answers.LEDGER_NAME).stat().st_size
    print(f"ledger: {ledger_size / 1e6:.0f} MB")
    print(f"load average before: {load_before}, after: {_load()}")
    if temporary is not None:
        temporary.cleanup()


if __name__ == "__main__":
    main()
