"""Subjects and message shapes of the agent runtime on the bus.

    amcp.<cluster>.agents.call.<id>     one agent's tools (request/reply)
    amcp.<cluster>.agents.role.<role>   the tools of any live agent of a role (queue group)
    amcp.<cluster>.agents.any           cluster queries any agent can answer (queue group)
    amcp.<cluster>.agents.hb.<id>       heartbeats
    amcp.<cluster>.audit.<id>           audit entries, kept by the JetStream stream AUDIT_<cluster>

A call is `{"tool": name, "input": {...}}`; the reply is `{"ok": true, "agent": id,
"output": {...}}` or `{"ok": false, "agent": id, "error": {"code", "message", "details"}}`.
A reply too large for one frame has its longest strings cut and carries `"truncated": true`
(in a map output too); one that cannot be cut to fit, or that nests too deep, becomes an
error reply (fit_reply): the caller always gets an answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents.runtime.errors import BadRequest, ToolCallError, ToolFailed, error_for_code
from amcp.errors import ConfigError
from amcp.subjects import Subjects, validate_token

if TYPE_CHECKING:
    from amcp.envelope import FrameLimits

__all__ = [
    "ANY",
    "ROLES",
    "AgentSubjects",
    "call_request",
    "error_reply",
    "fit_reply",
    "ok_reply",
    "parse_call",
    "parse_reply",
    "validate_agent_id",
]

# The role tokens a role subject may carry (agents.role.<role>), reserved as agent ids;
# what a role does is its extension's business (agents.vsm), not the runtime's.
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


def ok_reply(agent_id: str, output: Any, call: str | None = None) -> dict[str, Any]:
    """A tool's answer; `call` is the call id its audit entries carry, for the caller to
    point at them."""
    doc = {"ok": True, "agent": agent_id, "output": output}
    if call is not None:
        doc["call"] = call
    return doc


def error_reply(agent_id: str, error: ToolCallError) -> dict[str, Any]:
    doc: dict[str, Any] = {"code": error.code, "message": str(error)}
    if error.details is not None:
        doc["details"] = error.details
    return {"ok": False, "agent": agent_id, "error": doc}


ENVELOPE_ROOM = 2048
"""Bytes a reply frame needs beside its body and headers: the envelope's fields (a sender
and a key id of up to 128 characters each, numbers, kind) and the MAC."""
_MIN_CUT = 256  # below this the reply is mostly structure: cutting text would not help


def fit_reply(agent_id: str, reply: dict[str, Any], limits: FrameLimits) -> dict[str, Any]:
    """`reply` itself if the wire takes it; else a copy with its longest strings cut to fit
    and flagged `truncated`, or an error reply saying why it cannot be sent. A reply the
    bus refused to send would leave the caller waiting for a timeout."""
    # here, not at the top: the command lines import this module for its names and
    # checks, and the envelope's codec (msgspec) is for the agents that reply
    import msgspec

    from amcp.envelope import check_depth, encode_envelope

    if not check_depth(reply, limits.max_depth):
        why = f"the reply nests deeper than {limits.max_depth} levels, which the wire refuses"
        return error_reply(agent_id, ToolFailed(why))
    room = limits.max_frame_bytes - limits.max_header_bytes - ENVELOPE_ROOM
    try:
        size = len(encode_envelope(reply))
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        return error_reply(agent_id, ToolFailed(f"the reply cannot be encoded: {exc}"))
    if size <= room:
        return reply
    best, low, high = None, _MIN_CUT, size  # the longest cut of every string that fits
    while low <= high:
        cap = (low + high) // 2
        cut = _flagged(_cut(reply, cap))
        if len(encode_envelope(cut)) <= room:
            best, low = cut, cap + 1
        else:
            high = cap - 1
    if best is None:
        return error_reply(
            agent_id,
            ToolFailed(
                f"the reply of {size} bytes does not fit the {limits.max_frame_bytes}-byte "
                "frame limit, even with its text cut"
            ),
        )
    return best


def _cut(value: Any, cap: int) -> Any:
    """A copy of `value` with every string and bytes value cut to at most `cap` bytes."""
    if type(value) is str:
        if len(value) <= cap // 4:  # four bytes per character at most: fits as it is
            return value
        data = value.encode()
        return data[:cap].decode("utf-8", "ignore") if len(data) > cap else value
    if isinstance(value, bytes | bytearray):
        return bytes(value[:cap])
    if isinstance(value, dict):
        return {k: _cut(v, cap) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cut(v, cap) for v in value]
    return value


def _flagged(reply: dict[str, Any]) -> dict[str, Any]:
    """`reply` (a copy of our own) marked as cut, in its map output too."""
    reply["truncated"] = True
    if isinstance(reply.get("output"), dict):
        reply["output"]["truncated"] = True
    return reply


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
