"""A cluster on one machine: N authenticated nats-servers (routes, JetStream, every write
synced) and `amcp-agent` processes of every role beside them, the topology of
deploy/docker-compose.yml without Docker.

Its state (pids, ports, URLs) is a JSON file in the data directory, so `amcp cluster
status` and `down` work from another shell. Processes run in sessions of their own and
outlive the `up` command; `down` stops agents first (they drain and leave), then servers,
and SIGKILLs whatever did not exit in time. A pid is only signalled while its command
line still names what we started, so a recycled pid is never hit.

`hosts` and `enter` let the chaos tests put each node and its agents in a network
namespace of their own: node i listens on hosts[i] and is started inside enter(i).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from agents.cluster.auth import ADMIN
from agents.cluster.identities import roles_of
from agents.cluster.natsconf import authenticated_node
from agents.cluster.secrets import ClusterSecrets
from agents.cluster.topology import DEFAULT_AGENTS, AgentSlot, place_agents
from agents.process.child import AgentProcess
from agents.runtime.audit import STREAM_MAX_BYTES, STREAM_MAX_MSGS
from agents.runtime.client import AgentClient
from agents.runtime.subjects import AgentSubjects
from amcp.bus import Bus
from amcp.errors import (
    AmcpError,
    CircuitOpen,
    ConfigError,
    NoResponders,
    RequestTimeout,
    ServerError,
)
from amcp.files import private_folder
from amcp.keyring import Keyring
from amcp.server import NatsServer, free_port
from amcp.subjects import Subjects

__all__ = ["STATE_FILE", "LocalCluster"]

STATE_FILE = "cluster.json"
Enter = Callable[[int], AbstractContextManager[Any]]


@contextlib.contextmanager
def _nowhere(_: int) -> Iterator[None]:
    yield


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _agent_marker(agent_id: str) -> str:
    return f"--id {agent_id} "


def _alive(pid: int | None, marker: str) -> bool:
    """The process exists, is not a zombie (an exited child not yet reaped), and its
    command line contains `marker`."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[0] == "Z":
        return False
    return marker in _cmdline(pid)


def _healthy(http_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{http_url}/healthz", timeout=1.0) as resp:
            return resp.status == 200
    except OSError:
        return False


def _new_state(cluster: str, tls: bool) -> dict[str, Any]:
    """What cluster.json holds before any node or agent starts."""
    return {
        "version": 1,
        "cluster": cluster,
        "tls": tls,
        "started": time.time(),
        "nodes": [],
        "agents": [],
    }


class LocalCluster:
    """A running (or loaded) local cluster. Build with `up` or `load`."""

    def __init__(self, data_dir: Path, state: dict[str, Any]) -> None:
        self.data_dir = Path(data_dir)
        self.state = state
        self.secrets = ClusterSecrets(self.data_dir / "secrets")
        self.servers: list[NatsServer] = []  # only in the process that started them
        self.agents: dict[str, AgentProcess] = {}
        self._enter: Enter = _nowhere

    # -- state ------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    @property
    def cluster(self) -> str:
        return str(self.state["cluster"])

    @property
    def urls(self) -> list[str]:
        return [n["url"] for n in self.state["nodes"]]

    def _save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2))
        os.replace(tmp, self.state_path)

    @classmethod
    def load(cls, data_dir: Path) -> LocalCluster:
        path = Path(data_dir) / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"no cluster in {data_dir} (start one with `amcp cluster up`)"
            ) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        return cls(Path(data_dir), state)

    # -- up ---------------------------------------------------------------------------

    @classmethod
    def up(
        cls,
        data_dir: Path,
        *,
        nodes: int = 3,
        agents: dict[str, int] | None = None,
        cluster: str = "default",
        tls: bool = False,
        hosts: list[str] | None = None,
        enter: Enter | None = None,
        agent_args: list[str] | None = None,
        audit_max_msgs: int = STREAM_MAX_MSGS,
        profile: bool = False,
        timeout: float = 60.0,
    ) -> LocalCluster:
        """Start servers and agents and return once every agent is a running member.
        On failure, everything started so far is stopped again. `audit_max_msgs` caps the
        cluster's audit stream (its oldest entries go first). `profile` turns on each
        server's Go profiler (its URL is the node's "prof"), for the soak's heap figures."""
        data_dir = Path(data_dir).expanduser().resolve()
        hosts = cls._hosts_to_start(data_dir, nodes, cluster, hosts)
        private_folder(data_dir)
        route_ports = [free_port(h) if h == "127.0.0.1" else 6222 for h in hosts]
        slots = place_agents(DEFAULT_AGENTS if agents is None else agents, nodes)
        voters = "--voter" in (agent_args or [])
        secrets = ClusterSecrets.create(
            data_dir / "secrets",
            routes=list(zip(hosts, route_ports, strict=True)),
            tls_hosts=sorted(set(hosts)) if tls else None,
            clusters=[cluster],
            agents=[(s.agent_id, roles_of(s.role, voters)) for s in slots],
        )
        self = cls(data_dir, _new_state(cluster, tls))
        self.secrets = secrets
        self._enter = enter or _nowhere
        try:
            self._start_servers(hosts, route_ports, profile, timeout)
            asyncio.run(self._prepare_streams(min(3, nodes), audit_max_msgs, timeout))
            for slot in slots:
                self._start_agent(slot, agent_args or [])
            self._save()
            asyncio.run(self.wait_members({s.agent_id for s in slots}, timeout))
        except BaseException:
            self.down()
            raise
        return self

    @classmethod
    def _hosts_to_start(
        cls, data_dir: Path, nodes: int, cluster: str, hosts: list[str] | None
    ) -> list[str]:
        """The nodes' hosts, once the arguments hold and no cluster runs in `data_dir`."""
        if nodes < 1:
            raise ConfigError("--nodes must be at least 1")
        Subjects(cluster)  # validates the name
        if (data_dir / STATE_FILE).exists():
            old = cls.load(data_dir)
            if old.running_processes():
                raise ConfigError(
                    f"a cluster is already running in {data_dir}; `amcp cluster down` first"
                )
        hosts = hosts or ["127.0.0.1"] * nodes
        if len(hosts) != nodes:
            raise ConfigError(f"{nodes} nodes need {nodes} hosts, not {len(hosts)}")
        return hosts

    def _start_servers(
        self, hosts: list[str], route_ports: list[int], profile: bool, timeout: float
    ) -> None:
        for i, (host, route_port) in enumerate(zip(hosts, route_ports, strict=True)):
            with self._enter(i):
                server = authenticated_node(
                    self.secrets,
                    name=f"{self.cluster}-n{i + 1}",
                    host=host,
                    store_dir=self.data_dir / f"n{i + 1}",
                    route_port=route_port if len(hosts) > 1 else None,
                    port=0 if host == "127.0.0.1" else 4222,
                    http_port=0 if host == "127.0.0.1" else 8222,
                    prof_port=(0 if host == "127.0.0.1" else 6060) if profile else None,
                ).start(wait=False)
            self.servers.append(server)
            self.state["nodes"].append(
                {
                    "name": server.name,
                    "pid": server.pid,
                    "url": server.url,
                    "http": f"http://{host}:{server.http_port}",
                    "route_port": route_port,
                    "conf": str(server.store_dir / f"{server.name}.conf"),
                }
                | ({"prof": f"http://{host}:{server.prof_port}"} if profile else {})
            )
        self._save()
        deadline = time.monotonic() + timeout
        for i, server in enumerate(self.servers):
            with self._enter(i):
                server.wait_ready(max(0.1, deadline - time.monotonic()))

    async def _prepare_streams(self, replicas: int, max_msgs: int, timeout: float) -> None:
        """The audit stream and the claims bucket, replicated on up to 3 servers, before
        any agent makes an R1."""
        subjects = AgentSubjects(Subjects(self.cluster))
        bus = await self.connect(ADMIN)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    await bus.streams.ensure(
                        subjects.audit_stream,
                        [subjects.audit_all],
                        max_msgs=max_msgs,
                        max_bytes=STREAM_MAX_BYTES,
                        replicas=replicas,
                    )
                    await bus.claims.ensure(replicas)
                    return
                except AmcpError:  # JetStream elects its meta leader a moment after start
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await bus.close()

    def agent_urls(self, node: int) -> str:
        """Every node's URL, the agent's own node first."""
        urls = self.urls
        return ",".join(urls[node:] + urls[:node])

    def agent_process(self, slot: AgentSlot, extra_args: list[str]) -> AgentProcess:
        secure = ["--nats-user", slot.role]
        secure += ["--nats-password-file", str(self.secrets.password_file(slot.role))]
        tls = self.secrets.tls
        if tls is not None:
            secure += ["--tls-ca", str(tls.ca), "--tls-cert", str(tls.client_cert)]
            secure += ["--tls-key", str(tls.client_key)]
        return AgentProcess(
            slot.role,
            slot.agent_id,
            nats=self.agent_urls(slot.node),
            keyring=self.secrets.keyring,
            cluster=self.cluster,
            data_dir=self.data_dir / "agents" / slot.agent_id,
            identity=self.secrets.identity(slot.agent_id),
            roster=self.secrets.roster,
            args=[*secure, *extra_args],
            log_dir=self.data_dir / "logs",
        )

    def _start_agent(self, slot: AgentSlot, extra_args: list[str]) -> AgentProcess:
        proc = self.agent_process(slot, extra_args)
        with self._enter(slot.node):
            proc.start()
        self.agents[slot.agent_id] = proc
        entry = {
            "id": slot.agent_id,
            "role": slot.role,
            "node": slot.node,
            "pid": proc.pid,
            "log": str(proc.log_path),
            "args": extra_args,
        }
        self.state["agents"] = [a for a in self.state["agents"] if a["id"] != slot.agent_id]
        self.state["agents"].append(entry)
        return proc

    def restart_agent(self, agent_id: str) -> AgentProcess:
        """Start an agent of this cluster again (after it was killed), same id and data."""
        entry = next(a for a in self.state["agents"] if a["id"] == agent_id)
        slot = AgentSlot(entry["id"], entry["role"], entry["node"])
        proc = self._start_agent(slot, list(entry.get("args", [])))
        self._save()
        return proc

    async def connect(
        self,
        user: str = ADMIN,
        sender: str | None = None,
        urls: list[str] | None = None,
        **options: Any,
    ) -> Bus:
        """A Bus into this cluster as `user` (admin by default), on `urls` (all nodes)."""
        return await Bus.connect(
            urls or self.urls,
            keyring=Keyring.load(self.secrets.keyring),
            sender=sender,
            cluster=self.cluster,
            security=self.secrets.security(user),
            **options,
        )

    async def wait_members(self, ids: set[str], timeout: float = 60.0) -> None:
        """Until every agent in `ids` is a running, alive member; ServerError with the
        agent's log if one of them exits first."""
        bus = await self.connect(ADMIN)
        try:
            client = AgentClient(bus, timeout=2.0)
            deadline = time.monotonic() + timeout
            while True:
                for agent_id in ids:
                    proc = self.agents.get(agent_id)
                    if proc is not None and not proc.running:
                        raise ServerError(
                            f"agent {agent_id} exited with {proc.returncode}:\n"
                            + "\n".join(proc.log_text().splitlines()[-15:])
                        )
                # while agents start, failed calls open the breaker: it refuses, then retries
                with contextlib.suppress(NoResponders, RequestTimeout, CircuitOpen):
                    view = await client.members()
                    ready = {
                        m.id for m in view.members if m.state == "running" and m.liveness == "alive"
                    }
                    if ids <= ready:
                        return
                if time.monotonic() > deadline:
                    raise ServerError(f"agents not all running after {timeout}s: {sorted(ids)}")
                await asyncio.sleep(0.2)
        finally:
            await bus.close()

    # -- status and down ---------------------------------------------------------------

    def running_processes(self) -> list[int]:
        pids = [n["pid"] for n in self.state["nodes"] if _alive(n["pid"], n["conf"])]
        pids += [a["pid"] for a in self.state["agents"] if _alive(a["pid"], _agent_marker(a["id"]))]
        return pids

    def status(self, members: bool = True) -> dict[str, Any]:
        """Nodes (process, health), agents (process, and membership as the cluster sees it)."""
        nodes = [
            {
                "name": n["name"],
                "url": n["url"],
                "pid": n["pid"],
                "running": _alive(n["pid"], n["conf"]),
                "healthy": _healthy(n["http"]),
            }
            for n in self.state["nodes"]
        ]
        view: dict[str, dict[str, Any]] = {}
        if members and any(n["healthy"] for n in nodes):
            with contextlib.suppress(AmcpError):
                view = asyncio.run(self._member_states())
        agents = [
            {
                "id": a["id"],
                "role": a["role"],
                "node": self.state["nodes"][a["node"]]["name"],
                "pid": a["pid"],
                "running": _alive(a["pid"], _agent_marker(a["id"])),
                "state": view.get(a["id"], {}).get("state", "unknown"),
                "liveness": view.get(a["id"], {}).get("liveness", "unknown"),
            }
            for a in self.state["agents"]
        ]
        up = all(n["running"] and n["healthy"] for n in nodes) and all(a["running"] for a in agents)
        return {
            "cluster": self.cluster,
            "data_dir": str(self.data_dir),
            "tls": self.state.get("tls", False),
            "up": up,
            "nodes": nodes,
            "agents": agents,
        }

    async def _member_states(self) -> dict[str, dict[str, Any]]:
        bus = await self.connect(ADMIN)
        try:
            view = await AgentClient(bus, timeout=2.0).members()
        finally:
            await bus.close()
        return {m.id: {"state": m.state, "liveness": m.liveness} for m in view.members}

    def down(self, timeout: float = 30.0, purge: bool = False) -> dict[str, int]:
        """Stop agents (SIGTERM: they drain and leave), then servers; SIGKILL past
        `timeout`. Returns how many were stopped and how many had to be killed."""
        agents = [(a["pid"], _agent_marker(a["id"])) for a in self.state["agents"]]
        nodes = [(n["pid"], n["conf"]) for n in self.state["nodes"]]
        killed = _stop_all(agents, timeout) + _stop_all(nodes, timeout)
        for proc in self.agents.values():
            proc.close()  # reaps the children this process started
        for server in self.servers:
            server.stop()
        stopped = len([p for p, _ in agents + nodes if p])
        self.state_path.unlink(missing_ok=True)
        if purge:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        return {"stopped": stopped, "killed": killed}


def _stop_all(procs: list[tuple[int | None, str]], timeout: float) -> int:
    """SIGTERM each live process group, wait, SIGKILL the rest; how many were killed."""
    live = [(pid, marker) for pid, marker in procs if _alive(pid, marker)]
    for pid, _ in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # type: ignore[arg-type]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p, m) for p, m in live):
        time.sleep(0.05)
    killed = 0
    for pid, marker in live:
        if _alive(pid, marker):
            killed += 1
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # type: ignore[arg-type]
    return killed
