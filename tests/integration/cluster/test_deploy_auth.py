"""NATS users and role permissions on a real 3-node cluster, with and without mutual TLS:
an S1-credentialed client is refused publishing on the consensus subjects (propose,
ballots) and allowed on its own; S5 may vote; wrong credentials and missing certificates
are refused at connect.

A refused publish is checked with a marker: one client publishes the refused message and
then an allowed one on the same connection, and an admin subscribed to both on the same
server sees the marker only. NATS keeps one connection's order, so a refused frame that
had got through would have arrived first.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.cluster import ADMIN, ClusterSecrets
from agents.runtime.subjects import AgentSubjects
from amcp import Bus, ConnectError, Keyring, NatsServer
from amcp.subjects import Subjects
from consensus.subjects import ConsensusSubjects
from tests.support.cluster import secured_nodes
from tests.support.waiting import wait_until

CLUSTER = "authc"


@pytest.fixture(scope="module", params=["plain", "tls"])
def secured(request, tmp_path_factory) -> Iterator[tuple[ClusterSecrets, list[NatsServer]]]:
    base = tmp_path_factory.mktemp(request.param)
    with secured_nodes(base, "auth", tls=request.param == "tls") as made:
        yield made


async def _connect(secured, user: str, node: int = 0, **security_changes) -> Bus:
    secrets, servers = secured
    security = secrets.security(user).model_copy(update=security_changes)
    return await Bus.connect(
        servers[node].url,
        keyring=Keyring.load(secrets.keyring),
        sender=f"{user}-test",
        cluster=CLUSTER,
        security=security,
    )


async def _delivered(secured, user: str, subjects: list[str]) -> list[str]:
    """Which of `subjects` reach an admin when `user` publishes on each, then a marker."""
    admin = await _connect(secured, ADMIN)
    client = await _connect(secured, user)
    try:
        got: list[str] = []
        marker = Subjects(CLUSTER).area("test", "marker", user)
        await admin.subscribe(f"amcp.{CLUSTER}.>", lambda m: got.append(m.subject))
        await admin.flush()
        for subject in subjects:
            await client.publish(subject, {"from": user})
        await client.publish(marker, {"marker": True})
        await client.flush()
        await wait_until(lambda: marker in got, 5.0, what=f"{user}'s marker")
        return [s for s in got if s != marker]
    finally:
        await client.close()
        await admin.close()


def _consensus_subjects() -> list[str]:
    vote = ConsensusSubjects(Subjects(CLUSTER))
    return [vote.propose, vote.ballot("tok1")]


async def test_s1_cannot_publish_on_consensus_subjects(secured) -> None:
    assert await _delivered(secured, "s1", _consensus_subjects()) == []


async def test_s1_publishes_on_its_own_subjects(secured) -> None:
    agents = AgentSubjects(Subjects(CLUSTER))
    own = [
        agents.heartbeat("s1-a"),
        agents.audit("s1-a"),
        Subjects(CLUSTER).area("ctx", "delta"),
    ]
    assert await _delivered(secured, "s1", own) == own


async def test_s5_and_admin_may_vote(secured) -> None:
    subjects = _consensus_subjects()
    assert await _delivered(secured, "s5", subjects) == subjects
    assert await _delivered(secured, ADMIN, subjects) == subjects


async def test_messages_cross_the_authenticated_routes(secured) -> None:
    admin = await _connect(secured, ADMIN, node=2)
    s1 = await _connect(secured, "s1", node=0)
    try:
        subject = AgentSubjects(Subjects(CLUSTER)).heartbeat("s1-route")
        sub = await admin.subscribe(subject)
        await admin.flush()

        async def arrived() -> bool:  # route interest spreads a moment after the SUB
            await s1.publish(subject, {"hb": 1})
            try:
                await sub.next(0.2)
                return True
            except Exception:
                return False

        await wait_until(arrived, 10.0, what="a message from node 0 at node 2")
    finally:
        await s1.close()
        await admin.close()


async def test_wrong_password_is_refused_at_once(secured) -> None:
    with pytest.raises(ConnectError, match="refused the credentials"):
        await _connect(secured, "s1", password="not-the-password")


async def test_tls_needs_the_ca_and_a_client_certificate(secured) -> None:
    secrets, _ = secured
    if secrets.tls is None:  # a plain cluster: the password alone is enough
        bus = await _connect(secured, "s1")
        assert bus.is_connected
        await bus.close()
        return
    with pytest.raises(ConnectError):  # the system store does not know our CA
        await _connect(secured, "s1", tls_ca=None, tls_cert=None, tls_key=None)
    with pytest.raises(ConnectError):  # mutual TLS: a client without a certificate
        await _connect(secured, "s1", tls_cert=None, tls_key=None)
    bus = await _connect(secured, "s1")
    assert bus.is_connected
    await bus.close()
