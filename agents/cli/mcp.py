"""`amcp mcp serve`: an MCP server over the cluster, for Claude Code, Claude Desktop or any
MCP client (stdio by default, Streamable HTTP with --http HOST:PORT).

It connects like every other command (signed bus, keyring, NATS credentials) and offers
every live agent's tools as ROLE__TOOL and the built-ins amcp_members, amcp_status,
amcp_log, amcp_ctx_get, amcp_ctx_set, amcp_ctx_incr, amcp_coordinate (and amcp_task with
--allow-tasks). Needs the `amcp[mcp]` extra. docs/MCP.md says what passes through the bus.
"""

from __future__ import annotations

import argparse

from amcp.cli.common import (
    EXIT_OK,
    add_connection_options,
    check_listen,
    connect,
    run_until_stopped,
)
from amcp.errors import ConfigError
from consensus.cli import seconds_arg

__all__ = ["register"]


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, e.g. 127.0.0.1:8765, not {text!r}")
    return host.strip("[]"), int(port)


def register(sub: argparse._SubParsersAction) -> None:
    mcp = sub.add_parser(
        "mcp",
        help="serve the cluster to MCP clients (Claude Code, IDEs)",
        description="Model Context Protocol bridge to the cluster.",
    )
    cmds = mcp.add_subparsers(dest="mcp_command", required=True, metavar="COMMAND")
    serve = cmds.add_parser(
        "serve",
        help="run an MCP server over the cluster (stdio, or --http)",
        description="Serve every live agent's tools (named ROLE__TOOL) and the built-in "
        "amcp_* tools to an MCP client, over stdio until the client closes it, or over "
        "Streamable HTTP with --http until SIGTERM. A destructive agent tool runs only "
        "after a quorum vote commits it (--no-auto: straight through).",
    )
    serve.add_argument(
        "--read-only", action="store_true", help="offer and run only read-only tools"
    )
    serve.add_argument(
        "--allow-tasks", action="store_true", help="offer amcp_task (runs tasks through S3)"
    )
    serve.add_argument(
        "--http",
        type=_host_port,
        metavar="HOST:PORT",
        help="serve Streamable HTTP on HOST:PORT (path /mcp) instead of stdio",
    )
    serve.add_argument(
        "--no-auto",
        dest="auto",
        action="store_false",
        help="run destructive agent tools without a quorum vote first",
    )
    serve.add_argument(
        "--vote-timeout",
        type=seconds_arg,
        default=10.0,
        metavar="S",
        help="deadline of the vote on a destructive call (default 10)",
    )
    serve.add_argument(
        "--call-timeout",
        type=seconds_arg,
        default=30.0,
        metavar="S",
        help="how long a tool call may take (default 30)",
    )
    serve.add_argument(
        "--refresh",
        type=seconds_arg,
        default=1.0,
        metavar="S",
        help="seconds between looks at the member list (default 1)",
    )
    add_connection_options(serve, json_flag=False)
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    try:
        from agents.mcp.server import McpServer
    except ImportError as exc:
        raise ConfigError(f"amcp mcp needs the MCP SDK: pip install 'amcp[mcp]' ({exc})") from None
    import logging

    from agents.mcp import Bridge, Services
    from agents.runtime.client import AgentClient
    from consensus.coordinator import Coordinator
    from crdt.store import ContextStore

    # stdout is the protocol's channel: every log line goes to stderr
    logging.basicConfig(level=logging.WARNING, format="amcp mcp: %(levelname)s %(message)s")

    if args.http:
        check_listen(*args.http)  # a taken port or a foreign host: one line, before connecting

    async def main(stop: asyncio.Event) -> int:
        bus = await connect(args, trace=False)  # it serves: no trace of its own
        try:
            store = await ContextStore.open(bus, bootstrap_timeout=1.0)
            coordinator = await Coordinator.open(bus, store=store)
            services = Services(bus, AgentClient(bus, timeout=5.0), store, coordinator)
            bridge = Bridge(
                services,
                read_only=args.read_only,
                allow_tasks=args.allow_tasks,
                auto=args.auto,
                call_timeout=args.call_timeout,
                vote_timeout=args.vote_timeout,
            )
            server = McpServer(bridge, refresh=args.refresh, version=_version())
            if args.http:  # uvicorn shuts down gracefully once `stop` is set
                await server.serve_http(*args.http, stop=stop)
            else:
                serving = asyncio.ensure_future(server.serve_stdio())
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                for task in (serving, stopping):
                    task.cancel()
                await asyncio.gather(serving, stopping, return_exceptions=True)
                if serving.done() and not serving.cancelled() and serving.exception():
                    raise serving.exception()  # type: ignore[misc]
            await coordinator.close()
            await store.close()
        finally:
            await bus.close()
        return EXIT_OK

    return run_until_stopped(main)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # not for --help

    try:
        return version("amcp")
    except PackageNotFoundError:
        return ""
