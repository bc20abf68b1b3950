"""free_port: ports a server can still bind when it starts a moment later."""

from __future__ import annotations

import collections
import socket
from pathlib import Path

import pytest

from amcp import server
from amcp.server import free_port

RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")  # amcp runs its clusters on Linux


def test_ports_come_from_below_the_ephemeral_range() -> None:
    low = int(RANGE.read_text().split()[0])
    ports = {free_port() for _ in range(50)}
    assert all(1024 <= p < low for p in ports)
    assert len(ports) > 1  # chosen at random, so two servers rarely race for one


def test_a_port_in_use_is_never_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        monkeypatch.setattr(server, "_ports_below_ephemeral", lambda: range(taken, taken + 1))
        port = free_port()
        assert port != taken
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # and what it gives is free


def test_without_a_known_range_the_kernel_chooses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "_ports_below_ephemeral", lambda: None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))


def test_ports_handed_out_are_not_handed_out_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # A cluster's servers get their ports before any binds: none may get another's.
    monkeypatch.setattr(server, "_ports_below_ephemeral", lambda: range(21000, 21012))
    monkeypatch.setattr(server, "_handed_out", collections.deque(maxlen=1024), raising=False)
    ports = [free_port() for _ in range(12)]
    assert len(set(ports)) == len(ports)
