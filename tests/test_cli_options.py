"""The command line's options: every one has help in Chinese, ``--version``, a mistyped option
of any subcommand shows that subcommand's usage and exits 2, the options of nightly operation
are checked, and a run refused before its flow starts says so in ``OUT/status.json``. All in
this process, in milliseconds: the parser stops before Prefect is imported."""

from __future__ import annotations

import json
import re

import pytest

from pipelines import cli
from pipelines.cli_parser import PROG

PROVINCE = "44"
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _every_parser():
    """The top-level parser and each subcommand's, with their names."""
    import argparse

    from pipelines.cli_parser import _parser

    parser = _parser()
    yield "", parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def test_every_option_has_help_in_chinese():
    import argparse

    missing = []
    for name, parser in _every_parser():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                shown = [action, *action._choices_actions]
            else:
                shown = [action]
            for item in shown:
                text = item.help
                if not text or text == argparse.SUPPRESS or not CHINESE.search(text):
                    missing.append(f"{name or PROG} {item.option_strings or item.dest}")
                elif re.search(r"[A-Za-z]{3,} [a-z]{3,} [a-z]{3,}", text):  # an English phrase
                    missing.append(f"{name or PROG} {item.option_strings}: {text}")
    assert not missing, missing


def test_version_prints_the_programs_version(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"{PROG} {metadata.version(PROG)}"


SUBCOMMAND_ARGS = {
    "sample": ["--rows", "9", "--province", PROVINCE, "--out", "o"],
    "run": ["roster.csv", "--province", PROVINCE, "--out", "o"],
    "serve": ["--province", PROVINCE, "--inbox", "i", "--out", "o"],
    "evaluate": ["run", "--truth", "t"],
    "import-answers": ["back.xlsx", "--out", "o"],
    "police-request": ["run", "--out", "r.csv"],
    "export-national": ["run", "--out", "x.parquet"],
    "national": ["x.parquet", "--out", "o"],
}


@pytest.mark.parametrize("name", list(SUBCOMMAND_ARGS))
def test_a_mistyped_option_of_any_subcommand_shows_its_usage_and_exits_2(name, capsys):
    names = [n for n, _ in _every_parser() if n]
    assert sorted(names) == sorted(SUBCOMMAND_ARGS)  # every subcommand is covered
    with pytest.raises(SystemExit) as done:
        cli.main([name, *SUBCOMMAND_ARGS[name], "--no-such-option"])
    shown = lines(capsys.readouterr().err)
    assert done.value.code == cli.EXIT_INPUT_ERROR
    assert len(shown) == 2 and shown[0].startswith(f"用法：{PROG} {name} ")
    assert shown[1].startswith("参数错误：无法识别的选项 --no-such-option")


@pytest.mark.parametrize(
    "option, expect",
    [
        (["--keep-runs", "-1"], "应为 0 或正整数"),
        (["--keep-runs", "ten"], "应为 0 或正整数"),
        (["--notify-block", "ops"], "类型/名称"),
    ],
)
def test_operations_options_are_checked(option, expect, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["run", *SUBCOMMAND_ARGS["run"], *option])
    assert done.value.code == cli.EXIT_INPUT_ERROR
    assert expect in lines(capsys.readouterr().err)[-1]


def test_a_run_refused_before_the_flow_says_so_in_the_status_file(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code = cli.main(
        ["run", str(tmp_path / "missing.csv"), "--province", PROVINCE, "--out", str(out)]
    )
    line = lines(capsys.readouterr().err)[-1]
    status = json.loads((out / "status.json").read_text(encoding="utf-8"))
    assert code == cli.EXIT_INPUT_ERROR
    assert status["state"] == "失败" and status["exit_status"] == code
    assert status["stage"] == "preflight" and status["stage_label"] == "检查输入"
    assert status["reason"] == line and "missing.csv" in line
    assert status["run_id"] is None and status["last_published"] is None
