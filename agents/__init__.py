"""agents: the runtime every amcp agent shares.

An Agent joins the cluster's replicated member list, heartbeats, serves tools (pydantic
input and output models, discoverable schemas) on its own subject and its role's queue
group inside a bounded pool, writes an audit log, exports Prometheus metrics, and on a
graceful stop drains and leaves. Roles and voters plug in as Extensions.
"""

from agents.admin import ClusterView, Described, MemberView, Removed
from agents.audit import AuditEntry, AuditEvent, AuditLog, read_cluster_log, read_local_log
from agents.client import AgentClient, CallResult
from agents.discovery import Discovery, MemberStatus
from agents.errors import (
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
    Unclaimed,
    UnknownTool,
)
from agents.extension import Extension, Role, load_extensions
from agents.lifecycle import Lifecycle, LifecycleState
from agents.liveness import Liveness, LivenessDetector, PhiSettings
from agents.membership import MEMBERS_KEY, MemberRecord, Membership
from agents.processes import AgentProcess
from agents.restarts import RestartDecision, RestartPolicy, RestartTracker
from agents.runtime import Agent, AgentConfig
from agents.supervisor import Supervisor
from agents.tools import CallContext, Example, Tool, ToolRegistry, tool
from agents.wire import ANY, ROLES, AgentSubjects

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
    "AgentProcess",
    "AgentSubjects",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "BadRequest",
    "CallContext",
    "CallResult",
    "ClusterView",
    "Described",
    "Discovery",
    "DuplicateAgent",
    "Example",
    "Extension",
    "Lifecycle",
    "LifecycleState",
    "Liveness",
    "LivenessDetector",
    "MemberRecord",
    "MemberStatus",
    "MemberView",
    "Membership",
    "MembershipError",
    "PhiSettings",
    "Removed",
    "RestartDecision",
    "RestartPolicy",
    "RestartTracker",
    "Role",
    "Supervisor",
    "Tool",
    "ToolCallError",
    "ToolDefinitionError",
    "ToolFailed",
    "ToolInputError",
    "ToolRegistry",
    "Unclaimed",
    "UnknownTool",
    "load_extensions",
    "read_cluster_log",
    "read_local_log",
    "tool",
]
