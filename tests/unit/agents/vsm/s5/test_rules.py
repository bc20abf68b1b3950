"""S5's policy (pure, rules as data) and S3*'s audit rules."""

from __future__ import annotations

import pytest

from agents.vsm.adaptation import RULES, Adaptation
from agents.vsm.s3.allocation import Conflict
from agents.vsm.s3.audit_checks import NORMAL_RULES, STRICT_RULES, audit
from agents.vsm.s4.analysis import AnalysisRules, analyse_task
from agents.vsm.s5.rules import PolicyRules
from agents.vsm.tasks import StepOut
from amcp.errors import ConfigError

POLICY = PolicyRules.load()
ANALYSIS = AnalysisRules.load()


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("deploy release 1.2", "deploy"),
        ("please shut down the service", "shutdown"),
        ("restart the workers", "restart"),
        ("rotate the signing keys", "key_rotation"),
        ("a policy change for S4", "policy_change"),
    ],
)
def test_critical_actions_by_pattern(text, action) -> None:
    c = POLICY.classify([text], None)
    assert c.critical and c.action == action and action in c.reasons[0]


def test_high_risk_is_critical_and_plain_work_is_not() -> None:
    risky = analyse_task(["rm -rf build"], ANALYSIS)
    c = POLICY.classify(["rm -rf build"], risky)
    assert c.critical and c.action == "risky_operation" and "destructive" in c.reasons[0]
    plain = POLICY.classify(["echo hi"], analyse_task(["echo hi"], ANALYSIS))
    assert not plain.critical and plain.action is None


def test_conflicts_follow_the_rules() -> None:
    ordering = Conflict("ordering", "in order", "at once")
    simple = analyse_task(["a", "b"], ANALYSIS, steps=2)
    assert POLICY.resolve(ordering, simple).side == "s4"
    capability = Conflict("capability", "requires gpu", "none has it")
    assert POLICY.resolve(capability, simple).side == "s3"
    risky = analyse_task(["rm -rf x"], ANALYSIS)
    ruling = POLICY.resolve(capability, risky)
    assert ruling.side == "s4" and "risk is high" in ruling.reason
    complex_ = analyse_task(["x"], ANALYSIS, given="complex")
    assert POLICY.resolve(capability, complex_).side == "s4"


def test_adaptation_approval_and_allocation_approval() -> None:
    for rule in RULES:
        a = Adaptation(rule.kind, "", rule.metric, 1.0, rule.threshold, rule.effect)
        assert POLICY.approve_adaptation(a).ok
    assert not POLICY.approve_adaptation(Adaptation("unknown", "", "m", 1, 1, "")).ok
    risky = analyse_task(["rm -rf x"], ANALYSIS)
    refused = POLICY.approve_allocation(risky, ["s1-a"], ["s1-a"])
    assert not refused.ok and "under review" in refused.reason
    assert POLICY.approve_allocation(risky, ["s1-b"], ["s1-a"]).ok
    assert POLICY.approve_allocation(analyse_task(["ls"], ANALYSIS), ["s1-a"], ["s1-a"]).ok
    assert not POLICY.escalation("loop").ok


def test_user_policy_extends_and_bad_policy_is_refused(tmp_path) -> None:
    mine = tmp_path / "policy.toml"
    mine.write_text('[vote]\nquorum = "all"\n\n[[critical]]\npattern = "billing"\naction = "x"\n')
    rules = PolicyRules.load(mine)
    assert rules.quorum == "all" and rules.classify(["update billing"], None).action == "x"
    for text, message in [
        ('[vote]\nquorum = "most"\n', "policy rules \\[vote\\]"),
        ("[vote]\ntimeout = 0\n", "timeout must be a number > 0"),
        ('[[critical]]\npattern = "x"\n', "action must be a non-empty string"),
        ('[[conflict]]\nkind = "x"\nprefer = "s9"\n', "prefer = 's3' or 's4'"),
        ('[oscillation]\non_escalation = "shrug"\n', "stop or proceed"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            PolicyRules.load(bad)


def out(step: int = 0, **kw) -> StepOut:
    return StepOut(**{"task_id": "t", "step": step, "agent": "s1-a", "ok": True, "exit_code": 0,
                      **kw})  # fmt: skip


def test_audit_rules_normal_and_strict() -> None:
    assert audit([out()], strict=False).passed
    v = audit([out(), out(1, ok=False, exit_code=2)], strict=False)
    assert not v.passed and v.failures == ("step 2 on s1-a: exit code 2",)
    assert v.rules == NORMAL_RULES
    timed = audit([out(ok=False, timed_out=True, error="timed out")], strict=False)
    assert timed.failures == ("step 1 on s1-a: timed out",)
    noisy = out(stderr="warning\nTraceback (most recent call last):\n", truncated=True)
    assert audit([noisy], strict=False).passed
    strict = audit([noisy], strict=True)
    assert strict.rules == STRICT_RULES and len(strict.failures) == 2
    check = out(-1, ok=False, exit_code=1, agent="s1-b")
    failed = audit([out()], check, strict=False)
    assert failed.failures == ("check command on s1-b: exit code 1",)
