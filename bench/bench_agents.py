"""Agent runtime benchmark: tool calls through `amcp call`'s code path beside raw nats-py
request/reply in the same run, and the time from `amcp-agent` start to visible in
`amcp members`.

Calls: one `amcp-agent` process serving the catalogued `echo` tool (validated by its
pydantic models, run in the pool, audited to JSONL-less JetStream) answers
`AgentClient.call` (what `amcp call` runs after connecting); a raw nats-py process echoes
on a plain subject. The bench process drives both with the same concurrency; trials
alternate so machine noise hits both; medians are printed.

Join time: a fresh `amcp-agent` process is started and `AgentClient.members()` (what
`amcp members` runs) is polled every 5 ms until the new id appears. Both use the roles
registered under `amcp.roles` (s1 for the echo agent, s2 for the joiners), as users get.

    python bench/bench_agents.py [--seconds 2] [--trials 5] [--concurrency 1 16] [--joins 10]

Targets (issue 4): calls >= 0.5x raw; start to visible < 1 s.
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
from pathlib import Path

import nats

from agents import AgentClient, AgentProcess
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


async def drive(call, seconds: float, concurrency: int) -> float:
    """Calls per second with `concurrency` callers looping for `seconds`."""
    stop = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await call()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


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
    args: argparse.Namespace, url: str, ring: Keyring, ring_path: Path, work: Path
) -> dict:
    results: dict = {"calls": {}, "join_seconds": []}
    bus = await Bus.connect(url, keyring=ring, sender="bench-client", cluster=CLUSTER)
    raw = await nats.connect(url)
    try:
        client = AgentClient(bus, timeout=10.0)
        await wait_visible(client, "bench-echo")
        payload = json.dumps(TEXT).encode()

        async def amcp_call() -> None:
            await client.call("bench-echo", "echo", TEXT)

        async def raw_call() -> None:
            await raw.request(RAW_SUBJECT, payload, timeout=10.0)

        for concurrency in args.concurrency:
            await drive(amcp_call, 0.3, concurrency)  # warm up both paths
            await drive(raw_call, 0.3, concurrency)
            amcp_rates, raw_rates = [], []
            for _ in range(args.trials):
                raw_rates.append(await drive(raw_call, args.seconds, concurrency))
                amcp_rates.append(await drive(amcp_call, args.seconds, concurrency))
            results["calls"][concurrency] = {
                "amcp_call_per_s": statistics.median(amcp_rates),
                "raw_nats_per_s": statistics.median(raw_rates),
                "ratio": statistics.median(amcp_rates) / statistics.median(raw_rates),
            }

        for n in range(args.joins):
            agent_id = f"joiner-{n}"
            proc = AgentProcess(
                "s2",
                agent_id,
                nats=url,
                keyring=ring_path,
                cluster=CLUSTER,
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
        raw_proc = subprocess.Popen(
            [sys.executable, "-c", RAW_RESPONDER, server.url], stdout=subprocess.PIPE, text=True
        )
        echo_agent = AgentProcess(
            "s1",
            "bench-echo",
            nats=server.url,
            keyring=ring_path,
            cluster=CLUSTER,
            capabilities=["echo"],
            args=["--pool", "64", "--queue", "4096", "--log-level", "warning"],
            log_dir=work,
        ).start()
        try:
            assert raw_proc.stdout is not None and raw_proc.stdout.readline().strip() == "ready"
            return asyncio.run(measure(args, server.url, ring, ring_path, work))
        finally:
            echo_agent.terminate()
            echo_agent.close()
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
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        print(json.dumps(results))
        return
    print(f"tool calls per second, echo tool, medians of {args.trials} x {args.seconds:g}s trials:")
    for concurrency, r in results["calls"].items():
        print(
            f"  {concurrency:>3} in flight: amcp call {r['amcp_call_per_s']:8.0f}/s   "
            f"raw nats-py {r['raw_nats_per_s']:8.0f}/s   ratio {r['ratio']:.2f}x "
            "(target >= 0.5x)"
        )
    joins = sorted(results["join_seconds"])
    print(
        f"amcp-agent start to visible in amcp members, {len(joins)} starts: "
        f"median {statistics.median(joins):.3f}s, max {joins[-1]:.3f}s (target < 1 s)"
    )


if __name__ == "__main__":
    main()
