"""Mounted MCP tools (no I/O): annotations into read_only and hints with MCP's defaults, a
result into the tool's output, an isError result into a failure, the raw schemas on the
agent tool, and a server that is not up making its tools unavailable, not the agent."""

from __future__ import annotations

import pytest
from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from mcp_types import Tool as McpTool

from agents.process.mcpmount import CONTENT_SCHEMA, extension_for, mounted_tools, tool_output
from agents.process.mcpsession import McpSession
from agents.process.mcpspec import McpServerSpec
from agents.process.restarts import RestartPolicy
from agents.runtime.config import AgentConfig
from agents.runtime.errors import ToolFailed, ToolUnavailable
from agents.runtime.tools import CallContext
from amcp.errors import ConfigError

SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}


def mcp_tool(name: str, annotations: ToolAnnotations | None = None, **kw: object) -> McpTool:
    return McpTool(name=name, input_schema=SCHEMA, annotations=annotations, **kw)


def session() -> McpSession:
    return McpSession(McpServerSpec("fs", command=("fs-server",)))


def test_annotations_become_read_only_and_hints() -> None:
    read = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    write = ToolAnnotations(destructive_hint=False, idempotent_hint=True)
    tools = {
        t.name: t
        for t in mounted_tools(
            session(), [mcp_tool("readFile", read), mcp_tool("put", write), mcp_tool("bare")]
        )
    }
    assert set(tools) == {"fs.read_file", "fs.put", "fs.bare"}
    assert tools["fs.read_file"].read_only is True
    assert tools["fs.read_file"].spec()["hints"] == {
        "read_only": True,
        "destructive": False,
        "idempotent": True,
        "open_world": False,
    }
    assert tools["fs.put"].spec()["hints"] == {
        "read_only": False,
        "destructive": False,
        "idempotent": True,
        "open_world": True,
    }
    # nothing said: MCP's defaults (not read-only, destructive, open world)
    assert tools["fs.bare"].read_only is False
    assert tools["fs.bare"].spec()["hints"] == {
        "read_only": False,
        "destructive": True,
        "idempotent": False,
        "open_world": True,
    }


def test_the_schemas_and_description_are_the_servers() -> None:
    out = {"type": "object", "properties": {"content": {"type": "string"}}}
    [with_out, plain] = mounted_tools(
        session(),
        [
            mcp_tool("read", description="Read it.", output_schema=out),
            mcp_tool("raw", title="Raw"),
        ],
    )
    assert with_out.spec()["input_schema"] == SCHEMA and with_out.spec()["output_schema"] == out
    assert with_out.description == "Read it."
    assert plain.spec()["output_schema"] == CONTENT_SCHEMA and plain.description == "Raw"


def test_a_tool_with_a_broken_schema_is_left_out_not_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = McpTool(name="broken", input_schema={"type": "object", "properties": 3})
    tools = mounted_tools(session(), [broken, mcp_tool("read")])
    assert [t.name for t in tools] == ["fs.read"]
    assert "tool 'broken' not mounted" in caplog.text


def test_results_become_outputs_and_is_error_a_failure() -> None:
    text = TextContent(type="text", text="hello")
    structured = CallToolResult(content=[text], structured_content={"content": "hello"})
    assert tool_output(structured, structured=True, where="fs.read") == {"content": "hello"}
    image = ImageContent(type="image", data="aGk=", mime_type="image/png")
    assert tool_output(CallToolResult(content=[text, image]), structured=False, where="fs.raw") == {
        "content": [
            {"type": "text", "text": "hello"},
            {"type": "image", "data": "aGk=", "mimeType": "image/png"},
        ]
    }
    failed = CallToolResult(content=[TextContent(type="text", text="Access denied")], is_error=True)
    with pytest.raises(ToolFailed, match=r"^fs\.read: Access denied$"):
        tool_output(failed, structured=True, where="fs.read")
    with pytest.raises(ToolFailed, match="returned no structured content"):
        tool_output(CallToolResult(content=[text]), structured=True, where="fs.read")


async def test_a_server_that_is_not_up_makes_its_tools_unavailable() -> None:
    s = session()
    [t] = mounted_tools(s, [mcp_tool("read")])
    assert t.spec()["available"] is False
    assert t.spec()["unavailable"] == "MCP server fs is starting"
    with pytest.raises(ToolUnavailable, match="MCP server fs is starting"):
        await t.handler({"path": "/a"}, CallContext(None, "me", t.name, "c1"))


def test_the_extension_is_made_only_for_an_agent_with_mcp_servers() -> None:
    assert extension_for(AgentConfig(role="s1")) is None
    mount = extension_for(
        AgentConfig(role="s1", mcp=("fs=node srv.js",), mcp_restarts=(2, 10.0, 0.1, 1.0))
    )
    assert mount is not None
    assert mount.specs == (McpServerSpec("fs", command=("node", "srv.js")),)
    assert mount.policy == RestartPolicy(2, 10.0, 0.1, 1.0)
    with pytest.raises(ConfigError, match="expected NAME=COMMAND"):
        extension_for(AgentConfig(role="s1", mcp=("fs",)))
