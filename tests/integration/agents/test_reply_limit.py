"""Replies over the frame limit on a real nats-server: an S1 step printing 256 KiB of 0xff
bytes (768 KiB once decoded) and a tool returning more than a frame holds are answered, cut
and flagged, within the client's normal timeout; near-limit text comes back whole
(issue 14, point 7)."""

from __future__ import annotations

from pydantic import BaseModel

from agents import AgentClient, CallContext, tool
from agents.vsm.tasks import MAX_OUTPUT, StepIn
from tests.support.agents import Cluster
from tests.support.consensus import Members
from tests.support.waiting import wait_until

FF = f"head -c {MAX_OUTPUT} /dev/zero | tr '\\0' '\\377'"


def step(text: str) -> dict[str, object]:
    return StepIn(task_id="t1", step=0, text=text, max_output=MAX_OUTPUT).model_dump()


async def test_binary_step_output_is_answered_cut_and_flagged(
    agent_cluster: Cluster, make_bus
) -> None:
    agent_cluster.spawn("s1", "w1", capabilities=["shell"])
    client = AgentClient(await make_bus("caller", cluster=agent_cluster.name), timeout=5)

    async def up() -> bool:
        try:
            await client.call("w1", "describe", timeout=1)
        except Exception:
            return False
        return True

    await wait_until(up, 20, what="w1 up")
    binary = await client.call("w1", "execute", step(f"{FF}; {FF} >&2"))
    out = binary.output
    assert out["ok"] and out["truncated"] is True
    assert set(out["stdout"]) == {"\ufffd"} and len(out["stdout"].encode()) <= MAX_OUTPUT
    assert len(out["stderr"].encode()) <= MAX_OUTPUT

    x, y = f"head -c {MAX_OUTPUT} /dev/zero | tr '\\0' x", f"head -c {MAX_OUTPUT} /dev/zero"
    text = await client.call("w1", "execute", step(f"{x}; {y} | tr '\\0' y >&2"))
    assert text.output["truncated"] is False
    assert text.output["stdout"] == "x" * MAX_OUTPUT and text.output["stderr"] == "y" * MAX_OUTPUT


class BigIn(BaseModel):
    size: int


class BigOut(BaseModel):
    text: str
    truncated: bool = False


@tool("big")
async def big(args: BigIn, ctx: CallContext) -> BigOut:
    """Return `size` characters of text."""
    return BigOut(text="z" * args.size)


async def test_a_tool_reply_over_the_frame_limit_is_cut_and_flagged(members: Members) -> None:
    await members.add("w2", role="s4", voter=False, tools=(big,))
    client = AgentClient(await members.bus("caller"), timeout=5)
    result = await client.call("w2", "big", {"size": 2 * 1024 * 1024})
    assert result.output["truncated"] is True
    assert 900_000 < len(result.output["text"]) < 1024 * 1024
    whole = await client.call("w2", "big", {"size": 1000})
    assert whole.output == {"text": "z" * 1000, "truncated": False}
