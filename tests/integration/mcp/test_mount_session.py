"""One mounted server's supervision in this process, with a real stdio server (the Python
SDK stand-in): a server killed once too often is given up on, its tools stay unavailable
with the reason, and closing stops the server process."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from agents.process.mcpsession import McpSession
from agents.process.mcpspec import McpServerSpec
from agents.process.restarts import RestartPolicy
from tests.support.mcp_servers import STAND_IN, children
from tests.support.waiting import wait_until


async def test_past_the_budget_the_server_stays_down_and_says_why(tmp_path: Path) -> None:
    before = set(children(os.getpid()))
    spec = McpServerSpec("fs", command=(sys.executable, str(STAND_IN), str(tmp_path)))
    session = McpSession(spec, RestartPolicy(max_restarts=1, window=60, base_delay=0.05))
    try:
        listed = await session.open()
        assert {t.name for t in listed} == {"read_text_file", "write_file"}
        assert session.unavailable("read_text_file") is None

        async def new_server() -> int | None:
            fresh = set(children(os.getpid())) - before
            return fresh.pop() if len(fresh) == 1 and session.state == "up" else None

        first = await new_server()
        assert first is not None
        os.kill(first, signal.SIGKILL)  # restart 1 of at most 1

        async def replaced() -> bool:
            pid = await new_server()
            return pid is not None and pid != first

        await wait_until(replaced, 20, interval=0.05, what="the first restart")
        assert session.restarts == 1
        second = await new_server()
        assert second is not None
        os.kill(second, signal.SIGKILL)  # past the budget

        await wait_until(lambda: session.state == "gave up", 20, what="giving up")
        why = session.unavailable("read_text_file")
        assert why is not None and "restart budget spent: 1 restarts within 60s" in why
        assert session.status()["restarts"] == 1
        assert set(children(os.getpid())) - before == set()
    finally:
        await session.close()
    assert session.state == "stopped"


async def test_closing_stops_the_server(tmp_path: Path) -> None:
    before = set(children(os.getpid()))
    spec = McpServerSpec("fs", command=(sys.executable, str(STAND_IN), str(tmp_path)))
    session = McpSession(spec)
    await session.open()
    assert len(set(children(os.getpid())) - before) == 1
    await session.close()
    await wait_until(
        lambda: set(children(os.getpid())) - before == set(), 10, what="the server to exit"
    )
    assert session.unavailable("read_text_file") == "MCP server fs is stopped"
