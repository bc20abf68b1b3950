"""Test data with defaults: a proposal, a keyring, a CRDT replica. Each factory takes every
field as a keyword with a default, so a test names only what it is about (modules whose
tests share other defaults bind them once with functools.partial)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from amcp import Key, Keyring
from consensus import Proposal
from crdt import HybridClock, ReplicaState

__all__ = ["NOW_MS", "proposal", "replica", "ring"]

NOW_MS = 1_700_000_000_000  # a fixed wall clock (epoch ms) for replicas


def proposal(
    id: str = "p1",
    resource: str | None = None,
    *,
    action: str = "restart",
    proposer: str = "s3",
    created_ms: int = 1_000,
    deadline_ms: int = 6_000,
    **fields: Any,
) -> Proposal:
    """A proposal, `fields` being any other of its fields (payload, quorum, urgency)."""
    return Proposal(
        id=id,
        action=action,
        proposer=proposer,
        created_ms=created_ms,
        deadline_ms=deadline_ms,
        resource=resource,
        **fields,
    )


def ring(now: float | None = None, kid: str = "k1") -> Keyring:
    """A keyring of one fresh signing key: `Keyring.generate()`, or with `now` (a test
    clock's time) a key `kid` created and active 100 s before it."""
    if now is None:
        return Keyring.generate()
    return Keyring([Key(kid, os.urandom(32), now - 100, now - 100)])


def replica(
    name: str, wall: int | Callable[[], int] = NOW_MS, limits: Mapping[str, int] | None = None
) -> ReplicaState:
    """A replica whose clock reads `wall` (epoch ms, or a callable giving it), keeping at
    most `limits[prefix]` registers under each prefix."""
    clock = wall if callable(wall) else (lambda: wall)
    state = ReplicaState(name, HybridClock(name, wall=clock))
    for prefix, max_keys in (limits or {}).items():
        state.limit(prefix, max_keys)
    return state
