"""The police cross-check (会同公安部门): 身份证号不存在, 身份证号与姓名不匹配, 身份证号已注销.

Two ways the answer comes back, both supported:

- a request sent to the public security bureau and the result file it returns
  (``exchange``: ``request_table``, ``write_request``, ``read_results``);
- an extract of the population registry (``registry.read_registry``), joined inside the run.

``check.police_check`` turns either into per-record verdicts (``verdicts``; an extract is held
as ``registry_index`` compacts it) and runs the police rules of
``expectations/roster_police.json`` through Great Expectations; ``names`` tells how a roster
name differs from the registry's; ``tables`` reads the police's files.

What the police send is read, never copied: no output holds a registry row, except the
registry's name or number as the suggestion for the same person (see ``check``).
"""

from __future__ import annotations

from xueji_quality.police.check import (
    PoliceOutcome,
    Registry,
    apply_checksum_suggestions,
    file_facts,
    police_check,
    police_problems,
    prepared,
)
from xueji_quality.police.exchange import read_results, request_table, write_request
from xueji_quality.police.registry import read_registry
from xueji_quality.police.registry_index import load_registry

__all__ = [
    "PoliceOutcome",
    "Registry",
    "apply_checksum_suggestions",
    "file_facts",
    "load_registry",
    "police_check",
    "police_problems",
    "prepared",
    "read_registry",
    "read_results",
    "request_table",
    "write_request",
]
