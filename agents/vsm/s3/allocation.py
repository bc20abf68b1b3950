"""S3's allocation: which S1 agents run which steps, and what runs at once (pure).

Eligible agents offer the task's executor and are not excluded (dead, or already tried).
Among them S3 prefers, in order: every capability S4 requires, then as many of the
preferred ones as possible, agents not under review, the lowest load (running work over
capacity, counting what this allocation has just given them), then the id, so the same
inputs always give the same answer. Parallel steps go to distinct agents where there are
enough of them.

Where S3 cannot do what S4 recommends, the allocation names the conflict (a required
capability nobody offers; S4 wants the steps in order while S3 is asked to parallelise)
for S5 to resolve.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["Allocation", "Candidate", "Conflict", "Need", "allocate"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One live S1 agent as S3 sees it."""

    id: str
    executors: frozenset[str]
    capabilities: frozenset[str] = frozenset()
    running: int = 0
    capacity: int = 1
    under_review: bool = False

    def load(self, extra: int = 0) -> float:
        return (self.running + extra) / max(self.capacity, 1)


@dataclass(frozen=True, slots=True)
class Need:
    """What the task asks of S1: from S4's analysis and S3's active adaptations."""

    steps: int
    executor: str
    preferred: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    parallel: bool = False  # S4: the steps are independent
    parallelise: bool = False  # S3's adaptation: run steps at once even if S4 says in order
    exclude: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Conflict:
    """Where S3's allocation and S4's analysis disagree."""

    kind: str  # "capability" or "ordering"
    s4: str  # what S4 recommends
    s3: str  # what S3 can or wants to do

    def to_wire(self) -> dict[str, str]:
        return {"kind": self.kind, "s4": self.s4, "s3": self.s3}


@dataclass(frozen=True, slots=True)
class Allocation:
    """One agent per step (empty if nobody can run them) and the order: `groups` run one
    after another, the steps inside a group at once."""

    agents: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]
    conflicts: tuple[Conflict, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def parallel(self) -> bool:
        return any(len(g) > 1 for g in self.groups)

    def in_order(self) -> Allocation:
        """The same agents with every step in its own group (S5 sided with S4's order)."""
        return Allocation(
            self.agents, tuple((i,) for i in range(len(self.agents))), self.conflicts, self.notes
        )


def _rank(c: Candidate, need: Need, extra: int) -> tuple[object, ...]:
    missing = sum(cap not in c.capabilities for cap in need.preferred)
    return (missing, c.under_review, c.load(extra), c.id)


def allocate(need: Need, candidates: Iterable[Candidate]) -> Allocation:
    """Assign each of `need.steps` steps to an agent; see the module docstring."""
    pool = [c for c in candidates if need.executor in c.executors and c.id not in need.exclude]
    if not pool:
        return Allocation((), (), notes=(f"no live S1 agent runs {need.executor} steps",))
    conflicts: list[Conflict] = []
    notes: list[str] = []
    able = [c for c in pool if all(cap in c.capabilities for cap in need.required)]
    if need.required and not able:
        caps = ", ".join(need.required)
        conflicts.append(
            Conflict(
                "capability",
                f"requires an S1 with {caps}",
                f"no live S1 offers {caps}; would run on the best other agent",
            )
        )
        able = pool
    given: dict[str, int] = {}
    agents: list[str] = []
    for _ in range(need.steps):
        best = min(able, key=lambda c: _rank(c, need, given.get(c.id, 0)))
        given[best.id] = given.get(best.id, 0) + 1
        agents.append(best.id)
    reviewed = sorted({a for a in agents if any(c.id == a and c.under_review for c in able)})
    if reviewed:
        notes.append(f"{', '.join(reviewed)} under review: results reviewed independently")
    at_once = need.steps > 1 and (need.parallel or need.parallelise)
    if need.steps > 1 and need.parallelise and not need.parallel:
        conflicts.append(
            Conflict(
                "ordering",
                "run the steps in order",
                "parallelise the steps (cycles need too many iterations)",
            )
        )
    groups: Sequence[tuple[int, ...]] = (
        [tuple(range(need.steps))] if at_once else [(i,) for i in range(need.steps)]
    )
    return Allocation(tuple(agents), tuple(groups), tuple(conflicts), tuple(notes))
