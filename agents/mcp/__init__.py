"""The MCP bridge: `amcp mcp serve` offers the cluster's tools to any MCP client.

naming (MCP names of agent tools), schema (tools and results as MCP shapes), catalog (the
live agents' tools by role), builtins (amcp_members, amcp_ctx_*, amcp_coordinate, ...),
auto (destructive calls voted on first, for the bridge and `amcp call`), bridge (what a
call does), server (the SDK wiring, imported on its own: it needs the `amcp[mcp]` extra).
"""

from agents.mcp.bridge import Bridge
from agents.mcp.builtins import Services, builtin_tools
from agents.mcp.catalog import Catalog, Route, build_catalog
from agents.mcp.naming import base_name, mcp_names

__all__ = [
    "Bridge",
    "Catalog",
    "Route",
    "Services",
    "base_name",
    "build_catalog",
    "builtin_tools",
    "mcp_names",
]
