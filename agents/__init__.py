"""agents: the runtime every amcp agent shares.

An Agent joins the cluster's replicated member list, heartbeats, serves tools (pydantic
input and output models, discoverable schemas) on its own subject and its role's queue
group inside a bounded pool, writes an audit log, exports Prometheus metrics, and on a
graceful stop drains and leaves. Roles and voters plug in as Extensions.
"""

from agents.process.child import AgentProcess
from agents.process.restarts import RestartDecision, RestartPolicy, RestartTracker
from agents.process.supervisor import Supervisor
from agents.runtime.admin import ClusterView, Described, MemberView, Removed
from agents.runtime.agent import Agent, AgentConfig
from agents.runtime.audit import AuditEntry, AuditEvent, AuditLog, read_cluster_log, read_local_log
from agents.runtime.client import AgentClient, CallResult
from agents.runtime.discovery import Discovery, MemberStatus
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
    Unclaimed,
    UnknownTool,
)
from agents.runtime.extension import Extension, Role, load_extensions
from agents.runtime.lifecycle import Lifecycle, LifecycleState
from agents.runtime.liveness import Liveness, LivenessDetector, PhiSettings
from agents.runtime.membership import MEMBERS_KEY, MemberRecord, Membership
from agents.runtime.subjects import ANY, ROLES, AgentSubjects
from agents.runtime.tools import CallContext, Example, Tool, ToolRegistry, tool

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
