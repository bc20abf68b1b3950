"""Clusters as the integration tests build them: three authenticated nats-servers (with or
without TLS) from fresh cluster secrets, a cluster started with `amcp cluster up` and the
environment `amcp cluster env` gives for it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from agents.cluster import ClusterSecrets, LocalCluster, authenticated_node
from amcp import NatsServer
from amcp.errors import ConfigError
from amcp.server import free_port
from tests.support.cli import amcp


@contextlib.contextmanager
def secured_nodes(
    base: Path, name: str, *, tls: bool = False, clusters: Sequence[str] | None = None
) -> Iterator[tuple[ClusterSecrets, list[NatsServer]]]:
    """Three routed nats-servers `<name>-n0..2` with users and role permissions (and mutual
    TLS with `tls`) for the amcp `clusters` (default: the secrets' own), closed after."""
    ports = [free_port() for _ in range(3)]
    extra: dict[str, Any] = {} if clusters is None else {"clusters": clusters}
    secrets = ClusterSecrets.create(
        base / "secrets",
        routes=[("127.0.0.1", p) for p in ports],
        tls_hosts=["127.0.0.1"] if tls else None,
        **extra,
    )
    servers = [
        authenticated_node(
            secrets, name=f"{name}-n{i}", host="127.0.0.1", store_dir=base / f"n{i}", route_port=p
        )
        for i, p in enumerate(ports)
    ]
    for server in servers:
        server.start(wait=False)
    try:
        for server in servers:
            server.wait_ready()
        yield secrets, servers
    finally:
        for server in servers:
            server.close()


@contextlib.contextmanager
def cluster_up(folder: Path, name: str, timeout: float = 120) -> Iterator[Path]:
    """`amcp cluster up --data-dir folder --name name` as a user runs it, for a module's
    tests; whatever they did, nothing it started stays running after."""
    up = amcp("cluster", "up", "--data-dir", str(folder), "--name", name, timeout=timeout)
    try:
        assert up.returncode == 0, up.stderr
        yield folder
    finally:
        with contextlib.suppress(ConfigError):
            LocalCluster.load(folder).down(timeout=10)


def env_of(data_dir: Path, user: str = "admin") -> dict[str, str]:
    """The environment `amcp cluster env` gives: amcp commands connect as `user`."""
    out = amcp("cluster", "env", "--data-dir", str(data_dir), "--user", user, timeout=90)
    assert out.returncode == 0, out.stderr
    env = dict(os.environ)
    for line in out.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    return env
