"""An MCP tool call continues the client's trace (`_meta.traceparent`, as the MCP SDKs'
OpenTelemetry instrumentation sends it) through `amcp mcp serve` and the bus to the agent
that runs the tool; a call without one is a trace of its own."""

from __future__ import annotations

import pytest

from agents.runtime.catalog import BUILTIN
from amcp.tracing import SpanRecord, new_trace
from tests.support.consensus import Members
from tests.support.mcp import bridge
from tests.support.waiting import wait_until


@pytest.fixture
def env(members: Members, cli_env: dict[str, str]) -> dict[str, str]:
    return {**cli_env, "AMCP_CLUSTER": members.cluster}


async def test_a_tool_call_continues_the_clients_trace(
    members: Members, env: dict[str, str], spans: list[SpanRecord]
) -> None:
    await members.add("s1-a", role="s1", voter=False, tools=(BUILTIN["echo"],))
    outer = new_trace()
    async with bridge(env) as session:

        async def listed() -> bool:
            return "s1__echo" in {t.name for t in (await session.list_tools()).tools}

        await wait_until(listed, 10, what="s1__echo listed")
        meta = {"traceparent": outer.traceparent, "tracestate": "vendor=1"}
        traced = await session.call_tool("s1__echo", {"text": "hi"}, meta=meta)
        assert not traced.is_error
        plain = await session.call_tool("s1__echo", {"text": "again"})
        assert not plain.is_error

    await wait_until(lambda: len([s for s in spans if s.name == "tool.echo"]) == 2, what="spans")
    echoes = [s for s in spans if s.name == "tool.echo"]
    first, second = echoes
    assert first.trace_id == outer.trace_id and first.agent == "s1-a"
    # under the bridge's span for the call, itself a child of the client's
    assert first.parent_id not in (None, outer.span_id)
    assert second.trace_id != outer.trace_id
