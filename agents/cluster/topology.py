"""The shape of a cluster: how many NATS nodes, how many agents of each role, and which
node each agent sits beside (round robin, so every node carries agents and losing one
node loses a minority of them). Each agent knows every node's URL, its own node first.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.runtime.subjects import ROLES
from amcp.errors import ConfigError

__all__ = [
    "DEFAULT_AGENTS",
    "DEMO_AGENTS",
    "DEMO_VOTERS",
    "AgentSlot",
    "choose_agents",
    "parse_agents",
    "place_agents",
]

# Every role, with two S1s so tasks have somewhere to go when one is busy or down, and three
# S5s, the voters: a majority of three survives one lost voter, a majority of one does not.
DEFAULT_AGENTS: dict[str, int] = {"s1": 2, "s2": 1, "s3": 1, "s4": 1, "s5": 3}

# The smallest viable system, on one server (`amcp demo`, and the tests that run the same
# one), as (role, agent id): two S1s, so the steps of a task can run in parallel, and one
# of each other role. The demo makes S3 and S4 vote beside S5, so a vote has three voters;
# a cluster has three S5s instead (DEFAULT_AGENTS), so it survives a lost one.
DEMO_AGENTS: tuple[tuple[str, str], ...] = (
    ("s1", "s1-a"),
    ("s1", "s1-b"),
    ("s2", "s2-a"),
    ("s3", "s3-a"),
    ("s4", "s4-a"),
    ("s5", "s5-a"),
)
DEMO_VOTERS: tuple[str, ...] = ("s3-a", "s4-a")  # besides S5, which always votes
_MAX_PER_ROLE = 64


def parse_agents(text: str) -> dict[str, int]:
    """`s1=2,s2=1,...` as {role: count}; roles left out get none. ConfigError if bad."""
    counts: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        role, sep, number = part.partition("=")
        role = role.strip().lower()
        if not sep or role not in ROLES:
            raise ConfigError(f"--agents takes ROLE=N,... with roles {', '.join(ROLES)}: {part!r}")
        if role in counts:
            raise ConfigError(f"--agents names {role} twice")
        try:
            counts[role] = int(number)
        except ValueError:
            raise ConfigError(
                f"--agents: {number.strip()!r} is not a number (in {part!r})"
            ) from None
        if not 0 <= counts[role] <= _MAX_PER_ROLE:
            raise ConfigError(f"--agents: {role} count must be 0-{_MAX_PER_ROLE}")
    if not any(counts.values()):
        raise ConfigError("--agents starts no agent at all")
    return counts


def choose_agents(agents: str | None, voters: str | None) -> dict[str, int]:
    """What `cluster up` starts from `--agents ROLE=N,...` and `--voters N` (the number of
    S5s, the voters), each None when not given. ConfigError if either is bad or `--agents`
    names a different S5 count."""
    counts = dict(DEFAULT_AGENTS) if agents is None else parse_agents(agents)
    if voters is None:
        return counts
    try:
        n = int(voters)
    except ValueError:
        raise ConfigError(f"--voters takes a number of S5 agents, not {voters!r}") from None
    if not 1 <= n <= _MAX_PER_ROLE:
        raise ConfigError(f"--voters must be 1-{_MAX_PER_ROLE}, not {n}")
    if agents is not None and counts.get("s5", n) != n:
        raise ConfigError(f"--agents starts {counts['s5']} s5 but --voters says {n}")
    return {**counts, "s5": n}


@dataclass(frozen=True)
class AgentSlot:
    agent_id: str
    role: str
    node: int  # index of the NATS node it connects to first


def place_agents(counts: dict[str, int], nodes: int) -> list[AgentSlot]:
    """Agents in role order, ids `<role>-<n>`, spread round robin over the nodes."""
    slots: list[AgentSlot] = []
    for role in ROLES:
        for n in range(1, counts.get(role, 0) + 1):
            slots.append(AgentSlot(f"{role}-{n}", role, len(slots) % nodes))
    return slots
