"""Shared fixtures: real nats-servers on free ports, keyrings, buses that close themselves."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from amcp import Bus, Keyring, NatsCluster, NatsServer, tracing


@pytest.fixture
def spans() -> Iterator[list[tracing.SpanRecord]]:
    """Every span finished in this process during the test, as amcp.tracing's listeners
    (an OpenTelemetry exporter) receive them."""
    got: list[tracing.SpanRecord] = []
    tracing.add_span_listener(got.append)
    yield got
    tracing.remove_span_listener(got.append)


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """One JetStream-enabled nats-server for the whole session. Its file store limit is
    far above the disk: each test's cluster namespace reserves a 1 GiB audit stream that
    it never fills, and the default limit (75% of the free disk) ends reservations after
    a few dozen namespaces (57 on a 77 GB disk)."""
    with NatsServer(name="test-single", max_file_store="100T") as server:
        yield server


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """A 3-node routed cluster with JetStream, fresh for each test module."""
    with NatsCluster(3, base_dir=tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def keyring_file(tmp_path: Path, keyring: Keyring) -> Path:
    return keyring.save(tmp_path / "keyring.json")


@pytest.fixture
async def make_bus(nats_server: NatsServer, keyring: Keyring) -> AsyncIterator:
    """`await make_bus("alice")` gives a connected Bus; all are closed after the test."""
    buses: list[Bus] = []

    async def factory(
        sender: str, servers: str | list[str] | None = None, ring: Keyring | None = None, **kwargs
    ) -> Bus:
        bus = await Bus.connect(
            servers or nats_server.url, keyring=ring or keyring, sender=sender, **kwargs
        )
        buses.append(bus)
        return bus

    yield factory
    for bus in buses:
        await bus.close()


@pytest.fixture
def cli_env(nats_server: NatsServer, keyring_file: Path) -> dict[str, str]:
    """Environment for the `amcp` CLI (tests/support/cli.py) against the test server."""
    env = dict(os.environ)
    env.update(AMCP_NATS_URL=nats_server.url, AMCP_KEYRING=str(keyring_file))
    return env
