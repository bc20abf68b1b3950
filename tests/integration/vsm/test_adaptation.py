"""A failing executor raises its agent's error rate; S5 switches the review step on for it
(logged), S3 reviews that agent's results while it holds, and it clears (logged) once the
agent's error rate over the sliding window has recovered. On the way, the completion rate
falls under 50% and S4 lowers its complexity thresholds."""

from __future__ import annotations

from agents import read_cluster_log
from tests.support.vsm import (
    adaptations,
    run_task,
    start_vsm,
    viability_of,
    vsm_env,
)
from tests.support.waiting import wait_until

AGENTS = (("s1", "s1-a"), ("s3", "s3-a"), ("s4", "s4-a"), ("s5", "s5-a"))


async def _logged(bus, changes: list[str]) -> bool:
    """Whether the cluster log holds exactly these changes of the review adaptation."""
    entries, _ = await read_cluster_log(bus)
    found = [
        e.record["change"]
        for e in entries
        if e.record["event"] == "adaptation" and e.record.get("kind") == "review"
    ]
    assert found == changes[: len(found)], found
    return found == changes


async def test_failing_executor_triggers_review_which_clears_on_recovery(
    agent_cluster, make_bus, tmp_path
) -> None:
    bus = await make_bus("tester", cluster=agent_cluster.name)
    await start_vsm(agent_cluster, bus, AGENTS, env=vsm_env(AMCP_VSM_WINDOW="4"))
    for n in range(3):
        failed = await run_task(bus, tmp_path, description=f"exit 3 # attempt {n}")
        assert not failed.success and failed.steps[0].exit_code == 3

    async def reviewed() -> bool:
        return "review:s1-a" in await adaptations(bus, "s4-a")

    await wait_until(reviewed, 10, what="the review adaptation for s1-a")
    report = await viability_of(bus, "s1-a")
    assert report["metrics"]["error_rates"] == {"s1-a": 1.0}
    review = next(a for a in report["adaptations"] if a["kind"] == "review")
    assert review["target"] == "s1-a" and review["value"] == 1.0 and review["threshold"] == 0.3
    await wait_until(lambda: _logged(bus, ["activated"]), 5, what="the activation logged")

    # while it holds, s1-a's results are reviewed: strict rules, named in the audit
    under_review = await run_task(bus, tmp_path, description="echo reviewed")
    assert under_review.success and under_review.audit["strict"] is True
    assert any("review of s1-a" in p for p in under_review.path)

    # 1 success in 4 tasks: completion 25% < 50%, so S4 lowers its complexity thresholds
    async def lowered() -> bool:
        return "lower_complexity" in await adaptations(bus, "s4-a")

    await wait_until(lowered, 10, what="the lower_complexity adaptation")
    careful = await run_task(bus, tmp_path, description="echo careful")
    assert careful.analysis is not None and careful.analysis.thresholds == (1.5, 3.0)
    assert any("thresholds lowered" in r for r in careful.analysis.reasons)

    async def recovered() -> bool:
        if "review:s1-a" not in await adaptations(bus, "s3-a"):
            return True
        ok = await run_task(bus, tmp_path, description="true")
        assert ok.success
        return False

    await wait_until(recovered, 30, interval=0.05, what="the review to clear")
    metrics = (await viability_of(bus, "s3-a"))["metrics"]
    assert metrics["error_rates"]["s1-a"] <= 0.2
    await wait_until(lambda: _logged(bus, ["activated", "cleared"]), 5, what="the clearing logged")
