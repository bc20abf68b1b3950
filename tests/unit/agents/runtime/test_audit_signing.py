"""Audit frame bodies under identity signatures (pure): one batch signature over a frame's
entries verifies for their agent only; a changed, added, dropped or reordered entry fails;
a bare list (the older body, or an agent without an identity) has nothing to verify."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.runtime.audit import signed_body, verify_body
from amcp.attest import IdentityVerdict, IdentityVerifier
from amcp.identity import Identity
from amcp.roster import Roster, RosterEntry

S5 = Identity.from_seed("s5-1", bytes(range(32)))
S1 = Identity.from_seed("s1-x", bytes(range(1, 33)))
VERIFIER = IdentityVerifier(
    Roster(RosterEntry(i.agent_id, i.public_key, frozenset({"s5"})) for i in (S5, S1))
)


def entries(n: int = 3) -> list[dict[str, Any]]:
    return [
        {"ts": 1_700_000_000_000 + i, "agent": "s5-1", "role": "s5", "event": "vote", "n": i}
        for i in range(1, n + 1)
    ]


def test_a_signed_body_verifies_for_its_agent() -> None:
    body = signed_body(S5, entries())
    assert verify_body(VERIFIER, "s5-1", body) == (entries(), IdentityVerdict.OK)
    assert verify_body(VERIFIER, "s1-x", body)[1] is IdentityVerdict.BAD_SIGNATURE


def test_a_bare_list_has_no_verdict_and_no_verifier_checks_nothing() -> None:
    assert signed_body(None, entries()) == entries()
    assert verify_body(VERIFIER, "s5-1", entries()) == (entries(), None)
    assert verify_body(None, "s5-1", signed_body(S5, entries())) == (entries(), None)


def test_a_signature_of_another_key_or_none_at_all_is_refused() -> None:
    forged = signed_body(S1, entries())  # an insider's own key, claiming s5-1's entries
    assert verify_body(VERIFIER, "s5-1", forged)[1] is IdentityVerdict.BAD_SIGNATURE
    no_sig = {"entries": entries()}
    assert verify_body(VERIFIER, "s5-1", no_sig)[1] is IdentityVerdict.MALFORMED


tampers = st.sampled_from(["change", "add", "drop", "swap"])


@settings(max_examples=40, deadline=None)
@given(
    tamper=tampers,
    at=st.integers(0, 2),
    field=st.sampled_from(["ts", "event", "n", "role"]),
)
def test_a_changed_frame_fails(tamper: str, at: int, field: str) -> None:
    body = signed_body(S5, entries())
    changed = [dict(e) for e in body["entries"]]
    if tamper == "change":
        changed[at][field] = "x"
    elif tamper == "add":
        changed.insert(at, {**changed[at], "n": 99})
    elif tamper == "drop":
        del changed[at]
    else:
        changed[at], changed[(at + 1) % 3] = changed[(at + 1) % 3], changed[at]
    verdict = verify_body(VERIFIER, "s5-1", {**body, "entries": changed})[1]
    assert verdict is IdentityVerdict.BAD_SIGNATURE
