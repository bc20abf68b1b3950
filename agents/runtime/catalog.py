"""Tools an agent can offer by name with `--capability NAME`.

The runtime's catalog holds small general tools (echo, sleep) that tests, benchmarks and
health checks use; other packages add theirs through the `amcp.tools` entry-point group
(name = capability, value = a Tool). A capability with no tool is still advertised in the
member record, as a label the allocator can match on.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import entry_points

from pydantic import BaseModel, Field

from agents.runtime.tools import CallContext, Example, Tool, tool

__all__ = ["TOOL_GROUP", "catalog_tool"]

TOOL_GROUP = "amcp.tools"


class Text(BaseModel):
    text: str = Field(max_length=65_536, description="any text")


@tool(examples=[Example({"text": "hello"}, {"text": "hello"})], read_only=True)
async def echo(args: Text, ctx: CallContext) -> Text:
    """Return the text unchanged (a health check and a benchmark of the call path)."""
    return args


class SleepIn(BaseModel):
    seconds: float = Field(ge=0, le=3600, description="how long to hold a pool slot")


class SleepOut(BaseModel):
    slept: float


@tool(examples=[Example({"seconds": 0.1}, {"slept": 0.1})], read_only=True)
async def sleep(args: SleepIn, ctx: CallContext) -> SleepOut:
    """Hold a pool slot for a while, then answer (shows the pool and draining at work)."""
    await asyncio.sleep(args.seconds)
    return SleepOut(slept=args.seconds)


BUILTIN: dict[str, Tool] = {t.name: t for t in (echo, sleep)}


def catalog_tool(capability: str) -> Tool | None:
    """The tool that serves `capability`, if the catalog or an entry point has one."""
    if capability in BUILTIN:
        return BUILTIN[capability]
    for ep in entry_points(group=TOOL_GROUP):
        if ep.name == capability:
            loaded = ep.load()
            if isinstance(loaded, Tool):
                return loaded
    return None
