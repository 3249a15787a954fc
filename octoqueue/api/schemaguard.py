"""Refuse, when a schema is set, what would otherwise stall or break every later job's validation.

- every ``pattern`` and ``patternProperties`` key must be a pattern RE2 runs (see :mod:`linear_regex`);
- every local ``$ref`` must resolve;
- no chain of references and in-place applicators (``allOf``, ``anyOf``, ``oneOf``, ``not``, ``if``/``then``/
  ``else``, ``dependentSchemas``) may lead from a schema back to itself: validation would apply it to the same
  value forever. (``{"properties": {"child": {"$ref": "#"}}}`` is fine: each step descends into the data.)
- references may not fan out exponentially (a "billion laughs" of ``allOf`` and ``$ref``): at most
  :data:`MAX_PATHS` paths through the schema. For a recursive schema only the in-place paths are counted, so one
  whose recursion fans out under the same member (two ``$ref`` to the root for one property) is not caught.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import referencing.exceptions
from referencing import Registry
from referencing.jsonschema import DRAFT202012, Specification, specification_with

from octoqueue.api.linear_regex import UnsafePattern, compile_pattern

#: Keywords whose subschemas apply to the same value as the schema holding them.
_IN_PLACE_ONE = ("not", "if", "then", "else")
_IN_PLACE_MANY = ("allOf", "anyOf", "oneOf")
_IN_PLACE_MAP = ("dependentSchemas", "dependencies")
_REFS = ("$ref", "$dynamicRef", "$recursiveRef")
#: Most subschema applications one schema may cause per value (a big hand-written schema has a few thousand).
MAX_PATHS = 100_000


class UnsafeSchema(ValueError):
    """The schema would stall or break validation."""


def check(schema: dict[str, Any]) -> None:
    """Raise :class:`UnsafeSchema` for an unsafe pattern, an unresolvable ``$ref`` or an endless reference loop."""
    spec: Specification[Any] = specification_with(str(schema.get("$schema", "")), default=DRAFT202012)
    root = spec.create_resource(schema)
    resolver = Registry().resolver_with_root(root)
    edges: dict[int, list[int]] = {}  # in place: the same value
    nested: dict[int, list[int]] = {}  # into the value's members or items
    where: dict[int, str] = {id(schema): "#"}
    dynamic: list[tuple[int, str]] = []  # ($dynamicRef / $recursiveRef holder, anchor name)
    anchors: dict[str, list[int]] = {}
    todo: list[tuple[Any, Any, str]] = [(schema, resolver, "#")]
    seen: set[int] = set()
    while todo:
        node, resolver, pointer = todo.pop()
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        where.setdefault(id(node), pointer)
        resolver = resolver.in_subresource(spec.create_resource(node))
        _check_patterns(node, pointer)
        targets = edges.setdefault(id(node), [])
        for keyword, child in _in_place(node):
            targets.append(id(child))
            where.setdefault(id(child), f"{pointer}/{keyword}")
        for keyword in _REFS:
            ref = node.get(keyword)
            if not isinstance(ref, str):
                continue
            try:
                resolved = resolver.lookup(ref)
            except referencing.exceptions.Unresolvable as exc:
                detail = f"{keyword} {ref!r} at {pointer} does not resolve ({exc})"
                raise UnsafeSchema(f"Invalid JSON Schema: {detail}") from None
            targets.append(id(resolved.contents))
            todo.append((resolved.contents, resolved.resolver, ref))
            if keyword != "$ref":
                dynamic.append((id(node), ref.lstrip("#") if keyword == "$dynamicRef" else ""))
        for name in _anchor_names(node):
            anchors.setdefault(name, []).append(id(node))
        for child in spec.subresources_of(node):
            nested.setdefault(id(node), []).append(id(child))
            todo.append((child, resolver, _pointer_of(node, child, pointer)))
    # A dynamic reference may land on any schema declaring its anchor: count every one as a target.
    for holder, name in dynamic:
        edges[holder].extend(anchors.get(name, []))
    loop = _find_loop(edges)
    if loop is not None:
        path = " -> ".join(where.get(node, "?") for node in loop)
        raise UnsafeSchema(
            f"Invalid JSON Schema: it refers to itself without descending into the data ({path}), "
            "so validation would never end"
        )
    # Schemas applied to one value, counted along every path (``allOf`` of two references to a schema that is
    # itself an ``allOf`` of two... doubles at each level). Without recursion, paths through members count too.
    everything = {node: list({*targets, *nested.get(node, [])}) for node, targets in edges.items()}
    paths = _most_paths(everything if _find_loop(everything) is None else edges)
    if paths > MAX_PATHS:
        raise UnsafeSchema(
            f"Invalid JSON Schema: validation could apply its subschemas more than {MAX_PATHS:,} times to one job "
            "(references that fan out to the same schemas again and again)"
        )


def _check_patterns(node: dict[str, Any], pointer: str) -> None:
    patterns = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
    if isinstance(node.get("patternProperties"), dict):
        patterns.extend(node["patternProperties"])
    for pattern in patterns:
        try:
            compile_pattern(pattern)
        except UnsafePattern as exc:
            raise UnsafeSchema(f"Invalid JSON Schema: pattern at {pointer}: {exc}") from None


def _in_place(node: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for keyword in _IN_PLACE_ONE:
        if isinstance(node.get(keyword), dict):
            yield keyword, node[keyword]
    for keyword in _IN_PLACE_MANY:
        if isinstance(node.get(keyword), list):
            yield from ((f"{keyword}/{i}", child) for i, child in enumerate(node[keyword]) if isinstance(child, dict))
    for keyword in _IN_PLACE_MAP:
        if isinstance(node.get(keyword), dict):
            yield from ((f"{keyword}/{k}", child) for k, child in node[keyword].items() if isinstance(child, dict))


def _pointer_of(parent: dict[str, Any], child: Any, pointer: str) -> str:
    for key, value in parent.items():
        if value is child:
            return f"{pointer}/{key}"
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for inner, item in items:
            if item is child:
                return f"{pointer}/{key}/{inner}"
    return pointer


def _anchor_names(node: dict[str, Any]) -> Iterator[str]:
    if isinstance(node.get("$dynamicAnchor"), str):
        yield node["$dynamicAnchor"]
    if node.get("$recursiveAnchor") is True:
        yield ""


def _most_paths(edges: dict[int, list[int]]) -> int:
    """The most paths leaving any node of the acyclic graph ``edges`` (itself included), capped past
    :data:`MAX_PATHS`. Iterative post-order."""
    paths: dict[int, int] = {}
    for start in edges:
        stack = [start]
        while stack:
            node = stack[-1]
            pending = [nxt for nxt in edges.get(node, ()) if nxt not in paths]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            paths[node] = min(MAX_PATHS + 1, 1 + sum(paths[nxt] for nxt in edges.get(node, ())))
    return max(paths.values(), default=0)


def _find_loop(edges: dict[int, list[int]]) -> list[int] | None:
    """A cycle in ``edges`` (as the list of its nodes, first repeated at the end), or None. Iterative DFS."""
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for start in edges:
        if start in state:
            continue
        path = [start]
        stack = [iter(edges.get(start, ()))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(edges.get(nxt, ())))
    return None


__all__ = ["MAX_PATHS", "UnsafeSchema", "check"]
