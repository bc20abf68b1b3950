"""`amcp_task` through the MCP bridge (only with --allow-tasks) against the six VSM agents
as child processes: the cycle result, and a progress notification per step of the loop as
its signed audit log records them."""

from __future__ import annotations

from tests.support.mcp import bridge
from tests.support.vsm import start_vsm, vsm_env


async def test_a_task_runs_with_progress_per_loop_step(
    agent_cluster, make_bus, cli_env, tmp_path
) -> None:
    bus = await make_bus("tester", cluster=agent_cluster.name)
    await start_vsm(agent_cluster, bus, env=vsm_env())
    env = agent_cluster.env(cli_env)
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with bridge(env) as plain:
        assert "amcp_task" not in {t.name for t in (await plain.list_tools()).tools}

    async with bridge(env, "--allow-tasks") as session:
        task = next(t for t in (await session.list_tools()).tools if t.name == "amcp_task")
        assert task.annotations.destructive_hint and task.annotations.open_world_hint
        result = await session.call_tool(
            "amcp_task",
            {
                "description": "write a file",
                "steps": ["echo hello > out.txt"],
                "cwd": str(tmp_path),
                "timeout": 20,
            },
            progress_callback=on_progress,
        )
    assert not result.is_error, result.content
    cycle = result.structured_content
    assert cycle["success"] is True and cycle["task_id"].startswith("t-")
    assert (tmp_path / "out.txt").read_text() == "hello\n"
    assert any("cycle_started" in m for m in progress), progress
    assert any("executed step 0" in m for m in progress), progress
