"""Blocking passes declared as data (config/linkage.json ``passes`` and ``blocking_rules``).

``passes`` lists the passes to run, in order; ``blocking_rules`` declares each of them: its kind
(one recordlinkage index algorithm per kind, see ``linkage.index``), the key it blocks on, built
from declared parts (``field`` or ``transform(field)``, see ``linkage.keys``), and its options.
The rules and the parts are data; the engine that runs them is ``linkage.index``.

Kinds and what they take:

- ``key`` (the default): records sharing the key ``on`` (parts combined into one key) are paired.
  ``one_side_without_consistent_id``: only pairs with at least one record lacking a valid ID that
  agrees with its record (a pair of two valid, consistent IDs is either one ID, which the ``id``
  pass finds, or two people, which the model vetoes; ``one_side_without_valid_id``, the key of
  earlier configs, is read the same way). ``agree_on_one_of``: a pair is kept when it agrees on
  at least one of these parts, or one side lacks it. ``oversized``: what happens to a block
  larger than ``size_cap`` (default ``block_size_cap``): ``sub_block`` (sorted neighbourhood on
  each ``agree_on_one_of`` part in turn, window the cap narrowed by ``sub_block_pair_budget``)
  or ``skip`` (not expanded, listed for a person to look at: one ID number on a thousand rows
  is a placeholder, not a thousand registrations).
- ``student_no``: ``each_of`` names the keys: ``student_no`` (records sharing a 学籍号, formed
  around the numbers that are not "G" + the record's own ID: two of those that agree carry one
  ID, and the ``id`` pass pairs them already) and ``carried_id(student_no)`` (a G 学籍号
  carrying a valid ID other than the record's own, looked up among the valid IDs).
- ``id_neighbour``: among IDs failing their check, ``each_of`` names the keys:
  ``one_edit_valid_neighbours(id_number)``, ``masked_position(id_number)``,
  ``adjacent_pair_canonical(id_number)`` (see ``linkage.neighbours``).

An unknown pass, kind, option, field or transform is a configuration error naming the file and
the key (``LinkageConfigError``, an ``InputError``): a pass that silently does nothing would
lose duplicates without anyone noticing.
"""

from __future__ import annotations

from dataclasses import dataclass

from xueji_quality.errors import InputError
from xueji_quality.linkage.keys import KeyPart, UnknownKeyPart, parse_part

DEFAULT_SOURCE = "config/linkage.json"
KINDS: dict[str, tuple[str, ...]] = {
    # kind -> the options it takes (besides "kind")
    "key": (
        "on",
        "one_side_without_consistent_id",
        "one_side_without_valid_id",
        "agree_on_one_of",
        "size_cap",
        "oversized",
    ),
    "student_no": ("each_of", "size_cap", "oversized"),
    "id_neighbour": ("each_of", "size_cap", "oversized"),
}
# The keys the kinds with ``each_of`` can form.
EACH_OF: dict[str, tuple[str, ...]] = {
    "student_no": ("student_no", "carried_id(student_no)"),
    "id_neighbour": (
        "one_edit_valid_neighbours(id_number)",
        "masked_position(id_number)",
        "adjacent_pair_canonical(id_number)",
    ),
}
OVERSIZED = ("sub_block", "skip")


class LinkageConfigError(InputError, ValueError):
    """config/linkage.json declares something linkage cannot run; names the file and the key."""

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file, self.key, self.message = str(file), key, message
        self.row = None
        self.field = None
        Exception.__init__(self, f"文件 {self.file}，键 {key}：{message}")

    def __reduce__(self):
        return (LinkageConfigError, (self.file, self.key, self.message))


@dataclass(frozen=True)
class PassSpec:
    """One declared pass, checked."""

    name: str
    kind: str
    parts: tuple[KeyPart, ...]  # ``on`` of a key pass, ``each_of`` of the others
    size_cap: int
    oversized: str  # "sub_block" or "skip"
    one_side_without_consistent_id: bool = False
    agree_on_one_of: tuple[KeyPart, ...] = ()
    pair_budget: int | None = None


def one_side_without_consistent_id(rule: dict) -> bool:
    """Whether a declared rule forms only pairs with a record lacking a valid, consistent ID
    (``one_side_without_valid_id``, the key of earlier configs, is read the same way: pairs of a
    valid, inconsistent ID are never to be left out)."""
    return bool(
        rule.get("one_side_without_consistent_id", rule.get("one_side_without_valid_id", False))
    )


def _parts(values, source: str, key: str, *, multi: bool) -> tuple[KeyPart, ...]:
    if not isinstance(values, list) or not values:
        raise LinkageConfigError(source, key, "应为非空列表，列出 字段 或 变换(字段)")
    parts = []
    for value in values:
        try:
            part = parse_part(value)
        except UnknownKeyPart as exc:
            raise LinkageConfigError(source, key, str(exc)) from None
        if part.multi_key and not multi:
            raise LinkageConfigError(
                source,
                key,
                f"{part.text} 每条记录给出多个键，只能用于 each_of（id_neighbour、student_no）",
            )
        parts.append(part)
    return tuple(parts)


def _positive_int(value, source: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LinkageConfigError(source, key, f"应为正整数，不是 {value!r}")
    return value


def parse_pass(name: str, rule, config: dict, source: str = DEFAULT_SOURCE) -> PassSpec:
    """The declared pass ``name`` checked against the kinds, options, fields and transforms."""
    where = f"blocking_rules.{name}"
    if not isinstance(rule, dict):
        raise LinkageConfigError(source, where, "应为对象（kind、on 或 each_of 及选项）")
    kind = rule.get("kind", "key")
    if kind not in KINDS:
        raise LinkageConfigError(
            source, f"{where}.kind", f"未知分块类型 {kind}（可用：{'、'.join(KINDS)}）"
        )
    unknown = [k for k in rule if k != "kind" and k not in KINDS[kind]]
    if unknown:
        raise LinkageConfigError(
            source,
            f"{where}.{unknown[0]}",
            f"{kind} 类分块没有选项 {unknown[0]}（可用：{'、'.join(KINDS[kind])}）",
        )
    size_cap = _positive_int(
        rule.get("size_cap", config.get("block_size_cap")), source, f"{where}.size_cap"
    )
    budget = config.get("sub_block_pair_budget")
    budget = None if budget is None else _positive_int(budget, source, "sub_block_pair_budget")
    oversized = rule.get("oversized", "sub_block" if kind == "key" else "skip")
    allowed = OVERSIZED if kind == "key" else ("skip",)
    if oversized not in allowed:
        raise LinkageConfigError(
            source, f"{where}.oversized", f"应为 {' 或 '.join(allowed)}，不是 {oversized!r}"
        )
    if kind != "key":
        if "each_of" not in rule:
            raise LinkageConfigError(source, f"{where}.each_of", f"{kind} 类分块须列出 each_of")
        parts = _parts(rule["each_of"], source, f"{where}.each_of", multi=True)
        wrong = [p.text for p in parts if p.text not in EACH_OF[kind]]
        if wrong:
            raise LinkageConfigError(
                source,
                f"{where}.each_of",
                f"{kind} 类分块不能按 {wrong[0]} 建键（可用：{'、'.join(EACH_OF[kind])}）",
            )
        return PassSpec(name, kind, parts, size_cap, oversized, pair_budget=budget)
    if "on" not in rule:
        raise LinkageConfigError(source, f"{where}.on", "key 类分块须列出 on（键的组成）")
    parts = _parts(rule["on"], source, f"{where}.on", multi=False)
    agree = rule.get("agree_on_one_of", [])
    agree = _parts(agree, source, f"{where}.agree_on_one_of", multi=False) if agree else ()
    for option in ("one_side_without_consistent_id", "one_side_without_valid_id"):
        if option in rule and not isinstance(rule[option], bool):
            raise LinkageConfigError(source, f"{where}.{option}", "应为 true 或 false")
    return PassSpec(
        name,
        kind,
        parts,
        size_cap,
        oversized,
        one_side_without_consistent_id=one_side_without_consistent_id(rule),
        agree_on_one_of=agree,
        pair_budget=budget,
    )


def declared_passes(config: dict, source: str = DEFAULT_SOURCE) -> list[PassSpec]:
    """The passes ``passes`` names (every declared one when it is absent), in its order, each
    checked; every declared rule is checked, whether it runs or not."""
    rules = config.get("blocking_rules", {})
    if not isinstance(rules, dict):
        raise LinkageConfigError(source, "blocking_rules", "应为对象：分块名 -> 声明")
    specs = {name: parse_pass(name, rule, config, source) for name, rule in rules.items()}
    names = config.get("passes", list(rules))
    if not isinstance(names, list):
        raise LinkageConfigError(source, "passes", "应为分块名的列表")
    for name in names:
        if name not in specs:
            declared = "、".join(specs) or "无"
            raise LinkageConfigError(
                source, "passes", f"分块 {name} 未在 blocking_rules 中声明（已声明：{declared}）"
            )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise LinkageConfigError(source, "passes", f"分块 {repeated[0]} 列出了不止一次")
    return [specs[name] for name in names]
