"""VSM loop benchmark: tasks per second through the whole loop with a no-op executor on 2
and 4 S1 agents, and the overhead per task over running the executor directly.

Each configuration is a fresh cluster of `amcp-agent` processes on one embedded
nats-server: S2, S3, S4, S5 and N S1 agents, each with its identity in one roster (checks
on, as on every cluster amcp makes). A task is `TaskSpec(executor="python",
entry_point="noop")` (each with its own step text, so S2 sees distinct work rather than a
retry loop), sent with `AgentClient.call("s3", "run-task", ...)` as `amcp task` does. One
task passes S4 (analyse), S5 (classify), S3 (allocate), S2 (claim, release), S1 (execute)
and S3* (audit), with six audit-log entries and six counter increments.

- throughput: `--concurrency` callers loop for `--seconds`; median of `--trials`;
- latency: tasks one at a time; median and p99 of the loop;
- overhead: loop median minus the median of `agents.vsm.s1.executors.execute` on the same step
  in this process (the executor alone); beside it the raw nats-py request/reply median,
  measured in the same run against a plain nats-py responder, for scale (one task is
  six request/replies between processes).

    python bench/bench_vsm.py [--s1 2 4] [--seconds 3] [--trials 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats
from bench_agents import RAW_RESPONDER, RAW_SUBJECT  # bench/ is on sys.path as a script

from agents import AgentClient, AgentProcess
from agents.cluster.identities import AgentIdentities, roles_of
from agents.vsm.s1.executors import execute
from agents.vsm.tasks import StepIn, TaskSpec
from amcp import Bus, Keyring, NatsServer

ROLES = (("s2", "s2-a"), ("s3", "s3-a"), ("s4", "s4-a"), ("s5", "s5-a"))


def spec(n: int) -> dict:
    return TaskSpec(
        description=f"noop {n}", executor="python", entry_point="noop", cwd="/tmp"
    ).model_dump()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def wait_cluster(client: AgentClient, ids: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            view = await client.call("s3-a", "members", timeout=1)
            alive = {m["id"] for m in view.output["members"] if m["liveness"] == "alive"}
            if alive == ids:
                return
        except Exception:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError("the cluster did not come up")


async def throughput(client: AgentClient, seconds: float, concurrency: int, start: int) -> float:
    stop = time.perf_counter() + seconds
    count = 0
    failed = 0

    async def worker(w: int) -> None:
        nonlocal count, failed
        n = start + w * 1_000_000
        while time.perf_counter() < stop:
            n += 1
            out = (await client.call("s3", "run-task", spec(n), timeout=60)).output
            count += 1
            failed += not out["success"]

    began = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    if failed:
        raise RuntimeError(f"{failed} of {count} tasks failed")
    return count / (time.perf_counter() - began)


async def measure(url: str, keyring: Keyring, n_s1: int, args: argparse.Namespace) -> dict:
    cluster = f"bench-{uuid.uuid4().hex[:6]}"
    keyfile = Path(tempfile.mkdtemp(prefix="amcp-bench-")) / "keyring.json"
    keyring.save(keyfile)
    agents = [*ROLES, *(("s1", f"s1-{i}") for i in range(n_s1))]
    ids = AgentIdentities(keyfile.parent)  # identities on, as on every cluster amcp makes
    ids.provision((agent_id, roles_of(role)) for role, agent_id in agents)
    procs = [
        AgentProcess(
            role,
            agent_id,
            nats=url,
            keyring=keyfile,
            cluster=cluster,
            identity=ids.path(agent_id),
            roster=ids.roster,
        ).start()
        for role, agent_id in agents
    ]
    bus = await Bus.connect(url, keyring=keyring, sender="bench", cluster=cluster)
    raw = await nats.connect(url)
    try:
        client = AgentClient(bus)
        await wait_cluster(client, {agent_id for _, agent_id in agents})
        await throughput(client, 1.0, args.concurrency, 0)  # warm up (imports, caches)
        rates = [
            await throughput(client, args.seconds, args.concurrency, (t + 1) * 10**8)
            for t in range(args.trials)
        ]
        loop_ms, raw_ms = [], []
        for n in range(args.latency):
            started = time.perf_counter()
            await client.call("s3", "run-task", spec(9 * 10**8 + n), timeout=60)
            loop_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await raw.request(RAW_SUBJECT, b"x" * 200, timeout=10)
            raw_ms.append((time.perf_counter() - started) * 1000)
    finally:
        await raw.close()
        await bus.close()
        for p in procs:
            p.terminate()
            p.close()
    return {
        "s1_agents": n_s1,
        "tasks_per_s": statistics.median(rates),
        "trials": rates,
        "loop_ms_p50": statistics.median(loop_ms),
        "loop_ms_p99": percentile(loop_ms, 99),
        "raw_request_ms_p50": statistics.median(raw_ms),
    }


async def direct_ms(samples: int) -> float:
    step = StepIn(task_id="t", step=0, text="noop", executor="python", entry_point="noop")
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        await execute(step)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--s1", type=int, nargs="+", default=[2, 4])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--latency", type=int, default=200, help="sequential tasks for latency")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    keyring = Keyring.generate()
    results = []
    with NatsServer(name="bench-vsm") as server:
        responder = subprocess.Popen(
            [sys.executable, "-c", RAW_RESPONDER, server.url], stdout=subprocess.PIPE, text=True
        )
        try:
            assert responder.stdout is not None and responder.stdout.readline().strip() == "ready"
            direct = asyncio.run(direct_ms(2000))
            for n in args.s1:
                results.append(asyncio.run(measure(server.url, keyring, n, args)))
        finally:
            responder.kill()
            responder.wait()
    for r in results:
        r["direct_executor_ms_p50"] = direct
        r["overhead_ms_p50"] = r["loop_ms_p50"] - direct
    if args.json:
        print(json.dumps(results))
        return
    print(f"no-op executor called directly: {direct * 1000:.1f} us median")
    for r in results:
        trials = ", ".join(f"{x:.1f}" for x in r["trials"])
        ratio = r["overhead_ms_p50"] / r["raw_request_ms_p50"]
        print(
            f"{r['s1_agents']} S1 agents: {r['tasks_per_s']:7.1f} tasks/s "
            f"(concurrency {args.concurrency}, trials {trials}) | one task through the loop "
            f"p50 {r['loop_ms_p50']:.2f} ms, p99 {r['loop_ms_p99']:.2f} ms; overhead over the "
            f"executor {r['overhead_ms_p50']:.2f} ms | raw nats-py request/reply p50 "
            f"{r['raw_request_ms_p50']:.3f} ms (overhead = {ratio:.0f}x)"
        )


if __name__ == "__main__":
    main()
