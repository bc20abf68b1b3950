"""One external MCP server, held open and supervised for the agent that mounts it.

The official SDK's client (`mcp.Client` over `mcp.client.stdio` or the Streamable HTTP
transport, a ClientSession inside) connects, lists the server's tools and calls them. One
task holds the connection (anyio wants a session entered and left in one task); calls come
from the agent's pool through it. When the server goes away (a stdio server's stdout
ends: it died; a call that finds the connection gone) its tools are unavailable, and it is
started again after agents.process.restarts' backoff, within the same kind of budget as a
supervised agent. Past the budget it stays down and says so; the agent lives on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CONNECTION_CLOSED, CallToolResult
from mcp_types import Tool as McpTool

from agents.process.mcpspec import McpServerSpec
from agents.process.restarts import RestartPolicy, RestartTracker
from agents.runtime.errors import ToolFailed, ToolUnavailable

__all__ = ["CALL_TIMEOUT", "CONNECT_TIMEOUT", "McpSession"]

log = logging.getLogger("agents.process.mcpsession")
CONNECT_TIMEOUT = 30.0  # start, handshake and tool listing of one attempt
CALL_TIMEOUT = 300.0  # one call: a hung server must not hold a pool slot for ever
_PAGES = 100  # tools/list pages at most: a server whose cursor never ends cannot hang us


def _one_line(exc: BaseException) -> str:
    """The innermost cause of `exc` in a line (task groups wrap it in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class _EndWatch:
    """A transport's read stream that reports its end: a stdio server that died."""

    def __init__(self, stream: Any, on_end: Callable[[], None]) -> None:
        self._stream = stream
        self._on_end = on_end

    async def receive(self) -> Any:
        try:
            return await self._stream.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._on_end()
            raise

    def __aiter__(self) -> _EndWatch:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def __aenter__(self) -> _EndWatch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:  # what a dispatcher may read (last_context)
        return getattr(self._stream, name)


class McpSession:
    """A supervised connection to one MCP server: `open`, `call`, `unavailable`, `close`."""

    def __init__(
        self,
        spec: McpServerSpec,
        policy: RestartPolicy | None = None,
        *,
        call_timeout: float = CALL_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.tracker = RestartTracker(policy)
        self.call_timeout = call_timeout
        self.clock = clock
        self.state = "starting"  # up, down, restarting, gave up, stopped
        self.reason = ""  # why it is not up
        self.tools: dict[str, McpTool] = {}  # by MCP name, as last listed
        self._client: Client | None = None
        self._lost = asyncio.Event()
        self._stop = asyncio.Event()
        self._first = asyncio.Event()  # the first attempt is over, up or not
        self._first_error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def restarts(self) -> int:
        return self.tracker.total_restarts

    async def open(self, timeout: float = CONNECT_TIMEOUT) -> list[McpTool]:
        """Start (or connect to) the server and list its tools; the first attempt must
        succeed: an error in one line otherwise, with nothing left running."""
        self._task = asyncio.create_task(self._hold(), name=f"mcp:{self.spec.name}")
        try:
            await asyncio.wait_for(self._first.wait(), timeout)
        except TimeoutError:
            self._first_error = TimeoutError(f"no answer in {timeout:g}s")
        if self._first_error is not None:
            await self.close()
            raise ToolUnavailable(
                f"MCP server {self.spec.name} ({self.spec.target}) did not start: "
                f"{_one_line(self._first_error)}"
            )
        return list(self.tools.values())

    def unavailable(self, tool: str) -> str | None:
        """Why `tool` (its MCP name) cannot be called now; None when it can."""
        if self.state != "up":
            return f"MCP server {self.spec.name} is {self.state}" + (
                f": {self.reason}" if self.reason else ""
            )
        if tool not in self.tools:
            return f"MCP server {self.spec.name} no longer lists {tool!r}"
        return None

    async def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        """Call `tool` (its MCP name). ToolUnavailable if the server is down, ToolFailed
        for an error the server answers with; the result itself may be an isError one."""
        client = self._client
        why = self.unavailable(tool)
        if why is not None or client is None:
            raise ToolUnavailable(why or f"MCP server {self.spec.name} is not connected")
        try:
            return await client.call_tool(tool, arguments, read_timeout_seconds=self.call_timeout)
        except MCPError as exc:
            if exc.code != CONNECTION_CLOSED:
                raise ToolFailed(f"MCP server {self.spec.name}: {exc.message}") from None
            self._lose("the connection closed")
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            self._lose(_one_line(exc))  # an HTTP server gone away, a broken pipe
        raise ToolUnavailable(
            f"MCP server {self.spec.name} went away during the call ({self.reason}); "
            "it is being restarted"
        )

    async def close(self) -> None:
        """Stop holding the connection (a stdio server is stopped as the SDK does it)."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), 10.0)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.state = "stopped"

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "target": self.spec.target,
            "state": self.state,
            "tools": len(self.tools),
            "restarts": self.restarts,
        }
        if self.reason:
            doc["reason"] = self.reason
        return doc

    # -- the holding task -------------------------------------------------------------

    def _lose(self, reason: str) -> None:
        if self._stop.is_set() or self._lost.is_set():
            return
        self.state, self.reason = "down", reason  # its tools unavailable from now on
        self._lost.set()

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[Any]:
        spec = self.spec
        if spec.url:
            inner = streamable_http_client(spec.url)
        else:
            command, *args = spec.command
            inner = stdio_client(StdioServerParameters(command=command, args=args))
        async with inner as (read, write):
            yield _EndWatch(read, lambda: self._lose("it exited")), write

    async def _connect_and_wait(self) -> None:
        """One life of the connection: up, tools listed, until lost or stopped."""
        async with Client(self._transport(), cache=None) as client:
            tools: list[McpTool] = []
            cursor: str | None = None
            for _ in range(_PAGES):
                page = await client.list_tools(cursor=cursor)
                tools += page.tools
                if not (cursor := page.next_cursor):
                    break
            self.tools = {t.name: t for t in tools}
            self._client = client
            self.state, self.reason = "up", ""
            self._first.set()
            log.info("MCP server %s up: %d tools", self.spec.name, len(tools))
            lost = asyncio.ensure_future(self._lost.wait())
            stop = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait([lost, stop], return_when=asyncio.FIRST_COMPLETED)
            finally:
                lost.cancel()
                stop.cancel()
                self._client = None

    async def _hold(self) -> None:
        while not self._stop.is_set():
            self._lost.clear()
            try:
                await self._connect_and_wait()
            except Exception as exc:
                if not self._first.is_set():
                    self._first_error = exc
                    self._first.set()
                    return
                self._lose(_one_line(exc))
            if self._stop.is_set():
                return
            self.state = "restarting"
            decision = self.tracker.on_exit(1, self.clock())
            if not decision.restart:
                self.state = "gave up"
                self.reason = f"{decision.reason}; last: {self.reason}"
                log.error("giving up on MCP server %s: %s", self.spec.name, self.reason)
                return
            log.warning(
                "MCP server %s lost (%s); restart %d of at most %d within %gs, in %.2fs",
                self.spec.name,
                self.reason,
                decision.attempt,
                self.tracker.policy.max_restarts,
                self.tracker.policy.window,
                decision.delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), decision.delay)
