"""Five `amcp-agent` processes: they see each other; a SIGKILLed one is marked dead but
stays a member until `amcp members remove`; a SIGTERMed one drains, leaves and exits 0."""

from __future__ import annotations

import json
import os
import signal

from agents import ROLES, AgentClient
from tests.support.agents import liveness, view_of
from tests.support.cli import amcp_async, amcp_json
from tests.support.waiting import wait_until


async def test_five_agents_join_one_crashes_one_leaves(agent_cluster, make_bus, cli_env) -> None:
    ids = [f"{role}-a" for role in ROLES]
    procs = {
        i: agent_cluster.spawn(role, i, args=["--log-json"])
        for role, i in zip(ROLES, ids, strict=True)
    }
    client = AgentClient(await make_bus("tester", cluster=agent_cluster.name))
    env = agent_cluster.env(cli_env)

    async def everyone_sees(expected: dict[str, str], among: list[str]) -> bool:
        return all([liveness(await view_of(client, i)) == expected for i in among])

    alive = dict.fromkeys(ids, "alive")
    await wait_until(lambda: everyone_sees(alive, ids), 30, what="5 agents seeing 5 alive")

    crashed, leaving = "s2-a", "s3-a"
    procs[crashed].kill()
    rest = [i for i in ids if i != crashed]
    dead = {**alive, crashed: "dead"}
    await wait_until(lambda: everyone_sees(dead, rest), 30, what="s2 marked dead by all")

    assert procs[leaving].terminate() == 0  # drains, leaves, exits 0
    log = procs[leaving].log_text()
    assert "draining" in log and "stopped" in log
    survivors = [i for i in rest if i != leaving]
    left = {i: s for i, s in dead.items() if i != leaving}
    await wait_until(lambda: everyone_sees(left, survivors), 30, what="s3 gone from all")

    shown = await amcp_json("members", env=env)
    members = {m["id"]: m for m in shown["members"]}
    assert members[crashed]["liveness"] == "dead" and members[crashed]["state"] == "running"
    assert leaving not in members and len(members) == 4
    assert members["s5-a"]["voter"] and not members["s1-a"]["voter"]
    assert members["s1-a"]["pid"] == procs["s1-a"].pid

    refused = await amcp_async("members", "remove", "s1-a", env=env)
    assert refused.returncode == 1 and "only a dead member can be removed" in refused.stderr
    removed = await amcp_json("members", "remove", crashed, env=env)
    assert removed == {"removed": crashed, "role": "s2", "liveness": "dead"}
    gone = {i: s for i, s in left.items() if i != crashed}
    await wait_until(lambda: everyone_sees(gone, survivors), 30, what="s2 removed everywhere")

    human = await amcp_async("members", env=env)
    assert human.returncode == 0 and "3 members (3 alive)" in human.stdout

    # --log-json: every line a JSON object naming the agent
    first = procs["s1-a"].log_text().splitlines()[0]
    assert json.loads(first)["agent"] == "s1-a"


async def test_members_with_no_live_agent_says_so(agent_cluster, cli_env) -> None:
    done = await amcp_async("members", env=agent_cluster.env(cli_env))
    assert done.returncode == 3
    assert "no live agent answered" in done.stderr


async def test_an_id_in_use_is_refused_with_exit_2(agent_cluster, make_bus) -> None:
    first = agent_cluster.spawn("s1", "twin")
    client = AgentClient(await make_bus("tester", cluster=agent_cluster.name))
    await wait_until(lambda: _answers(client, "twin"), 15, what="the first twin")
    second = agent_cluster.spawn("s1", "twin")
    assert second.wait(15) == 2
    assert "already running" in second.log_text()
    assert first.running
    os.kill(first.pid, signal.SIGTERM)
    assert first.wait(10) == 0


async def _answers(client: AgentClient, agent_id: str) -> bool:
    return await view_of(client, agent_id) is not None
