"""What at-most-once across a queue group costs per call (issue 14 point 2): p50/p99
latency and CPU per call of a claimed tool call, beside the same call unclaimed and raw
nats-py request/reply, measured in the same run.

One agent process (this script with --agent) serves `echo` (read-only: never claimed) and
`echo-once`, the same tool not read-only: each call through the role's queue group is
claimed first, one JetStream key-value create. The bench calls both through the role
group `s1` with AgentClient (what `amcp call s1 ...` runs), one call in flight; a raw
nats-py process echoes on a plain subject (the raw responder of bench_agents.py). Rounds
alternate so machine noise hits all three. CPU per call sums the bench process, the
responder (agent or raw) and nats-server (/proc), since a claim is work for JetStream too.

    python bench/bench_claims.py [--calls 500] [--rounds 4] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
from bench_agents import RAW_RESPONDER, RAW_SUBJECT  # bench/ is on sys.path as a script

from agents import Agent, AgentClient, AgentConfig
from agents.runtime.catalog import BUILTIN
from amcp import Bus, Keyring, NatsServer

CLUSTER = "bench"
TEXT = {"text": "hello, agent"}
TICK = os.sysconf("SC_CLK_TCK")


async def serve_agent(url: str, ring_path: str) -> None:
    """The agent side (--agent): echo, and echo-once that is not read-only."""
    ring = Keyring.load(ring_path)
    bus = await Bus.connect(url, keyring=ring, sender="bench-claims", cluster=CLUSTER)
    agent = Agent(bus, AgentConfig(role="s1", agent_id="bench-claims", pool_size=64))
    agent.add_tool(BUILTIN["echo"])
    agent.add_tool(dataclasses.replace(BUILTIN["echo"], name="echo-once", read_only=False))
    await agent.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await agent.run(stop)
    await bus.close()


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far (clock ticks: 10 ms on Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def timed(
    call: Callable[[], Awaitable[object]], n: int, pids: list[int]
) -> tuple[list[float], float]:
    """Latencies of n calls in a row, and the CPU seconds they cost in all processes."""
    cpu0 = time.process_time() + sum(cpu_seconds(p) for p in pids)
    latencies = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - started)
    cpu = time.process_time() + sum(cpu_seconds(p) for p in pids) - cpu0
    return latencies, cpu


async def measure(args: argparse.Namespace, url: str, ring: Keyring, pids: dict) -> dict:
    bus = await Bus.connect(url, keyring=ring, sender="bench-client", cluster=CLUSTER)
    raw = await nats.connect(url)
    client = AgentClient(bus, timeout=10.0)
    payload = json.dumps(TEXT).encode()
    paths = {
        "raw nats-py request/reply": (
            lambda: raw.request(RAW_SUBJECT, payload, timeout=10.0),
            [pids["raw"], pids["server"]],
        ),
        "amcp call s1 echo (read-only, unclaimed)": (
            lambda: client.call("s1", "echo", TEXT),
            [pids["agent"], pids["server"]],
        ),
        "amcp call s1 echo-once (claimed)": (
            lambda: client.call("s1", "echo-once", TEXT),
            [pids["agent"], pids["server"]],
        ),
    }
    found: dict[str, dict] = {name: {"latencies": [], "cpu": 0.0} for name in paths}
    try:
        for call, procs in paths.values():
            await timed(call, 100, procs)  # warm up: connections, the claims bucket, caches
        for _ in range(args.rounds):
            for name, (call, procs) in paths.items():
                latencies, cpu = await timed(call, args.calls, procs)
                found[name]["latencies"] += latencies
                found[name]["cpu"] += cpu
    finally:
        await raw.close()
        await bus.close()
    results = {}
    for name, f in found.items():
        lat = sorted(f["latencies"])
        results[name] = {
            "p50_us": statistics.median(lat) * 1e6,
            "p99_us": lat[int(len(lat) * 0.99)] * 1e6,
            "cpu_us_per_call": f["cpu"] / len(lat) * 1e6,
            "calls": len(lat),
        }
    return results


def run(args: argparse.Namespace) -> dict:
    with (
        tempfile.TemporaryDirectory(prefix="amcp-bench-claims-") as tmp,
        NatsServer(name="bench-claims") as server,
    ):
        ring = Keyring.generate()
        ring_path = ring.save(Path(tmp) / "keyring.json")
        raw_proc = subprocess.Popen(
            [sys.executable, "-c", RAW_RESPONDER, server.url], stdout=subprocess.PIPE, text=True
        )
        agent_proc = subprocess.Popen(
            [sys.executable, __file__, "--agent", server.url, str(ring_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            for proc in (raw_proc, agent_proc):
                assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            assert server.pid is not None
            pids = {"raw": raw_proc.pid, "agent": agent_proc.pid, "server": server.pid}
            return asyncio.run(measure(args, server.url, ring, pids))
        finally:
            agent_proc.terminate()
            raw_proc.kill()
            for proc in (agent_proc, raw_proc):
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500, help="calls per path per round (500)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (4)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--agent", nargs=2, metavar=("URL", "KEYRING"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.agent:
        asyncio.run(serve_agent(*args.agent))
        return
    if args.calls < 1 or args.rounds < 1:
        parser.error("--calls and --rounds must be at least 1")
    results = run(args)
    if args.json:
        print(json.dumps(results))
        return
    n = args.calls * args.rounds
    print(f"one call in flight, {n} calls per path ({args.rounds} alternating rounds):")
    for name, r in results.items():
        print(
            f"  {name:42} p50 {r['p50_us']:7.0f} us   p99 {r['p99_us']:7.0f} us   "
            f"CPU {r['cpu_us_per_call']:6.0f} us/call (bench + responder + nats-server)"
        )
    claimed = results["amcp call s1 echo-once (claimed)"]
    plain = results["amcp call s1 echo (read-only, unclaimed)"]
    print(
        f"the claim adds {claimed['p50_us'] - plain['p50_us']:.0f} us p50, "
        f"{claimed['p99_us'] - plain['p99_us']:.0f} us p99, "
        f"{claimed['cpu_us_per_call'] - plain['cpu_us_per_call']:.0f} us CPU per call"
    )


if __name__ == "__main__":
    main()
