"""`amcp reset [--yes]`: clear a cluster's task state, viability counters and adaptations,
keeping its keys, members and audit log (what is cleared: agents.vsm.reset).

It opens a short-lived replica of the shared context, caught up from a peer, plans the
reset from it, shows the plan and asks on a terminal (without a terminal it needs --yes),
then writes it under its write concern. Exit codes: 0 reset, 1 not confirmed, 2 usage (no
terminal to ask on), 3 no replica answered or a write missed its concern, 4 NATS
unreachable.
"""

from __future__ import annotations

import argparse
import sys
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
)
from crdt.concern import LEVELS

if TYPE_CHECKING:  # the store and the bus load when the command runs, not for --help
    from agents.vsm.reset import ResetPlan
    from crdt.store import ContextStore

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reset",
        help="clear the cluster's task state, viability counters and adaptations",
        description="Clear the cluster's task state (task.* context keys), viability counters "
        "(counted from zero again) and active adaptations. Keys, identities, members and the "
        "audit log are kept. Shows what it will clear and asks first on a terminal.",
    )
    p.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    p.add_argument(
        "--write",
        choices=LEVELS,
        default="local",
        help="acknowledgements each write waits for (default local: sent to every live "
        "replica, no wait; one waits for a durable replica)",
    )
    p.add_argument(
        "--timeout", type=float, default=2.0, metavar="S", help="seconds per step (default 2)"
    )
    add_connection_options(p)
    p.set_defaults(func=cmd_reset)


def cmd_reset(args: argparse.Namespace) -> int:
    if not args.yes and not sys.stdin.isatty():
        return fail(
            "reset asks before it clears anything, and stdin is no terminal: pass --yes",
            EXIT_USAGE,
        )
    if not args.timeout > 0:
        return fail("--timeout must be a positive number of seconds", EXIT_USAGE)
    import asyncio

    from crdt.errors import ConcernError

    try:
        return asyncio.run(_reset(args))
    except ConcernError as exc:
        return fail(f"the reset is incomplete, a write missed its concern: {exc}", EXIT_TIMEOUT)


async def _reset(args: argparse.Namespace) -> int:
    from crdt.store import ContextStore

    bus = await connect(args)
    try:
        store = await ContextStore.open(bus, bootstrap_timeout=args.timeout)
        try:
            return await _run(args, store, bus.cluster)
        finally:
            await store.close()
    finally:
        await bus.close()


async def _run(args: argparse.Namespace, store: ContextStore, cluster: str) -> int:
    from agents.runtime.membership import MEMBERS_KEY
    from agents.vsm.reset import plan_reset

    values = await store.dump()
    if not values:
        return fail(
            f"no replica of cluster {cluster}'s context answered: nothing reset", EXIT_TIMEOUT
        )
    plan = plan_reset(values, {k: store.type_of(k) for k in values})
    if not args.yes and not await _confirm(cluster, plan):
        print("nothing cleared", file=sys.stderr)
        return EXIT_FAILED
    await _apply(store, plan, args.write, args.timeout)
    members = values.get(MEMBERS_KEY)
    kept = {"members": len(members) if isinstance(members, dict) else 0}
    doc: dict[str, Any] = {"ok": True, "cluster": cluster, "cleared": plan.to_wire(), "kept": kept}
    lines = [f"reset cluster {cluster}:", *(f"  {line}" for line in plan.describe())]
    lines.append(f"kept: keys and identities, {kept['members']} members, the audit log")
    emit(doc, args.json, "\n".join(lines))
    return EXIT_OK


async def _confirm(cluster: str, plan: ResetPlan) -> bool:
    import asyncio

    shown = "\n".join(f"  {line}" for line in plan.describe())
    print(f"amcp reset of cluster {cluster} will clear:\n{shown}", file=sys.stderr)
    print("clear them? [y/N] ", end="", file=sys.stderr, flush=True)
    answer = await asyncio.to_thread(sys.stdin.readline)
    return answer.strip().lower() in ("y", "yes")


async def _apply(store: ContextStore, plan: ResetPlan, write: str, timeout: float) -> None:
    """The plan's writes: the baseline first, so no reader sees adaptations cleared while
    the counters that raised them still count."""
    from agents.vsm.viability import ADAPTATIONS, BASE

    opts: dict[str, Any] = {"write": write, "timeout": timeout}
    await store.set(BASE, plan.baseline, **opts)
    for name in plan.adaptations:
        await store.map_delete(ADAPTATIONS, name, **opts)
    for key, fields in plan.task_maps.items():
        for name in fields:
            await store.map_delete(key, name, **opts)
    for key in plan.task_registers:
        await store.set(key, None, **opts)
    for key, items in plan.task_sets.items():
        for item in items:
            await store.remove(key, item, **opts)
