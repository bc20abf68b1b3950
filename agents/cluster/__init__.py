"""agents.cluster: amcp on several NATS servers. Role-based NATS users and permissions,
TLS material, authenticated server configurations, and a local multi-node cluster of
nats-servers and agents (`amcp cluster`), the same topology as deploy/docker-compose.yml.
"""

import typing

import lazy_loader

if typing.TYPE_CHECKING:
    from agents.cluster.auth import ADMIN, CONSENSUS_AREAS, USERS, Passwords, permissions
    from agents.cluster.certs import TlsFiles, make_tls
    from agents.cluster.local import LocalCluster
    from agents.cluster.natsconf import authenticated_node
    from agents.cluster.secrets import ClusterSecrets
    from agents.cluster.topology import DEFAULT_AGENTS, AgentSlot, parse_agents, place_agents

# Each name loads its module on first use (PEP 562): a command line that imports one
# module of this package does not pay for all the others.
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "auth": ["ADMIN", "CONSENSUS_AREAS", "USERS", "Passwords", "permissions"],
        "certs": ["TlsFiles", "make_tls"],
        "local": ["LocalCluster"],
        "natsconf": ["authenticated_node"],
        "secrets": ["ClusterSecrets"],
        "topology": ["DEFAULT_AGENTS", "AgentSlot", "parse_agents", "place_agents"],
    },
)

__all__ = [
    "ADMIN",
    "CONSENSUS_AREAS",
    "DEFAULT_AGENTS",
    "USERS",
    "AgentSlot",
    "ClusterSecrets",
    "LocalCluster",
    "Passwords",
    "TlsFiles",
    "authenticated_node",
    "make_tls",
    "parse_agents",
    "permissions",
    "place_agents",
]
