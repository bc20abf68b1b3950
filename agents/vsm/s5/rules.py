"""S5's policy: critical actions, conflict resolution, approvals (pure, rules as data).

The rules live in agents/data/policy.toml, extendable with $AMCP_POLICY_RULES. A task is
critical when one of the `critical` patterns matches its text (the action class names the
kind of vote, as the consensus scorer profiles them) or when S4 rates its risk at a
`critical_risk` level.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.vsm.adaptation import Adaptation
from agents.vsm.ruledata import compile_pattern, load_rules
from agents.vsm.s3.allocation import Conflict
from agents.vsm.s4.analysis import TaskAnalysis
from amcp.errors import ConfigError
from consensus.errors import QuorumSpecError
from consensus.quorum import parse_quorum

__all__ = ["Classification", "PolicyRules", "PolicyRuling"]

RULES_ENV = "AMCP_POLICY_RULES"


@dataclass(frozen=True, slots=True)
class Classification:
    critical: bool
    action: str | None
    reasons: tuple[str, ...]

    def to_wire(self) -> dict[str, Any]:
        return {"critical": self.critical, "action": self.action, "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class PolicyRuling:
    """S5's word on a conflict, an adaptation, an allocation or an escalation."""

    ok: bool  # approved / proceed; for a conflict: S3's view wins
    side: str  # for conflicts: "s3" or "s4"; else "s5"
    reason: str

    def to_wire(self) -> dict[str, Any]:
        return {"ok": self.ok, "side": self.side, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class _ConflictRule:
    prefer: str
    s4_when_risk: frozenset[str]
    s4_when_complexity: frozenset[str]


def _strings(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return frozenset(value)


@dataclass(frozen=True)
class PolicyRules:
    quorum: str
    vote_timeout: float
    critical: tuple[tuple[re.Pattern[str], str], ...]
    critical_levels: frozenset[str]
    critical_risk_action: str
    conflicts: Mapping[str, _ConflictRule]
    approve: frozenset[str]
    stop_on_escalation: bool
    refuse_review_at_risk: frozenset[str]

    @classmethod
    def load(cls, *extra: Path) -> PolicyRules:
        return cls.from_doc(load_rules("policy.toml", RULES_ENV, extra))

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> PolicyRules:
        vote = doc.get("vote", {})
        quorum = str(vote.get("quorum", "majority"))
        try:
            parse_quorum(quorum)
        except QuorumSpecError as exc:
            raise ConfigError(f"policy rules [vote]: {exc}") from None
        timeout = vote.get("timeout", 5.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError("policy rules [vote]: timeout must be a number > 0")
        critical = []
        for n, rule in enumerate(doc.get("critical", [])):
            where = f"policy rules [[critical]] #{n + 1}"
            action = rule.get("action") if isinstance(rule, Mapping) else None
            if not isinstance(action, str) or not action:
                raise ConfigError(f"{where}: action must be a non-empty string")
            critical.append((compile_pattern(rule.get("pattern"), where), action))
        risky = doc.get("critical_risk", {})
        conflicts = {}
        for n, rule in enumerate(doc.get("conflict", [])):
            where = f"policy rules [[conflict]] #{n + 1}"
            if rule.get("prefer") not in ("s3", "s4") or not isinstance(rule.get("kind"), str):
                raise ConfigError(f"{where}: needs kind and prefer = 's3' or 's4'")
            conflicts[rule["kind"]] = _ConflictRule(
                rule["prefer"],
                _strings(rule.get("s4_when_risk", []), f"{where} s4_when_risk"),
                _strings(rule.get("s4_when_complexity", []), f"{where} s4_when_complexity"),
            )
        escalation = doc.get("oscillation", {}).get("on_escalation", "stop")
        if escalation not in ("stop", "proceed"):
            raise ConfigError("policy rules [oscillation]: on_escalation is stop or proceed")
        return cls(
            quorum=quorum,
            vote_timeout=float(timeout),
            critical=tuple(critical),
            critical_levels=_strings(risky.get("levels", []), "[critical_risk] levels"),
            critical_risk_action=str(risky.get("action", "risky_operation")),
            conflicts=conflicts,
            approve=_strings(doc.get("adaptations", {}).get("approve", []), "approve"),
            stop_on_escalation=escalation == "stop",
            refuse_review_at_risk=_strings(
                doc.get("allocation", {}).get("refuse_review_at_risk", []),
                "[allocation] refuse_review_at_risk",
            ),
        )

    def classify(self, texts: Sequence[str], analysis: TaskAnalysis | None) -> Classification:
        """Critical or not, the action class to vote on, and why."""
        text = "\n".join(texts)
        for pattern, action in self.critical:
            found = pattern.search(text)
            if found:
                return Classification(True, action, (f"{found.group(0)!r} is a {action} action",))
        if analysis is not None and analysis.risk_level in self.critical_levels:
            risks = "; ".join(r.what for r in analysis.risks if r.level == analysis.risk_level)
            return Classification(
                True,
                self.critical_risk_action,
                (f"S4 rates the risk {analysis.risk_level}: {risks}",),
            )
        return Classification(False, None, ("no critical pattern and no high risk",))

    def resolve(self, conflict: Conflict, analysis: TaskAnalysis) -> PolicyRuling:
        """Whose view wins a conflict between S3's allocation and S4's analysis."""
        rule = self.conflicts.get(conflict.kind, _ConflictRule("s4", frozenset(), frozenset()))
        if analysis.risk_level in rule.s4_when_risk:
            return PolicyRuling(False, "s4", f"S4's view: the risk is {analysis.risk_level}")
        if analysis.complexity in rule.s4_when_complexity:
            return PolicyRuling(False, "s4", f"S4's view: the task is {analysis.complexity}")
        ok = rule.prefer == "s3"
        return PolicyRuling(ok, rule.prefer, f"policy prefers {rule.prefer} on {conflict.kind}")

    def approve_adaptation(self, adaptation: Adaptation) -> PolicyRuling:
        if adaptation.kind in self.approve:
            return PolicyRuling(True, "s5", f"{adaptation.kind} is an approved adaptation")
        return PolicyRuling(False, "s5", f"{adaptation.kind} is not in the approved adaptations")

    def approve_allocation(
        self, analysis: TaskAnalysis, agents: Sequence[str], under_review: Sequence[str]
    ) -> PolicyRuling:
        flagged = sorted(set(agents) & set(under_review))
        if flagged and analysis.risk_level in self.refuse_review_at_risk:
            return PolicyRuling(
                False,
                "s5",
                f"{', '.join(flagged)} under review may not take a {analysis.risk_level}-risk task",
            )
        return PolicyRuling(True, "s5", "allocation approved")

    def escalation(self, why: str) -> PolicyRuling:
        if self.stop_on_escalation:
            return PolicyRuling(False, "s5", f"stopped: {why}")
        return PolicyRuling(True, "s5", f"proceeding despite: {why}")
