"""The Data Docs site's own front page, and names a Windows machine can hold.

Great Expectations' index lists one validation result per suite and part of a run (a staged
roster is validated a chunk at a time) and says nothing about the run as a whole. The site's
``index.html`` is therefore this module's page, in Chinese: records checked, rules, records that
failed each rule (summed over the parts), and a table of every part and suite linking its GX
page. GX's own index stays beside it as ``gx_index.html``; its pages' "Home" link leads here.

The totals come from the stored validation results the site is built from, and are kept in the
site as ``totals.json``. A later stage that validates its own records (the police cross-check,
the national returns) builds its site in a folder of the first; its totals then join the first
site's front page, so one page covers the run.

Folder and file names of the site come from run names and suite names; a published run is copied
to Windows file servers and zipped for counties, so :func:`windows_safe_name` keeps them to what
Windows accepts.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from xueji_quality import schema
from xueji_quality.datadocs_samples import SAMPLE_ROWS
from xueji_quality.rule_names import RULE_NAMES
from xueji_quality.validate_suites import SEVERITY_LABELS

TOTALS_FILE = "totals.json"
INDEX_FILE = "index.html"
GX_INDEX_FILE = "gx_index.html"
STAGE_LABELS = {"roster": "学籍校验", "police": "公安比对", "national": "全国查重回执"}

# Characters Windows refuses in a file or folder name, and control characters.
_REFUSED = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
# Names Windows reserves for devices, with any extension (CON.txt is refused too).
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{d}{i}" for d in ("COM", "LPT") for i in range(1, 10)]
)


def windows_safe_name(name: str, replacement: str = "_") -> str:
    """``name`` as a file or folder name Windows accepts.

    Each refused character (``< > : " / \\ | ? *`` and control characters) becomes
    ``replacement``; trailing dots and spaces go; a device name (CON, NUL, COM1…) gets a leading
    ``_``; an empty result is ``_``.

    >>> windows_safe_name("part 1 of 3: rows 1-10 (counties 440103-440111). ")
    'part 1 of 3_ rows 1-10 (counties 440103-440111)'
    """
    safe = _REFUSED.sub(replacement, name).rstrip(". ")
    if safe.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        safe = "_" + safe
    return safe or "_"


def _natural_key(text: str) -> list[Any]:
    """Sort key that orders numbers in text by value (part 2 before part 10)."""
    return [int(piece) if piece.isdigit() else piece for piece in re.split(r"(\d+)", text)]


def _stored_results(validations_dir: Path) -> Iterable[tuple[Path, dict[str, Any]]]:
    for path in sorted(validations_dir.rglob("*.json")):
        yield path, json.loads(path.read_text(encoding="utf-8"))


def _expectation_key(suite: str, config: dict[str, Any]) -> str:
    # The same expectation has another id in each part's GX project: known by type and meta.
    return json.dumps([suite, config["type"], config.get("meta") or {}], sort_keys=True)


def site_totals(validations_dir: Path, stage: str) -> dict[str, Any]:
    """Totals of the stored validation results of a GX project (``…/uncommitted/validations``).

    ``parts``: one entry per run name (a part of the roster), each with its records and, per
    suite, the GX page (relative to the site), expectations run and failed, failing records.
    ``rules``: per rule code, severity and field, the records failing it summed over the parts
    and the messages of its expectations. ``expectations`` and ``failed_expectations`` count
    each expectation once, however many parts ran it.
    """
    parts: dict[str, dict[str, Any]] = {}
    expectations: dict[str, dict[str, Any]] = {}
    for path, stored in _stored_results(validations_dir):
        suite = str(stored.get("suite_name"))
        run_name = str(stored["meta"]["run_id"]["run_name"])
        part = parts.setdefault(run_name, {"name": run_name, "records": 0, "suites": []})
        outcomes = stored.get("results", [])
        rows = max((int(o["result"].get("element_count", 0)) for o in outcomes), default=0)
        part["records"] = max(part["records"], rows)
        statistics = stored.get("statistics", {})
        part["suites"].append(
            {
                "suite": suite,
                "page": path.relative_to(validations_dir.parent).with_suffix(".html").as_posix(),
                "expectations": int(statistics.get("evaluated_expectations", len(outcomes))),
                "failed": int(statistics.get("unsuccessful_expectations", 0)),
                "unexpected": sum(int(o["result"].get("unexpected_count", 0)) for o in outcomes),
            }
        )
        for outcome in outcomes:
            config = outcome["expectation_config"]
            meta = config.get("meta") or {}
            entry = expectations.setdefault(
                _expectation_key(suite, config),
                {
                    "rule": str(meta.get("rule") or config["type"]),
                    "severity": str(meta.get("severity", "E")),
                    "field": str(meta.get("field") or ""),
                    "message": str(meta.get("message") or ""),
                    "unexpected": 0,
                },
            )
            entry["unexpected"] += int(outcome["result"].get("unexpected_count", 0))
    rules: dict[tuple[str, str, str], dict[str, Any]] = {}
    for entry in expectations.values():
        rule = rules.setdefault(
            (entry["rule"], entry["severity"], entry["field"]),
            {
                "rule": entry["rule"],
                "name": RULE_NAMES.get(entry["rule"], entry["rule"]),
                "severity": entry["severity"],
                "field": entry["field"],
                "messages": [],
                "unexpected": 0,
            },
        )
        rule["unexpected"] += entry["unexpected"]
        if entry["message"] and entry["message"] not in rule["messages"]:
            rule["messages"].append(entry["message"])
    ordered = sorted(parts.values(), key=lambda p: _natural_key(p["name"]))
    for part in ordered:
        part["suites"].sort(key=lambda s: s["suite"])
    return {
        "stage": stage,
        "records": sum(p["records"] for p in ordered),
        "expectations": len(expectations),
        "failed_expectations": sum(1 for e in expectations.values() if e["unexpected"]),
        "unexpected": sum(e["unexpected"] for e in expectations.values()),
        "parts": ordered,
        "rules": sorted(
            rules.values(), key=lambda r: (-r["unexpected"], r["rule"], r["severity"], r["field"])
        ),
    }


def write_totals(site_dir: Path, totals: dict[str, Any]) -> None:
    (site_dir / TOTALS_FILE).write_text(
        json.dumps(totals, ensure_ascii=False, indent=1), encoding="utf-8"
    )


def _sites(site_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(prefix of links, totals) of the site and of the sites of later stages in its folders."""
    found = []
    if (site_dir / TOTALS_FILE).is_file():
        found.append(("", json.loads((site_dir / TOTALS_FILE).read_text(encoding="utf-8"))))
    for child in sorted(site_dir.glob(f"*/{TOTALS_FILE}")):
        found.append((child.parent.name + "/", json.loads(child.read_text(encoding="utf-8"))))
    return found


def _e(value: Any) -> str:
    return html.escape(str(value))


def _number(value: int) -> str:
    return f"{value:,}"


def _stage(totals: dict[str, Any]) -> str:
    return STAGE_LABELS.get(totals["stage"], totals["stage"])


_STYLE = """
body { font-family: "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", sans-serif;
       margin: 1.5em 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #bbb; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #ddebf7; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.E td.sev { color: #b00020; } tr.W td.sev { color: #8a6100; } .ok { color: #2e7d32; }
p.note { color: #555; font-size: .9em; }
"""


def _totals_table(sites: list[tuple[str, dict[str, Any]]]) -> list[str]:
    lines = [
        "<table><tr><th>阶段</th><th>校验记录数</th><th>部分</th><th>规则（期望）数</th>"
        "<th>有不符记录的规则（期望）数</th><th>不符条数</th></tr>"
    ]
    for _, totals in sites:
        lines.append(
            f"<tr><td>{_e(_stage(totals))}</td><td class=n>{_number(totals['records'])}</td>"
            f"<td class=n>{len(totals['parts'])}</td>"
            f"<td class=n>{totals['expectations']}</td>"
            f"<td class=n>{totals['failed_expectations']}</td>"
            f"<td class=n>{_number(totals['unexpected'])}</td></tr>"
        )
    lines.append("</table>")
    return lines


def _rules_table(sites: list[tuple[str, dict[str, Any]]]) -> list[str]:
    lines = [
        "<table><tr><th>阶段</th><th>规则代码</th><th>规则名称</th><th>级别</th><th>字段</th>"
        "<th>不符条数</th><th>占校验记录</th><th>说明</th></tr>"
    ]
    for _, totals in sites:
        for rule in totals["rules"]:
            share = rule["unexpected"] / totals["records"] if totals["records"] else 0.0
            count = _number(rule["unexpected"]) if rule["unexpected"] else "<span class=ok>0</span>"
            severity = SEVERITY_LABELS.get(rule["severity"], rule["severity"])
            messages = "<br>".join(_e(message) for message in rule["messages"])
            lines.append(
                f"<tr class={_e(rule['severity'])}><td>{_e(_stage(totals))}</td>"
                f"<td>{_e(rule['rule'])}</td><td>{_e(rule['name'])}</td>"
                f"<td class=sev>{_e(severity)}</td>"
                f"<td>{_e(schema.FIELDS.get(rule['field'], rule['field']))}</td>"
                f"<td class=n>{count}</td><td class=n>{share:.2%}</td><td>{messages}</td></tr>"
            )
    lines.append("</table>")
    return lines


def _parts_table(sites: list[tuple[str, dict[str, Any]]]) -> list[str]:
    lines = [
        "<table><tr><th>阶段</th><th>部分（GX 运行名）</th><th>记录数</th><th>套件</th>"
        "<th>规则数</th><th>未通过</th><th>不符条数</th></tr>"
    ]
    for prefix, totals in sites:
        for part in totals["parts"]:
            for suite in part["suites"]:
                link = f'<a href="{_e(prefix + suite["page"])}">{_e(suite["suite"])}</a>'
                lines.append(
                    f"<tr><td>{_e(_stage(totals))}</td><td>{_e(part['name'])}</td>"
                    f"<td class=n>{_number(part['records'])}</td><td>{link}</td>"
                    f"<td class=n>{suite['expectations']}</td><td class=n>{suite['failed']}</td>"
                    f"<td class=n>{_number(suite['unexpected'])}</td></tr>"
                )
    lines.append("</table>")
    return lines


def index_page(sites: list[tuple[str, dict[str, Any]]]) -> str:
    """The front page of a site (and of the later stages' sites in its folders)."""
    links = " ｜ ".join(
        f'<a href="{_e(prefix + GX_INDEX_FILE)}">{_e(_stage(totals))}：GX 索引</a>'
        for prefix, totals in sites
    )
    body = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        "<title>学籍数据校验结果</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>学籍数据校验结果（Great Expectations Data Docs）</h1>",
        "<h2>总计</h2>",
        *_totals_table(sites),
        '<p class="note">不符条数：一条记录不符合一条规则记一条（必填项为空按字段分别记），各部分相加。'
        f"每个校验结果页列出前 {SAMPLE_ROWS} 条不符记录的记录号和取值，"
        "身份证件号、学籍号、姓名、联系电话已遮盖。</p>",
        "<h2>按规则</h2>",
        *_rules_table(sites),
        "<h2>按部分和套件</h2>",
        *_parts_table(sites),
        f"<p>规则套件与全部校验结果：{links}</p>",
        "</body></html>",
    ]
    return "\n".join(body) + "\n"


def write_index(site_dir: Path) -> Path:
    """Write ``index.html`` of a site from its ``totals.json`` and its later stages' ones."""
    page = site_dir / INDEX_FILE
    page.write_text(index_page(_sites(site_dir)), encoding="utf-8")
    return page
