"""JSON the wire would refuse, given to the `amcp` CLI: every command that takes JSON says
why in one line and exits 2 before sending, instead of a traceback or a silent drop by
the receiver followed by a timeout. Real CLI subprocesses against a real nats-server."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from agents import Agent, AgentConfig
from amcp import Reason
from tests.support.cli import amcp, amcp_async

MAX_DEPTH = 32  # FrameLimits().max_depth: a frame's body nests at most this deep


def nested(levels: int, leaf: str = "1") -> str:
    """JSON lists nested `levels` deep around `leaf` (`[[1]]` is 2 levels)."""
    return "[" * levels + leaf + "]" * levels


# (what is wrong, the JSON, the words of the one-line error)
BAD = [
    ("33 deep", nested(MAX_DEPTH + 1), "nested too deep"),
    ("60,000 deep", nested(60_000, ""), "nested too deep"),
    ("5,000 digits", "[" + "7" * 5000 + "]", "outside msgpack's 64-bit range"),
    ("2**64", "[18446744073709551616]", "outside msgpack's 64-bit range"),
    ("-2**63 - 1", "[-9223372036854775809]", "outside msgpack's 64-bit range"),
    ("inf", "[1e400]", "out of a 64-bit float's range"),
    ("NaN", "[NaN]", "NaN is not a JSON number"),
    ("lone surrogate", '["\\ud800"]', "surrogates not allowed"),
]
# each command that takes JSON, with the JSON given
COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "send": lambda j: ["send", "cli.input", j],
    "call": lambda j: ["call", "s1", "echo", j, "--timeout", "10"],
    "coordinate": lambda j: ["coordinate", "--action", "go", "--payload", '{"x": ' + j + "}"],
    "ctx set": lambda j: ["ctx", "set", "k", j, "--timeout", "10"],
    "ctx add": lambda j: ["ctx", "add", "s", j, "--timeout", "10"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("why, text, words", BAD, ids=[b[0] for b in BAD])
def test_json_the_wire_refuses_exits_2_in_one_line_before_sending(
    command: str, why: str, text: str, words: str, cli_env: dict[str, str]
) -> None:
    started = time.monotonic()
    result = amcp(*COMMANDS[command](text), env=cli_env)
    assert result.returncode == 2, (why, result.returncode, result.stderr[-300:])
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-300:]
    assert words in result.stderr
    assert len(result.stderr) < 400  # the error names the problem, it does not echo the input
    assert time.monotonic() - started < 8  # refused up front, not after waiting for a reply


@pytest.fixture
async def echo_agent(make_bus: Callable[..., Any]) -> AsyncIterator[Agent]:
    cluster = f"t{uuid.uuid4().hex[:8]}"
    agent_id = f"w-{uuid.uuid4().hex[:6]}"
    bus = await make_bus(agent_id, cluster=cluster)
    agent = Agent(bus, AgentConfig(role="s1", agent_id=agent_id, capabilities=("echo",)))
    await agent.start()
    yield agent
    await agent.stop()


async def call(env: dict[str, str], agent: Agent, payload: str) -> subprocess.CompletedProcess:
    env = {**env, "AMCP_CLUSTER": agent.bus.cluster}
    return await amcp_async("call", agent.id, "echo", payload, env=env)


async def test_the_limits_are_exact_an_answer_at_the_depth_limit_a_refusal_past_it(
    echo_agent: Agent, cli_env: dict[str, str]
) -> None:
    # the call wraps the input in {"tool": ..., "input": ...}: one level of the 32
    at_limit = await call(cli_env, echo_agent, '{"text": ' + nested(MAX_DEPTH - 2) + "}")
    assert at_limit.returncode == 2, at_limit.stderr
    assert "invalid input for echo" in at_limit.stderr  # the agent answered
    assert echo_agent.calls["invalid"] == 1

    started = time.monotonic()
    past = await call(cli_env, echo_agent, '{"text": ' + nested(MAX_DEPTH - 1) + "}")
    assert past.returncode == 2, past.stderr
    assert "nested too deep" in past.stderr
    assert time.monotonic() - started < 4  # not the 5 s reply timeout
    assert echo_agent.calls["invalid"] == 1  # nothing reached the agent...
    assert echo_agent.bus.rejections.get(Reason.MALFORMED, 0) == 0  # ...not even as garbage

    # the limits are exact, not stricter: a body at the depth limit holding the extreme
    # integers msgpack carries is sent, and a ctx VALUE that is not JSON is still text
    edge = nested(MAX_DEPTH - 1, "18446744073709551615, -9223372036854775808")
    assert (await amcp_async("send", "cli.input", edge, env=cli_env)).returncode == 0
    text = await amcp_async("ctx", "set", "k", "not json", "--timeout", "0.2", env=cli_env)
    assert "invalid VALUE" not in text.stderr
    assert text.returncode == 3, text.stderr  # sent as text; no durable replica to ack it
