"""The identities of a provisioned cluster: one Ed25519 key file per agent (0600, under
identities/) and the roster (0644) that grants each agent its role, and the voter role
to the agents that vote. `amcp cluster up`, `amcp cluster secrets`, `amcp demo` and the
test fixtures provision with it, so identity checks are on wherever amcp makes a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from amcp.files import private_folder
from amcp.identity import Identity
from amcp.roster import Roster, RosterEntry, parse_roles
from consensus.record import VOTER_ROLE

__all__ = ["AgentIdentities", "roles_of"]


def roles_of(role: str, voter: bool = False) -> frozenset[str]:
    """What the roster grants an agent: its VSM role, and the voter role if it votes (a
    member counts as a voter only with that grant: DESIGN of issue 16)."""
    return parse_roles([role, VOTER_ROLE] if voter else [role])


@dataclass(frozen=True)
class AgentIdentities:
    """A folder with identities/<agent id>.json per agent and roster.json."""

    folder: Path

    @property
    def roster(self) -> Path:
        return self.folder / "roster.json"

    def path(self, agent_id: str) -> Path:
        return self.folder / "identities" / f"{agent_id}.json"

    def provision(
        self, agents: Iterable[tuple[str, frozenset[str]]], *, fresh: bool = False
    ) -> Path:
        """A new key file for each (agent id, roles) and its roster entry, added to the
        roster (created if missing, replaced if `fresh`; an id already in it is refused,
        IdentityError). The roster is written once, after the key files, so no entry
        names a key that is not on disk yet."""
        wanted = list(agents)
        keep = self.roster.exists() and not fresh
        roster = Roster.load(self.roster) if keep else Roster(path=self.roster)
        made = [(Identity.generate(agent_id), roles) for agent_id, roles in wanted]
        for identity, roles in made:
            roster.add(RosterEntry(identity.agent_id, identity.public_key, roles))
        private_folder(self.folder / "identities")
        for identity, _ in made:
            identity.save(self.path(identity.agent_id))
        return roster.save(self.roster)
