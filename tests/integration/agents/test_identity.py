"""Identity signatures in the agent runtime on a real nats-server: an insider holding the
cluster key and an identity of its own cannot write itself or a ghost into the member
list, nor replace or delete another agent's record for good; an audit entry forged in an
S5's name is marked unverified by `amcp log`, left out by --verified-only, and cannot hide
the S5's later genuine entries."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agents import Agent, AgentConfig
from agents.runtime.membership import MEMBERS_KEY, MemberRecord
from agents.runtime.subjects import AgentSubjects
from amcp import Bus, Identity, Roster, RosterEntry
from amcp.attest import sign_record
from amcp.protocol import Sealer
from crdt.store import ContextStore
from tests.support.cli import amcp_async, amcp_json
from tests.support.waiting import wait_until

HEARTBEAT = 0.2
IDS = {"s5-1": "s5", "s5-2": "s5", "s1-m": "s1"}  # s1-m: the insider


@pytest.fixture
def identities(tmp_path: Path) -> dict[str, Identity]:
    return {agent_id: Identity.generate(agent_id) for agent_id in IDS}


@pytest.fixture
def roster_file(tmp_path: Path, identities: dict[str, Identity]) -> Path:
    entries = (RosterEntry(i, identities[i].public_key, frozenset({r})) for i, r in IDS.items())
    return Roster(entries).save(tmp_path / "roster.json")


@pytest.fixture
def env(cli_env: dict[str, str], cluster_name: str, roster_file: Path) -> dict[str, str]:
    return {**cli_env, "AMCP_CLUSTER": cluster_name, "AMCP_ROSTER": str(roster_file)}


@pytest.fixture
async def connect(
    make_bus, cluster_name: str, identities: dict[str, Identity], roster_file: Path
) -> Callable[..., Any]:
    async def factory(agent_id: str, *, sender: str | None = None) -> Bus:
        return await make_bus(
            sender or agent_id,
            cluster=cluster_name,
            identity=identities[agent_id] if sender is None else None,
            roster=Roster.load(roster_file),
        )

    return factory


@pytest.fixture
async def start(connect) -> AsyncIterator[Callable[..., Any]]:
    """`await start(id)`: an agent in this process with its identity and the roster;
    stopped (last first) after the test."""
    async with contextlib.AsyncExitStack() as running:

        async def factory(agent_id: str) -> Agent:
            role = IDS[agent_id]
            config = AgentConfig(
                role=role, agent_id=agent_id, heartbeat=HEARTBEAT, voter=role == "s5"
            )
            agent = Agent(await connect(agent_id), config)
            await agent.start()
            running.push_async_callback(agent.stop)
            return agent

        yield factory


def check_roll(*agents: Agent) -> None:
    """The roll as each agent sees it: s1-m is a member (its own signed record, a role
    the roster grants) but not a voter; the ghost is nothing."""
    for agent in agents:
        assert set(agent.membership.records()) == {"s5-1", "s5-2", "s1-m"}, agent.id
        assert set(agent.membership.voters()) == {"s5-1", "s5-2"}, agent.id
        assert not agent.membership.displaced(agent.id)  # its own record, as it wrote it


async def test_an_insider_cannot_change_the_roll(start, connect, identities, env) -> None:
    s5_1 = await start("s5-1")
    s5_2 = await start("s5-2")

    def both_running() -> bool:
        records = s5_1.membership.records()
        return records.keys() == {"s5-1", "s5-2"} and all(
            r.state == "running" for r in records.values()
        )

    await wait_until(both_running, 10, what="both running")
    genuine_2 = s5_1.store.local(MEMBERS_KEY)["s5-2"]

    expected = {  # at least once each: a record is counted once per change seen
        "identity_malformed",  # the ghost: no signature
        "identity_voter_not_granted",  # s1-m: signed, but the roster grants it no vote
        "identity_bad_signature",  # s1-m's signature on s5-2's record
    }

    def counted(refused: dict[str, int]) -> bool:
        return {k for k, n in refused.items() if n} == expected

    def arrived(agent: Agent) -> bool:
        return {"ghost-voter", "s1-m"} <= agent.store.local(MEMBERS_KEY).keys()

    ghost = MemberRecord(id="ghost-voter", role="s5", version="1", state="running", voter=True)
    ghost_doc = json.dumps({**ghost.to_wire(), "capabilities": [], "tools": []})
    done = await amcp_async(
        "ctx", "set", MEMBERS_KEY, ghost_doc, "--field", "ghost-voter", "--write", "local", env=env
    )
    assert done.returncode == 0, done.stderr
    # the insider signs with its own key: a record of its own claiming to vote, and one
    # in s5-2's name that would take s5-2 out of the roll
    insider = await connect("s1-m")
    store = await ContextStore.open(insider)
    try:
        mine = MemberRecord(id="s1-m", role="s1", version="1", state="running", voter=True)
        await store.map_set(
            MEMBERS_KEY, "s1-m", sign_record(identities["s1-m"], "member", mine.to_wire())
        )
        await wait_until(lambda: arrived(s5_1) and arrived(s5_2), 10, what="the writes")
        check_roll(s5_1, s5_2)

        as_2 = MemberRecord(id="s5-2", role="s5", version="1", state="running", voter=False)
        await store.map_set(
            MEMBERS_KEY, "s5-2", sign_record(identities["s1-m"], "member", as_2.to_wire())
        )
        # s5-2 sees its record replaced by one it did not write, and writes its own back
        await wait_until(
            lambda: store.local(MEMBERS_KEY)["s5-2"] == genuine_2, 10, what="s5-2's own record"
        )
        await store.map_delete(MEMBERS_KEY, "s5-1")  # an insider's removal of a live member
        await wait_until(lambda: "s5-1" in store.local(MEMBERS_KEY), 10, what="s5-1 back")
    finally:
        await store.close()
    await wait_until(lambda: counted(s5_1.membership.refused), 10, what="the refusals")
    check_roll(s5_1, s5_2)

    async def shown() -> bool:
        status = await amcp_json("status", "--json", env=env)
        ids = {m["id"]: m["stats"].get("identity") for m in status["members"]}
        return ids.keys() == {"s5-1", "s5-2", "s1-m"} and bool(
            ids["s5-1"] and counted(ids["s5-1"]["members_refused"])
        )

    await wait_until(shown, 15, what="the refusals in amcp status")
    status = await amcp_json("status", "--json", env=env)
    section = next(m for m in status["members"] if m["id"] == "s5-1")["stats"]["identity"]
    assert section["signer"] == "s5-1" and section["checks"] is True
    assert section["roster"] == env["AMCP_ROSTER"] and section["identities"] == 3
    text = await amcp_async("status", env=env)
    assert f"s5-1: s5-1; roster {env['AMCP_ROSTER']} (3 identities, 0 revoked)" in text.stdout
    assert "members:identity_malformed=" in text.stdout


async def test_an_agent_without_a_roster_warns_once_that_checks_are_off(
    make_bus, cluster_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "agents.runtime.agent")
    bus = await make_bus("s1-plain", cluster=cluster_name)
    agent = Agent(bus, AgentConfig(role="s1", agent_id="s1-plain", heartbeat=HEARTBEAT))
    await agent.start()
    listener = await make_bus("listener", cluster=cluster_name)
    beats = await listener.subscribe(agent.subjects.heartbeat("s1-plain"))
    try:
        await wait_until(lambda: beats.delivered >= 3, 10, what="three heartbeats")
        assert (await beats.next(5)).body["identity"] == {
            "checks": False,
            "signer": None,
            "roster": None,
            "identities": None,
            "revoked": None,
            "refused": {},
            "members_refused": {},
        }
    finally:
        await agent.stop()
    warned = [r for r in caplog.records if "identity checks are off" in r.getMessage()]
    assert len(warned) == 1 and "s1-plain" in warned[0].getMessage()


async def test_a_forged_audit_entry_is_unverified_and_hides_nothing(
    start, connect, env, tmp_path: Path
) -> None:
    s5_1 = await start("s5-1")
    await s5_1.record("adaptation", what="before")
    await s5_1.flush_audit()
    # the old attack: a frame in s5-1's name under the cluster key, with an epoch far in
    # the future; the frame MAC accepts it, and it used to close s5-1's replay window
    mallory = await connect("s1-m", sender="mallory")
    subject = AgentSubjects(mallory.subjects).audit("s5-1")
    forger = Sealer("s5-1", mallory.keyring, epoch=s5_1.bus.sealer.epoch * 1000)
    forged = [{"ts": 1, "agent": "s5-1", "role": "s5", "event": "decision", "n": 1}]
    await mallory.publish_frame(subject, forger.seal(subject, forged, "audit"))
    await mallory.flush()

    async def stored(n: int) -> bool:
        frames = await mallory.streams.read(
            AgentSubjects(mallory.subjects).audit_stream, subject=subject
        )
        return len(frames) >= n

    await wait_until(lambda: stored(3), 10, what="the forged frame stored")
    await s5_1.record("adaptation", what="after")  # genuine, later, in the older epoch
    await s5_1.flush_audit()
    await wait_until(lambda: stored(4), 10, what="the later entry stored")

    done = await amcp_async("log", "--agent", "s5-1", "--json", env=env)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    shown = [(e["event"], e.get("what")) for e in lines]
    assert shown == [
        ("started", None),
        ("adaptation", "before"),
        ("decision", None),  # the forgery: shown, but
        ("adaptation", "after"),  # it hides nothing
    ]
    assert [e["verified"] for e in lines] == [True, True, False, True]
    assert "identity_unsigned" in done.stderr

    only = await amcp_async("log", "--agent", "s5-1", "--verified-only", env=env)
    assert only.returncode == 0, only.stderr
    assert "decision" not in only.stdout
    assert only.stdout.count("[verified]") == 3 and 'what="after"' in only.stdout

    no_roster = {k: v for k, v in env.items() if k != "AMCP_ROSTER"}
    no_roster["HOME"] = str(tmp_path)  # nor a default roster file
    off = await amcp_async("log", "--verified-only", env=no_roster)
    assert off.returncode != 0 and off.stderr.count("\n") == 1
    assert "--verified-only needs a roster" in off.stderr
