"""A `cli` executor's template puts step text where the command reads options: text that
starts with `-` must not become an option (`sort {text}` with `-oFILE` would write FILE).
A real S1 agent process on a real nats-server, called with the real `amcp call`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents import AgentClient
from tests.support.agents import Cluster
from tests.support.cli import amcp_json
from tests.support.waiting import wait_until


def execute(template: list[str], text: str, cwd: Path) -> str:
    step = {"task_id": "t1", "step": 0, "text": text, "executor": "cli", "template": template}
    return json.dumps({**step, "cwd": str(cwd)})


async def test_step_text_is_never_an_option_of_the_template_command(
    agent_cluster: Cluster, cli_env: dict[str, str], make_bus: Any, tmp_path: Path
) -> None:
    agent_cluster.spawn("s1", "w1")
    env = agent_cluster.env(cli_env)
    client = AgentClient(await make_bus("test", cluster=agent_cluster.name), timeout=2)
    await wait_until(lambda: _answers(client), 30, what="w1 to answer")
    target = tmp_path / "FILE"

    refused: Any = await amcp_json(
        "call", "w1", "execute", execute(["sort", "{text}"], f"-o{target}", tmp_path), env=env
    )
    out = refused["output"]
    assert not out["ok"] and "read as an option" in out["error"], out
    assert not target.exists()

    # with `--` before it the text is an operand: a file name sort cannot open
    ended: Any = await amcp_json(
        "call", "w1", "execute", execute(["sort", "--", "{text}"], f"-o{target}", tmp_path), env=env
    )
    assert "No such file" in ended["output"]["stderr"], ended
    assert not target.exists()

    # text that is no option still runs, and an option the template itself has still works
    (tmp_path / "in").write_text("b\na\n")
    fine: Any = await amcp_json(
        "call", "w1", "execute", execute(["sort", "-r", "{text}"], "in", tmp_path), env=env
    )
    assert fine["output"]["ok"] and fine["output"]["stdout"] == "b\na\n"


async def _answers(client: AgentClient) -> bool:
    try:
        await client.call("w1", "describe", timeout=1)
    except Exception:
        return False
    return True
