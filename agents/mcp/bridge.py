"""The bridge's logic, apart from the MCP wiring: which tools it offers (the built-ins and
every live agent's), and what a call of one of them does. Answers are result documents
(agents.mcp.schema); no failure escapes as an exception.

The tool list follows the cluster: `refresh` asks a live agent for the member list (as
`amcp members` does) and describes each live agent it has not described yet (as `amcp
tools` does), again when its version or capabilities change, and every `redescribe`
seconds anyway (a tool's availability changes with nothing else).

Auto mode (agents/mcp/auto.py): a call of an agent tool whose hints say destructive is
put to a quorum vote first (the tool call is the action and payload) and runs only if
committed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from agents.mcp.auto import needs_vote, refused_message, tally, vote_on_call
from agents.mcp.builtins import PROGRESS, Progress, Services, builtin_tools
from agents.mcp.catalog import Catalog, Route, build_catalog
from agents.mcp.schema import error_result, ok_result, tool_entry
from agents.runtime.admin import MemberView
from agents.runtime.errors import AgentBusy, ToolCallError, ToolInputError
from agents.runtime.tools import CallContext, Tool
from amcp.errors import AmcpError, NoResponders, RequestTimeout
from consensus.errors import ConsensusError
from crdt.errors import CrdtError

__all__ = ["Bridge"]

log = logging.getLogger("agents.mcp")


class Bridge:
    """Tools of the cluster for an MCP server. `read_only`: offer and run only read-only
    tools; `auto`: vote on destructive agent tool calls first."""

    def __init__(
        self,
        services: Services,
        *,
        read_only: bool = False,
        allow_tasks: bool = False,
        auto: bool = True,
        call_timeout: float = 30.0,
        vote_timeout: float = 10.0,
        vote_quorum: str = "majority",
        redescribe: float = 5.0,
    ) -> None:
        self.services = services
        self.read_only = read_only
        self.auto = auto
        self.call_timeout = call_timeout
        self.vote_timeout = vote_timeout
        self.vote_quorum = vote_quorum
        self.redescribe = redescribe
        self.builtins: dict[str, Tool] = {
            t.name: t
            for t in builtin_tools(services, allow_tasks=allow_tasks)
            if t.read_only or not read_only
        }
        self.catalog = Catalog.empty()
        # agent id -> (what would make it describe again, when described, role, tool specs)
        self._described: dict[str, tuple[tuple[Any, ...], float, str, list[dict[str, Any]]]] = {}
        self._builtin_entries = [
            tool_entry(
                t.name,
                t.spec(),
                "Runs in the amcp MCP bridge, on the cluster's bus.",
                {"builtin": True},
                title=t.name.replace("_", " "),
            )
            for t in self.builtins.values()
        ]

    # -- the tool list ----------------------------------------------------------------

    def entries(self) -> list[dict[str, Any]]:
        """`tools/list` entries: the built-ins, then the agents' tools by name."""
        agent_tools = [
            e for e in self.catalog.entries if not self.read_only or _read_only(e["annotations"])
        ]
        return [*self._builtin_entries, *agent_tools]

    async def refresh(self) -> bool:
        """Re-read the members and describe new or changed live agents; whether the tool
        list changed."""
        client = self.services.client
        try:
            view = await client.members()
        except NoResponders:
            live: list[MemberView] = []  # no agent: no agent tools
        except AmcpError as exc:
            log.warning("members not refreshed: %s", exc)
            return False
        else:
            live = [m for m in view.members if m.state == "running" and m.liveness != "dead"]
        described = {}
        now = time.monotonic()
        for m in live:
            stamp = (m.role, m.version, tuple(m.capabilities))
            known = self._described.get(m.id)
            if known is None or known[0] != stamp or now - known[1] >= self.redescribe:
                try:
                    d = await client.describe(m.id)
                except AmcpError as exc:  # not answering now: keep what it said, if anything
                    log.debug("describe %s: %s", m.id, exc)
                    if known is None:
                        continue
                else:
                    known = (stamp, now, d.role, d.tools)
            described[m.id] = known
        self._described = described
        catalog = build_catalog({a: (role, tools) for a, (_, _, role, tools) in described.items()})
        changed = catalog.entries != self.catalog.entries
        self.catalog = catalog
        return changed

    # -- calls -----------------------------------------------------------------------

    async def call(
        self, name: str, arguments: Mapping[str, Any] | None, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Run the tool `name`: a result document, an `isError` one on any failure."""
        token = PROGRESS.set(progress)
        try:
            builtin = self.builtins.get(name)
            if builtin is not None:
                return await self._builtin(builtin, arguments)
            route = self.catalog.routes.get(name)
            if route is None or (self.read_only and not route.hints.get("read_only")):
                return error_result(
                    f"no tool {name!r} here"
                    + (" (read-only bridge)" if self.read_only and route is not None else "")
                    + ": list the tools again, the cluster's agents may have changed"
                )
            return await self._agent_call(route, dict(arguments or {}))
        finally:
            PROGRESS.reset(token)

    async def _builtin(self, t: Tool, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        ctx = CallContext(None, self.services.bus.sender, t.name, uuid.uuid4().hex)
        try:
            output = t.dump_output(await t.handler(t.parse_input(dict(arguments or {})), ctx))
        except ToolInputError as exc:
            return error_result(_input_message(exc))
        except (AmcpError, ConsensusError, CrdtError) as exc:
            return error_result(f"{t.name}: {exc}")
        except Exception as exc:  # a bug, still an answer the model can report
            log.exception("%s failed", t.name)
            return error_result(f"{t.name} failed: {type(exc).__name__}: {exc}")
        return ok_result(output, {"builtin": t.name})

    async def _agent_call(self, route: Route, arguments: dict[str, Any]) -> dict[str, Any]:
        meta: dict[str, Any] = {"role": route.role, "tool": route.tool}
        if self.auto and needs_vote(route.hints):
            vote = await vote_on_call(
                self.services.coordinator,
                route.role,
                route.tool,
                arguments,
                quorum=self.vote_quorum,
                timeout=self.vote_timeout,
            )
            meta["vote"] = vote
            if vote["outcome"] != "committed":
                return error_result(refused_message(route.role, route.tool, vote), meta)
        try:
            result = await self.services.client.call(
                route.target, route.tool, arguments, timeout=self.call_timeout
            )
        except ToolInputError as exc:
            return error_result(_input_message(exc), {**meta, "agent": exc.agent})
        except AgentBusy as exc:
            return error_result(f"{exc} (nothing ran)", {**meta, "agent": exc.agent})
        except ToolCallError as exc:
            return error_result(str(exc), {**meta, "agent": exc.agent})
        except NoResponders as exc:
            return error_result(f"{exc}; nothing ran", meta)
        except RequestTimeout:
            return error_result(
                f"no answer from {route.target} within {self.call_timeout:g}s: the call may "
                "still run; check `amcp_log` before calling again",
                meta,
            )
        except AmcpError as exc:
            return error_result(f"{route.role}.{route.tool}: {exc}", meta)
        meta.update(agent=result.agent, call=result.call)
        doc = ok_result(result.output, meta)
        if "vote" in meta:
            said = f"run after a quorum vote committed it: {tally(meta['vote'])}"
            doc["content"].append({"type": "text", "text": said})
        return doc


def _read_only(annotations: Mapping[str, Any]) -> bool:
    return bool(annotations.get("readOnlyHint"))


def _input_message(exc: ToolInputError) -> str:
    """The agent's validation message, every reason on its own line (as `amcp call`)."""
    lines = [str(exc)]
    for d in exc.details or []:
        where = ".".join(str(p) for p in d.get("loc", [])) or "input"
        lines.append(f"  {where}: {d.get('msg')} ({d.get('type')})")
    lines.append("Fix the arguments to match the tool's input schema and call again.")
    return "\n".join(lines)
