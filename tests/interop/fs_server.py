"""A small filesystem MCP server written with the Python SDK: the stand-in for the reference
server (`@modelcontextprotocol/server-filesystem`, node) where node or the package is
missing, with the same names, schemas and annotations for what the tests use.

    python tests/interop/fs_server.py DIR [DIR...]     # stdio, like the node server
    python tests/interop/fs_server.py --http PORT DIR   # Streamable HTTP on 127.0.0.1

`read_text_file` and `write_file` work only inside the allowed directories; outside them
the call is an `isError` result, as the reference server answers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel

server = MCPServer("amcp-test-filesystem")
ALLOWED: list[Path] = []


class FileText(BaseModel):
    content: str


def _inside(path: str) -> Path:
    resolved = Path(path).resolve()
    if not any(resolved.is_relative_to(root) for root in ALLOWED):
        raise ToolError(f"Access denied - path outside allowed directories: {resolved}")
    return resolved


@server.tool(
    title="Read Text File",
    annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
)
def read_text_file(path: str, head: int | None = None, tail: int | None = None) -> FileText:
    """Read the complete contents of a file from the file system as text."""
    lines = _inside(path).read_text().splitlines(keepends=True)
    if head is not None:
        lines = lines[:head]
    if tail is not None:
        lines = lines[-tail:]
    return FileText(content="".join(lines))


@server.tool(
    title="Write File",
    annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
    ),
)
def write_file(path: str, content: str) -> str:
    """Create a new file or completely overwrite an existing file with new content."""
    _inside(path).write_text(content)
    return f"Successfully wrote to {path}"


if __name__ == "__main__":
    args = sys.argv[1:]
    port = int(args[1]) if args[:1] == ["--http"] else None
    ALLOWED.extend(Path(d).resolve() for d in args[2 if port else 0 :])
    if port is None:
        server.run()
    else:
        server.run("streamable-http", host="127.0.0.1", port=port)
