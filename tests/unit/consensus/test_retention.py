"""Retention in consensus: DecisionRetention (defaults, the environment override the
agents read, refusals) and the voter's memory, which ends with each execution window."""

from __future__ import annotations

import pytest

from consensus import (
    ConsensusError,
    Decided,
    DecisionRetention,
    Proposal,
    Vote,
    VoterContext,
    VoterSettings,
    VoterState,
    decide,
)


def test_defaults_and_environment_override() -> None:
    assert DecisionRetention.from_env({}) == DecisionRetention(horizon_s=3600.0, max_records=10_000)
    env = {"AMCP_DECISION_HORIZON": "60", "AMCP_DECISION_MAX": "2000"}
    assert DecisionRetention.from_env(env) == DecisionRetention(horizon_s=60.0, max_records=2000)
    assert DecisionRetention.from_env({"AMCP_DECISION_MAX": ""}).max_records == 10_000


@pytest.mark.parametrize(
    "env",
    [
        {"AMCP_DECISION_HORIZON": "soon"},
        {"AMCP_DECISION_HORIZON": "0"},
        {"AMCP_DECISION_HORIZON": "-5"},
        {"AMCP_DECISION_HORIZON": "inf"},
        {"AMCP_DECISION_MAX": "1.5"},
        {"AMCP_DECISION_MAX": "0"},
    ],
)
def test_bad_settings_are_refused_with_a_clear_error(env: dict[str, str]) -> None:
    with pytest.raises(ConsensusError):
        DecisionRetention.from_env(env)


def _proposal(pid: str, created_ms: int, timeout_ms: int = 1000) -> Proposal:
    return Proposal(
        id=pid,
        action="restart",
        proposer="p",
        created_ms=created_ms,
        deadline_ms=created_ms + timeout_ms,
        payload={},
        quorum="majority",
    )


def test_a_voter_forgets_ballots_and_decisions_once_their_execution_window_ends() -> None:
    state = VoterState("v1", settings=VoterSettings(execution_budget_s=30.0))
    t0 = 1_700_000_000_000
    first = _proposal("p1", t0)
    ballot = state.vote(first, VoterContext(role="s5", members=1, live=1, now_ms=t0))
    assert isinstance(ballot, Vote)
    decision = decide(first, ["v1"], [ballot], now_ms=t0)
    assert decision is not None
    state.decided(Decided(proposal=first, decision=decision, executor=None, decided_ms=t0))
    window_end = t0 + 1000 + 30_000  # deadline + execution budget
    for now, kept in ((window_end, True), (window_end + 1, False)):
        state.vote(
            _proposal(f"q{now}", now), VoterContext(role="s5", members=1, live=1, now_ms=now)
        )
        assert (state.ballot("p1") is not None) is kept
        assert (state.known("p1") is not None) is kept
