"""The library stands on its own: no module of ``xueji_quality`` loads Prefect or the pipelines,
and its modules import one another without circles.

Import circles are judged on what runs when a module is imported: the imports of its top level,
including those under a top-level ``if``/``try``/``with`` and in class bodies. Left out:

- imports inside functions: deferred on purpose (validation and linkage are imported where they
  run, so a process that only writes county lists never loads Great Expectations), and they cannot
  leave a module half-initialised;
- imports under ``if TYPE_CHECKING:``, which never run;
- the implicit import of a parent package: ``xueji_quality.reports.tables`` importing
  ``xueji_quality.schema`` does not make ``reports/__init__.py`` depend on ``tables`` or the
  other way round. ``from package import name`` depends on ``package.name`` when that is a
  module, else on the package's ``__init__``.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import xueji_quality

LIBRARY = "xueji_quality"
LIBRARY_DIR = Path(xueji_quality.__file__).parent
FORBIDDEN = ("prefect", "pipelines")


def library_files() -> dict[str, Path]:
    """Module name → source file of every module of the library (found without importing it)."""

    def walk(folder: Path, prefix: str) -> Iterator[tuple[str, Path]]:
        for info in pkgutil.iter_modules([str(folder)], prefix):
            leaf = info.name.rsplit(".", 1)[-1]
            if info.ispkg:
                yield info.name, folder / leaf / "__init__.py"
                yield from walk(folder / leaf, info.name + ".")
            else:
                yield info.name, folder / f"{leaf}.py"

    return {LIBRARY: LIBRARY_DIR / "__init__.py", **dict(walk(LIBRARY_DIR, LIBRARY + "."))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_statements(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _import_time_statements(node.body)
            yield from _import_time_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse):
                yield from _import_time_statements(block)
            yield from _import_time_statements(node.finalbody)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _import_time_statements(node.body)


def import_time_targets(name: str, source: str, modules: set[str], is_package: bool) -> set[str]:
    """The modules of ``modules`` that module ``name`` imports when it is imported."""
    found: set[str] = set()

    def known(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    package = name if is_package else name.rpartition(".")[0]
    for node in _import_time_statements(ast.parse(source).body):
        if isinstance(node, ast.Import):
            targets = [known(alias.name) for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else known(base)
                for alias in node.names
            ]
        found |= {t for t in targets if t is not None and t != name}
    return found


def import_graph() -> dict[str, set[str]]:
    files = library_files()
    modules = set(files)
    return {
        name: import_time_targets(
            name, path.read_text(encoding="utf-8"), modules, path.name == "__init__.py"
        )
        for name, path in files.items()
    }


def import_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The circles of ``graph``: its strongly connected components of more than one module
    (Tarjan's algorithm, iterative), each sorted; the list sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            step = next(successors, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph.get(step, ())))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return sorted(cycles)


IMPORT_ALL = """
import importlib, json, sys
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0].startswith({forbidden!r}))
print(json.dumps(loaded))
"""


def test_no_library_module_loads_prefect_or_the_pipelines():
    names = sorted(library_files())
    assert "xueji_quality.run_scope" in names and "xueji_quality.reports.changes" in names
    script = IMPORT_ALL.format(forbidden=FORBIDDEN)
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == [], f"库模块加载了 {loaded[:10]}"


def test_the_check_sees_a_module_that_loads_prefect():
    script = IMPORT_ALL.format(forbidden=FORBIDDEN)
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(["xueji_quality.errors", "pipelines.runners"])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "prefect" in loaded and "pipelines.runners" in loaded


def test_library_modules_import_each_other_without_circles():
    graph = import_graph()
    assert len(graph) > 30
    assert "xueji_quality.reports.county_totals" in graph["xueji_quality.reports.summary"]
    assert import_cycles(graph) == []


def test_circle_finder_finds_circles_and_ignores_deferred_imports():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set(), "c": {"b"}}) == []
    modules = {"p", "p.a", "p.b", "p.c", "p.d"}
    source = (
        "from typing import TYPE_CHECKING\n"
        "from p import b\n"
        "from .c import thing\n"
        "if TYPE_CHECKING:\n"
        "    import p.d\n"
        "def later():\n"
        "    import p.d\n"
    )
    assert import_time_targets("p.a", source, modules, is_package=False) == {"p.b", "p.c"}
