"""The shape of a cluster: how many NATS nodes, how many agents of each role, and which
node each agent sits beside (round robin, so every node carries agents and losing one
node loses a minority of them). Each agent knows every node's URL, its own node first.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.wire import ROLES
from amcp.errors import ConfigError

__all__ = ["DEFAULT_AGENTS", "AgentSlot", "parse_agents", "place_agents"]

# Every role, with two S1s so tasks have somewhere to go when one is busy or down.
DEFAULT_AGENTS: dict[str, int] = {"s1": 2, "s2": 1, "s3": 1, "s4": 1, "s5": 1}
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
