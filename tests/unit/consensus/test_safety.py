"""The protocol modelled sans-I/O: proposers (Round), voters (VoterState) and one executor
exchange messages that hypothesis delivers in any order, drops, or delays past deadlines.

Safety: with a majority quorum, no two proposals on one resource are ever committed and
executing at the same time. A committed proposal executes from its commit until its
executor acknowledges, at the latest until its execution window ends (deadline plus the
execution budget, when the voters' leases end). Every decision re-derives from its votes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from consensus import (
    Decided,
    Decision,
    ExecState,
    Execution,
    Executor,
    Outcome,
    Proposal,
    Round,
    Vote,
    VoterContext,
    VoterSettings,
    VoterState,
    verify,
)

VOTERS = ("v1", "v2", "v3", "v4", "v5")
PROPOSALS = ("p0", "p1", "p2", "p3")
DURATION_MS = 3_000
SETTINGS = VoterSettings(execution_budget_s=2.0)
EXECUTOR = Executor("x", "run")


@dataclass
class Msg:
    kind: str  # propose, ballot, decided, ack
    proposal: str
    voter: str
    vote: Vote | None = None


class Protocol(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.now = 0
        self.voters = {v: VoterState(v, settings=SETTINGS) for v in VOTERS}
        self.rounds: dict[str, Round] = {}
        self.decided: dict[str, Decided] = {}
        self.inflight: list[Msg] = []
        self.executing: dict[str, int] = {}  # proposal -> commit time, while executing
        self.windows: list[tuple[str, int, int]] = []  # proposal, start, end

    # -- proposers ----------------------------------------------------------------------

    @rule(p=st.sampled_from(PROPOSALS))
    def propose(self, p: str) -> None:
        if p in self.rounds:
            return
        proposal = Proposal(
            id=p,
            action="restart",
            proposer=f"proposer-{p}",
            created_ms=self.now,
            deadline_ms=self.now + DURATION_MS,
            resource="db",
        )
        self.rounds[p] = Round(proposal, VOTERS, now_ms=self.now)
        self.inflight += [Msg("propose", p, v) for v in VOTERS]

    def _decide(self, p: str, decision: Decision | None) -> None:
        if decision is None or p in self.decided:
            return
        committed = decision.outcome is Outcome.COMMITTED
        self.decided[p] = Decided(
            proposal=self.rounds[p].proposal,
            decision=decision,
            executor=EXECUTOR if committed else None,
            decided_ms=self.now,
        )
        if committed:
            self.executing[p] = self.now
        self.inflight += [Msg("decided", p, v) for v in VOTERS]

    @rule(p=st.sampled_from(PROPOSALS))
    def deadline(self, p: str) -> None:
        r = self.rounds.get(p)
        if r is not None and self.now >= r.proposal.deadline_ms:
            self._decide(p, r.expire(now_ms=self.now))

    # -- the network --------------------------------------------------------------------

    @precondition(lambda self: self.inflight)
    @rule(data=st.data(), fate=st.integers(0, 7))
    def deliver(self, data: st.DataObject, fate: int) -> None:
        """One message, any of those in flight; one in eight is lost."""
        self._handle(self.inflight.pop(data.draw(st.integers(0, len(self.inflight) - 1))), fate)

    @rule(p=st.sampled_from(PROPOSALS), count=st.integers(1, 12), fates=st.randoms())
    def deliver_burst(self, p: str, count: int, fates: random.Random) -> None:
        """Up to `count` messages of one proposal in a random order, some lost."""
        for _ in range(count):
            mine = [i for i, m in enumerate(self.inflight) if m.proposal == p]
            if not mine:
                return
            self._handle(self.inflight.pop(fates.choice(mine)), fates.randrange(8))

    def _handle(self, msg: Msg, fate: int) -> None:
        if fate == 0:
            return  # lost, or its receiver crashed
        state = self.voters[msg.voter]
        if msg.kind == "propose":
            context = VoterContext(role="s5", members=5, live=5, now_ms=self.now)
            answer = state.vote(self.rounds[msg.proposal].proposal, context)
            if isinstance(answer, Vote):
                self.inflight.append(Msg("ballot", msg.proposal, msg.voter, answer))
        elif msg.kind == "ballot":
            assert msg.vote is not None
            r = self.rounds[msg.proposal]
            self._decide(msg.proposal, r.offer(msg.vote, msg.voter, now_ms=self.now))
        elif msg.kind == "decided":
            state.decided(self.decided[msg.proposal])
        else:
            state.executed(
                Execution(
                    proposal_id=msg.proposal,
                    executor=EXECUTOR.agent,
                    tool=EXECUTOR.tool,
                    state=ExecState.DONE,
                    started_ms=0,
                )
            )

    # -- the executor and time ----------------------------------------------------------

    @rule(p=st.sampled_from(PROPOSALS))
    def finish(self, p: str) -> None:
        if p in self.executing:
            self._close(p, self.now)
            self.inflight += [Msg("ack", p, v) for v in VOTERS]

    @rule(dt=st.integers(1, 1_000))
    def tick(self, dt: int) -> None:
        self.now += dt
        for p, started in list(self.executing.items()):
            end = SETTINGS.lease_end_ms(self.rounds[p].proposal.deadline_ms)
            if self.now >= end:  # the window closed: the executor may not act any more
                self._close(p, max(started, end))

    def _close(self, p: str, end: int) -> None:
        self.windows.append((p, self.executing.pop(p), end))

    # -- properties ---------------------------------------------------------------------

    @invariant()
    def never_two_executing_on_one_resource(self) -> None:
        if not hasattr(self, "windows"):
            return
        spans = self.windows + [(p, t, self.now + 1) for p, t in self.executing.items()]
        for i, (p1, s1, e1) in enumerate(spans):
            for p2, s2, e2 in spans[i + 1 :]:
                assert e1 <= s2 or e2 <= s1, f"{p1} [{s1}, {e1}) overlaps {p2} [{s2}, {e2})"

    @invariant()
    def every_decision_re_derives(self) -> None:
        if hasattr(self, "decided"):
            assert all(verify(d.decision) for d in self.decided.values())


TestProtocol = Protocol.TestCase
TestProtocol.settings = settings(max_examples=200, stateful_step_count=80, deadline=None)
