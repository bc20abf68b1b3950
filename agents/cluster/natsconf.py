"""The nats-server configuration of one node of an authenticated cluster: the client users
and permissions, the route listener with its own user, and TLS on both when the secrets
hold certificates. This is the text deploy/nats/*.conf gets through `include`, inlined.
"""

from __future__ import annotations

import json
from pathlib import Path

from agents.cluster.secrets import ClusterSecrets
from amcp.server import NatsServer

__all__ = ["authenticated_node", "tls_block"]


def tls_block(cert: Path, key: Path, ca: Path, indent: str = "") -> str:
    """A `tls {}` block that also demands a certificate from the other side (mutual TLS)."""
    lines = [
        "tls {",
        f"  cert_file: {json.dumps(str(cert))}",
        f"  key_file: {json.dumps(str(key))}",
        f"  ca_file: {json.dumps(str(ca))}",
        "  verify: true",
        "  timeout: 5",
        "}",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


def authenticated_node(
    secrets: ClusterSecrets,
    *,
    name: str,
    host: str,
    store_dir: Path,
    route_port: int | None,
    cluster_name: str = "amcp",
    port: int = 0,
    http_port: int = 0,
    prof_port: int | None = None,
) -> NatsServer:
    """A NatsServer (not started) with users, role permissions, routes and optional TLS;
    every JetStream write is synced to disk before it is acknowledged. With no `route_port`
    the server stands alone: a cluster block without peers would keep JetStream waiting
    for them ("still recovering meta layer") forever."""
    tls = secrets.tls
    route_tls = tls_block(tls.server_cert, tls.server_key, tls.ca, "  ") if tls else ""
    routes = "".join(f"  {line}\n" for line in secrets.cluster_auth_conf.read_text().splitlines())
    cluster = (
        f"cluster {{\n  name: {cluster_name}\n  listen: {host}:{route_port}\n"
        + routes
        + route_tls
        + "}\n"
        if route_port is not None
        else ""
    )
    extra = (
        secrets.auth_conf.read_text()
        + cluster
        + (tls_block(tls.server_cert, tls.server_key, tls.ca) if tls else "")
    )
    return NatsServer(
        port=port,
        host=host,
        http_port=http_port,
        prof_port=prof_port,
        store_dir=store_dir,
        name=name,
        sync_always=True,
        extra_config=extra,
    )
