"""The vote policy: turns a voter's scores into yes, no or abstain, with a reason a human reads.

Rules, first match wins (thresholds per action, see Thresholds):
1. risk > risk_max votes no, unless the proposal's urgency is critical (and the action lets
   critical urgency override risk);
2. confidence < confidence_min abstains: the voter cannot trust its own view;
3. combined >= yes_min votes yes;
4. otherwise abstain: the proposal did not get enough of this voter's attention.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import consensus._validate as check
from consensus.errors import ConsensusError
from consensus.model import Choice, Proposal, Scores, Urgency, Vote

__all__ = ["Thresholds", "Verdict", "VotePolicy"]


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """The policy's thresholds for one action (or the defaults for all)."""

    risk_max: float = 0.7
    confidence_min: float = 0.4
    yes_min: float = 0.35
    critical_overrides_risk: bool = True

    def __post_init__(self) -> None:
        for name in ("risk_max", "confidence_min", "yes_min"):
            object.__setattr__(self, name, check.unit(name, getattr(self, name)))
        if not isinstance(self.critical_overrides_risk, bool):
            raise ConsensusError("critical_overrides_risk must be a bool")


@dataclass(frozen=True)
class Verdict:
    """A choice and the reason for it, e.g. "no: risk 0.82 > 0.70 and urgency is not critical"."""

    choice: Choice
    reason: str


class VotePolicy:
    """Decides ballots from scores; `overrides` replaces the thresholds for named actions."""

    def __init__(
        self,
        defaults: Thresholds | None = None,
        overrides: Mapping[str, Thresholds] | None = None,
    ) -> None:
        self.defaults = defaults if defaults is not None else Thresholds()
        self.overrides: Mapping[str, Thresholds] = MappingProxyType(dict(overrides or {}))
        if not all(isinstance(t, Thresholds) for t in [self.defaults, *self.overrides.values()]):
            raise ConsensusError("policy thresholds must be Thresholds")

    def thresholds(self, action: str) -> Thresholds:
        """The thresholds that apply to `action`."""
        return self.overrides.get(action, self.defaults)

    def decide(self, proposal: Proposal, scores: Scores, combined: float) -> Verdict:
        """Apply the rules in order; the reason quotes the numbers that decided."""
        t = self.thresholds(proposal.action)
        risk, limit = _pair(scores.risk, t.risk_max)
        if scores.risk <= t.risk_max:
            risk_note = f"risk {risk} <= {limit}"
        elif proposal.urgency is not Urgency.CRITICAL:
            return Verdict(Choice.NO, f"no: risk {risk} > {limit} and urgency is not critical")
        elif not t.critical_overrides_risk:
            return Verdict(
                Choice.NO,
                f"no: risk {risk} > {limit} and critical urgency does not override risk "
                f"for {proposal.action}",
            )
        else:
            risk_note = f"risk {risk} > {limit} accepted as urgency is critical"
        confidence, floor = _pair(scores.confidence, t.confidence_min)
        if scores.confidence < t.confidence_min:
            return Verdict(Choice.ABSTAIN, f"abstain: confidence {confidence} < {floor}")
        attention, bar = _pair(combined, t.yes_min)
        if combined < t.yes_min:
            return Verdict(Choice.ABSTAIN, f"abstain: attention {attention} < {bar}")
        return Verdict(
            Choice.YES,
            f"yes: attention {attention} >= {bar}, {risk_note}, confidence {confidence} >= {floor}",
        )

    def cast(self, proposal: Proposal, voter: str, scores: Scores, combined: float) -> Vote:
        """The Vote this policy casts for `voter`, carrying the scores and the reason."""
        verdict = self.decide(proposal, scores, combined)
        return Vote(
            proposal_id=proposal.id,
            proposal_digest=proposal.digest,
            deadline_ms=proposal.deadline_ms,
            voter=voter,
            choice=verdict.choice,
            scores=scores,
            combined=combined,
            reason=verdict.reason,
        )


def _pair(value: float, limit: float) -> tuple[str, str]:
    """Format a value and its threshold with 2 decimals, more if 2 would make them look equal."""
    for digits in range(2, 7):
        shown = f"{value:.{digits}f}", f"{limit:.{digits}f}"
        if shown[0] != shown[1] or value == limit:
            break
    return shown
