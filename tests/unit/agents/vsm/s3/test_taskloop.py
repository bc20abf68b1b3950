"""The task loop against a scripted host (no bus): each reply of S2, S4, S5 and S1 is read
as the model its tool declares, and a reply that does not fit ends the cycle, unsuccessful,
with the agent, the tool and the field named."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from agents.runtime.client import CallResult
from agents.runtime.config import AgentConfig
from agents.runtime.discovery import MemberStatus
from agents.runtime.liveness import Liveness
from agents.runtime.membership import MemberRecord
from agents.vsm.adaptation import Adaptation
from agents.vsm.s3.host import TaskLoopHost
from agents.vsm.s3.role import ControlRole
from agents.vsm.s3.taskloop import TaskLoop
from agents.vsm.tasks import StepIn, TaskSpec
from agents.vsm.viability import FINISHED, SUCCEEDED

ANALYSIS: dict[str, Any] = {
    "complexity": "simple",
    "score": 1.0,
    "thresholds": [3.0, 6.0],
    "reasons": [],
    "domains": [],
    "risks": [],
    "risk_level": "low",
    "approach": {"mode": "direct", "max_iterations": 1, "review": False, "parallel": False},
}
VOTE: dict[str, Any] = {
    "action": "restart",
    "proposal": "p-1",
    "outcome": "committed",
    "committed": True,
    "quorum": "majority",
    "members": ["s5-t"],
    "yes": 1,
    "no": 0,
    "abstain": 0,
    "needed": 1.0,
    "votes": [],
}
GRANT = {"decision": "grant", "reason": "r is free", "delay": 0.0, "oscillation": None}
OK = {"ok": True, "side": "s5", "reason": "fine"}


def executed(args: dict[str, Any]) -> dict[str, Any]:
    step = StepIn.model_validate(args)
    return {"task_id": step.task_id, "step": step.step, "agent": "s1-t", "ok": True, "exit_code": 0}


def member(agent_id: str, role: str) -> MemberStatus:
    record = MemberRecord(id=agent_id, role=role, version="0", state="running")
    return MemberStatus(record, Liveness.ALIVE, 0.0, "running", None, None)


class Host:
    """A TaskLoopHost whose calls answer from a script: tool -> reply (or a function of
    the arguments)."""

    def __init__(self, script: dict[str, Any], active: set[str] = frozenset()) -> None:
        self.config = AgentConfig(role="s3", agent_id="s3-t", heartbeat=0.05)
        self.script = script
        self.activated = active
        self.calls: list[str] = []
        self.counted: dict[str, int] = {}

    @property
    def client(self) -> Host:
        return self

    async def call(self, target: str, tool: str, args: Any, *, timeout: float) -> CallResult:
        self.calls.append(tool)
        reply = self.script[tool]
        agent = {"analyse": "s4-t", "claim": "s2-t", "release": "s2-t", "execute": "s1-t"}
        return CallResult(agent.get(tool, "s5-t"), reply(args) if callable(reply) else reply)

    async def log(self, event: str, **fields: Any) -> None:
        pass

    def span(self, name: str, **attributes: Any) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    async def count(self, key: str, n: int = 1) -> None:
        self.counted[key] = self.counted.get(key, 0) + n

    def adaptations(self) -> dict[str, Adaptation]:
        return {}

    def active(self, kind: str, target: str = "") -> bool:
        return kind in self.activated

    def under_review(self) -> list[str]:
        return []

    def view(self) -> list[MemberStatus]:
        return [member("s1-t", "s1"), member("s2-t", "s2")]

    def leader(self, role: str) -> str | None:
        return f"{role}-t"


def script(**replies: Any) -> dict[str, Any]:
    return {
        "analyse": ANALYSIS,
        "classify": {"critical": True, "action": "restart", "reasons": ["a restart"]},
        "authorise": VOTE,
        "claim": GRANT,
        "execute": executed,
        "release": GRANT,
        "resolve": {"ok": True, "side": "s3", "reason": "policy prefers s3"},
        "approve-allocation": OK,
        "escalate": OK,
        **replies,
    }


def test_the_s3_role_hosts_its_loop() -> None:
    role = ControlRole(AgentConfig(role="s3", agent_id="s3-t"))
    wanted = [n for n in vars(TaskLoopHost) if not n.startswith("_")]
    assert wanted and all(hasattr(ControlRole, n) for n in wanted)
    assert all(hasattr(role, n) for n in TaskLoopHost.__annotations__)
    assert role.loop.host is role and role.loop.agent_id == "s3-t"


TASK = TaskSpec(id="t-1", description="restart the service", steps=["true"])


async def test_well_formed_replies_carry_the_cycle_through() -> None:
    host = Host(script(), active={"s5_approval"})
    result = await TaskLoop(host).run(TASK)
    assert result.success, result.summary
    assert result.critical and result.vote == VOTE
    assert [s.ok for s in result.steps] == [True]
    assert any("allocation: fine" in p for p in result.path)


@pytest.mark.parametrize(
    ("tool", "replies", "field"),
    [
        ("analyse", {"analyse": {**ANALYSIS, "risk_level": "dire"}}, "risk_level"),
        ("classify", {"classify": {"critical": True, "action": "restart"}}, "reasons"),
        ("authorise", {"authorise": {**VOTE, "yes": "many"}}, "yes"),
        ("approve-allocation", {"approve-allocation": {"ok": True}}, "side"),
        ("claim", {"claim": {"decision": "grant"}}, "reason"),
        ("escalate", {"claim": {**GRANT, "decision": "escalate"}, "escalate": {}}, "ok"),
        ("execute", {"execute": {"ok": True}}, "task_id"),
        ("release", {"release": {**GRANT, "delay": "soon"}}, "delay"),
        ("resolve", {"analyse": {**ANALYSIS, "approach": {**ANALYSIS["approach"],
                     "required": ["gpu"]}}, "resolve": {"side": "s3"}}, "ok"),
    ],
)  # fmt: skip
async def test_a_malformed_reply_ends_the_cycle_with_a_clear_reason(
    tool: str, replies: dict[str, Any], field: str
) -> None:
    host = Host(script(**replies), active={"s5_approval"})
    result = await TaskLoop(host).run(TASK)
    assert not result.success
    agent = {"analyse": "s4-t", "claim": "s2-t", "release": "s2-t", "execute": "s1-t"}
    assert result.summary.startswith(f"{agent.get(tool, 's5-t')} answered {tool} with a "
                                     f"malformed reply ({field}: "), result.summary  # fmt: skip
    assert tool in host.calls
    assert host.counted[FINISHED] == 1 and host.counted.get(SUCCEEDED, 0) == 0
