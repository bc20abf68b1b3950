"""Quorum votes on a real nats-server with in-process agents as voters and executors:
majority commits, risky actions are refused with reasons, weighted quorums match the
hand-computed cases of docs/CONSENSUS.md, forged and replayed ballots do not count, a
proposal id runs once, and one resource has one commit executing at a time."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import nats
import pytest

from agents import MEMBERS_KEY, read_cluster_log
from amcp import Keyring
from consensus import (
    VOTERS_KEY,
    Ballot,
    Choice,
    Decided,
    DecisionLog,
    ExecState,
    Outcome,
    Proposal,
    ProposalConflict,
    Propose,
    Scorer,
    ScorerConfig,
    Scores,
    Thresholds,
    Vote,
    VotePolicy,
    Weights,
    coordinate_action,
    decide,
    verify,
)
from consensus.record import decision_key
from tests.support.consensus import Members, counting_tool
from tests.support.waiting import wait_until

FIVE = ("v1", "v2", "v3", "v4", "v5")


async def test_the_voter_roll_is_the_agents_member_map() -> None:
    assert VOTERS_KEY == MEMBERS_KEY


async def test_five_voters_majority_commits_and_any_member_can_re_derive_it(
    members: Members,
) -> None:
    for v in FIVE:
        await members.add(v)
    coordinator = await members.coordinator()
    result = await coordinator.coordinate(
        "restart", {"targets": ["w1"]}, resource="w1", urgency="high"
    )
    decision = result.decision
    assert decision.outcome is Outcome.COMMITTED and not result.replayed
    assert decision.members == FIVE and decision.summary.needed == 3.0
    assert decision.summary.yes >= 3 and verify(decision)
    for vote in decision.votes:
        assert vote.choice is Choice.YES and vote.reason.startswith("yes: attention")
        assert vote.scores.confidence > 0.99 and 0 < vote.combined <= 1  # all five seen live
    # the decision log replicates: another member reads the same record and re-derives it
    log = DecisionLog(members.agents["v4"].store)  # type: ignore[arg-type]
    await wait_until(lambda: log.decided(decision.proposal_id) is not None, 5, what="replication")
    recorded = log.decided(decision.proposal_id)
    assert recorded is not None and recorded.decision == decision and verify(recorded.decision)
    # the one-call API, on a bus of its own
    again = await coordinate_action(await members.bus("ops"), "restart", {"targets": ["w2"]})
    assert again.outcome is Outcome.COMMITTED and again.members == FIVE


async def test_a_risky_action_is_rejected_with_reasons_unless_critical(members: Members) -> None:
    for v in FIVE:
        await members.add(v)
    coordinator = await members.coordinator()
    result = await coordinator.coordinate("shutdown", {"targets": "*"}, timeout=5)
    decision = result.decision
    assert decision.outcome is Outcome.REJECTED and decision.summary.no >= 3
    assert {v.reason for v in decision.votes} == {
        "no: risk 0.90 > 0.70 and urgency is not critical"
    }
    assert all(v.scores.risk == pytest.approx(0.9) for v in decision.votes)
    critical = await coordinator.coordinate("shutdown", {"targets": "*"}, urgency="critical")
    assert critical.outcome is Outcome.COMMITTED
    assert "risk 0.90 > 0.70 accepted as urgency is critical" in critical.decision.votes[0].reason


def _fixed(weight: float, choice: str) -> dict[str, Any]:
    """Voting options that make a voter's combined score exactly `weight` (importance is
    the only weighted dimension and equals the role's relevance) and its choice fixed."""
    config = ScorerConfig(
        weights=Weights(0, 1, 0, 0, 0),
        impact_share=0.0,
        relevance={"s5": {"deploy": weight}},
    )
    thresholds = {
        "yes": Thresholds(yes_min=0.0, risk_max=1.0, confidence_min=0.0),
        "no": Thresholds(risk_max=0.0),  # deploy's risk 0.5 is too much
        "abstain": Thresholds(yes_min=1.0, risk_max=1.0, confidence_min=0.0),
    }[choice]
    return {"scorer": Scorer(config), "policy": VotePolicy(thresholds)}


@pytest.mark.parametrize(
    ("voters", "quorum", "outcome", "yes_weight", "needed"),
    [
        # docs/CONSENSUS.md, "Weighted quorum, hand-computed"
        ({"a": (0.9, "yes"), "b": (0.8, "yes"), "c": (0.7, "yes"), "d": (0.2, "yes"),
          "e": (0.5, "no")}, "weighted", "committed", 2.6, 2.5),
        ({"a": (0.9, "yes"), "b": (0.8, "yes"), "c": (0.7, "yes"), "d": (0.5, "no"),
          "e": (0.5, "no")}, "weighted", "rejected", None, 2.5),
        ({"a": (1.0, "yes"), "b": (1.0, "yes"), "c": (0.01, "yes")},
         "weighted:2/3", "committed", 2.01, 2.0),
        # rejected as soon as c abstains (2.0 at best)
        ({"a": (1.0, "yes"), "b": (1.0, "yes"), "c": (0.5, "abstain")},
         "weighted:2/3", "rejected", None, 2.0),
        # a crashed member still counts: d never votes, 2.1 > 2 commits early
        ({"a": (1.0, "yes"), "b": (0.6, "yes"), "c": (0.5, "yes"), "d": (0.5, "crashed")},
         "weighted", "committed", 2.1, 2.0),
    ],
)  # fmt: skip
async def test_weighted_quorum_matches_the_hand_computed_cases(
    members: Members,
    voters: dict[str, tuple[float, str]],
    quorum: str,
    outcome: str,
    yes_weight: float | None,
    needed: float,
) -> None:
    for name, (weight, choice) in voters.items():
        await members.add(name, **_fixed(weight, "yes" if choice == "crashed" else choice))
        if choice == "crashed":
            await members.crash(name)
    coordinator = await members.coordinator()
    decision = (await coordinator.coordinate("deploy", quorum=quorum, timeout=5)).decision
    assert str(decision.outcome) == outcome
    summary = decision.summary
    if yes_weight is not None:
        assert summary.yes_weight == pytest.approx(yes_weight, abs=1e-12)
    else:  # rejected as soon as yes cannot pass: how much yes came first depends on order
        silent = len(decision.members) - len(decision.votes)
        assert summary.yes_weight + silent <= summary.needed
        assert summary.no + summary.abstain >= 1
    assert decision.summary.needed == pytest.approx(needed)
    assert len(decision.members) == len(voters) and verify(decision)


async def test_forged_replayed_and_impersonated_ballots_do_not_count(
    members: Members, nats_server: Any
) -> None:
    """Two of five members are alive. Each forgery would have made a third yes."""
    for v in FIVE:
        await members.add(v)
    for v in ("v3", "v4", "v5"):
        await members.crash(v)
    coordinator = await members.coordinator()
    spy = await members.bus("spy")  # holds the cluster key, like any member
    forger = await members.bus("v3", ring=Keyring.generate())  # claims v3, wrong key
    raw = await nats.connect(nats_server.url)
    captured: list[Any] = []
    attacks: list[asyncio.Task[None]] = []

    async def capture(m: Any) -> None:
        captured.append(m)

    await raw.subscribe(spy.subjects.area("vote", "ballot", "*"), cb=capture)
    await raw.flush()

    async def attack(propose_msg: Any) -> None:
        propose = Propose.from_wire(propose_msg.body)
        pid, reply = propose.proposal.id, propose.reply
        await wait_until(lambda: captured, 5, what="a genuine ballot on the wire")
        await raw.publish(reply, captured[0].data)  # replay v1's or v2's signed frame
        scores = Scores(1, 1, 0, 1, 1)
        on = {"proposal_digest": propose.proposal.digest, "deadline_ms": 1}
        fake = Vote(proposal_id=pid, voter="v3", choice="yes", scores=scores, combined=1, **on)
        await forger.publish(reply, Ballot(vote=fake).to_wire(), kind="ballot")
        fake4 = Vote(proposal_id=pid, voter="v4", choice="yes", scores=scores, combined=1, **on)
        await spy.publish(reply, Ballot(vote=fake4).to_wire(), kind="ballot")  # in v4's name
        # a made-up decision that re-derives from made-up votes, on an id nobody could know
        votes = [replace(fake4, voter=v) for v in ("v3", "v4", "v5")]
        forged = decide(propose.proposal, FIVE, votes, now_ms=propose.proposal.created_ms)
        assert forged is not None and verify(forged)
        made_up = Decided(proposal=propose.proposal, decision=forged, executor=None, decided_ms=1)
        member = members.agents["v3"].bus  # crashed, but its key and name are genuine
        await member.publish(reply, Ballot(decided=made_up).to_wire(), kind="ballot")
        await raw.flush()

    await spy.subscribe(
        spy.subjects.area("vote", "propose"),
        lambda m: attacks.append(asyncio.ensure_future(attack(m))),
    )
    await spy.flush()
    result = await coordinator.coordinate("restart", timeout=2)
    await raw.close()
    assert attacks and attacks[0].done() and attacks[0].exception() is None
    decision = result.decision
    assert decision.outcome is Outcome.NO_QUORUM
    assert sorted(v.voter for v in decision.votes) == ["v1", "v2"]
    assert decision.summary.yes == 2 and decision.summary.needed == 3.0
    assert result.refused == {"not_its_sender": 1, "unverifiable_decision": 1}
    rejections = coordinator.bus.rejections
    assert rejections.get("replay", 0) >= 1, rejections
    forged = sum(rejections.get(r, 0) for r in ("bad_signature", "unknown_key"))
    assert forged >= 1, rejections


async def test_every_ballot_is_in_its_voters_audit_log_in_order(members: Members) -> None:
    voters = ("v1", "v2", "v3")
    for v in voters:
        await members.add(v)
    coordinator = await members.coordinator()
    ids = set()
    for i in range(4):
        result = await coordinator.coordinate("restart", {"targets": [f"w{i}"]})
        ids.add(result.decision.proposal_id)
    reader = await members.bus("reader")

    async def logged(agent_id: str) -> list[dict[str, Any]]:
        return [e.record for e in (await read_cluster_log(reader, agent=agent_id))[0]]

    async def all_votes_logged() -> bool:  # vote entries are lazy: they come in one frame
        for v in voters:
            votes = {r["proposal"] for r in await logged(v) if r["event"] == "vote"}
            if votes != ids:
                return False
        return True

    await wait_until(all_votes_logged, 10, what="every voter's vote entries")
    for v in voters:
        entries = [r for r in await logged(v) if r["event"] == "vote"]
        assert len(entries) == len(ids)  # one entry per ballot
        assert all(r["choice"] in ("yes", "no", "abstain") and r["reason"] for r in entries)
    # a lazy entry stays ahead of the entries recorded after it
    agent = members.agents["v1"]
    await agent.audit.record("vote", lazy=True, proposal="lazy-first")
    await agent.record("decision", proposal="eager-second")
    await agent.audit.flush()
    order = [r.get("proposal") for r in await logged("v1")]
    assert order.index("lazy-first") < order.index("eager-second")


async def test_one_proposal_id_executes_once(members: Members) -> None:
    runs: list[str] = []
    for v in ("v1", "v2", "v3"):
        await members.add(v)
    await members.add(
        "x1", role="s1", voter=False, tools=(counting_tool(runs),), executes={"restart": "apply"}
    )
    first = await members.coordinator("p1")
    result = await first.coordinate("restart", {"targets": ["w1"]}, proposal_id="job-1")
    assert result.outcome is Outcome.COMMITTED and not result.replayed
    assert result.executor is not None and result.executor.agent == "x1"
    assert result.execution is not None and result.execution.state is ExecState.DONE
    assert result.execution.result == {"runs": 1} and len(runs) == 1
    # the same id again, here and from another proposer with its own replica
    again = await first.coordinate("restart", {"targets": ["w1"]}, proposal_id="job-1")
    other = await members.coordinator("p2")
    third = await other.coordinate("restart", {"targets": ["w1"]}, proposal_id="job-1")
    for replay in (again, third):
        assert replay.replayed and replay.decision == result.decision
        assert replay.execution is not None and replay.execution.state is ExecState.DONE
    assert len(runs) == 1
    # two proposers racing with one new id: both see the commit, it runs once
    both = await asyncio.gather(
        first.coordinate("restart", {"targets": ["w2"]}, proposal_id="job-2"),
        other.coordinate("restart", {"targets": ["w2"]}, proposal_id="job-2"),
    )
    assert [r.outcome for r in both] == [Outcome.COMMITTED, Outcome.COMMITTED]
    await wait_until(lambda: len(runs) >= 2, 5, what="job-2 executed")
    assert len(runs) == 2
    with pytest.raises(ProposalConflict, match="job-1"):
        await other.coordinate("deploy", {"targets": ["w1"]}, proposal_id="job-1")


async def test_one_resource_has_one_commit_executing_at_a_time(members: Members) -> None:
    runs: list[str] = []
    for v in FIVE:
        await members.add(v)
    await members.add(
        "x1", role="s1", voter=False, tools=(counting_tool(runs),), executes={"restart": "apply"}
    )
    proposers = [await members.coordinator(f"p{i}") for i in range(4)]
    results = await asyncio.gather(
        *(p.coordinate("restart", {"seconds": 0.5}, resource="db", timeout=3) for p in proposers)
    )
    committed = [r for r in results if r.outcome is Outcome.COMMITTED]
    assert len(committed) <= 1, [r.outcome for r in results]
    busy = [v for r in results for v in r.decision.votes if "is busy with proposal" in v.reason]
    assert busy, "conflicting proposals must meet busy voters"
    assert len(runs) == len(committed)
    # the executor's acknowledgement (or the rejections) freed the resource: the next commits
    after = await proposers[0].coordinate("restart", {"seconds": 0}, resource="db")
    assert after.outcome is Outcome.COMMITTED, after.decision.votes
    assert after.execution is not None and after.execution.state is ExecState.DONE


async def test_malformed_input_is_counted_and_changes_nothing(members: Members) -> None:
    for v in ("v1", "v2", "v3"):
        await members.add(v)
    coordinator = await members.coordinator()
    spy = await members.bus("spy")
    propose_subject = spy.subjects.area("vote", "propose")
    ok = Propose(proposal=Proposal(id="q1", action="restart", proposer="spy", created_ms=1,
                                   deadline_ms=2**62), reply="amcp.elsewhere.steal")  # fmt: skip
    impostor = Propose(
        proposal=replace(ok.proposal, proposer="someone-else"), reply=coordinator._inbox
    )
    for body in ({"junk": 1}, [1, 2], ok.to_wire(), impostor.to_wire()):
        await spy.publish(propose_subject, body)
    await spy.publish(coordinator._inbox, {"vote": {"proposal_id": 5}, "decided": None})
    await spy.publish(coordinator._inbox, b"\x00garbage")
    services = [members.agents[v].extensions[0].service for v in ("v1", "v2", "v3")]

    def refused() -> bool:
        return all(
            s.stats["refused_malformed"] == 2
            and s.stats["refused_bad_reply_subject"] == 1
            and s.stats["refused_not_its_proposer"] == 1
            for s in services  # type: ignore[union-attr]
        )

    await wait_until(refused, 5, what="every voter to count the bad proposals")
    await wait_until(lambda: coordinator.stats["malformed"] == 2, 5, what="bad ballots counted")
    # a record in the log that is not a decision is ignored, then replaced by the real one
    store = coordinator.store
    await store.set(decision_key("job-x"), b"not msgpack \xc1")
    assert coordinator.log.decided("job-x") is None
    result = await coordinator.coordinate("restart", proposal_id="job-x")
    assert result.outcome is Outcome.COMMITTED and not result.replayed
    assert coordinator.log.decided("job-x") is not None
