"""Hooks on real agents and a real nats-server (docs/HOOKS.md):

- a pre_step hook vetoes a step: the step fails with the hook's reason, the command never
  runs, and the reason is in the audit log (`amcp log`); a pre_task hook vetoes a task
  (`amcp task` exits 1 saying why), post_step and post_task hooks see every outcome;
- a hanging hook is killed at its deadline and the step goes on; the timeout is counted in
  `amcp status`;
- a pre_tool_call veto (the JSON answer) fails the call with its reason;
- a post_security_check hook sees a forged frame, a post_crdt_sync hook a peer's write;
- a pre_agent_spawn veto stops an agent's start (exit 1, the veto in its audit log);
- pre_vote and post_vote hooks see a proposal and the voter's ballot.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from agents import AgentClient, read_cluster_log
from agents.runtime.errors import ToolFailed
from agents.runtime.subjects import AgentSubjects, call_request
from crdt.store import ContextStore
from tests.support.agents import view_of
from tests.support.cli import amcp, amcp_async, amcp_json
from tests.support.vsm import run_task, start_vsm
from tests.support.waiting import wait_until

PY = sys.executable
LOOP = [("s3", "s3-a"), ("s4", "s4-a"), ("s5", "s5-a"), ("s1", "s1-a")]

VETO = """\
import json, sys
doc = json.load(sys.stdin)
if "forbidden" in doc.get("text", doc.get("description", "")):
    print("work may not name forbidden things", file=sys.stderr)
    sys.exit(2)
"""

RECORD = """\
import sys
with open(sys.argv[1], "a") as f:
    f.write(sys.stdin.read() + "\\n")
"""


def _script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x] if path.exists() else []


async def test_pre_step_and_pre_task_hooks_veto_with_their_reasons_in_the_audit_log(
    agent_cluster, make_bus, cli_env, tmp_path
) -> None:
    veto = _script(tmp_path, "veto.py", VETO)
    steps = tmp_path / "post_step.jsonl"
    tasks = tmp_path / "post_task.jsonl"
    record = _script(tmp_path, "record.py", RECORD)
    hooks = {
        "s1-a": ["--hook", f"pre_step={PY} {veto}", "--hook", f"post_step={PY} {record} {steps}"],
        "s3-a": ["--hook", f"pre_task={PY} {veto}", "--hook", f"post_task={PY} {record} {tasks}"],
    }
    bus = await make_bus("tester", cluster=agent_cluster.name)
    await start_vsm(agent_cluster, bus, LOOP, args=hooks)

    work = tmp_path / "work"
    work.mkdir()
    result = await run_task(bus, work, description="d", steps=["touch forbidden"])
    assert not result.success
    error = result.steps[0].error or ""
    assert error.startswith("vetoed by pre_step hook") and "forbidden things" in error
    assert not (work / "forbidden").exists()  # the command never ran

    allowed = await run_task(bus, work, description="d", steps=["touch fine"])
    assert allowed.success and (work / "fine").exists()
    await wait_until(lambda: any(d["ok"] for d in _lines(steps)), what="post_step of the 2nd")
    assert {d["task_id"] for d in _lines(steps)} >= {result.task_id, allowed.task_id}

    log = await amcp_async("log", "--agent", "s1-a", env=agent_cluster.env(cli_env))
    assert log.returncode == 0, log.stderr
    vetoes = [line for line in log.stdout.splitlines() if "hook_vetoed" in line]
    assert vetoes and "work may not name forbidden things" in vetoes[0]
    assert 'at="pre_step"' in vetoes[0]
    await wait_until(lambda: len(_lines(tasks)) >= 2, what="post_task of both tasks")
    assert [d["success"] for d in _lines(tasks)][:2] == [False, True]

    # a pre_task veto: S3 runs nothing and `amcp task` says why, exit 1
    env = agent_cluster.env(cli_env)
    done = await amcp_async(
        "task", "forbidden work", "--step", "touch x", "--cwd", str(work), env=env
    )
    assert done.returncode == 1
    assert "vetoed by pre_task hook" in done.stdout and "forbidden things" in done.stdout
    assert not (work / "x").exists()
    await wait_until(lambda: len(_lines(tasks)) >= 3, what="post_task of the vetoed task")
    assert _lines(tasks)[2]["description"] == "forbidden work"


async def test_a_hanging_hook_times_out_and_the_step_goes_on(
    agent_cluster, make_bus, cli_env, tmp_path
) -> None:
    hang = f"pre_step={PY} -c 'import time; time.sleep(60)'"
    hooks = ["--hook", hang, "--hook-timeout", "0.5"]
    bus = await make_bus("tester", cluster=agent_cluster.name)
    await start_vsm(agent_cluster, bus, LOOP, args={"s1-a": hooks})

    result = await run_task(bus, tmp_path, description="d", steps=["echo done > out.txt"])
    assert result.success, result.summary
    assert (tmp_path / "out.txt").read_text() == "done\n"
    assert result.steps[0].ms < 5000  # the step itself; the hook's 0.5 s came before it

    env = agent_cluster.env(cli_env)

    async def counted() -> bool:
        status = await amcp_json("status", env=env)
        s1 = next(m for m in status["members"] if m["id"] == "s1-a")
        totals = (s1["stats"].get("hooks") or {}).get("totals") or {}
        return totals.get("timed_out") == 1 and totals.get("failed") == 1

    await wait_until(counted, 10, what="the timed-out hook in amcp status")
    text = await amcp_async("status", env=env)
    assert "hooks of s1-a (1): ran 1, failed 1, timed out 1" in text.stdout


@pytest.fixture
async def hooked(agent_cluster, make_bus, tmp_path):
    """One agent with an echo tool, a vetoing pre_tool_call hook and recording hooks."""
    record = _script(tmp_path, "record.py", RECORD)
    block = json.dumps({"decision": "block", "reason": "echo is off today"})
    blocker = _script(tmp_path, "block.py", f"print({block!r})\n")
    args = [
        "--hook",
        f"pre_tool_call={PY} {blocker}",
        "--hook",
        f"post_security_check={PY} {record} {tmp_path / 'security.jsonl'}",
        "--hook",
        f"post_crdt_sync={PY} {record} {tmp_path / 'sync.jsonl'}",
    ]
    agent_cluster.spawn("s2", "hooked", capabilities=["echo"], args=args)
    bus = await make_bus("mallory", cluster=agent_cluster.name)
    client = AgentClient(bus)

    async def up() -> bool:
        return await view_of(client, "hooked") is not None

    await wait_until(up, 15, what="the agent up")
    return bus, client


async def test_a_pre_tool_call_veto_fails_the_call_with_its_reason(
    hooked, agent_cluster, cli_env
) -> None:
    _, client = hooked
    with pytest.raises(ToolFailed, match=r"vetoed by pre_tool_call hook .*: echo is off today"):
        await client.call("hooked", "echo", {"text": "hi"}, timeout=10)
    log = await amcp_async("log", "--agent", "hooked", env=agent_cluster.env(cli_env))
    failed = [line for line in log.stdout.splitlines() if "task_failed" in line]
    assert failed and "echo is off today" in failed[-1]


async def test_observing_hooks_see_a_forged_frame_and_a_peers_write(
    hooked, agent_cluster, tmp_path
) -> None:
    bus, _ = hooked
    subject = AgentSubjects(bus.subjects).call("hooked")
    forged = bytearray(bus.sealer.seal(subject, call_request("echo", {"text": "x"}), "req"))
    forged[-5] ^= 0xFF
    await bus.publish_frame(subject, bytes(forged))
    await bus.flush()
    security = tmp_path / "security.jsonl"
    await wait_until(lambda: _lines(security), 10, what="post_security_check")
    seen = _lines(security)[0]
    assert seen["event"] == "post_security_check" and seen["agent"] == "hooked"
    assert seen["reason"] == "bad_signature" and seen["subject"] == subject

    store = await ContextStore.open(bus)
    try:
        await store.set("notes.hooked", "hello")
        sync = tmp_path / "sync.jsonl"
        await wait_until(
            lambda: any("notes.hooked" in d["keys"] for d in _lines(sync)), 10, what="sync"
        )
        synced = next(d for d in _lines(sync) if "notes.hooked" in d["keys"])
        assert synced["peer"] == store.replica_id and synced["applied"] >= 1
    finally:
        await store.close()


async def test_a_pre_agent_spawn_veto_stops_the_start(
    agent_cluster, make_bus, nats_server, keyring_file
) -> None:
    no = f"pre_agent_spawn={PY} -c 'import sys; print(\"not today\", file=sys.stderr); sys.exit(2)'"
    args = ["--role", "s2", "--id", "s2-x", "--nats", nats_server.url, "--keyring"]
    args += [str(keyring_file), "--cluster", agent_cluster.name, "--hook", no]
    done = await asyncio.to_thread(amcp, *args, program="amcp-agent", timeout=60)
    assert done.returncode == 1
    assert "pre_agent_spawn hook" in done.stderr and "refused the start: not today" in done.stderr
    bus = await make_bus("tester", cluster=agent_cluster.name)
    entries, _ = await read_cluster_log(bus, agent="s2-x")
    vetoed = [e.record for e in entries if e.event == "hook_vetoed"]
    assert vetoed and vetoed[0]["reason"] == "not today"
    assert not [e for e in entries if e.event == "started"]  # it never joined


async def test_vote_hooks_see_the_proposal_and_the_ballot(
    agent_cluster, make_bus, cli_env, tmp_path
) -> None:
    record = _script(tmp_path, "record.py", RECORD)
    votes = tmp_path / "votes.jsonl"
    hooks = [f"{e}={PY} {record} {votes}" for e in ("pre_vote", "post_vote")]
    agent_cluster.spawn("s5", "v1", args=[a for h in hooks for a in ("--hook", h)])
    client = AgentClient(await make_bus("caller", cluster=agent_cluster.name))

    async def running() -> bool:
        view = await view_of(client, "v1")
        return view is not None and any(m.id == "v1" and m.state == "running" for m in view.members)

    await wait_until(running, 20, what="the voter running")
    done = await amcp_async(
        "coordinate", "--action", "restart", "--json", env=agent_cluster.env(cli_env)
    )
    assert done.returncode == 0, done.stderr
    proposal = json.loads(done.stdout)["proposal"]
    await wait_until(lambda: len(_lines(votes)) >= 2, 10, what="both vote hooks")
    pre, post = sorted(_lines(votes), key=lambda d: d["event"] == "post_vote")
    assert (pre["event"], pre["action"], pre["agent"]) == ("pre_vote", "restart", "v1")
    assert post["event"] == "post_vote" and post["choice"] == "yes"
    assert pre["proposal"] == post["proposal"] == proposal["id"]


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--hook", "nope=x"], "unknown hook event 'nope'"),
        (["--hook", "pre_step=echo 'open"], "cannot split"),
        (["--hooks-file", "/nonexistent/hooks.toml"], "cannot read hooks file"),
        (["--hook", "pre_step=true", "--hook-timeout", "0"], "--hook-timeout: must be more than 0"),
    ],
)
def test_a_bad_hook_stops_amcp_agent_before_it_connects(flags: list[str], says: str) -> None:
    done = amcp("--role", "s1", "--nats", "nats://127.0.0.1:1", *flags, program="amcp-agent")
    assert done.returncode == 2  # usage, not 4: NATS (unreachable here) was never tried
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1
