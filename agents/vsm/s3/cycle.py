"""One task's cycle as the loop records it (pure): the agents invoked, what happened in
order, and what each stage found, until it becomes the `CycleResult` S3 answers with."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agents.vsm.s3.audit_checks import AuditVerdict
from agents.vsm.s4.analysis import TaskAnalysis
from agents.vsm.tasks import CycleResult, StepOut, TaskSpec

__all__ = ["Cycle"]


@dataclass
class Cycle:
    task: TaskSpec
    started: float = field(default_factory=time.perf_counter)
    agents: dict[str, None] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)
    analysis: TaskAnalysis | None = None
    critical: bool = False
    vote: dict[str, Any] | None = None
    iterations: int = 0
    outs: dict[int, StepOut] = field(default_factory=dict)
    verdict: AuditVerdict | None = None
    check: StepOut | None = None
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    damping: list[dict[str, Any]] = field(default_factory=list)
    requeued: list[dict[str, Any]] = field(default_factory=list)

    def note(self, agent: str, what: str) -> None:
        self.agents.setdefault(agent, None)
        self.path.append(f"{agent}: {what}")

    def result(self, success: bool, summary: str, adaptations: list[dict[str, Any]]) -> CycleResult:
        return CycleResult(
            task_id=self.task.id,
            success=success,
            summary=summary,
            complexity=self.analysis.complexity if self.analysis else None,
            critical=self.critical,
            iterations=self.iterations,
            agents=list(self.agents),
            path=self.path,
            analysis=self.analysis,
            vote=self.vote,
            steps=[self.outs[i] for i in sorted(self.outs)],
            audit={}
            if self.verdict is None
            else {
                **self.verdict.to_wire(),
                "check": None if self.check is None else self.check.model_dump(),
            },
            conflicts=self.conflicts,
            damping=self.damping,
            adaptations=adaptations,
            requeued=self.requeued,
            seconds=round(time.perf_counter() - self.started, 4),
        )
