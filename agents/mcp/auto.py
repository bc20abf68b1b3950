"""Auto mode: "simple mode for read-only operations, full consensus for critical ones, the
system chooses". A call of a tool whose hints say destructive is put to a quorum vote of
the registered voters first (the call is the action and payload) and runs only if the
vote commits it. The bridge and `amcp call` both go through here (`--no-auto` to skip).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.mcp.builtins import CoordinateIn, coordinate
from agents.mcp.schema import hints_of
from agents.runtime.client import AgentClient
from agents.runtime.subjects import ANY
from amcp.errors import AmcpError, NoResponders
from consensus.cli import to_json
from consensus.coordinator import Coordinator
from consensus.errors import ConsensusError

__all__ = [
    "ACTION_PREFIX",
    "action_name",
    "needs_vote",
    "refused_message",
    "tally",
    "vote_if_destructive",
    "vote_on_call",
]

ACTION_PREFIX = "tool-call"


def action_name(role: str, tool: str) -> str:
    """The action a destructive call of `tool` on `role` is proposed under (a voter's
    policy can set thresholds for it by this name)."""
    return f"{ACTION_PREFIX}:{role}.{tool}"


def needs_vote(hints: Mapping[str, Any]) -> bool:
    return bool(hints.get("destructive")) and not hints.get("read_only")


async def vote_on_call(
    coordinator: Coordinator,
    role: str,
    tool: str,
    arguments: Mapping[str, Any],
    *,
    quorum: str = "majority",
    timeout: float = 10.0,
) -> dict[str, Any]:
    """The vote on one call: outcome (committed, rejected, no_quorum, or error when none
    could be held), summary, votes, the voters that stayed silent, members, proposal id."""
    args = CoordinateIn(
        action=action_name(role, tool),
        payload={"role": role, "tool": tool, "input": dict(arguments)},
        quorum=quorum,
        timeout=timeout,
    )
    try:
        result = await coordinate(coordinator, args)
    except (AmcpError, ConsensusError) as exc:
        why = f"the vote could not be held: {exc}"
        return {"outcome": "error", "error": why, "summary": {}, "votes": [], "members": []}
    doc = to_json(result)
    kept = {k: doc[k] for k in ("outcome", "summary", "votes", "silent", "members")}
    return {**kept, "proposal": doc["proposal"]["id"]}


def tally(vote: Mapping[str, Any]) -> str:
    s = vote.get("summary") or {}
    return (
        f"{s.get('yes')} yes, {s.get('no')} no, {s.get('abstain')} abstain of "
        f"{len(vote.get('members') or [])} voters"
    )


def refused_message(role: str, tool: str, vote: Mapping[str, Any]) -> str:
    """Why a destructive call did not run, for a person or a model to act on."""
    if vote.get("outcome") == "error":
        return f"{role}.{tool} was not called: {vote.get('error')}. Nothing ran."
    what = f"{role}.{tool} is destructive: it runs only if a quorum vote commits it"
    if not vote.get("members"):
        return f"{what}; no registered voters are known (start S5 agents). Nothing ran."
    reasons = "; ".join(f"{v['voter']}: {v['choice']} ({v.get('reason')})" for v in vote["votes"])
    return f"{what}; the vote came out {vote.get('outcome')}: {tally(vote)}. Nothing ran." + (
        f" Ballots: {reasons}." if reasons else ""
    )


async def vote_if_destructive(
    client: AgentClient, target: str, tool: str, arguments: Any, *, timeout: float = 10.0
) -> dict[str, Any] | None:
    """For `amcp call`: the vote on calling `tool` on `target` if its hints say destructive
    (as `target`, or one agent of that role, describes it), else None. Nobody to describe
    it, or no such tool, is left to the call itself to report; hints that cannot be read
    otherwise (a timeout) fail closed: an `error` outcome, and the call is not made."""
    if target == ANY:
        return None
    try:
        described = await client.describe(target)
    except NoResponders:
        return None
    except AmcpError as exc:
        why = f"could not read the tool's hints from {target}: {exc}"
        return {"outcome": "error", "error": why, "summary": {}, "votes": [], "members": []}
    spec = next((s for s in described.tools if s.get("name") == tool), None)
    if spec is None or not needs_vote(hints_of(spec)):
        return None
    coordinator = await Coordinator.open(client.bus, bootstrap_timeout=1.0)
    try:
        args = arguments if isinstance(arguments, Mapping) else {"value": arguments}
        return await vote_on_call(coordinator, described.role, tool, args, timeout=timeout)
    finally:
        await coordinator.close()
