"""The MCP server around a Bridge, on the official SDK's low-level Server: `tools/list`
and `tools/call` answered from the bridge, `notifications/tools/list_changed` sent when
the cluster's tools change (to handshake-era sessions on their standalone stream, and to
`subscriptions/listen` streams of 2026-era clients), over stdio or Streamable HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterator
from typing import Any

import anyio
import mcp_types as types
from mcp.server import InitializationOptions, NotificationOptions, Server, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged

from agents.mcp.bridge import Bridge
from amcp.tracing import continue_trace, use_span

__all__ = ["McpServer"]

log = logging.getLogger("agents.mcp")

INSTRUCTIONS = (
    "Tools of an amcp agent cluster. Agent tools are named ROLE__TOOL (s1 operations, s2 "
    "coordination, s3 control, s4 intelligence, s5 policy) and run on a live agent of that "
    "role over a signed bus; every call lands in the signed audit log (amcp_log). "
    "amcp_members and amcp_status show the cluster, amcp_ctx_* its shared context, "
    "amcp_coordinate puts an action to a vote."
)
AUTO = " Agent tools annotated destructive run only after a quorum vote commits them."
MAX_SESSIONS = 256  # handshake sessions kept for list_changed (the newest)
_GRACEFUL_SHUTDOWN = 5.0  # seconds open connections get to finish once a stop is asked


class _Server(Server[Any]):
    """Declares tools.listChanged on every transport (Streamable HTTP builds its sessions'
    options itself, with no NotificationOptions)."""

    def create_initialization_options(
        self, notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> InitializationOptions:
        options = notification_options or NotificationOptions(tools_changed=True)
        return super().create_initialization_options(options, *args, **kwargs)


class McpServer:
    """`await McpServer(bridge).serve_stdio()` or `.serve_http(host, port, stop)`."""

    def __init__(self, bridge: Bridge, *, refresh: float = 1.0, version: str = "") -> None:
        self.bridge = bridge
        self.refresh = refresh
        self.events = InMemorySubscriptionBus()
        self._sessions: deque[ServerSession] = deque(maxlen=MAX_SESSIONS)
        self.server: Server[Any] = _Server(
            "amcp",
            version=version,
            instructions=INSTRUCTIONS + (AUTO if bridge.auto else ""),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self.events),
        )
        self.server.add_notification_handler(
            "notifications/initialized", types.NotificationParams, self._initialized
        )

    async def _initialized(self, ctx: ServerRequestContext[Any], params: Any) -> None:
        self._sessions.append(ctx.session)  # once per handshake connection

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tools = [types.Tool.model_validate(e) for e in self.bridge.entries()]
        return types.ListToolsResult(tools=tools)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        async def progress(done: float, total: float | None, message: str | None) -> None:
            with contextlib.suppress(Exception):  # best effort: never fails the call
                await ctx.session.report_progress(done, total, message)

        meta: Any = params.meta or {}
        wanted = meta.get("progress_token") is not None
        # each call is a trace, or continues the client's (`_meta.traceparent`, as the MCP
        # SDKs' OpenTelemetry instrumentation sends it): the bus carries it to the agents
        with use_span(continue_trace(meta.get("traceparent"), meta.get("tracestate", ""))):
            doc = await self.bridge.call(
                params.name, params.arguments, progress if wanted else None
            )
        return types.CallToolResult.model_validate(doc)

    async def tools_changed(self) -> None:
        for session in list(self._sessions):
            with contextlib.suppress(Exception):
                await session.send_tool_list_changed()
        await self.events.publish(ToolsListChanged())

    async def watch(self) -> None:
        """Follow the cluster: refresh the tools every `refresh` seconds, tell clients."""
        while True:
            try:
                if await self.bridge.refresh():
                    await self.tools_changed()
            except Exception:  # keep serving the last known list
                log.exception("refreshing the tool list failed")
            await asyncio.sleep(self.refresh)

    async def serve_stdio(self) -> None:
        await self.bridge.refresh()  # the first list is complete
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.watch)
            async with stdio_server() as (read, write):
                await self.server.run(read, write, self.server.create_initialization_options())
            tg.cancel_scope.cancel()

    async def serve_http(self, host: str, port: int, stop: asyncio.Event) -> None:
        """Serve until `stop` is set (the command's SIGTERM, SIGHUP or Ctrl-C), then shut
        down gracefully: never a cancellation in the middle of the app's lifespan, which
        uvicorn logs as an error."""
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield  # the signals are the command's, and set `stop`

        await self.bridge.refresh()
        app = self.server.streamable_http_app(host=host)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN,
        )
        server = Server(config)

        async def exit_on_stop() -> None:
            await stop.wait()
            server.should_exit = True

        async with anyio.create_task_group() as tg:
            tg.start_soon(self.watch)
            tg.start_soon(exit_on_stop)
            await server.serve()
            tg.cancel_scope.cancel()
