"""Agent runtime benchmark: tool calls through `amcp call`'s code path beside raw nats-py
request/reply in the same run, with the agents' batching adaptive and off, and the time
from `amcp-agent` start to visible in `amcp members`.

Calls: `amcp-agent` processes serving the catalogued `echo` tool (validated by its
pydantic models, run in the pool, audited to JSONL-less JetStream) answer
`AgentClient.call` (what `amcp call` runs after connecting): one with `--batching adaptive`
(the default), one with `--batching off`, each with a replica of the other to keep in sync
(heartbeats, membership and context deltas: what an agent's bus batches); a raw nats-py
process echoes on a plain subject. The bench process drives them with the same
concurrency; trials rotate so machine noise hits all; medians are printed: calls per
second, p50 and p99 latency, and the answering agent's CPU per call (its utime + stime
over the trial, from /proc, divided by the calls it answered).

Join time: a fresh `amcp-agent` process is started and `AgentClient.members()` (what
`amcp members` runs) is polled every 5 ms until the new id appears. Both use the roles
registered under `amcp.roles` (s1 for the echo agent, s2 for the joiners), as users get,
and each agent its own identity in one roster (identity checks on, as `amcp cluster up`).

    python bench/bench_agents.py [--seconds 2] [--trials 5] [--concurrency 1 16] [--joins 10]
                                 [--batching adaptive off]

Targets (issue 4): calls >= 0.5x raw; start to visible < 1 s. Issue 13: adaptive against
off, same run: no worse p99, less CPU per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats

from agents import AgentClient, AgentProcess
from agents.cluster.identities import AgentIdentities, roles_of
from amcp import Bus, Keyring, NatsServer

RAW_SUBJECT = "bench.raw.echo"
RAW_RESPONDER = f"""
import asyncio, sys, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    async def echo(msg):
        await msg.respond(msg.data)
    await nc.subscribe({RAW_SUBJECT!r}, cb=echo)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""
CLUSTER = "bench"
TEXT = {"text": "hello, agent"}
AGENT_ARGS = ["--pool", "64", "--queue", "4096", "--log-level", "warning"]


class Trial:
    """One trial: calls per second, latency percentiles and CPU per call of a process."""

    def __init__(self, rate: float, latencies: list[float], cpu_seconds: float | None) -> None:
        got = sorted(latencies)
        self.rate = rate
        self.p50_ms = 1e3 * got[len(got) // 2]
        self.p99_ms = 1e3 * got[min(len(got) - 1, int(len(got) * 0.99))]
        self.cpu_us = None if cpu_seconds is None else 1e6 * cpu_seconds / len(got)


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of process `pid` (0 without one)."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(call, seconds: float, concurrency: int, pid: int | None = None) -> Trial:
    """`concurrency` callers looping for `seconds`; `pid`: the process whose CPU is counted."""
    stop = time.perf_counter() + seconds
    latencies: list[float] = []

    async def worker() -> None:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return Trial(len(latencies) / elapsed, latencies, cpu_seconds(pid) - cpu if pid else None)


def medians(trials: list[Trial]) -> dict[str, float | None]:
    cpu = [t.cpu_us for t in trials if t.cpu_us is not None]
    return {
        "per_s": statistics.median(t.rate for t in trials),
        "p50_ms": statistics.median(t.p50_ms for t in trials),
        "p99_ms": statistics.median(t.p99_ms for t in trials),
        "cpu_us_per_call": statistics.median(cpu) if cpu else None,
    }


async def wait_visible(client: AgentClient, agent_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            view = await client.members()
            if any(m.id == agent_id for m in view.members):
                return
        except Exception:
            pass
        await asyncio.sleep(0.005)
    raise TimeoutError(f"{agent_id} not visible after {timeout}s")


async def measure(
    args: argparse.Namespace,
    url: str,
    ring: Keyring,
    ring_path: Path,
    work: Path,
    pids: dict[str, int],
) -> dict:
    results: dict = {"calls": {}, "join_seconds": []}
    bus = await Bus.connect(url, keyring=ring, sender="bench-client", cluster=CLUSTER)
    raw = await nats.connect(url)
    try:
        client = AgentClient(bus, timeout=10.0)
        for mode in args.batching:
            await wait_visible(client, f"bench-echo-{mode}")
        payload = json.dumps(TEXT).encode()

        def amcp_call(mode: str):
            async def call() -> None:
                await client.call(f"bench-echo-{mode}", "echo", TEXT)

            return call

        async def raw_call() -> None:
            await raw.request(RAW_SUBJECT, payload, timeout=10.0)

        paths = {"raw": (raw_call, pids["raw"])}
        paths.update({m: (amcp_call(m), pids[m]) for m in args.batching})
        names = list(paths)
        warm = 2.0  # first: past each agent's start-up (its tuner imports scipy after 1 s)
        for concurrency in args.concurrency:
            for call, _ in paths.values():
                await drive(call, warm, concurrency)  # warm up every path
            warm = 0.3
            trials: dict[str, list[Trial]] = {name: [] for name in names}
            for i in range(args.trials):
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    call, pid = paths[name]
                    trials[name].append(await drive(call, args.seconds, concurrency, pid))
            row = {name: medians(t) for name, t in trials.items()}
            for mode in args.batching:
                row[mode]["ratio"] = row[mode]["per_s"] / row["raw"]["per_s"]
            results["calls"][concurrency] = row

        for n in range(args.joins):
            agent_id = f"joiner-{n}"
            proc = AgentProcess(
                "s2",
                agent_id,
                nats=url,
                keyring=ring_path,
                cluster=CLUSTER,
                identity=AgentIdentities(work).path(agent_id),  # provisioned in run()
                roster=AgentIdentities(work).roster,
                args=["--log-level", "warning"],
                log_dir=work,
            )
            started = time.perf_counter()
            proc.start()
            await wait_visible(client, agent_id)
            results["join_seconds"].append(time.perf_counter() - started)
            await asyncio.to_thread(proc.terminate)
            proc.close()
    finally:
        await raw.close()
        await bus.close()
    return results


def run(args: argparse.Namespace) -> dict:
    with (
        tempfile.TemporaryDirectory(prefix="amcp-bench-agents-") as tmp,
        NatsServer(name="bench-agents") as server,
    ):
        work = Path(tmp)
        ring = Keyring.generate()
        ring_path = ring.save(work / "keyring.json")
        # identities on, as on every cluster amcp makes; the joiners' keys are in the roster
        # from the start, so a join is not timed waiting for a roster reload
        ids = AgentIdentities(work)
        echoes = [f"bench-echo-{mode}" for mode in args.batching]
        joiners = [f"joiner-{n}" for n in range(args.joins)]
        ids.provision(
            [(i, roles_of("s1")) for i in echoes] + [(i, roles_of("s2")) for i in joiners]
        )
        raw_proc = subprocess.Popen(
            [sys.executable, "-c", RAW_RESPONDER, server.url], stdout=subprocess.PIPE, text=True
        )
        agents = [
            AgentProcess(
                "s1",
                f"bench-echo-{mode}",
                nats=server.url,
                keyring=ring_path,
                cluster=CLUSTER,
                identity=ids.path(f"bench-echo-{mode}"),
                roster=ids.roster,
                capabilities=["echo"],
                args=[*AGENT_ARGS, "--batching", mode],
                log_dir=work,
            ).start()
            for mode in args.batching
        ]
        try:
            assert raw_proc.stdout is not None and raw_proc.stdout.readline().strip() == "ready"
            pids = {"raw": raw_proc.pid}
            pids.update({m: a.pid for m, a in zip(args.batching, agents, strict=True)})
            return asyncio.run(measure(args, server.url, ring, ring_path, work, pids))
        finally:
            for agent in agents:
                agent.terminate()
                agent.close()
            raw_proc.kill()
            raw_proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per trial (2)")
    parser.add_argument("--trials", type=int, default=5, help="alternating trials (5)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 16], help="callers in flight (1 16)"
    )
    parser.add_argument("--joins", type=int, default=10, help="agent starts timed (10)")
    parser.add_argument(
        "--batching",
        nargs="+",
        choices=["adaptive", "off"],
        default=["adaptive", "off"],
        help="the echo agents' batching, each its own agent (adaptive off)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        print(json.dumps(results))
        return
    print(f"tool calls, echo tool, medians of {args.trials} x {args.seconds:g}s rotated trials:")
    for concurrency, row in results["calls"].items():
        print(f"  {concurrency} in flight:")
        for name, r in row.items():
            label = "raw nats-py" if name == "raw" else f"amcp call, batching {name}"
            cpu = r["cpu_us_per_call"]
            ratio = f"  {r['ratio']:.2f}x raw (>= 0.5x)" if "ratio" in r else ""
            print(
                f"    {label:28} {r['per_s']:8.0f}/s  p50 {r['p50_ms']:6.2f} ms  "
                f"p99 {r['p99_ms']:6.2f} ms  responder CPU {cpu:6.1f} us/call{ratio}"
            )
        if {"adaptive", "off"} <= row.keys():
            on, off = row["adaptive"], row["off"]
            print(
                f"    adaptive vs off: p99 {on['p99_ms'] / off['p99_ms']:.2f}x (<= 1: "
                f"{'ok' if on['p99_ms'] <= off['p99_ms'] else 'worse'}), CPU per call "
                f"{on['cpu_us_per_call'] / off['cpu_us_per_call']:.2f}x, calls/s "
                f"{on['per_s'] / off['per_s']:.2f}x"
            )
    joins = sorted(results["join_seconds"])
    print(
        f"amcp-agent start to visible in amcp members, {len(joins)} starts: "
        f"median {statistics.median(joins):.3f}s, max {joins[-1]:.3f}s (target < 1 s)"
    )


if __name__ == "__main__":
    main()
