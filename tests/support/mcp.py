"""The official MCP SDK's client against `amcp mcp serve` run as a subprocess over stdio,
as Claude Code or an IDE runs it: `async with bridge(env, "--read-only") as session`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.support.cli import argv

__all__ = ["bridge", "http_session"]


@contextlib.asynccontextmanager
async def bridge(
    env: dict[str, str],
    *args: str,
    on_message: Callable[[Any], Awaitable[None]] | None = None,
) -> AsyncIterator[ClientSession]:
    """An initialized ClientSession with `amcp mcp serve ARGS`; `on_message` gets the
    server's notifications (tools/list_changed)."""
    command = argv(["mcp", "serve", *args])
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, message_handler=on_message) as session,
    ):
        await session.initialize()
        yield session


@contextlib.asynccontextmanager
async def http_session(url: str) -> AsyncIterator[ClientSession]:
    """An initialized ClientSession with a Streamable HTTP server at `url`."""
    async with (
        streamable_http_client(url) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session
