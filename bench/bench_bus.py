"""Core bus benchmark: amcp signed-and-verified messaging beside raw nats-py, same run.

Measures publish->subscribe messages per second (64 B and 1 KiB payloads) and sequential
request/reply latency (p50, p99), each for raw nats-py and for amcp, on one embedded
nats-server; and 1 KiB messages on a sealed subject (AES-256-GCM, docs/PROTOCOL.md "Sealed
bodies") beside plain signed ones, in the same trials. Trials alternate raw/amcp(/sealed)
so machine noise hits all; medians are printed, and each ratio is the median of the ratios
of back-to-back trial pairs.

    python bench/bench_bus.py [--messages 50000] [--requests 2000] [--trials 5] [--json]

Targets (issue 2): amcp throughput >= 0.6x raw; amcp request p50 <= 1.3x raw. Issue 16:
sealed 1 KiB >= 0.8x plain signed 1 KiB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import nats

from amcp import Bus, Keyring, NatsServer, signing

SUBJECT = "bench.pubsub"


async def raw_throughput(url: str, payload: bytes, count: int) -> float:
    pub, sub = await nats.connect(url), await nats.connect(url)
    done, got = asyncio.Event(), 0

    async def on_msg(msg) -> None:
        nonlocal got
        got += 1
        if got == count:
            done.set()

    await sub.subscribe(SUBJECT, cb=on_msg, pending_msgs_limit=count * 2)
    await sub.flush()
    start = time.perf_counter()
    for _ in range(count):
        await pub.publish(SUBJECT, payload)
    await pub.flush()
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - start
    await pub.close()
    await sub.close()
    return count / elapsed


async def amcp_throughput(
    url: str, payload: bytes, count: int, ring: Keyring, seal: tuple[str, ...] = ()
) -> float:
    pub = await Bus.connect(url, keyring=ring, sender="bench-pub", seal=seal)
    sub = await Bus.connect(url, keyring=ring, sender="bench-sub", seal=seal)
    done, got = asyncio.Event(), 0

    def on_msg(msg) -> None:
        nonlocal got
        got += 1
        if got == count:
            done.set()

    await sub.subscribe(SUBJECT, on_msg)
    await sub.flush()
    start = time.perf_counter()
    for _ in range(count):
        await pub.publish(SUBJECT, payload)
    await pub.flush()
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - start
    rejected = sub.stats.total
    await pub.close()
    await sub.close()
    assert rejected == 0, f"{rejected} frames rejected during the benchmark"
    return count / elapsed


async def time_requests(client, count: int) -> list[float]:
    """Sequential request/reply round trips to the echo on bench.rpc (raw or amcp client)."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        await client.request("bench.rpc", b"ping", timeout=5)
        samples.append(time.perf_counter() - start)
    return samples


async def raw_latency(url: str, count: int) -> list[float]:
    client, server = await nats.connect(url), await nats.connect(url)

    async def echo(msg) -> None:
        await msg.respond(msg.data)

    await server.subscribe("bench.rpc", cb=echo)
    await server.flush()
    samples = await time_requests(client, count)
    await client.close()
    await server.close()
    return samples


async def amcp_latency(url: str, count: int, ring: Keyring) -> list[float]:
    client = await Bus.connect(url, keyring=ring, sender="bench-client")
    server = await Bus.connect(url, keyring=ring, sender="bench-server")

    async def echo(msg) -> None:
        await msg.respond(msg.body)

    await server.subscribe("bench.rpc", echo)
    await server.flush()
    samples = await time_requests(client, count)
    await client.close()
    await server.close()
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> dict:
    ring = Keyring.generate()
    results: dict = {"hmac_backend": signing.BACKEND, "throughput": {}, "latency": {}}
    with NatsServer(name="bench") as server:
        url = server.url
        for label, size in (("64B", 64), ("1KiB", 1024)):
            payload = bytes(size)
            raw, ours, sealed = [], [], []
            for _ in range(args.trials):
                raw.append(await raw_throughput(url, payload, args.messages))
                ours.append(await amcp_throughput(url, payload, args.messages, ring))
                if size == 1024:
                    sealed.append(
                        await amcp_throughput(url, payload, args.messages, ring, (SUBJECT,))
                    )
            r, a = statistics.median(raw), statistics.median(ours)
            # The ratio is the median of each trial pair's ratio: a pair runs back to back,
            # so load that drifts over the run hits both sides of it alike.
            ratio = statistics.median(o / w for o, w in zip(ours, raw, strict=True))
            results["throughput"][label] = {"raw_msgs_s": r, "amcp_msgs_s": a, "ratio": ratio}
            if sealed:
                results["sealed"] = {
                    "plain_msgs_s": a,
                    "sealed_msgs_s": statistics.median(sealed),
                    "ratio": statistics.median(s / o for s, o in zip(sealed, ours, strict=True)),
                }
        raw_p50, raw_p99, our_p50, our_p99 = [], [], [], []
        for _ in range(args.trials):
            raw = await raw_latency(url, args.requests)
            ours = await amcp_latency(url, args.requests, ring)
            raw_p50.append(pct(raw, 0.5))
            raw_p99.append(pct(raw, 0.99))
            our_p50.append(pct(ours, 0.5))
            our_p99.append(pct(ours, 0.99))
        rp50, rp99 = statistics.median(raw_p50), statistics.median(raw_p99)
        ap50, ap99 = statistics.median(our_p50), statistics.median(our_p99)
        results["latency"] = {
            "raw_p50_us": rp50 * 1e6,
            "raw_p99_us": rp99 * 1e6,
            "amcp_p50_us": ap50 * 1e6,
            "amcp_p99_us": ap99 * 1e6,
            "p50_ratio": ap50 / rp50,
            "p99_ratio": ap99 / rp99,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"amcp core bus benchmark (median of {args.trials} alternating trials; "
        f"HMAC backend: {results['hmac_backend']})\n"
    )
    print(f"{'publish->subscribe':20} {'raw nats-py':>14} {'amcp signed':>14} {'ratio':>7}  target")
    for label, row in results["throughput"].items():
        print(
            f"{label + ' msgs/s':20} {row['raw_msgs_s']:14,.0f} {row['amcp_msgs_s']:14,.0f} "
            f"{row['ratio']:7.2f}  >= 0.60 {'ok' if row['ratio'] >= 0.6 else 'MISSED'}"
        )
    row = results["sealed"]
    print(
        f"{'1KiB sealed msgs/s':20} {'(plain signed)':>14} {row['plain_msgs_s']:14,.0f} "
        f"{'':7}\n{'':20} {'amcp sealed':>14} {row['sealed_msgs_s']:14,.0f} "
        f"{row['ratio']:7.2f}  >= 0.80 {'ok' if row['ratio'] >= 0.8 else 'MISSED'}"
    )
    lat = results["latency"]
    print(f"\n{'request/reply':20} {'raw nats-py':>14} {'amcp signed':>14} {'ratio':>7}")
    print(
        f"{'p50 us':20} {lat['raw_p50_us']:14.0f} {lat['amcp_p50_us']:14.0f} "
        f"{lat['p50_ratio']:7.2f}  <= 1.30 {'ok' if lat['p50_ratio'] <= 1.3 else 'MISSED'}"
    )
    print(
        f"{'p99 us':20} {lat['raw_p99_us']:14.0f} {lat['amcp_p99_us']:14.0f} "
        f"{lat['p99_ratio']:7.2f}"
    )


if __name__ == "__main__":
    main()
