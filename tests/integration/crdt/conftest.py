"""Fixtures of the CRDT integration tests: a cluster namespace of the test's own for the
`amcp ctx` subprocesses, and three durable members in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from amcp import Bus
from crdt import ContextStore

MakeBus = Callable[..., Awaitable[Bus]]


@pytest.fixture
def env(cli_env: dict[str, str], cluster_name: str) -> dict[str, str]:
    """The CLI environment on a cluster namespace of its own."""
    return {**cli_env, "AMCP_CLUSTER": cluster_name}


@pytest.fixture
async def members(
    make_bus: MakeBus, env: dict[str, str], tmp_path: Path
) -> AsyncIterator[list[ContextStore]]:
    """Three durable members m0..m2 in this process (the event loop keeps serving them
    while a CLI subprocess runs). Not the voting agents of tests/integration/conftest.py."""
    stores = []
    for i in range(3):
        bus = await make_bus(f"m{i}", cluster=env["AMCP_CLUSTER"])
        stores.append(await ContextStore.open(bus, replica_id=f"m{i}", data_dir=tmp_path / f"m{i}"))
    yield stores
    for store in stores:
        await store.close()
