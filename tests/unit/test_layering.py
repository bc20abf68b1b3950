"""The layering the code promises (README "How it is built"), read from the source itself.

- Packages import downwards only: netopt < amcp < crdt < consensus < agents.
- Inside agents: runtime < process < vsm < cluster < mcp < cli; the runtime knows no VSM role
  (it imports no other part of agents).
- Only command-line modules import amcp.cli.
- No import cycles between modules, counting imports under TYPE_CHECKING and inside
  functions (a cycle moved out of sight is still a cycle).
- Each package's `__all__` is exactly its public namespace (as httpx pins its own).

Imports are read with `ast`, so a module is checked whether or not it is imported here.
"""

from __future__ import annotations

import ast
import importlib
import types
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("netopt", "amcp", "crdt", "consensus", "agents")
AGENT_LAYERS = (
    "agents.runtime",
    "agents.process",
    "agents.vsm",
    "agents.cluster",
    "agents.mcp",  # the MCP bridge: runtime client, vsm task models; the CLI serves it
    "agents.cli",
)
CLI_MODULES = ("amcp.cli", "agents.cli", "crdt.cli", "consensus.cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the five packages, by dotted name."""
    paths = (path for layer in LAYERS for path in sorted((ROOT / layer).rglob("*.py")))
    return {_module_name(path): path for path in paths}


@cache
def imports() -> dict[str, frozenset[str]]:
    """For each module, the project modules it imports anywhere in its source."""
    known = modules()
    graph: dict[str, frozenset[str]] = {}
    for name, path in known.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                # `from a.b import c`: a.b, or the module a.b.c when c is one
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            found.update(t for t in targets if t in known and t != name)
        graph[name] = frozenset(found)
    return graph


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _layer(name: str) -> int:
    return LAYERS.index(name.split(".", 1)[0])


def test_the_graph_sees_every_package() -> None:
    # Guards the tests below from passing on an empty or partial graph.
    graph = imports()
    assert {name.split(".", 1)[0] for name in graph} == set(LAYERS)
    assert "amcp.bus" in graph["amcp"] or any(_within(m, "amcp") for m in graph["amcp"])
    assert sum(len(targets) for targets in graph.values()) > 200


def test_packages_import_downwards_only() -> None:
    upward = sorted(
        (name, target)
        for name, targets in imports().items()
        for target in targets
        if _layer(target) > _layer(name)
    )
    assert not upward, f"imports against the layering {' < '.join(LAYERS)}: {upward}"


def test_the_agent_runtime_imports_no_other_part_of_agents() -> None:
    leaks = sorted(
        (name, target)
        for name, targets in imports().items()
        if _within(name, "agents.runtime")
        for target in targets
        if _within(target, "agents") and not _within(target, "agents.runtime")
    )
    assert not leaks, f"the runtime reaches into VSM, CLI or cluster code: {leaks}"


def _agents_layer(name: str) -> int | None:
    for level, part in enumerate(AGENT_LAYERS):
        if _within(name, part):
            return level
    return None


def test_inside_agents_imports_point_downwards() -> None:
    upward = sorted(
        (name, target)
        for name, targets in imports().items()
        if (level := _agents_layer(name)) is not None
        for target in targets
        if (_agents_layer(target) or 0) > level
    )
    assert not upward, f"imports against {' < '.join(AGENT_LAYERS)}: {upward}"


def test_only_command_line_modules_import_amcp_cli() -> None:
    outside = sorted(
        (name, target)
        for name, targets in imports().items()
        if not any(_within(name, cli) for cli in CLI_MODULES)
        for target in targets
        if _within(target, "amcp.cli")
    )
    assert not outside, f"amcp.cli imported outside the command lines: {outside}"


def _cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(imports())
    assert not cycles, f"import cycles: {cycles}"


PACKAGES = sorted(name for name, path in modules().items() if path.name == "__init__.py")


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_the_public_namespace(package: str) -> None:
    """Every public name a package holds is in `__all__`, and every name in `__all__`
    resolves (some load on first use, PEP 562, so they need not be held yet)."""
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", [])
    held = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(held - set(exported)) == [], "public but not in __all__"
    assert [name for name in exported if not hasattr(module, name)] == []
    assert len(set(exported)) == len(exported)
    if not hasattr(module, "__getattr__"):  # no lazy names: exactly what it holds
        assert sorted(exported) == sorted(held)
