"""Role users may create only amcp's own JetStream streams, those of the clusters their
servers were made for: the audit stream and the claims bucket. A stream of an S1's own
(one storing every heartbeat), or another cluster's audit stream, is refused; on a fresh
authenticated cluster an agent still creates both of its own, and `amcp log` reads them.
Three real authenticated nats-servers, a real agent process, the real CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents import AgentClient, AgentProcess
from agents.cluster import ADMIN, ClusterSecrets
from agents.runtime.subjects import AgentSubjects
from amcp import Bus, Keyring, NatsServer
from amcp.claims import claims_bucket
from amcp.errors import AmcpError
from amcp.subjects import Subjects
from tests.support.cli import amcp_async
from tests.support.cluster import secured_nodes
from tests.support.waiting import wait_until

CLUSTERS = ("streams-a", "streams-b")


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Iterator[tuple[ClusterSecrets, list[NatsServer]]]:
    with secured_nodes(tmp_path_factory.mktemp("streams"), "st", clusters=CLUSTERS) as made:
        yield made


async def connect(secured, user: str, cluster: str) -> Bus:
    secrets, servers = secured
    return await Bus.connect(
        servers[0].url,
        keyring=Keyring.load(secrets.keyring),
        sender=f"{user}-test",
        cluster=cluster,
        security=secrets.security(user),
    )


async def streams(secured) -> set[str]:
    admin = await connect(secured, ADMIN, CLUSTERS[0])
    try:
        return {info.config.name for info in await admin.nc.jetstream().streams_info()}
    finally:
        await admin.close()


async def test_s1_creates_its_own_streams_and_no_other(secured) -> None:
    cluster = CLUSTERS[0]
    s1 = await connect(secured, "s1", cluster)
    try:
        subjects = AgentSubjects(Subjects(cluster))
        with pytest.raises(AmcpError):  # every heartbeat of the cluster, stored
            await s1.streams.ensure("HEARTBEATS", [f"amcp.{cluster}.hb.>"])
        with pytest.raises(AmcpError):  # a cluster these servers were not made for
            await s1.streams.ensure("AUDIT_elsewhere", ["amcp.elsewhere.audit.>"])
        await s1.streams.ensure(subjects.audit_stream, [subjects.audit_all])
        await s1.claims.ensure()
        assert await s1.claims.claim("someone", 1, 1)  # the bucket's keys are writable
        assert not await s1.claims.claim("someone", 1, 1)
    finally:
        await s1.close()
    made = await streams(secured)
    assert {f"AUDIT_{cluster}", f"KV_{claims_bucket(cluster)}"} <= made
    assert not {"HEARTBEATS", "AUDIT_elsewhere"} & made


async def test_an_agent_of_a_fresh_cluster_makes_both_uses_claims_and_amcp_log_reads(
    secured, tmp_path: Path
) -> None:
    secrets, servers = secured
    cluster = CLUSTERS[1]
    proc = AgentProcess(
        "s1",
        "w1",
        nats=servers[1].url,
        keyring=secrets.keyring,
        cluster=cluster,
        log_dir=tmp_path,
        args=["--nats-user", "s1", "--nats-password-file", str(secrets.password_file("s1"))],
    ).start()
    try:
        client_bus = await connect(secured, ADMIN, cluster)
        try:
            client = AgentClient(client_bus, timeout=1)
            await wait_until(lambda: _answers(client), 30, what="w1 to answer")
            # a call through the s1 queue group is claimed in the bucket before it runs:
            # the agent, as the s1 user, writes the bucket's keys
            step = {"task_id": "t1", "step": 0, "text": "echo ran", "cwd": str(tmp_path)}
            done = await client.call("s1", "execute", step, timeout=10)
            assert done.output["stdout"] == "ran\n", done.output
        finally:
            await client_bus.close()
        made = await streams(secured)
        assert {f"AUDIT_{cluster}", f"KV_{claims_bucket(cluster)}"} <= made
        for user in ("s1", ADMIN):  # the consumers `amcp log` makes, with either's rights
            env = {**os.environ, **secrets.env(user), "AMCP_NATS_URL": servers[2].url}
            log = await amcp_async("log", "--cluster", cluster, "--agent", "w1", "--json", env=env)
            assert log.returncode == 0, (user, log.stderr)
            assert '"started"' in log.stdout, (user, log.stdout[:300])
    finally:
        proc.close()


async def _answers(client: AgentClient) -> Any:
    try:
        await client.call("w1", "describe")
    except Exception:
        return False
    return True
