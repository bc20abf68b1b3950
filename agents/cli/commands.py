"""The agent runtime's `amcp` subcommands: members, call, tools, log, status, supervise.

Loaded by amcp's CLI from the `amcp.commands` entry-point group. Cluster questions are
answered by any live agent (the `any` queue group), which hosts a replica of the member
list and hears every heartbeat, so the CLI itself keeps no state.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from typing import Any

from agents.process.supervisor import Supervisor, add_restart_options, restart_policy
from agents.runtime.admin import ClusterView, MemberView
from agents.runtime.audit import AuditEntry, read_cluster_log
from agents.runtime.client import AgentClient
from agents.runtime.errors import AgentBusy, ToolCallError, ToolInputError, UnknownTool
from agents.runtime.subjects import call_request, validate_agent_id
from agents.vsm.viability import render_viability
from amcp.bus import Bus
from amcp.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    add_connection_options,
    connect,
    emit,
    jsonable,
    parse_json_arg,
    run_until_stopped,
)
from amcp.errors import ConfigError, NoResponders

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    members = sub.add_parser(
        "members",
        help="list the cluster's members and their liveness",
        description="List members (role, lifecycle state, liveness, last heartbeat) as a live "
        "agent sees them; `members remove ID` removes a dead one.",
    )
    add_connection_options(members)
    actions = members.add_subparsers(dest="action", metavar="ACTION")
    remove = actions.add_parser("remove", help="remove a dead member")
    remove.add_argument("agent_id", metavar="ID")
    add_connection_options(remove)
    members.set_defaults(func=cmd_members)

    call = sub.add_parser(
        "call",
        help="call a tool on an agent or a role",
        description="Call TOOL on an agent id, a role (s1..s5: any of its live agents) or "
        "'any'. Exit 0 done, 1 the tool failed or the agent is busy, 2 bad input or unknown "
        "tool, 3 no agent answered.",
    )
    call.add_argument("target", metavar="AGENT_OR_ROLE")
    call.add_argument("tool", metavar="TOOL")
    call.add_argument(
        "input", metavar="JSON", nargs="?", default="{}", help="the tool's input (default {})"
    )
    call.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait for the answer (default 10)",
    )
    add_connection_options(call)
    call.set_defaults(func=cmd_call)

    tools = sub.add_parser(
        "tools",
        help="describe an agent's tools",
        description="Print the tools of an agent (or of one agent of a role): description, "
        "input and output JSON schemas, examples.",
    )
    tools.add_argument("target", metavar="AGENT_OR_ROLE")
    add_connection_options(tools)
    tools.set_defaults(func=cmd_tools)

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

    status = sub.add_parser(
        "status",
        help="cluster status: members, liveness, load, rejected frames",
        description="Members with role, state, liveness, last heartbeat, load, calls and "
        "each agent's bus rejection counters by reason; the viability metrics and active "
        "adaptations.",
    )
    add_connection_options(status)
    status.set_defaults(func=cmd_status)

    supervise = sub.add_parser(
        "supervise",
        help="run a command and restart it when it crashes",
        description="Run COMMAND; restart it after an exponential backoff when it exits "
        "non-zero, within a restart budget; give up (exit 1) when the budget is spent.",
    )
    add_restart_options(supervise)
    supervise.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    supervise.set_defaults(func=cmd_supervise)


def _run(args: argparse.Namespace, body: Callable[[AgentClient], Awaitable[int]]) -> int:
    async def main() -> int:
        bus = await connect(args)
        try:
            return await body(AgentClient(bus, timeout=getattr(args, "timeout", 5.0)))
        except NoResponders as exc:  # the client says who is missing (an unknown id, a role)
            print(f"amcp: {exc}", file=sys.stderr)
            return EXIT_TIMEOUT
        finally:
            await bus.close()

    return asyncio.run(main())


# -- members ------------------------------------------------------------------------------


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s ago"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _summary(view: ClusterView) -> str:
    counts: dict[str, int] = {}
    for m in view.members:
        counts[m.liveness] = counts.get(m.liveness, 0) + 1
    parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return (
        f"{len(view.members)} members ({parts or 'none'}) in cluster {view.cluster}, "
        f"as {view.observer} sees them"
    )


def render_members(view: ClusterView) -> str:
    rows = [["ID", "ROLE", "STATE", "LIVENESS", "LAST HEARTBEAT", "VOTER", "CAPABILITIES"]]
    for m in view.members:
        rows.append(
            [
                m.id,
                m.role,
                m.state,
                m.liveness,
                _age(m.heartbeat_age),
                "yes" if m.voter else "no",
                ", ".join(m.capabilities) or "-",
            ]
        )
    return _table(rows) + "\n" + _summary(view)


def cmd_members(args: argparse.Namespace) -> int:
    if args.action == "remove":
        validate_agent_id(args.agent_id)

        async def remove(client: AgentClient) -> int:
            try:
                removed = await client.remove_member(args.agent_id)
            except ToolCallError as exc:
                print(f"amcp: {exc}", file=sys.stderr)
                return EXIT_FAILED
            emit(
                removed.model_dump(),
                args.json,
                f"removed {removed.removed} ({removed.role}, {removed.liveness})",
            )
            return EXIT_OK

        return _run(args, remove)

    return _show_view(args, render_members)


# -- call and tools -----------------------------------------------------------------------


def cmd_call(args: argparse.Namespace) -> int:
    payload = parse_json_arg(
        args.input, "JSON input", wrap=lambda value: call_request(args.tool, value)
    )
    if args.timeout <= 0:
        raise ConfigError("--timeout must be > 0")

    async def call(client: AgentClient) -> int:
        try:
            result = await client.call(args.target, args.tool, payload)
        except (ToolInputError, UnknownTool) as exc:
            _print_call_error(exc, args.json)
            return EXIT_USAGE
        except ToolCallError as exc:
            _print_call_error(exc, args.json)
            return EXIT_FAILED
        emit(
            {"agent": result.agent, "output": result.output},
            args.json,
            json.dumps(jsonable(result.output), indent=2),
        )
        return EXIT_OK

    return _run(args, call)


def _print_call_error(exc: ToolCallError, as_json: bool) -> None:
    if as_json:
        emit(
            {
                "agent": exc.agent,
                "error": {"code": exc.code, "message": str(exc), "details": exc.details},
            },
            True,
        )
        return
    print(f"amcp: {exc}", file=sys.stderr)
    if isinstance(exc, ToolInputError):
        for d in exc.details or []:
            where = ".".join(str(p) for p in d.get("loc", [])) or "input"
            print(f"  {where}: {d.get('msg')} ({d.get('type')})", file=sys.stderr)
    if isinstance(exc, AgentBusy):
        print("  (the call was refused, not queued: nothing ran)", file=sys.stderr)


def tool_summary(description: str, width: int = 76) -> list[str]:
    """A tool's description as `amcp tools` shows it: its first paragraph, whole sentences
    wrapped to `width` (a docstring's own line breaks fall mid-sentence)."""
    first = re.split(r"\n\s*\n", description.strip(), maxsplit=1)[0]
    return textwrap.wrap(" ".join(first.split()), width)


def cmd_tools(args: argparse.Namespace) -> int:
    async def tools(client: AgentClient) -> int:
        described = await client.describe(args.target)
        lines = [f"{described.agent} ({described.role}):"]
        for spec in described.tools:
            summary = tool_summary(spec["description"] or "", 72)
            lines.append(f"  {spec['name']}: {summary[0] if summary else ''}".rstrip())
            lines.extend(f"    {line}" for line in summary[1:])
            fields = spec["input_schema"].get("properties", {})
            lines.append(f"    input: {', '.join(fields) or '(none)'}")
            for ex in spec["examples"]:
                lines.append(f"    e.g. {json.dumps(ex['input'])}")
        emit(described.model_dump(), args.json, "\n".join(lines))
        return EXIT_OK

    return _run(args, tools)


# -- log ----------------------------------------------------------------------------------


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


# -- status -------------------------------------------------------------------------------


def _load(m: MemberView) -> str:
    load = m.stats.get("load") or {}
    if not load:
        return "-"
    return (
        f"{load.get('running', 0)}/{load.get('max_running', '?')} "
        f"+{load.get('waiting', 0)}/{load.get('max_waiting', '?')}"
    )


def _calls(m: MemberView) -> str:
    calls = m.stats.get("calls") or {}
    return "/".join(str(calls.get(k, 0)) for k in ("ok", "failed", "refused", "invalid"))


def _rejections(m: MemberView) -> str:
    rej = {k: v for k, v in (m.stats.get("rejections") or {}).items() if v}
    return ", ".join(f"{k}={v}" for k, v in sorted(rej.items())) or "0"


def render_status(view: ClusterView) -> str:
    rows = [
        [
            "ID",
            "ROLE",
            "STATE",
            "LIVENESS",
            "LAST HEARTBEAT",
            "POOL",
            "CALLS ok/fail/ref/inv",
            "REJECTED FRAMES",
        ]
    ]
    for m in view.members:
        rows.append(
            [
                m.id,
                m.role,
                m.state,
                m.liveness,
                _age(m.heartbeat_age),
                _load(m),
                _calls(m),
                _rejections(m),
            ]
        )
    lines = [_table(rows), _summary(view)]
    lines.append(render_viability(view.viability))
    lines += _network(view)
    return "\n".join(lines)


def _network(view: ClusterView) -> list[str]:
    """Each member's batching policy per subject family and request timeout per family."""
    lines = []
    for m in view.members:
        net = m.stats.get("network")
        if not isinstance(net, dict):
            continue
        policies = "; ".join(
            f"{f['family']} {f['class']} {f['rate']:g}/s -> {f['max_messages']} / "
            f"{f['linger_ms']:g} ms"
            for f in net.get("families") or []
        )
        rtos = "; ".join(
            f"{family} {r['rto_ms']:g} ms"
            + ("" if r["srtt_ms"] is None else f" (srtt {r['srtt_ms']:g})")
            for family, r in (net.get("rto") or {}).items()
        )
        lines.append(
            f"  {m.id}: batching {net.get('batching')}: {policies or 'no family analysed yet'}"
        )
        lines.append(f"  {' ' * len(m.id)}  request timeouts: {rtos or 'no request yet'}")
    return (
        ["network (batching per subject family; RFC 6298 timeout per family):", *lines]
        if lines
        else []
    )


def cmd_status(args: argparse.Namespace) -> int:
    return _show_view(args, render_status)


def _show_view(args: argparse.Namespace, render: Callable[[Any], str]) -> int:
    """Fetch the cluster view from a live agent and print it (JSON, or `render`'s text)."""

    async def show(client: AgentClient) -> int:
        view = await client.members()
        emit(view.model_dump(), args.json, render(view))
        return EXIT_OK

    return _run(args, show)


# -- supervise ----------------------------------------------------------------------------


def cmd_supervise(args: argparse.Namespace) -> int:
    command: list[Any] = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise ConfigError(
            "give the command to supervise after --, e.g. amcp supervise -- amcp-agent --role s1"
        )
    supervisor = Supervisor(command, restart_policy(args), name=command[0])
    return run_until_stopped(supervisor.run)
