"""Issue 16's three attacks as written, end to end on `amcp cluster up`'s cluster (three
routed nats-servers, the default agents, identities and roster as `cluster up` provisions
them, and an executor of `restart` the operator added to the roster): the insider holds
what a compromised S1 holds, the s1 NATS user's password, the cluster keyring and the
s1-1 agent's own identity.

(a) A committed decision record for a new proposal id, its shape copied from a genuine
    one, published as a CRDT delta (as copied; signed by the insider as its proposer; with
    the insider as the only member and its own, genuinely signed, ballot): the executor
    runs none of them (at most it records, signed, that it refused one), counts each
    refusal, and still runs the genuine decision after them.
(b) `amcp ctx set agents.members ... --field ghost-voter` (and the insider's own record,
    signed with its key, claiming a vote): the roll does not change, the next vote counts
    three voters, no ghost.
(c) An audit entry in s5-1's name with a far-future epoch (unsigned, and signed with the
    insider's key): `amcp log` marks it unverified, and s5-1's later genuine entries stay
    visible and verified.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.cluster import LocalCluster
from agents.cluster.topology import AgentSlot
from agents.process.child import AgentProcess
from agents.runtime.client import AgentClient
from agents.runtime.subjects import AgentSubjects
from amcp import Bus
from amcp.attest import sign_batch, sign_record
from amcp.errors import AmcpError
from amcp.identity import Identity
from amcp.protocol import Sealer
from amcp.roster import Roster
from consensus import VOTERS_KEY, Decided, DecisionLog, ExecState, Outcome, Proposal, Vote
from consensus.quorum import parse_quorum
from consensus.record import decision_key
from consensus.signatures import sign_decided, sign_vote
from consensus.tally import tally
from crdt.store import ContextStore
from tests.support.cli import amcp, amcp_async
from tests.support.cluster import cluster_up, env_of
from tests.support.waiting import wait_until

NAME = "insider"
VOTERS = ["s5-1", "s5-2", "s5-3"]
EXECUTOR = "s1-x"  # the executor of `restart`, added by the operator as the README says
INSIDER = "s1-1"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with cluster_up(tmp_path_factory.mktemp("insider") / "cluster", NAME) as folder:
        yield folder


@pytest.fixture(scope="module")
def executor(data_dir: Path) -> Iterator[AgentProcess]:
    """s1-x, enrolled with `amcp keys identity new` into the cluster's roster, runs the
    `echo` tool when a quorum commits `restart`."""
    cluster = LocalCluster.load(data_dir)
    key = cluster.secrets.identities.path(EXECUTOR)
    made = amcp(
        "keys", "identity", "new", EXECUTOR, "--roles", "s1", "--out", str(key),
        "--roster", str(cluster.secrets.identities.roster),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    slot = AgentSlot(EXECUTOR, "s1", 0)
    args = ["--capability", "echo", "--executes", "restart=echo"]
    with cluster.agent_process(slot, args) as proc:
        yield proc


async def _connect(data_dir: Path, user: str, sender: str, **options: Any) -> Bus:
    cluster = LocalCluster.load(data_dir)
    roster = Roster.load(cluster.secrets.roster)  # type: ignore[arg-type]
    return await cluster.connect(user, sender=sender, roster=roster, **options)


async def _insider(data_dir: Path) -> tuple[Bus, Identity]:
    """The compromised S1: its NATS user, the keyring, s1-1's own identity."""
    secrets = LocalCluster.load(data_dir).secrets
    identity = Identity.load(secrets.identity(INSIDER))  # type: ignore[arg-type]
    return await _connect(data_dir, "s1", INSIDER, identity=identity), identity


async def _coordinate(data_dir: Path) -> dict[str, Any]:
    argv = ["coordinate", "--action", "restart", "--payload", '{"text": "restart"}']
    done = await amcp_async(*argv, "--timeout", "10", "--json", env=env_of(data_dir))
    assert done.returncode == 0, (done.stdout[-1500:], done.stderr)
    return json.loads(done.stdout)


async def _own_stats(bus: Bus, agent: str) -> dict[str, Any]:
    """`agent`'s stats as it reports them itself (its `members` tool), not as another
    agent last heard them."""
    try:
        view = (await AgentClient(bus, timeout=2).call(agent, "members")).output
    except AmcpError:
        return {}
    return next((m["stats"] for m in view["members"] if m["id"] == agent), {})


def _relabel(vote: Vote, proposal: Proposal, proposal_id: str) -> Vote:
    """`vote` moved to `proposal` under another id (its request digest with it)."""
    moved = dataclasses.replace(proposal, id=proposal_id)
    return dataclasses.replace(vote, proposal_id=proposal_id, proposal_digest=moved.digest)


def _forge(genuine: Decided, insider: Identity) -> dict[str, Decided]:
    """Committed decisions on new proposal ids, shaped after `genuine`."""
    forged: dict[str, Decided] = {}

    def decided(pid: str, proposer: str, members: tuple[str, ...], votes: list[Vote]) -> Decided:
        proposal = dataclasses.replace(genuine.proposal, id=pid, proposer=proposer)
        result = tally(pid, members, parse_quorum(genuine.decision.quorum), votes, closed=True)
        assert result.outcome is Outcome.COMMITTED  # self-consistent: only identities stop it
        decision = dataclasses.replace(
            genuine.decision,
            proposal_id=pid,
            members=members,
            votes=tuple(votes),
            summary=result.summary,
        )
        return Decided(
            proposal=proposal,
            decision=decision,
            executor=genuine.executor,
            decided_ms=int(time.time() * 1000),
        )

    pid = f"copied-{uuid.uuid4().hex[:8]}"  # as copied: the ballots' signatures no longer fit
    votes = [_relabel(v, genuine.proposal, pid) for v in genuine.decision.votes]
    forged[pid] = decided(pid, genuine.proposal.proposer, genuine.decision.members, votes)

    pid = f"signed-{uuid.uuid4().hex[:8]}"  # the insider signs it as its proposer
    votes = [_relabel(v, genuine.proposal, pid) for v in genuine.decision.votes]
    forged[pid] = sign_decided(insider, decided(pid, INSIDER, genuine.decision.members, votes))

    pid = f"alone-{uuid.uuid4().hex[:8]}"  # every signature genuine: the insider's own vote
    mine = dataclasses.replace(
        _relabel(genuine.decision.votes[0], genuine.proposal, pid), voter=INSIDER
    )
    forged[pid] = sign_decided(
        insider, decided(pid, INSIDER, (INSIDER,), [sign_vote(insider, mine)])
    )
    return forged


async def test_a_forged_decision_record_runs_nothing(data_dir: Path, executor) -> None:
    admin = await _connect(data_dir, "admin", "observer")
    store = await ContextStore.open(admin, bootstrap_timeout=1)
    insider, identity = await _insider(data_dir)
    rogue = await ContextStore.open(insider, bootstrap_timeout=1)
    try:
        raw = DecisionLog(store)  # every record, unverified: an execution would show here
        await wait_until(lambda: raw.executor_for("restart"), 30, what="the executor declared")
        first = await _coordinate(data_dir)
        assert first["outcome"] == "committed", first
        genuine_id = first["proposal"]["id"]
        await wait_until(lambda: _done(raw, genuine_id), 20, what="the genuine execution")
        genuine = DecisionLog(store, verifier=admin.verifier).decided(genuine_id)
        assert genuine is not None and genuine.executor is not None
        assert genuine.executor.agent == EXECUTOR

        forged = _forge(genuine, identity)
        for record in forged.values():  # as CRDT deltas, from the insider's replica
            await DecisionLog(rogue).record(record, write="local", timeout=5)
        await wait_until(
            lambda: all(store.local(decision_key(k)) for k in forged), 10, what="the deltas"
        )

        later = await _coordinate(data_dir)  # the executor works through its decisions in
        assert later["outcome"] == "committed"  # order: the genuine one after them runs
        await wait_until(lambda: _done(raw, later["proposal"]["id"]), 20, what="the later one")
        # nothing ran: no claim, no outcome; at most the executor's signed word that it
        # refused (a decision whose every signature verifies, but not among its voters)
        ran = {pid: raw.execution(pid) for pid in forged}
        assert all(e is None or e.state is ExecState.REFUSED for e in ran.values()), ran

        stats: dict[str, Any] = {}

        async def refusals() -> bool:
            extensions = (await _own_stats(admin, EXECUTOR)).get("extensions", {})
            stats.clear()  # the extension is absent in a status taken mid-start
            stats.update(extensions.get("consensus", {}))
            return sum(n for k, n in stats.items() if k.startswith("refused_")) >= len(forged)

        try:
            await wait_until(refusals, 30, interval=0.5, what="the executor's refusals")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the executor's consensus stats: {stats}") from None
        counted = {k: n for k, n in stats.items() if k.startswith("refused_")}
        assert set(counted) <= {
            "refused_decision_identity_unverified_ballots",  # by its decision log
            "refused_identity_unverified_ballots",  # re-derived among its own voters
        }, counted
    finally:
        await rogue.close()
        await insider.close()
        await store.close()
        await admin.close()


def _done(log: DecisionLog, pid: str) -> bool:
    execution = log.execution(pid)
    return execution is not None and execution.state is ExecState.DONE


async def test_a_ghost_voter_does_not_enter_the_roll(data_dir: Path, executor) -> None:
    ghost = {"id": "ghost-voter", "role": "s5", "version": "1", "state": "running"}
    ghost |= {"voter": True, "capabilities": [], "tools": [], "extra": {}}
    as_s1 = env_of(data_dir, "s1")
    done = await amcp_async(
        "ctx", "set", VOTERS_KEY, json.dumps(ghost), "--field", "ghost-voter", env=as_s1
    )
    assert done.returncode == 0, done.stderr
    insider, identity = await _insider(data_dir)
    rogue = await ContextStore.open(insider, bootstrap_timeout=1)
    try:  # and its own record, signed with its own key, claiming a vote
        mine = dict(rogue.local(VOTERS_KEY)[INSIDER]) | {"voter": True}
        await rogue.map_set(VOTERS_KEY, INSIDER, sign_record(identity, "member", mine))
    finally:
        await rogue.close()
        await insider.close()

    raw = await amcp_async("ctx", "get", VOTERS_KEY, "--json", env=env_of(data_dir))
    assert raw.returncode == 0, raw.stderr
    assert "ghost-voter" in raw.stdout  # the write reached the replicas

    result = await _coordinate(data_dir)
    assert result["outcome"] == "committed"
    assert sorted(result["members"]) == VOTERS and result["summary"]["needed"] == 2
    members = await amcp_async("members", "--json", env=env_of(data_dir))
    assert members.returncode == 0, members.stderr
    listed = json.loads(members.stdout)["members"]
    assert "ghost-voter" not in {m["id"] for m in listed}
    assert sorted(m["id"] for m in listed if m["voter"]) == VOTERS


async def test_a_forged_audit_entry_is_unverified_and_hides_nothing(
    data_dir: Path, executor
) -> None:
    insider, identity = await _insider(data_dir)
    try:
        subject = AgentSubjects(insider.subjects).audit("s5-1")
        epoch = int(time.time() * 1_000_000) * 1000  # far in the future
        entry = {"ts": time.time(), "agent": "s5-1", "role": "s5", "event": "forged", "n": 1}
        bare = Sealer("s5-1", insider.keyring, epoch=epoch)
        await insider.publish_frame(subject, bare.seal(subject, [entry], "audit"))
        signed = {"entries": [entry | {"n": 2}], "sig": sign_batch(identity, [("audit", entry)])}
        later = Sealer("s5-1", insider.keyring, epoch=epoch + 1)
        await insider.publish_frame(subject, later.seal(subject, signed, "audit"))
        await insider.flush()
    finally:
        await insider.close()

    result = await _coordinate(data_dir)  # s5-1 votes after the forgeries: audit entries
    pid = result["proposal"]["id"]
    assert result["outcome"] == "committed"

    lines: list[dict[str, Any]] = []

    async def logged() -> bool:
        done = await amcp_async("log", "--agent", "s5-1", "--json", env=env_of(data_dir))
        assert done.returncode == 0, done.stderr
        lines[:] = [json.loads(line) for line in done.stdout.splitlines()]
        return any(pid in json.dumps(e) for e in lines)

    await wait_until(logged, 20, interval=0.5, what="s5-1's entry on the later vote")
    forged = [e for e in lines if e.get("event") == "forged"]
    assert len(forged) == 2 and not any(e["verified"] for e in forged)
    after = lines[max(i for i, e in enumerate(lines) if e.get("event") == "forged") + 1 :]
    assert any(pid in json.dumps(e) and e["verified"] for e in after), after
    assert all(e["verified"] for e in lines if e.get("event") != "forged")
