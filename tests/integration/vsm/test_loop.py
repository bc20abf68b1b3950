"""The task loop on a real nats-server with six role agents (two S1s, S2 to S5):

- `amcp task` runs a task through S4, S5, S3, S2, S1 and S3*, prints the cycle result and
  exits 0; its audit entries are in the cluster log in the loop's order;
- independent steps run at once on the two S1s;
- two tasks on one resource are serialised by S2 (contention counted);
- a failing task exits 1, a usage error 2, a cluster without S3 3;
- the viability metrics read the same on every agent, and `amcp status` shows them.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from agents.cluster.topology import DEMO_AGENTS
from agents.vsm.adaptation import RULES
from tests.support.cli import amcp_async
from tests.support.vsm import (
    run_task,
    start_vsm,
    task_log,
    viability_of,
)
from tests.support.waiting import wait_until


@pytest.fixture
async def vsm(agent_cluster, make_bus):
    bus = await make_bus("tester", cluster=agent_cluster.name)
    await start_vsm(agent_cluster, bus)
    return agent_cluster, bus


async def test_a_task_runs_through_the_loop_in_log_order(vsm, cli_env, tmp_path) -> None:
    cluster, bus = vsm
    done = await amcp_async(
        "task",
        "write a file",
        "--step",
        "echo hello > out.txt",
        "--check",
        "grep -q hello out.txt",
        "--cwd",
        str(tmp_path),
        "--json",
        env=cluster.env(cli_env),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["success"] is True and result["iterations"] == 1
    assert (tmp_path / "out.txt").read_text() == "hello\n"
    assert result["audit"]["passed"] and result["audit"]["check"]["ok"]
    # S3* runs the check on the other S1 than the one that did the work
    worker = result["steps"][0]["agent"]
    assert {worker, result["audit"]["check"]["agent"]} == {"s1-a", "s1-b"}
    assert result["conflicts"] == [] and result["adaptations"] == []
    for role in ("s2-a", "s3-a", "s4-a", "s5-a", worker):
        assert role in result["agents"]
    assert result["analysis"]["complexity"] == "simple"

    log = await task_log(bus, result["task_id"])
    order = [(e["agent"], e["event"], e.get("step")) for e in log]
    assert order == [
        ("s3-a", "cycle_started", None),
        ("s4-a", "analysed", None),
        ("s3-a", "allocated", None),
        (worker, "executed", 0),
        (result["audit"]["check"]["agent"], "executed", -1),
        ("s3-a", "audited", None),
        ("s3-a", "cycle_completed", None),
    ]

    human = await amcp_async(
        "task", "echo from the cli", "--cwd", str(tmp_path), env=cluster.env(cli_env)
    )
    assert human.returncode == 0, human.stderr
    assert "succeeded" in human.stdout and "| from the cli" in human.stdout
    assert "s4-a: analysed: simple" in human.stdout and "audit: passed" in human.stdout


async def test_independent_steps_run_at_once_on_both_s1s(vsm, tmp_path) -> None:
    _, bus = vsm
    # each step waits for the other to have started: only a parallel run can finish
    steps = [
        f"touch {name}.started; for i in $(seq 100); do [ -e {other}.started ] && exit 0; "
        "sleep 0.05; done; exit 1"
        for name, other in (("a", "b"), ("b", "a"))
    ]
    result = await run_task(bus, tmp_path, description="two independent steps", steps=steps)
    assert result.success, result.summary
    assert sorted(s.agent for s in result.steps) == ["s1-a", "s1-b"]
    assert result.analysis is not None and result.analysis.approach.parallel


async def test_two_tasks_on_one_resource_are_serialised_by_s2(vsm, tmp_path) -> None:
    _, bus = vsm
    step = "mkdir lock || exit 1; sleep 0.4; rmdir lock"  # fails if the two overlap
    first, second = await asyncio.gather(
        *(
            run_task(bus, tmp_path, description=f"update {n}", steps=[step], resource="lock")
            for n in (1, 2)
        )
    )
    assert first.success and second.success, (first.summary, second.summary)
    damped = [d for r in (first, second) for d in r.damping]
    assert [d["oscillation"] for d in damped] == ["contention"]
    assert "serialised" in damped[0]["reason"]
    metrics = (await viability_of(bus, "s2-a"))["metrics"]
    assert metrics["totals"]["oscillations"] >= 1


async def test_failures_usage_errors_and_no_s3_have_their_exit_codes(
    vsm, agent_cluster, cli_env, tmp_path
) -> None:
    env = agent_cluster.env(cli_env)
    failed = await amcp_async("task", "exit 3", "--cwd", str(tmp_path), "--json", env=env)
    assert failed.returncode == 1
    result = json.loads(failed.stdout)
    assert not result["success"] and "exit code 3" in result["summary"]
    assert result["steps"][0]["exit_code"] == 3

    usage = await amcp_async("task", "x", "--timeout", "0", env=env)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1
    both = await amcp_async("task", "x", "--simple", "--complex", env=env)
    assert both.returncode == 2

    nobody = await amcp_async("task", "true", env={**env, "AMCP_CLUSTER": "nobody-here"})
    assert nobody.returncode == 3 and "no live s3 agent" in nobody.stderr


async def test_metrics_read_the_same_on_every_agent(vsm, cli_env, tmp_path) -> None:
    cluster, bus = vsm
    for n in range(3):
        await run_task(bus, tmp_path, description=f"echo {n}")
    await run_task(bus, tmp_path, description="false")
    ids = [agent_id for _, agent_id in DEMO_AGENTS]

    async def same() -> bool:
        seen = [(await viability_of(bus, i))["metrics"] for i in ids]
        return seen[0]["totals"]["tasks"] == 4 and all(m == seen[0] for m in seen)

    await wait_until(same, 10, what="identical metrics on all six agents")
    metrics = (await viability_of(bus, "s1-b"))["metrics"]
    assert metrics["completion_rate"] == 0.75
    assert metrics["totals"] == {
        "tasks": 4,
        "succeeded": 3,
        "audits_passed": 3,
        "audits_failed": 1,
        "oscillations": 0,
        "conflicts": 0,
    }
    assert sum(metrics["samples"]["s1"].values()) == 4

    status = await amcp_async("status", "--json", env=cluster.env(cli_env))
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)["viability"]
    assert shown["metrics"]["totals"]["tasks"] == 4
    # Which S1 ran the failing task is the allocator's choice: one that ran three tasks,
    # the failure among them, is over the review bar (1/3 > 30%); one that ran two is not.
    review = next(rule for rule in RULES if rule.kind == "review")
    expected = sorted(
        agent
        for agent, rate in metrics["error_rates"].items()
        if metrics["samples"]["s1"][agent] >= review.min_samples and review.passed(rate)
    )
    assert sorted(a["target"] for a in shown["adaptations"]) == expected
    assert all(a["kind"] == "review" for a in shown["adaptations"])
    human = await amcp_async("status", env=cluster.env(cli_env))
    assert "completion rate 0.75" in human.stdout
    assert ("adaptations: none" in human.stdout) == (not expected)
