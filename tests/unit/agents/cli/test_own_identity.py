"""amcp-agent's own identity: which key file it uses (--identity, $AMCP_IDENTITY, the one
--new-identity made in its data dir), that a new key is made only when allowed and only
once, and the roster's verdict on the agent (pure): absent, revoked, another key or a role
not granted each has its one-line reason, and the enrolment line is exact."""

from __future__ import annotations

import base64
import shlex
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.cli.own_identity import NEW_IDENTITY_FILE, enroll_command, own_identity, standing
from amcp.cli.main import build_parser
from amcp.errors import IdentityError
from amcp.identity import IDENTITY_ENV, Identity
from amcp.roster import ROLES, Roster, RosterEntry


@pytest.fixture(autouse=True)
def _no_env_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(IDENTITY_ENV, raising=False)


def _roster(identity: Identity, roles: set[str], revoked: bool = False) -> Roster:
    entry = RosterEntry(identity.agent_id, identity.public_key, frozenset(roles), revoked)
    return Roster([entry], Path("/etc/amcp/roster.json"))


def test_no_key_is_made_unless_allowed(tmp_path: Path) -> None:
    assert own_identity(None, tmp_path, "s1-a", allow_new=False, new_id="x") == (None, None, False)
    assert not (tmp_path / NEW_IDENTITY_FILE).exists()
    assert own_identity(None, None, None, allow_new=False, new_id="x") == (None, None, False)
    with pytest.raises(IdentityError, match="--new-identity needs --data-dir"):
        own_identity(None, None, "s1-a", allow_new=True, new_id="x")


def test_a_new_key_is_made_once_then_reused(tmp_path: Path) -> None:
    path, made, created = own_identity(None, tmp_path, None, allow_new=True, new_id="s1-x")
    assert created and path == tmp_path / NEW_IDENTITY_FILE and made is not None
    assert made.agent_id == "s1-x" and stat.S_IMODE(path.stat().st_mode) == 0o600
    # later starts, with or without the flag or an id, find the same key and its id
    for allow in (True, False):
        again, same, created = own_identity(None, tmp_path, None, allow_new=allow, new_id="s1-y")
        assert again == path and not created and same is not None
        assert (same.agent_id, same.public_key) == (made.agent_id, made.public_key)
    with pytest.raises(IdentityError, match="key of s1-x, not of --id s1-z"):
        own_identity(None, tmp_path, "s1-z", allow_new=True, new_id="s1-z")


def test_a_named_key_file_wins_and_must_be_the_agents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    named = Identity.generate("s5-1").save(tmp_path / "s5-1.json")
    path, identity, created = own_identity(str(named), tmp_path, None, allow_new=True, new_id="n")
    assert (path, created) == (named, False) and identity is not None
    assert identity.agent_id == "s5-1" and not (tmp_path / NEW_IDENTITY_FILE).exists()
    monkeypatch.setenv(IDENTITY_ENV, str(named))
    assert own_identity(None, None, "s5-1", allow_new=False, new_id="n")[0] == named
    with pytest.raises(IdentityError, match="not of --id s5-2"):
        own_identity(None, None, "s5-2", allow_new=False, new_id="n")


def test_standing_reasons() -> None:
    me = Identity.generate("s3-1")
    assert standing(_roster(me, {"s3"}), "s3-1", me, {"s3"}) is None
    absent = standing(_roster(Identity.generate("s1-1"), {"s1"}), "s3-1", me, {"s3"})
    assert absent is not None and "s3-1 is not in roster /etc/amcp/roster.json" in absent
    assert enroll_command(me, {"s3"}, Path("/etc/amcp/roster.json")) in absent
    revoked = standing(_roster(me, {"s3"}, revoked=True), "s3-1", me, {"s3"})
    assert revoked is not None and "revoked" in revoked
    other_key = standing(_roster(Identity.generate("s3-1"), {"s3"}), "s3-1", me, {"s3"})
    assert other_key is not None and "not the key" in other_key
    no_vote = standing(_roster(me, {"s3"}), "s3-1", me, {"s3", "s5"})
    assert no_vote is not None and "role s5" in no_vote
    keyless = standing(_roster(me, {"s3"}), "s3-1", None, {"s3"})
    assert keyless is not None and "has no identity" in keyless
    reasons = [absent, revoked, other_key, no_vote, keyless]
    assert all("\n" not in r for r in reasons)


@given(st.sets(st.sampled_from(ROLES)), st.sets(st.sampled_from(ROLES), min_size=1))
def test_it_counts_exactly_when_every_role_it_runs_in_is_granted(
    granted: set[str], needed: set[str]
) -> None:
    me = Identity.from_seed("s1-1", bytes(32))
    assert (standing(_roster(me, granted), "s1-1", me, needed) is None) == (needed <= granted)


def test_the_enrolment_line_is_a_valid_amcp_command_that_adds_this_key() -> None:
    me = Identity.generate("s4-1")
    line = enroll_command(me, {"s5", "s4"}, Path("/tmp/roster dir/roster.json"))
    args = build_parser().parse_args(shlex.split(line)[1:])
    assert (args.agent_id, args.roles, args.roster) == (
        "s4-1",
        "s4,s5",
        "/tmp/roster dir/roster.json",
    )
    assert args.public_key == base64.b64encode(me.public_key).decode()
