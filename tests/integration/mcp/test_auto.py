"""Auto mode through `amcp call` against real agents and voters: a destructive tool runs
only when a quorum vote commits it, once; a rejected vote runs nothing (exit 1); other
tools and `--no-auto` go straight through."""

from __future__ import annotations

import json

from agents.runtime.catalog import BUILTIN
from consensus import Thresholds, VotePolicy
from tests.integration.mcp.test_serve import EAGER, destructive_tool
from tests.support.cli import amcp_async
from tests.support.consensus import Members


async def test_amcp_call_votes_on_destructive_tools_first(
    members: Members, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "AMCP_CLUSTER": members.cluster}
    wiped: list[str] = []
    purged: list[str] = []
    tools = (BUILTIN["echo"], destructive_tool("wipe", wiped), destructive_tool("purge", purged))
    await members.add("s1-a", role="s1", voter=False, tools=tools)
    policy = VotePolicy(EAGER, overrides={"tool-call:s1.wipe": Thresholds(risk_max=0.0)})
    for i in range(1, 4):
        await members.add(f"v{i}", policy=policy)
    await members.coordinator(voters=3)  # the voters are registered everywhere

    refused = await amcp_async("call", "s1", "wipe", '{"path": "/data"}', env=env)
    assert refused.returncode == 1, refused.stderr
    assert "Nothing ran" in refused.stderr and "rejected" in refused.stderr
    assert wiped == []

    ran = await amcp_async("call", "s1", "purge", '{"path": "/tmp/x"}', "--json", env=env)
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    assert doc["output"] == {"runs": 1} and doc["vote"]["outcome"] == "committed"
    assert doc["vote"]["summary"]["yes"] >= 2 and purged == ["/tmp/x"]

    plain = await amcp_async("call", "s1", "echo", '{"text": "hi"}', "--json", env=env)
    assert plain.returncode == 0 and "vote" not in json.loads(plain.stdout)

    forced = await amcp_async("call", "--no-auto", "s1", "wipe", '{"path": "/x"}', env=env)
    assert forced.returncode == 0, forced.stderr
    assert wiped == ["/x"]
