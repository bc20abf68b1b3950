"""Per-resource locks on the proposer side: one proposal in flight per resource at a time.

A proposal on a resource may be proposed, decided and executed only while it holds the
resource's lease; that is what keeps two conflicting proposals on one resource from both
committing. Leases expire at an explicit time (the deadline plus the time to execute), so a
crashed coordinator cannot block a resource forever. Time is always passed in: no clock here.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.errors import ConsensusError

__all__ = ["Lease", "LockTable"]


@dataclass(frozen=True)
class Lease:
    """`proposal_id` holds `resource` until `expires_ms` (exclusive)."""

    resource: str
    proposal_id: str
    expires_ms: int

    def live(self, now_ms: int) -> bool:
        """Whether the lease still holds at `now_ms`."""
        return now_ms < self.expires_ms


class LockTable:
    """Leases by resource key. Not thread-safe; the caller's time must not run backwards."""

    def __init__(self) -> None:
        self._leases: dict[str, Lease] = {}

    def __len__(self) -> int:
        """Leases stored, live or not yet swept by expire()."""
        return len(self._leases)

    def acquire(
        self, resource: str, proposal_id: str, *, now_ms: int, expires_ms: int
    ) -> Lease | None:
        """Take `resource` for `proposal_id`: None when granted, else the live holder's lease.

        Acquiring again for the current holder keeps the later of the two expiry times.
        """
        if expires_ms <= now_ms:
            raise ConsensusError(f"lease on {resource!r} would expire before it starts")
        held = self.holder(resource, now_ms=now_ms)
        if held is not None and held.proposal_id != proposal_id:
            return held
        if held is not None:
            expires_ms = max(expires_ms, held.expires_ms)
        self._leases[resource] = Lease(resource, proposal_id, expires_ms)
        return None

    def release(self, resource: str, proposal_id: str) -> bool:
        """Free `resource` if `proposal_id` holds it; a stale holder can never free another's."""
        held = self._leases.get(resource)
        if held is None or held.proposal_id != proposal_id:
            return False
        del self._leases[resource]
        return True

    def holder(self, resource: str, *, now_ms: int) -> Lease | None:
        """The live lease on `resource` at `now_ms`, if any."""
        held = self._leases.get(resource)
        return held if held is not None and held.live(now_ms) else None

    def expire(self, *, now_ms: int) -> list[Lease]:
        """Drop and return the leases that have expired by `now_ms`, sorted by resource."""
        gone = sorted(
            (lease for lease in self._leases.values() if not lease.live(now_ms)),
            key=lambda lease: lease.resource,
        )
        for lease in gone:
            del self._leases[lease.resource]
        return gone
