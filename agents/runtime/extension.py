"""Extension points: how roles (S1 to S5) and voters plug into the runtime.

An Extension brings tools, starts its own subscriptions and loops on the running agent,
stops while the agent drains, and adds a section to `amcp status`. A Role is the extension
that gives an agent its VSM behaviour; this module's plain Role has none yet.

Other packages register theirs through entry points, so the runtime never imports them:

    [project.entry-points."amcp.roles"]             # name: the role; value: a Role subclass
    s1 = "agents.s1:OperationsRole"
    [project.entry-points."amcp.agent_extensions"]  # value: f(AgentConfig) -> Extension | None
    voter = "agents.vsm.voting:extension_for"
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from agents.runtime.errors import AgentError

if TYPE_CHECKING:
    from agents.runtime.agent import Agent, AgentConfig
    from agents.runtime.tools import Tool

__all__ = ["EXTENSION_GROUP", "ROLE_GROUP", "Extension", "Role", "load_extensions"]

ROLE_GROUP = "amcp.roles"
EXTENSION_GROUP = "amcp.agent_extensions"


class Extension:
    """A part of an agent's behaviour. Every method has a do-nothing default."""

    name: str = "extension"

    def tools(self) -> Iterable[Tool]:
        """Tools to serve; registered before the agent starts answering."""
        return ()

    async def start(self, agent: Agent) -> None:
        """Called once the agent is connected and a member, before it reports running.
        Long-running work belongs in `agent.spawn(...)`, which fails the agent if it dies."""

    async def stop(self) -> None:
        """Called when the agent starts draining, before it leaves the membership."""

    def status(self) -> dict[str, Any]:
        """A section of this agent's status (its own figures)."""
        return {}

    def viability(self) -> dict[str, Any] | None:
        """Cluster viability metrics, for the one extension that computes them (issue 7)."""
        return None


class Role(Extension):
    """The behaviour of one VSM role. This base serves only the runtime's own tools."""

    role: ClassVar[str] = ""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.name = f"role-{config.role}"


def load_extensions(config: AgentConfig) -> list[Extension]:
    """The role registered for `config.role` (or a plain Role), then every extension whose
    factory accepts this agent."""
    role_cls: type[Role] = Role
    for ep in entry_points(group=ROLE_GROUP):
        if ep.name == config.role:
            loaded = ep.load()
            if not (isinstance(loaded, type) and issubclass(loaded, Role)):
                raise AgentError(f"entry point {ep.value} for role {ep.name} is not a Role")
            role_cls = loaded
    extensions: list[Extension] = [role_cls(config)]
    for ep in sorted(entry_points(group=EXTENSION_GROUP), key=lambda e: e.name):
        extension = ep.load()(config)
        if extension is not None:
            extensions.append(extension)
    return extensions
