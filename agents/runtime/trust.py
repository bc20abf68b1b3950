"""What an agent says about identity checks: the `identity` section of its status (its
heartbeat, so `amcp status` shows every member's) and the one warning at start when
they are off."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from amcp.attest import IdentityVerifier
from amcp.identity import Identity

__all__ = ["CHECKS_OFF", "identity_status", "warn_if_unchecked"]

CHECKS_OFF = (
    "agent %s has no roster: identity checks are off, so any holder of the cluster key "
    "can write member records, ballots, decisions and audit entries in another agent's "
    "name and they count (give it --roster or AMCP_ROSTER)"
)


def identity_status(
    identity: Identity | None,
    verifier: IdentityVerifier | None,
    members_refused: Mapping[str, int],
) -> dict[str, Any]:
    """This agent's signer id (None: it signs nothing), its roster file and size, and the
    records it refused: every identity check of this process by verdict (`refused`),
    and the member records it leaves out by reason (`members_refused`)."""
    roster = None if verifier is None else verifier.roster
    return {
        "checks": verifier is not None,
        "signer": None if identity is None else identity.agent_id,
        "roster": None if roster is None or roster.path is None else str(roster.path),
        "identities": None if roster is None else len(roster.entries),
        "revoked": None if roster is None else sum(e.revoked for e in roster.entries),
        "refused": {} if verifier is None else {k: v for k, v in verifier.refused.items() if v},
        "members_refused": {k: v for k, v in members_refused.items() if v},
    }


def warn_if_unchecked(logger: logging.Logger, agent_id: str, verifier: Any) -> bool:
    """Log CHECKS_OFF once (the caller calls it once, at start); True if it did."""
    if verifier is not None:
        return False
    logger.warning(CHECKS_OFF, agent_id)
    return True
