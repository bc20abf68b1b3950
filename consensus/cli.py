"""`amcp coordinate`: put one critical action to the vote of the cluster's registered voters.

Prints the outcome, the tally against what the quorum rule needed, each ballot (voter,
choice, the five scores, the combined attention and the reason), the members that did not
vote, and the executor's acknowledgement. Exit codes: 0 committed (and executed, when the
action has an executor), 1 rejected or the execution failed, 3 no quorum by the deadline
or no acknowledgement in time, 2 bad arguments, 4 NATS unreachable, 5 the NATS user may
not propose.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from amcp.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    add_connection_options,
    connect,
    emit,
    fail,
    jsonable,
    parse_json_arg,
)
from amcp.cli.table import format_table
from amcp.errors import ConfigError
from consensus.errors import ConsensusError, QuorumSpecError
from consensus.messages import ExecState
from consensus.model import DIMENSIONS, Outcome, Urgency, Vote
from consensus.quorum import QuorumKind, parse_quorum

if TYPE_CHECKING:  # the coordinator (the bus, the decision log) is imported by the command
    from consensus.coordinator import Coordination

__all__ = ["exit_code", "register", "render", "seconds_arg", "to_json"]

_SHORT = ("URG", "IMP", "RISK", "CONF", "NOV")  # the five dimensions, in DIMENSIONS order


def _quorum(text: str) -> str:
    try:
        parse_quorum(text)
    except QuorumSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def seconds_arg(text: str) -> float:
    """An argparse type: seconds in (0, 3600] (a deadline or a wait of a command)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be seconds in (0, 3600], not {text!r}")
    return value


def _payload(text: str) -> dict[str, Any]:
    try:
        value = parse_json_arg(text, "--payload JSON")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--payload must be a JSON object, e.g. '{\"a\": 1}'")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "coordinate",
        help="put a critical action to a quorum vote",
        description="Propose ACTION to the registered voters (S5 agents and agents run with "
        "--voter), wait for the decision and, if it commits, for its executor. Exit 0 "
        "committed, 1 rejected or execution failed, 3 no quorum or timeout, 2 usage error, 5 "
        "the NATS user may not propose.",
    )
    p.add_argument("--action", required=True, metavar="NAME", help="e.g. restart, deploy")
    p.add_argument(
        "--payload", type=_payload, default={}, metavar="JSON", help="a JSON object (default {})"
    )
    p.add_argument("--resource", metavar="KEY", help="what it touches: one commit at a time")
    p.add_argument(
        "--quorum",
        type=_quorum,
        default="majority",
        metavar="RULE",
        help="majority (default), all, any, N, a fraction (0.67, 2/3) or weighted[:F]",
    )
    p.add_argument(
        "--urgency", choices=[u.value for u in Urgency], default="normal", help="default normal"
    )
    p.add_argument(
        "--timeout",
        type=seconds_arg,
        default=5.0,
        metavar="S",
        help="the vote's deadline, and then the wait for the executor (default 5)",
    )
    p.add_argument(
        "--id", dest="proposal_id", metavar="ID", help="proposal id: the same id never runs twice"
    )
    add_connection_options(p)
    p.set_defaults(func=cmd_coordinate)


def cmd_coordinate(args: argparse.Namespace) -> int:
    import asyncio

    from consensus.coordinator import Coordinator

    async def main() -> Coordination:
        bus = await connect(args)
        try:
            async with await Coordinator.open(bus, bootstrap_timeout=min(1.0, args.timeout)) as c:
                return await c.coordinate(
                    args.action,
                    args.payload,
                    quorum=args.quorum,
                    urgency=args.urgency,
                    resource=args.resource,
                    timeout=args.timeout,
                    proposal_id=args.proposal_id,
                )
        finally:
            await bus.close()

    try:
        result = asyncio.run(main())
    except ConsensusError as exc:
        return fail(str(exc), EXIT_USAGE)
    emit(to_json(result), args.json, render(result))
    return exit_code(result)


def exit_code(result: Coordination) -> int:
    """0 committed (and executed if it has an executor), 1 rejected or failed, 3 no quorum
    or no acknowledgement in time."""
    outcome = result.outcome
    if outcome is Outcome.REJECTED:
        return EXIT_FAILED
    if outcome is Outcome.NO_QUORUM:
        return EXIT_TIMEOUT
    if result.executor is None:
        return EXIT_OK
    execution = result.execution
    if execution is None or execution.state is ExecState.RUNNING:
        return EXIT_TIMEOUT
    return EXIT_OK if execution.state is ExecState.DONE else EXIT_FAILED


def _tally(result: Coordination) -> str:
    """`3 yes, 0 no, 1 abstain of 5 members; majority needs 3 yes` (weights for weighted)."""
    decision = result.decision
    s = decision.summary
    weighted = parse_quorum(decision.quorum).kind is QuorumKind.WEIGHTED
    yes = f"{s.yes} yes (weight {s.yes_weight:.2f})" if weighted else f"{s.yes} yes"
    need = f"a yes weight above {s.needed:.2f}" if weighted else f"{s.needed:g} yes"
    return (
        f"{yes}, {s.no} no, {s.abstain} abstain of {len(decision.members)} members; "
        f"{decision.quorum} needs {need}"
    )


def render(result: Coordination) -> str:
    """The human report of one coordination."""
    decision, proposal = result.decision, result.proposal
    lines = [
        f"{decision.outcome}: {proposal.action}"
        + (f" on {proposal.resource}" if proposal.resource else "")
        + f" (proposal {proposal.id})"
        + ("  [decided earlier; not run again]" if result.replayed else ""),
        f"tally: {_tally(result)}",
    ]
    if not decision.members:
        lines.append(
            "no registered voters known: nothing recorded; start S5 agents or agents with "
            "--voter, then propose again"
        )
    if decision.votes:
        lines.append(_ballots(decision.votes))
    voted = {v.voter for v in decision.votes}
    silent = [m for m in decision.members if m not in voted]
    if silent:
        lines.append(f"no ballot counted from: {', '.join(silent)}")
    if result.refused:
        refused = ", ".join(f"{k} {n}" for k, n in sorted(result.refused.items()))
        lines.append(f"ballots refused: {refused}")
    if result.recorded is None and not result.replayed and decision.members:
        lines.append(
            "warning: the decision log write missed its concern; it is recorded here and "
            "still spreading"
        )
    lines += _execution_lines(result)
    return "\n".join(lines)


def _ballots(votes: Sequence[Vote]) -> str:
    """One row per ballot: voter, choice, the five scores, the combined attention, reason."""
    rows = [["VOTER", "CHOICE", *_SHORT, "ATTN", "REASON"]]
    for v in votes:
        scores = (f"{getattr(v.scores, d):.2f}" for d in DIMENSIONS)
        rows.append([v.voter, str(v.choice), *scores, f"{v.combined:.2f}", v.reason])
    return format_table(rows)


def _execution_lines(result: Coordination) -> list[str]:
    if result.executor is None:
        return ["no executor declared for this action"] if result.outcome == "committed" else []
    where = f"{result.executor.agent} (tool {result.executor.tool})"
    ex = result.execution
    if ex is None:
        return [f"execution: no acknowledgement from {where} in time"]
    if ex.state is ExecState.RUNNING:
        return [f"execution: claimed by {where}, not finished yet"]
    took = max(0, ex.finished_ms - ex.started_ms)
    detail = ex.error or json.dumps(jsonable(ex.to_wire()["result"]))
    return [f"execution: {ex.state} by {where} in {took} ms: {detail}"]


def to_json(result: Coordination) -> dict[str, Any]:
    """The JSON form of a coordination (for --json and MCP): binary fields (signatures,
    proposal digests) as {"$base64": ...}."""
    decision = result.decision
    voted = {v.voter for v in decision.votes}
    doc: dict[str, Any] = {
        "outcome": str(decision.outcome),
        "replayed": result.replayed,
        "proposal": result.proposal.to_wire(),
        "members": list(decision.members),
        "summary": decision.summary.to_wire(),
        "votes": [v.to_wire() for v in decision.votes],
        "silent": [m for m in decision.members if m not in voted],
        "refused": dict(result.refused),
        "executor": None if result.executor is None else result.executor.to_wire(),
        "execution": None if result.execution is None else result.execution.to_wire(),
        "recorded": None
        if result.recorded is None
        else {"acks": result.recorded.acks, "needed": result.recorded.needed},
    }
    result_doc: dict[str, Any] = jsonable(doc)
    return result_doc
