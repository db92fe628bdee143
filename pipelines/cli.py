"""Command line: the top floor, the one place that reaches both the library and the Prefect flows.

xueji-quality [--debug] sample   --rows N --seed S --province CODE --out DIR [--format ...]
                                 [--counties N] [--chunk-rows N]
xueji-quality [--debug] run      INPUT... --province CODE --out DIR [--as-of YYYY-MM-DD]
                                 [--counties ...] [--schools ...] [--mask-ids] [--progress]
                                 [--task-runner threads|dask]
xueji-quality [--debug] serve    --province CODE --inbox DIR --out DIR [--cron "0 2 * * *"]
xueji-quality [--debug] evaluate RUN_DIR --truth DIR
xueji-quality [--debug] import-answers FILE.xlsx... --out DIR [--ledger FILE]

Every failure ends in one line on stderr, in Chinese, naming the file (and the row and field where
known), preceded at most by the usage line of a mistyped command. Exit statuses:

0  success
1  an internal failure (a defect, not the input): the traceback is written to a log file under
   ``<out>/logs/`` (or the system's temporary folder) whose path the line names
2  bad input: a file or folder that cannot be read, a wrong option or value
3  a run whose row counts did not add up (nothing is published)
4  another run holds the same output folder
5  a worker process was killed, most often by the system for want of memory
130  interrupted (Ctrl-C)

``--debug`` (before or after the subcommand) prints tracebacks on the terminal instead, and leaves
Prefect's own failure logs on the console.

Inputs are checked (``xueji_quality.preflight``) before Prefect, its server or any worker starts,
so a file that cannot be read is refused in about a second.

README.md has the whole reference.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
import sys
import tempfile
import traceback
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from xueji_quality import preflight
from xueji_quality.errors import ConservationError, InputError
from xueji_quality.reports.publish import RunLocked, run_lock
from xueji_quality.workers import WorkerDied

EXIT_INTERNAL_ERROR = 1
EXIT_INPUT_ERROR = 2
EXIT_RUN_FAILED = 3
EXIT_BUSY = 4
EXIT_WORKER_DIED = 5
EXIT_INTERRUPTED = 130

PROG = "xueji-quality"
LOG_FOLDER = "logs"
# Prefect's console lines that report a failure the command line reports itself, in one line.
PREFECT_FAILURE_LINES = ("Finished in state Failed", "Finished in state Crashed", "Crash detected")


# ---------------------------------------------------------------- option values


def _province(text: str) -> str:
    if len(text) != 2 or not text.isdigit():
        raise argparse.ArgumentTypeError(f"省级代码应为两位数字（如 44），收到“{text}”")
    from xueji_quality.standards import gb2260

    try:
        gb2260.province_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _provinces(text: str) -> list[str]:
    codes = [part.strip() for part in text.split(",") if part.strip()]
    if len(codes) < 2:
        raise argparse.ArgumentTypeError(f"至少两个省级代码，用逗号分隔（如 44,45），收到 {text!r}")
    return [_province(code) for code in codes]


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期应为 YYYY-MM-DD，收到“{text}”") from None


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"应为正整数，收到“{text}”")
    return number


# ---------------------------------------------------------------- the parser


class _Formatter(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):  # type: ignore[no-untyped-def]
        super().add_usage(usage, actions, groups, prefix if prefix is not None else "用法：")


ARGPARSE_MESSAGES: tuple[tuple[str, str], ...] = (
    (r"argument command: invalid choice: '?(?P<value>.*?)'? \(choose from (?P<choices>.+)\)", ""),
    (
        r"argument (?P<name>[^:]+): invalid choice: '?(?P<value>.*?)'? "
        r"\(choose from (?P<choices>.+)\)",
        "参数 {name} 的取值“{value}”无效（可选：{choices}）",
    ),
    (
        r"argument (?P<name>[^:]+): invalid (?P<type>\w+) value: '?(?P<value>.*?)'?",
        "参数 {name} 的取值“{value}”不是{type}",
    ),
    (r"argument (?P<name>[^:]+): expected one argument", "参数 {name} 后面缺少取值"),
    (
        r"argument (?P<name>[^:]+): expected at least one argument",
        "参数 {name} 后面至少要有一个取值",
    ),
    (r"argument (?P<name>[^:]+): expected at most one argument", "参数 {name} 后面最多一个取值"),
    (r"argument (?P<name>[^:]+): (?P<message>.+)", "参数 {name}：{message}"),
    (r"the following arguments are required: command", ""),
    (r"the following arguments are required: (?P<names>.+)", "缺少必需的参数：{names}"),
    (
        r"ambiguous option: (?P<option>\S+) could match (?P<matches>.+)",
        "选项 {option} 有歧义，可能是：{matches}",
    ),
    (r"unrecognized arguments: (?P<names>.+)", "无法识别的参数：{names}"),
)
TYPE_WORDS = {"int": "整数", "float": "数字"}


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage and a last line in Chinese; still exit status 2."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", _Formatter)
        kwargs.setdefault("add_help", False)
        super().__init__(*args, **kwargs)
        self._positionals.title = "位置参数"
        self._optionals.title = "选项"
        self.add_argument("-h", "--help", action="help", help="显示帮助并退出")
        self._seen: list[str] = []

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        self._seen = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            # Reported by the subcommand's parser, so the usage shown is the subcommand's.
            parser = self._subcommand(parsed) or self
            parser.error(parser.unrecognized(extras))
        return parsed

    def _subcommand(self, parsed: argparse.Namespace) -> _Parser | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action.choices.get(getattr(parsed, action.dest, None))
        return None

    def _subcommand_names(self) -> list[str]:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return list(action.choices)
        return []

    def _long_options(self) -> list[str]:
        return [o for o in self._option_string_actions if o.startswith("--")]

    def _known_option(self, token: str) -> bool:
        option = token.split("=", 1)[0]
        if option in self._option_string_actions:
            return True
        return option.startswith("--") and any(o.startswith(option) for o in self._long_options())

    def unrecognized(self, tokens: list[str]) -> str:
        """The first unknown token in words, with the nearest option when one is close."""
        for token in tokens:
            if token.startswith("-") and len(token) > 1 and not self._known_option(token):
                option = token.split("=", 1)[0]
                near = difflib.get_close_matches(option, self._long_options(), n=1, cutoff=0.6)
                hint = f"（是否是 {near[0]}？）" if near else f"（{self.prog} -h 列出全部选项）"
                return f"无法识别的选项 {option}{hint}"
        return f"多余的参数：{' '.join(tokens)}"

    def translated(self, message: str) -> str:
        if message.startswith("the following arguments are required"):
            unknown = [t for t in self._seen if t.startswith("--") and not self._known_option(t)]
            if unknown:  # a mistyped option is why a required one looks missing
                return self.unrecognized(unknown)
        for pattern, template in ARGPARSE_MESSAGES:
            match = re.fullmatch(pattern, message)
            if match is None:
                continue
            if not template:
                return self._command_message(match.groupdict().get("value"))
            parts = {k: (v or "").strip("'\"") for k, v in match.groupdict().items()}
            if "choices" in parts:
                parts["choices"] = "、".join(c.strip(" '\"") for c in parts["choices"].split(","))
            if "type" in parts:
                parts["type"] = TYPE_WORDS.get(parts["type"], "有效的取值")
            return template.format(**parts)
        return message

    def _command_message(self, value: str | None) -> str:
        names = self._subcommand_names()
        listed = "、".join(names)
        if value is None:
            return f"缺少子命令（可用：{listed}）"
        near = difflib.get_close_matches(value, names, n=1, cutoff=0.5)
        hint = f"；是否是 {near[0]}？" if near else ""
        return f"未知的子命令“{value}”（可用：{listed}）{hint}"

    def error(self, message: str):  # type: ignore[no-untyped-def]
        self.print_usage(sys.stderr)
        self.exit(EXIT_INPUT_ERROR, f"参数错误：{self.translated(message)}\n")


def _with_debug(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # After the subcommand too; SUPPRESS keeps an absent flag from undoing one given before it.
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="出错时在终端显示完整回溯"
    )
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        usage="%(prog)s [--debug] {sample,run,serve,evaluate,import-answers,police-request,"
        "export-national,national} ...",
        description="中小学生学籍查重查错：按区县生成问题学籍清单",
    )
    parser.add_argument("--debug", action="store_true", help="出错时在终端显示完整回溯")
    sub = parser.add_subparsers(dest="command", required=True, title="子命令")

    sample = _with_debug(
        sub.add_parser(
            "sample",
            prog=f"{PROG} sample",
            help="生成带真值文件的模拟学籍导出",
            usage="%(prog)s --rows N --province CODE --out DIR [--seed S] [--format FORMAT] "
            "[--counties N] [--chunk-rows N]",
        )
    )
    sample.add_argument("--rows", type=_positive, required=True)
    sample.add_argument("--seed", type=int, default=1)
    sample.add_argument("--province", type=_province, default=None)
    sample.add_argument("--out", type=Path, required=True)
    sample.add_argument(
        "--format", choices=["csv", "csv-gb18030", "xlsx", "parquet"], default="csv"
    )
    sample.add_argument(
        "--counties", type=_positive, default=None, help="随机（按种子）选用本省 N 个区县"
    )
    sample.add_argument(
        "--chunk-rows",
        type=_positive,
        default=1_000_000,
        help="超过此行数时分块生成并追加写入（内存只需一块），默认 1000000",
    )
    sample.add_argument(
        "--provinces",
        type=_provinces,
        default=None,
        help="多个省（如 44,45,43,36）：每省一份学籍，含跨省重复注册与跨省真值（全国查重用）",
    )
    sample.add_argument(
        "--police",
        action="store_true",
        help="同时生成公安人口信息库摘录、比对结果文件与其真值（registry.parquet 等）",
    )

    run = _with_debug(
        sub.add_parser(
            "run",
            prog=f"{PROG} run",
            help="对学籍导出运行查重查错并发布区县清单",
            usage="%(prog)s INPUT... --province CODE --out DIR [--as-of YYYY-MM-DD] "
            "[--counties CODE...] [--schools CODE...] [更多选项见 -h]",
        )
    )
    run.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT", help="导出文件或文件夹（CSV/XLSX/Parquet）"
    )
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
    police = run.add_mutually_exclusive_group()
    police.add_argument(
        "--police-registry",
        type=Path,
        default=None,
        help="公安人口信息库摘录（CSV/XLSX/Parquet），与学籍比对",
    )
    police.add_argument(
        "--police-results",
        type=Path,
        default=None,
        help="公安返回的比对结果文件（police-request 请求的答复）",
    )
    run.add_argument(
        "--national-returns",
        nargs="+",
        type=Path,
        default=None,
        metavar="FILE",
        help="全国查重回执（returns/<省份>.parquet），列出外省已注册有学籍的学生",
    )
    run.add_argument(
        "--per-school", action="store_true", help="每个区县清单旁再按学校各写一个小工作簿"
    )
    run.add_argument(
        "--task-runner", choices=["threads", "dask"], default="threads", help="任务执行器"
    )
    run.add_argument("--dask-address", default=None, help="Dask 集群地址，如 tcp://HOST:8786")

    serve = _with_debug(
        sub.add_parser(
            "serve",
            prog=f"{PROG} serve",
            help="按计划（北京时间）每晚检查收件箱中最新的导出",
            usage='%(prog)s --province CODE --inbox DIR --out DIR [--cron "0 2 * * *"] '
            "[--mask-ids] [--suites DIR] [--linkage-config FILE]",
        )
    )
    serve.add_argument("--province", type=_province, required=True)
    serve.add_argument("--inbox", type=Path, required=True)
    serve.add_argument("--out", type=Path, required=True)
    serve.add_argument("--cron", default="0 2 * * *", help="cron 表达式，Asia/Shanghai 时间")
    serve.add_argument("--mask-ids", action="store_true")
    serve.add_argument("--suites", type=Path, default=None, help="GX 规则套件目录")
    serve.add_argument("--linkage-config", type=Path, default=None, help="查重模型参数文件")

    export = _with_debug(
        sub.add_parser(
            "export-national",
            prog=f"{PROG} export-national",
            help="从一次运行生成全国查重交换文件（只含密钥令牌，不含身份证号、姓名）",
            usage="%(prog)s RUN_DIR --out FILE.parquet [--key-file KEY] [--inputs FILE...]",
        )
    )
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="一次运行的报告目录")
    export.add_argument("--out", type=Path, required=True, help="交换文件（Parquet）")
    export.add_argument(
        "--key-file",
        type=Path,
        default=None,
        help="全国密钥文件；不给时读环境变量 XUEJI_NATIONAL_KEY（密钥不写入任何输出）",
    )
    export.add_argument(
        "--inputs", nargs="+", type=Path, default=None, help="该次运行的导出文件已移动时的新位置"
    )

    national = _with_debug(
        sub.add_parser(
            "national",
            prog=f"{PROG} national",
            help="在 Dask 上对各省交换文件做全国跨省查重，写出各省回执",
            usage="%(prog)s FILE... --out DIR [--dask-address tcp://HOST:PORT] [--workers N]",
        )
    )
    national.add_argument("files", nargs="+", type=Path, metavar="FILE", help="各省交换文件")
    national.add_argument("--out", type=Path, required=True, help="输出目录（returns/ 与汇总）")
    national.add_argument("--dask-address", default=None, help="Dask 集群地址；不给时启动本机集群")
    national.add_argument("--workers", type=_positive, default=2, help="本机集群的 worker 数")
    national.add_argument(
        "--memory-limit", default="4GB", help="本机集群每个 worker 的内存上限，默认 4GB"
    )

    request = _with_debug(
        sub.add_parser(
            "police-request",
            prog=f"{PROG} police-request",
            help="为一次运行生成送公安核查的请求文件（仅身份证号与姓名）",
            usage="%(prog)s RUN_DIR --out FILE.csv|FILE.xlsx",
        )
    )
    request.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="一次运行的报告目录")
    request.add_argument(
        "--out", type=Path, required=True, help="请求文件（.csv 为带 BOM 的 UTF-8，.xlsx 为 Excel）"
    )

    evaluate = _with_debug(
        sub.add_parser(
            "evaluate",
            prog=f"{PROG} evaluate",
            help="用真值文件评估一次运行的查重结果",
            usage="%(prog)s RUN_DIR --truth DIR",
        )
    )
    evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    evaluate.add_argument("--truth", type=Path, required=True)

    answers = _with_debug(
        sub.add_parser(
            "import-answers",
            prog=f"{PROG} import-answers",
            help="导入区县交回的问题学籍清单（处理方式、备注）",
            usage="%(prog)s FILE.xlsx... --out DIR [--ledger FILE]",
        )
    )
    answers.add_argument(
        "files", nargs="+", type=Path, metavar="FILE.xlsx", help="交回的清单（xlsx）"
    )
    answers.add_argument("--out", type=Path, required=True, help="产生这些清单的输出目录")
    answers.add_argument(
        "--ledger", type=Path, default=None, help="答复台账，默认 OUT/ledger.sqlite"
    )
    return parser


# ---------------------------------------------------------------- Prefect's console


# "quiet": drop Prefect's failure reports (not with --debug); "closed": the command has said its
# last line. Reset by each call of main(); a process that exits keeps it until Prefect's exit
# hooks have run.
_prefect_console = {"quiet": False, "closed": False}


def _keep_console_record(record: logging.LogRecord) -> bool:
    """Prefect's console lines, less those reporting a failure the command line reports in one
    line of its own (tracebacks, failed states), and nothing after that line: the temporary
    server says it stops when the process exits, after the command's last word."""
    if _prefect_console["closed"]:
        return False
    if not _prefect_console["quiet"]:
        return True
    if record.exc_info or (
        record.levelno >= logging.ERROR
        and record.name.startswith(("prefect.flow_runs", "prefect.task_runs"))
    ):
        return False
    return not record.getMessage().startswith(PREFECT_FAILURE_LINES)


def _filter_prefect_console(debug: bool) -> None:
    """Filter Prefect's console handlers (Prefect is imported, so its logging is set up). The
    records still reach Prefect's API; with ``--debug`` the console shows the failures too."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and (
                _keep_console_record not in handler.filters
            ):
                handler.addFilter(_keep_console_record)
    _prefect_console["quiet"] = not debug


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


# ---------------------------------------------------------------- subcommands


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
        if args.task_runner != "dask":
            from xueji_quality import workers

            # The run's worker processes come from this server: it imports while Prefect starts.
            workers.start()
        from pipelines.progress import stage_progress
        from pipelines.provincial import provincial_run
        from pipelines.runners import task_runner

        _filter_prefect_console(args.debug)
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
                police_registry=str(args.police_registry) if args.police_registry else None,
                police_results=str(args.police_results) if args.police_results else None,
                national_returns=[str(p) for p in args.national_returns or []] or None,
                per_school=args.per_school,
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


# ---------------------------------------------------------------- failures


def _say(line: str) -> None:
    """The command's last word on stderr: nothing from Prefect's console may follow it."""
    _prefect_console["closed"] = True
    # Messages quoted from a library (pyarrow's, for one) may span lines.
    print(re.sub(r"\s*\n\s*", " ", line.strip()), file=sys.stderr, flush=True)


def _log_folder(args: argparse.Namespace) -> Path:
    """``<out>/logs`` when the command has an output folder that exists, else the temp folder."""
    out = getattr(args, "out", None)
    if out is not None and Path(out).is_dir():
        return Path(out) / LOG_FOLDER
    return Path(tempfile.gettempdir())


def _write_traceback(args: argparse.Namespace, argv: list[str], exc: BaseException) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{PROG}-{args.command}-{stamp}-{os.getpid()}.log"
    text = (
        f"{PROG} {' '.join(argv)}\n{datetime.now().astimezone().isoformat()}\n"
        f"Python {sys.version.split()[0]}\n\n" + "".join(traceback.format_exception(exc))
    )
    for folder in (_log_folder(args), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path.resolve()
        except OSError:
            continue
    raise OSError("无法写入日志文件")


def _internal_failure(args: argparse.Namespace, argv: list[str], exc: BaseException) -> int:
    first_line = next(iter(str(exc).strip().splitlines()), "")
    what = f"{type(exc).__name__}: {first_line[:200]}" if first_line else type(exc).__name__
    line = f"内部错误（程序缺陷，不是输入的问题）：{what}"
    if args.debug:
        traceback.print_exception(exc, file=sys.stderr)
        _say(line)
        return EXIT_INTERNAL_ERROR
    try:
        log = _write_traceback(args, argv, exc)
    except OSError:
        traceback.print_exception(exc, file=sys.stderr)
        _say(f"{line}；日志文件无法写入，回溯见上")
        return EXIT_INTERNAL_ERROR
    _say(f"{line}；详细信息已写入 {log}（请交给维护人员；加 --debug 可在终端显示）")
    return EXIT_INTERNAL_ERROR


# Failures a user can act on: (type, start of the line, exit status). Anything else is internal.
KNOWN_FAILURES: tuple[tuple[type[Exception], str, int], ...] = (
    (InputError, "输入错误：", EXIT_INPUT_ERROR),
    (preflight.OptionError, "参数错误：", EXIT_INPUT_ERROR),
    (ConservationError, "运行失败，未发布任何报告：", EXIT_RUN_FAILED),
    (RunLocked, "", EXIT_BUSY),
    (WorkerDied, "运行失败：", EXIT_WORKER_DIED),
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    _prefect_console.update(quiet=False, closed=False)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        _say("已中断")
        return EXIT_INTERRUPTED
    except Exception as exc:
        for kind, start, status in KNOWN_FAILURES:
            if isinstance(exc, kind):
                if args.debug:
                    traceback.print_exception(exc, file=sys.stderr)
                _say(f"{start}{exc}")
                return status
        return _internal_failure(args, argv, exc)


if __name__ == "__main__":
    sys.exit(main())
