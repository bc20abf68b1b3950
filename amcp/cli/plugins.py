"""The higher layers' commands: the `amcp.commands` entry points, remembered between runs.

Importing importlib.metadata costs 10-20 ms, more than the rest of `amcp --help` takes to
build its tree, so the entry points found are kept in a small file per environment
(~/.cache/amcp, or $XDG_CACHE_HOME/amcp). As stevedore's cache does, the file is keyed by
sys.path and the modification time of each of its folders: installing, upgrading or
removing a distribution rewrites its dist-info in one of them, and the entry points are
then read anew. A cache that cannot be read or written is only a slower start.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["GROUP", "cache_folder", "command_entry_points"]

GROUP = "amcp.commands"


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "amcp"


def _digest(parts: Sequence[object]) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


def _mtime(entry: str) -> int:
    try:
        return os.stat(entry or ".").st_mtime_ns
    except OSError:
        return -1


def command_entry_points(folder: Path | None = None) -> list[tuple[str, str]]:
    """(name, "module:attr") of every command registered in the group, sorted by name."""
    path = list(sys.path)
    key = _digest([f"{entry}={_mtime(entry)}" for entry in path])
    name = f"commands-{_digest(path)[:16]}.json"  # a file per sys.path: `amcp`, `python -m`
    file: Path | None = None
    try:
        file = (cache_folder() if folder is None else folder) / name
        doc = json.loads(file.read_text())
        if doc["key"] == key:
            return [(str(name), str(value)) for name, value in doc["commands"]]
    except RuntimeError:
        pass  # no home folder: nowhere to keep them
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, unreadable or from another layout: read the entry points
    from importlib.metadata import entry_points

    found = sorted((ep.name, ep.value) for ep in entry_points(group=GROUP))
    if file is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            partial = file.with_name(f"{file.name}.{os.getpid()}")
            partial.write_text(json.dumps({"key": key, "commands": found}))
            partial.replace(file)  # whole or not at all, when two commands start at once
        except OSError:
            pass
    return found
