"""`amcp log`: the last entries of the cluster-wide audit stream, oldest first. Frames that
fail the MAC or replay checks are skipped and counted on stderr; each entry shown is marked
verified (its agent's identity signature checks out against the roster) or UNVERIFIED."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from agents.cli.trace import SCAN, register_trace
from agents.runtime.subjects import validate_agent_id
from amcp.cli.common import EXIT_OK, add_connection_options, connect, emit, jsonable
from amcp.errors import ConfigError

# The audit reader (and with it the bus) loads when the command runs, not for --help.
if TYPE_CHECKING:
    from agents.runtime.audit import AuditEntry
    from amcp.bus import Bus

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    logcmd = sub.add_parser(
        "log",
        help="read the cluster's audit log",
        description="Print the last entries of the cluster-wide audit stream, oldest first, "
        "each marked verified (signed by its agent's identity, per the roster) or UNVERIFIED "
        "(anyone holding the cluster key could have written it); frames that fail the MAC or "
        "replay checks are skipped and counted on stderr.",
    )
    logcmd.add_argument(
        "--count",
        type=int,
        default=100,
        metavar="N",
        help="the last N entries, or the last N that match the filters (default 100)",
    )
    logcmd.add_argument("--agent", metavar="ID", help="only this agent's entries")
    logcmd.add_argument("--trace", metavar="ID", help="only the entries of this trace")
    logcmd.add_argument(
        "--task", metavar="ID", help="only the entries naming this task, or in its traces"
    )
    logcmd.add_argument(
        "--verified-only",
        action="store_true",
        help="leave out entries whose identity signature does not verify",
    )
    add_connection_options(logcmd)
    logcmd.set_defaults(func=cmd_log)
    register_trace(sub)  # `amcp trace`: the same log, as a tree of spans


def _render_entry(entry: AuditEntry) -> str:
    r = entry.record
    when = time.strftime("%H:%M:%S", time.localtime(r.get("ts", 0) / 1000))
    ms = int(r.get("ts", 0)) % 1000
    rest = " ".join(
        f"{k}={json.dumps(jsonable(v))}"
        for k, v in r.items()
        if k not in ("ts", "agent", "role", "event", "n")
    )
    mark = "verified" if entry.verified else "UNVERIFIED"
    return (
        f"#{entry.stream_seq}.{entry.index} [{mark}] {when}.{ms:03d} {entry.agent} "
        f"({r.get('role', '?')}) {entry.event} {rest}".rstrip()
    )


def cmd_log(args: argparse.Namespace) -> int:
    import asyncio

    from agents.runtime.audit import read_cluster_log
    from agents.runtime.spans import traces_of

    if args.count < 1:
        raise ConfigError("--count must be at least 1")
    if args.agent:
        validate_agent_id(args.agent)

    async def main() -> int:
        bus: Bus = await connect(args)
        checked = bus.verifier is not None
        if args.verified_only and not checked:
            await bus.close()
            raise ConfigError("--verified-only needs a roster (--roster PATH or AMCP_ROSTER)")
        # filtered: the last --count matches of the last SCAN entries, not the matches
        # among the last --count entries (--agent is filtered by the stream itself)
        filtered = bool(args.verified_only or args.trace or args.task)
        scan = max(args.count, SCAN) if filtered else args.count
        try:
            entries, counts = await read_cluster_log(bus, count=scan, agent=args.agent)
        finally:
            await bus.close()
        searched = len(entries)
        if args.verified_only:
            entries = [e for e in entries if e.verified]
        if args.trace:
            entries = [e for e in entries if e.trace_id == args.trace]
        if args.task:
            traces = set(traces_of((e.record for e in entries), args.task))
            entries = [
                e for e in entries if e.record.get("task") == args.task or e.trace_id in traces
            ]
        if filtered and searched >= scan and len(entries) < args.count:
            print(f"amcp: searched the last {scan} audit entries only", file=sys.stderr)
        entries = entries[-args.count :]
        if args.json:
            for e in entries:
                head = {"seq": e.stream_seq, "i": e.index, "signer": e.signer}
                emit({**head, "verified": e.verified, **e.record}, True)
        else:
            for e in entries:
                print(_render_entry(e))
            if not entries:
                print("(no audit entries)")
        unverified = {k: v for k, v in counts.items() if k.startswith("identity_")}
        skipped = {k: v for k, v in counts.items() if k not in unverified}
        if skipped:
            print(
                f"amcp: skipped stored frames that failed verification: {skipped}", file=sys.stderr
            )
        if not checked:
            print(
                "amcp: no roster (--roster, AMCP_ROSTER): identity checks are off, no entry "
                "is verified",
                file=sys.stderr,
            )
        elif unverified:
            hidden = "left out" if args.verified_only else "marked UNVERIFIED"
            print(f"amcp: frames {hidden}, by reason: {unverified}", file=sys.stderr)
        return EXIT_OK

    return asyncio.run(main())
