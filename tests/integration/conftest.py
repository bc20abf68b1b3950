"""Fixtures shared by the integration areas: a cluster namespace of the test's own, agent
processes in one, voting agents in this process, and a folder for `amcp cluster up` that
is torn down whatever the test did."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agents.cluster import LocalCluster
from amcp import Keyring, NatsServer
from amcp.errors import ConfigError
from tests.support.agents import Cluster
from tests.support.consensus import Members


@pytest.fixture
def cluster_name() -> str:
    """A cluster namespace of the test's own: tests on the session's server never meet."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def agent_cluster(nats_server: NatsServer, keyring_file: Path, tmp_path: Path) -> Iterator[Cluster]:
    """`agent_cluster.spawn(role, id)` starts an agent process; all are killed after."""
    cluster = Cluster(nats_server, keyring_file, tmp_path)
    yield cluster
    cluster.close()


@pytest.fixture
async def members(nats_server: NatsServer, keyring: Keyring) -> AsyncIterator[Members]:
    """Voting agents and coordinators in this process (`await members.add(id)`)."""
    group = Members(nats_server.url, keyring)
    try:
        yield group
    finally:
        await group.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """The `--data-dir` of an `amcp cluster up`; nothing it started stays running after."""
    folder = tmp_path / "cluster"
    yield folder
    with contextlib.suppress(ConfigError):
        LocalCluster.load(folder).down(timeout=10)
