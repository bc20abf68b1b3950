"""A bus's identity and roster: the identity must be the sender's, the roster becomes the
bus's verifier, and a replaced roster file takes effect on the next reload (revocation
without restart)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nats.aio.client import Client as NatsClient

from amcp import Bus, BusOptions, Identity, Keyring, Roster, RosterEntry
from amcp.attest import IdentityVerdict, sign
from amcp.errors import ConfigError

S5 = Identity.from_seed("s5-a", bytes(range(32)))


def _bus(sender: str, **options: object) -> Bus:
    return Bus(NatsClient(), Keyring.generate(), sender, BusOptions(**options))  # type: ignore[arg-type]


def test_an_identity_of_another_agent_is_refused() -> None:
    with pytest.raises(ConfigError, match="s5-a"):
        _bus("s5-b", identity=S5)
    assert _bus("s5-a", identity=S5).identity is S5


def test_without_a_roster_nothing_is_verified() -> None:
    assert _bus("s5-a").verifier is None


def test_a_revocation_written_to_the_roster_file_counts_after_one_reload(tmp_path: Path) -> None:
    path = tmp_path / "roster.json"
    Roster([RosterEntry("s5-a", S5.public_key, frozenset({"s5"}))]).save(path)
    bus = _bus("s1-x", roster=Roster.load(path))
    assert bus.verifier is not None
    ballot = {"proposal_id": "p", "choice": "yes"}
    sig = sign(S5, "ballot", ballot)
    assert bus.verifier.verify("ballot", "s5-a", ballot, sig) is IdentityVerdict.OK
    other = Roster.load(path)
    other.revoke("s5-a")
    other.save(path)
    bus.reload_files()
    assert bus.verifier.verify("ballot", "s5-a", ballot, sig) is IdentityVerdict.REVOKED
