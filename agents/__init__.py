"""agents: the runtime every amcp agent shares, and what its users need of it.

An Agent joins the cluster's replicated member list, heartbeats, serves tools (pydantic
input and output models, discoverable schemas) on its own subject and its role's queue
group inside a bounded pool, writes an audit log, exports Prometheus metrics, and on a
graceful stop drains and leaves. Roles and voters plug in as Extensions, which see the
agent through an AgentHandle. AgentClient calls agents; AgentProcess and Supervisor run
them as child processes. The VSM roles live in agents.vsm, the command lines in agents.cli.
"""

import typing

import lazy_loader

if typing.TYPE_CHECKING:
    from agents.process.child import AgentProcess
    from agents.process.restarts import RestartPolicy
    from agents.process.supervisor import Supervisor
    from agents.runtime.admin import ClusterView, Described, MemberView, Removed
    from agents.runtime.agent import Agent
    from agents.runtime.audit import AuditEntry, AuditEvent, read_cluster_log, read_local_log
    from agents.runtime.client import AgentClient, CallResult
    from agents.runtime.config import AgentConfig
    from agents.runtime.discovery import MemberStatus
    from agents.runtime.errors import (
        AgentBusy,
        AgentDraining,
        AgentError,
        BadRequest,
        DuplicateAgent,
        MembershipError,
        ToolCallError,
        ToolDefinitionError,
        ToolFailed,
        ToolInputError,
        ToolUnavailable,
        Unclaimed,
        UnknownTool,
    )
    from agents.runtime.extension import Extension, Role, load_extensions
    from agents.runtime.handle import AgentHandle
    from agents.runtime.lifecycle import LifecycleState
    from agents.runtime.liveness import Liveness
    from agents.runtime.membership import MEMBERS_KEY, MemberRecord
    from agents.runtime.subjects import ANY, ROLES
    from agents.runtime.tools import CallContext, Example, Tool, ToolHints, tool

# Each name loads its module on first use (PEP 562): a command line that imports one
# module of this package does not pay for all the others.
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "process.child": ["AgentProcess"],
        "process.restarts": ["RestartPolicy"],
        "process.supervisor": ["Supervisor"],
        "runtime.admin": ["ClusterView", "Described", "MemberView", "Removed"],
        "runtime.agent": ["Agent"],
        "runtime.audit": ["AuditEntry", "AuditEvent", "read_cluster_log", "read_local_log"],
        "runtime.client": ["AgentClient", "CallResult"],
        "runtime.config": ["AgentConfig"],
        "runtime.discovery": ["MemberStatus"],
        "runtime.errors": [
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
        ],
        "runtime.extension": ["Extension", "Role", "load_extensions"],
        "runtime.handle": ["AgentHandle"],
        "runtime.lifecycle": ["LifecycleState"],
        "runtime.liveness": ["Liveness"],
        "runtime.membership": ["MEMBERS_KEY", "MemberRecord"],
        "runtime.subjects": ["ANY", "ROLES"],
        "runtime.tools": ["CallContext", "Example", "Tool", "ToolHints", "tool"],
    },
)

__all__ = [
    "ANY",
    "MEMBERS_KEY",
    "ROLES",
    "Agent",
    "AgentBusy",
    "AgentClient",
    "AgentConfig",
    "AgentDraining",
    "AgentError",
    "AgentHandle",
    "AgentProcess",
    "AuditEntry",
    "AuditEvent",
    "BadRequest",
    "CallContext",
    "CallResult",
    "ClusterView",
    "Described",
    "DuplicateAgent",
    "Example",
    "Extension",
    "LifecycleState",
    "Liveness",
    "MemberRecord",
    "MemberStatus",
    "MemberView",
    "MembershipError",
    "Removed",
    "RestartPolicy",
    "Role",
    "Supervisor",
    "Tool",
    "ToolCallError",
    "ToolDefinitionError",
    "ToolFailed",
    "ToolHints",
    "ToolInputError",
    "ToolUnavailable",
    "Unclaimed",
    "UnknownTool",
    "load_extensions",
    "read_cluster_log",
    "read_local_log",
    "tool",
]
