"""pypinyin for readings of single characters, loaded without its phrase dictionary.

Every reading the project takes is of one character at a time (a name's characters, each with
all its readings), and pypinyin reads a lone character from its dictionary of phrases only if that
holds it as a phrase, which it never does (a test checks): the readings are the same without it,
as a comparison over all 41,000 characters showed. Loading that dictionary means
parsing 2.5 MB of JSON and copying both dictionaries on import: half a second in every process
that links, exports or compares names. ``PYPINYIN_NO_PHRASES`` and ``PYPINYIN_NO_DICT_COPY``
(pypinyin's own switches) leave both out, here and in the worker processes started after.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYPINYIN_NO_PHRASES", "1")
os.environ.setdefault("PYPINYIN_NO_DICT_COPY", "1")

from pypinyin import Style, pinyin  # noqa: E402

__all__ = ["Style", "pinyin"]
