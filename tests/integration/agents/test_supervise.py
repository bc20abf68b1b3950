"""Supervision: a supervised agent that crashes comes back with the same id; a crash loop
spends the restart budget and the supervisor gives up, saying so."""

from __future__ import annotations

import os
import signal
import sys

from agents import AgentClient, read_cluster_log
from tests.support.agents import view_of
from tests.support.cli import amcp_async
from tests.support.waiting import wait_until


async def test_a_supervised_agent_that_crashes_comes_back(agent_cluster, make_bus) -> None:
    supervisor = agent_cluster.spawn(
        "s1", "phoenix", supervise=True, args=["--backoff-base", "0.1"]
    )
    bus = await make_bus("tester", cluster=agent_cluster.name)
    client = AgentClient(bus)

    async def member() -> dict | None:
        view = await view_of(client, "phoenix")
        found = [m for m in view.members if m.id == "phoenix"] if view else []
        return found[0].model_dump() if found else None

    async def running_pid() -> int | None:
        m = await member()
        return m["pid"] if m and m["state"] == "running" and m["liveness"] == "alive" else None

    await wait_until(running_pid, 15, what="the supervised agent to run")
    first = await running_pid()
    assert first != supervisor.pid  # the agent is the supervisor's child

    os.kill(first, signal.SIGKILL)
    await wait_until(lambda: _new_pid(running_pid, first), 15, what="the agent to come back")

    entries, _ = await read_cluster_log(bus, agent="phoenix")
    starts = [e.record["restarts"] for e in entries if e.event == "started"]
    assert starts == [0, 1]
    assert "crashed (killed by SIGKILL); restart 1 of at most 5" in supervisor.log_text()

    assert supervisor.terminate() == 0  # SIGTERM passes to the child, which leaves
    assert "phoenix stopped" in supervisor.log_text()


async def _new_pid(running_pid, old: int) -> bool:
    pid = await running_pid()
    return pid is not None and pid != old


async def test_a_crash_loop_spends_the_budget_and_gives_up(cli_env) -> None:
    crash = [sys.executable, "-c", "raise SystemExit(3)"]
    done = await amcp_async(
        "supervise", "--max-restarts", "2", "--backoff-base", "0.01", "--", *crash, env=cli_env
    )
    assert done.returncode == 1
    assert done.stderr.count("crashed (exit code 3)") == 2
    assert "giving up on" in done.stderr
    assert "restart budget spent: 2 restarts within 60s; last exit code 3" in done.stderr


async def test_bad_configuration_is_not_restarted(cli_env) -> None:
    done = await amcp_async(
        "supervise", "--", sys.executable, "-c", "raise SystemExit(2)", env=cli_env
    )
    assert done.returncode == 2
    assert "crashed" not in done.stderr and "bad configuration" in done.stderr


async def test_supervise_needs_a_command(cli_env) -> None:
    done = await amcp_async("supervise", env=cli_env)
    assert done.returncode == 2 and "give the command to supervise" in done.stderr
