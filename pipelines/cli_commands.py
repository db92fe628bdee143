"""The subcommands: each checks its inputs before Prefect starts, does its work and prints what it
did; ``COMMANDS`` maps a subcommand's name to its function, which returns the exit status."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from pipelines.exit_status import EXIT_INPUT_ERROR
from pipelines.prefect_setup import _filter_prefect_console, _prepare_prefect, start_local_api
from xueji_quality import preflight, run_fingerprint, run_status
from xueji_quality.errors import InputError
from xueji_quality.reports.publish import run_lock


def _import_answers(args: argparse.Namespace) -> int:
    preflight.check_folder(args.out, "--out", "输出目录")
    from xueji_quality import answers

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
    preflight.check_output_folder(args.out)
    if args.provinces:
        from xueji_quality.generator.national import generate_national

        summary = generate_national(
            args.out,
            args.provinces,
            args.rows,
            args.seed,
            fmt=args.format,
            counties=args.counties,
        )
    else:
        if args.province is None:
            raise preflight.OptionError("sample 需要 --province（一个省）或 --provinces（多个省）")
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
        if args.police:
            from xueji_quality.generator.police import write_police

            summary |= write_police(args.out, args.seed, args.province)
    for key, value in summary.items():
        print(f"{key}: {value}")
    return 0


def _check_settings(args: argparse.Namespace) -> None:
    if args.suites is not None:
        preflight.check_suites(args.suites)
    if args.linkage_config is not None:
        preflight.check_json_file(args.linkage_config)


def _export_national(args: argparse.Namespace) -> int:
    preflight.check_folder(args.run_dir, "RUN_DIR", "运行报告目录")
    preflight.check_output_folder(args.out.parent, "--out")
    from xueji_quality.national import exchange, tokens

    key = tokens.load_key(args.key_file)
    manifest = exchange.export_national(args.run_dir, key, args.out, inputs=args.inputs)
    print(
        f"交换文件 {args.out}：记录 {manifest['rows']} 条，令牌 {manifest['token_rows']} 个；"
        f"密钥指纹 {key.fingerprint}"
    )
    return 0


def _national(args: argparse.Namespace) -> int:
    for path in args.files:
        _check_police_file(path, "FILE")
    preflight.check_output_folder(args.out)
    _prepare_prefect()
    from pipelines.national import national_run

    _filter_prefect_console(args.debug)
    summary = national_run(
        files=[str(p) for p in args.files],
        out=str(args.out),
        dask_address=args.dask_address,
        workers=args.workers,
        memory_limit=args.memory_limit,
    )
    print(
        f"全国查重：记录 {summary['records']} 条，跨省重复 {summary['duplicate_pairs']} 对；"
        f"回执写入 {args.out / 'returns'}"
    )
    return 0


def _police_request(args: argparse.Namespace) -> int:
    preflight.check_folder(args.run_dir, "RUN_DIR", "运行报告目录")
    preflight.check_output_folder(args.out.parent, "--out")
    from xueji_quality.police import runs, write_request

    table = runs.request_from_run(args.run_dir)
    write_request(table, args.out)
    print(f"送核请求 {len(table)} 条（身份证号与姓名各一，去重）写入 {args.out}")
    return 0


def _check_police_file(path: Path | None, option: str) -> None:
    if path is None:
        return
    if not path.is_file():
        raise InputError(str(path), f"{option} 指定的文件不存在")
    if path.stat().st_size == 0:
        raise InputError(str(path), "文件为空（0 字节）")


def _fingerprint(args: argparse.Namespace) -> dict:
    """What this run would depend on (``xueji_quality.run_fingerprint``); hashes the inputs."""
    from xueji_quality import run_state
    from xueji_quality.ingest import find_exports

    return run_fingerprint.fingerprint(
        # Remembered in this process: the run's reuse check needs the same hashes.
        run_state.input_hashes(find_exports(args.inputs)),
        run_fingerprint.options_fingerprint(
            province=args.province,
            run_date=args.as_of or date.today(),
            counties=args.counties,
            schools=args.schools,
            mask_ids=args.mask_ids,
            per_school=args.per_school,
            suites_dir=args.suites,
            linkage_config=args.linkage_config,
            police_registry=args.police_registry,
            police_results=args.police_results,
            national_returns=args.national_returns,
        ),
        run_fingerprint.answers_fingerprint(args.out),
    )


def _unchanged(args: argparse.Namespace) -> bool:
    """True when the last published run checked the same inputs with the same options, rules
    and answers: said, recorded in the status file, and not run again (unless ``--force``)."""
    previous = run_fingerprint.latest_manifest(args.out)
    same = run_fingerprint.unchanged_since(previous, _fingerprint(args))
    if same is None:
        return False
    if args.force:
        print(f"输入与选项同已发布的运行 {same}；按 --force 仍重新运行")
        return False
    reason = f"输入未变化：导出文件（SHA-256）、选项、规则与答复均同已发布的运行 {same}，本次未运行"
    run_status.succeed(args.out, reason, province=args.province)
    print(f"{reason}；报告见 {args.out / same}。加 --force 可重新运行。")
    return True


@contextmanager
def _without_heartbeats(own_server: bool) -> Iterator[None]:
    """Flow-run heartbeats off when the run has its own Prefect server: they tell a lasting
    server that a run is alive, this one ends with the run, and stopping the heartbeat thread
    cost up to a second (half on average) at the end of every run."""
    if not own_server:
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def _run(args: argparse.Namespace) -> int:
    # Before Prefect, its server and the workers: a refused run costs a second.
    preflight.check_exports(args.inputs)
    preflight.check_output_folder(args.out)
    _check_settings(args)
    _check_police_file(args.police_registry, "--police-registry")
    _check_police_file(args.police_results, "--police-results")
    for path in args.national_returns or []:
        _check_police_file(path, "--national-returns")
    if args.counties:
        preflight.check_counties(args.counties, args.province)
    _prepare_prefect()
    # Taken before Prefect is even imported: a refused run costs nothing.
    with run_lock(args.out):
        # Prefect's server boots first, the longest wait before the flow can begin: while it
        # does, the exports are hashed (seconds for a large province) to see if anything changed.
        own_server = "prefect" not in sys.modules and not os.environ.get("PREFECT_API_URL")
        api_ready = start_local_api()
        if _unchanged(args):
            return 0
        if args.task_runner != "dask":
            from xueji_quality import workers

            # The run's worker processes come from this server: it imports while Prefect starts.
            workers.start()
        from pipelines.progress import stage_progress
        from pipelines.provincial import provincial_run
        from pipelines.runners import task_runner

        _filter_prefect_console(args.debug)
        runner = task_runner(args.task_runner, args.dask_address)
        api_ready()
        with stage_progress(sys.stderr if args.progress else None), _without_heartbeats(own_server):
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
                # One report task per county group; on Dask, enough to keep every worker busy.
                report_tasks=8 if args.task_runner == "dask" else 1,
                police_registry=str(args.police_registry) if args.police_registry else None,
                police_results=str(args.police_results) if args.police_results else None,
                national_returns=[str(p) for p in args.national_returns or []] or None,
                per_school=args.per_school,
                keep_runs=args.keep_runs,
                notify_block=args.notify_block,
                reuse=not args.no_reuse,
            )
    from xueji_quality.reports.manifest import totals_lines

    rows = result["rows"]
    problems = result["problems"]
    print(f"运行编号 {result['run_id']}")
    print(
        f"读入 {rows['rows_read']} 行；入库 {rows['rows_staged']} 行；"
        f"隔离 {rows['rows_quarantined']} 行；行数守恒：{'是' if rows['holds'] else '否'}"
    )
    # The same totals, under the same names, as the summary and the county lists.
    for line in totals_lines(result["manifest"]):
        print(line)
    print("各规则问题数（按记录）：")
    for rule, count in problems["rule"].value_counts().sort_index().items():
        print(f"  {rule}: {count}")
    print(f"报告目录 {result['run_dir']}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    preflight.check_folder(args.inbox, "--inbox", "收件箱文件夹")
    preflight.check_output_folder(args.out)
    _check_settings(args)
    _prepare_prefect()
    from prefect import serve

    from pipelines.nightly import nightly_deployment

    _filter_prefect_console(args.debug)
    try:
        deployment = nightly_deployment(
            args.province,
            str(args.inbox),
            str(args.out),
            args.cron,
            args.mask_ids,
            str(args.suites.resolve()) if args.suites else None,
            str(args.linkage_config.resolve()) if args.linkage_config else None,
            keep_runs=args.keep_runs,
            notify_block=args.notify_block,
        )
    except ValueError as exc:
        if "cron" not in str(exc).lower():
            raise
        raise preflight.OptionError(
            f"--cron “{args.cron}” 不是有效的 cron 表达式（5 个字段：分 时 日 月 周）"
        ) from exc
    print(f"夜间运行 {deployment.name}：{args.cron}（Asia/Shanghai），收件箱 {args.inbox}")
    serve(deployment)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    preflight.check_folder(args.run_dir, "RUN_DIR", "运行目录")
    preflight.check_folder(args.truth, "--truth", "真值目录")
    duplicates_file = args.run_dir / "province" / "duplicates.parquet"
    if not duplicates_file.is_file():
        hint = "；是否应为 RUN_DIR/latest？" if (args.run_dir / "latest").is_dir() else ""
        raise InputError(
            str(duplicates_file), f"文件不存在：RUN_DIR 不是一次已发布运行的目录{hint}"
        )
    truth_file = args.truth / "truth_duplicates.csv"
    if not truth_file.is_file():
        raise InputError(str(truth_file), "文件不存在：--truth 应为 sample 生成的目录")
    import pandas as pd

    from xueji_quality import linkage

    duplicates = pd.read_parquet(duplicates_file)
    truth = pd.read_csv(truth_file, dtype=str, keep_default_na=False)
    negatives_path = args.truth / "truth_hard_negatives.csv"
    negatives = (
        pd.read_csv(negatives_path, dtype=str, keep_default_na=False)
        if negatives_path.exists()
        else None
    )
    figures = linkage.evaluate(linkage.pairs_from_groups(duplicates), truth, negatives)
    print(linkage.format_evaluation(figures))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "sample": _sample,
    "run": _run,
    "serve": _serve,
    "evaluate": _evaluate,
    "import-answers": _import_answers,
    "police-request": _police_request,
    "export-national": _export_national,
    "national": _national,
}
