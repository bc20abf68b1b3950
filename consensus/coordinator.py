"""The proposer's side over a Bus: propose, gather signed ballots, decide, and record the
decision in the decision log (which announces it to every member), then wait for the
executor's acknowledgement (its execution record in the same log).

    decision = await coordinate_action(bus, "restart", {"targets": ["w1"]}, resource="w1")

    async with await Coordinator.open(bus) as coordinator:       # many decisions, one replica
        result = await coordinator.coordinate("deploy", {...}, quorum="weighted", timeout=5)
        result.decision, result.execution

One decision per proposal id: an id already in the decision log (or known to a voter) gets
the first decision back, and a committed action is executed once, by its declared executor,
which claims the execution by proposal id. The members are the registered voters in the
coordinator's replica of the shared context, crashed ones included, fixed when proposing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import consensus._validate as check
from amcp import Bus, Message, Subscription
from amcp.groupcommit import GroupCommit
from consensus.errors import ConsensusDecodeError, ConsensusError, ProposalConflict
from consensus.messages import Ballot, Decided, Execution, Executor, Propose
from consensus.model import Decision, Outcome, Proposal, Urgency, Vote, _thaw
from consensus.record import DecisionLog, DecisionRetention, Roll, default_concern, execution_key
from consensus.round import Round
from consensus.signatures import refusal, sign_decided
from consensus.subjects import ConsensusSubjects
from crdt.concern import Level, WriteResult, check_level
from crdt.errors import WriteConcernError
from crdt.hlc import epoch_ms
from crdt.store import MAX_LINGER_S, ContextStore, Watch

__all__ = ["Coordination", "Coordinator", "coordinate_action"]

log = logging.getLogger("amcp.consensus")

# A decision no member waits on is news for late voters and readers only: sharing one
# delta frame among the decisions of the next few ms saves each replica a frame per
# decision (its parse, MAC and wake-up), which in a run of decisions is most of what
# recording costs them.
ANNOUNCE_LINGER = 0.01


@dataclass(frozen=True)
class Coordination:
    """What came of one `coordinate` call.

    `replayed`: the id was decided before and this is that first decision; `execution`: the
    executor's acknowledgement (None when nothing is to run or none came in time; RUNNING
    when the executor claimed it but has not finished); `recorded`: the decision log's
    write result (None if it missed its concern); `refused`: ballots not counted, by reason.
    """

    proposal: Proposal
    decision: Decision
    executor: Executor | None
    execution: Execution | None
    replayed: bool
    recorded: WriteResult | None = None
    refused: Mapping[str, int] = field(default_factory=dict)

    @property
    def outcome(self) -> Outcome:
        return self.decision.outcome


def _same_request(a: Proposal, b: Proposal) -> bool:
    """Whether two proposals ask for the same thing (ids, proposer and times aside)."""
    return (a.action, a.resource, a.quorum, a.urgency) == (
        b.action,
        b.resource,
        b.quorum,
        b.urgency,
    ) and _thaw(a.payload) == _thaw(b.payload)


class Coordinator:
    """Proposes actions and sees them through. Open with `await Coordinator.open(bus)`.

    `record` is the write concern of the decision log (default: majority of the durable
    replicas, local when there are none); a NO_QUORUM outcome is recorded locally, since
    the majority it would wait for is the one that did not answer, and not at all when no
    members were known (the id stays free). `retention`: how
    long and how many decision records this replica keeps (DecisionRetention).
    `linger` (seconds): how long a decision recorded locally that no member waits on (no
    resource whose leases it ends, no executor) may wait to share its announcement frame
    with the next decisions; others are announced at once.
    """

    def __init__(
        self,
        bus: Bus,
        store: ContextStore,
        *,
        record: Level | None = None,
        record_timeout: float = 2.0,
        retention: DecisionRetention | None = None,
        linger: float = ANNOUNCE_LINGER,
    ) -> None:
        self.bus = bus
        self.store = store
        self.log = DecisionLog(store, retention, bus.verifier)
        self.record = None if record is None else check_level(record)
        self.record_timeout = check.positive("record_timeout", record_timeout)
        self.linger = check.nonnegative("linger", linger)
        if self.linger > MAX_LINGER_S:  # the store would refuse it at every record
            raise ConsensusError(f"linger must be at most {MAX_LINGER_S:g} s, got {linger!r}")
        self.subjects = ConsensusSubjects(bus.subjects)
        self.stats: Counter[str] = Counter()
        self._malformed_from: set[str] = set()  # senders warned of, once each (bounded below)
        self._inbox = self.subjects.ballot(secrets.token_hex(8))
        # proposal id -> its round, the future of its outcome, whether the id is a new uuid
        self._rounds: dict[str, tuple[Round, asyncio.Future[Decision | Decided], bool]] = {}
        # execution log key -> (executor agent, waiter) of committed proposals awaiting it
        self._acks: dict[str, list[tuple[str, asyncio.Future[Execution]]]] = {}
        self._on_ballot_of: dict[str, Callable[[Vote], None]] = {}  # proposal id -> watcher
        self._watches: list[Watch] = []
        self._roll: Roll | None = None  # cached until the member map or the roster changes
        self._roll_roster = -1  # the roster generation the cached roll was read under
        self._inflight: dict[str, tuple[Proposal, asyncio.Future[Coordination]]] = {}
        self._subs: list[Subscription] = []
        self._proposals: GroupCommit[Any] | None = None  # made in the loop
        self._owns_store = False

    @classmethod
    async def open(
        cls,
        bus: Bus,
        *,
        store: ContextStore | None = None,
        bootstrap_timeout: float = 2.0,
        **options: Any,
    ) -> Coordinator:
        """A started coordinator; without `store`, on a fresh in-memory replica (caught up
        from a peer) that it closes with itself."""
        owned = store is None
        if store is None:
            store = await ContextStore.open(bus, bootstrap_timeout=bootstrap_timeout)
        try:
            coordinator = cls(bus, store, **options)
        except BaseException:
            if owned:
                await store.close()
            raise
        coordinator._owns_store = owned
        try:
            await coordinator.start()
        except BaseException:
            await coordinator.close()
            raise
        return coordinator

    async def start(self) -> None:
        self._subs.append(await self.bus.subscribe(self._inbox, self._on_ballot))
        self._watches.append(self.log.watch_executions(self._on_execution, self._acks.__contains__))
        self._watches.append(self.log.watch_roll(self._forget_roll))
        await self.bus.flush()

    async def close(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()
        for watch in self._watches:
            watch.cancel()
        self._watches.clear()
        for _, running in list(self._inflight.values()):
            running.cancel()
        if self._owns_store:
            await self.store.close()

    async def __aenter__(self) -> Coordinator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def voters(self) -> list[str]:
        """The registered voters a proposal made now would count."""
        return list(self._current_roll().voters)

    def _current_roll(self) -> Roll:
        verifier = self.bus.verifier
        generation = -1 if verifier is None else verifier.roster.generation
        # not started: nothing invalidates it; a roster reload (a revocation) changes who
        # counts without changing the member map
        if self._roll is None or not self._watches or generation != self._roll_roster:
            self._roll = self.log.roll()
            self._roll_roster = generation
        return self._roll

    def _forget_roll(self) -> None:
        self._roll = None

    # -- coordinating -------------------------------------------------------------------

    async def coordinate(
        self,
        action: str,
        payload: Mapping[str, Any] | None = None,
        *,
        quorum: str = "majority",
        urgency: Urgency | str = Urgency.NORMAL,
        resource: str | None = None,
        timeout: float = 5.0,
        proposal_id: str | None = None,
        wait_execution: bool = True,
        on_ballot: Callable[[Vote], None] | None = None,
    ) -> Coordination:
        """Put `action` to the vote and see it through.

        The vote closes `timeout` seconds from now (NO_QUORUM then, unless decided
        earlier); a committed action with an executor is then awaited for up to `timeout`
        more seconds (`wait_execution`). `on_ballot(vote)` is called for each ballot
        counted while the vote is open (to report progress). Invalid arguments raise
        ConsensusError;
        ProposalConflict if `proposal_id` was already used for another request;
        PermissionDenied (amcp) if the bus's NATS user may not propose.
        """
        timeout = check.positive("timeout", timeout)
        now = epoch_ms()
        proposal = Proposal(
            id=uuid.uuid4().hex if proposal_id is None else proposal_id,
            action=action,
            proposer=self.bus.sender,
            created_ms=now,
            deadline_ms=now + max(1, round(timeout * 1000)),
            payload={} if payload is None else payload,
            resource=resource,
            quorum=quorum,
            urgency=urgency,
        )
        running = self._inflight.get(proposal.id)
        if running is not None:  # the same id, already being coordinated here
            _check_same(running[0], proposal)
            return await asyncio.shield(running[1])
        task = asyncio.ensure_future(
            self._coordinate(proposal, timeout, wait_execution, fresh=proposal_id is None)
        )
        self._inflight[proposal.id] = (proposal, task)
        if on_ballot is not None:
            self._on_ballot_of[proposal.id] = on_ballot
        task.add_done_callback(lambda _: self._inflight.pop(proposal.id, None))
        task.add_done_callback(lambda _: self._on_ballot_of.pop(proposal.id, None))
        return await asyncio.shield(task)

    async def _coordinate(
        self, proposal: Proposal, timeout: float, wait: bool, fresh: bool
    ) -> Coordination:
        known = None if fresh else self.log.decided(proposal.id)  # a new uuid is unused
        if known is not None:
            return await self._replay(known, proposal, timeout, wait, record=False)
        roll = self._current_roll()
        round_ = Round(
            proposal, roll.voters, now_ms=proposal.created_ms, verifier=self.bus.verifier
        )
        result: Decision | Decided | None = round_.decision
        if result is None:
            result = await self._vote(round_, fresh)
        if isinstance(result, Decided):  # a voter already knew the decision on this id
            return await self._replay(result, proposal, timeout, wait, record=True)
        committed = result.outcome is Outcome.COMMITTED
        executor = roll.executors.get(proposal.action) if committed else None
        decided = Decided(
            proposal=proposal, decision=result, executor=executor, decided_ms=epoch_ms()
        )
        decided = sign_decided(self.bus.identity, decided)  # our bus's id is the proposer
        waiter = self._ack_waiter(decided) if executor is not None and wait else None
        # Which announces it. With no members known nothing is final: recorded, it would
        # answer every later proposal of this id until the horizon.
        recorded = await self._record(decided) if roll.voters else None
        execution = await self._execution(decided, waiter, timeout)
        return Coordination(
            proposal, result, executor, execution, False, recorded, dict(round_.refused)
        )

    async def _vote(self, round_: Round, fresh: bool) -> Decision | Decided:
        proposal = round_.proposal
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Decision | Decided] = loop.create_future()
        self._rounds[proposal.id] = (round_, done, fresh)
        timer = loop.call_later(
            max(0.0, (proposal.deadline_ms - epoch_ms()) / 1000), self._expire, proposal.id
        )
        try:
            propose = Propose(proposal=proposal, reply=self._inbox)
            # a proposer whose NATS user may not propose learns it now, not at the deadline
            if self._proposals is None:
                self._proposals = GroupCommit(self._send_proposals, on_error=self._not_sent)
            with self.bus.fail_on_denial(self.subjects.propose, done):
                # Pipelined, never delayed: a lone proposal goes at once; those made while
                # it is in flight go together in the next frame (one MAC).
                sent = self._proposals.submit(self.subjects.propose, propose.to_wire())
                if sent is not None:
                    await sent
                return await done
        finally:
            timer.cancel()
            self._rounds.pop(proposal.id, None)

    def _send_proposals(self, subject: str, bodies: Sequence[Any]) -> Awaitable[None]:
        return self.bus.publish_group(subject, bodies, kind="propose")

    def _not_sent(self, subject: str, proposals: Sequence[Any], exc: BaseException) -> None:
        """A group of proposals could not be sent: their rounds fail as a lone one would."""
        for wire in proposals:
            entry = self._rounds.get(wire["proposal"]["id"])
            if entry is not None and not entry[1].done():
                entry[1].set_exception(exc)

    def _expire(self, proposal_id: str) -> None:
        entry = self._rounds.get(proposal_id)
        if entry is not None and not entry[1].done():
            entry[1].set_result(entry[0].expire(now_ms=epoch_ms()))

    async def _replay(
        self, known: Decided, requested: Proposal, timeout: float, wait: bool, *, record: bool
    ) -> Coordination:
        """The first decision on an id, and its execution (awaited if not yet final)."""
        _check_same(known.proposal, requested)
        self.stats["replayed"] += 1
        waiter = self._ack_waiter(known) if known.executor is not None and wait else None
        recorded = await self._record(known) if record else None
        execution = self.log.execution(known.id)
        if waiter is not None and (execution is None or not execution.final):
            execution = await self._execution(known, waiter, timeout)
        elif waiter is not None:
            self._drop_waiter(known.id, waiter)
        return Coordination(
            known.proposal, known.decision, known.executor, execution, True, recorded
        )

    async def _record(self, decided: Decided) -> WriteResult | None:
        level = self.record or default_concern(self.store)
        if decided.decision.outcome is Outcome.NO_QUORUM:
            level = "local"
        waited_on = decided.proposal.resource is not None or decided.executor is not None
        linger = 0.0 if waited_on else self.linger
        try:
            return await self.log.record(
                decided, write=level, timeout=self.record_timeout, linger=linger
            )
        except WriteConcernError as exc:
            log.warning("decision on %s not recorded %s: %s", decided.id, level, exc)
            return None

    # -- acknowledgements ---------------------------------------------------------------

    def _ack_waiter(self, decided: Decided) -> asyncio.Future[Execution]:
        """A future for the executor's final record, registered before it can arrive."""
        assert decided.executor is not None
        waiter: asyncio.Future[Execution] = asyncio.get_running_loop().create_future()
        self._acks.setdefault(execution_key(decided.id), []).append(
            (decided.executor.agent, waiter)
        )
        return waiter

    def _drop_waiter(self, proposal_id: str, waiter: asyncio.Future[Execution]) -> None:
        key = execution_key(proposal_id)
        waiters = [w for w in self._acks.get(key, []) if w[1] is not waiter]
        if waiters:
            self._acks[key] = waiters
        else:
            self._acks.pop(key, None)

    async def _execution(
        self, decided: Decided, waiter: asyncio.Future[Execution] | None, timeout: float
    ) -> Execution | None:
        """The executor's final acknowledgement within `timeout`, else what the log holds."""
        if waiter is not None:
            try:
                return await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                self.stats["ack_timeouts"] += 1
            finally:
                self._drop_waiter(decided.id, waiter)
        return self.log.execution(decided.id)

    # -- inbound ------------------------------------------------------------------------

    def _on_ballot(self, msg: Message) -> None:
        proposal_id = _ballot_id(msg.body)
        entry = None if proposal_id is None else self._rounds.get(proposal_id)
        if entry is None or entry[1].done():
            self.stats["malformed" if proposal_id is None else "late"] += 1
            return  # decided already (the minority's ballots), or not ours: not worth decoding
        try:
            ballot = Ballot.from_wire(msg.body)
        except ConsensusDecodeError as exc:
            self.stats["malformed"] += 1
            # once a sender at warning level: a voter of another amcp version sends only these
            if msg.sender not in self._malformed_from and len(self._malformed_from) < 1024:
                self._malformed_from.add(msg.sender)
                log.warning("ballots from %s are not counted: %s", msg.sender, exc)
            else:
                log.debug("malformed ballot from %s: %s", msg.sender, exc)
            return
        # the id peeked above is the decoded ballot's, and nothing ran in between
        round_, done, fresh = entry
        if ballot.decided is not None:
            # nobody can know a decision on an id made up just now; else it must verify
            why = (
                "unverifiable_decision"
                if fresh or msg.sender not in round_.members
                else refusal(self.bus.verifier, ballot.decided)
            )
            if why is None:
                done.set_result(ballot.decided)
            else:
                round_.refused[why] += 1
            return
        assert ballot.vote is not None
        counted = len(round_.votes)
        decision = round_.offer(ballot.vote, msg.sender, now_ms=epoch_ms())
        watcher = self._on_ballot_of.get(ballot.proposal_id)
        if watcher is not None and len(round_.votes) > counted:
            try:
                watcher(ballot.vote)
            except Exception:  # a watcher's fault must not cost the vote
                log.exception("on_ballot watcher of %s failed", ballot.proposal_id)
        if decision is not None:
            done.set_result(decision)

    def _on_execution(self, execution: Execution) -> None:
        if not execution.final:
            return
        for agent, waiter in self._acks.get(execution_key(execution.proposal_id), []):
            if agent == execution.executor and not waiter.done():
                waiter.set_result(execution)


def _ballot_id(body: Any) -> str | None:
    """The proposal id a ballot is about, read without decoding it (None if malformed)."""
    try:
        found = body["vote"]["proposal_id"] if body["vote"] is not None else None
        if found is None:
            found = body["decided"]["proposal"]["id"]
    except (KeyError, TypeError):
        return None
    return found if isinstance(found, str) else None


def _check_same(first: Proposal, again: Proposal) -> None:
    if not _same_request(first, again):
        raise ProposalConflict(
            f"proposal id {again.id!r} was already used for another request "
            f"({first.action} on {first.resource or 'no resource'}); use a new id"
        )


async def coordinate_action(
    bus: Bus,
    action: str,
    payload: Mapping[str, Any] | None = None,
    *,
    quorum: str = "majority",
    urgency: Urgency | str = Urgency.NORMAL,
    resource: str | None = None,
    timeout: float = 5.0,
    proposal_id: str | None = None,
) -> Decision:
    """Put one critical action to the vote of the registered voters and return the Decision.

    Opens a short-lived Coordinator on `bus` (keep a Coordinator for many decisions). A
    committed action with a declared executor has run, or its acknowledgement was awaited
    for `timeout` seconds, when this returns; Coordinator.coordinate also reports it.
    """
    coordinator = await Coordinator.open(bus)
    try:
        result = await coordinator.coordinate(
            action,
            payload,
            quorum=quorum,
            urgency=urgency,
            resource=resource,
            timeout=timeout,
            proposal_id=proposal_id,
        )
    finally:
        with contextlib.suppress(Exception):
            await coordinator.close()
    return result.decision
