"""pypinyin without its phrase dictionary reads every single character as it does with it."""

from __future__ import annotations

import os
import subprocess
import sys

from xueji_quality.character_readings import Style, pinyin


def test_phrase_dictionary_holds_no_single_character():
    # pypinyin reads a lone character from its phrase dictionary only if that holds it as a
    # "phrase"; without one there, leaving the dictionary out changes no reading we take.
    from pypinyin import phrases_dict

    phrases = phrases_dict.phrases_dict
    assert len(phrases) > 40_000
    assert [p for p in phrases if len(p) == 1] == []


def test_heteronyms_keep_every_reading():
    assert set(pinyin("单", heteronym=True, style=Style.NORMAL)[0]) == {"dan", "shan", "chan"}
    assert pinyin("曾", heteronym=True, style=Style.NORMAL)[0][:1] == ["ceng"]


def test_switches_set_before_pypinyin_loads():
    code = (
        "from xueji_quality.character_readings import pinyin; "
        "from pypinyin import constants; print(len(constants.PHRASES_DICT))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYPINYIN_")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "0"
