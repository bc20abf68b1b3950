"""`amcp coordinate` against `amcp-agent` processes: five voters commit (exit 0), three
SIGKILLed leave no quorum (exit 3), usage errors are one line (exit 2), and a proposer
SIGKILLed right after its commit still gets the action executed, once."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from amcp import Bus, Keyring, NatsServer
from consensus import Decided, DecisionLog, ExecState
from crdt import ContextStore
from tests.support.agents import Cluster
from tests.support.cli import amcp_async, start_async
from tests.support.waiting import wait_until


@pytest.fixture
async def observer(
    agent_cluster: Cluster, nats_server: NatsServer, keyring_file: Path
) -> AsyncIterator[ContextStore]:
    """An in-memory replica of the agents' cluster, to watch the log."""
    bus = await Bus.connect(
        nats_server.url,
        keyring=Keyring.load(keyring_file),
        sender="observer",
        cluster=agent_cluster.name,
    )
    store = await ContextStore.open(bus)
    try:
        yield store
    finally:
        await store.close()
        await bus.close()


async def running_voters(store: ContextStore, count: int) -> None:
    """Wait until `count` voters are registered and running (their voting has started)."""

    def ready() -> bool:
        members = store.local("agents.members") or {}
        voters = [r for r in members.values() if r.get("voter") and r.get("state") == "running"]
        return len(voters) == count

    await wait_until(ready, 20, what=f"{count} running voters")


async def test_five_voters_commit_and_three_killed_leave_no_quorum(
    agent_cluster: Cluster, cli_env: dict[str, str], observer: ContextStore
) -> None:
    voters = [agent_cluster.spawn("s5", f"v{i}") for i in range(1, 6)]
    await running_voters(observer, 5)
    env = agent_cluster.env(cli_env)
    done = await amcp_async(
        "coordinate", "--action", "restart", "--payload", '{"targets": ["w1"]}', "--json", env=env
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["outcome"] == "committed" and doc["members"] == [f"v{i}" for i in range(1, 6)]
    assert doc["summary"]["yes"] == 3 and doc["summary"]["needed"] == 3
    for vote in doc["votes"]:
        assert set(vote["scores"]) == {"urgency", "importance", "risk", "confidence", "novelty"}
        assert vote["choice"] == "yes" and vote["reason"].startswith("yes: attention")

    human = await amcp_async("coordinate", "--action", "restart", "--urgency", "high", env=env)
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith("committed: restart")
    assert "tally: 3 yes, 0 no, 0 abstain of 5 members; majority needs 3 yes" in human.stdout
    assert "VOTER" in human.stdout and "REASON" in human.stdout
    assert human.stdout.count("yes: attention") == 3

    for proc in voters[:3]:
        proc.kill()
    lost = await amcp_async("coordinate", "--action", "restart", "--timeout", "1.5", env=env)
    assert lost.returncode == 3, (lost.stdout, lost.stderr)
    assert lost.stdout.startswith("no_quorum: restart")
    assert "of 5 members; majority needs 3 yes" in lost.stdout  # the dead still count
    assert "no ballot counted from: v1, v2, v3" in lost.stdout
    assert "\nv4 " in lost.stdout and "\nv5 " in lost.stdout  # the survivors' ballots


@pytest.mark.parametrize(
    "args",
    [
        ["--quorum", "most"],
        ["--quorum", "0"],
        ["--payload", "[1, 2]"],
        ["--payload", "{oops"],
        ["--urgency", "extreme"],
        ["--timeout", "-1"],
        ["--action", ""],
    ],
)
async def test_usage_errors_are_one_line_and_exit_2(
    args: list[str], cli_env: dict[str, str]
) -> None:
    argv = args if "--action" in args else ["--action", "restart", *args]
    done = await amcp_async("coordinate", *argv, env=cli_env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""


async def test_no_registered_voters_is_no_quorum_and_says_so(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "AMCP_CLUSTER": "empty-cluster"}
    done = await amcp_async("coordinate", "--action", "restart", "--timeout", "0.5", env=env)
    assert done.returncode == 3
    assert "no registered voters" in done.stdout


async def test_a_proposer_killed_after_its_commit_still_gets_it_executed_once(
    agent_cluster: Cluster,
    cli_env: dict[str, str],
    observer: ContextStore,
    tmp_path: Path,
) -> None:
    store = observer
    for i in range(1, 4):
        agent_cluster.spawn("s5", f"v{i}")
    executor_dir = tmp_path / "x1"
    agent_cluster.spawn(
        "s1",
        "x1",
        capabilities=["sleep"],
        data_dir=executor_dir,
        args=["--executes", "restart=sleep"],
    )
    await running_voters(store, 3)
    await wait_until(
        lambda: DecisionLog(store).executor_for("restart") is not None, 20, what="the executor"
    )
    env = agent_cluster.env(cli_env)
    decided: list[Decided] = []
    DecisionLog(store).watch_decisions(decided.append)  # the decision as it is announced
    argv = ["coordinate", "--action", "restart", "--payload", '{"seconds": 1.0}']
    argv += ["--id", "crash-1", "--timeout", "5"]
    proposer = await start_async(
        *argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await wait_until(lambda: decided, 20, what="the commit")
    finally:
        proposer.kill()  # SIGKILL, before the executor can have finished (it sleeps 1 s)
        await proposer.wait()
    assert proposer.returncode == -signal.SIGKILL
    assert decided[0].id == "crash-1" and str(decided[0].decision.outcome) == "committed"

    log = DecisionLog(store)

    def executed() -> bool:
        execution = log.execution("crash-1")
        return execution is not None and execution.state is ExecState.DONE

    await wait_until(executed, 20, what="the execution, without its proposer")
    again = await amcp_async("coordinate", "--action", "restart", "--payload", '{"seconds": 1.0}',
        "--id", "crash-1", "--json", env=env)  # fmt: skip
    assert again.returncode == 0, again.stderr
    doc: dict[str, Any] = json.loads(again.stdout)
    assert doc["replayed"] is True and doc["outcome"] == "committed"
    assert doc["execution"]["state"] == "done" and doc["execution"]["executor"] == "x1"
    entries = [json.loads(line) for line in (executor_dir / "audit.jsonl").read_text().splitlines()]
    runs = [e for e in entries if e["event"] == "decision" and e.get("proposal") == "crash-1"]
    assert len(runs) == 1, runs
