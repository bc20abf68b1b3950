"""CRDT benchmark: local operations per second, convergence time across three replicas,
and bytes on the wire for delta against full-state replication, beside raw nats-py.

    python bench/bench_crdt.py [--ops 200000] [--trials 3] [--writes 500] [--fields 10000]
                               [--rounds 20] [--json]

- Local ops/s per type through ReplicaState (the pure core), and through ContextStore
  (`write="local"`): an in-memory replica, and a durable one (fsync per group commit).
- Convergence: three durable replicas, one process, one embedded nats-server. A write on
  one replica, then the time until the other two hold it (watch callbacks), p50 and p99
  over --writes writes; beside it raw nats-py, one publish until two subscribers got it.
- Bytes: an LWW map of --fields fields on three durable replicas; each round changes 1%
  of the fields. Delta replication (what ContextStore sends) against full-state
  replication (the whole map once a round, through the same signed Bus), and the same
  payloads through raw nats-py (no envelope). Deltas are measured twice: a round's
  writes issued together (coalesced into one batch), and one write at a time, each
  awaited (on a durable replica: each fsynced and sent in a frame of its own, the worst
  case). Counted as payload bytes published (nats-py's out_bytes).

Targets (issue 3): >= 100,000 local counter increments/s; convergence p99 < 100 ms on
loopback; delta traffic <= 1/10 of full-state traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats

from amcp import Bus, Keyring, NatsServer
from crdt import ContextStore, ReplicaState
from crdt.messages import Deltas, Pull, PullReply, parse
from crdt.wire import pack

QUIET = 3600.0  # gossip interval that keeps anti-entropy out of a measurement


def pure_rates(ops: int, trials: int) -> dict[str, float]:
    """Local operations per second per type on ReplicaState, deltas included."""
    names = [f"k{i}" for i in range(100)]
    cases: dict[str, Callable[[ReplicaState, int], Any]] = {
        "gcounter incr": lambda s, i: s.incr(names[i % 100]),
        "pncounter decr": lambda s, i: s.decr(names[i % 100]),
        "lwwreg set": lambda s, i: s.set_register(names[i % 100], i),
        "lwwmap set": lambda s, i: s.map_set("m", names[i % 100], i),
        "lwwmap delete": lambda s, i: s.map_delete("m", names[i % 100]),
        "orset add": lambda s, i: s.set_add("s", i % 100),
        "orset remove": lambda s, i: s.set_remove("s", i % 100),
    }
    rates = {}
    for name, op in cases.items():
        runs = []
        for _ in range(trials):
            state = ReplicaState("bench")
            start = time.perf_counter()
            for i in range(ops):
                op(state, i)
            runs.append(ops / (time.perf_counter() - start))
        rates[name] = statistics.median(runs)
    return rates


async def store_rates(
    url: str, ring: Keyring, ops: int, trials: int, tmp: Path
) -> dict[str, float]:
    """ContextStore.incr (write="local") per second: in memory; durable with 256 writers
    in flight (group commit); durable one at a time (one fsync each)."""
    rates: dict[str, list[float]] = {"memory": [], "durable x256": [], "durable x1": []}
    for trial in range(trials):
        bus = await Bus.connect(url, keyring=ring, sender=f"rate{trial}")
        mem = await ContextStore.open(bus, gossip_interval=QUIET)
        start = time.perf_counter()
        for _ in range(ops):
            await mem.incr("c")
        rates["memory"].append(ops / (time.perf_counter() - start))
        await mem.close()
        durable = await ContextStore.open(
            bus, data_dir=tmp / f"rate{trial}", gossip_interval=QUIET, compact_every=1 << 30
        )
        n = ops // 4

        async def writer(count: int, store: ContextStore = durable) -> None:
            for _ in range(count):
                await store.incr("c")

        start = time.perf_counter()
        await asyncio.gather(*(writer(n // 256) for _ in range(256)))
        rates["durable x256"].append(n // 256 * 256 / (time.perf_counter() - start))
        start = time.perf_counter()
        await writer(2000)
        rates["durable x1"].append(2000 / (time.perf_counter() - start))
        await durable.close()
        await bus.close()
    return {name: statistics.median(runs) for name, runs in rates.items()}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def three_replicas(
    url: str, ring: Keyring, tmp: Path, tag: str, interval: float = QUIET
) -> tuple[list[ContextStore], list[Bus]]:
    stores, buses = [], []
    for i in range(3):
        buses.append(await Bus.connect(url, keyring=ring, sender=f"{tag}{i}"))
        stores.append(
            await ContextStore.open(
                buses[-1],
                replica_id=f"{tag}{i}",
                data_dir=tmp / f"{tag}{i}",
                gossip_interval=interval,
            )
        )
    return stores, buses


async def close_all(stores: list[ContextStore], buses: list[Bus]) -> None:
    for store in stores:
        await store.close()
    for bus in buses:
        await bus.close()


async def convergence(url: str, ring: Keyring, writes: int, tmp: Path) -> dict[str, list[float]]:
    """ms from the start of a write on one replica until the two others hold it; and the
    latency of a majority write (its acknowledgement)."""
    (a, b, c), buses = await three_replicas(url, ring, tmp, "conv")
    target = -1
    seen: set[str] = set()
    done = asyncio.Event()

    def watcher(name: str) -> Callable[[str, Any], None]:
        def on(key: str, value: Any) -> None:
            if value == target:
                seen.add(name)
                if len(seen) == 2:
                    done.set()

        return on

    b.watch("conv", watcher("b"))
    c.watch("conv", watcher("c"))
    samples, majority = [], []
    for i in range(writes):
        target = i
        seen.clear()
        done.clear()
        start = time.perf_counter()
        await a.set("conv", i)
        await asyncio.wait_for(done.wait(), 5)
        samples.append((time.perf_counter() - start) * 1000)
    for _ in range(writes):
        start = time.perf_counter()
        await a.incr("maj", write="majority")
        majority.append((time.perf_counter() - start) * 1000)
    await close_all([a, b, c], buses)
    return {"amcp": samples, "majority write": majority}


async def raw_convergence(url: str, writes: int) -> list[float]:
    """ms from a raw nats-py publish until two subscriber connections got it."""
    pub, s1, s2 = [await nats.connect(url) for _ in range(3)]
    target, seen, done = b"", set(), asyncio.Event()

    def sub(name: str) -> Callable[[Any], Any]:
        async def on(msg: Any) -> None:
            if msg.data == target:
                seen.add(name)
                if len(seen) == 2:
                    done.set()

        return on

    await s1.subscribe("bench.conv", cb=sub("1"))
    await s2.subscribe("bench.conv", cb=sub("2"))
    await s1.flush()
    await s2.flush()
    samples = []
    for i in range(writes):
        target = str(i).encode()
        seen.clear()
        done.clear()
        start = time.perf_counter()
        await pub.publish("bench.conv", target)
        await pub.flush()
        await asyncio.wait_for(done.wait(), 5)
        samples.append((time.perf_counter() - start) * 1000)
    for nc in (pub, s1, s2):
        await nc.close()
    return samples


async def full_record(bus: Bus, replica: str, key: str) -> list[Any]:
    """The whole state of `key` on `replica`, as anti-entropy would send it."""
    subject = bus.subjects.area("ctx", "rep", replica)
    reply = await bus.request(subject, Pull("bench", None, [key], {}).to_wire(), kind="ctx")
    answer = parse(reply.body)
    assert isinstance(answer, PullReply)
    return answer.records[0]


async def wire_bytes(
    url: str, ring: Keyring, fields: int, rounds: int, tmp: Path
) -> dict[str, Any]:
    """Payload bytes published over `rounds` rounds of 1% of the fields changing: deltas
    (each write awaited on its own, or a round's writes issued together and coalesced)
    against the full map each round, through amcp and through raw nats-py."""
    (a, b, c), buses = await three_replicas(url, ring, tmp, "wire")
    bus = buses[0]
    rng = random.Random(7)  # values with some entropy, so compression is not flattered
    for i in range(fields):
        await a.map_set("big", f"field{i:05d}", {"n": i, "v": rng.randbytes(6).hex()})
    await wait(lambda: b.local("big") == c.local("big") == a.local("big"))
    changed = max(1, fields // 100)
    raw = await nats.connect(url)
    keys = ("serial", "together", "full", "raw delta", "raw full", "serial msgs")
    out: dict[str, Any] = dict.fromkeys(keys, 0)

    async def raw_publish(payload: Any) -> int:
        before = raw.stats["out_bytes"]
        await raw.publish("bench.raw", pack(payload))
        return raw.stats["out_bytes"] - before

    for r in range(rounds):
        names = sorted({f"field{(r * 7919 + j * 97) % fields:05d}" for j in range(changed)})
        for mode in ("serial", "together"):
            before, msgs = bus.nc.stats["out_bytes"], bus.nc.stats["out_msgs"]
            writes = [a.map_set("big", n, {"n": -r, "v": rng.randbytes(6).hex()}) for n in names]
            if mode == "serial":
                for write in writes:
                    await write
            else:
                await asyncio.gather(*writes)
            await wait(lambda: b.local("big") == c.local("big") == a.local("big"))
            out[mode] += bus.nc.stats["out_bytes"] - before
            if mode == "serial":
                out["serial msgs"] += bus.nc.stats["out_msgs"] - msgs
        # The same round by full-state replication: the whole map in one signed message.
        full = await full_record(buses[1], a.replica_id, "big")
        body = Deltas(a.replica_id, 1, [full]).to_wire()
        before = bus.nc.stats["out_bytes"]
        await bus.publish(bus.subjects.area("bench", "full"), body, kind="ctx")
        await bus.flush()
        out["full"] += bus.nc.stats["out_bytes"] - before
        # Raw nats-py, no envelope: the changed fields' records, then the whole map.
        delta = ["big", "lwwmap", {name: full[2][name] for name in names}]
        out["raw delta"] += await raw_publish([delta])
        out["raw full"] += await raw_publish([full])
    out["full map bytes"] = len(pack(full))
    await raw.close()
    await close_all([a, b, c], buses)
    return out


async def wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("replicas did not converge")
        await asyncio.sleep(0.001)


async def gossip_bytes(url: str, ring: Keyring, tmp: Path, seconds: float = 3.0) -> float:
    """Idle anti-entropy traffic: payload bytes per second per replica (interval 1 s)."""
    stores, buses = await three_replicas(url, ring, tmp, "idle", interval=1.0)
    for i in range(100):
        await stores[0].incr(f"k{i}")
    await wait(lambda: all(s.local("k99") == 1 for s in stores))
    before = sum(bus.nc.stats["out_bytes"] for bus in buses)
    await asyncio.sleep(seconds)
    after = sum(bus.nc.stats["out_bytes"] for bus in buses)
    await close_all(stores, buses)
    return (after - before) / seconds / 3


async def main(args: argparse.Namespace) -> dict[str, Any]:
    ring = Keyring.generate()
    report: dict[str, Any] = {"pure ops/s": pure_rates(args.ops, args.trials)}
    with NatsServer(name="bench-crdt") as server, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        report["store incr/s"] = await store_rates(server.url, ring, args.ops, args.trials, tmp)
        conv = await convergence(server.url, ring, args.writes, tmp)
        raw = await raw_convergence(server.url, args.writes)
        report["convergence ms"] = {
            name: {"p50": percentile(s, 50), "p99": percentile(s, 99)}
            for name, s in (
                ("amcp", conv["amcp"]),
                ("raw nats-py", raw),
                ("majority write", conv["majority write"]),
            )
        }
        report["bytes"] = await wire_bytes(server.url, ring, args.fields, args.rounds, tmp)
        report["idle gossip B/s per replica"] = await gossip_bytes(server.url, ring, tmp)
    return report


def show(report: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"local ops/s, ReplicaState (median of {args.trials}):")
    for name, rate in report["pure ops/s"].items():
        print(f"  {name:16} {rate:>12,.0f}")
    print("ContextStore.incr, write=local:")
    for name, rate in report["store incr/s"].items():
        print(f"  {name:16} {rate:>12,.0f}")
    incr = report["store incr/s"]["memory"]
    print(f"  target >= 100,000 counter increments/s: {'ok' if incr >= 100_000 else 'MISSED'}")
    print(f"convergence across 3 durable replicas, {args.writes} writes (ms):")
    for name, q in report["convergence ms"].items():
        print(f"  {name:16} p50 {q['p50']:7.3f}   p99 {q['p99']:7.3f}")
    p99 = report["convergence ms"]["amcp"]["p99"]
    print(f"  target p99 < 100 ms: {'ok' if p99 < 100 else 'MISSED'}")
    b = report["bytes"]
    print(f"bytes, LWW map of {args.fields} fields, 1% changed per round, {args.rounds} rounds:")
    print(f"  one full map state           {b['full map bytes']:>10,} bytes (msgpack)")
    print(f"  full state, once a round     {b['full']:>10,} bytes")
    print(f"  deltas, a round's writes     {b['together']:>10,} bytes")
    print(f"  deltas, one write at a time  {b['serial']:>10,} bytes in {b['serial msgs']} messages")
    print(f"  raw nats-py, no envelope: delta {b['raw delta']:,}, full {b['raw full']:,} bytes")
    for mode, label in (("together", "a round's writes"), ("serial", "one at a time")):
        ratio = b[mode] / b["full"]
        verdict = "ok" if ratio <= 0.1 else "MISSED"
        print(f"  delta/full, {label}: {ratio:.4f} (1/{1 / ratio:.0f}); <= 1/10: {verdict}")
    print(f"idle anti-entropy: {report['idle gossip B/s per replica']:.0f} B/s per replica")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--fields", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments))
    if arguments.json:
        print(json.dumps(result, indent=2))
    else:
        show(result, arguments)
