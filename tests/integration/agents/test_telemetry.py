"""OpenTelemetry export on a real nats-server: with the SDK's in-memory exporter, the spans
exported while an operation runs are the audit log's spans of that operation, with the
same trace id, span ids, parents and times."""

from __future__ import annotations

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agents import AgentClient, read_cluster_log
from amcp.telemetry import SpanExport
from amcp.tracing import SpanRecord, new_trace, use_span
from tests.support.agents import Cluster
from tests.support.cli import amcp_async
from tests.support.waiting import wait_until


def close(a: tuple, b: tuple) -> bool:
    """The same ids and times within 2 us (the audit log keeps start and duration to the us)."""
    return a[:2] == b[:2] and all(abs(x - y) <= 2_000 for x, y in zip(a[2:], b[2:], strict=True))


async def test_the_exported_spans_are_the_audit_logs(
    start_agent, client: AgentClient, cluster_name: str
) -> None:
    memory = InMemorySpanExporter()
    export = SpanExport(SimpleSpanProcessor(memory)).install()
    try:
        agent = await start_agent(capabilities=("echo",))
        root = new_trace()  # the caller's span, as a command line starts one
        with use_span(root):
            await client.call(agent.id, "echo", {"text": "traced"})
            await client.call(agent.id, "echo", {"text": "twice"})
        logged: list[SpanRecord] = []

        async def in_the_log() -> bool:
            entries, _ = await read_cluster_log(client.bus, agent=agent.id)
            logged[:] = [e.span for e in entries if e.span and e.span.trace_id == root.trace_id]
            return len(logged) >= 2

        await wait_until(in_the_log, 10, what="the calls' spans in the audit log")
    finally:
        export.shutdown()
    exported = [
        s for s in memory.get_finished_spans() if f"{s.context.trace_id:032x}" == root.trace_id
    ]
    got = {
        f"{s.context.span_id:016x}": (
            f"{s.context.trace_id:032x}",
            None if s.parent is None else f"{s.parent.span_id:016x}",
            s.start_time,
            s.end_time,
        )
        for s in exported
    }
    want = {s.span_id: (s.trace_id, s.parent_id, s.start_ns, s.end_ns) for s in logged}
    assert set(got) == set(want)
    for span_id, span in want.items():
        assert close(got[span_id], span), (got[span_id], span)
    assert len(exported) == len(got)  # each span exported once
    calls = [s for s in logged if s.name == "tool.echo"]
    assert len(calls) == 2 and {s.parent_id for s in calls} == {root.span_id}  # the caller's
    assert {s.parent_id for s in logged} <= {root.span_id} | set(want)  # one tree
    tools = [s for s in exported if s.name == "execute_tool echo"]
    assert len(tools) == 2
    for span in tools:
        attrs = dict(span.attributes or {})
        assert attrs["messaging.system"] == "nats" and attrs["gen_ai.tool.name"] == "echo"
        assert attrs["amcp.agent"] == agent.id
        assert attrs["messaging.destination.name"] == f"amcp.{cluster_name}.agents.call"


async def test_an_agent_process_exports_by_the_otel_variables(
    agent_cluster: Cluster, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "otel-test"}
    agent = agent_cluster.spawn("s1", "ot1", capabilities=("echo",), env=env)
    root = new_trace()
    caller = {**agent_cluster.env(cli_env), "TRACEPARENT": root.traceparent}  # no OTEL_*: none

    async def answered() -> bool:
        done = await amcp_async("call", "ot1", "echo", '{"text": "x"}', env=caller, timeout=30)
        return done.returncode == 0

    await wait_until(answered, 30, interval=0.2, what="the agent answering")

    def exported() -> bool:  # the console exporter writes each span to the agent's stderr
        log = agent.log_text()
        return f'"trace_id": "0x{root.trace_id}"' in log and '"execute_tool echo"' in log

    await wait_until(exported, 10, what="the tool span on the agent's console exporter")
    log = agent.log_text()
    assert '"service.name": "otel-test"' in log and '"service.instance.id": "ot1"' in log
    assert '"parent_id": null' not in log  # under the command's span, a child of TRACEPARENT
