"""The agent tools the bridge offers, from what the live agents describe (pure).

Tools are grouped by role, since a call goes to the role's queue group like `amcp call
ROLE TOOL`; where only some agents of a role have a tool (their capabilities differ), the
call goes to the first of those by id instead, so it never lands on one that lacks it.
A tool an agent describes as unavailable (a mounted MCP server that is down) counts as
one that agent lacks: it is offered while some agent of the role can run it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.mcp.naming import mcp_names
from agents.mcp.schema import agent_tool_entry, hints_of

__all__ = ["Catalog", "Route", "build_catalog"]

HIDDEN = frozenset({"describe", "members", "remove-member"})
"""The runtime's own tools: the built-ins amcp_members and amcp_status stand for them."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where a call of one MCP tool goes."""

    role: str
    tool: str
    target: str  # the role, or one agent id when not all of the role's agents have it
    hints: Mapping[str, Any]


@dataclass(frozen=True)
class Catalog:
    entries: tuple[dict[str, Any], ...]  # tools/list entries, sorted by name
    routes: Mapping[str, Route]

    @staticmethod
    def empty() -> Catalog:
        return Catalog((), {})


def build_catalog(described: Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]]) -> Catalog:
    """`described`: agent id -> (role, tool specs as `describe` gives them)."""
    specs: dict[tuple[str, str], Mapping[str, Any]] = {}
    holders: dict[tuple[str, str], list[str]] = {}
    role_agents: dict[str, list[str]] = {}
    for agent in sorted(described):
        role, tools = described[agent]
        role_agents.setdefault(role, []).append(agent)
        for spec in tools:
            name = spec.get("name")
            if not isinstance(name, str) or name in HIDDEN or spec.get("available") is False:
                continue
            specs.setdefault((role, name), spec)  # the first agent's, by id
            holders.setdefault((role, name), []).append(agent)
    names = mcp_names(specs)
    entries, routes = [], {}
    for pair, mcp_name in sorted(names.items(), key=lambda item: item[1]):
        role, tool = pair
        agents = holders[pair]
        target = role if agents == role_agents[role] else agents[0]
        entries.append(agent_tool_entry(mcp_name, role, specs[pair], agents))
        routes[mcp_name] = Route(role, tool, target, hints_of(specs[pair]))
    return Catalog(tuple(entries), routes)
