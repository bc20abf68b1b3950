"""S4 intelligence: analyse a task before it runs, and watch the bus it runs on.

`analyse` applies the analysis rules (agents/analysis.py; lowered thresholds while the
lower_complexity adaptation holds) and adds the traffic picture: S4 samples every verified
message of its cluster (`amcp.<cluster>.>`) per subject family in netopt's TrafficSampler,
and netopt's analyser classifies each family (idle, steady, periodic, bursty). The picture
is recomputed at most once a second, so analysing stays cheap on a busy bus.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from agents.analysis import Analysis, AnalysisRules, TrafficPicture, analyse_task
from agents.roles.base import Nothing, VsmRole
from agents.tasks import TaskSpec
from agents.tools import CallContext, Tool, tool
from amcp.batching import describe_traffic, subject_family
from amcp.bus import Message
from netopt.sampler import TrafficSampler

if TYPE_CHECKING:
    from agents.runtime import AgentConfig

__all__ = ["IntelligenceRole"]

BIN_SECONDS = 0.1
BINS = 200  # 20 s of history
REFRESH = 1.0  # seconds a traffic picture serves analyses before it is recomputed
TOP_FAMILIES = 6


class IntelligenceRole(VsmRole):
    role = "s4"

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config)
        self.rules = AnalysisRules.load()  # a bad rules file stops the agent at start
        self.sampler = TrafficSampler(BIN_SECONDS, BINS)
        self._families: dict[str, str] = {}
        self._picture = TrafficPicture()
        self._picture_at = float("-inf")
        self._since = time.monotonic()
        self.analysed = 0

    def role_tools(self) -> Iterable[Tool]:
        role = self

        @tool(audited=False, read_only=True)
        async def analyse(args: TaskSpec, ctx: CallContext) -> Analysis:
            """Complexity, domains, risks, recommended approach and the bus traffic for a task."""
            return await role.analyse(args)

        @tool(pooled=False, audited=False, read_only=True)
        async def traffic(args: Nothing, ctx: CallContext) -> TrafficPicture:
            """What netopt's analyser makes of the cluster's traffic, per subject family."""
            return role.traffic(max_age=0.0)

        return [analyse, traffic]

    async def on_start(self) -> None:
        await self.agent.subscribe(self.agent.bus.subjects.area(">"), self._sample)
        # scipy.signal takes most of a second to import: not on the first task's time
        self.agent.spawn(asyncio.to_thread(importlib.import_module, "scipy.signal"), "warm")

    def _sample(self, msg: Message) -> None:
        family = self._families.get(msg.subject)
        if family is None:
            if len(self._families) > 4096:
                self._families.clear()
            family = self._families[msg.subject] = subject_family(msg.subject)
        self.sampler.record(family, 0, time.monotonic())

    def traffic(self, max_age: float = REFRESH) -> TrafficPicture:
        """The traffic picture, recomputed if older than `max_age` seconds."""
        now = time.monotonic()
        if now - self._picture_at < max_age:
            return self._picture
        report = describe_traffic(self.sampler, now)
        seconds = min(now - self._since, BIN_SECONDS * BINS)
        total = sum(f.messages for f in report)
        rate = total / seconds if seconds > 0 else 0.0
        families = tuple(
            {
                "family": f.family,
                "rate": round(f.rate, 2),
                "class": None if f.traffic_class is None else str(f.traffic_class),
                "period_seconds": f.period_seconds,
            }
            for f in sorted(report, key=lambda f: -f.rate)[:TOP_FAMILIES]
        )
        busiest = families[0] if families else None
        note = (
            f"{rate:.1f} messages/s over {seconds:.0f} s; busiest {busiest['family']} "
            f"at {busiest['rate']}/s ({busiest['class'] or 'too little data to classify'})"
            if busiest
            else "no traffic observed yet"
        )
        self._picture = TrafficPicture(
            seconds=round(seconds, 1), total_rate=round(rate, 2), families=families, note=note
        )
        self._picture_at = now
        return self._picture

    async def analyse(self, task: TaskSpec) -> Analysis:
        texts = [task.description, *task.steps]
        analysis = analyse_task(
            texts,
            self.rules,
            steps=len(task.step_texts()),
            given=task.complexity,
            lowered=self.active("lower_complexity"),
            traffic=self.traffic(),
        )
        self.analysed += 1
        await self.log(
            "analysed",
            task=task.id,
            complexity=analysis.complexity,
            score=analysis.score,
            domains=list(analysis.domains),
            risk=analysis.risk_level,
            approach=analysis.approach.mode,
        )
        return analysis

    def status(self) -> dict[str, object]:
        return {"analysed": self.analysed, "traffic": self._picture.note}
