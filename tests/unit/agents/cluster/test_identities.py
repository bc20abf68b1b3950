"""Provisioned identities: a 0600 key file per agent, a 0644 roster granting each its role
(and the voter role to voters), written so that each key file is the key the roster holds;
adding to a roster keeps its entries, a fresh one drops them, a known id is refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.cluster.identities import AgentIdentities, roles_of
from amcp.errors import IdentityError
from amcp.identity import Identity
from amcp.roster import ROLES, Roster


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_each_agent_gets_a_private_key_the_roster_holds(tmp_path: Path) -> None:
    ids = AgentIdentities(tmp_path / "secrets")
    roster_path = ids.provision([("s1-1", roles_of("s1")), ("s5-1", roles_of("s5"))])
    assert roster_path == ids.roster and _mode(roster_path) == 0o644
    roster = Roster.load(roster_path)
    for agent_id, role in (("s1-1", "s1"), ("s5-1", "s5")):
        assert _mode(ids.path(agent_id)) == 0o600
        key = Identity.load(ids.path(agent_id))
        entry = roster.get(agent_id)
        assert entry is not None and key.agent_id == agent_id
        assert entry.public_key == key.public_key and entry.roles == {role}
    assert _mode(ids.path("s1-1").parent) == 0o700
    assert Identity.load(ids.path("s1-1")).public_key != Identity.load(ids.path("s5-1")).public_key


def test_a_voter_is_granted_the_voter_role_besides_its_own() -> None:
    assert roles_of("s3", voter=True) == {"s3", "s5"}
    assert roles_of("s3") == {"s3"}
    with pytest.raises(IdentityError):
        roles_of("s9")


def test_adding_keeps_the_roster_and_a_known_id_is_refused(tmp_path: Path) -> None:
    ids = AgentIdentities(tmp_path)
    ids.provision([("a", roles_of("s1"))])
    first_key = ids.path("a").read_bytes()
    ids.provision([("b", roles_of("s2"))])
    assert [e.agent_id for e in Roster.load(ids.roster).entries] == ["a", "b"]
    with pytest.raises(IdentityError, match="already in the roster"):
        ids.provision([("c", roles_of("s1")), ("a", roles_of("s1"))])
    assert ids.path("a").read_bytes() == first_key  # a refused batch writes no key file
    assert not ids.path("c").exists()
    assert [e.agent_id for e in Roster.load(ids.roster).entries] == ["a", "b"]


def test_fresh_replaces_the_roster_and_the_keys(tmp_path: Path) -> None:
    ids = AgentIdentities(tmp_path)
    ids.provision([("a", roles_of("s1")), ("b", roles_of("s1"))])
    old = Identity.load(ids.path("a")).public_key
    ids.provision([("a", roles_of("s5"))], fresh=True)
    roster = Roster.load(ids.roster)
    assert [e.agent_id for e in roster.entries] == ["a"]
    entry = roster.get("a")
    assert entry is not None and entry.roles == {"s5"}
    assert entry.public_key == Identity.load(ids.path("a")).public_key != old


@given(st.sampled_from(ROLES), st.booleans())
def test_roles_of_is_the_role_plus_the_voter_role_when_voting(role: str, voter: bool) -> None:
    roles = roles_of(role, voter)
    assert role in roles and ("s5" in roles) == (voter or role == "s5")
    assert len(roles) == 1 + (voter and role != "s5")
