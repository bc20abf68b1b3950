"""Helpers of the CRDT integration tests: `amcp ctx` as a user runs it, and what one
particular replica holds, asked over its own subject."""

from __future__ import annotations

from typing import Any

from amcp import Bus
from crdt import Delta, ReplicaState
from crdt.messages import Pull, PullReply, parse
from tests.support.cli import amcp_async


async def ctx(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run `amcp ctx ARGS` (a generous --timeout unless given: the machine may be busy);
    the exit code, stdout and stderr."""
    if args[0] != "serve" and "--timeout" not in args:
        args = (*args, "--timeout", "10")
    done = await amcp_async("ctx", *args, env=env, timeout=30)
    return done.returncode, done.stdout, done.stderr


async def probe(bus: Bus, replica: str, key: str) -> Any:
    """The value of `key` held by one particular replica, asked over its own subject."""
    pull = Pull("probe", None, [key], {})
    reply = await bus.request(
        bus.subjects.area("ctx", "rep", replica), pull.to_wire(), timeout=2.0, kind="ctx"
    )
    answer = parse(reply.body)
    assert isinstance(answer, PullReply)
    state = ReplicaState("probe")
    for record in answer.records:
        state.apply(Delta.from_wire(record))
    return state.get(key)
