"""The command line on bad input: one clear line, exit status 2, no traceback, before Prefect.

Each case runs the real command in a process of its own, as a data officer types it: the inputs
of the hostile corpus (``test_hostile.CASES``) that cannot be read, a few more built here (an
empty folder, a roster without an ID column, binary garbage, UTF-16 without a byte order mark),
a bad value for every subcommand and a mistyped option or subcommand. The inputs are refused
before Prefect or its server starts (and before Great Expectations or the linkage is imported),
which is what answers them in a second or two: the command is watched for what it loaded, not
timed, so a busy machine cannot fail it.

An error found only inside the flow (damage past what the input checks read) goes through
Prefect; it must end the same way, in one line and no traceback. Internal failures are the other
exit status: the traceback goes to a log file named by the one line, or to the terminal with
``--debug``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_hostile import CASES, HEADER, csv_text, put, row

from pipelines import cli

ROOT = Path(__file__).resolve().parents[1]
PROVINCE = "44"
CHINESE = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Case:
    argv: Callable[[Path], list[str]]  # the command's arguments, given a folder of its own
    names: str  # text the last line must hold: the file, folder or option it is about
    expect: str  # Chinese text the last line must hold


@dataclass(frozen=True)
class Outcome:
    status: int
    stderr: str
    # Heavy libraries the command had imported when it ended (None: it did not say).
    loaded: tuple[str, ...] | None = None


def run_args(build: Callable[[Path], list[Path]]) -> Callable[[Path], list[str]]:
    """``run`` on the inputs ``build`` makes, into an output folder that does not exist yet."""

    def argv(folder: Path) -> list[str]:
        inputs = build(folder)
        return ["run", *map(str, inputs), "--province", PROVINCE, "--out", str(folder / "out")]

    return argv


def hostile(name: str) -> Callable[[Path], list[Path]]:
    return lambda folder: CASES[name].build(folder)[0]


def empty_folder(folder: Path) -> list[Path]:
    (folder / "exports").mkdir()
    return [folder / "exports"]


def no_id_column(folder: Path) -> list[Path]:
    keep = [i for i, header in enumerate(HEADER) if header != "身份证件号"]
    rows = [[row(n)[i] for i in keep] for n in (1, 2)]
    return [put(folder, "noid.csv", csv_text(rows, header=[HEADER[i] for i in keep]))]


def binary_garbage(folder: Path) -> list[Path]:
    return [put(folder, "garbage.csv", random.Random(7).randbytes(8192))]


def utf16_without_bom(folder: Path) -> list[Path]:
    text = csv_text([row(1), row(2)], end="\r\n")
    return [put(folder, "utf16.csv", text.encode("utf-16-le"))]


def readable_csv(folder: Path) -> Path:
    return put(folder, "roster.csv", csv_text([row(1), row(2)]))


def a_file(folder: Path, name: str) -> Path:
    return put(folder, name, "not a folder")


INPUT_CASES: dict[str, Case] = {
    "missing_path": Case(run_args(hostile("path_missing")), "no-such-export.csv", "路径不存在"),
    "empty_file": Case(run_args(hostile("empty_file")), "empty.csv", "文件为空"),
    "empty_folder": Case(run_args(empty_folder), "exports", "没有可读取的导出文件"),
    "folder_without_exports": Case(
        run_args(hostile("folder_without_exports")), "inbox", "没有可读取的导出文件"
    ),
    "corrupt_xlsx_truncated": Case(run_args(hostile("xlsx_truncated")), "cut.xlsx", "损坏"),
    "corrupt_xlsx_damaged_sheet": Case(
        run_args(hostile("xlsx_damaged_sheet")), "damaged.xlsx", "损坏"
    ),
    "corrupt_xlsx_zeroed_bytes": Case(run_args(hostile("xlsx_zeroed_bytes")), "flip.xlsx", "损坏"),
    "csv_named_xlsx": Case(
        run_args(hostile("xlsx_that_is_csv")), "fake.xlsx", "不是有效的 Excel 文件"
    ),
    "parquet_wrong_schema": Case(
        run_args(hostile("parquet_wrong_schema")), "wrong.parquet", "缺少必需的表头"
    ),
    "parquet_truncated": Case(run_args(hostile("parquet_truncated")), "t.parquet", "不完整"),
    "no_id_column": Case(run_args(no_id_column), "noid.csv", "身份证件号"),
    "binary_garbage": Case(run_args(binary_garbage), "garbage.csv", "二进制"),
    "utf16": Case(run_args(utf16_without_bom), "utf16.csv", "UTF-16"),
}

# A bad value for each of the other subcommands, and a run whose output folder is a file.
VALUE_CASES: dict[str, Case] = {
    "run_out_is_a_file": Case(
        lambda d: [
            "run",
            str(readable_csv(d)),
            "--province",
            PROVINCE,
            "--out",
            str(a_file(d, "out")),
        ],
        "out",
        "不是文件夹",
    ),
    "run_linkage_config_missing": Case(
        lambda d: [
            "run",
            str(readable_csv(d)),
            "--province",
            PROVINCE,
            "--out",
            str(d / "out"),
            "--linkage-config",
            str(d / "linkage.json"),
        ],
        "linkage.json",
        "不存在",
    ),
    "sample_out_is_a_file": Case(
        lambda d: ["sample", "--rows", "10", "--province", PROVINCE, "--out", str(a_file(d, "o"))],
        "o",
        "不是文件夹",
    ),
    "serve_inbox_missing": Case(
        lambda d: ["serve", "--province", PROVINCE, "--inbox", str(d / "inbox"), "--out", str(d)],
        "inbox",
        "不存在",
    ),
    "evaluate_run_missing": Case(
        lambda d: ["evaluate", str(d / "no-run"), "--truth", str(d)], "no-run", "不存在"
    ),
    "import_answers_file_missing": Case(
        lambda d: ["import-answers", str(d / "back.xlsx"), "--out", str(d)], "back.xlsx", "不存在"
    ),
}

TYPO_CASES: dict[str, Case] = {
    "run": Case(
        lambda d: ["run", str(readable_csv(d)), "--provnice", PROVINCE, "--out", str(d / "o")],
        "--provnice",
        "是否是 --province",
    ),
    "sample": Case(
        lambda d: ["sample", "--rows", "9", "--province", PROVINCE, "--out", str(d), "--sed", "2"],
        "--sed",
        "是否是 --seed",
    ),
    "serve": Case(
        lambda d: ["serve", "--province", PROVINCE, "--inbox", str(d), "--out", str(d), "--corn"],
        "--corn",
        "是否是 --cron",
    ),
    "evaluate": Case(lambda d: ["evaluate", str(d), "--truht", str(d)], "--truht", "--truth"),
    "import-answers": Case(
        lambda d: ["import-answers", "back.xlsx", "--out", str(d), "--ledgr", "x"],
        "--ledgr",
        "--ledger",
    ),
    "subcommand": Case(lambda d: ["rnu", "roster.csv"], "rnu", "未知的子命令"),
}


def cli_env(prefect_home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        **extra,
    )
    return env


# Runs the command as ``python -m pipelines.cli`` does and writes, as the process exits, which
# of the heavy libraries it had loaded.
# The command ends its process with os._exit once its exit hooks have run (pipelines.cli.console):
# what it had loaded is recorded there.
LOADED_PROBE = (
    "import json, os, runpy, sys\n"
    "HEAVY = ('prefect', 'great_expectations', 'recordlinkage', 'prefect.server')\n"
    "end = os._exit\n"
    "def record_and_end(status):\n"
    "    open(os.environ['XQ_LOADED'], 'w').write("
    "json.dumps([m for m in HEAVY if m in sys.modules]))\n"
    "    end(status)\n"
    "os._exit = record_and_end\n"
    "sys.argv = ['xueji-quality', *sys.argv[1:]]\n"
    "runpy.run_module('pipelines.cli', run_name='__main__', alter_sys=True)\n"
)


def run_cli(argv: list[str], env: dict[str, str], cwd: Path) -> Outcome:
    """The command as ``python -m pipelines.cli`` runs it, with what it had loaded."""
    record = cwd / "loaded.json"
    done = subprocess.run(
        [sys.executable, "-c", LOADED_PROBE, *argv],
        cwd=cwd,
        env={**env, "XQ_LOADED": str(record)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    loaded = tuple(json.loads(record.read_text())) if record.is_file() else None
    return Outcome(done.returncode, done.stderr, loaded)


ALL_CASES = {
    **{f"input:{k}": v for k, v in INPUT_CASES.items()},
    **{f"value:{k}": v for k, v in VALUE_CASES.items()},
    **{f"typo:{k}": v for k, v in TYPO_CASES.items()},
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    """Every case run once, two processes at a time."""
    env = cli_env(tmp_path_factory.mktemp("prefect_home"))
    jobs = {}
    for name, case in ALL_CASES.items():
        folder = tmp_path_factory.mktemp(re.sub(r"\W", "_", name))
        jobs[name] = (case.argv(folder), folder)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(run_cli, argv, env, folder) for name, (argv, folder) in jobs.items()
        }
        return {name: future.result() for name, future in futures.items()}


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("name", list(ALL_CASES))
def test_bad_input_ends_in_one_clear_line(name, outcomes):
    case = ALL_CASES[name]
    outcome = outcomes[name]
    shown = lines(outcome.stderr)
    assert outcome.status == cli.EXIT_INPUT_ERROR, outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert 1 <= len(shown) <= 2, outcome.stderr
    last = shown[-1]
    assert case.names in last and case.expect in last, last
    assert CHINESE.search(last)
    assert last.startswith(("输入错误：", "参数错误：")), last
    if len(shown) == 2:  # a mistyped command shows its usage first
        assert shown[0].startswith("用法：xueji-quality"), shown[0]


def test_bad_input_is_refused_before_prefect_or_validation_is_loaded(outcomes):
    """Each bad input of a run: the answer comes before any flow or server starts, with Prefect,
    Great Expectations and the linkage not even imported."""
    refused = {name: o for name, o in outcomes.items() if name.startswith("input:")}
    assert refused
    assert all(o.status == cli.EXIT_INPUT_ERROR for o in refused.values())
    assert all(o.loaded is not None for o in refused.values())
    loaded = {name: o.loaded for name, o in refused.items() if o.loaded}
    assert not loaded, loaded


@pytest.mark.parametrize("name", list(TYPO_CASES))
def test_a_mistyped_option_shows_that_subcommands_usage(name, outcomes):
    shown = lines(outcomes[f"typo:{name}"].stderr)
    assert len(shown) == 2
    command = "" if name == "subcommand" else f" {name}"
    assert shown[0].startswith(f"用法：xueji-quality{command} ")


@pytest.mark.parametrize("name", list(CASES))
def test_the_input_checks_refuse_what_the_run_refuses_and_nothing_else(name, tmp_path):
    """Every file of the hostile corpus the run reads through passes the checks (no file a run
    could read is refused), and every one it refuses is refused by them, before the flow."""
    from xueji_quality import preflight
    from xueji_quality.errors import InputError

    inputs, _ = CASES[name].build(tmp_path)
    if CASES[name].outcome == "run":
        preflight.check_exports(inputs)
    else:
        with pytest.raises(InputError) as refused:
            preflight.check_exports(inputs)
        assert any(path.name in refused.value.file for path in inputs)


# ---------------------------------------------------------------- inside the flow


def damaged_past_the_footer(folder: Path) -> Path:
    """A Parquet file whose footer and schema are sound and whose data pages are not: only
    reading the rows finds it, inside the flow."""
    rows = [row(n) for n in range(1, 2001)]
    path = folder / "deep.parquet"
    table = pa.table({header: [r[i] for r in rows] for i, header in enumerate(HEADER)})
    pq.write_table(table, path, row_group_size=500)
    page = pq.ParquetFile(path).metadata.row_group(2).column(1).data_page_offset
    data = bytearray(path.read_bytes())
    data[page + 20 : page + 60] = b"\xff" * 40
    path.write_bytes(bytes(data))
    return path


def test_an_error_inside_the_flow_ends_in_one_line_without_a_traceback(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    from xueji_quality import preflight

    path = damaged_past_the_footer(tmp_path)
    preflight.check_exports([path])  # passes: the damage is past what the checks read
    env = cli_env(tmp_path / "prefect_home", PREFECT_API_URL=PREFECT_API_URL.value())
    argv = ["run", str(path), "--province", PROVINCE, "--out", str(tmp_path / "out")]
    outcome = run_cli(argv, env, tmp_path)
    assert outcome.status == cli.EXIT_INPUT_ERROR, outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert "Finished in state Failed" not in outcome.stderr
    last = lines(outcome.stderr)[-1]
    assert last.startswith("输入错误：文件 deep.parquet") and "Parquet" in last, last
    assert not (tmp_path / "out" / "latest").exists()


def test_prefect_console_says_nothing_after_the_last_line():
    def record(name: str, level: int, message: str, exc_info=None) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, message, None, exc_info)

    failed = record("prefect.task_runs", logging.ERROR, "Finished in state Failed('x')")
    info = record("prefect.flow_runs", logging.INFO, "Beginning flow run")
    stopping = record("prefect", logging.INFO, "Stopping temporary server on http://x")
    try:
        raise RuntimeError("inside a task")
    except RuntimeError:
        traced = record("prefect.flow_runs", logging.ERROR, "Encountered", sys.exc_info())
    try:
        cli._prefect_console.update(quiet=True, closed=False)
        assert cli._keep_console_record(info) and cli._keep_console_record(stopping)
        assert not cli._keep_console_record(failed) and not cli._keep_console_record(traced)
        cli._prefect_console.update(quiet=False)  # --debug: the failure reports show
        assert cli._keep_console_record(failed) and cli._keep_console_record(traced)
        cli._say("输入错误：文件 x.csv：文件为空（0 字节）")
        assert not cli._keep_console_record(stopping) and not cli._keep_console_record(info)
    finally:
        cli._prefect_console.update(quiet=False, closed=False)


# ---------------------------------------------------------------- internal failures


def broken(args) -> int:
    raise RuntimeError("a state the code never expected\nsecond line")


@pytest.fixture
def broken_commands(monkeypatch, tmp_path):
    for name in cli.COMMANDS:
        monkeypatch.setitem(cli.COMMANDS, name, broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()


def logged_file(line: str) -> Path:
    match = re.search(r"详细信息已写入 (.+?)（", line)
    assert match, line
    return Path(match.group(1))


def test_an_internal_failure_writes_its_traceback_to_the_log_it_names(
    broken_commands, tmp_path, capsys
):
    out = tmp_path / "out"
    out.mkdir()
    code = cli.main(["import-answers", "back.xlsx", "--out", str(out)])
    shown = lines(capsys.readouterr().err)
    assert code == cli.EXIT_INTERNAL_ERROR != cli.EXIT_INPUT_ERROR
    assert len(shown) == 1 and "Traceback" not in shown[0]
    assert shown[0].startswith("内部错误") and "RuntimeError: a state the code never" in shown[0]
    log = logged_file(shown[0])
    assert log.parent == (out / cli.LOG_FOLDER).resolve()
    text = log.read_text(encoding="utf-8")
    assert "Traceback" in text and "in broken" in text and "second line" in text

    # A command without an output folder writes its log to the temporary folder.
    code = cli.main(["evaluate", str(tmp_path), "--truth", str(tmp_path)])
    log = logged_file(lines(capsys.readouterr().err)[-1])
    assert code == cli.EXIT_INTERNAL_ERROR and log.parent == (tmp_path / "tmp").resolve()


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_on_the_terminal(broken_commands, tmp_path, capsys, where):
    command = ["import-answers", "back.xlsx", "--out", str(tmp_path)]
    argv = ["--debug", *command] if where == "before" else [*command, "--debug"]
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == cli.EXIT_INTERNAL_ERROR
    assert "Traceback" in err and "in broken" in err
    assert lines(err)[-1].startswith("内部错误") and "详细信息已写入" not in err
    assert not (tmp_path / cli.LOG_FOLDER).exists()
