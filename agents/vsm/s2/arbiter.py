"""S2's coordination: detect oscillation and damp it (pure; times are passed in).

Three patterns, each counted once when it appears:
- contention: two S1 steps claim one resource at once. Damping: serialise, the second
  waits for the first's release (leases expire, so a crashed holder cannot block it).
- retry loop: the same work (a task's fingerprint) attempted again and again within a
  window without succeeding (a success ends the loop; identical work submitted many times
  at once counts too: it is duplicate work). Damping: from `backoff_at` attempts on, each
  attempt first waits an exponential backoff; from `escalate_at` on, it is escalated (S5
  decides, by default it stops).
- flapping: a resource changed back and forth (its digest after each step goes A, B, A...).
  Damping: the resource is frozen for the window; claims on it are escalated.

`strict` settings (the more_s2 adaptation) lower every threshold.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Literal

from consensus.locks import LockTable
from netopt.retry import Backoff

__all__ = ["STRICT", "ArbiterRuling", "OscillationArbiter", "S2Settings"]

ArbiterDecision = Literal["grant", "wait", "escalate"]
_MAX_TRACKED = 4096  # fingerprints and resources remembered at most (oldest forgotten)


@dataclass(frozen=True, slots=True)
class S2Settings:
    window: float = 60.0  # seconds a retry or a flip is remembered
    backoff_at: int = 4  # attempts of the same work before backing off
    escalate_at: int = 6  # attempts before escalating
    flips: int = 2  # reversals (A, B, A) of one resource before it counts as flapping
    poll: float = 0.05  # how soon a waiting claim should ask again, at most
    backoff: Backoff = field(default_factory=lambda: Backoff(0.1, 2.0))

    def __post_init__(self) -> None:
        if not 1 <= self.backoff_at <= self.escalate_at or self.flips < 1:
            raise ValueError("need 1 <= backoff_at <= escalate_at and flips >= 1")
        if self.window <= 0 or self.poll <= 0:
            raise ValueError("window and poll must be > 0")


STRICT = S2Settings(backoff_at=3, escalate_at=4, flips=1)


@dataclass(frozen=True, slots=True)
class ArbiterRuling:
    """S2's answer to a claim (or a release): what to do, and any oscillation it found."""

    decision: ArbiterDecision
    reason: str
    delay: float = 0.0
    oscillation: str | None = None  # "contention", "retry_loop" or "flapping", when new

    def to_wire(self) -> dict[str, object]:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "delay": self.delay,
            "oscillation": self.oscillation,
        }


def _history(store: OrderedDict[str, deque[tuple[str, float]]], key: str) -> deque:
    """The history of `key`, created if new, most recently used last, oldest evicted."""
    value = store.get(key)
    if value is None:
        value = store[key] = deque()
        if len(store) > _MAX_TRACKED:
            store.popitem(last=False)
    else:
        store.move_to_end(key)
    return value


class OscillationArbiter:
    """The state of one S2 agent: resource leases, attempts per work, digests per resource."""

    def __init__(self, settings: S2Settings | None = None) -> None:
        self.settings = settings or S2Settings()
        self._locks = LockTable()
        self._attempts: OrderedDict[str, deque[tuple[str, float]]] = OrderedDict()
        self._backoff_until: OrderedDict[str, float] = OrderedDict()
        self._digests: OrderedDict[str, deque[tuple[str, float]]] = OrderedDict()
        self._frozen: dict[str, float] = {}
        self._blocked: OrderedDict[str, None] = OrderedDict()

    def claim(
        self,
        *,
        holder: str,
        fingerprint: str,
        attempt: str,
        now: float,
        lease: float,
        resource: str | None = None,
        settings: S2Settings | None = None,
    ) -> ArbiterRuling:
        """May `holder` (one step of one attempt) start now? `attempt` names the try of
        the work `fingerprint`; asking again for the same attempt is not a new try."""
        s = settings or self.settings
        frozen = self._frozen.get(resource or "")
        if frozen is not None and now < frozen:
            return ArbiterRuling(
                "escalate", f"resource {resource} is flapping; frozen", frozen - now
            )
        tries = _history(self._attempts, fingerprint)
        while tries and now - tries[0][1] > s.window:
            tries.popleft()
        new_try = all(a != attempt for a, _ in tries)
        if new_try:
            tries.append((attempt, now))
        n = len(tries)
        loop = "retry_loop" if new_try and n == s.backoff_at else None
        if n >= s.escalate_at:
            return ArbiterRuling(
                "escalate",
                f"the same work attempted {n} times in {s.window:g}s",
                oscillation=loop,
            )
        if n >= s.backoff_at:
            until = self._backoff_until.get(attempt)
            if until is None:
                delay = s.backoff.ceiling(n - s.backoff_at)
                self._backoff_until[attempt] = now + delay
                if len(self._backoff_until) > _MAX_TRACKED:
                    self._backoff_until.popitem(last=False)
                return ArbiterRuling(
                    "wait", f"attempt {n} of the same work: backing off", delay, loop
                )
            if now < until:
                return ArbiterRuling("wait", "backing off", until - now)
        if resource is None:
            return ArbiterRuling("grant", "no resource to coordinate")
        now_ms = int(now * 1000)
        held = self._locks.acquire(
            resource, holder, now_ms=now_ms, expires_ms=now_ms + max(1, int(lease * 1000))
        )
        if held is None:
            self._blocked.pop(holder, None)
            return ArbiterRuling("grant", f"{resource} is free")
        first = holder not in self._blocked
        if first:
            self._blocked[holder] = None
            if len(self._blocked) > _MAX_TRACKED:
                self._blocked.popitem(last=False)
        delay = min(s.poll, (held.expires_ms - now_ms) / 1000)
        return ArbiterRuling(
            "wait",
            f"{resource} is held by {held.proposal_id}: serialised",
            delay,
            "contention" if first else None,
        )

    def release(
        self,
        *,
        holder: str,
        now: float,
        resource: str | None = None,
        digest: str | None = None,
        fingerprint: str | None = None,
        ok: bool = False,
        settings: S2Settings | None = None,
    ) -> ArbiterRuling:
        """`holder` is done; `digest` is the resource's content after its step. A step of
        the work `fingerprint` that went `ok` ends any retry loop of that work."""
        s = settings or self.settings
        if ok and fingerprint is not None:
            self._attempts.pop(fingerprint, None)
        if resource is None:
            return ArbiterRuling("grant", "nothing held")
        self._locks.release(resource, holder)
        if digest is None:
            return ArbiterRuling("grant", f"released {resource}")
        seen = _history(self._digests, resource)
        while seen and now - seen[0][1] > s.window:
            seen.popleft()
        if seen and seen[-1][0] == digest:
            return ArbiterRuling("grant", f"released {resource} (unchanged)")
        seen.append((digest, now))
        values = [d for d, _ in seen]
        flips = sum(values[i] == values[i - 2] for i in range(2, len(values)))
        if flips >= s.flips and now >= self._frozen.get(resource, 0.0):
            self._frozen[resource] = now + s.window
            seen.clear()
            return ArbiterRuling(
                "escalate",
                f"{resource} changed back and forth {flips} times: frozen for {s.window:g}s",
                oscillation="flapping",
            )
        return ArbiterRuling("grant", f"released {resource}")

    def expire(self, now: float) -> None:
        """Forget expired leases and freezes (the agent calls this now and then)."""
        self._locks.expire(now_ms=int(now * 1000))
        for resource in [r for r, t in self._frozen.items() if t <= now]:
            del self._frozen[resource]
