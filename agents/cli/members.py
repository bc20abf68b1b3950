"""`amcp members [remove ID]`: the cluster's members and their liveness as a live agent sees
them, and the removal of a dead one. `amcp status` shows the same view with more columns.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agents.cli.session import with_client
from agents.runtime.errors import ToolCallError
from agents.runtime.subjects import validate_agent_id
from amcp.cli.common import EXIT_FAILED, EXIT_OK, add_connection_options, emit
from amcp.cli.table import format_table

if TYPE_CHECKING:  # pydantic models, for annotations only
    from agents.runtime.admin import ClusterView, MemberView
    from agents.runtime.client import AgentClient

__all__ = [
    "MEMBER_COLUMNS",
    "member_cells",
    "register",
    "render_members",
    "show_view",
    "summary",
]


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


def cmd_members(args: argparse.Namespace) -> int:
    if args.action == "remove":
        return _remove(args)
    return show_view(args, render_members)


def _remove(args: argparse.Namespace) -> int:
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

    return with_client(args, remove)


def show_view(args: argparse.Namespace, render: Callable[[Any], str]) -> int:
    """Fetch the cluster view from a live agent and print it (JSON, or `render`'s text)."""

    async def show(client: AgentClient) -> int:
        view = await client.members()
        emit(view.model_dump(), args.json, render(view))
        return EXIT_OK

    return with_client(args, show)


def summary(view: ClusterView) -> str:
    """`6 members (1 suspect, 5 alive) in cluster default, as s3-ab12 sees them`."""
    counts: dict[str, int] = {}
    for m in view.members:
        counts[m.liveness] = counts.get(m.liveness, 0) + 1
    parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return (
        f"{len(view.members)} members ({parts or 'none'}) in cluster {view.cluster}, "
        f"as {view.observer} sees them"
    )


MEMBER_COLUMNS = ["ID", "ROLE", "STATE", "LIVENESS", "LAST HEARTBEAT"]


def member_cells(m: MemberView) -> list[str]:
    """The first columns of `amcp members` and `amcp status`: MEMBER_COLUMNS."""
    age = "-" if m.heartbeat_age is None else f"{m.heartbeat_age:.1f}s ago"
    return [m.id, m.role, m.state, m.liveness, age]


def render_members(view: ClusterView) -> str:
    rows = [[*MEMBER_COLUMNS, "VOTER", "CAPABILITIES"]]
    for m in view.members:
        voter = "yes" if m.voter else "no"
        rows.append([*member_cells(m), voter, ", ".join(m.capabilities) or "-"])
    return format_table(rows) + "\n" + summary(view)
