"""S5 over the bus: an S3/S4 conflict is resolved by the policy (S3's view for a simple
task, S4's for a complex one, which is then refused); a critical task is put to a quorum
vote of the registered voters and runs only if it commits: with two of three voters
SIGKILLed (still members), there is no quorum and nothing is executed; `amcp task` exits 3."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import amcp_async
from tests.support.vsm import run_task, start_vsm, task_log, vsm_env

pytestmark = pytest.mark.chaos

AGENTS = (("s1", "s1-a"), ("s2", "s2-a"), ("s2", "s2-b"), ("s3", "s3-a"), ("s4", "s4-a"),
          ("s5", "s5-a"))  # fmt: skip


async def test_s5_resolves_conflicts_and_a_critical_action_without_quorum_is_not_executed(
    agent_cluster, make_bus, cli_env, tmp_path
) -> None:
    # the user's own rules extend the packaged ones
    policy = tmp_path / "policy.toml"
    policy.write_text("[vote]\ntimeout = 1.5\n")
    analysis = tmp_path / "analysis.toml"
    analysis.write_text(
        '[[domain]]\nname = "ml"\npattern = "\\\\bgpu\\\\b"\ncapability = "gpu"\nrequired = true\n'
    )
    env = vsm_env(AMCP_POLICY_RULES=str(policy), AMCP_ANALYSIS_RULES=str(analysis))
    bus = await make_bus("tester", cluster=agent_cluster.name)
    procs = await start_vsm(agent_cluster, bus, AGENTS, env=env, voters=("s2-a", "s2-b"))

    # no S1 offers the gpu S4 requires: S5 lets S3 run it anyway, unless it is complex
    ran = await run_task(bus, tmp_path, description="train on the gpu", steps=["echo trained"])
    assert ran.success and [c["kind"] for c in ran.conflicts] == ["capability"]
    assert ran.conflicts[0]["resolution"]["side"] == "s3"
    refused = await run_task(
        bus, tmp_path, description="train on the gpu", steps=["touch refused"], complexity="complex"
    )
    assert not refused.success and refused.steps == []
    assert refused.conflicts[0]["resolution"]["side"] == "s4"
    assert "refused: S4 requires an S1 with gpu" in refused.summary
    assert not (tmp_path / "refused").exists()

    committed = await run_task(
        bus, tmp_path, description="deploy version 1", steps=["echo 1 > deployed-1.txt"]
    )
    assert committed.success, committed.summary
    assert committed.critical and committed.vote is not None
    assert committed.vote["outcome"] == "committed" and committed.vote["action"] == "deploy"
    assert sorted(committed.vote["members"]) == ["s2-a", "s2-b", "s5-a"]
    assert (tmp_path / "deployed-1.txt").exists()

    for voter in ("s2-a", "s2-b"):
        procs[voter].kill()  # crashed voters stay members: majority is still 2 of 3
    done = await amcp_async(
        "task",
        "deploy version 2",
        "--step",
        "echo 2 > deployed-2.txt",
        "--cwd",
        str(tmp_path),
        "--json",
        env=agent_cluster.env(cli_env),
    )
    assert done.returncode == 3, done.stderr
    result = json.loads(done.stdout)
    assert result["success"] is False and result["critical"] is True
    vote = result["vote"]
    assert vote["outcome"] == "no_quorum" and vote["needed"] == 2 and vote["yes"] < 2
    assert sorted(vote["members"]) == ["s2-a", "s2-b", "s5-a"]
    assert "not executed" in result["summary"] and result["steps"] == []
    assert not (tmp_path / "deployed-2.txt").exists()
    events = [(e["agent"], e["event"]) for e in await task_log(bus, result["task_id"])]
    assert events == [
        ("s3-a", "cycle_started"),
        ("s4-a", "analysed"),
        ("s5-a", "decision"),
        ("s3-a", "cycle_completed"),
    ]
