"""pypinyin without its phrase dictionary reads every single character as it does with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_READ_ALL = """
import json, sys
from pypinyin import Style, pinyin, pinyin_dict
chars = [chr(c) for c in sorted(pinyin_dict.pinyin_dict)]
json.dump([pinyin(ch, heteronym=True, style=Style.NORMAL)[0] for ch in chars], sys.stdout)
"""


def _readings(**switches: str) -> list[list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYPINYIN_")}
    env.update(switches)
    done = subprocess.run(
        [sys.executable, "-c", _READ_ALL], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_single_characters_read_the_same_without_phrases():
    with_phrases = _readings()
    without = _readings(PYPINYIN_NO_PHRASES="1", PYPINYIN_NO_DICT_COPY="1")
    assert len(with_phrases) > 40_000
    assert without == with_phrases


def test_switches_set_before_pypinyin_loads():
    code = (
        "import sys; from xueji_quality.character_readings import pinyin; "
        "from pypinyin import constants; print(len(constants.PHRASES_DICT))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYPINYIN_")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "0"
