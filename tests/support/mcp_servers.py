"""MCP servers for the mount tests: the reference filesystem server from npm where node and
`npm ci --prefix tests/interop` are there, else the Python SDK stand-in
(tests/interop/fs_server.py); and the process tree helper that finds a stdio server
among an agent's children to kill it."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = (
    ROOT / "tests/interop/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
)
STAND_IN = ROOT / "tests/interop/fs_server.py"


def reference_available() -> bool:
    return shutil.which("node") is not None and REFERENCE.exists()


def fs_server_command(kind: str, directory: Path) -> tuple[str, str]:
    """(which server runs, its command line) serving `directory`: `reference` is the npm
    server when it can run here and the stand-in otherwise; `python` is the stand-in."""
    if kind == "reference" and reference_available():
        return "reference", shlex.join(["node", str(REFERENCE), str(directory)])
    return "python", shlex.join([sys.executable, str(STAND_IN), str(directory)])


def children(pid: int) -> list[int]:
    """The direct children of process `pid` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in task.read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return sorted(set(found))
