"""Settings of the national linkage, read from config/national.json: the sizes that bound what a
worker holds (token rows per partition, records per piece, candidate pairs per partition), the
cap on runs of equal tokens, and the rule for pairs in which one record has no usable ID
(``link_pairs.MissingIdRule``). The file's ``parameter_notes`` say where each value comes from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from xueji_quality.errors import InputError
from xueji_quality.national.link_pairs import BLOCK_CAP, MissingIdRule
from xueji_quality.national.link_tokens import ROWS_PER_PIECE

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "national.json"
# Token rows per partition of the token shuffle (26 bytes each) and candidate pairs per
# partition of the decisions: what one worker holds at a time, whatever the number of records.
TOKEN_ROWS_PER_PARTITION = 1_000_000
PAIRS_PER_PARTITION = 2_000_000


@dataclass(frozen=True)
class LinkSettings:
    """How the national linkage runs (defaults: the values config/national.json ships with)."""

    block_cap: int = BLOCK_CAP
    rows_per_piece: int = ROWS_PER_PIECE
    token_rows_per_partition: int = TOKEN_ROWS_PER_PARTITION
    pairs_per_partition: int = PAIRS_PER_PARTITION
    partitions: int | None = None  # token partitions; from the token rows when None
    missing_id: MissingIdRule = field(default_factory=MissingIdRule)


_SIZES = {
    "token_rows_per_partition": "token_rows_per_partition",
    "records_per_piece": "rows_per_piece",
    "pairs_per_partition": "pairs_per_partition",
    "block_cap": "block_cap",
}
_RULE = [f.name for f in fields(MissingIdRule)]


def _number(source: str, key: str, value, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InputError(source, f"{key} 应为不小于 {least} 的整数，实际为 {value!r}")
    return value


def load_settings(path: Path | str | None = None) -> LinkSettings:
    """LinkSettings from a national config file (default: config/national.json); InputError
    naming the file and key when it cannot be used."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    source = str(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(source, "全国查重参数文件不存在") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(source, f"不是有效的 JSON（{error}）") from None
    if not isinstance(config, dict):
        raise InputError(source, "全国查重参数文件应为 JSON 对象")
    unknown = set(config) - {"about", "parameter_notes", "missing_id", *_SIZES}
    if unknown:
        raise InputError(source, f"未知的键 {'、'.join(sorted(unknown))}")
    sizes = {
        attribute: _number(source, key, config[key])
        for key, attribute in _SIZES.items()
        if key in config
    }
    rule = config.get("missing_id", {})
    if not isinstance(rule, dict) or set(rule) - set(_RULE):
        raise InputError(
            source, f"missing_id 只能含 {'、'.join(_RULE)}，实际为 {json.dumps(rule)[:80]}"
        )
    values = {}
    for key, value in rule.items():
        if key == "needs_guardian":
            if not isinstance(value, bool):
                raise InputError(source, f"missing_id.needs_guardian 应为 true 或 false：{value!r}")
            values[key] = value
        else:
            values[key] = _number(source, f"missing_id.{key}", value, least=0)
    return LinkSettings(**sizes, missing_id=MissingIdRule(**values))
