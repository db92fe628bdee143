"""The command line's parser: its options and subcommands, the checks of option values, and
argparse's own messages put into Chinese on one line after the usage line (exit status 2)."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from datetime import date
from pathlib import Path

from pipelines.exit_status import EXIT_INPUT_ERROR

PROG = "xueji-quality"


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


def _not_negative(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"应为 0 或正整数，收到“{text}”")
    return number


def _block_slug(text: str) -> str:
    kind, _, name = text.partition("/")
    if not kind or not name:
        raise argparse.ArgumentTypeError(
            f"应为 Prefect 块的“类型/名称”（如 slack-webhook/xueji-ops），收到“{text}”"
        )
    return text


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version(PROG)
    except metadata.PackageNotFoundError:
        return "未安装"


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


def _operations_options(parser: argparse.ArgumentParser) -> None:
    """What a nightly run needs beside the checks: how many runs to keep, whom to tell."""
    from xueji_quality.reports.retention import DEFAULT_KEEP_RUNS

    parser.add_argument(
        "--keep-runs",
        type=_not_negative,
        default=DEFAULT_KEEP_RUNS,
        metavar="N",
        help=f"发布成功后只保留最近 N 次运行（latest 所指的从不删除），0 为全部保留；"
        f"默认 {DEFAULT_KEEP_RUNS}",
    )
    parser.add_argument(
        "--notify-block",
        type=_block_slug,
        default=None,
        metavar="类型/名称",
        help="运行失败时通过此 Prefect 通知块或 Webhook 块发送通知（如 slack-webhook/xueji-ops）；"
        "不给时读环境变量 XUEJI_NOTIFY_BLOCK",
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        usage="%(prog)s [--version] [--debug] {sample,run,serve,evaluate,import-answers,police-request,"
        "export-national,national} ...",
        description="中小学生学籍查重查错：按区县生成问题学籍清单",
    )
    parser.add_argument("--debug", action="store_true", help="出错时在终端显示完整回溯")
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="显示版本号并退出"
    )
    sub = parser.add_subparsers(dest="command", required=True, title="子命令", help="要执行的操作")

    sample = _with_debug(
        sub.add_parser(
            "sample",
            prog=f"{PROG} sample",
            help="生成带真值文件的模拟学籍导出",
            usage="%(prog)s --rows N --province CODE --out DIR [--seed S] [--format FORMAT] "
            "[--counties N] [--chunk-rows N]",
        )
    )
    sample.add_argument("--rows", type=_positive, required=True, help="生成的学籍记录行数")
    sample.add_argument(
        "--seed", type=int, default=1, help="随机种子（同一种子生成相同数据），默认 1"
    )
    sample.add_argument(
        "--province", type=_province, default=None, help="省级代码（两位数字，如 44 广东）"
    )
    sample.add_argument("--out", type=Path, required=True, help="输出目录（导出文件与真值文件）")
    sample.add_argument(
        "--format",
        choices=["csv", "csv-gb18030", "xlsx", "parquet"],
        default="csv",
        help="导出文件格式，默认 csv（UTF-8）",
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
            "[--counties CODE...] [--schools CODE...] [--force] [--keep-runs N] [更多选项见 -h]",
        )
    )
    run.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT", help="导出文件或文件夹（CSV/XLSX/Parquet）"
    )
    run.add_argument(
        "--province", type=_province, required=True, help="省级代码（两位数字，如 44 广东）"
    )
    run.add_argument(
        "--out", type=Path, required=True, help="输出根目录（各次运行、latest、台账、status.json）"
    )
    run.add_argument("--as-of", type=_date, default=None, help="运行日期（决定学年），默认今天")
    run.add_argument("--counties", nargs="+", default=None, help="只生成这些区县的清单")
    run.add_argument(
        "--schools", nargs="+", default=None, help="只报告这些学校（学校标识码）的记录"
    )
    run.add_argument(
        "--progress",
        action="store_true",
        help="每个阶段一个进度条（终端）；输出不是终端时每完成一个阶段打印一行（行数、用时）",
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
        "--task-runner",
        choices=["threads", "dask"],
        default="threads",
        help="任务执行器：threads（本机，默认）或 dask（Dask 集群）",
    )
    run.add_argument("--dask-address", default=None, help="Dask 集群地址，如 tcp://HOST:8786")
    run.add_argument(
        "--force",
        action="store_true",
        help="导出文件、选项、规则与答复均与上次已发布的运行相同时仍重新运行（默认不运行）",
    )
    run.add_argument(
        "--no-reuse",
        action="store_true",
        help="不复用上次运行保存的读入、校验与查重结果，完整重查（默认导出文件未变化时复用）",
    )
    _operations_options(run)

    serve = _with_debug(
        sub.add_parser(
            "serve",
            prog=f"{PROG} serve",
            help="按计划（北京时间）每晚检查收件箱中最新的导出",
            usage='%(prog)s --province CODE --inbox DIR --out DIR [--cron "0 2 * * *"] '
            "[--mask-ids] [--suites DIR] [--linkage-config FILE] [--keep-runs N] "
            "[--notify-block 类型/名称]",
        )
    )
    serve.add_argument(
        "--province", type=_province, required=True, help="省级代码（两位数字，如 44 广东）"
    )
    serve.add_argument(
        "--inbox", type=Path, required=True, help="收件箱文件夹（省级系统放入导出文件）"
    )
    serve.add_argument(
        "--out", type=Path, required=True, help="输出根目录（各次运行、latest、台账、status.json）"
    )
    serve.add_argument(
        "--cron", default="0 2 * * *", help="cron 表达式，Asia/Shanghai 时间，默认每天 2:00"
    )
    serve.add_argument("--mask-ids", action="store_true", help="Excel 中身份证件号打码")
    serve.add_argument("--suites", type=Path, default=None, help="GX 规则套件目录")
    serve.add_argument("--linkage-config", type=Path, default=None, help="查重模型参数文件")
    _operations_options(serve)

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
    evaluate.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR", help="一次已发布运行的目录（如 OUT/latest）"
    )
    evaluate.add_argument(
        "--truth", type=Path, required=True, help="sample 生成的目录（含 truth_*.csv 真值文件）"
    )

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
