"""agents.cluster: amcp on several NATS servers. Role-based NATS users and permissions,
TLS material, authenticated server configurations, and a local multi-node cluster of
nats-servers and agents (`amcp cluster`), the same topology as deploy/docker-compose.yml.
"""

from agents.cluster.auth import ADMIN, CONSENSUS_AREAS, USERS, Passwords, permissions
from agents.cluster.certs import TlsFiles, make_tls
from agents.cluster.local import LocalCluster
from agents.cluster.natsconf import authenticated_node
from agents.cluster.secrets import ClusterSecrets
from agents.cluster.topology import DEFAULT_AGENTS, AgentSlot, parse_agents, place_agents

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
