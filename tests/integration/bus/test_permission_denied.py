"""A publish the NATS server refuses for the user's permissions is an error, not a success
(issue 13 point 5), on a real authenticated 3-node cluster: `amcp send` as s1 to the
consensus area exits 5 with one line naming the subject; from Python, Bus.publish_checked
raises PermissionDenied and a request fails with it at once instead of at its timeout; what
the user may publish still goes through, and the connection stays usable.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest

from agents.cluster import ClusterSecrets
from amcp import Bus, Keyring, NatsServer
from amcp.errors import PermissionDenied
from amcp.subjects import Subjects
from consensus.subjects import ConsensusSubjects
from tests.support.cli import amcp
from tests.support.cluster import secured_nodes

CLUSTER = "permc"
PROPOSE = ConsensusSubjects(Subjects(CLUSTER)).propose
ALLOWED = Subjects(CLUSTER).area("ctx", "delta")


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Iterator[tuple[ClusterSecrets, list[NatsServer]]]:
    with secured_nodes(tmp_path_factory.mktemp("perm"), "auth") as made:
        yield made


@pytest.fixture
async def s1_bus(secured) -> AsyncIterator[Bus]:
    secrets, servers = secured
    bus = await Bus.connect(
        servers[0].url,
        keyring=Keyring.load(secrets.keyring),
        sender="s1-test",
        cluster=CLUSTER,
        security=secrets.security("s1"),
    )
    try:
        yield bus
    finally:
        await bus.close()


def _send_as_s1(secured, subject: str) -> subprocess.CompletedProcess:
    secrets, servers = secured
    env = dict(os.environ) | secrets.env("s1")
    env |= {"AMCP_NATS_URL": servers[0].url, "AMCP_CLUSTER": CLUSTER}
    return amcp("send", subject, "{}", env=env)


def test_s1_send_to_the_vote_subject_exits_5_with_one_line(secured) -> None:
    out = _send_as_s1(secured, PROPOSE)
    assert out.returncode == 5, (out.stdout, out.stderr)
    assert "sent" not in out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert PROPOSE in lines[0] and "permission" in lines[0].lower() and "s1" in lines[0]


def test_s1_send_to_an_allowed_subject_exits_0(secured) -> None:
    out = _send_as_s1(secured, ALLOWED)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"sent to {ALLOWED}")


async def test_publish_checked_raises_permission_denied(s1_bus: Bus) -> None:
    with pytest.raises(PermissionDenied) as refused:
        await s1_bus.publish_checked(PROPOSE, {"x": 1})
    assert refused.value.subject == PROPOSE
    assert await s1_bus.publish_checked(ALLOWED, {"x": 1}) is None  # the connection goes on
    assert s1_bus.is_connected


async def test_a_refused_request_fails_at_once_not_at_its_timeout(s1_bus: Bus) -> None:
    # Before the fix this waited its 5 s and raised RequestTimeout.
    with pytest.raises(PermissionDenied, match=PROPOSE):
        await asyncio.wait_for(s1_bus.request(PROPOSE, {}, timeout=5.0), 30)
    with pytest.raises(PermissionDenied):  # a refusal is not cached: each publish is asked
        await s1_bus.publish_checked(PROPOSE, {})
