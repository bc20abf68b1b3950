"""S4 intelligence: analyse a task before it runs, and watch the bus it runs on.

`analyse` applies the analysis rules (agents/vsm/s4/analysis.py; lowered thresholds while the
lower_complexity adaptation holds) and adds the traffic picture, per subject family in
netopt's TrafficSampler, classified by netopt's analyser (idle, steady, periodic, bursty).

S4 must not subscribe to a subject anyone sends requests to: NATS answers "no responders"
only when nobody is subscribed, so a catch-all `amcp.<cluster>.>` made every call to an
unknown agent and every ctx bootstrap wait its full timeout. It samples the publish-only
subjects on the bus (OBSERVED) and takes the request traffic (calls served, and audit
entries, which JetStream acknowledges) from the counters each agent reports in its
heartbeats, spread evenly over the interval they cover. The picture is recomputed at most
once a second, so analysing stays cheap on a busy bus.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from agents.runtime.admin import Nothing
from agents.runtime.tools import NO_INPUT, CallContext, Example, Tool, tool
from agents.vsm.role import VsmRole
from agents.vsm.s4.analysis import AnalysisRules, TaskAnalysis, TrafficPicture, analyse_task
from agents.vsm.tasks import TaskSpec
from amcp.batching import BUS_LIMITS, subject_family
from amcp.bus import Message
from netopt.sampler import TrafficSampler
from netopt.traffic import describe_traffic

if TYPE_CHECKING:
    from agents.runtime.config import AgentConfig

__all__ = ["IntelligenceRole"]

ANALYSE_EXAMPLES = [
    Example(
        {"description": "deploy the new schema to the production database"},
        description="S4 finds the database and deployment domains and their risks",
    ),
    Example({"description": "run the test suite", "steps": ["pytest -q"]}),
]

BIN_SECONDS = 0.1
BINS = 200  # 20 s of history
REFRESH = 1.0  # seconds a traffic picture serves analyses before it is recomputed
TOP_FAMILIES = 6
# Subjects (under amcp.<cluster>) that carry only published messages, never requests.
OBSERVED = (("agents", "hb", "*"), ("ctx", "delta"), ("ctx", "hello"), ("vote", ">"))
MAX_AGENTS = 4096  # agents whose last reported totals are kept


class ReportedRates:
    """Message counts that agents report as running totals in their heartbeats, turned
    into counts per sampling tick: what a total grew by since the agent's previous
    heartbeat is paid out evenly over the next interval of that length, so every counted
    message is sampled once, about one heartbeat late. Pure."""

    def __init__(self, now: float) -> None:
        self._last: dict[str, tuple[float, dict[str, int]]] = {}
        # (agent, family) -> [messages left to pay, per second, paid out from]
        self._owed: dict[tuple[str, str], list[float]] = {}
        self._carry: dict[str, float] = {}
        self._taken = now

    def report(self, agent: str, totals: Mapping[str, int], now: float) -> None:
        """`agent`'s running totals per family at `now`."""
        previous = self._last.get(agent)
        if previous is None and len(self._last) >= MAX_AGENTS:
            self._last.clear()  # bounded memory: the next heartbeats start again
        self._last[agent] = (now, dict(totals))
        if previous is None or now <= previous[0]:
            return
        seconds = now - previous[0]
        for family, total in totals.items():
            grown = total - previous[1].get(family, 0)
            if grown <= 0:  # nothing new, or a restarted agent counting from zero again
                continue
            owed = self._owed.setdefault((agent, family), [0.0, 0.0, now])
            owed[0] += grown
            owed[1] = owed[0] / seconds
            owed[2] = now

    def take(self, now: float) -> list[tuple[str, int]]:
        """Whole messages per family due since the last `take`; fractions carry over."""
        since, self._taken = self._taken, now
        due: dict[str, float] = {}
        for (agent, family), owed in list(self._owed.items()):
            pay = min(owed[0], owed[1] * max(now - max(since, owed[2]), 0.0))
            owed[0] -= pay
            if owed[0] <= 1e-9:
                del self._owed[agent, family]
            due[family] = due.get(family, 0.0) + pay
        out = []
        for family, amount in due.items():
            amount += self._carry.get(family, 0.0)
            whole = int(amount + 1e-9)
            self._carry[family] = amount - whole
            out.append((family, whole))
        return out


class IntelligenceRole(VsmRole):
    role = "s4"

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config)
        self.rules = AnalysisRules.load()  # a bad rules file stops the agent at start
        self.sampler = TrafficSampler(BIN_SECONDS, BINS)
        self.reported = ReportedRates(time.monotonic())
        self._families: dict[str, str] = {}
        self._sources: dict[str, str] = {}  # family -> "bus" or "heartbeats"
        self._picture = TrafficPicture()
        self._picture_at = float("-inf")
        self._since = time.monotonic()
        self.analysed = 0

    def role_tools(self) -> Iterable[Tool]:
        role = self

        @tool(audited=False, read_only=True, examples=ANALYSE_EXAMPLES)
        async def analyse(args: TaskSpec, ctx: CallContext) -> TaskAnalysis:
            """Complexity, domains, risks, recommended approach and the bus traffic for a task."""
            return await role.analyse(args)

        @tool(pooled=False, audited=False, read_only=True, examples=NO_INPUT)
        async def traffic(args: Nothing, ctx: CallContext) -> TrafficPicture:
            """What netopt's analyser makes of the cluster's traffic, per subject family."""
            return role.traffic(max_age=0.0)

        return [analyse, traffic]

    async def on_start(self) -> None:
        area = self.agent.bus.subjects.area
        for tokens in OBSERVED:
            await self.agent.subscribe(area(*tokens), self._sample)
        self._heartbeats = area("agents", "hb", "")
        self._reported_families = {"calls": area("agents", "call"), "audit": area("audit")}
        self.agent.spawn(self._tick_reported(), "reported traffic")
        # scipy.signal takes most of a second to import: not on the first task's time
        self.agent.spawn(asyncio.to_thread(importlib.import_module, "scipy.signal"), "warm")

    def _sample(self, msg: Message) -> None:
        now = time.monotonic()
        family = self._families.get(msg.subject)
        if family is None:
            if len(self._families) > 4096:
                self._families.clear()
                self._sources.clear()
            family = self._families[msg.subject] = subject_family(msg.subject)
            self._sources[family] = "bus"
        self.sampler.record(family, 0, now)
        if msg.subject.startswith(self._heartbeats):
            totals = _reported_totals(msg.body, self._reported_families)
            if totals is not None:
                self.reported.report(msg.subject[len(self._heartbeats) :], totals, now)

    async def _tick_reported(self) -> None:
        while True:
            await asyncio.sleep(BIN_SECONDS)
            now = time.monotonic()
            for family, count in self.reported.take(now):
                self._sources[family] = "heartbeats"
                self.sampler.record(family, 0, now, count)

    def traffic(self, max_age: float = REFRESH) -> TrafficPicture:
        """The traffic picture, recomputed if older than `max_age` seconds."""
        now = time.monotonic()
        if now - self._picture_at < max_age:
            return self._picture
        report = describe_traffic(self.sampler, now, BUS_LIMITS)
        seconds = min(now - self._since, BIN_SECONDS * BINS)
        total = sum(f.messages for f in report)
        rate = total / seconds if seconds > 0 else 0.0
        families = tuple(
            {
                "family": f.family,
                "rate": round(f.rate, 2),
                "class": None if f.traffic_class is None else str(f.traffic_class),
                "period_seconds": f.period_seconds,
                "source": self._sources.get(f.family, "bus"),
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

    async def analyse(self, task: TaskSpec) -> TaskAnalysis:
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


def _reported_totals(body: object, families: Mapping[str, str]) -> dict[str, int] | None:
    """The running totals a heartbeat reports (calls served, audit entries recorded), by
    family; None for a body that does not hold them as counts."""
    if not isinstance(body, dict):
        return None
    calls, audit = body.get("calls"), body.get("audit")
    if not isinstance(calls, dict) or not isinstance(audit, dict):
        return None
    counts = [*calls.values(), audit.get("recorded")]
    if not all(type(n) is int and n >= 0 for n in counts):
        return None
    return {families["calls"]: sum(counts[:-1]), families["audit"]: counts[-1]}
