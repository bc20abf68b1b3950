"""`amcp log`: the last entries of the cluster-wide audit stream, oldest first. Entries that
fail their signature checks are skipped and counted on stderr."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from agents.runtime.audit import AuditEntry, read_cluster_log
from agents.runtime.subjects import validate_agent_id
from amcp.bus import Bus
from amcp.cli.common import EXIT_OK, add_connection_options, connect, emit, jsonable
from amcp.errors import ConfigError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    logcmd = sub.add_parser(
        "log",
        help="read the cluster's audit log",
        description="Print the last entries of the cluster-wide audit stream, oldest first; "
        "entries that fail signature checks are skipped and counted on stderr.",
    )
    logcmd.add_argument(
        "--count", type=int, default=100, metavar="N", help="the last N entries (default 100)"
    )
    logcmd.add_argument("--agent", metavar="ID", help="only this agent's entries")
    add_connection_options(logcmd)
    logcmd.set_defaults(func=cmd_log)


def _render_entry(entry: AuditEntry) -> str:
    r = entry.record
    when = time.strftime("%H:%M:%S", time.localtime(r.get("ts", 0) / 1000))
    ms = int(r.get("ts", 0)) % 1000
    rest = " ".join(
        f"{k}={json.dumps(jsonable(v))}"
        for k, v in r.items()
        if k not in ("ts", "agent", "role", "event", "n")
    )
    return (
        f"#{entry.stream_seq}.{entry.index} {when}.{ms:03d} {entry.agent} ({r.get('role', '?')}) "
        f"{entry.event} {rest}".rstrip()
    )


def cmd_log(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise ConfigError("--count must be at least 1")
    if args.agent:
        validate_agent_id(args.agent)

    async def main() -> int:
        bus: Bus = await connect(args)
        try:
            entries, rejected = await read_cluster_log(bus, count=args.count, agent=args.agent)
        finally:
            await bus.close()
        if args.json:
            for e in entries:
                emit({"seq": e.stream_seq, "i": e.index, "signer": e.signer, **e.record}, True)
        else:
            for e in entries:
                print(_render_entry(e))
            if not entries:
                print("(no audit entries)")
        if rejected:
            print(
                f"amcp: skipped stored entries that failed verification: {rejected}",
                file=sys.stderr,
            )
        return EXIT_OK

    return asyncio.run(main())
