"""The vote policy: rule order, thresholds at their boundaries, per-action overrides, reasons."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.errors import ConsensusError
from consensus.model import Choice, Scores, Urgency, Vote
from consensus.policy import Thresholds, Verdict, VotePolicy
from tests.support import factories

POLICY = VotePolicy()


proposal = partial(factories.proposal, action="deploy", created_ms=0, deadline_ms=1_000)


def scores(risk: float = 0.4, confidence: float = 0.9) -> Scores:
    return Scores(urgency=0.5, importance=0.5, risk=risk, confidence=confidence, novelty=1.0)


def verdict(combined: float = 0.6, policy: VotePolicy = POLICY, **kw: Any) -> Verdict:
    p = proposal(**{k: kw.pop(k) for k in ("urgency", "action") if k in kw})
    return policy.decide(p, scores(**kw), combined)


def test_high_risk_votes_no_unless_critical() -> None:
    assert verdict(risk=0.82) == Verdict(
        Choice.NO, "no: risk 0.82 > 0.70 and urgency is not critical"
    )
    assert verdict(risk=0.82, urgency="high").choice is Choice.NO
    assert verdict(risk=0.82, urgency="critical") == Verdict(
        Choice.YES,
        "yes: attention 0.60 >= 0.35, risk 0.82 > 0.70 accepted as urgency is critical, "
        "confidence 0.90 >= 0.40",
    )


def test_low_confidence_abstains() -> None:
    assert verdict(confidence=0.32) == Verdict(Choice.ABSTAIN, "abstain: confidence 0.32 < 0.40")


def test_low_attention_abstains() -> None:
    assert verdict(combined=0.2) == Verdict(Choice.ABSTAIN, "abstain: attention 0.20 < 0.35")


def test_yes_reason_quotes_every_check() -> None:
    assert verdict() == Verdict(
        Choice.YES,
        "yes: attention 0.60 >= 0.35, risk 0.40 <= 0.70, confidence 0.90 >= 0.40",
    )


def test_thresholds_are_inclusive_on_the_passing_side() -> None:
    assert verdict(risk=0.7).choice is Choice.YES
    assert verdict(confidence=0.4).choice is Choice.YES
    assert verdict(combined=0.35).reason.startswith("yes: attention 0.35 >= 0.35")


def test_reason_shows_enough_digits_to_tell_value_from_threshold() -> None:
    assert verdict(risk=0.7004).reason == "no: risk 0.7004 > 0.7000 and urgency is not critical"
    assert verdict(combined=0.3499).reason == "abstain: attention 0.3499 < 0.3500"


def test_risk_is_checked_before_confidence() -> None:
    assert verdict(risk=0.9, confidence=0.1).choice is Choice.NO


def test_per_action_overrides() -> None:
    policy = VotePolicy(
        overrides={
            "shutdown": Thresholds(risk_max=0.5, critical_overrides_risk=False),
            "restart": Thresholds(yes_min=0.1, confidence_min=0.0),
        }
    )
    assert policy.thresholds("deploy") == Thresholds()
    assert verdict(policy=policy, action="deploy", risk=0.6).choice is Choice.YES
    assert verdict(policy=policy, action="shutdown", risk=0.6, urgency="critical") == Verdict(
        Choice.NO,
        "no: risk 0.60 > 0.50 and critical urgency does not override risk for shutdown",
    )
    assert verdict(policy=policy, action="restart", combined=0.2, confidence=0.0).choice is (
        Choice.YES
    )


def test_defaults_can_be_replaced() -> None:
    strict = VotePolicy(Thresholds(risk_max=0.3, confidence_min=0.8, yes_min=0.9))
    assert verdict(policy=strict).reason == "no: risk 0.40 > 0.30 and urgency is not critical"
    assert verdict(policy=strict, risk=0.1).reason == "abstain: attention 0.60 < 0.90"


def test_cast_builds_the_vote() -> None:
    p, s = proposal(), scores()
    vote = POLICY.cast(p, "s5-a", s, 0.6)
    assert vote == Vote(
        proposal_id="p1",
        proposal_digest=p.digest,
        deadline_ms=p.deadline_ms,
        voter="s5-a",
        choice=Choice.YES,
        scores=s,
        combined=0.6,
        reason=POLICY.decide(p, s, 0.6).reason,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"risk_max": 1.5},
        {"confidence_min": -0.1},
        {"yes_min": "high"},
        {"critical_overrides_risk": 1},
    ],
)
def test_bad_thresholds_raise(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConsensusError):
        Thresholds(**kwargs)


def test_overrides_must_be_thresholds() -> None:
    with pytest.raises(ConsensusError):
        VotePolicy(overrides={"deploy": {"risk_max": 0.5}})  # type: ignore[dict-item]


units = st.floats(0.0, 1.0)


@given(units, units, units, st.sampled_from(Urgency))
def test_every_verdict_follows_the_rules_and_explains_itself(
    risk: float, confidence: float, combined: float, urgency: Urgency
) -> None:
    result = verdict(combined, risk=risk, confidence=confidence, urgency=urgency)
    assert result.reason.startswith(f"{result.choice}: ")
    if risk > 0.7 and urgency is not Urgency.CRITICAL:
        assert result.choice is Choice.NO
    elif confidence < 0.4 or combined < 0.35:
        assert result.choice is Choice.ABSTAIN
    else:
        assert result.choice is Choice.YES
