"""Three durable replicas as `amcp ctx serve` processes; writer processes hammer a counter,
an OR-set and an LWW map with majority writes while one replica is SIGKILLed and
restarted. At the end every replica holds exactly what was written. Also: a replica
killed mid-write and restarted alone holds every write it acknowledged.

Run as `python -m tests.integration.crdt.test_cluster W K MARKER` this file is a writer
process; it pauses three quarters through until the file MARKER exists, so some of its
writes surely happen after the restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from amcp import Bus, Keyring
from amcp.settings import Settings
from crdt import ContextStore, WriteConcernError
from tests.support.cli import start
from tests.support.crdt import probe
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]
MakeBus = Callable[..., Awaitable[Bus]]
WRITERS = 3
ROUNDS = 60


class Replica:
    """One `amcp ctx serve` process on its own directory."""

    def __init__(self, name: str, data_dir: Path, env: dict[str, str]) -> None:
        self.name, self.data_dir, self.env = name, data_dir, env
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        log = open(self.data_dir.with_suffix(".log"), "a")  # noqa: SIM115 (kept by Popen)
        self.proc = start(
            "ctx", "serve", "--data-dir", str(self.data_dir), "--id", self.name,
            "--gossip-interval", "0.2", "--json",
            env=self.env, stderr=log,
        )  # fmt: skip
        log.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"replica {self.name} did not start: {self.log()}"
        assert json.loads(line)["replica"] == self.name

    def log(self) -> str:
        return self.data_dir.with_suffix(".log").read_text()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture
def replicas(tmp_path: Path, env: dict[str, str]) -> Iterator[Callable[[str], Replica]]:
    """`replicas(name)` starts a replica; every one is stopped after the test."""
    started: list[Replica] = []

    def start(name: str) -> Replica:
        replica = Replica(name, tmp_path / name, env)
        started.append(replica)
        replica.start()
        return replica

    yield start
    for replica in started:
        replica.stop()


def writer(w: int, env: dict[str, str], marker: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.crdt.test_cluster",
            str(w),
            str(ROUNDS),
            str(marker),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_majority_writers_survive_a_replica_kill_and_every_replica_is_exact(
    replicas: Callable[[str], Replica], env: dict[str, str], make_bus: MakeBus, tmp_path: Path
) -> None:
    r = [replicas(f"r{i}") for i in range(3)]
    marker = tmp_path / "restarted"
    writers = [writer(w, env, marker) for w in range(WRITERS)]
    try:
        first = writers[0].stdout
        assert first is not None
        while int(first.readline() or ROUNDS) < ROUNDS // 5:
            pass  # wait (bounded by the writer) until a fifth of its writes are done
        r[2].kill()
        r[2].start()  # same directory, mid-run
        marker.touch()  # the writers' last quarter runs against the restarted replica
        outcomes = [(p.wait(timeout=90), p.stderr.read()) for p in writers]  # type: ignore[union-attr]
    finally:
        for p in writers:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [code for code, _ in outcomes] == [0] * WRITERS, outcomes

    bus = await make_bus("probe", cluster=env["AMCP_CLUSTER"])
    items = {f"w{w}-{i}" for w in range(WRITERS) for i in range(ROUNDS) if i % 2 == 0}
    fields = {f"w{w}": ROUNDS - 1 for w in range(WRITERS)}

    async def everyone(key: str, check: Callable[[Any], bool]) -> bool:
        return all([check(await probe(bus, f"r{i}", key)) for i in range(3)])

    await wait_until(
        lambda: everyone("c", lambda v: v == WRITERS * ROUNDS),
        10,
        what="every replica to hold the exact sum",
    )
    await wait_until(
        lambda: everyone("s", lambda v: v is not None and set(v) == items),
        10,
        what="every replica to hold the exact set",
    )
    maps = [await probe(bus, f"r{i}", "m") for i in range(3)]
    assert maps[0] == maps[1] == maps[2]
    shared = maps[0].pop("shared")
    assert maps[0] == fields
    assert re.fullmatch(r"w\d-\d+", shared)
    assert "refused" not in " ".join(rep.log() for rep in r)


async def test_a_killed_replica_restarted_alone_has_every_write_it_acknowledged(
    replicas: Callable[[str], Replica], env: dict[str, str], make_bus: MakeBus
) -> None:
    solo = replicas("solo")
    bus = await make_bus("writer", cluster=env["AMCP_CLUSTER"])
    store = await ContextStore.open(bus)
    acked: list[int] = []

    async def write_until_failure() -> None:
        i = 0
        while True:
            try:
                await store.add("s", i, write="one", timeout=1.0)
                await store.map_set("m", f"f{i}", i, write="one", timeout=1.0)
            except WriteConcernError:
                return
            acked.append(i)
            i += 1

    task = asyncio.create_task(write_until_failure())
    await wait_until(lambda: len(acked) >= 40, 20, what="40 acknowledged writes")
    solo.kill()  # mid-write: the write in flight is never acknowledged
    await task
    await store.close()  # no other replica is left to catch up from
    solo.start()
    assert set(acked) <= set(await probe(bus, "solo", "s"))
    fields = await probe(bus, "solo", "m")
    assert all(fields[f"f{i}"] == i for i in acked)


async def _write(w: int, rounds: int, marker: Path) -> None:
    settings = Settings.resolve()
    bus = await Bus.connect(
        list(settings.nats_urls),
        keyring=Keyring.load(settings.keyring_path),
        sender=f"writer{w}",
        cluster=settings.cluster,
    )
    store = await ContextStore.open(bus)
    opts: dict[str, Any] = {"write": "majority", "timeout": 10.0}
    for i in range(rounds):
        if i == rounds * 3 // 4:
            await wait_until(marker.exists, 60, what="the replica restart")
        await store.incr("c", **opts)
        await store.add("s", f"w{w}-{i}", **opts)
        if i % 2:
            await store.remove("s", f"w{w}-{i}", **opts)
        await store.map_set("m", f"w{w}", i, **opts)
        await store.map_set("m", "shared", f"w{w}-{i}", **opts)
        print(i + 1, flush=True)
    await store.close()
    await bus.close()


if __name__ == "__main__":
    asyncio.run(_write(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])))
    os._exit(0)
