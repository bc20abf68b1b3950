"""`amcp status`: the members' view of `amcp members` with each agent's load, calls and
rejected frames, then the viability metrics, active adaptations, each agent's batching
policy and request timeout per subject family, and its identity checks (signer, roster,
records refused by reason)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from agents.cli.members import MEMBER_COLUMNS, member_cells, show_view, summary
from agents.vsm.viability import render_viability
from amcp.cli.common import add_connection_options
from amcp.cli.table import format_table

if TYPE_CHECKING:  # pydantic models, for annotations only
    from agents.runtime.admin import ClusterView, MemberView

__all__ = ["register", "render_status"]


def register(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser(
        "status",
        help="cluster status: members, liveness, load, rejected frames",
        description="Members with role, state, liveness, last heartbeat, load, calls and "
        "each agent's bus rejection counters by reason; the viability metrics and active "
        "adaptations.",
    )
    add_connection_options(status)
    status.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    return show_view(args, render_status)


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
    rows = [[*MEMBER_COLUMNS, "POOL", "CALLS ok/fail/ref/inv", "REJECTED FRAMES"]]
    for m in view.members:
        rows.append([*member_cells(m), _load(m), _calls(m), _rejections(m)])
    lines = [format_table(rows), summary(view)]
    lines.append(render_viability(view.section("viability")))
    lines += _network(view)
    lines += _identity(view)
    lines += _hooks(view)
    return "\n".join(lines)


def _hooks(view: ClusterView) -> list[str]:
    """A line per member with hooks (agents.runtime.hookrunner's status): how often they
    ran, vetoed, failed (of which timed out) and were dropped."""
    lines = []
    for m in view.members:
        hooks = m.stats.get("hooks") or {}
        totals = hooks.get("totals") or {}
        if not hooks:
            continue
        counts = ", ".join(
            f"{k.replace('_', ' ')} {totals.get(k, 0)}"
            for k in ("ran", "vetoed", "failed", "timed_out", "dropped")
            if k == "ran" or totals.get(k)
        )
        lines.append(f"hooks of {m.id} ({hooks.get('configured', 0)}): {counts}")
    return lines


def _identity(view: ClusterView) -> list[str]:
    """Each member's identity section (agents.runtime.trust.identity_status)."""
    lines = []
    for m in view.members:
        ident = m.stats.get("identity")
        if not isinstance(ident, dict):
            continue
        signer = ident.get("signer") or "signs nothing"
        if not ident.get("checks"):
            lines.append(f"  {m.id}: {signer}; checks OFF (no roster: records are not verified)")
            continue
        refused = {
            **(ident.get("refused") or {}),
            **{f"members:{k}": v for k, v in (ident.get("members_refused") or {}).items()},
        }
        counts = ", ".join(f"{k}={v}" for k, v in sorted(refused.items())) or "none"
        lines.append(
            f"  {m.id}: {signer}; roster {ident.get('roster') or '(in memory)'} "
            f"({ident.get('identities')} identities, {ident.get('revoked')} revoked); "
            f"refused: {counts}"
        )
    return ["identity (signer; roster; records refused by reason):", *lines] if lines else []


def _network(view: ClusterView) -> list[str]:
    """Each member's batching policy per subject family and request timeout per family."""
    lines = []
    for m in view.members:
        net = m.stats.get("network")
        if not isinstance(net, dict):
            continue
        policies = "; ".join(
            f"{f['family']} {f['class'] or 'slow'} {f['rate']:g}/s -> {f['max_messages']} / "
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
