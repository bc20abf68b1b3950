"""A member's side over a Bus: vote on proposals (a voter) and carry out committed actions
(a declared executor).

A voter answers each Propose on the proposer's ballot subject, signed by its own bus: the
decision if the log holds one, else its ballot (VoterState: scores, policy, resource
leases, one ballot per id). It learns decisions and executions from the decision log (a
watch on the records of the proposals it holds leases for) to end its leases.

An executor runs `tool` for the committed decisions that name it, at most once per
proposal id: it writes the decision (if its proposer has not) and a RUNNING claim to the
decision log (on disk first, for a durable replica) before it runs the tool, and never
runs a proposal that already has an execution record. It learns decisions from the log
(a watch, and a scan when it starts), so the action runs even if the proposer crashed right
after recording its decision. Before running it re-derives the commit from the ballots
among its own registered voters, and refuses one that reaches it after the execution
window (deadline + execution budget), when the voters' leases have ended. Its final
execution record is the acknowledgement.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import consensus._validate as check
from amcp import Bus, Message, Subscription
from amcp.errors import AmcpError
from amcp.groupcommit import GroupCommit
from consensus.errors import ConsensusDecodeError, ConsensusError
from consensus.messages import Ballot, Decided, ExecState, Execution, Executor, Propose
from consensus.model import MAX_BATCH, MAX_REASON_LENGTH, Outcome, Proposal, Vote
from consensus.record import (
    DecisionLog,
    DecisionRetention,
    decision_key,
    default_concern,
    execution_key,
)
from consensus.scorer import VoterContext
from consensus.signatures import refusal, sign_execution, sign_votes
from consensus.subjects import ConsensusSubjects
from consensus.voterstate import VoterState
from crdt.concern import Level, check_level
from crdt.errors import WriteConcernError
from crdt.hlc import epoch_ms
from crdt.store import ContextStore, Watch

__all__ = ["ContextFn", "RunFn", "VoterService", "roll_context"]

log = logging.getLogger("amcp.consensus")

ContextFn = Callable[[Proposal], VoterContext]
"""What the voter knows when it scores a proposal (liveness, its error rate, ...)."""
RunFn = Callable[[Executor, Decided], Awaitable[Any]]
"""Runs a committed action's tool; returns its output (plain data) or raises."""
Hook = Callable[..., Awaitable[None] | None]


def roll_context(role: str, log_: DecisionLog) -> ContextFn:
    """A context from the voter roll alone: every registered voter counted live, no errors.
    For voters without a liveness view; agents pass their own (agents.vsm.voting)."""

    def context(proposal: Proposal) -> VoterContext:
        members = max(1, len(log_.voters()))
        return VoterContext(role=role, members=members, live=members, now_ms=epoch_ms())

    return context


class VoterService:
    """Votes (if `vote`) and executes the actions in `executes` (action -> tool) over `bus`.

    The voter id is the bus's sender, so a ballot's voter is always its frame's signer.
    `on_vote(proposal, vote)` and `on_execution(execution)` are called (and awaited if
    async) after each new ballot and each final execution, e.g. for an audit log (a
    ballot sent with others may get its signature after its `on_vote`).
    `retention`: how long and how many decision records this replica keeps.
    """

    def __init__(
        self,
        bus: Bus,
        store: ContextStore,
        *,
        context: ContextFn | None = None,
        role: str = "s5",
        vote: bool = True,
        executes: Mapping[str, str] | None = None,
        run: RunFn | None = None,
        state: VoterState | None = None,
        record: Level | None = None,
        record_timeout: float = 2.0,
        retention: DecisionRetention | None = None,
        on_vote: Hook | None = None,
        on_execution: Hook | None = None,
    ) -> None:
        self.bus = bus
        self.id = bus.sender
        self.log = DecisionLog(store, retention, bus.verifier)
        self.voting = vote
        self.executes = dict(executes or {})
        if self.executes and run is None:
            raise ConsensusError("an executor needs a `run` function")
        self.run = run
        self.context = context if context is not None else roll_context(role, self.log)
        self.state = state if state is not None else VoterState(self.id)
        if self.state.voter != self.id:
            raise ConsensusError(f"voter state of {self.state.voter}, bus of {self.id}")
        if self.state.identity is None:  # ballots are signed with the bus's identity
            self.state.identity = bus.identity
        self.record = None if record is None else check_level(record)
        self.record_timeout = check.positive("record_timeout", record_timeout)
        self.on_vote = on_vote
        self.on_execution = on_execution
        self.subjects = ConsensusSubjects(bus.subjects)
        self.stats: Counter[str] = Counter()
        self._subs: list[Subscription] = []
        self._watches: list[Watch] = []
        self._executing: dict[str, asyncio.Task[None]] = {}
        # ids this executor ran, until their execution windows end: the claim in the shared
        # log is a register any key holder can overwrite, so it alone cannot stop a second
        # run of a decision handed over again within its window
        self._ran: dict[str, int] = {}
        self._ballots: GroupCommit[Vote | Decided] | None = None  # made in the loop
        # log keys of the proposals this voter holds (or held) a lease for -> proposal id
        self._leased: dict[str, str] = {}

    async def start(self) -> None:
        if self.voting:
            self._subs.append(await self.bus.subscribe(self.subjects.propose, self._on_propose))
        wanted = None if self.executes else self._leased.__contains__
        self._watches.append(self.log.watch_decisions(self._on_decided, wanted))
        self._watches.append(
            self.log.watch_executions(self.state.executed, self._leased.__contains__)
        )
        if self.executes:
            for decided in await self.log.all_decided():
                self._maybe_execute(decided)
        await self.bus.flush()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop taking proposals; let running executions finish (up to `timeout`, by
        default the execution budget), then cancel them (their claims stay RUNNING)."""
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()
        for watch in self._watches:
            watch.cancel()
        self._watches.clear()
        running = list(self._executing.values())
        if running:
            wait = self.state.settings.execution_budget_s if timeout is None else timeout
            _, pending = await asyncio.wait(running, timeout=wait)
            for task in pending:
                task.cancel()

    def status(self) -> dict[str, Any]:
        return {
            "voter": self.voting,
            "executes": dict(self.executes),
            "leases": len(self.state.locks),
            "executing": len(self._executing),
            "identities": self.bus.verifier is not None,
            **self.stats,
            **{f"refused_{reason}": n for reason, n in self.log.refused.items()},
        }

    # -- voting -------------------------------------------------------------------------

    async def _on_propose(self, msg: Message) -> None:
        try:
            propose = Propose.from_wire(msg.body)
        except ConsensusDecodeError as exc:
            self._refuse("malformed", msg, exc)
            return
        proposal = propose.proposal
        if proposal.proposer != msg.sender:
            self._refuse("not_its_proposer", msg, proposal.proposer)
            return
        if not self.subjects.is_ballot(propose.reply):
            self._refuse("bad_reply_subject", msg, propose.reply)
            return
        before = self.state.ballot(proposal.id)
        if self._ballots is None:
            self._ballots = GroupCommit(
                self._send_ballots, max_items=MAX_BATCH, on_error=self._ballots_failed
            )
        # a ballot that goes at once is signed alone, as it is made; one that will wait for
        # the next group is signed with the group's others
        alone = not self._ballots.in_flight(propose.reply)
        context = self.context(proposal)
        answer = self.log.decided(proposal.id) or self.state.vote(proposal, context, sign=alone)
        if answer is None:
            self.stats["too_late"] += 1
            return
        if proposal.resource is not None and self.state.holds(proposal.id, now_ms=epoch_ms()):
            self._lease(proposal.id)  # before the ballot goes: its decision may come soon
        # Pipelined, never delayed: a lone ballot goes at once; those made while it is in
        # flight (the rest of a batch of proposals) go together next turn, signed once.
        sent = self._ballots.submit(propose.reply, answer)
        if sent is not None:
            await sent
        if isinstance(answer, Vote) and answer is not before:
            self.stats[f"voted_{answer.choice}"] += 1
            await _call(self.on_vote, proposal, self.state.ballot(proposal.id) or answer)

    def _send_ballots(self, reply: str, answers: Sequence[Vote | Decided]) -> Awaitable[None]:
        """One frame of ballots to one proposer, its new votes signed together."""
        signed: dict[str, Vote] = {}
        identity = self.state.identity
        if identity is not None:
            fresh = {a.proposal_id: a for a in answers if isinstance(a, Vote) and not a.sig}
            for vote in sign_votes(identity, list(fresh.values())) if fresh else ():
                self.state.keep_signed(vote)
                signed[vote.proposal_id] = vote
        bodies = [
            Ballot(decided=a).to_wire()
            if isinstance(a, Decided)
            else Ballot(vote=signed.get(a.proposal_id, a)).to_wire()
            for a in answers
        ]
        return self.bus.publish_group(reply, bodies, kind="ballot")

    def _ballots_failed(self, reply: str, answers: Sequence[object], exc: BaseException) -> None:
        # the proposer's round ends at its deadline without them; asked again, the voter
        # sends the kept ballots
        self.stats["ballots_not_sent"] += len(answers)
        log.warning("%s: %d ballots to %s not sent: %s", self.id, len(answers), reply, exc)

    def _lease(self, proposal_id: str) -> None:
        """Watch the log records of a proposal this voter holds a lease for (bounded)."""
        self._leased[decision_key(proposal_id)] = proposal_id
        self._leased[execution_key(proposal_id)] = proposal_id
        while len(self._leased) > 2 * self.state.settings.memory:
            del self._leased[next(iter(self._leased))]

    def _on_decided(self, decided: Decided) -> None:
        # the log hands over only decisions that follow from their (verified) ballots
        if not self.state.decided(decided):  # its lease stays; an executor checks anew
            self.stats["refused_decision_of_another_proposer"] += 1
        self._maybe_execute(decided)

    def _refuse(self, reason: str, msg: Message, detail: object) -> None:
        self.stats[f"refused_{reason}"] += 1
        log.debug("%s refused a %s from %s: %s (%s)", self.id, msg.kind, msg.sender, reason, detail)

    # -- executing ----------------------------------------------------------------------

    def _maybe_execute(self, decided: Decided) -> None:
        executor = decided.executor
        if (
            executor is None
            or executor.agent != self.id
            or decided.decision.outcome is not Outcome.COMMITTED
            or decided.id in self._executing
        ):
            return
        task = asyncio.ensure_future(self._execute(decided, executor))
        self._executing[decided.id] = task
        task.add_done_callback(lambda _: self._executing.pop(decided.id, None))

    async def _execute(self, decided: Decided, executor: Executor) -> None:
        try:
            # never twice: claimed or done by this executor (the log hands over only records
            # their executor signed; another agent's claim is not this decision's)
            if self._has_run(decided.id):
                self.stats["refused_already_executed"] += 1
                return
            claimed = self.log.execution(decided.id)
            if claimed is None or claimed.executor != self.id:
                await self._run_once(decided, executor)
        except AmcpError as exc:  # the log failed; the claim (if any) stays
            log.error("execution of %s on %s: %s", decided.id, self.id, exc)

    async def _run_once(self, decided: Decided, executor: Executor) -> Execution:
        started = epoch_ms()
        base = {"proposal_id": decided.id, "executor": self.id, "tool": executor.tool}
        refusal = self._refusal(decided, executor, started)
        if refusal is not None:
            state, why = refusal
            final = Execution(
                **base, state=state, started_ms=started, finished_ms=started, error=why
            )
        else:
            if self.log.decided(decided.id) is None:  # its proposer may have died before
                await self.log.record(decided, write="local", timeout=self.record_timeout)
            self._ran[decided.id] = self._window_end_ms(decided)
            claim = Execution(**base, state=ExecState.RUNNING, started_ms=started)
            claim = sign_execution(self.bus.identity, claim)
            await self.log.record_execution(claim, write="local", timeout=self.record_timeout)
            try:
                result = await self.run(executor, decided)  # type: ignore[misc]
                final = Execution(
                    **base, state=ExecState.DONE, started_ms=started, finished_ms=epoch_ms(),
                    result=result,
                )  # fmt: skip
            except Exception as exc:
                error = str(exc) if isinstance(exc, AmcpError) else f"{type(exc).__name__}: {exc}"
                final = Execution(
                    **base, state=ExecState.FAILED, started_ms=started, finished_ms=epoch_ms(),
                    error=error[:MAX_REASON_LENGTH],
                )  # fmt: skip
        final = sign_execution(self.bus.identity, final)  # the tool's result with it
        self.stats[f"executed_{final.state}"] += 1
        level = self.record or default_concern(self.log.store)
        try:
            await self.log.record_execution(final, write=level, timeout=self.record_timeout)
        except WriteConcernError as exc:
            log.warning("execution of %s not recorded %s: %s", decided.id, level, exc)
        await _call(self.on_execution, final)
        return final

    def _window_end_ms(self, decided: Decided) -> int:
        return self.state.settings.lease_end_ms(decided.judged_deadline_ms)

    def _has_run(self, proposal_id: str) -> bool:
        """Whether this executor ran `proposal_id` within a window still open (windows
        that ended are forgotten: such a decision is refused as expired anyway)."""
        now = epoch_ms()
        while self._ran and next(iter(self._ran.values())) < now:  # about in window order
            del self._ran[next(iter(self._ran))]
        return proposal_id in self._ran

    def _refusal(
        self, decided: Decided, executor: Executor, now_ms: int
    ) -> tuple[ExecState, str] | None:
        """Why this executor must not run the decision, or None."""
        if executor.tool != self.executes.get(decided.proposal.action):
            return ExecState.REFUSED, (
                f"{self.id} does not execute {decided.proposal.action} with {executor.tool}"
            )
        # from the deadline its ballots were cast on: a record rewritten with a later one
        # (to run it again once the log has forgotten it) gets no new window
        window = self._window_end_ms(decided)
        if now_ms > window:
            return ExecState.EXPIRED, f"the execution window ended {now_ms - window} ms ago"
        roll = self.log.roll()
        designated = roll.executors.get(decided.proposal.action)
        if self.bus.verifier is not None and not decided.sig and designated != executor:
            # the ballots do not sign who runs it: unsigned, the executor is anyone's word
            # (a key holder could hand a commit another executor already ran to this one),
            # so it must be the one this cluster's roll names, as its proposer's was
            self.stats["refused_unsigned_executor"] += 1
            return ExecState.REFUSED, (
                f"an unsigned decision names {executor.agent} to run "
                f"{decided.proposal.action}; the roll here names "
                f"{designated.agent if designated else 'no executor'}"
            )
        voters = list(roll.voters)
        # re-derived from the ballots (verified ones, with identities on) among this
        # executor's own roll of voters (verified member records)
        why = refusal(self.bus.verifier, decided, voters)
        if why is not None:
            self.stats[f"refused_{why}"] += 1
            return ExecState.REFUSED, (
                f"the ballots do not commit among the {len(voters)} voters registered here ({why})"
            )
        return None


async def _call(hook: Hook | None, *args: Any) -> None:
    if hook is None:
        return
    try:
        result = hook(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("consensus hook %r failed", hook)
