"""A 3-host cluster for chaos tests: each NATS node and its agents (an S1 and an S5 voter
per host, all durable CRDT replicas) in a network namespace of its own, the test itself in
a fourth (the driver), all on one bridge. Built once per module; each test leaves it whole.

A test that cannot get network namespaces fails with the reason; it never skips.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.cluster import LocalCluster
from tests.support.chaos import Chaos
from tests.support.netns import Hosts, NetnsUnavailable

NODES = 3
AGENTS = {"s1": NODES, "s5": NODES}  # one of each per host; the S5s are the voters
CLUSTER = "chaos"


@pytest.fixture(scope="module")
def chaos(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chaos]:
    """The cluster of the module's `AGENTS` (role -> count), one S1 and S5 per host if none."""
    try:
        hosts = Hosts(NODES).__enter__()
    except NetnsUnavailable as exc:
        pytest.fail(f"chaos tests need network namespaces, veth and tc as root: {exc}")
    try:
        with hosts.inside(hosts.driver):
            started = time.monotonic()
            cluster = LocalCluster.up(
                Path(tmp_path_factory.mktemp("chaos")),
                nodes=NODES,
                agents=getattr(request.module, "AGENTS", AGENTS),
                cluster=CLUSTER,
                hosts=hosts.addresses,
                enter=hosts.host,
                timeout=90,
            )
            print(f"chaos cluster up in {time.monotonic() - started:.1f}s")
            try:
                yield Chaos(hosts, cluster)
            finally:
                cluster.down(timeout=15)
    finally:
        hosts.close()
