"""amcp-agent's own key on a real nats-server: --new-identity makes one on the first start
only and says which `amcp keys identity add` line the operator must run; until it is run
the agent refuses to start (a roster is in force and would not count it), after it the agent
runs and joins with the same key; an agent revoked in the roster refuses to start, in one
line, exit 2. Without the flag no key is ever made. And the test fixtures' agents run with
identities on."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

from agents import AgentClient, AgentProcess, ClusterView
from amcp import NatsServer
from amcp.errors import AmcpError
from amcp.identity import Identity
from amcp.roster import Roster, RosterEntry
from tests.support.cli import amcp, amcp_async
from tests.support.waiting import wait_until


def _agent(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    done = amcp(*args, env=env, program="amcp-agent", timeout=30)
    return done.returncode, done.stdout, done.stderr


async def test_a_new_identity_counts_once_the_operator_enrols_it(
    nats_server: NatsServer, keyring_file: Path, tmp_path: Path, cluster_name: str, make_bus
) -> None:
    roster = Roster(path=tmp_path / "roster.json").save()
    data = tmp_path / "worker"
    env = {**os.environ, "AMCP_NATS_URL": nats_server.url, "AMCP_KEYRING": str(keyring_file)}
    env |= {"AMCP_CLUSTER": cluster_name, "AMCP_ROSTER": str(roster)}
    common = ("--role", "s1", "--data-dir", str(data), "--heartbeat", "0.2")

    code, out, err = _agent(*common, env=env)  # no flag: no key made, no start
    assert code == 2 and not (data / "identity.json").exists()
    assert len(err.strip().splitlines()) == 1 and "has no identity" in err

    code, out, err = _agent(*common, "--new-identity", env=env)
    key_file = data / "identity.json"
    made = Identity.load(key_file)
    assert code == 2, (out, err)
    assert out.count("made identity") == 1 and made.agent_id in out
    assert len(err.strip().splitlines()) == 1 and "is not in roster" in err

    enrol = shlex.split(out.split("run  ", 1)[1])
    assert enrol[:4] == ["amcp", "keys", "identity", "add"]
    added = amcp(*enrol[1:], env=env)
    assert added.returncode == 0, added.stderr
    entry = Roster.load(roster).get(made.agent_id)
    assert entry is not None and entry.public_key == made.public_key and entry.roles == {"s1"}

    with AgentProcess(
        "s1",
        made.agent_id,
        nats=nats_server.url,
        keyring=keyring_file,
        cluster=cluster_name,
        data_dir=data,
        roster=roster,
        heartbeat=0.2,
        args=["--new-identity"],
        log_dir=tmp_path,
    ) as proc:
        bus = await make_bus("tester", cluster=cluster_name)
        client = AgentClient(bus, timeout=1)

        async def joined() -> bool:
            try:
                view = await client.members()
            except Exception:
                return False
            return any(m.id == made.agent_id and m.state == "running" for m in view.members)

        await wait_until(joined, 20, what="the enrolled agent to join")
        assert "made identity" not in proc.log_text()  # the key of the first start, reused
    assert Identity.load(key_file).public_key == made.public_key


def test_a_revoked_agent_refuses_to_start(
    nats_server: NatsServer, keyring_file: Path, tmp_path: Path, cluster_name: str
) -> None:
    roster = tmp_path / "roster.json"
    key = tmp_path / "s5-1.json"
    env = {**os.environ, "AMCP_NATS_URL": nats_server.url, "AMCP_KEYRING": str(keyring_file)}
    env |= {"AMCP_CLUSTER": cluster_name, "AMCP_ROSTER": str(roster)}
    new = amcp("keys", "identity", "new", "s5-1", "--roles", "s5", "--out", str(key), env=env)
    assert new.returncode == 0, new.stderr
    assert amcp("keys", "identity", "revoke", "s5-1", env=env).returncode == 0
    code, _, err = _agent("--role", "s5", "--identity", str(key), env=env)
    assert code == 2 and err.strip().splitlines() == [f"amcp: s5-1 is revoked in roster {roster}"]


async def test_the_fixtures_agents_sign_and_check_against_one_roster(
    agent_cluster, cli_env: dict[str, str]
) -> None:
    """tests/support/agents.py turns identities on for the whole suite: each agent it
    spawns signs as itself and checks the others against the cluster's roster."""
    agent_cluster.spawn("s1", "fx-1")
    agent_cluster.spawn("s5", "fx-2")
    env = agent_cluster.env(cli_env)
    assert env["AMCP_ROSTER"] == str(agent_cluster.identities.roster)
    seen: dict[str, Any] = {}

    async def both_checking() -> bool:
        done = await amcp_async("status", "--json", env=env)
        if done.returncode != 0:
            return False
        members = json.loads(done.stdout)["members"]
        seen.update({m["id"]: m["stats"].get("identity") for m in members})
        return all(seen.get(i) and seen[i]["checks"] for i in ("fx-1", "fx-2"))

    await wait_until(both_checking, 20, interval=0.2, what="both agents checking identities")
    for agent_id in ("fx-1", "fx-2"):
        assert seen[agent_id]["signer"] == agent_id
        assert seen[agent_id]["roster"] == env["AMCP_ROSTER"]
    roles = {e.agent_id: e.roles for e in Roster.load(env["AMCP_ROSTER"]).entries}
    assert roles == {"fx-1": {"s1"}, "fx-2": {"s5"}}


async def test_an_agent_enrolled_while_the_others_run_comes_alive_in_their_view(
    agent_cluster, make_bus
) -> None:
    """Its member record reaches the others before their roster holds its key (refused,
    unknown signer); once they re-read the roster, which the member map does not show by
    changing, they must count it and hear its heartbeats: alive, not dead."""
    agent_cluster.spawn("s5", "old-1")
    key = Identity.generate("new-1").save(agent_cluster.workdir / "new-1.json")
    agent_cluster.spawn("s1", "new-1", identity=key)  # no roster: it runs unchecked
    bus = await make_bus("tester", cluster=agent_cluster.name)
    client = AgentClient(bus, timeout=1)

    async def seen_by_old(liveness: str | None) -> bool:
        try:
            view = ClusterView.model_validate((await client.call("old-1", "members")).output)
        except AmcpError:
            return False
        # alive by its heartbeats (their stats arrive with them), not by a first look
        found = {m.id: (m.liveness, bool(m.stats)) for m in view.members}
        new = found.get("new-1")
        return (new[0] if new and new[1] else None) == liveness and "old-1" in found

    async def refused() -> bool:
        try:
            own = ClusterView.model_validate((await client.call("new-1", "members")).output)
        except AmcpError:
            return False
        # new-1 is running and sees old-1; old-1 has its record and leaves it out
        return {m.id for m in own.members} == {"old-1", "new-1"} and await seen_by_old(None)

    await wait_until(refused, 20, interval=0.1, what="new-1 running, refused by old-1")
    roster = Roster.load(agent_cluster.identities.roster)
    roster.add(RosterEntry("new-1", Identity.load(key).public_key, frozenset({"s1"})))
    roster.save()
    await wait_until(lambda: seen_by_old("alive"), 15, interval=0.2, what="new-1 alive for old-1")
