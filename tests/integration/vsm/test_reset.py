"""`amcp reset` on a real nats-server with the loop's agents: it clears the task state, the
viability counters and the adaptations, and nothing else (members, keys, audit log), asks
on a terminal and refuses without one unless told --yes."""

from __future__ import annotations

import asyncio
import json
import os
import pty

from agents import read_cluster_log
from agents.vsm.adaptation import Adaptation
from agents.vsm.viability import ADAPTATIONS
from crdt.store import ContextStore
from tests.support.cli import amcp_async, amcp_json, argv
from tests.support.vsm import run_task, start_vsm, viability_of
from tests.support.waiting import wait_until

LOOP = [("s3", "s3-a"), ("s4", "s4-a"), ("s5", "s5-a"), ("s1", "s1-a")]
TIGHTEN = Adaptation("tighten_audits", "", "audit_pass_rate", 0.5, 0.8, "strict audits")


async def _on_a_terminal(env: dict[str, str], answer: bytes) -> tuple[int, str]:
    """`amcp reset` with a pty as stdin, answering `answer`: exit code and stderr."""
    master, slave = pty.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv(["reset"]),
            stdin=slave,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        os.write(master, answer)  # the terminal holds it until the command reads
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_reset_clears_what_it_says_and_nothing_else(
    agent_cluster, make_bus, cli_env, keyring_file, tmp_path
) -> None:
    bus = await make_bus("tester", cluster=agent_cluster.name)
    await start_vsm(agent_cluster, bus, LOOP)
    env = agent_cluster.env(cli_env)
    assert (await run_task(bus, tmp_path, description="d", steps=["true"])).success

    store = await ContextStore.open(bus)
    try:
        await store.map_set(ADAPTATIONS, TIGHTEN.key, TIGHTEN.to_wire())
        await store.map_set("task.t-1.context", "e1", {"text": "step 1 ran"})
        await store.set("task.t-1.compaction", {"summary": "s"})
        await store.set("notes.kept", "untouched")

        async def adapted() -> bool:
            return [a["kind"] for a in (await viability_of(bus, "s3-a"))["adaptations"]] == [
                "tighten_audits"
            ]

        await wait_until(adapted, 10, what="the adaptation at s3-a")
        members = {m["id"] for m in (await amcp_json("members", env=env))["members"]}
        log_before, _ = await read_cluster_log(bus)
        keyring = keyring_file.read_bytes()
        roster = agent_cluster.identities.roster.read_bytes()

        refused = await amcp_async("reset", env=env)  # stdin is no terminal
        assert refused.returncode == 2 and "pass --yes" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        code, err = await _on_a_terminal(env, b"n\n")
        assert code == 1 and "adaptations: 1 cleared (tighten_audits)" in err
        assert "clear them? [y/N]" in err and "nothing cleared" in err
        assert await adapted()  # neither cleared anything

        done = await amcp_async("reset", "--yes", "--json", env=env)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["cleared"]["adaptations"] == ["tighten_audits"]
        assert report["cleared"]["task_state"] == ["task.t-1.compaction", "task.t-1.context"]
        assert report["cleared"]["viability"]["tasks"] == 1
        assert report["kept"]["members"] == len(members)

        async def reset_everywhere() -> bool:
            for agent in ("s1-a", "s3-a", "s4-a", "s5-a"):
                v = await viability_of(bus, agent)
                if v["adaptations"] or v["metrics"]["totals"]["tasks"] != 0:
                    return False
            return True

        await wait_until(reset_everywhere, 10, what="every agent to read the reset")
        await wait_until(lambda: store.local("task.t-1.context") == {}, 5, what="task context")
        assert store.local("task.t-1.compaction") is None
        assert store.local("notes.kept") == "untouched"

        # kept: members, keys, the audit log (every entry of before, in order)
        assert {m["id"] for m in (await amcp_json("members", env=env))["members"]} == members
        assert keyring_file.read_bytes() == keyring
        assert agent_cluster.identities.roster.read_bytes() == roster
        log_after, _ = await read_cluster_log(bus)
        seqs = [(e.stream_seq, e.index) for e in log_before]
        assert [(e.stream_seq, e.index) for e in log_after][: len(seqs)] == seqs

        # the counters count again from zero
        assert (await run_task(bus, tmp_path, description="d", steps=["true"])).success

        async def counted_again() -> bool:
            return (await viability_of(bus, "s3-a"))["metrics"]["totals"]["tasks"] == 1

        await wait_until(counted_again, 10, what="the next task counted from zero")
        human = await amcp_async("reset", "--yes", env=env)
        assert human.returncode == 0, human.stderr
        assert human.stdout.splitlines()[0] == f"reset cluster {agent_cluster.name}:"
        assert "adaptations: 0 cleared (none active)" in human.stdout
        assert f"kept: keys and identities, {len(members)} members, the audit log" in human.stdout
    finally:
        await store.close()
