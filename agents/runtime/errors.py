"""Errors of the agent runtime, rooted in amcp's one hierarchy so callers catch AmcpError.

    AmcpError (amcp.errors)
    └── AgentError                  raised by the runtime on purpose
        ├── ToolDefinitionError     a tool declared wrongly
        ├── DuplicateAgent          another live agent has this id
        ├── MembershipError         a membership change refused
        └── ToolCallError           a call answered with an error (its `code`)
            ├── ToolInputError      invalid_input: the input does not fit the model
            ├── UnknownTool         unknown_tool
            ├── AgentBusy           busy: pool and queue full, refused
            ├── AgentDraining       draining: shutting down, no new work
            ├── BadRequest          bad_request: not a tool call
            ├── Unclaimed           unclaimed: could not claim it, not run
            ├── ToolUnavailable     unavailable: what the tool needs is down (a mounted server)
            └── ToolFailed          failed: the tool raised or its output did not fit

The tool-call errors mirror the `code` of an error reply, so a caller gets the same class
the serving agent meant (`error_for_code`).
"""

from __future__ import annotations

from typing import Any

from amcp.errors import AmcpError

__all__ = [
    "AgentBusy",
    "AgentDraining",
    "AgentError",
    "BadRequest",
    "DuplicateAgent",
    "MembershipError",
    "ToolCallError",
    "ToolDefinitionError",
    "ToolFailed",
    "ToolInputError",
    "ToolUnavailable",
    "Unclaimed",
    "UnknownTool",
    "error_for_code",
]


class AgentError(AmcpError):
    """Base class of every error the agent runtime raises on purpose."""


class ToolDefinitionError(AgentError):
    """A tool is declared wrongly (bad name, missing models, an example that does not fit)."""


class DuplicateAgent(AgentError):
    """Another live agent already answers on this id."""


class MembershipError(AgentError):
    """A membership change was refused (not a member, still alive, not replicated in time)."""


class ToolCallError(AgentError):
    """A tool call was answered with an error; `code` names the kind, `agent` who answered."""

    code = "failed"

    def __init__(self, message: str, *, agent: str = "", details: Any = None) -> None:
        super().__init__(message)
        self.agent = agent
        self.details = details


class ToolInputError(ToolCallError):
    """The input did not validate against the tool's input model; `details` lists why."""

    code = "invalid_input"


class UnknownTool(ToolCallError):
    """The agent has no tool by that name."""

    code = "unknown_tool"


class AgentBusy(ToolCallError):
    """The agent's pool and its waiting queue are full; the call was refused, not queued."""

    code = "busy"


class AgentDraining(ToolCallError):
    """The agent is shutting down and takes no new work."""

    code = "draining"


class BadRequest(ToolCallError):
    """The request is not a tool call (wrong shape)."""

    code = "bad_request"


class Unclaimed(ToolCallError):
    """A call through a queue group could not be claimed (JetStream unreachable), so it was
    not run: running it unclaimed would let a replayed copy run it again elsewhere."""

    code = "unclaimed"


class ToolUnavailable(ToolCallError):
    """The tool cannot run now: what it needs is down (an external MCP server it mounts is
    being restarted, or was given up on). Not run; the agent itself is fine."""

    code = "unavailable"


class ToolFailed(ToolCallError):
    """The tool ran and raised, or returned output that does not fit its output model."""

    code = "failed"


_BY_CODE: dict[str, type[ToolCallError]] = {
    cls.code: cls
    for cls in (
        ToolInputError,
        UnknownTool,
        AgentBusy,
        AgentDraining,
        BadRequest,
        Unclaimed,
        ToolUnavailable,
        ToolFailed,
    )
}


def error_for_code(code: str) -> type[ToolCallError]:
    """The error class of a reply's error code; unknown codes are plain failures."""
    return _BY_CODE.get(code, ToolFailed)
