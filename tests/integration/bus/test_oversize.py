"""A frame over amcp's 1 MiB frame limit reaches amcp and is counted `oversize`: the servers
amcp starts and the ones deploy/ configures take larger payloads than amcp's own limit, so
the check and its counter are not dead code behind the server's. Real nats-servers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from agents.cluster import ClusterSecrets
from amcp import NatsServer, Reason
from amcp.envelope import FrameLimits
from amcp.server import find_nats_server, free_port
from tests.support.waiting import wait_until, wait_until_sync

LIMIT = FrameLimits().max_frame_bytes
DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "nats"


async def test_a_frame_over_the_limit_is_counted_oversize(
    make_bus: Callable[..., Any], nats_server: NatsServer
) -> None:
    bob = await make_bus("bob")
    got: list[Any] = []
    await bob.subscribe("t.big", lambda m: got.append(m.body))
    await bob.flush()
    raw = await nats.connect(nats_server.url)
    try:
        await raw.publish("t.big", os.urandom(LIMIT + 1))
        await raw.flush()
    finally:
        await raw.close()
    alice = await make_bus("alice")
    await alice.publish("t.big", "after")
    await bob.flush()
    await wait_until(lambda: got == ["after"], what="the message after the big frame")
    assert bob.rejections[Reason.OVERSIZE] == 1


@pytest.mark.parametrize("conf", ["nats.conf", "nats-tls.conf"])
def test_the_deploy_servers_take_frames_over_amcps_limit(conf: str, tmp_path: Path) -> None:
    """deploy/'s server config, run for real (ports and paths moved to this machine)."""
    made = ClusterSecrets.create(
        tmp_path / "secrets", routes=[("127.0.0.1", free_port())], tls_hosts=["127.0.0.1"]
    )
    for name in (made.auth_conf.name, made.cluster_auth_conf.name):
        shutil.copy(made.folder / name, tmp_path / name)
    port, http = free_port(), free_port()
    text = (
        (DEPLOY / conf)
        .read_text()
        .replace("0.0.0.0:4222", f"127.0.0.1:{port}")
        .replace("0.0.0.0:8222", f"127.0.0.1:{http}")
        .replace("0.0.0.0:6222", f"127.0.0.1:{free_port()}")
        .replace("/data/jetstream", str(tmp_path / "js"))
        .replace("/etc/nats/tls/", f"{made.folder}/tls/")
    )
    (tmp_path / conf).write_text(text)
    log = open(tmp_path / "log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [find_nats_server(), "-c", str(tmp_path / conf)],
        env={"NATS_NAME": "nats-1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # the INFO line every client reads on connect, before TLS and authentication (the
        # server is not `healthy` alone: its JetStream waits for the routes of the others)
        info: list[bytes] = []
        wait_until_sync(lambda: _info(port, info), 15, what=f"nats-server with {conf}")
        assert json.loads(info[0].split(b" ", 1)[1])["max_payload"] > LIMIT
    finally:
        server.terminate()
        server.wait(10)
        log.close()


def _info(port: int, into: list[bytes]) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            into.append(conn.makefile("rb").readline())
    except OSError:
        return False
    return True
