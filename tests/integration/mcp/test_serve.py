"""`amcp mcp serve` driven by the MCP SDK's own client over stdio, against a real
nats-server and real agents: every live agent's tools and the built-ins with valid names,
schemas and annotations; calls through the bus with structured output, the answering
agent and the audit call id; the agent's validation message as `isError`; a quorum vote
with progress per ballot; destructive tools run only when a vote commits them; a forged
frame meanwhile is rejected and counted; the list follows the cluster; --read-only offers
only read-only tools; Streamable HTTP."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
from typing import Any

import mcp_types as types
import pytest
from pydantic import BaseModel

from agents import CallContext, ToolHints, tool
from agents.runtime.catalog import BUILTIN
from agents.runtime.subjects import AgentSubjects, call_request
from amcp.server import free_port
from consensus import Thresholds, VotePolicy
from tests.support.cli import amcp_async, start_async
from tests.support.consensus import Members
from tests.support.mcp import bridge, http_session
from tests.support.waiting import wait_until

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
BUILTINS = {
    "amcp_members",
    "amcp_status",
    "amcp_log",
    "amcp_ctx_get",
    "amcp_ctx_set",
    "amcp_ctx_incr",
    "amcp_coordinate",
}
HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
# yes whatever the scores (the default policy's bars are not what is tested here)
EAGER = Thresholds(risk_max=1.0, confidence_min=0.0, yes_min=0.0)


class Target(BaseModel):
    path: str


class Done(BaseModel):
    runs: int


def destructive_tool(name: str, runs: list[str]):
    @tool(name, hints=ToolHints(destructive=True))
    async def handler(args: Target, ctx: CallContext) -> Done:
        """Delete what is at path (counts its runs)."""
        runs.append(args.path)
        return Done(runs=len(runs))

    return handler


@pytest.fixture
def env(members: Members, cli_env: dict[str, str]) -> dict[str, str]:
    return {**cli_env, "AMCP_CLUSTER": members.cluster}


async def voters(members: Members, n: int = 5) -> None:
    # `wipe` is voted down (no voter takes that risk), `purge` goes through
    policy = VotePolicy(EAGER, overrides={"tool-call:s1.wipe": Thresholds(risk_max=0.0)})
    for i in range(1, n + 1):
        await members.add(f"v{i}", policy=policy)


async def forge_a_call(members: Members, agent_id: str) -> None:
    """A call frame to `agent_id` whose signature does not verify."""
    bus = await members.bus("mallory")
    subject = AgentSubjects(bus.subjects).call(agent_id)
    frame = bytearray(bus.sealer.seal(subject, call_request("echo", {"text": "x"}), "req", {}))
    frame[-5] ^= 0xFF
    await bus.publish_frame(subject, bytes(frame))
    await bus.flush()


def by_name(listed: types.ListToolsResult) -> dict[str, types.Tool]:
    return {t.name: t for t in listed.tools}


async def listed_until(session, predicate, what: str) -> dict[str, types.Tool]:
    """The tool list once `predicate(tools)` holds (the bridge follows the members)."""
    found: dict[str, types.Tool] = {}

    async def check() -> bool:
        found.clear()
        found.update(by_name(await session.list_tools()))
        return predicate(found)

    await wait_until(check, 20, interval=0.2, what=what)
    return found


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def test_tools_of_live_agents_and_builtins_are_listed_and_called(
    members: Members, env: dict[str, str]
) -> None:
    wiped: list[str] = []
    purged: list[str] = []
    await members.add(
        "s1-a",
        role="s1",
        voter=False,
        tools=(BUILTIN["echo"], destructive_tool("wipe", wiped), destructive_tool("purge", purged)),
    )
    await voters(members)
    async with bridge(env) as session:
        tools = await listed_until(
            session,
            lambda t: {"s1__echo", "s1__wipe", "s1__purge"} <= set(t),
            "s1 tools listed",
        )
        assert set(tools) >= BUILTINS and "amcp_task" not in tools
        for t in tools.values():
            assert NAME.match(t.name), t.name
            assert t.input_schema["type"] == "object"
            hints = t.annotations.model_dump(by_alias=True)
            assert all(isinstance(hints[h], bool) for h in HINTS), (t.name, hints)
        echo = tools["s1__echo"]
        assert echo.input_schema["examples"] == [{"text": "hello"}]
        assert echo.output_schema["properties"]["text"]["type"] == "string"
        assert echo.annotations.read_only_hint is True
        assert tools["s1__wipe"].annotations.destructive_hint is True
        assert tools["s1__wipe"].annotations.read_only_hint is False
        assert tools["amcp_members"].annotations.read_only_hint is True
        assert tools["amcp_coordinate"].annotations.read_only_hint is False

        # a call through the bus: structured output, who answered, the audit call id
        result = await session.call_tool("s1__echo", {"text": "hi"})
        assert not result.is_error, text_of(result)
        assert result.structured_content == {"text": "hi"}
        assert '"text": "hi"' in text_of(result)
        meta = result.meta["amcp"]
        assert meta["agent"] == "s1-a" and re.fullmatch(r"[0-9a-f]{8,}", meta["call"])

        # bad arguments: the agent's validation message, as a result
        bad = await session.call_tool("s1__echo", {"text": 5})
        assert bad.is_error
        assert "invalid input for echo: text" in text_of(bad)
        assert "string" in text_of(bad).lower()

        unknown = await session.call_tool("s1__nothing", {})
        assert unknown.is_error and "list the tools again" in text_of(unknown)

        # the built-ins answer from the same paths as the commands
        view = await session.call_tool("amcp_members", {})
        ids = {m["id"] for m in view.structured_content["members"]}
        assert {"s1-a", "v1", "v5"} <= ids
        bad_count = await session.call_tool("amcp_log", {"count": 0})
        assert bad_count.is_error and "count" in text_of(bad_count)

        # a vote with a progress notification per ballot, and the tally
        progress: list[tuple[float, str | None]] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append((done, message))

        voted = await session.call_tool(
            "amcp_coordinate",
            {"action": "restart", "payload": {"targets": ["w1"]}, "timeout": 5},
            progress_callback=on_progress,
        )
        assert not voted.is_error, text_of(voted)
        out = voted.structured_content
        assert out["outcome"] == "committed"
        assert out["summary"]["yes"] >= 3 and len(out["members"]) == 5
        for vote in out["votes"]:
            assert set(vote["scores"]) == {
                "urgency",
                "importance",
                "risk",
                "confidence",
                "novelty",
            }
            assert vote["reason"]
        assert len(progress) >= 3 and progress[0][0] == 1
        assert all(m and "voted" in m for _, m in progress)

        # destructive agent tools: voted on first, run only when committed, once
        refused = await session.call_tool("s1__wipe", {"path": "/data"})
        assert refused.is_error
        assert "Nothing ran" in text_of(refused)
        assert refused.meta["amcp"]["vote"]["outcome"] != "committed"
        assert wiped == []
        ran = await session.call_tool("s1__purge", {"path": "/tmp/x"})
        assert not ran.is_error, text_of(ran)
        assert ran.structured_content == {"runs": 1} and purged == ["/tmp/x"]
        assert ran.meta["amcp"]["vote"]["outcome"] == "committed"
        assert "quorum vote committed it" in text_of(ran)

        # the call id leads to the call's entries in the signed audit log
        logged = await session.call_tool("amcp_log", {"task": meta["call"]})
        assert not logged.is_error, text_of(logged)
        events = [e["event"] for e in logged.structured_content["entries"]]
        # no roster here: each entry says it was not identity-verified, and asking for
        # verified entries only leaves none
        assert {e["verified"] for e in logged.structured_content["entries"]} == {False}
        strict = await session.call_tool("amcp_log", {"task": meta["call"], "verified_only": True})
        assert strict.structured_content["entries"] == []
        assert "task_completed" in events or "task.completed" in events, events

        # a forged frame on the bus meanwhile is rejected and counted as before
        await forge_a_call(members, "s1-a")

        async def counted() -> bool:
            status = await session.call_tool("amcp_status", {})
            target = next(m for m in status.structured_content["members"] if m["id"] == "s1-a")
            return target["stats"]["rejections"].get("bad_signature", 0) >= 1

        await wait_until(counted, 20, interval=0.3, what="the forgery counted in amcp_status")
        again = await session.call_tool("s1__echo", {"text": "still here"})
        assert again.structured_content == {"text": "still here"}


async def test_the_list_follows_the_cluster_and_read_only_hides_the_rest(
    members: Members, env: dict[str, str]
) -> None:
    await members.add("s1-a", role="s1", voter=False, tools=(BUILTIN["echo"],))
    changed = asyncio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with bridge(env, on_message=on_message) as session:
        assert session.server_capabilities.tools.list_changed is True
        await listed_until(session, lambda t: "s1__echo" in t, "s1 echo listed")
        changed.clear()
        await members.add(
            "s2-late", role="s2", voter=False, tools=(destructive_tool("drop.table", []),)
        )
        await asyncio.wait_for(changed.wait(), 20)
        tools = by_name(await session.list_tools())
        assert "s2__drop_table" in tools  # the dot mapped

    async with bridge(env, "--read-only") as session:
        tools = await listed_until(session, lambda t: "s1__echo" in t, "s1 echo listed")
        assert all(t.annotations.read_only_hint for t in tools.values())
        assert "s2__drop_table" not in tools and "amcp_ctx_set" not in tools
        assert {"amcp_members", "amcp_status", "amcp_log", "amcp_ctx_get"} <= set(tools)
        refused = await session.call_tool("amcp_ctx_set", {"key": "k", "value": 1})
        assert refused.is_error
        refused = await session.call_tool("s2__drop_table", {"path": "x"})
        assert refused.is_error and "read-only" in text_of(refused)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
async def test_streamable_http_serves_the_same_tools_until_sigterm(
    members: Members, env: dict[str, str], stop: signal.Signals
) -> None:
    await members.add("s1-a", role="s1", voter=False, tools=(BUILTIN["echo"],))
    port = free_port()
    proc = await start_async("mcp", "serve", "--http", f"127.0.0.1:{port}", env=env)
    url = f"http://127.0.0.1:{port}/mcp"
    try:

        async def echoed() -> bool:
            try:
                async with http_session(url) as session:
                    if "s1__echo" not in by_name(await session.list_tools()):
                        return False
                    result = await session.call_tool("s1__echo", {"text": "over http"})
                    return result.structured_content == {"text": "over http"}
            except Exception:  # not listening yet
                return False

        await wait_until(echoed, 30, interval=0.3, what="an echo over Streamable HTTP")
        async with http_session(url) as session:
            assert session.server_capabilities.tools.list_changed is True
        proc.send_signal(stop)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        # a quiet stop: the app's lifespan was cancelled mid-way, and uvicorn logged it
        stderr = (await proc.stderr.read()).decode()
        assert "Traceback" not in stderr and "ERROR" not in stderr, stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_bad_options_are_one_line_and_exit_2(cli_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, said in (
            (("--http", "nope"), "expected HOST:PORT"),
            (("--http", "127.0.0.1:99999"), "expected HOST:PORT"),
            (("--vote-timeout", "0"), "seconds in (0, 3600]"),
            (("--http", f"127.0.0.1:{port}"), f"cannot listen on 127.0.0.1:{port}"),
            (("--http", "nosuch.invalid:8765"), "cannot listen on nosuch.invalid:8765"),
        ):
            done = await amcp_async("mcp", "serve", *args, env=cli_env)
            assert done.returncode == 2, (args, done.stderr)
            assert said in done.stderr and "Traceback" not in done.stderr
            assert done.stderr.count("\n") == 1, done.stderr
