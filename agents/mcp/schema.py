"""How agent tools and their answers look to an MCP client (pure: plain dicts in the
shapes of the MCP spec, no SDK, no I/O).

A described agent tool becomes an MCP tool: its description, its input JSON schema with
its examples' inputs under `examples`, its output schema, annotations from its hints, and
`_meta` saying where it runs. An answer becomes `structuredContent` plus the same JSON as
a text block; a failure becomes a result with `isError` and a message a model can act on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "META",
    "agent_tool_entry",
    "annotations",
    "error_result",
    "hints_of",
    "ok_result",
    "tool_entry",
]

META = "amcp"  # the key of amcp's facts under `_meta` (role, tool, agents, call id)


def annotations(hints: Mapping[str, Any], title: str | None = None) -> dict[str, Any]:
    """MCP's four hints, always all set: a client's defaults (destructive, open world)
    would otherwise speak for a tool that never said so."""
    read_only = bool(hints.get("read_only"))
    doc: dict[str, Any] = {
        "readOnlyHint": read_only,
        "destructiveHint": bool(hints.get("destructive")) and not read_only,
        "idempotentHint": bool(hints.get("idempotent")) or read_only,
        "openWorldHint": bool(hints.get("open_world")),
    }
    if title:
        doc["title"] = title
    return doc


def hints_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A described tool's hints (an agent that predates them publishes only read_only)."""
    hints = spec.get("hints")
    return dict(hints) if isinstance(hints, Mapping) else {"read_only": bool(spec.get("read_only"))}


def _object_schema(schema: Any) -> dict[str, Any]:
    """MCP wants an object schema; a tool's model always is one, but be sure."""
    if isinstance(schema, Mapping) and schema.get("type") == "object":
        return dict(schema)
    return {"type": "object", "properties": {}}


def agent_tool_entry(
    name: str, role: str, spec: Mapping[str, Any], agents: Sequence[str]
) -> dict[str, Any]:
    """The MCP tool (as a `tools/list` entry) of an agent tool served by `agents`."""
    where = f"Runs on a {role} agent of the amcp cluster ({', '.join(agents)})."
    meta = {"role": role, "tool": spec.get("name"), "agents": list(agents)}
    return tool_entry(name, spec, where, meta, title=f"{role} {spec.get('name')}")


def tool_entry(
    name: str, spec: Mapping[str, Any], where: str, meta: Mapping[str, Any], title: str
) -> dict[str, Any]:
    """The `tools/list` entry of a tool `spec` (as Tool.spec gives it) named `name`."""
    examples = [e for e in spec.get("examples") or [] if isinstance(e, Mapping)]
    input_schema = _object_schema(spec.get("input_schema"))
    inputs = [e["input"] for e in examples if isinstance(e.get("input"), Mapping)]
    if inputs:
        input_schema["examples"] = inputs
    description = str(spec.get("description") or "").strip()
    entry: dict[str, Any] = {
        "name": name,
        "description": f"{description}\n\n{where}" if description else where,
        "inputSchema": input_schema,
        "annotations": annotations(hints_of(spec), title),
        "_meta": {META: dict(meta), "examples": examples},
    }
    output = spec.get("output_schema")
    if isinstance(output, Mapping) and output.get("type") == "object":
        entry["outputSchema"] = dict(output)
    return entry


def _text(doc: Any) -> str:
    return json.dumps(doc, indent=2, default=str)


def ok_result(output: Any, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A tool's answer: structured (an object, as MCP asks) and as JSON text."""
    doc: dict[str, Any] = {
        "content": [{"type": "text", "text": _text(output)}],
        "structuredContent": output if isinstance(output, Mapping) else {"result": output},
        "isError": False,
    }
    if meta:
        doc["_meta"] = {META: dict(meta)}
    return doc


def error_result(message: str, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A failed call as a result the model reads (never a protocol error)."""
    doc: dict[str, Any] = {"content": [{"type": "text", "text": message}], "isError": True}
    if meta:
        doc["_meta"] = {META: dict(meta)}
    return doc
