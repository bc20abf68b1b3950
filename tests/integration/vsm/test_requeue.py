"""An S1 agent SIGKILLed mid-step: its command dies with it, S3 sees it dead, re-queues the
step to the other S1, and the step completes exactly once."""

from __future__ import annotations

import asyncio
import os

import pytest

from agents import AgentProcess
from tests.support.vsm import run_task, start_vsm, task_log
from tests.support.waiting import wait_until

pytestmark = pytest.mark.chaos


async def test_a_killed_s1_has_its_step_finished_once_by_another(
    agent_cluster, make_bus, tmp_path
) -> None:
    bus = await make_bus("tester", cluster=agent_cluster.name)
    procs: dict[str, AgentProcess] = await start_vsm(agent_cluster, bus)
    started, finished = tmp_path / "started", tmp_path / "finished"
    # records which agent (the shell's parent) started it and the shell; finishes 1.5 s later
    step = "echo $PPID $$ >> started; sleep 1.5; echo done >> finished"
    running = asyncio.ensure_future(
        run_task(bus, tmp_path, description="a slow step", steps=[step])
    )
    await wait_until(
        lambda: started.exists() and started.read_text().strip(), 15, what="the step to start"
    )
    first_pid, first_shell = (int(x) for x in started.read_text().split()[:2])
    victim = next(agent_id for agent_id, p in procs.items() if p.pid == first_pid)
    procs[victim].kill()  # SIGKILL mid-step

    result = await asyncio.wait_for(running, 30)
    assert result.success, result.summary
    survivor = ({"s1-a", "s1-b"} - {victim}).pop()
    assert result.steps[0].agent == survivor
    assert [(r["from"], r["why"]) for r in result.requeued] == [(victim, f"{victim} died mid-step")]
    assert finished.read_text() == "done\n"  # once: the killed agent's shell died with it
    parents = [int(line.split()[0]) for line in started.read_text().splitlines()]
    assert parents == [first_pid, procs[survivor].pid]
    with pytest.raises(ProcessLookupError):  # the killed agent's shell died with it
        os.kill(first_shell, 0)

    log = await task_log(bus, result.task_id)
    executed = [(e["agent"], e["ok"]) for e in log if e["event"] == "executed"]
    assert executed == [(survivor, True)]
    events = [e["event"] for e in log]
    assert events.index("requeued") < events.index("executed")
