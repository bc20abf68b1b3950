"""A proposer that knows no members gets no quorum, records nothing, and the proposal id
stays free: proposed again once voters are known, it is voted on (issue 14, point 4)."""

from __future__ import annotations

from agents.vsm.voting import VotingExtension
from consensus import Outcome
from tests.support.consensus import Members
from tests.support.waiting import wait_until


async def test_no_members_is_no_quorum_and_the_id_can_be_proposed_again(
    members: Members,
) -> None:
    proposer = await members.coordinator("proposer", voters=0)
    request = {"targets": ["w1"]}
    first = await proposer.coordinate(
        "restart", request, urgency="high", proposal_id="restart-w1", timeout=3
    )
    assert first.outcome is Outcome.NO_QUORUM and first.decision.members == ()
    assert not first.replayed and first.recorded is None
    assert proposer.log.decided("restart-w1") is None  # nothing final on this replica

    for voter in ("v1", "v2", "v3"):
        await members.add(voter)
    await wait_until(lambda: len(proposer.voters()) == 3, 10, what="3 voters seen by proposer")
    again = await proposer.coordinate(
        "restart", request, urgency="high", proposal_id="restart-w1", timeout=5
    )
    assert again.outcome is Outcome.COMMITTED and not again.replayed
    assert again.decision.members == ("v1", "v2", "v3")
    # and a proposer that starts afresh, once the voters have heard that commit (it was
    # recorded locally: the voters learn it by replication), is answered with it, not a
    # stale rejection
    logs = [
        ext.service.log
        for v in ("v1", "v2", "v3")
        for ext in members.agents[v].extensions
        if isinstance(ext, VotingExtension)
    ]
    await wait_until(
        lambda: len(logs) == 3 and all(log.decided("restart-w1") for log in logs),
        10,
        what="the decision on every voter's replica",
    )
    later = await members.coordinator("later")
    third = await later.coordinate(
        "restart", request, urgency="high", proposal_id="restart-w1", timeout=5
    )
    assert third.replayed and third.outcome is Outcome.COMMITTED
