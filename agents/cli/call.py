"""`amcp call AGENT_OR_ROLE TOOL [JSON]`: call one tool and print its output.

A tool whose hints say destructive is put to a quorum vote first and runs only if the
vote commits it (auto mode, agents/mcp/auto.py; `--no-auto` calls it at once).

Exit 0 done, 1 the tool failed, the agent is busy or the vote rejected the call, 2 bad
input or unknown tool, 3 no agent answered or no quorum.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from agents.cli.session import with_client
from agents.runtime.errors import AgentBusy, ToolCallError, ToolInputError, UnknownTool
from agents.runtime.subjects import call_request
from amcp.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    add_connection_options,
    emit,
    jsonable,
    parse_json_arg,
)
from consensus.cli import seconds_arg

# Auto mode (the coordinator, the bridge's builtins) loads when a call runs, not for --help.
if TYPE_CHECKING:
    from agents.runtime.client import AgentClient

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    call = sub.add_parser(
        "call",
        help="call a tool on an agent or a role",
        description="Call TOOL on an agent id, a role (s1..s5: any of its live agents) or "
        "'any'. A tool whose hints say destructive runs only after a quorum vote commits "
        "it (--no-auto: at once). Exit 0 done, 1 the tool failed, the agent is busy or the "
        "vote rejected the call, 2 bad input or unknown tool, 3 no agent answered or no "
        "quorum.",
    )
    call.add_argument("target", metavar="AGENT_OR_ROLE")
    call.add_argument("tool", metavar="TOOL")
    call.add_argument(
        "input", metavar="JSON", nargs="?", default="{}", help="the tool's input (default {})"
    )
    call.add_argument(
        "--timeout",
        type=seconds_arg,
        default=10.0,
        metavar="S",
        help="seconds to wait for the answer (default 10)",
    )
    call.add_argument(
        "--no-auto",
        dest="auto",
        action="store_false",
        help="call a destructive tool without a quorum vote first",
    )
    call.add_argument(
        "--vote-timeout",
        type=seconds_arg,
        default=10.0,
        metavar="S",
        help="deadline of the vote on a destructive call (default 10)",
    )
    add_connection_options(call)
    call.set_defaults(func=cmd_call)


def cmd_call(args: argparse.Namespace) -> int:
    from agents.mcp.auto import refused_message, tally, vote_if_destructive

    payload = parse_json_arg(
        args.input, "JSON input", wrap=lambda value: call_request(args.tool, value)
    )

    async def call(client: AgentClient) -> int:
        vote = None
        if args.auto:
            vote = await vote_if_destructive(
                client, args.target, args.tool, payload, timeout=args.vote_timeout
            )
            if vote is not None and vote["outcome"] != "committed":
                emit({"vote": vote, "ran": False}, args.json)
                print(f"amcp: {refused_message(args.target, args.tool, vote)}", file=sys.stderr)
                return EXIT_TIMEOUT if vote["outcome"] == "no_quorum" else EXIT_FAILED
            if vote is not None and not args.json:
                print(f"amcp: committed by a quorum vote: {tally(vote)}", file=sys.stderr)
        try:
            result = await client.call(args.target, args.tool, payload)
        except (ToolInputError, UnknownTool) as exc:
            _print_call_error(exc, args.json)
            return EXIT_USAGE
        except ToolCallError as exc:
            _print_call_error(exc, args.json)
            return EXIT_FAILED
        emit(
            {"agent": result.agent, "output": result.output}
            | ({"vote": vote} if vote is not None else {}),
            args.json,
            json.dumps(jsonable(result.output), indent=2),
        )
        return EXIT_OK

    return with_client(args, call)


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
