"""What operators graph, scraped from a running agent's Prometheus endpoint on a real
nats-server: bus traffic, request durations and batching policy per subject family (never a
raw subject), CRDT replication lag, and decision latency by outcome."""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from agents import Agent, AgentClient
from agents.vsm.s5.vote import QuorumVote
from agents.vsm.voting import VotingExtension
from netopt import BatchPolicy
from tests.support.waiting import wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(agent: Agent) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{agent.metrics.port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scraped(agent: Agent) -> Samples:
    return await asyncio.to_thread(scrape, agent)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_bus_traffic_is_graphed_by_subject_family(start_agent, client, cluster_name) -> None:
    policy = BatchPolicy(max_messages=8, max_bytes=4096, linger_seconds=0.001)
    agent = await start_agent(
        capabilities=("echo",), metrics_port=0, bus_options={"batching": policy}
    )
    peer = await start_agent("s2", capabilities=("echo",))
    area = f"amcp.{cluster_name}.agents"

    # The peer's membership writes reach the agent's replica as deltas: lag is observed.
    async def lag_seen() -> bool:
        return value(await scraped(agent), "amcp_crdt_replication_lag_seconds_count") > 0

    await wait_until(lag_seen, 10, what="a replication lag sample")
    before = await scraped(agent)
    for _ in range(5):
        await client.call(agent.id, "echo", {"text": "m"})
    await AgentClient(agent.bus, timeout=5.0).call(peer.id, "echo", {"text": "out"})
    after = await scraped(agent)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("amcp_bus_received_messages_total", family=f"{area}.call") == 5
    assert moved("amcp_bus_sent_messages_total", family="_INBOX") >= 5  # the replies
    assert moved("amcp_bus_sent_messages_total", family=f"{area}.call") == 1
    assert moved("amcp_bus_request_seconds_count", family=f"{area}.call") == 1
    assert value(after, "amcp_bus_sent_messages_total", family=f"{area}.hb") > 0
    assert value(after, "amcp_bus_received_messages_total", family=f"{area}.hb") > 0
    assert value(after, "amcp_bus_batch_max_messages", family=f"{area}.hb") == 8
    assert value(after, "amcp_bus_batch_linger_seconds", family=f"{area}.hb") == 0.001
    assert value(after, "amcp_bus_rejected_frames_total", reason="replay") == 0

    families = {
        dict(labels)["family"]
        for name, labels in after
        if name.startswith("amcp_bus_") and "family" in dict(labels)
    }
    assert f"{area}.call" in families and "_INBOX" in families
    for family in families:  # never a raw subject: no agent id, no reply inbox of its own
        assert agent.id not in family and peer.id not in family, family
        assert not family.startswith("_INBOX."), family


async def test_decision_latency_is_graphed_by_outcome(start_agent) -> None:
    agent = await start_agent("s5", metrics_port=0, voter=True)
    agent.extensions.append(extension := VotingExtension(agent.config))
    await extension.start(agent)
    vote = await QuorumVote.open(agent)
    try:
        assert (
            value(await scraped(agent), "amcp_agent_decision_seconds_count", outcome="committed")
            == 0
        )
        decision = await vote.put("deploy", {"v": 1}, quorum="all", timeout=5.0)
        assert str(decision.outcome) == "committed"
        after = await scraped(agent)
    finally:
        await vote.close()
        await extension.stop()
    assert value(after, "amcp_agent_decision_seconds_count", outcome="committed") == 1
    assert 0 < value(after, "amcp_agent_decision_seconds_sum", outcome="committed") < 5
