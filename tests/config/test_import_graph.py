"""The import graph of the `mailstrata` package: no circle, and no arrow from the config to the layers above it.

The graph is read from the source (ast), not by importing: every `import` and `from ... import`, those inside
functions included (a lazy import is still an arrow), except those under `if TYPE_CHECKING:`, which never
run. An arrow goes to the module named: `from mailstrata.config import load_config` points at
`mailstrata.config` (its `__init__`), `from mailstrata import app` at `mailstrata.app`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import mailstrata

PACKAGE = Path(mailstrata.__file__).resolve().parent
CONFIG = "mailstrata.config"
# What the config sits below: it validates YAML into plain values, and each of these reads those values.
ABOVE_CONFIG = ("mailstrata.stacks", "mailstrata.constructs", "mailstrata.userdata", "mailstrata.twin")


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for orelse in child.orelse:  # `else:` of `if TYPE_CHECKING:` does run
                yield from _imports_in(orelse)
            continue
        yield from _imports_in(child)


def _imports_in(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _imports(node)


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = modules()[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _owner(name: str) -> str | None:
    """The package module that `name` is, or is inside of (`mailstrata.x.y.Thing` -> `mailstrata.x.y`)."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def graph() -> dict[str, frozenset[str]]:
    """Module -> the package modules it imports."""
    out: dict[str, frozenset[str]] = {}
    for module, path in modules().items():
        targets: set[str | None] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(_owner(a.name) for a in node.names if a.name.split(".")[0] == "mailstrata")
                continue
            source = _absolute(module, node)
            if source.split(".")[0] != "mailstrata":
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                targets.add(sub if sub in modules() else _owner(source))
        out[module] = frozenset(t for t in targets if t is not None and t != module)
    return out


def components(edges: dict[str, frozenset[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan): each holds at least one circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found, key=sorted)


def cycles(edges: dict[str, frozenset[str]]) -> list[list[str]]:
    """One circle per strongly connected component, as a closed path."""
    return [_circle(sorted(c), edges) for c in components(edges)]


def _circle(component: list[str], edges: dict[str, frozenset[str]]) -> list[str]:
    """A shortest closed path through the component's first module (breadth first inside the component)."""
    start, inside = component[0], set(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges[v] & inside):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if w not in came_from:
                    came_from[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no circle through {start}")  # pragma: no cover (a component always has one)


def _path(edges: dict[str, frozenset[str]], start: str, goal: tuple[str, ...]) -> list[str] | None:
    """A shortest import chain from `start` to a module inside one of the packages `goal`, if any."""
    came_from: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            if v != start and _inside(v, goal):
                chain = [v]
                while (prev := came_from[chain[-1]]) is not None:
                    chain.append(prev)
                return chain[::-1]
            for w in sorted(edges[v]):
                if w not in came_from:
                    came_from[w] = v
                    nxt.append(w)
        frontier = nxt
    return None


def _inside(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


# ---- the reader itself --------------------------------------------------------------------------------


def test_given_the_package_when_read_then_lazy_imports_count_and_type_checking_ones_do_not() -> None:
    edges = graph()

    # GIVEN app.py imports the user-data check inside a function, and limits.py the config under TYPE_CHECKING
    assert "mailstrata.userdata.limits" in edges["mailstrata.app"]
    assert "mailstrata.config.model" not in edges["mailstrata.userdata.limits"]
    # `from mailstrata import app` is an arrow to the module, `from mailstrata.config import x` to the package
    assert "mailstrata.app" in edges["mailstrata.cli"]


def test_given_a_circle_when_searched_then_it_is_named_as_a_closed_path() -> None:
    edges = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}

    assert cycles(edges) == [["a", "b", "c", "a"]]


# ---- the rules ----------------------------------------------------------------------------------------


def test_the_config_imports_nothing_from_stacks_constructs_templates_or_the_twin() -> None:
    edges = graph()

    found = {m: chain for m in edges if _inside(m, (CONFIG,)) if (chain := _path(edges, m, ABOVE_CONFIG))}

    assert found == {}, "the config reaches above itself: " + "; ".join(" -> ".join(c) for c in found.values())


def test_the_package_has_no_import_circle() -> None:
    found = cycles(graph())

    assert found == [], "import circles: " + "; ".join(" -> ".join(c) for c in found)
