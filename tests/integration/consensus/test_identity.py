"""Identity signatures in the vote, on a real nats-server: five voters, a proposer and an
executor, each with its own Ed25519 identity and one shared roster file, and an insider
(an S1 in the roster) that holds the cluster's HMAC key and its own identity. Whatever the
insider publishes in another agent's name (ballots, a decision record, an execution
claim, member records) does not count and is counted as refused with its reason; a
revoked voter's ballots stop counting after one roster reload; a replayed ballot frame is
refused by the replay window as before."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest

from amcp import Bus, Keyring, NatsServer
from amcp.attest import sign, sign_record, unsigned
from amcp.identity import Identity
from amcp.roster import Roster, RosterEntry
from consensus import (
    VOTERS_KEY,
    Ballot,
    Coordination,
    Coordinator,
    Decided,
    DecisionLog,
    ExecState,
    Execution,
    Executor,
    Outcome,
    Propose,
    Vote,
    VoterService,
    VoterSettings,
    VoterState,
)
from consensus.model import Decision
from consensus.quorum import parse_quorum
from consensus.record import decision_key, execution_key
from consensus.tally import tally
from crdt.store import ContextStore
from crdt.wire import pack
from tests.support.waiting import wait_until

FIVE = ("v1", "v2", "v3", "v4", "v5")
ROLES = {
    **{v: {"s5"} for v in FIVE},
    "proposer": {"s3"},
    "x1": {"s1"},
    "x2": {"s1"},
    "s1-x": {"s1"},
}


class IdCluster:
    """Agents of one test on their own buses and in-memory replicas, in a fresh cluster
    namespace, each signing with its own identity and checking against one roster file.
    Member records are written (signed) here, as the agent runtime writes them."""

    def __init__(self, url: str, keyring: Keyring, tmp: Path) -> None:
        self.url = url
        self.keyring = keyring
        self.cluster = f"c{uuid.uuid4().hex[:8]}"
        self.ids = {name: Identity.generate(name) for name in ROLES}
        self.roster_path = tmp / "roster.json"
        roster = Roster(
            RosterEntry(n, i.public_key, frozenset(ROLES[n])) for n, i in self.ids.items()
        )
        roster.save(self.roster_path)
        self.services: dict[str, VoterService] = {}
        self.runs: list[str] = []
        self._buses: list[Bus] = []
        self._stores: list[ContextStore] = []
        self._coordinators: list[Coordinator] = []

    async def bus(self, sender: str, *, identity: bool = True) -> Bus:
        """A bus sending as `sender`, with its identity unless not asked (the insider's
        frames in another's name: the cluster key signs them, no identity of that name)."""
        bus = await Bus.connect(
            self.url,
            keyring=self.keyring,
            sender=sender,
            cluster=self.cluster,
            identity=self.ids[sender] if identity else None,
            roster=Roster.load(self.roster_path),
        )
        self._buses.append(bus)
        return bus

    async def store(self, bus: Bus) -> ContextStore:
        store = await ContextStore.open(bus, bootstrap_timeout=0.5)
        self._stores.append(store)
        return store

    async def join(self, store: ContextStore, agent: str, **record: Any) -> None:
        doc = {"id": agent, "role": sorted(ROLES[agent])[0], "voter": False, "extra": {}}
        await store.map_set(VOTERS_KEY, agent, sign_record(self.ids[agent], "member", doc | record))

    async def voter(self, agent: str, *, serve: bool = True) -> None:
        """A registered voter; with `serve` False it never answers (as if crashed)."""
        bus = await self.bus(agent)
        store = await self.store(bus)
        await self.join(store, agent, voter=True)
        if serve:
            self.services[agent] = VoterService(bus, store)
            await self.services[agent].start()

    async def executor(self, budget_s: float | None = None, name: str = "x1") -> VoterService:
        """x1 (or `name`), a declared executor of `restart`: its runs are counted in
        `runs` (`budget_s`: its execution budget, else the default)."""

        async def run(executor: Executor, decided: Decided) -> dict[str, int]:
            self.runs.append(decided.id)
            return {"runs": len(self.runs)}

        bus = await self.bus(name)
        store = await self.store(bus)
        await self.join(store, name, extra={"executes": {"restart": "apply"}})
        settings = (
            VoterSettings() if budget_s is None else VoterSettings(execution_budget_s=budget_s)
        )
        state = VoterState(name, settings=settings, identity=self.ids[name])
        service = VoterService(
            bus, store, vote=False, executes={"restart": "apply"}, run=run, state=state
        )
        await service.start()
        self.services[name] = service
        return service

    async def coordinator(self, voters: int = 5) -> Coordinator:
        coordinator = await Coordinator.open(await self.bus("proposer"), bootstrap_timeout=0.5)
        self._coordinators.append(coordinator)
        await wait_until(lambda: len(coordinator.voters()) == voters, 10, what=f"{voters} voters")
        return coordinator

    async def close(self) -> None:
        for coordinator in self._coordinators:
            await coordinator.close()
        for service in self.services.values():
            await service.stop(timeout=1)
        for store in self._stores:
            await store.close()
        for bus in self._buses:
            await bus.close()


@pytest.fixture
async def ids(
    nats_server: NatsServer, keyring: Keyring, tmp_path: Path
) -> AsyncIterator[IdCluster]:
    cluster = IdCluster(nats_server.url, keyring, tmp_path)
    yield cluster
    await cluster.close()


def signed_by(identity: Identity, vote: Vote) -> Vote:
    """`vote` (in another voter's name) signed with `identity`'s own key."""
    return dataclasses.replace(vote, sig=sign(identity, "ballot", unsigned(vote.to_wire())))


async def test_a_majority_that_needs_a_forged_ballot_does_not_commit(
    ids: IdCluster, nats_server: NatsServer
) -> None:
    """v1 and v2 vote yes, v3..v5 are silent: the insider's ballots in v3's and v4's names
    (unsigned, and signed with its own key) would make the third yes of five."""
    for v in FIVE:
        await ids.voter(v, serve=v in ("v1", "v2"))
    coordinator = await ids.coordinator()
    as_v3 = await ids.bus("v3", identity=False)  # frames in v3's name under the cluster key
    as_v4 = await ids.bus("v4", identity=False)
    raw = await nats.connect(nats_server.url)
    frames: list[Any] = []  # genuine ballot frames, as the wire carries them
    ballots: list[Vote] = []  # and what they say
    attacks: list[asyncio.Task[None]] = []

    async def capture(m: Any) -> None:
        frames.append(m)

    ballot_subjects = as_v3.subjects.area("vote", "ballot", "*")
    await raw.subscribe(ballot_subjects, cb=capture)
    await raw.flush()
    await as_v4.subscribe(ballot_subjects, lambda m: ballots.append(Ballot.from_wire(m.body).vote))

    async def attack(propose_msg: Any) -> None:
        propose = Propose.from_wire(propose_msg.body)
        await wait_until(lambda: frames and ballots, 5, what="a genuine ballot on the wire")
        copied = ballots[0]
        assert copied.sig and copied.voter in ("v1", "v2")  # identity-signed
        forged = dataclasses.replace(copied, voter="v3", sig=b"")
        await as_v3.publish(propose.reply, Ballot(vote=forged).to_wire(), kind="ballot")
        signed = signed_by(ids.ids["s1-x"], dataclasses.replace(copied, voter="v4"))
        await as_v4.publish(propose.reply, Ballot(vote=signed).to_wire(), kind="ballot")
        await raw.publish(propose.reply, frames[0].data)  # a signed frame replayed
        await raw.flush()

    await as_v3.subscribe(
        as_v3.subjects.area("vote", "propose"),
        lambda m: attacks.append(asyncio.ensure_future(attack(m))),
    )
    await as_v3.flush()
    result = await coordinator.coordinate("restart", timeout=2)
    await raw.close()
    assert attacks and attacks[0].done() and attacks[0].exception() is None
    assert result.outcome is Outcome.NO_QUORUM
    assert sorted(v.voter for v in result.decision.votes) == ["v1", "v2"]
    assert result.refused == {"identity_bad_signature": 2}
    assert coordinator.bus.rejections.get("replay", 0) >= 1, coordinator.bus.rejections


async def insider_log(ids: IdCluster) -> tuple[ContextStore, DecisionLog]:
    """The insider's own replica of the shared context (it holds the cluster key) and an
    unchecking reader of its decision log."""
    store = await ids.store(await ids.bus("s1-x"))
    return store, DecisionLog(store)


async def a_commit_run(
    ids: IdCluster, timeout: float = 10, budget_s: float | None = None
) -> tuple[VoterService, Coordination]:
    """Five voters and the executor x1 (`budget_s`), and a commit of `restart` it ran."""
    for v in FIVE:
        await ids.voter(v)
    executor = await ids.executor(budget_s)
    coordinator = await ids.coordinator()
    genuine = await coordinator.coordinate("restart", {"targets": ["w1"]}, timeout=timeout)
    assert genuine.outcome is Outcome.COMMITTED and genuine.execution is not None
    assert genuine.execution.state is ExecState.DONE and genuine.execution.executor == "x1"
    return executor, genuine


async def insiders_copy(ids: IdCluster, pid: str) -> tuple[ContextStore, Decided]:
    """The insider's replica and its copy of the genuine record of `pid`, once it has it."""
    store, log = await insider_log(ids)
    await wait_until(lambda: log.decided(pid) is not None, 5, what="the genuine record")
    copied = log.decided(pid)
    assert copied is not None
    return store, copied


async def test_a_forged_decision_record_runs_nothing(ids: IdCluster) -> None:
    """The insider copies a genuine committed record to a new proposal id (its ballots
    then forged) and writes it into the decision log: the executor runs nothing."""
    executor, genuine = await a_commit_run(ids)
    assert genuine.execution is not None and genuine.execution.sig
    pid = genuine.proposal.id
    store, copied = await insiders_copy(ids, pid)
    assert copied.by == "proposer" and copied.executor is not None
    new = f"forged-{uuid.uuid4().hex[:6]}"
    proposal = dataclasses.replace(copied.proposal, id=new)
    on_new = {"proposal_id": new, "proposal_digest": proposal.digest}
    votes = tuple(dataclasses.replace(v, **on_new) for v in copied.decision.votes)
    forged = Decided(  # unsigned, as a proposer without an identity writes it
        proposal=proposal,
        decision=dataclasses.replace(copied.decision, proposal_id=new, votes=votes),
        executor=copied.executor,
        decided_ms=copied.decided_ms,
    )
    await store.set(decision_key(new), pack(forged.to_wire()), ttl=3600)
    refused = "refused_decision_identity_unverified_ballots"
    await wait_until(lambda: executor.status().get(refused, 0) >= 1, 5, what="its refusal")
    assert ids.runs == [pid]
    assert executor.log.decided(new) is None and executor.log.execution(new) is None
    assert not executor.status()["executing"]


def another_version(
    decided: Decided,
    decision: Decision | None = None,
    executor: Executor | None = None,
    **changes: Any,
) -> bytes:
    """The wire form an insider writes: `decided`'s genuine signed ballots (or `decision`'s)
    under its proposal with `changes`, unsigned, as a proposer without an identity writes
    it (the Decided class refuses to build such a record, so it is assembled by hand)."""
    wire = decided.to_wire()
    wire["proposal"] |= changes
    if decision is not None:
        wire["decision"] = decision.to_wire()
    if executor is not None:
        wire["executor"] = executor.to_wire()
    wire["decision"]["quorum"] = wire["proposal"]["quorum"]
    wire["by"], wire["sig"] = "", b""
    return pack(wire)


async def test_genuine_ballots_commit_no_other_version_of_their_proposal(ids: IdCluster) -> None:
    """The insider keeps a commit's genuine signed ballots and rewrites the proposal they
    were cast on: another payload or resource, a lower quorum. Each version is refused as
    malformed (the ballots' proposal digest is not its proposal's) and only the genuine
    action runs."""
    executor, genuine = await a_commit_run(ids)
    pid = genuine.proposal.id
    store, copied = await insiders_copy(ids, pid)
    versions: list[dict[str, Any]] = [
        {"payload": {"targets": "*"}},
        {"payload": {"targets": ["w1"], "force": True}},
        {"resource": "db"},
        {"quorum": "1"},
    ]
    for n, changes in enumerate(versions, start=1):
        await store.set(decision_key(pid), another_version(copied, **changes), ttl=3600)
        await wait_until(
            lambda n=n: executor.log.refused["decision_malformed"] >= n, 5, what=f"version {n}"
        )
        assert executor.log.decided(pid) is None
    assert ids.runs == [pid] and not executor.status()["executing"]


async def test_a_no_quorum_vote_cannot_be_turned_into_a_commit(ids: IdCluster) -> None:
    """Two of five registered voters answer, so the genuine vote ends with no quorum. The
    insider takes the two signed yes ballots from the log and writes a commit of them
    with a quorum of 2 and another payload: refused, nothing runs."""
    for v in FIVE:
        await ids.voter(v, serve=v in ("v1", "v2"))
    executor = await ids.executor()
    coordinator = await ids.coordinator()
    genuine = await coordinator.coordinate("restart", {"targets": ["w1"]}, timeout=1.5)
    assert genuine.outcome is Outcome.NO_QUORUM and genuine.decision.summary.yes == 2
    pid = genuine.proposal.id
    store, copied = await insiders_copy(ids, pid)
    counted = tally(pid, FIVE, parse_quorum("2"), copied.decision.votes, closed=True)
    assert counted.outcome is Outcome.COMMITTED  # what the ballots would prove under "2"
    commit = Decision(
        proposal_id=pid,
        outcome=counted.outcome,
        quorum="2",
        members=FIVE,
        votes=counted.votes,
        summary=counted.summary,
    )
    x1 = Executor("x1", "apply")
    forged = another_version(copied, commit, x1, quorum="2", payload={"targets": "*"})
    await store.set(decision_key(pid), forged, ttl=3600)
    await wait_until(lambda: executor.log.refused["decision_malformed"] >= 1, 5, what="refusal")
    assert ids.runs == [] and executor.log.decided(pid) is None


async def test_a_decision_handed_over_again_does_not_run_twice(ids: IdCluster) -> None:
    """The insider overwrites the executor's claim with junk and writes the genuine record
    again: within the execution window the executor remembers its run; after it, with the
    record's deadline moved an hour later, the window still counts from the deadline the
    ballots were cast on, so it is refused as expired. The action ran once."""
    executor, genuine = await a_commit_run(ids, timeout=5, budget_s=0.5)
    pid = genuine.proposal.id
    store, copied = await insiders_copy(ids, pid)
    await store.set(execution_key(pid), b"junk", ttl=3600)
    await wait_until(lambda: executor.log.execution(pid) is None, 5, what="the claim junked")
    await store.set(decision_key(pid), another_version(copied), ttl=3600)
    await wait_until(
        lambda: executor.status().get("refused_already_executed", 0) >= 1, 5, what="a refusal"
    )
    window_end = copied.judged_deadline_ms + 500
    assert time.time_ns() // 1_000_000 < window_end  # that was within the window
    await wait_until(lambda: time.time_ns() // 1_000_000 > window_end, 10, what="the window")
    now = time.time_ns() // 1_000_000
    later = another_version(copied, created_ms=now, deadline_ms=now + 3_600_000)
    await store.set(decision_key(pid), later, ttl=3600)
    await wait_until(lambda: executor.status().get("executed_expired", 0) >= 1, 5, what="expiry")
    assert ids.runs == [pid]


async def test_an_unsigned_commit_handed_to_another_executor_does_not_run(ids: IdCluster) -> None:
    """x1 and x2 both execute `restart`; the roll names x1 (the lower id), and x1 ran the
    commit. The insider strips the proposer's signature and names x2 as the executor (the
    ballots do not sign who runs it): x2 refuses an unsigned decision that does not name
    the executor the roll names, so the action ran once."""
    _, genuine = await a_commit_run(ids)
    x2 = await ids.executor(name="x2")
    pid = genuine.proposal.id
    store, copied = await insiders_copy(ids, pid)
    assert copied.sig
    await store.set(
        decision_key(pid), another_version(copied, executor=Executor("x2", "apply")), ttl=3600
    )
    await wait_until(
        lambda: x2.status().get("refused_unsigned_executor", 0) >= 1, 5, what="x2's refusal"
    )
    assert ids.runs == [pid]


async def test_a_forged_claim_does_not_block_the_genuine_execution(ids: IdCluster) -> None:
    """Before the vote, the insider writes a RUNNING claim in the executor's name for the
    proposal id: the executor ignores it, runs the action once and acknowledges."""
    for v in FIVE:
        await ids.voter(v)
    executor = await ids.executor()
    coordinator = await ids.coordinator()
    store, _ = await insider_log(ids)
    pid = f"job-{uuid.uuid4().hex[:6]}"
    claim = Execution(proposal_id=pid, executor="x1", tool="apply", state="running", started_ms=1)
    await store.set(execution_key(pid), pack(claim.to_wire()), ttl=3600)
    await wait_until(
        lambda: executor.log.store.local(execution_key(pid)) is not None, 5, what="the claim"
    )
    assert executor.log.execution(pid) is None
    result = await coordinator.coordinate("restart", {"targets": ["w2"]}, proposal_id=pid)
    assert result.outcome is Outcome.COMMITTED
    assert result.execution is not None and result.execution.state is ExecState.DONE
    assert result.execution.executor == "x1" and ids.runs == [pid]
    assert executor.status()["refused_execution_identity_bad_signature"] >= 1


async def test_member_records_make_no_ghost_voter_and_no_insider_voter(ids: IdCluster) -> None:
    for v in FIVE:
        await ids.voter(v)
    coordinator = await ids.coordinator()
    store, _ = await insider_log(ids)
    ghost = {"id": "ghost", "role": "s5", "voter": True, "extra": {}}
    await store.map_set(VOTERS_KEY, "ghost", ghost)  # what `amcp ctx set` could write
    await ids.join(store, "s1-x", role="s5", voter=True)  # signed, in a role not granted
    refused = coordinator.log.refused
    await wait_until(
        lambda: (
            coordinator.voters() is not None
            and refused["member_identity_malformed"] == 1
            and refused["member_identity_role_not_allowed"] == 1
        ),
        5,
        what="both records refused",
    )
    await ids.join(store, "s1-x", voter=True)  # its own granted role s1: a member, no voter
    await wait_until(
        lambda: (
            "s1-x" in (coordinator.log.store.local(VOTERS_KEY) or {})
            and coordinator.log.store.local(VOTERS_KEY)["s1-x"]["role"] == "s1"
        ),
        5,
        what="the insider's s1 record",
    )
    assert coordinator.voters() == list(FIVE)
    result = await coordinator.coordinate("restart", {"targets": ["w3"]})
    assert result.outcome is Outcome.COMMITTED and result.decision.members == FIVE


async def test_a_revoked_voters_ballots_stop_counting_after_one_roster_reload(
    ids: IdCluster,
) -> None:
    for v in FIVE:
        await ids.voter(v)
    coordinator = await ids.coordinator()
    before = await coordinator.coordinate("restart", {"targets": ["w4"]}, quorum="all")
    assert before.outcome is Outcome.COMMITTED and len(before.decision.votes) == 5
    roster = Roster.load(ids.roster_path)
    roster.revoke("v1")
    roster.save(ids.roster_path)
    coordinator.bus.reload_files()
    # the proposer's roll follows the roster at once (the member map did not change): v1
    # is no voter any more, so "all" means the four others, and v1's ballot counts nowhere
    assert coordinator.voters() == list(FIVE[1:])
    after = await coordinator.coordinate("restart", {"targets": ["w5"]}, quorum="all", timeout=2)
    assert after.decision.members == FIVE[1:]
    assert "v1" not in [v.voter for v in after.decision.votes]
    assert after.outcome is Outcome.COMMITTED
    assert coordinator.log.refused["member_identity_revoked"] == 1
