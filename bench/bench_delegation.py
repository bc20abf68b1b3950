"""Delegation's cost (issue 20 point 1): delegated subtasks per second with the no-op
executor at 1, 2 and 4 workers, and a worker's spawn-to-subtask-running time (target: < 1 s).

    python bench/bench_delegation.py [--subtasks 12] [--runs 3] [--workers 1 2 4] [--json]

Each run is one delegated task of --subtasks no-op subtasks (the `noop` entry point of
amcp.executors) through agents.vsm.delegation.delegate on an embedded nats-server: every
subtask spawns its own `amcp-agent --role s1` worker, sends it the step, and stops it, so a
subtask's cost is a worker's whole life (start, join, step, leave). All runs share one
cluster namespace, whose streams a first task, not timed, creates. The rate is subtasks
over the task's wall time, median over --runs. Spawn-to-running is, per worker, the time
from its spawn to its step starting to run (the reply's arrival minus the step's own
duration): the median and the worst over all runs, and alone (one worker, nothing else
starting) as the clean figure. Workers compete for the CPU with each other: with 2 cores,
4 workers at once start slower each. The load average is printed before and after (the
machine is shared); an audit stream is written as in real use.
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
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.vsm.delegation import DelegationSpec, WorkerTemplate, delegate
from amcp import Bus, Keyring, NatsServer

TARGET_SPAWN = 1.0  # seconds from a worker's spawn to its subtask running


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


async def one_task(
    url: str, keyring: Path, cluster: str, workers: int, subtasks: int
) -> dict[str, float]:
    task_id = f"b{uuid.uuid4().hex[:8]}"
    bus = await Bus.connect(
        url, keyring=Keyring.load(keyring), sender=f"orchestrator-{task_id}", cluster=cluster
    )
    template = WorkerTemplate.s1(
        "python", ["--nats", url, "--keyring", str(keyring), "--cluster", cluster]
    )
    spec = DelegationSpec(
        description="bench",
        steps=tuple(f"noop {i}" for i in range(subtasks)),
        task_id=task_id,
        executor="python",
        entry_point="noop",
        max_workers=workers,
        subtask_timeout=30,
    )
    try:
        started = time.perf_counter()
        report = await delegate(bus, spec, template)
        seconds = time.perf_counter() - started
    finally:
        await bus.close()
    bad = [r.subtask.id for r in report.subtasks if r.status != "ok"]
    if bad:
        raise SystemExit(f"subtasks failed: {bad}: {report.subtasks[0].attempts[-1].error}")
    spawn = [a.running_after for r in report.subtasks for a in r.attempts]
    return {
        "seconds": seconds,
        "rate": subtasks / seconds,
        "peak": report.peak_workers,
        "spawn": [s for s in spawn if s is not None],  # type: ignore[dict-item]
    }


async def main(args: argparse.Namespace) -> dict[str, object]:
    results: dict[str, object] = {"uptime_before": uptime()}
    with tempfile.TemporaryDirectory() as tmp, NatsServer(name="bench-delegation") as server:
        keyring = Keyring.generate().save(Path(tmp) / "keyring.json")
        cluster = f"b{uuid.uuid4().hex[:8]}"
        # not timed: the cluster's first agent creates its streams on the server
        await one_task(server.url, keyring, cluster, 1, 1)
        alone = []
        for _ in range(args.runs):
            alone += (await one_task(server.url, keyring, cluster, 1, 1))["spawn"]  # type: ignore[operator]
        rows = []
        for workers in args.workers:
            runs = [
                await one_task(server.url, keyring, cluster, workers, args.subtasks)
                for _ in range(args.runs)
            ]
            spawn = [s for r in runs for s in r["spawn"]]  # type: ignore[attr-defined]
            rows.append(
                {
                    "workers": workers,
                    "subtasks_per_s": round(statistics.median(r["rate"] for r in runs), 2),
                    "task_s": round(statistics.median(r["seconds"] for r in runs), 2),
                    "peak_workers": max(r["peak"] for r in runs),  # type: ignore[type-var]
                    "spawn_to_running_median_s": round(statistics.median(spawn), 3),
                    "spawn_to_running_max_s": round(max(spawn), 3),
                }
            )
        results["rows"] = rows
        results["spawn_alone_median_s"] = round(statistics.median(alone), 3)
        results["spawn_alone_max_s"] = round(max(alone), 3)
    results["uptime_after"] = uptime()
    results["target_met"] = results["spawn_alone_median_s"] < TARGET_SPAWN  # type: ignore[operator]
    return results


def render(r: dict[str, object]) -> str:
    lines = [f"load before: {r['uptime_before']}"]
    lines.append("workers  subtasks/s  task s  peak  spawn->running median  max")
    for row in r["rows"]:  # type: ignore[attr-defined]
        lines.append(
            f"{row['workers']:>7}  {row['subtasks_per_s']:>10}  {row['task_s']:>6}  "
            f"{row['peak_workers']:>4}  {row['spawn_to_running_median_s']:>20}s  "
            f"{row['spawn_to_running_max_s']}s"
        )
    met = "met" if r["target_met"] else "NOT met"
    lines.append(
        f"spawn->running alone: median {r['spawn_alone_median_s']}s, max "
        f"{r['spawn_alone_max_s']}s (target < {TARGET_SPAWN:g}s: {met})"
    )
    lines.append(f"load after: {r['uptime_after']}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subtasks", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for name in ("AMCP_IDENTITY", "AMCP_ROSTER"):  # workers run without identities
        os.environ.pop(name, None)
    out = asyncio.run(main(args))
    print(json.dumps(out) if args.json else render(out))
