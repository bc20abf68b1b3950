"""External MCP servers an agent mounts (pure): `--mcp NAME=COMMAND` or `--mcp NAME=URL`,
and the names their tools get on the agent.

COMMAND is split as a shell would (quotes kept together, nothing expanded) and run with
its stdin and stdout as the MCP stdio transport; a single http(s) URL is a Streamable
HTTP server to connect to. Each tool of server NAME is served as `NAME.tool`, its MCP name
mapped to amcp's tool-name rules (lowercase letters, digits, `_`, `.`, `-`; at most 64):
camelCase split with `_`, anything else `_`. Where mapping makes two names one, or cuts
a long one, a hash of the original name keeps them apart, the same on every start. The
original name is kept for the call.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["McpServerSpec", "mount_names", "parse_mcp_server", "parse_mcp_servers"]

_SERVER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")  # no dot: it separates server and tool
_MAX_TOOL_NAME = 64  # agents.runtime.tools' limit on the whole `NAME.tool`
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_OTHER = re.compile(r"[^a-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class McpServerSpec:
    """One external MCP server: a command to run (stdio) or a URL (Streamable HTTP)."""

    name: str
    command: tuple[str, ...] = ()
    url: str = ""

    @property
    def target(self) -> str:
        """What it is, for logs and status: the URL, or the command line."""
        return self.url or shlex.join(self.command)


def parse_mcp_server(text: str) -> McpServerSpec:
    """`NAME=COMMAND` or `NAME=http(s)://...`; ValueError with a one-line reason."""
    name, sep, rest = text.partition("=")
    name, rest = name.strip(), rest.strip()
    if not sep or not name or not rest:
        raise ValueError(f"expected NAME=COMMAND or NAME=URL, not {text!r}")
    if not _SERVER_NAME.match(name):
        raise ValueError(
            f"MCP server name {name!r}: a lowercase letter, then up to 31 lowercase letters, "
            "digits, '_' or '-'"
        )
    if rest.startswith(("http://", "https://")):
        parts = urlsplit(rest)
        if not parts.hostname or any(c.isspace() for c in rest):
            raise ValueError(f"MCP server {name}: {rest!r} is not a usable http(s) URL")
        return McpServerSpec(name, url=rest)
    try:
        command = tuple(shlex.split(rest))
    except ValueError as exc:  # an unclosed quote
        raise ValueError(f"MCP server {name}: cannot split {rest!r}: {exc}") from None
    if not command:
        raise ValueError(f"MCP server {name}: the command is empty")
    return McpServerSpec(name, command=command)


def parse_mcp_servers(texts: Iterable[str]) -> tuple[McpServerSpec, ...]:
    """Every `--mcp` value, each name once."""
    specs = tuple(parse_mcp_server(t) for t in texts)
    names = [s.name for s in specs]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"MCP server name given more than once: {', '.join(dupes)}")
    return specs


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _mapped(server: str, tool: str) -> tuple[str, bool]:
    """`server.tool` under amcp's rules, and whether it is the tool's name unchanged."""
    local = _OTHER.sub("_", _CAMEL.sub("_", tool).lower()).strip("._-") or "tool"
    name = f"{server}.{local}"
    if len(name) > _MAX_TOOL_NAME:
        return f"{name[: _MAX_TOOL_NAME - 9]}-{_digest(tool)}", False
    return name, local == tool


def mount_names(server: str, tools: Iterable[str]) -> dict[str, str]:
    """For each MCP tool name of `server`, a distinct amcp tool name `server.tool`.

    A tool whose name needed no mapping keeps its plain name (else the first in sorted
    order); others that would clash get `-<hash of the original>`, so a name does not
    change when other tools come and go."""
    unique = sorted(set(tools))
    mapped = {t: _mapped(server, t) for t in unique}
    taken: set[str] = set()
    names: dict[str, str] = {}
    for t in sorted(unique, key=lambda t: (not mapped[t][1], t)):
        name = mapped[t][0]
        if name in taken:
            name = f"{name[: _MAX_TOOL_NAME - 9]}-{_digest(t)}"
        taken.add(name)
        names[t] = name
    return names
