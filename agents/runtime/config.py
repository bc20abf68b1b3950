"""How one agent runs: its role, id, capabilities and limits (`amcp-agent`'s flags)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.runtime.hooks import HookConfig
from agents.runtime.subjects import ROLES, validate_agent_id
from amcp.errors import ConfigError

__all__ = ["AgentConfig"]


@dataclass
class AgentConfig:
    """How one agent runs; the `amcp-agent` flags map onto these fields."""

    role: str
    agent_id: str = ""
    capabilities: tuple[str, ...] = ()
    data_dir: Path | None = None
    heartbeat: float = 1.0
    pool_size: int = 8
    queue_size: int = 64
    drain_timeout: float = 30.0
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    voter: bool = False  # load_extensions sets it for a role that always votes (Role.voter)
    restarts: int = 0  # how often a supervisor restarted this agent
    mcp: tuple[str, ...] = ()  # NAME=COMMAND or NAME=URL: MCP servers mounted as its tools
    # their restart budget: max restarts, window, base and max delay (RestartPolicy's order)
    mcp_restarts: tuple[int, float, float, float] | None = None
    hooks: HookConfig = field(default_factory=HookConfig)  # --hook, --hooks-file
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"unknown role {self.role!r}: one of {', '.join(ROLES)}")
        self.agent_id = validate_agent_id(self.agent_id or f"{self.role}-{uuid.uuid4().hex[:8]}")
        if self.heartbeat <= 0 or self.pool_size < 1 or self.queue_size < 0:
            raise ConfigError("need heartbeat > 0, pool size >= 1 and queue size >= 0")
