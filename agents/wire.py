"""Subjects and message shapes of the agent runtime on the bus.

    amcp.<cluster>.agents.call.<id>     one agent's tools (request/reply)
    amcp.<cluster>.agents.role.<role>   the tools of any live agent of a role (queue group)
    amcp.<cluster>.agents.any           cluster queries any agent can answer (queue group)
    amcp.<cluster>.agents.hb.<id>       heartbeats
    amcp.<cluster>.audit.<id>           audit entries, kept by the JetStream stream AUDIT_<cluster>

A call is `{"tool": name, "input": {...}}`; the reply is `{"ok": true, "agent": id,
"output": {...}}` or `{"ok": false, "agent": id, "error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

from typing import Any

from agents.errors import BadRequest, ToolCallError, error_for_code
from amcp.errors import ConfigError
from amcp.subjects import Subjects, validate_token

__all__ = [
    "ANY",
    "ROLES",
    "AgentSubjects",
    "call_request",
    "error_reply",
    "ok_reply",
    "parse_call",
    "parse_reply",
    "validate_agent_id",
]

ROLES = ("s1", "s2", "s3", "s4", "s5")
ANY = "any"  # the target that any agent answers
_RESERVED = frozenset((*ROLES, ANY))


def validate_agent_id(agent_id: str) -> str:
    """An agent id is a subject token that is not a role name or `any`."""
    validate_token(agent_id, "agent id")
    if agent_id in _RESERVED:
        raise ConfigError(f"agent id {agent_id!r} is reserved (role names and 'any')")
    return agent_id


class AgentSubjects:
    """The runtime's subjects in one cluster."""

    def __init__(self, subjects: Subjects) -> None:
        self.subjects = subjects
        self.cluster = subjects.cluster
        self.any = subjects.area("agents", ANY)
        self.heartbeats = subjects.area("agents", "hb", "*")
        self.audit_all = subjects.area("audit", ">")
        self.audit_stream = f"AUDIT_{self.cluster}"

    def call(self, agent_id: str) -> str:
        return self.subjects.area("agents", "call", agent_id)

    def role(self, role: str) -> str:
        return self.subjects.area("agents", "role", role)

    def heartbeat(self, agent_id: str) -> str:
        return self.subjects.area("agents", "hb", agent_id)

    def audit(self, agent_id: str) -> str:
        return self.subjects.area("audit", agent_id)

    def target(self, name: str) -> str:
        """The subject of a call target: a role, `any`, or an agent id."""
        if name in ROLES:
            return self.role(name)
        if name == ANY:
            return self.any
        return self.call(validate_token(name, "agent id or role"))


def call_request(tool: str, args: Any) -> dict[str, Any]:
    return {"tool": tool, "input": args}


def parse_call(body: Any) -> tuple[str, Any]:
    """(tool name, raw input) of a call; BadRequest if the body is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("tool"), str):
        raise BadRequest("a call is a map {'tool': name, 'input': {...}}")
    return body["tool"], body.get("input", {})


def ok_reply(agent_id: str, output: Any) -> dict[str, Any]:
    return {"ok": True, "agent": agent_id, "output": output}


def error_reply(agent_id: str, error: ToolCallError) -> dict[str, Any]:
    doc: dict[str, Any] = {"code": error.code, "message": str(error)}
    if error.details is not None:
        doc["details"] = error.details
    return {"ok": False, "agent": agent_id, "error": doc}


def parse_reply(body: Any) -> tuple[str, Any]:
    """(answering agent, output) of a reply; raises the error class the agent meant."""
    if not isinstance(body, dict) or not isinstance(body.get("ok"), bool):
        raise BadRequest(f"not a tool reply: {body!r:.200}")
    agent = str(body.get("agent", ""))
    if body["ok"]:
        return agent, body.get("output")
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    cls = error_for_code(str(error.get("code", "failed")))
    raise cls(
        str(error.get("message", "tool call failed")), agent=agent, details=error.get("details")
    )
