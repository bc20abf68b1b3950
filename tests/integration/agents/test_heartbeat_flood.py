"""Correctly signed heartbeats from thousands of made-up agent ids, with 1 KiB bodies, on a
real nats-server: the agent tracks none of them and holds at most MAX_PENDING notes, its
genuine members stay alive, and a joiner whose heartbeat came before its member record is
alive once the record arrives (issue 14, point 6)."""

from __future__ import annotations

from agents.runtime.discovery import MAX_PENDING
from agents.runtime.liveness import Liveness
from agents.runtime.membership import MemberRecord, Membership
from agents.runtime.subjects import AgentSubjects
from amcp import Keyring
from amcp.protocol import Sealer
from crdt import ContextStore
from tests.support.consensus import HEARTBEAT, Members
from tests.support.waiting import wait_until

FORGED = 3000


def member(agent_id: str) -> MemberRecord:
    return MemberRecord(id=agent_id, role="s4", version="0", state="running", heartbeat=HEARTBEAT)


def heartbeat(agent_id: str, ts: int) -> dict[str, object]:
    return {"id": agent_id, "role": "s1", "state": "running", "ts": ts, "interval": HEARTBEAT}


async def test_forged_heartbeats_leave_bounded_state_and_members_alive(
    members: Members, keyring: Keyring
) -> None:
    agent = await members.add("m1", role="s2", voter=False)
    await members.add("m2", role="s2", voter=False)
    bus = await members.bus("forger")
    store = await ContextStore.open(bus)
    try:
        roll = Membership(store)
        await roll.join(member("sentinel"))  # its beat, sent last, marks the flood as read
        assert agent.membership is not None
        records = agent.membership.records
        await wait_until(lambda: "sentinel" in records(), 10, what="the sentinel's record")
        subjects = AgentSubjects(bus.subjects)
        forged = [f"forged-{i}" for i in range(FORGED)]
        for fake in [*forged, "late"]:
            body = {**heartbeat(fake, 1), "pad": "x" * 1024}
            subject = subjects.heartbeat(fake)
            await bus.publish_frame(subject, Sealer(fake, keyring).seal(subject, body, "hb"))
        subject = subjects.heartbeat("sentinel")
        frame = Sealer("sentinel", keyring).seal(subject, heartbeat("sentinel", 424242), "hb")
        await bus.publish_frame(subject, frame)
        await bus.flush()

        def view() -> dict[str, object]:
            return {s.record.id: s for s in agent.members()}

        await wait_until(
            lambda: view()["sentinel"].last_heartbeat_ms == 424242, 30, what="the flood read"
        )
        assert not any(fake in agent.detector for fake in forged)
        assert set(agent.detector) <= set(records()) and len(agent.detector) == 3
        assert agent.discovery.pending <= MAX_PENDING
        assert agent.discovery.ignored >= FORGED
        await wait_until(
            lambda: all(view()[m].liveness is Liveness.ALIVE for m in ("m1", "m2")),
            5,
            what="m1 and m2 alive",
        )

        # "late" beat before it joined (it is in the pending notes): alive once it joins
        await roll.join(member("late"))
        await wait_until(lambda: "late" in view(), 10, what="late's record")
        assert view()["late"].liveness is Liveness.ALIVE
    finally:
        await store.close()
