"""Hosts in network namespaces, joined by veth links to a bridge, for chaos tests.

    ns <p>-sw:  bridge br0 with ports h1..hN, drv  (the "switch", a namespace of its own)
    ns <p>-h1:  eth0 10.77.0.1/24 --veth-- h1 on br0
    ...
    ns <p>-d:   eth0 10.77.0.100/24 (the driver: the test's own connections)

Nothing is added to the machine's own network namespace: the bridge lives in its own
namespace and each veth pair is created directly between two of ours. `cut(i)` takes host
i's switch port down (the host is cut off from all others, its own loopback and local
server still work), `heal(i)` brings it back; `loss(i, pct)` drops that share of the
packets to and from host i at random, with tc alone (an HTB class holding a zero-length
FIFO, chosen by a classic-BPF random filter), since this kernel has no sch_netem;
`counted(i)` tells how many packets were sent and dropped. tc cannot delay a packet here
(no sch_netem or sch_fq), so `delay(i, ms)` holds host i's packets in netfilter's queue
instead: iptables rules in its namespace hand what eth0 sends and receives to a handler
process there (nfqueue.py) that lets each go on `ms` later, in order.

`inside(name)` moves the calling thread into a namespace for a `with` block: sockets made
and processes started there belong to it (Linux namespaces are per thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.support.nfqueue import Delayer

__all__ = ["PREFIX", "Hosts", "NetnsUnavailable", "sweep_stale"]

PREFIX = "amcpc"
SUBNET = "10.77.0"
DRIVER_ADDRESS = f"{SUBNET}.100"
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsUnavailable(RuntimeError):
    """This machine or user cannot make network namespaces (the reason is the message)."""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def _tc(ns: str, *args: str) -> None:
    _ip("netns", "exec", ns, "tc", *args)


_QUEUED = (("OUTPUT", "-o"), ("INPUT", "-i"))  # what a host's eth0 sends and receives
_NFQUEUE = ("-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass")  # no handler: pass


def _iptables(ns: str, *args: str) -> None:
    _ip("netns", "exec", ns, "iptables", *args)


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsUnavailable(f"setns({path}) failed: {os.strerror(err)}")
    finally:
        os.close(fd)


def _live_pid(name: str) -> bool:
    try:
        pid = int(name[len(PREFIX) :].split("-")[0])
    except ValueError:
        return False
    return Path(f"/proc/{pid}").exists()


def sweep_stale() -> None:
    """Delete namespaces a killed earlier run of ours left behind (its pid is gone)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir("/run/netns"):
            if entry.startswith(PREFIX) and not _live_pid(entry):
                subprocess.run(["ip", "netns", "del", entry], capture_output=True, timeout=20)


class Hosts:
    """N hosts and a driver on one bridge. Use as a context manager: always cleaned up."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.tag = f"{PREFIX}{os.getpid()}"
        self.switch = f"{self.tag}-sw"
        self.driver = f"{self.tag}-d"
        self.names = [f"{self.tag}-h{i + 1}" for i in range(count)]
        self.addresses = [f"{SUBNET}.{i + 1}" for i in range(count)]
        self._made: list[str] = []
        self._delayers: dict[int, Delayer] = {}

    @staticmethod
    def check() -> None:
        """NetnsUnavailable with the reason unless namespaces, veth and tc can be used."""
        for tool in ("ip", "tc"):
            if shutil.which(tool) is None:
                raise NetnsUnavailable(f"`{tool}` is missing: apt-get install -y iproute2")
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root (CAP_NET_ADMIN, CAP_SYS_ADMIN)")

    def __enter__(self) -> Hosts:
        self.check()
        sweep_stale()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def _build(self) -> None:
        self._netns(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        ports = [*zip(self.names, self.addresses, strict=True), (self.driver, DRIVER_ADDRESS)]
        for i, (name, address) in enumerate(ports):
            port = self.port(i) if i < self.count else "drv"
            self._netns(name)
            _ip(
                "link", "add", "eth0", "netns", name, "type", "veth",
                "peer", "name", port, "netns", self.switch,
            )  # fmt: skip
            _ip("-n", name, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
            _ip("-n", self.switch, "link", "set", "dev", port, "master", "br0")
            _ip("-n", self.switch, "link", "set", "dev", port, "up")

    @staticmethod
    def port(i: int) -> str:
        return f"h{i + 1}"

    def close(self) -> None:
        """Delete every namespace made (their interfaces and the bridge go with them).
        Processes still inside would keep a namespace alive: stop them first."""
        for delayer in self._delayers.values():
            with contextlib.suppress(Exception):
                delayer.stop()
        self._delayers.clear()
        for name in reversed(self._made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)
        self._made.clear()

    # -- faults -----------------------------------------------------------------------

    def cut(self, i: int) -> None:
        """Host i can reach no other host (its switch port goes down)."""
        _ip("-n", self.switch, "link", "set", "dev", self.port(i), "down")

    def heal(self, i: int) -> None:
        _ip("-n", self.switch, "link", "set", "dev", self.port(i), "up")

    def loss(self, i: int, percent: float) -> None:
        """Drop `percent` of the packets to and from host i at random (0 removes it)."""
        for ns, dev in ((self.switch, self.port(i)), (self.names[i], "eth0")):
            subprocess.run(
                ["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root"],
                capture_output=True,
                timeout=20,
            )
            if percent <= 0:
                continue
            threshold = int(min(percent, 100) / 100 * 0xFFFFFFFF)
            _tc(ns, "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "1")
            _tc(ns, "class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb",
                "rate", "10gbit")  # fmt: skip
            _tc(ns, "class", "add", "dev", dev, "parent", "1:", "classid", "1:2", "htb",
                "rate", "10gbit")  # fmt: skip
            _tc(ns, "qdisc", "add", "dev", dev, "parent", "1:2", "pfifo", "limit", "0")
            # ld rand; rand >= threshold -> default class (ret 0), else class 1:2 (dropped):
            # P(drop) = percent. (The jump offsets were once swapped, so "5%" dropped 95%.)
            program = f"4,32 0 0 4294963256,53 1 0 {threshold},6 0 0 65538,6 0 0 0"
            _tc(ns, "filter", "add", "dev", dev, "parent", "1:", "bpf", "bytecode", program,
                "classid", "1:2")  # fmt: skip

    def counted(self, i: int) -> tuple[int, int]:
        """(sent, dropped) packets toward host i through its lossy switch port so far."""
        out = subprocess.run(
            ["ip", "netns", "exec", self.switch, "tc", "-s", "qdisc", "show", "dev", self.port(i)],
            capture_output=True, text=True, timeout=20,
        ).stdout  # fmt: skip
        for line in out.splitlines():  # the root qdisc's line comes first
            if "dropped" in line:
                sent = int(line.split(" pkt")[0].rsplit(" ", 1)[1])
                return sent, int(line.split("dropped")[1].split(",")[0])
        return 0, 0

    def delay(self, i: int, ms: float) -> int:
        """Hold every packet host i sends or receives for `ms` milliseconds, so a round
        trip to it takes 2 * ms more (0 removes it). Returns how many packets the delay
        this one replaces held."""
        if shutil.which("iptables") is None:
            raise NetnsUnavailable("`iptables` is missing: apt-get install -y iptables")
        ns, held = self.names[i], 0
        if i in self._delayers:
            for chain, way in _QUEUED:  # no new packets reach it, then it lets all go
                _iptables(ns, "-D", chain, way, "eth0", *_NFQUEUE)
            held = self._delayers.pop(i).stop()[0]
        if ms > 0:
            with self.inside(ns):
                self._delayers[i] = Delayer(ms)
            for chain, way in _QUEUED:
                _iptables(ns, "-A", chain, way, "eth0", *_NFQUEUE)
        return held

    # -- being somewhere --------------------------------------------------------------

    @contextlib.contextmanager
    def inside(self, name: str) -> Iterator[None]:
        """Run the block with the calling thread in namespace `name`."""
        with open("/proc/thread-self/ns/net") as home:
            _setns(f"/run/netns/{name}")
            try:
                yield
            finally:
                if _libc.setns(home.fileno(), _CLONE_NEWNET) != 0:
                    raise NetnsUnavailable("could not return to the original network namespace")

    def host(self, i: int) -> contextlib.AbstractContextManager[None]:
        return self.inside(self.names[i])
