"""NATS users and per-role subject permissions: one user per VSM role, an `admin` for the
operator's CLI, and a `route` user the servers use among themselves.

Every agent shares the HMAC keyring, so signatures say "one of us" but not "which role";
NATS permissions add the role fence. An S1 may publish everywhere in amcp's namespace
except the consensus area, so a compromised or buggy S1 can neither propose nor vote
(the server refuses the frame before anyone sees it). No agent may delete or purge
JetStream streams, and an agent may create only amcp's own: the audit stream and the
claims bucket of the cluster(s) the permissions are made for (NATS wildcards match whole
tokens, so the names are spelled out), never one of its own that stores every heartbeat.
The same rules feed `amcp cluster up` and deploy/'s secrets.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.runtime.subjects import ROLES, AgentSubjects
from amcp.files import private_folder, write_private
from amcp.subjects import Subjects
from consensus.subjects import VOTE_AREA

__all__ = [
    "ADMIN",
    "CONSENSUS_AREAS",
    "DEFAULT_CLUSTERS",
    "ROUTE_USER",
    "USERS",
    "Passwords",
    "authorization_block",
    "own_streams",
    "permissions",
]

ADMIN = "admin"  # the operator: `amcp coordinate`, `members remove`, stream reads
ROUTE_USER = "route"
USERS = (*ROLES, ADMIN)
# amcp.<cluster>.<area>... subjects where proposals, ballots and decisions travel.
CONSENSUS_AREAS = (VOTE_AREA,)
VOTERS = frozenset(("s2", "s3", "s4", "s5"))  # roles that may take part in consensus
_JS_DESTRUCTIVE = [
    "$JS.API.STREAM.DELETE.>",
    "$JS.API.STREAM.PURGE.>",
    "$JS.API.STREAM.MSG.DELETE.>",
    "$JS.API.STREAM.UPDATE.>",
]
# JetStream API calls that read, or make consumers to read: any stream
_JS_READ = [
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.*",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.MSG.GET.*",
    "$JS.API.DIRECT.GET.>",
    "$JS.API.CONSUMER.>",
]
DEFAULT_CLUSTERS = ("default",)


def own_streams(cluster: str) -> list[str]:
    """What an agent of `cluster` may create or write in JetStream: the create calls of
    its audit stream and claims bucket, and the claims' keys."""
    from amcp.claims import claims_bucket  # imports nats, which `amcp cluster --help` need not

    bucket = claims_bucket(cluster)
    return [
        f"$JS.API.STREAM.CREATE.{AgentSubjects(Subjects(cluster)).audit_stream}",
        f"$JS.API.STREAM.CREATE.KV_{bucket}",
        f"$KV.{bucket}.>",
    ]


def permissions(user: str, clusters: Sequence[str] = DEFAULT_CLUSTERS) -> dict[str, Any]:
    """The nats-server `permissions` map of one user, for agents of `clusters`."""
    if user == ADMIN:
        return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
    if user not in ROLES:
        raise ValueError(f"no NATS user {user!r}: one of {', '.join(USERS)}")
    deny = list(_JS_DESTRUCTIVE)
    if user not in VOTERS:
        deny += [f"amcp.*.{area}.>" for area in CONSENSUS_AREAS]
    allow = ["amcp.*.>", "_INBOX.>", *_JS_READ]
    for cluster in dict.fromkeys(clusters):
        allow += own_streams(cluster)
    return {"publish": {"allow": allow, "deny": deny}, "subscribe": {"allow": [">"]}}


@dataclass(frozen=True)
class Passwords:
    """A random password per user (roles, admin, route), kept as files of mode 0600."""

    by_user: dict[str, str]

    @classmethod
    def generate(cls) -> Passwords:
        return cls({u: secrets.token_urlsafe(24) for u in (*USERS, ROUTE_USER)})

    @classmethod
    def load(cls, folder: Path) -> Passwords:
        return cls({u: cls.path(folder, u).read_text().strip() for u in (*USERS, ROUTE_USER)})

    @staticmethod
    def path(folder: Path, user: str) -> Path:
        return Path(folder) / f"nats-{user}.password"

    def save(self, folder: Path) -> None:
        private_folder(folder)
        for user, password in self.by_user.items():
            write_private(self.path(folder, user), password + "\n")

    def route(self) -> str:
        return self.by_user[ROUTE_USER]


def authorization_block(passwords: Passwords, clusters: Sequence[str] = DEFAULT_CLUSTERS) -> str:
    """nats-server config: the client users with their permissions for `clusters`."""
    users = [
        {"user": u, "password": passwords.by_user[u], "permissions": permissions(u, clusters)}
        for u in USERS
    ]
    return "authorization {\n  users = " + json.dumps(users, indent=2) + "\n}\n"
