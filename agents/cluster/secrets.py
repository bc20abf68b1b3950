"""A cluster's secrets in one folder: the amcp keyring, a NATS password per user, the
servers' `auth.conf` (users and role permissions) and `cluster-auth.conf` (the route user
and route URLs), an identity per agent under identities/ with the roster that grants each
its role (agents.cluster.identities), and optionally TLS files under tls/.

`amcp cluster up` keeps them in its data directory; `amcp cluster secrets DIR` writes them
for deploy/docker-compose.yml, which hands each file to its service as a docker secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from agents.cluster.auth import DEFAULT_CLUSTERS, ROUTE_USER, Passwords, authorization_block
from agents.cluster.certs import TlsFiles, make_tls
from agents.cluster.identities import AgentIdentities
from amcp.files import private_folder, write_private
from amcp.keyring import Keyring
from amcp.security import ConnectionSecurity

__all__ = ["ClusterSecrets"]


@dataclass(frozen=True)
class ClusterSecrets:
    folder: Path

    @classmethod
    def create(
        cls,
        folder: Path,
        *,
        routes: Sequence[tuple[str, int]],
        tls_hosts: Iterable[str] | None = None,
        clusters: Sequence[str] = DEFAULT_CLUSTERS,
        agents: Iterable[tuple[str, frozenset[str]]] = (),
    ) -> ClusterSecrets:
        """Fresh secrets: a keyring, passwords, server auth files for `routes` (host, port
        of every node's cluster listener) whose agents serve the amcp `clusters`, an
        identity and roster entry for each of `agents` (id, roles), and with `tls_hosts`,
        TLS certificates."""
        made = cls(Path(folder))
        private_folder(made.folder)
        Keyring.generate().save(made.keyring)
        passwords = Passwords.generate()
        passwords.save(made.folder)
        write_private(made.auth_conf, authorization_block(passwords, clusters))
        route = passwords.route()
        urls = [f"nats-route://{ROUTE_USER}:{route}@{host}:{port}" for host, port in routes]
        write_private(
            made.cluster_auth_conf,
            f"authorization {{ user: {ROUTE_USER}, password: {json.dumps(route)} }}\n"
            f"routes: {json.dumps(urls)}\n",
        )
        wanted = list(agents)
        if wanted:
            made.identities.provision(wanted, fresh=True)
        if tls_hosts is not None:
            make_tls(made.folder / "tls", tls_hosts)
        return made

    @property
    def keyring(self) -> Path:
        return self.folder / "keyring.json"

    @property
    def auth_conf(self) -> Path:
        return self.folder / "auth.conf"

    @property
    def cluster_auth_conf(self) -> Path:
        return self.folder / "cluster-auth.conf"

    @property
    def identities(self) -> AgentIdentities:
        """The agents' key files (identities/ID.json) and the roster (roster.json)."""
        return AgentIdentities(self.folder)

    @property
    def roster(self) -> Path | None:
        path = self.identities.roster
        return path if path.exists() else None

    def identity(self, agent_id: str) -> Path | None:
        """`agent_id`'s key file, None if these secrets hold none for it."""
        path = self.identities.path(agent_id)
        return path if path.exists() else None

    @property
    def tls(self) -> TlsFiles | None:
        files = TlsFiles(self.folder / "tls")
        return files if files.exists() else None

    def password_file(self, user: str) -> Path:
        return Passwords.path(self.folder, user)

    def security(self, user: str) -> ConnectionSecurity:
        """How `user` connects: its password, and the CA and client certificate if TLS."""
        tls = self.tls
        return ConnectionSecurity(
            user=user,
            password=self.password_file(user).read_text().strip(),
            tls_ca=tls.ca if tls else None,
            tls_cert=tls.client_cert if tls else None,
            tls_key=tls.client_key if tls else None,
        )

    def env(self, user: str) -> dict[str, str]:
        """Environment variables that make amcp commands connect as `user`."""
        env = {
            "AMCP_KEYRING": str(self.keyring),
            "AMCP_NATS_USER": user,
            "AMCP_NATS_PASSWORD_FILE": str(self.password_file(user)),
        }
        if self.roster is not None:  # so `amcp log`, `amcp coordinate` check identities
            env["AMCP_ROSTER"] = str(self.roster)
        tls = self.tls
        if tls is not None:
            env |= {
                "AMCP_TLS_CA": str(tls.ca),
                "AMCP_TLS_CERT": str(tls.client_cert),
                "AMCP_TLS_KEY": str(tls.client_key),
            }
        return env
