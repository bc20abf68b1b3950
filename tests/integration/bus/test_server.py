"""The embedded nats-server: single node with JetStream, and a routed 3-node cluster."""

from __future__ import annotations

import urllib.request

import pytest

from amcp import Bus, Keyring, NatsCluster, NatsServer, ServerError
from tests.support.waiting import wait_until


def test_single_server_starts_healthy_and_stops(tmp_path) -> None:
    server = NatsServer(store_dir=tmp_path / "s").start()
    try:
        assert server.running and server.healthy()
        assert "jetstream" in server.config_text()
    finally:
        server.close()
    assert not server.running


def test_the_go_profiler_is_off_unless_asked_for(tmp_path) -> None:
    assert "prof_port" not in NatsServer(store_dir=tmp_path / "off").config_text()
    with NatsServer(store_dir=tmp_path / "on", prof_port=0) as server:
        assert server.prof_port  # a free port was taken
        url = f"http://{server.host}:{server.prof_port}/debug/pprof/heap?debug=1&gc=1"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
    # the soak reads the live heap from the runtime.MemStats at the end of this page
    assert "# HeapAlloc = " in text and "# NumForcedGC = 1" in text


def test_a_taken_port_fails_with_the_servers_reason(nats_server: NatsServer) -> None:
    clash = NatsServer(port=nats_server.port, name="clash")
    with pytest.raises(ServerError, match="clash"):
        clash.start(timeout=10)
    clash.close()


async def test_cluster_routes_messages_between_nodes(
    nats_cluster: NatsCluster, keyring: Keyring
) -> None:
    first, last = nats_cluster.urls[0], nats_cluster.urls[-1]
    alice = await Bus.connect(first, keyring=keyring, sender="alice")
    bob = await Bus.connect(last, keyring=keyring, sender="bob")
    got = []
    await bob.subscribe("t.cluster", lambda m: got.append(m.body))
    await bob.flush()

    async def routed() -> bool:  # interest propagates over routes asynchronously
        await alice.publish("t.cluster", "ping")
        return bool(got)

    await wait_until(routed, timeout=10, interval=0.1, what="a message across the cluster")
    js = alice.nc.jetstream()
    await js.add_stream(name="probe", subjects=["probe.>"], num_replicas=3)
    ack = await js.publish("probe.x", b"1")
    assert ack.stream == "probe"
    await alice.close()
    await bob.close()
