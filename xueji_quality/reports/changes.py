"""What changed since the previous published run, read from the two runs' manifests.

The previous run is the one ``<out>/latest`` points at, read before this run is published. The
comparison is a Markdown table of the manifest totals (problem rows per severity and per rule,
duplicate groups per class) before → now, the counties that appeared or disappeared, and a
warning when the two runs were narrowed differently (their totals then compare unlike scopes).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from xueji_quality.reports.manifest import read_manifest

NO_PREVIOUS_RUN = "本输出目录中没有上一次已发布的运行，无可比较。\n"
# Manifest totals compared, with the label of their rows.
COMPARED_TOTALS: tuple[tuple[str, str], ...] = (
    ("problems_by_severity", "问题（级别）"),
    ("problems_by_rule", "规则"),
    ("duplicate_groups_by_class", "重复组"),
)
SCOPE_PARAMETERS: tuple[str, ...] = ("counties", "schools")


def previous_manifest(out_root: Path) -> dict | None:
    """Manifest of the run ``latest`` points at, or None (first run, or unreadable)."""
    try:
        return read_manifest(Path(out_root) / "latest")
    except (OSError, ValueError):
        return None


def diff_rows(title: str, before: Mapping[str, int], now: Mapping[str, int]) -> list[str]:
    """Markdown table rows ``| title key | before | now | change |``, one per key of either.

    >>> diff_rows("规则", {"ID_CHECKSUM": 3}, {"ID_CHECKSUM": 1, "NAME_MISSING": 2})
    ['| 规则 ID_CHECKSUM | 3 | 1 | -2 |', '| 规则 NAME_MISSING | 0 | 2 | +2 |']
    """
    rows = []
    for key in sorted(set(before) | set(now)):
        old, new = int(before.get(key, 0)), int(now.get(key, 0))
        rows.append(f"| {title} {key} | {old} | {new} | {new - old:+d} |")
    return rows


def changes_since(previous: Mapping | None, manifest: Mapping) -> str:
    """Markdown: totals per severity, rule and duplicate class before → now; counties new/gone."""
    if previous is None:
        return NO_PREVIOUS_RUN
    old_totals, new_totals = previous.get("totals", {}), manifest["totals"]
    lines = [
        f"上一次运行：{previous.get('run_id', '?')}（{previous.get('run_date', '?')}）",
        "",
        "| 项目 | 上次 | 本次 | 变化 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, title in COMPARED_TOTALS:
        lines += diff_rows(title, old_totals.get(key, {}), new_totals.get(key, {}))
    old_counties = {c["county_code"] for c in previous.get("counties", [])}
    new_counties = {c["county_code"] for c in manifest["counties"]}
    lines.append("")
    lines.append(f"- 新增区县：{'、'.join(sorted(new_counties - old_counties)) or '无'}")
    lines.append(f"- 不再出现的区县：{'、'.join(sorted(old_counties - new_counties)) or '无'}")
    old_scope = {k: previous.get("parameters", {}).get(k) for k in SCOPE_PARAMETERS}
    new_scope = {k: manifest["parameters"].get(k) for k in SCOPE_PARAMETERS}
    if old_scope != new_scope:
        lines.append(f"- 注意：两次运行的范围不同（上次 {old_scope}，本次 {new_scope}）")
    return "\n".join(lines) + "\n"
