"""Pipelining on a real nats-server (issue 18 step 3): with many proposals in flight, the
proposals a coordinator makes while one is in flight share the next frame, and so do the
ballots a voter makes while one is in flight, under one identity signature over the batch;
a lone proposal and its ballots still go out at once, each signed alone. Every decision is
its own vote, re-derivable alone by any reader of the decision log; a ballot changed
inside a genuine batch is refused and counted; a replayed batch frame counts nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import nats

from amcp import NatsServer
from consensus import Ballot, Choice, Outcome, Propose, Scores, Vote
from consensus.signatures import sign_votes
from tests.integration.consensus.test_identity import FIVE, IdCluster
from tests.support.waiting import wait_until


async def test_many_in_flight_share_frames_and_signatures(
    ids: IdCluster, nats_server: NatsServer
) -> None:
    for v in FIVE:
        await ids.voter(v)
    coordinator = await ids.coordinator()
    raw = await nats.connect(nats_server.url)
    frames: list[bytes] = []

    async def capture(msg: Any) -> None:
        frames.append(msg.data)

    await raw.subscribe(coordinator._inbox, cb=capture)
    await raw.flush()
    results = await asyncio.gather(
        *(coordinator.coordinate("restart", timeout=10) for _ in range(64))
    )
    assert all(r.outcome is Outcome.COMMITTED and not r.refused for r in results)
    proposals = coordinator._proposals
    assert proposals is not None and proposals.items == 64 and proposals.frames <= 8
    for v in FIVE:
        ballots = ids.services[v]._ballots
        assert ballots is not None and ballots.items == 64 and ballots.frames <= 16
    counted = [vote for r in results for vote in r.decision.votes]
    assert sum(bool(vote.batch) for vote in counted) >= len(counted) // 2
    assert coordinator.bus.verifier is not None
    assert coordinator.bus.verifier.cache_hits >= len(counted) // 4  # a batch verified once

    reader = ids.services["v1"].log  # any member re-derives each decision alone
    await wait_until(
        lambda: all(reader.decided(r.decision.proposal_id) for r in results), 10, what="records"
    )
    assert not reader.refused

    # a batch frame of ballots sent again: refused by the replay window, nothing recounted
    await wait_until(lambda: len(frames) >= 5 * 64 // 16, 5, what="ballot frames")
    biggest = max(frames, key=len)
    before = coordinator.bus.rejections.get("replay", 0)
    await raw.publish(coordinator._inbox, biggest)
    await raw.flush()
    await wait_until(
        lambda: coordinator.bus.rejections.get("replay", 0) > before, 5, what="the replay refused"
    )
    await raw.close()


async def test_a_lone_proposal_and_its_ballots_go_at_once_signed_alone(ids: IdCluster) -> None:
    for v in FIVE:
        await ids.voter(v)
    coordinator = await ids.coordinator()
    for _ in range(3):  # one after another: never two in flight
        result = await coordinator.coordinate("restart", timeout=10)
        assert result.outcome is Outcome.COMMITTED
        assert not any(vote.batch for vote in result.decision.votes)
    proposals = coordinator._proposals
    assert proposals is not None and (proposals.frames, proposals.items) == (3, 3)


async def test_a_ballot_changed_in_a_genuine_batch_does_not_count(ids: IdCluster) -> None:
    """v1 and v2 vote yes, v4 and v5 are silent; v3's genuine batch says no to both
    proposals. An insider with the cluster key (not v3's identity) flips v3's ballots to
    yes and sends them as one batch frame in v3's name: they would make the third yes."""
    for v in FIVE:
        await ids.voter(v, serve=v in ("v1", "v2"))
    coordinator = await ids.coordinator()
    as_v3 = await ids.bus("v3", identity=False)
    pending: list[tuple[str, Vote]] = []
    sent: list[asyncio.Task[None]] = []

    async def flip_and_send() -> None:
        replies = {reply for reply, _ in pending}
        genuine = sign_votes(ids.ids["v3"], [vote for _, vote in pending])
        assert all(vote.batch and vote.choice is Choice.NO for vote in genuine)
        flipped = [dataclasses.replace(vote, choice=Choice.YES) for vote in genuine]
        (reply,) = replies
        await as_v3.publish_group(reply, [Ballot(vote=v).to_wire() for v in flipped], kind="ballot")

    def on_propose(msg: Any) -> None:
        propose = Propose.from_wire(msg.body)
        vote = Vote(
            proposal_id=propose.proposal.id,
            proposal_digest=propose.proposal.digest,
            deadline_ms=propose.proposal.deadline_ms,
            voter="v3",
            choice=Choice.NO,
            scores=Scores(0.5, 0.5, 0.5, 0.5, 0.5),
            combined=0.5,
            reason="no",
        )
        pending.append((propose.reply, vote))
        if len(pending) == 2:  # answer both together, as a voter does
            sent.append(asyncio.ensure_future(flip_and_send()))

    await as_v3.subscribe(as_v3.subjects.area("vote", "propose"), on_propose)
    await as_v3.flush()
    results = await asyncio.gather(
        *(coordinator.coordinate("restart", timeout=2) for _ in range(2))
    )
    assert sent and sent[0].done() and sent[0].exception() is None
    for result in results:
        assert result.outcome is Outcome.NO_QUORUM
        assert sorted(v.voter for v in result.decision.votes) == ["v1", "v2"]
        assert result.refused == {"identity_bad_signature": 1}
