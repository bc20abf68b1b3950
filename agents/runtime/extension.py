"""Extension points: how roles and voters plug into the runtime.

An Extension brings tools, starts its own subscriptions and loops on the running agent
(through its AgentHandle), stops while the agent drains, adds a section of its own figures
to the agent's status and may add cluster-wide sections to the cluster view (`amcp
status`). A Role is the extension that gives an agent its role's behaviour; this module's
plain Role has none.

Other packages register theirs through entry points, so the runtime never imports them:

    [project.entry-points."amcp.roles"]             # name: the role; value: a Role subclass
    s1 = "agents.vsm.s1.role:OperationsRole"
    [project.entry-points."amcp.agent_extensions"]  # value: f(AgentConfig) -> Extension | None
    voter = "agents.vsm.voting:extension_for"
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any, ClassVar

from agents.runtime.config import AgentConfig
from agents.runtime.errors import AgentError
from agents.runtime.handle import AgentHandle
from agents.runtime.tools import Tool

__all__ = ["EXTENSION_GROUP", "ROLE_GROUP", "Extension", "Role", "load_extensions"]

ROLE_GROUP = "amcp.roles"
EXTENSION_GROUP = "amcp.agent_extensions"


class Extension:
    """A part of an agent's behaviour. Every method has a do-nothing default."""

    name: str = "extension"

    async def prepare(self) -> None:
        """Called once before `tools()`, before the agent joins: get ready what the tools
        come from (an external MCP server to list them from). Raise to refuse to start."""

    def tools(self) -> Iterable[Tool]:
        """Tools to serve; registered before the agent starts answering."""
        return ()

    async def start(self, agent: AgentHandle) -> None:
        """Called once the agent is connected and a member, before it reports running.
        Long-running work belongs in `agent.spawn(...)`, which fails the agent if it dies."""

    async def stop(self) -> None:
        """Called when the agent starts draining, before it leaves the membership."""

    def status(self) -> dict[str, Any]:
        """A section of this agent's status (its own figures)."""
        return {}

    def sections(self) -> Mapping[str, Any]:
        """Cluster-wide sections of the cluster view (`amcp members`, `amcp status`), by
        name: what the extension knows of the whole cluster rather than of itself. Where
        several extensions give a name, the first with a value wins."""
        return {}


class Role(Extension):
    """The behaviour of one role. This base serves only the runtime's own tools."""

    role: ClassVar[str] = ""
    voter: ClassVar[bool] = False  # every agent of this role votes, --voter or not

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.name = f"role-{config.role}"


def load_extensions(config: AgentConfig) -> list[Extension]:
    """The role registered for `config.role` (or a plain Role), then every extension whose
    factory accepts this agent. A `voter` role makes the config a voter's first, so the
    member record and the extension factories see it."""
    role_cls: type[Role] = Role
    for ep in entry_points(group=ROLE_GROUP):
        if ep.name == config.role:
            loaded = ep.load()
            if not (isinstance(loaded, type) and issubclass(loaded, Role)):
                raise AgentError(f"entry point {ep.value} for role {ep.name} is not a Role")
            role_cls = loaded
    config.voter = config.voter or role_cls.voter
    extensions: list[Extension] = [role_cls(config)]
    for ep in sorted(entry_points(group=EXTENSION_GROUP), key=lambda e: e.name):
        extension = ep.load()(config)
        if extension is not None:
            extensions.append(extension)
    return extensions
