"""Soak: a 3-node authenticated cluster (`amcp cluster up`'s LocalCluster: nats-servers
with JetStream syncing every write, agents of every role with durable replicas) under
steady load for a bounded time.

Load, from this process, at a fixed total rate, round robin over the drivers:
  crdt   majority writes: an item added to a set and a counter incremented
  call   tool calls to the S1 role (the catalogued `echo`, through the pool and audit)
  vote   quorum votes on `restart` with unique ids (S5 voters)
  task   tasks through the VSM loop (S3 `run-task`: S4, S5, S3, S2, S1 with the no-op
         python executor, S3* audit)
Each driver counts what was acknowledged; another kind of load is one more branch of `op`.

Reported: operations per second, p50/p99 latency per driver, beside raw nats-py
request/reply on the same cluster measured in the same run; RSS of every process sampled
over time (growth from the end of warm-up to the end); and the effects lost or duplicated,
which must be zero: an acknowledged set item missing on any replica (lost), a counter
above the number of increments sent (duplicated) or below the acknowledged ones (lost), a
committed decision that does not replay as committed (lost).

    python bench/bench_soak.py [--seconds 120] [--rate 100] [--sample 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats

from agents.client import AgentClient
from agents.cluster import ADMIN, LocalCluster
from agents.tasks import CycleResult, TaskSpec
from amcp import Bus
from amcp.errors import AmcpError
from consensus.coordinator import Coordinator
from consensus.model import Outcome
from crdt import ContextStore, Delta, ReplicaState
from crdt.errors import CrdtError
from crdt.messages import Pull, parse

AGENTS = {"s1": 2, "s2": 1, "s3": 1, "s4": 1, "s5": 3}


@dataclass
class Driver:
    name: str
    latencies: list[float] = field(default_factory=list)
    acked: int = 0
    failed: int = 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def raw_request_reply(cluster: LocalCluster, seconds: float) -> list[float]:
    """nats-py request/reply between two plain connections on the same cluster."""
    password = cluster.secrets.password_file(ADMIN).read_text().strip()
    opts = {"servers": cluster.urls[:1], "user": ADMIN, "password": password}  # one server
    server, client = await nats.connect(**opts), await nats.connect(**opts)

    async def echo(msg: Any) -> None:
        await msg.respond(msg.data)

    await server.subscribe("bench.raw", cb=echo)
    await server.flush()
    latencies, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        await client.request("bench.raw", b"x" * 64, timeout=2)
        latencies.append(time.perf_counter() - started)
    await client.close()
    await server.close()
    return latencies


async def soak(cluster: LocalCluster, seconds: float, rate: float, sample: float) -> int:
    pids = {n["name"]: n["pid"] for n in cluster.state["nodes"]}
    pids |= {a["id"]: a["pid"] for a in cluster.state["agents"]}
    raw = await raw_request_reply(cluster, 3.0)
    bus = await cluster.connect(sender="soak")
    store = await ContextStore.open(bus)
    coordinator = await Coordinator.open(bus, store=store)
    client = AgentClient(bus, timeout=5.0)
    crdt, call, vote, task = Driver("crdt"), Driver("call"), Driver("vote"), Driver("task")
    items: list[int] = []
    increments_sent = 0
    committed: list[int] = []
    memory: dict[str, list[int]] = {name: [] for name in pids}

    async def op(n: int) -> None:
        nonlocal increments_sent
        driver = (crdt, call, vote, task)[n % 4]
        started = time.perf_counter()
        try:
            if driver is crdt:
                increments_sent += 1
                await store.incr("soak.count", write="majority", timeout=5.0)
                await store.add("soak.items", n, write="majority", timeout=5.0)
                items.append(n)
            elif driver is call:
                await client.call("s1", "echo", {"text": f"soak {n}"})
            elif driver is task:
                spec = TaskSpec(description=f"soak {n}", executor="python", entry_point="noop")
                done = await client.call("s3", "run-task", spec.model_dump(), timeout=30.0)
                if not CycleResult.model_validate(done.output).success:
                    raise AmcpError(f"task {n} failed")
            else:
                result = await coordinator.coordinate(
                    "restart", {"n": n}, proposal_id=f"soak-{n}", timeout=5.0
                )
                if result.decision.outcome is not Outcome.COMMITTED or result.recorded is None:
                    raise AmcpError(f"vote {n}: {result.decision.outcome}")
                committed.append(n)
        except (AmcpError, CrdtError):
            driver.failed += 1
            return
        driver.acked += 1
        driver.latencies.append(time.perf_counter() - started)

    async def sampler() -> None:
        while True:
            for name, pid in pids.items():
                memory[name].append(rss_kib(pid))
            await asyncio.sleep(sample)

    sampling = asyncio.create_task(sampler())
    inflight: set[asyncio.Task[None]] = set()
    began = time.monotonic()
    for n in itertools.count():
        due = began + n / rate
        if due - began >= seconds:
            break
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        job = asyncio.create_task(op(n))
        inflight.add(job)
        job.add_done_callback(inflight.discard)
    await asyncio.gather(*inflight)
    elapsed = time.monotonic() - began
    sampling.cancel()

    # effects: every replica, every committed decision
    lost = duplicated = 0
    for replica in [a["id"] for a in cluster.state["agents"]]:
        count, held = await replica_values(bus, replica)
        lost += len(set(items) - set(held or ()))
        lost += max(0, crdt.acked - (count or 0))
        duplicated += max(0, (count or 0) - increments_sent)
    for n in committed:  # proposed again, each returns its first decision
        again = await coordinator.coordinate(
            "restart", {"n": n}, proposal_id=f"soak-{n}", timeout=5.0
        )
        if not (again.replayed and again.decision.outcome is Outcome.COMMITTED):
            lost += 1
    await coordinator.close()
    await store.close()
    await bus.close()

    total = crdt.acked + call.acked + vote.acked + task.acked
    print(f"soak: {elapsed:.0f} s at {rate:g} ops/s offered, {total / elapsed:.1f} ops/s done")
    print(f"  raw nats-py request/reply: p50 {pct(raw, 0.5):.2f} ms  p99 {pct(raw, 0.99):.2f} ms")
    for d in (crdt, call, vote, task):
        p50, p99 = pct(d.latencies, 0.5), pct(d.latencies, 0.99)
        print(
            f"  {d.name:<5} {d.acked:>6} ok {d.failed:>4} failed  p50 {p50:7.2f} ms  "
            f"p99 {p99:7.2f} ms  (p50 {p50 / pct(raw, 0.5):.1f}x raw)"
        )
    print("  RSS MiB over time (after warm-up .. end), growth:")
    growing = []
    for name, series in memory.items():
        warm = series[len(series) // 4 :] or series
        growth = warm[-1] / max(1, warm[0])
        points = " ".join(f"{v / 1024:.0f}" for v in warm[:: max(1, len(warm) // 8)])
        print(f"    {name:<12} {points:<40} x{growth:.2f}")
        if growth > 1.5:
            growing.append(name)
    print(f"  effects lost: {lost}  duplicated: {duplicated}")
    if growing:
        print(f"  memory grew by more than 1.5x: {', '.join(growing)}")
    return 0 if lost == duplicated == 0 and not growing else 1


async def probe(bus: Bus, replica: str, key: str) -> Any:
    """The value of `key` held by one particular replica, asked on its own subject (the
    pull that anti-entropy uses), not merged with anyone else's."""
    pull = Pull("soak", None, [key], {})
    reply = await bus.request(bus.subjects.area("ctx", "rep", replica), pull.to_wire(), kind="ctx")
    state = ReplicaState("soak")
    for record in parse(reply.body).records:
        state.apply(Delta.from_wire(record))
    return state.get(key)


async def replica_values(bus: Bus, replica: str) -> tuple[int | None, list[int] | None]:
    return await probe(bus, replica, "soak.count"), await probe(bus, replica, "soak.items")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=100.0, help="operations per second")
    parser.add_argument("--sample", type=float, default=5.0, help="RSS sampling interval")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="amcp-soak-") as tmp:
        cluster = LocalCluster.up(
            Path(tmp), nodes=3, agents=AGENTS, cluster="soak", agent_args=["--capability", "echo"]
        )
        try:
            return asyncio.run(soak(cluster, args.seconds, args.rate, args.sample))
        finally:
            cluster.down()


if __name__ == "__main__":
    raise SystemExit(main())
