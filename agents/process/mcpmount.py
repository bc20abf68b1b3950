"""External MCP servers as an agent's tools (`amcp-agent --mcp NAME=COMMAND`, repeatable).

The Extension starts (or connects to) each server before the agent joins, lists its tools
and serves each as `NAME.tool` (agents.process.mcpspec), a tool like any other: its input
is the tool's raw JSON schema, validated on the agent before the server sees it; a call
runs in the agent's pool and is audited as every call is. The output is the server's
structured content when the tool declares an output schema, else `{"content": [blocks]}`.
An `isError` result is a tool failure with the server's text.

MCP annotations become the tool's `read_only` and hints, with MCP's defaults where the
server says nothing (not read-only, destructive, not idempotent, open world): a tool that
says nothing of itself is treated as the spec says to treat it, with care.

The servers are supervised with the agent (agents.process.mcpsession): while one is down
its tools say so in `describe` and refuse calls (`unavailable`), and it is brought back
within the restart budget; the agent itself stays up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from agents.process.mcpspec import McpServerSpec, mount_names, parse_mcp_servers
from agents.process.restarts import RestartPolicy
from agents.runtime.config import AgentConfig
from agents.runtime.errors import ToolDefinitionError, ToolFailed, ToolUnavailable
from agents.runtime.extension import Extension
from agents.runtime.tools import CallContext, Tool, ToolHints
from amcp.errors import ConfigError

if TYPE_CHECKING:
    from agents.process.mcpsession import McpSession

__all__ = ["CONTENT_SCHEMA", "McpMount", "extension_for", "mounted_tools", "tool_output"]

log = logging.getLogger("agents.process.mcpmount")

# the output of a tool that declares no output schema: its content blocks as MCP gives them
CONTENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"content": {"type": "array", "items": {"type": "object"}}},
    "required": ["content"],
}
_ERROR_TEXT = 4000  # characters of an isError result's text kept in the failure


def _hints(annotations: Any) -> tuple[bool, ToolHints]:
    """read_only and hints from MCP annotations, MCP's defaults for what is not said."""

    def said(name: str, default: bool) -> bool:
        value = getattr(annotations, name, None) if annotations is not None else None
        return default if value is None else bool(value)

    read_only = said("read_only_hint", False)
    return read_only, ToolHints(
        destructive=not read_only and said("destructive_hint", True),
        idempotent=said("idempotent_hint", False),
        open_world=said("open_world_hint", True),
    )


def tool_output(result: Any, *, structured: bool, where: str) -> Any:
    """A CallToolResult as the mounted tool's output; ToolFailed for an isError one."""
    if result.is_error:
        text = "\n".join(getattr(b, "text", "") for b in result.content).strip()
        raise ToolFailed(f"{where}: {text[:_ERROR_TEXT] or 'the server reported an error'}")
    if structured:
        if result.structured_content is None:
            raise ToolFailed(
                f"{where} declares an output schema but returned no structured content"
            )
        return result.structured_content
    return {
        "content": [
            b.model_dump(mode="json", by_alias=True, exclude_none=True) for b in result.content
        ]
    }


def mounted_tools(session: McpSession, listing: Iterable[Any]) -> list[Tool]:
    """An agent tool for each MCP tool `session` listed; one whose schema is not a valid
    JSON schema is left out with a warning (the server's other tools still serve)."""
    server = session.spec.name
    tools = list(listing)
    names = mount_names(server, (t.name for t in tools))
    mounted: list[Tool] = []
    for t in tools:
        try:
            mounted.append(_mounted(session, t, names[t.name]))
        except ToolDefinitionError as exc:
            log.warning("MCP server %s: tool %r not mounted: %s", server, t.name, exc)
    return mounted


def _mounted(session: McpSession, mcp_tool: Any, name: str) -> Tool:
    original = mcp_tool.name  # the server's own name: what the call uses
    structured = mcp_tool.output_schema is not None
    where = f"{session.spec.name}.{original}"
    read_only, hints = _hints(mcp_tool.annotations)

    async def call(args: Any, ctx: CallContext) -> Any:
        result = await session.call(original, args)
        return tool_output(result, structured=structured, where=where)

    return Tool(
        name,
        mcp_tool.description or mcp_tool.title or f"{original} of MCP server {session.spec.name}",
        mcp_tool.input_schema,
        mcp_tool.output_schema if structured else CONTENT_SCHEMA,
        call,
        read_only=read_only,
        hints=hints,
        availability=lambda: session.unavailable(original),
    )


class McpMount(Extension):
    """The MCP servers of one agent and the tools they give it."""

    name = "mcp"

    def __init__(self, specs: Iterable[McpServerSpec], policy: RestartPolicy | None = None):
        self.specs = tuple(specs)
        self.policy = policy or RestartPolicy()
        self.sessions: dict[str, McpSession] = {}
        self._tools: list[Tool] = []

    async def prepare(self) -> None:
        try:  # only an agent with --mcp needs the SDK (`amcp[mcp]`)
            from agents.process.mcpsession import McpSession
        except ImportError as exc:
            raise ConfigError(f"--mcp needs the MCP SDK ({exc}): pip install 'amcp[mcp]'") from None
        for spec in self.specs:
            session = McpSession(spec, self.policy)
            try:
                listing = await session.open()
            except ToolUnavailable as exc:
                await self.stop()  # the ones already up: the agent will not start
                raise ConfigError(str(exc)) from None
            self.sessions[spec.name] = session
            self._tools += mounted_tools(session, listing)

    def tools(self) -> Iterable[Tool]:
        return self._tools

    async def stop(self) -> None:
        for session in self.sessions.values():
            await session.close()

    def status(self) -> dict[str, Any]:
        return {name: s.status() for name, s in self.sessions.items()}


def extension_for(config: AgentConfig) -> McpMount | None:
    """The `amcp.agent_extensions` factory: a mount when the agent has `--mcp` servers."""
    if not config.mcp:
        return None
    try:
        specs = parse_mcp_servers(config.mcp)
        policy = RestartPolicy(*config.mcp_restarts) if config.mcp_restarts else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return McpMount(specs, policy)
