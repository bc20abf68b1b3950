"""Batching benchmark: three traffic shapes sent through the bus with no batching, several
fixed batch-size + linger settings and the adaptive policy, beside raw nats-py.

    python bench/bench_batching.py [--seconds 1.5] [--warmup 9] [--trials 4] [--json]

Publisher and subscriber share one process and event loop (as in bench_bus.py); the
embedded nats-server runs beside it. Every message carries its send time; latency is
receive time minus send time on the same clock. Throughput is messages received over the
time from the first send to the last receipt. Each setting runs --trials times, in a
rotated order so machine noise spreads over all of them; the table shows medians.

Workloads (the same seeded schedule for every setting):
  steady    as fast as the publisher can go, at most WINDOW messages in flight
  bursty    random on/off periods; while on, 40 000 msg/s offered, each message its own
            event (the publisher yields to the loop after every message)
  periodic  a 150 ms burst every 0.5 s at 40 000 msg/s, sent in 1 ms ticks

The adaptive bus first runs the workload unmeasured for --warmup seconds: the analyser
needs 64 bins of 0.1 s of history before it leaves natural batching, and re-derives its
policies once a second.

The best fixed setting is the one with the highest median throughput; where several keep
up with the offered load their throughputs tie within noise, and which one is "best" is
then down to that noise (the p99 ratio is against whichever it is).

Targets (issue 6): on every workload adaptive >= 95 % of the best fixed setting's
throughput with p99 <= 1.1x that setting's; steady: signed, batched amcp msg/s >= 1.5x raw
unbatched nats-py msg/s; the analyser under 1 % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import nats
from bench_bus import raw_throughput  # bench/ is on sys.path when run as a script

from amcp import Bus, Keyring, NatsServer
from netopt import BatchPolicy

SUBJECT = "bench.batching.stream"
WINDOW = 4096  # steady: messages in flight at most
ON_RATE = 40_000.0  # msg/s while a burst is on
PAYLOAD = "x" * 48
KIB = 1024

Publish = Callable[[dict[str, Any]], Awaitable[None]]

SETTINGS: list[tuple[str, Any]] = [
    ("none", "off"),
    ("fixed 16 / 0.5 ms", BatchPolicy(16, 512 * KIB, 0.0005)),
    ("fixed 64 / 1 ms", BatchPolicy(64, 512 * KIB, 0.001)),
    ("fixed 256 / 5 ms", BatchPolicy(256, 512 * KIB, 0.005)),
    ("fixed 256 / 0 ms", BatchPolicy(256, 512 * KIB, 0.0)),
    ("adaptive", "adaptive"),
]


@dataclass
class Run:
    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    first_send: float = 0.0
    last_receive: float = 0.0
    frames: int = 0
    tune_seconds: float = 0.0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time over the measured part
    expected: float = float("inf")
    all_in: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, now: float, body: dict[str, Any]) -> None:
        self.latencies.append(now - body["t"])
        self.last_receive = now
        if len(self.latencies) >= self.expected:
            self.all_in.set()

    def summary(self) -> dict[str, float]:
        got = sorted(self.latencies)
        n = len(got)
        return {
            "sent": self.sent,
            "received": n,
            "msgs_per_s": n / max(self.last_receive - self.first_send, 1e-9),
            "p50_ms": got[n // 2] * 1e3 if n else float("nan"),
            "p99_ms": got[min(n - 1, int(n * 0.99))] * 1e3 if n else float("nan"),
            "msgs_per_frame": n / self.frames if self.frames else 1.0,
            "cpu_us_per_msg": 1e6 * self.cpu_seconds / n if n else float("nan"),
            "analyser_core_pct": 100 * self.tune_seconds / self.wall_seconds
            if self.wall_seconds
            else 0.0,
        }


# -- workloads: each drives `publish` for `seconds`, stamping the send time ------------------


def _body(loop: asyncio.AbstractEventLoop, i: int) -> dict[str, Any]:
    return {"t": loop.time(), "i": i, "agent": "s1-worker-3", "data": PAYLOAD}


async def steady(publish: Publish, run: Run, seconds: float, seed: int) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        for _ in range(64):
            if run.sent - len(run.latencies) >= WINDOW:
                await asyncio.sleep(0)
                break
            await publish(_body(loop, run.sent))
            run.sent += 1


def _on_off(seconds: float, seed: int) -> list[tuple[float, float]]:
    """Seeded (start, end) times of the on periods, from 0."""
    rng = random.Random(seed)
    t, periods = 0.0, []
    while t < seconds:
        on = rng.uniform(0.1, 0.3)
        periods.append((t, min(seconds, t + on)))
        t += on + rng.uniform(0.1, 0.6)
    return periods


async def bursty(publish: Publish, run: Run, seconds: float, seed: int) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    for on, off in _on_off(seconds, seed):
        due_from = run.sent
        while (now := loop.time() - start) < off:
            if now < on:
                await asyncio.sleep(on - now)
                continue
            if run.sent - due_from >= (now - on) * ON_RATE:
                await asyncio.sleep(0.0005)
                continue
            await publish(_body(loop, run.sent))
            run.sent += 1
            await asyncio.sleep(0)  # each message is its own event


async def periodic(publish: Publish, run: Run, seconds: float, seed: int) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    burst, period = 0.15, 0.5
    k = 0
    while k * period < seconds:
        on = start + k * period
        due_from = run.sent
        await asyncio.sleep(max(0.0, on - loop.time()))
        while (now := loop.time()) < on + burst:
            due = int((now - on) * ON_RATE) - (run.sent - due_from)
            for _ in range(due):
                await publish(_body(loop, run.sent))
                run.sent += 1
            await asyncio.sleep(0.001)
        k += 1


WORKLOADS = {"steady": steady, "bursty": bursty, "periodic": periodic}


# -- one measured run ------------------------------------------------------------------------


async def settle(run: Run, timeout: float = 30.0) -> None:
    """Wait until every sent message has arrived (or the timeout: then it is a loss)."""
    run.expected = run.sent
    if len(run.latencies) < run.sent:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.all_in.wait(), timeout)


async def amcp_run(url: str, ring: Keyring, setting: Any, workload: str, args) -> Run:
    loop = asyncio.get_running_loop()
    pub = await Bus.connect(url, keyring=ring, sender="bench-pub", batching=setting)
    born = time.perf_counter()
    sub = await Bus.connect(url, keyring=ring, sender="bench-sub")
    run = Run()
    warm = Run()
    current = [warm]

    def on_msg(msg) -> None:
        current[0].record(loop.time(), msg.body)

    await sub.subscribe(SUBJECT, on_msg, backlog=1 << 16)
    await sub.flush()

    async def publish(body: dict[str, Any]) -> None:
        await pub.publish(SUBJECT, body)

    drive = WORKLOADS[workload]
    if setting == "adaptive":  # let the analyser see enough history first
        await drive(publish, warm, args.warmup, args.seed + 1)
        await pub.flush()
        await settle(warm)
    current[0] = run
    frames0 = pub.batcher.frames if pub.batcher else 0
    run.first_send = loop.time()
    cpu = time.process_time()
    await drive(publish, run, args.seconds, args.seed)
    await pub.flush()
    await settle(run)
    run.cpu_seconds = time.process_time() - cpu
    if pub.batcher is not None:  # the analyser's share over the bus's whole life
        run.frames = pub.batcher.frames - frames0
        run.tune_seconds = pub.batcher.tune_seconds_used
        run.wall_seconds = time.perf_counter() - born
    rejected = sub.stats.total
    await pub.close()
    await sub.close()
    assert rejected == 0, f"{rejected} frames rejected during the benchmark"
    return run


async def raw_tight_loop(url: str, count: int) -> float:
    """Raw nats-py at its best, for reference: pre-encoded payloads in a tight loop, no
    timestamps, a counting subscriber (bench_bus.py's measurement, this payload)."""
    payload = msgpack.packb({"t": 0.0, "i": 0, "agent": "s1-worker-3", "data": PAYLOAD})
    return await raw_throughput(url, payload, count)


async def raw_run(url: str, workload: str, args) -> Run:
    loop = asyncio.get_running_loop()
    pub, sub = await nats.connect(url), await nats.connect(url)
    run = Run()

    async def on_msg(msg) -> None:
        run.record(loop.time(), msgpack.unpackb(msg.data))

    await sub.subscribe(SUBJECT, cb=on_msg, pending_msgs_limit=1 << 20)
    await sub.flush()

    async def publish(body: dict[str, Any]) -> None:
        await pub.publish(SUBJECT, msgpack.packb(body))

    run.first_send = loop.time()
    cpu = time.process_time()
    await WORKLOADS[workload](publish, run, args.seconds, args.seed)
    await pub.flush()
    await settle(run)
    run.cpu_seconds = time.process_time() - cpu
    run.frames = run.sent
    await pub.close()
    await sub.close()
    return run


# -- the table -------------------------------------------------------------------------------


def verdicts(rows: dict[str, dict[str, float]]) -> dict[str, Any]:
    fixed = {k: v for k, v in rows.items() if k.startswith("fixed")}
    best_name = max(fixed, key=lambda k: fixed[k]["msgs_per_s"])
    best, ours = fixed[best_name], rows["adaptive"]
    return {
        "best_fixed": best_name,
        "throughput_ratio": ours["msgs_per_s"] / best["msgs_per_s"],
        "p99_ratio": ours["p99_ms"] / best["p99_ms"],
    }


def median_rows(trials: list[dict[str, float]]) -> dict[str, float]:
    row = {k: statistics.median(t[k] for t in trials) for k in trials[0]}
    row["msgs_per_s_min"] = min(t["msgs_per_s"] for t in trials)
    row["msgs_per_s_max"] = max(t["msgs_per_s"] for t in trials)
    return row


async def main_async(args) -> dict[str, Any]:
    ring = Keyring.generate()
    results: dict[str, Any] = {"args": vars(args), "workloads": {}}
    results["load_before"] = os.getloadavg()[0]
    runs: list[tuple[str, Any]] = [("raw nats-py", None), *SETTINGS]
    with NatsServer(name="bench-batching") as server:
        tight = []
        for workload in args.workloads:
            trials: dict[str, list[dict[str, float]]] = {name: [] for name, _ in runs}
            for trial in range(args.trials):
                shift = trial % len(runs)
                for name, setting in runs[shift:] + runs[:shift]:
                    if setting is None:
                        run = await raw_run(server.url, workload, args)
                        if workload == "steady":
                            tight.append(await raw_tight_loop(server.url, 100_000))
                    else:
                        run = await amcp_run(server.url, ring, setting, workload, args)
                    trials[name].append(run.summary())
            rows = {name: median_rows(t) for name, t in trials.items()}
            results["workloads"][workload] = {"rows": rows, "verdict": verdicts(rows)}
        if tight:
            results["raw_tight_loop_msgs_per_s"] = statistics.median(tight)
    results["load_after"] = os.getloadavg()[0]
    return results


def print_table(results: dict[str, Any], args) -> None:
    print(
        f"amcp batching benchmark: {args.seconds:g} s per run, median of {args.trials} "
        f"trials, adaptive after {args.warmup:g} s of warm-up, seed {args.seed}; "
        f"{os.cpu_count()} cores, load average {results['load_before']:.1f} before, "
        f"{results['load_after']:.1f} after\n"
    )
    for workload, doc in results["workloads"].items():
        print(workload)
        print(
            f"  {'setting':18} {'msg/s':>9} {'(min-max)':>13} {'p50 ms':>7} {'p99 ms':>7}"
            f" {'msg/frame':>9} {'cpu us/msg':>10} {'lost':>5}"
        )
        for name, r in doc["rows"].items():
            span = f"{r['msgs_per_s_min'] / 1e3:.1f}-{r['msgs_per_s_max'] / 1e3:.1f}k"
            lost = r["sent"] - r["received"]
            print(
                f"  {name:18} {r['msgs_per_s']:9,.0f} {span:>13} {r['p50_ms']:7.2f}"
                f" {r['p99_ms']:7.2f} {r['msgs_per_frame']:9.1f} {r['cpu_us_per_msg']:10.1f}"
                f" {lost:5.0f}"
            )
        v = doc["verdict"]
        tp_ok, p99_ok = v["throughput_ratio"] >= 0.95, v["p99_ratio"] <= 1.1
        print(
            f"  adaptive vs the best fixed setting ({v['best_fixed']}): throughput "
            f"{v['throughput_ratio']:.2f}x (>= 0.95: {'ok' if tp_ok else 'MISSED'}), p99 "
            f"{v['p99_ratio']:.2f}x (<= 1.10: {'ok' if p99_ok else 'MISSED'})"
        )
        if workload == "steady":
            raw = doc["rows"]["raw nats-py"]["msgs_per_s"]
            ours = doc["rows"]["adaptive"]["msgs_per_s"]
            tight = results.get("raw_tight_loop_msgs_per_s", float("nan"))
            print(
                f"  signed+batched amcp (adaptive) {ours:,.0f} msg/s = {ours / raw:.2f}x raw "
                f"nats-py in the same loop (>= 1.50: {'ok' if ours / raw >= 1.5 else 'MISSED'}),"
                f" {ours / tight:.2f}x raw nats-py's tight-loop best ({tight:,.0f} msg/s)"
            )
        pct = doc["rows"]["adaptive"]["analyser_core_pct"]
        print(f"  analyser: {pct:.3f} % of one core (< 1 %: {'ok' if pct < 1 else 'MISSED'})\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=9.0, help="adaptive warm-up seconds")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results, args)


if __name__ == "__main__":
    main()
