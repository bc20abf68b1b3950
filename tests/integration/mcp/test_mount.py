"""An agent mounts an external MCP server (`amcp-agent --mcp fs=...`), on a real nats-server
with a real agent process: the reference filesystem server from npm (node), or where node
or the package is missing the Python SDK stand-in; the stand-in is also run as itself, and
over Streamable HTTP.

Through the bus: `amcp call s1 fs.read_text_file` returns the file; bad arguments get the
schema's validation error from the agent (the server never sees them); an `isError` result
is a tool failure; the calls are in the audit log. Killing the server process makes its
tools unavailable in `describe` (the agent stays up) and the supervisor brings it back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from agents import AgentClient, ToolUnavailable, read_cluster_log
from amcp.server import free_port
from tests.support.cli import amcp, amcp_async
from tests.support.mcp_servers import STAND_IN, children, fs_server_command
from tests.support.waiting import wait_until

BACKOFF = 2.0  # seconds before a restart: the time the test sees the tools unavailable


@pytest.fixture(params=["reference", "python"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, Path]:
    """(which server, its command line, the directory it serves with a file in it)."""
    root = tmp_path / "files"
    root.mkdir()
    (root / "notes.txt").write_text("through the bus\nsecond line\n")
    kind, command = fs_server_command(request.param, root)
    return kind, command, root


async def describe(client: AgentClient, agent_id: str) -> dict[str, dict[str, Any]]:
    try:
        result = await client.call(agent_id, "describe", timeout=2.0)
    except Exception:
        return {}
    return {t["name"]: t for t in result.output["tools"]}


async def start_mounting(agent_cluster, make_bus, mcp: str, agent_id: str) -> AgentClient:
    agent_cluster.spawn(
        "s1", agent_id, args=["--mcp", mcp, "--backoff-base", str(BACKOFF), "--max-restarts", "3"]
    )
    client = AgentClient(await make_bus(f"t-{uuid.uuid4().hex[:6]}", cluster=agent_cluster.name))

    async def mounted() -> bool:
        return "fs.read_text_file" in await describe(client, agent_id)

    await wait_until(mounted, 30, interval=0.1, what=f"{agent_id} to mount its MCP server")
    return client


async def test_calls_through_the_bus(agent_cluster, make_bus, cli_env, served) -> None:
    kind, command, root = served
    client = await start_mounting(agent_cluster, make_bus, f"fs={command}", "s1-fs")
    env = agent_cluster.env(cli_env)
    notes = str(root / "notes.txt")

    done = await amcp_async(
        "call", "s1", "fs.read_text_file", json.dumps({"path": notes}), "--json", env=env
    )
    assert done.returncode == 0, (kind, done.stderr)
    assert json.loads(done.stdout) == {
        "agent": "s1-fs",
        "output": {"content": "through the bus\nsecond line\n"},
    }

    # annotations carried into read_only and hints, the raw input schema published
    spec = (await describe(client, "s1-fs"))["fs.read_text_file"]
    assert spec["read_only"] is True and spec["available"] is True
    assert spec["hints"] == {
        "read_only": True,
        "destructive": False,
        "idempotent": True,
        "open_world": False,
    }
    assert "path" in spec["input_schema"]["required"]
    assert (await describe(client, "s1-fs"))["fs.write_file"]["hints"]["destructive"] is True

    # bad arguments: the schema's error, from the agent, exit 2
    bad = await amcp_async("call", "s1", "fs.read_text_file", '{"head": "x"}', env=env)
    assert bad.returncode == 2, bad.stderr
    assert "invalid input for fs.read_text_file: input: 'path' is a required property" in (
        bad.stderr
    )

    # an isError result (a path outside the served directory) is a tool failure, exit 1
    outside = await amcp_async(
        "call", "s1", "fs.read_text_file", json.dumps({"path": "/etc/hostname"}), env=env
    )
    assert outside.returncode == 1, outside.stderr
    assert "fs.read_text_file: " in outside.stderr and "denied" in outside.stderr

    # audited like any call: received, then completed or failed
    entries, _ = await read_cluster_log(client.bus, agent="s1-fs")
    events = [(e.event, e.record.get("tool")) for e in entries if e.record.get("tool")]
    assert ("task_completed", "fs.read_text_file") in events
    assert ("task_failed", "fs.read_text_file") in events
    assert ("task_received", "fs.read_text_file") in events


async def test_a_killed_server_is_unavailable_then_brought_back(
    agent_cluster, make_bus, served
) -> None:
    kind, command, root = served
    client = await start_mounting(agent_cluster, make_bus, f"fs={command}", "s1-phoenix")
    agent = agent_cluster.procs[-1]
    assert agent.pid is not None
    [server_pid] = children(agent.pid)

    os.kill(server_pid, signal.SIGKILL)

    async def availability() -> bool | None:
        spec = (await describe(client, "s1-phoenix")).get("fs.read_text_file")
        return None if spec is None else spec["available"]

    async def down() -> bool:
        return await availability() is False

    await wait_until(down, 10, interval=0.05, what="the tools to show unavailable")
    spec = (await describe(client, "s1-phoenix"))["fs.read_text_file"]
    assert "MCP server fs is" in spec["unavailable"]
    with pytest.raises(ToolUnavailable, match="MCP server fs"):
        await client.call("s1-phoenix", "fs.read_text_file", {"path": str(root / "notes.txt")})
    assert agent.running  # the agent lives on

    async def up() -> bool:
        return await availability() is True

    await wait_until(up, 30, interval=0.05, what="the supervisor to bring the server back")
    result = await client.call("s1-phoenix", "fs.read_text_file", {"path": str(root / "notes.txt")})
    assert result.output == {"content": "through the bus\nsecond line\n"}, kind
    assert children(agent.pid) not in ([], [server_pid])
    assert "MCP server fs lost" in agent.log_text()

    view = await client.call("s1-phoenix", "members", timeout=2.0)
    [me] = [m for m in view.output["members"] if m["id"] == "s1-phoenix"]
    assert me["state"] == "running"


async def test_a_streamable_http_server(agent_cluster, make_bus, tmp_path: Path) -> None:
    (tmp_path / "web.txt").write_text("over http\n")
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        str(STAND_IN),
        "--http",
        str(port),
        str(tmp_path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_until(lambda: _listening(port), 20, interval=0.05, what="the HTTP server")
        client = await start_mounting(
            agent_cluster, make_bus, f"fs=http://127.0.0.1:{port}/mcp", "s1-web"
        )
        result = await client.call(
            "s1-web", "fs.read_text_file", {"path": str(tmp_path / "web.txt")}
        )
        assert result.output == {"content": "over http\n"}
    finally:
        server.kill()
        await server.wait()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_server_that_does_not_start_stops_the_agent_with_exit_2(cli_env) -> None:
    done = amcp(
        "--role", "s1", "--mcp", "fs=no-such-mcp-server --flag", env=cli_env, program="amcp-agent"
    )
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "MCP server fs (no-such-mcp-server --flag) did not start:" in last
