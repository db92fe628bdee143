"""Command line: the top floor, the one place that reaches both the library and the Prefect flows.

xueji-quality sample   --rows N --seed S --province CODE --out DIR [--format ...]
                       [--counties N] [--chunk-rows N]
xueji-quality run      INPUT... --province CODE --out DIR [--as-of YYYY-MM-DD] [--counties ...]
                       [--schools ...] [--mask-ids] [--progress] [--task-runner threads|dask]
xueji-quality serve    --province CODE --inbox DIR --out DIR [--cron "0 2 * * *"]
xueji-quality evaluate RUN_DIR --truth DIR
xueji-quality import-answers FILE.xlsx... --out DIR [--ledger FILE]

README.md has the whole reference.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

from xueji_quality.errors import ConservationError, InputError
from xueji_quality.reports.publish import RunLocked, run_lock
from xueji_quality.workers import WorkerDied

EXIT_INPUT_ERROR = 2
EXIT_RUN_FAILED = 3
EXIT_BUSY = 4
EXIT_WORKER_DIED = 5


def _province(text: str) -> str:
    if len(text) != 2 or not text.isdigit():
        raise argparse.ArgumentTypeError(f"省级代码应为两位数字（如 44），收到 {text!r}")
    from xueji_quality import regions

    try:
        regions.province_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期应为 YYYY-MM-DD，收到 {text!r}") from None


def _prepare_prefect() -> None:
    """Prefect's embedded API needs a writable home; offline telemetry would log a false error."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if "PREFECT_HOME" in os.environ:
        return
    home = Path.home() / ".xueji-quality" / "prefect"
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".writable"
        probe.touch()
        probe.unlink()
    except OSError:
        home = Path(tempfile.gettempdir()) / f"xueji-quality-prefect-{os.getuid()}"
        home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(home)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xueji-quality", description="中小学生学籍查重查错：按区县生成问题学籍清单"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sample = sub.add_parser("sample", help="生成带真值文件的模拟学籍导出")
    sample.add_argument("--rows", type=int, required=True)
    sample.add_argument("--seed", type=int, default=1)
    sample.add_argument("--province", type=_province, required=True)
    sample.add_argument("--out", type=Path, required=True)
    sample.add_argument(
        "--format", choices=["csv", "csv-gb18030", "xlsx", "parquet"], default="csv"
    )
    sample.add_argument(
        "--counties", type=int, default=None, help="随机（按种子）选用本省 N 个区县"
    )
    sample.add_argument(
        "--chunk-rows",
        type=int,
        default=1_000_000,
        help="超过此行数时分块生成并追加写入（内存只需一块），默认 1000000",
    )

    run = sub.add_parser("run", help="对学籍导出运行查重查错并发布区县清单")
    run.add_argument("inputs", nargs="+", type=Path, help="导出文件或文件夹（CSV/XLSX/Parquet）")
    run.add_argument("--province", type=_province, required=True)
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--as-of", type=_date, default=None, help="运行日期（决定学年），默认今天")
    run.add_argument("--counties", nargs="+", default=None, help="只生成这些区县的清单")
    run.add_argument(
        "--schools", nargs="+", default=None, help="只报告这些学校（学校标识码）的记录"
    )
    run.add_argument(
        "--progress", action="store_true", help="每完成一个阶段在终端打印一行（行数、用时）"
    )
    run.add_argument("--mask-ids", action="store_true", help="Excel 中身份证件号打码")
    run.add_argument("--suites", type=Path, default=None, help="GX 规则套件目录")
    run.add_argument("--linkage-config", type=Path, default=None, help="查重模型参数文件")
    run.add_argument(
        "--task-runner", choices=["threads", "dask"], default="threads", help="任务执行器"
    )
    run.add_argument("--dask-address", default=None, help="Dask 集群地址，如 tcp://HOST:8786")

    serve = sub.add_parser("serve", help="按计划（北京时间）每晚检查收件箱中最新的导出")
    serve.add_argument("--province", type=_province, required=True)
    serve.add_argument("--inbox", type=Path, required=True)
    serve.add_argument("--out", type=Path, required=True)
    serve.add_argument("--cron", default="0 2 * * *", help="cron 表达式，Asia/Shanghai 时间")
    serve.add_argument("--mask-ids", action="store_true")
    serve.add_argument("--suites", type=Path, default=None, help="GX 规则套件目录")
    serve.add_argument("--linkage-config", type=Path, default=None, help="查重模型参数文件")

    evaluate = sub.add_parser("evaluate", help="用真值文件评估一次运行的查重结果")
    evaluate.add_argument("run_dir", type=Path)
    evaluate.add_argument("--truth", type=Path, required=True)

    answers = sub.add_parser("import-answers", help="导入区县交回的问题学籍清单（处理方式、备注）")
    answers.add_argument("files", nargs="+", type=Path, help="交回的清单（xlsx）")
    answers.add_argument("--out", type=Path, required=True, help="产生这些清单的输出目录")
    answers.add_argument(
        "--ledger", type=Path, default=None, help="答复台账，默认 OUT/ledger.sqlite"
    )
    return parser


def _import_answers(args: argparse.Namespace) -> int:
    from xueji_quality import answers

    if not args.out.is_dir():
        raise InputError(str(args.out), "输出目录不存在")
    imported, rejected = answers.import_answers(args.out, args.files, ledger_file=args.ledger)
    for report in imported:
        if report.already_imported:
            print(f"{report.file}：此前已导入（sha256 相同），未重复导入")
            continue
        actions = "，".join(f"{k} {v}" for k, v in report.by_action.items())
        print(
            f"{report.file}：运行 {report.run_id} 区县 {report.county_code}，"
            f"导入答复 {report.answers} 条（{actions}），未填处理方式 {report.unanswered} 行"
        )
    for error in rejected:
        print(f"输入错误：{error}", file=sys.stderr)
    return EXIT_INPUT_ERROR if rejected else 0


def _sample(args: argparse.Namespace) -> int:
    from xueji_quality import generator

    summary = generator.write_sample(
        args.out,
        args.rows,
        args.seed,
        args.province,
        args.format,
        counties=args.counties,
        chunk_rows=args.chunk_rows,
    )
    for key, value in summary.items():
        print(f"{key}: {value}")
    return 0


def _run(args: argparse.Namespace) -> int:
    _prepare_prefect()
    # Taken before Prefect is even imported: a refused run costs nothing.
    with run_lock(args.out):
        if args.task_runner != "dask":
            from xueji_quality import workers

            # The run's worker processes come from this server: it imports while Prefect starts.
            workers.start()
        from pipelines.progress import stage_progress
        from pipelines.provincial import provincial_run
        from pipelines.runners import task_runner

        runner = task_runner(args.task_runner, args.dask_address)
        with stage_progress(sys.stderr if args.progress else None):
            result = provincial_run.with_options(task_runner=runner)(
                inputs=[str(p) for p in args.inputs],
                province=args.province,
                out=str(args.out),
                as_of=args.as_of,
                counties=args.counties,
                schools=args.schools,
                mask_ids=args.mask_ids,
                suites_dir=str(args.suites) if args.suites else None,
                linkage_config=str(args.linkage_config) if args.linkage_config else None,
                # Dask workers are processes already; threads need processes to use both cores.
                report_processes=1 if args.task_runner == "dask" else 2,
            )
    rows = result["rows"]
    problems = result["problems"]
    duplicates = result["duplicates"]
    print(f"运行编号 {result['run_id']}")
    print(
        f"读入 {rows['rows_read']} 行；入库 {rows['rows_staged']} 行；"
        f"隔离 {rows['rows_quarantined']} 行；行数守恒：{'是' if rows['holds'] else '否'}"
    )
    print(
        f"问题 {len(problems)} 条（错误 {int((problems['severity'] == 'E').sum())}，"
        f"警告 {int((problems['severity'] == 'W').sum())}）"
    )
    for rule, count in problems["rule"].value_counts().sort_index().items():
        print(f"  {rule}: {count}")
    groups = duplicates.drop_duplicates("group_id")["dup_class"].value_counts().sort_index()
    print(f"重复组 {int(groups.sum())} 个" + "".join(f"；{k} {v}" for k, v in groups.items()))
    print(f"报告目录 {result['run_dir']}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    _prepare_prefect()
    from prefect import serve

    from pipelines.nightly import nightly_deployment

    if not args.inbox.is_dir():
        raise InputError(str(args.inbox), "收件箱文件夹不存在")
    deployment = nightly_deployment(
        args.province,
        str(args.inbox),
        str(args.out),
        args.cron,
        args.mask_ids,
        str(args.suites.resolve()) if args.suites else None,
        str(args.linkage_config.resolve()) if args.linkage_config else None,
    )
    print(f"夜间运行 {deployment.name}：{args.cron}（Asia/Shanghai），收件箱 {args.inbox}")
    serve(deployment)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import pandas as pd

    from xueji_quality import linkage

    duplicates = pd.read_parquet(args.run_dir / "province" / "duplicates.parquet")
    truth = pd.read_csv(args.truth / "truth_duplicates.csv", dtype=str, keep_default_na=False)
    negatives_path = args.truth / "truth_hard_negatives.csv"
    negatives = (
        pd.read_csv(negatives_path, dtype=str, keep_default_na=False)
        if negatives_path.exists()
        else None
    )
    figures = linkage.evaluate(linkage.pairs_from_groups(duplicates), truth, negatives)
    print(linkage.format_evaluation(figures))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    try:
        if args.command == "sample":
            return _sample(args)
        if args.command == "run":
            return _run(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "import-answers":
            return _import_answers(args)
        return _evaluate(args)
    except InputError as exc:
        print(f"输入错误：{exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except ConservationError as exc:
        print(f"运行失败，未发布任何报告：{exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except RunLocked as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BUSY
    except WorkerDied as exc:
        print(f"运行失败：{exc}", file=sys.stderr)
        return EXIT_WORKER_DIED


if __name__ == "__main__":
    sys.exit(main())
