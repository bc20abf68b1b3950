"""A flood of 1 MiB frames that are costly to decode (about a million empty msgpack arrays
each, in an envelope of current fields under the cluster's key id, with a wrong MAC) sent
to an agent (issue 14, point 3): the agent verifies before it decodes, so each costs it
about one SHA-256 pass, genuine calls keep being answered in between, and every frame is
counted as `bad_signature`. On a real nats-server with a real agent process."""

from __future__ import annotations

import os
import time

from agents import AgentClient
from agents.runtime.subjects import AgentSubjects
from amcp.envelope import MAC_SIZE, pack_envelope
from tests.support.agents import view_of
from tests.support.cli import amcp_json
from tests.support.waiting import wait_until

SIZE = 1_000_000  # under the server's max_payload (1 MiB)
ROUNDS, PER_ROUND = 6, 8


def costly_frame(kid: str, seq: int) -> bytes:
    head = pack_envelope([1, 0, os.urandom(16), "mallory", 1, seq, int(time.time() * 1000),
                          kid, "req", {}])  # fmt: skip
    n = SIZE - len(head) - 5 - MAC_SIZE
    return b"\x9b" + head[1:] + b"\xdd" + n.to_bytes(4, "big") + b"\x90" * n + os.urandom(32)


async def test_a_flood_of_costly_forged_frames_leaves_genuine_calls_answered(
    agent_cluster, make_bus, keyring, cli_env
) -> None:
    agent_cluster.spawn("s1", "w1")
    bus = await make_bus("caller", cluster=agent_cluster.name)
    client = AgentClient(bus)
    await wait_until(lambda: _up(client, "w1"), 20, what="w1 up")
    subject = AgentSubjects(bus.subjects).call("w1")
    kid = keyring.signing_key(time.time()).kid
    for round_ in range(ROUNDS):
        for i in range(PER_ROUND):
            await bus.publish_frame(subject, costly_frame(kid, round_ * PER_ROUND + i + 1))
        # Queued behind the flood: answered only if the flood costs the agent little.
        result = await client.call("w1", "describe", {}, timeout=3)
        assert result.agent == "w1"

    env = agent_cluster.env(cli_env)

    async def counted() -> bool:
        status = await amcp_json("status", env=env)
        member = next((m for m in status["members"] if m["id"] == "w1"), None)
        return member is not None and member["stats"]["rejections"]["bad_signature"] == (
            ROUNDS * PER_ROUND
        )

    await wait_until(counted, 20, what="every forged frame counted as bad_signature")


async def _up(client: AgentClient, agent_id: str) -> bool:
    return await view_of(client, agent_id) is not None
