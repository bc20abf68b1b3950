"""`amcp cluster`: a multi-node cluster on this machine (up, status, env, down), the
secrets a docker-compose deployment needs (secrets), and the replicated streams a fresh
cluster should have before its agents start (prepare).
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.cluster.auth import ADMIN, DEFAULT_CLUSTERS, USERS
from agents.cluster.topology import DEFAULT_AGENTS, choose_agents, place_agents
from agents.runtime.subjects import AgentSubjects
from amcp.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_connection_options,
    add_json_option,
    connect,
    emit,
    port,
    seconds,
)
from amcp.errors import ConfigError
from amcp.subjects import Subjects

# What the commands run (the cluster's processes, TLS, the audit stream) loads when they
# run, not for --help.
if TYPE_CHECKING:
    from agents.cluster.local import LocalCluster

__all__ = ["DEFAULT_DATA_DIR", "register"]

DEFAULT_DATA_DIR = "~/.local/state/amcp/cluster"


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"where the cluster keeps its state, secrets, stores and logs "
        f"(env AMCP_CLUSTER_DIR; default {DEFAULT_DATA_DIR})",
    )


def _resolve_dir(args: argparse.Namespace) -> Path:
    text = args.data_dir or os.environ.get("AMCP_CLUSTER_DIR") or DEFAULT_DATA_DIR
    return Path(text).expanduser()


def register(sub: argparse._SubParsersAction) -> None:
    cluster = sub.add_parser(
        "cluster",
        help="run a multi-node cluster on this machine, or make secrets for docker-compose",
        description="A local cluster: routed nats-servers with users, role permissions and "
        "optional TLS, and amcp-agent processes of every role; the topology of "
        "deploy/docker-compose.yml without Docker.",
    )
    actions = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_up(actions)
    _add_status(actions)
    _add_env(actions)
    _add_down(actions)
    _add_secrets(actions)
    _add_prepare(actions)


def _add_up(actions: argparse._SubParsersAction) -> None:
    up = actions.add_parser("up", help="start servers and agents, return once all are running")
    up.add_argument("--nodes", type=int, default=3, metavar="N", help="NATS nodes (default 3)")
    _agents_options(up)
    up.add_argument("--name", default="default", metavar="NAME", help="amcp cluster name")
    up.add_argument("--tls", action="store_true", help="mutual TLS on client and route ports")
    up.add_argument(
        "--timeout", type=seconds(), default=60.0, metavar="S", help="start deadline (60)"
    )
    add_json_option(up)
    _data_dir(up)
    up.set_defaults(func=cmd_up)


def _agents_options(parser: argparse.ArgumentParser) -> None:
    """The agents a cluster runs (`up` starts them, `secrets` makes their identities)."""
    default = ",".join(f"{r}={n}" for r, n in DEFAULT_AGENTS.items())
    parser.add_argument("--agents", metavar="ROLE=N,...", help=f"agents (default {default})")
    parser.add_argument(
        "--voters",
        metavar="N",
        help=f"S5 agents, the voters on critical actions (default {DEFAULT_AGENTS['s5']})",
    )


def _add_status(actions: argparse._SubParsersAction) -> None:
    status = actions.add_parser("status", help="nodes, agents, health and membership")
    add_json_option(status)
    _data_dir(status)
    status.set_defaults(func=cmd_status)


def _add_env(actions: argparse._SubParsersAction) -> None:
    env = actions.add_parser(
        "env", help="print the environment that points amcp commands at the cluster"
    )
    env.add_argument("--user", default=ADMIN, choices=USERS, help="connect as (admin)")
    _data_dir(env)
    env.set_defaults(func=cmd_env)


def _add_down(actions: argparse._SubParsersAction) -> None:
    down = actions.add_parser("down", help="stop agents, then servers; nothing is left running")
    down.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="SIGKILL after S seconds (30)"
    )
    down.add_argument("--purge", action="store_true", help="also delete the data directory")
    add_json_option(down)
    _data_dir(down)
    down.set_defaults(func=cmd_down)


def _add_secrets(actions: argparse._SubParsersAction) -> None:
    secrets = actions.add_parser(
        "secrets",
        help="write the keyring, NATS users and TLS files a docker-compose cluster needs",
        description="Write into DIR: keyring.json, nats-<user>.password for every user, "
        "auth.conf (users, role permissions) and cluster-auth.conf (route user and routes) "
        "for the servers, an Ed25519 identity per agent (identities/ID.json, ids <role>-<n> "
        "as in deploy/docker-compose.yml) and roster.json granting each its role, and with "
        "--tls a CA and certificates under tls/.",
    )
    secrets.add_argument("folder", metavar="DIR")
    _agents_options(secrets)
    secrets.add_argument(
        "--hosts",
        default="nats-1,nats-2,nats-3",
        metavar="H,H,...",
        help="the NATS servers' host names (default nats-1,nats-2,nats-3)",
    )
    secrets.add_argument("--route-port", type=port(), default=6222, metavar="N")
    secrets.add_argument(
        "--clusters",
        default=",".join(DEFAULT_CLUSTERS),
        metavar="NAME,...",
        help="the amcp clusters (AMCP_CLUSTER) whose agents use these servers: their "
        "agents may create their audit stream and claims bucket, no other (default "
        f"{','.join(DEFAULT_CLUSTERS)})",
    )
    secrets.add_argument("--tls", action="store_true", help="also make TLS certificates")
    secrets.add_argument("--force", action="store_true", help="replace existing secrets")
    secrets.set_defaults(func=cmd_secrets)


def _add_prepare(actions: argparse._SubParsersAction) -> None:
    prepare = actions.add_parser(
        "prepare",
        help="create the cluster's JetStream streams with N replicas (before agents start)",
    )
    prepare.add_argument("--replicas", type=int, default=3, metavar="N", help="(default 3)")
    add_connection_options(prepare)
    prepare.set_defaults(func=cmd_prepare)


def cmd_up(args: argparse.Namespace) -> int:
    from agents.cluster.local import LocalCluster

    if not 1 <= args.nodes <= 9:
        raise ConfigError("--nodes must be 1-9")
    if args.timeout <= 0:
        raise ConfigError("--timeout must be > 0")
    agents = choose_agents(args.agents, args.voters)
    cluster = LocalCluster.up(
        _resolve_dir(args),
        nodes=args.nodes,
        agents=agents,
        cluster=args.name,
        tls=args.tls,
        timeout=args.timeout,
    )
    doc = cluster.status()
    emit(doc, args.json, _render(doc) + "\n\n" + _env_hint(cluster))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from agents.cluster.local import LocalCluster

    doc = LocalCluster.load(_resolve_dir(args)).status()
    emit(doc, args.json, _render(doc))
    return EXIT_OK if doc["up"] else EXIT_FAILED


def cmd_env(args: argparse.Namespace) -> int:
    from agents.cluster.local import LocalCluster

    cluster = LocalCluster.load(_resolve_dir(args))
    print(_exports(cluster, args.user))
    return EXIT_OK


def cmd_down(args: argparse.Namespace) -> int:
    from agents.cluster.local import LocalCluster

    if args.timeout <= 0:
        raise ConfigError("--timeout must be > 0")
    result = LocalCluster.load(_resolve_dir(args)).down(args.timeout, purge=args.purge)
    emit(
        result,
        args.json,
        f"stopped {result['stopped']} processes"
        + (f" ({result['killed']} had to be killed)" if result["killed"] else ""),
    )
    return EXIT_OK


def cmd_secrets(args: argparse.Namespace) -> int:
    from agents.cluster.identities import roles_of
    from agents.cluster.secrets import ClusterSecrets

    folder = Path(args.folder).expanduser()
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    if not hosts:
        raise ConfigError("--hosts names no host")
    clusters = [Subjects(c.strip()).cluster for c in args.clusters.split(",") if c.strip()]
    if not clusters:
        raise ConfigError("--clusters names no cluster")
    slots = place_agents(choose_agents(args.agents, args.voters), len(hosts))
    if ClusterSecrets(folder).keyring.exists() and not args.force:
        raise ConfigError(f"{folder} already holds secrets (--force replaces them)")
    made = ClusterSecrets.create(
        folder,
        routes=[(h, args.route_port) for h in hosts],
        tls_hosts=hosts if args.tls else None,
        clusters=clusters,
        agents=[(s.agent_id, roles_of(s.role)) for s in slots],
    )
    print(
        f"wrote the cluster's secrets to {made.folder}"
        + (" (with TLS)" if args.tls else "")
        + f"; identities for {', '.join(s.agent_id for s in slots)} in roster {made.roster}"
    )
    return EXIT_OK


def cmd_prepare(args: argparse.Namespace) -> int:
    import asyncio

    from agents.runtime.audit import STREAM_MAX_BYTES, STREAM_MAX_MSGS

    if args.replicas < 1:
        raise ConfigError("--replicas must be at least 1")

    async def prepare() -> int:
        bus = await connect(args, sender="cluster-prepare")
        try:
            subjects = AgentSubjects(bus.subjects)
            await bus.streams.ensure(
                subjects.audit_stream,
                [subjects.audit_all],
                max_msgs=STREAM_MAX_MSGS,
                max_bytes=STREAM_MAX_BYTES,
                replicas=args.replicas,
            )
            await bus.claims.ensure(args.replicas)
        finally:
            await bus.close()
        streams = [subjects.audit_stream, bus.claims.stream]
        emit(
            {"streams": streams, "replicas": args.replicas},
            args.json,
            f"streams {', '.join(streams)} ready ({args.replicas} replicas)",
        )
        return EXIT_OK

    return asyncio.run(prepare())


def _exports(cluster: LocalCluster, user: str) -> str:
    env = {
        "AMCP_NATS_URL": ",".join(cluster.urls),
        "AMCP_CLUSTER": cluster.cluster,
        **cluster.secrets.env(user),
    }
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())


def _env_hint(cluster: LocalCluster) -> str:
    where = shlex.quote(str(cluster.data_dir))
    return (
        f'point amcp commands at it:  eval "$(amcp cluster env --data-dir {where})"\n'
        f"stop it:                    amcp cluster down --data-dir {where}"
    )


def _render(doc: dict[str, Any]) -> str:
    def yes(flag: bool) -> str:
        return "yes" if flag else "NO"

    lines = [
        f"cluster {doc['cluster']} in {doc['data_dir']}: "
        + ("up" if doc["up"] else "DEGRADED")
        + (", TLS" if doc["tls"] else "")
    ]
    for n in doc["nodes"]:
        lines.append(
            f"  node  {n['name']:<14} {n['url']:<24} pid {n['pid']:<8} "
            f"running {yes(n['running'])}  healthy {yes(n['healthy'])}"
        )
    for a in doc["agents"]:
        lines.append(
            f"  agent {a['id']:<14} {a['role']:<3} on {a['node']:<12} pid {a['pid']:<8} "
            f"running {yes(a['running'])}  {a['state']}, {a['liveness']}"
        )
    return "\n".join(lines)
