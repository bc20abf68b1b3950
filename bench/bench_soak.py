"""Soak: a 3-node authenticated cluster (`amcp cluster up`'s LocalCluster: nats-servers
with JetStream syncing every write, agents of every role with durable replicas) under
steady load for a bounded time, to show that memory stays bounded and nothing is lost.

Load, from this process, at a fixed total rate, round robin over the drivers. It is
steady: its live state does not grow, so memory must not either.
  crdt   majority writes: a counter incremented, and an LWW register of a fixed key space
         (KEYS keys) overwritten
  call   tool calls to the S1 role (the catalogued `echo`, through the pool and audit)
  task   tasks through the VSM loop (S3 `run-task`: S4, S5, S3, S2, S1 with the no-op
         python executor, S3* audit)
Every call and task appends to the cluster's audit stream (JetStream, R3, file-backed),
which keeps its newest STREAM_MAX_MSGS (1,000,000) entries: hours of this load, during
which the nats-servers' memory grows with it. The soak caps it at --audit-cap entries
(default AUDIT_CAP), reached within the warm-up, so that what is measured after it is the
steady state, and reports the stream's size.
  vote   (--votes only) quorum votes on `restart` with unique ids. Each decision is a
         record in the replicated context kept for the decision log's retention horizon
         (--horizon, default HORIZON s here, reached in the warm-up; one hour by default
         in amcp) and count limit (--max-decisions), so this load's state is steady too.

Reported: operations per second, p50/p99 latency per driver, beside raw nats-py
request/reply on the same cluster measured in the same run; the context keys each replica
holds (from its announcements) at the start and end; RSS of every process sampled over
time, and a verdict computed from it: after a warm-up (the first quarter), the mean of the
last half of the samples against the mean of the first half (see `verdict` for why means),
and the least-squares slope in KiB per 1000 operations. A process is "flat" if its mean
rose by less than FLAT_KIB or FLAT_SHARE.
A nats-server is judged by its live heap instead, with the same verdict. Its RSS is a
sawtooth of two cycles: the raft log of the R3 audit stream grows in its Go heap until
JetStream compacts it (a timer of 2 minutes plus a random part under one: nats-server's
stream monitor), and Go's collector lets the heap reach about twice what is live before it
collects, then returns freed pages to the OS only gradually. Where the samples fall in both
cycles moves its RSS by more than a leak could in a run of minutes (in an hour: 5-minute
peaks of 55-65 MiB with no trend; freed but not yet returned 3-35 MiB). The live heap is
the cause the RSS follows: every GC_EVERY samples the soak asks each server's Go profiler
(LocalCluster's profile=True, on loopback) to collect and then reads the runtime's
HeapAlloc, the bytes the server can still reach. A bounded live heap and a bounded number
of goroutines bound the RSS (Go's heap goal is the live heap times 1 + GOGC/100). Its RSS
and goroutines are reported beside it. The default run, ten minutes, leaves each half after
the warm-up longer than one compaction.
And the effects lost or duplicated, which must be zero: a counter above the
increments sent (duplicated) or below the acknowledged ones (lost), a register older than
its last acknowledged write (lost), on any replica; a committed decision still inside
the horizon that does not replay as committed when proposed again (lost).

    python bench/bench_soak.py [--seconds 600] [--rate 60] [--sample 5] [--votes]
                                [--audit-cap 2000] [--horizon 60] [--max-decisions 10000]
                                [--series FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats

from agents.cluster import ADMIN, LocalCluster
from agents.runtime.client import AgentClient
from agents.runtime.subjects import AgentSubjects
from agents.vsm.tasks import CycleResult, TaskSpec
from amcp import Bus
from amcp.errors import AmcpError
from consensus.coordinator import Coordinator
from consensus.model import Outcome
from consensus.record import HORIZON_ENV, MAX_RECORDS_ENV, DecisionRetention
from crdt import ContextStore, Delta, ReplicaState
from crdt.errors import CrdtError
from crdt.messages import Hello, Pull, parse

AGENTS = {"s1": 2, "s2": 1, "s3": 1, "s4": 1, "s5": 3}
KEYS = 64  # registers overwritten round robin: one key is written every KEYS crdt ops
WARM_UP = 0.25  # share of the RSS samples left out before the verdict
FLAT_KIB = 2048  # growth of the mean (second half vs first) still called flat
FLAT_SHARE = 0.03  # ... or this share of it
AUDIT_CAP = 2_000  # audit stream entries kept: reached in the first ~15 s at 60 ops/s
GC_EVERY = 6  # memory samples between two forced collections in a nats-server
HORIZON = 60.0  # decision log retention (s) of every agent and the soak's own replica


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


def cpu_seconds(pid: int) -> float:
    """User plus system CPU a process has used so far (/proc/PID/stat), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_kind(pids: dict[str, int], nodes: set[str]) -> dict[str, float]:
    """CPU seconds used so far by the agents and by the nats-servers, summed."""
    used = {"agents": 0.0, "servers": 0.0}
    for name, pid in pids.items():
        used["servers" if name in nodes else "agents"] += cpu_seconds(pid)
    return used


def jetstream(cluster: LocalCluster) -> dict[str, str]:
    """Each server's JetStream holdings (its /jsz monitoring endpoint): streams, consumers,
    messages, bytes, memory and file storage; and the process's memory as the server sees it."""
    found = {}
    for node in cluster.state["nodes"]:
        try:
            with urllib.request.urlopen(f"{node['http']}/jsz", timeout=2.0) as resp:
                jsz = json.load(resp)
            with urllib.request.urlopen(f"{node['http']}/varz", timeout=2.0) as resp:
                varz = json.load(resp)
        except (OSError, ValueError) as exc:
            found[node["name"]] = f"unavailable ({exc})"
            continue
        found[node["name"]] = (
            f"{jsz.get('streams', 0)} streams, {jsz.get('consumers', 0)} consumers, "
            f"{jsz.get('messages', 0)} msgs, {jsz.get('bytes', 0) / 1024:.0f} KiB "
            f"(file {jsz.get('storage', 0) / 1024:.0f} KiB, memory {jsz.get('memory', 0)} B); "
            f"varz mem {varz.get('mem', 0) / 2**20:.1f} MiB"
        )
    return found


def go_runtime(prof: str) -> dict[str, int]:
    """A nats-server's memory as its Go runtime accounts for it (KiB) and its goroutine
    count, from its Go profiler, or {} if it does not answer. The heap page (debug=1) ends
    with runtime.MemStats, and gc=1 runs a collection first, so HeapAlloc ("live") is what
    the server can still reach; the goroutine page's first line is "goroutine profile:
    total N"."""
    try:
        with urllib.request.urlopen(f"{prof}/debug/pprof/heap?debug=1&gc=1", timeout=5) as resp:
            heap = resp.read().decode()
        with urllib.request.urlopen(f"{prof}/debug/pprof/goroutine?debug=1", timeout=5) as resp:
            goroutines = int(resp.readline().decode().rsplit(" ", 1)[1])
    except (OSError, ValueError, IndexError):
        return {}
    stats = {}
    for line in heap.splitlines():
        name, eq, value = line.removeprefix("# ").partition(" = ")
        if eq and value.isdigit():
            stats[name] = int(value) // 1024
    if not {"HeapAlloc", "HeapInuse", "HeapIdle", "HeapReleased", "Sys"} <= stats.keys():
        return {}
    return {
        "live": stats["HeapAlloc"],
        "in_use": stats["HeapInuse"],  # spans holding live objects, their free slots too
        "retained": stats["HeapIdle"] - stats["HeapReleased"],  # free, not yet given back
        "held": stats["Sys"] - stats["HeapReleased"],  # all the runtime has from the OS
        "goroutines": goroutines,
    }


def rss_parts_kib(pid: int) -> dict[str, int]:
    """RssAnon and RssFile of a process (KiB): its own memory vs the pages of its files."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {line.split(":")[0]: int(line.split()[1]) for line in lines if line.startswith("Rss")}


async def raw_request_reply(cluster: LocalCluster, seconds: float) -> list[float]:
    """nats-py request/reply between two plain connections on the same cluster."""
    password = cluster.secrets.password_file(ADMIN).read_text().strip()
    opts = {"servers": cluster.urls[:1], "user": ADMIN, "password": password}  # one server
    server, client = await nats.connect(**opts), await nats.connect(**opts)

    async def echo(msg: Any) -> None:
        await msg.respond(msg.data)

    await server.subscribe("bench.raw", cb=echo)
    await server.flush()
    # measured once a first request is answered: one soak, at the cluster's start, was
    # told "no responders" by the very server it had flushed the subscription to
    ready = time.monotonic() + 10.0
    while True:
        try:
            await client.request("bench.raw", b"", timeout=2)
            break
        except nats.errors.NoRespondersError:
            if time.monotonic() > ready:
                raise
            await asyncio.sleep(0.05)
    latencies, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        await client.request("bench.raw", b"x" * 64, timeout=2)
        latencies.append(time.perf_counter() - started)
    await client.close()
    await server.close()
    return latencies


@dataclass
class Verdict:
    """What a process's memory did after the warm-up (KiB)."""

    first: float  # mean of the first half of the samples after the warm-up
    second: float  # mean of the second half
    peaks: tuple[float, float]  # the highest sample of each half: shown, not judged
    kib_per_s: float  # least-squares slope over both halves

    @property
    def flat(self) -> bool:
        return self.second - self.first < max(FLAT_KIB, FLAT_SHARE * self.first)


def verdict(series: list[tuple[float, int]]) -> Verdict:
    """The verdict on one process's (time, KiB) samples. Means, because a leak raises the
    level every sample stands on, and the mean weighs each sample alike. A nats-server's
    live heap steps between two levels about 4 MiB apart as the audit stream's raft log
    fills and is compacted, so the median of a half jumps by the whole step when the halves
    hold different shares of the two; and a peak is one sample, caught or not."""
    warm = series[int(len(series) * WARM_UP) :]
    half = len(warm) // 2
    parts = [[v for _, v in part] for part in (warm[:half], warm[half:])]
    slope = statistics.linear_regression([t for t, _ in warm], [v for _, v in warm]).slope
    first, second = (statistics.fmean(part) for part in parts)
    return Verdict(first, second, (max(parts[0]), max(parts[1])), slope)


def memory_table(
    samples: dict[str, list[tuple[float, int]]], done: float, advisory: Iterable[str] = ()
) -> dict[str, Verdict]:
    """Print a row per process (12 of its samples, MiB; the verdict's means and the peaks; the
    slope in KiB per 1000 operations at `done` per second) and return the verdicts. An
    `advisory` row's verdict is shown but decided elsewhere: "rose" instead of "GROWING"."""
    verdicts = {}
    for name, series in samples.items():
        v = verdicts[name] = verdict(series)
        marks = [*series[:: max(1, len(series) // 11)], series[-1]][:12]
        points = " ".join(f"{kib / 1024:5.1f}" for _, kib in marks)
        said = "flat" if v.flat else "rose" if name in advisory else "GROWING"
        peaks = " -> ".join(f"{kib / 1024:5.1f}" for kib in v.peaks)
        print(
            f"    {name:<7} {points}  {v.first / 1024:6.1f} -> {v.second / 1024:6.1f}  "
            f"{peaks}  {v.kib_per_s / done * 1000:+6.1f}  {said}"
        )
    return verdicts


async def soak(
    cluster: LocalCluster,
    seconds: float,
    rate: float,
    sample: float,
    votes: bool,
    series_path: str | None = None,
) -> int:
    horizon = DecisionRetention.from_env().horizon_s
    pids = {n["name"]: n["pid"] for n in cluster.state["nodes"]}
    pids |= {a["id"]: a["pid"] for a in cluster.state["agents"]}
    nodes = {n["name"] for n in cluster.state["nodes"]}
    raw = await raw_request_reply(cluster, 3.0)
    bus = await cluster.connect(sender="soak")
    store = await ContextStore.open(bus)
    coordinator = await Coordinator.open(bus, store=store)
    client = AgentClient(bus, timeout=5.0)
    crdt, call, vote, task = Driver("crdt"), Driver("call"), Driver("vote"), Driver("task")
    drivers = (crdt, call, task, vote) if votes else (crdt, call, task)
    increments_sent = 0
    registers: dict[str, int] = {}  # key -> the last acknowledged value written
    committed: list[tuple[int, float]] = []  # (n, when it was decided, monotonic)
    memory: dict[str, list[tuple[float, int]]] = {name: [] for name in pids}
    profs = {n["name"]: n["prof"] for n in cluster.state["nodes"]}
    heap: dict[str, list[tuple[float, int]]] = {name: [] for name in profs}  # live KiB
    runtime: dict[str, list[dict[str, float]]] = {name: [] for name in profs}
    keys: dict[str, int] = {}  # replica -> context keys it last announced
    warm: dict[str, Any] = {}  # keys and decisions at the end of the warm-up

    def on_hello(msg: Any) -> None:
        with contextlib.suppress(Exception):
            hello = parse(msg.body)
            if isinstance(hello, Hello) and hello.durable:
                keys[hello.sender] = hello.keys

    await bus.subscribe(bus.subjects.area("ctx", "hello"), on_hello)

    async def op(n: int) -> None:
        nonlocal increments_sent
        driver = drivers[n % len(drivers)]
        started = time.perf_counter()
        try:
            if driver is crdt:
                increments_sent += 1
                key = f"soak.reg.{n // len(drivers) % KEYS}"
                await store.incr("soak.count", write="majority", timeout=5.0)
                await store.set(key, n, write="majority", timeout=5.0)
                registers[key] = max(n, registers.get(key, -1))
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
                committed.append((n, time.monotonic()))
        except (AmcpError, CrdtError):
            driver.failed += 1
            return
        driver.acked += 1
        driver.latencies.append(time.perf_counter() - started)

    began = time.monotonic()

    async def sampler() -> None:
        while True:
            now = time.monotonic() - began
            for name, pid in pids.items():
                memory[name].append((now, rss_kib(pid)))
            if len(memory[next(iter(pids))]) % GC_EVERY == 1:
                for name, prof in profs.items():
                    found = await asyncio.to_thread(go_runtime, prof)
                    if found:
                        heap[name].append((now, found["live"]))
                        runtime[name].append({"t": now, **found, **rss_parts_kib(pids[name])})
            if not warm and now >= WARM_UP * seconds:
                warm.update(keys=dict(keys), committed=len(committed), at=now)
                warm.update(cpu=cpu_by_kind(pids, nodes), ops=sum(d.acked for d in drivers))
                warm["jetstream"] = await asyncio.to_thread(jetstream, cluster)
            await asyncio.sleep(sample)

    sampling = asyncio.create_task(sampler())
    inflight: set[asyncio.Task[None]] = set()
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
    cpu_end, ops_end = cpu_by_kind(pids, nodes), sum(d.acked for d in drivers)

    # effects: every replica, every committed decision
    lost = duplicated = 0
    for replica in [a["id"] for a in cluster.state["agents"]]:
        count = await probe(bus, replica, "soak.count")
        lost += max(0, crdt.acked - (count or 0))
        duplicated += max(0, (count or 0) - increments_sent)
        for key, value in registers.items():
            held = await probe(bus, replica, key)
            lost += held is None or held < value
    # proposed again, each decision still inside the horizon returns its first decision
    # (with a margin for the re-proposals themselves; older ones are gone by design)
    inside = [n for n, at in committed if time.monotonic() - at < horizon - 10]
    for n in inside:
        again = await coordinator.coordinate(
            "restart", {"n": n}, proposal_id=f"soak-{n}", timeout=5.0
        )
        if not (again.replayed and again.decision.outcome is Outcome.COMMITTED):
            lost += 1
    audit = await bus.nc.jetstream().stream_info(AgentSubjects(bus.subjects).audit_stream)
    held = await asyncio.to_thread(jetstream, cluster)
    await coordinator.close()
    await store.close()
    await bus.close()

    total = sum(d.acked for d in drivers)
    done = total / elapsed
    print(f"soak: {elapsed:.0f} s at {rate:g} ops/s offered, {done:.1f} ops/s done")
    print(f"  raw nats-py request/reply: p50 {pct(raw, 0.5):.2f} ms  p99 {pct(raw, 0.99):.2f} ms")
    for d in drivers:
        p50, p99 = pct(d.latencies, 0.5), pct(d.latencies, 0.99)
        print(
            f"  {d.name:<5} {d.acked:>6} ok {d.failed:>4} failed  p50 {p50:7.2f} ms  "
            f"p99 {p99:7.2f} ms  (p50 {p50 / pct(raw, 0.5):.1f}x raw)"
        )
    measured = max(1, ops_end - warm["ops"])
    print(
        "  CPU per operation after warm-up: "
        + ", ".join(
            f"{kind} {(cpu_end[kind] - warm['cpu'][kind]) / measured * 1000:.2f} ms"
            for kind in ("agents", "servers")
        )
        + f" (all processes summed, {measured} operations; AMCP_BATCHING="
        + f"{os.environ.get('AMCP_BATCHING', 'adaptive (default)')})"
    )
    print(
        f"  audit stream: {audit.state.messages} entries kept (cap {audit.config.max_msgs}), "
        f"{audit.state.last_seq} appended"
    )
    print("  JetStream on each server, after warm-up / at the end:")
    for name, now in held.items():
        print(f"    {name}: {warm['jetstream'].get(name)}\n    {' ' * len(name)}  {now}")
    print("  context keys per durable replica, after warm-up .. end:")
    print("    " + "  ".join(f"{r} {warm['keys'].get(r)}..{n}" for r, n in sorted(keys.items())))
    print(
        f"  RSS MiB: 12 samples start .. end; mean, then peak, of the 1st vs 2nd half after "
        f"warm-up; slope (KiB per 1000 ops); verdict (flat: the mean rose < {FLAT_KIB} KiB "
        f"or {FLAT_SHARE:.0%}; a nats-server's is shown, its live heap decides)"
    )
    rss = memory_table(memory, done, advisory=profs)
    print(
        f"  nats-servers' live heap MiB (after a forced collection, every "
        f"{GC_EVERY * sample:g} s), as above; goroutines after warm-up .. end:"
    )
    live = memory_table(heap, done)
    for name, found in runtime.items():
        counts = [r["goroutines"] for r in found]
        print(f"    {name:<7} {counts[int(len(counts) * WARM_UP)]}..{counts[-1]} goroutines")
    # a server is judged by its live heap, an agent by its RSS (see the module's docstring)
    growing = [n for n, v in (rss | live).items() if not v.flat]
    if votes and committed:
        decided = len(committed) - warm["committed"]
        grown = statistics.median(n - warm["keys"].get(r, n) for r, n in keys.items())
        per_s = decided / (elapsed - warm["at"])
        agents = statistics.median(rss[a["id"]].kib_per_s / per_s for a in cluster.state["agents"])
        print(
            f"  decisions: {len(committed)} committed, kept {horizon:g} s: "
            f"{grown / max(1, decided):+.3f} context keys per decision on every replica "
            f"after warm-up, agent RSS {agents:+.3f} KiB per decision (median slope); "
            f"{len(inside)} still inside the horizon replayed their first decision"
        )
    if series_path:
        found = {"rss_kib": memory, "heap_kib": heap, "go_runtime": runtime}
        await asyncio.to_thread(Path(series_path).write_text, json.dumps(found))
    print(f"  effects lost: {lost}  duplicated: {duplicated}")
    print(f"  memory: {'bounded' if not growing else 'still growing: ' + ', '.join(growing)}")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=60.0, help="operations per second")
    parser.add_argument("--sample", type=float, default=5.0, help="RSS sampling interval")
    parser.add_argument(
        "--votes", action="store_true", help="add votes with unique ids (state grows)"
    )
    parser.add_argument(
        "--audit-cap", type=int, default=AUDIT_CAP, help="audit stream entries kept"
    )
    parser.add_argument(
        "--horizon", type=float, default=HORIZON, help="decision log retention, seconds"
    )
    parser.add_argument(
        "--max-decisions", type=int, default=DecisionRetention().max_records,
        help="decision log records kept per replica",
    )  # fmt: skip
    parser.add_argument("--series", help="write the memory samples to this JSON file")
    args = parser.parse_args()
    if args.sample <= 0 or args.rate <= 0:
        parser.error("--sample and --rate must be above 0")
    shortest = 8 * GC_EVERY * args.sample  # live-heap samples enough for two halves of three
    if args.seconds < shortest:
        parser.error(f"--seconds must be at least {shortest:g} at --sample {args.sample:g}")
    # read by every DecisionLog: the agents (which inherit the environment) and this one
    os.environ[HORIZON_ENV] = str(args.horizon)
    os.environ[MAX_RECORDS_ENV] = str(args.max_decisions)
    DecisionRetention.from_env()  # a bad value stops here
    # SIGTERM unwinds like Ctrl-C, so `finally` takes the cluster down instead of leaving it
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="amcp-soak-") as tmp:
        cluster = LocalCluster.up(
            Path(tmp),
            nodes=3,
            agents=AGENTS,
            cluster="soak",
            agent_args=["--capability", "echo"],
            audit_max_msgs=args.audit_cap,
            profile=True,
        )
        try:
            return asyncio.run(
                soak(cluster, args.seconds, args.rate, args.sample, args.votes, args.series)
            )
        finally:
            cluster.down()


if __name__ == "__main__":
    raise SystemExit(main())
